//! [`Embedding`]: a lookup table, on a single index.
//!
//! - `weight`: `[num_embeddings, embedding_size]`, initialised N(0, 1) from
//!   the key as Equinox does (no split).
//! - Input: a 0-d integer index; output: `[embedding_size]`, the row.
//!   Batch with [`vmap`](crate::vmap): `vmap(|t| embedding.forward(t))`
//!   runs as a single gather.
//! - **An index out of range is an error**, also under `vmap` and `grad`,
//!   where JAX's `weight[index]` would silently clamp it to the last row.
//!   This is a deliberate difference: a token id past the vocabulary is a
//!   bug upstream, and a clamped lookup would train on the wrong row.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::Embedding};
//! # fn main() -> solstice::Result<()> {
//! let table = Array::from_vec(vec![0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0], &[3, 2])?;
//! let embedding = Embedding::from_weight(table)?;
//! let row = embedding.forward(&Array::scalar(1i64)?)?;
//! assert_eq!(row.to_vec::<f32>()?, vec![10.0, 11.0]);
//! assert_eq!(
//!     format!("{embedding:?}"),
//!     "Embedding(num_embeddings=3, embedding_size=2, weight=f32[3,2])"
//! );
//! // Out of range: an error, not the clamped last row.
//! let err = embedding.forward(&Array::scalar(3i64)?).unwrap_err();
//! assert!(err.to_string().contains("out of range"), "{err}");
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::random::{self, Key};

/// An embedding table. See the [module docs](self).
#[derive(Module)]
pub struct Embedding {
    /// The number of rows.
    #[module(static)]
    pub num_embeddings: usize,
    /// The length of each row.
    #[module(static)]
    pub embedding_size: usize,
    /// `[num_embeddings, embedding_size]`.
    pub weight: Array,
}

impl Embedding {
    /// A table of f32 initialised N(0, 1) from `key`.
    pub fn new(num_embeddings: usize, embedding_size: usize, key: Key) -> Result<Self> {
        Self::with_dtype(num_embeddings, embedding_size, DType::F32, key)
    }

    /// A table of `dtype` initialised N(0, 1) from `key`.
    pub fn with_dtype(
        num_embeddings: usize,
        embedding_size: usize,
        dtype: DType,
        key: Key,
    ) -> Result<Self> {
        let weight = random::normal(key, &[num_embeddings, embedding_size], dtype)?;
        Ok(Embedding {
            num_embeddings,
            embedding_size,
            weight,
        })
    }

    /// A table holding `weight`, which must be 2-d.
    pub fn from_weight(weight: Array) -> Result<Self> {
        weight.check_value("Embedding::from_weight")?;
        if weight.rank() != 2 {
            return Err(Error::shape(format!(
                "Embedding::from_weight needs a 2-d weight but got {}",
                weight.short_description()
            )));
        }
        Ok(Embedding {
            num_embeddings: weight.shape()[0],
            embedding_size: weight.shape()[1],
            weight,
        })
    }

    /// The row at `index`, a 0-d integer array. An index outside
    /// `0..num_embeddings` is an error (JAX would clamp it).
    pub fn forward(&self, index: &Array) -> Result<Array> {
        if !index.shape().is_empty() || !index.dtype().is_int() {
            return Err(Error::shape(format!(
                "Embedding::forward expected a 0-d integer index but got {}; \
                 for a sequence, use `vmap(|t| embedding.forward(t))`",
                index.short_description()
            )));
        }
        self.weight.take(index, 0)
    }
}
