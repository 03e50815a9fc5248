//! VJP rules: how each primitive sends a cotangent back to its inputs.
//!
//! Rules are written in `Array` operations, never on candle directly, so the
//! backward pass is itself traced by any outer `grad` (giving `grad(grad(f))`)
//! or `vmap` (giving per-example gradients).

use crate::array::Array;
use crate::array::prim::{CmpOp, Prim};
use crate::error::{Error, Result};

/// Cotangents of `prim`'s inputs, given its inputs, output and the output's
/// cotangent `ct`. `None` marks an input that gets no cotangent (indices,
/// conditions).
pub(crate) fn apply(
    prim: &Prim,
    inputs: &[Array],
    output: &Array,
    ct: &Array,
) -> Result<Vec<Option<Array>>> {
    let mut grads = rule(prim, inputs, output, ct)?;
    if prim.is_broadcasting() {
        // A batching rule may hand an elementwise kernel inputs that
        // broadcast against each other (a batched `[B, n]` and a shared
        // `[n]`); each input's cotangent is summed back to its own shape.
        for (g, x) in grads.iter_mut().zip(inputs) {
            if let Some(g) = g
                && g.shape() != x.shape()
            {
                *g = sum_to_shape(g, x.shape())?;
            }
        }
    }
    Ok(grads)
}

fn rule(prim: &Prim, inputs: &[Array], output: &Array, ct: &Array) -> Result<Vec<Option<Array>>> {
    let x = &inputs[0];
    let one = |a: Array| Ok(vec![Some(a)]);
    match prim {
        Prim::Neg => one(ct.neg()?),
        Prim::Exp => one(ct.mul(output)?),
        Prim::Log => one(ct.div(x)?),
        Prim::Tanh => {
            let d = output.square()?.neg()?.add_scalar(1.0)?;
            one(ct.mul(&d)?)
        }
        Prim::Sqrt => one(ct.div(&output.mul_scalar(2.0)?)?),
        Prim::Sin => one(ct.mul(&x.cos()?)?),
        Prim::Cos => one(ct.mul(&x.sin()?)?.neg()?),
        Prim::Abs => one(ct.mul(&abs_slope(x)?)?),
        Prim::Erf => {
            // d/dx erf(x) = 2 / sqrt(pi) * exp(-x^2)
            let d = x
                .square()?
                .neg()?
                .exp()?
                .mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?;
            one(ct.mul(&d)?)
        }
        Prim::Add => Ok(vec![Some(ct.clone()), Some(ct.clone())]),
        Prim::Sub => Ok(vec![Some(ct.clone()), Some(ct.neg()?)]),
        Prim::Mul => Ok(vec![Some(ct.mul(&inputs[1])?), Some(ct.mul(x)?)]),
        Prim::Div => {
            let b = &inputs[1];
            Ok(vec![Some(ct.div(b)?), Some(ct.mul(output)?.div(b)?.neg()?)])
        }
        Prim::Maximum | Prim::Minimum => {
            // As JAX does, ties share the cotangent equally.
            let (a, b) = (x, &inputs[1]);
            let wa = a.eq(output)?.astype(a.dtype())?;
            let wb = b.eq(output)?.astype(b.dtype())?;
            let total = wa.add(&wb)?;
            Ok(vec![
                Some(ct.mul(&wa)?.div(&total)?),
                Some(ct.mul(&wb)?.div(&total)?),
            ])
        }
        Prim::Compare(_)
        | Prim::Sign
        | Prim::StopGradient
        | Prim::CheckIndices(_)
        | Prim::Random(_)
        | Prim::Round(_)
        | Prim::ArgExtreme { .. }
        | Prim::Argsort { .. } => Ok(vec![None; inputs.len()]),
        Prim::Select => {
            let cond = x;
            let zero = Array::zeros(&[], ct.dtype())?;
            Ok(vec![
                None,
                Some(cond.select(ct, &zero)?),
                Some(cond.select(&zero, ct)?),
            ])
        }
        Prim::Reshape(_) => one(ct.reshape(x.shape())?),
        Prim::Permute(perm) => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            one(ct.transpose(&inverse)?)
        }
        Prim::BroadcastTo(_) => one(sum_to_shape(ct, x.shape())?),
        Prim::Convert(_) => {
            if x.dtype().is_float() {
                one(ct.astype(x.dtype())?)
            } else {
                Ok(vec![None])
            }
        }
        Prim::Sum(axes) => one(expand_reduced(ct, axes, x.shape())?),
        Prim::Max(axes) | Prim::Min(axes) => {
            // As JAX does, equal maxima (minima) share the cotangent equally.
            let out = expand_reduced(output, axes, x.shape())?;
            let hits = x.compare(&out, CmpOp::Eq)?.astype(x.dtype())?;
            let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let count = expand_reduced(&hits.sum(&signed)?, axes, x.shape())?;
            let ct = expand_reduced(ct, axes, x.shape())?;
            one(ct.mul(&hits)?.div(&count)?)
        }
        Prim::MatMul => {
            let b = &inputs[1];
            Ok(vec![
                Some(ct.matmul(&swap_last_two(b)?)?),
                Some(swap_last_two(x)?.matmul(ct)?),
            ])
        }
        Prim::Take(axis) => {
            let zeros = Array::zeros(x.shape(), x.dtype())?;
            Ok(vec![
                Some(zeros.index_add(&inputs[1], ct, *axis as isize)?),
                None,
            ])
        }
        Prim::Custom(rule) => {
            let g = (rule.backward)(x, output, ct)?;
            if g.is_hole() || g.shape() != x.shape() || g.dtype() != x.dtype() {
                return Err(Error::shape(format!(
                    "custom_vjp's backward returned {} for an input {}; it must return the \
                     input's cotangent, of the input's shape and dtype",
                    g.short_description(),
                    x.short_description()
                )));
            }
            one(g)
        }
        Prim::Softmax
        | Prim::LogSoftmax
        | Prim::Logsumexp
        | Prim::SoftmaxCrossEntropy
        | Prim::SoftmaxCrossEntropyGrad
        | Prim::Standardize { .. }
        | Prim::GeluTanh
        | Prim::GeluTanhGrad => super::fused_rules::vjp(prim, inputs, output, ct),
        Prim::Log1p => one(ct.div(&x.add_scalar(1.0)?)?),
        Prim::Expm1 => one(ct.mul(&output.add_scalar(1.0)?)?),
        Prim::Pow => {
            let (dx, dy) = pow_partials(x, &inputs[1], output)?;
            Ok(vec![Some(ct.mul(&dx)?), Some(ct.mul(&dy)?)])
        }
        Prim::Rem => Ok(vec![
            Some(ct.clone()),
            Some(ct.mul(&rem_slope(x, &inputs[1])?)?),
        ]),
        Prim::Cumsum { axis, reverse } => one(crate::transform::trace::bind(
            Prim::Cumsum {
                axis: *axis,
                reverse: !reverse,
            },
            &[ct],
        )?),
        Prim::Concat(axis) => {
            let mut start = 0;
            let mut grads = Vec::with_capacity(inputs.len());
            for input in inputs {
                let len = input.shape()[*axis];
                grads.push(Some(ct.slice_axis(*axis as isize, start..start + len)?));
                start += len;
            }
            Ok(grads)
        }
        Prim::IndexAdd(axis) => Ok(vec![
            Some(ct.clone()),
            None,
            Some(ct.take(&inputs[1], *axis as isize)?),
        ]),
    }
}

