//! `train`: the training loop, its run directory, resuming and Ctrl-C.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressStyle};
use solstice::random::Key;
use solstice::tree::tree_leaves;
use solstice::{Array, filter_value_and_grad};

use crate::checkpoint::{self, TrainState};
use crate::cli::TrainArgs;
use crate::config::Config;
use crate::data::{self, Dataset};
use crate::metrics::{Metrics, Record};
use crate::model::{self, Gpt};
use crate::optimizer::Optimiser;
use crate::sampling::{self, SampleOptions};
use crate::tokenizer::Tokenizer;

/// The config file's name in a run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// The samples' file name in a run directory.
pub const SAMPLES_FILE: &str = "samples.txt";

/// How a training command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step is done.
    Finished,
    /// Stopped early by `--stop-at`; the checkpoint is saved.
    Stopped,
    /// Stopped by Ctrl-C; the checkpoint is saved.
    Interrupted,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs `train` as `args` (and the raw `matches`, to tell given flags from
/// defaults) ask.
pub fn run(args: &TrainArgs, matches: &ArgMatches) -> Result<Outcome> {
    let resuming = args.resume.is_some();
    let dir = args.resume.clone().unwrap_or_else(|| args.out.clone());
    let base = if resuming {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            bail!(
                "{} is not a run directory (it has no {CONFIG_FILE}); give the --out \
                 directory of an earlier `train`",
                dir.display()
            );
        }
        Some(Config::read_table(&path)?)
    } else {
        args.config_file
            .as_deref()
            .map(Config::read_table)
            .transpose()?
    };
    let config = Config::resolve(matches, base)?;
    config.validate()?;
    let checkpoint_path = dir.join(checkpoint::FILE);
    if resuming && !checkpoint_path.exists() {
        bail!(
            "{} holds no checkpoint to resume from ({} is missing)",
            dir.display(),
            checkpoint_path.display()
        );
    }
    if !resuming && checkpoint_path.exists() && !args.overwrite {
        bail!(
            "{} already holds a run; continue it with `--resume {}`, start a new one with \
             `--out DIR`, or replace it with `--overwrite`",
            dir.display(),
            dir.display()
        );
    }

    let tokenizer = Tokenizer::load(config.tokenizer.as_deref())?;
    let text = data::read_corpus(config.data.as_deref())?;
    let data = Dataset::new(&text, &tokenizer, config.val_fraction, config.context)?;
    let vocab = tokenizer.vocab_size();
    let baseline = data.unigram_baseline(vocab);

    let optimiser = Optimiser::new(&config)?;
    let fresh = fresh_state(&config, vocab, &optimiser)?;
    let state = if resuming {
        checkpoint::load(&dir, &fresh)?
    } else {
        fresh
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
    std::fs::write(dir.join(CONFIG_FILE), config.to_toml()?)
        .with_context(|| format!("cannot write {}", dir.join(CONFIG_FILE).display()))?;

    let start = state.steps_done()?;
    let params: usize = tree_leaves(&state.model)
        .iter()
        .map(Array::elem_count)
        .sum();
    println!(
        "solstice-gpt: {params} parameters ({} layers, dim {}, {} heads, context {}, {:?} positions); \
         corpus {}: {} training and {} validation tokens",
        config.layers,
        config.dim,
        config.heads,
        config.context,
        config.positions,
        corpus_name(&config),
        data.train.len(),
        data.val.len()
    );
    println!(
        "unigram baseline: {baseline:.3} nats/token on validation; run directory {}",
        dir.display()
    );
    if resuming {
        println!("resuming at step {start} of {}", config.steps);
    }

    install_ctrlc();
    let mut trainer = Trainer {
        config: &config,
        data: &data,
        tokenizer: &tokenizer,
        optimiser: &optimiser,
        dir: &dir,
        metrics: Metrics::open(&dir, start, Some(baseline))?,
        prompt: default_prompt(&config, &tokenizer, &data)?,
    };
    trainer.run(state, args.stop_at, baseline)
}

/// The state of a new run: a model from the seed, the optimiser's initial
/// state, step 0 and the run's key.
pub fn fresh_state(config: &Config, vocab: usize, optimiser: &Optimiser) -> Result<TrainState> {
    let [model_key, run_key] = Key::new(config.seed).split();
    let model = Gpt::new(config, vocab, model_key)?;
    Ok(TrainState {
        opt: optimiser.init(&model)?,
        model,
        step: Array::scalar(0u32)?,
        key: run_key,
    })
}

struct Trainer<'a> {
    config: &'a Config,
    data: &'a Dataset,
    tokenizer: &'a Tokenizer,
    optimiser: &'a Optimiser,
    dir: &'a Path,
    metrics: Metrics,
    prompt: Vec<u32>,
}

