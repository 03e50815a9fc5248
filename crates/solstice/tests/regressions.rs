//! Regression tests for bugs found in review: panics on user input, silent
//! wrong results under `vmap`, escaped tracers, and differences from JAX.
//! Each test states the behaviour that is now guaranteed.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use solstice::random::{self, Key};
use solstice::{Array, Axes, DType, custom_vjp, grad, jvp, vmap, vmap_with};

fn no_panic<R>(name: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("PANIC in {name}: {msg}");
            None
        }
    }
}

#[test]
fn neg_of_integer_array() {
    let r = no_panic("neg i64", || {
        Array::from_vec(vec![1i64, -2], &[2])
            .unwrap()
            .neg()
            .map(|a| a.to_vec::<i64>().unwrap())
    });
    assert_eq!(r.unwrap().unwrap(), vec![-1, 2]);
}

#[test]
fn abs_and_sign_of_integer_arrays_wrap_as_jax() {
    // candle has no integer abs kernel; `|MIN|` wraps to MIN in JAX.
    for dtype in [DType::I64, DType::I32] {
        let x = Array::from_vec(vec![-3i64, 4, 0], &[3])
            .unwrap()
            .astype(dtype)
            .unwrap();
        let abs = no_panic("abs of integers", || x.abs()).expect("no panic");
        let abs = abs.unwrap().astype(DType::I64).unwrap();
        assert_eq!(abs.to_vec::<i64>().unwrap(), [3, 4, 0], "{dtype:?}");
        let sign = x.sign().unwrap().astype(DType::I64).unwrap();
        assert_eq!(sign.to_vec::<i64>().unwrap(), [-1, 1, 0], "{dtype:?}");
    }
    let min = Array::from_vec(vec![i64::MIN, -1], &[2]).unwrap();
    assert_eq!(min.abs().unwrap().to_vec::<i64>().unwrap(), [i64::MIN, 1]);
}

#[test]
fn sign_of_nan_is_nan_as_in_jax() {
    let x = Array::from_vec(vec![f32::NAN, -2.0, 0.0, 5.0], &[4]).unwrap();
    let s = x.sign().unwrap().to_vec::<f32>().unwrap();
    assert!(s[0].is_nan());
    assert_eq!(&s[1..], [-1.0, 0.0, 1.0]);
}

#[test]
fn integer_division_by_zero() {
    let r = no_panic("floor_divide i32", || {
        let a = Array::from_vec(vec![1i32], &[1]).unwrap();
        let b = Array::from_vec(vec![0i32], &[1]).unwrap();
        a.floor_divide(&b).map(|a| a.to_vec::<i32>().unwrap())
    });
    assert!(
        r.unwrap()
            .unwrap_err()
            .to_string()
            .contains("integer division by zero")
    );
}

#[test]
fn u8_subtract_overflow() {
    let r = no_panic("sub u8", || {
        let a = Array::from_vec(vec![1u8], &[1]).unwrap();
        let b = Array::from_vec(vec![2u8], &[1]).unwrap();
        a.sub(&b).map(|a| a.to_vec::<u8>().unwrap())
    });
    // Integer arithmetic wraps, as in JAX.
    assert_eq!(r.unwrap().unwrap(), vec![255]);
}

#[test]
fn take_oob_under_vmap_both_batched() {
    let x = Array::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
    // Example 0 asks for index 3 of a length-3 row: out of range.
    let idx = Array::from_vec(vec![3i64, 0], &[2, 1]).unwrap();
    // Unbatched: an error.
    let row0 = x.take(&Array::scalar(0i64).unwrap(), 0).unwrap();
    assert!(
        row0.take(&Array::from_vec(vec![3i64], &[1]).unwrap(), 0)
            .is_err()
    );
    let r = vmap(|p: &(Array, Array)| p.0.take(&p.1, 0))(&(x, idx));
    assert!(
        r.is_err(),
        "out-of-range index under vmap read another example's data"
    );
}

