//! `apply_updates`: adding updates to a model, leaf by leaf.

use crate::error::{Error, Result};
use crate::tree::{Tree, tree_map2};

/// `model + updates`, leaf by leaf: Equinox's `apply_updates`. Where the
/// update is absent, or the model's slot is a hole (such as a `Shared`
/// placeholder), the model's slot is kept as it is.
///
/// # Examples
///
/// ```
/// use solstice::{Array, apply_updates};
/// # fn main() -> solstice::Result<()> {
/// let model = (Array::scalar(1.0f32)?, Array::scalar(5.0f32)?);
/// let updates = (Array::scalar(0.5f32)?, Array::absent());
/// let new = apply_updates(&model, &updates)?;
/// assert_eq!(new.0.to_scalar::<f32>()?, 1.5);
/// assert!(new.1.is(&model.1));
/// # Ok(()) }
/// ```
pub fn apply_updates<T: Tree>(model: &T, updates: &T) -> Result<T> {
    tree_map2(model, updates, |_, m, u| {
        if m.is_hole() || u.is_hole() {
            Ok(m.clone())
        } else if m.shape() != u.shape() {
            // A broadcasting add would silently change the leaf's shape.
            Err(Error::shape(format!(
                "apply_updates got an update {} for a leaf {}; updates have their leaf's shape",
                u.short_description(),
                m.short_description()
            )))
        } else {
            m.add(u)
        }
    })
}

/// Scales every array of `tree` by `factor`, keeping holes: the update of
/// plain gradient descent is `scale(&grads, -learning_rate)`.
pub fn tree_scale<T: Tree>(tree: &T, factor: f64) -> Result<T> {
    crate::tree::tree_map(tree, |_, a| {
        if a.is_hole() {
            Ok(a.clone())
        } else {
            a.mul_scalar(factor)
        }
    })
}
