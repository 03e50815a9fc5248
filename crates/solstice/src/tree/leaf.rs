//! Typed leaves: every leaf of a tree, arrays and scalars, as
//! [`Tree::visit_leaves`](super::Tree::visit_leaves) passes them.
//!
//! JAX calls every non-container node a leaf, Python scalars included:
//! `Dropout(p=0.5)` has the leaves `p` and `inference`, and
//! `eqx.tree_serialise_leaves` writes both. A [`Leaf`] is either an array
//! slot (value or hole) or a scalar, which is seen the way Python sees it: a
//! bool, an integer or a float ([`Scalar`]). The Rust type behind a scalar
//! (`u8`, `f32`, ...) is kept by [`ScalarLeaf`], so loading a value into it
//! checks that the value fits.

use std::fmt;

use crate::array::Array;
use crate::error::{Error, Result};

/// A leaf, read-only: an array slot or a scalar.
#[derive(Clone, Copy)]
pub enum Leaf<'a> {
    /// An array slot: a value, a tracer or a hole (absent or placeholder).
    Array(&'a Array),
    /// A scalar field such as `Dropout::p` or `Dropout::inference`.
    Scalar(&'a dyn ScalarLeaf),
}

/// A leaf, writable: the mutable twin of [`Leaf`].
pub enum LeafMut<'a> {
    /// An array slot: a value, a tracer or a hole (absent or placeholder).
    Array(&'a mut Array),
    /// A scalar field such as `Dropout::p` or `Dropout::inference`.
    Scalar(&'a mut dyn ScalarLeaf),
}

/// A scalar leaf's value, as Python holds it: `bool`, `int` or `float`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// A `bool`.
    Bool(bool),
    /// Any integer type; Python's `int`, written as `<i8` by numpy. Wide
    /// enough for every `u64` and `i64` value.
    Int(i128),
    /// `f32` or `f64`; Python's `float`, written as `<f8` by numpy.
    Float(f64),
}

impl Scalar {
    /// `"bool"`, `"int"` or `"float"`: the Python type of the value.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "int",
            Scalar::Float(_) => "float",
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// A Rust scalar that is a tree leaf: `bool`, the integer types, `f32` and
/// `f64`. Sealed: the set of scalar leaves is closed.
///
/// # Examples
///
/// ```
/// use solstice::tree::{Scalar, ScalarLeaf};
/// let mut x: u8 = 3;
/// assert_eq!(x.get(), Scalar::Int(3));
/// x.set(Scalar::Int(200)).expect("fits");
/// assert_eq!(x, 200);
/// assert!(x.set(Scalar::Int(300)).is_err()); // does not fit a u8
/// assert!(x.set(Scalar::Float(1.0)).is_err()); // a float is not an int
/// ```
pub trait ScalarLeaf: sealed::Sealed {
    /// The value, as Python would hold it.
    fn get(&self) -> Scalar;

    /// Replaces the value. Fails, leaving the value unchanged, where the
    /// kind differs (a float into an integer) or the value does not fit the
    /// Rust type exactly (300 into a `u8`, 0.1 into an `f32`).
    fn set(&mut self, value: Scalar) -> Result<()>;

    /// The Rust type's name, such as `"u8"`.
    fn type_name(&self) -> &'static str;
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for bool {}

impl ScalarLeaf for bool {
    fn get(&self) -> Scalar {
        Scalar::Bool(*self)
    }

    fn set(&mut self, value: Scalar) -> Result<()> {
        match value {
            Scalar::Bool(b) => {
                *self = b;
                Ok(())
            }
            other => Err(mismatch(other, "bool")),
        }
    }

    fn type_name(&self) -> &'static str {
        "bool"
    }
}

macro_rules! int_leaf {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}

        impl ScalarLeaf for $t {
            fn get(&self) -> Scalar {
                // Lossless: no integer type here is wider than 64 bits.
                Scalar::Int(*self as i128)
            }

            #[allow(clippy::unnecessary_fallible_conversions)]
            fn set(&mut self, value: Scalar) -> Result<()> {
                match value {
                    Scalar::Int(i) => {
                        *self = <$t>::try_from(i).map_err(|_| {
                            Error::invalid(format!(
                                "the integer {i} does not fit the {} leaf",
                                stringify!($t)
                            ))
                        })?;
                        Ok(())
                    }
                    other => Err(mismatch(other, stringify!($t))),
                }
            }

            fn type_name(&self) -> &'static str {
                stringify!($t)
            }
        }
    )*};
}

int_leaf!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl sealed::Sealed for f64 {}

impl ScalarLeaf for f64 {
    fn get(&self) -> Scalar {
        Scalar::Float(*self)
    }

    fn set(&mut self, value: Scalar) -> Result<()> {
        match value {
            Scalar::Float(x) => {
                *self = x;
                Ok(())
            }
            other => Err(mismatch(other, "f64")),
        }
    }

    fn type_name(&self) -> &'static str {
        "f64"
    }
}

impl sealed::Sealed for f32 {}

impl ScalarLeaf for f32 {
    fn get(&self) -> Scalar {
        Scalar::Float(f64::from(*self))
    }

    fn set(&mut self, value: Scalar) -> Result<()> {
        match value {
            Scalar::Float(x) => {
                let y = x as f32;
                // NaN has no exact round trip to check; it is still NaN.
                if f64::from(y) != x && !x.is_nan() {
                    return Err(Error::dtype(format!(
                        "the float {x:?} is not exactly an f32, so it does not fit the f32 \
                         leaf; make the field an f64"
                    )));
                }
                *self = y;
                Ok(())
            }
            other => Err(mismatch(other, "f32")),
        }
    }

    fn type_name(&self) -> &'static str {
        "f32"
    }
}

fn mismatch(value: Scalar, rust: &str) -> Error {
    Error::dtype(format!(
        "a {} scalar ({value}) cannot be stored in the {rust} leaf",
        value.kind()
    ))
}

impl fmt::Debug for Leaf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Array(a) => write!(f, "Array({:?})", super::Tree::structure(*a)),
            Leaf::Scalar(s) => write!(f, "Scalar({}: {})", s.get(), s.type_name()),
        }
    }
}
