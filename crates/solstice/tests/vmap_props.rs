//! Property tests: every op under `vmap`, with random shapes and random
//! `in_axes`, equals the op applied to each example and stacked. Nested
//! `vmap` likewise equals a double loop.

use proptest::prelude::*;
use solstice::{Array, Axes, CmpOp, Result, vmap, vmap_with};

type Op = fn(&Array, &Array) -> Result<Array>;

/// Ops of two arrays of the same shape (the second may be ignored).
const OPS: &[(&str, Op)] = &[
    ("add", |a, b| a.add(b)),
    ("sub", |a, b| a.sub(b)),
    ("mul", |a, b| a.mul(b)),
    ("div", |a, b| a.div(&b.square()?.add_scalar(1.0)?)),
    ("maximum", |a, b| a.maximum(b)),
    ("minimum", |a, b| a.minimum(b)),
    ("select", |a, b| a.compare(b, CmpOp::Gt)?.select(a, b)),
    ("exp", |a, _| a.exp()),
    ("log", |a, _| a.square()?.add_scalar(1.0)?.log()),
    ("tanh", |a, _| a.tanh()),
    ("sqrt", |a, _| a.abs()?.sqrt()),
    ("sin", |a, _| a.sin()),
    ("erf", |a, _| a.erf()),
    ("neg", |a, _| a.neg()),
    ("abs", |a, _| a.abs()),
    ("sign", |a, _| a.sign()),
    ("relu", |a, _| a.relu()),
    ("sigmoid", |a, _| a.sigmoid()),
    ("sum first", |a, _| a.sum(&[0])),
    ("sum last", |a, _| a.sum(&[-1])),
    ("sum all", |a, _| a.sum_all()),
    ("mean", |a, _| a.mean(&[-1])),
    ("max", |a, _| a.max(&[0])),
    ("transpose", |a, _| a.t()),
    ("moveaxis", |a, _| a.moveaxis(0, -1)),
    ("reshape", |a, _| a.reshape(&[a.elem_count()])),
    ("expand_dims", |a, _| a.expand_dims(1)),
    ("broadcast", |a, _| {
        let mut shape = vec![2];
        shape.extend_from_slice(a.shape());
        a.broadcast_to(&shape)
    }),
    ("astype", |a, _| a.astype(solstice::DType::F32)),
    ("softmax", |a, _| a.softmax(-1)),
    ("log_softmax", |a, _| a.log_softmax(0)),
    ("logsumexp", |a, _| a.logsumexp(-1)),
    ("stop_gradient", |a, _| a.stop_gradient()),
    ("matmul a b^T", |a, b| a.matmul(&b.moveaxis(-1, -2)?)),
    ("matmul a^T b", |a, b| a.moveaxis(-1, -2)?.matmul(b)),
    ("matmul vector", |a, b| {
        let last = b.shape()[b.rank() - 1];
        let v = b.reshape(&[b.elem_count() / last, last])?.sum(&[0])?;
        a.matmul(&v)
    }),
    ("take", |a, b| {
        // Indices that depend on `b`, so both can be batched.
        let n = a.shape()[0] as f64;
        let idx = b.abs()?.mul_scalar(7.0)?.astype(solstice::DType::I64)?;
        let idx = idx.sub(
            &idx.astype(solstice::DType::F64)?
                .mul_scalar(1.0 / n)?
                .astype(solstice::DType::I64)?
                .mul_scalar(n)?,
        )?;
        a.take(&idx.reshape(&[idx.elem_count()])?, 0)
    }),
    ("index_add", |a, b| {
        let idx = Array::from_vec(vec![0i64, 0], &[2])?;
        let src = b.take(&Array::from_vec(vec![0i64, 0], &[2])?, 0)?;
        a.index_add(&idx, &src, 0)
    }),
    // The fused row-wise primitives.
    ("softmax axis 0", |a, _| a.softmax(0)),
    ("standardize", |a, _| a.standardize(1e-5)),
    ("softmax_cross_entropy", |a, b| {
        // Labels that depend on `b`, so both can be batched.
        let n = a.shape()[a.rank() - 1] as f64 - 1.0;
        let labels = b
            .sum(&[-1])?
            .abs()?
            .astype(solstice::DType::I64)?
            .minimum(&Array::scalar_of(n, solstice::DType::I64)?)?;
        a.softmax_cross_entropy(&labels)
    }),
];

fn array(data: &[f64], shape: &[usize]) -> Array {
    Array::from_vec(data.to_vec(), shape).unwrap()
}

