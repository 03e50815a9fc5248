//! The fused Adam(W) step: one pass per leaf gives the composed
//! transformations' numbers bit for bit, and it stays a primitive with
//! rules, so `grad`, `jvp` and `vmap` see through it.

mod common;

use solstice::__private::record_kernels;
use solstice::optim::{self, GradientTransformation};
use solstice::random::{self, Key};
use solstice::tree::tree_leaves;
use solstice::{Array, DType, Result, filter_grad, jvp, vmap};

const B1: f64 = 0.9;
const B2: f64 = 0.95;
const EPS: f64 = 1e-8;
const LR: f64 = 0.01;
const WD: f64 = 0.1;

/// `1 - b ** count` as optax computes it in `f32`.
fn correction(b: f64, count: i32) -> f32 {
    let p = ((b as f32 as f64).ln() * count as f64).exp() as f32;
    1.0 - p
}

/// One AdamW step of a leaf on the host, operation by operation in `f32`.
fn host_step(
    g: &[f32],
    mu: &mut [f32],
    nu: &mut [f32],
    p: &[f32],
    count: i32,
    decay: bool,
) -> Vec<f32> {
    let (a1, b1, a2, b2) = ((1.0 - B1) as f32, B1 as f32, (1.0 - B2) as f32, B2 as f32);
    let (c1, c2) = (correction(B1, count), correction(B2, count));
    let (eps, wd, s) = (EPS as f32, WD as f32, -LR as f32);
    let mut u = Vec::with_capacity(g.len());
    for i in 0..g.len() {
        mu[i] = a1 * g[i] + b1 * mu[i];
        nu[i] = a2 * (g[i] * g[i]) + b2 * nu[i];
        let d = (mu[i] / c1) / ((nu[i] / c2).sqrt() + eps);
        u.push(if decay { s * (d + wd * p[i]) } else { s * d });
    }
    u
}

fn normal(seed: u64, shape: &[usize], dtype: DType) -> Array {
    random::normal(Key::new(seed), shape, dtype).unwrap()
}

/// AdamW with a mask, on leaves big enough for the multi-threaded kernel,
/// equals the composed step computed on the host, bit for bit.
#[test]
fn the_fused_adamw_step_is_the_composed_one_bit_for_bit() {
    let opt = optim::adamw(LR)
        .b2(B2)
        .weight_decay(WD)
        .mask(|_: &_, w: &Array| w.rank() >= 2);
    let mut params = (
        normal(1, &[300, 200], DType::F32),
        normal(2, &[200], DType::F32),
    );
    let mut state = opt.init(&params).unwrap();
    let mut mu = [vec![0.0f32; 60_000], vec![0.0f32; 200]];
    let mut nu = mu.clone();
    for step in 0..3 {
        let grads = (
            normal(10 + step, &[300, 200], DType::F32),
            normal(20 + step, &[200], DType::F32),
        );
        let ((u, next), kernels) =
            record_kernels(|| opt.update(&grads, &state, Some(&params)).unwrap());
        // One fused kernel per leaf, and no elementwise pass of its own.
        let fused = kernels.iter().filter(|k| **k == "adam_update").count();
        assert_eq!(fused, 2, "{kernels:?}");
        assert!(
            !kernels.contains(&"sqrt") && !kernels.contains(&"div"),
            "{kernels:?}"
        );
        let leaves = [
            (&grads.0, &params.0, &u.0, true),
            (&grads.1, &params.1, &u.1, false),
        ];
        for (k, (g, p, u, decay)) in leaves.into_iter().enumerate() {
            let g = g.to_vec::<f32>().unwrap();
            let p = p.to_vec::<f32>().unwrap();
            let expected = host_step(&g, &mut mu[k], &mut nu[k], &p, step as i32 + 1, decay);
            assert!(
                u.to_vec::<f32>().unwrap() == expected,
                "step {step} leaf {k}: update"
            );
        }
        assert!(
            next.0.mu.0.to_vec::<f32>().unwrap() == mu[0],
            "step {step}: mu"
        );
        assert!(
            next.0.nu.1.to_vec::<f32>().unwrap() == nu[1],
            "step {step}: nu"
        );
        params = solstice::apply_updates(&params, &u).unwrap();
        state = next;
    }
}

