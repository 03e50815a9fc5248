//! End-to-end tests: they drive the `solstice-gpt` binary on a tiny model,
//! as a user would, and read the run directory it leaves.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A model and run small enough to train in well under a second.
const TINY: &[(&str, &str)] = &[
    ("--steps", "6"),
    ("--warmup-steps", "2"),
    ("--layers", "1"),
    ("--dim", "16"),
    ("--heads", "2"),
    ("--context", "16"),
    ("--batch-size", "4"),
    ("--eval-every", "3"),
    ("--eval-batches", "2"),
    ("--checkpoint-every", "3"),
    ("--sample-tokens", "8"),
];

/// `train --out dir` with the tiny settings, `changes` replacing or adding
/// flags (a flag with an empty value is dropped).
fn train_args(dir: &Path, changes: &[(&str, &str)]) -> Vec<String> {
    let mut args = vec![
        "train".to_string(),
        "--out".into(),
        dir.display().to_string(),
    ];
    let mut pairs: Vec<(&str, &str)> = TINY.to_vec();
    for &(flag, value) in changes {
        match pairs.iter_mut().find(|(f, _)| *f == flag) {
            Some(pair) => pair.1 = value,
            None => pairs.push((flag, value)),
        }
    }
    for (flag, value) in pairs {
        if !value.is_empty() {
            args.push(flag.into());
            args.push(value.into());
        }
    }
    args
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_solstice-gpt"))
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("solstice-gpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
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

/// The error message of a command that must fail.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "solstice-gpt {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn train(dir: &Path, changes: &[(&str, &str)]) -> String {
    let args = train_args(dir, changes);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The metrics without the timing column.
fn losses(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v.to_string()
        })
        .collect()
}

#[test]
fn an_interrupted_run_resumed_ends_exactly_where_an_uninterrupted_one_does() {
    let root = scratch("resume");
    let (whole, parts) = (root.join("whole"), root.join("parts"));
    train(&whole, &[]);
    let stopped = train(&parts, &[("--stop-at", "4")]);
    assert!(stopped.contains("stopped at step 4"), "{stopped}");
    let resumed = ok(&["train", "--resume", parts.to_str().unwrap()]);
    assert!(resumed.contains("resuming at step 4 of 6"), "{resumed}");
    // The same losses at every step, and the same final state, bit for bit:
    // parameters, optimiser state, step and key.
    assert_eq!(losses(&whole), losses(&parts));
    assert_eq!(
        std::fs::read(whole.join("checkpoint.eqx")).unwrap(),
        std::fs::read(parts.join("checkpoint.eqx")).unwrap()
    );
    // The same seed gives the same run; another seed another one.
    let again = root.join("again");
    train(&again, &[]);
    assert_eq!(losses(&whole), losses(&again));
    let other = root.join("other");
    train(&other, &[("--seed", "1")]);
    assert_ne!(losses(&whole), losses(&other));
}

#[test]
fn gradient_accumulation_and_rotary_positions_train_and_resume() {
    let root = scratch("accumulate");
    let (whole, parts) = (root.join("whole"), root.join("parts"));
    let extra = [
        ("--accumulate", "2"),
        ("--positions", "rotary"),
        ("--dropout", "0.1"),
    ];
    train(&whole, &extra);
    let mut stop = extra.to_vec();
    stop.push(("--stop-at", "3"));
    train(&parts, &stop);
    ok(&["train", "--resume", parts.to_str().unwrap()]);
    assert_eq!(losses(&whole), losses(&parts));
    let config = std::fs::read_to_string(whole.join("config.toml")).unwrap();
    assert!(config.contains("accumulate = 2") && config.contains("positions = \"rotary\""));
}

