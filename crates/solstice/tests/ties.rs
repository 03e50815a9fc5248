//! Ties you can see, check, change and move, on the seed's language model:
//! `tie_groups` and the `{:#?}` printing, `Shared::untie`, the aliasing
//! guard, `tree_astype`, surgery inside a `Shared` with `tree_at`, and the
//! errors when surgery breaks a tie. Printing is checked against real
//! Equinox (`tools/reference/ties_ref.py`).

mod common;

use common::Fixture;
use common::lm::{LanguageModel, loss};
use solstice::nn::{Activation, Embedding, Linear, Mlp, MlpOptions, Shared};
use solstice::optim::Sgd;
use solstice::random::Key;
use solstice::tree::{
    allow_aliasing, tie_groups, tree_astype, tree_at, tree_check, tree_leaves,
    tree_leaves_with_path,
};
use solstice::{Array, DType, Module, Result, apply_updates, filter_grad, filter_value_and_grad};

fn seed_model() -> LanguageModel {
    LanguageModel::new(11, 6, Key::new(0)).unwrap()
}

fn batch() -> (Array, Array) {
    let x = Array::from_vec(vec![1u32, 4, 2, 9, 0, 10, 5], &[7]).unwrap();
    let y = Array::from_vec(vec![4u32, 2, 9, 0, 10, 5, 3], &[7]).unwrap();
    (x, y)
}

/// Equinox's printing as solstice spells Python's booleans.
fn python(case: &str) -> String {
    Fixture::load("ties.json")
        .case(case)
        .str("pformat")
        .replace("True", "true")
        .replace("False", "false")
}

// ---------------------------------------------------------------- seeing

#[test]
fn tie_groups_of_the_seed_model() {
    let model = seed_model();
    let groups = tie_groups(&model).unwrap();
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.shared.to_string(), ".shared");
    assert_eq!(group.name, None);
    assert_eq!(group.sources.len(), 1);
    assert_eq!(
        group.sources[0].path.to_string(),
        ".shared.pytree[0].weight"
    );
    assert_eq!(group.sources[0].dtype, DType::F32);
    assert_eq!(group.sources[0].shape, [11, 6]);
    assert_eq!(group.tied.len(), 1);
    let tied = &group.tied[0];
    assert_eq!(tied.path.to_string(), ".shared.pytree[1].weight");
    assert!(
        tied.identity,
        "the head's weight is the embedding matrix itself"
    );
    assert_eq!(tied.slots.len(), 1);
    assert_eq!(tied.slots[0].path.to_string(), ".shared.pytree[1].weight");
    assert_eq!(
        (tied.slots[0].dtype, tied.slots[0].shape.as_slice()),
        (DType::F32, &[11, 6][..])
    );
    assert_eq!(
        group.to_string(),
        ".shared.pytree[1].weight: f32[11,6] = .shared.pytree[0].weight"
    );
}

#[test]
fn ties_survive_a_training_step() {
    // The placeholders keep their tie through gradients and updates, so the
    // tools still see it after training.
    let model = seed_model();
    let grads = filter_grad(loss)(&model, &batch()).unwrap();
    let updates = Sgd::new(0.1).update(&grads).unwrap();
    let model = apply_updates(&model, &updates).unwrap();
    let groups = tie_groups(&model).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].tied[0].path.to_string(),
        ".shared.pytree[1].weight"
    );
    tree_check(&model).unwrap();
}

#[test]
fn alternate_printing_shows_where_each_placeholder_comes_from() {
    let model = seed_model();
    let plain = format!("{model:?}");
    let ties = format!("{model:#?}");
    // The default stays Equinox's; the alternate form differs only at the
    // placeholder, which names the leaf it is tied to.
    assert!(plain.contains("weight=SharedNode,"));
    assert_eq!(
        ties,
        plain.replace(
            "weight=SharedNode,",
            "weight=SharedNode(= .shared.pytree[0].weight),"
        )
    );
}

