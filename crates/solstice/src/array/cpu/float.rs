//! The float element types the kernels compute in.

use candle_core::CpuStorage;

/// `f32` or `f64`, with the operations the kernels use.
pub(crate) trait Float:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::AddAssign
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + candle_core::WithDType
    + super::Elem
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn slice(storage: &CpuStorage) -> Option<&[Self]>;
    fn of(x: f64) -> Self;
    fn is_nan(self) -> bool;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// `exp` on a slice, in place where `out` is `x`.
    fn exp_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]);
    /// `ln` on a slice.
    fn log_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]);
    /// `tanh` on a slice.
    fn tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]);
    /// The tanh GELU, or its derivative, on a slice.
    fn gelu_tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>], derivative: bool);
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn of(x: f64) -> Self {
        x as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn exp_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::unary::exp_slice_f32(x, out)
    }
    fn log_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::map::contiguous1(x, out, &super::special::LogF32)
    }
    fn tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::unary::tanh_slice_f32(x, out)
    }
    fn gelu_tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>], derivative: bool) {
        super::unary::gelu_slice_f32(x, out, derivative)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn of(x: f64) -> Self {
        x
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn exp_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::map::contiguous1(x, out, &super::special_f64::ExpF64)
    }
    fn log_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::map::contiguous1(x, out, &super::special_f64::LogF64)
    }
    fn tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>]) {
        super::map::contiguous1(x, out, &super::special_f64::TanhF64)
    }
    fn gelu_tanh_into(x: &[Self], out: &mut [std::mem::MaybeUninit<Self>], derivative: bool) {
        if derivative {
            super::map::contiguous1(x, out, &super::unary::GeluTanhGradF64)
        } else {
            super::map::contiguous1(x, out, &super::unary::GeluTanhF64)
        }
    }
}
