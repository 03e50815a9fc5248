//! Each kernel of `elementwise.rs`, `arg.rs` and the integer reductions
//! against candle's kernel or the scalar host loop it replaces, for every
//! dtype, on contiguous, transposed, offset and broadcast inputs large
//! enough to be split over threads.

use candle_core::{DType as C, Device, Tensor};

use super::arg::arg_extreme;
use super::binary::{BinaryOp, binary};
use super::elementwise::{self as ew, MathOp, math};
use super::reduce::{ReduceOp, reduce};
use crate::array::kernels_ext as ext;
use crate::array::prim::{CmpOp, RoundMode};

const DTYPES: [C; 6] = [C::F32, C::F64, C::I64, C::I32, C::U32, C::U8];
/// 300 × 257 = 77,100 elements: several chunks of the parallel split.
const ROWS: usize = 300;
const COLS: usize = 257;

/// Values of `dtype` (through f64), with NaN, infinities and signed zeros
/// among the floats and negatives among the signed integers; `small`
/// keeps integers far from overflow and floats finite and within 1000.5.
fn values(dtype: C, n: usize, seed: usize, small: bool) -> Tensor {
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let k = (i * 7919 + seed * 104_729) % 1009;
            match dtype {
                C::F32 | C::F64 => match k {
                    0 => f64::NAN,
                    1 if small => 2.75,
                    1 => f64::INFINITY,
                    2 if small => -4.25,
                    2 => f64::NEG_INFINITY,
                    3 => -0.0,
                    4 => 0.0,
                    5 => 2.5,
                    6 => -3.5,
                    7 if small => 1000.5,
                    7 => 1e10,
                    _ => (k as f64 - 504.0) / 37.0,
                },
                C::U8 => (k % if small { 8 } else { 256 }) as f64,
                C::U32 => (if small { k % 50 } else { k * 4_000_000 }) as f64,
                _ => (k as f64 - 504.0) * if small { 1.0 } else { 3.0e6 },
            }
        })
        .collect();
    Tensor::from_vec(v, n, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// The same data of `[ROWS, COLS]` as a contiguous array, a transposed
/// view, an offset view, and a row and a column broadcast.
fn layouts(dtype: C, seed: usize, small: bool) -> Vec<(&'static str, Tensor)> {
    let full = values(dtype, ROWS * COLS, seed, small)
        .reshape((ROWS, COLS))
        .unwrap();
    let t = values(dtype, ROWS * COLS, seed, small)
        .reshape((COLS, ROWS))
        .unwrap()
        .t()
        .unwrap();
    let wide = values(dtype, ROWS * (COLS + 9), seed, small)
        .reshape((ROWS, COLS + 9))
        .unwrap()
        .narrow(1, 4, COLS)
        .unwrap();
    let row = values(dtype, COLS, seed, small)
        .broadcast_as((ROWS, COLS))
        .unwrap();
    let col = values(dtype, ROWS, seed, small)
        .reshape((ROWS, 1))
        .unwrap()
        .broadcast_as((ROWS, COLS))
        .unwrap();
    vec![
        ("contiguous", full),
        ("transposed", t),
        ("offset", wide),
        ("row broadcast", row),
        ("column broadcast", col),
    ]
}

/// Equal dtypes, shapes and values (NaN equal to NaN; `-0` equal to `0`,
/// which an extreme of both may pick either of).
fn assert_same(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let flat = |t: &Tensor| t.flatten_all().unwrap();
    match got.dtype() {
        C::F32 | C::F64 => {
            let g = flat(got)
                .to_dtype(C::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let w = flat(want)
                .to_dtype(C::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                let same = (a.is_nan() && b.is_nan()) || a == b;
                assert!(same, "{what}: element {i} is {a}, want {b}");
            }
        }
        _ => {
            let g = flat(got)
                .to_dtype(C::I64)
                .unwrap()
                .to_vec1::<i64>()
                .unwrap();
            let w = flat(want)
                .to_dtype(C::I64)
                .unwrap()
                .to_vec1::<i64>()
                .unwrap();
            assert_eq!(g, w, "{what}");
        }
    }
}

fn is_float(d: C) -> bool {
    matches!(d, C::F32 | C::F64)
}

/// `got` within `ulps` ulps (of its dtype) of `want`, the ulp taken of
/// `max(|want|, floor)`; NaN where `want` is NaN.
fn assert_close(got: &Tensor, want: &Tensor, ulps: f64, floor: f64, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let flat = |t: &Tensor| {
        t.flatten_all()
            .unwrap()
            .to_dtype(C::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let eps = if got.dtype() == C::F64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    for (i, (a, b)) in flat(got).iter().zip(&flat(want)).enumerate() {
        let tolerance = ulps * b.abs().max(floor) * eps;
        let close = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tolerance;
        assert!(close, "{what}: element {i} is {a}, want {b}");
    }
}

#[test]
fn sin_and_cos_take_the_vectorised_path_within_its_range() {
    for dtype in [C::F32, C::F64] {
        for (layout, x) in layouts(dtype, 2, true) {
            let what = |op: &str| format!("{op} of {dtype:?} {layout}");
            // Within 2 ulps of 1 (the reduction's error is absolute).
            let sin = math(MathOp::Sin, &x).unwrap().unwrap();
            assert_close(&sin, &x.sin().unwrap(), 2.0, 1.0, &what("sin"));
            let cos = math(MathOp::Cos, &x).unwrap().unwrap();
            assert_close(&cos, &x.cos().unwrap(), 2.0, 1.0, &what("cos"));
        }
        // A magnitude past the fast range sends the array to libm: exact.
        let x = Tensor::new(&[1.0f64, 1e6, -3.0e9], &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        assert_same(
            &math(MathOp::Sin, &x).unwrap().unwrap(),
            &x.sin().unwrap(),
            "sin far out",
        );
        assert_same(
            &math(MathOp::Cos, &x).unwrap().unwrap(),
            &x.cos().unwrap(),
            "cos far out",
        );
    }
}

#[test]
fn sign_sin_cos_erf_match_candle() {
    for dtype in DTYPES {
        for (layout, x) in layouts(dtype, 1, false) {
            let what = |op: &str| format!("{op} of {dtype:?} {layout}");
            // candle's sign, but NaN where the input is NaN, as JAX's.
            let want_sign = x
                .ne(&x)
                .unwrap()
                .where_cond(&x, &x.sign().unwrap())
                .unwrap();
            assert_same(
                &math(MathOp::Sign, &x).unwrap().unwrap(),
                &want_sign,
                &what("sign"),
            );
            if is_float(dtype) {
                // The vectorised polynomials where the storage is within
                // their range (a broadcast row may be), libm beyond.
                let sin = math(MathOp::Sin, &x).unwrap().unwrap();
                assert_close(&sin, &x.sin().unwrap(), 2.0, 1.0, &what("sin"));
                let cos = math(MathOp::Cos, &x).unwrap().unwrap();
                assert_close(&cos, &x.cos().unwrap(), 2.0, 1.0, &what("cos"));
                // Our branch-free erf against candle's (f64 inside).
                let erf = math(MathOp::Erf, &x).unwrap().unwrap();
                let ulps = if dtype == C::F32 { 3.0 } else { 2.0 };
                assert_close(&erf, &x.erf().unwrap(), ulps, 0.0, &what("erf"));
            } else {
                assert!(math(MathOp::Sin, &x).unwrap().is_none());
            }
        }
    }
}

#[test]
fn log1p_expm1_and_rounding_match_the_host_loops() {
    for dtype in [C::F32, C::F64] {
        for (layout, x) in layouts(dtype, 2, false) {
            let what = |op: &str| format!("{op} of {dtype:?} {layout}");
            // Vectorised on our exp and log: within a few ulps of libm's.
            for (op, want, name) in [
                (MathOp::Log1p, ext::log1p(&x).unwrap(), "log1p"),
                (MathOp::Expm1, ext::expm1(&x).unwrap(), "expm1"),
            ] {
                let got = math(op, &x).unwrap().unwrap();
                assert_close(&got, &want, 3.0, 0.0, &what(name));
            }
            let ops = [
                (
                    MathOp::Round(RoundMode::Nearest),
                    ext::round(&x, RoundMode::Nearest).unwrap(),
                    "round",
                ),
                (MathOp::Round(RoundMode::Floor), x.floor().unwrap(), "floor"),
                (MathOp::Round(RoundMode::Ceil), x.ceil().unwrap(), "ceil"),
            ];
            for (op, want, name) in ops {
                assert_same(&math(op, &x).unwrap().unwrap(), &want, &what(name));
            }
        }
    }
    // Ties go to even.
    let x = Tensor::new(&[0.5f32, 1.5, 2.5, -0.5, -2.5], &Device::Cpu).unwrap();
    let r = math(MathOp::Round(RoundMode::Nearest), &x)
        .unwrap()
        .unwrap();
    assert_eq!(r.to_vec1::<f32>().unwrap(), [0.0, 2.0, 2.0, -0.0, -2.0]);
}

#[test]
fn conversions_between_every_pair_of_dtypes_match_candle() {
    for from in DTYPES {
        for (layout, x) in layouts(from, 3, false) {
            for to in DTYPES {
                let got = ew::convert(&x, to).unwrap().unwrap();
                assert_same(
                    &got,
                    &x.to_dtype(to).unwrap(),
                    &format!("{from:?} -> {to:?} {layout}"),
                );
            }
        }
    }
}

#[test]
fn comparisons_and_select_match_candle_with_broadcasting() {
    let ops = [
        (CmpOp::Eq, candle_core::op::CmpOp::Eq),
        (CmpOp::Ne, candle_core::op::CmpOp::Ne),
        (CmpOp::Lt, candle_core::op::CmpOp::Lt),
        (CmpOp::Le, candle_core::op::CmpOp::Le),
        (CmpOp::Gt, candle_core::op::CmpOp::Gt),
        (CmpOp::Ge, candle_core::op::CmpOp::Ge),
    ];
    for dtype in DTYPES {
        let xs = layouts(dtype, 4, true);
        let ys = layouts(dtype, 5, true);
        // Rank-mismatched broadcasting as well: a `[COLS]` operand.
        let short = values(dtype, COLS, 6, true);
        for ((lx, x), (ly, y)) in xs.iter().zip(ys.iter().rev()) {
            for (op, cop) in ops {
                let what = format!("{op:?} of {dtype:?} {lx} and {ly}");
                assert_same(
                    &ew::compare(op, x, y).unwrap().unwrap(),
                    &x.cmp(y, cop).unwrap(),
                    &what,
                );
                let got = ew::compare(op, x, &short).unwrap().unwrap();
                let want = x.cmp(&short.broadcast_as(x.dims()).unwrap(), cop).unwrap();
                assert_same(&got, &want, &format!("{what} against a row"));
            }
            let cond = ew::compare(CmpOp::Lt, x, y)
                .unwrap()
                .unwrap()
                .t()
                .unwrap()
                .t()
                .unwrap();
            let got = ew::select(&cond, x, y).unwrap().unwrap();
            assert_same(
                &got,
                &cond.where_cond(x, y).unwrap(),
                &format!("select of {dtype:?} {lx}, {ly}"),
            );
            // A broadcast condition and a broadcast branch.
            let row_cond = ew::compare(CmpOp::Gt, &short, &values(dtype, COLS, 7, true))
                .unwrap()
                .unwrap();
            let got = ew::select(&row_cond, x, &short).unwrap().unwrap();
            let want = row_cond
                .broadcast_as(x.dims())
                .unwrap()
                .where_cond(x, &short.broadcast_as(x.dims()).unwrap())
                .unwrap();
            assert_same(&got, &want, &format!("broadcast select of {dtype:?} {lx}"));
        }
    }
}

#[test]
fn integer_arithmetic_matches_candle_and_wraps_on_overflow() {
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for dtype in [C::I64, C::I32, C::U32, C::U8] {
        let xs = layouts(dtype, 8, true);
        let ys = layouts(dtype, 9, true);
        for ((lx, x), (ly, y)) in xs.iter().zip(ys.iter().rev()) {
            // Small positive divisors and operands that do not overflow,
            // so candle (which panics on overflow in debug builds) agrees.
            let y1 = y
                .to_dtype(C::I64)
                .unwrap()
                .abs()
                .unwrap()
                .affine(1.0, 1.0)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let x1 = if dtype == C::U8 || dtype == C::U32 {
                x.broadcast_add(&y1).unwrap()
            } else {
                x.clone()
            };
            for op in ops {
                let got = binary(op, &x1, &y1).unwrap().unwrap();
                let want = match op {
                    BinaryOp::Add => x1.broadcast_add(&y1),
                    BinaryOp::Sub => x1.broadcast_sub(&y1),
                    BinaryOp::Mul => x1.broadcast_mul(&y1),
                    BinaryOp::Div => x1.broadcast_div(&y1),
                    BinaryOp::Maximum => x1.broadcast_maximum(&y1),
                    BinaryOp::Minimum => x1.broadcast_minimum(&y1),
                }
                .unwrap();
                assert_same(&got, &want, &format!("{op:?} of {dtype:?} {lx} and {ly}"));
            }
            let got = ew::int_div(&x1, &y1).unwrap().unwrap();
            assert_same(
                &got,
                &x1.broadcast_div(&y1).unwrap(),
                &format!("int_div of {dtype:?} {lx}"),
            );
            let got = ew::rem(&x1, &y1).unwrap().unwrap();
            assert_same(
                &got,
                &ext::rem(&x1, &y1).unwrap(),
                &format!("rem of {dtype:?} {lx}"),
            );
        }
    }
    // Overflow wraps, as JAX's integers.
    let big = Tensor::new(&[i32::MAX, i32::MIN, 7], &Device::Cpu).unwrap();
    let one = Tensor::new(&[1i32, 1, 3], &Device::Cpu).unwrap();
    let sum = binary(BinaryOp::Add, &big, &one).unwrap().unwrap();
    assert_eq!(sum.to_vec1::<i32>().unwrap(), [i32::MIN, i32::MIN + 1, 10]);
    let diff = binary(BinaryOp::Sub, &big, &one).unwrap().unwrap();
    assert_eq!(diff.to_vec1::<i32>().unwrap(), [i32::MAX - 1, i32::MAX, 4]);
    let bytes = Tensor::new(&[200u8, 3], &Device::Cpu).unwrap();
    let prod = binary(BinaryOp::Mul, &bytes, &bytes).unwrap().unwrap();
    assert_eq!(prod.to_vec1::<u8>().unwrap(), [64, 9]);
    // Division by zero and MIN / -1 are errors, as before.
    let zero = Tensor::new(&[1i32, 0, 3], &Device::Cpu).unwrap();
    let err = ew::int_div(&big, &zero).unwrap_err().to_string();
    assert!(err.contains("division by zero"), "{err}");
    let minus = Tensor::new(&[1i32, -1, 3], &Device::Cpu).unwrap();
    let err = ew::int_div(&big, &minus).unwrap_err().to_string();
    assert!(err.contains("overflows"), "{err}");
    assert!(ew::rem(&big, &zero).is_err());
}

#[test]
fn float_rem_and_pow_match_the_host_loops() {
    for dtype in [C::F32, C::F64] {
        let xs = layouts(dtype, 10, false);
        let ys = layouts(dtype, 11, false);
        for ((lx, x), (ly, y)) in xs.iter().zip(ys.iter().rev()) {
            let what = |op: &str| format!("{op} of {dtype:?} {lx} and {ly}");
            assert_same(
                &ew::rem(x, y).unwrap().unwrap(),
                &ext::rem(x, y).unwrap(),
                &what("rem"),
            );
            assert_same(
                &ew::pow(x, y).unwrap().unwrap(),
                &ext::pow(x, y).unwrap(),
                &what("pow"),
            );
        }
    }
}

#[test]
fn integer_reductions_and_minima_match_candle_and_the_host_loops() {
    for dtype in DTYPES {
        for (layout, x) in layouts(dtype, 12, true) {
            let x3 = x.reshape((ROWS / 10, 10, COLS)).unwrap();
            for axes in [vec![0usize], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]] {
                let what = |op: &str| format!("{op} over {axes:?} of {dtype:?} {layout}");
                let max = reduce(ReduceOp::Max, &x3, &axes).unwrap().unwrap();
                let min = reduce(ReduceOp::Min, &x3, &axes).unwrap().unwrap();
                assert_same(&min, &ext::min(&x3, &axes).unwrap(), &what("min"));
                if !is_float(dtype) {
                    let mut want_max = x3.clone();
                    for &a in axes.iter().rev() {
                        want_max = want_max.max(a).unwrap();
                    }
                    assert_same(&max, &want_max, &what("max"));
                    // Sums against i64 sums wrapped back to the dtype.
                    let sum = reduce(ReduceOp::Sum, &x3, &axes).unwrap().unwrap();
                    let wide = x3.to_dtype(C::I64).unwrap().sum(axes.as_slice()).unwrap();
                    let wrapped: Vec<i64> = wide
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<i64>()
                        .unwrap()
                        .into_iter()
                        .map(|v| match dtype {
                            C::I32 => v as i32 as i64,
                            C::U32 => v as u32 as i64,
                            C::U8 => v as u8 as i64,
                            _ => v,
                        })
                        .collect();
                    let got = sum.flatten_all().unwrap().to_dtype(C::I64).unwrap();
                    assert_eq!(got.to_vec1::<i64>().unwrap(), wrapped, "{}", what("sum"));
                }
            }
        }
    }
}

#[test]
fn arg_extremes_match_the_host_loop() {
    for dtype in DTYPES {
        for (layout, x) in layouts(dtype, 13, false) {
            for axis in 0..2 {
                let got = arg_extreme(&x, axis, false).unwrap().unwrap();
                let want = ext::arg_extreme(&x, axis, false).unwrap();
                assert_same(&got, &want, &format!("argmax {axis} of {dtype:?} {layout}"));
            }
            let x3 = x.reshape((ROWS / 10, 10, COLS)).unwrap();
            for axis in 0..3 {
                for min in [false, true] {
                    let got = arg_extreme(&x3, axis, min).unwrap().unwrap();
                    let want = ext::arg_extreme(&x3, axis, min).unwrap();
                    assert_same(
                        &got,
                        &want,
                        &format!("arg {min} {axis} of {dtype:?} {layout}"),
                    );
                }
            }
        }
    }
}

#[test]
fn integer_abs_and_neg_wrap_as_the_i64_results_cast_back() {
    for dtype in [C::I64, C::I32, C::U32, C::U8] {
        for (layout, x) in layouts(dtype, 5, false) {
            let what = |op: &str| format!("{op} of {dtype:?} {layout}");
            // candle has no integer abs or neg kernels: i64 on the host.
            let wide = x.flatten_all().unwrap().to_dtype(C::I64).unwrap();
            let wide = wide.to_vec1::<i64>().unwrap();
            let back = |v: Vec<i64>| {
                Tensor::from_vec(v, x.dims(), &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap()
            };
            let want_abs = back(wide.iter().map(|v| v.abs()).collect());
            let want_neg = back(wide.iter().map(|v| -v).collect());
            let abs = math(MathOp::IntAbs, &x).unwrap().unwrap();
            let neg = math(MathOp::IntNeg, &x).unwrap().unwrap();
            assert_same(&abs, &want_abs, &what("abs"));
            assert_same(&neg, &want_neg, &what("neg"));
        }
    }
    // The one integer without a positive counterpart stays itself.
    let min = Tensor::new(&[i32::MIN, -7, 7], &Device::Cpu).unwrap();
    let abs = math(MathOp::IntAbs, &min).unwrap().unwrap();
    assert_eq!(abs.to_vec1::<i32>().unwrap(), [i32::MIN, 7, 7]);
    let neg = math(MathOp::IntNeg, &min).unwrap().unwrap();
    assert_eq!(neg.to_vec1::<i32>().unwrap(), [i32::MIN, 7, -7]);
    assert!(
        math(MathOp::IntAbs, &min.to_dtype(C::F32).unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn float_maps_read_every_layout_as_its_contiguous_copy() {
    use super::unary::{UnaryOp, unary};
    let unary_ops = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Tanh,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::GeluTanh,
        UnaryOp::GeluTanhGrad,
    ];
    let binary_ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for dtype in [C::F32, C::F64] {
        let others = layouts(dtype, 8, false);
        for (layout, x) in layouts(dtype, 7, false) {
            // The same kernel on a contiguous copy is the reference: a
            // strided or blocked walk must not change a single bit.
            let dense = x.contiguous().unwrap().copy().unwrap();
            for op in unary_ops {
                let got = unary(op, &x).unwrap().unwrap();
                let want = unary(op, &dense).unwrap().unwrap();
                assert_same(&got, &want, &format!("{op:?} of {dtype:?} {layout}"));
            }
            for op in [MathOp::Sin, MathOp::Erf, MathOp::Log1p, MathOp::Sign] {
                let got = math(op, &x).unwrap().unwrap();
                let want = math(op, &dense).unwrap().unwrap();
                assert_same(&got, &want, &format!("{op:?} of {dtype:?} {layout}"));
            }
            for (other, y) in &others {
                let y_dense = y.contiguous().unwrap().copy().unwrap();
                for op in binary_ops {
                    let got = binary(op, &x, y).unwrap().unwrap();
                    let want = binary(op, &dense, &y_dense).unwrap().unwrap();
                    let what = format!("{op:?} of {dtype:?} {layout} and {other}");
                    assert_same(&got, &want, &what);
                }
                let got = ew::select(&x.ge(y).unwrap(), &x, y).unwrap().unwrap();
                let cond = dense.ge(&y_dense).unwrap();
                let want = ew::select(&cond, &dense, &y_dense).unwrap().unwrap();
                assert_same(&got, &want, &format!("select of {layout} and {other}"));
            }
        }
        // A long 1-D view with stride 2: split into rows, the last short.
        let n = 77_101;
        let x = values(dtype, 2 * n, 9, false)
            .reshape((n, 2))
            .unwrap()
            .narrow(1, 1, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        assert_eq!(x.stride(), [2]);
        let dense = x.contiguous().unwrap().copy().unwrap();
        let y = values(dtype, n, 10, false);
        for op in unary_ops {
            let got = unary(op, &x).unwrap().unwrap();
            let want = unary(op, &dense).unwrap().unwrap();
            assert_same(&got, &want, &format!("{op:?} of a stride-2 {dtype:?} view"));
        }
        for op in binary_ops {
            let got = binary(op, &x, &y).unwrap().unwrap();
            let want = binary(op, &dense, &y).unwrap().unwrap();
            assert_same(&got, &want, &format!("{op:?} of a stride-2 {dtype:?} view"));
        }
        let got = math(MathOp::Erf, &x).unwrap().unwrap();
        let want = math(MathOp::Erf, &dense).unwrap().unwrap();
        assert_same(&got, &want, "erf of a stride-2 view");
    }
}
