//! `exp`, `log`, `tanh`, `sin`, `cos` and `erf` for f64, written without
//! branches or calls so that loops over them vectorise (4 lanes with
//! AVX2), as the f32 ones in `unary.rs` and `special.rs` do. libm's are
//! scalar calls.
//!
//! - `exp`: Cody–Waite reduction by ln 2 and the Taylor series of `e^r`
//!   on |r| ≤ ln 2 / 2 to degree 13 (the next term is under 5e-18).
//! - `log`: `x = 2^k m` with m in [√½, √2), and `log m = 2 atanh s`,
//!   `s = f / (2 + f)`, `f = m - 1`, written as `f - s (f - R(s²))` so
//!   that the exact `f` carries the leading bits.
//! - `log1p`, `expm1`: on `log` and `exp`, with the rounding of `1 + x`
//!   (or of `e^x - 1`) cancelled: `log1p x = x log(u) / (u - 1)` for
//!   `u = 1 + x`, and `expm1 x = (u - 1) x / log u` for `u = e^x` (Kahan's
//!   forms), within a few ulps.
//! - `tanh`: Cephes' rational function below 0.625, `1 - 2 / (e^{2x} + 1)`
//!   above.
//! - `sin`, `cos`: Cody–Waite reduction by pi/4 in three parts and Cephes'
//!   polynomials on [-pi/4, pi/4], for |x| up to [`TRIG_FAST_LIMIT_F64`]
//!   (a kernel whose input holds more goes to libm whole).
//! - `erf`: its Taylor series below 1; above, `1 - e^{-x²} g(x)`, with
//!   `g = erfc · e^{x²}` as a Chebyshev series in `1 / (3 + x)` (the
//!   coefficients and their check come from `tools/fit/erf_f64.py`).
//!
//! Integers are read from and made into floats through the low bits of
//! `1.5 · 2^52 + n`, since AVX2 has no packed conversion between f64 and
//! i64.

use super::map::scalar_fn;

scalar_fn!(
    /// [`exp_f64`] for the maps.
    ExpF64, f64, exp_f64
);
scalar_fn!(
    /// [`log_f64`] for the maps.
    LogF64, f64, log_f64
);
scalar_fn!(
    /// [`log1p_f64`] for the maps.
    Log1pF64, f64, log1p_f64
);
scalar_fn!(
    /// [`expm1_f64`] for the maps.
    Expm1F64, f64, expm1_f64
);
scalar_fn!(
    /// [`tanh_f64`] for the maps.
    TanhF64, f64, tanh_f64
);
scalar_fn!(
    /// [`sin_f64`] for the maps.
    SinF64, f64, sin_f64
);
scalar_fn!(
    /// [`cos_f64`] for the maps.
    CosF64, f64, cos_f64
);
scalar_fn!(
    /// [`erf_f64`] for the maps.
    ErfF64, f64, erf_f64
);

/// `1.5 · 2^52`: adding it to a float below 2^51 in magnitude rounds it
/// to an integer held in the low bits.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// ln 2 in two parts, the first with its low 32 bits zero, so that
/// `n * LN2_HI` is exact for every exponent `n`.
const LN2_HI: f64 = 0.6931471803691238;
const LN2_LO: f64 = 1.9082149292705877e-10;

/// The integer held by `t = ROUND + n`.
#[inline(always)]
fn low_int(t: f64) -> i64 {
    (t.to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64)
}

/// `n` as a float, for |n| below 2^51.
#[inline(always)]
fn int_to_float(n: i64) -> f64 {
    f64::from_bits(n.wrapping_add(ROUND.to_bits() as i64) as u64) - ROUND
}

