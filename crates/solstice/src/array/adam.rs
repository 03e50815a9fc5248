//! One Adam(W) step of a leaf: the fused primitive (`Prim::AdamUpdate`) and
//! the same step composed of elementwise operations, which its derivative
//! rules differentiate and which runs where the kernel does not apply.

use super::prim::Prim;
use super::{Array, DType, stack};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

/// The scalars of one step, 0-d arrays in the leaf's dtype: the moments'
/// weights `a1 = 1 - b1`, `b1`, `a2 = 1 - b2`, `b2`, the bias corrections
/// `c1`, `c2`, `eps`, `eps_root`, and the final scale `s` (minus the
/// learning rate, or 1).
pub(crate) type AdamScalars = [Array; 9];

/// The new first and second moments and the update of one leaf:
/// `m = a1 g + b1 mu`, `v = a2 g² + b2 nu` and
/// `s (m / c1 / (sqrt(v / c2 + eps_root) + eps) + wd p)`, with `p` and `wd`
/// left out when `decay` is `None`. One pass over the leaf for `f32` and
/// `f64`; the same operations one by one otherwise.
pub(crate) fn adam_update(
    g: &Array,
    mu: &Array,
    nu: &Array,
    decay: Option<(&Array, &Array)>,
    scalars: &AdamScalars,
) -> Result<(Array, Array, Array)> {
    let dtype = g.dtype();
    let zero = Array::scalar_of(0.0, dtype)?;
    let (p, wd) = decay.unwrap_or((&zero, &zero));
    let mut args: Vec<&Array> = vec![g, mu, nu, p];
    args.extend(&scalars[..8]);
    args.extend([wd, &scalars[8]]);
    let fused = matches!(dtype, DType::F32 | DType::F64) && args.iter().all(|a| a.dtype() == dtype);
    let out = if fused {
        bind(Prim::AdamUpdate, &args)?
    } else {
        let owned: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
        adam_reference(&owned)?
    };
    // Views of the one output buffer (taking a run of whole rows along the
    // first axis copies nothing).
    let part = |k: i64| -> Result<Array> {
        let index = Array::from_vec(vec![k], &[1])?;
        out.take(&index, 0)?.reshape(&out.shape()[1..])
    };
    Ok((part(0)?, part(1)?, part(2)?))
}

/// `Prim::AdamUpdate` composed of elementwise operations, stacked as the
/// primitive stacks its outputs.
pub(crate) fn adam_reference(x: &[Array]) -> Result<Array> {
    let [g, mu, nu, p, a1, b1, a2, b2, c1, c2, eps, eps_root, wd, s] = x else {
        return Err(Error::internal(format!(
            "adam_update takes 14 inputs but got {}",
            x.len()
        )));
    };
    let m = a1.mul(g)?.add(&b1.mul(mu)?)?;
    let v = a2.mul(&g.mul(g)?)?.add(&b2.mul(nu)?)?;
    let root = v.div(c2)?.add(eps_root)?.sqrt()?.add(eps)?;
    let u = s.mul(&m.div(c1)?.div(&root)?.add(&wd.mul(p)?)?)?;
    let mut shape: Vec<usize> = Vec::new();
    for a in x {
        shape = super::broadcast_shapes(&shape, a.shape())
            .ok_or_else(|| Error::shape("adam_update got inputs that do not broadcast"))?;
    }
    stack(
        &[
            &m.broadcast_to(&shape)?,
            &v.broadcast_to(&shape)?,
            &u.broadcast_to(&shape)?,
        ],
        0,
    )
}
