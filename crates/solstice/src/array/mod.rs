//! [`Array`]: the one array type of solstice.
//!
//! An `Array` is an immutable n-d array that is cheap to clone: clones share
//! storage and identity, so `a.clone().is(&a)` holds, as Python's `is` does
//! for the same JAX array. Every numeric operation goes through this type,
//! which is what lets `vmap` and `grad` see each operation.
//!
//! An `Array` is one of:
//! - a **value**: data in memory, computed eagerly;
//! - a **tracer**: the stand-in for a value inside an active transformation
//!   (`vmap`, `grad`); operations on it are recorded or batched;
//! - a **hole**: *absent* (Equinox's `None` in a filtered tree or gradient)
//!   or a *placeholder* (Equinox's `SharedNode`, left by
//!   [`Shared`](crate::nn::Shared)). A hole has no shape and no data, and using
//!   it as a number is an error that says how to get the real value;
//! - a **shape-and-dtype stand-in** (JAX's `ShapeDtypeStruct`): what
//!   [`eval_shape`](crate::eval_shape) returns, and may be given, in place
//!   of an array. It has a shape and a dtype but no data.

pub(crate) mod adam;
pub(crate) mod cpu;
mod dtype;
mod einsum;
mod fused;
mod kernels;
mod kernels_ext;
mod matmul;
mod operators;
mod ops;
mod ops_index;
mod ops_math;
pub use einsum::einsum;
pub use ops::one_hot;
pub use ops_index::{concatenate, stack};
pub use ops_math::where_cond;
pub(crate) mod prim;
mod shape_rules;
#[cfg(test)]
mod shape_rules_tests;
pub use prim::CmpOp;
pub(crate) use shape_rules::Aval;

use std::sync::Arc;

use candle_core::{Device, Tensor};

pub use dtype::{DType, Element};
pub(crate) use kernels::eval as eval_kernel;
pub(crate) use ops::{broadcast_shapes, resolve_axis};

use crate::error::{Error, Kind, Result};
use crate::transform::trace::Tracer;

/// An immutable n-d array that is cheap to clone. See the [module docs](self).
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// # fn main() -> solstice::Result<()> {
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = a.clone();
/// assert!(a.is(&b));
/// let c = a.add(&b)?;
/// assert_eq!(c.to_vec::<f32>()?, vec![2.0, 4.0, 6.0, 8.0]);
/// assert!(!c.is(&a));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Array(Arc<Node>);

struct Node {
    shape: Vec<usize>,
    dtype: DType,
    body: Body,
}

enum Body {
    Value(Tensor),
    Tracer(Tracer),
    /// A shape and dtype without data (`ShapeDtypeStruct`).
    Shaped,
    Absent,
    /// A `Shared` placeholder; the tag says which tie it belongs to, so that
    /// tie tools can find ties in any tree without a trait method of their own.
    Placeholder(Option<Arc<crate::tree::ties::TieTag>>),
}

/// Which kind of hole an [`Array`] is, if it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hole {
    /// Equinox's `None`: a leaf removed by a filter, or not differentiated.
    Absent,
    /// Equinox's `SharedNode`: a node that `Shared` removed from its tree.
    Placeholder,
}

impl Array {
    pub(crate) fn from_tensor(tensor: Tensor) -> Result<Self> {
        let dtype = DType::from_candle(tensor.dtype())?;
        Ok(Array(Arc::new(Node {
            shape: tensor.dims().to_vec(),
            dtype,
            body: Body::Value(tensor),
        })))
    }

    pub(crate) fn from_tracer(shape: Vec<usize>, dtype: DType, tracer: Tracer) -> Self {
        Array(Arc::new(Node {
            shape,
            dtype,
            body: Body::Tracer(tracer),
        }))
    }

    /// A new absent value: Equinox's `None` in a filtered tree or gradient.
    pub fn absent() -> Self {
        Self::hole(Hole::Absent)
    }

    /// A new placeholder: Equinox's `SharedNode`, the mark `Shared` leaves
    /// where it removed a node.
    pub fn placeholder() -> Self {
        Self::hole(Hole::Placeholder)
    }

