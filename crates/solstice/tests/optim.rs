//! Optimisers, transforms and wrappers against optax 0.2.8: 5 steps each on
//! the seed's tied language model (at VOCAB=3, DIM=2), comparing the
//! updates, the parameters and every leaf of the state after each step.
//! Fixtures: `tools/reference/optim_ref.py`.

mod common;

use common::lm::LanguageModel;
use common::optim as optim_fx;
use common::optim::{Hook, arrays, case, check, fixture, gpt_recipe, ndim2, with_leaves};
use serde_json::Value;
use solstice::optim::schedule::{
    constant_schedule, cosine_decay_schedule, exponential_decay, join_schedules, linear_schedule,
    piecewise_constant_schedule, polynomial_schedule, warmup_cosine_decay_schedule,
};
use solstice::optim::{self, GradientTransformation, Mask, MultiSteps};
use solstice::random::Key;
use solstice::tree::{KeyPath, spec_like, tree_at_with, tree_leaves, tree_slots};
use solstice::{Array, apply_updates};

fn small_model() -> LanguageModel {
    LanguageModel::new(3, 2, Key::new(0)).unwrap()
}

/// Runs the case on the small seed LM.
fn run<G: GradientTransformation<LanguageModel>>(fx: &Value, name: &str, opt: G) {
    optim_fx::run(fx, name, small_model(), opt)
}

fn run_with<G: GradientTransformation<LanguageModel>>(
    fx: &Value,
    name: &str,
    opt: G,
    before_step: Hook<'_, G::State>,
) {
    optim_fx::run_with(fx, name, small_model(), opt, before_step)
}

/// The filter spec that is true on the head's bias only (its last leaf).
fn bias_only() -> Mask {
    let model = small_model();
    let spec = spec_like(&model, false).unwrap();
    let spec = tree_at_with(
        &spec,
        |m| &mut m.shared,
        |s| {
            let mut s = s.clone();
            let mut last = None;
            solstice::Tree::visit_mut(&mut s, &mut KeyPath::root(), &mut |p, a| {
                if p.to_string().ends_with(".bias") {
                    last = Some(p.to_string());
                    *a = Array::scalar(1u8).unwrap();
                }
            });
            assert_eq!(last.as_deref(), Some(".pytree[1].bias"));
            Ok(s)
        },
    )
    .unwrap();
    Mask::from_spec(&spec).unwrap()
}

#[test]
fn sgd_matches_optax() {
    let fx = fixture("optim.json");
    run(&fx, "sgd", optim::sgd(0.1, None, false));
    run(&fx, "sgd_momentum", optim::sgd(0.1, Some(0.9), false));
    run(&fx, "sgd_nesterov", optim::sgd(0.1, Some(0.9), true));
}

#[test]
fn adam_matches_optax() {
    let fx = fixture("optim.json");
    run(&fx, "adam", optim::adam(0.01));
    run(
        &fx,
        "adam_options",
        optim::adam(0.01).b1(0.8).b2(0.99).eps(1e-6).eps_root(1e-8),
    );
    run(&fx, "nadam", optim::nadam(0.01));
}

#[test]
fn adamw_matches_optax() {
    let fx = fixture("optim.json");
    run(&fx, "adamw", optim::adamw(0.01));
    run(
        &fx,
        "adamw_mask_ndim",
        optim::adamw(0.01)
            .weight_decay(0.1)
            .mask(|_: &KeyPath, w: &Array| w.rank() >= 2),
    );
    run(
        &fx,
        "adamw_mask_spec",
        optim::adamw(0.01).weight_decay(0.1).mask(bias_only()),
    );
    run(
        &fx,
        "adamw_wd_schedule",
        optim::adamw(0.01).weight_decay(linear_schedule(0.1, 0.0, 4, 0)),
    );
}

#[test]
fn gpt_recipe_matches_optax() {
    let fx = fixture("optim.json");
    run(&fx, "gpt_recipe", gpt_recipe());
}

#[test]
fn rmsprop_adagrad_lion_match_optax() {
    let fx = fixture("optim.json");
    run(&fx, "rmsprop", optim::rmsprop(0.01));
    run(
        &fx,
        "rmsprop_centered",
        optim::rmsprop(0.01)
            .decay(0.8)
            .eps(1e-4)
            .initial_scale(0.1)
            .eps_in_sqrt(false)
            .centered(true)
            .momentum(0.9)
            .nesterov(true)
            .bias_correction(true),
    );
    run(&fx, "adagrad", optim::adagrad(0.1));
    run(&fx, "lion", optim::lion(0.001));
    run(
        &fx,
        "lion_mask",
        optim::lion(0.001)
            .b1(0.95)
            .b2(0.98)
            .weight_decay(0.5)
            .mask(ndim2()),
    );
}

#[test]
fn adafactor_matches_optax() {
    let fx = fixture("optim.json");
    run(&fx, "adafactor", optim::adafactor(0.01));
    run(
        &fx,
        "adafactor_factored",
        optim::adafactor(0.01)
            .min_dim_size_to_factor(2)
            .momentum(0.9)
            .weight_decay_rate(0.01),
    );
}

