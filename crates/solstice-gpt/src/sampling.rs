//! Text generation: incremental decoding with a key/value cache, and the
//! choice of each token by temperature, top-k and top-p.
//!
//! Each new token costs one position through the model
//! ([`Gpt::forward_one`]); earlier positions' keys and values are cached.
//! The logits of one position (a vector of `vocab` floats) are read back
//! and the token is chosen on the host.

use anyhow::{Result, bail};
use solstice::DType;
use solstice::random::{self, Key};

use crate::attention::LayerCache;
use crate::model::Gpt;

/// How to choose each token.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    /// Logits are divided by this; `0` picks the most likely token.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (`0`: all).
    pub top_k: usize,
    /// Keep the fewest most likely tokens whose probability reaches `p`
    /// (`1`: all).
    pub top_p: f64,
}

impl SampleOptions {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            bail!(
                "--temperature must be 0 or more but is {}",
                self.temperature
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("--top-p must be in (0, 1] but is {}", self.top_p);
        }
        Ok(())
    }
}

/// Generates `count` tokens after `prompt` (which must not be empty),
/// calling `emit` with each as it is chosen. The same `key` gives the same
/// tokens.
pub fn generate(
    model: &Gpt,
    prompt: &[u32],
    count: usize,
    options: SampleOptions,
    key: &Key,
    mut emit: impl FnMut(u32) -> Result<()>,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        bail!("the prompt has no tokens; give at least one");
    }
    let mut tokens = prompt.to_vec();
    let mut caches = model.new_caches();
    let mut logits = prefill(model, &tokens, &mut caches)?;
    for i in 0..count {
        let token = choose(&logits, options, &key.fold_in(i as u32))?;
        emit(token)?;
        tokens.push(token);
        if i + 1 == count {
            break;
        }
        logits = if caches[0].len() == model.context {
            // The context is full: start again from its second half.
            caches = model.new_caches();
            prefill(
                model,
                &tokens[tokens.len() - model.context / 2..],
                &mut caches,
            )?
        } else {
            model.forward_one(token, &mut caches)?.to_vec::<f32>()?
        };
    }
    Ok(tokens[prompt.len()..].to_vec())
}

/// Runs `tokens` through the model one position at a time (keeping at most
/// the last `context`), and returns the last position's logits.
fn prefill(model: &Gpt, tokens: &[u32], caches: &mut [LayerCache]) -> Result<Vec<f32>> {
    let start = tokens.len().saturating_sub(model.context);
    let mut logits = Vec::new();
    for &token in &tokens[start..] {
        logits = model.forward_one(token, caches)?.to_vec::<f32>()?;
    }
    Ok(logits)
}

/// One token from `logits` under `options`, drawn with `key`.
pub fn choose(logits: &[f32], options: SampleOptions, key: &Key) -> Result<u32> {
    if options.temperature == 0.0 {
        let best = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        return Ok(best as u32);
    }
    // Most likely first; ties by id so the order is fixed.
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if options.top_k > 0 {
        order.truncate(options.top_k);
    }
    let max = f64::from(logits[order[0]]);
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - max) / options.temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut kept = 0;
    let mut mass = 0.0;
    for w in &weights {
        mass += w / total;
        kept += 1;
        if mass >= options.top_p {
            break;
        }
    }
    let total: f64 = weights[..kept].iter().sum();
    let u = random::uniform(key.clone(), &[], DType::F64, 0.0, 1.0)?.to_scalar::<f64>()?;
    let mut acc = 0.0;
    for (&i, w) in order.iter().zip(&weights[..kept]) {
        acc += w / total;
        if u < acc {
            return Ok(i as u32);
        }
    }
    Ok(order[kept - 1] as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(temperature: f64, top_k: usize, top_p: f64) -> SampleOptions {
        SampleOptions {
            temperature,
            top_k,
            top_p,
        }
    }

    #[test]
    fn greedy_top_k_and_top_p_keep_the_likely_tokens() {
        let logits = [0.0f32, 3.0, 1.0, 2.9];
        assert_eq!(
            choose(&logits, options(0.0, 0, 1.0), &Key::new(0)).unwrap(),
            1
        );
        for seed in 0..50 {
            let k = Key::new(seed);
            let top2 = choose(&logits, options(1.0, 2, 1.0), &k).unwrap();
            assert!(top2 == 1 || top2 == 3);
            // Tokens 1 and 3 hold about 0.79 of the mass: p = 0.5 keeps them only.
            let nucleus = choose(&logits, options(1.0, 0, 0.5), &k).unwrap();
            assert!(nucleus == 1 || nucleus == 3);
            assert_eq!(
                choose(&logits, options(1.0, 0, 1.0), &k).unwrap(),
                choose(&logits, options(1.0, 0, 1.0), &k).unwrap()
            );
        }
        // A high temperature reaches the unlikely tokens too.
        let seen: std::collections::HashSet<u32> = (0..200)
            .map(|s| choose(&logits, options(100.0, 0, 1.0), &Key::new(s)).unwrap())
            .collect();
        assert_eq!(seen.len(), 4);
    }
}
