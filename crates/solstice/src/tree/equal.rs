//! `tree_equal` and `tree_allclose`: comparing whole trees.

use super::{Tree, tree_slots};
use crate::array::{Array, DType};
use crate::error::Result;

/// Whether both trees have the same structure (shapes and dtypes included)
/// and exactly equal arrays. Equinox's `tree_equal`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_equal};
/// # fn main() -> solstice::Result<()> {
/// let a = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let b = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// assert!(tree_equal(&a, &b)?);
/// assert!(!tree_equal(&a, &(a.1.clone(), a.0.clone()))?);
/// # Ok(()) }
/// ```
pub fn tree_equal<T: Tree>(a: &T, b: &T) -> Result<bool> {
    tree_allclose(a, b, 0.0, 0.0)
}

/// Whether both trees have the same structure and every pair of arrays
/// satisfies `|a - b| <= atol + rtol * |b|` elementwise.
pub fn tree_allclose<T: Tree>(a: &T, b: &T, rtol: f64, atol: f64) -> Result<bool> {
    if a.structure() != b.structure() {
        return Ok(false);
    }
    for ((_, x), (_, y)) in tree_slots(a).iter().zip(tree_slots(b).iter()) {
        if x.is_hole() || x.is(y) {
            continue;
        }
        if !arrays_close(x, y, rtol, atol)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn arrays_close(x: &Array, y: &Array, rtol: f64, atol: f64) -> Result<bool> {
    let (xs, ys) = if x.dtype() == DType::I64 || x.dtype() == DType::U32 {
        // Integers beyond 2^53 do not survive f64; compare them exactly.
        let (xs, ys) = (x.to_vec::<i64>()?, y.to_vec::<i64>()?);
        return Ok(xs == ys);
    } else {
        (x.to_vec::<f64>()?, y.to_vec::<f64>()?)
    };
    Ok(xs.iter().zip(&ys).all(|(p, q)| {
        if p.is_nan() || q.is_nan() {
            p.is_nan() && q.is_nan()
        } else {
            (p - q).abs() <= atol + rtol * q.abs()
        }
    }))
}
