//! Elementwise maps of one input, and vectorisable `exp` and `tanh` for
//! f32 (libm's are scalar calls, about 6 ns an element); the f64 ones and
//! both `log`s are in `special.rs` and `special_f64.rs`.

use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::strided::{Reader, collapse};
use super::{Float, alloc, fill_tiled, for_groups, for_rows, group_starts, tensor, with_data};

/// Elements mapped at a time from a gathered group.
const SCRATCH: usize = 1024;
use crate::error::Result;

/// The maps with a kernel here; others run on candle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Neg,
    Exp,
    Log,
    Tanh,
    Sqrt,
    Abs,
    /// `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    GeluTanh,
    /// The derivative of `GeluTanh`.
    GeluTanhGrad,
}

/// `op` on every element of `x` (any layout), or `None` for a dtype
/// without a kernel here.
pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Option<Tensor>> {
    match x.dtype() {
        candle_core::DType::F32 => run::<f32>(op, x),
        candle_core::DType::F64 => run::<f64>(op, x),
        _ => Ok(None),
    }
}

fn run<T: Float>(op: UnaryOp, x: &Tensor) -> Result<Option<Tensor>> {
    let dims = x.dims().to_vec();
    let out = with_data::<T, _>(x, |data, layout| {
        let n = layout.shape().elem_count();
        alloc::filled("elementwise", n, |out| map(op, data, layout, out))
    })?;
    out.map(|v| tensor(v, &dims)).transpose()
}

/// Writes `op(x)` for `x` laid out by `layout` into the contiguous `out`.
pub(crate) fn map<T: Float>(
    op: UnaryOp,
    data: &[T],
    layout: &candle_core::Layout,
    out: &mut [MaybeUninit<T>],
) {
    let mut readers = [Reader::new(layout, layout.dims())];
    let dims = collapse(layout.dims(), &mut readers);
    let [reader] = readers;
    let inner = *dims.last().expect("at least one axis");
    let n = out.len();
    let stride = reader.inner();
    for_rows(out, inner, n, |first, chunk| {
        if stride != 1 {
            // A strided or broadcast input: gather a group of rows, in
            // tiles, into the output, then map it in place through a small
            // buffer.
            let mut scratch: Vec<T> = Vec::with_capacity(SCRATCH);
            for_groups(chunk, inner, |r0, group| {
                let count = group.len().div_ceil(inner);
                let s = group_starts(&reader, &dims, first + r0, count);
                fill_tiled(group, inner, |k, j| data[s[k] + j * stride]);
                for piece in group.chunks_mut(SCRATCH) {
                    scratch.clear();
                    // SAFETY: `fill_tiled` wrote every element.
                    scratch.extend(piece.iter().map(|o| unsafe { o.assume_init() }));
                    apply(op, &scratch, piece);
                }
            });
            return;
        }
        for (i, row) in chunk.chunks_mut(inner).enumerate() {
            // The last row of a split axis is short.
            let len = row.len();
            let start = reader.row_start(&dims, first + i);
            apply(op, &data[start..start + len], row);
        }
    });
}

/// `op` on a contiguous slice.
fn apply<T: Float>(op: UnaryOp, x: &[T], out: &mut [MaybeUninit<T>]) {
    match op {
        UnaryOp::Exp => T::exp_into(x, out),
        UnaryOp::Tanh => T::tanh_into(x, out),
        UnaryOp::Neg => {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(-v);
            }
        }
        UnaryOp::Abs => {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(v.abs());
            }
        }
        UnaryOp::Sqrt => {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(v.sqrt());
            }
        }
        UnaryOp::Log => T::log_into(x, out),
        UnaryOp::GeluTanh => T::gelu_tanh_into(x, out, false),
        UnaryOp::GeluTanhGrad => T::gelu_tanh_into(x, out, true),
    }
}

/// `√(2/π)` and the cubic coefficient of the tanh GELU.
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_A: f64 = 0.044_715;

super::map::scalar_fn!(
    /// The tanh GELU of one f64, for the maps.
    GeluTanhF64, f64, gelu_f64
);
super::map::scalar_fn!(
    /// The tanh GELU's derivative at one f64, for the maps.
    GeluTanhGradF64, f64, gelu_grad_f64
);

#[inline(always)]
fn gelu_f64(x: f64) -> f64 {
    gelu_tanh_f64(x, false)
}

#[inline(always)]
fn gelu_grad_f64(x: f64) -> f64 {
    gelu_tanh_f64(x, true)
}

