//! Arithmetic over whole trees: an n-ary map that passes holes through,
//! `zeros_like`/`full_like` and `global_norm`. These are the tools an
//! optimiser is written with.

use super::{KeyPath, Tree, tree_map, tree_slots};
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// Maps `f` over the array slots of several trees of one structure, slot by
/// slot, **passing holes through untouched**: where any tree's slot is a hole
/// (absent, or a `Shared` placeholder), `f` is not called and the output
/// keeps the first tree's slot as it is.
///
/// This is the default an optimiser writer wants: a gradient that is absent
/// for a leaf, or a placeholder where a weight is tied, gives an update and
/// a state with the same hole, so a tied weight has exactly one state.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_map_n};
/// # fn main() -> solstice::Result<()> {
/// let a = (Array::scalar(1.0f32)?, Array::placeholder());
/// let b = (Array::scalar(2.0f32)?, Array::scalar(5.0f32)?);
/// let sum = tree_map_n(&[&a, &b], |_, x| x[0].add(&x[1]))?;
/// assert_eq!(sum.0.to_scalar::<f32>()?, 3.0);
/// assert!(sum.1.is(&a.1)); // the placeholder is passed through
/// # Ok(()) }
/// ```
pub fn tree_map_n<T: Tree>(
    trees: &[&T],
    mut f: impl FnMut(&KeyPath, &[Array]) -> Result<Array>,
) -> Result<T> {
    let Some(first) = trees.first() else {
        return Err(Error::invalid(
            "tree_map_n needs at least one tree; pass the trees to map over",
        ));
    };
    let structure = first.structure();
    let mut columns = Vec::with_capacity(trees.len());
    for (i, t) in trees.iter().enumerate() {
        let s = t.structure();
        if !structure.same_treedef(&s) {
            return Err(Error::structure(format!(
                "tree_map_n got trees of different structures: tree 0 is\n{structure}\nand \
                 tree {i} is\n{s}"
            )));
        }
        columns.push(tree_slots(*t));
    }
    let mut i = 0;
    let mut row = Vec::with_capacity(trees.len());
    tree_map(*first, |path, x| {
        row.clear();
        row.extend(columns.iter().map(|c| c[i].1.clone()));
        i += 1;
        if row.iter().any(Array::is_hole) {
            Ok(x.clone())
        } else {
            f(path, &row)
        }
    })
}

/// A tree like `tree` with every array replaced by zeros of its shape and
/// dtype; holes are kept. `optax.tree.zeros_like`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::zeros_like};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::from_vec(vec![1.0f32, 2.0], &[2])?, Array::absent());
/// let z = zeros_like(&tree)?;
/// assert_eq!(z.0.to_vec::<f32>()?, vec![0.0, 0.0]);
/// assert!(z.1.is_absent());
/// # Ok(()) }
/// ```
pub fn zeros_like<T: Tree>(tree: &T) -> Result<T> {
    full_like(tree, 0.0)
}

/// A tree like `tree` with every array replaced by `value` in its shape and
/// dtype; holes are kept. `optax.tree.full_like`.
pub fn full_like<T: Tree>(tree: &T, value: f64) -> Result<T> {
    tree_map_n(&[tree], |_, x| x[0].full_like(value))
}

/// Like [`full_like`], with every array of `dtype` instead of its own.
pub fn full_like_dtype<T: Tree>(tree: &T, value: f64, dtype: DType) -> Result<T> {
    tree_map_n(&[tree], |_, x| Array::full(x[0].shape(), value, dtype))
}

/// The square root of the sum of squares of every element of every array
/// leaf, as a 0-d array: `optax.global_norm`. Holes are skipped.
///
/// The leaves are summed in the dtype of the first leaf (in leaf order, a
/// sum per leaf, then the sums added), as optax does.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::global_norm};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::from_vec(vec![3.0f32], &[1])?, Array::scalar(4.0f32)?, Array::absent());
/// assert_eq!(global_norm(&tree)?.to_scalar::<f32>()?, 5.0);
/// # Ok(()) }
/// ```
pub fn global_norm<T: Tree>(tree: &T) -> Result<Array> {
    global_norm_squared(tree)?.sqrt()
}

/// The sum of squares of every element of every array leaf (see
/// [`global_norm`]); a tree without leaves gives an `f32` zero.
pub fn global_norm_squared<T: Tree>(tree: &T) -> Result<Array> {
    let mut total: Option<Array> = None;
    for (path, leaf) in tree_slots(tree) {
        if leaf.is_hole() {
            continue;
        }
        if !leaf.dtype().is_float() {
            return Err(Error::dtype(format!(
                "global_norm got a {} leaf at {path}; norms are of floating arrays, so filter \
                 with `is_inexact_array` first",
                leaf.short_description()
            )));
        }
        let s = leaf.square()?.sum_all()?;
        total = Some(match total {
            None => s,
            Some(t) => t.add(&s.astype(t.dtype())?)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Array::scalar(0.0f32),
    }
}
