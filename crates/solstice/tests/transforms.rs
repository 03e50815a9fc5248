//! `grad` and `vmap` on the transformation core: derivatives against
//! analytic values, finite differences and real JAX; batching against loops
//! of single examples.

mod common;

use common::ops::{SHAPE, X, differentiable_ops, step_and_tolerance};
use common::{Fixture, assert_close, f64s};
use solstice::__private::record_kernels;
use solstice::nn::{Embedding, Linear};
use solstice::random::Key;
use solstice::{Array, DType, Tree, filter_grad, filter_value_and_grad, grad, vmap};

fn scalar(x: f64) -> Array {
    Array::scalar(x).unwrap()
}

fn value(a: &Array) -> f64 {
    a.to_scalar::<f64>().unwrap()
}

// f(x) = tanh(x) x^2, whose derivatives are written out by hand.
fn f(x: &Array) -> solstice::Result<Array> {
    x.tanh()?.mul(x)?.mul(x)
}

#[test]
fn second_derivative_matches_analytic() {
    for x in [-1.5, -0.3, 0.0, 0.7, 2.0] {
        let t = f64::tanh(x);
        let s = 1.0 - t * t; // sech^2
        let d1 = s * x * x + 2.0 * x * t;
        let d2 = -2.0 * t * s * x * x + 4.0 * x * s + 2.0 * t;
        let g = grad(f)(&scalar(x)).unwrap();
        let gg = grad(grad(f))(&scalar(x)).unwrap();
        assert!((value(&g) - d1).abs() < 1e-12, "f'({x})");
        assert!((value(&gg) - d2).abs() < 1e-12, "f''({x})");
    }
}

#[test]
fn third_derivative_of_a_polynomial() {
    // f(x) = x^4 / 4 + exp(x): f''' = 6x + exp(x).
    let f = |x: &Array| x.square()?.square()?.mul_scalar(0.25)?.add(&x.exp()?);
    for x in [-1.0, 0.5, 1.5] {
        let d3 = grad(grad(grad(f)))(&scalar(x)).unwrap();
        assert!((value(&d3) - (6.0 * x + x.exp())).abs() < 1e-11);
    }
}

/// Central differences of `f` at `x`, elementwise.
fn finite_difference(
    f: &dyn Fn(&Array) -> solstice::Result<Array>,
    x: &[f64],
    shape: &[usize],
    h: f64,
) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[i] += h;
            minus[i] -= h;
            let fp = value(&f(&f64s(&plus, shape)).unwrap());
            let fm = value(&f(&f64s(&minus, shape)).unwrap());
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

#[test]
fn every_differentiable_op_matches_finite_differences() {
    let (x, shape) = (X, SHAPE);
    for (name, op) in &differentiable_ops() {
        // A fixed random-looking weighting makes the scalar loss sensitive
        // to every output element.
        let loss = |x: &Array| -> solstice::Result<Array> {
            let y = op(x)?;
            let r = Array::arange(y.elem_count(), DType::F64)?
                .mul_scalar(0.37)?
                .sin()?
                .add_scalar(1.1)?
                .reshape(y.shape())?;
            y.mul(&r)?.sum_all()
        };
        let (h, tol) = step_and_tolerance(name);
        let analytic = grad(loss)(&f64s(&x, &shape))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let numeric = finite_difference(&loss, &x, &shape, h);
        for (a, n) in analytic.iter().zip(&numeric) {
            assert!(
                (a - n).abs() < tol * n.abs().max(1.0),
                "{name}: analytic {analytic:?} vs numeric {numeric:?}"
            );
        }
    }
}

#[test]
fn second_order_matches_finite_differences_of_the_gradient() {
    // d/dx_i of (grad of sum(tanh(W x)^2))_j, checked through the scalar
    // sum(grad * v).
    let w = f64s(&[0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 0.3, 0.8], &[2, 4]);
    let g = |x: &Array| -> solstice::Result<Array> {
        let inner = |x: &Array| w.matmul(x)?.tanh()?.square()?.sum_all();
        let v = f64s(&[1.0, -2.0, 0.5, 0.25], &[4]);
        grad(inner)(x)?.mul(&v)?.sum_all()
    };
    let x = [0.1, -0.4, 0.7, 0.2];
    let analytic = grad(g)(&f64s(&x, &[4])).unwrap().to_vec::<f64>().unwrap();
    let numeric = finite_difference(&g, &x, &[4], 1e-6);
    for (a, n) in analytic.iter().zip(&numeric) {
        assert!((a - n).abs() < 1e-6, "{analytic:?} vs {numeric:?}");
    }
}

