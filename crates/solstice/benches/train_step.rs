//! One training step of the seed's tied language model (embedding tied to
//! the output layer, one hidden layer between), against Equinox + JAX.
//!
//! The step is value, gradient and SGD update, as in
//! `examples/language_model.rs`. Where `python3` with JAX and Equinox is
//! available, the same step under `eqx.filter_jit` is timed in this run by
//! `tools/reference/bench_train_step.py`, and the last line is
//! `solstice/jax-jit time ratio: R`.
//!
//! Run with `cargo bench --bench train_step`.

use std::process::Command;
use std::time::Instant;

use solstice::nn::{Embedding, Linear, Shared};
use solstice::random::Key;
use solstice::{
    Array, Module, Result, apply_updates, filter_value_and_grad, one_hot, tree_scale, vmap,
};

const VOCAB: usize = 16;
const DIM: usize = 32;
const SEQUENCE: usize = 64;
const ROUNDS: usize = 15;
const STEPS: usize = 50;

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
        let shared = Shared::new(
            (embedding, linear),
            |p| &mut p.1.weight,
            |p| p.0.weight.clone(),
        )?;
        let hidden = Linear::new(DIM, DIM, k3)?;
        Ok(Self { shared, hidden })
    }

    fn forward(&self, tokens: &Array) -> Result<Array> {
        let (embedding, linear) = self.shared.call()?;
        let values = vmap(|t: &Array| embedding.forward(t))(tokens)?;
        let values = vmap(|v: &Array| self.hidden.forward(v)?.tanh())(&values)?;
        vmap(|v: &Array| linear.forward(v))(&values)
    }
}

fn loss(model: &LanguageModel, (x, y): &(Array, Array)) -> Result<Array> {
    let logp = model.forward(x)?.log_softmax(-1)?;
    logp.mul(&one_hot(y, VOCAB, logp.dtype())?)?
        .sum(&[-1])?
        .mean_all()?
        .neg()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The JAX step time in microseconds, if JAX can be run here.
fn jax_step_us() -> Option<f64> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/reference/bench_train_step.py"
    );
    let out = Command::new("python3").arg(script).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("jax_jit_step_us "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() -> Result<()> {
    let mut model = LanguageModel::new(Key::new(0))?;
    let tokens: Vec<i32> = (0..SEQUENCE as i32).map(|i| i % VOCAB as i32).collect();
    let targets: Vec<i32> = tokens.iter().map(|t| (5 * t + 3) % VOCAB as i32).collect();
    let data = (
        Array::from_vec(tokens, &[SEQUENCE])?,
        Array::from_vec(targets, &[SEQUENCE])?,
    );
    let value_and_grad = filter_value_and_grad(loss);
    let step = |model: &LanguageModel| -> Result<(Array, LanguageModel)> {
        let (value, grads) = value_and_grad(model, &data)?;
        Ok((value, apply_updates(model, &tree_scale(&grads, -0.05)?)?))
    };
    (_, model) = step(&model)?;
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..STEPS {
            (_, model) = step(&model)?;
        }
        times.push(start.elapsed().as_secs_f64() / STEPS as f64 * 1e6);
    }
    let ours = median(times);
    println!(
        "tied LM vocab {VOCAB}, dim {DIM}, sequence {SEQUENCE}: one SGD step, median of {ROUNDS} rounds"
    );
    println!("solstice      {ours:>9.1} us");
    match jax_step_us() {
        Some(jax) => {
            println!("jax (jit)     {jax:>9.1} us");
            println!("solstice/jax-jit time ratio: {:.3}", ours / jax);
        }
        None => println!("jax not available: run tools/reference/bench_train_step.py where it is"),
    }
    Ok(())
}
