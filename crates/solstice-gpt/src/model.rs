//! The GPT: token embedding tied to the output head through [`Shared`],
//! learned or rotary positions, pre-LayerNorm blocks (causal
//! [`MultiheadAttention`] and an [`Mlp`]), dropout, a final LayerNorm.
//!
//! ```text
//! x = E[tokens] (+ P[0..seq])                 E: [vocab, dim], tied to the head
//! x = x + drop(attn(ln1(x)))                  per block
//! x = x + drop(mlp(ln2(x)))
//! logits = ln_f(x) E^T                        [seq, vocab]
//! ```
//!
//! As in Equinox, `forward` takes one sequence; batches come from `vmap`.
//!
//! A checkpoint whose head differs from its embedding (see
//! [`crate::hf`]) is held with a head of its own in [`Gpt::head`]; the
//! tied model keeps `head` empty, so its matrix stays one leaf.

use solstice::nn::{
    Activation, Dropout, Embedding, LayerNorm, Linear, Mlp, MlpOptions, MultiheadAttention,
    MultiheadAttentionOptions, NormOptions, RotaryPositionalEmbedding, Shared,
};
use solstice::random::{self, Key};
use solstice::{Array, DType, Module, Result, one_hot, vmap};

use crate::attention::{self, LayerCache};
use crate::config::{Config, Gelu, Positions};

/// One pre-LayerNorm transformer block.
#[derive(Module)]
pub struct Block {
    /// Before attention.
    pub ln1: LayerNorm,
    /// Causal self-attention.
    pub attention: MultiheadAttention,
    /// Before the MLP.
    pub ln2: LayerNorm,
    /// `dim -> mlp_ratio * dim -> dim`, GELU.
    pub mlp: Mlp,
    /// On both residual branches.
    pub dropout: Dropout,
}

/// The model. See the [module docs](self).
#[derive(Module)]
pub struct Gpt {
    /// The token embedding and the output head, whose weight is the
    /// embedding's.
    pub shared: Shared<(Embedding, Linear)>,
    /// An output head of its own, used instead of the tied one when present
    /// (`Config::untied_head`); `None` for the tied model, where it stores
    /// nothing.
    pub head: Option<Linear>,
    /// Learned positions (`None` with rotary positions).
    pub positions: Option<Embedding>,
    /// The blocks, first to last.
    pub blocks: Vec<Block>,
    /// After the last block.
    pub ln_f: LayerNorm,
    /// On the embeddings.
    pub dropout: Dropout,
    /// Rotary positions on queries and keys (`None` with learned ones).
    pub rope: Option<RotaryPositionalEmbedding>,
    /// The longest sequence.
    #[module(static)]
    pub context: usize,
}

impl Gpt {
    /// A model of `config`'s shapes over `vocab` tokens, initialised from
    /// `key`.
    pub fn new(config: &Config, vocab: usize, key: Key) -> Result<Gpt> {
        let [k_tok, k_head, k_pos, k_blocks] = key.split();
        let dim = config.dim;
        let table =
            random::normal(k_tok, &[vocab, dim], DType::F32)?.mul_scalar(config.init_std)?;
        let embedding = Embedding::from_weight(table)?;
        let head = Linear::no_bias(dim, vocab, k_head.clone())?;
        // The tied head's own weight is dropped for the embedding's, so its
        // key is free for an untied head.
        let untied = if config.untied_head {
            Some(Linear::no_bias(dim, vocab, k_head)?)
        } else {
            None
        };
        // The head's weight [vocab, dim] is the embedding table.
        let shared = Shared::new(
            (embedding, head),
            |p| &mut p.1.weight,
            |p| p.0.weight.clone(),
        )?;
        let (positions, rope) = match config.positions {
            Positions::Learned => {
                let table = random::normal(k_pos, &[config.context, dim], DType::F32)?
                    .mul_scalar(config.init_std)?;
                (Some(Embedding::from_weight(table)?), None)
            }
            Positions::Rotary => (
                None,
                Some(RotaryPositionalEmbedding::new(dim / config.heads)?),
            ),
        };
        let blocks = k_blocks
            .split_n(config.layers)
            .into_iter()
            .map(|k| Block::new(config, k))
            .collect::<Result<Vec<_>>>()?;
        Ok(Gpt {
            shared,
            head: untied,
            positions,
            blocks,
            ln_f: layer_norm(config)?,
            dropout: Dropout::new(config.dropout)?,
            rope,
            context: config.context,
        })
    }

