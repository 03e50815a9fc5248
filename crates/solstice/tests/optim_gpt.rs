//! Optimisers, transforms and wrappers against optax 0.2.8 on a GPT block
//! with a tied head: a token embedding, one pre-LayerNorm transformer block
//! (`LayerNorm`, `MultiheadAttention`, `MLP`) and a bias-free head whose
//! weight `Shared` ties to the embedding, built from key 0 as Equinox
//! builds it. 5 steps each (15 micro-steps for `MultiSteps`), comparing the
//! updates, the parameters and every leaf of the state after each step.
//! Fixture: `optim_gpt.json` from `tools/reference/optim_ref.py`.

mod common;

use common::optim::{arrays, case, fixture, gpt_recipe, run_with};
use serde_json::Value;
use solstice::nn::{
    Embedding, LayerNorm, Linear, Mlp, MultiheadAttention, MultiheadAttentionOptions, Shared,
};
use solstice::optim::{self, GradientTransformation, MultiSteps};
use solstice::random::Key;
use solstice::tree::{tree_leaves, tree_slots};
use solstice::{Array, Module, Result, filter_grad, vmap};

const VOCAB: usize = 3;
const DIM: usize = 4;
const HEADS: usize = 2;
const WIDTH: usize = 4;
const SEQ: usize = 6;

/// A pre-LayerNorm transformer block on a `[seq, dim]` sequence, field for
/// field `optim_ref.py`'s `Block`.
#[derive(Module)]
struct Block {
    ln1: LayerNorm,
    attn: MultiheadAttention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(key: Key) -> Result<Block> {
        let [k1, k2] = key.split();
        let options = MultiheadAttentionOptions {
            qk_size: Some(1),
            vo_size: Some(1),
            ..MultiheadAttentionOptions::default()
        };
        Ok(Block {
            ln1: LayerNorm::new(&[DIM])?,
            attn: MultiheadAttention::with_options(HEADS, DIM, options, k1)?,
            ln2: LayerNorm::new(&[DIM])?,
            mlp: Mlp::new(DIM, DIM, WIDTH, 1, k2)?,
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let h = vmap(|v: &Array| self.ln1.forward(v))(x)?;
        let x = x.add(&self.attn.forward(&h, &h, &h)?)?;
        let h = vmap(|v: &Array| self.ln2.forward(v))(&x)?;
        x.add(&vmap(|v: &Array| self.mlp.forward(v))(&h)?)
    }
}

/// `optim_ref.py`'s `TiedGpt`: the head's weight is the embedding's.
#[derive(Module)]
struct TiedGpt {
    shared: Shared<(Embedding, Linear)>,
    block: Block,
}

impl TiedGpt {
    fn new(key: Key) -> Result<TiedGpt> {
        let [kt, kb, kh] = key.split();
        let wte = Embedding::new(VOCAB, DIM, kt)?;
        let head = Linear::no_bias(DIM, VOCAB, kh)?;
        let shared = Shared::new((wte, head), |p| &mut p.1.weight, |p| p.0.weight.clone())?;
        Ok(TiedGpt {
            shared,
            block: Block::new(kb)?,
        })
    }

    fn loss(&self, (x, y): &(Array, Array)) -> Result<Array> {
        let (wte, head) = self.shared.call()?;
        let h = self.block.forward(&vmap(|t: &Array| wte.forward(t))(x)?)?;
        let logits = vmap(|v: &Array| head.forward(v))(&h)?;
        common::lm::cross_entropy(&logits, y)
    }
}

fn gpt() -> TiedGpt {
    TiedGpt::new(Key::new(0)).unwrap()
}

fn run<G: GradientTransformation<TiedGpt>>(fx: &Value, name: &str, opt: G) {
    common::optim::run(fx, name, gpt(), opt)
}

#[test]
fn gpt_recipe_matches_optax() {
    let fx = fixture("optim_gpt.json");
    run(&fx, "gpt_recipe", gpt_recipe());
}

#[test]
fn optimisers_match_optax() {
    let fx = fixture("optim_gpt.json");
    run(&fx, "adam", optim::adam(0.01));
    run(&fx, "sgd_momentum", optim::sgd(0.1, Some(0.9), false));
    run(&fx, "lion", optim::lion(0.001));
    run(
        &fx,
        "adafactor_factored",
        optim::adafactor(0.01)
            .min_dim_size_to_factor(2)
            .momentum(0.9),
    );
}

#[test]
fn wrappers_match_optax() {
    let fx = fixture("optim_gpt.json");
    run(&fx, "multi_steps", MultiSteps::new(optim::adamw(0.01), 3));
    run(
        &fx,
        "apply_if_finite",
        optim::apply_if_finite(optim::adam(0.01), 2),
    );
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
    run_with(&fx, "inject_adam", gpt(), adam, &mut |s, state| {
        if s == 2 {
            state.hyperparams.set("learning_rate", 0.003).unwrap();
        }
    });
}

/// The GPT's tied weight has one `mu` and one `nu`, as in optax's state
/// for the Equinox model, and solstice's gradient of the same loss on the
/// model built from the same key is JAX's.
#[test]
fn tied_gpt_weight_has_one_mu_and_one_nu() {
    let fx = fixture("optim_gpt.json");
    let c = case(&fx, "adam");
    let model = gpt();
    let opt = optim::adam(0.01);
    let state = opt.init(&model).unwrap();
    let (mu, nu) = (&state.0.mu, &state.0.nu);
    assert!(model.shared.pytree().1.weight.is_placeholder());
    assert!(mu.shared.pytree().1.weight.is_placeholder());
    assert!(nu.shared.pytree().1.weight.is_placeholder());
    let live = |t: &TiedGpt| -> Vec<String> {
        tree_slots(t)
            .into_iter()
            .filter(|(_, a)| !a.is_hole())
            .map(|(p, _)| p.to_string())
            .collect()
    };
    let optax_paths: Vec<&str> = c["state_meta"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    for (name, moment) in [("mu", mu), ("nu", nu)] {
        let ours = live(moment);
        let theirs: Vec<String> = optax_paths
            .iter()
            .filter_map(|p| p.strip_prefix(&format!("[0].{name}")))
            .map(str::to_string)
            .collect();
        assert_eq!(ours, theirs, "{name}: one leaf per parameter, as optax");
        let tied: Vec<&String> = ours.iter().filter(|p| p.starts_with(".shared")).collect();
        assert_eq!(tied, [".shared.pytree[0].weight"], "{name} of the tie");
    }
    assert_eq!(live(&model).len(), tree_leaves(mu).len());

    let step0 = &c["steps"][0];
    let tokens: Vec<i32> = (0..SEQ as i32).map(|i| (2 * i) % VOCAB as i32).collect();
    let targets: Vec<i32> = (0..SEQ as i32)
        .map(|i| (3 * i + 1) % VOCAB as i32)
        .collect();
    let batch = (
        Array::from_vec(tokens, &[SEQ]).unwrap(),
        Array::from_vec(targets, &[SEQ]).unwrap(),
    );
    let grads = filter_grad(|m: &TiedGpt, b: &(Array, Array)| m.loss(b))(&model, &batch).unwrap();
    let jax = arrays(&step0["grads"], &c["params_meta"]);
    let ours = tree_leaves(&grads);
    assert_eq!(ours.len(), jax.len());
    for (a, e) in ours.iter().zip(&jax) {
        common::assert_close(a, e, 1e-5, "solstice's GPT gradient against JAX's");
    }
}
