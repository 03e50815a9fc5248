//! The seed's language model (Equinox's `eqx.nn.Shared` example), shared by
//! the tests: an embedding whose matrix is tied to the output layer's weight.

use solstice::nn::{Embedding, Linear, Shared};
use solstice::random::Key;
use solstice::{Array, Module, Result, one_hot, vmap};

#[derive(Module)]
pub struct LanguageModel {
    pub shared: Shared<(Embedding, Linear)>,
}

impl LanguageModel {
    /// As in Equinox: `k1, k2 = split(key)`, the embedding from `k1`, the
    /// head from `k2`, the head's weight tied to the embedding's.
    pub fn new(vocab: usize, dim: usize, key: Key) -> Result<Self> {
        let [k1, k2] = key.split();
        let embedding = Embedding::new(vocab, dim, k1)?;
        let linear = Linear::new(dim, vocab, k2)?;
        let shared = Shared::new(
            (embedding, linear),
            |p| &mut p.1.weight,
            |p| p.0.weight.clone(),
        )?;
        Ok(Self { shared })
    }

    /// Logits for each token of a sequence.
    pub fn forward(&self, tokens: &Array) -> Result<Array> {
        let (embedding, linear) = self.shared.call()?;
        assert!(
            embedding.weight.is(&linear.weight),
            "the tie holds inside the call"
        );
        let values = vmap(|t: &Array| embedding.forward(t))(tokens)?;
        vmap(|v: &Array| linear.forward(v))(&values)
    }
}

/// Mean cross-entropy of `[n, classes]` logits against `n` integer targets.
pub fn cross_entropy(logits: &Array, targets: &Array) -> Result<Array> {
    let onehot = one_hot(targets, logits.shape()[1], logits.dtype())?;
    logits
        .log_softmax(-1)?
        .mul(&onehot)?
        .sum(&[-1])?
        .mean_all()?
        .neg()
}

/// The language model's loss on `(tokens, targets)`.
pub fn loss(model: &LanguageModel, (x, y): &(Array, Array)) -> Result<Array> {
    cross_entropy(&model.forward(x)?, y)
}