#[test]
fn a_named_transform_prints_as_equinox_prints_a_named_function() {
    let [k1, k2] = Key::new(0).split();
    let pair = (
        Embedding::new(11, 6, k1).unwrap(),
        Linear::new(11, 6, k2).unwrap(),
    );
    let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t())
        .unwrap()
        .named("transpose");
    assert_eq!(format!("{shared:?}"), python("named_get"));
    let group = &tie_groups(&shared).unwrap()[0];
    assert_eq!(group.name.as_deref(), Some("transpose"));
    assert!(!group.tied[0].identity);
    assert_eq!(
        group.to_string(),
        ".pytree[1].weight: f32[6,11] = transpose(.pytree[0].weight)"
    );
    assert!(format!("{shared:#?}").contains("weight=SharedNode(= transpose(.pytree[0].weight))"));
    // Naming keeps the tie working.
    let (embedding, linear) = shared.call().unwrap();
    assert_eq!(
        linear.weight.to_vec::<f32>().unwrap(),
        embedding.weight.t().unwrap().to_vec::<f32>().unwrap()
    );
}

#[test]
fn gelu_activations_print_as_equinox_prints_jax_nn_gelu() {
    let options = MlpOptions {
        activation: Activation::gelu_tanh(),
        final_activation: Activation::gelu(),
        ..MlpOptions::default()
    };
    let mlp = Mlp::with_options(2, 3, 4, 1, options, Key::new(0)).unwrap();
    let expected = python("mlp_gelu")
        .replace("layers=(", "layers=[")
        .replace("    )\n  ),\n  activation", "    )\n  ],\n  activation")
        .replace("approximate=false", "approximate=False");
    assert_eq!(format!("{mlp:?}"), expected);
}

// ---------------------------------------------------------------- untie

/// The seed model's two layers as plain, untied parts.
#[derive(Module)]
struct Untied {
    pair: (Embedding, Linear),
}

fn untied_loss(m: &Untied, (x, y): &(Array, Array)) -> Result<Array> {
    let (embedding, linear) = &m.pair;
    let values = solstice::vmap(|t: &Array| embedding.forward(t))(x)?;
    let logits = solstice::vmap(|v: &Array| linear.forward(v))(&values)?;
    common::lm::cross_entropy(&logits, y)
}

#[test]
fn untie_gives_copies_that_train_apart() {
    let model = seed_model();
    let untied = Untied {
        pair: model.shared.untie().unwrap(),
    };
    let (embedding, linear) = &untied.pair;
    assert!(
        !embedding.weight.is(&linear.weight),
        "no longer the same array"
    );
    assert_eq!(
        embedding.weight.to_vec::<f32>().unwrap(),
        linear.weight.to_vec::<f32>().unwrap(),
        "the same values"
    );
    // Two leaves now, each with its own gradient and update.
    assert_eq!(tree_leaves(&untied).len(), 3);
    tree_check(&untied).unwrap();
    let grads = filter_grad(untied_loss)(&untied, &batch()).unwrap();
    let updates = Sgd::new(0.1).update(&grads).unwrap();
    let stepped = apply_updates(&untied, &updates).unwrap();
    let (embedding, linear) = &stepped.pair;
    assert_ne!(
        embedding.weight.to_vec::<f32>().unwrap(),
        linear.weight.to_vec::<f32>().unwrap(),
        "after one step the former copies differ"
    );
    // The untied model starts where the tied one is.
    let tied = loss(&model, &batch()).unwrap().to_scalar::<f32>().unwrap();
    let apart = untied_loss(&untied, &batch())
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(tied, apart);
}

#[test]
fn untie_without_ties_is_call() {
    // A `new_each` whose `where` selects nothing ties nothing: untie is
    // documented to be `call` then.
    let pair = (
        Array::scalar(1.0f32).unwrap(),
        Array::scalar(2.0f32).unwrap(),
    );
    let shared =
        Shared::new_each(pair, |_| Vec::<&mut Array>::new(), |_| Vec::<Array>::new()).unwrap();
    let untied = shared.untie().unwrap();
    let called = shared.call().unwrap();
    assert!(untied.0.is(&called.0) && untied.1.is(&called.1));
    assert!(tie_groups(&shared).unwrap().is_empty());
}

