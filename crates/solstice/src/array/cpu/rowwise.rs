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

/// The fused VJPs of the row-wise primitives: each reads its inputs once
/// from memory and writes its result once (the passes after the first run
/// over a row in cache).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum GradOp {
    /// `(y, u)`: `y (u - sum(u y))`.
    Softmax,
    /// `(y, u)`: `u - exp(y) sum(u)`.
    LogSoftmax,
    /// `(x, l, u)`, `l` and `u` one value per row: `u exp(x - l)`.
    Logsumexp,
    /// `(x, u)`: `rstd (u - mean(u) - y mean(u y))`, with `y` and `rstd`
    /// those of `(x - mean) / sqrt(var + eps)` over the row.
    Normalize { eps: f64 },
}

impl GradOp {
    fn name(self) -> &'static str {
        match self {
            GradOp::Softmax => "softmax",
            GradOp::LogSoftmax => "log_softmax",
            GradOp::Logsumexp => "logsumexp",
            GradOp::Normalize { .. } => "layer_norm",
        }
    }
}

/// `op` over rows of `n` elements of `xs[0]` (the last axis; for
/// `Normalize`, the product of the trailing axes). The other inputs have
/// `xs[0]`'s shape, except `Logsumexp`'s `l` and `u`, which have one value
/// per row. Gives `None` for other dtypes than f32 and f64.
pub(crate) fn rowwise_grad(op: GradOp, xs: &[&Tensor], n: usize) -> Result<Option<Tensor>> {
    let dtype = xs[0].dtype();
    if xs.iter().any(|x| x.dtype() != dtype) {
        return Ok(None);
    }
    match dtype {
        candle_core::DType::F32 => run_grad::<f32>(op, xs, n),
        candle_core::DType::F64 => run_grad::<f64>(op, xs, n),
        _ => Ok(None),
    }
}

fn run_grad<T: Float>(op: GradOp, xs: &[&Tensor], n: usize) -> Result<Option<Tensor>> {
    let dims = xs[0].dims().to_vec();
    let total = xs[0].elem_count();
    let rows = total.checked_div(n).unwrap_or(0);
    for (i, x) in xs.iter().enumerate().skip(1) {
        let want = if op == GradOp::Logsumexp { rows } else { total };
        if x.elem_count() != want {
            return Err(Error::internal(format!(
                "{} gradient: input {i} has shape {:?} for rows of {n} in {dims:?}",
                op.name(),
                x.dims()
            )));
        }
    }
    // Every input is read in place where it is contiguous (several read
    // guards at once, as the binary kernels take).
    let guards: Vec<_> = xs.iter().map(|x| x.storage_and_layout()).collect();
    let mut inputs = Vec::with_capacity(xs.len());
    for (storage, layout) in &guards {
        let candle_core::Storage::Cpu(cpu) = &**storage else {
            return Ok(None);
        };
        let Some(data) = T::slice(cpu) else {
            return Ok(None);
        };
        inputs.push(contiguous(data, layout)?);
    }
    let out = alloc::filled(op.name(), total, |out| {
        if n == 0 {
            return;
        }
        for_rows(out, n, total * xs.len(), |first, chunk| {
            let mut scratch = vec![T::ZERO; n];
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let r = first + i;
                let row = |k: usize| &inputs[k][r * n..(r + 1) * n];
                match op {
                    GradOp::Softmax => softmax_grad(row(0), row(1), o),
                    GradOp::LogSoftmax => log_softmax_grad(row(0), row(1), o, &mut scratch),
                    GradOp::Logsumexp => {
                        logsumexp_grad(row(0), inputs[1][r], inputs[2][r], o, &mut scratch)
                    }
                    GradOp::Normalize { eps } => {
                        normalize_grad(row(0), row(1), T::of(eps), o, &mut scratch)
                    }
                }
            }
        });
    })?;
    tensor(out, &dims).map(Some)
}

/// `sum(a b)`: eight lanes over blocks of 256, blocks summed pairwise.
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    const BLOCK: usize = 256;
    if a.len() > BLOCK {
        let half = (a.len() / 2).next_multiple_of(8);
        return dot(&a[..half], &b[..half]) + dot(&a[half..], &b[half..]);
    }
    let mut lanes = [T::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (p, q) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += p[k] * q[k];
        }
    }
    let mut rest = T::ZERO;
    for (&p, &q) in ra.iter().zip(rb) {
        rest += p * q;
    }
    let l = [
        lanes[0] + lanes[1],
        lanes[2] + lanes[3],
        lanes[4] + lanes[5],
        lanes[6] + lanes[7],
    ];
    (l[0] + l[1]) + (l[2] + l[3]) + rest
}

fn softmax_grad<T: Float>(y: &[T], u: &[T], out: &mut [MaybeUninit<T>]) {
    let d = dot(y, u);
    for ((o, &p), &q) in out.iter_mut().zip(y).zip(u) {
        o.write(p * (q - d));
    }
}

fn log_softmax_grad<T: Float>(y: &[T], u: &[T], out: &mut [MaybeUninit<T>], scratch: &mut [T]) {
    let s = super::reduce::along(ReduceOp::Sum, u);
    T::exp_into(y, as_uninit(scratch));
    for ((o, &e), &q) in out.iter_mut().zip(scratch.iter()).zip(u) {
        o.write(q - e * s);
    }
}

fn logsumexp_grad<T: Float>(x: &[T], l: T, u: T, out: &mut [MaybeUninit<T>], scratch: &mut [T]) {
    for (s, &v) in scratch.iter_mut().zip(x) {
        *s = v - l;
    }
    exp_in_place(as_uninit(scratch));
    for (o, &e) in out.iter_mut().zip(scratch.iter()) {
        o.write(u * e);
    }
}

fn normalize_grad<T: Float>(
    x: &[T],
    u: &[T],
    eps: T,
    out: &mut [MaybeUninit<T>],
    centred: &mut [T],
) {
    let count = T::of(x.len() as f64);
    let mean = super::reduce::along(ReduceOp::Sum, x) / count;
    for (c, &v) in centred.iter_mut().zip(x) {
        *c = v - mean;
    }
    let var = dot(centred, centred) / count;
    let rstd = T::ONE / (var + eps).sqrt();
    let mean_u = super::reduce::along(ReduceOp::Sum, u) / count;
    // mean(u y), with y = centred * rstd.
    let mean_uy = dot(u, centred) / count * rstd;
    for ((o, &c), &q) in out.iter_mut().zip(centred.iter()).zip(u) {
        o.write(rstd * (q - mean_u - c * rstd * mean_uy));
    }
}

/// A slice of initialised values viewed as `MaybeUninit`, to be written.
fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element is
    // initialised, so the view is sound; writes through it keep it so.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}
