//! Filter specs: trees of bools with the model's own type, Equinox's
//! `filter_spec` form for `filter`/`partition`, and the mask form of the
//! optimisers' `masked`.
//!
//! A spec is a tree of the model's type whose array slots hold `u8` 0-d
//! arrays, 1 (`true`, keep) or 0 (`false`); holes stay holes. Build one with
//! [`spec_like`], change parts of it with [`tree_at`](super::tree_at) or
//! [`tree_at_with`](super::tree_at_with), then use it with
//! [`filter_with_spec`] and [`partition_with_spec`].
//!
//! # Freezing a sub-module
//!
//! Train everything but the embedding: a spec that is `true` everywhere and
//! `false` on the frozen part, a partition into trainable and frozen halves,
//! and a loss that differentiates the trainable half only.
//!
//! ```
//! use solstice::{Array, Module, apply_updates, filter_value_and_grad, nn::{Embedding, Linear}};
//! use solstice::optim::{self, GradientTransformation};
//! use solstice::random::Key;
//! use solstice::tree::{combine, partition_with_spec, spec_like, tree_at_with};
//! # fn main() -> solstice::Result<()> {
//! #[derive(Module)]
//! struct Model { embedding: Embedding, head: Linear }
//!
//! let [k1, k2] = Key::new(0).split();
//! let model = Model { embedding: Embedding::new(5, 3, k1)?, head: Linear::new(3, 5, k2)? };
//! let spec = spec_like(&model, true)?;
//! let spec = tree_at_with(&spec, |m| &mut m.embedding, |e| spec_like(e, false))?;
//! let (trainable, frozen) = partition_with_spec(&model, &spec)?;
//!
//! let loss = |t: &Model, frozen: &Model| {
//!     let m = combine(t, frozen)?;
//!     let tokens = Array::from_vec(vec![1i32, 3], &[2])?;
//!     let x = m.embedding.weight.take(&tokens, 0)?; // [2, 3]
//!     m.head.weight.matmul(&x.t()?)?.square()?.mean_all()
//! };
//! let (_, grads) = filter_value_and_grad(loss)(&trainable, &frozen)?;
//! let opt = optim::adam(0.1);
//! let state = opt.init(&trainable)?;
//! let (updates, _) = opt.update(&grads, &state, Some(&trainable))?;
//! let trainable = apply_updates(&trainable, &updates)?;
//! let model2 = combine(&trainable, &frozen)?;
//! assert!(model2.embedding.weight.is(&model.embedding.weight)); // frozen
//! assert!(!model2.head.weight.is(&model.head.weight)); // trained
//! # Ok(()) }
//! ```

use super::{Tree, tree_map, tree_map2};
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// A spec like `tree`: every array slot replaced by a `u8` 0-d array holding
/// `value`, holes kept. Equinox's `jtu.tree_map(lambda _: value, tree)`.
pub fn spec_like<T: Tree>(tree: &T, value: bool) -> Result<T> {
    let v = Array::scalar(u8::from(value))?;
    tree_map(tree, |_, a| {
        Ok(if a.is_hole() { a.clone() } else { v.clone() })
    })
}

/// The spec's value for one slot: `None` for a hole, or an error if the
/// slot does not hold a bool.
pub(crate) fn spec_value(path: &super::KeyPath, s: &Array) -> Result<Option<bool>> {
    if s.is_hole() {
        return Ok(None);
    }
    if s.dtype() != DType::U8 || s.elem_count() != 1 {
        return Err(Error::invalid(format!(
            "a filter spec holds bools (u8 0-d arrays) but has {} at {path}; build it with \
             `spec_like`",
            s.short_description()
        )));
    }
    Ok(Some(s.to_scalar::<u8>()? != 0))
}

/// The tree with every array slot whose spec is `false` made absent:
/// Equinox's `filter(tree, filter_spec)` with a tree of bools. A hole in the
/// spec keeps the slot as it is.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::{filter_with_spec, spec_like, tree_at}};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let spec = tree_at(&spec_like(&tree, true)?, |s| &mut s.1, Array::scalar(0u8)?)?;
/// let kept = filter_with_spec(&tree, &spec)?;
/// assert!(kept.0.is(&tree.0) && kept.1.is_absent());
/// # Ok(()) }
/// ```
pub fn filter_with_spec<T: Tree>(tree: &T, spec: &T) -> Result<T> {
    select_with_spec(tree, spec, true).map_err(|e| e.context("filter_with_spec"))
}

/// Splits `tree` by a spec into the slots where it is `true` and the rest;
/// [`combine`](super::combine) joins them back.
pub fn partition_with_spec<T: Tree>(tree: &T, spec: &T) -> Result<(T, T)> {
    let yes = select_with_spec(tree, spec, true).map_err(|e| e.context("partition_with_spec"))?;
    let no = select_with_spec(tree, spec, false).map_err(|e| e.context("partition_with_spec"))?;
    Ok((yes, no))
}

fn select_with_spec<T: Tree>(tree: &T, spec: &T, keep: bool) -> Result<T> {
    tree_map2(tree, spec, |path, a, s| {
        Ok(match spec_value(path, s)? {
            Some(v) if v != keep => Array::absent(),
            _ => a.clone(),
        })
    })
}
