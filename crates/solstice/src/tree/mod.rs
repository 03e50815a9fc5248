//! Trees of arrays: the [`Tree`] trait and the operations on trees.
//!
//! A model is a tree: structs, tuples, `Vec`s and `Option`s whose leaves are
//! [`Array`]s. **A tree is a tree, not a graph**: the same layer stored in two
//! fields is two independent copies, which update separately. Sharing is
//! always explicit, through [`Shared`](crate::nn::Shared).
//!
//! Leaves are visited depth first, fields in declaration order. Fields marked
//! `#[module(static)]` (Equinox's `field(static=True)`) are part of the
//! structure, not leaves. Scalars such as `f64` are non-array leaves: they are
//! part of the structure, and [`Tree::visit_leaves`] passes them (as
//! serialisation needs), but `grad`, `vmap` and filters leave them alone.
//!
//! Every operation returns a new tree and leaves its input unchanged. Arrays
//! are shared between the input and the output, never copied.

pub mod at;
pub mod equal;
pub mod filter;
mod impls;
pub mod leaf;
pub mod math;
pub mod path;
pub mod spec;
pub mod structure;
pub mod ties;

pub use at::{tree_at, tree_at_each, tree_at_each_with, tree_at_pair, tree_at_with};
pub use equal::{tree_allclose, tree_equal};
pub use filter::{combine, filter, is_array, is_inexact_array, partition};
pub use leaf::{Leaf, LeafMut, Scalar, ScalarLeaf};
pub use math::{
    full_like, full_like_dtype, global_norm, global_norm_squared, tree_map_n, zeros_like,
};
pub use path::{KeyPath, PathKey};
pub use spec::{filter_with_spec, partition_with_spec, spec_like};
pub use structure::Structure;
pub use ties::{
    TieGroup, TieLeaf, TiedNode, allow_aliasing, tie_groups, tree_astype, tree_check,
    tree_pformat_ties,
};

use crate::array::Array;
use crate::error::Result;

/// A tree whose leaves are arrays and scalars. Derive it with
/// `#[derive(Module)]`.
///
/// The core is the typed leaf visitor, [`Tree::visit_leaves`], and its
/// mutable twin: they walk every leaf, depth first in field order, passing
/// each leaf's path. A leaf is an array *slot* (holes included) or a scalar
/// (`bool`, an integer, `f32`, `f64`). Static fields, `String`s and
/// functions are structure, not leaves. [`Tree::visit`] and
/// [`Tree::visit_mut`] are the array slots alone, and the other operations
/// of this module are built on them.
///
/// Both leaf visitors are required, with no default, so that a hand-written
/// tree cannot silently drop its scalars from a checkpoint. They must visit
/// the same leaves in the same order. Implement them by visiting each
/// child in order, pushing its key on `path` before and popping it after:
///
/// ```
/// use solstice::tree::{KeyPath, Leaf, LeafMut, PathKey, Structure, Tree};
/// use solstice::Array;
///
/// #[derive(Clone)]
/// struct Scaled { weight: Array, scale: f64 }
///
/// impl Tree for Scaled {
///     fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
///         path.push(PathKey::Field("weight"));
///         self.weight.visit_leaves(path, f);
///         path.pop();
///         path.push(PathKey::Field("scale"));
///         self.scale.visit_leaves(path, f);
///         path.pop();
///     }
///
///     fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
///         path.push(PathKey::Field("weight"));
///         self.weight.visit_leaves_mut(path, f);
///         path.pop();
///         path.push(PathKey::Field("scale"));
///         self.scale.visit_leaves_mut(path, f);
///         path.pop();
///     }
///
///     fn structure(&self) -> Structure {
///         Structure::Struct {
///             name: "Scaled".into(),
///             fields: vec![
///                 ("weight".into(), self.weight.structure()),
///                 ("scale".into(), self.scale.structure()),
///             ],
///         }
///     }
/// }
/// # fn main() -> solstice::Result<()> {
/// let tree = Scaled { weight: Array::scalar(1.0f32)?, scale: 0.5 };
/// let mut paths = Vec::new();
/// tree.visit_leaves(&mut KeyPath::root(), &mut |p, _| paths.push(p.to_string()));
/// assert_eq!(paths, [".weight", ".scale"]);
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tree of arrays",
    label = "not a tree",
    note = "derive `Module` for it, or mark the field `#[module(static)]` if it is configuration"
)]
pub trait Tree: Clone {
    /// Visits every leaf: array slots (holes included) and scalars.
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>));

    /// Visits every leaf mutably, in the same order as
    /// [`Tree::visit_leaves`].
    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>));

    /// Visits every array slot: the array leaves of [`Tree::visit_leaves`].
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        self.visit_leaves(path, &mut |path, leaf| {
            if let Leaf::Array(a) = leaf {
                f(path, a)
            }
        })
    }

    /// Visits every array slot mutably, in the same order as [`Tree::visit`].
    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
        self.visit_leaves_mut(path, &mut |path, leaf| {
            if let LeafMut::Array(a) = leaf {
                f(path, a)
            }
        })
    }

    /// The structure: everything but array contents.
    fn structure(&self) -> Structure;
}

