//! Sorting, joining and slicing: `sort`/`argsort`/`top_k`,
//! `take_along_axis`, `concatenate`/`stack`/`split`, slicing by ranges and
//! the `dynamic_slice`/`dynamic_update_slice` pair.
//!
//! Sorting and joining are primitives (`Argsort`, `Concat`); everything
//! else is a composition of `take` and `index_add` gathers with index
//! arrays computed from the (possibly traced) positions, so that a start
//! position may differ per example under `vmap` and gradients flow to both
//! the operand and the update.

use std::ops::Range;

use super::ops::resolve_axis;
use super::prim::Prim;
use super::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

impl Array {
    fn sort_indices(&self, axis: isize, descending: bool, k: Option<usize>) -> Result<Array> {
        self.check_value("argsort")?;
        let axis = resolve_axis("argsort", axis, self.rank())?;
        let n = self.shape()[axis];
        let k = k.unwrap_or(n);
        if k > n {
            return Err(Error::shape(format!(
                "top_k asks for k = {k} but axis {axis} of shape {:?} holds {n}",
                self.shape()
            )));
        }
        bind(
            Prim::Argsort {
                axis,
                descending,
                k,
            },
            &[self],
        )
    }

    /// The indices (`i32`) that sort along `axis`, ascending, ties in their
    /// original order, NaNs last: `jnp.argsort` (stable).
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec(vec![3.0f32, 1.0, 2.0, 1.0], &[4])?;
    /// assert_eq!(x.argsort(0)?.to_vec::<i32>()?, vec![1, 3, 2, 0]);
    /// assert_eq!(x.argsort_descending(0)?.to_vec::<i32>()?, vec![0, 2, 1, 3]);
    /// assert_eq!(x.sort(0)?.to_vec::<f32>()?, vec![1.0, 1.0, 2.0, 3.0]);
    /// # Ok(()) }
    /// ```
    pub fn argsort(&self, axis: isize) -> Result<Array> {
        self.sort_indices(axis, false, None)
    }

    /// The indices (`i32`) that sort along `axis`, descending, ties in
    /// their original order, NaNs first: `jnp.argsort(x, descending=True)`.
    pub fn argsort_descending(&self, axis: isize) -> Result<Array> {
        self.sort_indices(axis, true, None)
    }

    /// The values sorted along `axis`, ascending, NaNs last: `jnp.sort`.
    /// The derivative follows each value to its place.
    pub fn sort(&self, axis: isize) -> Result<Array> {
        self.take_along_axis(&self.argsort(axis)?, axis)
    }

    /// The values sorted along `axis`, descending, NaNs first:
    /// `jnp.sort(x, descending=True)`, the ascending sort reversed (so the
    /// derivative of tied values is routed as in JAX).
    pub fn sort_descending(&self, axis: isize) -> Result<Array> {
        let sorted = self.sort(axis)?;
        let a = resolve_axis("sort", axis, self.rank())?;
        let n = self.shape()[a];
        let reversed = Array::arange(n, DType::I64)?
            .neg()?
            .add_scalar(n as f64 - 1.0)?;
        sorted.take(&reversed, axis)
    }

    /// The `k` largest values along the last axis and their indices
    /// (`i32`), largest first, ties by lower index: `jax.lax.top_k`. The
    /// derivative flows to the chosen values.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let logits = Array::from_vec(vec![0.1f32, 2.0, -1.0, 2.0, 0.5], &[5])?;
    /// let (values, indices) = logits.top_k(3)?;
    /// assert_eq!(values.to_vec::<f32>()?, vec![2.0, 2.0, 0.5]);
    /// assert_eq!(indices.to_vec::<i32>()?, vec![1, 3, 4]);
    /// # Ok(()) }
    /// ```
    pub fn top_k(&self, k: usize) -> Result<(Array, Array)> {
        if self.rank() == 0 {
            return Err(Error::shape(
                "top_k needs an array of rank 1 or more but got a 0-d array",
            ));
        }
        let indices = self.sort_indices(-1, true, Some(k))?;
        Ok((self.take_along_axis(&indices, -1)?, indices))
    }

