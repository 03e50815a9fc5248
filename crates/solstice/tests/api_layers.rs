//! Every layer under `vmap` with a batch of inputs and one key per example
//! (`Key::split_batch`), under `grad`, and under `vmap(grad)`: the batched
//! results equal the example-by-example ones, and per-example gradients sum
//! to the gradient of the summed loss. A layer that read values on the host
//! (as attention's dropout once did) fails here under `vmap`.

use solstice::nn::{
    Activation, AttentionCall, Dropout, Embedding, Identity, Lambda, LayerNorm, Linear, Mlp,
    MultiheadAttention, MultiheadAttentionOptions, RmsNorm, RotaryPositionalEmbedding, Sequential,
    Shared,
};
use solstice::random::{self, Key};
use solstice::tree::tree_leaves;
use solstice::{Array, DType, Result, Tree, filter_grad, vmap};

const BATCH: usize = 3;

/// A scalar loss that weighs every output element differently.
fn weighted_sum(y: &Array) -> Result<Array> {
    let w = Array::arange(y.elem_count(), DType::F32)?
        .mul_scalar(0.7)?
        .cos()?
        .reshape(y.shape())?;
    y.astype(DType::F32)?.mul(&w)?.sum_all()
}

fn assert_close(a: &Array, b: &Array, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            "{what}: element {i} is {x}, expected {y}"
        );
    }
}

fn row(a: &Array, i: usize) -> Array {
    a.take(&Array::scalar(i as u32).unwrap(), 0).unwrap()
}

/// The leaves of a gradient that hold values (absent ones are skipped).
fn values<T: Tree>(t: &T) -> Vec<Array> {
    tree_leaves(t)
        .into_iter()
        .filter(|a| !a.is_hole())
        .collect()
}

/// Checks `forward` of `model` on the batch `xs` with one key per example,
/// under `vmap`, `grad` (of the model and the input) and `vmap(grad)`.
fn check<M, F>(name: &str, model: &M, xs: &Array, forward: F)
where
    M: Tree + Clone,
    F: Fn(&M, &Array, Key) -> Result<Array>,
{
    let root = Key::new(42);
    let keys = root.split_batch(BATCH);
    let each_key = root.split_n(BATCH);
    let batch = (xs.clone(), keys.clone());

    // vmap with batched inputs and batched keys equals a loop.
    let ys = vmap(|(x, k): &(Array, Key)| forward(model, x, k.clone()))(&batch)
        .unwrap_or_else(|e| panic!("{name} under vmap: {e}"));
    for (i, key) in each_key.iter().enumerate() {
        let y = forward(model, &row(xs, i), key.clone()).unwrap();
        assert_close(&row(&ys, i), &y, &format!("{name} vmap example {i}"));
    }

    // grad of the summed batched loss, with respect to model and input.
    let loss = |p: &(M, Array), k: &Key| weighted_sum(&forward(&p.0, &p.1, k.clone())?);
    let total = filter_grad(|m: &M, b: &(Array, Key)| {
        vmap(|(x, k): &(Array, Key)| weighted_sum(&forward(m, x, k.clone())?))(b)?.sum_all()
    })(model, &batch)
    .unwrap_or_else(|e| panic!("{name} under grad(vmap): {e}"));

    // vmap(grad): per-example gradients, equal to a loop of grads and
    // summing to the gradient of the total.
    let per_example =
        vmap(|(x, k): &(Array, Key)| filter_grad(loss)(&(model.clone(), x.clone()), k))(&batch)
            .unwrap_or_else(|e| panic!("{name} under vmap(grad): {e}"));
    for (i, key) in each_key.iter().enumerate() {
        let single = filter_grad(loss)(&(model.clone(), row(xs, i)), key)
            .unwrap_or_else(|e| panic!("{name} under grad: {e}"));
        for (b, s) in values(&per_example).iter().zip(values(&single)) {
            assert_close(&row(b, i), &s, &format!("{name} vmap(grad) example {i}"));
        }
    }
    let model_grads = values(&per_example.0);
    let total_grads = values(&total);
    assert_eq!(
        model_grads.len(),
        total_grads.len(),
        "{name}: gradient leaves"
    );
    for (b, t) in model_grads.iter().zip(&total_grads) {
        assert_close(&b.sum(&[0]).unwrap(), t, &format!("{name} summed grads"));
    }
}

