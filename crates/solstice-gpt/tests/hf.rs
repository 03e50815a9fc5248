//! End-to-end tests of `import-hf` and `export-hf` on the tiny GPT-2 that
//! `tools/reference/hf_gpt2_ref.py` made with `transformers`: the imported
//! run samples transformers' greedy tokens, trains further, and exports
//! back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-gpt2")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("solstice-gpt-hf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solstice-gpt"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "solstice-gpt {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "solstice-gpt {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// transformers' prompt and greedy continuation from `reference.json`.
fn reference() -> (String, Vec<u32>) {
    let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let greedy = v["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    (v["prompt"].as_str().unwrap().to_string(), greedy)
}

fn greedy_ids(run_dir: &str, prompt: &str, count: usize) -> Vec<u32> {
    let count = count.to_string();
    let out = ok(&[
        "sample",
        "--run",
        run_dir,
        "--prompt",
        prompt,
        "--tokens",
        &count,
        "--temperature",
        "0",
        "--ids",
    ]);
    out.split_whitespace().map(|t| t.parse().unwrap()).collect()
}

#[test]
fn an_imported_gpt2_samples_trains_and_exports() {
    let dir = scratch("e2e");
    let run_dir = dir.join("run");
    let run_s = run_dir.to_str().unwrap();
    let fixture = fixture();
    let out = ok(&["import-hf", fixture.to_str().unwrap(), "--out", run_s]);
    assert!(out.contains("head tied to the embedding"), "{out}");

    // Greedy sampling through the key/value cache gives transformers'
    // `generate(do_sample=False)` tokens.
    let (prompt, expected) = reference();
    assert_eq!(greedy_ids(run_s, &prompt, expected.len()), expected);

    // It trains further from step 0 and keeps its shapes.
    let out = ok(&[
        "train",
        "--resume",
        run_s,
        "--steps",
        "2",
        "--warmup-steps",
        "1",
        "--learning-rate",
        "0.02",
        "--batch-size",
        "2",
        "--eval-every",
        "2",
        "--eval-batches",
        "1",
        "--sample-tokens",
        "4",
    ]);
    assert!(out.contains("resuming at step 0 of 2"), "{out}");
    assert_ne!(greedy_ids(run_s, &prompt, expected.len()), expected);

    // Exported, it imports again and samples the trained model's tokens.
    let export = dir.join("export");
    let export_s = export.to_str().unwrap();
    let out = ok(&["export-hf", run_s, "--out", export_s]);
    assert!(out.contains("tied: lm_head.weight left out"), "{out}");
    let err = fails(&["export-hf", run_s, "--out", export_s]);
    assert!(err.contains("--overwrite"), "{err}");
    let again = dir.join("again");
    ok(&["import-hf", export_s, "--out", again.to_str().unwrap()]);
    assert_eq!(
        greedy_ids(again.to_str().unwrap(), &prompt, 8),
        greedy_ids(run_s, &prompt, 8)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_and_export_refuse_bad_input() {
    let dir = scratch("bad");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();

    let err = fails(&[
        "import-hf",
        dir.join("nowhere").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert!(
        err.contains("nowhere") && err.contains("does not exist"),
        "{err}"
    );

    // A weights file without its config.json beside it.
    let lone = dir.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(
        fixture().join("model.safetensors"),
        lone.join("model.safetensors"),
    )
    .unwrap();
    let err = fails(&[
        "import-hf",
        lone.join("model.safetensors").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert!(err.contains("needs the model's config.json"), "{err}");

    // A run is not replaced unless asked.
    let fixture = fixture();
    ok(&["import-hf", fixture.to_str().unwrap(), "--out", out_s]);
    let err = fails(&["import-hf", fixture.to_str().unwrap(), "--out", out_s]);
    assert!(
        err.contains("already holds a run") && err.contains("--overwrite"),
        "{err}"
    );
    ok(&[
        "import-hf",
        fixture.to_str().unwrap(),
        "--out",
        out_s,
        "--overwrite",
    ]);

    // Rotary positions have no GPT-2 layout.
    let rotary = dir.join("rotary");
    ok(&[
        "train",
        "--out",
        rotary.to_str().unwrap(),
        "--positions",
        "rotary",
        "--steps",
        "2",
        "--warmup-steps",
        "1",
        "--layers",
        "1",
        "--dim",
        "8",
        "--heads",
        "2",
        "--context",
        "8",
        "--batch-size",
        "2",
        "--eval-batches",
        "1",
        "--sample-tokens",
        "2",
    ]);
    let err = fails(&[
        "export-hf",
        rotary.to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert!(err.contains("rotary positions"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
