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
/// contiguous output) walks as one; returns the new dims, at least one.
pub(crate) fn collapse(dims: &[usize], readers: &mut [Reader]) -> Vec<usize> {
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
