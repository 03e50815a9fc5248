//! Hugging Face GPT-2 checkpoints (`config.json` and `model.safetensors`,
//! as `transformers` saves a `GPT2LMHeadModel`) to a [`Gpt`] and back.
//!
//! **Config.** GPT-2 is this crate's model with learned positions, pre-LN
//! blocks, LayerNorm epsilon `layer_norm_epsilon`, biases on every
//! projection (`Config::attention_bias`), an MLP of `n_inner` (default
//! `4 n_embd`) with `gelu_new` (the tanh GELU) and a head tied to the token
//! embedding. [`HfConfig::to_config`] maps one onto the other and refuses
//! what the model cannot compute.
//!
//! **Weights.** GPT-2's `Conv1D` computes `x W + b` with `W` stored
//! `[in, out]`; a solstice `Linear` stores `[out, in]`, so every `Conv1D`
//! weight is transposed. `attn.c_attn` holds the query, key and value
//! projections side by side (`[n_embd, 3 n_embd]`); it is split into the
//! attention's three `Linear`s. Names may carry the `transformer.` prefix
//! (`GPT2LMHeadModel`) or not (`GPT2Model`); the causal-mask buffers older
//! checkpoints hold (`attn.bias`, `attn.masked_bias`) are skipped.
//!
//! **The head.** `transformers` ties `lm_head.weight` to
//! `transformer.wte.weight` and drops it when saving. On import:
//!
//! | `wte` | `lm_head` | result |
//! | --- | --- | --- |
//! | present | absent | tied, from `wte` |
//! | present | equal to `wte` | tied |
//! | present | different | untied ([`OnDifferentHead::Untie`]) or an error |
//! | absent | present | tied, from `lm_head` |
//!
//! With `tie_word_embeddings: false` in `config.json` both weights are
//! required and the model is untied, as `transformers` loads it.
//!
//! A tied model holds the matrix once, through [`Gpt::shared`]; an untied
//! one also holds [`Gpt::head`]. Export writes `transformers`' layout with
//! `lm_head.weight` left out when tied, and `tie_word_embeddings` set to
//! match.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use solstice::nn::{Embedding, Linear, Shared};
use solstice::random::Key;
use solstice::serial::{self, SafetensorsFile};
use solstice::{Array, DType, concatenate};

use crate::config::{Config, Gelu, Positions};
use crate::model::Gpt;

/// The weights file of a Hugging Face model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The config file of a Hugging Face model directory.
pub const CONFIG_FILE: &str = "config.json";

/// The fields of a GPT-2 `config.json` the model depends on, with
/// `transformers`' `GPT2Config` defaults for those a file leaves out.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct HfConfig {
    /// `"gpt2"` for GPT-2.
    pub model_type: Option<String>,
    /// Token ids.
    pub vocab_size: usize,
    /// Context length (learned positions).
    pub n_positions: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// MLP width; `None` for `4 n_embd`.
    pub n_inner: Option<usize>,
    /// The MLP's activation: `gelu_new` (or `gelu_pytorch_tanh`), or
    /// `gelu`.
    pub activation_function: String,
    /// LayerNorm's epsilon.
    pub layer_norm_epsilon: f64,
    /// Dropout after attention and MLP.
    pub resid_pdrop: f64,
    /// Dropout on the embeddings.
    pub embd_pdrop: f64,
    /// Dropout on the attention weights (this model has none).
    pub attn_pdrop: f64,
    /// Attention logits divided by `sqrt(head size)`.
    pub scale_attn_weights: bool,
    /// Attention logits also divided by the layer index (not supported).
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the head is the token embedding.
    pub tie_word_embeddings: bool,
}

impl Default for HfConfig {
    fn default() -> Self {
        HfConfig {
            model_type: None,
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: "gelu_new".to_string(),
            layer_norm_epsilon: 1e-5,
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: true,
        }
    }
}

impl HfConfig {
    /// Parses a `config.json`'s text.
    pub fn parse(text: &str) -> Result<HfConfig> {
        Ok(serde_json::from_str(text)?)
    }