/// The partial derivatives of `x ^ y` for a float `y`, as JAX defines
/// them: `y x^(y-1)` and `log(x) x^y` (0 where `x == 0`).
pub(crate) fn pow_partials(x: &Array, y: &Array, out: &Array) -> Result<(Array, Array)> {
    let dx = y.mul(&x.pow(&y.add_scalar(-1.0)?)?)?;
    let x_is_zero = x.eq(&x.full_like(0.0)?)?;
    let safe_x = x_is_zero.select(&x.full_like(1.0)?, x)?;
    let dy = safe_x.log()?.mul(out)?;
    Ok((dx, dy))
}

/// `d rem(x, y) / dy`: `-trunc(x / y)`, as JAX writes it
/// (`-sign(x / y) * floor(|x / y|)`).
pub(crate) fn rem_slope(x: &Array, y: &Array) -> Result<Array> {
    let q = x.div(y)?;
    q.sign()?.mul(&q.abs()?.floor()?)?.neg()
}

/// The derivative of `abs`: 1 for `x >= 0` (so 1 at 0, as in JAX), else -1.
pub(crate) fn abs_slope(x: &Array) -> Result<Array> {
    let nonnegative = x.compare(&x.full_like(0.0)?, CmpOp::Ge)?;
    nonnegative.select(&x.full_like(1.0)?, &x.full_like(-1.0)?)
}

fn swap_last_two(x: &Array) -> Result<Array> {
    let r = x.rank();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 1, r - 2);
    x.transpose(&perm)
}

/// Undoes numpy broadcasting: sums `ct` down to `shape`.
pub(crate) fn sum_to_shape(ct: &Array, shape: &[usize]) -> Result<Array> {
    let extra = ct.rank() - shape.len();
    let mut axes: Vec<isize> = (0..extra as isize).collect();
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && ct.shape()[extra + i] != 1 {
            axes.push((extra + i) as isize);
        }
    }
    ct.sum(&axes)?.reshape(shape)
}

/// Puts back the reduced `axes` (as size 1) and broadcasts to `shape`.
fn expand_reduced(x: &Array, axes: &[usize], shape: &[usize]) -> Result<Array> {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    x.reshape(&kept)?.broadcast_to(shape)
}
