//! The public operations on [`Array`].
//!
//! Each checks its arguments on logical shapes (which tracers know too), so
//! that a mistake is reported in solstice's words, naming the operation and
//! the shapes, and then binds a primitive. Composite operations (softmax,
//! mean, matmul of vectors, ...) are written in terms of primitives, so `vmap`
//! and `grad` see through them.

use super::prim::{CmpOp, Prim};
use super::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

/// Numpy's broadcasting of two shapes, or `None` if they do not broadcast.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Resolves a possibly negative axis against `rank`.
pub(crate) fn resolve_axis(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::shape(format!(
            "{op} got axis {axis} for an array of rank {rank}"
        )));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

pub(super) fn resolve_axes(op: &str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &axis in axes {
        let a = resolve_axis(op, axis, rank)?;
        if out.contains(&a) {
            return Err(Error::shape(format!("{op} got axis {axis} twice")));
        }
        out.push(a);
    }
    out.sort_unstable();
    Ok(out)
}

impl Array {
    pub(super) fn unary(&self, prim: Prim) -> Result<Array> {
        if !self.dtype().is_float() && prim.is_float_only() {
            return Err(Error::dtype(format!(
                "{} needs a float array but got {}",
                prim.name(),
                self.short_description()
            )));
        }
        bind(prim, &[self])
    }

    /// Elementwise `-x` (wrapping for integers, as in JAX).
    pub fn neg(&self) -> Result<Array> {
        if !self.dtype().is_float() {
            self.check_value("neg")?;
            return Array::zeros(&[], self.dtype())?.sub(self);
        }
        self.unary(Prim::Neg)
    }

    /// Elementwise `e^x`.
    pub fn exp(&self) -> Result<Array> {
        self.unary(Prim::Exp)
    }

    /// Elementwise natural logarithm.
    pub fn log(&self) -> Result<Array> {
        self.unary(Prim::Log)
    }

    /// Elementwise hyperbolic tangent.
    pub fn tanh(&self) -> Result<Array> {
        self.unary(Prim::Tanh)
    }

    /// Elementwise square root.
    pub fn sqrt(&self) -> Result<Array> {
        self.unary(Prim::Sqrt)
    }

    /// Elementwise sine.
    pub fn sin(&self) -> Result<Array> {
        self.unary(Prim::Sin)
    }

    /// Elementwise cosine.
    pub fn cos(&self) -> Result<Array> {
        self.unary(Prim::Cos)
    }

    /// Elementwise absolute value.
    pub fn abs(&self) -> Result<Array> {
        self.unary(Prim::Abs)
    }

    /// Elementwise sign: -1, 0 or 1. Its derivative is zero.
    pub fn sign(&self) -> Result<Array> {
        self.unary(Prim::Sign)
    }

    /// Elementwise error function.
    pub fn erf(&self) -> Result<Array> {
        self.unary(Prim::Erf)
    }

    /// Elementwise `x * x`.
    pub fn square(&self) -> Result<Array> {
        self.mul(self)
    }

    /// Elementwise `1 / (1 + e^-x)`, computed as `(1 + tanh(x / 2)) / 2`,
    /// which neither overflows nor gives a NaN derivative for large `|x|`.
    pub fn sigmoid(&self) -> Result<Array> {
        self.mul_scalar(0.5)?
            .tanh()?
            .add_scalar(1.0)?
            .mul_scalar(0.5)
    }

    /// Elementwise `max(x, 0)`, as `jax.nn.relu`: NaN stays NaN, and the
    /// derivative is 1 where `x > 0` and 0 elsewhere (at 0 and at NaN).
    pub fn relu(&self) -> Result<Array> {
        let zero = self.full_like_scalar(0.0)?;
        let positive = self.compare(&zero, CmpOp::Gt)?;
        if !self.dtype().is_float() {
            return positive.select(self, &zero);
        }
        // A NaN passes through as a constant, so it carries no derivative.
        let nan = self.compare(self, CmpOp::Ne)?;
        let rest = nan.select(&self.stop_gradient()?, &zero)?;
        positive.select(self, &rest)
    }

