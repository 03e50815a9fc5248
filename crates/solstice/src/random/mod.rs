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
//!
//! Every sampler is bit-for-bit `jax.random`'s on the CPU backend with JAX's
//! default settings: [`uniform`], [`normal`], [`truncated_normal`],
//! [`bernoulli`], [`randint`] and [`permutation`].

mod key;
mod op;
mod sample;
mod threefry;

pub use key::Key;
pub(crate) use op::RandomOp;

use crate::array::prim::Prim;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

/// Draws `op` from `key`: directly for one concrete key, through the
/// random primitive for a key array or a key traced by `vmap`.
fn sample_with(key: Key, op: RandomOp) -> Result<Array> {
    crate::array::element_count(op.name(), &op.draw_shape().0)?;
    match key.concrete()? {
        Some(words) => op.draw(words),
        None => bind(Prim::Random(op), &[key.array()?]),
    }
}

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
    sample_with(
        key,
        RandomOp::Uniform {
            shape: shape.to_vec(),
            dtype,
            minval,
            maxval,
        },
    )
}

/// Standard normal samples: `jax.random.normal`.
pub fn normal(key: Key, shape: &[usize], dtype: DType) -> Result<Array> {
    check_float("normal", dtype)?;
    sample_with(
        key,
        RandomOp::Normal {
            shape: shape.to_vec(),
            dtype,
        },
    )
}

/// Standard normal samples truncated to the open interval `(lower, upper)`:
/// `jax.random.truncated_normal(key, lower, upper, shape, dtype)`.
///
/// # Examples
///
/// ```
/// use solstice::{DType, random::{self, Key}};
/// # fn main() -> solstice::Result<()> {
/// let x = random::truncated_normal(Key::new(0), -2.0, 2.0, &[3, 4], DType::F32)?;
/// assert_eq!(x.shape(), &[3, 4]);
/// assert!(x.to_vec::<f32>()?.iter().all(|v| -2.0 < *v && *v < 2.0));
/// // Equinox-style truncated initialisers draw in f32 by default.
/// assert!(random::truncated_normal(Key::new(0), 1.0, -1.0, &[2], DType::I32).is_err());
/// # Ok(()) }
/// ```
pub fn truncated_normal(
    key: Key,
    lower: f64,
    upper: f64,
    shape: &[usize],
    dtype: DType,
) -> Result<Array> {
    check_float("truncated_normal", dtype)?;
    sample_with(
        key,
        RandomOp::TruncatedNormal {
            shape: shape.to_vec(),
            dtype,
            lower,
            upper,
        },
    )
}

/// Bernoulli samples with mean `p`, as `u8` 1 (true) or 0 (false):
/// `jax.random.bernoulli(key, p, shape)` with a Python-float `p`, that is in
/// JAX's default 32-bit mode: `uniform(key, shape, f32) < p as f32`.
///
/// `u8` is what comparisons return and what [`Array::select`] takes as its
/// condition, so a sample can be used as a mask directly. `p` outside
/// `[0, 1]` is clamped in effect: below 0 gives all zeros, above 1 all ones,
/// as in JAX.
///
/// # Examples
///
/// ```
/// use solstice::{Array, DType, random::{self, Key}};
/// # fn main() -> solstice::Result<()> {
/// let mask = random::bernoulli(Key::new(0), 0.5, &[3, 4])?;
/// assert_eq!(mask.dtype(), DType::U8);
/// assert!(mask.to_vec::<u8>()?.iter().all(|&b| b == 0 || b == 1));
/// // Keep the entries the mask selects, zero the others.
/// let x = Array::ones(&[3, 4], DType::F32)?;
/// let kept = mask.select(&x, &Array::zeros(&[], DType::F32)?)?;
/// assert_eq!(kept.shape(), &[3, 4]);
/// assert!(random::bernoulli(Key::new(0), 1.5, &[8])?.to_vec::<u8>()?.iter().all(|&b| b == 1));
/// # Ok(()) }
/// ```
pub fn bernoulli(key: Key, p: f64, shape: &[usize]) -> Result<Array> {
    sample_with(
        key,
        RandomOp::Bernoulli {
            shape: shape.to_vec(),
            p,
            wide: false,
        },
    )
}

/// Integers uniform in `[minval, maxval)`:
/// `jax.random.randint(key, shape, minval, maxval, dtype)`. Every element is
/// `minval` when `maxval <= minval`, as in JAX.
///
/// `dtype` must be [`DType::I32`], JAX's default integer; other integer
/// types draw different bits in JAX and are not supported yet.
///
/// # Examples
///
/// ```
/// use solstice::{DType, random::{self, Key}};
/// # fn main() -> solstice::Result<()> {
/// let dice = random::randint(Key::new(0), &[10], 1, 7, DType::I32)?;
/// assert!(dice.to_vec::<i32>()?.iter().all(|d| (1..7).contains(d)));
/// let err = random::randint(Key::new(0), &[10], 1, 7, DType::F32).unwrap_err();
/// assert!(err.is_dtype_mismatch());
/// # Ok(()) }
/// ```
pub fn randint(key: Key, shape: &[usize], minval: i32, maxval: i32, dtype: DType) -> Result<Array> {
    if dtype != DType::I32 {
        return Err(Error::dtype(format!(
            "random::randint samples i32 (JAX's default integer) but was asked for {dtype}"
        )));
    }
    sample_with(
        key,
        RandomOp::Randint {
            shape: shape.to_vec(),
            minval,
            maxval,
        },
    )
}

/// A random permutation of `0..n` as an `i32` vector:
/// `jax.random.permutation(key, n)`. To shuffle the rows of an array `x`
/// as `jax.random.permutation(key, x)` does, `take` them:
/// `x.take(&random::permutation(key, x.shape()[0])?, 0)`.
///
/// # Examples
///
/// ```
/// use solstice::random::{self, Key};
/// # fn main() -> solstice::Result<()> {
/// let p = random::permutation(Key::new(0), 5)?;
/// let mut sorted = p.to_vec::<i32>()?;
/// sorted.sort();
/// assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
/// # Ok(()) }
/// ```
pub fn permutation(key: Key, n: usize) -> Result<Array> {
    if i32::try_from(n).is_err() {
        return Err(Error::invalid(format!(
            "random::permutation got n = {n}, which does not fit JAX's i32 indices"
        )));
    }
    sample_with(key, RandomOp::Permutation(n))
}

/// Bernoulli samples in f64 (JAX's `bernoulli` with a float64 `p` in 64-bit
/// mode), as `u8`; used by dropout on f64 arrays.
pub(crate) fn bernoulli_f64(key: Key, p: f64, shape: &[usize]) -> Result<Array> {
    sample_with(
        key,
        RandomOp::Bernoulli {
            shape: shape.to_vec(),
            p,
            wide: true,
        },
    )
}
