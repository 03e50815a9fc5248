//! Differential tests against real Equinox/JAX: the same key gives the same
//! weights, outputs and gradients. The fixtures come from
//! `tools/reference/generate.py`.

mod common;

use common::lm::{LanguageModel, cross_entropy};
use common::{Case, Fixture, assert_close};
use solstice::nn::{Embedding, Features, Linear, LinearOptions, Shared};
use solstice::random::Key;
use solstice::{Array, DType, Result, apply_updates, filter_value_and_grad, one_hot, vmap};

/// Weights are drawn bit for bit as JAX draws them, so they compare exactly
/// (up to the last bit of f32 arithmetic in `uniform`'s scaling).
const WEIGHTS: f64 = 1e-6;
const OUTPUTS: f64 = 1e-5;

fn check_linear(case: &Case, linear: &Linear) {
    assert_close(&linear.weight, &case.array("weight"), WEIGHTS, "weight");
    match &linear.bias {
        Some(bias) => assert_close(bias, &case.array("bias"), WEIGHTS, "bias"),
        None => assert!(case.0["arrays"]["bias"].is_null()),
    }
}

#[test]
fn linear_initialisation_matches_equinox() {
    let fixture = Fixture::load("layers.json");
    check_linear(
        &fixture.case("linear_4_3"),
        &Linear::new(4, 3, Key::new(0)).unwrap(),
    );
    check_linear(
        &fixture.case("linear_4_3_nobias"),
        &Linear::no_bias(4, 3, Key::new(1)).unwrap(),
    );

    let case = fixture.case("linear_5_2_call");
    let linear = Linear::new(5, 2, Key::new(7)).unwrap();
    check_linear(&case, &linear);
    assert_close(
        &linear.forward(&case.array("x")).unwrap(),
        &case.array("y"),
        OUTPUTS,
        "y",
    );

    let case = fixture.case("linear_scalar_in");
    let linear = Linear::new(Features::Scalar, 3, Key::new(2)).unwrap();
    check_linear(&case, &linear);
    assert_close(
        &linear.forward(&case.array("x")).unwrap(),
        &case.array("y"),
        OUTPUTS,
        "y",
    );

    let case = fixture.case("linear_scalar_out");
    let linear = Linear::new(3, Features::Scalar, Key::new(3)).unwrap();
    check_linear(&case, &linear);
    assert_close(
        &linear.forward(&case.array("x")).unwrap(),
        &case.array("y"),
        OUTPUTS,
        "y",
    );
}

#[test]
fn linear_and_embedding_in_f64_match_equinox() {
    let fixture = Fixture::load("layers_f64.json");
    let f64_options = LinearOptions {
        dtype: DType::F64,
        ..LinearOptions::default()
    };
    let case = fixture.case("linear_4_3_f64");
    let linear = Linear::with_options(4, 3, f64_options, Key::new(0)).unwrap();
    assert_close(&linear.weight, &case.array("weight"), 1e-12, "f64 weight");
    assert_close(
        linear.bias.as_ref().unwrap(),
        &case.array("bias"),
        1e-12,
        "f64 bias",
    );

    let case = fixture.case("linear_5_2_call_f64");
    let linear = Linear::with_options(5, 2, f64_options, Key::new(7)).unwrap();
    assert_close(
        &linear.forward(&case.array("x")).unwrap(),
        &case.array("y"),
        1e-12,
        "f64 y",
    );

    let case = fixture.case("embedding_10_4_f64");
    let embedding = Embedding::with_dtype(10, 4, DType::F64, Key::new(1)).unwrap();
    assert_close(
        &embedding.weight,
        &case.array("weight"),
        1e-12,
        "f64 embedding",
    );

    // Equinox with x64 on and dtype=float32 draws what f32 mode draws.
    let case = fixture.case("linear_4_3_explicit_f32");
    check_linear(&case, &Linear::new(4, 3, Key::new(0)).unwrap());
}

#[test]
fn embedding_initialisation_and_lookup_match_equinox() {
    let fixture = Fixture::load("layers.json");
    let case = fixture.case("embedding_10_4");
    let embedding = Embedding::new(10, 4, Key::new(1)).unwrap();
    assert_close(&embedding.weight, &case.array("weight"), WEIGHTS, "weight");
    let y = embedding
        .forward(&case.array("index").reshape(&[]).unwrap())
        .unwrap();
    assert_close(&y, &case.array("y"), 0.0, "lookup");
}

