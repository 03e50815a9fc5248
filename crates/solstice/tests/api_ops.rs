//! The array API against real JAX (`tests/fixtures/api.json`, written by
//! `tools/reference/api_ref.py`): values and gradients of every new
//! operation, and JAX's answers for integer division, relu's derivative at
//! NaN, softmax of infinities and empty arrays, and dropout's scaling.
//! Derivatives are also checked against finite differences in both modes,
//! and every operation under `vmap` against a loop.

mod common;

use common::assert_matches;
use serde_json::Value;
use solstice::nn::Dropout;
use solstice::random::Key;
use solstice::{
    Array, CmpOp, DType, Result, concatenate, einsum, grad, jvp, stack, vmap, where_cond,
};

type Op = Box<dyn Fn(&[Array]) -> Result<Vec<Array>>>;

fn one(a: Result<Array>) -> Result<Vec<Array>> {
    a.map(|a| vec![a])
}

fn i32_scalar(v: i32) -> Array {
    Array::scalar(v).unwrap()
}

/// The solstice form of each fixture case, by name.
fn op(name: &str, spec: Option<&str>) -> Op {
    let spec = spec.map(str::to_string);
    match name {
        "argmax" => Box::new(|x| one(x[0].argmax(-1))),
        "argmin" => Box::new(|x| one(x[0].argmin(0))),
        "argmax_nan" => Box::new(|x| one(x[0].argmax(-1))),
        "argmin_nan" => Box::new(|x| one(x[0].argmin(-1))),
        "min" => Box::new(|x| one(x[0].min(&[1]))),
        "min_ties" => Box::new(|x| one(x[0].min(&[0]))),
        "var" => Box::new(|x| one(x[0].var(&[1]))),
        "std" => Box::new(|x| one(x[0].std(&[0]))),
        "pow" => Box::new(|x| one(x[0].pow(&x[1]))),
        "pow_negative_base" => Box::new(|x| one(x[0].pow_scalar(3.0))),
        "clip" => Box::new(|x| one(x[0].clip(-0.5, 0.7))),
        "floor" => Box::new(|x| one(x[0].floor())),
        "ceil" => Box::new(|x| one(x[0].ceil())),
        "round" => Box::new(|x| one(x[0].round())),
        "log1p" => Box::new(|x| one(x[0].log1p())),
        "expm1" => Box::new(|x| one(x[0].expm1())),
        "where" => Box::new(|x| {
            let positive = x[0].compare(&x[0].zeros_like()?, CmpOp::Gt)?;
            one(where_cond(&positive, &x[0], &x[0].square()?))
        }),
        "cumsum" => Box::new(|x| one(x[0].cumsum(1))),
        "cumsum_reverse" => Box::new(|x| one(x[0].cumsum_reverse(0))),
        "sort" => Box::new(|x| one(x[0].sort(-1))),
        "sort_descending" => Box::new(|x| one(x[0].sort_descending(-1))),
        "argsort_nan" => Box::new(|x| one(x[0].argsort(-1))),
        "argsort_descending_nan" => Box::new(|x| one(x[0].argsort_descending(-1))),
        "argsort_axis0" => Box::new(|x| one(x[0].argsort(0))),
        "top_k" => Box::new(|x| x[0].top_k(3).map(|(v, i)| vec![v, i])),
        "top_k_nan" => Box::new(|x| x[0].top_k(2).map(|(v, i)| vec![v, i])),
        "concatenate" => Box::new(|x| one(concatenate(&[&x[0], &x[1], &x[0]], 1))),
        "stack" => Box::new(|x| one(stack(&[&x[0], &x[1]], 1))),
        "split" => Box::new(|x| x[0].split_at(&[1, 4], 1)),
        "slice" => Box::new(|x| one(x[0].slice(&[1..2, 1..4]))),
        "dynamic_slice" => {
            Box::new(|x| one(x[0].dynamic_slice(&[&i32_scalar(1), &i32_scalar(1)], &[1, 3])))
        }
        "dynamic_slice_clamped" => {
            Box::new(|x| one(x[0].dynamic_slice(&[&i32_scalar(-1), &i32_scalar(4)], &[2, 3])))
        }
        "dynamic_update_slice" => Box::new(|x| {
            let update = x[1].slice(&[0..1, 0..2])?.mul_scalar(10.0)?;
            one(x[0].dynamic_update_slice(&update, &[&i32_scalar(1), &i32_scalar(2)]))
        }),
        "dynamic_update_slice_clamped" => Box::new(|x| {
            let update = x[1].slice(&[0..2, 0..3])?;
            one(x[0].dynamic_update_slice(&update, &[&i32_scalar(0), &i32_scalar(4)]))
        }),
        "int_divide" => Box::new(|x| one(x[0].div(&x[1]))),
        "int_floor_divide" | "float_floor_divide" => Box::new(|x| one(x[0].floor_divide(&x[1]))),
        "int_remainder" | "float_remainder" => Box::new(|x| one(x[0].rem(&x[1]))),
        "fmod" => Box::new(|x| one(x[0].fmod(&x[1]))),
        "relu_grad_nan" => Box::new(|x| one(vmap(grad(|x: &Array| x.relu()))(&x[0]))),
        "softmax_inf" | "softmax_all_masked" | "softmax_empty" | "softmax_empty_rows" => {
            Box::new(|x| one(x[0].softmax(-1)))
        }
        "logsumexp_empty" | "logsumexp_empty_rows" => Box::new(|x| one(x[0].logsumexp(-1))),
        "log_softmax_inf" => Box::new(|x| one(x[0].log_softmax(-1))),
        _ if name.starts_with("einsum") => {
            let spec = spec.expect("einsum cases have a spec");
            Box::new(move |x| one(einsum(&spec, &x[0], &x[1])))
        }
        other => panic!("no solstice form of fixture case {other}"),
    }
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("bad float {other}"),
        },
        v => v.as_f64().unwrap(),
    }
}

