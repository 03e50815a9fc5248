//! Element types of arrays.

use candle_core::WithDType;

use crate::error::{Error, Result};

/// The element type of an [`Array`](crate::Array).
///
/// Floating dtypes are "inexact": they are what `grad` differentiates and
/// what [`is_inexact_array`](crate::tree::is_inexact_array) selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float, JAX's default.
    F32,
    /// 64-bit float.
    F64,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer, JAX's default integer.
    I32,
    /// 32-bit unsigned integer, the word of random keys.
    U32,
    /// 8-bit unsigned integer: the result of comparisons (0 or 1).
    U8,
}

impl DType {
    /// Whether this is a floating dtype, which `grad` differentiates.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether this is an integer dtype, usable as indices.
    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    /// The smallest and largest values of an integer dtype, as `f64`.
    pub(crate) fn int_range(self) -> Option<(f64, f64)> {
        match self {
            DType::I64 => Some((i64::MIN as f64, i64::MAX as f64)),
            DType::I32 => Some((i32::MIN as f64, i32::MAX as f64)),
            DType::U32 => Some((0.0, u32::MAX as f64)),
            DType::U8 => Some((0.0, u8::MAX as f64)),
            DType::F32 | DType::F64 => None,
        }
    }

    /// The size of one element in bytes.
    pub(crate) fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::U8 => 1,
        }
    }

    /// The short name Equinox prints (`f32`, `i64`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::U8 => "u8",
        }
    }

    pub(crate) fn to_candle(self) -> candle_core::DType {
        match self {
            DType::F32 => candle_core::DType::F32,
            DType::F64 => candle_core::DType::F64,
            DType::I64 => candle_core::DType::I64,
            DType::I32 => candle_core::DType::I32,
            DType::U32 => candle_core::DType::U32,
            DType::U8 => candle_core::DType::U8,
        }
    }

    pub(crate) fn from_candle(dtype: candle_core::DType) -> Result<Self> {
        Ok(match dtype {
            candle_core::DType::F32 => DType::F32,
            candle_core::DType::F64 => DType::F64,
            candle_core::DType::I64 => DType::I64,
            candle_core::DType::I32 => DType::I32,
            candle_core::DType::U32 => DType::U32,
            candle_core::DType::U8 => DType::U8,
            other => return Err(Error::dtype(format!("dtype {other:?} is not supported"))),
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short_name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust scalar type that can be an array element: `f32`, `f64`, `i64`,
/// `i32`, `u32` and `u8`.
pub trait Element: sealed::Sealed + WithDType + Copy + Send + Sync + 'static {
    /// The dtype of arrays of this element.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

element!(f32 => F32, f64 => F64, i64 => I64, i32 => I32, u32 => U32, u8 => U8);