#[test]
fn seed_language_model_matches_equinox() {
    let fixture = Fixture::load("language_model.json");
    let case = fixture.case("lm_tied");
    let [k1, k2] = Key::new(0).split();
    assert_eq!(
        k1.data().unwrap().to_vec(),
        case.array("k1_data").to_vec::<u32>().unwrap()
    );
    assert_eq!(
        k2.data().unwrap().to_vec(),
        case.array("k2_data").to_vec::<u32>().unwrap()
    );

    let model = LanguageModel::new(11, 6, Key::new(0)).unwrap();
    let python = case.str("model_pformat").replace("True", "true");
    // Python names a lambda by where it is written; solstice's closures
    // print as a module-level lambda does.
    let python = python.replace(
        "<function LanguageModel.__init__.<locals>.<lambda>>",
        "<function <lambda>>",
    );
    assert_eq!(format!("{model:?}"), python);

    let (embedding, linear) = model.shared.call().unwrap();
    assert_close(
        &embedding.weight,
        &case.array("embedding_weight"),
        WEIGHTS,
        "embedding",
    );
    assert_close(
        linear.bias.as_ref().unwrap(),
        &case.array("linear_bias"),
        WEIGHTS,
        "bias",
    );

    let (tokens, targets) = (case.array("tokens"), case.array("targets"));
    let logits = model.forward(&tokens).unwrap();
    assert_close(&logits, &case.array("logits"), OUTPUTS, "logits");

    let loss = |m: &LanguageModel, (x, y): &(Array, Array)| cross_entropy(&m.forward(x)?, y);
    let data = (tokens.clone(), targets.clone());
    let (value, grads) = filter_value_and_grad(loss)(&model, &data).unwrap();
    assert_close(&value, &case.array("loss"), OUTPUTS, "loss");
    // The whole tied gradient lands on the source leaf, as in Equinox.
    assert_close(
        &grads.shared.pytree().0.weight,
        &case.array("grad_embedding_weight"),
        OUTPUTS,
        "tied grad",
    );
    assert_close(
        grads.shared.pytree().1.bias.as_ref().unwrap(),
        &case.array("grad_linear_bias"),
        OUTPUTS,
        "bias grad",
    );
    assert!(grads.shared.pytree().1.weight.is_absent());

    let updates = solstice::tree_scale(&grads, -0.1).unwrap();
    let stepped = apply_updates(&model, &updates).unwrap();
    assert_close(
        &stepped.shared.pytree().0.weight,
        &case.array("sgd_embedding_weight"),
        OUTPUTS,
        "sgd weight",
    );
    assert_close(
        &stepped.forward(&tokens).unwrap(),
        &case.array("sgd_logits"),
        OUTPUTS,
        "sgd logits",
    );
    assert_close(
        &loss(&stepped, &data).unwrap(),
        &case.array("sgd_loss"),
        OUTPUTS,
        "sgd loss",
    );
}

#[test]
fn transposed_tie_matches_equinox() {
    let fixture = Fixture::load("language_model.json");
    let case = fixture.case("lm_transposed");
    let [k1, k2] = Key::new(0).split();
    let embedding = Embedding::new(11, 6, k1).unwrap();
    let proj = Linear::new(11, 6, k2).unwrap();
    let model = Shared::new((embedding, proj), |p| &mut p.1.weight, |p| p.0.weight.t()).unwrap();
    let (tokens, targets) = (case.array("tokens"), case.array("targets"));
    let forward = |m: &Shared<(Embedding, Linear)>, x: &Array| -> Result<Array> {
        let (e, p) = m.call()?;
        let h = vmap(|o: &Array| p.forward(o))(&one_hot(x, 11, DType::F32)?)?;
        vmap(|h: &Array| e.weight.matmul(h))(&h)
    };
    assert_close(
        &forward(&model, &tokens).unwrap(),
        &case.array("logits"),
        OUTPUTS,
        "logits",
    );
    let loss = |m: &Shared<(Embedding, Linear)>, (x, y): &(Array, Array)| {
        cross_entropy(&forward(m, x)?, y)
    };
    let (value, grads) = filter_value_and_grad(loss)(&model, &(tokens, targets)).unwrap();
    assert_close(&value, &case.array("loss"), OUTPUTS, "loss");
    assert_close(
        &grads.pytree().0.weight,
        &case.array("grad_embedding_weight"),
        OUTPUTS,
        "tied grad",
    );
    assert_close(
        grads.pytree().1.bias.as_ref().unwrap(),
        &case.array("grad_linear_bias"),
        OUTPUTS,
        "bias grad",
    );
}
