//! The elementwise primitives beyond `unary.rs` and `binary.rs`, for every
//! dtype they take: `sign`, `sin`, `cos`, `erf`, `log1p`, `expm1`,
//! rounding, comparisons, `select`, dtype conversion, `rem`, `pow`, and the
//! integer arithmetic (wrapping on overflow, as JAX's). Each runs on the
//! generic strided maps of `map.rs`, so it is multi-threaded over large
//! arrays and reads broadcast and transposed views in place; the loops
//! over contiguous rows vectorise where the scalar function does.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;

use super::binary::BinaryOp;
use super::elem::{Elem, by_dtype, by_float, by_int};
use super::map::{map1, map2, map3};
use super::special::{CosF32, ErfF32, Expm1F32, Log1pF32, SinF32, TRIG_FAST_LIMIT};
use super::special_f64::{CosF64, ErfF64, Expm1F64, Log1pF64, SinF64, TRIG_FAST_LIMIT_F64};
use crate::array::prim::{CmpOp, RoundMode};
use crate::error::{Error, Result};

/// The one-input maps here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MathOp {
    /// -1, 0 or 1; NaN for NaN, as JAX's.
    Sign,
    Sin,
    Cos,
    Erf,
    Log1p,
    Expm1,
    Round(RoundMode),
    /// Integer `|x|`, wrapping (`|MIN|` is `MIN`, as JAX's); floats run
    /// in `unary.rs`.
    IntAbs,
    /// Integer `-x`, wrapping; floats run in `unary.rs`.
    IntNeg,
}

/// `op` on every element of `x`, or `None` for a dtype without a kernel
/// here (the integer dtypes of the float-only maps).
// One generic body serves every dtype: for unsigned ones `v < 0` is always
// false, which is what it should be.
#[allow(clippy::absurd_extreme_comparisons, clippy::unnecessary_cast)]
pub(crate) fn math(op: MathOp, x: &Tensor) -> Result<Option<Tensor>> {
    let dtype = x.dtype();
    match op {
        MathOp::Sign => by_dtype!(dtype, T => map1::<T, T>("sign", x, |v| {
            // `(v < 0) - ...` never wraps: an unsigned `v < 0` is false.
            let s = ((v > T::SUM_IDENTITY) as u8 as T) - ((v < T::SUM_IDENTITY) as u8 as T);
            // NaN (the one value unequal to itself) stays NaN, as in JAX.
            #[allow(clippy::eq_op)]
            if v != v { v } else { s }
        }), _ => Ok(None)),
        // Branch-free polynomials that vectorise, where the input allows
        // (`special.rs`, `special_f64.rs`); libm beyond.
        MathOp::Sin | MathOp::Cos if trig_fast(x) => match (op, dtype) {
            (MathOp::Sin, candle_core::DType::F32) => map1("sin", x, SinF32),
            (MathOp::Cos, candle_core::DType::F32) => map1("cos", x, CosF32),
            (MathOp::Sin, _) => map1("sin", x, SinF64),
            _ => map1("cos", x, CosF64),
        },
        MathOp::Sin => by_float!(dtype, T => map1::<T, T>("sin", x, T::sin), _ => Ok(None)),
        MathOp::Cos => by_float!(dtype, T => map1::<T, T>("cos", x, T::cos), _ => Ok(None)),
        MathOp::Erf => match dtype {
            candle_core::DType::F32 => map1("erf", x, ErfF32),
            candle_core::DType::F64 => map1("erf", x, ErfF64),
            _ => Ok(None),
        },
        MathOp::Log1p => match dtype {
            candle_core::DType::F32 => map1("log1p", x, Log1pF32),
            candle_core::DType::F64 => map1("log1p", x, Log1pF64),
            _ => Ok(None),
        },
        MathOp::Expm1 => match dtype {
            candle_core::DType::F32 => map1("expm1", x, Expm1F32),
            candle_core::DType::F64 => map1("expm1", x, Expm1F64),
            _ => Ok(None),
        },
        MathOp::IntAbs => by_int!(dtype, T => map1::<T, T>("abs", x, |v| {
            if v < T::SUM_IDENTITY { T::SUM_IDENTITY.wrapping_sub(v) } else { v }
        }), _ => Ok(None)),
        MathOp::IntNeg => by_int!(dtype, T => map1::<T, T>("neg", x, |v| {
            T::SUM_IDENTITY.wrapping_sub(v)
        }), _ => Ok(None)),
        MathOp::Round(mode) => by_float!(dtype, T => match mode {
            RoundMode::Floor => map1::<T, T>("floor", x, T::floor),
            RoundMode::Ceil => map1::<T, T>("ceil", x, T::ceil),
            RoundMode::Nearest => map1::<T, T>("round", x, T::round_ties_even),
        }, _ => Ok(None)),
    }
}

/// Whether `x` is f32 or f64 and every element of its storage is within
/// the fast `sin`/`cos` range (NaN is: it stays NaN). One read of the
/// storage, which may be more than the view: a conservative answer.
fn trig_fast(x: &Tensor) -> bool {
    let (storage, _) = x.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)) => {
            data.iter().fold(true, |ok, v| {
                ok & (v.abs() <= TRIG_FAST_LIMIT || v.is_nan())
            })
        }
        candle_core::Storage::Cpu(candle_core::CpuStorage::F64(data)) => {
            data.iter().fold(true, |ok, v| {
                ok & (v.abs() <= TRIG_FAST_LIMIT_F64 || v.is_nan())
            })
        }
        _ => false,
    }
}