#[test]
fn per_example_gradients_match_jax() {
    let fixture = Fixture::load("transforms.json");
    let case = fixture.case("f4_per_example_grad");
    let (w, xs) = (case.array("w"), case.array("xs"));
    let f4 = |w: &Array, x: &Array| w.matmul(x)?.tanh()?.square()?.sum_all();
    let per_example = vmap(|x: &Array| filter_grad(f4)(&w, x))(&xs).unwrap();
    assert_close(&per_example, &case.array("grads"), 1e-12, "vmap(grad(f4))");
    // ...and equal a loop of single-example gradients.
    for i in 0..xs.shape()[0] {
        let x = xs.take(&Array::scalar(i as u32).unwrap(), 0).unwrap();
        let single = filter_grad(f4)(&w, &x).unwrap();
        let batched = per_example
            .take(&Array::scalar(i as u32).unwrap(), 0)
            .unwrap();
        assert_close(&batched, &single, 1e-12, "example");
    }
}

#[test]
fn grad_values_match_jax() {
    let fixture = Fixture::load("transforms.json");
    let f1 = |x: &Array| x.tanh()?.mul(x)?.mul(x)?.sum_all();
    let case = fixture.case("f1");
    assert_close(
        &grad(f1)(&case.array("x")).unwrap(),
        &case.array("grad"),
        1e-12,
        "grad f1",
    );
    let f2 = |x: &Array| x.exp()?.sum_all()?.log();
    let case = fixture.case("f2");
    assert_close(
        &grad(f2)(&case.array("x")).unwrap(),
        &case.array("grad"),
        1e-12,
        "grad f2",
    );
    let case = fixture.case("f3");
    let (w, x) = (case.array("W"), case.array("x"));
    let f3 = |w: &Array, x: &Array| w.matmul(x)?.tanh()?.sum_all();
    assert_close(
        &filter_grad(f3)(&w, &x).unwrap(),
        &case.array("grad_W"),
        1e-12,
        "grad_W f3",
    );
}

#[test]
fn vmap_of_grad_of_an_elementwise_function_is_its_derivative() {
    let xs = f64s(&[-1.5, -0.3, 0.0, 0.7, 2.0], &[5]);
    let batched = vmap(grad(f))(&xs).unwrap();
    let looped: Vec<f64> = xs
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|&x| value(&grad(f)(&scalar(x)).unwrap()))
        .collect();
    assert_eq!(batched.to_vec::<f64>().unwrap(), looped);
    // And the other order: grad of a vmapped function.
    let total = |x: &Array| vmap(f)(x)?.sum_all();
    assert_close(&grad(total)(&xs).unwrap(), &batched, 1e-12, "grad(vmap(f))");
}

#[test]
fn nested_vmap() {
    let x = Array::from_vec((0..24).map(|i| i as f32).collect(), &[2, 3, 4]).unwrap();
    let w = Array::from_vec((0..8).map(|i| i as f32 - 3.0).collect(), &[2, 4]).unwrap();
    let out = vmap(|row: &Array| vmap(|v: &Array| w.matmul(v)?.tanh())(row))(&x).unwrap();
    assert_eq!(out.shape(), &[2, 3, 2]);
    let explicit = x.matmul(&w.t().unwrap()).unwrap().tanh().unwrap();
    assert_close(&out, &explicit, 1e-6, "nested vmap");
}

#[test]
fn vmap_embedding_is_one_gather_and_linear_one_matmul() {
    let [k1, k2] = Key::new(0).split();
    let embedding = Embedding::new(11, 6, k1).unwrap();
    let linear = Linear::new(6, 11, k2).unwrap();
    let tokens = Array::from_vec(vec![1u32, 4, 2, 9, 0, 10, 5], &[7]).unwrap();

    let (values, kernels) = record_kernels(|| vmap(|t: &Array| embedding.forward(t))(&tokens));
    let values = values.unwrap();
    assert_eq!(
        kernels.iter().filter(|k| **k == "take").count(),
        1,
        "{kernels:?}"
    );
    let (logits, kernels) = record_kernels(|| vmap(|v: &Array| linear.forward(v))(&values));
    let logits = logits.unwrap();
    assert_eq!(
        kernels.iter().filter(|k| **k == "matmul").count(),
        1,
        "{kernels:?}"
    );

    // Same numbers as one example at a time.
    for (i, &t) in [1u32, 4, 2, 9, 0, 10, 5].iter().enumerate() {
        let v = embedding.forward(&Array::scalar(t).unwrap()).unwrap();
        let y = linear.forward(&v).unwrap();
        let row = logits.take(&Array::scalar(i as u32).unwrap(), 0).unwrap();
        assert_close(&row, &y, 1e-6, "row");
    }
}

