//! Arithmetic operators on arrays: they equal the named methods, chain, work
//! under transformations, and report mistakes as errors, never panics.

use solstice::{Array, DType, Result, grad, vmap};

fn f32s(v: &[f32]) -> Array {
    Array::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

fn values(a: Result<Array>) -> Vec<f32> {
    a.unwrap().to_vec::<f32>().unwrap()
}

#[test]
fn operators_equal_the_named_operations() -> Result<()> {
    let a = f32s(&[1.0, -2.0, 3.5]);
    let b = f32s(&[4.0, 0.5, -1.5]);
    let same = |x: Result<Array>, y: Result<Array>| assert_eq!(values(x), values(y));
    same(&a + &b, a.add(&b));
    same(&a - &b, a.sub(&b));
    same(&a * &b, a.mul(&b));
    same(&a / &b, a.div(&b));
    same(&a % &b, a.rem(&b));
    same(-&a, a.neg());
    same(-a.clone(), a.neg());
    // Owned and borrowed operands alike.
    same(a.clone() + b.clone(), a.add(&b));
    same(a.clone() * &b, a.mul(&b));
    same(&a - b.clone(), a.sub(&b));
    // Scalars on either side, in the array's dtype.
    same(&a * 2.0, a.mul_scalar(2.0));
    same(a.clone() + 1.0, a.add_scalar(1.0));
    same(1.0 - &a, a.neg()?.add_scalar(1.0));
    same(2.0 / a.clone(), Array::scalar(2.0f32)?.div(&a));
    Ok(())
}

#[test]
fn expressions_chain_with_one_question_mark() -> Result<()> {
    let x = f32s(&[1.0, 2.0]);
    let w = f32s(&[3.0, 4.0]);
    let b = f32s(&[0.5, 0.5]);
    let y = (&x * &w + &b - &x)?;
    assert_eq!(y.to_vec::<f32>()?, vec![2.5, 6.5]);
    let z = (&b - (&x * &w))?;
    assert_eq!(z.to_vec::<f32>()?, vec![-2.5, -7.5]);
    let scaled = ((&x + &w)? * 0.5)?;
    assert_eq!(scaled.to_vec::<f32>()?, vec![2.0, 3.0]);
    Ok(())
}

#[test]
fn mistakes_are_errors_and_the_first_one_wins() {
    let a = f32s(&[1.0, 2.0, 3.0]);
    let short = f32s(&[1.0, 2.0]);
    let ints = Array::from_vec(vec![1i32, 2, 3], &[3]).unwrap();
    assert!((&a + &short).unwrap_err().is_shape_mismatch());
    assert!((&a * &ints).unwrap_err().is_dtype_mismatch());
    // 0.5 is not an i32: an error, not a silently truncated 0.
    assert!((&ints * 0.5).unwrap_err().is_dtype_mismatch());
    // The first error in a chain is the one returned.
    let err = (&a + &short + &ints).unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
    assert!((&Array::absent() + &a).unwrap_err().is_hole());
    assert!((-&Array::placeholder()).unwrap_err().is_hole());
    // Integer operators follow jnp: `/` divides truly, `%` is Python's.
    let b = Array::from_vec(vec![2i32, -2, 2], &[3]).unwrap();
    assert_eq!(
        (&ints / &b).unwrap().to_vec::<f32>().unwrap(),
        vec![0.5, -1.0, 1.5]
    );
    assert_eq!(
        (&ints % &b).unwrap().to_vec::<i32>().unwrap(),
        vec![1, 0, 1]
    );
    let zero = Array::zeros(&[3], DType::I32).unwrap();
    assert!((&ints % &zero).is_err());
}

#[test]
fn operators_work_under_grad_and_vmap() {
    // d/dx (3x^2 + 1/x) = 6x - 1/x^2
    let f = |x: &Array| ((x * x)? * 3.0 + (1.0 / x)?)?.sum_all();
    let g = grad(f)(&Array::scalar(2.0f64).unwrap()).unwrap();
    assert_eq!(g.to_scalar::<f64>().unwrap(), 12.0 - 0.25);
    let xs = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let shift = f32s(&[10.0, 20.0]);
    let ys = vmap(|x: &Array| x - &shift)(&xs).unwrap();
    assert_eq!(ys.to_vec::<f32>().unwrap(), vec![-9.0, -18.0, -7.0, -16.0]);
}