    /// A 0-d constant of this array's dtype, for mixing with scalars.
    pub(super) fn full_like_scalar(&self, value: f64) -> Result<Array> {
        Array::scalar_of(value, self.dtype())
    }

    /// A constant of this array's shape and dtype filled with `value`. It
    /// does not depend on `self`'s values, so it carries no derivative.
    pub fn full_like(&self, value: f64) -> Result<Array> {
        self.check_value("full_like")?;
        Array::full(self.shape(), value, self.dtype())
    }

    pub(super) fn binary(&self, other: &Array, prim: Prim) -> Result<Array> {
        let name = prim.name();
        self.check_value(name)?;
        other.check_value(name)?;
        if self.dtype() != other.dtype() {
            return Err(Error::dtype(format!(
                "{name} got arrays of different dtypes, {} and {}; convert one with `astype`",
                self.short_description(),
                other.short_description()
            )));
        }
        if broadcast_shapes(self.shape(), other.shape()).is_none() {
            return Err(Error::shape(format!(
                "{name} got shapes {:?} and {:?}, which do not broadcast",
                self.shape(),
                other.shape()
            )));
        }
        // The kernel broadcasts, so no broadcast is materialised, and the VJP
        // rules sum cotangents back to each input's shape.
        bind(prim, &[self, other])
    }

