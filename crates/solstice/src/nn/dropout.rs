//! [`Dropout`]: zeroes each element with probability `p` while training,
//! and does nothing at inference: Equinox's `eqx.nn.Dropout`.
//!
//! ```text
//! training:  y = where(mask, x * (1 / (1 - p)), 0),  mask ~ Bernoulli(1 - p)
//! inference: y = x
//! ```
//!
//! - Any input shape; the output has the same shape.
//! - `p` and `inference` are fields, not static, as in Equinox: non-array
//!   leaves that [`tree_at`](crate::tree::tree_at) can change.
//! - Training needs a key: the mask is `jax.random.bernoulli(key, 1 - p,
//!   x.shape)`, bit for bit, so the same key drops the same elements as
//!   Equinox. With `p == 0` dropout is the identity and needs no key.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, DType, nn::Dropout, random::Key};
//! # fn main() -> solstice::Result<()> {
//! let dropout = Dropout::new(0.5)?;
//! let x = Array::ones(&[1000], DType::F32)?;
//! let y = dropout.forward(&x, Key::new(0))?.to_vec::<f32>()?;
//! // Kept elements are scaled by 1 / (1 - p).
//! assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
//! let kept = y.iter().filter(|&&v| v == 2.0).count();
//! assert!((400..600).contains(&kept));
//! // At inference the input passes through, and no key is needed.
//! let same = dropout.forward_inference(&x)?;
//! assert!(same.is(&x));
//! let mut frozen = dropout.clone();
//! frozen.inference = true;
//! assert!(frozen.forward(&x, Key::new(0))?.is(&x));
//! assert_eq!(format!("{dropout:?}"), "Dropout(p=0.5, inference=false)");
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::random::{self, Key};

/// Dropout. See the [module docs](self).
#[derive(Module)]
pub struct Dropout {
    /// The probability of zeroing an element.
    pub p: f64,
    /// Whether to pass the input through unchanged.
    pub inference: bool,
}

impl Dropout {
    /// Dropout with probability `p` in training mode; `p` must be in
    /// `[0, 1]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(format!(
                "Dropout::new needs a probability p in [0, 1] but got {p}"
            )));
        }
        Ok(Dropout {
            p,
            inference: false,
        })
    }

    /// Applies dropout to `x` of any shape in the layer's own mode: in
    /// training mode the mask is drawn from `key`; in inference mode (or
    /// with `p == 0`) `x` passes through and `key` is unused.
    pub fn forward(&self, x: &Array, key: Key) -> Result<Array> {
        self.apply(x, Some(key), false)
    }

    /// `x` unchanged, whatever the layer's mode: Equinox's
    /// `dropout(x, inference=True)`, which needs no key.
    pub fn forward_inference(&self, x: &Array) -> Result<Array> {
        x.check_value("Dropout::forward")?;
        Ok(x.clone())
    }

    /// Dropout with an optional key, as [`Layer`](super::Layer) calls it: a
    /// missing key in training mode is an error.
    pub(crate) fn apply(&self, x: &Array, key: Option<Key>, inference: bool) -> Result<Array> {
        x.check_value("Dropout::forward")?;
        if !self.is_active(inference) {
            return Ok(x.clone());
        }
        let key = self.require_key(
            "Dropout::forward",
            key,
            "pass one, or call `forward_inference`",
        )?;
        let mask = self.keep_mask(key, x.shape(), x.dtype())?;
        self.apply_mask(x, &mask)
    }

    /// Whether dropout changes anything: training mode (neither the layer's
    /// flag nor `inference` set) and `p != 0`.
    pub(crate) fn is_active(&self, inference: bool) -> bool {
        self.p != 0.0 && !inference && !self.inference
    }

    /// `key`, or an error saying that `op` needs one, with `advice`.
    pub(crate) fn require_key(&self, op: &str, key: Option<Key>, advice: &str) -> Result<Key> {
        key.ok_or_else(|| {
            Error::invalid(format!(
                "{op} needs a key for dropout in training mode; {advice}"
            ))
        })
    }

    /// The `u8` mask of kept elements (probability `1 - p`), drawn as JAX
    /// draws it: in f64 for f64 inputs, else in f32.
    pub(crate) fn keep_mask(&self, key: Key, shape: &[usize], dtype: DType) -> Result<Array> {
        if !dtype.is_float() {
            return Err(Error::dtype(format!(
                "Dropout::forward needs a float input but got {dtype}{shape:?}"
            )));
        }
        let q = 1.0 - self.p;
        match dtype {
            DType::F64 => random::bernoulli_f64(key, q, shape),
            _ => random::bernoulli(key, q, shape),
        }
    }

    /// `where(mask, x * (1 / (1 - p)), 0)`: Equinox writes `x / q`, which
    /// XLA compiles to a multiplication by the reciprocal, so this matches
    /// its bits.
    pub(crate) fn apply_mask(&self, x: &Array, mask: &Array) -> Result<Array> {
        let one = Array::scalar_of(1.0, x.dtype())?;
        let scale = one.div(&Array::scalar_of(1.0 - self.p, x.dtype())?)?;
        let scaled = x.mul(&scale)?;
        mask.select(&scaled, &Array::scalar_of(0.0, x.dtype())?)
    }
}
