//! The harness of the optax parity tests (`tests/optim.rs`,
//! `tests/optim_gpt.rs`): fixtures of `tools/reference/optim_ref.py` hold,
//! for each case, the gradients fed in and the updates, parameters and
//! state leaves optax gave after each step, flattened in
//! `jax.tree.leaves` order.

use serde_json::Value;
use solstice::optim::schedule::warmup_cosine_decay_schedule;
use solstice::optim::{self, GradientTransformation};
use solstice::tree::{KeyPath, tree_leaves};
use solstice::{Array, DType, Tree, apply_updates};

/// Relative tolerance against optax (f32).
pub const RTOL: f64 = 1e-6;

/// nanoGPT's weight-decay rule: only leaves of rank 2 or more.
pub fn ndim2() -> optim::Mask {
    optim::Mask::predicate(|_: &KeyPath, w: &Array| w.rank() >= 2)
}

/// The `gpt_recipe` case of both fixtures: global-norm clipping, then
/// AdamW with warmup-cosine, b2 = 0.95 and decay 0.1 on [`ndim2`] leaves.
pub fn gpt_recipe() -> optim::Chain<(optim::ClipByGlobalNorm, optim::AdamW)> {
    let lr = warmup_cosine_decay_schedule(0.0, 0.01, 2, 5, 0.001, 1.0).unwrap();
    optim::chain((
        optim::clip_by_global_norm(0.5),
        optim::adamw(lr).b2(0.95).weight_decay(0.1).mask(ndim2()),
    ))
}

/// A fixture of `optim_ref.py`, parsed.
pub fn fixture(file: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The case called `name`.
pub fn case<'a>(fx: &'a Value, name: &str) -> &'a Value {
    fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn shape(m: &Value) -> Vec<usize> {
    m["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

/// Splits a flat list into arrays by the leaves' metadata.
pub fn arrays(flat: &Value, meta: &Value) -> Vec<Array> {
    let data: Vec<f64> = flat
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut at = 0;
    let mut out = Vec::new();
    for m in meta.as_array().unwrap() {
        let s = shape(m);
        let n: usize = s.iter().product();
        let chunk = &data[at..at + n];
        at += n;
        out.push(
            match m["dtype"].as_str().unwrap() {
                "float32" => Array::from_vec(chunk.iter().map(|&x| x as f32).collect(), &s),
                "int32" => Array::from_vec(chunk.iter().map(|&x| x as i32).collect(), &s),
                "bool" => Array::from_vec(chunk.iter().map(|&x| x as u8).collect(), &s),
                d => panic!("dtype {d}"),
            }
            .unwrap(),
        );
    }
    assert_eq!(at, data.len(), "metadata covers the data");
    out
}

/// `template` with its array leaves (not its holes) replaced in order.
pub fn with_leaves<T: solstice::Tree>(template: &T, leaves: &[Array]) -> T {
    let mut i = 0;
    solstice::tree::tree_map(template, |_, a| {
        if a.is_hole() {
            return Ok(a.clone());
        }
        i += 1;
        Ok(leaves[i - 1].clone())
    })
    .unwrap()
}

/// Asserts the leaves equal optax's to `RTOL` relative (with an absolute
/// floor of `RTOL * 1e-3` for values that cancel to near zero).
#[track_caller]
pub fn check(actual: &[Array], flat: &Value, meta: &Value, what: &str) {
    check_scaled(actual, flat, meta, what, None)
}

/// [`check`], relative to `scale` (one magnitude per element, in leaf
/// order) where it is larger than the value.
#[track_caller]
fn check_scaled(actual: &[Array], flat: &Value, meta: &Value, what: &str, scale: Option<&[f64]>) {
    let expected = arrays(flat, meta);
    let mut at = 0;
    let paths: Vec<&str> = meta
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: number of leaves ({paths:?})"
    );
    for ((a, e), path) in actual.iter().zip(&expected).zip(&paths) {
        assert_eq!(a.shape(), e.shape(), "{what} {path}: shape");
        let kind = |d: DType| {
            if d == DType::U8 {
                "bool"
            } else {
                d.short_name()
            }
        };
        assert_eq!(kind(a.dtype()), kind(e.dtype()), "{what} {path}: dtype");
        let (av, ev) = (a.to_vec::<f64>().unwrap(), e.to_vec::<f64>().unwrap());
        for (i, (x, y)) in av.iter().zip(&ev).enumerate() {
            let magnitude = scale.map_or(0.0, |s| s[at + i]);
            let tol = RTOL * y.abs().max(magnitude).max(1e-3);
            assert!(
                (x - y).abs() <= tol,
                "{what} {path}[{i}]: solstice {x}, optax {y} (relative error {:.2e})",
                (x - y).abs() / y.abs()
            );
        }
        at += av.len();
    }
}

/// The magnitudes of a flat list of numbers.
fn magnitudes(flat: &Value) -> Vec<f64> {
    flat.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap().abs())
        .collect()
}

