//! The run's configuration: one struct that is at once the `train` flags
//! (clap) and the `config.toml` of a run directory (serde).
//!
//! Precedence, lowest first: the defaults below, then a TOML file (`--config
//! FILE`, or the run directory's `config.toml` when resuming), then the
//! flags given on the command line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// How the model knows where a token sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// A learned embedding per position, added to the token embedding.
    Learned,
    /// Rotary embeddings (RoPE) on each head's queries and keys.
    Rotary,
}

/// The MLP's activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gelu {
    /// The exact GELU, `x Φ(x)`.
    #[default]
    Exact,
    /// The tanh approximation (GPT-2's `gelu_new`).
    Tanh,
}

/// Every setting of a training run. Field names are the TOML keys; flags are
/// the same names in kebab case.
#[derive(Clone, Debug, PartialEq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Attention heads per block.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Width of the residual stream (the embedding size).
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Hidden width of each block's MLP, as a multiple of `dim`.
    #[arg(long, default_value_t = 4)]
    pub mlp_ratio: usize,
    /// Context length: the tokens a sequence holds.
    #[arg(long, default_value_t = 64)]
    pub context: usize,
    /// Position encoding.
    #[arg(long, value_enum, default_value_t = Positions::Learned)]
    pub positions: Positions,
    /// The MLP's GELU: exact, or the tanh approximation GPT-2 uses.
    #[arg(long, value_enum, default_value_t = Gelu::Exact)]
    #[serde(default)]
    pub gelu: Gelu,
    /// Biases on the attention's query, key, value and output projections
    /// (GPT-2 has them).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub attention_bias: bool,
    /// LayerNorm's epsilon, added to the variance.
    #[arg(long, default_value_t = 1e-5)]
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// An output head of its own instead of the embedding (a checkpoint
    /// imported with different embedding and head weights).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub untied_head: bool,
    /// Dropout probability on embeddings and residual branches.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Standard deviation of the (tied) token embedding at initialisation.
    #[arg(long, default_value_t = 0.1)]
    pub init_std: f64,

    /// Optimiser steps.
    #[arg(long, default_value_t = 600)]
    pub steps: usize,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Micro-batches whose gradients are averaged into one step.
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// Peak learning rate of AdamW.
    #[arg(long, default_value_t = 5e-3)]
    pub learning_rate: f64,
    /// Linear warm-up steps before the cosine decay.
    #[arg(long, default_value_t = 20)]
    pub warmup_steps: usize,
    /// Learning rate at the end, as a fraction of the peak.
    #[arg(long, default_value_t = 0.1)]
    pub final_lr_fraction: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Gradients are scaled down to at most this global norm.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    /// Stop training after this many seconds, with a checkpoint to resume
    /// from; 0 for no limit. It keeps the default run within 3 minutes on a
    /// busy machine.
    #[arg(long, default_value_t = 150.0)]
    pub time_limit: f64,
    /// The seed of initialisation, batches and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Fraction of the corpus (its end) held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Steps between validation losses (and plot redraws).
    #[arg(long, default_value_t = 50)]
    pub eval_every: usize,
    /// Batches averaged into one validation loss.
    #[arg(long, default_value_t = 4)]
    pub eval_batches: usize,
    /// Steps between checkpoints (one is also written at the end).
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    /// Bytes (or tokens) sampled at each validation and at the end.
    #[arg(long, default_value_t = 160)]
    pub sample_tokens: usize,

    /// A UTF-8 file, or a directory of them, to train on [default: the
    /// embedded corpus].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// A Hugging Face `tokenizer.json` [default: bytes]. Needs the
    /// `hf-tokenizer` feature.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
}

fn default_norm_eps() -> f64 {
    1e-5
}

impl Config {
    /// The defaults, exactly as `--help` shows them.
    pub fn defaults() -> Config {
        use clap::FromArgMatches;
        let command = Config::augment_args(clap::Command::new("defaults"));
        let matches = command
            .try_get_matches_from(["defaults"])
            .expect("every field has a default");
        Config::from_arg_matches(&matches).expect("the defaults parse")
    }

    /// The config that `matches` (a `train` command line) asks for: `base`
    /// (a file's table, or nothing) with the flags given on the command
    /// line put over it.
    pub fn resolve(matches: &ArgMatches, base: Option<toml::Table>) -> Result<Config> {
        use clap::FromArgMatches;
        let flags = Config::from_arg_matches(matches)?;
        let Some(mut table) = base else {
            return Ok(flags);
        };
        let from_flags = toml::Table::try_from(&flags)?;
        let given = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine));
        for (key, value) in from_flags {
            if given(&key) || !table.contains_key(&key) {
                table.insert(key, value);
            }
        }
        let config: Config = table.try_into().context("invalid configuration")?;
        Ok(config)
    }

    /// Reads a TOML file as a table of settings.
    pub fn read_table(path: &Path) -> Result<toml::Table> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        // Unknown keys are caught here, before flags are merged in.
        let _: Config = Config::merge_defaults(table.clone())
            .try_into()
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        Ok(table)
    }

    fn merge_defaults(mut table: toml::Table) -> toml::Table {
        let defaults = toml::Table::try_from(Config::defaults()).expect("defaults serialise");
        for (key, value) in defaults {
            table.entry(key).or_insert(value);
        }
        table
    }

    /// Checks the settings that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("layers", self.layers),
            ("heads", self.heads),
            ("dim", self.dim),
            ("mlp_ratio", self.mlp_ratio),
            ("context", self.context),
            ("batch_size", self.batch_size),
            ("accumulate", self.accumulate),
            ("eval_every", self.eval_every),
            ("eval_batches", self.eval_batches),
            ("checkpoint_every", self.checkpoint_every),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("`{name}` must be at least 1");
            }
        }
        if !self.dim.is_multiple_of(self.heads) {
            bail!(
                "`dim` ({}) must be a multiple of `heads` ({})",
                self.dim,
                self.heads
            );
        }
        if self.positions == Positions::Rotary && !(self.dim / self.heads).is_multiple_of(2) {
            bail!(
                "rotary positions need an even head size, but dim / heads = {}",
                self.dim / self.heads
            );
        }
        for (name, value) in [
            ("dropout", self.dropout),
            ("final_lr_fraction", self.final_lr_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                bail!("`{name}` must be in [0, 1] but is {value}");
            }
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            bail!(
                "`val_fraction` must be in (0, 1) but is {}",
                self.val_fraction
            );
        }
        if self.time_limit.is_nan() || self.time_limit < 0.0 {
            bail!(
                "`time_limit` must be 0 (none) or more but is {}",
                self.time_limit
            );
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            bail!("`norm_eps` must be positive but is {}", self.norm_eps);
        }
        if self.learning_rate <= 0.0 || self.clip_norm <= 0.0 || self.init_std <= 0.0 {
            bail!("`learning_rate`, `clip_norm` and `init_std` must be positive");
        }
        Ok(())
    }

    /// The config as the run directory stores it.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Tokens one optimiser step sees.
    pub fn tokens_per_step(&self) -> usize {
        self.batch_size * self.accumulate * self.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = Config::defaults();
        let text = config.to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
        config.validate().unwrap();
    }
}
