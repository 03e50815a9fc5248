//! [`Identity`]: returns its input, Equinox's `eqx.nn.Identity`. Useful as a
//! placeholder for a layer, for example in a [`Sequential`](super::Sequential)
//! built from options.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::Identity};
//! # fn main() -> solstice::Result<()> {
//! let x = Array::from_vec(vec![1.0f32, 2.0], &[2])?;
//! assert!(Identity::new().forward(&x)?.is(&x));
//! assert_eq!(format!("{:?}", Identity::new()), "Identity()");
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::Array;
use crate::error::Result;

/// The identity layer: no fields, no leaves. See the [module docs](self).
#[derive(Module, Default)]
pub struct Identity {}

impl Identity {
    /// The identity layer.
    pub fn new() -> Self {
        Identity {}
    }

    /// `x`, unchanged (the same array).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(x.clone())
    }
}
