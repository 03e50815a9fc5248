//! Optimiser states as trees (an ensemble of optimisers under `vmap`), the
//! tree tools optimisers are written with, and the errors for bad input.

mod common;

use common::lm::LanguageModel;
use solstice::nn::{Embedding, Linear};
use solstice::optim::schedule::{
    cosine_decay_schedule, join_schedules, linear_schedule, piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
};
use solstice::optim::{self, GradientTransformation, Mask, MultiSteps};
use solstice::random::{self, Key};
use solstice::tree::{
    KeyPath, combine, filter_with_spec, full_like, global_norm, partition_with_spec, spec_like,
    tree_at_with, tree_equal, tree_leaves, tree_map_n, zeros_like,
};
use solstice::{Array, DType, Module, vmap};

type Params = (Array, Array);

fn member(a: &Array, i: usize) -> Array {
    a.take(&Array::from_vec(vec![i as i32], &[1]).unwrap(), 0)
        .unwrap()
        .squeeze(0)
        .unwrap()
}

fn member_tree(t: &Params, i: usize) -> Params {
    (member(&t.0, i), member(&t.1, i))
}

/// An ensemble of 3 optimisers under `vmap`, each with its own parameters,
/// gradients and state, steps exactly as 3 separate optimisers do; the
/// batched state has the same tree type with a leading axis.
#[test]
fn an_ensemble_of_optimisers_under_vmap_matches_separate_ones() {
    let lr = warmup_cosine_decay_schedule(0.0, 0.1, 1, 6, 0.01, 1.0).unwrap();
    let opt = optim::apply_if_finite(
        MultiSteps::new(
            optim::chain((
                optim::clip_by_global_norm(1.0),
                optim::adamw(lr)
                    .weight_decay(0.1)
                    .mask(|_: &KeyPath, w: &Array| w.rank() >= 2),
            )),
            2,
        ),
        1,
    );
    let [k1, k2, k3, k4] = Key::new(3).split();
    let params: Params = (
        random::normal(k1, &[3, 2, 2], DType::F32).unwrap(),
        random::normal(k2, &[3, 2], DType::F32).unwrap(),
    );
    let grads = |step: usize| -> Params {
        let [a, b] = if step.is_multiple_of(2) {
            k3.split()
        } else {
            k4.split()
        };
        let g = (
            random::normal(a, &[3, 2, 2], DType::F32)
                .unwrap()
                .mul_scalar(step as f64 + 1.0)
                .unwrap(),
            random::normal(b, &[3, 2], DType::F32).unwrap(),
        );
        if step == 2 {
            // A non-finite gradient for member 1 only.
            let mut d = g.1.to_vec::<f32>().unwrap();
            d[2] = f32::NAN;
            return (g.0, Array::from_vec(d, &[3, 2]).unwrap());
        }
        g
    };

    let mut batched_state = vmap(|p: &Params| opt.init(p))(&params).unwrap();
    assert_eq!(batched_state.inner_state.mini_step.shape(), &[3]);
    let mut separate: Vec<_> = (0..3)
        .map(|i| opt.init(&member_tree(&params, i)).unwrap())
        .collect();
    let mut batched_params = params.clone();
    let mut separate_params: Vec<Params> = (0..3).map(|i| member_tree(&params, i)).collect();
    for step in 0..6 {
        let g = grads(step);
        let (u, s) = vmap(|(g, s, p): &(Params, _, Params)| opt.update(g, s, Some(p)))(&(
            g.clone(),
            batched_state,
            batched_params.clone(),
        ))
        .unwrap();
        batched_state = s;
        batched_params = solstice::apply_updates(&batched_params, &u).unwrap();
        for i in 0..3 {
            let (ui, si) = opt
                .update(&member_tree(&g, i), &separate[i], Some(&separate_params[i]))
                .unwrap();
            separate[i] = si;
            separate_params[i] = solstice::apply_updates(&separate_params[i], &ui).unwrap();
            for (b, s) in tree_leaves(&member_tree(&u, i))
                .iter()
                .zip(tree_leaves(&ui))
            {
                common::assert_close(b, &s, 1e-6, &format!("step {step} member {i} update"));
            }
            let batched_leaves = tree_leaves(&batched_state);
            let separate_leaves = tree_leaves(&separate[i]);
            assert_eq!(batched_leaves.len(), separate_leaves.len());
            for (b, s) in batched_leaves.iter().zip(&separate_leaves) {
                let b = member(b, i);
                let (b, s) = (b.astype(DType::F64).unwrap(), s.astype(DType::F64).unwrap());
                common::assert_close(&b, &s, 1e-6, &format!("step {step} member {i} state"));
            }
        }
    }
    // Member 1 skipped its non-finite step; the others did not.
    let total = batched_state.total_notfinite.to_vec::<i32>().unwrap();
    assert_eq!(total, vec![0, 1, 0]);
}