    /// Picks, along `axis`, the entries that `indices` names for each
    /// position of the other axes: `jnp.take_along_axis`. `indices` has
    /// this array's rank and shape except along `axis`. Indices out of range
    /// are an error.
    pub fn take_along_axis(&self, indices: &Array, axis: isize) -> Result<Array> {
        self.check_value("take_along_axis")?;
        indices.check_value("take_along_axis")?;
        let axis = resolve_axis("take_along_axis", axis, self.rank())?;
        let fits = indices.rank() == self.rank()
            && (0..self.rank()).all(|d| d == axis || indices.shape()[d] == self.shape()[d]);
        if !indices.dtype().is_int() || !fits {
            return Err(Error::shape(format!(
                "take_along_axis along axis {axis} of {} needs integer indices of the same \
                 shape except along that axis but got {}",
                self.short_description(),
                indices.short_description()
            )));
        }
        let n = self.shape()[axis];
        // Move the axis last and flatten: row `r` of the table starts at
        // `r * n`, so one gather serves every row.
        let x = self.moveaxis(axis as isize, -1)?;
        let idx = indices.moveaxis(axis as isize, -1)?;
        let k = idx.shape()[idx.rank() - 1];
        let rows: usize = x.shape()[..x.rank() - 1].iter().product();
        let idx = bind(Prim::CheckIndices(n), &[&idx])?
            .astype(DType::I64)?
            .reshape(&[rows, k])?;
        let offsets = Array::arange(rows, DType::I64)?
            .mul_scalar(n as f64)?
            .expand_dims(1)?;
        let flat = x.reshape(&[rows * n])?;
        let picked = flat.take(&idx.add(&offsets)?, 0)?;
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank is at least 1") = k;
        picked.reshape(&shape)?.moveaxis(-1, axis as isize)
    }

    /// The elements in `range` along `axis`: `x[..., start:end, ...]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec((0..12).map(|i| i as f32).collect(), &[3, 4])?;
    /// assert_eq!(x.slice_axis(1, 1..3)?.to_vec::<f32>()?, vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    /// assert_eq!(x.slice(&[2..3, 0..2])?.to_vec::<f32>()?, vec![8.0, 9.0]);
    /// # Ok(()) }
    /// ```
    pub fn slice_axis(&self, axis: isize, range: Range<usize>) -> Result<Array> {
        self.check_value("slice")?;
        let axis = resolve_axis("slice", axis, self.rank())?;
        let n = self.shape()[axis];
        if range.start > range.end || range.end > n {
            return Err(Error::shape(format!(
                "slice got range {range:?} for axis {axis} of shape {:?}",
                self.shape()
            )));
        }
        if range.start == 0 && range.end == n {
            return Ok(self.clone());
        }
        let indices =
            Array::arange(range.end - range.start, DType::I64)?.add_scalar(range.start as f64)?;
        self.take(&indices, axis as isize)
    }

    /// The elements in `ranges`, one range per leading axis (later axes are
    /// kept whole): `x[a:b, c:d]`.
    pub fn slice(&self, ranges: &[Range<usize>]) -> Result<Array> {
        if ranges.len() > self.rank() {
            return Err(Error::shape(format!(
                "slice got {} ranges for an array of shape {:?}",
                ranges.len(),
                self.shape()
            )));
        }
        let mut out = self.clone();
        for (axis, range) in ranges.iter().enumerate() {
            out = out.slice_axis(axis as isize, range.clone())?;
        }
        Ok(out)
    }

    /// Splits into `sections` equal parts along `axis`: `jnp.split(x, n)`.
    pub fn split(&self, sections: usize, axis: isize) -> Result<Vec<Array>> {
        let a = resolve_axis("split", axis, self.rank())?;
        let n = self.shape()[a];
        if sections == 0 || !n.is_multiple_of(sections) {
            return Err(Error::shape(format!(
                "split cannot cut axis {a} of shape {:?} into {sections} equal parts",
                self.shape()
            )));
        }
        let points: Vec<usize> = (1..sections).map(|i| i * n / sections).collect();
        self.split_at(&points, axis)
    }