    fn hole(hole: Hole) -> Self {
        Array(Arc::new(Node {
            shape: Vec::new(),
            dtype: DType::F32,
            body: match hole {
                Hole::Absent => Body::Absent,
                Hole::Placeholder => Body::Placeholder(None),
            },
        }))
    }

    /// A stand-in with a shape and a dtype but no data: JAX's
    /// `ShapeDtypeStruct`. [`eval_shape`](crate::eval_shape) returns these
    /// and accepts them as inputs; nothing is allocated for them, and
    /// computing with one outside `eval_shape` is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// let x = Array::shape_dtype(&[100_000, 100_000], DType::F32);
    /// assert_eq!(format!("{x:?}"), "f32[100000,100000]");
    /// assert!(x.is_shape_dtype());
    /// assert!(x.exp().is_err());
    /// ```
    pub fn shape_dtype(shape: &[usize], dtype: DType) -> Self {
        Array(Arc::new(Node {
            shape: shape.to_vec(),
            dtype,
            body: Body::Shaped,
        }))
    }

    /// Whether this is a shape-and-dtype stand-in made by
    /// [`Array::shape_dtype`] or returned by [`eval_shape`](crate::eval_shape).
    pub fn is_shape_dtype(&self) -> bool {
        matches!(self.0.body, Body::Shaped)
    }

    /// A placeholder that knows the tie it belongs to.
    pub(crate) fn tied_placeholder(tag: Arc<crate::tree::ties::TieTag>) -> Self {
        Array(Arc::new(Node {
            shape: Vec::new(),
            dtype: DType::F32,
            body: Body::Placeholder(Some(tag)),
        }))
    }

    /// The tie a placeholder belongs to, if `Shared` made it.
    pub(crate) fn tie_tag(&self) -> Option<&Arc<crate::tree::ties::TieTag>> {
        match &self.0.body {
            Body::Placeholder(tag) => tag.as_ref(),
            _ => None,
        }
    }

    /// A number naming this array's identity while it lives: equal for two
    /// arrays exactly when [`Array::is`] holds.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// A new array with the same values in storage of its own.
    pub(crate) fn deep_copy(&self) -> Result<Array> {
        match &self.0.body {
            Body::Value(t) => Array::from_tensor(t.copy()?),
            _ => {
                self.check_value("copy")?;
                Err(Error::transform(format!(
                    "copying needs concrete values but got {}; copy outside the transformation",
                    self.short_description()
                )))
            }
        }
    }

