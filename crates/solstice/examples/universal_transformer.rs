//! A Universal Transformer: one block applied `DEPTH` times, with the output
//! head tied to the token embedding. Both ties are one readable call:
//! `Shared::tie_to_first` ties every block of a list to block 0, and
//! `Shared::new` ties the head's weight to the embedding matrix.
//!
//! The program prints the model's ties (`tie_groups`, and `{:#?}`, which
//! shows at each placeholder where its value comes from), trains on a small
//! next-token task it makes itself, and checks that the ties still hold.
//!
//! Run with `cargo run --release --example universal_transformer`.

use solstice::nn::{
    Embedding, LayerNorm, Linear, Mlp, MultiheadAttention, MultiheadAttentionOptions, Shared,
};
use solstice::optim::Sgd;
use solstice::random::{self, Key};
use solstice::tree::{tie_groups, tree_check, tree_leaves};
use solstice::{Array, DType, Module, Result, apply_updates, filter_value_and_grad, one_hot, vmap};

const VOCAB: usize = 12;
const DIM: usize = 16;
const HEADS: usize = 2;
const DEPTH: usize = 3;
const SEQUENCE: usize = 16;
const STEPS: usize = 60;
const LEARNING_RATE: f64 = 0.1;

/// A pre-norm transformer block.
#[derive(Module)]
struct Block {
    ln1: LayerNorm,
    attention: MultiheadAttention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(key: Key) -> Result<Self> {
        let [k1, k2] = key.split();
        let options = MultiheadAttentionOptions {
            inference: true,
            ..MultiheadAttentionOptions::default()
        };
        Ok(Block {
            ln1: LayerNorm::new(&[DIM])?,
            attention: MultiheadAttention::with_options(HEADS, DIM, options, k1)?,
            ln2: LayerNorm::new(&[DIM])?,
            mlp: Mlp::new(DIM, DIM, 2 * DIM, 1, k2)?,
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let h = vmap(|v: &Array| self.ln1.forward(v))(x)?;
        let x = x.add(&self.attention.forward(&h, &h, &h)?)?;
        let h = vmap(|v: &Array| self.ln2.forward(v))(&x)?;
        x.add(&vmap(|v: &Array| self.mlp.forward(v))(&h)?)
    }
}

#[derive(Module)]
struct UniversalTransformer {
    /// The token embedding and the output head, whose weight is tied to it.
    embed: Shared<(Embedding, Linear)>,
    /// `DEPTH` blocks, every one tied to block 0: one block's parameters.
    blocks: Shared<Vec<Block>>,
}

impl UniversalTransformer {
    fn new(key: Key) -> Result<Self> {
        let [k1, k2, k3] = key.split();
        let embedding = Embedding::new(VOCAB, DIM, k1)?;
        let head = Linear::no_bias(DIM, VOCAB, k2)?;
        let embed = Shared::new(
            (embedding, head),
            |p| &mut p.1.weight,
            |p| p.0.weight.clone(),
        )?;
        let blocks = k3
            .split_n(DEPTH)
            .into_iter()
            .map(Block::new)
            .collect::<Result<Vec<_>>>()?;
        let blocks = Shared::tie_to_first(blocks)?;
        Ok(Self { embed, blocks })
    }

    fn forward(&self, tokens: &Array) -> Result<Array> {
        let (embedding, head) = self.embed.call()?;
        let mut h = vmap(|t: &Array| embedding.forward(t))(tokens)?;
        for block in &self.blocks.call()? {
            h = block.forward(&h)?;
        }
        vmap(|v: &Array| head.forward(v))(&h)
    }
}

fn loss(model: &UniversalTransformer, (tokens, targets): &(Array, Array)) -> Result<Array> {
    let logits = model.forward(tokens)?;
    let onehot = one_hot(targets, VOCAB, logits.dtype())?;
    logits
        .log_softmax(-1)?
        .mul(&onehot)?
        .sum(&[-1])?
        .mean_all()?
        .neg()
}

/// Each token is followed by `(3 t + 1) mod VOCAB`.
fn batch(key: Key) -> Result<(Array, Array)> {
    let u = random::uniform(key, &[SEQUENCE], DType::F32, 0.0, VOCAB as f64)?.to_vec::<f32>()?;
    let tokens: Vec<u32> = u
        .iter()
        .map(|&x| (x as u32).min(VOCAB as u32 - 1))
        .collect();
    let targets: Vec<u32> = tokens.iter().map(|&t| (3 * t + 1) % VOCAB as u32).collect();
    Ok((
        Array::from_vec(tokens, &[SEQUENCE])?,
        Array::from_vec(targets, &[SEQUENCE])?,
    ))
}

fn main() -> Result<()> {
    let [model_key, mut data_key] = Key::new(0).split();
    let mut model = UniversalTransformer::new(model_key)?;

    println!("The ties:");
    for group in tie_groups(&model)? {
        println!("{group}");
    }
    println!("\nThe model, each placeholder showing where it comes from:\n{model:#?}\n");

    let value_and_grad = filter_value_and_grad(loss);
    let sgd = Sgd::new(LEARNING_RATE);
    let mut first = None;
    let mut last = 0.0;
    for step in 0..STEPS {
        let [k, next] = data_key.split();
        data_key = next;
        let (value, grads) = value_and_grad(&model, &batch(k)?)?;
        model = apply_updates(&model, &sgd.update(&grads)?)?;
        last = value.to_scalar::<f32>()?;
        first.get_or_insert(last);
        if step % 10 == 0 || step == STEPS - 1 {
            println!("step {step:3}  loss {last:.4}");
        }
    }
    let first = first.unwrap_or(last);
    assert!(last < first, "the loss falls: {first} -> {last}");

    // The ties hold after training: every block is block 0, the head's
    // weight is the embedding matrix, and each is held once.
    tree_check(&model)?;
    let blocks = model.blocks.call()?;
    assert!(
        blocks
            .iter()
            .all(|b| b.mlp.layers[0].weight.is(&blocks[0].mlp.layers[0].weight))
    );
    let (embedding, head) = model.embed.call()?;
    assert!(embedding.weight.is(&head.weight));
    let one_block = tree_leaves(&blocks[0]).len();
    assert_eq!(tree_leaves(&model).len(), 1 + one_block);
    println!(
        "\n{} leaves: the embedding matrix and one block's {one_block}, used {DEPTH} times",
        1 + one_block
    );
    Ok(())
}
