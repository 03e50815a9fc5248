//! Elementwise maps of two inputs with numpy broadcasting, read in place
//! through any strides (a broadcast operand is never materialised).

use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::strided::{Reader, collapse};
use super::{Float, alloc, fill_tiled, for_groups, for_rows, group_starts, tensor};
use crate::error::{Error, Result};

/// The maps with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// NaN where either input is NaN, as JAX.
    Maximum,
    /// NaN where either input is NaN, as JAX.
    Minimum,
}

/// `op(a, b)` broadcast (integers in `elementwise.rs`), or `None` for a
/// dtype without a kernel here.
pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    if a.dtype() != b.dtype() {
        return Ok(None);
    }
    match a.dtype() {
        candle_core::DType::F32 => run::<f32>(op, a, b),
        candle_core::DType::F64 => run::<f64>(op, a, b),
        _ => super::elementwise::int_binary(op, a, b),
    }
}

fn run<T: Float>(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    let shape = crate::array::broadcast_shapes(a.dims(), b.dims())
        .ok_or_else(|| Error::shape("inputs do not broadcast"))?;
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let (candle_core::Storage::Cpu(ca), candle_core::Storage::Cpu(cb)) = (&*sa, &*sb) else {
        return Ok(None);
    };
    let (Some(x), Some(y)) = (T::slice(ca), T::slice(cb)) else {
        return Ok(None);
    };
    let mut readers = [Reader::new(la, &shape), Reader::new(lb, &shape)];
    let dims = collapse(&shape, &mut readers);
    let n: usize = shape.iter().product();
    let out = alloc::filled(op_name(op), n, |out| match op {
        BinaryOp::Add => fill(x, y, &readers, &dims, out, |p, q| p + q),
        BinaryOp::Sub => fill(x, y, &readers, &dims, out, |p, q| p - q),
        BinaryOp::Mul => fill(x, y, &readers, &dims, out, |p, q| p * q),
        BinaryOp::Div => fill(x, y, &readers, &dims, out, |p, q| p / q),
        BinaryOp::Maximum => fill(x, y, &readers, &dims, out, |p, q| {
            let m = p.fmax(q);
            if p.is_nan() || q.is_nan() { p + q } else { m }
        }),
        BinaryOp::Minimum => fill(x, y, &readers, &dims, out, |p, q| {
            let m = p.fmin(q);
            if p.is_nan() || q.is_nan() { p + q } else { m }
        }),
    })?;
    tensor(out, &shape).map(Some)
}

fn op_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    }
}

fn fill<T: Float>(
    x: &[T],
    y: &[T],
    readers: &[Reader; 2],
    dims: &[usize],
    out: &mut [MaybeUninit<T>],
    f: impl Fn(T, T) -> T + Sync,
) {
    let inner = *dims.last().expect("at least one axis");
    let n = out.len();
    let [ra, rb] = readers;
    let (ia, ib) = (ra.inner(), rb.inner());
    for_rows(out, inner, n, |first, chunk| {
        if ia > 1 || ib > 1 {
            for_groups(chunk, inner, |r0, group| {
                let count = group.len().div_ceil(inner);
                let sa = group_starts(ra, dims, first + r0, count);
                let sb = group_starts(rb, dims, first + r0, count);
                fill_tiled(group, inner, |k, j| f(x[sa[k] + j * ia], y[sb[k] + j * ib]));
            });
            return;
        }
        for (i, row) in chunk.chunks_mut(inner).enumerate() {
            // The last row of a split axis is short.
            let len = row.len();
            let (oa, ob) = (ra.row_start(dims, first + i), rb.row_start(dims, first + i));
            match (ia, ib) {
                (1, 1) => {
                    for ((o, &p), &q) in row.iter_mut().zip(&x[oa..oa + len]).zip(&y[ob..ob + len])
                    {
                        o.write(f(p, q));
                    }
                }
                (1, 0) => {
                    let q = y[ob];
                    for (o, &p) in row.iter_mut().zip(&x[oa..oa + len]) {
                        o.write(f(p, q));
                    }
                }
                (0, 1) => {
                    let p = x[oa];
                    for (o, &q) in row.iter_mut().zip(&y[ob..ob + len]) {
                        o.write(f(p, q));
                    }
                }
                _ => {
                    for (j, o) in row.iter_mut().enumerate() {
                        o.write(f(x[oa + j * ia], y[ob + j * ib]));
                    }
                }
            }
        }
    });
}
