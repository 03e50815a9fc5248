//! Text to token ids and back: bytes by default, or a Hugging Face
//! `tokenizer.json` with the `hf-tokenizer` feature.

use std::path::Path;

use anyhow::{Result, bail};

/// A tokenizer: bytes (256 ids) or a Hugging Face tokenizer.
pub enum Tokenizer {
    /// Each UTF-8 byte is a token.
    Bytes,
    /// A `tokenizer.json` loaded with the `tokenizers` crate.
    #[cfg(feature = "hf-tokenizer")]
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl Tokenizer {
    /// Bytes, or the tokenizer at `path`.
    pub fn load(path: Option<&Path>) -> Result<Tokenizer> {
        match path {
            None => Ok(Tokenizer::Bytes),
            Some(path) => Self::load_hf(path),
        }
    }

    #[cfg(feature = "hf-tokenizer")]
    fn load_hf(path: &Path) -> Result<Tokenizer> {
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("cannot load the tokenizer {}: {e}", path.display()))?;
        Ok(Tokenizer::HuggingFace(Box::new(tokenizer)))
    }

    #[cfg(not(feature = "hf-tokenizer"))]
    fn load_hf(path: &Path) -> Result<Tokenizer> {
        bail!(
            "--tokenizer {} needs the `hf-tokenizer` feature: rebuild with \
             `cargo run --release -p solstice-gpt --features hf-tokenizer`",
            path.display()
        )
    }

    /// The number of token ids.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes => 256,
            #[cfg(feature = "hf-tokenizer")]
            Tokenizer::HuggingFace(t) => t.get_vocab_size(true),
        }
    }

    /// The ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(text.bytes().map(u32::from).collect()),
            #[cfg(feature = "hf-tokenizer")]
            Tokenizer::HuggingFace(t) => {
                let encoding = t
                    .encode(text, false)
                    .map_err(|e| anyhow::anyhow!("cannot tokenize the text: {e}"))?;
                Ok(encoding.get_ids().to_vec())
            }
        }
    }

    /// A decoder that turns ids into text as they arrive.
    pub fn stream(&self) -> Decoder<'_> {
        Decoder {
            tokenizer: self,
            pending: Vec::new(),
            ids: Vec::new(),
            emitted: 0,
        }
    }

    /// The text of `ids`, with invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut decoder = self.stream();
        let mut text = String::new();
        for &id in ids {
            text.push_str(&decoder.push(id)?);
        }
        text.push_str(&decoder.finish());
        Ok(text)
    }
}

/// Turns a stream of ids into text, holding back a byte sequence until it
/// is a whole character.
pub struct Decoder<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u8>,
    #[cfg_attr(not(feature = "hf-tokenizer"), allow(dead_code))]
    ids: Vec<u32>,
    #[cfg_attr(not(feature = "hf-tokenizer"), allow(dead_code))]
    emitted: usize,
}

impl Decoder<'_> {
    /// The text that `id` completes (maybe empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        match self.tokenizer {
            Tokenizer::Bytes => {
                let Ok(byte) = u8::try_from(id) else {
                    bail!("token id {id} is not a byte (the byte tokenizer has 256 ids)");
                };
                self.pending.push(byte);
                Ok(self.take_complete())
            }
            #[cfg(feature = "hf-tokenizer")]
            Tokenizer::HuggingFace(t) => {
                self.ids.push(id);
                let text = t
                    .decode(&self.ids, false)
                    .map_err(|e| anyhow::anyhow!("cannot decode tokens: {e}"))?;
                // Hold back a trailing replacement character: it may be half a
                // character whose other half is the next token.
                if text.ends_with('\u{FFFD}') || text.len() < self.emitted {
                    return Ok(String::new());
                }
                let new = text[self.emitted..].to_string();
                self.emitted = text.len();
                Ok(new)
            }
        }
    }

    /// Whatever is still held back, with invalid bytes replaced.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }

    fn take_complete(&mut self) -> String {
        let (valid, rest) = match std::str::from_utf8(&self.pending) {
            Ok(_) => (self.pending.len(), 0),
            Err(e) => (e.valid_up_to(), self.pending.len() - e.valid_up_to()),
        };
        // An invalid sequence (not merely an unfinished one) is replaced now.
        let broken = rest > 0
            && std::str::from_utf8(&self.pending[valid..])
                .err()
                .and_then(|e| e.error_len())
                .is_some();
        if broken {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            return text;
        }
        let text = String::from_utf8(self.pending[..valid].to_vec()).expect("checked as UTF-8");
        self.pending.drain(..valid);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_stream_whole_characters() {
        let t = Tokenizer::Bytes;
        let ids = t.encode("héllo ☀").unwrap();
        assert_eq!(ids.len(), "héllo ☀".len());
        assert_eq!(t.decode(&ids).unwrap(), "héllo ☀");
        let mut d = t.stream();
        let sun = "☀".as_bytes();
        assert_eq!(d.push(u32::from(sun[0])).unwrap(), "");
        assert_eq!(d.push(u32::from(sun[1])).unwrap(), "");
        assert_eq!(d.push(u32::from(sun[2])).unwrap(), "☀");
        assert_eq!(d.push(0xff).unwrap(), "\u{FFFD}");
    }
}