    /// Splits along `axis` before each of the increasing `points`:
    /// `jnp.split(x, [p1, p2, ...])`, giving `points.len() + 1` parts.
    pub fn split_at(&self, points: &[usize], axis: isize) -> Result<Vec<Array>> {
        let a = resolve_axis("split", axis, self.rank())?;
        let n = self.shape()[a];
        let mut bounds = vec![0];
        bounds.extend_from_slice(points);
        bounds.push(n);
        if bounds.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::shape(format!(
                "split needs increasing points within 0..={n} but got {points:?}"
            )));
        }
        bounds
            .windows(2)
            .map(|w| self.slice_axis(axis, w[0]..w[1]))
            .collect()
    }

    /// `size` elements along `axis` from the traced position `start` (a
    /// 0-d integer array), which is clamped so the slice fits, as
    /// `lax.dynamic_slice_in_dim` does. `start` may differ per example under
    /// `vmap`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec((0..5).map(|i| i as f32).collect(), &[5])?;
    /// let at = |i: i32| Array::scalar(i);
    /// assert_eq!(x.dynamic_slice_in_dim(&at(1)?, 2, 0)?.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// // Clamped: a slice of 2 starts at 3 at the latest.
    /// assert_eq!(x.dynamic_slice_in_dim(&at(9)?, 2, 0)?.to_vec::<f32>()?, vec![3.0, 4.0]);
    /// # Ok(()) }
    /// ```
    pub fn dynamic_slice_in_dim(&self, start: &Array, size: usize, axis: isize) -> Result<Array> {
        let axis = resolve_axis("dynamic_slice", axis, self.rank())?;
        let indices = window("dynamic_slice", start, size, self.shape()[axis])?;
        self.take(&indices, axis as isize)
    }

    /// The block of shape `sizes` starting at `starts` (one 0-d integer
    /// array per axis), each start clamped so the block fits:
    /// `lax.dynamic_slice`.
    pub fn dynamic_slice(&self, starts: &[&Array], sizes: &[usize]) -> Result<Array> {
        self.check_value("dynamic_slice")?;
        if starts.len() != self.rank() || sizes.len() != self.rank() {
            return Err(Error::shape(format!(
                "dynamic_slice of shape {:?} needs one start and one size per axis but got \
                 {} starts and sizes {sizes:?}",
                self.shape(),
                starts.len()
            )));
        }
        let mut out = self.clone();
        for (axis, (start, &size)) in starts.iter().zip(sizes).enumerate() {
            out = out.dynamic_slice_in_dim(start, size, axis as isize)?;
        }
        Ok(out)
    }

    /// A copy with `update` written along `axis` from the traced position
    /// `start` (clamped so it fits): `lax.dynamic_update_slice_in_dim`, the
    /// write of a key/value cache. `update` has this array's shape except
    /// along `axis`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// # fn main() -> solstice::Result<()> {
    /// let cache = Array::zeros(&[4, 2], DType::F32)?;
    /// let row = Array::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
    /// let cache = cache.dynamic_update_slice_in_dim(&row, &Array::scalar(2i32)?, 0)?;
    /// assert_eq!(cache.to_vec::<f32>()?, vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    /// # Ok(()) }
    /// ```
    pub fn dynamic_update_slice_in_dim(
        &self,
        update: &Array,
        start: &Array,
        axis: isize,
    ) -> Result<Array> {
        let axis = resolve_axis("dynamic_update_slice", axis, self.rank())?;
        let zero = Array::scalar(0i64)?;
        let starts: Vec<&Array> = (0..self.rank())
            .map(|d| if d == axis { start } else { &zero })
            .collect();
        self.dynamic_update_slice(update, &starts)
    }

    /// A copy with the block `update` written at `starts` (one 0-d integer
    /// array per axis), each start clamped so the block fits:
    /// `lax.dynamic_update_slice`. The derivative flows to `update` inside
    /// the block and to `self` outside it.
    pub fn dynamic_update_slice(&self, update: &Array, starts: &[&Array]) -> Result<Array> {
        self.check_value("dynamic_update_slice")?;
        update.check_value("dynamic_update_slice")?;
        let fits = update.rank() == self.rank()
            && starts.len() == self.rank()
            && update.shape().iter().zip(self.shape()).all(|(u, n)| u <= n);
        if !fits || update.dtype() != self.dtype() {
            return Err(Error::shape(format!(
                "dynamic_update_slice into {} needs an update of the same rank and dtype, no \
                 larger along any axis, and one start per axis, but got {} and {} starts",
                self.short_description(),
                update.short_description(),
                starts.len()
            )));
        }
        // Scatter the update into zeros of the full shape, axis by axis, and
        // mark where it landed; then pick it there and `self` elsewhere.
        let mut placed = update.clone();
        let mut mask: Option<Array> = None;
        for (axis, start) in starts.iter().enumerate() {
            let (u, n) = (update.shape()[axis], self.shape()[axis]);
            if u == n {
                // The whole axis: the start clamps to 0, nothing moves.
                start.check_value("dynamic_update_slice")?;
                continue;
            }
            let indices = window("dynamic_update_slice", start, u, n)?;
            let mut shape = placed.shape().to_vec();
            shape[axis] = n;
            placed = Array::zeros(&shape, placed.dtype())?.index_add(
                &indices,
                &placed,
                axis as isize,
            )?;
            let mut along = vec![1; self.rank()];
            along[axis] = n;
            let hit = Array::zeros(&[n], DType::U8)?
                .index_add(&indices, &Array::ones(&[u], DType::U8)?, 0)?
                .reshape(&along)?;
            mask = Some(match mask {
                Some(m) => m.mul(&hit)?,
                None => hit,
            });
        }
        match mask {
            Some(mask) => mask.select(&placed, self),
            // The update covers everything.
            None => Ok(placed),
        }
    }
}

