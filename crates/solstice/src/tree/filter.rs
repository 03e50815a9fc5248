//! `filter`, `partition` and `combine`: splitting a tree by a predicate on
//! its arrays and joining the parts back.
//!
//! The parts keep the tree's type: a slot that a part does not hold is
//! absent, Equinox's `None`. Scalar leaves stay in both parts.

use super::{Tree, tree_map2};
use crate::array::Array;
use crate::error::Result;

/// Whether `a` is an array (a value or tracer), not a hole: Equinox's
/// `is_array`.
pub fn is_array(a: &Array) -> bool {
    !a.is_hole()
}

/// Whether `a` is a floating array, the kind `grad` differentiates:
/// Equinox's `is_inexact_array`.
pub fn is_inexact_array(a: &Array) -> bool {
    is_array(a) && a.dtype().is_float()
}

/// The tree with every slot that fails `keep` made absent.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::{filter, is_inexact_array}};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(3i64)?);
/// let floats = filter(&tree, is_inexact_array);
/// assert!(floats.0.is(&tree.0) && floats.1.is_absent());
/// # Ok(()) }
/// ```
pub fn filter<T: Tree>(tree: &T, keep: impl Fn(&Array) -> bool) -> T {
    let mut out = tree.clone();
    out.visit_mut(&mut super::KeyPath::root(), &mut |_, a| {
        if !keep(a) {
            *a = Array::absent();
        }
    });
    out
}

/// Splits `tree` into the slots that pass `keep` and the rest, each with
/// the other's slots absent. [`combine`] joins them back.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::{combine, is_inexact_array, partition, tree_equal}};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(3i64)?);
/// let (params, rest) = partition(&tree, is_inexact_array);
/// assert!(params.1.is_absent() && rest.0.is_absent());
/// assert!(tree_equal(&combine(&params, &rest)?, &tree)?);
/// # Ok(()) }
/// ```
pub fn partition<T: Tree>(tree: &T, keep: impl Fn(&Array) -> bool) -> (T, T) {
    (filter(tree, &keep), filter(tree, |a| !keep(a)))
}

/// Joins trees of one structure: each slot takes the first part's value
/// that is not absent. Equinox's `combine`.
pub fn combine<T: Tree>(first: &T, second: &T) -> Result<T> {
    tree_map2(first, second, |_, x, y| {
        Ok(if x.is_absent() { y.clone() } else { x.clone() })
    })
    .map_err(|e| e.context("combine"))
}
