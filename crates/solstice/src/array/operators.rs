//! Arithmetic operators on arrays: `&a + &b`, `&a * 2.0`, `-&a`, ...
//!
//! An operation on arrays can fail (shapes that do not broadcast, dtypes
//! that differ, a hole used as a number), and an operator must never panic.
//! So every operator gives a `Result<Array>`, and `?` is applied once, at the
//! end of an expression: `let y = (&x * 2.0 + &b)?;`.
//!
//! To let expressions chain without a `?` after each step, a `Result<Array>`
//! is itself a left operand for another array (`&a + &b + &c`), and an array
//! is a left operand for a `Result<Array>` (`&a - (&b * &c)`). The first
//! error in a chain is the one returned. Rust's orphan rule allows no more:
//! a `Result<Array>` cannot take a scalar or another `Result` on its right, so
//! write `((&a + &b)? * 2.0)?` there.
//!
//! The operators mean what `jax.numpy`'s do: `/` is true division (integers
//! divide as floats), `%` is Python's remainder (the sign of the divisor).
//! A scalar is converted to the array's dtype, and a scalar that does not fit
//! (such as `0.5` for an integer array) is an error.
//!
//! # Examples
//!
//! ```
//! use solstice::Array;
//! # fn main() -> solstice::Result<()> {
//! let a = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
//! let b = Array::from_vec(vec![10.0f32, 20.0, 30.0], &[3])?;
//! let y = (&a * 2.0 + &b - &a)?;
//! assert_eq!(y.to_vec::<f32>()?, vec![11.0, 22.0, 33.0]);
//! assert_eq!((-&a)?.to_vec::<f32>()?, vec![-1.0, -2.0, -3.0]);
//! assert_eq!((1.0 / &a)?.to_vec::<f32>()?, vec![1.0, 0.5, 1.0 / 3.0]);
//! // A mistake is an error, never a panic.
//! let c = Array::from_vec(vec![1.0f32, 2.0], &[2])?;
//! assert!((&a + &c).unwrap_err().is_shape_mismatch());
//! # Ok(()) }
//! ```

use std::ops::{Add, Div, Mul, Neg, Rem, Sub};

use super::Array;
use crate::error::Result;

macro_rules! operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl $trait<&Array> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                Array::$op(self, rhs)
            }
        }
        impl $trait<Array> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                Array::$op(self, &rhs)
            }
        }
        impl $trait<&Array> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                Array::$op(&self, rhs)
            }
        }
        impl $trait<Array> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                Array::$op(&self, &rhs)
            }
        }
        impl $trait<f64> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: f64) -> Result<Array> {
                Array::$op(self, &Array::scalar_of(rhs, self.dtype())?)
            }
        }
        impl $trait<f64> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: f64) -> Result<Array> {
                $trait::$method(&self, rhs)
            }
        }
        impl $trait<&Array> for f64 {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                Array::$op(&Array::scalar_of(self, rhs.dtype())?, rhs)
            }
        }
        impl $trait<Array> for f64 {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                $trait::$method(self, &rhs)
            }
        }
        // Chaining: a result on the left of an array, an array on the left
        // of a result.
        impl $trait<&Array> for Result<Array> {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                Array::$op(&self?, rhs)
            }
        }
        impl $trait<Array> for Result<Array> {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                Array::$op(&self?, &rhs)
            }
        }
        impl $trait<Result<Array>> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Result<Array>) -> Result<Array> {
                Array::$op(self, &rhs?)
            }
        }
        impl $trait<Result<Array>> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Result<Array>) -> Result<Array> {
                Array::$op(&self, &rhs?)
            }
        }
    };
}

operator!(Add, add, add);
operator!(Sub, sub, sub);
operator!(Mul, mul, mul);
operator!(Div, div, div);
operator!(Rem, rem, rem);

impl Neg for &Array {
    type Output = Result<Array>;
    fn neg(self) -> Result<Array> {
        Array::neg(self)
    }
}

impl Neg for Array {
    type Output = Result<Array>;
    fn neg(self) -> Result<Array> {
        Array::neg(&self)
    }
}