/// `e^x` to within 1 ulp. Overflow gives `inf`, underflow gradual
/// denormals then 0, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f64(x: f64) -> f64 {
    let c = x.clamp(-746.0, 710.0);
    let t = c * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (c - n * LN2_HI) - n * LN2_LO;
    // e^r - 1 - r = r² (1/2! + r/3! + ... + r^11/13!).
    let mut p = INV_FACTORIALS[13];
    for &c in INV_FACTORIALS[2..13].iter().rev() {
        p = p * r + c;
    }
    let y = 1.0 + (r + r * r * p);
    // 2^n as two factors, so that n from -1077 to 1025 stays
    // representable.
    let n = low_int(t);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    let e = y * s1 * s2;
    if x.is_nan() { x } else { e }
}

/// `1 / k!` for k up to 13, each correctly rounded (k! is exact).
const INV_FACTORIALS: [f64; 14] = {
    let mut inv = [0.0; 14];
    let mut factorial = 1.0;
    let mut k = 0;
    while k < 14 {
        inv[k] = 1.0 / factorial;
        k += 1;
        factorial *= k as f64;
    }
    inv
};

/// `2 / (2k + 1)` for k up to 10: the series of `2 atanh s / s - 2` in s².
const ATANH_SERIES: [f64; 11] = {
    let mut c = [0.0; 11];
    let mut k = 0;
    while k < 11 {
        c[k] = 2.0 / (2 * k + 1) as f64;
        k += 1;
    }
    c
};

