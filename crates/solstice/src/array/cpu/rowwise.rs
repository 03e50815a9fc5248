//! Fused row-wise kernels over the last axis: softmax, log-softmax,
//! logsumexp, softmax cross-entropy and layer normalisation. Each reads a
//! row once from memory (the further passes run over a row in cache) and
//! writes its result once; rows run in parallel.

use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::reduce::{ReduceOp, contiguous};
use super::{Float, alloc, for_rows, tensor, with_data};
use crate::error::{Error, Result};

/// What a row-wise kernel computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RowOp {
    Softmax,
    LogSoftmax,
    /// One value per row.
    Logsumexp,
    /// `(x - mean) / sqrt(var + eps)` over the trailing axes.
    Normalize {
        eps: f64,
    },
}

/// `op` over rows of `n` (the last axis; for `Normalize`, the product of
/// the trailing `n_axes`).
pub(crate) fn rowwise(op: RowOp, x: &Tensor, row: usize) -> Result<Option<Tensor>> {
    match x.dtype() {
        candle_core::DType::F32 => run::<f32>(op, x, row),
        candle_core::DType::F64 => run::<f64>(op, x, row),
        _ => Ok(None),
    }
}

fn run<T: Float>(op: RowOp, x: &Tensor, n: usize) -> Result<Option<Tensor>> {
    let dims = x.dims().to_vec();
    let out_shape: Vec<usize> = match op {
        RowOp::Logsumexp => dims[..dims.len() - 1].to_vec(),
        _ => dims.clone(),
    };
    let out = with_data::<T, _>(x, |data, layout| {
        let data = contiguous(data, layout)?;
        let rows = data.len().checked_div(n).unwrap_or(0);
        let size = if op == RowOp::Logsumexp {
            rows
        } else {
            data.len()
        };
        let name = match op {
            RowOp::Softmax => "softmax",
            RowOp::LogSoftmax => "log_softmax",
            RowOp::Logsumexp => "logsumexp",
            RowOp::Normalize { .. } => "layer_norm",
        };
        alloc::filled(name, size, |out| {
            if n == 0 {
                // Empty rows: logsumexp of nothing is -inf, as JAX.
                for o in out.iter_mut() {
                    o.write(T::NEG_INFINITY);
                }
                return;
            }
            let per = if op == RowOp::Logsumexp { 1 } else { n };
            for_rows(out, per, data.len(), |first, chunk| {
                let mut scratch = vec![T::ZERO; n];
                for (i, o) in chunk.chunks_mut(per).enumerate() {
                    let r = first + i;
                    row_kernel(op, &data[r * n..(r + 1) * n], o, &mut scratch);
                }
            });
        })
    })?;
    out.map(|v| tensor(v, &out_shape)).transpose()
}

/// The shift that keeps `exp` in range: the row's maximum, or 0 where that
/// is not finite (a row of `-inf` then gives `-inf`, not NaN, as JAX).
fn shift<T: Float>(x: &[T]) -> T {
    let m = super::reduce::along(ReduceOp::Max, x);
    if m.is_nan() || m == T::NEG_INFINITY || m == -T::NEG_INFINITY {
        if m.is_nan() { m } else { T::ZERO }
    } else {
        m
    }
}

/// `exp(x - m)` into `scratch`, returning its sum.
fn exp_shifted<T: Float>(x: &[T], m: T, scratch: &mut [T]) -> T {
    for (s, &v) in scratch.iter_mut().zip(x) {
        *s = v - m;
    }
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element of
    // `scratch` is initialised, so viewing it as `MaybeUninit` is sound.
    let out: &mut [MaybeUninit<T>] =
        unsafe { std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast(), scratch.len()) };
    exp_in_place(out);
    super::reduce::along(ReduceOp::Sum, scratch)
}

/// `exp` of every (initialised) element, in place.
fn exp_in_place<T: Float>(buf: &mut [MaybeUninit<T>]) {
    // Through a small stack copy, so input and output do not alias.
    const CHUNK: usize = 256;
    let mut tmp = [T::ZERO; CHUNK];
    for block in buf.chunks_mut(CHUNK) {
        let k = block.len();
        for (t, b) in tmp.iter_mut().zip(block.iter()) {
            // SAFETY: the caller initialised every element.
            *t = unsafe { b.assume_init() };
        }
        T::exp_into(&tmp[..k], block);
    }
}

