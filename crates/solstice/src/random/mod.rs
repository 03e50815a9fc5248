//! JAX-compatible random numbers: threefry2x32 keys and samplers.
//!
//! A [`Key`] is JAX's default key: the same seed gives the same bits as
//! `jax.random.key(seed)`, so the same key gives the same initial model as
//! Equinox. Keys are values: `split` and `fold_in` make new keys, and a key
//! is used once.
//!
//! # Examples
//!
//! ```
//! use solstice::{DType, random::{self, Key}};
//! # fn main() -> solstice::Result<()> {
//! let [k1, k2] = Key::new(0).split();
//! let x = random::uniform(k1, &[2, 3], DType::F32, -1.0, 1.0)?;
//! assert_eq!(x.shape(), &[2, 3]);
//! assert!(x.to_vec::<f32>()?.iter().all(|v| (-1.0..1.0).contains(v)));
//! let y = random::normal(k2, &[4], DType::F64)?;
//! assert_eq!(y.shape(), &[4]);
//! # Ok(()) }
//! ```

mod key;
mod sample;
mod threefry;

pub use key::Key;

use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// Uniform samples in `[minval, maxval)`: `jax.random.uniform`.
pub fn uniform(key: Key, shape: &[usize], dtype: DType, minval: f64, maxval: f64) -> Result<Array> {
    match dtype {
        DType::F32 => Array::from_vec(
            sample::uniform_f32(key.data(), shape, minval as f32, maxval as f32),
            shape,
        ),
        DType::F64 => Array::from_vec(
            sample::uniform_f64(key.data(), shape, minval, maxval),
            shape,
        ),
        other => Err(Error::dtype(format!(
            "random::uniform samples f32 or f64 but was asked for {other}"
        ))),
    }
}

/// Standard normal samples: `jax.random.normal`.
pub fn normal(key: Key, shape: &[usize], dtype: DType) -> Result<Array> {
    match dtype {
        DType::F32 => Array::from_vec(sample::normal_f32(key.data(), shape), shape),
        DType::F64 => Array::from_vec(sample::normal_f64(key.data(), shape), shape),
        other => Err(Error::dtype(format!(
            "random::normal samples f32 or f64 but was asked for {other}"
        ))),
    }
}
