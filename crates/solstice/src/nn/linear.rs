//! [`Linear`]: `y = W x + b`, on a single example.
//!
//! - `weight`: `[out_features, in_features]`; `bias`: `[out_features]`.
//! - Input `[in_features]`, output `[out_features]` (or `[]` for
//!   `Features::Scalar`). Batch with [`vmap`](crate::vmap).
//! - Initialisation as Equinox: the key splits into a weight key and a bias
//!   key, and both are uniform in `±1/sqrt(in_features)`.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::Linear, random::Key};
//! # fn main() -> solstice::Result<()> {
//! let linear = Linear::new(3, 2, Key::new(0))?;
//! assert_eq!(linear.weight.shape(), &[2, 3]);
//! let y = linear.forward(&Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?)?;
//! assert_eq!(y.shape(), &[2]);
//! // Printed as Equinox's `tree_pformat` lays it out (Rust's `true`).
//! assert_eq!(
//!     format!("{linear:?}"),
//!     "Linear(\n  weight=f32[2,3], bias=f32[2], in_features=3, out_features=2, use_bias=true\n)"
//! );
//! # Ok(()) }
//! ```

use std::fmt;

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::random::{self, Key};

/// The size of a [`Linear`] layer's input or output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// A vector of this length.
    Count(usize),
    /// A 0-d scalar, Equinox's `"scalar"`: stored as a dimension of 1.
    Scalar,
}

impl Features {
    /// The stored dimension: `Scalar` counts as 1.
    pub fn dim(self) -> usize {
        match self {
            Features::Count(n) => n,
            Features::Scalar => 1,
        }
    }
}

impl From<usize> for Features {
    fn from(n: usize) -> Self {
        Features::Count(n)
    }
}

/// Printed as Equinox does: `4` or `'scalar'`.
impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Features::Count(n) => write!(f, "{n}"),
            Features::Scalar => f.write_str("'scalar'"),
        }
    }
}

/// Options of [`Linear::with_options`].
#[derive(Clone, Copy, Debug)]
pub struct LinearOptions {
    /// Whether to add a bias.
    pub use_bias: bool,
    /// The dtype of the weight and bias.
    pub dtype: DType,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            use_bias: true,
            dtype: DType::F32,
        }
    }
}

/// A linear layer. See the [module docs](self).
#[derive(Module)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Array,
    /// `[out_features]`, or `None` without bias.
    pub bias: Option<Array>,
    /// The input size.
    #[module(static)]
    pub in_features: Features,
    /// The output size.
    #[module(static)]
    pub out_features: Features,
    /// Whether there is a bias.
    #[module(static)]
    pub use_bias: bool,
}

impl Linear {
    /// A layer with bias, in f32.
    pub fn new(
        in_features: impl Into<Features>,
        out_features: impl Into<Features>,
        key: Key,
    ) -> Result<Self> {
        Self::with_options(in_features, out_features, LinearOptions::default(), key)
    }

    /// A layer without bias, in f32.
    pub fn no_bias(
        in_features: impl Into<Features>,
        out_features: impl Into<Features>,
        key: Key,
    ) -> Result<Self> {
        let options = LinearOptions {
            use_bias: false,
            ..LinearOptions::default()
        };
        Self::with_options(in_features, out_features, options, key)
    }

    /// A layer with the given options.
    pub fn with_options(
        in_features: impl Into<Features>,
        out_features: impl Into<Features>,
        options: LinearOptions,
        key: Key,
    ) -> Result<Self> {
        let (in_features, out_features) = (in_features.into(), out_features.into());
        let [wkey, bkey] = key.split();
        let (fan_in, fan_out) = (in_features.dim(), out_features.dim());
        let lim = if fan_in == 0 {
            1.0
        } else {
            1.0 / (fan_in as f64).sqrt()
        };
        let weight = random::uniform(wkey, &[fan_out, fan_in], options.dtype, -lim, lim)?;
        let bias = if options.use_bias {
            Some(random::uniform(bkey, &[fan_out], options.dtype, -lim, lim)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
            use_bias: options.use_bias,
        })
    }

    /// `weight @ x + bias` for one example `x` of shape `[in_features]`
    /// (or `[]` for a scalar input).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let expected: &[usize] = match self.in_features {
            Features::Scalar => &[],
            Features::Count(_) => &[self.in_features.dim()],
        };
        if x.shape() != expected {
            return Err(Error::shape(format!(
                "Linear::forward expected an input of shape {expected:?} but got {:?}; \
                 for a batch, use `vmap(|x| linear.forward(x))`",
                x.shape()
            )));
        }
        let x = if self.in_features == Features::Scalar {
            x.reshape(&[1])?
        } else {
            x.clone()
        };
        let mut y = self.weight.matmul(&x)?;
        if let Some(bias) = &self.bias {
            y = y.add(bias)?;
        }
        if self.out_features == Features::Scalar {
            y = y.reshape(&[])?;
        }
        Ok(y)
    }
}
