//! solstice's own CPU kernels for the hot float paths: elementwise maps,
//! reductions and the fused row-wise primitives, multi-threaded over the
//! machine's cores, vectorisable, accurate (pairwise sums) and fallible
//! (an allocation that cannot be made is an error).
//!
//! Each kernel takes candle tensors and returns `Ok(None)` where it does not
//! apply (a dtype candle has and solstice does not use, say), so
//! `kernels.rs` falls back to candle there. Elementwise maps and reductions
//! cover every solstice dtype (`elem.rs`, `map.rs`, `elementwise.rs`).
//! Data is read in place through candle's layouts (any strides, broadcast
//! and offset views included), so a transpose or broadcast is never copied
//! before a kernel reads it.

pub(crate) mod adam;
pub(crate) mod alloc;
pub(crate) mod arg;
pub(crate) mod binary;
mod elem;
pub(crate) mod elementwise;
mod float;
pub(crate) mod map;
pub(crate) mod reduce;
pub(crate) mod rowwise;
mod special;
mod special_f64;
mod strided;
pub(crate) mod unary;

pub(crate) use elem::Elem;
pub(crate) use float::Float;

use candle_core::{Layout, Storage, Tensor};

use crate::error::Result;

/// Elements below which a kernel runs on the calling thread: waking the
/// pool costs more than it saves.
const PARALLEL_MIN: usize = 1 << 15;

/// The number of worker threads kernels split work over.
pub(crate) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Runs `f(storage, layout)` on `x`'s data as `T`, or gives `None` if `x`
/// does not hold `T`s on the CPU.
pub(crate) fn with_data<T: Float, R>(
    x: &Tensor,
    f: impl FnOnce(&[T], &Layout) -> Result<R>,
) -> Result<Option<R>> {
    let (storage, layout) = x.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => match T::slice(cpu) {
            Some(data) => f(data, layout).map(Some),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// A tensor of `shape` from a buffer of exactly its size (no copy).
pub(crate) fn tensor<T: candle_core::WithDType>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &candle_core::Device::Cpu)?)
}

/// Splits `out` into chunks of whole rows of `row` elements (the last row
/// may be short), one or more per thread, and calls `f(first_row, chunk)` on each, in parallel when
/// the work is large enough.
pub(crate) fn for_rows<T: Send>(
    out: &mut [T],
    row: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if row == 0 || out.is_empty() {
        return;
    }
    // The last row may be short (see `strided::collapse`).
    let rows = out.len().div_ceil(row);
    let threads = threads();
    if work < PARALLEL_MIN || threads == 1 || rows == 1 {
        f(0, out);
        return;
    }
    // A few chunks per thread balance uneven progress under load.
    let chunks = (threads * 4).min(rows);
    let per = rows.div_ceil(chunks);
    rayon::scope(|s| {
        for (i, chunk) in out.chunks_mut(per * row).enumerate() {
            let f = &f;
            s.spawn(move |_| f(i * per, chunk));
        }
    });
}

/// Rows of an input read with a large inner stride (a transposed view)
/// are filled this many at a time, in tiles (see [`fill_tiled`]).
pub(crate) const GROUP_ROWS: usize = 16;

/// Calls `f(first_row, group)` on `chunk` (rows of `inner` elements, the
/// last maybe short) in groups of [`GROUP_ROWS`] whole rows.
pub(crate) fn for_groups<T>(chunk: &mut [T], inner: usize, mut f: impl FnMut(usize, &mut [T])) {
    if inner == 0 {
        return;
    }
    for (g, group) in chunk.chunks_mut(GROUP_ROWS * inner).enumerate() {
        f(g * GROUP_ROWS, group);
    }
}

/// The start of each of the `count` (at most [`GROUP_ROWS`]) rows from
/// `first` that `reader` reads.
pub(crate) fn group_starts(
    reader: &strided::Reader,
    dims: &[usize],
    first: usize,
    count: usize,
) -> [usize; GROUP_ROWS] {
    let mut starts = [0; GROUP_ROWS];
    for (k, s) in starts.iter_mut().enumerate().take(count) {
        *s = reader.row_start(dims, first + k);
    }
    starts
}

/// Columns per tile of [`fill_tiled`]: a tile's reads of a transposed
/// input touch this many cache lines and pages, few enough for the L1
/// cache and TLB to keep them for every row of the group.
const TILE_COLUMNS: usize = 32;

/// Writes `at(k, j)` to element `j` of row `k` of `group` in tiles of
/// [`TILE_COLUMNS`] columns across the group's rows, where every row is
/// whole. A contiguous input is then still read along rows, while a
/// transposed one (rows adjacent in memory) is read a cache line at a time
/// instead of one element from each of `inner` lines and pages per row.
#[inline(always)]
pub(crate) fn fill_tiled<T>(
    group: &mut [std::mem::MaybeUninit<T>],
    inner: usize,
    at: impl Fn(usize, usize) -> T,
) {
    let rows = group.len().div_ceil(inner);
    if group.len() == rows * inner {
        for j0 in (0..inner).step_by(TILE_COLUMNS) {
            let j1 = (j0 + TILE_COLUMNS).min(inner);
            for k in 0..rows {
                for (j, o) in group[k * inner + j0..k * inner + j1].iter_mut().enumerate() {
                    o.write(at(k, j0 + j));
                }
            }
        }
    } else {
        for (k, row) in group.chunks_mut(inner).enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                o.write(at(k, j));
            }
        }
    }
}

#[cfg(test)]
mod elementwise_tests;
