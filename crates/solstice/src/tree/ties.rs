//! Ties you can see, check and move: [`tie_groups`], [`tree_check`],
//! [`tree_astype`], the alternate printing [`tree_pformat_ties`], and the
//! aliasing guard with its opt-out [`allow_aliasing`].
//!
//! A tie is made by [`Shared`](crate::nn::Shared): the nodes its `where`
//! selects become placeholders, rebuilt from its `get` on every call. Each
//! placeholder remembers the tie it belongs to, so these tools find every
//! tie of any tree, however deep, by walking its slots.
//!
//! The other way to "share" a weight, placing the same [`Array`] in two
//! leaves, is almost always a mistake: the two leaves get two gradients and
//! two updates and drift apart. `filter_grad` and `filter_value_and_grad`
//! refuse such a tree (naming both paths), as does [`tree_check`].
//!
//! # Examples
//!
//! ```
//! use solstice::{nn::{Embedding, Linear, Shared}, random::Key, tree::tie_groups};
//! # fn main() -> solstice::Result<()> {
//! let [k1, k2] = Key::new(0).split();
//! let pair = (Embedding::new(11, 6, k1)?, Linear::new(6, 11, k2)?);
//! let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
//! let groups = tie_groups(&shared)?;
//! assert_eq!(groups.len(), 1);
//! assert_eq!(groups[0].tied[0].path.to_string(), ".pytree[1].weight");
//! assert_eq!(groups[0].sources[0].path.to_string(), ".pytree[0].weight");
//! assert_eq!(groups[0].to_string(), ".pytree[1].weight: f32[11,6] = .pytree[0].weight");
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::{KeyPath, PathKey, Structure, Tree, tree_map, tree_slots};
use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// One tie of a tree: a [`Shared`](crate::nn::Shared), the leaves its
/// `get` reads and the nodes it fills.
#[derive(Clone, Debug, PartialEq)]
pub struct TieGroup {
    /// Where the `Shared` sits in the tree.
    pub shared: KeyPath,
    /// The name given to `get` with [`Shared::named`](crate::nn::Shared::named),
    /// if any.
    pub name: Option<String>,
    /// The leaves `get` reads, in leaf order.
    pub sources: Vec<TieLeaf>,
    /// The nodes `where` selected, now placeholders, in `where`'s order.
    pub tied: Vec<TiedNode>,
}

/// An array slot of a tie: its path, dtype and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TieLeaf {
    /// The slot's key path from the root of the tree.
    pub path: KeyPath,
    /// Its dtype.
    pub dtype: DType,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// One node a tie fills.
#[derive(Clone, Debug, PartialEq)]
pub struct TiedNode {
    /// The node's key path: a leaf, or a whole sub-module.
    pub path: KeyPath,
    /// Its array slots (placeholders in the stored tree), with the dtype and
    /// shape `get` gives them.
    pub slots: Vec<TieLeaf>,
    /// The leaves its value is computed from.
    pub from: Vec<KeyPath>,
    /// Whether `get` hands over those leaves themselves (a plain tie), rather
    /// than computing new arrays from them (a transpose, say).
    pub identity: bool,
}

impl TieGroup {
    /// How one tied node's value is made: `.a.weight` for a plain tie,
    /// `transpose(.a.weight)` for a named transform, `get(.a.weight)`
    /// otherwise.
    pub fn describe(&self, node: &TiedNode) -> String {
        let from: Vec<String> = node.from.iter().map(|p| p.to_string()).collect();
        let from = from.join(", ");
        if node.identity {
            from
        } else {
            format!("{}({from})", self.name.as_deref().unwrap_or("get"))
        }
    }
}

/// One line per tied node: `.pytree[1].weight: f32[11,6] = .pytree[0].weight`.
impl fmt::Display for TieGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.tied.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let slots: Vec<String> = node
                .slots
                .iter()
                .map(|s| {
                    let rel = &s.path.keys()[node.path.keys().len()..];
                    format!("{}{}", show_rel(rel), short(s.dtype, &s.shape))
                })
                .collect();
            let slots = if slots.len() == 1 {
                slots[0].clone()
            } else {
                format!("({})", slots.join(", "))
            };
            write!(f, "{}: {slots} = {}", node.path, self.describe(node))?;
        }
        Ok(())
    }
}