    /// Next-token logits `[seq, vocab]` for one sequence of token ids
    /// `[seq]`. With `key`, dropout is on (training); without, it is off.
    pub fn forward(&self, tokens: &Array, key: Option<&Key>) -> Result<Array> {
        let (embedding, tied) = self.shared.call()?;
        let head = self.head.as_ref().unwrap_or(&tied);
        let seq = tokens.shape()[0];
        let mut x = vmap(|t: &Array| embedding.forward(t))(tokens)?;
        if let Some(positions) = &self.positions {
            let index = Array::arange(seq, DType::U32)?;
            x = x.add(&vmap(|p: &Array| positions.forward(p))(&index)?)?;
        }
        let keys = match key {
            Some(key) => key
                .split_n(self.blocks.len() + 1)
                .into_iter()
                .map(Some)
                .collect(),
            None => vec![None; self.blocks.len() + 1],
        };
        x = dropout(&self.dropout, &x, keys[0].as_ref())?;
        for (block, key) in self.blocks.iter().zip(&keys[1..]) {
            x = block.forward(&x, self.rope.as_ref(), key.as_ref())?;
        }
        let x = vmap(|v: &Array| self.ln_f.forward(v))(&x)?;
        vmap(|v: &Array| head.forward(v))(&x)
    }

    /// Logits `[vocab]` for the token at position `caches[0].len()`, given
    /// the earlier positions' keys and values in `caches` (one per block),
    /// which gain this position's. Dropout is off.
    pub fn forward_one(&self, token: u32, caches: &mut [LayerCache]) -> Result<Array> {
        let (embedding, tied) = self.shared.call()?;
        let head = self.head.as_ref().unwrap_or(&tied);
        let position = caches[0].len();
        let mut x = embedding.forward(&Array::scalar(token)?)?;
        if let Some(positions) = &self.positions {
            x = x.add(&positions.forward(&Array::scalar(position as u32)?)?)?;
        }
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            let h = block.ln1.forward(&x)?;
            x = x.add(&attention::attend_one(
                &block.attention,
                self.rope.as_ref(),
                &h,
                cache,
            )?)?;
            x = x.add(&block.mlp.forward(&block.ln2.forward(&x)?)?)?;
        }
        head.forward(&self.ln_f.forward(&x)?)
    }

    /// The number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.shared.pytree().0.num_embeddings
    }

    /// Empty caches for [`forward_one`](Self::forward_one).
    pub fn new_caches(&self) -> Vec<LayerCache> {
        vec![LayerCache::default(); self.blocks.len()]
    }
}

impl Block {
    fn new(config: &Config, key: Key) -> Result<Block> {
        let [k_attn, k_mlp] = key.split();
        let dim = config.dim;
        let options = MlpOptions {
            activation: match config.gelu {
                Gelu::Exact => Activation::gelu(),
                Gelu::Tanh => Activation::gelu_tanh(),
            },
            ..MlpOptions::default()
        };
        let bias = config.attention_bias;
        let attention = MultiheadAttentionOptions {
            use_query_bias: bias,
            use_key_bias: bias,
            use_value_bias: bias,
            use_output_bias: bias,
            ..MultiheadAttentionOptions::default()
        };
        Ok(Block {
            ln1: layer_norm(config)?,
            attention: MultiheadAttention::with_options(config.heads, dim, attention, k_attn)?,
            ln2: layer_norm(config)?,
            mlp: Mlp::with_options(dim, dim, config.mlp_ratio * dim, 1, options, k_mlp)?,
            dropout: Dropout::new(config.dropout)?,
        })
    }

    /// `x` `[seq, dim]` through the block.
    fn forward(
        &self,
        x: &Array,
        rope: Option<&RotaryPositionalEmbedding>,
        key: Option<&Key>,
    ) -> Result<Array> {
        let [k1, k2] = match key {
            Some(key) => key.split().map(Some),
            None => [None, None],
        };
        let h = vmap(|v: &Array| self.ln1.forward(v))(x)?;
        let a = attention::self_attention(&self.attention, rope, &h)?;
        let x = x.add(&dropout(&self.dropout, &a, k1.as_ref())?)?;
        let h = vmap(|v: &Array| self.ln2.forward(v))(&x)?;
        let m = vmap(|v: &Array| self.mlp.forward(v))(&h)?;
        x.add(&dropout(&self.dropout, &m, k2.as_ref())?)
    }
}

