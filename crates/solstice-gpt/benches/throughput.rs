//! Training and sampling throughput of `solstice-gpt` on its default
//! configuration, measured by running the binary as a user would.
//!
//! Run with `cargo bench -p solstice-gpt`. It trains the default model for
//! `STEPS` steps (the validation and samples at the end included in the
//! wall time but not in the training rate, which the trainer measures over
//! its steps), then samples `TOKENS` tokens from it, and ends with
//!
//! ```text
//! training: T tokens/s; sampling: S tokens/s
//! ```

use std::process::Command;

const STEPS: &str = "40";
const TOKENS: &str = "400";

fn main() {
    let dir = std::env::temp_dir().join(format!("solstice-gpt-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_solstice-gpt");
    let out = Command::new(bin)
        .args(["train", "--out", dir.to_str().unwrap(), "--steps", STEPS])
        .args([
            "--eval-every",
            STEPS,
            "--warmup-steps",
            "5",
            "--time-limit",
            "0",
        ])
        .output()
        .expect("runs solstice-gpt train");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "train failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let train_rate = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("step") && l.contains("tok/s"))
        .and_then(|l| number_before(l, "tok/s"))
        .expect("a step line with tok/s");
    let out = Command::new(bin)
        .args(["sample", "--run", dir.to_str().unwrap(), "--tokens", TOKENS])
        .output()
        .expect("runs solstice-gpt sample");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sample failed: {stderr}");
    let sample_rate = number_before(&stderr, "tokens/s").expect("a tokens/s line");
    let _ = std::fs::remove_dir_all(&dir);
    println!("training: {train_rate:.0} tokens/s; sampling: {sample_rate:.1} tokens/s");
}

/// The number just before `unit` in `text`.
fn number_before(text: &str, unit: &str) -> Option<f64> {
    let head = &text[..text.find(unit)?];
    head.split_whitespace()
        .last()?
        .trim_end_matches(':')
        .parse()
        .ok()
}
