//! [`Sgd`]: plain stochastic gradient descent, `update = -lr * grad`.

use crate::error::Result;
use crate::transform::tree_scale;
use crate::tree::Tree;

/// Plain gradient descent: `optax.sgd(learning_rate)` without momentum.
///
/// # Examples
///
/// ```
/// use solstice::{Array, apply_updates, filter_grad, optim::Sgd};
/// # fn main() -> solstice::Result<()> {
/// let model = Array::scalar(3.0f32)?;
/// let grads = filter_grad(|w: &Array, _: &()| w.square())(&model, &())?; // 6
/// let updates = Sgd::new(0.5).update(&grads)?; // -3
/// let model = apply_updates(&model, &updates)?;
/// assert_eq!(model.to_scalar::<f32>()?, 0.0);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    learning_rate: f64,
}

impl Sgd {
    /// Gradient descent with a fixed learning rate.
    pub fn new(learning_rate: f64) -> Self {
        Sgd { learning_rate }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The updates for `grads`: `-learning_rate * grads`, holes kept.
    pub fn update<T: Tree>(&self, grads: &T) -> Result<T> {
        tree_scale(grads, -self.learning_rate)
    }
}