/// `ln x` to within 1 ulp: `-inf` at ±0, NaN below 0, `inf` at `inf`.
#[inline(always)]
pub(crate) fn log_f64(x: f64) -> f64 {
    // Subnormals are scaled into the normal range first.
    let tiny = x < f64::MIN_POSITIVE;
    let xs = if tiny {
        x * 18_014_398_509_481_984.0
    } else {
        x
    }; // 2^54
    let bits = xs.to_bits() as i64;
    let e = ((bits >> 52) & 0x7ff) - 1023 - if tiny { 54 } else { 0 };
    let m = f64::from_bits(((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000) as u64);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let k = int_to_float(e + big as i64);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // R = 2z/3 + 2z²/5 + ... + 2z^10/21: log m = 2s + s R = f - s (f - R).
    let mut r = ATANH_SERIES[10];
    for &c in ATANH_SERIES[1..10].iter().rev() {
        r = r * z + c;
    }
    let r = r * z;
    let l = f - s * (f - r);
    let y = k * LN2_HI + (l + k * LN2_LO);
    if x == 0.0 {
        f64::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        f64::NAN
    } else if x == f64::INFINITY {
        x
    } else {
        y
    }
}

/// `ln(1 + x)`: `-inf` at -1, NaN below, -0 stays -0.
#[inline(always)]
pub(crate) fn log1p_f64(x: f64) -> f64 {
    let u = 1.0 + x;
    // u - 1 is exact, so log(u) / (u - 1) is the slope of log over
    // [1, u], which changes slowly enough that x times it is log(1 + x).
    let r = x * (log_f64(u) / (u - 1.0));
    if u == 1.0 || x == f64::INFINITY { x } else { r }
}

/// `e^x - 1`: -1 at `-inf`, `inf` past overflow, -0 stays -0.
#[inline(always)]
pub(crate) fn expm1_f64(x: f64) -> f64 {
    let u = exp_f64(x);
    let um1 = u - 1.0;
    let r = um1 * (x / log_f64(u));
    if u == 1.0 {
        x
    } else if um1 == -1.0 || u == f64::INFINITY {
        um1
    } else {
        r
    }
}

/// `tanh x` to a couple of ulps; ±1 beyond |x| = 20, -0 stays -0.
#[inline(always)]
pub(crate) fn tanh_f64(x: f64) -> f64 {
    let a = x.abs();
    let z = a * a;
    let p =
        (-9.643_991_794_250_523e-1 * z - 9.928_772_310_019_186e1) * z - 1.614_687_684_417_084_5e3;
    let q = ((z + 1.128_116_784_916_329_3e2) * z + 2.235_488_390_601_004_6e3) * z
        + 4.844_063_053_251_255e3;
    let small = a + a * z * (p / q);
    let e = exp_f64(2.0 * a.min(20.0));
    let large = 1.0 - 2.0 / (e + 1.0);
    let t = if a > 0.625 { large } else { small };
    t.copysign(x)
}

/// The largest |x| the fast f64 `sin`/`cos` take: the octant index then
/// has at most 21 bits, so its products with the first two parts of pi/4
/// are exact.
pub(crate) const TRIG_FAST_LIMIT_F64: f64 = 1_048_576.0;

/// `|x|` reduced to `[-pi/4, pi/4]`, and the even octant index `j`.
#[inline(always)]
fn reduce_quarter_pi(a: f64) -> (f64, i64) {
    const FOUR_OVER_PI: f64 = std::f64::consts::FRAC_PI_4.recip();
    const DP1: f64 = 0.7853981256484985;
    const DP2: f64 = 3.774_894_707_930_798e-8;
    const DP3: f64 = 2.695_151_429_079_059_5e-15;
    // The octant rounded up to even, as a float; its bits give `j`.
    let y = (a * FOUR_OVER_PI).min(4_503_599_627_370_496.0).trunc(); // 2^52
    let y = ((y + 1.0) * 0.5).floor() * 2.0;
    let j = low_int(y + ROUND);
    (((a - y * DP1) - y * DP2) - y * DP3, j)
}

#[inline(always)]
fn sin_poly(z: f64) -> f64 {
    let zz = z * z;
    let p = ((((1.589_623_015_765_465_7e-10 * zz - 2.505_074_776_285_780_7e-8) * zz
        + 2.755_731_362_138_572_5e-6)
        * zz
        - 0.0001984126982958954)
        * zz
        + 0.008333333333322118)
        * zz
        - 0.1666666666666663;
    z + z * zz * p
}

#[inline(always)]
fn cos_poly(z: f64) -> f64 {
    let zz = z * z;
    let p = ((((-1.135_853_652_138_768_2e-11 * zz + 2.087570084197473e-09) * zz
        - 2.755731417929674e-07)
        * zz
        + 2.480_158_728_885_170_5e-5)
        * zz
        - 1.388_888_888_887_305_6e-3)
        * zz
        + 4.166_666_666_666_659_3e-2;
    1.0 - 0.5 * zz + zz * zz * p
}

/// `sin x` for |x| ≤ [`TRIG_FAST_LIMIT_F64`]; NaN stays NaN, -0 stays -0.
#[inline(always)]
pub(crate) fn sin_f64(x: f64) -> f64 {
    let (z, j) = reduce_quarter_pi(x.abs());
    let r = if j & 2 != 0 { cos_poly(z) } else { sin_poly(z) };
    // Octants 4 to 7 are the negated 0 to 3; sin is odd.
    let negate = (j & 4 != 0) != x.is_sign_negative();
    if negate { -r } else { r }
}

/// `cos x` for |x| ≤ [`TRIG_FAST_LIMIT_F64`]; NaN stays NaN.
#[inline(always)]
pub(crate) fn cos_f64(x: f64) -> f64 {
    let (z, j) = reduce_quarter_pi(x.abs());
    let r = if j & 2 != 0 { sin_poly(z) } else { cos_poly(z) };
    let negate = (j & 4 != 0) != (j & 2 != 0);
    if negate { -r } else { r }
}

/// `erf x` for every f64, to about 1 ulp; ±1 at the infinities, NaN for
/// NaN, -0 stays -0.
#[inline(always)]
pub(crate) fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    let z = a * a;
    let mut p = ERF_TAYLOR[ERF_TAYLOR.len() - 1];
    for &c in ERF_TAYLOR[..ERF_TAYLOR.len() - 1].iter().rev() {
        p = p * z + c;
    }
    let small = a + a * p;
    // Clenshaw's recurrence for g(a) = Σ c_k T_k(u), u the image of
    // t = 1 / (3 + a) on [1/9, 1/4] in [-1, 1]; g is flat beyond 6,
    // where e^{-a²} g(a) is below half an ulp of 1.
    const T_LO: f64 = 1.0 / 9.0;
    const T_HI: f64 = 1.0 / 4.0;
    let t = 1.0 / (3.0 + a.min(6.0));
    let u = (2.0 * t - (T_HI + T_LO)) / (T_HI - T_LO);
    let (mut b1, mut b2) = (0.0, 0.0);
    for &c in ERFC_CHEB[1..].iter().rev() {
        (b1, b2) = (2.0 * u * b1 - b2 + c, b1);
    }
    let g = u * b1 - b2 + ERFC_CHEB[0];
    let large = 1.0 - exp_f64(-z) * g;
    let r = if a < 1.0 { small } else { large };
    r.copysign(x)
}

