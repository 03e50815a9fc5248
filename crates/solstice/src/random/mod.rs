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
pub(crate) mod sample;
pub(crate) mod threefry;

pub use key::Key;

use crate::array::prim::Prim;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

fn check_float(api: &str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::dtype(format!(
            "random::{api} samples f32 or f64 but was asked for {dtype}"
        )))
    }
}

/// Uniform samples in `[minval, maxval)`: `jax.random.uniform`.
///
/// With a key traced by `vmap`, this draws for every key of the batch in
/// one call.
pub fn uniform(key: Key, shape: &[usize], dtype: DType, minval: f64, maxval: f64) -> Result<Array> {
    check_float("uniform", dtype)?;
    match key.concrete()? {
        Some(words) => draw_uniform(words, shape, dtype, minval, maxval),
        None => bind(
            Prim::RandomUniform {
                shape: shape.to_vec(),
                dtype,
                minval,
                maxval,
            },
            &[key.array()?],
        ),
    }
}

/// Standard normal samples: `jax.random.normal`.
pub fn normal(key: Key, shape: &[usize], dtype: DType) -> Result<Array> {
    check_float("normal", dtype)?;
    match key.concrete()? {
        Some(words) => draw_normal(words, shape, dtype),
        None => bind(
            Prim::RandomNormal {
                shape: shape.to_vec(),
                dtype,
            },
            &[key.array()?],
        ),
    }
}

fn draw_uniform(
    words: [u32; 2],
    shape: &[usize],
    dtype: DType,
    minval: f64,
    maxval: f64,
) -> Result<Array> {
    if dtype == DType::F32 {
        Array::from_vec(
            sample::uniform_f32(words, shape, minval as f32, maxval as f32),
            shape,
        )
    } else {
        Array::from_vec(sample::uniform_f64(words, shape, minval, maxval), shape)
    }
}

fn draw_normal(words: [u32; 2], shape: &[usize], dtype: DType) -> Result<Array> {
    if dtype == DType::F32 {
        Array::from_vec(sample::normal_f32(words, shape), shape)
    } else {
        Array::from_vec(sample::normal_f64(words, shape), shape)
    }
}

/// The shape and dtype of one key's draw for a random primitive.
pub(crate) fn draw_shape(prim: &Prim) -> Result<(Vec<usize>, DType)> {
    match prim {
        Prim::KeySplit(n) => Ok((vec![*n, 2], DType::U32)),
        Prim::KeyFoldIn(_) => Ok((vec![2], DType::U32)),
        Prim::RandomUniform { shape, dtype, .. } | Prim::RandomNormal { shape, dtype } => {
            Ok((shape.clone(), *dtype))
        }
        other => Err(Error::invalid(format!(
            "{} is not a random primitive",
            other.name()
        ))),
    }
}

/// One key's draw for a random primitive; the kernel in `array/` applies
/// it to each key of a batch.
pub(crate) fn draw(prim: &Prim, key: [u32; 2]) -> Result<Array> {
    match prim {
        Prim::KeySplit(n) => Array::from_vec(
            threefry::split(key, *n).into_iter().flatten().collect(),
            &[*n, 2],
        ),
        Prim::KeyFoldIn(data) => Array::from_vec(threefry::fold_in(key, *data).to_vec(), &[2]),
        Prim::RandomUniform {
            shape,
            dtype,
            minval,
            maxval,
        } => draw_uniform(key, shape, *dtype, *minval, *maxval),
        Prim::RandomNormal { shape, dtype } => draw_normal(key, shape, *dtype),
        other => Err(Error::invalid(format!(
            "{} is not a random primitive",
            other.name()
        ))),
    }
}