fn to_array(v: &Value) -> Array {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"].as_array().unwrap();
    match v["dtype"].as_str().unwrap() {
        "float32" => Array::from_vec(data.iter().map(|x| to_f64(x) as f32).collect(), &shape),
        "int32" => Array::from_vec(
            data.iter().map(|x| x.as_i64().unwrap() as i32).collect(),
            &shape,
        ),
        "uint32" => Array::from_vec(
            data.iter().map(|x| x.as_u64().unwrap() as u32).collect(),
            &shape,
        ),
        "uint8" => Array::from_vec(
            data.iter().map(|x| x.as_u64().unwrap() as u8).collect(),
            &shape,
        ),
        other => panic!("unknown dtype {other}"),
    }
    .unwrap()
}

fn fixture() -> Value {
    let path = format!(
        "{}/../../tests/fixtures/api.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `sum(y * cos(0.7 * arange))`, the loss whose gradients the fixture holds.
fn weighted(y: &Array) -> Result<Array> {
    let w = Array::arange(y.elem_count(), y.dtype())?
        .mul_scalar(0.7)?
        .cos()?
        .reshape(y.shape())?;
    y.mul(&w)?.sum_all()
}

#[test]
fn every_operation_matches_jax() {
    let fixture = fixture();
    let mut checked = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if name.starts_with("dropout") {
            continue;
        }
        let arrays = &case["arrays"];
        let f = op(name, case["spec"].as_str());
        let inputs: Vec<Array> = ["x", "y"]
            .iter()
            .filter(|k| !arrays[**k].is_null())
            .map(|k| to_array(&arrays[*k]))
            .collect();
        let outs = f(&inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, out) in outs.iter().enumerate() {
            let key = if i == 0 {
                "out".to_string()
            } else {
                format!("out{i}")
            };
            assert_matches(
                out,
                &to_array(&arrays[&key]),
                2e-6,
                &format!("{name} {key}"),
            );
        }
        for (i, key) in ["grad_x", "grad_y"].iter().enumerate() {
            if arrays[*key].is_null() || name == "relu_grad_nan" {
                continue;
            }
            let g = grad(|v: &Array| {
                let mut xs = inputs.clone();
                xs[i] = v.clone();
                weighted(&f(&xs)?[0])
            })(&inputs[i])
            .unwrap_or_else(|e| panic!("{name} grad: {e}"));
            assert_matches(&g, &to_array(&arrays[*key]), 2e-6, &format!("{name} {key}"));
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} cases checked");
}

#[test]
fn dropout_matches_equinox_bit_for_bit() {
    let fixture = fixture();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with("dropout") {
            continue;
        }
        let p = case["p"].as_f64().unwrap();
        let x = to_array(&case["arrays"]["x"]);
        let expected = to_array(&case["arrays"]["out"]).to_vec::<f32>().unwrap();
        let dropout = Dropout::new(p).unwrap();
        let y = dropout
            .forward(&x, Key::new(0))
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&expected), "{name}");
    }
}

