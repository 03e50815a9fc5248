//! One AdamW training step of a small GPT, solstice eager against Equinox
//! `eqx.filter_jit` (and PyTorch eager where `torch` is importable), in the
//! same run.
//!
//! The model: vocabulary 4096, width 256, sequence 128, 2 pre-LayerNorm
//! blocks with 4-head causal attention and a GELU MLP, batch 16; the token
//! embedding is tied to the output layer through `Shared`; `optim::adamw`. About 2.66 M
//! parameters and 34 GFLOP per step. The Equinox side is
//! `tools/reference/bench_gpt_step.py`, built from the same keys, so both
//! start from the same loss, which is checked.
//!
//! Each side runs in its own process (this binary re-runs itself for the
//! solstice side), so each process's peak RSS is its own. The sides
//! alternate for `GPT_STEP_ROUNDS` rounds (default 2) of `GPT_STEP_STEPS`
//! steps (default 8), and the median step times are compared. The last lines
//! are `solstice/equinox-jit time ratio: R` and
//! `solstice/equinox peak RSS ratio: M`.
//!
//! Run with `cargo bench --bench gpt_step`.

use std::process::Command;
use std::time::Instant;

use solstice::nn::activation::gelu_tanh;
use solstice::nn::{AttentionCall, Embedding, LayerNorm, Linear, MultiheadAttention, Shared};
use solstice::optim::{self, GradientTransformation};
use solstice::random::Key;
use solstice::{Array, DType, Module, Result, apply_updates, filter_value_and_grad, vmap};

const VOCAB: usize = 4096;
const DIM: usize = 256;
const SEQ: usize = 128;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const BATCH: usize = 16;
const LR: f64 = 1e-3;
const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;
const WD: f64 = 1e-4;

#[derive(Module)]
struct Block {
    ln1: LayerNorm,
    attn: MultiheadAttention,
    ln2: LayerNorm,
    fc: Linear,
    proj: Linear,
}

impl Block {
    fn new(key: Key) -> Result<Self> {
        let [ka, kf, kp] = key.split();
        Ok(Block {
            ln1: LayerNorm::new(&[DIM])?,
            attn: MultiheadAttention::new(HEADS, DIM, ka)?,
            ln2: LayerNorm::new(&[DIM])?,
            fc: Linear::new(DIM, 4 * DIM, kf)?,
            proj: Linear::new(4 * DIM, DIM, kp)?,
        })
    }

    fn forward(&self, x: &Array, mask: &Array) -> Result<Array> {
        let h = vmap(|v: &Array| self.ln1.forward(v))(x)?;
        let masked = AttentionCall {
            mask: Some(mask),
            ..AttentionCall::default()
        };
        let x = x.add(&self.attn.forward_with(&h, &h, &h, masked)?)?;
        let h = vmap(|v: &Array| self.ln2.forward(v))(&x)?;
        let mlp = vmap(|v: &Array| self.proj.forward(&gelu_tanh(&self.fc.forward(v)?)?))(&h)?;
        x.add(&mlp)
    }
}