fn row_kernel<T: Float>(op: RowOp, x: &[T], out: &mut [MaybeUninit<T>], scratch: &mut [T]) {
    let n = x.len();
    match op {
        RowOp::Softmax => {
            // The true maximum, not `shift`: JAX subtracts it even where it
            // is infinite, so a row with `inf` (or only `-inf`) is all NaN.
            let m = super::reduce::along(ReduceOp::Max, x);
            let s = exp_shifted(x, m, scratch);
            let inv = T::ONE / s;
            for (o, &e) in out.iter_mut().zip(scratch.iter()) {
                o.write(e * inv);
            }
        }
        RowOp::LogSoftmax => {
            // As for softmax: an infinite maximum makes the row NaN, as JAX.
            let m = super::reduce::along(ReduceOp::Max, x);
            let lse = m + exp_shifted(x, m, scratch).ln();
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(v - lse);
            }
        }
        RowOp::Logsumexp => {
            let m = shift(x);
            out[0].write(m + exp_shifted(x, m, scratch).ln());
        }
        RowOp::Normalize { eps } => {
            let count = T::of(n as f64);
            let mean = super::reduce::along(ReduceOp::Sum, x) / count;
            for (s, &v) in scratch.iter_mut().zip(x) {
                let d = v - mean;
                *s = d * d;
            }
            let var = super::reduce::along(ReduceOp::Sum, scratch) / count;
            let rstd = T::ONE / (var + T::of(eps)).sqrt();
            for (o, &v) in out.iter_mut().zip(x) {
                o.write((v - mean) * rstd);
            }
        }
    }
}

/// Softmax cross-entropy with integer labels: `logsumexp(x) - x[label]`
/// per row of the last axis. `labels` holds one index per row.
pub(crate) fn cross_entropy(x: &Tensor, labels: &[i64]) -> Result<Option<Tensor>> {
    match x.dtype() {
        candle_core::DType::F32 => ce::<f32>(x, labels),
        candle_core::DType::F64 => ce::<f64>(x, labels),
        _ => Ok(None),
    }
}

fn ce<T: Float>(x: &Tensor, labels: &[i64]) -> Result<Option<Tensor>> {
    let dims = x.dims().to_vec();
    let n = *dims.last().unwrap_or(&1);
    check_labels(labels, n)?;
    let out = with_data::<T, _>(x, |data, layout| {
        let data = contiguous(data, layout)?;
        alloc::filled("softmax_cross_entropy", labels.len(), |out| {
            for_rows(out, 1, data.len(), |first, chunk| {
                let mut scratch = vec![T::ZERO; n];
                for (i, o) in chunk.iter_mut().enumerate() {
                    let r = first + i;
                    let row = &data[r * n..(r + 1) * n];
                    let m = shift(row);
                    let lse = m + exp_shifted(row, m, &mut scratch).ln();
                    o.write(lse - row[labels[r] as usize]);
                }
            });
        })
    })?;
    out.map(|v| tensor(v, &dims[..dims.len() - 1])).transpose()
}

/// The gradient of the mean-free cross-entropy with respect to the logits:
/// `ct[row] * (softmax(x) - one_hot(label))`, in one pass.
pub(crate) fn cross_entropy_grad(
    x: &Tensor,
    labels: &[i64],
    ct: &Tensor,
) -> Result<Option<Tensor>> {
    match (x.dtype(), ct.dtype()) {
        (candle_core::DType::F32, candle_core::DType::F32) => ce_grad::<f32>(x, labels, ct),
        (candle_core::DType::F64, candle_core::DType::F64) => ce_grad::<f64>(x, labels, ct),
        _ => Ok(None),
    }
}

fn ce_grad<T: Float>(x: &Tensor, labels: &[i64], ct: &Tensor) -> Result<Option<Tensor>> {
    let dims = x.dims().to_vec();
    let n = *dims.last().unwrap_or(&1);
    check_labels(labels, n)?;
    let Some(cts) =
        with_data::<T, _>(
            ct,
            |data, layout| Ok(contiguous(data, layout)?.into_owned()),
        )?
    else {
        return Ok(None);
    };
    let out = with_data::<T, _>(x, |data, layout| {
        let data = contiguous(data, layout)?;
        alloc::filled("softmax_cross_entropy", data.len(), |out| {
            for_rows(out, n, data.len(), |first, chunk| {
                let mut scratch = vec![T::ZERO; n];
                for (i, o) in chunk.chunks_mut(n).enumerate() {
                    let r = first + i;
                    let row = &data[r * n..(r + 1) * n];
                    let m = shift(row);
                    let scale = cts[r] / exp_shifted(row, m, &mut scratch);
                    for (d, &e) in o.iter_mut().zip(scratch.iter()) {
                        d.write(e * scale);
                    }
                    let l = labels[r] as usize;
                    // SAFETY: written just above.
                    let v = unsafe { o[l].assume_init() };
                    o[l].write(v - cts[r]);
                }
            });
        })
    })?;
    out.map(|v| tensor(v, &dims)).transpose()
}

fn check_labels(labels: &[i64], n: usize) -> Result<()> {
    if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= n) {
        return Err(Error::invalid(format!(
            "softmax_cross_entropy got label {bad}, out of range for {n} classes"
        )));
    }
    Ok(())
}
