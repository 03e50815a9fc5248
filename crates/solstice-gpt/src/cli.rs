//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::hf::OnDifferentHead;

/// Train, resume and sample a GPT whose embedding is tied to its output
/// head, built on solstice.
#[derive(Parser)]
#[command(name = "solstice-gpt", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Train a GPT (on the embedded stories unless --data is given), or
    /// resume a run.
    Train(Box<TrainArgs>),
    /// Generate text with a trained run, streaming it as it is made.
    Sample(SampleArgs),
    /// Import a Hugging Face GPT-2 (`model.safetensors` and `config.json`)
    /// into a run directory, to sample from or train further.
    ImportHf(ImportHfArgs),
    /// Export a run to a Hugging Face GPT-2 directory that `transformers`
    /// loads.
    ExportHf(ExportHfArgs),
}

/// `train`'s options: the run's [`Config`] and where it lives.
#[derive(Args)]
pub struct TrainArgs {
    /// Every setting of the run.
    #[command(flatten)]
    pub config: Config,
    /// Read settings from a TOML file (keys as the flags, with `_` for `-`);
    /// flags given on the command line win.
    #[arg(long = "config", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The run directory: config, metrics, plot, samples, checkpoint.
    #[arg(long, value_name = "DIR", default_value = "runs/gpt")]
    pub out: PathBuf,
    /// Continue the run in DIR from its checkpoint, with its config.toml
    /// (flags given here override it).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config_file", "overwrite"])]
    pub resume: Option<PathBuf>,
    /// Save a checkpoint and stop after this many steps (resume later).
    #[arg(long, value_name = "STEP")]
    pub stop_at: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long)]
    pub overwrite: bool,
}

/// `sample`'s options.
#[derive(Args)]
pub struct SampleArgs {
    /// The run directory to load.
    #[arg(long, value_name = "DIR", default_value = "runs/gpt")]
    pub run: PathBuf,
    /// The text to continue.
    #[arg(long, default_value = "Once upon a time")]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    pub tokens: usize,
    /// Softmax temperature; 0 picks the most likely token.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Sample among the k most likely tokens only; 0 keeps all.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sample among the most likely tokens holding this much probability.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// The seed: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the generated token ids (space-separated) instead of the text.
    #[arg(long)]
    pub ids: bool,
}

/// `import-hf`'s options.
#[derive(Args)]
pub struct ImportHfArgs {
    /// A directory holding `model.safetensors` and `config.json`, or a
    /// `.safetensors` file with `config.json` beside it.
    #[arg(value_name = "MODEL")]
    pub source: PathBuf,
    /// The run directory to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// When the file holds both `lm_head.weight` and `wte.weight` and they
    /// differ: import the head untied (with a warning), or refuse.
    #[arg(long, value_enum, default_value_t = OnDifferentHead::Untie)]
    pub on_different_head: OnDifferentHead,
    /// The model's `tokenizer.json` [default: bytes, for a 256-token
    /// vocabulary]. Needs the `hf-tokenizer` feature.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// The seed of the run's batches and dropout when trained further.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a run already in --out.
    #[arg(long)]
    pub overwrite: bool,
}

/// `export-hf`'s options.
#[derive(Args)]
pub struct ExportHfArgs {
    /// The run directory to export.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The directory to write `model.safetensors` and `config.json` into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a `model.safetensors` already in --out.
    #[arg(long)]
    pub overwrite: bool,
}