#[test]
fn tree_map_n_passes_holes_through() {
    let model = LanguageModel::new(3, 2, Key::new(0)).unwrap();
    let twice = tree_map_n(&[&model, &model], |_, x| x[0].add(&x[1])).unwrap();
    assert!(twice.shared.pytree().1.weight.is_placeholder());
    let e = &twice.shared.pytree().0.weight;
    let expect = model.shared.pytree().0.weight.mul_scalar(2.0).unwrap();
    assert!(tree_equal(e, &expect).unwrap());
    // A hole in any tree keeps the first tree's slot.
    let absent = (Array::absent(), Array::scalar(1.0f32).unwrap());
    let full = (
        Array::scalar(2.0f32).unwrap(),
        Array::scalar(3.0f32).unwrap(),
    );
    let out = tree_map_n(&[&full, &absent], |_, x| x[0].add(&x[1])).unwrap();
    assert!(out.0.is(&full.0));
    assert_eq!(out.1.to_scalar::<f32>().unwrap(), 4.0);
    // Trees of different structures are an error.
    let err = tree_map_n(
        &[&vec![full.0.clone()], &vec![full.0.clone(), full.1.clone()]],
        |_, x| Ok(x[0].clone()),
    )
    .unwrap_err();
    assert!(err.is_structure_mismatch(), "{err}");
}

#[test]
fn zeros_like_full_like_and_global_norm() {
    let model = LanguageModel::new(3, 2, Key::new(0)).unwrap();
    let z = zeros_like(&model).unwrap();
    assert!(z.shared.pytree().1.weight.is_placeholder());
    assert!(
        tree_leaves(&z)
            .iter()
            .all(|a| a.to_vec::<f32>().unwrap().iter().all(|&x| x == 0.0))
    );
    let f = full_like(&model, 2.0).unwrap();
    let n: usize = tree_leaves(&f).iter().map(Array::elem_count).sum();
    assert_eq!(n, 6 + 3);
    // The norm of a tree of twos over 9 elements is sqrt(36) = 6; the tied
    // weight counts once.
    assert_eq!(global_norm(&f).unwrap().to_scalar::<f32>().unwrap(), 6.0);
    let ints = (Array::scalar(1i32).unwrap(),);
    let err = global_norm(&ints).unwrap_err();
    assert!(
        err.is_dtype_mismatch() && err.to_string().contains("is_inexact_array"),
        "{err}"
    );
}

#[derive(Module)]
struct TwoPart {
    embedding: Embedding,
    head: Linear,
}

