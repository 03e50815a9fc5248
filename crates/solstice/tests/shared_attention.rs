//! Equinox's `Shared` tests that tie into a real `MultiheadAttention`
//! (`test_shared_node` and `test_multi_shared`), re-expressed with the same
//! intent: inside the call the tied nodes equal their source, before and
//! after gradient steps.

mod common;

use std::cell::Cell;

use common::assert_close;
use solstice::nn::{Linear, MultiheadAttention, MultiheadAttentionOptions, Shared};
use solstice::random::{self, Key};
use solstice::tree::{tree_equal, tree_leaves_with_path};
use solstice::{Array, DType, Result, apply_updates, filter_grad, vmap};

type Pair = (Linear, MultiheadAttention);

/// `MultiheadAttention(num_heads=3, query_size=12, inference=True)`.
fn attention(key: Key) -> MultiheadAttention {
    let options = MultiheadAttentionOptions {
        inference: true,
        ..MultiheadAttentionOptions::default()
    };
    MultiheadAttention::with_options(3, 12, options, key).unwrap()
}

/// The module's call: self-attention over `x`, then `my_proj` on each
/// position, summed.
fn forward(my_proj: &Linear, attention: &MultiheadAttention, x: &Array) -> Result<Array> {
    let h = attention.forward(x, x, x)?;
    vmap(|t: &Array| my_proj.forward(t))(&h)?.sum_all()
}

fn paths(tree: &Shared<Pair>) -> Vec<String> {
    tree_leaves_with_path(tree)
        .iter()
        .map(|(p, _)| p.to_string())
        .collect()
}

// Equinox: test_shared_node. A whole `Linear` (a non-leaf node) is tied to
// the attention's key projection.
#[test]
fn shared_node_in_attention() {
    let [k_attention, k_proj, k_x] = Key::new(0).split();
    let attention = attention(k_attention);
    let my_proj = Linear::no_bias(12, 12, k_proj).unwrap();
    let mut module =
        Shared::new((my_proj, attention), |p| &mut p.1.key_proj, |p| p.0.clone()).unwrap();
    let x = random::normal(k_x, &[5, 12], DType::F32).unwrap();
    // The key projection is stored once, as `my_proj`.
    assert_eq!(
        paths(&module),
        [
            ".pytree[0].weight",
            ".pytree[1].query_proj.weight",
            ".pytree[1].value_proj.weight",
            ".pytree[1].output_proj.weight",
        ]
    );

    let called = Cell::new(false);
    let eq = Cell::new(false);
    let f = filter_grad(|m: &Shared<Pair>, x: &Array| {
        called.set(true);
        let (my_proj, attention) = m.call()?;
        eq.set(tree_equal(&my_proj, &attention.key_proj)?);
        forward(&my_proj, &attention, x)
    });
    for step in 0..2 {
        eq.set(false);
        let grads = f(&module, &x).unwrap();
        assert!(called.get());
        assert!(
            eq.get(),
            "step {step}: key_proj equals my_proj inside the call"
        );
        assert!(grads.pytree().1.key_proj.weight.is_absent());
        module = apply_updates(&module, &grads).unwrap();
        assert!(module.pytree().1.key_proj.weight.is_placeholder());
    }
}

// Equinox: test_multi_shared. Two nodes at once: the key projection is
// `my_proj`, and the query projection's weight is `my_proj.weight + 1`.
#[test]
fn multi_shared_in_attention() {
    let [k_proj, k_attention, k_x] = Key::new(1).split();
    let my_proj = Linear::no_bias(12, 12, k_proj).unwrap();
    let attention = attention(k_attention);
    let mut module = Shared::new_pair(
        (my_proj, attention),
        |p| (&mut p.1.key_proj, &mut p.1.query_proj.weight),
        |p| Ok((p.0.clone(), p.0.weight.add_scalar(1.0)?)),
    )
    .unwrap();
    let x = random::normal(k_x, &[5, 12], DType::F32).unwrap();
    assert_eq!(
        paths(&module),
        [
            ".pytree[0].weight",
            ".pytree[1].value_proj.weight",
            ".pytree[1].output_proj.weight",
        ]
    );

    let called = Cell::new(false);
    let eq = Cell::new(false);
    let f = filter_grad(|m: &Shared<Pair>, x: &Array| {
        called.set(true);
        let (my_proj, attention) = m.call()?;
        let eq1 = tree_equal(&my_proj, &attention.key_proj)?;
        let eq2 = tree_equal(
            &my_proj.weight.add_scalar(1.0)?,
            &attention.query_proj.weight,
        )?;
        eq.set(eq1 && eq2);
        forward(&my_proj, &attention, x)
    });
    for step in 0..2 {
        eq.set(false);
        let grads = f(&module, &x).unwrap();
        assert!(called.get());
        assert!(eq.get(), "step {step}: both ties hold inside the call");
        module = apply_updates(&module, &grads).unwrap();
    }
}

// What the ties mean for the gradient: `my_proj.weight` is used three times
// (as itself, as the key projection, and shifted as the query projection),
// and its gradient is the sum over all three uses.
#[test]
fn tied_attention_gradient_sums_every_use() {
    let [k_proj, k_attention, k_x] = Key::new(2).split();
    let my_proj = Linear::no_bias(12, 12, k_proj).unwrap();
    let module = Shared::new_pair(
        (my_proj, attention(k_attention)),
        |p| (&mut p.1.key_proj, &mut p.1.query_proj.weight),
        |p| Ok((p.0.clone(), p.0.weight.add_scalar(1.0)?)),
    )
    .unwrap();
    let x = random::normal(k_x, &[5, 12], DType::F32).unwrap();
    let tied = filter_grad(|m: &Shared<Pair>, x: &Array| {
        let (p, a) = m.call()?;
        forward(&p, &a, x)
    })(&module, &x)
    .unwrap();

    // The same computation untied: three independent copies.
    let untied = module.untie().unwrap();
    let g = filter_grad(|(p, a): &Pair, x: &Array| forward(p, a, x))(&untied, &x).unwrap();
    let expected =
        g.0.weight
            .add(&g.1.key_proj.weight)
            .unwrap()
            .add(&g.1.query_proj.weight)
            .unwrap();
    assert_close(&tied.pytree().0.weight, &expected, 1e-5, "tied gradient");
}
