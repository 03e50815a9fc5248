//! `Shared`: Equinox's tests of `eqx.nn.Shared`, re-expressed with the same
//! intent, plus the tied-gradient property: the gradient of a tied leaf is
//! the sum of the gradients through each use.

mod common;

use std::cell::Cell;

use common::lm::{LanguageModel, cross_entropy};
use common::{assert_close, f32s};
use solstice::nn::{Embedding, Linear, Shared};
use solstice::random::Key;
use solstice::tree::{tree_equal, tree_leaves, tree_leaves_with_path};
use solstice::{Array, Module, apply_updates, filter_grad, filter_value_and_grad, vmap};

/// Stands in for Equinox's `MultiheadAttention` in its `Shared` tests: a
/// block with key, query and value projections and a forward that uses all
/// three. `shared_attention.rs` runs the same tests with the real
/// `MultiheadAttention`.
#[derive(Module)]
struct Block {
    query_proj: Linear,
    key_proj: Linear,
    value_proj: Linear,
}

impl Block {
    fn new(size: usize, key: Key) -> solstice::Result<Self> {
        let [kq, kk, kv] = key.split();
        Ok(Block {
            query_proj: Linear::no_bias(size, size, kq)?,
            key_proj: Linear::no_bias(size, size, kk)?,
            value_proj: Linear::no_bias(size, size, kv)?,
        })
    }

    /// `softmax(q k^T / sqrt(d)) v` over a sequence `x` of shape `[seq, d]`.
    fn forward(&self, x: &Array) -> solstice::Result<Array> {
        let q = vmap(|t: &Array| self.query_proj.forward(t))(x)?;
        let k = vmap(|t: &Array| self.key_proj.forward(t))(x)?;
        let v = vmap(|t: &Array| self.value_proj.forward(t))(x)?;
        let d = x.shape()[1] as f64;
        let scores = q.matmul(&k.t()?)?.mul_scalar(1.0 / d.sqrt())?;
        scores.softmax(-1)?.matmul(&v)
    }
}

// Equinox: test_shared_array. An embedding tied to a linear head: inside the
// call both layers hold the very same array.
#[test]
fn shared_array() {
    let [k1, k2] = Key::new(0).split();
    let embedding = Embedding::new(3, 4, k1).unwrap();
    let head = Linear::new(4, 3, k2).unwrap();
    let shared = Shared::new(
        (embedding, head),
        |p| &mut p.1.weight,
        |p| p.0.weight.clone(),
    )
    .unwrap();
    let called = Cell::new(false);
    let forward = |token: &Array| -> solstice::Result<Array> {
        called.set(true);
        let (embedding, head) = shared.call()?;
        assert!(embedding.weight.is(&head.weight));
        head.forward(&embedding.forward(token)?)
    };
    let out = forward(&Array::scalar(0i64).unwrap()).unwrap();
    assert!(called.get());
    assert_eq!(out.shape(), &[3]);
}

// Equinox: test_shared_node. A whole sub-module (a Linear) is tied to the
// block's key projection; the tie holds before and after a gradient step.
#[test]
fn shared_node_survives_gradient_steps() {
    let [k1, k2, k3] = Key::new(1).split();
    let my_proj = Linear::no_bias(12, 12, k1).unwrap();
    let block = Block::new(12, k2).unwrap();
    let mut module = Shared::new((my_proj, block), |p| &mut p.1.key_proj, |p| p.0.clone()).unwrap();
    let x = solstice::random::normal(k3, &[5, 12], solstice::DType::F32).unwrap();

    let eq = Cell::new(false);
    let f = filter_grad(|m: &Shared<(Linear, Block)>, x: &Array| {
        let (my_proj, block) = m.call()?;
        eq.set(tree_equal(&my_proj, &block.key_proj)?);
        let out = vmap(|t: &Array| my_proj.forward(t))(&block.forward(x)?)?;
        out.sum_all()
    });
    for _ in 0..2 {
        eq.set(false);
        let grads = f(&module, &x).unwrap();
        assert!(eq.get(), "the tied node equals its source inside the call");
        // The tied node is a placeholder, so its gradient is absent.
        assert!(grads.pytree().1.key_proj.weight.is_absent());
        assert!(!grads.pytree().0.weight.is_absent());
        module = apply_updates(&module, &grads).unwrap();
        assert!(module.pytree().1.key_proj.weight.is_placeholder());
    }
}

// Equinox: test_mismatched_structure. Arrays of shapes (3, 4) and (4, 3)
// cannot be tied.
#[test]
fn mismatched_structure_is_rejected() {
    let [k1, k2] = Key::new(2).split();
    let x = solstice::random::normal(k1, &[3, 4], solstice::DType::F32).unwrap();
    let y = solstice::random::normal(k2, &[4, 3], solstice::DType::F32).unwrap();
    let err = Shared::new((x, y), |p| &mut p.0, |p| p.1.clone()).unwrap_err();
    assert!(err.is_structure_mismatch());
    let message = err.to_string();
    assert!(
        message.starts_with("Every node being shared together must have the same pytree structure")
    );
    // Both structures are shown.
    assert!(
        message.contains("f32[4,3]") && message.contains("f32[3,4]"),
        "{message}"
    );
}