/// The freezing recipe: a spec false on one sub-module splits the model
/// into trainable and frozen parts that `combine` joins back.
#[test]
fn filter_specs_split_and_join() {
    let [k1, k2] = Key::new(0).split();
    let model = TwoPart {
        embedding: Embedding::new(4, 3, k1).unwrap(),
        head: Linear::new(3, 2, k2).unwrap(),
    };
    let spec = spec_like(&model, true).unwrap();
    let spec = tree_at_with(&spec, |m| &mut m.embedding, |e| spec_like(e, false)).unwrap();
    let (trainable, frozen) = partition_with_spec(&model, &spec).unwrap();
    assert!(trainable.embedding.weight.is_absent() && trainable.head.weight.is(&model.head.weight));
    assert!(frozen.head.bias.as_ref().unwrap().is_absent());
    assert!(frozen.embedding.weight.is(&model.embedding.weight));
    assert!(tree_equal(&combine(&trainable, &frozen).unwrap(), &model).unwrap());
    // An optimiser on the trainable part has no state for the frozen one.
    let state = optim::adam(0.1).init(&trainable).unwrap();
    assert_eq!(tree_leaves(&state.0.mu).len(), 2);
    // A spec that is not bools is an error.
    let err = filter_with_spec(&model, &model).unwrap_err();
    assert!(err.to_string().contains("spec_like"), "{err}");
    // Holes of the model stay holes.
    let tied = LanguageModel::new(3, 2, Key::new(0)).unwrap();
    let kept = filter_with_spec(&tied, &spec_like(&tied, false).unwrap()).unwrap();
    assert!(tree_leaves(&kept).is_empty());
    assert!(kept.shared.pytree().1.weight.is_placeholder());
}

#[test]
fn bad_input_gives_clear_errors() {
    let p = (
        Array::ones(&[2, 2], DType::F32).unwrap(),
        Array::ones(&[2], DType::F32).unwrap(),
    );
    // Weight decay reads the params.
    let opt = optim::adamw(0.1);
    let s = opt.init(&p).unwrap();
    let err = opt.update(&p, &s, None).unwrap_err();
    assert!(err.to_string().contains("Some(&params)"), "{err}");
    // A mask spec of another structure.
    let spec = spec_like(&(p.0.clone(),), true).unwrap();
    let m = Mask::from_spec(&spec).unwrap();
    let err = optim::masked(optim::scale(1.0), m).init(&p).unwrap_err();
    assert!(
        err.is_structure_mismatch() && err.to_string().contains("spec_like"),
        "{err}"
    );
    // A leaf without a transformation in multi_transform.
    let opt = optim::multi_transform((("a", optim::scale(1.0)),), |_: &KeyPath, w: &Array| {
        if w.rank() >= 2 { "a" } else { "b" }.to_string()
    });
    let err = opt.init(&p).unwrap_err();
    assert!(
        err.to_string().contains("[1]") && err.to_string().contains("`b`"),
        "{err}"
    );
    // An unknown injected hyperparameter.
    let opt = optim::inject_hyperparams(
        |h| Ok(optim::sgd(h.hyper("learning_rate")?, None, false)),
        vec![("learning_rate", 0.1.into())],
    );
    let mut s = opt.init(&p).unwrap();
    let err = s.hyperparams.set("lr", 0.2).unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let err = optim::inject_hyperparams(
        |h| Ok(optim::sgd(h.hyper("momentum")?, None, false)),
        vec![("learning_rate", 0.1.into())],
    )
    .init(&p)
    .unwrap_err();
    assert!(
        err.to_string().contains("no hyperparameter `momentum`"),
        "{err}"
    );
    // Schedules with impossible arguments.
    assert!(
        cosine_decay_schedule(0.1, 0, 0.0, 1.0)
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        piecewise_constant_schedule(0.1, &[(2, -1.0)])
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        join_schedules(vec![linear_schedule(0.1, 0.0, 2, 0)], &[1])
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        warmup_cosine_decay_schedule(0.0, 0.1, 5, 5, 0.0, 1.0)
            .unwrap_err()
            .is_invalid()
    );
    // A schedule given a float count.
    let s = linear_schedule(0.1, 0.0, 2, 0);
    assert!(
        s.value(&Array::scalar(1.0f32).unwrap())
            .unwrap_err()
            .is_invalid()
    );
    // MultiSteps of zero micro-steps.
    assert!(
        MultiSteps::new(optim::scale(1.0), 0)
            .init(&p)
            .unwrap_err()
            .is_invalid()
    );
    // A state from another optimiser (momentum missing).
    let with = optim::sgd(0.1, Some(0.9), false);
    let without = optim::sgd(0.1, None, false);
    let s = without.init(&p).unwrap();
    assert!(
        with.update(&p, &s, None)
            .unwrap_err()
            .is_structure_mismatch()
    );
}

