//! `sample`: load a run and stream text from it.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use solstice::random::Key;

use crate::checkpoint;
use crate::cli::SampleArgs;
use crate::config::Config;
use crate::optimizer::Optimiser;
use crate::sampling::{self, SampleOptions};
use crate::tokenizer::Tokenizer;
use crate::train::{CONFIG_FILE, fresh_state};

/// Runs `sample`.
pub fn run(args: &SampleArgs) -> Result<()> {
    let options = SampleOptions {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
    };
    options.validate()?;
    let (config, tokenizer, model) = load_run(&args.run)?;
    let prompt = tokenizer.encode(&args.prompt)?;
    if prompt.is_empty() {
        bail!("--prompt is empty; give some text to continue");
    }
    let mut out = std::io::stdout().lock();
    if args.ids {
        let ids = sampling::generate(
            &model,
            &prompt,
            args.tokens,
            options,
            &Key::new(args.seed),
            |_| Ok(()),
        )?;
        let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "{}", ids.join(" "))?;
        return Ok(());
    }
    write!(out, "{}", args.prompt)?;
    out.flush()?;
    let mut decoder = tokenizer.stream();
    let began = Instant::now();
    let key = Key::new(args.seed);
    sampling::generate(&model, &prompt, args.tokens, options, &key, |id| {
        write!(out, "{}", decoder.push(id)?)?;
        out.flush()?;
        Ok(())
    })?;
    writeln!(out, "{}", decoder.finish())?;
    let seconds = began.elapsed().as_secs_f64();
    eprintln!(
        "sampled {} tokens in {seconds:.2}s: {:.1} tokens/s (context {}, {} layers)",
        args.tokens,
        args.tokens as f64 / seconds,
        config.context,
        config.layers
    );
    Ok(())
}

/// The config, tokenizer and trained model of the run in `dir`.
pub fn load_run(dir: &Path) -> Result<(Config, Tokenizer, crate::model::Gpt)> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        bail!(
            "{} is not a run directory (it has no {CONFIG_FILE}); train one first with \
             `solstice-gpt train --out {}`",
            dir.display(),
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config: Config = toml::from_str(&text)
        .with_context(|| format!("invalid configuration in {}", path.display()))?;
    config.validate()?;
    let tokenizer = Tokenizer::load(config.tokenizer.as_deref())?;
    let optimiser = Optimiser::new(&config)?;
    let like = fresh_state(&config, tokenizer.vocab_size(), &optimiser)?;
    let state = checkpoint::load(dir, &like)?;
    Ok((config, tokenizer, state.model))
}
