//! The tie tools on bigger models: a GPT whose head is tied to its token
//! embedding, a whole `Linear` tied to an attention's key projection
//! (Equinox's `test_shared_node`), and many nodes tied in one call (every
//! block of a list tied to block 0, a weight tied across all layers). In
//! each, the gradient of a tied leaf is the sum over its uses.

mod common;

use common::{Fixture, assert_close};
use solstice::nn::{
    Embedding, LayerNorm, Linear, Mlp, MultiheadAttention, MultiheadAttentionOptions, Shared,
};
use solstice::optim::Sgd;
use solstice::random::{self, Key};
use solstice::tree::{tie_groups, tree_astype, tree_check, tree_leaves, tree_slots};
use solstice::{Array, DType, Module, Result, apply_updates, filter_grad, vmap};

const VOCAB: usize = 13;
const DIM: usize = 8;
const HEADS: usize = 2;
const SEQ: usize = 5;

/// `|a - b| <= 1e-6 max(1, |b|)` for every leaf of two gradient trees.
fn assert_leaves_close(actual: &[Array], expected: &[Array], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: leaf counts");
    for (i, (a, b)) in actual.iter().zip(expected).enumerate() {
        assert_close(a, b, 1e-6, &format!("{what}: leaf {i}"));
    }
}

fn attention(key: Key) -> MultiheadAttention {
    let options = MultiheadAttentionOptions {
        inference: true,
        ..MultiheadAttentionOptions::default()
    };
    MultiheadAttention::with_options(HEADS, DIM, options, key).unwrap()
}

// ---------------------------------------------------------------- a GPT

/// A pre-norm transformer block.
#[derive(Module)]
struct Block {
    ln1: LayerNorm,
    attn: MultiheadAttention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(key: Key) -> Block {
        let [k1, k2] = key.split();
        Block {
            ln1: LayerNorm::new(&[DIM]).unwrap(),
            attn: attention(k1),
            ln2: LayerNorm::new(&[DIM]).unwrap(),
            mlp: Mlp::new(DIM, DIM, 2 * DIM, 1, k2).unwrap(),
        }
    }

    /// `[SEQ, DIM]` to `[SEQ, DIM]`.
    fn forward(&self, x: &Array) -> Result<Array> {
        let h = vmap(|v: &Array| self.ln1.forward(v))(x)?;
        let x = x.add(&self.attn.forward(&h, &h, &h)?)?;
        let h = vmap(|v: &Array| self.ln2.forward(v))(&x)?;
        x.add(&vmap(|v: &Array| self.mlp.forward(v))(&h)?)
    }
}

/// A GPT whose head is tied to its token embedding.
#[derive(Module)]
struct Gpt {
    shared: Shared<(Embedding, Linear)>,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt {
    fn new(key: Key) -> Gpt {
        let [k1, k2, k3, k4] = key.split();
        let wte = Embedding::new(VOCAB, DIM, k1).unwrap();
        let head = Linear::no_bias(DIM, VOCAB, k2).unwrap();
        let shared = Shared::new((wte, head), |p| &mut p.1.weight, |p| p.0.weight.clone()).unwrap();
        let [b1, b2] = k4.split();
        Gpt {
            shared,
            wpe: Embedding::new(SEQ, DIM, k3).unwrap(),
            blocks: vec![Block::new(b1), Block::new(b2)],
            ln_f: LayerNorm::new(&[DIM]).unwrap(),
        }
    }

    fn loss(&self, (x, y): &(Array, Array)) -> Result<Array> {
        let (wte, head) = self.shared.call()?;
        gpt_loss(&wte, &head, &self.wpe, &self.blocks, &self.ln_f, x, y)
    }
}

/// The same GPT with its embedding and head as two separate parts.
#[derive(Module)]
struct UntiedGpt {
    pair: (Embedding, Linear),
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl UntiedGpt {
    fn from(gpt: &Gpt) -> UntiedGpt {
        UntiedGpt {
            pair: gpt.shared.untie().unwrap(),
            wpe: gpt.wpe.clone(),
            blocks: gpt.blocks.clone(),
            ln_f: gpt.ln_f.clone(),
        }
    }

    fn loss(&self, (x, y): &(Array, Array)) -> Result<Array> {
        let (wte, head) = &self.pair;
        gpt_loss(wte, head, &self.wpe, &self.blocks, &self.ln_f, x, y)
    }
}

fn gpt_loss(
    wte: &Embedding,
    head: &Linear,
    wpe: &Embedding,
    blocks: &[Block],
    ln_f: &LayerNorm,
    x: &Array,
    y: &Array,
) -> Result<Array> {
    let positions = Array::arange(SEQ, DType::U32)?;
    let mut h =
        vmap(|t: &Array| wte.forward(t))(x)?.add(&vmap(|t: &Array| wpe.forward(t))(&positions)?)?;
    for block in blocks {
        h = block.forward(&h)?;
    }
    let h = vmap(|v: &Array| ln_f.forward(v))(&h)?;
    let logits = vmap(|v: &Array| head.forward(v))(&h)?;
    common::lm::cross_entropy(&logits, y)
}

fn tokens() -> (Array, Array) {
    (
        Array::from_vec(vec![3u32, 7, 1, 12, 0], &[SEQ]).unwrap(),
        Array::from_vec(vec![7u32, 1, 12, 0, 5], &[SEQ]).unwrap(),
    )
}

#[test]
fn gpt_tie_groups_and_printing() {
    let gpt = Gpt::new(Key::new(0));
    let groups = tie_groups(&gpt).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].to_string(),
        ".shared.pytree[1].weight: f32[13,8] = .shared.pytree[0].weight"
    );
    let plain = format!("{gpt:?}");
    assert!(plain.contains("weight=SharedNode,"));
    assert!(format!("{gpt:#?}").contains("weight=SharedNode(= .shared.pytree[0].weight),"));
    tree_check(&gpt).unwrap();
}