/// `x op y` as `u8` 0 or 1, broadcast; NaN compares unequal to everything.
/// `None` where the dtypes differ or are not handled here.
pub(crate) fn compare(op: CmpOp, x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != y.dtype() {
        return Ok(None);
    }
    by_dtype!(x.dtype(), T => {
        let name = "compare";
        match op {
            CmpOp::Eq => map2::<T, T, u8>(name, x, y, |a, b| (a == b) as u8),
            CmpOp::Ne => map2::<T, T, u8>(name, x, y, |a, b| (a != b) as u8),
            CmpOp::Lt => map2::<T, T, u8>(name, x, y, |a, b| (a < b) as u8),
            CmpOp::Le => map2::<T, T, u8>(name, x, y, |a, b| (a <= b) as u8),
            CmpOp::Gt => map2::<T, T, u8>(name, x, y, |a, b| (a > b) as u8),
            CmpOp::Ge => map2::<T, T, u8>(name, x, y, |a, b| (a >= b) as u8),
        }
    }, _ => Ok(None))
}

/// `on_true` where the `u8` `cond` is non-zero, else `on_false`, all three
/// broadcast; `None` for another condition dtype or mixed branch dtypes.
pub(crate) fn select(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Option<Tensor>> {
    if cond.dtype() != candle_core::DType::U8 || on_true.dtype() != on_false.dtype() {
        return Ok(None);
    }
    by_dtype!(on_true.dtype(), T => map3::<u8, T, T, T>(
        "select",
        cond,
        on_true,
        on_false,
        |c, a, b| if c != 0 { a } else { b },
    ), _ => Ok(None))
}

/// `x` converted to `dtype` with Rust's `as`: floats to integers truncate
/// toward zero and saturate (NaN gives 0), integers wrap, as candle's
/// conversion did.
// `f32 as f32` and the like are the identity conversions.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn convert(x: &Tensor, dtype: candle_core::DType) -> Result<Option<Tensor>> {
    by_dtype!(x.dtype(), A => by_dtype!(dtype, U => map1::<A, U>("astype", x, |v| v as U),
        _ => Ok(None)), _ => Ok(None))
}

/// The integer kernels of `op`: sums, differences and products wrap on
/// overflow; quotients truncate (division by zero and `MIN / -1` are
/// refused before the kernel runs; here they give 0 and `MIN`, never a
/// panic). `None` for a float or mixed dtype.
pub(crate) fn int_binary(op: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != y.dtype() {
        return Ok(None);
    }
    by_int!(x.dtype(), T => match op {
        BinaryOp::Add => map2::<T, T, T>("add", x, y, T::wrapping_add),
        BinaryOp::Sub => map2::<T, T, T>("sub", x, y, T::wrapping_sub),
        BinaryOp::Mul => map2::<T, T, T>("mul", x, y, T::wrapping_mul),
        BinaryOp::Div => map2::<T, T, T>("div", x, y, |a, b| {
            if b == 0 { 0 } else { a.wrapping_div(b) }
        }),
        BinaryOp::Maximum => map2::<T, T, T>("maximum", x, y, T::max),
        BinaryOp::Minimum => map2::<T, T, T>("minimum", x, y, T::min),
    }, _ => Ok(None))
}

/// The integer quotient, truncated, with a zero divisor or `MIN / -1` (the
/// one quotient that overflows) an error; `None` for a float or mixed dtype.
pub(crate) fn int_div(x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != y.dtype() {
        return Ok(None);
    }
    let (by_zero, overflow) = (AtomicBool::new(false), AtomicBool::new(false));
    let out = by_int!(x.dtype(), T => map2::<T, T, T>("div", x, y, |a, b| {
        if b == 0 {
            by_zero.store(true, Ordering::Relaxed);
            return 0;
        }
        let (q, wrapped) = a.overflowing_div(b);
        if wrapped {
            overflow.store(true, Ordering::Relaxed);
        }
        q
    })?, _ => None);
    if by_zero.load(Ordering::Relaxed) {
        return Err(Error::invalid("div got an integer division by zero"));
    }
    if overflow.load(Ordering::Relaxed) {
        return Err(Error::invalid(
            "div got an integer division that overflows (MIN / -1)",
        ));
    }
    Ok(out)
}

/// The truncated remainder (C's `fmod` for floats; integers wrap and a
/// zero divisor is an error), broadcast.
pub(crate) fn rem(x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != y.dtype() {
        return Ok(None);
    }
    by_float!(x.dtype(), T => map2::<T, T, T>("rem", x, y, |a, b| a % b), _ => by_int!(x.dtype(), T => {
        let by_zero = AtomicBool::new(false);
        let out = map2::<T, T, T>("rem", x, y, |a, b| {
            if b == 0 {
                by_zero.store(true, Ordering::Relaxed);
                0
            } else {
                a.wrapping_rem(b)
            }
        })?;
        if by_zero.load(Ordering::Relaxed) {
            return Err(Error::invalid("rem got an integer division by zero"));
        }
        Ok(out)
    }, _ => Ok(None)))
}

/// `x ^ y` for floats, broadcast.
pub(crate) fn pow(x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != y.dtype() {
        return Ok(None);
    }
    by_float!(x.dtype(), T => map2::<T, T, T>("pow", x, y, T::powf), _ => Ok(None))
}