/// The step of `optim::adamw` as a function of the gradient and the
/// parameter (the moments fixed), summed with weights: through the fused
/// primitive, and composed of elementwise operations here.
fn fused_loss(x: &(Array, Array), mu: &Array, nu: &Array, w: &Array) -> Result<Array> {
    let opt = optim::adamw(LR).b2(B2).weight_decay(WD);
    let mut state = opt.init(&x.1)?;
    state.0.mu = mu.clone();
    state.0.nu = nu.clone();
    let (u, next) = opt.update(&x.0, &state, Some(&x.1))?;
    u.add(&next.0.mu)?.add(&next.0.nu)?.mul(w)?.sum_all()
}

fn composed_loss(x: &(Array, Array), mu: &Array, nu: &Array, w: &Array) -> Result<Array> {
    let (g, p) = x;
    let dt = g.dtype();
    let c = |v: f64| Array::scalar_of(v, dt);
    let m = c(1.0 - B1)?.mul(g)?.add(&c(B1)?.mul(mu)?)?;
    let v = c(1.0 - B2)?.mul(&g.mul(g)?)?.add(&c(B2)?.mul(nu)?)?;
    let c1 = c(correction(B1, 1) as f64)?;
    let c2 = c(correction(B2, 1) as f64)?;
    let d = m.div(&c1)?.div(&v.div(&c2)?.sqrt()?.add(&c(EPS)?)?)?;
    let u = c(-LR)?.mul(&d.add(&c(WD)?.mul(p)?)?)?;
    u.add(&m)?.add(&v)?.mul(w)?.sum_all()
}

/// `grad`, `jvp` and `vmap` of `grad` through the fused step equal those
/// of the composed step.
#[test]
fn the_fused_step_differentiates_and_batches_like_the_composed_one() {
    let shape = [4, 3];
    let x = (normal(1, &shape, DType::F64), normal(2, &shape, DType::F64));
    let mu = normal(3, &shape, DType::F64).mul_scalar(0.1).unwrap();
    let nu = normal(4, &shape, DType::F64).square().unwrap();
    let w = normal(5, &shape, DType::F64);
    let close = |a: &Array, b: &Array, what: &str| common::assert_close(a, b, 1e-9, what);

    let gf =
        filter_grad(|x: &(Array, Array), w: &Array| fused_loss(x, &mu, &nu, w))(&x, &w).unwrap();
    let gc =
        filter_grad(|x: &(Array, Array), w: &Array| composed_loss(x, &mu, &nu, w))(&x, &w).unwrap();
    for (a, b) in tree_leaves(&gf).iter().zip(&tree_leaves(&gc)) {
        close(a, b, "grad");
    }

    let t = (normal(6, &shape, DType::F64), normal(7, &shape, DType::F64));
    let (yf, tf) = jvp(|x: &(Array, Array)| fused_loss(x, &mu, &nu, &w), &x, &t).unwrap();
    let (yc, tc) = jvp(|x: &(Array, Array)| composed_loss(x, &mu, &nu, &w), &x, &t).unwrap();
    close(&yf, &yc, "jvp value");
    close(&tf, &tc, "jvp tangent");

    // Per-example gradients over a batch of gradients and parameters.
    let xs = (
        normal(8, &[2, 4, 3], DType::F64),
        normal(9, &[2, 4, 3], DType::F64),
    );
    let per = |f: fn(&(Array, Array), &Array, &Array, &Array) -> Result<Array>| {
        vmap(|x: &(Array, Array)| {
            filter_grad(|x: &(Array, Array), w: &Array| f(x, &mu, &nu, w))(x, &w)
        })(&xs)
        .unwrap()
    };
    let (bf, bc) = (per(fused_loss), per(composed_loss));
    for (a, b) in tree_leaves(&bf).iter().zip(&tree_leaves(&bc)) {
        close(a, b, "vmap of grad");
    }
}
