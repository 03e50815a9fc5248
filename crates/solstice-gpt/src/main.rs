//! `solstice-gpt`: train, resume and sample a GPT whose token embedding is
//! tied to its output head, on solstice's public API.
//!
//! `solstice-gpt train` with no arguments trains on stories the program
//! writes itself; `solstice-gpt sample` continues a prompt with the trained
//! model. `import-hf` and `export-hf` convert a Hugging Face GPT-2 to a run
//! directory and back. `--help` on each lists every option with its
//! default.

mod attention;
mod checkpoint;
mod cli;
mod config;
mod corpus;
mod data;
mod hf;
mod hf_run;
mod metrics;
mod model;
mod optimizer;
mod raster;
mod sample;
mod sampling;
mod tokenizer;
mod train;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::train::Outcome;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match &cli.command {
        Command::Train(args) => {
            let sub = matches
                .subcommand_matches("train")
                .expect("the train subcommand");
            train::run(args, sub).map(|outcome| match outcome {
                Outcome::Interrupted => ExitCode::from(130),
                Outcome::Finished | Outcome::Stopped => ExitCode::SUCCESS,
            })
        }
        Command::Sample(args) => sample::run(args).map(|()| ExitCode::SUCCESS),
        Command::ImportHf(args) => hf_run::import(args).map(|()| ExitCode::SUCCESS),
        Command::ExportHf(args) => hf_run::export(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
