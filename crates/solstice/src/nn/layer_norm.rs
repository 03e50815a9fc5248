//! [`LayerNorm`]: normalises a whole example to zero mean and unit
//! variance, then scales and shifts it: Equinox's `eqx.nn.LayerNorm`.
//!
//! ```text
//! y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
//! ```
//!
//! - The mean and (biased) variance are over every element of `x`, whose
//!   shape must equal the layer's `shape`. To normalise over the last axes
//!   only, `vmap` over the others, as in Equinox.
//! - `weight` (ones) and `bias` (zeros) have the layer's shape; either may
//!   be switched off with [`NormOptions`]. No key is needed.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::LayerNorm};
//! # fn main() -> solstice::Result<()> {
//! let norm = LayerNorm::new(&[4])?;
//! let y = norm.forward(&Array::from_vec(vec![1.0f64, 2.0, 3.0, 6.0], &[4])?)?;
//! // Mean 3, variance 3.5: y = (x - 3) / sqrt(3.5 + 1e-5).
//! let want = [-2.0, -1.0, 0.0, 3.0].map(|d: f64| d / (3.5f64 + 1e-5).sqrt());
//! for (a, b) in y.to_vec::<f64>()?.iter().zip(want) {
//!     assert!((a - b).abs() < 1e-12);
//! }
//! assert_eq!(
//!     format!("{norm:?}"),
//!     "LayerNorm(\n  shape=[4],\n  eps=1e-5,\n  use_weight=true,\n  use_bias=true,\n  \
//!      weight=f32[4],\n  bias=f32[4]\n)"
//! );
//! // The shape is checked exactly.
//! let err = norm.forward(&Array::zeros(&[2, 4], solstice::DType::F32)?).unwrap_err();
//! assert!(err.to_string().starts_with("LayerNorm::forward expected an input of shape [4]"));
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// Options of [`LayerNorm::with_options`] and
/// [`RmsNorm::with_options`](super::RmsNorm::with_options); the defaults
/// are Equinox's.
#[derive(Clone, Copy, Debug)]
pub struct NormOptions {
    /// Added to the variance (or mean square) before the square root.
    /// Default `1e-5`.
    pub eps: f64,
    /// Whether to scale by a learnt `weight`. Default `true`.
    pub use_weight: bool,
    /// Whether to add a learnt `bias`. Default `true`.
    pub use_bias: bool,
    /// The dtype of `weight` and `bias`. Default f32.
    pub dtype: DType,
}

impl Default for NormOptions {
    fn default() -> Self {
        NormOptions {
            eps: 1e-5,
            use_weight: true,
            use_bias: true,
            dtype: DType::F32,
        }
    }
}

/// Layer normalisation. See the [module docs](self).
#[derive(Module)]
pub struct LayerNorm {
    /// The shape of an input.
    #[module(static)]
    pub shape: Vec<usize>,
    /// Added to the variance.
    #[module(static)]
    pub eps: f64,
    /// Whether there is a `weight`.
    #[module(static)]
    pub use_weight: bool,
    /// Whether there is a `bias`.
    #[module(static)]
    pub use_bias: bool,
    /// The scale, of the input's shape; `None` without.
    pub weight: Option<Array>,
    /// The shift, of the input's shape; `None` without.
    pub bias: Option<Array>,
}

impl LayerNorm {
    /// A layer with weight and bias, `eps = 1e-5`, in f32.
    pub fn new(shape: &[usize]) -> Result<Self> {
        Self::with_options(shape, NormOptions::default())
    }

    /// A layer with the given options.
    pub fn with_options(shape: &[usize], options: NormOptions) -> Result<Self> {
        let (weight, bias) = affine_params("LayerNorm", shape, &options)?;
        Ok(LayerNorm {
            shape: shape.to_vec(),
            eps: options.eps,
            use_weight: options.use_weight,
            use_bias: options.use_bias,
            weight,
            bias,
        })
    }

    /// The normalised `x`, which must have the layer's shape.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        check_input("LayerNorm", &self.shape, x)?;
        // One fused kernel (and one fused derivative) for the statistics.
        affine(x.standardize(self.eps)?, &self.weight, &self.bias)
    }
}

/// `1 / sqrt(x)`.
pub(super) fn rsqrt(x: &Array) -> Result<Array> {
    Array::scalar_of(1.0, x.dtype())?.div(&x.sqrt()?)
}

/// Ones and zeros of `shape`, as the options ask.
pub(super) fn affine_params(
    layer: &str,
    shape: &[usize],
    options: &NormOptions,
) -> Result<(Option<Array>, Option<Array>)> {
    if !options.dtype.is_float() {
        return Err(Error::dtype(format!(
            "{layer} needs a float dtype for its weight and bias but was asked for {}",
            options.dtype
        )));
    }
    let weight = if options.use_weight {
        Some(Array::ones(shape, options.dtype)?)
    } else {
        None
    };
    let bias = if options.use_bias {
        Some(Array::zeros(shape, options.dtype)?)
    } else {
        None
    };
    Ok((weight, bias))
}

/// Checks that `x` is a float array of exactly `shape`.
pub(super) fn check_input(layer: &str, shape: &[usize], x: &Array) -> Result<()> {
    x.check_value(&format!("{layer}::forward"))?;
    if x.shape() != shape {
        return Err(Error::shape(format!(
            "{layer}::forward expected an input of shape {shape:?} but got {:?}; \
             the statistics are over the whole input, so for a batch or to \
             normalise only the last axes, use `vmap`",
            x.shape()
        )));
    }
    if !x.dtype().is_float() {
        return Err(Error::dtype(format!(
            "{layer}::forward needs a float input but got {}",
            x.short_description()
        )));
    }
    Ok(())
}

/// `out * weight + bias`, each where present, in `out`'s dtype.
pub(super) fn affine(out: Array, weight: &Option<Array>, bias: &Option<Array>) -> Result<Array> {
    let dtype = out.dtype();
    let mut out = out;
    if let Some(weight) = weight {
        out = weight.astype(dtype)?.mul(&out)?;
    }
    if let Some(bias) = bias {
        out = out.add(&bias.astype(dtype)?)?;
    }
    Ok(out)
}
