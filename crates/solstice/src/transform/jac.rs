//! Jacobians and Hessians, built from `vmap` over `jvp` and `vjp`.

use crate::array::Array;
use crate::error::{Error, Result};

use super::{grad::vjp, jvp::jvp, vmap::vmap};

/// Rows of the identity, shaped as a batch of arrays of `shape`.
fn basis(shape: &[usize], dtype: crate::DType) -> Result<Array> {
    let n: usize = shape.iter().product();
    let mut full = vec![n];
    full.extend_from_slice(shape);
    let eye = Array::arange(n, crate::DType::I64)?
        .expand_dims(1)?
        .eq(&Array::arange(n, crate::DType::I64)?)?
        .astype(dtype)?;
    eye.reshape(&full)
}

fn check_float(api: &str, x: &Array) -> Result<()> {
    if x.is_hole() || !x.dtype().is_float() {
        return Err(Error::dtype(format!(
            "{api} differentiates float arrays but got {}",
            x.short_description()
        )));
    }
    Ok(())
}

/// The Jacobian by forward mode, one `jvp` per input element batched by
/// `vmap`: `jax.jacfwd`. Its shape is `f(x).shape ++ x.shape`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, jacfwd};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let j = jacfwd(|x: &Array| x.square())(&x)?;
/// assert_eq!(j.to_vec::<f64>()?, vec![2.0, 0.0, 0.0, 4.0]);
/// # Ok(()) }
/// ```
pub fn jacfwd<F>(f: F) -> impl Fn(&Array) -> Result<Array>
where
    F: Fn(&Array) -> Result<Array>,
{
    move |x: &Array| {
        check_float("jacfwd", x)?;
        let directions = basis(x.shape(), x.dtype())?;
        let columns = vmap(|v: &Array| Ok(jvp(&f, x, v)?.1))(&directions)?;
        // `columns` is `[n, out...]`; the Jacobian is `[out..., in...]`.
        let n = x.elem_count();
        let out_shape = columns.shape()[1..].to_vec();
        let m: usize = out_shape.iter().product();
        let mut shape = out_shape;
        shape.extend_from_slice(x.shape());
        columns.reshape(&[n, m])?.t()?.reshape(&shape)
    }
}

/// The Jacobian by reverse mode, one pullback per output element batched
/// by `vmap`: `jax.jacrev`. Its shape is `f(x).shape ++ x.shape`.
pub fn jacrev<F>(f: F) -> impl Fn(&Array) -> Result<Array>
where
    F: Fn(&Array) -> Result<Array>,
{
    move |x: &Array| {
        check_float("jacrev", x)?;
        let (y, pullback) = vjp(&f, x)?;
        let directions = basis(y.shape(), y.dtype())?;
        let rows = vmap(|ct: &Array| pullback.call(ct))(&directions)?;
        let mut shape = y.shape().to_vec();
        shape.extend_from_slice(x.shape());
        rows.reshape(&shape)
    }
}

/// The Hessian of a scalar function, forward over reverse:
/// `jax.hessian`. Its shape is `x.shape ++ x.shape`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, hessian};
/// # fn main() -> solstice::Result<()> {
/// // f(x) = x0^2 x1 has Hessian [[2 x1, 2 x0], [2 x0, 0]].
/// let f = |x: &Array| x.square()?.mul(&x.take(&Array::scalar(1u32)?, 0)?)?.take(&Array::scalar(0u32)?, 0);
/// let h = hessian(f)(&Array::from_vec(vec![3.0f64, 5.0], &[2])?)?;
/// assert_eq!(h.to_vec::<f64>()?, vec![10.0, 6.0, 6.0, 0.0]);
/// # Ok(()) }
/// ```
pub fn hessian<F>(f: F) -> impl Fn(&Array) -> Result<Array>
where
    F: Fn(&Array) -> Result<Array>,
{
    jacfwd(jacrev(f))
}