#[test]
fn per_example_gradients_of_the_embedding_gather() {
    // vmap(grad) through a gather: both the table's gradient (a scatter-add)
    // and the batch of indices are batched.
    let table = f64s(&[0.5, -1.0, 2.0, 0.25, 1.5, -0.75], &[3, 2]);
    let tokens = Array::from_vec(vec![2u32, 0, 2, 1], &[4]).unwrap();
    let loss = |e: &Embedding, t: &Array| e.forward(t)?.tanh()?.sum_all();
    let embedding = Embedding::from_weight(table).unwrap();
    let batched = vmap(|t: &Array| filter_grad(loss)(&embedding, t))(&tokens).unwrap();
    assert_eq!(batched.weight.shape(), &[4, 3, 2]);
    for (i, t) in [2u32, 0, 2, 1].into_iter().enumerate() {
        let t = Array::scalar(t).unwrap();
        let single = filter_grad(loss)(&embedding, &t).unwrap();
        let row = batched
            .weight
            .take(&Array::scalar(i as u32).unwrap(), 0)
            .unwrap();
        assert_close(&row, &single.weight, 1e-12, "per-example table gradient");
    }
}

#[test]
fn value_and_grad_returns_the_value() {
    let model = f64s(&[1.0, 2.0], &[2]);
    let (v, g) =
        filter_value_and_grad(|m: &Array, _: &()| m.square()?.sum_all())(&model, &()).unwrap();
    assert_eq!(value(&v), 5.0);
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
}

#[test]
fn unused_leaves_get_zero_gradients() {
    let model = (f64s(&[1.0, 2.0], &[2]), f64s(&[3.0], &[1]));
    let g = filter_grad(|m: &(Array, Array), _: &()| m.0.sum_all())(&model, &()).unwrap();
    assert_eq!(g.1.to_vec::<f64>().unwrap(), vec![0.0]);
}

#[test]
fn gradients_of_shared_parameters_under_vmap_keep_their_shapes() {
    // The bias is shared by every example of the batch; its gradient is the
    // sum over the batch, with the bias's own shape.
    let linear = Linear::new(3, 2, Key::new(5)).unwrap();
    let xs = Array::from_vec((0..12).map(|i| i as f32 * 0.1).collect(), &[4, 3]).unwrap();
    let loss = |l: &Linear, xs: &Array| vmap(|x: &Array| l.forward(x))(xs)?.sum_all();
    let g = filter_grad(loss)(&linear, &xs).unwrap();
    assert_eq!(g.structure(), linear.structure());
    assert_eq!(g.bias.unwrap().to_vec::<f32>().unwrap(), vec![4.0, 4.0]);
    let expected_w = xs
        .sum(&[0])
        .unwrap()
        .expand_dims(0)
        .unwrap()
        .broadcast_to(&[2, 3])
        .unwrap();
    assert_close(&g.weight, &expected_w, 1e-6, "weight gradient");
}

#[test]
fn has_aux_returns_undifferentiated_auxiliary_data() {
    let w = f64s(&[1.0, -2.0], &[2]);
    let f = |w: &Array, x: &Array| {
        let y = w.mul(x)?;
        Ok((y.sum_all()?, (y.clone(), y.tanh()?)))
    };
    let x = f64s(&[3.0, 4.0], &[2]);
    let ((loss, (y, t)), g) = solstice::filter_value_and_grad_aux(f)(&w, &x).unwrap();
    assert_eq!(value(&loss), -5.0);
    assert!(!y.is_tracer() && !t.is_tracer());
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![3.0, -8.0]);
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![3.0, 4.0]);
    let (g2, _) = solstice::filter_grad_aux(f)(&w, &x).unwrap();
    assert_eq!(g2.to_vec::<f64>().unwrap(), vec![3.0, 4.0]);
}