#[test]
fn transforms_match_optax() {
    let fx = fixture("optim_transforms.json");
    run(
        &fx,
        "clip_scale",
        optim::chain((optim::clip(0.05), optim::scale(-0.1))),
    );
    run(
        &fx,
        "clip_global_adam",
        optim::chain((
            optim::clip_by_global_norm(0.1),
            optim::scale_by_adam(),
            optim::scale_by_learning_rate(0.01),
        )),
    );
    run(
        &fx,
        "decay_trace_schedule",
        optim::chain((
            optim::add_decayed_weights(0.1),
            optim::trace(0.5, false),
            optim::scale_by_schedule(exponential_decay(-0.1, 2, 0.5, 0, true, None)),
        )),
    );
    run(
        &fx,
        "lr_schedule",
        optim::chain((
            optim::scale_by_adam(),
            optim::scale_by_learning_rate(
                piecewise_constant_schedule(0.01, &[(2, 0.5), (4, 0.1)]).unwrap(),
            ),
        )),
    );
    run(
        &fx,
        "masked_adam",
        optim::chain((
            optim::masked(optim::scale_by_adam(), ndim2()),
            optim::scale(-0.01),
        )),
    );
}

#[test]
fn multi_transform_matches_optax() {
    let fx = fixture("optim_transforms.json");
    let labels = |_: &KeyPath, w: &Array| if w.rank() >= 2 { "decay" } else { "plain" }.to_string();
    run(
        &fx,
        "multi_transform",
        optim::multi_transform(
            (
                ("decay", optim::adamw(0.01).weight_decay(0.1)),
                ("plain", optim::sgd(0.1, None, false)),
            ),
            labels,
        ),
    );
}

#[test]
fn multi_steps_matches_optax() {
    let fx = fixture("optim_transforms.json");
    run(&fx, "multi_steps", MultiSteps::new(optim::adamw(0.01), 3));
}

#[test]
fn apply_if_finite_matches_optax() {
    let fx = fixture("optim_transforms.json");
    run(
        &fx,
        "apply_if_finite",
        optim::apply_if_finite(optim::adam(0.01), 2),
    );
}

#[test]
fn inject_hyperparams_matches_optax() {
    let fx = fixture("optim_transforms.json");
    let adam = optim::inject_hyperparams(
        |h| {
            Ok(optim::adam(h.hyper("learning_rate")?)
                .b1(h.hyper("b1")?)
                .b2(h.hyper("b2")?)
                .eps(h.hyper("eps")?)
                .eps_root(h.hyper("eps_root")?))
        },
        vec![
            ("b1", 0.9.into()),
            ("b2", 0.999.into()),
            ("eps", 1e-8.into()),
            ("eps_root", 0.0.into()),
            ("learning_rate", 0.01.into()),
        ],
    );
    // A changed learning rate, set in the state between steps.
    run_with(&fx, "inject_adam", adam, &mut |s, state| {
        if s == 2 {
            state.hyperparams.set("learning_rate", 0.003).unwrap();
        }
    });
    let sgd = optim::inject_hyperparams(
        |h| {
            Ok(optim::chain((
                Some(optim::trace(h.hyper("momentum")?, false)),
                optim::scale_by_learning_rate(h.hyper("learning_rate")?),
            )))
        },
        vec![
            ("learning_rate", linear_schedule(0.1, 0.0, 4, 0).into()),
            ("momentum", 0.9.into()),
        ],
    );
    run(&fx, "inject_schedule", sgd);
}

#[test]
fn schedules_match_optax() {
    let fx = fixture("optim_schedules.json");
    let schedules = [
        ("constant", constant_schedule(0.3)),
        ("linear", linear_schedule(0.1, 0.02, 7, 2)),
        ("polynomial", polynomial_schedule(0.1, 0.01, 2.0, 8, 1)),
        ("polynomial_frac", polynomial_schedule(0.1, 0.01, 0.5, 8, 0)),
        (
            "cosine_decay",
            cosine_decay_schedule(0.1, 9, 0.0, 1.0).unwrap(),
        ),
        (
            "cosine_decay_alpha",
            cosine_decay_schedule(0.1, 9, 0.2, 2.0).unwrap(),
        ),
        (
            "exponential_decay",
            exponential_decay(0.1, 3, 0.5, 2, false, None),
        ),
        (
            "exponential_staircase",
            exponential_decay(0.1, 3, 0.5, 0, true, Some(0.02)),
        ),
        (
            "exponential_growth",
            exponential_decay(0.1, 2, 1.5, 0, false, Some(0.3)),
        ),
        (
            "warmup_cosine_decay",
            warmup_cosine_decay_schedule(0.0, 0.01, 3, 10, 0.001, 1.0).unwrap(),
        ),
        (
            "piecewise_constant",
            piecewise_constant_schedule(0.1, &[(3, 0.5), (7, 0.1)]).unwrap(),
        ),
        (
            "join",
            join_schedules(
                vec![constant_schedule(0.1), linear_schedule(0.1, 0.0, 5, 0)],
                &[4],
            )
            .unwrap(),
        ),
    ];
    for (name, s) in schedules {
        let c = case(&fx, name);
        let values: Vec<Array> = (0..13)
            .map(|i| s.value(&Array::scalar(i).unwrap()).unwrap())
            .collect();
        let got: Vec<f32> = values
            .iter()
            .map(|v| v.to_scalar::<f32>().unwrap())
            .collect();
        let got = Array::from_vec(got, &[13]).unwrap();
        let meta = serde_json::json!([{"path": name, "dtype": "float32", "shape": [13]}]);
        check(&[got], &c["values"]["data"], &meta, name);
    }
}

