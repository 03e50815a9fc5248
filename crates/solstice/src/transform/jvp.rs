//! Forward mode: `jvp`, and each primitive's JVP rule.
//!
//! A `jvp` frame carries a tangent beside every traced value. Each rule
//! computes the output's tangent from the inputs' primals and tangents, in
//! `Array` operations one level down, so `jvp` nests with `grad` and `vmap`
//! in any order (a Hessian-vector product is `jvp` of `grad`).

use crate::array::Array;
use crate::array::prim::{CmpOp, Prim};
use crate::error::{Error, Result};
use crate::tree::{Tree, tree_map, tree_slots, with_slots};

use super::trace::{FrameKind, bind, check_output, make_jvp_tracer, push_frame, unwrap_jvp};

/// The tangent of `prim`'s output given its inputs' primals and tangents
/// (`None` is a zero tangent). `None` means a zero output tangent.
pub(crate) fn rule(
    prim: &Prim,
    x: &[Array],
    t: &[Option<Array>],
    out: &Array,
) -> Result<Option<Array>> {
    // The tangent of input `i`, or zeros of its shape where it is `None`.
    let tangent_or_zeros = |i: usize| -> Result<Array> {
        match &t[i] {
            Some(t) => Ok(t.clone()),
            None => Array::zeros(x[i].shape(), x[i].dtype()),
        }
    };
    let scaled =
        |d: Array| -> Result<Option<Array>> { t[0].as_ref().map(|t| t.mul(&d)).transpose() };
    // A linear operation: the tangent goes through the same primitive.
    let linear =
        || -> Result<Option<Array>> { t[0].as_ref().map(|t| bind(prim.clone(), &[t])).transpose() };
    match prim {
        Prim::Neg => t[0].as_ref().map(|t| t.neg()).transpose(),
        Prim::Exp => scaled(out.clone()),
        Prim::Log => t[0].as_ref().map(|t| t.div(&x[0])).transpose(),
        Prim::Tanh => scaled(out.square()?.neg()?.add_scalar(1.0)?),
        Prim::Sqrt => t[0]
            .as_ref()
            .map(|t| t.div(&out.mul_scalar(2.0)?))
            .transpose(),
        Prim::Sin => scaled(x[0].cos()?),
        Prim::Cos => scaled(x[0].sin()?.neg()?),
        Prim::Abs => scaled(super::vjp_rules::abs_slope(&x[0])?),
        Prim::Erf => scaled(
            x[0].square()?
                .neg()?
                .exp()?
                .mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?,
        ),
        Prim::Sign
        | Prim::Compare(_)
        | Prim::StopGradient
        | Prim::CheckIndices(_)
        | Prim::Random(_)
        | Prim::Round(_)
        | Prim::ArgExtreme { .. }
        | Prim::Argsort { .. } => Ok(None),
        Prim::Add | Prim::Sub => {
            let b = t[1].as_ref().map(|b| {
                if *prim == Prim::Sub {
                    b.neg()
                } else {
                    Ok(b.clone())
                }
            });
            match (&t[0], b.transpose()?) {
                (Some(a), Some(b)) => Ok(Some(a.add(&b)?)),
                (Some(a), None) => Ok(Some(a.broadcast_to(out.shape())?)),
                (None, Some(b)) => Ok(Some(b.broadcast_to(out.shape())?)),
                (None, None) => Ok(None),
            }
        }
        Prim::Mul => sum_some([
            t[0].as_ref().map(|ta| ta.mul(&x[1])).transpose()?,
            t[1].as_ref().map(|tb| x[0].mul(tb)).transpose()?,
        ]),
        Prim::Div => sum_some([
            t[0].as_ref().map(|ta| ta.div(&x[1])).transpose()?,
            t[1].as_ref()
                .map(|tb| tb.mul(out)?.div(&x[1])?.neg())
                .transpose()?,
        ]),
        Prim::Maximum | Prim::Minimum => {
            // As JAX does, ties share the tangent equally.
            let wa = x[0].eq(out)?.astype(out.dtype())?;
            let wb = x[1].eq(out)?.astype(out.dtype())?;
            let total = wa.add(&wb)?;
            sum_some([
                t[0].as_ref()
                    .map(|ta| ta.mul(&wa)?.div(&total))
                    .transpose()?,
                t[1].as_ref()
                    .map(|tb| tb.mul(&wb)?.div(&total))
                    .transpose()?,
            ])
        }
        Prim::Select => {
            if t[1].is_none() && t[2].is_none() {
                return Ok(None);
            }
            Ok(Some(
                x[0].select(&tangent_or_zeros(1)?, &tangent_or_zeros(2)?)?,
            ))
        }
        Prim::Reshape(_)
        | Prim::Permute(_)
        | Prim::BroadcastTo(_)
        | Prim::Sum(_)
        | Prim::Cumsum { .. } => linear(),
        Prim::Log1p => t[0]
            .as_ref()
            .map(|t| t.div(&x[0].add_scalar(1.0)?))
            .transpose(),
        Prim::Expm1 => scaled(out.add_scalar(1.0)?),
        Prim::Pow => {
            let (dx, dy) = super::vjp_rules::pow_partials(&x[0], &x[1], out)?;
            sum_some([
                t[0].as_ref().map(|ta| ta.mul(&dx)).transpose()?,
                t[1].as_ref().map(|tb| tb.mul(&dy)).transpose()?,
            ])
        }
        Prim::Rem => sum_some([
            t[0].as_ref()
                .map(|ta| ta.broadcast_to(out.shape()))
                .transpose()?,
            t[1].as_ref()
                .map(|tb| tb.mul(&super::vjp_rules::rem_slope(&x[0], &x[1])?))
                .transpose()?,
        ]),
        Prim::Concat(_) => {
            let parts = (0..x.len())
                .map(&tangent_or_zeros)
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Array> = parts.iter().collect();
            Ok(Some(bind(prim.clone(), &refs)?))
        }
        Prim::Convert(dtype) => {
            if dtype.is_float() {
                linear()
            } else {
                Ok(None)
            }
        }
        Prim::Max(axes) | Prim::Min(axes) => {
            let Some(tx) = &t[0] else { return Ok(None) };
            let mut kept = x[0].shape().to_vec();
            for &a in axes {
                kept[a] = 1;
            }
            let expanded = out.reshape(&kept)?.broadcast_to(x[0].shape())?;
            let hits = x[0].compare(&expanded, CmpOp::Eq)?.astype(out.dtype())?;
            let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            Ok(Some(tx.mul(&hits)?.sum(&signed)?.div(&hits.sum(&signed)?)?))
        }
        Prim::Custom(_) => Err(Error::transform(
            "jvp cannot differentiate a custom_vjp function: it defines only a reverse-mode \
             derivative; use grad or vjp",
        )),
        Prim::MatMul => sum_some([
            t[0].as_ref()
                .map(|ta| bind(Prim::MatMul, &[ta, &x[1]]))
                .transpose()?,
            t[1].as_ref()
                .map(|tb| bind(Prim::MatMul, &[&x[0], tb]))
                .transpose()?,
        ]),
        Prim::Take(_) => t[0]
            .as_ref()
            .map(|tx| bind(prim.clone(), &[tx, &x[1]]))
            .transpose(),
        Prim::Softmax
        | Prim::LogSoftmax
        | Prim::Logsumexp
        | Prim::SoftmaxCrossEntropy
        | Prim::SoftmaxCrossEntropyGrad
        | Prim::Standardize { .. }
        | Prim::GeluTanh
        | Prim::GeluTanhGrad => super::fused_rules::jvp(prim, x, t, out),
        Prim::IndexAdd(_) => {
            if t[0].is_none() && t[2].is_none() {
                return Ok(None);
            }
            Ok(Some(bind(
                prim.clone(),
                &[&tangent_or_zeros(0)?, &x[1], &tangent_or_zeros(2)?],
            )?))
        }
    }
}

