//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

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
}
