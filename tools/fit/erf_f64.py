"""Coefficients of solstice's f64 `erf` (crates/solstice/src/array/cpu/special_f64.rs).

Below 1, erf(a) = a + a P(a^2), P the Taylor series of erf(a) / a - 1
cut after 19 terms (the next is under 5e-18 relative), with 2 / sqrt(pi)
folded into the coefficients. Adding `a` last keeps the result within
about 1 ulp: a * (1 + P) would round 1 + P first.

For 1 <= a < 6, erf(a) = 1 - exp(-a^2) g(a) with g(a) = erfc(a) exp(a^2),
a smooth function. g is expanded in Chebyshev polynomials of
u in [-1, 1], where t = 1 / (3 + a) runs over [1/9, 1/4]: in that variable
the series converges fast (20 terms reach about 1e-18).

The coefficients are interpolation coefficients at Chebyshev nodes, from
values computed with mpmath at 50 digits. The script then checks the f64
evaluation (Clenshaw, as the Rust code does) against mpmath's erf over a
dense sweep, in ulps, and prints the Rust array.

Run: python3 tools/fit/erf_f64.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 50
N = 20
SHIFT = 3
LO, HI = 1, 6
T_LO, T_HI = mp.mpf(1) / (SHIFT + HI), mp.mpf(1) / (SHIFT + LO)


def g(a):
    return mp.erfc(a) * mp.exp(a * a)


def coefficients():
    half = mp.mpf(1) / 2
    nodes = [mp.cos(mp.pi * (k + half) / N) for k in range(N)]
    values = [g(1 / ((u + 1) / 2 * (T_HI - T_LO) + T_LO) - SHIFT) for u in nodes]
    c = [
        2 * mp.fsum(values[k] * mp.cos(mp.pi * j * (k + half) / N) for k in range(N)) / N
        for j in range(N)
    ]
    c[0] /= 2
    return [float(x) for x in c]


TAYLOR_TERMS = 19


def taylor():
    two_over_sqrt_pi = 2 / mp.sqrt(mp.pi)
    c = [
        two_over_sqrt_pi * (-1) ** n / (mp.factorial(n) * (2 * n + 1))
        for n in range(TAYLOR_TERMS)
    ]
    c[0] -= 1
    return [float(x) for x in c]


def evaluate_small(p, a):
    """erf(a) for a < 1 in f64 by Horner, as the Rust code computes it."""
    z = a * a
    acc = 0.0
    for pk in reversed(p):
        acc = acc * z + pk
    return a + a * acc


def evaluate(c, a):
    """g(a) in f64 by Clenshaw, as the Rust code computes it."""
    t = 1.0 / (SHIFT + a)
    u = (2.0 * t - (float(T_HI) + float(T_LO))) / (float(T_HI) - float(T_LO))
    b1 = b2 = 0.0
    for ck in reversed(c[1:]):
        b1, b2 = 2.0 * u * b1 - b2 + ck, b1
    return u * b1 - b2 + c[0]


def worst_ulps(f, lo, hi):
    worst = 0.0
    for a in np.linspace(lo, hi, 200_001):
        a = float(a)
        got = f(a)
        want = mp.erf(a)
        ulp = float(np.spacing(float(want)))
        worst = max(worst, abs(float(mp.mpf(got) - want)) / ulp)
    return worst


def main():
    p = taylor()
    print(f"// worst error on [0, 1) in f64: {worst_ulps(lambda a: evaluate_small(p, a), 1e-6, 0.999999):.3f} ulp")
    print(f"const ERF_TAYLOR: [f64; {TAYLOR_TERMS}] = [")
    for x in p:
        print(f"    {x!r},")
    print("];")
    c = coefficients()
    worst = 0.0
    for a in np.linspace(LO, HI, 200_001):
        a = float(a)
        got = 1.0 - float(np.exp(-a * a)) * evaluate(c, a)
        want = mp.erf(a)
        ulp = float(np.spacing(float(want)))
        worst = max(worst, abs(float(mp.mpf(got) - want)) / ulp)
    print(f"// worst error on [{LO}, {HI}] in f64: {worst:.3f} ulp")
    print(f"const ERFC_CHEB: [f64; {N}] = [")
    for x in c:
        print(f"    {x!r},")
    print("];")


if __name__ == "__main__":
    main()