/// The sum of the tangents that are not zero.
fn sum_some<const N: usize>(parts: [Option<Array>; N]) -> Result<Option<Array>> {
    let mut total: Option<Array> = None;
    for p in parts.into_iter().flatten() {
        total = Some(match total {
            Some(acc) => acc.add(&p)?,
            None => p,
        });
    }
    Ok(total)
}

/// `f(primals)` and its directional derivative along `tangents`:
/// `jax.jvp` over trees. `tangents` has the structure of `primals`, and a
/// tangent for every floating array (other slots are ignored).
///
/// # Examples
///
/// ```
/// use solstice::{Array, jvp};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let v = Array::from_vec(vec![1.0f64, 0.0], &[2])?;
/// let (y, dy) = jvp(|x: &Array| x.square(), &x, &v)?;
/// assert_eq!(y.to_vec::<f64>()?, vec![1.0, 4.0]);
/// assert_eq!(dy.to_vec::<f64>()?, vec![2.0, 0.0]);
/// # Ok(()) }
/// ```
pub fn jvp<I: Tree, O: Tree>(
    f: impl FnOnce(&I) -> Result<O>,
    primals: &I,
    tangents: &I,
) -> Result<(O, O)> {
    let slots: Vec<Array> = tree_slots(primals).into_iter().map(|(_, a)| a).collect();
    let tangent_slots = tree_slots(tangents);
    if tangent_slots.len() != slots.len() {
        return Err(Error::structure(format!(
            "jvp got primals and tangents of different structures:\n{}\nand\n{}",
            primals.structure(),
            tangents.structure()
        )));
    }
    let guard = push_frame(FrameKind::Jvp);
    let frame = guard.frame.clone();
    let mut traced = Vec::with_capacity(slots.len());
    for (p, (path, t)) in slots.iter().zip(&tangent_slots) {
        if p.is_hole() || !p.dtype().is_float() {
            traced.push(p.clone());
            continue;
        }
        if t.is_hole() || t.shape() != p.shape() || t.dtype() != p.dtype() {
            return Err(Error::shape(format!(
                "jvp needs a tangent of the primal's shape and dtype at {path}: \
                 the primal is {} but the tangent is {}",
                p.short_description(),
                t.short_description()
            )));
        }
        traced.push(make_jvp_tracer(&frame, p.clone(), Some(t.clone())));
    }
    let out = f(&with_slots(primals, &traced))?;
    drop(guard);
    let primal_out = tree_map(&out, |_, a| {
        check_output(&frame, a)?;
        Ok(unwrap_jvp(&frame, a).0)
    })?;
    let tangent_out = tree_map(&out, |_, a| {
        if a.is_hole() {
            return Ok(a.clone());
        }
        match unwrap_jvp(&frame, a) {
            (_, Some(t)) => Ok(t),
            (p, None) => Array::zeros(p.shape(), p.dtype()),
        }
    })?;
    Ok((primal_out, tangent_out))
}
