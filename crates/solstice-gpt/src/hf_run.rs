//! `import-hf` and `export-hf`: a Hugging Face GPT-2 directory to a run
//! directory (which `sample` reads and `train --resume` trains further) and
//! back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use solstice::Array;
use solstice::random::Key;
use solstice::tree::tree_leaves;

use crate::checkpoint::{self, TrainState};
use crate::cli::{ExportHfArgs, ImportHfArgs};
use crate::hf::{self, HeadSource};
use crate::optimizer::Optimiser;
use crate::sample::load_run;
use crate::tokenizer::Tokenizer;
use crate::train::CONFIG_FILE;

/// The imported `config.json`, kept in the run directory so that export
/// writes its other fields back.
pub const HF_CONFIG_FILE: &str = "hf-config.json";

/// Runs `import-hf`.
pub fn import(args: &ImportHfArgs) -> Result<()> {
    let dir = &args.out;
    if dir.join(checkpoint::FILE).exists() && !args.overwrite {
        bail!(
            "{} already holds a run; import into another --out DIR, or replace it with \
             --overwrite",
            dir.display()
        );
    }
    let imported = hf::import(&args.source, args.on_different_head)?;
    let mut config = imported.config;
    let vocab = imported.model.vocab_size();
    let tokenizer_path = args
        .tokenizer
        .as_deref()
        .map(|p| std::fs::canonicalize(p).with_context(|| format!("cannot find {}", p.display())))
        .transpose()?;
    let tokenizer = Tokenizer::load(tokenizer_path.as_deref())?;
    if tokenizer.vocab_size() != vocab {
        bail!(
            "the model has {vocab} token ids but the {} tokenizer has {}; give the model's \
             tokenizer with --tokenizer tokenizer.json",
            if tokenizer_path.is_some() {
                "given"
            } else {
                "byte"
            },
            tokenizer.vocab_size()
        );
    }
    config.tokenizer = tokenizer_path;
    config.seed = args.seed;

    let optimiser = Optimiser::new(&config)?;
    let [_, run_key] = Key::new(config.seed).split();
    let state = TrainState {
        opt: optimiser.init(&imported.model)?,
        model: imported.model,
        step: Array::scalar(0u32)?,
        key: run_key,
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
    write_text(&dir.join(CONFIG_FILE), &config.to_toml()?)?;
    let hf_json = serde_json::to_string_pretty(&Value::Object(imported.hf_config))? + "\n";
    write_text(&dir.join(HF_CONFIG_FILE), &hf_json)?;
    checkpoint::save(dir, &state)?;

    let params: usize = tree_leaves(&state.model)
        .iter()
        .map(Array::elem_count)
        .sum();
    let head = match imported.head {
        HeadSource::FromEmbedding => "tied to the embedding (no lm_head.weight)",
        HeadSource::Equal => "tied to the embedding (lm_head.weight equals wte.weight)",
        HeadSource::FromHead => "tied, the embedding taken from lm_head.weight (no wte.weight)",
        HeadSource::Untied => "untied: lm_head.weight differs from wte.weight",
        HeadSource::Separate => "untied, as config.json's tie_word_embeddings says",
    };
    if imported.head == HeadSource::Untied {
        eprintln!(
            "warning: lm_head.weight differs from wte.weight, so the model is imported with a \
             head of its own (transformers would tie it to wte.weight); \
             `--on-different-head error` refuses such checkpoints"
        );
    }
    println!(
        "imported {} into {}: {params} parameters ({} layers, dim {}, {} heads, context {}, \
         vocab {vocab}); head {head}",
        args.source.display(),
        dir.display(),
        config.layers,
        config.dim,
        config.heads,
        config.context,
    );
    println!(
        "sample with `solstice-gpt sample --run {0}`; train further with `solstice-gpt train \
         --resume {0} --steps N`",
        dir.display()
    );
    Ok(())
}

/// Runs `export-hf`.
pub fn export(args: &ExportHfArgs) -> Result<()> {
    let out = &args.out;
    if out.join(hf::WEIGHTS_FILE).exists() && !args.overwrite {
        bail!(
            "{} already holds a {}; export to another --out DIR, or replace it with --overwrite",
            out.display(),
            hf::WEIGHTS_FILE
        );
    }
    let (config, tokenizer, model) = load_run(&args.run)?;
    let base = read_hf_config(&args.run.join(HF_CONFIG_FILE))?;
    hf::export(&model, &config, tokenizer.vocab_size(), base, out)
        .with_context(|| format!("cannot export {} to {}", args.run.display(), out.display()))?;
    let mut written = vec![hf::WEIGHTS_FILE.to_string(), hf::CONFIG_FILE.to_string()];
    if let Some(path) = &config.tokenizer {
        let target: PathBuf = out.join("tokenizer.json");
        std::fs::copy(path, &target).with_context(|| {
            format!(
                "cannot copy the tokenizer {} to {}",
                path.display(),
                target.display()
            )
        })?;
        written.push("tokenizer.json".into());
    }
    println!(
        "exported {} to {}: {} (head {})",
        args.run.display(),
        out.display(),
        written.join(", "),
        if model.head.is_some() {
            "untied: lm_head.weight written"
        } else {
            "tied: lm_head.weight left out"
        }
    );
    Ok(())
}

fn read_hf_config(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let map = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    Ok(Some(map))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    solstice::serial::write_atomically(path, |w| Ok(w.write_all(text.as_bytes())?))
        .with_context(|| format!("cannot write {}", path.display()))
}