/// Schedules read at the count before the increment: a warmup from zero
/// makes the first update zero.
#[test]
fn the_first_update_of_a_warmup_from_zero_is_zero() {
    let p = Array::ones(&[3], DType::F32).unwrap();
    let lr = warmup_cosine_decay_schedule(0.0, 0.1, 3, 10, 0.0, 1.0).unwrap();
    let opt = optim::adam(lr);
    let s = opt.init(&p).unwrap();
    let (u, s) = opt.update(&p, &s, None).unwrap();
    assert_eq!(u.to_vec::<f32>().unwrap(), vec![0.0; 3]);
    let (u, _) = opt.update(&p, &s, None).unwrap();
    assert!(u.to_vec::<f32>().unwrap().iter().all(|&x| x < 0.0));
}

/// A state is a tree: it round-trips through the `.eqx` checkpoint format
/// (tied weight stored once), and training resumes from it exactly.
#[test]
fn an_optimiser_state_round_trips_through_a_checkpoint() {
    let model = LanguageModel::new(3, 2, Key::new(0)).unwrap();
    let lr = warmup_cosine_decay_schedule(0.0, 0.1, 1, 6, 0.01, 1.0).unwrap();
    let opt = optim::chain((optim::clip_by_global_norm(1.0), optim::adamw(lr)));
    let state = opt.init(&model).unwrap();
    let grads = full_like(&model, 0.5).unwrap();
    let (_, state) = opt.update(&grads, &state, Some(&model)).unwrap();
    let mut bytes = Vec::new();
    solstice::serial::tree_serialise_leaves_to(&mut bytes, &state).unwrap();
    let like = opt.init(&model).unwrap();
    let loaded = solstice::serial::tree_deserialise_leaves_from(&bytes[..], &like).unwrap();
    assert!(tree_equal(&loaded, &state).unwrap());
    assert!(loaded.1.0.mu.shared.pytree().1.weight.is_placeholder());
    let (a, _) = opt.update(&grads, &state, Some(&model)).unwrap();
    let (b, _) = opt.update(&grads, &loaded, Some(&model)).unwrap();
    assert!(tree_equal(&a, &b).unwrap());
}

/// Between inner steps optax's `MultiSteps` returns `0 * inner_update`: a
/// non-finite gradient shows at once as NaN at its element (optax 0.2.8
/// gives `[0, nan, -0]` here, then `[-2, nan, 0.5]`), and the other
/// elements are zero.
#[test]
fn multi_steps_between_inner_steps_is_zero_times_the_inner_update() {
    let opt = MultiSteps::new(optim::sgd(1.0, None, false), 2);
    let p = Array::from_vec(vec![0.0f32; 3], &[3]).unwrap();
    let g = |v: [f32; 3]| Array::from_vec(v.to_vec(), &[3]).unwrap();
    let s = opt.init(&p).unwrap();
    let (u, s) = opt.update(&g([1.0, f32::NAN, -2.0]), &s, Some(&p)).unwrap();
    let u = u.to_vec::<f32>().unwrap();
    assert!(u[0] == 0.0 && u[1].is_nan() && u[2] == 0.0, "{u:?}");
    assert!(!opt.has_updated(&s).unwrap());
    // The inner step: minus the means, the NaN kept.
    let (u, s) = opt.update(&g([3.0, 1.0, 1.0]), &s, Some(&p)).unwrap();
    let u = u.to_vec::<f32>().unwrap();
    assert!(u[0] == -2.0 && u[1].is_nan() && u[2] == 0.5, "{u:?}");
    assert!(opt.has_updated(&s).unwrap());
}
