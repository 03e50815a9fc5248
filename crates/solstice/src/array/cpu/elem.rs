//! Every element type the kernels handle (the floats and the integers),
//! with the combining rules the reductions need.

use candle_core::CpuStorage;

/// An element of any supported dtype, with JAX's combining rules: integer
/// sums wrap on overflow, and a float maximum or minimum is NaN where
/// either side is.
pub(crate) trait Elem: candle_core::WithDType + std::fmt::Debug {
    /// The identity of `sum`: zero.
    const SUM_IDENTITY: Self;
    /// The identity of `max`: the lowest value (`-inf` for floats).
    const MAX_IDENTITY: Self;
    /// The identity of `min`: the highest value (`inf` for floats).
    const MIN_IDENTITY: Self;
    /// The elements of `storage`, if it holds this type.
    fn of_storage(storage: &CpuStorage) -> Option<&[Self]> {
        Self::cpu_storage_as_slice(storage).ok()
    }
    /// `a + b`, wrapping for integers.
    fn add_wrapping(a: Self, b: Self) -> Self;
    /// The larger, NaN if either is.
    fn max_nan(a: Self, b: Self) -> Self;
    /// The smaller, NaN if either is.
    fn min_nan(a: Self, b: Self) -> Self;
}

macro_rules! elem_float {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const SUM_IDENTITY: Self = 0.0;
            const MAX_IDENTITY: Self = <$t>::NEG_INFINITY;
            const MIN_IDENTITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add_wrapping(a: Self, b: Self) -> Self {
                a + b
            }
            #[inline(always)]
            fn max_nan(a: Self, b: Self) -> Self {
                // `a + b` is NaN exactly when either is; the branch-free
                // select vectorises.
                let m = a.max(b);
                if a.is_nan() || b.is_nan() { a + b } else { m }
            }
            #[inline(always)]
            fn min_nan(a: Self, b: Self) -> Self {
                let m = a.min(b);
                if a.is_nan() || b.is_nan() { a + b } else { m }
            }
        }
    )*};
}

macro_rules! elem_int {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const SUM_IDENTITY: Self = 0;
            const MAX_IDENTITY: Self = <$t>::MIN;
            const MIN_IDENTITY: Self = <$t>::MAX;
            #[inline(always)]
            fn add_wrapping(a: Self, b: Self) -> Self {
                a.wrapping_add(b)
            }
            #[inline(always)]
            fn max_nan(a: Self, b: Self) -> Self {
                a.max(b)
            }
            #[inline(always)]
            fn min_nan(a: Self, b: Self) -> Self {
                a.min(b)
            }
        }
    )*};
}

elem_float!(f32, f64);
elem_int!(i64, i32, u32, u8);

/// Runs `$body` with `$t` the Rust type of the candle dtype `$dtype`, or
/// evaluates `$other` for a dtype solstice does not use.
macro_rules! by_dtype {
    ($dtype:expr, $t:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            candle_core::DType::I64 => {
                type $t = i64;
                $body
            }
            candle_core::DType::I32 => {
                type $t = i32;
                $body
            }
            candle_core::DType::U32 => {
                type $t = u32;
                $body
            }
            candle_core::DType::U8 => {
                type $t = u8;
                $body
            }
            _ => $other,
        }
    };
}

/// As `by_dtype!`, for the integer dtypes only.
macro_rules! by_int {
    ($dtype:expr, $t:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            candle_core::DType::I64 => {
                type $t = i64;
                $body
            }
            candle_core::DType::I32 => {
                type $t = i32;
                $body
            }
            candle_core::DType::U32 => {
                type $t = u32;
                $body
            }
            candle_core::DType::U8 => {
                type $t = u8;
                $body
            }
            _ => $other,
        }
    };
}

/// As `by_dtype!`, for the float dtypes only.
macro_rules! by_float {
    ($dtype:expr, $t:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            _ => $other,
        }
    };
}

pub(crate) use {by_dtype, by_float, by_int};
