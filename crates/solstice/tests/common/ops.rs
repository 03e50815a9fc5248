//! The table of differentiable operations that the derivative tests check
//! against finite differences, in reverse mode (`transforms.rs`) and
//! forward mode (`forward.rs`). Each maps an `f64[2, 3]` input to an array.

use solstice::{Array, CmpOp, DType, Result};

pub type ArrayFn = dyn Fn(&Array) -> Result<Array>;

/// The input every op of [`differentiable_ops`] takes.
pub const X: [f64; 6] = [0.3, -0.8, 1.1, 0.45, -0.2, 0.9];
pub const SHAPE: [usize; 2] = [2, 3];

fn f64s(data: &[f64], shape: &[usize]) -> Array {
    Array::from_vec(data.to_vec(), shape).unwrap()
}

/// The finite-difference step and relative tolerance for an op: `astype`
/// rounds through f32, which swamps a tiny step; it is linear, so a large
/// step is exact up to that rounding.
pub fn step_and_tolerance(name: &str) -> (f64, f64) {
    if name == "astype" {
        (1e-2, 1e-4)
    } else {
        (1e-6, 1e-6)
    }
}

/// Every differentiable op, alone or in a small composition that keeps it
/// away from points where it is not differentiable.
pub fn differentiable_ops() -> Vec<(&'static str, Box<ArrayFn>)> {
    let w = f64s(&[0.5, -1.0, 2.0, 0.25, 1.5, -0.75], &[3, 2]);
    let other = f64s(&[1.2, 0.7, -0.4, 2.0, 0.9, 1.3], &[2, 3]);
    let other2 = other.clone();
    let other3 = other.clone();
    vec![
        ("neg", Box::new(|x| x.neg())),
        ("exp", Box::new(|x| x.exp())),
        ("log", Box::new(|x| x.square()?.add_scalar(1.0)?.log())),
        ("tanh", Box::new(|x| x.tanh())),
        ("sqrt", Box::new(|x| x.square()?.add_scalar(0.5)?.sqrt())),
        ("sin", Box::new(|x| x.sin())),
        ("cos", Box::new(|x| x.cos())),
        ("abs", Box::new(|x| x.abs())),
        ("erf", Box::new(|x| x.erf())),
        ("sigmoid", Box::new(|x| x.sigmoid())),
        ("relu", Box::new(|x| x.relu())),
        ("add", Box::new(move |x| x.add(&other))),
        ("sub", Box::new(move |x| other2.sub(&x.square()?))),
        ("mul", Box::new(|x| x.mul(&x.sin()?))),
        (
            "div",
            Box::new(move |x| other3.div(&x.square()?.add_scalar(1.0)?)),
        ),
        (
            "div by cos",
            Box::new(|x| x.cos()?.div(&x.square()?.add_scalar(1.0)?)),
        ),
        (
            "maximum",
            Box::new(|x| x.maximum(&x.mul_scalar(0.5)?.add_scalar(0.1)?)),
        ),
        ("minimum", Box::new(|x| x.minimum(&x.mul_scalar(-0.5)?))),
        (
            "broadcast row",
            Box::new(|x| x.sum(&[0])?.broadcast_to(&[4, 3])),
        ),
        ("reshape", Box::new(|x| x.reshape(&[3, 2]))),
        ("transpose", Box::new(|x| x.t())),
        ("sum axis", Box::new(|x| x.sum(&[1]))),
        ("mean", Box::new(|x| x.mean(&[0]))),
        ("max", Box::new(|x| x.max(&[1]))),
        ("matmul", Box::new(move |x| x.matmul(&w))),
        ("matmul self", Box::new(|x| x.matmul(&x.t()?))),
        ("matmul vector", Box::new(|x| x.matmul(&x.sum(&[0])?))),
        ("softmax", Box::new(|x| x.softmax(-1))),
        ("log_softmax", Box::new(|x| x.log_softmax(0))),
        (
            "take",
            Box::new(|x| x.take(&Array::from_vec(vec![2u32, 0, 2], &[3])?, 1)),
        ),
        (
            "index_add",
            Box::new(|x| x.index_add(&Array::from_vec(vec![1u32, 1], &[2])?, &x.square()?, 0)),
        ),
        (
            "select",
            Box::new(|x| {
                x.compare(&Array::scalar(0.0f64)?, CmpOp::Gt)?
                    .select(x, &x.square()?)
            }),
        ),
        (
            "astype",
            Box::new(|x| x.astype(DType::F32)?.astype(DType::F64)),
        ),
        // The fused row-wise primitives.
        ("logsumexp", Box::new(|x| x.logsumexp(-1))),
        (
            "softmax_cross_entropy",
            Box::new(|x| x.softmax_cross_entropy(&Array::from_vec(vec![2i32, 0], &[2])?)),
        ),
        ("standardize", Box::new(|x| x.standardize(1e-5))),
        (
            "standardize rows",
            Box::new(|x| solstice::vmap(|r: &Array| r.standardize(1e-5))(x)),
        ),
    ]
}