// Equinox: test_multi_shared. Two nodes at once, one of them transformed by
// `get` (weight + 1); the ties hold before and after gradient steps.
#[test]
fn multi_shared_with_transform() {
    let [k1, k2, k3] = Key::new(3).split();
    let my_proj = Linear::no_bias(12, 12, k1).unwrap();
    let block = Block::new(12, k2).unwrap();
    let mut module = Shared::new_pair(
        (my_proj, block),
        |p| (&mut p.1.key_proj, &mut p.1.query_proj.weight),
        |p| Ok((p.0.clone(), p.0.weight.add_scalar(1.0)?)),
    )
    .unwrap();
    let x = solstice::random::normal(k3, &[5, 12], solstice::DType::F32).unwrap();

    let eq = Cell::new(false);
    let f = filter_grad(|m: &Shared<(Linear, Block)>, x: &Array| {
        let (my_proj, block) = m.call()?;
        let eq1 = tree_equal(&my_proj, &block.key_proj)?;
        let eq2 = tree_equal(&my_proj.weight.add_scalar(1.0)?, &block.query_proj.weight)?;
        eq.set(eq1 && eq2);
        let out = vmap(|t: &Array| my_proj.forward(t))(&block.forward(x)?)?;
        out.sum_all()
    });
    for _ in 0..2 {
        eq.set(false);
        let grads = f(&module, &x).unwrap();
        assert!(eq.get());
        module = apply_updates(&module, &grads).unwrap();
    }
    // Leaves: my_proj.weight, query... no: query_proj.weight and key_proj are
    // tied, so only my_proj.weight and value_proj.weight remain.
    let paths: Vec<String> = tree_leaves_with_path(&module)
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(paths, [".pytree[0].weight", ".pytree[1].value_proj.weight"]);
}

const VOCAB: usize = 7;
const DIM: usize = 5;

fn tokens() -> (Array, Array) {
    (
        Array::from_vec(vec![1u32, 4, 2, 6, 0, 3], &[6]).unwrap(),
        Array::from_vec(vec![4u32, 2, 6, 0, 3, 5], &[6]).unwrap(),
    )
}

#[test]
fn tied_gradient_is_the_sum_of_both_uses() {
    let model = LanguageModel::new(VOCAB, DIM, Key::new(0)).unwrap();
    let (x, y) = tokens();
    let loss = |m: &LanguageModel, (x, y): &(Array, Array)| cross_entropy(&m.forward(x)?, y);
    let (value, grads) = filter_value_and_grad(loss)(&model, &(x.clone(), y.clone())).unwrap();

    // The same model untied: two independent copies of the matrix. (The
    // called tree holds one array in two leaves, which `filter_grad`
    // refuses as an aliasing mistake; `untie` makes the copies.)
    let untied = model.shared.untie().unwrap();
    let untied_loss = |m: &(Embedding, Linear), (x, y): &(Array, Array)| {
        let values = vmap(|t: &Array| m.0.forward(t))(x)?;
        cross_entropy(&vmap(|v: &Array| m.1.forward(v))(&values)?, y)
    };
    let (untied_value, untied_grads) =
        filter_value_and_grad(untied_loss)(&untied, &(x.clone(), y.clone())).unwrap();
    assert_close(&value, &untied_value, 1e-6, "loss");

    let expected = untied_grads.0.weight.add(&untied_grads.1.weight).unwrap();
    let tied = &grads.shared.pytree().0.weight;
    assert_close(tied, &expected, 1e-6, "tied gradient");
    // Each use alone is not enough: both contribute.
    assert!(
        untied_grads
            .0
            .weight
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-3
    );
    assert!(
        untied_grads
            .1
            .weight
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-3
    );
    // The model's leaves hold the tied matrix exactly once.
    let leaves = tree_leaves(&model);
    assert_eq!(leaves.len(), 2);
    assert_eq!(
        leaves.iter().filter(|l| l.shape() == [VOCAB, DIM]).count(),
        1
    );
}

#[test]
fn tied_gradient_flows_through_a_transpose() {
    // The head maps DIM -> VOCAB with weight (VOCAB, DIM); here the head is
    // instead an input projection VOCAB -> DIM with weight (DIM, VOCAB),
    // tied to the embedding's transpose.
    let [k1, k2] = Key::new(4).split();
    let embedding = Embedding::new(VOCAB, DIM, k1).unwrap();
    let proj = Linear::new(VOCAB, DIM, k2).unwrap();
    let model = Shared::new((embedding, proj), |p| &mut p.1.weight, |p| p.0.weight.t()).unwrap();
    let (x, y) = tokens();

    let forward = |e: &Embedding, p: &Linear, x: &Array| -> solstice::Result<Array> {
        let h =
            vmap(|o: &Array| p.forward(o))(&solstice::one_hot(x, VOCAB, solstice::DType::F32)?)?;
        vmap(|h: &Array| e.weight.matmul(h))(&h)
    };
    let loss = |m: &Shared<(Embedding, Linear)>, (x, y): &(Array, Array)| {
        let (e, p) = m.call()?;
        cross_entropy(&forward(&e, &p, x)?, y)
    };
    let grads = filter_grad(loss)(&model, &(x.clone(), y.clone())).unwrap();

    let untied = model.call().unwrap();
    let untied_loss = |m: &(Embedding, Linear), (x, y): &(Array, Array)| {
        cross_entropy(&forward(&m.0, &m.1, x)?, y)
    };
    let g = filter_grad(untied_loss)(&untied, &(x.clone(), y.clone())).unwrap();
    let expected = g.0.weight.add(&g.1.weight.t().unwrap()).unwrap();
    assert_close(
        &grads.pytree().0.weight,
        &expected,
        1e-6,
        "tied gradient through transpose",
    );
}

#[test]
fn placeholder_used_as_a_number_says_to_call_shared() {
    let model = LanguageModel::new(VOCAB, DIM, Key::new(0)).unwrap();
    let head = &model.shared.pytree().1;
    let err = head.forward(&f32s(&[0.0; DIM], &[DIM])).unwrap_err();
    assert!(err.is_hole());
    assert!(err.to_string().contains("call `Shared::call()`"), "{err}");
}