/// The acceptance test: on the seed LM from key 0, the tied weight
/// has one `mu` and one `nu`, and one AdamW step equals optax's on the
/// Equinox model.
#[test]
fn tied_weight_has_one_state_and_adamw_matches_optax() {
    let fx = fixture("optim_tied.json");
    let c = case(&fx, "adamw_tied");
    let model = LanguageModel::new(11, 6, Key::new(0)).unwrap();
    let leaf_meta = |key: &str| {
        let metas: Vec<Value> = c[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| serde_json::json!({"path": key, "dtype": a["dtype"], "shape": a["shape"]}))
            .collect();
        let flat: Vec<Value> = c[key]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a["data"].as_array().unwrap().clone())
            .collect();
        (Value::Array(flat), Value::Array(metas))
    };
    let (params, pm) = leaf_meta("params");
    check(
        &tree_leaves(&model),
        &params,
        &pm,
        "Equinox's initial model",
    );

    // solstice's own gradient agrees with JAX's (to grad's tolerance).
    let tokens: Vec<i32> = (0..6).map(|i| (2 * i) % 11).collect();
    let targets: Vec<i32> = (0..6).map(|i| (3 * i + 1) % 11).collect();
    let batch = (
        Array::from_vec(tokens, &[6]).unwrap(),
        Array::from_vec(targets, &[6]).unwrap(),
    );
    let grads = solstice::filter_grad(common::lm::loss)(&model, &batch).unwrap();
    let (g_flat, gm) = leaf_meta("grads");
    let jax_grads = arrays(&g_flat, &gm);
    for (a, e) in tree_leaves(&grads).iter().zip(&jax_grads) {
        common::assert_close(a, e, 1e-5, "solstice's gradient against JAX's");
    }

    let opt = optim::adamw(0.01);
    let state = opt.init(&model).unwrap();
    let (mu, nu) = (&state.0.mu, &state.0.nu);
    // One state for the tied weight: the head's weight is a placeholder in
    // mu and nu, as in the model, so the tie has one mu and one nu.
    assert!(mu.shared.pytree().1.weight.is_placeholder());
    assert!(nu.shared.pytree().1.weight.is_placeholder());
    let mu_paths: Vec<String> = tree_slots(mu)
        .into_iter()
        .filter(|(_, a)| !a.is_hole())
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(
        mu_paths,
        [".shared.pytree[0].weight", ".shared.pytree[1].bias"]
    );
    assert_eq!(c["mu_paths"].as_array().unwrap().len(), mu_paths.len());
    assert_eq!(tree_leaves(nu).len(), 2);

    let grads = with_leaves(&model, &jax_grads);
    let (updates, next) = opt.update(&grads, &state, Some(&model)).unwrap();
    let (u, um) = leaf_meta("updates");
    check(&tree_leaves(&updates), &u, &um, "AdamW update");
    let (m, mm) = leaf_meta("mu");
    check(&tree_leaves(&next.0.mu), &m, &mm, "mu");
    let (n, nm) = leaf_meta("nu");
    check(&tree_leaves(&next.0.nu), &n, &nm, "nu");
    assert!(next.0.mu.shared.pytree().1.weight.is_placeholder());
    // The update has the placeholder too, so apply_updates keeps the tie.
    let new = apply_updates(&model, &updates).unwrap();
    let (e, l) = new.shared.call().unwrap();
    assert!(e.weight.is(&l.weight));
}

/// Masks in both forms select the same leaves.
#[test]
fn spec_and_predicate_masks_agree() {
    let model = small_model();
    let spec = spec_like(&model, true).unwrap();
    let spec = tree_at_with(&spec, |m| &mut m.shared, |s| Ok(s.clone())).unwrap();
    let from_spec = Mask::from_spec(&spec).unwrap().flags(&model).unwrap();
    let from_fn = Mask::predicate(|_: &KeyPath, _: &Array| true)
        .flags(&model)
        .unwrap();
    assert_eq!(from_spec, from_fn);
    // The placeholder is never included.
    assert_eq!(from_spec, vec![true, false, true]);
}
