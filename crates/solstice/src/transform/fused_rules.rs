//! Batching, VJP and JVP rules of the fused row-wise primitives
//! (`Softmax`, `LogSoftmax`, `Logsumexp`, `SoftmaxCrossEntropy`,
//! `Standardize`, each with its fused gradient primitive) and of the fused
//! elementwise `GeluTanh` and its derivative. Each forward primitive's VJP
//! (and, where the Jacobian is symmetric, its JVP) is one fused gradient
//! primitive; the gradient primitives' own rules, needed only for
//! derivatives of derivatives, are compositions. Like every rule, they are
//! written in `Array` operations, so derivatives of derivatives and `vmap`
//! of derivatives work. The row-wise primitives work on the trailing axes,
//! so batching moves the batch axis to the front and binds the same
//! primitive.

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
        Prim::Softmax
        | Prim::LogSoftmax
        | Prim::Logsumexp
        | Prim::Standardize { .. }
        | Prim::GeluTanh
        | Prim::GeluTanhGrad => {
            let x = front(&values[0], axes[0])?;
            Ok((bind(prim.clone(), &[&x])?, axes[0].map(|_| 0)))
        }
        Prim::SoftmaxCrossEntropy
        | Prim::SoftmaxCrossEntropyGrad
        | Prim::SoftmaxGrad
        | Prim::LogSoftmaxGrad
        | Prim::LogsumexpGrad
        | Prim::StandardizeGrad { .. } => {
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
        Prim::Softmax => vec![Some(bind(Prim::SoftmaxGrad, &[output, ct])?)],
        // ct - exp(y) sum(ct)
        Prim::LogSoftmax => vec![Some(bind(Prim::LogSoftmaxGrad, &[output, ct])?)],
        // softmax(x) ct = exp(x - y) ct
        Prim::Logsumexp => vec![Some(bind(Prim::LogsumexpGrad, &[x, output, ct])?)],
        Prim::SoftmaxCrossEntropy => vec![
            Some(bind(Prim::SoftmaxCrossEntropyGrad, &[x, &inputs[1], ct])?),
            None,
        ],
        Prim::SoftmaxCrossEntropyGrad => {
            // g = c (s - e): the Jacobian of softmax is symmetric.
            let (labels, c) = (&inputs[1], &inputs[2]);
            let s = x.softmax(-1)?;
            let ct_x = c
                .expand_dims(-1)?
                .mul(&bind(Prim::SoftmaxGrad, &[&s, ct])?)?;
            let ct_c = s.mul(ct)?.sum(&[-1])?.sub(&pick(ct, labels)?)?;
            vec![Some(ct_x), None, Some(ct_c)]
        }
        Prim::Standardize { axes, eps } => {
            let prim = Prim::StandardizeGrad {
                axes: *axes,
                eps: *eps,
            };
            vec![Some(bind(prim, &[x, ct])?)]
        }
        Prim::SoftmaxGrad => {
            // g = y u - y <u, y>, bilinear in (y, u); its u-part is
            // symmetric.
            let u = &inputs[1];
            let ct_y = ct
                .mul(u)?
                .sub(&ct.mul(&row_sum(&u.mul(x)?)?)?)?
                .sub(&u.mul(&row_sum(&ct.mul(x)?)?)?)?;
            vec![Some(ct_y), Some(bind(Prim::SoftmaxGrad, &[x, ct])?)]
        }
        Prim::LogSoftmaxGrad => {
            // g = u - exp(y) sum(u).
            let e = x.exp()?;
            let ct_y = ct.mul(&e)?.mul(&row_sum(&inputs[1])?)?.neg()?;
            let ct_u = ct.sub(&row_sum(&ct.mul(&e)?)?)?;
            vec![Some(ct_y), Some(ct_u)]
        }
        Prim::LogsumexpGrad => {
            // g = u exp(x - l): each input's part is g, -g or exp(x - l).
            let l = &inputs[1];
            let cg = ct.mul(output)?;
            let ct_l = cg.sum(&[-1])?.neg()?;
            let p = x.sub(&l.expand_dims(-1)?)?.exp()?;
            let ct_u = ct.mul(&p)?.sum(&[-1])?;
            vec![Some(cg), Some(ct_l), Some(ct_u)]
        }
        Prim::StandardizeGrad { axes, eps } => {
            let (u, axes) = (&inputs[1], *axes);
            let s_ct = bind(prim.clone(), &[x, ct])?;
            let ct_x = standardize_grad_x(x, u, output, ct, &s_ct, axes, *eps)?;
            vec![Some(ct_x), Some(s_ct)]
        }
        Prim::GeluTanh => vec![Some(ct.mul(&bind(Prim::GeluTanhGrad, &[x])?)?)],
        Prim::GeluTanhGrad => vec![Some(ct.mul(&gelu_tanh_second(x)?)?)],
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
        Prim::Softmax => tx.map(|t| bind(Prim::SoftmaxGrad, &[out, t])).transpose(),
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
                let ds = bind(Prim::SoftmaxGrad, &[&s, tx])?;
                total = Some(plus(total, c.expand_dims(-1)?.mul(&ds)?)?);
            }
            Ok(total)
        }
        Prim::Standardize { axes, eps } => {
            let prim = Prim::StandardizeGrad {
                axes: *axes,
                eps: *eps,
            };
            tx.map(|t| bind(prim, &[&x[0], t])).transpose()
        }
        Prim::SoftmaxGrad => {
            let (y, u) = (&x[0], &x[1]);
            let mut total = None;
            if let Some(tu) = &t[1] {
                total = Some(bind(Prim::SoftmaxGrad, &[y, tu])?);
            }
            if let Some(ty) = tx {
                let part = ty
                    .mul(u)?
                    .sub(&ty.mul(&row_sum(&u.mul(y)?)?)?)?
                    .sub(&y.mul(&row_sum(&u.mul(ty)?)?)?)?;
                total = Some(plus(total, part)?);
            }
            Ok(total)
        }
        Prim::LogSoftmaxGrad => {
            let (y, u) = (&x[0], &x[1]);
            let mut total = None;
            if let Some(tu) = &t[1] {
                total = Some(bind(Prim::LogSoftmaxGrad, &[y, tu])?);
            }
            if let Some(ty) = tx {
                let part = ty.mul(&y.exp()?)?.mul(&row_sum(u)?)?.neg()?;
                total = Some(plus(total, part)?);
            }
            Ok(total)
        }
        Prim::LogsumexpGrad => {
            let (xs, l) = (&x[0], &x[1]);
            let mut total = None;
            if let Some(tx) = tx {
                total = Some(out.mul(tx)?);
            }
            if let Some(tl) = &t[1] {
                total = Some(plus(total, out.mul(&tl.expand_dims(-1)?)?.neg()?)?);
            }
            if let Some(tu) = &t[2] {
                let p = xs.sub(&l.expand_dims(-1)?)?.exp()?;
                total = Some(plus(total, p.mul(&tu.expand_dims(-1)?)?)?);
            }
            Ok(total)
        }
        Prim::StandardizeGrad { axes, eps } => {
            let (xs, u, axes) = (&x[0], &x[1], *axes);
            let mut total = None;
            if let Some(tu) = &t[1] {
                total = Some(bind(prim.clone(), &[xs, tu])?);
            }
            if let Some(tx) = tx {
                let part = standardize_grad_tangent(xs, u, out, tx, axes, *eps)?;
                total = Some(plus(total, part)?);
            }
            Ok(total)
        }
        Prim::GeluTanh => tx
            .map(|t| t.mul(&bind(Prim::GeluTanhGrad, &[&x[0]])?))
            .transpose(),
        Prim::GeluTanhGrad => tx.map(|t| t.mul(&gelu_tanh_second(&x[0])?)).transpose(),
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

