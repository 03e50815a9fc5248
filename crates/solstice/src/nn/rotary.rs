//! [`RotaryPositionalEmbedding`]: rotary position encoding (RoPE),
//! Equinox's `eqx.nn.RotaryPositionalEmbedding`, on one sequence.
//!
//! With `d = embedding_size`, `half = d / 2`, frequencies
//! `f_i = theta^(-2i/d)` for `i < half`, and `a_{t,i} = t f_i`:
//!
//! ```text
//! y[t, i]        = x[t, i] cos a_{t,i} - x[t, i + half] sin a_{t,i}
//! y[t, i + half] = x[t, i + half] cos a_{t,i} + x[t, i] sin a_{t,i}
//! ```
//!
//! that is `y = x * [cos, cos] + rotate_half(x) * [sin, sin]` with
//! `rotate_half(x) = [-x[half..], x[..half]]` (the "half-split" layout).
//!
//! - Input and output `[seq_len, embedding_size]`; `embedding_size` must be
//!   even. To rotate attention heads, `vmap` over the head axis.
//! - No parameters: `embedding_size`, `theta` and `dtype` are static. The
//!   angles are computed in f32 (or f64 for an f64 layer) as Equinox does.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::RotaryPositionalEmbedding};
//! # fn main() -> solstice::Result<()> {
//! let rope = RotaryPositionalEmbedding::new(2)?;
//! // Position t rotates the pair (x0, x1) by t radians (theta^0 = 1).
//! let x = Array::from_vec(vec![1.0f64, 0.0, 1.0, 0.0], &[2, 2])?;
//! let rope64 = RotaryPositionalEmbedding::with_theta(2, 10_000.0, solstice::DType::F64)?;
//! let y = rope64.forward(&x)?.to_vec::<f64>()?;
//! assert_eq!(&y[..2], &[1.0, 0.0]);
//! assert!((y[2] - 1f64.cos()).abs() < 1e-15 && (y[3] - 1f64.sin()).abs() < 1e-15);
//! assert!(RotaryPositionalEmbedding::new(3).is_err()); // odd size
//! assert_eq!(
//!     format!("{rope:?}"),
//!     "RotaryPositionalEmbedding(embedding_size=2, theta=10000.0, dtype=F32)"
//! );
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// Rotary positional embedding. See the [module docs](self).
#[derive(Module)]
pub struct RotaryPositionalEmbedding {
    /// The size of each embedding vector; even.
    #[module(static)]
    pub embedding_size: usize,
    /// The base of the frequencies.
    #[module(static)]
    pub theta: f64,
    /// The dtype of the precomputed angles' cosines and sines.
    #[module(static)]
    pub dtype: DType,
}

impl RotaryPositionalEmbedding {
    /// RoPE with Equinox's defaults: `theta = 10000`, f32.
    pub fn new(embedding_size: usize) -> Result<Self> {
        Self::with_theta(embedding_size, 10_000.0, DType::F32)
    }

    /// RoPE with base `theta`, computing the table in `dtype`.
    pub fn with_theta(embedding_size: usize, theta: f64, dtype: DType) -> Result<Self> {
        if embedding_size & 1 == 1 {
            return Err(Error::invalid(format!(
                "RotaryPositionalEmbedding::new needs an even embedding_size but got \
                 {embedding_size}"
            )));
        }
        if !dtype.is_float() {
            return Err(Error::dtype(format!(
                "RotaryPositionalEmbedding::new needs a float dtype but was asked for {dtype}"
            )));
        }
        Ok(RotaryPositionalEmbedding {
            embedding_size,
            theta,
            dtype,
        })
    }

    /// `x` `[seq_len, embedding_size]` with each position rotated.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        x.check_value("RotaryPositionalEmbedding::forward")?;
        if x.rank() != 2 || x.shape()[1] != self.embedding_size {
            return Err(Error::shape(format!(
                "RotaryPositionalEmbedding::forward expected an input of shape \
                 [seq_len, {}] but got {:?}; for several heads, use `vmap`",
                self.embedding_size,
                x.shape()
            )));
        }
        if x.dtype() != self.dtype {
            return Err(Error::dtype(format!(
                "RotaryPositionalEmbedding::forward got {} but the layer's tables are {}; \
                 build the layer with that dtype or convert the input with `astype`",
                x.short_description(),
                self.dtype
            )));
        }
        let (seq_len, d) = (x.shape()[0], self.embedding_size);
        let half = d / 2;
        let angles = self.angles(seq_len)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        // [half] indices twice over: the tables tiled to [seq_len, d].
        let tile = index(&(0..d).map(|i| i % half).collect::<Vec<_>>())?;
        let (cos, sin) = (cos.take(&tile, 1)?, sin.take(&tile, 1)?);
        // rotate_half(x) = [-x[half..], x[..half]], as a gather and a sign.
        let rotated = index(&(0..d).map(|i| (i + half) % d).collect::<Vec<_>>())?;
        let signs: Vec<f64> = (0..d).map(|i| if i < half { -1.0 } else { 1.0 }).collect();
        let signs = Array::from_vec(signs, &[d])?.astype(x.dtype())?;
        let rotate_x = x.take(&rotated, 1)?.mul(&signs)?;
        x.mul(&cos)?.add(&rotate_x.mul(&sin)?)
    }

    /// `t * f_i` as `[seq_len, half]`, computed in the layer's precision.
    fn angles(&self, seq_len: usize) -> Result<Array> {
        let (d, half) = (self.embedding_size, self.embedding_size / 2);
        match self.dtype {
            DType::F64 => {
                let freqs: Vec<f64> = (0..half)
                    .map(|i| 1.0 / self.theta.powf((2 * i) as f64 / d as f64))
                    .collect();
                let angles = (0..seq_len)
                    .flat_map(|t| freqs.iter().map(move |f| t as f64 * f))
                    .collect();
                Array::from_vec(angles, &[seq_len, half])
            }
            _ => {
                let theta = self.theta as f32;
                let freqs: Vec<f32> = (0..half)
                    .map(|i| 1.0 / theta.powf((2 * i) as f32 / d as f32))
                    .collect();
                let angles = (0..seq_len)
                    .flat_map(|t| freqs.iter().map(move |f| t as f32 * f))
                    .collect();
                Array::from_vec(angles, &[seq_len, half])
            }
        }
    }
}

fn index(indices: &[usize]) -> Result<Array> {
    let indices: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    let n = indices.len();
    Array::from_vec(indices, &[n])
}
