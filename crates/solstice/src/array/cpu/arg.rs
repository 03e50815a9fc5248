//! Arg-extremes: the index of the first maximum or minimum along an axis,
//! the first NaN winning (as JAX), for every dtype, reading the input in
//! place through its strides and splitting the rows over the threads.

use candle_core::{Storage, Tensor};

use super::elem::{Elem, by_dtype};
use super::reduce::{ReduceOp, along};
use super::strided::Reader;
use super::{alloc, for_rows, tensor};
use crate::error::Result;

/// `i32` indices of the first maximum (or minimum) along `axis`, which is
/// removed; `None` where `x` is not on the CPU in a dtype handled here.
pub(crate) fn arg_extreme(x: &Tensor, axis: usize, min: bool) -> Result<Option<Tensor>> {
    by_dtype!(x.dtype(), T => run::<T>(x, axis, min), _ => Ok(None))
}

fn run<T: Elem>(x: &Tensor, axis: usize, min: bool) -> Result<Option<Tensor>> {
    let rank = x.rank();
    // `axis` moved last as a view: each output reads one strided row.
    let mut perm: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
    perm.push(axis);
    let moved = x.permute(perm)?;
    let (storage, layout) = moved.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some(data) = T::of_storage(cpu) else {
        return Ok(None);
    };
    let dims = layout.dims().to_vec();
    let n = dims[rank - 1];
    let out_shape = dims[..rank - 1].to_vec();
    let rows: usize = out_shape.iter().product();
    let reader = Reader::new(layout, &dims);
    let stride = reader.inner();
    let name = if min { "argmin" } else { "argmax" };
    let out = alloc::filled(name, rows, |out| {
        for_rows(out, 1, rows.saturating_mul(n), |first, chunk| {
            for (i, o) in chunk.iter_mut().enumerate() {
                let start = reader.row_start(&dims, first + i);
                o.write(first_extreme(data, start, stride, n, min) as i32);
            }
        })
    })?;
    tensor(out, &out_shape).map(Some)
}

/// The index of the first extreme of the `n` elements at `start` apart by
/// `stride`; the first NaN wins; 0 for an empty row.
#[allow(clippy::eq_op)]
fn first_extreme<T: Elem>(data: &[T], start: usize, stride: usize, n: usize, min: bool) -> usize {
    if n == 0 {
        return 0;
    }
    if stride == 1 {
        // Two passes over a contiguous row, both vectorised: the extreme
        // (NaN if any), then where it first occurs. The first element equal
        // to the extreme is the one a sequential scan keeps.
        let row = &data[start..start + n];
        let op = if min { ReduceOp::Min } else { ReduceOp::Max };
        let m = along(op, row);
        return if m != m {
            first_where(row, |v| v != v)
        } else {
            first_where(row, |v| v == m)
        };
    }
    let mut best = 0;
    let mut value = data[start];
    // `v != v` holds exactly for NaN (and never for an integer).
    if value != value {
        return 0;
    }
    for j in 1..n {
        let v = data[start + j * stride];
        if v != v {
            return j;
        }
        if (min && v < value) || (!min && v > value) {
            best = j;
            value = v;
        }
    }
    best
}

/// The index of the first element of `x` meeting `hit` (0 if none),
/// testing 16 at a time without early exit inside a block so that the
/// test vectorises.
#[inline(always)]
fn first_where<T: Elem>(x: &[T], hit: impl Fn(T) -> bool) -> usize {
    let mut blocks = x.chunks_exact(16);
    for (b, block) in (&mut blocks).enumerate() {
        if block.iter().fold(false, |any, &v| any | hit(v)) {
            return b * 16 + block.iter().position(|&v| hit(v)).unwrap_or(0);
        }
    }
    let tail = x.len() - blocks.remainder().len();
    blocks
        .remainder()
        .iter()
        .position(|&v| hit(v))
        .map_or(0, |j| tail + j)
}