#[test]
fn gpt_tied_head_gradient_is_the_sum_of_both_uses() {
    // In f64, so that the sums agree to 1e-6.
    let gpt = tree_astype(&Gpt::new(Key::new(1)), DType::F64).unwrap();
    let untied = UntiedGpt::from(&gpt);
    let tied = filter_grad(|m: &Gpt, b: &(Array, Array)| m.loss(b))(&gpt, &tokens()).unwrap();
    let apart =
        filter_grad(|m: &UntiedGpt, b: &(Array, Array)| m.loss(b))(&untied, &tokens()).unwrap();
    let expected = apart.pair.0.weight.add(&apart.pair.1.weight).unwrap();
    assert_close(
        &tied.shared.pytree().0.weight,
        &expected,
        1e-6,
        "tied wte gradient",
    );
    // Each use contributes.
    for g in [&apart.pair.0.weight, &apart.pair.1.weight] {
        assert!(
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
                > 1e-8
        );
    }
    // Every other leaf's gradient is the same either way.
    let rest = |m: &[Array]| m.to_vec();
    assert_leaves_close(
        &rest(&tree_leaves(&(
            tied.wpe.clone(),
            tied.blocks.clone(),
            tied.ln_f.clone(),
        ))),
        &rest(&tree_leaves(&(
            apart.wpe.clone(),
            apart.blocks.clone(),
            apart.ln_f.clone(),
        ))),
        "untied leaves",
    );
}

#[test]
fn gpt_head_as_the_same_array_is_refused() {
    let gpt = Gpt::new(Key::new(2));
    let mut untied = UntiedGpt::from(&gpt);
    untied.pair.1.weight = untied.pair.0.weight.clone();
    let err =
        filter_grad(|m: &UntiedGpt, b: &(Array, Array)| m.loss(b))(&untied, &tokens()).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "filter_grad: the same array is in two leaves, .pair[0].weight and .pair[1].weight"
        ),
        "{err}"
    );
}

#[test]
fn gpt_untied_copies_drift_after_one_step() {
    let untied = UntiedGpt::from(&Gpt::new(Key::new(3)));
    let grads =
        filter_grad(|m: &UntiedGpt, b: &(Array, Array)| m.loss(b))(&untied, &tokens()).unwrap();
    let stepped = apply_updates(&untied, &Sgd::new(0.1).update(&grads).unwrap()).unwrap();
    assert_ne!(
        stepped.pair.0.weight.to_vec::<f32>().unwrap(),
        stepped.pair.1.weight.to_vec::<f32>().unwrap()
    );
}