#[derive(Module)]
struct Gpt {
    shared: Shared<(Embedding, Linear)>,
    pos: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt {
    fn new(key: Key) -> Result<Self> {
        let keys = key.split_n(3 + LAYERS);
        let tok = Embedding::new(VOCAB, DIM, keys[0].clone())?;
        let head = Linear::new(DIM, VOCAB, keys[1].clone())?;
        let shared = Shared::new((tok, head), |p| &mut p.1.weight, |p| p.0.weight.clone())?;
        let pos = Embedding::new(SEQ, DIM, keys[2].clone())?;
        let blocks = keys[3..]
            .iter()
            .map(|k| Block::new(k.clone()))
            .collect::<Result<_>>()?;
        Ok(Gpt {
            shared,
            pos,
            blocks,
            ln_f: LayerNorm::new(&[DIM])?,
        })
    }

    /// Logits `[SEQ, VOCAB]` of one sequence of tokens.
    fn forward(&self, tokens: &Array, mask: &Array) -> Result<Array> {
        let (tok, head) = self.shared.call()?;
        let mut x = vmap(|t: &Array| tok.forward(t))(tokens)?.add(&self.pos.weight)?;
        for block in &self.blocks {
            x = block.forward(&x, mask)?;
        }
        let x = vmap(|v: &Array| self.ln_f.forward(v))(&x)?;
        vmap(|v: &Array| head.forward(v))(&x)
    }
}

/// The batch: tokens, the next tokens, and the causal mask.
struct Data {
    tokens: Array,
    targets: Array,
    mask: Array,
}

fn data() -> Result<Data> {
    let token = |b: usize, t: usize| ((131 * b + 17 * t) % VOCAB) as i32;
    let mut tokens = Vec::new();
    let mut targets = Vec::new();
    for b in 0..BATCH {
        for t in 0..SEQ {
            tokens.push(token(b, t));
            targets.push(token(b, t + 1));
        }
    }
    let mask: Vec<u8> = (0..SEQ * SEQ)
        .map(|i| u8::from(i % SEQ <= i / SEQ))
        .collect();
    Ok(Data {
        tokens: Array::from_vec(tokens, &[BATCH, SEQ])?,
        targets: Array::from_vec(targets, &[BATCH, SEQ])?,
        mask: Array::from_vec(mask, &[SEQ, SEQ])?,
    })
}

/// Mean cross-entropy of the next tokens.
fn loss(model: &Gpt, data: &Data) -> Result<Array> {
    let logits = vmap(|t: &Array| model.forward(t, &data.mask))(&data.tokens)?;
    logits.softmax_cross_entropy(&data.targets)?.mean_all()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Peak resident set size of this process in kB, from `/proc`.
fn peak_rss_kb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The solstice side, in a child process: the same lines as the Python side.
fn run_solstice(steps: usize) -> Result<()> {
    let data = data()?;
    let mut model = Gpt::new(Key::new(0))?;
    let optim = optim::adamw(LR).b1(B1).b2(B2).eps(EPS).weight_decay(WD);
    let mut state = optim.init(&model)?;
    let value_and_grad = filter_value_and_grad(loss);
    let mut step = |model: &Gpt| -> Result<(Array, Gpt)> {
        let (value, grads) = value_and_grad(model, &data)?;
        let (updates, next) = optim.update(&grads, &state, Some(model))?;
        state = next;
        Ok((value, apply_updates(model, &updates)?))
    };
    let (value, next) = step(&model)?;
    model = next;
    println!("initial_loss {:.6}", value.to_scalar::<f32>()?);
    let mut last = value;
    for _ in 0..steps {
        let start = Instant::now();
        let (value, next) = step(&model)?;
        value.to_scalar::<f32>()?;
        model = next;
        println!("step_ms {:.3}", start.elapsed().as_secs_f64() * 1e3);
        last = value;
    }
    println!("final_loss {:.6}", last.to_scalar::<f32>()?);
    if let Some(kb) = peak_rss_kb() {
        println!("peak_rss_kb {kb}");
    }
    Ok(())
}

/// What one side printed.
#[derive(Default)]
struct Side {
    loss: Option<f64>,
    final_loss: Option<f64>,
    steps_ms: Vec<f64>,
    peak_rss_kb: Option<f64>,
}

fn parse(text: &str, side: &mut Side) {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        match key {
            "initial_loss" => side.loss = Some(value),
            "final_loss" => side.final_loss = Some(value),
            "step_ms" => side.steps_ms.push(value),
            "peak_rss_kb" => {
                side.peak_rss_kb = Some(side.peak_rss_kb.unwrap_or(0.0).max(value));
            }
            _ => {}
        }
    }
}

fn run_child(command: &mut Command, side: &mut Side, name: &str) -> bool {
    match command.output() {
        Ok(out) if out.status.success() => {
            parse(&String::from_utf8_lossy(&out.stdout), side);
            true
        }
        Ok(out) => {
            eprintln!(
                "{name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            false
        }
        Err(e) => {
            eprintln!("{name} could not start: {e}");
            false
        }
    }
}

/// Multiply-adds of one step, times two: three matmul passes (forward,
/// two backward) over every projection and the attention products.
fn step_flops() -> f64 {
    let tokens = (BATCH * SEQ) as f64;
    let (d, v, t) = (DIM as f64, VOCAB as f64, SEQ as f64);
    let per_token = LAYERS as f64 * (4.0 * d * d + 8.0 * d * d + 2.0 * t * d) + d * v;
    3.0 * 2.0 * tokens * per_token
}

/// The best f32 matmul rate here, in GFLOP/s, on 1024-square matrices.
fn matmul_peak() -> Result<f64> {
    let n = 1024;
    let a = solstice::random::normal(Key::new(1), &[n, n], DType::F32)?;
    let b = solstice::random::normal(Key::new(2), &[n, n], DType::F32)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        a.matmul(&b)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let steps = env_usize("GPT_STEP_STEPS", 8);
    if std::env::var_os("GPT_STEP_CHILD").is_some() {
        return run_solstice(steps);
    }
    let rounds = env_usize("GPT_STEP_ROUNDS", 2);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/reference/bench_gpt_step.py"
    );
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let (mut ours, mut jax, mut torch) = (Side::default(), Side::default(), Side::default());
    let mut has_jax = true;
    let has_torch = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    for _ in 0..rounds {
        let mut child = Command::new(&exe);
        child
            .env("GPT_STEP_CHILD", "1")
            .env("GPT_STEP_STEPS", steps.to_string());
        if !run_child(&mut child, &mut ours, "solstice") {
            eprintln!("the solstice side failed");
            std::process::exit(1);
        }
        if has_jax {
            let mut py = Command::new("python3");
            py.arg(script).arg(steps.to_string());
            has_jax = run_child(&mut py, &mut jax, "equinox");
        }
        if has_torch {
            let mut py = Command::new("python3");
            py.arg(script).arg(steps.to_string()).arg("--torch");
            run_child(&mut py, &mut torch, "torch");
        }
    }
    let flops = step_flops();
    let peak = matmul_peak()?;
    println!(
        "GPT V={VOCAB} d={DIM} T={SEQ} layers={LAYERS} heads={HEADS} batch={BATCH}, AdamW: \
         {rounds} rounds x {steps} steps per side, {:.1} GFLOP per step",
        flops / 1e9
    );
    println!("f32 matmul peak (1024^3): {peak:.0} GFLOP/s");
    let report = |name: &str, side: &Side| {
        let ms = median(side.steps_ms.clone());
        println!(
            "{name:<16} {ms:>8.1} ms/step  {:>6.1} GFLOP/s ({:.0}% of peak)  peak RSS {:.0} MB",
            flops / ms / 1e6,
            flops / ms / 1e6 / peak * 100.0,
            side.peak_rss_kb.unwrap_or(f64::NAN) / 1024.0
        );
        ms
    };
    let ours_ms = report("solstice eager", &ours);
    if has_torch && !torch.steps_ms.is_empty() {
        report("pytorch eager", &torch);
    }
    if !has_jax || jax.steps_ms.is_empty() {
        println!("equinox not available: run tools/reference/bench_gpt_step.py where it is");
        return Ok(());
    }
    let jax_ms = report("equinox jit", &jax);
    if let (Some(a), Some(b)) = (ours.loss, jax.loss) {
        let same = (a - b).abs() <= 1e-4 * b.abs();
        println!(
            "initial loss: solstice {a:.4}, equinox {b:.4} ({})",
            if same { "same model" } else { "DIFFERENT" }
        );
    }
    if let (Some(a), Some(b)) = (ours.final_loss, jax.final_loss) {
        println!(
            "loss after {} AdamW steps: solstice {a:.4}, equinox {b:.4}",
            steps + 1
        );
    }
    println!("solstice/equinox-jit time ratio: {:.3}", ours_ms / jax_ms);
    if let (Some(a), Some(b)) = (ours.peak_rss_kb, jax.peak_rss_kb) {
        println!("solstice/equinox peak RSS ratio: {:.3}", a / b);
    }
    Ok(())
}
