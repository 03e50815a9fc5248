//! Mistakes give errors that say what was wrong and where; none panics.
//! The first words of each message are part of the contract.

use solstice::nn::{Embedding, Linear};
use solstice::random::Key;
use solstice::tree::tree_map;
use solstice::{Array, DType, filter_grad, grad, vmap};

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn mismatched_shapes_name_the_op_and_both_shapes() {
    let a = f32s(&[1.0; 6], &[2, 3]);
    let b = f32s(&[1.0; 4], &[4]);
    let err = a.mul(&b).unwrap_err();
    assert!(err.is_shape_mismatch());
    assert_eq!(
        err.to_string(),
        "mul got shapes [2, 3] and [4], which do not broadcast"
    );
    let err = a.matmul(&a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "matmul got shapes [2, 3] and [2, 3], whose inner dimensions differ"
    );
    let err = a.reshape(&[4]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("reshape cannot turn shape [2, 3] into [4]")
    );
}

#[test]
fn mismatched_dtypes_suggest_astype() {
    let a = f32s(&[1.0], &[1]);
    let b = Array::from_vec(vec![1.0f64], &[1]).unwrap();
    let err = a.add(&b).unwrap_err();
    assert!(err.is_dtype_mismatch());
    assert!(
        err.to_string().contains("convert one with `astype`"),
        "{err}"
    );
}

#[test]
fn absent_values_used_as_numbers_say_what_they_are() {
    let err = Array::absent().exp().unwrap_err();
    assert!(err.is_hole());
    assert!(
        err.to_string()
            .starts_with("exp got an absent value (None)"),
        "{err}"
    );
    let err = Array::placeholder().to_vec::<f32>().unwrap_err();
    assert!(err.to_string().contains("call `Shared::call()`"), "{err}");
}

#[test]
fn errors_inside_a_tree_map_carry_the_path() {
    let linear = Linear::new(2, 2, Key::new(0)).unwrap();
    let err = tree_map(&linear, |_, a| a.reshape(&[3])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("at .weight: reshape cannot turn"),
        "{err}"
    );
}

#[test]
fn layers_reject_inputs_of_the_wrong_shape() {
    let linear = Linear::new(3, 2, Key::new(0)).unwrap();
    let err = linear.forward(&f32s(&[1.0; 2], &[2])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Linear::forward expected an input of shape [3] but got [2]")
    );
    let embedding = Embedding::new(4, 2, Key::new(0)).unwrap();
    let err = embedding
        .forward(&Array::scalar(4u32).unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "in take: take got index 4, out of range for axis 0 of size 4"
    );
    let err = embedding
        .forward(&Array::from_vec(vec![1u32, 2], &[2]).unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("use `vmap(|t| embedding.forward(t))`"),
        "{err}"
    );
}

#[test]
fn grad_needs_a_scalar_output() {
    let err = grad(|x: &Array| x.exp())(&f32s(&[1.0, 2.0], &[2])).unwrap_err();
    assert!(err.is_transform());
    assert!(err.to_string().starts_with(
        "grad needs the function to return a float scalar (shape []) but it returned f32[2]"
    ));
    let err = grad(|x: &Array| x.sum_all())(&Array::scalar(1i64).unwrap()).unwrap_err();
    assert!(err.is_dtype_mismatch());
}

#[test]
fn vmap_rejects_unequal_batch_sizes_naming_both_paths() {
    let a = f32s(&[1.0; 3], &[3]);
    let b = f32s(&[1.0; 4], &[4]);
    let err = vmap(|p: &(Array, Array)| p.0.add(&p.1))(&(a, b)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vmap got inputs of different batch sizes: 3 at [0] and 4 at [1]"
    );
}

#[test]
fn tracers_used_after_their_transformation_are_caught() {
    let leaked = std::cell::RefCell::new(None);
    let x = f32s(&[1.0, 2.0], &[2]);
    vmap(|t: &Array| {
        *leaked.borrow_mut() = Some(t.clone());
        t.exp()
    })(&x)
    .unwrap();
    let leaked = leaked.into_inner().unwrap();
    let err = leaked.exp().unwrap_err();
    assert!(err.is_transform());
    assert!(
        err.to_string()
            .contains("was used after its transformation returned"),
        "{err}"
    );
}

#[test]
fn values_cannot_be_read_inside_vmap() {
    let x = f32s(&[1.0, 2.0], &[2]);
    let err = vmap(|t: &Array| {
        t.to_vec::<f32>()?;
        Ok(t.clone())
    })(&x)
    .unwrap_err();
    assert!(err.to_string().contains("traced by `vmap`"), "{err}");
}

#[test]
fn a_failing_function_leaves_no_transformation_behind() {
    let model = f32s(&[1.0], &[1]);
    let err = filter_grad(|m: &Array, _: &()| m.reshape(&[2]))(&model, &()).unwrap_err();
    assert!(err.is_shape_mismatch());
    // The next transformation starts from a clean stack.
    let g = grad(|x: &Array| x.square())(&Array::scalar(3.0f32).unwrap()).unwrap();
    assert_eq!(g.to_scalar::<f32>().unwrap(), 6.0);
    assert_eq!(
        Array::zeros(&[2], DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0, 0.0]
    );
}

#[test]
fn edge_cases_give_errors_not_panics() {
    let ints = |v: Vec<i64>| Array::from_vec(v.clone(), &[v.len()]).unwrap();
    // Integer `div` is true division (as `jnp.divide`); the integer
    // divisions refuse a zero divisor.
    let quotient = ints(vec![1, 2]).div(&ints(vec![1, 0])).unwrap();
    assert_eq!(quotient.to_vec::<f64>().unwrap(), vec![1.0, f64::INFINITY]);
    let err = ints(vec![1, 2])
        .floor_divide(&ints(vec![1, 0]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "in div: div got an integer division by zero"
    );
    let err = ints(vec![1, 2])
        .reshape(&[1, 2])
        .unwrap()
        .matmul(&ints(vec![1, 2]).reshape(&[2, 1]).unwrap());
    assert!(err.unwrap_err().is_dtype_mismatch());
    let err = Array::zeros(&[usize::MAX / 2, 4], DType::F32).unwrap_err();
    assert!(err.to_string().contains("whose size overflows"), "{err}");
    let err = solstice::random::normal(Key::new(0), &[usize::MAX, 2], DType::F32).unwrap_err();
    assert!(err.to_string().contains("whose size overflows"), "{err}");
    // Empty batches and empty indices are fine.
    let linear = Linear::new(3, 2, Key::new(0)).unwrap();
    let none = Array::zeros(&[0, 3], DType::F32).unwrap();
    assert_eq!(
        vmap(|x: &Array| linear.forward(x))(&none).unwrap().shape(),
        &[0, 2]
    );
    let no_rows = Array::ones(&[3, 2], DType::F32)
        .unwrap()
        .take(&Array::from_vec(Vec::<u32>::new(), &[0]).unwrap(), 0)
        .unwrap();
    assert_eq!(no_rows.shape(), &[0, 2]);
}
