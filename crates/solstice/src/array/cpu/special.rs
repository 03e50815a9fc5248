//! `sin`, `cos`, `erf` and `log` for f32, written without branches or calls so
//! that loops over them vectorise, as `exp_f32` and `tanh_f32` in
//! `unary.rs` are.
//!
//! `sin` and `cos` reduce the argument by multiples of pi/4 in three parts
//! (Cody and Waite) and evaluate Cephes' minimax polynomials on
//! [-pi/4, pi/4]. The reduction is accurate for |x| up to
//! [`TRIG_FAST_LIMIT`]; a kernel whose input holds a larger magnitude (or
//! an infinity) uses libm's `sinf`/`cosf` for the whole array instead.
//! `erf` is a Taylor polynomial below 0.5 and `1 - erfc` above, with
//! erfc's Chebyshev fit (fractional error under 1.2e-7) on `exp_f32`.
//! `log` is `special_f64.rs`'s `log_f64` in f32, with 4 terms of the
//! series; `log1p` and `expm1` are built on `log` and `exp` as there.

use super::map::scalar_fn;
use super::unary::exp_f32;

scalar_fn!(
    /// [`sin_f32`] for the maps.
    SinF32, f32, sin_f32
);
scalar_fn!(
    /// [`cos_f32`] for the maps.
    CosF32, f32, cos_f32
);
scalar_fn!(
    /// [`erf_f32`] for the maps.
    ErfF32, f32, erf_f32
);
scalar_fn!(
    /// [`log_f32`] for the maps.
    LogF32, f32, log_f32
);
scalar_fn!(
    /// [`log1p_f32`] for the maps.
    Log1pF32, f32, log1p_f32
);
scalar_fn!(
    /// [`expm1_f32`] for the maps.
    Expm1F32, f32, expm1_f32
);

/// The largest |x| the fast `sin`/`cos` take.
pub(crate) const TRIG_FAST_LIMIT: f32 = 8192.0;

/// `|x|` reduced to `[-pi/4, pi/4]`, and the even octant index `j`.
#[inline(always)]
fn reduce_quarter_pi(a: f32) -> (f32, i32) {
    const FOUR_OVER_PI: f32 = std::f32::consts::FRAC_PI_4.recip();
    // pi/4 in three parts, the first two exact in few bits, so that
    // `y * part` is exact for the octants the fast path takes.
    const DP1: f32 = 0.785_156_25;
    const DP2: f32 = 2.418_756_5e-4;
    const DP3: f32 = 3.774_895e-8;
    const ROUND: f32 = 8_388_608.0; // 2^23: adding it to an integer below it keeps it exact
    // The octant as an integer from the float's low bits: a saturating
    // `as i32` would not vectorise.
    let t = (a * FOUR_OVER_PI).min(ROUND).trunc() + ROUND;
    let j = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let j = (j + 1) & !1;
    let y = j as f32;
    (((a - y * DP1) - y * DP2) - y * DP3, j)
}

#[inline(always)]
fn sin_poly(z: f32) -> f32 {
    let zz = z * z;
    ((-1.951_529_6e-4 * zz + 8.332_161e-3) * zz - 1.666_665_5e-1) * zz * z + z
}

#[inline(always)]
fn cos_poly(z: f32) -> f32 {
    let zz = z * z;
    ((2.443_315_7e-5 * zz - 1.388_731_6e-3) * zz + 4.166_664_6e-2) * zz * zz - 0.5 * zz + 1.0
}

/// `sin x` for |x| ≤ [`TRIG_FAST_LIMIT`]; NaN stays NaN, -0 stays -0.
#[inline(always)]
pub(crate) fn sin_f32(x: f32) -> f32 {
    let (z, j) = reduce_quarter_pi(x.abs());
    let r = if j & 2 != 0 { cos_poly(z) } else { sin_poly(z) };
    // Octants 4 to 7 are the negated 0 to 3; sin is odd.
    let negate = (j & 4 != 0) != x.is_sign_negative();
    if negate { -r } else { r }
}

/// `cos x` for |x| ≤ [`TRIG_FAST_LIMIT`]; NaN stays NaN.
#[inline(always)]
pub(crate) fn cos_f32(x: f32) -> f32 {
    let (z, j) = reduce_quarter_pi(x.abs());
    let r = if j & 2 != 0 { sin_poly(z) } else { cos_poly(z) };
    let negate = (j & 4 != 0) != (j & 2 != 0);
    if negate { -r } else { r }
}

/// `erf x` for every f32: about 2 ulp; ±1 at the infinities, NaN for NaN.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    // Below 0.5: 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - ...).
    let z = a * a;
    let series =
        (((((1.0 / 9360.0 * -z + 1.0 / 1320.0) * -z + 1.0 / 216.0) * -z + 1.0 / 42.0) * -z + 0.1)
            * -z
            + 1.0 / 3.0)
            * -z
            + 1.0;
    let small = std::f32::consts::FRAC_2_SQRT_PI * a * series;
    // Above: erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a/2).
    let t = 1.0 / (1.0 + 0.5 * a.min(1e30));
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let large = 1.0 - t * exp_f32(p - z);
    let r = if a < 0.5 { small } else { large };
    r.copysign(x)
}