#[test]
fn sampling_is_deterministic_for_a_seed() {
    let dir = scratch("sample");
    train(&dir, &[]);
    let sample = |seed: &str| {
        let out = run(&[
            "sample",
            "--run",
            dir.to_str().unwrap(),
            "--prompt",
            "Once",
            "--tokens",
            "40",
            "--temperature",
            "1.0",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--seed",
            seed,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("tokens/s"));
        out.stdout
    };
    let first = sample("7");
    assert!(first.starts_with(b"Once"));
    assert!(
        first.len() > 4 + 10,
        "40 byte tokens (some may merge into characters)"
    );
    assert_eq!(first, sample("7"));
    assert_ne!(first, sample("8"));
}

#[test]
fn the_plot_is_svg_with_both_curves() {
    let dir = scratch("plot");
    train(&dir, &[]);
    let text = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lines = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .count();
    assert!(lines >= 3, "train, validation and baseline curves: {lines}");
    for label in ["train", "validation", "unigram baseline"] {
        assert!(text.contains(label), "the legend names {label}");
    }
    let samples = std::fs::read_to_string(dir.join("samples.txt")).unwrap();
    assert!(samples.contains("=== step 3 ===") && samples.contains("=== step 6 ==="));
}

/// `train` on the tiny settings with `SOLSTICE_GPT_FONT` set to `font`
/// (unset for `None`); its standard output.
fn train_with_font(dir: &Path, font: Option<&str>) -> String {
    let mut command = bin();
    command.args(train_args(dir, &[]));
    match font {
        Some(font) => command.env("SOLSTICE_GPT_FONT", font),
        None => command.env_remove("SOLSTICE_GPT_FONT"),
    };
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_png_plot_is_drawn_where_a_font_is_found() {
    let dir = scratch("png");
    let out = train_with_font(&dir, None);
    let png = dir.join("loss.png");
    if out.contains("no PNG plot:") {
        // No system font here: the SVG is the plot, and the run says why.
        assert!(!png.exists());
        assert!(dir.join("loss.svg").exists());
        return;
    }
    assert!(
        out.contains("loss.png"),
        "the run names its PNG plot:\n{out}"
    );
    assert!(
        out.contains("loss.svg, loss.png, samples.txt"),
        "the closing line lists the PNG plot:\n{out}"
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (800, 500));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let rgb: Vec<[u8; 3]> = pixels.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    // The train curve is blue, the validation curve red, and the text and
    // axes black; most of the image is the white background.
    let count = |f: &dyn Fn(&[u8; 3]) -> bool| rgb.iter().filter(|p| f(p)).count();
    assert!(
        count(&|p| p[2] > 200 && p[0] < 60 && p[1] < 60) > 100,
        "blue train curve"
    );
    assert!(
        count(&|p| p[0] > 200 && p[1] < 60 && p[2] < 60) > 100,
        "red validation curve"
    );
    assert!(
        count(&|p| p[0] < 40 && p[1] < 40 && p[2] < 40) > 1000,
        "black text and axes"
    );
    assert!(
        count(&|p| *p == [255, 255, 255]) > rgb.len() / 2,
        "white background"
    );
}

#[test]
fn without_a_font_the_run_draws_the_svg_and_says_why_there_is_no_png() {
    let dir = scratch("nofont");
    let out = train_with_font(&dir, Some("none"));
    assert!(out.contains("no PNG plot: SOLSTICE_GPT_FONT=none"), "{out}");
    assert!(dir.join("loss.svg").exists() && !dir.join("loss.png").exists());

    let dir = scratch("badfont");
    let missing = dir.join("no-such-font.ttf");
    let out = train_with_font(&dir, Some(missing.to_str().unwrap()));
    assert!(
        out.contains("no PNG plot: SOLSTICE_GPT_FONT=") && out.contains("no-such-font.ttf"),
        "{out}"
    );
    assert!(dir.join("loss.svg").exists() && !dir.join("loss.png").exists());
}

#[test]
fn settings_come_from_a_toml_file_with_flags_over_it() {
    let dir = scratch("toml");
    let file = dir.join("settings.toml");
    std::fs::write(&file, "dim = 8\nheads = 4\nseed = 3\n").unwrap();
    let run_dir = dir.join("run");
    let config_file = file.display().to_string();
    train(
        &run_dir,
        &[("--dim", ""), ("--config", &config_file), ("--heads", "2")],
    );
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(config.contains("dim = 8\n"), "{config}");
    assert!(config.contains("heads = 2\n"), "the flag wins: {config}");
    assert!(config.contains("seed = 3\n"), "{config}");

    std::fs::write(&file, "dimm = 8\n").unwrap();
    let err = fails(&[
        "train",
        "--out",
        run_dir.to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("unknown field `dimm`"), "{err}");
}

#[test]
fn help_lists_every_option_with_its_default() {
    let help = ok(&["train", "--help"]);
    for expected in [
        "--layers <LAYERS>",
        "[default: 2]",
        "--dim <DIM>",
        "[default: 64]",
        "--positions <POSITIONS>",
        "--learning-rate <LEARNING_RATE>",
        "--resume <DIR>",
        "--config <FILE>",
        "[default: runs/gpt]",
    ] {
        assert!(
            help.contains(expected),
            "`train --help` lacks {expected}:\n{help}"
        );
    }
    let help = ok(&["sample", "--help"]);
    for expected in [
        "--temperature",
        "[default: 0.8]",
        "--top-k",
        "--top-p",
        "--seed",
    ] {
        assert!(
            help.contains(expected),
            "`sample --help` lacks {expected}:\n{help}"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_message() {
    let dir = scratch("bad");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();

    let err = fails(&[
        "train",
        "--out",
        out_s,
        "--data",
        dir.join("missing.txt").to_str().unwrap(),
    ]);
    assert!(err.starts_with("error: cannot read the data path"), "{err}");

    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let err = fails(&["train", "--out", out_s, "--data", empty.to_str().unwrap()]);
    assert!(err.contains("is empty"), "{err}");

    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    let err = fails(&["train", "--out", out_s, "--data", latin1.to_str().unwrap()]);
    assert!(
        err.contains("is not UTF-8 text (invalid byte at offset 3)"),
        "{err}"
    );

    let empty_dir = dir.join("nothing");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let err = fails(&[
        "train",
        "--out",
        out_s,
        "--data",
        empty_dir.to_str().unwrap(),
    ]);
    assert!(err.contains("holds no files"), "{err}");

    let err = fails(&["train", "--bogus"]);
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");

    let err = fails(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(err.contains("is not a run directory"), "{err}");

    // A trained run, then mistakes made with it.
    train(&out, &[]);
    let err = fails(&["train", "--out", out_s]);
    assert!(err.contains("already holds a run"), "{err}");

    let err = fails(&["train", "--resume", out_s, "--dim", "32"]);
    assert!(
        err.contains(".model.shared.pytree[0].weight")
            && err.contains("f32[256,16]")
            && err.contains("f32[256,32]"),
        "the leaf and both shapes: {err}"
    );

    let checkpoint = out.join("checkpoint.eqx");
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["sample", "--run", out_s]);
    assert!(
        err.contains("cannot load the checkpoint") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&checkpoint, b"not a checkpoint at all").unwrap();
    let err = fails(&["train", "--resume", out_s]);
    assert!(err.contains("cannot load the checkpoint"), "{err}");

    let err = fails(&["sample", "--run", out_s, "--top-p", "0"]);
    assert!(err.contains("--top-p must be in (0, 1]"), "{err}");
}

/// Starts a long tiny run that checkpoints every step, and waits until it
/// has written its first checkpoint.
fn start_long_run(dir: &Path) -> std::process::Child {
    let args = train_args(
        dir,
        &[
            ("--steps", "100000"),
            ("--checkpoint-every", "1"),
            ("--eval-every", "1000"),
        ],
    );
    let child = bin()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !dir.join("checkpoint.eqx").exists() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_cleanly() {
    let dir = scratch("ctrlc");
    let child = start_long_run(&dir);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted at step"), "{stdout}");
    assert!(stdout.contains("--resume"), "{stdout}");
    ok(&["sample", "--run", dir.to_str().unwrap(), "--tokens", "5"]);
}

#[test]
fn a_killed_save_leaves_a_loadable_checkpoint() {
    let dir = scratch("killed");
    // Killed at different moments, some of them in the middle of a save.
    for delay_ms in [0, 7, 23, 61] {
        let mut child = start_long_run(&dir);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        ok(&["sample", "--run", dir.to_str().unwrap(), "--tokens", "3"]);
        std::fs::remove_file(dir.join("checkpoint.eqx")).unwrap();
    }
}
