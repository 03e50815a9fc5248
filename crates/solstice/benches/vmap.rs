//! `vmap` against the same model written with explicit batch dimensions.
//!
//! A two-layer perceptron (Linear, tanh, Linear) on a batch: once as
//! `vmap(|x| model.forward(x))`, once as matrix products over the batch
//! written by hand. Both run in this process, interleaved, and the median
//! times are compared. The last line is `vmap/batched time ratio: R`.
//!
//! Run with `cargo bench --bench vmap`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use solstice::nn::Linear;
use solstice::random::{self, Key};
use solstice::{Array, DType, Module, Result, vmap};

#[derive(Module)]
struct Mlp {
    first: Linear,
    second: Linear,
}

impl Mlp {
    /// One example: `[in] -> [out]`.
    fn forward(&self, x: &Array) -> Result<Array> {
        self.second.forward(&self.first.forward(x)?.tanh()?)
    }

    /// A batch written by hand: `[batch, in] -> [batch, out]`.
    fn forward_batch(&self, xs: &Array) -> Result<Array> {
        let dense = |l: &Linear, x: &Array| -> Result<Array> {
            x.matmul(&l.weight.t()?)?
                .add(l.bias.as_ref().expect("layers have biases"))
        };
        dense(&self.second, &dense(&self.first, xs)?.tanh()?)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<()> {
    let (batch, width, hidden) = (256, 256, 1024);
    let [k1, k2, k3] = Key::new(0).split();
    let model = Mlp {
        first: Linear::new(width, hidden, k1)?,
        second: Linear::new(hidden, width, k2)?,
    };
    let xs = random::normal(k3, &[batch, width], DType::F32)?;

    // Same numbers both ways.
    let a = vmap(|x: &Array| model.forward(x))(&xs)?.to_vec::<f32>()?;
    let b = model.forward_batch(&xs)?.to_vec::<f32>()?;
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-4,
        "vmap and the batched model disagree by {worst}"
    );

    let rounds = 60;
    let (mut mapped, mut explicit) = (Vec::new(), Vec::new());
    for round in 0..rounds + 5 {
        let start = Instant::now();
        black_box(vmap(|x: &Array| model.forward(x))(&xs)?);
        let t_vmap = start.elapsed();
        let start = Instant::now();
        black_box(model.forward_batch(&xs)?);
        let t_batched = start.elapsed();
        // The first rounds warm caches and thread pools.
        if round >= 5 {
            mapped.push(t_vmap);
            explicit.push(t_batched);
        }
    }
    let (m, e) = (median(mapped), median(explicit));
    println!("mlp {width}->{hidden}->{width}, batch {batch}, median of {rounds} rounds");
    println!("vmap    {m:>10.2?}");
    println!("batched {e:>10.2?}");
    println!(
        "vmap/batched time ratio: {:.3}",
        m.as_secs_f64() / e.as_secs_f64()
    );
    Ok(())
}