/// Example `i` of `x` along `axis`.
fn example(x: &Array, axis: usize, i: usize) -> Array {
    x.take(&Array::scalar(i as i64).unwrap(), axis as isize)
        .unwrap()
}

/// `x` with a batch of `size` inserted at `axis`, example `i` scaled by a
/// distinct factor so that examples differ.
fn batched(x: &Array, size: usize, axis: usize) -> Array {
    let scales: Vec<f64> = (0..size).map(|i| 1.0 - 0.37 * i as f64).collect();
    let mut shape = vec![size];
    shape.extend(std::iter::repeat_n(1, x.rank()));
    let s = array(&scales, &shape);
    x.expand_dims(0)
        .unwrap()
        .mul(&s)
        .unwrap()
        .moveaxis(0, axis as isize)
        .unwrap()
}

fn close(a: &Array, b: &Array) -> bool {
    a.shape() == b.shape()
        && a.to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(b.to_vec::<f64>().unwrap())
            .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0) || (x.is_nan() && y.is_nan()))
}

/// A shape, two arrays of it, a batch size and two optional batch axes.
type Case = (
    Vec<usize>,
    Vec<f64>,
    Vec<f64>,
    usize,
    Option<usize>,
    Option<usize>,
);

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(1usize..4, 2..=3), 1usize..4).prop_flat_map(|(shape, size)| {
        let n: usize = shape.iter().product();
        let rank = shape.len();
        (
            Just(shape),
            prop::collection::vec(-2.0f64..2.0, n),
            prop::collection::vec(-2.0f64..2.0, n),
            Just(size),
            prop::option::weighted(0.8, 0..=rank),
            prop::option::weighted(0.8, 0..=rank),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_op_under_vmap_equals_stacked_examples(
        (shape, a, b, size, axis_a, axis_b) in case()
    ) {
        prop_assume!(axis_a.is_some() || axis_b.is_some());
        let (a, b) = (array(&a, &shape), array(&b, &shape));
        let xa = axis_a.map_or(a.clone(), |ax| batched(&a, size, ax));
        let xb = axis_b.map_or(b.clone(), |ax| batched(&b, size, ax));
        for (name, op) in OPS {
            let f = vmap_with(
                |p: &(Array, Array)| op(&p.0, &p.1),
                Axes::PerElement(vec![axis_a.map(|a| a as isize), axis_b.map(|b| b as isize)]),
                Axes::All(Some(0)),
            );
            let out = f(&(xa.clone(), xb.clone())).unwrap();
            for i in 0..size {
                let ea = axis_a.map_or(xa.clone(), |ax| example(&xa, ax, i));
                let eb = axis_b.map_or(xb.clone(), |ax| example(&xb, ax, i));
                let expected = op(&ea, &eb).unwrap();
                let got = example(&out, 0, i);
                prop_assert!(close(&got, &expected), "{}: example {} of {:?} vs {:?}", name, i, got.to_vec::<f64>(), expected.to_vec::<f64>());
            }
        }
    }

    #[test]
    fn nested_vmap_equals_a_double_loop(
        (shape, a, b, size, _, _) in case(), inner in 1usize..4
    ) {
        let (a, b) = (array(&a, &shape), array(&b, &shape));
        let xa = batched(&batched(&a, inner, 0), size, 0); // [size, inner, ...]
        for (name, op) in OPS {
            let f = vmap(|row: &Array| vmap(|x: &Array| op(x, &b))(row));
            let out = f(&xa).unwrap();
            for i in 0..size {
                for j in 0..inner {
                    let x = example(&example(&xa, 0, i), 0, j);
                    let expected = op(&x, &b).unwrap();
                    let got = example(&example(&out, 0, i), 0, j);
                    prop_assert!(close(&got, &expected), "{}: ({}, {})", name, i, j);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn nested_vmap_over_different_operands_equals_a_double_loop(
        (shape, a, b, size, _, _) in case(), inner in 1usize..4
    ) {
        // The outer vmap maps `a`, the inner one `b`: each op sees operands
        // batched at different levels.
        let (a, b) = (array(&a, &shape), array(&b, &shape));
        let (xa, xb) = (batched(&a, size, 0), batched(&b, inner, 0));
        for (name, op) in OPS {
            let f = vmap(|a: &Array| vmap(|b: &Array| op(a, b))(&xb));
            let out = f(&xa).unwrap();
            for i in 0..size {
                for j in 0..inner {
                    let expected = op(&example(&xa, 0, i), &example(&xb, 0, j)).unwrap();
                    let got = example(&example(&out, 0, i), 0, j);
                    prop_assert!(close(&got, &expected), "{}: ({}, {})", name, i, j);
                }
            }
        }
    }
}