/// `a + b`, where `a` may be a zero tangent.
fn plus(a: Option<Array>, b: Array) -> Result<Array> {
    match a {
        Some(a) => a.add(&b),
        None => Ok(b),
    }
}

/// The cotangent of `x` in `g = StandardizeGrad(x, u)` for `ct`, given
/// `s_ct = StandardizeGrad(x, ct)`. With `y` the standardised `x`,
/// `r = 1/sqrt(var + eps)`, `m = mean(u y)` (means over the row), the
/// derivative of `g` along `dx` is
/// `-r mean(y dx) g - r m S(dx) - r y mean(u S(dx))`, `S` the symmetric
/// `StandardizeGrad(x, .)`; transposed, that is
/// `-r (mean(ct g) y + m S(ct) + mean(ct y) g)`.
fn standardize_grad_x(
    x: &Array,
    u: &Array,
    g: &Array,
    ct: &Array,
    s_ct: &Array,
    axes: usize,
    eps: f64,
) -> Result<Array> {
    let y = bind(Prim::Standardize { axes, eps }, &[x])?;
    let r = inverse_std(x, axes, eps)?;
    let m = trailing_mean(&u.mul(&y)?, axes)?;
    let a = trailing_mean(&ct.mul(g)?, axes)?.mul(&y)?;
    let b = m.mul(s_ct)?;
    let c = trailing_mean(&ct.mul(&y)?, axes)?.mul(g)?;
    r.mul(&a.add(&b)?.add(&c)?)?.neg()
}

/// The tangent of `g = StandardizeGrad(x, u)` along `tx` (see
/// [`standardize_grad_x`]).
fn standardize_grad_tangent(
    x: &Array,
    u: &Array,
    g: &Array,
    tx: &Array,
    axes: usize,
    eps: f64,
) -> Result<Array> {
    let prim = Prim::StandardizeGrad { axes, eps };
    let y = bind(Prim::Standardize { axes, eps }, &[x])?;
    let r = inverse_std(x, axes, eps)?;
    let m = trailing_mean(&u.mul(&y)?, axes)?;
    let s_tx = bind(prim, &[x, tx])?;
    let a = trailing_mean(&y.mul(tx)?, axes)?.mul(g)?;
    let b = m.mul(&s_tx)?;
    let c = y.mul(&trailing_mean(&u.mul(&s_tx)?, axes)?)?;
    r.mul(&a.add(&b)?.add(&c)?)?.neg()
}

/// The second derivative of the tanh GELU, composed (it is needed only for
/// derivatives of derivatives). With `u = c (x + a x³)`, `t = tanh u`,
/// `s = 1 - t²`, `u' = c (1 + 3a x²)`, `u'' = 6 c a x`:
/// `gelu'' = s u' + x s (u''/2 - t u'²)`.
fn gelu_tanh_second(x: &Array) -> Result<Array> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let a = 0.044715;
    let x2 = x.square()?;
    let u = x.add(&x.mul(&x2)?.mul_scalar(a)?)?.mul_scalar(c)?;
    let t = u.tanh()?;
    let s = t.square()?.neg()?.add_scalar(1.0)?;
    let du = x2.mul_scalar(3.0 * a)?.add_scalar(1.0)?.mul_scalar(c)?;
    let half_d2u = x.mul_scalar(3.0 * c * a)?;
    let inner = half_d2u.sub(&t.mul(&du.square()?)?)?;
    s.mul(&du)?.add(&x.mul(&s)?.mul(&inner)?)
}