#[test]
fn gpt_astype_keeps_the_tie() {
    let gpt = tree_astype(&Gpt::new(Key::new(4)), DType::F64).unwrap();
    let (wte, head) = gpt.shared.call().unwrap();
    assert!(wte.weight.is(&head.weight));
    assert!(tree_leaves(&gpt).iter().all(|a| a.dtype() == DType::F64));
    let loss = gpt.loss(&tokens()).unwrap();
    assert_eq!(loss.dtype(), DType::F64);
}

// ---------------------------------------------------------------- a whole-module tie

type Pair = (Linear, MultiheadAttention);

/// Equinox's `test_shared_node`: a whole `Linear` is the attention's key
/// projection.
fn key_proj_tie(key: Key) -> Shared<Pair> {
    let [k_attention, k_proj] = key.split();
    let attention = attention(k_attention);
    let my_proj = Linear::no_bias(DIM, DIM, k_proj).unwrap();
    Shared::new((my_proj, attention), |p| &mut p.1.key_proj, |p| p.0.clone()).unwrap()
}

#[test]
fn a_whole_module_tie_prints_as_one_shared_node() {
    // The same model in Equinox's sizes (query size 12, 3 heads), printed.
    let [k_attention, k_proj] = Key::new(0).split();
    let options = MultiheadAttentionOptions {
        inference: true,
        ..MultiheadAttentionOptions::default()
    };
    let attention = MultiheadAttention::with_options(3, 12, options, k_attention).unwrap();
    let my_proj = Linear::no_bias(12, 12, k_proj).unwrap();
    let module = Shared::new((my_proj, attention), |p| &mut p.1.key_proj, |p| p.0.clone()).unwrap();
    let python = Fixture::load("ties.json")
        .case("shared_node")
        .str("pformat")
        .replace("True", "true")
        .replace("False", "false");
    assert_eq!(format!("{module:?}"), python);
    assert!(format!("{module:#?}").contains("key_proj=SharedNode(= .pytree[0]),"));
}

#[test]
fn a_whole_module_tie_in_tie_groups() {
    let module = key_proj_tie(Key::new(5));
    let group = &tie_groups(&module).unwrap()[0];
    assert_eq!(group.tied.len(), 1);
    let node = &group.tied[0];
    assert_eq!(node.path.to_string(), ".pytree[1].key_proj");
    assert_eq!(node.slots.len(), 1);
    assert_eq!(node.slots[0].path.to_string(), ".pytree[1].key_proj.weight");
    assert!(node.identity);
    assert_eq!(group.sources.len(), 1);
    assert_eq!(group.sources[0].path.to_string(), ".pytree[0].weight");
    assert_eq!(
        group.to_string(),
        ".pytree[1].key_proj: .weight f32[8,8] = .pytree[0]"
    );
}

#[test]
fn a_whole_module_tie_unties_and_moves() {
    let module = key_proj_tie(Key::new(6));
    let (my_proj, attention) = module.untie().unwrap();
    assert!(!my_proj.weight.is(&attention.key_proj.weight));
    assert_eq!(
        my_proj.weight.to_vec::<f32>().unwrap(),
        attention.key_proj.weight.to_vec::<f32>().unwrap()
    );
    let wide = tree_astype(&module, DType::F64).unwrap();
    let (my_proj, attention) = wide.call().unwrap();
    assert!(my_proj.weight.is(&attention.key_proj.weight));
    assert_eq!(attention.key_proj.weight.dtype(), DType::F64);
    assert_eq!(
        tie_groups(&wide).unwrap()[0].tied[0].slots[0].dtype,
        DType::F64
    );
}

// ---------------------------------------------------------------- many nodes

/// A Universal Transformer's core: one block applied three times.
fn universal(key: Key) -> Shared<Vec<Block>> {
    let [k1, k2, k3] = key.split();
    Shared::tie_to_first(vec![Block::new(k1), Block::new(k2), Block::new(k3)]).unwrap()
}

fn run_blocks(blocks: &[Block], x: &Array) -> Result<Array> {
    let mut h = x.clone();
    for block in blocks {
        h = block.forward(&h)?;
    }
    h.square()?.mean_all()
}