    /// This crate's config for the same model; training settings keep
    /// their defaults. Dropout is `resid_pdrop` (this model has one rate
    /// for embeddings and residual branches and none on attention).
    pub fn to_config(&self) -> Result<Config> {
        if let Some(kind) = &self.model_type
            && kind != "gpt2"
        {
            bail!("model_type is {kind:?}; only GPT-2 (\"gpt2\") checkpoints can be imported");
        }
        let gelu = match self.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" => Gelu::Tanh,
            "gelu" => Gelu::Exact,
            other => bail!(
                "activation_function {other:?} is not supported; the model has \"gelu_new\" \
                 (tanh GELU) and \"gelu\" (exact)"
            ),
        };
        if !self.scale_attn_weights || self.scale_attn_by_inverse_layer_idx {
            bail!(
                "the attention must scale by 1/sqrt(head size) only (scale_attn_weights = true, \
                 scale_attn_by_inverse_layer_idx = false), as GPT-2's does"
            );
        }
        let inner = self.n_inner.unwrap_or(4 * self.n_embd);
        if self.n_embd == 0 || !inner.is_multiple_of(self.n_embd) {
            bail!(
                "n_inner ({inner}) must be a multiple of n_embd ({}): the MLP width is a ratio \
                 of the model width",
                self.n_embd
            );
        }
        let config = Config {
            layers: self.n_layer,
            heads: self.n_head,
            dim: self.n_embd,
            mlp_ratio: inner / self.n_embd,
            context: self.n_positions,
            positions: Positions::Learned,
            gelu,
            attention_bias: true,
            norm_eps: self.layer_norm_epsilon,
            untied_head: false,
            dropout: self.resid_pdrop,
            ..Config::defaults()
        };
        config
            .validate()
            .context("the config.json describes a model this crate cannot build")?;
        Ok(config)
    }
}

/// What to do when a checkpoint holds both `wte` and `lm_head` and they
/// differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDifferentHead {
    /// Load the head as a weight of its own (the model is untied), and
    /// report it.
    Untie,
    /// Refuse the checkpoint.
    Error,
}

/// Where the imported head came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadSource {
    /// No `lm_head.weight`: tied to `wte`.
    FromEmbedding,
    /// `lm_head.weight` equal to `wte`: tied.
    Equal,
    /// Only `lm_head.weight`: tied, the embedding taken from it.
    FromHead,
    /// Both, different: untied.
    Untied,
    /// `tie_word_embeddings` is false in `config.json`: untied, as
    /// `transformers` loads it.
    Separate,
}

/// An imported checkpoint.
pub struct Imported {
    /// The model.
    pub model: Gpt,
    /// Its config (training settings at their defaults).
    pub config: Config,
    /// The `config.json` as read, kept for export.
    pub hf_config: Map<String, Value>,
    /// How the head was found.
    pub head: HeadSource,
}

/// The weights and config files of `source`: a directory holding
/// `model.safetensors` and `config.json`, or a `.safetensors` file with a
/// `config.json` beside it.
pub fn source_files(source: &Path) -> Result<(PathBuf, PathBuf)> {
    if !source.exists() {
        bail!("{} does not exist", source.display());
    }
    let (weights, dir) = if source.is_dir() {
        (source.join(WEIGHTS_FILE), source.to_path_buf())
    } else {
        let dir = source.parent().unwrap_or(Path::new(".")).to_path_buf();
        (source.to_path_buf(), dir)
    };
    let config = dir.join(CONFIG_FILE);
    if !weights.is_file() {
        bail!("{} has no {WEIGHTS_FILE}", source.display());
    }
    if !config.is_file() {
        bail!(
            "{} needs the model's {CONFIG_FILE} beside it ({} is missing)",
            weights.display(),
            config.display()
        );
    }
    Ok((weights, config))
}

/// Imports the GPT-2 at `source` (see [`source_files`]).
pub fn import(source: &Path, on_different: OnDifferentHead) -> Result<Imported> {
    let (weights, config_path) = source_files(source)?;
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let hf_config: Map<String, Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", config_path.display()))?;
    let hf = HfConfig::parse(&text)
        .with_context(|| format!("{} is not a GPT-2 config", config_path.display()))?;
    let config = hf
        .to_config()
        .with_context(|| format!("in {}", config_path.display()))?;
    let file = SafetensorsFile::open(&weights)?;
    let (model, config, head) = import_weights(&file, &hf, config, on_different)
        .with_context(|| format!("cannot import {}", weights.display()))?;
    Ok(Imported {
        model,
        config,
        hf_config,
        head,
    })
}

/// Reads the tensors of a GPT-2 checkpoint by their `transformers` names,
/// checking each one's dtype and shape, and tracking which were read.
struct Reader<'a> {
    file: &'a SafetensorsFile,
    prefix: &'static str,
    read: Vec<String>,
}