    /// An array from row-major data and a shape.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// # fn main() -> solstice::Result<()> {
    /// let a = Array::from_vec(vec![1i64, 2, 3], &[3])?;
    /// assert_eq!(a.dtype(), DType::I64);
    /// assert!(Array::from_vec(vec![1.0f32, 2.0], &[3]).unwrap_err().is_shape_mismatch());
    /// # Ok(()) }
    /// ```
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(Error::shape(format!(
                "Array::from_vec got {} elements for shape {shape:?}, which holds {expected}",
                data.len()
            )));
        }
        Self::from_tensor(Tensor::from_vec(data, shape, &Device::Cpu)?)
    }

    /// A 0-d array holding `value`.
    pub fn scalar<T: Element>(value: T) -> Result<Self> {
        Self::from_vec(vec![value], &[])
    }

    /// A 0-d array of `dtype` holding `value`, converted.
    pub fn scalar_of(value: f64, dtype: DType) -> Result<Self> {
        Self::full(&[], value, dtype)
    }

    /// An array of zeros.
    ///
    /// An array too large for the memory available is an error (see
    /// [`Error::is_out_of_memory`](crate::Error::is_out_of_memory)), not an
    /// abort.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// let err = Array::zeros(&[1_000_000, 1_000_000], DType::F32).unwrap_err();
    /// assert!(err.is_out_of_memory());
    /// ```
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Self> {
        Self::full(shape, 0.0, dtype)
    }

    /// An array of ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Self> {
        Self::full(shape, 1.0, dtype)
    }

    /// An array filled with `value`, converted to `dtype`.
    ///
    /// For an integer dtype, `value` must be a whole number in its range:
    /// anything else is an error rather than a silently changed value. This
    /// is solstice's one rule for integer constants ([`Array::arange`] and
    /// [`Array::scalar_of`] follow it too): `jnp.array(300, uint8)` raises,
    /// where `jnp.full` and `jnp.arange` would wrap to 44.
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// assert!(Array::full(&[2], 300.0, DType::U8).unwrap_err().is_dtype_mismatch());
    /// assert!(Array::arange(300, DType::U8).unwrap_err().is_dtype_mismatch());
    /// assert!(Array::arange(256, DType::U8).is_ok());
    /// ```
    ///
    /// Inside [`eval_shape`](crate::eval_shape) the result is abstract (a
    /// shape and dtype, nothing allocated), as every array computed there is;
    /// so is [`Array::arange`]'s.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Self> {
        let count = element_count("Array::full", shape)?;
        if let Some((lo, hi)) = dtype.int_range()
            && !(value.fract() == 0.0 && value >= lo && value <= hi)
        {
            return Err(Error::dtype(format!(
                "{value} is not a value of {dtype}; use a float dtype or a whole number in range"
            )));
        }
        if let Some(stand_in) = crate::transform::trace::abstract_constant(shape, dtype) {
            return Ok(stand_in);
        }
        let t = match dtype {
            DType::F32 => {
                cpu::tensor(cpu::alloc::full("Array::full", count, value as f32)?, shape)?
            }
            DType::F64 => cpu::tensor(cpu::alloc::full("Array::full", count, value)?, shape)?,
            _ => {
                cpu::alloc::probe("Array::full", count, dtype.size())?;
                let one = Tensor::new(value, &Device::Cpu)?.to_dtype(dtype.to_candle())?;
                one.broadcast_as(shape)?.contiguous()?
            }
        };
        Self::from_tensor(t)
    }

    /// `[0, 1, ..., n - 1]` as a 1-d array of `dtype`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType};
    /// # fn main() -> solstice::Result<()> {
    /// assert_eq!(Array::arange(4, DType::I64)?.to_vec::<i64>()?, vec![0, 1, 2, 3]);
    /// # Ok(()) }
    /// ```
    ///
    /// `n - 1` must fit `dtype`, as every integer constant must (see
    /// [`Array::full`]).
    pub fn arange(n: usize, dtype: DType) -> Result<Self> {
        if let Some((_, hi)) = dtype.int_range()
            && n > 0
            && (n - 1) as f64 > hi
        {
            return Err(Error::dtype(format!(
                "Array::arange({n}) does not fit {dtype}, whose largest value is {hi}; \
                 use a wider dtype"
            )));
        }
        if let Some(stand_in) = crate::transform::trace::abstract_constant(&[n], dtype) {
            return Ok(stand_in);
        }
        // candle builds it as i64 first, then converts.
        cpu::alloc::probe("Array::arange", n, 8 + dtype.size())?;
        let t = Tensor::arange(0i64, n as i64, &Device::Cpu)?.to_dtype(dtype.to_candle())?;
        Self::from_tensor(t)
    }

    /// The shape. A hole has none and reports `[]`; check [`Array::hole_kind`]
    /// where that matters.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }

    /// The number of elements.
    pub fn elem_count(&self) -> usize {
        self.0.shape.iter().product()
    }

    /// The element type. A hole reports `F32`; check [`Array::hole_kind`].
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// Python's `is`: whether both are the very same array (same identity,
    /// not merely equal values).
    pub fn is(&self, other: &Array) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Which hole this is, or `None` for a value or tracer.
    pub fn hole_kind(&self) -> Option<Hole> {
        match self.0.body {
            Body::Absent => Some(Hole::Absent),
            Body::Placeholder(_) => Some(Hole::Placeholder),
            _ => None,
        }
    }

    /// Whether this is absent or a placeholder.
    pub fn is_hole(&self) -> bool {
        self.hole_kind().is_some()
    }

    /// Whether this is absent (Equinox's `None`).
    pub fn is_absent(&self) -> bool {
        self.hole_kind() == Some(Hole::Absent)
    }

    /// Whether this is a `Shared` placeholder (Equinox's `SharedNode`).
    pub fn is_placeholder(&self) -> bool {
        self.hole_kind() == Some(Hole::Placeholder)
    }

    /// Whether this is a tracer of an active transformation.
    pub fn is_tracer(&self) -> bool {
        matches!(self.0.body, Body::Tracer(_))
    }

    pub(crate) fn tracer(&self) -> Option<&Tracer> {
        match &self.0.body {
            Body::Tracer(t) => Some(t),
            _ => None,
        }
    }

    /// Fails with a clear error if this is a hole; `op` names the operation.
    pub(crate) fn check_value(&self, op: &str) -> Result<()> {
        match self.0.body {
            Body::Absent => Err(Error::new(
                Kind::Hole,
                format!(
                    "{op} got an absent value (None): this leaf was filtered out or not \
                     differentiated; use `combine` to put the real arrays back before computing"
                ),
            )),
            Body::Placeholder(_) => Err(Error::new(
                Kind::Hole,
                format!(
                    "{op} got a placeholder (SharedNode) left by `Shared`: call `Shared::call()` \
                     to rebuild the tree with the shared value in place"
                ),
            )),
            Body::Shaped => Err(Error::transform(format!(
                "{op} got {}, a shape and dtype without values (ShapeDtypeStruct); compute \
                 with it inside `eval_shape`, or with a real array",
                self.short_description()
            ))),
            Body::Value(_) | Body::Tracer(_) => Ok(()),
        }
    }

    /// The concrete tensor. Under `grad` the values exist (a grad tracer
    /// carries its primal), so reading them works and gives constants; under
    /// `vmap` a single example has no values of its own, so that fails.
    pub(crate) fn tensor(&self, op: &str) -> Result<&Tensor> {
        self.check_value(op)?;
        match &self.0.body {
            Body::Value(t) => Ok(t),
            Body::Tracer(t) => match t.primal() {
                Some(primal) => primal.tensor(op),
                None => Err(Error::transform(format!(
                    "{op} needs concrete values but got an array traced by `{}`; \
                     read values outside the transformation, or return them from it",
                    t.transform_name()
                ))),
            },
            Body::Absent | Body::Placeholder(_) | Body::Shaped => {
                unreachable!("holes and stand-ins are rejected above")
            }
        }
    }

    /// The elements in row-major order, converted to `T`.
    ///
    /// Fails on a hole and on a tracer: inside `grad` or `vmap` the values do
    /// not exist yet.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let t = self.tensor("Array::to_vec")?;
        Ok(t.flatten_all()?
            .to_dtype(<T as Element>::DTYPE.to_candle())?
            .to_vec1::<T>()?)
    }

    /// The single element of an array with one element, converted to `T`.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::shape(format!(
                "Array::to_scalar needs exactly one element but the shape is {:?}",
                self.shape()
            )));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The shape and dtype as Equinox prints them, for example `f32[3,4]`.
    pub fn short_description(&self) -> String {
        match self.hole_kind() {
            Some(Hole::Absent) => "None".to_string(),
            Some(Hole::Placeholder) => "SharedNode".to_string(),
            None => {
                let dims: Vec<String> = self.shape().iter().map(|d| d.to_string()).collect();
                format!("{}[{}]", self.dtype().short_name(), dims.join(","))
            }
        }
    }
}

/// Fails with an out-of-memory error if `count` elements of `size` bytes
/// could not be allocated now (large requests only).
pub(crate) fn probe_alloc(op: &str, count: usize, size: usize) -> Result<()> {
    cpu::alloc::probe(op, count, size)
}

/// The number of elements of `shape`, or an error if it overflows.
pub(crate) fn element_count(op: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::shape(format!("{op} got shape {shape:?}, whose size overflows")))
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short_description())
    }
}