#[test]
fn gradient_with_respect_to_a_partitioned_part() {
    // Equinox's pattern: split the model with a filter spec, differentiate
    // the first part only, and combine inside the loss.
    let linear = Linear::new(3, 2, Key::new(9)).unwrap();
    let x = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    let is_weight = |a: &Array| a.rank() == 2;
    let (diff, rest) = solstice::tree::partition(&linear, is_weight);
    let loss = |diff: &Linear, (rest, x): &(Linear, Array)| {
        solstice::tree::combine(diff, rest)?.forward(x)?.sum_all()
    };
    let g = filter_grad(loss)(&diff, &(rest, x.clone())).unwrap();
    assert!(
        g.bias.as_ref().unwrap().is_absent(),
        "the bias was not differentiated"
    );
    assert_eq!(g.weight.shape(), &[2, 3]);
    assert_eq!(
        g.weight.to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
}

#[test]
fn stop_gradient_blocks_every_level() {
    let f = |x: &Array| x.square()?.stop_gradient()?.mul(x);
    // d/dx (sg(x^2) x) = x^2
    assert_eq!(value(&grad(f)(&scalar(3.0)).unwrap()), 9.0);
    assert_eq!(value(&grad(grad(f))(&scalar(3.0)).unwrap()), 0.0);
}

#[test]
fn custom_vjp_replaces_the_derivative_in_every_composition() {
    // Forward: x^3. Backward deliberately not 3x^2 but 10 * ct, so any
    // route that differentiated the forward function would show.
    let f = solstice::custom_vjp(
        |x: &Array| x.mul(x)?.mul(x),
        |_x: &Array, _y: &Array, ct: &Array| ct.mul_scalar(10.0),
    );
    let f = std::sync::Arc::new(f);
    let xs = f64s(&[1.0, 2.0, 3.0], &[3]);
    // The forward value is the function's.
    assert_eq!(
        f(&xs).unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 8.0, 27.0]
    );
    let g = {
        let f = f.clone();
        move |x: &Array| f(x)?.sum_all()
    };
    assert_eq!(
        grad(&g)(&xs).unwrap().to_vec::<f64>().unwrap(),
        vec![10.0; 3]
    );
    // vmap of grad, and grad of vmap.
    let per = vmap(grad(|x: &Array| f(x)))(&xs).unwrap();
    assert_eq!(per.to_vec::<f64>().unwrap(), vec![10.0; 3]);
    let total = |x: &Array| vmap(|x: &Array| f(x))(x)?.sum_all();
    assert_eq!(
        grad(total)(&xs).unwrap().to_vec::<f64>().unwrap(),
        vec![10.0; 3]
    );
    // Forward mode is refused, as in JAX.
    let err = solstice::jvp(|x: &Array| f(x), &xs, &xs).unwrap_err();
    assert!(
        err.to_string()
            .contains("jvp cannot differentiate a custom_vjp function"),
        "{err}"
    );
}

#[test]
fn vmap_with_negative_axes_none_and_per_output_axes() {
    let x = Array::from_vec((0..6).map(|i| i as f64).collect(), &[2, 3]).unwrap();
    let b = f64s(&[10.0, 20.0, 30.0], &[3]);
    // Map the last axis of x (columns); b is shared. Two outputs: the
    // column sums at axis -1, and b (not mapped) as it is.
    let f = solstice::vmap_with(
        |p: &(Array, Array)| Ok((p.0.sum_all()?.add(&p.1.sum_all()?)?, p.1.clone())),
        solstice::Axes::PerElement(vec![Some(-1), None]),
        solstice::Axes::PerElement(vec![Some(-1), None]),
    );
    let (sums, shared) = f(&(x.clone(), b.clone())).unwrap();
    assert_eq!(sums.to_vec::<f64>().unwrap(), vec![63.0, 65.0, 67.0]);
    assert!(shared.is(&b));
    // An output declared unmapped that differs across the batch is an error.
    let g = solstice::vmap_with(
        |x: &Array| x.exp(),
        solstice::Axes::All(Some(0)),
        solstice::Axes::All(None),
    );
    let err = g(&x).unwrap_err();
    assert!(
        err.to_string().contains("is not mapped (out axis None)"),
        "{err}"
    );
    // Out axis -1 puts the batch last.
    let h = solstice::vmap_with(
        |r: &Array| r.mul_scalar(2.0),
        solstice::Axes::All(Some(0)),
        solstice::Axes::All(Some(-1)),
    );
    let y = h(&x).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(
        y.to_vec::<f64>().unwrap(),
        vec![0.0, 6.0, 2.0, 8.0, 4.0, 10.0]
    );
}

#[test]
fn sigmoid_is_stable_far_from_zero() {
    let x = f64s(&[-800.0, -30.0, 0.0, 30.0, 800.0], &[5]);
    let y = x.sigmoid().unwrap().to_vec::<f64>().unwrap();
    assert_eq!(y[0], 0.0);
    assert_eq!(y[2], 0.5);
    assert_eq!(y[4], 1.0);
    let g = grad(|x: &Array| x.sigmoid()?.sum_all())(&x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(g[2], 0.25);
    // The mean of integers is a float, as in JAX.
    let ints = Array::from_vec(vec![1i64, 2], &[2]).unwrap();
    assert_eq!(ints.mean_all().unwrap().to_scalar::<f32>().unwrap(), 1.5);
}