/// A LayerNorm over the residual stream with the config's epsilon.
fn layer_norm(config: &Config) -> Result<LayerNorm> {
    let options = NormOptions {
        eps: config.norm_eps,
        ..NormOptions::default()
    };
    LayerNorm::with_options(&[config.dim], options)
}

fn dropout(layer: &Dropout, x: &Array, key: Option<&Key>) -> Result<Array> {
    match key {
        Some(key) => layer.forward(x, key.clone()),
        None => layer.forward_inference(x),
    }
}

/// Mean next-token cross-entropy of `model` on a batch: inputs and targets
/// `[batch, seq]`. `key` turns dropout on, one key per sequence.
pub fn loss(model: &Gpt, inputs: &Array, targets: &Array, key: Option<&Key>) -> Result<Array> {
    let logits = match key {
        Some(key) => {
            let keys = key.split_batch(inputs.shape()[0]);
            vmap(|(t, k): &(Array, Key)| model.forward(t, Some(k)))(&(inputs.clone(), keys))?
        }
        None => vmap(|t: &Array| model.forward(t, None))(inputs)?,
    };
    let vocab = logits.shape()[2];
    let logp = logits.log_softmax(-1)?;
    logp.mul(&one_hot(targets, vocab, logp.dtype())?)?
        .sum(&[-1])?
        .mean_all()?
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(positions: Positions) -> Config {
        Config {
            layers: 2,
            heads: 2,
            dim: 8,
            context: 6,
            positions,
            ..Config::defaults()
        }
    }

    /// Decoding one position at a time against the cache gives the logits
    /// of a whole-sequence pass, position by position.
    fn check_incremental_matches_full(positions: Positions) {
        let model = Gpt::new(&config(positions), 11, Key::new(4)).unwrap();
        let tokens: Vec<u32> = vec![3, 1, 4, 1, 5, 9];
        let full = model
            .forward(&Array::from_vec(tokens.clone(), &[6]).unwrap(), None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mut caches = model.new_caches();
        for (i, &t) in tokens.iter().enumerate() {
            let one = model
                .forward_one(t, &mut caches)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            for (a, b) in one.iter().zip(&full[i * 11..(i + 1) * 11]) {
                assert!((a - b).abs() < 1e-5, "position {i}: {a} vs {b}");
            }
        }
        assert_eq!(caches[1].len(), 6);
    }

    #[test]
    fn incremental_decoding_matches_the_full_pass_with_learned_positions() {
        check_incremental_matches_full(Positions::Learned);
    }

    #[test]
    fn incremental_decoding_matches_the_full_pass_with_rotary_positions() {
        check_incremental_matches_full(Positions::Rotary);
    }

    #[test]
    fn the_head_is_the_embedding() {
        let model = Gpt::new(&config(Positions::Learned), 11, Key::new(0)).unwrap();
        let (embedding, head) = model.shared.call().unwrap();
        assert!(embedding.weight.is(&head.weight));
        let tied = solstice::tree::tree_leaves(&model)
            .iter()
            .filter(|a| a.shape() == [11, 8])
            .count();
        assert_eq!(tied, 1, "the tied matrix is one leaf");
    }

    #[test]
    fn dropout_changes_the_loss_only_with_a_key() {
        let config = Config {
            dropout: 0.5,
            ..config(Positions::Learned)
        };
        let model = Gpt::new(&config, 11, Key::new(0)).unwrap();
        let x = Array::from_vec(vec![1u32, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1], &[2, 6]).unwrap();
        let y = Array::from_vec(vec![2u32, 3, 4, 5, 6, 7, 5, 4, 3, 2, 1, 0], &[2, 6]).unwrap();
        let value = |k: Option<&Key>| loss(&model, &x, &y, k).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(value(None), value(None));
        assert_ne!(value(None), value(Some(&Key::new(1))));
        assert_eq!(value(Some(&Key::new(1))), value(Some(&Key::new(1))));
    }
}
