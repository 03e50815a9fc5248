//! Reading candle layouts at output positions: broadcast strides, axes
//! merged where memory allows, and row offsets.

use candle_core::Layout;

/// How an input is read at each output position: its start and, per output
/// axis, its stride (0 along broadcast axes).
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    pub(crate) start: usize,
    pub(crate) strides: Vec<usize>,
}

impl Reader {
    /// `layout` broadcast numpy-style (aligned on the right) to `out`.
    pub(crate) fn new(layout: &Layout, out: &[usize]) -> Reader {
        let (dims, strides) = (layout.dims(), layout.stride());
        let lead = out.len() - dims.len();
        let strides = (0..out.len())
            .map(|i| {
                if i < lead || dims[i - lead] == 1 {
                    0
                } else {
                    strides[i - lead]
                }
            })
            .collect();
        Reader {
            start: layout.start_offset(),
            strides,
        }
    }

    /// The offset of the first element of output row `row` (rows run over
    /// every axis but the last of `dims`).
    pub(crate) fn row_start(&self, dims: &[usize], mut row: usize) -> usize {
        let mut offset = self.start;
        for axis in (0..dims.len().saturating_sub(1)).rev() {
            let d = dims[axis];
            offset += (row % d) * self.strides[axis];
            row /= d;
        }
        offset
    }

    /// The stride along the last axis.
    pub(crate) fn inner(&self) -> usize {
        self.strides.last().copied().unwrap_or(0)
    }
}

/// Drops size-1 axes and merges neighbours that every reader (and the
/// contiguous output) walks as one, then splits long rows (see
/// [`split_long_rows`]); returns the new dims, at least one.
///
/// The last row may then be shorter than the last dim: callers size a row
/// by the output slice they are given, not by the dims.
pub(crate) fn collapse(dims: &[usize], readers: &mut [Reader]) -> Vec<usize> {
    let mut dims = merge(dims, readers);
    split_long_rows(&mut dims, readers, super::threads() * 4);
    dims
}

/// The smallest piece of a row worth a thread of its own.
const MIN_PIECE: usize = 4096;

/// Splits the last axis when there are fewer than `pieces` rows and the
/// rows are long, so that `for_rows`, which hands out whole rows, can give
/// every thread work: an array that is contiguous all through merges into
/// a single row, which would otherwise run on one thread.
///
/// A lone axis of `n` becomes `[ceil(n / b), b]` (the last row short);
/// an inner axis is split only into equal parts.
fn split_long_rows(dims: &mut Vec<usize>, readers: &mut [Reader], pieces: usize) {
    let inner = *dims.last().expect("at least one axis");
    let rows: usize = dims[..dims.len() - 1].iter().product();
    if rows >= pieces || inner < 2 * MIN_PIECE {
        return;
    }
    let want = pieces.div_ceil(rows).min(inner / MIN_PIECE);
    let parts = if dims.len() == 1 {
        want
    } else {
        match (want..=2 * want).find(|&k| inner.is_multiple_of(k)) {
            Some(k) => k,
            None => return,
        }
    };
    if parts < 2 {
        return;
    }
    // A multiple of 64 keeps every row but the last on whole cache lines.
    let b = if dims.len() == 1 {
        inner.div_ceil(parts).div_ceil(64) * 64
    } else {
        inner / parts
    };
    *dims.last_mut().expect("at least one axis") = inner.div_ceil(b);
    dims.push(b);
    for r in readers.iter_mut() {
        let s = *r.strides.last().expect("at least one axis");
        *r.strides.last_mut().expect("at least one axis") = s * b;
        r.strides.push(s);
    }
}

/// Drops size-1 axes and merges neighbours that every reader (and the
/// contiguous output) walks as one; returns the new dims, at least one.
fn merge(dims: &[usize], readers: &mut [Reader]) -> Vec<usize> {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); readers.len()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = !out_dims.is_empty()
            && (0..readers.len()).all(|k| {
                let prev = *out_strides[k].last().expect("not empty");
                prev == readers[k].strides[i] * d
            });
        if mergeable {
            *out_dims.last_mut().expect("not empty") *= d;
            for (k, r) in readers.iter().enumerate() {
                *out_strides[k].last_mut().expect("not empty") = r.strides[i];
            }
        } else {
            out_dims.push(d);
            for (k, r) in readers.iter().enumerate() {
                out_strides[k].push(r.strides[i]);
            }
        }
    }
    if out_dims.is_empty() {
        out_dims.push(1);
        for s in &mut out_strides {
            s.push(0);
        }
    }
    for (r, s) in readers.iter_mut().zip(out_strides) {
        r.strides = s;
    }
    out_dims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(strides: &[usize]) -> Reader {
        Reader {
            start: 0,
            strides: strides.to_vec(),
        }
    }

    #[test]
    fn a_lone_long_axis_splits_into_rows_of_whole_cache_lines() {
        let mut dims = vec![77_100];
        let mut readers = [reader(&[1]), reader(&[3])];
        split_long_rows(&mut dims, &mut readers, 8);
        // ceil(77100 / 8) = 9638, up to a multiple of 64; the last row holds
        // the 9452 left.
        assert_eq!(dims, [8, 9664]);
        assert_eq!(readers[0].strides, [9664, 1]);
        assert_eq!(readers[1].strides, [3 * 9664, 3]);
        assert_eq!(readers[1].row_start(&dims, 7), 3 * 7 * 9664);
    }

    #[test]
    fn an_inner_axis_splits_only_into_equal_parts() {
        let mut dims = vec![2, 24_576];
        let mut readers = [reader(&[24_576, 1]), reader(&[0, 1])];
        split_long_rows(&mut dims, &mut readers, 8);
        assert_eq!(dims, [2, 4, 6144]);
        assert_eq!(readers[0].strides, [24_576, 6144, 1]);
        assert_eq!(readers[1].strides, [0, 6144, 1]);
        // 24579 = 9 × 2731 has no divisor in 4..=8: left whole.
        let mut dims = vec![2, 24_579];
        let mut readers = [reader(&[24_579, 1])];
        split_long_rows(&mut dims, &mut readers, 8);
        assert_eq!(dims, [2, 24_579]);
        // Enough rows already, or rows too short to be worth it.
        for start in [vec![8, 100_000], vec![1, 8000]] {
            let mut dims = start.clone();
            split_long_rows(&mut dims, &mut [reader(&[0, 1])], 8);
            assert_eq!(dims, start);
        }
    }
}