/// Every tie of `tree`, in the order their placeholders are visited: where
/// each `Shared` sits, the key paths, dtypes and shapes of the leaves its
/// `get` reads and of the slots it fills, and `get`'s name. Flax NNX's
/// `find_duplicates`, with the direction of each tie.
///
/// Fails where a tie no longer holds together: a source leaf that a
/// [`tree_at`](super::tree_at) removed, or a tie whose shapes surgery
/// changed (the error names the paths).
///
/// # Examples
///
/// ```
/// use solstice::{nn::{Embedding, Linear, Shared}, random::Key, tree::tie_groups};
/// # fn main() -> solstice::Result<()> {
/// let [k1, k2] = Key::new(0).split();
/// let pair = (Embedding::new(11, 6, k1)?, Linear::new(11, 6, k2)?);
/// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t())?.named("transpose");
/// let group = &tie_groups(&shared)?[0];
/// assert_eq!(group.name.as_deref(), Some("transpose"));
/// assert_eq!(group.to_string(), ".pytree[1].weight: f32[6,11] = transpose(.pytree[0].weight)");
/// # Ok(()) }
/// ```
pub fn tie_groups<T: Tree>(tree: &T) -> Result<Vec<TieGroup>> {
    let slots = tree_slots(tree);
    let leaves: HashMap<&KeyPath, &Array> = slots
        .iter()
        .filter(|(_, a)| !a.is_hole())
        .map(|(p, a)| (p, a))
        .collect();
    // Group the tagged placeholders by tie (the same `Shared` may be cloned
    // into several places of a tree: each place is its own group).
    let mut order: Vec<(usize, KeyPath)> = Vec::new();
    type Found = (Arc<TieMeta>, Vec<Vec<TieLeaf>>);
    let mut found: HashMap<(usize, KeyPath), Found> = HashMap::new();
    for (path, a) in &slots {
        let Some(tag) = a.tie_tag() else { continue };
        let Some(shared) = strip_suffix(path, &tag.slot) else {
            continue;
        };
        let key = (Arc::as_ptr(&tag.meta) as usize, shared);
        let entry = found.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            (tag.meta.clone(), vec![Vec::new(); tag.meta.targets.len()])
        });
        if let Some(target) = entry.1.get_mut(tag.target) {
            target.push(TieLeaf {
                path: path.clone(),
                dtype: tag.dtype,
                shape: tag.shape.clone(),
            });
        }
    }
    let mut groups = Vec::with_capacity(order.len());
    for key in order {
        let (meta, slots_of) = found.remove(&key).expect("every key was inserted");
        let shared = key.1;
        if let Some(broken) = &meta.broken {
            return Err(broken.clone().context(format!("in the tie at {shared}")));
        }
        let mut sources: Vec<TieLeaf> = Vec::new();
        let mut tied = Vec::new();
        for (target, slots) in meta.targets.iter().zip(slots_of) {
            let Some(node) = &target.node else { continue };
            let mut from = Vec::new();
            for rel in &target.sources {
                let path = join(&shared, rel);
                let Some(leaf) = leaves.get(&path) else {
                    return Err(Error::structure(format!(
                        "tie_groups: the tie at {} is computed from {path}, which is no longer \
                         a leaf of the tree; a tree_at removed it: rebuild the `Shared` on \
                         the new tree, or put a leaf back there",
                        join(&shared, node)
                    )));
                };
                if target.identity
                    && slots.len() == 1
                    && (leaf.dtype() != slots[0].dtype || leaf.shape() != slots[0].shape)
                {
                    return Err(Error::structure(format!(
                        "tie_groups: the tie group at {shared} changed shape: {path} is {} \
                         but the slot tied to it, {}, is {}; change both together \
                         (tree_at on the source) or rebuild the `Shared`",
                        leaf.short_description(),
                        slots[0].path,
                        short(slots[0].dtype, &slots[0].shape)
                    )));
                }
                if !sources.iter().any(|s| s.path == path) {
                    sources.push(TieLeaf {
                        path: path.clone(),
                        dtype: leaf.dtype(),
                        shape: leaf.shape().to_vec(),
                    });
                }
                from.push(path);
            }
            tied.push(TiedNode {
                path: join(&shared, node),
                slots,
                from,
                identity: target.identity,
            });
        }
        let index = |p: &KeyPath| slots.iter().position(|(q, _)| q == p);
        sources.sort_by_key(|s| index(&s.path));
        groups.push(TieGroup {
            shared,
            name: meta.name.as_deref().map(str::to_string),
            sources,
            tied,
        });
    }
    Ok(groups)
}