/// The tanh GELU (or its derivative) of one f64, branch-free.
#[inline(always)]
pub(crate) fn gelu_tanh_f64(x: f64, derivative: bool) -> f64 {
    let x2 = x * x;
    let t = super::special_f64::tanh_f64(GELU_C * (x + GELU_A * x2 * x));
    if derivative {
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x2)
    } else {
        0.5 * x * (1.0 + t)
    }
}

/// The tanh GELU (or its derivative) of one f32, branch-free.
#[inline(always)]
fn gelu_tanh_f32(x: f32, derivative: bool) -> f32 {
    const C: f32 = GELU_C as f32;
    const A: f32 = GELU_A as f32;
    let x2 = x * x;
    let t = tanh_f32(C * (x + A * x2 * x));
    if derivative {
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * A * x2)
    } else {
        0.5 * x * (1.0 + t)
    }
}

#[inline(always)]
fn gelu_loop(x: &[f32], out: &mut [MaybeUninit<f32>], derivative: bool) {
    if derivative {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(gelu_tanh_f32(v, true));
        }
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(gelu_tanh_f32(v, false));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gelu_avx2(x: &[f32], out: &mut [MaybeUninit<f32>], derivative: bool) {
    gelu_loop(x, out, derivative)
}

/// The tanh GELU (or its derivative) over a slice, 8 lanes at a time
/// where the CPU has AVX2.
pub(crate) fn gelu_slice_f32(x: &[f32], out: &mut [MaybeUninit<f32>], derivative: bool) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU was just found to support AVX2.
        return unsafe { gelu_avx2(x, out, derivative) };
    }
    gelu_loop(x, out, derivative)
}

/// `e^x` for f32 to about 1 ulp (Cephes' `expf` polynomial), written
/// without branches so that loops over it vectorise. Overflow gives `inf`,
/// underflow gradual denormals then 0, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let c = x.clamp(-104.0, 88.8);
    let t = c * LOG2E + ROUND;
    let n = t - ROUND;
    let r = c - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    // The integer n read from the rounded float's low bits (no saturating
    // conversion, which would not vectorise), and 2^n as two factors so
    // that n from -150 to 128 stays representable.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    let e = y * s1 * s2;
    if x.is_nan() { x } else { e }
}

/// `tanh x` for f32 to a few ulp (Cephes' `tanhf`), branch-free.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    // On |x|, then the sign put back: tanh is odd, and -0 stays -0.
    let a = x.abs();
    let z = a * a;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * a
            + a;
    let e = exp_f32(2.0 * a.min(20.0));
    let large = 1.0 - 2.0 / (e + 1.0);
    let t = if a > 0.625 { large } else { small };
    t.copysign(x)
}

#[inline(always)]
fn exp_loop(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(exp_f32(v));
    }
}

#[inline(always)]
fn tanh_loop(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(tanh_f32(v));
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2"))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exp_avx2(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    exp_loop(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    tanh_loop(x, out)
}

/// `exp` over a slice, 8 lanes at a time where the CPU has AVX2.
pub(crate) fn exp_slice_f32(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU was just found to support AVX2.
        return unsafe { exp_avx2(x, out) };
    }
    exp_loop(x, out)
}

/// `tanh` over a slice, 8 lanes at a time where the CPU has AVX2.
pub(crate) fn tanh_slice_f32(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU was just found to support AVX2.
        return unsafe { tanh_avx2(x, out) };
    }
    tanh_loop(x, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error in ulps against f64, over a dense sweep.
    fn worst_ulps(f: fn(f32) -> f32, g: fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let mut worst: f64 = 0.0;
        let n = 200_000;
        for i in 0..=n {
            let x = lo + (hi - lo) * i as f32 / n as f32;
            let want = g(x as f64);
            let got = f(x) as f64;
            let ulp = (want as f32).abs().max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        worst
    }

    #[test]
    fn exp_and_tanh_are_accurate_and_keep_special_values() {
        assert!(worst_ulps(exp_f32, f64::exp, -87.0, 88.0) < 2.0);
        assert!(worst_ulps(tanh_f32, f64::tanh, -10.0, 10.0) < 4.0);
        assert!(worst_ulps(tanh_f32, f64::tanh, -0.7, 0.7) < 4.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        // Denormal results, as libm's.
        let d = exp_f32(-100.0) as f64;
        assert!((d - (-100f64).exp()).abs() < 1e-45);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }
}
