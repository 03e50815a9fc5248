//! Batching, VJP and JVP rules of the fused row-wise primitives
//! (`Softmax`, `LogSoftmax`, `Logsumexp`, `SoftmaxCrossEntropy` and its
//! gradient, `Standardize`). Like every rule, they are written in `Array`
//! operations, so derivatives of derivatives and `vmap` of derivatives work.
//! The row-wise primitives work on the trailing axes, so batching moves the
//! batch axis to the front and binds the same primitive.

use crate::array::prim::Prim;
use crate::array::{Array, DType};
use crate::error::{Error, Result};

use super::batching::{batched_front, front};
use super::trace::bind;

/// The batching rule: the batch goes in front, the rows stay last.
pub(crate) fn batch(
    prim: &Prim,
    values: &[Array],
    axes: &[Option<usize>],
    size: usize,
) -> Result<(Array, Option<usize>)> {
    match prim {
        Prim::Softmax | Prim::LogSoftmax | Prim::Logsumexp | Prim::Standardize { .. } => {
            let x = front(&values[0], axes[0])?;
            Ok((bind(prim.clone(), &[&x])?, axes[0].map(|_| 0)))
        }
        Prim::SoftmaxCrossEntropy | Prim::SoftmaxCrossEntropyGrad => {
            let moved = values
                .iter()
                .zip(axes)
                .map(|(v, a)| batched_front(v, *a, size))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Array> = moved.iter().collect();
            Ok((bind(prim.clone(), &refs)?, Some(0)))
        }
        _ => Err(not_fused(prim)),
    }
}

/// Cotangents of the inputs.
pub(crate) fn vjp(
    prim: &Prim,
    inputs: &[Array],
    output: &Array,
    ct: &Array,
) -> Result<Vec<Option<Array>>> {
    let x = &inputs[0];
    Ok(match prim {
        // y (ct - sum(ct y))
        Prim::Softmax => vec![Some(output.mul(&ct.sub(&row_sum(&ct.mul(output)?)?)?)?)],
        // ct - exp(y) sum(ct)
        Prim::LogSoftmax => vec![Some(ct.sub(&output.exp()?.mul(&row_sum(ct)?)?)?)],
        // softmax(x) ct
        Prim::Logsumexp => vec![Some(x.softmax(-1)?.mul(&ct.expand_dims(-1)?)?)],
        Prim::SoftmaxCrossEntropy => vec![
            Some(bind(Prim::SoftmaxCrossEntropyGrad, &[x, &inputs[1], ct])?),
            None,
        ],
        Prim::SoftmaxCrossEntropyGrad => {
            // g = c (s - e): the Jacobian of softmax is symmetric.
            let (labels, c) = (&inputs[1], &inputs[2]);
            let s = x.softmax(-1)?;
            let su = s.mul(ct)?;
            let ct_x = c.expand_dims(-1)?.mul(&su.sub(&s.mul(&row_sum(&su)?)?)?)?;
            let ct_c = su.sum(&[-1])?.sub(&pick(ct, labels)?)?;
            vec![Some(ct_x), None, Some(ct_c)]
        }
        Prim::Standardize { axes, eps } => {
            let rstd = inverse_std(x, *axes, *eps)?;
            vec![Some(standardize_linear(ct, output, &rstd, *axes)?)]
        }
        _ => return Err(not_fused(prim)),
    })
}

/// The output's tangent (`None` for a zero tangent).
pub(crate) fn jvp(
    prim: &Prim,
    x: &[Array],
    t: &[Option<Array>],
    out: &Array,
) -> Result<Option<Array>> {
    let tx = t[0].as_ref();
    match prim {
        Prim::Softmax => tx
            .map(|t| out.mul(&t.sub(&row_sum(&out.mul(t)?)?)?))
            .transpose(),
        Prim::LogSoftmax => tx
            .map(|t| t.sub(&row_sum(&out.exp()?.mul(t)?)?))
            .transpose(),
        Prim::Logsumexp => tx.map(|t| x[0].softmax(-1)?.mul(t)?.sum(&[-1])).transpose(),
        Prim::SoftmaxCrossEntropy => tx
            .map(|t| x[0].softmax(-1)?.mul(t)?.sum(&[-1])?.sub(&pick(t, &x[1])?))
            .transpose(),
        Prim::SoftmaxCrossEntropyGrad => {
            let (logits, labels, c) = (&x[0], &x[1], &x[2]);
            let mut total: Option<Array> = None;
            if let Some(tc) = &t[2] {
                total = Some(bind(Prim::SoftmaxCrossEntropyGrad, &[logits, labels, tc])?);
            }
            if let Some(tx) = tx {
                let s = logits.softmax(-1)?;
                let ds = s.mul(&tx.sub(&row_sum(&s.mul(tx)?)?)?)?;
                let part = c.expand_dims(-1)?.mul(&ds)?;
                total = Some(match total {
                    Some(a) => a.add(&part)?,
                    None => part,
                });
            }
            Ok(total)
        }
        Prim::Standardize { axes, eps } => tx
            .map(|t| {
                let rstd = inverse_std(&x[0], *axes, *eps)?;
                standardize_linear(t, out, &rstd, *axes)
            })
            .transpose(),
        _ => Err(not_fused(prim)),
    }
}

fn not_fused(prim: &Prim) -> Error {
    Error::invalid(format!(
        "{} is not a fused row-wise primitive; this is a bug in solstice",
        prim.name()
    ))
}

/// The sum over the last axis, kept as size 1.
fn row_sum(a: &Array) -> Result<Array> {
    a.sum(&[-1])?.expand_dims(-1)
}

/// `u[..., label]` for `u` `[..., n]` and integer `labels` `[...]`.
fn pick(u: &Array, labels: &Array) -> Result<Array> {
    let n = u.shape()[u.rank() - 1];
    let rows = labels.elem_count();
    let flat = u.reshape(&[rows * n])?;
    let offsets = Array::arange(rows, DType::I64)?.mul_scalar(n as f64)?;
    let idx = labels.astype(DType::I64)?.reshape(&[rows])?.add(&offsets)?;
    flat.take(&idx, 0)?.reshape(labels.shape())
}

/// The mean over the trailing `axes` axes of `a`, kept as size 1.
fn trailing_mean(a: &Array, axes: usize) -> Result<Array> {
    let r = a.rank();
    let over: Vec<isize> = (r - axes..r).map(|i| i as isize).collect();
    let mut kept = a.shape().to_vec();
    for d in &mut kept[r - axes..] {
        *d = 1;
    }
    a.mean(&over)?.reshape(&kept)
}

/// `1 / sqrt(var + eps)` over the trailing `axes` axes, kept as size 1.
fn inverse_std(x: &Array, axes: usize, eps: f64) -> Result<Array> {
    let centred = x.sub(&trailing_mean(x, axes)?)?;
    let var = trailing_mean(&centred.square()?, axes)?;
    Array::scalar_of(1.0, x.dtype())?.div(&var.add_scalar(eps)?.sqrt()?)
}

/// `rstd (v - mean(v) - y mean(v y))`: the derivative of standardisation
/// applied to `v` (it is its own transpose).
fn standardize_linear(v: &Array, y: &Array, rstd: &Array, axes: usize) -> Result<Array> {
    let centred = v.sub(&trailing_mean(v, axes)?)?;
    let along = y.mul(&trailing_mean(&v.mul(y)?, axes)?)?;
    rstd.mul(&centred.sub(&along)?)
}