impl Trainer<'_> {
    fn run(&mut self, state: TrainState, stop_at: Option<usize>, baseline: f64) -> Result<Outcome> {
        let config = self.config;
        let start = state.steps_done()?;
        let TrainState {
            mut model,
            mut opt,
            key,
            ..
        } = state;
        if start >= config.steps {
            println!("the run is complete ({start} of {} steps)", config.steps);
            return Ok(Outcome::Finished);
        }
        let value_and_grad =
            filter_value_and_grad(|m: &Gpt, (x, y, k): &(Array, Array, Option<Key>)| {
                model::loss(m, x, y, k.as_ref())
            });
        let bar = progress_bar(start, config.steps);
        let began = Instant::now();
        let mut last_val = None;
        let mut last_train = f64::NAN;
        let deadline =
            (config.time_limit > 0.0).then(|| began + Duration::from_secs_f64(config.time_limit));
        let mut done = start;
        for step in start..config.steps {
            let step_key = key.fold_in(step as u32);
            let mut loss_sum = 0.0;
            for micro in 0..config.accumulate {
                let [batch_key, dropout_key] = step_key.fold_in(micro as u32).split();
                let (x, y) = data::batch(
                    &self.data.train,
                    batch_key,
                    config.batch_size,
                    config.context,
                )?;
                let dropout_key = (config.dropout > 0.0).then_some(dropout_key);
                let (loss, grads) = value_and_grad(&model, &(x, y, dropout_key))?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?);
                (model, opt) = self.optimiser.step(&model, &grads, &opt)?;
            }
            done = step + 1;
            last_train = loss_sum / config.accumulate as f64;
            let lr = self.optimiser.learning_rate(step);
            let tokens_per_s = ((done - start) * config.tokens_per_step()) as f64
                / began.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(done as u64);
            bar.set_message(format!(
                "loss {last_train:.3}  lr {lr:.2e}  {:.0} tok/s",
                tokens_per_s
            ));
            self.metrics.push(Record {
                step: done,
                train_loss: Some(last_train),
                val_loss: None,
                lr: Some(lr),
                tokens_per_s: Some(tokens_per_s),
            })?;
            let interrupted = INTERRUPTED.load(Ordering::SeqCst);
            let stopping = interrupted || stop_at == Some(done);
            let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
            if done % config.eval_every == 0 || done == config.steps || out_of_time {
                let val = self.evaluate(&model, &key)?;
                last_val = Some(val);
                self.metrics.push(Record {
                    step: done,
                    train_loss: None,
                    val_loss: Some(val),
                    lr: None,
                    tokens_per_s: None,
                })?;
                let plot = self.metrics.plot()?;
                let sample = self.sample(&model, &key, &format!("step {done}"))?;
                bar.suspend(|| {
                    println!(
                        "step {done:>5}/{}  train {last_train:.3}  val {val:.3}  \
                         (unigram {baseline:.3})  lr {lr:.2e}  {tokens_per_s:.0} tok/s",
                        config.steps
                    );
                    if done == config.eval_every || done == config.steps {
                        let files: Vec<String> =
                            plot.iter().map(|p| p.display().to_string()).collect();
                        println!("  plot: {}", files.join(", "));
                        if let Some(why) = self.metrics.png_skipped() {
                            println!("  no PNG plot: {why}");
                        }
                    }
                    println!("  sample: {}", one_line(&sample));
                });
            }
            if done % config.checkpoint_every == 0
                || done == config.steps
                || stopping
                || out_of_time
            {
                self.save(&model, &opt, done, &key)?;
            }
            if out_of_time && !stopping && done < config.steps {
                bar.suspend(|| {
                    println!(
                        "time limit of {}s reached at step {done} of {}; checkpoint saved. \
                         Continue with: solstice-gpt train --resume {}",
                        config.time_limit,
                        config.steps,
                        self.dir.display()
                    )
                });
                break;
            }
            if stopping {
                bar.finish_and_clear();
                let why = if interrupted {
                    "interrupted"
                } else {
                    "stopped"
                };
                println!(
                    "{why} at step {done}; checkpoint saved. Continue with: solstice-gpt train \
                     --resume {}",
                    self.dir.display()
                );
                return Ok(if interrupted {
                    Outcome::Interrupted
                } else {
                    Outcome::Stopped
                });
            }
        }
        bar.finish_and_clear();
        let elapsed = began.elapsed();
        let val = last_val.unwrap_or(f64::NAN);
        println!(
            "done: {} steps in {}; train loss {last_train:.3}, validation loss {val:.3}, \
             unigram baseline {baseline:.3} ({:.0}% of the baseline)",
            done - start,
            human(elapsed),
            100.0 * val / baseline
        );
        let mut files = vec![
            CONFIG_FILE,
            crate::metrics::METRICS_FILE,
            crate::metrics::PLOT_FILE,
        ];
        if self.metrics.png_skipped().is_none() {
            files.push(crate::metrics::PNG_PLOT_FILE);
        }
        files.extend([SAMPLES_FILE, checkpoint::FILE]);
        println!("run directory {}: {}", self.dir.display(), files.join(", "));
        for (i, seed) in [1u32, 2].into_iter().enumerate() {
            let text = self.sample(
                &model,
                &key.fold_in(seed),
                &format!("step {done}, sample {}", i + 1),
            )?;
            println!("--- sample {} ---\n{text}", i + 1);
        }
        Ok(Outcome::Finished)
    }

    /// The mean loss of the model on fixed validation batches, dropout off.
    fn evaluate(&self, model: &Gpt, key: &Key) -> Result<f64> {
        let config = self.config;
        let keys = key.fold_in(u32::MAX).split_n(config.eval_batches);
        let mut total = 0.0;
        for k in keys {
            let (x, y) = data::batch(&self.data.val, k, config.batch_size, config.context)?;
            total += f64::from(model::loss(model, &x, &y, None)?.to_scalar::<f32>()?);
        }
        Ok(total / config.eval_batches as f64)
    }

    /// A sample from the prompt, also appended to the samples file.
    fn sample(&self, model: &Gpt, key: &Key, label: &str) -> Result<String> {
        let options = SampleOptions {
            temperature: 0.8,
            top_k: 0,
            top_p: 1.0,
        };
        let key = key.fold_in(u32::MAX - 1);
        let ids = sampling::generate(
            model,
            &self.prompt,
            self.config.sample_tokens,
            options,
            &key,
            |_| Ok(()),
        )?;
        let mut text = self.tokenizer.decode(&self.prompt)?;
        text.push_str(&self.tokenizer.decode(&ids)?);
        let path = self.dir.join(SAMPLES_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        use std::io::Write;
        writeln!(file, "=== {label} ===\n{text}\n")?;
        Ok(text)
    }

    fn save(
        &self,
        model: &Gpt,
        opt: &crate::optimizer::OptState,
        step: usize,
        key: &Key,
    ) -> Result<()> {
        let state = TrainState {
            model: model.clone(),
            opt: opt.clone(),
            step: Array::scalar(step as u32)?,
            key: key.clone(),
        };
        checkpoint::save(self.dir, &state)
    }
}

/// The prompt of the samples printed while training.
fn default_prompt(config: &Config, tokenizer: &Tokenizer, data: &Dataset) -> Result<Vec<u32>> {
    if config.data.is_none() && config.tokenizer.is_none() {
        return tokenizer.encode("Once upon a time");
    }
    Ok(data.val[..data.val.len().min(8)].to_vec())
}

fn corpus_name(config: &Config) -> String {
    match &config.data {
        Some(path) => path.display().to_string(),
        None => "the embedded stories".to_string(),
    }
}

fn progress_bar(start: usize, steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64).with_position(start as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "step {pos}/{len} [{bar:30}] {msg}  elapsed {elapsed}  ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn install_ctrlc() {
    // A second Ctrl-C while the checkpoint is written exits at once; the
    // write is atomic, so the previous checkpoint survives.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

fn one_line(text: &str) -> String {
    text.replace('\n', " / ")
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m {:02.0}s", (s / 60.0).floor(), s % 60.0)
    }
}
