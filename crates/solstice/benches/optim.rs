//! One AdamW update of a 2.66 M-parameter tree against optax's, jitted.
//!
//! The tree has the shapes of a small GPT (an embedding and three blocks of
//! attention and MLP weights, biases and layer norms). Where `python3` with
//! JAX and optax is available, `tools/reference/bench_optim.py` times
//! `jax.jit(optax.adamw(3e-4).update)` on the same shapes in this run, and
//! the last line is `solstice/optax time ratio: R`.
//!
//! Run with `cargo bench --bench optim`.

use std::process::Command;
use std::time::Instant;

use solstice::optim::{self, GradientTransformation};
use solstice::random::{self, Key};
use solstice::{Array, DType, Result};

const VOCAB: usize = 1130;
const DIM: usize = 256;
const BLOCKS: usize = 3;
const ROUNDS: usize = 7;
const STEPS: usize = 3;

fn shapes() -> Vec<Vec<usize>> {
    let mut out = vec![vec![VOCAB, DIM]];
    for _ in 0..BLOCKS {
        for s in [
            vec![DIM],
            vec![DIM],
            vec![3 * DIM, DIM],
            vec![3 * DIM],
            vec![DIM, DIM],
            vec![DIM],
            vec![DIM],
            vec![DIM],
            vec![4 * DIM, DIM],
            vec![4 * DIM],
            vec![DIM, 4 * DIM],
            vec![DIM],
        ] {
            out.push(s);
        }
    }
    out.push(vec![DIM]);
    out.push(vec![DIM]);
    out
}

fn tree(seed: u64) -> Result<Vec<Array>> {
    let shapes = shapes();
    let keys = Key::new(seed).split_n(shapes.len());
    shapes
        .iter()
        .zip(keys)
        .map(|(s, k)| random::normal(k, s, DType::F32))
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// optax's jitted update time in microseconds, if it can be run here.
fn optax_update_us() -> Option<f64> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/reference/bench_optim.py"
    );
    let out = Command::new("python3").arg(script).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("optax_jit_update_us "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() -> Result<()> {
    let (params, grads) = (tree(0)?, tree(1)?);
    let n: usize = params.iter().map(Array::elem_count).sum();
    let opt = optim::adamw(3e-4);
    let mut state = opt.init(&params)?;
    (_, state) = opt.update(&grads, &state, Some(&params))?;
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..STEPS {
            (_, state) = opt.update(&grads, &state, Some(&params))?;
        }
        times.push(start.elapsed().as_secs_f64() / STEPS as f64 * 1e6);
    }
    let ours = median(times);
    println!(
        "adamw(3e-4) update of {n} parameters in {} leaves, median of {ROUNDS} rounds",
        params.len()
    );
    println!("solstice      {ours:>10.1} us");
    match optax_update_us() {
        Some(theirs) => {
            println!("optax (jit)   {theirs:>10.1} us");
            println!("solstice/optax time ratio: {:.3}", ours / theirs);
        }
        None => println!("optax not available: run tools/reference/bench_optim.py where it is"),
    }
    Ok(())
}