/// Every array slot with its path, holes included, in leaf order.
pub fn tree_slots<T: Tree>(tree: &T) -> Vec<(KeyPath, Array)> {
    let mut out = Vec::new();
    tree.visit(&mut KeyPath::root(), &mut |path, a| {
        out.push((path.clone(), a.clone()))
    });
    out
}

/// The array leaves in order: Equinox's `jtu.tree_leaves`. Holes (absent
/// values and `Shared` placeholders) are not leaves.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_leaves};
/// # fn main() -> solstice::Result<()> {
/// let a = Array::scalar(1.0f32)?;
/// let tree = (a.clone(), Some(Array::absent()), vec![a.clone()]);
/// let leaves = tree_leaves(&tree);
/// assert_eq!(leaves.len(), 2);
/// assert!(leaves[0].is(&a) && leaves[1].is(&a));
/// # Ok(()) }
/// ```
pub fn tree_leaves<T: Tree>(tree: &T) -> Vec<Array> {
    let mut out = Vec::new();
    tree.visit(&mut KeyPath::root(), &mut |_, a| {
        if !a.is_hole() {
            out.push(a.clone())
        }
    });
    out
}

/// The array leaves with their paths: Equinox's
/// `jtu.tree_flatten_with_path`, without the holes.
pub fn tree_leaves_with_path<T: Tree>(tree: &T) -> Vec<(KeyPath, Array)> {
    tree_slots(tree)
        .into_iter()
        .filter(|(_, a)| !a.is_hole())
        .collect()
}

/// A new tree of the same type with every array slot replaced by
/// `f(path, slot)`. Holes are passed to `f` too.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::tree_map};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let doubled = tree_map(&tree, |_, a| a.mul_scalar(2.0))?;
/// assert_eq!(doubled.1.to_scalar::<f32>()?, 4.0);
/// assert_eq!(tree.1.to_scalar::<f32>()?, 2.0); // the input is unchanged
/// # Ok(()) }
/// ```
pub fn tree_map<T: Tree>(
    tree: &T,
    mut f: impl FnMut(&KeyPath, &Array) -> Result<Array>,
) -> Result<T> {
    let mut out = tree.clone();
    let mut error = None;
    out.visit_mut(&mut KeyPath::root(), &mut |path, slot| {
        if error.is_some() {
            return;
        }
        match f(path, slot) {
            Ok(a) => *slot = a,
            Err(e) => error = Some(e.context(format!("at {path}"))),
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Like [`tree_map`] over two trees of the same structure, slot by slot.
pub fn tree_map2<T: Tree>(
    a: &T,
    b: &T,
    mut f: impl FnMut(&KeyPath, &Array, &Array) -> Result<Array>,
) -> Result<T> {
    let (sa, sb) = (a.structure(), b.structure());
    if !sa.same_treedef(&sb) {
        return Err(crate::Error::structure(format!(
            "tree_map2 got trees of different structures:\n{sa}\nand\n{sb}"
        )));
    }
    let others: Vec<Array> = tree_slots(b).into_iter().map(|(_, x)| x).collect();
    let mut i = 0;
    tree_map(a, |path, x| {
        let y = &others[i];
        i += 1;
        f(path, x, y)
    })
}

/// A tree like `template` with its array slots, in order, taken from
/// `slots`: the inverse of [`tree_slots`] (JAX's `tree_unflatten`).
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::{tree_from_slots, tree_slots}};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, vec![Array::scalar(2.0f32)?]);
/// let slots: Vec<Array> = tree_slots(&tree).into_iter().map(|(_, a)| a).collect();
/// let rebuilt = tree_from_slots(&tree, &slots)?;
/// assert!(rebuilt.1[0].is(&tree.1[0]));
/// assert!(tree_from_slots(&tree, &slots[..1]).unwrap_err().is_structure_mismatch());
/// # Ok(()) }
/// ```
pub fn tree_from_slots<T: Tree>(template: &T, slots: &[Array]) -> Result<T> {
    let expected = tree_slots(template).len();
    if expected != slots.len() {
        return Err(crate::Error::structure(format!(
            "tree_from_slots got {} arrays for a tree with {expected} slots",
            slots.len()
        )));
    }
    Ok(with_slots(template, slots))
}

/// The tree with its array slots replaced, in order, by `slots`.
pub(crate) fn with_slots<T: Tree>(tree: &T, slots: &[Array]) -> T {
    let mut out = tree.clone();
    let mut i = 0;
    out.visit_mut(&mut KeyPath::root(), &mut |_, slot| {
        *slot = slots[i].clone();
        i += 1;
    });
    out
}

/// Pretty-prints a tree as Equinox's `tree_pformat` does; derived `Debug`
/// impls call this.
pub fn tree_pformat<T: Tree>(tree: &T) -> String {
    tree.structure().pformat()
}