/// Checks a tree by hand, as Equinox's `tree_check` does: no array is in two
/// leaves (tie them with `Shared` instead), and every tie still holds
/// together (see [`tie_groups`]).
///
/// `filter_grad` and `filter_value_and_grad` run the aliasing part on every
/// call; run this after surgery, before saving, or in a test.
///
/// # Examples
///
/// ```
/// use solstice::{Array, tree::{allow_aliasing, tree_check}};
/// # fn main() -> solstice::Result<()> {
/// let w = Array::from_vec(vec![1.0f32, 2.0], &[2])?;
/// let err = tree_check(&(w.clone(), w.clone())).unwrap_err();
/// assert!(err.to_string().starts_with("tree_check: the same array is in two leaves, [0] and [1]"));
/// assert!(allow_aliasing(|| tree_check(&(w.clone(), w.clone()))).is_ok());
/// # Ok(()) }
/// ```
pub fn tree_check<T: Tree>(tree: &T) -> Result<()> {
    check_aliasing(tree, "tree_check")?;
    tie_groups(tree).map(|_| ())
}

/// Runs `f` with the aliasing guard off on this thread: the same array may
/// then sit in two leaves of a tree given to `filter_grad`,
/// `filter_value_and_grad`, an optimiser's `init`, a serialiser or
/// [`tree_check`]. Each leaf then has its own gradient and update.
///
/// # Examples
///
/// ```
/// use solstice::{Array, filter_grad, tree::allow_aliasing};
/// # fn main() -> solstice::Result<()> {
/// let w = Array::from_vec(vec![3.0f32], &[1])?;
/// let loss = |m: &(Array, Array), _: &()| m.0.mul(&m.1)?.sum_all();
/// let twice = (w.clone(), w.clone());
/// assert!(filter_grad(loss)(&twice, &()).is_err());
/// let grads = allow_aliasing(|| filter_grad(loss)(&twice, &()))?;
/// assert_eq!(grads.0.to_vec::<f32>()?, vec![3.0]);
/// # Ok(()) }
/// ```
pub fn allow_aliasing<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            ALIASING_ALLOWED.with(|c| c.set(c.get() - 1));
        }
    }
    ALIASING_ALLOWED.with(|c| c.set(c.get() + 1));
    let _restore = Restore;
    f()
}

thread_local! {
    static ALIASING_ALLOWED: Cell<usize> = const { Cell::new(0) };
}

/// The aliasing guard: an error naming both paths if the same array sits
/// in two leaves of `tree`, unless inside [`allow_aliasing`]. `api` names
/// the caller in the message (`"adamw init"`, `"save_safetensors"`).
///
/// One pass over the slots with a hash set of array identities.
pub(crate) fn check_aliasing<T: Tree>(tree: &T, api: &str) -> Result<()> {
    if aliasing_allowed() {
        return Ok(());
    }
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut index = 0;
    let mut duplicate = None;
    tree.visit(&mut KeyPath::root(), &mut |_, a| {
        if duplicate.is_none() && !a.is_hole() {
            if let Some(&first) = seen.get(&a.identity()) {
                duplicate = Some((first, index));
            } else {
                seen.insert(a.identity(), index);
            }
        }
        index += 1;
    });
    match duplicate {
        None => Ok(()),
        Some((i, j)) => {
            let slots = tree_slots(tree);
            Err(aliasing_error(api, &slots[i].0, &slots[j].0))
        }
    }
}

