//! One training step of the seed's tied language model (embedding tied to
//! the output layer, one hidden layer between), against Equinox + JAX.
//!
//! The step is value, gradient and SGD update, as in
//! `examples/language_model.rs`. Where `python3` with JAX and Equinox is
//! available, the same step under `eqx.filter_jit` is timed in this run by
//! `tools/reference/bench_train_step.py`, started once (it compiles
//! first) and asked for one round after each of solstice's, so the two
//! sides alternate round by round and see the same machine load. The last
//! line is `solstice/jax-jit time ratio: R`, of the median round times.
//!
//! Run with `cargo bench --bench train_step`.

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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

/// The JAX side, compiled and waiting for requests for rounds.
struct Jax {
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

impl Jax {
    /// Starts the script, if JAX can be run here, and waits until its step
    /// is compiled.
    fn start() -> Option<Jax> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/reference/bench_train_step.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let input = child.stdin.take()?;
        let output = BufReader::new(child.stdout.take()?).lines();
        let mut jax = Jax {
            child,
            input,
            output,
        };
        loop {
            match jax.output.next() {
                Some(Ok(line)) if line.trim() == "ready" => return Some(jax),
                Some(Ok(_)) => continue,
                _ => {
                    let _ = jax.child.wait();
                    return None;
                }
            }
        }
    }

    /// Times one round; the mean step time in microseconds.
    fn round(&mut self) -> Option<f64> {
        writeln!(self.input, "round").ok()?;
        self.input.flush().ok()?;
        for line in self.output.by_ref() {
            if let Some(v) = line.ok()?.strip_prefix("jax_jit_round_us ") {
                return v.trim().parse().ok();
            }
        }
        None
    }

    fn finish(self) {
        let Jax {
            mut child, input, ..
        } = self;
        drop(input);
        let _ = child.wait();
    }
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
    let mut jax = Jax::start();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..STEPS {
            (_, model) = step(&model)?;
        }
        ours.push(start.elapsed().as_secs_f64() / STEPS as f64 * 1e6);
        if let Some(side) = jax.as_mut() {
            match side.round() {
                Some(us) => theirs.push(us),
                None => jax = None,
            }
        }
    }
    let ours = median(ours);
    println!(
        "tied LM vocab {VOCAB}, dim {DIM}, sequence {SEQUENCE}: one SGD step, median of {ROUNDS} \
         rounds of {STEPS} steps, the sides alternating"
    );
    println!("solstice      {ours:>9.1} us");
    match jax {
        Some(side) if theirs.len() == ROUNDS => {
            side.finish();
            let theirs = median(theirs);
            println!("jax (jit)     {theirs:>9.1} us");
            println!("solstice/jax-jit time ratio: {:.3}", ours / theirs);
        }
        _ => println!("jax not available: run tools/reference/bench_train_step.py where it is"),
    }
    Ok(())
}