const X: [f64; 10] = [0.3, -1.2, 0.7, 0.45, -0.05, 1.5, 0.25, -0.5, 2.0, -2.5];
const Y: [f64; 10] = [1.1, 0.4, -0.3, 2.0, 0.9, 0.6, -0.8, 1.3, 0.2, 0.5];

fn f64s(v: &[f64], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

type Unary = Box<dyn Fn(&Array) -> Result<Array>>;

/// Differentiable operations of an `f64[2, 5]`, away from kinks and ties.
fn differentiable() -> Vec<(&'static str, Unary)> {
    let y = f64s(&Y, &[2, 5]);
    let (y1, y2, y3) = (y.clone(), y.clone(), y.clone());
    let at = |i: i64| Array::scalar(i).unwrap();
    vec![
        ("min", Box::new(|x| x.min(&[1]))),
        ("var", Box::new(|x| x.var(&[1]))),
        ("std", Box::new(|x| x.std(&[0]))),
        ("pow", Box::new(move |x| x.abs()?.add_scalar(0.5)?.pow(&y1))),
        ("pow base", Box::new(|x| x.pow_scalar(3.0))),
        ("pow exponent", Box::new(|x| x.full_like(1.7)?.pow(x))),
        ("clip", Box::new(|x| x.clip(-0.6, 0.8))),
        ("log1p", Box::new(|x| x.abs()?.log1p())),
        ("expm1", Box::new(|x| x.expm1())),
        (
            "fmod",
            Box::new(move |x| x.fmod(&y2.abs()?.add_scalar(0.35)?)),
        ),
        ("rem", Box::new(move |x| x.mul_scalar(3.07)?.rem(&y3))),
        ("cumsum", Box::new(|x| x.cumsum(1)?.square())),
        (
            "cumsum_reverse",
            Box::new(|x| x.cumsum_reverse(0)?.square()),
        ),
        ("sort", Box::new(|x| x.sort(-1)?.square())),
        ("sort_descending", Box::new(|x| x.sort_descending(0)?.sin())),
        ("top_k", Box::new(|x| x.top_k(3)?.0.square())),
        (
            "take_along_axis",
            Box::new(|x| {
                let idx = Array::from_vec(vec![4i32, 0, 0, 2, 1, 3], &[2, 3])?;
                x.take_along_axis(&idx, 1)
            }),
        ),
        (
            "concatenate",
            Box::new(|x| concatenate(&[x, &x.square()?], 0)),
        ),
        ("stack", Box::new(|x| stack(&[&x.sin()?, x], 2))),
        (
            "split",
            Box::new(|x| {
                let parts = x.split_at(&[2], 1)?;
                concatenate(&[&parts[1], &parts[0].square()?], 1)
            }),
        ),
        ("slice", Box::new(|x| x.slice(&[1..2, 1..4])?.square())),
        (
            "dynamic_slice",
            Box::new(move |x| x.dynamic_slice(&[&at(1), &at(3)], &[1, 3])),
        ),
        (
            "dynamic_update_slice",
            Box::new(move |x| {
                let update = x.slice(&[0..1, 0..2])?.square()?;
                x.dynamic_update_slice(&update, &[&at(1), &at(2)])
            }),
        ),
        ("einsum", Box::new(|x| einsum("ij,kj->ik", x, &x.sin()?))),
        (
            "einsum sum",
            Box::new(|x| einsum("ij,k->i", x, &x.sum(&[0])?)),
        ),
        (
            "where",
            Box::new(|x| {
                let c = x.compare(&x.zeros_like()?, CmpOp::Gt)?;
                where_cond(&c, &x.exp()?, &x.square()?)
            }),
        ),
    ]
}

fn loss_of(op: &Unary) -> impl Fn(&Array) -> Result<Array> + '_ {
    move |x| {
        let y = op(x)?;
        let w = Array::arange(y.elem_count(), DType::F64)?
            .mul_scalar(0.37)?
            .sin()?
            .add_scalar(1.1)?
            .reshape(y.shape())?;
        y.mul(&w)?.sum_all()
    }
}

