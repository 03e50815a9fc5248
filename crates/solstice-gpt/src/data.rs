//! The corpus: read from a file or a directory (or the embedded default),
//! tokenized, split into training and validation, and cut into batches.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use solstice::random::{self, Key};
use solstice::{Array, DType};

use crate::corpus;
use crate::tokenizer::Tokenizer;

/// The text to train on: the file or the directory's files (sorted by
/// path, each followed by a blank line), or the embedded corpus.
pub fn read_corpus(path: Option<&Path>) -> Result<String> {
    let Some(path) = path else {
        return Ok(corpus::default_corpus(corpus::DEFAULT_STORIES));
    };
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the data path {}", path.display()))?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            bail!(
                "the data directory {} holds no files; give a UTF-8 text file or a \
                 directory of them",
                path.display()
            );
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut text = String::new();
    for file in &files {
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read the data file {}", file.display()))?;
        let part = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "the data file {} is not UTF-8 text (invalid byte at offset {}); \
                 convert it to UTF-8 or leave it out",
                file.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        text.push_str(&part);
        if files.len() > 1 {
            text.push_str("\n\n");
        }
    }
    if text.trim().is_empty() {
        bail!(
            "the corpus at {} is empty; give it some text to learn from",
            path.display()
        );
    }
    Ok(text)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Token ids split into a training part and a validation part.
pub struct Dataset {
    /// The training tokens (the corpus's start).
    pub train: Vec<u32>,
    /// The validation tokens (the corpus's end).
    pub val: Vec<u32>,
}

impl Dataset {
    /// Tokenizes `text` and holds out its last `val_fraction` for
    /// validation. Both parts need more than `context` tokens.
    pub fn new(
        text: &str,
        tokenizer: &Tokenizer,
        val_fraction: f64,
        context: usize,
    ) -> Result<Dataset> {
        let ids = tokenizer.encode(text)?;
        let n_val = ((ids.len() as f64) * val_fraction).round() as usize;
        let n_train = ids.len() - n_val;
        if n_val <= context || n_train <= context {
            bail!(
                "the corpus has {} tokens: too few for a context of {context} with \
                 {:.0}% held out for validation (each part needs more than {context}); \
                 give more text or a smaller --context",
                ids.len(),
                val_fraction * 100.0
            );
        }
        let mut train = ids;
        let val = train.split_off(n_train);
        Ok(Dataset { train, val })
    }

    /// Cross-entropy (nats per token) of the validation part under the
    /// training part's token frequencies, with add-one smoothing: the loss
    /// of a model that ignores context.
    pub fn unigram_baseline(&self, vocab: usize) -> f64 {
        let mut counts = vec![1.0f64; vocab];
        for &t in &self.train {
            counts[t as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let nll: f64 = self
            .val
            .iter()
            .map(|&t| -(counts[t as usize] / total).ln())
            .sum();
        nll / self.val.len() as f64
    }
}

/// `batch` windows of `context + 1` tokens at offsets drawn from `key`:
/// inputs `[batch, context]` and targets (the next tokens) of the same
/// shape.
pub fn batch(tokens: &[u32], key: Key, batch: usize, context: usize) -> Result<(Array, Array)> {
    let max_start = tokens.len() - context - 1;
    let starts = random::randint(key, &[batch], 0, max_start as i32 + 1, DType::I32)?;
    let mut inputs = Vec::with_capacity(batch * context);
    let mut targets = Vec::with_capacity(batch * context);
    for start in starts.to_vec::<i32>()? {
        let window = &tokens[start as usize..start as usize + context + 1];
        inputs.extend_from_slice(&window[..context]);
        targets.extend_from_slice(&window[1..]);
    }
    Ok((
        Array::from_vec(inputs, &[batch, context])?,
        Array::from_vec(targets, &[batch, context])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_shifted_windows() {
        let tokens: Vec<u32> = (0..100).collect();
        let (x, y) = batch(&tokens, Key::new(3), 4, 8).unwrap();
        let (x, y) = (x.to_vec::<u32>().unwrap(), y.to_vec::<u32>().unwrap());
        for (a, b) in x.iter().zip(&y) {
            assert_eq!(a + 1, *b);
        }
    }

    #[test]
    fn the_split_holds_out_the_end() {
        let text = "abcdefghij".repeat(10);
        let d = Dataset::new(&text, &Tokenizer::Bytes, 0.2, 4).unwrap();
        assert_eq!((d.train.len(), d.val.len()), (80, 20));
        assert!(Dataset::new("abc", &Tokenizer::Bytes, 0.2, 4).is_err());
        // Uniform text: the baseline is close to ln(10) (add-one smoothing adds a little).
        let b = d.unigram_baseline(256);
        assert!(b > 10f64.ln() && b < 10f64.ln() + 1.5, "{b}");
    }
}