/// Called with the step's index and the state before each step.
pub type Hook<'a, S> = &'a mut dyn FnMut(usize, &mut S);

/// Runs the case's steps with `opt` from `model` (built from the key
/// optax's run used) and checks each against optax.
pub fn run<M: Tree, G: GradientTransformation<M>>(fx: &Value, name: &str, model: M, opt: G) {
    run_with(fx, name, model, opt, &mut |_, _| {})
}

/// [`run`], calling `before_step` before each step.
pub fn run_with<M: Tree, G: GradientTransformation<M>>(
    fx: &Value,
    name: &str,
    model: M,
    opt: G,
    before_step: Hook<'_, G::State>,
) {
    let c = case(fx, name);
    let (pm, sm) = (&c["params_meta"], &c["state_meta"]);
    // The same key gives Equinox's initial model.
    check(
        &tree_leaves(&model),
        &c["init_params"],
        pm,
        &format!("{name} init params"),
    );
    // A parameter is its initial value plus the updates so far. It is
    // compared relative to the sum of their magnitudes: where optax rounds
    // the last bit of an update otherwise (its jitted inner step under
    // `apply_if_finite`'s `lax.cond`, XLA's order of summation in a global
    // norm), a sum that cancels amplifies that bit.
    let mut summed = magnitudes(&c["init_params"]);
    let mut params = model;
    let mut state = opt.init(&params).unwrap();
    check(
        &tree_leaves(&state),
        &c["init_state"],
        sm,
        &format!("{name} init state"),
    );
    for (s, step) in c["steps"].as_array().unwrap().iter().enumerate() {
        let mut g = arrays(&step["grads"], pm);
        if let Some(v) = c["nonfinite"][s.to_string()].as_str() {
            let bad = if v == "nan" {
                f32::NAN
            } else {
                v.parse::<f32>().unwrap()
            };
            let mut data = g[0].to_vec::<f32>().unwrap();
            data[0] = bad;
            g[0] = Array::from_vec(data, g[0].shape()).unwrap();
        }
        let grads = with_leaves(&params, &g);
        before_step(s, &mut state);
        let what = format!("{name} step {s}");
        let (updates, next) = opt
            .update(&grads, &state, Some(&params))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        check(
            &tree_leaves(&updates),
            &step["updates"],
            pm,
            &format!("{what} updates"),
        );
        params = apply_updates(&params, &updates).unwrap();
        for (s, u) in summed.iter_mut().zip(magnitudes(&step["updates"])) {
            *s += u;
        }
        check_scaled(
            &tree_leaves(&params),
            &step["params"],
            pm,
            &format!("{what} params"),
            Some(&summed),
        );
        state = next;
        check(
            &tree_leaves(&state),
            &step["state"],
            sm,
            &format!("{what} state"),
        );
    }
}