// ---------------------------------------------------------------- aliasing guard

/// The seed model's mistake: the embedding matrix placed in the head as
/// the same array, without `Shared`.
fn aliased() -> Untied {
    let (embedding, mut linear) = seed_model().shared.call().unwrap();
    linear.weight = embedding.weight.clone();
    Untied {
        pair: (embedding, linear),
    }
}

#[test]
fn the_same_array_in_two_leaves_is_an_error_in_filter_grad() {
    let model = aliased();
    let err = filter_grad(untied_loss)(&model, &batch()).unwrap_err();
    assert!(err.is_structure_mismatch());
    assert!(
        err.to_string().starts_with(
            "filter_grad: the same array is in two leaves, .pair[0].weight and .pair[1].weight"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tie them with `Shared`"));
    let err = filter_value_and_grad(untied_loss)(&model, &batch()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("filter_value_and_grad: the same array is in two leaves"),
        "{err}"
    );
    let err = tree_check(&model).unwrap_err();
    assert!(err.to_string().starts_with("tree_check: the same array"));
}

#[test]
fn aliasing_can_be_allowed_explicitly() {
    let model = aliased();
    let grads = allow_aliasing(|| filter_grad(untied_loss)(&model, &batch())).unwrap();
    // Each slot has its own gradient, as two parameters would.
    assert!(!grads.pair.0.weight.is_absent() && !grads.pair.1.weight.is_absent());
    assert!(allow_aliasing(|| tree_check(&model)).is_ok());
    // The opt-out ends with its scope, even when it ends in an error.
    assert!(tree_check(&model).is_err());
}

#[test]
fn the_gradient_guard_looks_at_differentiated_leaves_only() {
    // An integer array twice gets no gradient, so it cannot drift; a
    // serialiser would still store it twice, which `tree_check` reports.
    let w = Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    let index = Array::from_vec(vec![1u32], &[1]).unwrap();
    let tree = (w, index.clone(), index);
    let grads = filter_grad(|m: &(Array, Array, Array), _: &()| m.0.sum_all())(&tree, &()).unwrap();
    assert_eq!(grads.0.to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
    let err = tree_check(&tree).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tree_check: the same array is in two leaves, [1] and [2]")
    );
}

#[test]
fn a_tied_model_passes_the_guard() {
    let model = seed_model();
    tree_check(&model).unwrap();
    let (value, _) = filter_value_and_grad(loss)(&model, &batch()).unwrap();
    assert!(value.to_scalar::<f32>().unwrap().is_finite());
}

// ---------------------------------------------------------------- dtype moves

#[test]
fn tree_astype_converts_the_tied_leaf_once_and_keeps_the_tie() {
    let model = seed_model();
    let wide = tree_astype(&model, DType::F64).unwrap();
    let leaves = tree_leaves_with_path(&wide);
    assert_eq!(leaves.len(), 2, "the tied matrix is still one leaf");
    assert!(leaves.iter().all(|(_, a)| a.dtype() == DType::F64));
    let (embedding, linear) = wide.shared.call().unwrap();
    assert!(embedding.weight.is(&linear.weight));
    assert_eq!(linear.weight.dtype(), DType::F64);
    let group = &tie_groups(&wide).unwrap()[0];
    assert_eq!(group.tied[0].slots[0].dtype, DType::F64);
    assert_eq!(group.sources[0].dtype, DType::F64);
    tree_check(&wide).unwrap();
    // The values are the same, widened.
    let narrow: Vec<f32> = model.shared.call().unwrap().0.weight.to_vec().unwrap();
    let widened: Vec<f64> = embedding.weight.to_vec().unwrap();
    assert!(
        narrow
            .iter()
            .zip(&widened)
            .all(|(a, b)| f64::from(*a) == *b)
    );
    // It trains.
    let grads = filter_grad(loss)(&wide, &batch()).unwrap();
    assert_eq!(grads.shared.pytree().0.weight.dtype(), DType::F64);
}

#[test]
fn tree_astype_needs_a_floating_dtype() {
    let err = tree_astype(&seed_model(), DType::I32).unwrap_err();
    assert!(err.is_dtype_mismatch());
    assert!(
        err.to_string()
            .starts_with("tree_astype converts floating leaves")
    );
}

// ---------------------------------------------------------------- surgery

#[test]
fn tree_at_reaches_inside_a_shared_and_keeps_its_placeholders() {
    let model = seed_model();
    let bias = Array::zeros(&[11], DType::F32).unwrap();
    let new = tree_at(
        &model,
        |m| &mut m.shared.pytree_mut().1.bias,
        Some(bias.clone()),
    )
    .unwrap();
    assert!(new.shared.pytree().1.weight.is_placeholder());
    assert!(new.shared.pytree().1.bias.as_ref().unwrap().is(&bias));
    assert_eq!(tree_leaves(&new).len(), 2);
    // The input is unchanged.
    assert!(!model.shared.pytree().1.bias.as_ref().unwrap().is(&bias));
    let (embedding, linear) = new.shared.call().unwrap();
    assert!(embedding.weight.is(&linear.weight));
    tree_check(&new).unwrap();
}

#[test]
fn replacing_a_node_that_held_a_placeholder_keeps_the_tie() {
    // The whole head is replaced; its weight becomes the tie's placeholder
    // again, so the head's new weight is not a second copy.
    let model = seed_model();
    let head = Linear::new(6, 11, Key::new(7)).unwrap();
    let new = tree_at(&model, |m| &mut m.shared.pytree_mut().1, head.clone()).unwrap();
    assert!(new.shared.pytree().1.weight.is_placeholder());
    assert!(
        new.shared
            .pytree()
            .1
            .bias
            .as_ref()
            .unwrap()
            .is(head.bias.as_ref().unwrap())
    );
    assert_eq!(tree_leaves(&new).len(), 2);
    let (embedding, linear) = new.shared.call().unwrap();
    assert!(embedding.weight.is(&linear.weight));
    assert_eq!(
        tie_groups(&new).unwrap()[0].tied[0].path.to_string(),
        ".shared.pytree[1].weight"
    );
}

#[test]
fn surgery_that_changes_a_tied_shape_is_an_error() {
    let model = seed_model();
    let bigger = Array::zeros(&[12, 6], DType::F32).unwrap();
    let new = tree_at(&model, |m| &mut m.shared.pytree_mut().0.weight, bigger).unwrap();
    let err = new.shared.call().unwrap_err();
    assert!(err.is_structure_mismatch());
    assert!(
        err.to_string().contains("a tie group's shapes changed"),
        "{err}"
    );
    assert!(err.to_string().contains("f32[12,6]"), "{err}");
    let err = tree_check(&new).unwrap_err();
    assert!(
        err.to_string().contains("a tie group's shapes changed"),
        "{err}"
    );
    assert!(err.to_string().contains("in the tie at .shared"), "{err}");
}

#[test]
fn surgery_that_removes_a_tied_path_is_an_error() {
    // Every layer's weight tied to the first layer's; surgery empties the
    // list, so the first layer no longer exists.
    let layers: Vec<Linear> = (0..3)
        .map(|i| Linear::new(2, 2, Key::new(i)).unwrap())
        .collect();
    let shared = Shared::tie_field_to_first(layers, |l| &mut l.weight).unwrap();
    let emptied = tree_at(&shared, |s| s.pytree_mut(), Vec::new()).unwrap();
    let err = emptied.call().unwrap_err();
    assert!(
        err.to_string()
            .contains("the nodes tied to the first have no first node"),
        "{err}"
    );
    assert!(
        tree_check(&emptied).is_ok(),
        "an empty list has nothing tied left"
    );

    // A `where` that indexes past the end after surgery: an error, not a
    // panic.
    let layers: Vec<Linear> = (0..3)
        .map(|i| Linear::new(2, 2, Key::new(i)).unwrap())
        .collect();
    let shared = Shared::new(layers, |v| &mut v[2].weight, |v| v[0].weight.clone()).unwrap();
    let shorter = tree_at(
        &shared,
        |s| s.pytree_mut(),
        vec![Linear::new(2, 2, Key::new(9)).unwrap()],
    )
    .unwrap();
    let err = shorter.call().unwrap_err();
    assert!(
        err.to_string().contains("`where` or `get` panicked"),
        "{err}"
    );
    assert!(
        err.to_string().contains("no longer exist after a tree_at"),
        "{err}"
    );
}

#[test]
fn a_get_that_reads_the_removed_node_is_rejected_at_construction() {
    let [k1, k2] = Key::new(0).split();
    let pair = (
        Embedding::new(11, 6, k1).unwrap(),
        Linear::new(6, 11, k2).unwrap(),
    );
    // Returning the removed node itself.
    let err = Shared::new(pair.clone(), |p| &mut p.1.weight, |p| p.1.weight.clone()).unwrap_err();
    assert!(err.is_structure_mismatch());
    assert!(
        err.to_string().starts_with(
            "Shared::new: `get` reads the node that `where` removes (.pytree[1].weight): \
             it returned a placeholder"
        ),
        "{err}"
    );
    // Computing from it.
    let err = Shared::new(pair, |p| &mut p.1.weight, |p| p.1.weight.add_scalar(1.0)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Shared::new: `get` reads the node that `where` removes"),
        "{err}"
    );
    assert!(
        err.to_string().contains("it computes with that node"),
        "{err}"
    );
    assert!(!err.to_string().contains("call `Shared::call()`"), "{err}");
}

// ---------------------------------------------------------------- the README

/// The README's "Seeing your ties" shows this very output.
#[test]
fn readme_shows_the_real_output() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let model = seed_model();
    let groups: Vec<String> = tie_groups(&model)
        .unwrap()
        .iter()
        .map(|g| g.to_string())
        .collect();
    let shown = format!("{}\n", groups.join("\n"));
    assert!(readme.contains(&shown), "README lacks:\n{shown}");
    let pretty = format!("{model:#?}\n");
    assert!(readme.contains(&pretty), "README lacks:\n{pretty}");
}

#[test]
fn optimiser_init_and_serialisers_refuse_one_array_in_two_leaves() {
    use solstice::optim::{GradientTransformation, adamw, chain, clip_by_global_norm};
    use solstice::serial::{safetensors_bytes, tree_serialise_leaves_to};
    let w = Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    let untied = (w.clone(), w);
    let opt = chain((clip_by_global_norm(1.0), adamw(1e-3)));
    let err = opt.init(&untied).unwrap_err().to_string();
    assert!(
        err.contains("optimiser init") && err.contains("[0] and [1]"),
        "{err}"
    );
    assert!(err.contains("Shared"), "{err}");
    let err = adamw(1e-3).init(&untied).unwrap_err().to_string();
    assert!(err.contains("[0] and [1]"), "{err}");
    let mut out = Vec::new();
    let err = tree_serialise_leaves_to(&mut out, &untied)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tree_serialise_leaves") && err.contains("[0] and [1]"),
        "{err}"
    );
    assert!(safetensors_bytes(&untied).is_err());
    // The explicit opt-out, for users who mean it.
    allow_aliasing(|| {
        opt.init(&untied).unwrap();
        tree_serialise_leaves_to(&mut out, &untied).unwrap();
    });
    // A model tied through `Shared` passes all three.
    let model = seed_model();
    opt.init(&model).unwrap();
    tree_serialise_leaves_to(Vec::new(), &model).unwrap();
    safetensors_bytes(&model).unwrap();
}
