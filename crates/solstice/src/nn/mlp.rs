//! [`Mlp`]: a multi-layer perceptron, Equinox's `eqx.nn.MLP`, on a single
//! example.
//!
//! With `depth` hidden layers it is `depth + 1` [`Linear`] layers:
//!
//! ```text
//! h_0 = x
//! h_i = activation(W_i h_{i-1} + b_i)          for i = 1..depth
//! y   = final_activation(W_out h_depth + b_out)
//! ```
//!
//! - `depth = 0`: one layer `in_size -> out_size` (with `use_final_bias`);
//! - otherwise `in_size -> width`, `depth - 1` times `width -> width`, then
//!   `width -> out_size`.
//! - Input `[in_size]` (or `[]` for `Features::Scalar`), output `[out_size]`
//!   (or `[]`). Batch with [`vmap`](crate::vmap).
//! - Initialisation as Equinox: the key splits into `depth + 1` keys, one per
//!   layer in order, each initialising a [`Linear`].
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::{Activation, Mlp, MlpOptions}, random::Key};
//! # fn main() -> solstice::Result<()> {
//! let options = MlpOptions { activation: Activation::tanh(), ..MlpOptions::default() };
//! let mlp = Mlp::with_options(3, 2, 8, 2, options, Key::new(0))?;
//! assert_eq!(mlp.layers.len(), 3);
//! assert_eq!(mlp.layers[1].weight.shape(), &[8, 8]);
//! let y = mlp.forward(&Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?)?;
//! assert_eq!(y.shape(), &[2]);
//! // The identity final activation leaves the last layer's output as is.
//! let h = mlp.layers[..2].iter().try_fold(
//!     Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?,
//!     |h, layer| layer.forward(&h)?.tanh(),
//! )?;
//! assert_eq!(y.to_vec::<f32>()?, mlp.layers[2].forward(&h)?.to_vec::<f32>()?);
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::random::Key;

use super::activation::Activation;
use super::linear::{Features, Linear, LinearOptions};

/// Options of [`Mlp::with_options`]; the defaults are Equinox's.
#[derive(Clone, Debug)]
pub struct MlpOptions {
    /// After each hidden layer. Default [`Activation::relu`].
    pub activation: Activation,
    /// After the output layer. Default [`Activation::identity`].
    pub final_activation: Activation,
    /// Whether the hidden layers have a bias. Default `true`.
    pub use_bias: bool,
    /// Whether the output layer has a bias. Default `true`.
    pub use_final_bias: bool,
    /// The dtype of every weight and bias. Default f32.
    pub dtype: DType,
}

impl Default for MlpOptions {
    fn default() -> Self {
        MlpOptions {
            activation: Activation::relu(),
            final_activation: Activation::identity(),
            use_bias: true,
            use_final_bias: true,
            dtype: DType::F32,
        }
    }
}

/// A multi-layer perceptron. See the [module docs](self).
///
/// Fields in Equinox's order; `layers` holds `depth + 1` layers.
#[allow(clippy::upper_case_acronyms)] // Named as Equinox names it, and printed so.
#[derive(Module)]
#[module(name = "MLP")]
pub struct Mlp {
    /// The linear layers, first to last.
    pub layers: Vec<Linear>,
    /// After each hidden layer.
    pub activation: Activation,
    /// After the output layer.
    pub final_activation: Activation,
    /// Whether the hidden layers have a bias.
    #[module(static)]
    pub use_bias: bool,
    /// Whether the output layer has a bias.
    #[module(static)]
    pub use_final_bias: bool,
    /// The input size.
    #[module(static)]
    pub in_size: Features,
    /// The output size.
    #[module(static)]
    pub out_size: Features,
    /// The size of each hidden layer.
    #[module(static)]
    pub width_size: usize,
    /// The number of hidden layers.
    #[module(static)]
    pub depth: usize,
}

impl Mlp {
    /// A ReLU network with biases, in f32.
    ///
    /// # Examples
    ///
    /// A scalar-to-scalar network, as Equinox's `MLP("scalar", "scalar", ...)`.
    ///
    /// ```
    /// use solstice::{Array, nn::{Features, Mlp}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let mlp = Mlp::new(Features::Scalar, Features::Scalar, 16, 2, Key::new(0))?;
    /// assert_eq!(mlp.layers[0].weight.shape(), &[16, 1]);
    /// let y = mlp.forward(&Array::scalar(0.5f32)?)?;
    /// assert_eq!(y.shape(), &[] as &[usize]);
    /// # Ok(()) }
    /// ```
    pub fn new(
        in_size: impl Into<Features>,
        out_size: impl Into<Features>,
        width_size: usize,
        depth: usize,
        key: Key,
    ) -> Result<Self> {
        Self::with_options(
            in_size,
            out_size,
            width_size,
            depth,
            MlpOptions::default(),
            key,
        )
    }

    /// A network with the given options.
    pub fn with_options(
        in_size: impl Into<Features>,
        out_size: impl Into<Features>,
        width_size: usize,
        depth: usize,
        options: MlpOptions,
        key: Key,
    ) -> Result<Self> {
        let (in_size, out_size) = (in_size.into(), out_size.into());
        let keys = key.split_n(depth + 1);
        let linear = |i: Features, o: Features, use_bias: bool, key: Key| {
            let options = LinearOptions {
                use_bias,
                dtype: options.dtype,
            };
            Linear::with_options(i, o, options, key)
        };
        let width = Features::Count(width_size);
        let mut layers = Vec::with_capacity(depth + 1);
        if depth == 0 {
            layers.push(linear(
                in_size,
                out_size,
                options.use_final_bias,
                keys[0].clone(),
            )?);
        } else {
            layers.push(linear(in_size, width, options.use_bias, keys[0].clone())?);
            for k in keys[1..depth].iter().cloned() {
                layers.push(linear(width, width, options.use_bias, k)?);
            }
            layers.push(linear(
                width,
                out_size,
                options.use_final_bias,
                keys[depth].clone(),
            )?);
        }
        Ok(Mlp {
            layers,
            activation: options.activation,
            final_activation: options.final_activation,
            use_bias: options.use_bias,
            use_final_bias: options.use_final_bias,
            in_size,
            out_size,
            width_size,
            depth,
        })
    }

    /// The network on one example `x` of shape `[in_size]` (or `[]` for a
    /// scalar input).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let expected: &[usize] = match self.in_size {
            Features::Scalar => &[],
            Features::Count(n) => &[n],
        };
        if x.shape() != expected {
            return Err(Error::shape(format!(
                "Mlp::forward expected an input of shape {expected:?} but got {:?}; \
                 for a batch, use `vmap(|x| mlp.forward(x))`",
                x.shape()
            )));
        }
        let Some((last, hidden)) = self.layers.split_last() else {
            return Err(Error::structure(
                "Mlp::forward found no layers; build it with `Mlp::new`",
            ));
        };
        let mut h = x.clone();
        for layer in hidden {
            h = self.activation.call(&layer.forward(&h)?)?;
        }
        self.final_activation.call(&last.forward(&h)?)
    }
}