impl Reader<'_> {
    fn has(&self, name: &str) -> bool {
        self.file.names().contains(&self.full(name).as_str())
    }

    fn full(&self, name: &str) -> String {
        if name == "lm_head.weight" {
            name.to_string()
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    /// The tensor `name`, which must be f32 of `shape`.
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Array> {
        let full = self.full(name);
        if !self.has(name) {
            bail!(
                "the checkpoint has no tensor {full:?}, which a GPT-2 of this config.json needs \
                 (shape {shape:?})"
            );
        }
        let array = self.file.array(&full)?;
        if array.dtype() != DType::F32 {
            bail!(
                "tensor {full:?} is {:?}; only f32 checkpoints are imported (save it from \
                 `model.float()`)",
                array.dtype()
            );
        }
        if array.shape() != shape {
            bail!(
                "tensor {full:?} has shape {:?} but this config.json needs {shape:?}",
                array.shape()
            );
        }
        self.read.push(full);
        Ok(array)
    }

    /// A `Conv1D` weight `[in, out]` as a `Linear` weight `[out, in]`.
    fn conv1d(&mut self, name: &str, fan_in: usize, fan_out: usize) -> Result<Array> {
        Ok(self.get(name, &[fan_in, fan_out])?.t()?)
    }

    /// Tensors neither read nor known buffers.
    fn unused(&self) -> Vec<String> {
        self.file
            .names()
            .into_iter()
            .filter(|n| !self.read.iter().any(|r| r == n))
            .filter(|n| !(n.ends_with(".attn.bias") || n.ends_with(".attn.masked_bias")))
            .map(str::to_string)
            .collect()
    }
}

fn import_weights(
    file: &SafetensorsFile,
    hf: &HfConfig,
    mut config: Config,
    on_different: OnDifferentHead,
) -> Result<(Gpt, Config, HeadSource)> {
    let prefix = if file.names().iter().any(|n| n.starts_with("transformer.")) {
        "transformer."
    } else {
        ""
    };
    let mut r = Reader {
        file,
        prefix,
        read: Vec::new(),
    };
    let (vocab, dim) = (hf.vocab_size, hf.n_embd);
    let inner = config.mlp_ratio * dim;

    let mut optional = |name: &str| -> Result<Option<Array>> {
        match r.has(name) {
            true => Ok(Some(r.get(name, &[vocab, dim])?)),
            false => Ok(None),
        }
    };
    let wte = optional("wte.weight")?;
    let lm = optional("lm_head.weight")?;
    let (wte, untied, head) = match (wte, lm) {
        (Some(wte), Some(lm)) if !hf.tie_word_embeddings => (wte, Some(lm), HeadSource::Separate),
        (_, None) if !hf.tie_word_embeddings => bail!(
            "config.json sets tie_word_embeddings to false, so the head is its own weight, but              the checkpoint has no \"lm_head.weight\""
        ),
        (Some(wte), None) => (wte, None, HeadSource::FromEmbedding),
        (None, Some(lm)) => (lm, None, HeadSource::FromHead),
        (None, None) => bail!(
            "the checkpoint has neither {:?} nor \"lm_head.weight\"; a GPT-2 needs its token \
             embedding [{vocab}, {dim}]",
            r.full("wte.weight")
        ),
        (Some(wte), Some(lm)) => {
            if wte.to_vec::<f32>()? == lm.to_vec::<f32>()? {
                (wte, None, HeadSource::Equal)
            } else if on_different == OnDifferentHead::Untie {
                (wte, Some(lm), HeadSource::Untied)
            } else {
                bail!(
                    "\"lm_head.weight\" differs from {:?}, so the head is not tied to the \
                     embedding; import it untied with `--on-different-head untie`",
                    r.full("wte.weight")
                );
            }
        }
    };
    config.untied_head = untied.is_some();

    // A model of the right structure, whose every weight is replaced below.
    let mut model = Gpt::new(&config, vocab, Key::new(0))?;
    let mut pair = model.shared.untie()?;
    pair.0 = Embedding::from_weight(wte)?;
    model.shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
    if let (Some(head), Some(lm)) = (model.head.as_mut(), untied) {
        head.weight = lm;
    }
    let positions = r.get("wpe.weight", &[hf.n_positions, dim])?;
    model.positions = Some(Embedding::from_weight(positions)?);
    for (i, block) in model.blocks.iter_mut().enumerate() {
        let name = |s: &str| format!("h.{i}.{s}");
        block.ln1.weight = Some(r.get(&name("ln_1.weight"), &[dim])?);
        block.ln1.bias = Some(r.get(&name("ln_1.bias"), &[dim])?);
        let qkv = r
            .conv1d(&name("attn.c_attn.weight"), dim, 3 * dim)?
            .split(3, 0)?;
        let qkv_bias = r.get(&name("attn.c_attn.bias"), &[3 * dim])?.split(3, 0)?;
        let attention = &mut block.attention;
        for ((proj, w), b) in [
            &mut attention.query_proj,
            &mut attention.key_proj,
            &mut attention.value_proj,
        ]
        .into_iter()
        .zip(qkv)
        .zip(qkv_bias)
        {
            proj.weight = w;
            proj.bias = Some(b);
        }
        attention.output_proj.weight = r.conv1d(&name("attn.c_proj.weight"), dim, dim)?;
        attention.output_proj.bias = Some(r.get(&name("attn.c_proj.bias"), &[dim])?);
        block.ln2.weight = Some(r.get(&name("ln_2.weight"), &[dim])?);
        block.ln2.bias = Some(r.get(&name("ln_2.bias"), &[dim])?);
        let [fc, proj] = &mut block.mlp.layers[..] else {
            bail!("GPT-2's MLP has one hidden layer");
        };
        fc.weight = r.conv1d(&name("mlp.c_fc.weight"), dim, inner)?;
        fc.bias = Some(r.get(&name("mlp.c_fc.bias"), &[inner])?);
        proj.weight = r.conv1d(&name("mlp.c_proj.weight"), inner, dim)?;
        proj.bias = Some(r.get(&name("mlp.c_proj.bias"), &[dim])?);
    }
    model.ln_f.weight = Some(r.get("ln_f.weight", &[dim])?);
    model.ln_f.bias = Some(r.get("ln_f.bias", &[dim])?);
    let unused = r.unused();
    if !unused.is_empty() {
        bail!(
            "the checkpoint holds tensors a GPT-2 of this config.json has no place for: {}",
            unused.join(", ")
        );
    }
    Ok((model, config, head))
}

/// The tensors of `model` under `transformers`' `GPT2LMHeadModel` names and
/// layout, `lm_head.weight` only when the head is untied. Attention
/// projections without biases are written with zero biases, which GPT-2
/// requires and which change nothing.
pub fn export_tensors(model: &Gpt) -> Result<Vec<(String, Array)>> {
    let Some(positions) = &model.positions else {
        bail!(
            "the run uses rotary positions; GPT-2 has learned positions, so it cannot be \
             exported to GPT-2's layout"
        );
    };
    let mut out: Vec<(String, Array)> = Vec::new();
    let mut put = |name: String, a: Array| out.push((format!("transformer.{name}"), a));
    let (embedding, _) = model.shared.call()?;
    put("wte.weight".into(), embedding.weight.clone());
    put("wpe.weight".into(), positions.weight.clone());
    let bias = |l: &Linear| -> Result<Array> {
        match &l.bias {
            Some(b) => Ok(b.clone()),
            None => Ok(Array::zeros(&[l.weight.shape()[0]], l.weight.dtype())?),
        }
    };
    let norm = |a: &Option<Array>, what: &str| -> Result<Array> {
        a.clone()
            .with_context(|| format!("the LayerNorm has no {what}; GPT-2's has both"))
    };
    for (i, block) in model.blocks.iter().enumerate() {
        let name = |s: &str| format!("h.{i}.{s}");
        put(name("ln_1.weight"), norm(&block.ln1.weight, "weight")?);
        put(name("ln_1.bias"), norm(&block.ln1.bias, "bias")?);
        let a = &block.attention;
        let projs = [&a.query_proj, &a.key_proj, &a.value_proj];
        let weights: Vec<&Array> = projs.iter().map(|p| &p.weight).collect();
        put(name("attn.c_attn.weight"), concatenate(&weights, 0)?.t()?);
        let biases = projs.iter().map(|p| bias(p)).collect::<Result<Vec<_>>>()?;
        let biases: Vec<&Array> = biases.iter().collect();
        put(name("attn.c_attn.bias"), concatenate(&biases, 0)?);
        put(name("attn.c_proj.weight"), a.output_proj.weight.t()?);
        put(name("attn.c_proj.bias"), bias(&a.output_proj)?);
        put(name("ln_2.weight"), norm(&block.ln2.weight, "weight")?);
        put(name("ln_2.bias"), norm(&block.ln2.bias, "bias")?);
        let [fc, proj] = &block.mlp.layers[..] else {
            bail!("GPT-2's MLP has one hidden layer");
        };
        put(name("mlp.c_fc.weight"), fc.weight.t()?);
        put(name("mlp.c_fc.bias"), bias(fc)?);
        put(name("mlp.c_proj.weight"), proj.weight.t()?);
        put(name("mlp.c_proj.bias"), bias(proj)?);
    }
    put("ln_f.weight".into(), norm(&model.ln_f.weight, "weight")?);
    put("ln_f.bias".into(), norm(&model.ln_f.bias, "bias")?);
    if let Some(head) = &model.head {
        out.push(("lm_head.weight".to_string(), head.weight.clone()));
    }
    Ok(out)
}

/// The `config.json` of `config`'s model with `vocab` tokens: `base` (the
/// imported file, so its other fields survive) with every field the model
/// fixes set from the run.
pub fn export_config(
    config: &Config,
    vocab: usize,
    base: Option<Map<String, Value>>,
) -> Result<Map<String, Value>> {
    if config.positions != Positions::Learned {
        bail!("GPT-2 has learned positions; a run with rotary positions cannot be exported");
    }
    let mut map = base.unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("architectures".into(), json!(["GPT2LMHeadModel"]));
        m.insert("attn_pdrop".into(), json!(0.0));
        m
    });
    let inner = if config.mlp_ratio == 4 {
        Value::Null
    } else {
        json!(config.mlp_ratio * config.dim)
    };
    let activation = match config.gelu {
        Gelu::Tanh => "gelu_new",
        Gelu::Exact => "gelu",
    };
    for (key, value) in [
        ("model_type", json!("gpt2")),
        ("vocab_size", json!(vocab)),
        ("n_positions", json!(config.context)),
        ("n_embd", json!(config.dim)),
        ("n_layer", json!(config.layers)),
        ("n_head", json!(config.heads)),
        ("n_inner", inner),
        ("activation_function", json!(activation)),
        ("layer_norm_epsilon", json!(config.norm_eps)),
        ("resid_pdrop", json!(config.dropout)),
        ("embd_pdrop", json!(config.dropout)),
        ("scale_attn_weights", json!(true)),
        ("scale_attn_by_inverse_layer_idx", json!(false)),
        ("tie_word_embeddings", json!(!config.untied_head)),
    ] {
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

/// Writes `model` as a Hugging Face GPT-2 directory: `model.safetensors`
/// and `config.json`, each replaced atomically.
pub fn export(
    model: &Gpt,
    config: &Config,
    vocab: usize,
    base: Option<Map<String, Value>>,
    dir: &Path,
) -> Result<()> {
    let hf_config = export_config(config, vocab, base)?;
    let tensors = export_tensors(model)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    serial::save_safetensors_named(dir.join(WEIGHTS_FILE), &tensors)?;
    let text = serde_json::to_string_pretty(&Value::Object(hf_config))? + "\n";
    serial::write_atomically(dir.join(CONFIG_FILE), |w| Ok(w.write_all(text.as_bytes())?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{self, SampleOptions};
    use solstice::tree::{tree_equal, tree_leaves, tree_map};

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-gpt2")
    }

    /// `reference.json`: tokens, transformers' logits `[seq, vocab]` and
    /// greedy continuation.
    struct Reference {
        tokens: Vec<u32>,
        shape: Vec<usize>,
        logits: Vec<f32>,
        greedy: Vec<u32>,
    }

    fn reference() -> Reference {
        let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let ints = |v: &Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        };
        Reference {
            tokens: ints(&v["tokens"]).into_iter().map(|x| x as u32).collect(),
            shape: ints(&v["logits"]["shape"])
                .into_iter()
                .map(|x| x as usize)
                .collect(),
            logits: v["logits"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
            greedy: ints(&v["greedy"]).into_iter().map(|x| x as u32).collect(),
        }
    }

    fn logits(model: &Gpt, tokens: &[u32]) -> Vec<f32> {
        let tokens = Array::from_vec(tokens.to_vec(), &[tokens.len()]).unwrap();
        model
            .forward(&tokens, None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn greedy(model: &Gpt, prompt: &[u32], count: usize) -> Vec<u32> {
        let options = SampleOptions {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        };
        sampling::generate(model, prompt, count, options, &Key::new(0), |_| Ok(())).unwrap()
    }

    /// The fixture's tensors, by name.
    fn tensors(path: &Path) -> Vec<(String, Array)> {
        let file = SafetensorsFile::open(path).unwrap();
        file.names()
            .into_iter()
            .map(|n| (n.to_string(), file.array(n).unwrap()))
            .collect()
    }

    /// A copy of the fixture in a fresh directory, its tensors changed by
    /// `edit`.
    fn variant(edit: impl FnOnce(&mut Vec<(String, Array)>)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut t = tensors(&fixture().join(WEIGHTS_FILE));
        edit(&mut t);
        serial::save_safetensors_named(dir.path().join(WEIGHTS_FILE), &t).unwrap();
        std::fs::copy(fixture().join(CONFIG_FILE), dir.path().join(CONFIG_FILE)).unwrap();
        dir
    }

    fn tensor(t: &[(String, Array)], name: &str) -> Array {
        t.iter().find(|(n, _)| n == name).unwrap().1.clone()
    }

    fn error(source: &Path, on_different: OnDifferentHead) -> String {
        match import(source, on_different) {
            Ok(_) => panic!("importing {} succeeded", source.display()),
            Err(e) => format!("{e:#}"),
        }
    }

    const WTE: &str = "transformer.wte.weight";

    #[test]
    fn imported_logits_match_transformers() {
        let r = reference();
        let imported = import(&fixture(), OnDifferentHead::Error).unwrap();
        assert_eq!(imported.head, HeadSource::FromEmbedding);
        assert_eq!(r.shape, [r.tokens.len(), 256]);
        let diff = max_diff(&logits(&imported.model, &r.tokens), &r.logits);
        assert!(diff <= 1e-5, "max |logits - transformers'| = {diff}");
        // Tied: the [vocab, dim] matrix is one leaf.
        let tied = tree_leaves(&imported.model)
            .iter()
            .filter(|a| a.shape() == [256, 32])
            .count();
        assert_eq!(tied, 1);
        assert!(imported.model.head.is_none());
    }

    #[test]
    fn greedy_decoding_with_the_cache_matches_transformers() {
        let r = reference();
        let imported = import(&fixture().join(WEIGHTS_FILE), OnDifferentHead::Error).unwrap();
        assert_eq!(greedy(&imported.model, &r.tokens, r.greedy.len()), r.greedy);
    }

    #[test]
    fn a_head_equal_to_the_embedding_is_tied() {
        let dir = variant(|t| {
            let wte = tensor(t, WTE);
            t.push(("lm_head.weight".into(), wte.mul_scalar(1.0).unwrap()));
        });
        let imported = import(dir.path(), OnDifferentHead::Error).unwrap();
        assert_eq!(imported.head, HeadSource::Equal);
        assert!(imported.model.head.is_none());
        let r = reference();
        assert!(max_diff(&logits(&imported.model, &r.tokens), &r.logits) <= 1e-5);
    }

    #[test]
    fn a_head_alone_gives_the_embedding() {
        let dir = variant(|t| {
            let i = t.iter().position(|(n, _)| n == WTE).unwrap();
            t[i].0 = "lm_head.weight".into();
        });
        let imported = import(dir.path(), OnDifferentHead::Error).unwrap();
        assert_eq!(imported.head, HeadSource::FromHead);
        assert!(imported.model.head.is_none());
        let r = reference();
        assert!(max_diff(&logits(&imported.model, &r.tokens), &r.logits) <= 1e-5);
    }

    #[test]
    fn a_different_head_is_untied_or_refused_as_asked() {
        // The head is twice the embedding: the hidden states are the
        // tied model's, so the logits are exactly twice transformers'.
        let dir = variant(|t| {
            let wte = tensor(t, WTE);
            t.push(("lm_head.weight".into(), wte.mul_scalar(2.0).unwrap()));
        });
        let imported = import(dir.path(), OnDifferentHead::Untie).unwrap();
        assert_eq!(imported.head, HeadSource::Untied);
        assert!(imported.config.untied_head);
        let head = imported.model.head.as_ref().expect("an untied head");
        let (embedding, _) = imported.model.shared.call().unwrap();
        let wte = tensor(&tensors(&fixture().join(WEIGHTS_FILE)), WTE);
        assert_eq!(
            embedding.weight.to_vec::<f32>().unwrap(),
            wte.to_vec::<f32>().unwrap()
        );
        assert_eq!(
            head.weight.to_vec::<f32>().unwrap(),
            wte.mul_scalar(2.0).unwrap().to_vec::<f32>().unwrap()
        );
        let r = reference();
        let doubled: Vec<f32> = r.logits.iter().map(|x| 2.0 * x).collect();
        let diff = max_diff(&logits(&imported.model, &r.tokens), &doubled);
        assert!(diff <= 2e-5, "{diff}");

        let msg = error(dir.path(), OnDifferentHead::Error);
        assert!(
            msg.contains("\"lm_head.weight\" differs from \"transformer.wte.weight\"")
                && msg.contains("--on-different-head untie"),
            "{msg}"
        );
    }

    /// Every tensor of `a` is in `b` with the same dtype, shape and values,
    /// and the other way round.
    fn same_tensors(a: &Path, b: &Path) {
        let (a, b) = (tensors(a), tensors(b));
        let names = |t: &[(String, Array)]| {
            let mut n: Vec<String> = t.iter().map(|(n, _)| n.clone()).collect();
            n.sort();
            n
        };
        assert_eq!(names(&a), names(&b));
        for (name, x) in &a {
            let y = tensor(&b, name);
            assert_eq!(x.shape(), y.shape(), "{name}");
            assert_eq!(x.dtype(), y.dtype(), "{name}");
            assert_eq!(
                x.to_vec::<f32>().unwrap(),
                y.to_vec::<f32>().unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn export_then_import_gives_the_same_tensors() {
        let imported = import(&fixture(), OnDifferentHead::Error).unwrap();
        let out = tempfile::tempdir().unwrap();
        let base = Some(imported.hf_config.clone());
        export(&imported.model, &imported.config, 256, base, out.path()).unwrap();
        // transformers' own file, tensor for tensor: `lm_head.weight` left
        // out, Conv1D layouts and the fused c_attn restored.
        same_tensors(
            &fixture().join(WEIGHTS_FILE),
            &out.path().join(WEIGHTS_FILE),
        );
        let again = import(out.path(), OnDifferentHead::Error).unwrap();
        assert_eq!(again.head, HeadSource::FromEmbedding);
        assert!(tree_equal(&again.model, &imported.model).unwrap());
        assert_eq!(again.config, imported.config);
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join(CONFIG_FILE)).unwrap())
                .unwrap();
        assert_eq!(written["tie_word_embeddings"], json!(true));
        assert_eq!(written["activation_function"], json!("gelu_new"));

        // Untied: `lm_head.weight` is written and comes back untied.
        let dir = variant(|t| {
            let wte = tensor(t, WTE);
            t.push(("lm_head.weight".into(), wte.mul_scalar(-1.0).unwrap()));
        });
        let untied = import(dir.path(), OnDifferentHead::Untie).unwrap();
        let out = tempfile::tempdir().unwrap();
        export(&untied.model, &untied.config, 256, None, out.path()).unwrap();
        same_tensors(
            &dir.path().join(WEIGHTS_FILE),
            &out.path().join(WEIGHTS_FILE),
        );
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join(CONFIG_FILE)).unwrap())
                .unwrap();
        assert_eq!(written["tie_word_embeddings"], json!(false));
        let again = import(out.path(), OnDifferentHead::Error).unwrap();
        assert_eq!(again.head, HeadSource::Separate);
        assert!(tree_equal(&again.model, &untied.model).unwrap());
    }

    #[test]
    fn bad_checkpoints_get_clear_errors() {
        let missing = variant(|t| t.retain(|(n, _)| n != "transformer.h.1.mlp.c_fc.bias"));
        let msg = error(missing.path(), OnDifferentHead::Error);
        assert!(
            msg.contains("no tensor \"transformer.h.1.mlp.c_fc.bias\"") && msg.contains("[128]"),
            "{msg}"
        );

        let name = "transformer.h.0.mlp.c_fc.weight";
        let transposed = variant(|t| {
            let i = t.iter().position(|(n, _)| n == name).unwrap();
            t[i].1 = t[i].1.t().unwrap();
        });
        let msg = error(transposed.path(), OnDifferentHead::Error);
        assert!(
            msg.contains(&format!("tensor \"{name}\" has shape [128, 32]"))
                && msg.contains("needs [32, 128]"),
            "{msg}"
        );

        let f64 = variant(|t| {
            let i = t
                .iter()
                .position(|(n, _)| n == "transformer.ln_f.bias")
                .unwrap();
            t[i].1 = t[i].1.astype(DType::F64).unwrap();
        });
        let msg = error(f64.path(), OnDifferentHead::Error);
        assert!(msg.contains("\"transformer.ln_f.bias\" is F64"), "{msg}");

        let extra = variant(|t| {
            t.push((
                "transformer.h.9.oops".into(),
                Array::zeros(&[2], DType::F32).unwrap(),
            ))
        });
        let msg = error(extra.path(), OnDifferentHead::Error);
        assert!(msg.contains("no place for: transformer.h.9.oops"), "{msg}");

        let corrupt = variant(|_| {});
        let path = corrupt.path().join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let msg = error(corrupt.path(), OnDifferentHead::Error);
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("not a valid safetensors"),
            "{msg}"
        );

        let no_config = variant(|_| {});
        std::fs::remove_file(no_config.path().join(CONFIG_FILE)).unwrap();
        let msg = error(no_config.path(), OnDifferentHead::Error);
        assert!(msg.contains("needs the model's config.json"), "{msg}");

        let untied = variant(|_| {});
        let config = untied.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replace(
            "\"tie_word_embeddings\": true",
            "\"tie_word_embeddings\": false",
        );
        std::fs::write(&config, text).unwrap();
        let msg = error(untied.path(), OnDifferentHead::Untie);
        assert!(
            msg.contains("tie_word_embeddings to false") && msg.contains("no \"lm_head.weight\""),
            "{msg}"
        );

        let relu = variant(|_| {});
        let config = relu.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("\"gelu_new\"", "\"relu\"")).unwrap();
        let msg = error(relu.path(), OnDifferentHead::Error);
        assert!(
            msg.contains("activation_function \"relu\" is not supported"),
            "{msg}"
        );
    }

    /// The files `tools/reference/hf_gpt2_ref.py --check-export` loads with
    /// transformers: the imported model with perturbed weights (so the
    /// check is not the fixture again), exported tied and untied, with
    /// solstice's logits and greedy tokens in `expected.json`. Written with
    /// `SOLSTICE_WRITE_FIXTURES=1`; otherwise checked to be what export
    /// writes today.
    #[test]
    fn exports_for_transformers() {
        let r = reference();
        for (case, on_different) in [("tied", false), ("untied", true)] {
            let source = variant(|t| {
                if on_different {
                    let wte = tensor(t, WTE);
                    t.push(("lm_head.weight".into(), wte.mul_scalar(-0.5).unwrap()));
                }
            });
            let imported = import(source.path(), OnDifferentHead::Untie).unwrap();
            let mut i = 0u32;
            let model = tree_map(&imported.model, |_, a| {
                if a.is_hole() {
                    return Ok(a.clone());
                }
                i += 1;
                let noise = solstice::random::normal(Key::new(7).fold_in(i), a.shape(), a.dtype())?;
                a.add(&noise.mul_scalar(0.05)?)
            })
            .unwrap();
            let out = tempfile::tempdir().unwrap();
            let base = Some(imported.hf_config.clone());
            export(&model, &imported.config, 256, base, out.path()).unwrap();
            let expected = json!({
                "tokens": r.tokens,
                "logits": {"shape": r.shape, "data": logits(&model, &r.tokens)},
                "greedy": greedy(&model, &r.tokens, r.greedy.len()),
                "tied": !on_different,
            });
            let committed = fixture().join("from_solstice").join(case);
            if std::env::var_os("SOLSTICE_WRITE_FIXTURES").is_some() {
                std::fs::create_dir_all(&committed).unwrap();
                for file in [WEIGHTS_FILE, CONFIG_FILE] {
                    std::fs::copy(out.path().join(file), committed.join(file)).unwrap();
                }
                let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
                std::fs::write(committed.join("expected.json"), text).unwrap();
            }
            for file in [WEIGHTS_FILE, CONFIG_FILE] {
                assert!(
                    std::fs::read(out.path().join(file)).unwrap()
                        == std::fs::read(committed.join(file)).unwrap(),
                    "{case}/{file} is stale: rewrite it with SOLSTICE_WRITE_FIXTURES=1"
                );
            }
            let text = std::fs::read_to_string(committed.join("expected.json")).unwrap();
            let stored: Value = serde_json::from_str(&text).unwrap();
            let data = |v: &Value| -> Vec<f32> {
                v["logits"]["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            };
            assert!(max_diff(&data(&stored), &data(&expected)) <= 1e-5, "{case}");
            assert_eq!(stored["greedy"], expected["greedy"], "{case}");
        }
    }
}