/// [`check_aliasing`] over slots already collected.
pub(crate) fn check_aliasing_slots(
    slots: &[Array],
    paths: impl Fn(usize) -> KeyPath,
    api: &str,
) -> Result<()> {
    if aliasing_allowed() {
        return Ok(());
    }
    let mut seen: HashMap<usize, usize> = HashMap::with_capacity(slots.len());
    for (j, a) in slots.iter().enumerate() {
        if a.is_hole() {
            continue;
        }
        if let Some(&i) = seen.get(&a.identity()) {
            return Err(aliasing_error(api, &paths(i), &paths(j)));
        }
        seen.insert(a.identity(), j);
    }
    Ok(())
}

fn aliasing_allowed() -> bool {
    ALIASING_ALLOWED.with(|c| c.get() > 0)
}

#[cold]
fn aliasing_error(api: &str, first: &KeyPath, second: &KeyPath) -> Error {
    Error::structure(format!(
        "{api}: the same array is in two leaves, {first} and {second}; as two leaves they would \
         get two gradients and two updates and drift apart: tie them with `Shared` \
         (solstice::nn::Shared), or run inside `solstice::tree::allow_aliasing` if you mean it"
    ))
}

/// `tree` with every floating leaf converted to `dtype`, which must be a
/// floating dtype; other leaves are kept. A tied leaf is one leaf, so it is
/// converted once, and after [`Shared::call`](crate::nn::Shared::call) the
/// tie still holds.
///
/// # Examples
///
/// ```
/// use solstice::{DType, nn::{Embedding, Linear, Shared}, random::Key, tree::tree_astype};
/// # fn main() -> solstice::Result<()> {
/// let [k1, k2] = Key::new(0).split();
/// let pair = (Embedding::new(11, 6, k1)?, Linear::new(6, 11, k2)?);
/// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
/// let wide = tree_astype(&shared, DType::F64)?;
/// let (embedding, linear) = wide.call()?;
/// assert_eq!(linear.weight.dtype(), DType::F64);
/// assert!(embedding.weight.is(&linear.weight)); // still one array
/// # Ok(()) }
/// ```
pub fn tree_astype<T: Tree>(tree: &T, dtype: DType) -> Result<T> {
    if !dtype.is_float() {
        return Err(Error::dtype(format!(
            "tree_astype converts floating leaves to a floating dtype but got {}; \
             convert integer leaves one by one with `Array::astype`",
            dtype.short_name()
        )));
    }
    tree_map(tree, |_, a| {
        if let Some(tag) = a.tie_tag() {
            // The slot will hold `get`'s value, computed from converted
            // leaves: it changes dtype with them.
            if tag.dtype.is_float() {
                return Ok(Array::tied_placeholder(Arc::new(TieTag {
                    dtype,
                    ..(**tag).clone()
                })));
            }
            return Ok(a.clone());
        }
        if a.is_hole() || !a.dtype().is_float() {
            Ok(a.clone())
        } else {
            a.astype(dtype)
        }
    })
}

/// Equinox's printing, with each placeholder showing where its value comes
/// from: `weight=SharedNode(= .shared.pytree[0].weight)`. This is what
/// `{:#?}` prints for a derived module; `{:?}` prints Equinox's form.
///
/// # Examples
///
/// ```
/// use solstice::{nn::{Embedding, Linear, Shared}, random::Key, tree::tree_pformat_ties};
/// # fn main() -> solstice::Result<()> {
/// let [k1, k2] = Key::new(0).split();
/// let pair = (Embedding::new(11, 6, k1)?, Linear::new(6, 11, k2)?);
/// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
/// assert!(tree_pformat_ties(&shared).contains("weight=SharedNode(= .pytree[0].weight)"));
/// assert!(format!("{shared:?}").contains("weight=SharedNode,"));
/// # Ok(()) }
/// ```
pub fn tree_pformat_ties<T: Tree>(tree: &T) -> String {
    let mut structure = tree.structure();
    match tie_groups(tree) {
        Ok(groups) => {
            for group in &groups {
                for node in &group.tied {
                    let text = format!("SharedNode(= {})", group.describe(node));
                    replace_node(&mut structure, node.path.keys(), Structure::Opaque(text));
                }
            }
            structure.pformat()
        }
        Err(e) => format!("{}\n# the ties could not be read: {e}", structure.pformat()),
    }
}