/// `start + [0, size)` with `start` clamped to `0..=n - size`, as `i64`.
fn window(op: &str, start: &Array, size: usize, n: usize) -> Result<Array> {
    start.check_value(op)?;
    if start.rank() != 0 || !start.dtype().is_int() {
        return Err(Error::shape(format!(
            "{op} needs each start to be a 0-d integer array but got {}",
            start.short_description()
        )));
    }
    if size > n {
        return Err(Error::shape(format!(
            "{op} asks for {size} elements of an axis of {n}"
        )));
    }
    let start = start
        .astype(DType::I64)?
        .maximum(&Array::scalar(0i64)?)?
        .minimum(&Array::scalar((n - size) as i64)?)?;
    Array::arange(size, DType::I64)?.add(&start)
}

/// The arrays joined along `axis`: `jnp.concatenate`. They have one dtype
/// and equal shapes except along `axis`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, concatenate, stack};
/// # fn main() -> solstice::Result<()> {
/// let a = Array::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let b = Array::from_vec(vec![3.0f32, 4.0, 5.0, 6.0], &[2, 2])?;
/// assert_eq!(concatenate(&[&a, &b], 0)?.shape(), &[3, 2]);
/// assert_eq!(stack(&[&b, &b], 0)?.shape(), &[2, 2, 2]);
/// # Ok(()) }
/// ```
pub fn concatenate(arrays: &[&Array], axis: isize) -> Result<Array> {
    let first = arrays
        .first()
        .ok_or_else(|| Error::shape("concatenate needs at least one array"))?;
    for a in arrays {
        a.check_value("concatenate")?;
    }
    let axis = resolve_axis("concatenate", axis, first.rank())?;
    for a in arrays {
        let fits = a.rank() == first.rank()
            && (0..a.rank()).all(|d| d == axis || a.shape()[d] == first.shape()[d]);
        if !fits || a.dtype() != first.dtype() {
            return Err(Error::shape(format!(
                "concatenate along axis {axis} needs one dtype and equal shapes elsewhere but \
                 got {} and {}",
                first.short_description(),
                a.short_description()
            )));
        }
    }
    if arrays.len() == 1 {
        return Ok((*first).clone());
    }
    bind(Prim::Concat(axis), arrays)
}

/// The arrays, of one shape and dtype, stacked along a new `axis`:
/// `jnp.stack`.
pub fn stack(arrays: &[&Array], axis: isize) -> Result<Array> {
    let first = arrays
        .first()
        .ok_or_else(|| Error::shape("stack needs at least one array"))?;
    let axis = resolve_axis("stack", axis, first.rank() + 1)?;
    for a in arrays {
        a.check_value("stack")?;
        if a.shape() != first.shape() {
            return Err(Error::shape(format!(
                "stack needs arrays of one shape but got {} and {}",
                first.short_description(),
                a.short_description()
            )));
        }
    }
    let expanded = arrays
        .iter()
        .map(|a| a.expand_dims(axis as isize))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Array> = expanded.iter().collect();
    concatenate(&refs, axis as isize)
}