#[test]
fn derivatives_match_finite_differences() {
    let h = 1e-6;
    let v: Vec<f64> = (0..10).map(|i| ((i as f64) * 1.3).cos()).collect();
    for (name, op) in &differentiable() {
        let loss = loss_of(op);
        let x = f64s(&X, &[2, 5]);
        let analytic = grad(&loss)(&x).unwrap().to_vec::<f64>().unwrap();
        for i in 0..X.len() {
            let at = |s: f64| {
                let mut p = X.to_vec();
                p[i] += s;
                loss(&f64s(&p, &[2, 5]))
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (analytic[i] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "{name}: grad[{i}] {} vs numeric {numeric}",
                analytic[i]
            );
        }
        // Forward mode along v.
        let (_, tangent) = jvp(|x: &Array| op(x), &x, &f64s(&v, &[2, 5])).unwrap();
        let along = |s: f64| {
            let p: Vec<f64> = X.iter().zip(&v).map(|(a, b)| a + s * b).collect();
            op(&f64s(&p, &[2, 5])).unwrap().to_vec::<f64>().unwrap()
        };
        let (plus, minus) = (along(h), along(-h));
        for (j, t) in tangent.to_vec::<f64>().unwrap().iter().enumerate() {
            let numeric = (plus[j] - minus[j]) / (2.0 * h);
            assert!(
                (t - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "{name}: jvp[{j}] {t} vs numeric {numeric}"
            );
        }
    }
}

#[test]
fn second_derivatives_go_through_the_new_rules() {
    // d2/dx2 of sum(expm1(x) * log1p(x^2)) through the rules' own rules.
    let f = |x: &Array| x.expm1()?.mul(&x.square()?.log1p()?)?.sum_all();
    let x = 0.4f64;
    let (e, l) = (x.exp_m1(), (x * x).ln_1p());
    let (dl, ddl) = (
        2.0 * x / (1.0 + x * x),
        (2.0 - 2.0 * x * x) / (1.0 + x * x).powi(2),
    );
    let expected = x.exp() * l + 2.0 * x.exp() * dl + e * ddl;
    let got = grad(grad(f))(&Array::scalar(x).unwrap())
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

fn row(a: &Array, i: usize) -> Array {
    a.take(&Array::scalar(i as u32).unwrap(), 0).unwrap()
}

#[test]
fn every_operation_under_vmap_equals_a_loop() {
    let batch: Vec<f64> = (0..30).map(|i| ((i as f64) * 0.77).sin() * 2.0).collect();
    let xs = f64s(&batch, &[3, 2, 5]);
    let mut ops = differentiable();
    ops.push(("argmax", Box::new(|x| x.argmax(-1))));
    ops.push(("argmin", Box::new(|x| x.argmin(0))));
    ops.push(("argsort", Box::new(|x| x.argsort(-1))));
    ops.push(("round", Box::new(|x| x.mul_scalar(2.0)?.round())));
    ops.push((
        "floor_divide",
        Box::new(|x| x.floor_divide(&x.full_like(0.3)?)),
    ));
    for (name, op) in &ops {
        let ys = vmap(|x: &Array| op(x))(&xs).unwrap_or_else(|e| panic!("{name}: {e}"));
        for i in 0..3 {
            let y = op(&row(&xs, i)).unwrap();
            assert_eq!(row(&ys, i).dtype(), y.dtype(), "{name}");
            assert_eq!(
                row(&ys, i).to_vec::<f64>().unwrap(),
                y.to_vec::<f64>().unwrap(),
                "{name} example {i}"
            );
        }
    }
}

#[test]
fn cache_writes_and_reads_at_a_position_per_example() {
    // A key/value cache per sequence, each at its own position: the
    // positions are batched alongside the caches and the new rows.
    let caches = Array::zeros(&[3, 4, 2], DType::F32).unwrap();
    let rows = Array::from_vec((0..6).map(|i| i as f32 + 1.0).collect(), &[3, 1, 2]).unwrap();
    let positions = Array::from_vec(vec![0i32, 3, 1], &[3]).unwrap();
    let step = |(cache, row, pos): &(Array, Array, Array)| -> Result<(Array, Array)> {
        let cache = cache.dynamic_update_slice_in_dim(row, pos, 0)?;
        let read = cache.dynamic_slice_in_dim(pos, 1, 0)?;
        Ok((cache, read))
    };
    let (written, read) = vmap(step)(&(caches.clone(), rows.clone(), positions.clone())).unwrap();
    for (i, &p) in [0usize, 3, 1].iter().enumerate() {
        let cache = row(&written, i).to_vec::<f32>().unwrap();
        for t in 0..4 {
            let expected = if t == p {
                row(&rows, i).to_vec::<f32>().unwrap()
            } else {
                vec![0.0, 0.0]
            };
            assert_eq!(cache[t * 2..t * 2 + 2], expected[..], "example {i} row {t}");
        }
    }
    assert_eq!(read.to_vec::<f32>().unwrap(), rows.to_vec::<f32>().unwrap());
    // The gradient of what was read flows back to the written row only.
    let g = grad(|r: &Array| {
        let (c, _) = step(&(row(&caches, 0), r.clone(), Array::scalar(2i32)?))?;
        c.dynamic_slice_in_dim(&Array::scalar(2i32)?, 1, 0)?
            .mul_scalar(3.0)?
            .sum_all()
    })(&row(&rows, 0))
    .unwrap();
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![3.0, 3.0]);
}

#[test]
fn top_k_for_sampling_under_vmap() {
    // Per-sequence top-k over a vocabulary, as a sampler does.
    let logits: Vec<f32> = (0..2 * 1000).map(|i| ((i * 7919) % 1009) as f32).collect();
    let logits = Array::from_vec(logits, &[2, 1000]).unwrap();
    let (values, indices) = vmap(|l: &Array| l.top_k(5))(&logits).unwrap();
    for i in 0..2 {
        let row_values = row(&logits, i).to_vec::<f32>().unwrap();
        let mut order: Vec<usize> = (0..1000).collect();
        order.sort_by(|&a, &b| row_values[b].total_cmp(&row_values[a]).then(a.cmp(&b)));
        let expected: Vec<i32> = order[..5].iter().map(|&j| j as i32).collect();
        assert_eq!(row(&indices, i).to_vec::<i32>().unwrap(), expected);
        let expected_values: Vec<f32> = order[..5].iter().map(|&j| row_values[j]).collect();
        assert_eq!(row(&values, i).to_vec::<f32>().unwrap(), expected_values);
    }
}

#[test]
fn mistakes_are_clear_errors() {
    let x = f64s(&X, &[2, 5]);
    let err = x.top_k(6).unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
    assert!(x.slice_axis(0, 0..3).unwrap_err().is_shape_mismatch());
    assert!(x.slice(&[0..1, 0..6]).unwrap_err().is_shape_mismatch());
    assert!(x.split(3, 1).unwrap_err().is_shape_mismatch());
    let bad = einsum("ii,ij->j", &x, &x).unwrap_err();
    assert!(bad.to_string().contains("diagonals"), "{bad}");
    let err = einsum("ij,jk->ik", &x, &x).unwrap_err();
    assert!(err.to_string().contains("label j has size 5"), "{err}");
    let idx = Array::from_vec(vec![5i32, 0, 1, 2], &[2, 2]).unwrap();
    let err = x.take_along_axis(&idx, 1).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let a = Array::from_vec(vec![1i32, 2], &[2]).unwrap();
    let zero = Array::from_vec(vec![1i32, 0], &[2]).unwrap();
    assert!(
        a.floor_divide(&zero)
            .unwrap_err()
            .to_string()
            .contains("division by zero")
    );
    assert!(
        a.rem(&zero)
            .unwrap_err()
            .to_string()
            .contains("division by zero")
    );
    assert!(a.pow(&a).unwrap_err().is_dtype_mismatch());
}