/// The `Debug` of derived modules: Equinox's form, or with `{:#?}` the form
/// of [`tree_pformat_ties`].
#[doc(hidden)]
pub fn tree_fmt<T: Tree>(tree: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        f.write_str(&tree_pformat_ties(tree))
    } else {
        f.write_str(&tree.structure().pformat())
    }
}

/// What a `Shared` placeholder knows: its tie, which of the tie's nodes it
/// is in, its own path inside the `Shared`'s tree, and the dtype and shape
/// the tie gives it.
#[derive(Clone)]
pub(crate) struct TieTag {
    pub(crate) meta: Arc<TieMeta>,
    pub(crate) target: usize,
    pub(crate) slot: KeyPath,
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
}

/// What one `Shared` knows about its tie, paths relative to its tree.
pub(crate) struct TieMeta {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) targets: Vec<TargetMeta>,
    /// Why the tie no longer holds after surgery, if it does not.
    pub(crate) broken: Option<Error>,
}

/// One node a `Shared` fills.
#[derive(Clone)]
pub(crate) struct TargetMeta {
    /// `None` for a node without array slots, which nothing marks.
    pub(crate) node: Option<KeyPath>,
    pub(crate) sources: Vec<KeyPath>,
    pub(crate) identity: bool,
}

/// `path` without the trailing `.pytree` + `rel`: the path of the `Shared`
/// that holds a placeholder at `rel` of its tree.
fn strip_suffix(path: &KeyPath, rel: &KeyPath) -> Option<KeyPath> {
    let keys = path.keys();
    let n = rel.keys().len() + 1;
    if keys.len() < n || keys[keys.len() - rel.keys().len()..] != *rel.keys() {
        return None;
    }
    if keys[keys.len() - n] != PathKey::Field("pytree") {
        return None;
    }
    let mut out = KeyPath::root();
    for key in &keys[..keys.len() - n] {
        out.push(key.clone());
    }
    Some(out)
}

/// `shared` + `.pytree` + `rel`.
fn join(shared: &KeyPath, rel: &KeyPath) -> KeyPath {
    let mut out = shared.clone();
    out.push(PathKey::Field("pytree"));
    for key in rel.keys() {
        out.push(key.clone());
    }
    out
}

fn show_rel(rel: &[PathKey]) -> String {
    let mut path = KeyPath::root();
    for key in rel {
        path.push(key.clone());
    }
    if rel.is_empty() {
        String::new()
    } else {
        format!("{path} ")
    }
}

fn short(dtype: DType, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", dtype.short_name(), dims.join(","))
}

/// Replaces the node at `path` of a structure; false if there is none.
pub(crate) fn replace_node(structure: &mut Structure, path: &[PathKey], new: Structure) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *structure = new;
        return true;
    };
    let child = match (structure, first) {
        (Structure::Struct { fields, .. }, PathKey::Field(name)) => {
            fields.iter_mut().find(|(n, _)| n == name).map(|(_, s)| s)
        }
        (Structure::Struct { fields, .. }, PathKey::Index(i)) => {
            let name = i.to_string();
            fields.iter_mut().find(|(n, _)| *n == name).map(|(_, s)| s)
        }
        (Structure::Tuple(items) | Structure::List(items), PathKey::Index(i)) => items.get_mut(*i),
        _ => None,
    };
    match child {
        Some(child) => replace_node(child, rest, new),
        None => false,
    }
}
