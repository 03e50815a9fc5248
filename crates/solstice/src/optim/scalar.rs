//! Hyperparameters: a number, a 0-d array (an injected hyperparameter), or
//! a schedule of the step count.

use std::sync::Arc;

use super::schedule::Schedule;
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// A scalar hyperparameter: a Rust number, which acts as optax's weakly typed
/// Python float (rounded to each leaf's dtype where it is used), or a 0-d
/// array, as [`inject_hyperparams`](super::inject_hyperparams) passes them.
#[derive(Clone, Debug)]
pub enum Hyper {
    /// A constant, computed with in `f64` and rounded where it meets an array.
    Const(f64),
    /// A 0-d array, used in its own dtype.
    Array(Array),
}

impl From<f64> for Hyper {
    fn from(v: f64) -> Self {
        Hyper::Const(v)
    }
}

impl From<f32> for Hyper {
    fn from(v: f32) -> Self {
        Hyper::Const(v as f64)
    }
}

impl From<Array> for Hyper {
    fn from(a: Array) -> Self {
        Hyper::Array(a)
    }
}

impl From<&Array> for Hyper {
    fn from(a: &Array) -> Self {
        Hyper::Array(a.clone())
    }
}

impl Hyper {
    /// This value as a 0-d array of `dtype`.
    pub fn to_array(&self, dtype: DType) -> Result<Array> {
        match self {
            Hyper::Const(v) => Array::scalar_of(*v, dtype),
            Hyper::Array(a) => scalar_array(a)?.astype(dtype),
        }
    }

    /// `1 - self` as a 0-d array of `dtype`: in `f64` for a constant (as
    /// Python computes `1 - 0.9`), in the array's dtype otherwise.
    pub fn one_minus(&self, dtype: DType) -> Result<Array> {
        match self {
            Hyper::Const(v) => Array::scalar_of(1.0 - v, dtype),
            Hyper::Array(a) => {
                let a = scalar_array(a)?;
                a.full_like(1.0)?.sub(&a)?.astype(dtype)
            }
        }
    }

    /// `self * x`, in `x`'s dtype.
    pub fn mul(&self, x: &Array) -> Result<Array> {
        self.to_array(x.dtype())?.mul(x)
    }

    /// The constant, if this is one.
    pub fn as_const(&self) -> Option<f64> {
        match self {
            Hyper::Const(v) => Some(*v),
            Hyper::Array(_) => None,
        }
    }

    /// Whether this is the constant `v` (an array is never known to be).
    pub(crate) fn is_const(&self, v: f64) -> bool {
        self.as_const() == Some(v)
    }

    /// `-self`.
    pub(crate) fn neg(&self) -> Result<Hyper> {
        Ok(match self {
            Hyper::Const(v) => Hyper::Const(-v),
            Hyper::Array(a) => Hyper::Array(scalar_array(a)?.neg()?),
        })
    }
}

fn scalar_array(a: &Array) -> Result<Array> {
    if a.is_hole() || a.elem_count() != 1 {
        return Err(Error::shape(format!(
            "a hyperparameter is a scalar but got {}; pass a 0-d array",
            a.short_description()
        )));
    }
    if a.rank() == 0 {
        Ok(a.clone())
    } else {
        a.reshape(&[])
    }
}

/// A hyperparameter that is a scalar or a schedule of the step count:
/// optax's `ScalarOrSchedule`. Numbers, 0-d arrays and schedules convert
/// into it, so `adam(1e-3)` and `adam(warmup_cosine_decay_schedule(...))`
/// both work.
#[derive(Clone)]
pub enum ScalarOrSchedule {
    /// A fixed value.
    Scalar(Hyper),
    /// A function of the step count, evaluated before the count is
    /// incremented.
    Schedule(Arc<dyn Schedule>),
}

impl std::fmt::Debug for ScalarOrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScalarOrSchedule::Scalar(h) => write!(f, "{h:?}"),
            ScalarOrSchedule::Schedule(_) => f.write_str("Schedule"),
        }
    }
}

impl From<f64> for ScalarOrSchedule {
    fn from(v: f64) -> Self {
        ScalarOrSchedule::Scalar(Hyper::Const(v))
    }
}

impl From<f32> for ScalarOrSchedule {
    fn from(v: f32) -> Self {
        ScalarOrSchedule::Scalar(Hyper::Const(v as f64))
    }
}

impl From<Array> for ScalarOrSchedule {
    fn from(a: Array) -> Self {
        ScalarOrSchedule::Scalar(Hyper::Array(a))
    }
}

impl From<&Array> for ScalarOrSchedule {
    fn from(a: &Array) -> Self {
        ScalarOrSchedule::Scalar(Hyper::Array(a.clone()))
    }
}

impl From<Hyper> for ScalarOrSchedule {
    fn from(h: Hyper) -> Self {
        ScalarOrSchedule::Scalar(h)
    }
}

impl<S: Schedule + 'static> From<Arc<S>> for ScalarOrSchedule {
    fn from(s: Arc<S>) -> Self {
        ScalarOrSchedule::Schedule(s)
    }
}

impl From<Arc<dyn Schedule>> for ScalarOrSchedule {
    fn from(s: Arc<dyn Schedule>) -> Self {
        ScalarOrSchedule::Schedule(s)
    }
}

impl ScalarOrSchedule {
    /// Whether this is a schedule (which needs a count in the state).
    pub fn is_schedule(&self) -> bool {
        matches!(self, ScalarOrSchedule::Schedule(_))
    }

    /// The value at `count`: the scalar, or the schedule evaluated there.
    pub fn at(&self, count: Option<&Array>) -> Result<Hyper> {
        match (self, count) {
            (ScalarOrSchedule::Scalar(h), _) => Ok(h.clone()),
            (ScalarOrSchedule::Schedule(s), Some(c)) => Ok(Hyper::Array(s.value(c)?)),
            (ScalarOrSchedule::Schedule(_), None) => Err(Error::invalid(
                "a schedule needs the step count, but the state holds none; build the state \
                 with `init` of the same optimiser",
            )),
        }
    }
}
