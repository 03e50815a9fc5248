//! Forward mode and higher order: `jvp`, `jacfwd`, `jacrev`, `hessian`,
//! against real JAX and finite differences, and nested in any order.

mod common;

use common::ops::{ArrayFn, SHAPE, X, differentiable_ops, step_and_tolerance};
use common::{Fixture, assert_close, f64s};
use solstice::{Array, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap};

fn f1(x: &Array) -> solstice::Result<Array> {
    x.tanh()?.mul(x)?.mul(x)?.sum_all()
}

fn f2(x: &Array) -> solstice::Result<Array> {
    x.exp()?.sum_all()?.log()
}

#[test]
fn jacobians_and_hessians_match_jax() {
    let fixture = Fixture::load("transforms.json");
    for (name, f) in [("f1", &f1 as &ArrayFn), ("f2", &f2)] {
        let case = fixture.case(name);
        let x = case.array("x");
        assert_close(
            &jacfwd(f)(&x).unwrap(),
            &case.array("jacfwd"),
            1e-12,
            "jacfwd",
        );
        assert_close(
            &jacrev(f)(&x).unwrap(),
            &case.array("jacrev"),
            1e-12,
            "jacrev",
        );
        assert_close(
            &hessian(f)(&x).unwrap(),
            &case.array("hessian"),
            1e-12,
            "hessian",
        );
    }
    let case = fixture.case("g_jacobian");
    let a = case.array("A");
    let g = |x: &Array| a.matmul(x)?.tanh();
    let x = case.array("x");
    assert_close(
        &jacfwd(g)(&x).unwrap(),
        &case.array("jacfwd"),
        1e-12,
        "jacfwd g",
    );
    assert_close(
        &jacrev(g)(&x).unwrap(),
        &case.array("jacrev"),
        1e-12,
        "jacrev g",
    );

    let case = fixture.case("f3");
    let w = case.array("W");
    let f3 = |x: &Array| w.matmul(x)?.tanh()?.sum_all();
    assert_close(
        &hessian(f3)(&case.array("x")).unwrap(),
        &case.array("hessian_x"),
        1e-12,
        "hessian f3",
    );
}

#[test]
fn hessian_vector_product_is_jvp_of_grad() {
    let fixture = Fixture::load("transforms.json");
    let case = fixture.case("f1_hvp");
    let (x, v) = (case.array("x"), case.array("v"));
    let (_, hvp) = jvp(grad(f1), &x, &v).unwrap();
    assert_close(&hvp, &case.array("hvp"), 1e-12, "jvp(grad(f1))");
    let h = hessian(f1)(&x).unwrap();
    assert_close(&hvp, &h.matmul(&v).unwrap(), 1e-12, "hessian @ v");
    // Reverse over forward agrees too.
    let rof = grad(|x: &Array| jvp(f1, x, &v).map(|(_, t)| t))(&x).unwrap();
    assert_close(&rof, &hvp, 1e-12, "grad(jvp(f1))");
}

#[test]
fn every_op_jvp_matches_finite_differences() {
    let (x, shape) = (X, SHAPE);
    let v = [0.7, 0.1, -0.5, 1.0, 0.3, -0.2];
    for (name, op) in &differentiable_ops() {
        let (h, tol) = step_and_tolerance(name);
        let (_, tangent) = jvp(|x: &Array| op(x), &f64s(&x, &shape), &f64s(&v, &shape)).unwrap();
        let at = |s: f64| -> Vec<f64> {
            let p: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a + s * b).collect();
            op(&f64s(&p, &shape)).unwrap().to_vec::<f64>().unwrap()
        };
        let (plus, minus) = (at(h), at(-h));
        let numeric: Vec<f64> = plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * h))
            .collect();
        for (a, n) in tangent.to_vec::<f64>().unwrap().iter().zip(&numeric) {
            assert!(
                (a - n).abs() < tol * n.abs().max(1.0),
                "{name}: jvp {a} vs numeric {n}"
            );
        }
    }
}

#[test]
fn vjp_pullback_runs_many_times_and_under_vmap() {
    let x = f64s(&[0.5, -1.0, 2.0], &[3]);
    let (y, pullback) = vjp(|x: &Array| x.tanh()?.mul_scalar(3.0), &x).unwrap();
    assert_eq!(y.shape(), &[3]);
    let once = pullback.call(&f64s(&[1.0, 0.0, 0.0], &[3])).unwrap();
    let twice = pullback.call(&f64s(&[1.0, 0.0, 0.0], &[3])).unwrap();
    assert_eq!(
        once.to_vec::<f64>().unwrap(),
        twice.to_vec::<f64>().unwrap()
    );
    let rows = vmap(|ct: &Array| pullback.call(ct))(&f64s(
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        &[3, 3],
    ))
    .unwrap();
    assert_close(
        &rows,
        &jacrev(|x: &Array| x.tanh()?.mul_scalar(3.0))(&x).unwrap(),
        1e-12,
        "rows",
    );
    let err = pullback.call(&f64s(&[1.0], &[1])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("vjp needs a cotangent of the output's shape"),
        "{err}"
    );
}

#[test]
fn any_nesting_of_jvp_grad_and_vmap() {
    // Third derivative of x^4 by three different routes.
    let f = |x: &Array| x.square()?.square();
    let x = Array::scalar(1.5f64).unwrap();
    let one = Array::scalar(1.0f64).unwrap();
    let d3 = |a: &Array| a.to_scalar::<f64>().unwrap();
    let by_grad = grad(grad(grad(f)))(&x).unwrap();
    let by_jvp = jvp(
        |x: &Array| Ok(jvp(|x: &Array| Ok(jvp(f, x, &one)?.1), x, &one)?.1),
        &x,
        &one,
    )
    .unwrap()
    .1;
    let mixed = jvp(grad(grad(f)), &x, &one).unwrap().1;
    for got in [&by_grad, &by_jvp, &mixed] {
        assert!((d3(got) - 24.0 * 1.5).abs() < 1e-12);
    }
    // vmap of jvp equals a loop.
    let xs = f64s(&[0.5, 1.0, 1.5], &[3]);
    let batched = vmap(|x: &Array| Ok(jvp(f, x, &one)?.1))(&xs).unwrap();
    assert_close(&batched, &f64s(&[0.5, 4.0, 13.5], &[3]), 1e-12, "vmap(jvp)");
}

#[test]
fn jvp_rejects_mismatched_tangents() {
    let err = jvp(
        |x: &Array| x.exp(),
        &f64s(&[1.0, 2.0], &[2]),
        &f64s(&[1.0], &[1]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("jvp needs a tangent of the primal's shape and dtype"),
        "{err}"
    );
}
