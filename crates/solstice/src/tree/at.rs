//! `tree_at`: a copy of a tree with some nodes replaced.
//!
//! `where` is a closure that returns mutable references into the tree:
//! `|m| &mut m.linear.weight`. The borrow checker rejects at compile time
//! what Equinox must check at run time: a `where` that returns something not
//! in the tree, the same node twice, or a node together with its ancestor.
//!
//! ```compile_fail
//! // The same node twice: two mutable borrows of `t.0`.
//! use solstice::{Array, tree::tree_at_pair};
//! # fn main() -> solstice::Result<()> {
//! let t = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
//! let a = Array::scalar(0.0f32)?;
//! tree_at_pair(&t, |t| (&mut t.0, &mut t.0), (a.clone(), a))?;
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! // A node together with its own ancestor.
//! use solstice::{Array, tree::tree_at_pair};
//! # fn main() -> solstice::Result<()> {
//! let t = ((Array::scalar(1.0f32)?,), Array::scalar(2.0f32)?);
//! let a = Array::scalar(0.0f32)?;
//! tree_at_pair(&t, |t| (&mut t.0, &mut t.0.0), ((a.clone(),), a))?;
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! // Equinox's `tree_at(where3, pytree, replace=4)`: one value for two nodes.
//! use solstice::{Array, tree::tree_at_pair};
//! # fn main() -> solstice::Result<()> {
//! let t = (1i64, Array::scalar(2.0f32)?);
//! tree_at_pair(&t, |t| (&mut t.0, &mut t.1), 4)?;
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! // A replacement of the wrong type for the node.
//! use solstice::{Array, tree::tree_at};
//! # fn main() -> solstice::Result<()> {
//! let t = (1i64, Array::scalar(2.0f32)?);
//! tree_at(&t, |t| &mut t.0, "hi")?;
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! // A value that is not a node of the tree.
//! use solstice::{Array, tree::tree_at};
//! # fn main() -> solstice::Result<()> {
//! let t = (Array::scalar(1.0f32)?,);
//! let mut outside = Array::scalar(3.0f32)?;
//! tree_at(&t, |_| &mut outside, Array::scalar(0.0f32)?)?;
//! # Ok(()) }
//! ```

use super::Tree;
use crate::error::{Error, Result};

/// A copy of `tree` with the node `select` picks (Equinox's `where`) replaced by `replace`.
/// The input is unchanged; arrays are shared, not copied.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_at};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let new = tree_at(&tree, |t| &mut t.1, Array::scalar(5.0f32)?)?;
/// assert_eq!(new.1.to_scalar::<f32>()?, 5.0);
/// assert!(new.0.is(&tree.0)); // untouched nodes are the same arrays
/// assert_eq!(tree.1.to_scalar::<f32>()?, 2.0); // the input is unchanged
/// # Ok(()) }
/// ```
pub fn tree_at<T: Tree, N>(
    tree: &T,
    select: impl for<'a> Fn(&'a mut T) -> &'a mut N,
    replace: N,
) -> Result<T> {
    let mut out = tree.clone();
    *select(&mut out) = replace;
    settle(&mut out);
    Ok(out)
}

/// A copy of `tree` with the node `select` picks (Equinox's `where`) replaced by
/// `replace_fn(node)`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_at_with};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let new = tree_at_with(&tree, |t| &mut t.1, |x| x.add_scalar(1.0))?;
/// assert_eq!(new.1.to_scalar::<f32>()?, 3.0);
/// # Ok(()) }
/// ```
pub fn tree_at_with<T: Tree, N>(
    tree: &T,
    select: impl for<'a> Fn(&'a mut T) -> &'a mut N,
    replace_fn: impl FnOnce(&N) -> Result<N>,
) -> Result<T> {
    let mut out = tree.clone();
    let node = select(&mut out);
    *node = replace_fn(node)?;
    settle(&mut out);
    Ok(out)
}

/// A copy of `tree` with each node of the `Vec` that `select` returns
/// replaced by the matching item of `replace`, which must be as long.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_at_each};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?, Array::scalar(3.0f32)?);
/// let zero = Array::scalar(0.0f32)?;
/// let new = tree_at_each(&tree, |t| vec![&mut t.0, &mut t.2], vec![zero.clone(), zero.clone()])?;
/// assert!(new.0.is(&zero) && new.2.is(&zero) && new.1.is(&tree.1));
/// let err = tree_at_each(&tree, |t| vec![&mut t.0, &mut t.2], vec![zero]).unwrap_err();
/// assert!(err.to_string().starts_with("tree_at_each: `where` selected 2 nodes"));
/// # Ok(()) }
/// ```
pub fn tree_at_each<T: Tree, N>(
    tree: &T,
    select: impl for<'a> Fn(&'a mut T) -> Vec<&'a mut N>,
    replace: Vec<N>,
) -> Result<T> {
    let mut out = tree.clone();
    let nodes = select(&mut out);
    if nodes.len() != replace.len() {
        return Err(Error::structure(format!(
            "tree_at_each: `where` selected {} nodes but `replace` has {}; \
             give one replacement per selected node",
            nodes.len(),
            replace.len()
        )));
    }
    for (node, new) in nodes.into_iter().zip(replace) {
        *node = new;
    }
    settle(&mut out);
    Ok(out)
}

/// A copy of `tree` with each node of the `Vec` that `select` returns
/// replaced by `replace_fn(node)`.
pub fn tree_at_each_with<T: Tree, N>(
    tree: &T,
    select: impl for<'a> Fn(&'a mut T) -> Vec<&'a mut N>,
    mut replace_fn: impl FnMut(&N) -> Result<N>,
) -> Result<T> {
    let mut out = tree.clone();
    for node in select(&mut out) {
        *node = replace_fn(node)?;
    }
    settle(&mut out);
    Ok(out)
}

/// A copy of `tree` with the two nodes `select` picks replaced by the two
/// items of `replace`. The nodes may have different types.
pub fn tree_at_pair<T: Tree, A, B>(
    tree: &T,
    select: impl for<'a> Fn(&'a mut T) -> (&'a mut A, &'a mut B),
    replace: (A, B),
) -> Result<T> {
    let mut out = tree.clone();
    let (a, b) = select(&mut out);
    *a = replace.0;
    *b = replace.1;
    settle(&mut out);
    Ok(out)
}

/// Lets every `Shared` reached through `Shared::pytree_mut` re-make its tie
/// (placeholders back in place, paths recorded again): a `Shared` does so
/// when visited mutably.
fn settle<T: Tree>(tree: &mut T) {
    tree.visit_mut(&mut super::KeyPath::root(), &mut |_, _| {});
}
