//! `custom_vjp`: a function with a derivative the user writes.

use std::sync::Arc;

use crate::array::Array;
use crate::array::prim::{CustomRule, Prim};
use crate::error::Result;

use super::trace::bind;

/// `f` with the reverse-mode derivative `backward(x, y, ct) -> ct_x`, where
/// `y = f(x)` and `ct` is `y`'s cotangent: `jax.custom_vjp`. `grad`, `vjp`
/// and `vmap` use `backward` instead of differentiating `f`; `jvp` reports
/// an error, as JAX does.
///
/// # Examples
///
/// Gradient clipping: the identity forwards, with its cotangent clipped.
///
/// ```
/// use solstice::{Array, custom_vjp, grad};
/// # fn main() -> solstice::Result<()> {
/// let clip = custom_vjp(
///     |x: &Array| Ok(x.clone()),
///     |_x: &Array, _y: &Array, ct: &Array| ct.maximum(&ct.full_like(-1.0)?)?.minimum(&ct.full_like(1.0)?),
/// );
/// let f = |x: &Array| clip(&x.mul_scalar(5.0)?)?.sum_all();
/// let g = grad(f)(&Array::from_vec(vec![1.0f32, 2.0], &[2])?)?;
/// assert_eq!(g.to_vec::<f32>()?, vec![5.0, 5.0]); // d/dx of 5x is 5, clipped after
/// # Ok(()) }
/// ```
pub fn custom_vjp<F, B>(forward: F, backward: B) -> impl Fn(&Array) -> Result<Array>
where
    F: Fn(&Array) -> Result<Array> + Send + Sync + 'static,
    B: Fn(&Array, &Array, &Array) -> Result<Array> + Send + Sync + 'static,
{
    let rule = CustomRule {
        forward: Arc::new(forward),
        backward: Arc::new(backward),
    };
    move |x: &Array| {
        x.check_value("custom_vjp")?;
        bind(Prim::Custom(rule.clone()), &[x])
    }
}