#[test]
fn index_add_oob_under_vmap() {
    let base = Array::zeros(&[2, 3], DType::F32).unwrap();
    let idx = Array::from_vec(vec![3i64, 0], &[2, 1]).unwrap();
    let src = Array::ones(&[2, 1], DType::F32).unwrap();
    let r = vmap(|p: &(Array, Array, Array)| p.0.index_add(&p.1, &p.2, 0))(&(base, idx, src));
    assert!(
        r.is_err(),
        "out-of-range index_add under vmap wrote into another example"
    );
}

#[test]
fn u8_indices_under_vmap() {
    // 30 examples, rows of 10: offsets reach 290, beyond u8.
    let (b, len) = (30usize, 10usize);
    let x = Array::from_vec((0..b * len).map(|v| v as f32).collect(), &[b, len]).unwrap();
    let idx = Array::from_vec(vec![7u8; b], &[b, 1]).unwrap();
    let r = no_panic("take u8", || {
        vmap(|p: &(Array, Array)| p.0.take(&p.1, 0))(&(x, idx))
    });
    match r {
        None => panic!("vmap take with u8 indices panicked"),
        Some(r) => {
            let got = r.unwrap().to_vec::<f32>().unwrap();
            let want: Vec<f32> = (0..b).map(|i| (i * len + 7) as f32).collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn stale_vmap_tracer_returned_from_later_vmap() {
    let stash: RefCell<Option<Array>> = RefCell::new(None);
    let xs = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    vmap(|x: &Array| {
        *stash.borrow_mut() = Some(x.clone());
        Ok(x.clone())
    })(&xs)
    .unwrap();
    let ys = Array::from_vec(vec![10.0f32, 20.0], &[2]).unwrap();
    let r = vmap(|_y: &Array| Ok(stash.borrow().clone().unwrap()))(&ys);
    assert!(
        r.is_err(),
        "an escaped tracer was returned as a valid batch"
    );
}

#[test]
fn stale_grad_tracer_returned_from_later_grad() {
    let stash: RefCell<Option<Array>> = RefCell::new(None);
    let f = |x: &Array| {
        let y = x.mul(x)?.mul(x)?.exp()?.sin()?; // several tape nodes
        *stash.borrow_mut() = Some(y.clone());
        Ok(y)
    };
    grad(f)(&Array::scalar(1.0f64).unwrap()).unwrap();
    let r = no_panic("stale grad", || {
        grad(|_x: &Array| Ok(stash.borrow().clone().unwrap()))(&Array::scalar(2.0f64).unwrap())
    });
    assert!(
        matches!(r, Some(Err(_))),
        "escaped grad tracer not reported as an error"
    );
}

#[test]
fn custom_vjp_wrong_cotangent_shape() {
    let bad = custom_vjp(
        |x: &Array| Ok(x.clone()),
        |_x: &Array, _y: &Array, ct: &Array| ct.sum_all(), // wrong: shape [] for input [3]
    );
    let x = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    let r = grad(|x: &Array| bad(x)?.sum_all()?.add(&x.sum_all()?))(&x);
    let r2 = grad(|x: &Array| bad(x)?.sum_all())(&x);
    assert!(
        r.is_err(),
        "a wrong-shaped custom cotangent was broadcast silently"
    );
    let err = r2.unwrap_err().to_string();
    assert!(
        err.starts_with("in the derivative of custom_vjp: custom_vjp's backward returned"),
        "{err}"
    );
}

#[test]
fn vmap_over_single_key() {
    let r = vmap(|k: &Key| random::normal(k.clone(), &[3], DType::F32))(&Key::new(0));
    assert!(
        r.is_err(),
        "vmap over one key's two words gave {:?}",
        r.map(|a| a.shape().to_vec())
    );
}

#[test]
fn key_batch_shape_of_filtered_key() {
    let model = (Array::scalar(1.0f32).unwrap(), Key::new(0));
    let (floats, _) = solstice::tree::partition(&model, solstice::tree::is_inexact_array);
    let r = no_panic("batch_shape", || floats.1.batch_shape().map(|s| s.to_vec()));
    assert!(r.is_some(), "Key::batch_shape panicked");
}

#[test]
fn abs_derivative_at_zero_matches_jax() {
    // jax.grad(jnp.abs)(0.) == 1.0
    let g = grad(|x: &Array| x.abs())(&Array::scalar(0.0f64).unwrap()).unwrap();
    let (_, t) = jvp(
        |x: &Array| x.abs(),
        &Array::scalar(0.0f64).unwrap(),
        &Array::scalar(1.0f64).unwrap(),
    )
    .unwrap();
    assert_eq!(g.to_scalar::<f64>().unwrap(), 1.0);
    assert_eq!(t.to_scalar::<f64>().unwrap(), 1.0);
}

#[test]
fn logsumexp_all_neg_inf() {
    let x = Array::from_vec(vec![f32::NEG_INFINITY, f32::NEG_INFINITY], &[2]).unwrap();
    let v = x.logsumexp(0).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(v, f32::NEG_INFINITY);
}

#[test]
fn vmap_out_axes_none_stale() {
    // placeholder: vmap_with compile check
    let f = vmap_with(
        |x: &Array| x.exp(),
        Axes::All(Some(-1)),
        Axes::All(Some(-1)),
    );
    let x = Array::from_vec(vec![0.0f32; 6], &[2, 3]).unwrap();
    assert_eq!(f(&x).unwrap().shape(), &[2, 3]);
}

#[test]
fn vector_dot_vector() {
    let x = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    let r = x.matmul(&x);
    assert_eq!(r.unwrap().to_scalar::<f32>().unwrap(), 14.0);
}

#[test]
fn nan_in_max_and_maximum() {
    let a = Array::from_vec(vec![1.0f32, f32::NAN], &[2]).unwrap();
    let m = a.max(&[0]).unwrap().to_scalar::<f32>().unwrap();
    let mx = Array::scalar(1.0f32)
        .unwrap()
        .maximum(&Array::scalar(f32::NAN).unwrap())
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let r = Array::scalar(f32::NAN)
        .unwrap()
        .relu()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(m.is_nan() && mx.is_nan() && r.is_nan());
}

#[test]
fn max_of_empty_non_reduced_axis() {
    let x = Array::zeros(&[0, 3], DType::F32).unwrap();
    let r = x.max(&[1]);
    let s = vmap(|x: &Array| x.softmax(-1))(&x);
    assert!(r.is_ok() && s.is_ok());
}

#[test]
fn count_of_u8_mask() {
    let a = Array::zeros(&[300], DType::F32).unwrap();
    let mask = a.eq(&a).unwrap(); // u8 ones
    let r = no_panic("u8 sum", || {
        mask.sum_all()
            .map(|s| (s.dtype(), s.to_scalar::<i64>().unwrap()))
    });
    assert!(matches!(r, Some(Ok((_, 300)))));
}

#[test]
fn apply_updates_rejects_an_update_of_another_shape() {
    let model = (Array::zeros(&[3], DType::F32).unwrap(),);
    let updates = (Array::zeros(&[2, 3], DType::F32).unwrap(),);
    let err = solstice::apply_updates(&model, &updates).unwrap_err();
    assert!(
        err.to_string().contains("updates have their leaf's shape"),
        "{err}"
    );
}

#[test]
fn integer_constants_must_fit_their_dtype() {
    let err = Array::full(&[1], 300.0, DType::U8).unwrap_err();
    assert!(err.is_dtype_mismatch());
    assert_eq!(
        err.to_string(),
        "300 is not a value of u8; use a float dtype or a whole number in range"
    );
    let ints = Array::from_vec(vec![1i64, 2], &[2]).unwrap();
    assert!(ints.add_scalar(0.5).is_err());
    assert_eq!(
        ints.add_scalar(-3.0).unwrap().to_vec::<i64>().unwrap(),
        vec![-2, -1]
    );
}