#[test]
fn every_block_tied_to_block_0_in_one_call() {
    let shared = universal(Key::new(7));
    // One block's leaves: the other two are placeholders.
    let one_block = tree_leaves(&Block::new(Key::new(0))).len();
    assert_eq!(tree_leaves(&shared).len(), one_block);
    let blocks = shared.call().unwrap();
    for block in &blocks[1..] {
        let same = tree_slots(block)
            .iter()
            .zip(tree_slots(&blocks[0]))
            .all(|((_, a), (_, b))| a.is(&b));
        assert!(same, "every block is block 0");
    }
    let groups = tie_groups(&shared).unwrap();
    assert_eq!(groups.len(), 1);
    let paths: Vec<String> = groups[0].tied.iter().map(|n| n.path.to_string()).collect();
    assert_eq!(paths, [".pytree[1]", ".pytree[2]"]);
    assert_eq!(groups[0].sources.len(), one_block);
    assert_eq!(
        groups[0].to_string(),
        format!(
            ".pytree[1]: {one_block} arrays = .pytree[0]\n.pytree[2]: {one_block} arrays = .pytree[0]"
        )
    );
    assert!(
        groups[0]
            .sources
            .iter()
            .all(|s| s.path.to_string().starts_with(".pytree[0]."))
    );
    // Printed as Equinox prints whole tied nodes.
    let printed = format!("{shared:?}");
    assert!(
        printed.contains("SharedNode,\n    SharedNode\n  ]"),
        "{printed}"
    );
}

#[test]
fn a_block_used_three_times_gets_the_sum_of_three_gradients() {
    let shared = tree_astype(&universal(Key::new(8)), DType::F64).unwrap();
    let x = random::normal(Key::new(9), &[SEQ, DIM], DType::F64).unwrap();
    let tied =
        filter_grad(|s: &Shared<Vec<Block>>, x: &Array| run_blocks(&s.call()?, x))(&shared, &x)
            .unwrap();
    let untied = shared.untie().unwrap();
    let apart = filter_grad(|b: &Vec<Block>, x: &Array| run_blocks(b, x))(&untied, &x).unwrap();
    let leaves: Vec<Vec<Array>> = apart.iter().map(tree_leaves).collect();
    let expected: Vec<Array> = (0..leaves[0].len())
        .map(|i| {
            leaves[0][i]
                .add(&leaves[1][i])
                .unwrap()
                .add(&leaves[2][i])
                .unwrap()
        })
        .collect();
    assert_leaves_close(&tree_leaves(&tied), &expected, "block 0's gradient");
    // Each use contributes to the attention's output projection.
    for use_ in &apart {
        let g = use_
            .attn
            .output_proj
            .weight
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert!(g.to_scalar::<f64>().unwrap() > 1e-8);
    }
}

#[test]
fn one_weight_tied_across_all_layers() {
    let layers: Vec<Linear> = (0..4)
        .map(|i| {
            Linear::with_options(
                3,
                3,
                solstice::nn::LinearOptions {
                    dtype: DType::F64,
                    ..Default::default()
                },
                Key::new(i),
            )
            .unwrap()
        })
        .collect();
    let shared = Shared::tie_field_to_first(layers, |l| &mut l.weight).unwrap();
    assert_eq!(tree_leaves(&shared).len(), 5, "one weight and four biases");
    let group = &tie_groups(&shared).unwrap()[0];
    let paths: Vec<String> = group.tied.iter().map(|n| n.path.to_string()).collect();
    assert_eq!(
        paths,
        [
            ".pytree[1].weight",
            ".pytree[2].weight",
            ".pytree[3].weight"
        ]
    );

    let x = random::normal(Key::new(10), &[3], DType::F64).unwrap();
    let f = |layers: &[Linear], x: &Array| -> Result<Array> {
        let mut h = x.clone();
        for l in layers {
            h = l.forward(&h)?.tanh()?;
        }
        h.sum_all()
    };
    let tied =
        filter_grad(|s: &Shared<Vec<Linear>>, x: &Array| f(&s.call()?, x))(&shared, &x).unwrap();
    let untied = shared.untie().unwrap();
    let apart = filter_grad(|l: &Vec<Linear>, x: &Array| f(l, x))(&untied, &x).unwrap();
    let mut expected = apart[0].weight.clone();
    for layer in &apart[1..] {
        expected = expected.add(&layer.weight).unwrap();
    }
    assert_close(&tied.pytree()[0].weight, &expected, 1e-6, "tied weight");
    // Biases stay their own.
    for (t, a) in tied.pytree().iter().zip(&apart) {
        assert_close(
            t.bias.as_ref().unwrap(),
            a.bias.as_ref().unwrap(),
            1e-12,
            "bias",
        );
    }
}