/// `ln x` to within 1 ulp: `-inf` at ±0, NaN below 0, `inf` at `inf`.
#[inline(always)]
pub(crate) fn log_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // low 12 bits zero: `k * LN2_HI` is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let tiny = x < f32::MIN_POSITIVE;
    let xs = if tiny { x * 33_554_432.0 } else { x }; // 2^25
    let bits = xs.to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - 127 - if tiny { 25 } else { 0 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f80_0000) as u32);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let k = (e + big as i32) as f32;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = (((2.0 / 9.0 * z + 2.0 / 7.0) * z + 2.0 / 5.0) * z + 2.0 / 3.0) * z;
    let l = f - s * (f - r);
    let y = k * LN2_HI + (l + k * LN2_LO);
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        f32::NAN
    } else if x == f32::INFINITY {
        x
    } else {
        y
    }
}

/// `ln(1 + x)`, accurate for tiny `x` too (see `special_f64::log1p_f64`).
#[inline(always)]
pub(crate) fn log1p_f32(x: f32) -> f32 {
    let u = 1.0 + x;
    let r = x * (log_f32(u) / (u - 1.0));
    if u == 1.0 || x == f32::INFINITY { x } else { r }
}

/// `e^x - 1`, accurate for tiny `x` too (see `special_f64::expm1_f64`).
#[inline(always)]
pub(crate) fn expm1_f32(x: f32) -> f32 {
    let u = exp_f32(x);
    let um1 = u - 1.0;
    let r = um1 * (x / log_f32(u));
    if u == 1.0 {
        x
    } else if um1 == -1.0 || u == f32::INFINITY {
        um1
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst error of `f` against `g` over a dense sweep of [lo, hi],
    /// in units of `scale(want)` ulps.
    fn worst(f: fn(f32) -> f32, g: fn(f64) -> f64, lo: f32, hi: f32, floor: f64) -> f64 {
        let mut worst: f64 = 0.0;
        let n = 400_000;
        for i in 0..=n {
            let x = lo + (hi - lo) * (i as f32 / n as f32);
            let want = g(x as f64);
            let got = f(x) as f64;
            let ulp = want.abs().max(floor) * f32::EPSILON as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        worst
    }

    #[test]
    fn sin_and_cos_are_accurate_over_the_fast_range() {
        // Relative to the value, away from nothing but tiny magnitudes.
        assert!(worst(sin_f32, f64::sin, -10.0, 10.0, 1e-3) < 2.0);
        assert!(worst(cos_f32, f64::cos, -10.0, 10.0, 1e-3) < 2.0);
        // Far out, the reduction's error is absolute: under 2 ulps of 1.
        assert!(worst(sin_f32, f64::sin, -TRIG_FAST_LIMIT, TRIG_FAST_LIMIT, 1.0) < 2.0);
        assert!(worst(cos_f32, f64::cos, -TRIG_FAST_LIMIT, TRIG_FAST_LIMIT, 1.0) < 2.0);
        assert_eq!(sin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sin_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(cos_f32(0.0), 1.0);
        assert!(sin_f32(f32::NAN).is_nan() && cos_f32(f32::NAN).is_nan());
        let tiny = 1e-30f32;
        assert_eq!(sin_f32(tiny), tiny);
    }

    #[test]
    fn log_is_within_an_ulp_and_keeps_special_values() {
        let ln = |x: f64| x.ln();
        assert!(worst(log_f32, ln, 0.5, 2.0, 0.0) < 1.0);
        assert!(worst(log_f32, ln, 1e-30, 1e30, 0.0) < 1.0);
        assert!(worst(log_f32, ln, 1e-44, 1e-38, 0.0) < 1.0);
        assert_eq!(log_f32(1.0), 0.0);
        assert_eq!(log_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(log_f32(f32::INFINITY), f32::INFINITY);
        assert!(log_f32(-1.0).is_nan() && log_f32(f32::NAN).is_nan());
    }

    #[test]
    fn log1p_and_expm1_are_accurate_near_zero_and_far_out() {
        let (ln_1p, exp_m1) = (|x: f64| x.ln_1p(), |x: f64| x.exp_m1());
        assert!(worst(log1p_f32, ln_1p, -0.999, 10.0, 0.0) < 3.0);
        assert!(worst(log1p_f32, ln_1p, -1e-3, 1e-3, 0.0) < 3.0);
        assert!(worst(log1p_f32, ln_1p, 1.0, 1e30, 0.0) < 3.0);
        assert!(worst(expm1_f32, exp_m1, -20.0, 88.0, 0.0) < 3.0);
        assert!(worst(expm1_f32, exp_m1, -1e-3, 1e-3, 0.0) < 3.0);
        assert_eq!(log1p_f32(-1.0), f32::NEG_INFINITY);
        assert_eq!(log1p_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(log1p_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(log1p_f32(-2.0).is_nan() && log1p_f32(f32::NAN).is_nan());
        assert_eq!(expm1_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(expm1_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(expm1_f32(100.0), f32::INFINITY);
        assert_eq!(expm1_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(expm1_f32(1e-30), 1e-30);
        assert!(expm1_f32(f32::NAN).is_nan());
    }

    #[test]
    fn erf_is_accurate_everywhere_and_keeps_special_values() {
        let erf = candle_core::cpu::erf::erf_f64;
        assert!(worst(erf_f32, erf, -0.6, 0.6, 0.0) < 3.0);
        assert!(worst(erf_f32, erf, -6.0, 6.0, 0.0) < 3.0);
        assert!(worst(erf_f32, erf, -1e-3, 1e-3, 0.0) < 3.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf_f32(1e30), 1.0);
        assert!(erf_f32(f32::NAN).is_nan());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }
}