// From `tools/fit/erf_f64.py`, which printed:
// worst error on [0, 1) in f64: 1.144 ulp
const ERF_TAYLOR: [f64; 19] = [
    0.1283791670955126,
    -0.37612638903183754,
    0.11283791670955126,
    -0.026866170645131252,
    0.005223977625442188,
    -0.0008548327023450853,
    0.00012055332981789664,
    -1.492565035840625e-05,
    1.6462114365889248e-06,
    -1.6365844691234924e-07,
    1.4807192815879218e-08,
    -1.2290555301717928e-09,
    9.422759064650411e-11,
    -6.7113668551641105e-12,
    4.4632242632864775e-13,
    -2.7835162072109215e-14,
    1.6342614095367152e-15,
    -9.063970842808673e-17,
    4.763348040515068e-18,
];
// worst error on [1, 6] in f64: 1.244 ulp
const ERFC_CHEB: [f64; 20] = [
    0.23376822188092547,
    0.16410196278423408,
    0.026097812602892758,
    0.003281118531499783,
    0.0003134638906524851,
    2.046056770846006e-05,
    5.776987700182602e-07,
    -3.7726446174366106e-08,
    -4.115662017323819e-09,
    2.040121545843181e-11,
    2.0708393696186037e-11,
    2.3843849434040655e-13,
    -1.1516152507336692e-13,
    -1.4762836958503521e-15,
    7.37801308404702e-16,
    -2.7502041205173245e-19,
    -5.093172893519153e-18,
    1.3377166613985264e-19,
    3.371214100438031e-20,
    -2.2938731800457457e-21,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst error of `f` against `g` over `n` points of [lo, hi], in
    /// ulps of `max(|want|, floor)`.
    fn worst(f: fn(f64) -> f64, g: fn(f64) -> f64, lo: f64, hi: f64, floor: f64) -> f64 {
        let n = 400_000;
        let mut worst: f64 = 0.0;
        for i in 0..=n {
            let x = lo + (hi - lo) * (i as f64 / n as f64);
            let want = g(x);
            let ulp = want.abs().max(floor) * f64::EPSILON;
            worst = worst.max((f(x) - want).abs() / ulp);
        }
        worst
    }

    #[test]
    fn exp_and_log_are_within_an_ulp_or_two_and_keep_special_values() {
        assert!(worst(exp_f64, f64::exp, -700.0, 700.0, 0.0) < 1.5);
        assert!(worst(exp_f64, f64::exp, -1.0, 1.0, 0.0) < 1.5);
        assert!(worst(log_f64, f64::ln, 1e-300, 1e300, 0.0) < 1.5);
        assert!(worst(log_f64, f64::ln, 0.5, 2.0, 0.0) < 1.5);
        assert!(worst(log_f64, f64::ln, 1e-310, 1e-305, 0.0) < 1.5);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        // A denormal, to its last bit.
        assert!((exp_f64(-740.0) - (-740f64).exp()).abs() <= 5e-324);
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(log_f64(1.0), 0.0);
        assert_eq!(log_f64(0.0), f64::NEG_INFINITY);
        assert_eq!(log_f64(-0.0), f64::NEG_INFINITY);
        assert_eq!(log_f64(f64::INFINITY), f64::INFINITY);
        assert!(log_f64(-1.0).is_nan() && log_f64(f64::NAN).is_nan());
        assert!((log_f64(5e-324) - 5e-324f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn log1p_and_expm1_are_accurate_near_zero_and_far_out() {
        assert!(worst(log1p_f64, f64::ln_1p, -0.999, 10.0, 0.0) < 3.0);
        assert!(worst(log1p_f64, f64::ln_1p, -1e-6, 1e-6, 0.0) < 3.0);
        assert!(worst(log1p_f64, f64::ln_1p, 1.0, 1e300, 0.0) < 3.0);
        assert!(worst(expm1_f64, f64::exp_m1, -40.0, 709.0, 0.0) < 3.0);
        assert!(worst(expm1_f64, f64::exp_m1, -1e-6, 1e-6, 0.0) < 3.0);
        assert_eq!(log1p_f64(-1.0), f64::NEG_INFINITY);
        assert_eq!(log1p_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(log1p_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert!(log1p_f64(-2.0).is_nan() && log1p_f64(f64::NAN).is_nan());
        assert_eq!(expm1_f64(f64::NEG_INFINITY), -1.0);
        assert_eq!(expm1_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(expm1_f64(710.0), f64::INFINITY);
        assert_eq!(expm1_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(expm1_f64(1e-300), 1e-300);
        assert!(expm1_f64(f64::NAN).is_nan());
    }

    #[test]
    fn tanh_is_accurate_and_odd() {
        assert!(worst(tanh_f64, f64::tanh, -0.7, 0.7, 0.0) < 2.0);
        assert!(worst(tanh_f64, f64::tanh, -25.0, 25.0, 0.0) < 3.0);
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_f64(f64::INFINITY), 1.0);
        assert_eq!(tanh_f64(f64::NEG_INFINITY), -1.0);
        assert!(tanh_f64(f64::NAN).is_nan());
    }

    #[test]
    fn sin_and_cos_are_accurate_over_the_fast_range() {
        assert!(worst(sin_f64, f64::sin, -10.0, 10.0, 1e-3) < 2.0);
        assert!(worst(cos_f64, f64::cos, -10.0, 10.0, 1e-3) < 2.0);
        let far = TRIG_FAST_LIMIT_F64;
        assert!(worst(sin_f64, f64::sin, -far, far, 1.0) < 2.0);
        assert!(worst(cos_f64, f64::cos, -far, far, 1.0) < 2.0);
        assert_eq!(sin_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(cos_f64(0.0), 1.0);
        assert_eq!(sin_f64(1e-300), 1e-300);
        assert!(sin_f64(f64::NAN).is_nan() && cos_f64(f64::NAN).is_nan());
    }

    #[test]
    fn erf_is_accurate_everywhere_and_keeps_special_values() {
        // candle's erf (a port of Boost's) is the reference here.
        let erf = candle_core::cpu::erf::erf_f64;
        assert!(worst(erf_f64, erf, -1.0, 1.0, 0.0) < 2.0);
        assert!(worst(erf_f64, erf, -7.0, 7.0, 0.0) < 2.0);
        assert!(worst(erf_f64, erf, -1e-6, 1e-6, 0.0) < 2.0);
        assert_eq!(erf_f64(f64::INFINITY), 1.0);
        assert_eq!(erf_f64(f64::NEG_INFINITY), -1.0);
        assert_eq!(erf_f64(1e300), 1.0);
        assert!(erf_f64(f64::NAN).is_nan());
        assert_eq!(erf_f64(-0.0).to_bits(), (-0.0f64).to_bits());
    }
}
