//! The seed's language model: an embedding matrix reused, tied, as the
//! output layer's weight, with one hidden layer between them. It learns a small next-token task it makes itself,
//! prints the loss as it falls, and checks afterwards that the two layers
//! still share one parameter, held once among the model's leaves.
//!
//! Run with `cargo run --release --example language_model`.

use solstice::nn::{Embedding, Linear, Shared};
use solstice::optim::Sgd;
use solstice::random::{self, Key};
use solstice::tree::tree_leaves;
use solstice::{Array, DType, Module, Result, apply_updates, filter_value_and_grad, one_hot, vmap};

const VOCAB: usize = 16;
const DIM: usize = 32;
const SEQUENCE: usize = 64;
const STEPS: usize = 300;
const LEARNING_RATE: f64 = 0.05;

#[derive(Module)]
struct LanguageModel {
    shared: Shared<(Embedding, Linear)>,
    hidden: Linear,
}

impl LanguageModel {
    fn new(key: Key) -> Result<Self> {
        let [k1, k2, k3] = key.split();
        let embedding = Embedding::new(VOCAB, DIM, k1)?;
        let linear = Linear::new(DIM, VOCAB, k2)?;
        // These two weights are now tied together.
        let shared = Shared::new(
            (embedding, linear),
            |p| &mut p.1.weight,
            |p| p.0.weight.clone(),
        )?;
        let hidden = Linear::new(DIM, DIM, k3)?;
        Ok(Self { shared, hidden })
    }

    /// Next-token logits for every position of `tokens`.
    fn forward(&self, tokens: &Array) -> Result<Array> {
        let (embedding, linear) = self.shared.call()?;
        assert!(embedding.weight.is(&linear.weight)); // same parameter
        let values = vmap(|t: &Array| embedding.forward(t))(tokens)?;
        let values = vmap(|v: &Array| self.hidden.forward(v)?.tanh())(&values)?;
        vmap(|v: &Array| linear.forward(v))(&values)
    }
}

/// Mean cross-entropy of `logits` against integer `targets`.
fn cross_entropy(logits: &Array, targets: &Array) -> Result<Array> {
    let onehot = one_hot(targets, VOCAB, logits.dtype())?;
    logits
        .log_softmax(-1)?
        .mul(&onehot)?
        .sum(&[-1])?
        .mean_all()?
        .neg()
}

/// The task: each token is followed by `(5 t + 3) mod VOCAB`. Inputs are
/// random tokens; targets are their successors.
fn batch(key: Key) -> Result<(Array, Array)> {
    let u = random::uniform(key, &[SEQUENCE], DType::F32, 0.0, VOCAB as f64)?.to_vec::<f32>()?;
    let tokens: Vec<u32> = u
        .iter()
        .map(|&x| (x as u32).min(VOCAB as u32 - 1))
        .collect();
    let targets: Vec<u32> = tokens.iter().map(|&t| (5 * t + 3) % VOCAB as u32).collect();
    Ok((
        Array::from_vec(tokens, &[SEQUENCE])?,
        Array::from_vec(targets, &[SEQUENCE])?,
    ))
}

fn main() -> Result<()> {
    let [model_key, mut data_key] = Key::new(0).split();
    let mut model = LanguageModel::new(model_key)?;
    println!("{model:?}");
    let optimiser = Sgd::new(LEARNING_RATE);
    let loss_fn = |m: &LanguageModel, (x, y): &(Array, Array)| cross_entropy(&m.forward(x)?, y);
    let value_and_grad = filter_value_and_grad(loss_fn);

    let start = std::time::Instant::now();
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for step in 0..STEPS {
        let [next, this] = data_key.split();
        data_key = next;
        let data = batch(this)?;
        let (loss, grads) = value_and_grad(&model, &data)?;
        let updates = optimiser.update(&grads)?;
        model = apply_updates(&model, &updates)?;
        last_loss = loss.to_scalar::<f32>()?;
        first_loss.get_or_insert(last_loss);
        if step % 25 == 0 || step + 1 == STEPS {
            println!("step {step:>4}  loss {last_loss:.4}");
        }
    }
    let first_loss = first_loss.unwrap_or(last_loss);
    println!(
        "trained {STEPS} steps in {:.2?}: loss {first_loss:.4} -> {last_loss:.4}",
        start.elapsed()
    );

    // After training the two layers still share one parameter...
    let (embedding, linear) = model.shared.call()?;
    assert!(embedding.weight.is(&linear.weight));
    // ...and the model's leaves hold the tied matrix exactly once.
    let leaves = tree_leaves(&model);
    let tied = leaves.iter().filter(|l| l.shape() == [VOCAB, DIM]).count();
    assert_eq!(tied, 1, "the tied matrix is one leaf");
    assert_eq!(
        leaves.len(),
        4,
        "embedding.weight, linear.bias, hidden.weight, hidden.bias"
    );
    assert!(last_loss < 0.1 * first_loss, "the loss fell");
    println!(
        "tied: embedding.weight is linear.weight; {} leaves, the tied matrix once",
        leaves.len()
    );
    Ok(())
}
