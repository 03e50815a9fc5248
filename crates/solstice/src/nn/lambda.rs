//! [`Lambda`]: a function of one array as a layer, Equinox's
//! `eqx.nn.Lambda`, typically an activation inside a
//! [`Sequential`](super::Sequential).
//!
//! The function is held as an [`Activation`]: a tree node without leaves,
//! so `grad`, `vmap` and filters pass over it, and the layer prints as
//! `Lambda(fn=<function NAME>)`.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::{Activation, Lambda}, tree::tree_leaves};
//! # fn main() -> solstice::Result<()> {
//! let relu = Lambda::new(Activation::relu());
//! let x = Array::from_vec(vec![-1.0f32, 2.0], &[2])?;
//! assert_eq!(relu.forward(&x)?.to_vec::<f32>()?, vec![0.0, 2.0]);
//! assert!(tree_leaves(&relu).is_empty());
//! assert_eq!(format!("{relu:?}"), "Lambda(fn=<function relu>)");
//! let halve = Lambda::from_fn("halve", |x: &Array| x.mul_scalar(0.5));
//! assert_eq!(halve.forward(&x)?.to_vec::<f32>()?, vec![-0.5, 1.0]);
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::Array;
use crate::error::Result;

use super::activation::Activation;

/// A wrapped function. See the [module docs](self).
#[derive(Module)]
pub struct Lambda {
    /// The function (Equinox's field `fn`, under which it prints).
    #[module(name = "fn")]
    pub function: Activation,
}

impl Lambda {
    /// Wraps `function`.
    pub fn new(function: Activation) -> Self {
        Lambda { function }
    }

    /// Wraps a closure under `name`, which is how it prints.
    pub fn from_fn(
        name: impl Into<String>,
        f: impl Fn(&Array) -> Result<Array> + Send + Sync + 'static,
    ) -> Self {
        Self::new(Activation::new(name, f))
    }

    /// The wrapped function.
    pub fn function(&self) -> &Activation {
        &self.function
    }

    /// `fn(x)`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.function.call(x)
    }
}
