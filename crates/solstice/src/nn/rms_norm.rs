//! [`RmsNorm`]: rescales a whole example by its root mean square, then
//! scales and shifts it: Equinox's `eqx.nn.RMSNorm`.
//!
//! ```text
//! y = x / sqrt(mean(x²) + eps) * weight + bias
//! ```
//!
//! - Unlike [`LayerNorm`](super::LayerNorm) it does not centre `x`. The mean
//!   is over every element of `x`, whose shape must equal the layer's.
//! - `weight` (ones) and `bias` (zeros) have the layer's shape; either may
//!   be switched off with [`NormOptions`].
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::{NormOptions, RmsNorm}};
//! # fn main() -> solstice::Result<()> {
//! let options = NormOptions { eps: 0.0, use_bias: false, ..NormOptions::default() };
//! let norm = RmsNorm::with_options(&[2], options)?;
//! assert!(norm.bias.is_none());
//! // mean(x²) = (9 + 16) / 2 = 12.5.
//! let y = norm.forward(&Array::from_vec(vec![3.0f64, 4.0], &[2])?)?;
//! let scale = 12.5f64.sqrt();
//! let y = y.to_vec::<f64>()?;
//! assert!((y[0] - 3.0 / scale).abs() < 1e-15 && (y[1] - 4.0 / scale).abs() < 1e-15);
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::Array;
use crate::error::Result;

use super::layer_norm::{NormOptions, affine, affine_params, check_input, rsqrt};

/// Root-mean-square normalisation. See the [module docs](self).
#[allow(clippy::upper_case_acronyms)] // Named as Equinox names it, and printed so.
#[derive(Module)]
#[module(name = "RMSNorm")]
pub struct RmsNorm {
    /// The shape of an input.
    #[module(static)]
    pub shape: Vec<usize>,
    /// Added to the mean square.
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

impl RmsNorm {
    /// A layer with weight and bias, `eps = 1e-5`, in f32.
    pub fn new(shape: &[usize]) -> Result<Self> {
        Self::with_options(shape, NormOptions::default())
    }

    /// A layer with the given options.
    pub fn with_options(shape: &[usize], options: NormOptions) -> Result<Self> {
        let (weight, bias) = affine_params("RmsNorm", shape, &options)?;
        Ok(RmsNorm {
            shape: shape.to_vec(),
            eps: options.eps,
            use_weight: options.use_weight,
            use_bias: options.use_bias,
            weight,
            bias,
        })
    }

    /// The rescaled `x`, which must have the layer's shape.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        check_input("RmsNorm", &self.shape, x)?;
        let inv_rms = rsqrt(&x.square()?.mean_all()?.add_scalar(self.eps)?)?;
        affine(inv_rms.mul(x)?, &self.weight, &self.bias)
    }
}