fn normal(shape: &[usize], seed: u64) -> Array {
    random::normal(Key::new(seed), shape, DType::F32).unwrap()
}

#[test]
fn linear_mlp_and_norms() {
    let xs = normal(&[BATCH, 4], 1);
    let linear = Linear::new(4, 3, Key::new(0)).unwrap();
    check("Linear", &linear, &xs, |m, x, _| m.forward(x));
    let mlp = Mlp::new(4, 2, 5, 2, Key::new(1)).unwrap();
    check("Mlp", &mlp, &xs, |m, x, _| m.forward(x));
    let norm = LayerNorm::new(&[4]).unwrap();
    check("LayerNorm", &norm, &xs, |m, x, _| m.forward(x));
    let rms = RmsNorm::new(&[4]).unwrap();
    check("RmsNorm", &rms, &xs, |m, x, _| m.forward(x));
}

#[test]
fn stateless_layers() {
    let xs = normal(&[BATCH, 4], 2);
    check("Identity", &Identity::new(), &xs, |m, x, _| m.forward(x));
    let lambda = Lambda::new(Activation::gelu());
    check("Lambda", &lambda, &xs, |m, x, _| m.forward(x));
    let rope = RotaryPositionalEmbedding::new(4).unwrap();
    let seqs = normal(&[BATCH, 5, 4], 3);
    check("RotaryPositionalEmbedding", &rope, &seqs, |m, x, _| {
        m.forward(x)
    });
}

#[test]
fn dropout_with_a_key_per_example() {
    let xs = normal(&[BATCH, 16], 4);
    let dropout = Dropout::new(0.4).unwrap();
    check("Dropout", &dropout, &xs, |m, x, k| m.forward(x, k));
    let seq = Sequential::new((
        Linear::new(16, 8, Key::new(5)).unwrap(),
        Dropout::new(0.3).unwrap(),
        Lambda::new(Activation::relu()),
    ));
    check("Sequential", &seq, &xs, |m, x, k| m.forward_with_key(x, k));
}

#[test]
fn embedding_and_shared() {
    let tokens = Array::from_vec(vec![0u32, 4, 2], &[BATCH]).unwrap();
    let embedding = Embedding::new(5, 3, Key::new(6)).unwrap();
    check("Embedding", &embedding, &tokens, |m, t, _| m.forward(t));
    let [k1, k2] = Key::new(7).split();
    let tied = Shared::new(
        (
            Embedding::new(5, 3, k1).unwrap(),
            Linear::new(3, 5, k2).unwrap(),
        ),
        |p| &mut p.1.weight,
        |p| p.0.weight.clone(),
    )
    .unwrap();
    check("Shared", &tied, &tokens, |m, t, _| {
        let (embedding, linear) = m.call()?;
        linear.forward(&embedding.forward(t)?)
    });
}

#[test]
fn attention_with_dropout_and_a_key_per_sequence() {
    let options = MultiheadAttentionOptions {
        dropout_p: 0.3,
        ..Default::default()
    };
    let attention = MultiheadAttention::with_options(2, 4, options, Key::new(8)).unwrap();
    let seqs = normal(&[BATCH, 5, 4], 9);
    check("MultiheadAttention", &attention, &seqs, |m, x, k| {
        let call = AttentionCall {
            dropout_key: Some(k),
            ..AttentionCall::default()
        };
        m.forward_with(x, x, x, call)
    });
    let causal =
        Array::from_vec((0..25).map(|i| u8::from(i % 5 <= i / 5)).collect(), &[5, 5]).unwrap();
    check("MultiheadAttention masked", &attention, &seqs, |m, x, k| {
        let call = AttentionCall {
            mask: Some(&causal),
            dropout_key: Some(k),
            inference: false,
        };
        m.forward_with(x, x, x, call)
    });
}