    /// Elementwise `self + other`, with numpy broadcasting.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Array::from_vec(vec![10.0f32, 20.0], &[2])?;
    /// assert_eq!(a.add(&b)?.to_vec::<f32>()?, vec![11.0, 22.0, 13.0, 24.0]);
    /// let c = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
    /// let err = a.add(&c).unwrap_err();
    /// assert_eq!(err.to_string(), "add got shapes [2, 2] and [3], which do not broadcast");
    /// # Ok(()) }
    /// ```
    pub fn add(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Add)
    }

    /// Elementwise `self - other`, with numpy broadcasting.
    pub fn sub(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Sub)
    }

    /// Elementwise `self * other`, with numpy broadcasting.
    pub fn mul(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Mul)
    }

    /// Elementwise maximum, with numpy broadcasting.
    pub fn maximum(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Maximum)
    }

    /// Elementwise minimum, with numpy broadcasting.
    pub fn minimum(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Minimum)
    }

    /// `self + value`, with `value` in this array's dtype.
    pub fn add_scalar(&self, value: f64) -> Result<Array> {
        self.add(&self.full_like_scalar(value)?)
    }

    /// `self * value`, with `value` in this array's dtype.
    pub fn mul_scalar(&self, value: f64) -> Result<Array> {
        self.mul(&self.full_like_scalar(value)?)
    }

    /// Elementwise comparison, giving `u8` 0 or 1, with numpy broadcasting.
    pub fn compare(&self, other: &Array, op: CmpOp) -> Result<Array> {
        self.binary(other, Prim::Compare(op))
    }

    /// Elementwise `self == other` as `u8` 0 or 1.
    pub fn eq(&self, other: &Array) -> Result<Array> {
        self.compare(other, CmpOp::Eq)
    }

    /// Picks `on_true` where `self` (a `u8` condition) is non-zero and
    /// `on_false` elsewhere, with numpy broadcasting of all three.
    pub fn select(&self, on_true: &Array, on_false: &Array) -> Result<Array> {
        for a in [self, on_true, on_false] {
            a.check_value("select")?;
        }
        if self.dtype() != DType::U8 {
            return Err(Error::dtype(format!(
                "select needs a u8 condition but got {}",
                self.short_description()
            )));
        }
        if on_true.dtype() != on_false.dtype() {
            return Err(Error::dtype(format!(
                "select got branches of different dtypes, {} and {}",
                on_true.short_description(),
                on_false.short_description()
            )));
        }
        let fits = broadcast_shapes(self.shape(), on_true.shape())
            .and_then(|s| broadcast_shapes(&s, on_false.shape()))
            .is_some();
        if !fits {
            return Err(Error::shape(format!(
                "select got shapes {:?}, {:?} and {:?}, which do not broadcast",
                self.shape(),
                on_true.shape(),
                on_false.shape()
            )));
        }
        bind(Prim::Select, &[self, on_true, on_false])
    }

    /// The same elements in a new shape with the same number of elements.
    pub fn reshape(&self, shape: &[usize]) -> Result<Array> {
        self.check_value("reshape")?;
        let count: usize = shape.iter().product();
        if count != self.elem_count() {
            return Err(Error::shape(format!(
                "reshape cannot turn shape {:?} into {shape:?}: {} elements against {count}",
                self.shape(),
                self.elem_count()
            )));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        bind(Prim::Reshape(shape.to_vec()), &[self])
    }

    /// Permutes the axes: output axis `i` is input axis `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<Array> {
        self.check_value("transpose")?;
        let mut seen = vec![false; self.rank()];
        let valid = perm.len() == self.rank()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::shape(format!(
                "transpose got permutation {perm:?} for an array of shape {:?}",
                self.shape()
            )));
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        bind(Prim::Permute(perm.to_vec()), &[self])
    }

    /// Reverses the axes, as `jnp.transpose(x)` does: a matrix's transpose.
    pub fn t(&self) -> Result<Array> {
        let perm: Vec<usize> = (0..self.rank()).rev().collect();
        self.transpose(&perm)
    }

    /// Moves axis `from` to position `to`, keeping the others in order.
    pub fn moveaxis(&self, from: isize, to: isize) -> Result<Array> {
        let from = resolve_axis("moveaxis", from, self.rank())?;
        let to = resolve_axis("moveaxis", to, self.rank())?;
        let mut perm: Vec<usize> = (0..self.rank()).filter(|&a| a != from).collect();
        perm.insert(to, from);
        self.transpose(&perm)
    }

    /// Broadcasts to `shape` by numpy's rules, without copying data.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Array> {
        self.check_value("broadcast_to")?;
        if self.shape() == shape {
            return Ok(self.clone());
        }
        if broadcast_shapes(self.shape(), shape).as_deref() != Some(shape) {
            return Err(Error::shape(format!(
                "broadcast_to cannot broadcast shape {:?} to {shape:?}",
                self.shape()
            )));
        }
        bind(Prim::BroadcastTo(shape.to_vec()), &[self])
    }

    /// Inserts an axis of size 1 at `axis`.
    pub fn expand_dims(&self, axis: isize) -> Result<Array> {
        let axis = resolve_axis("expand_dims", axis, self.rank() + 1)?;
        let mut shape = self.shape().to_vec();
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Removes the axis `axis`, which must have size 1.
    pub fn squeeze(&self, axis: isize) -> Result<Array> {
        let axis = resolve_axis("squeeze", axis, self.rank())?;
        if self.shape()[axis] != 1 {
            return Err(Error::shape(format!(
                "squeeze needs axis {axis} of shape {:?} to have size 1",
                self.shape()
            )));
        }
        let mut shape = self.shape().to_vec();
        shape.remove(axis);
        self.reshape(&shape)
    }

    /// Converts the elements to `dtype`.
    pub fn astype(&self, dtype: DType) -> Result<Array> {
        self.check_value("astype")?;
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        bind(Prim::Convert(dtype), &[self])
    }

    /// Sums over `axes` (negative axes count from the end), removing them.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(a.sum(&[-1])?.to_vec::<f32>()?, vec![6.0, 15.0]);
    /// assert_eq!(a.sum(&[0])?.to_vec::<f32>()?, vec![5.0, 7.0, 9.0]);
    /// # Ok(()) }
    /// ```
    ///
    /// Sums of `u8` (such as comparison masks) are `u32`, as JAX widens
    /// small integers, so counting a mask does not wrap at 256.
    pub fn sum(&self, axes: &[isize]) -> Result<Array> {
        self.check_value("sum")?;
        let axes = resolve_axes("sum", axes, self.rank())?;
        let x = if self.dtype() == DType::U8 {
            self.astype(DType::U32)?
        } else {
            self.clone()
        };
        if axes.is_empty() {
            return Ok(x);
        }
        bind(Prim::Sum(axes), &[&x])
    }

    /// Sums every element into a 0-d array.
    pub fn sum_all(&self) -> Result<Array> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum(&axes)
    }

    /// The mean over `axes`, removing them.
    /// The mean of an integer array is `f32`, as in JAX.
    pub fn mean(&self, axes: &[isize]) -> Result<Array> {
        self.check_value("mean")?;
        let resolved = resolve_axes("mean", axes, self.rank())?;
        let count: usize = resolved.iter().map(|&a| self.shape()[a]).product();
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.astype(DType::F32)?
        };
        x.sum(axes)?.mul_scalar(1.0 / count as f64)
    }

    /// The mean of every element, as a 0-d array.
    pub fn mean_all(&self) -> Result<Array> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        self.mean(&axes)
    }

    /// The maximum over `axes`, removing them.
    pub fn max(&self, axes: &[isize]) -> Result<Array> {
        self.check_value("max")?;
        let axes = resolve_axes("max", axes, self.rank())?;
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] == 0) {
            return Err(Error::shape(format!(
                "max over axis {a} of shape {:?}, which is empty, has no identity",
                self.shape()
            )));
        }
        if axes.is_empty() {
            return Ok(self.clone());
        }
        bind(Prim::Max(axes), &[self])
    }

    /// Matrix product with numpy's rules: 1-d operands are vectors, and
    /// leading dimensions broadcast.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let w = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let x = Array::from_vec(vec![1.0f32, 0.0, -1.0], &[3])?;
    /// assert_eq!(w.matmul(&x)?.to_vec::<f32>()?, vec![-2.0, -2.0]);
    /// assert!(x.matmul(&w).unwrap_err().is_shape_mismatch());
    /// # Ok(()) }
    /// ```
    pub fn matmul(&self, other: &Array) -> Result<Array> {
        self.check_value("matmul")?;
        other.check_value("matmul")?;
        if !self.dtype().is_float() {
            return Err(Error::dtype(format!(
                "matmul multiplies float arrays but got {}; convert with `astype`",
                self.short_description()
            )));
        }
        if self.dtype() != other.dtype() {
            return Err(Error::dtype(format!(
                "matmul got arrays of different dtypes, {} and {}",
                self.short_description(),
                other.short_description()
            )));
        }
        let mismatch = || {
            Error::shape(format!(
                "matmul got shapes {:?} and {:?}, whose inner dimensions differ",
                self.shape(),
                other.shape()
            ))
        };
        if self.rank() == 0 || other.rank() == 0 {
            return Err(Error::shape(format!(
                "matmul needs arrays of rank 1 or more but got shapes {:?} and {:?}",
                self.shape(),
                other.shape()
            )));
        }
        let a = if self.rank() == 1 {
            self.expand_dims(0)?
        } else {
            self.clone()
        };
        let b = if other.rank() == 1 {
            other.expand_dims(-1)?
        } else {
            other.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        if a.shape()[ra - 1] != b.shape()[rb - 2] {
            return Err(mismatch());
        }
        let (batch_a, batch_b) = (&a.shape()[..ra - 2], &b.shape()[..rb - 2]);
        let batch = broadcast_shapes(batch_a, batch_b).ok_or_else(|| {
            Error::shape(format!(
                "matmul got shapes {:?} and {:?}, whose batch dimensions {batch_a:?} and \
                 {batch_b:?} do not broadcast",
                self.shape(),
                other.shape()
            ))
        })?;
        let with_batch = |x: &Array, r: usize| -> Result<Array> {
            let mut shape = batch.clone();
            shape.extend_from_slice(&x.shape()[r - 2..]);
            x.broadcast_to(&shape)
        };
        let (a, b) = (with_batch(&a, ra)?, with_batch(&b, rb)?);
        let mut out = bind(Prim::MatMul, &[&a, &b])?;
        if self.rank() == 1 {
            out = out.squeeze(-2)?;
        }
        if other.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        Ok(out)
    }

    /// Picks the entries at `indices` along `axis`: numpy's `take`. The
    /// result's shape is `shape[..axis] ++ indices.shape ++ shape[axis+1..]`.
    /// Indices out of range are an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let table = Array::from_vec(vec![0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0], &[3, 2])?;
    /// let row = table.take(&Array::scalar(2u32)?, 0)?;
    /// assert_eq!(row.shape(), &[2]);
    /// assert_eq!(row.to_vec::<f32>()?, vec![20.0, 21.0]);
    /// # Ok(()) }
    /// ```
    pub fn take(&self, indices: &Array, axis: isize) -> Result<Array> {
        self.check_value("take")?;
        indices.check_value("take")?;
        if !indices.dtype().is_int() {
            return Err(Error::dtype(format!(
                "take needs integer indices but got {}",
                indices.short_description()
            )));
        }
        let axis = resolve_axis("take", axis, self.rank())?;
        let flat = indices.reshape(&[indices.elem_count()])?;
        let picked = bind(Prim::Take(axis), &[self, &flat])?;
        let mut shape = self.shape()[..axis].to_vec();
        shape.extend_from_slice(indices.shape());
        shape.extend_from_slice(&self.shape()[axis + 1..]);
        picked.reshape(&shape)
    }

    /// Adds `source` into a copy of `self` at `indices` (1-d) along `axis`,
    /// summing repeated indices: the transpose of [`Array::take`].
    pub fn index_add(&self, indices: &Array, source: &Array, axis: isize) -> Result<Array> {
        for a in [self, indices, source] {
            a.check_value("index_add")?;
        }
        let axis = resolve_axis("index_add", axis, self.rank())?;
        if !indices.dtype().is_int() || indices.rank() != 1 {
            return Err(Error::dtype(format!(
                "index_add needs 1-d integer indices but got {}",
                indices.short_description()
            )));
        }
        let mut expected = self.shape().to_vec();
        expected[axis] = indices.shape()[0];
        if source.shape() != expected.as_slice() || source.dtype() != self.dtype() {
            return Err(Error::shape(format!(
                "index_add into {} along axis {axis} with {} indices needs a source of shape {expected:?} and dtype {} but got {}",
                self.short_description(),
                indices.shape()[0],
                self.dtype(),
                source.short_description()
            )));
        }
        bind(Prim::IndexAdd(axis), &[self, indices, source])
    }

    /// The same values, with zero derivative: `grad` does not look through it.
    pub fn stop_gradient(&self) -> Result<Array> {
        self.check_value("stop_gradient")?;
        bind(Prim::StopGradient, &[self])
    }
}

/// `labels` (integers, any shape) as one-hot vectors of length `n` along a
/// new last axis, in `dtype`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, DType, one_hot};
/// # fn main() -> solstice::Result<()> {
/// let h = one_hot(&Array::from_vec(vec![2u32, 0], &[2])?, 3, DType::F32)?;
/// assert_eq!(h.to_vec::<f32>()?, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// # Ok(()) }
/// ```
pub fn one_hot(labels: &Array, n: usize, dtype: DType) -> Result<Array> {
    if !labels.dtype().is_int() {
        return Err(Error::dtype(format!(
            "one_hot needs integer labels but got {}",
            labels.short_description()
        )));
    }
    // Compared as i64, so `n` need not fit the labels' dtype.
    let classes = Array::arange(n, DType::I64)?;
    labels
        .astype(DType::I64)?
        .expand_dims(-1)?
        .eq(&classes)?
        .astype(dtype)
}
