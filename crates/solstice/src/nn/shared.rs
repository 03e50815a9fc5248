//! [`Shared`]: ties nodes of a tree together, Equinox's `eqx.nn.Shared`.
//!
//! A tree is a tree, not a graph: the same layer stored twice is two copies.
//! `Shared` is how a weight is used in two places as one leaf. Given a tree,
//! a `where` selecting the node(s) to tie and a `get` computing their value
//! from the rest of the tree, `Shared`:
//!
//! 1. checks that `get(tree)` and the `where` nodes have the same structure,
//!    shapes and dtypes, and fails with an error showing both otherwise;
//! 2. replaces the `where` nodes by placeholders (Equinox's `SharedNode`):
//!    every array slot in them becomes a placeholder, which no leaf
//!    traversal, gradient, optimiser or serialiser treats as an array;
//! 3. on [`Shared::call`], rebuilds the whole tree with `get(tree)` in place.
//!
//! `get` may transform (transpose, add one, ...). Because the rebuilt tree
//! holds the very arrays `get` returned, a gradient flows through every use
//! back to the source leaf, summed, and through the transform.
//!
//! # Examples
//!
//! The seed's language model: an embedding matrix reused as the output
//! layer's weight.
//!
//! ```
//! use solstice::{nn::{Embedding, Linear, Shared}, random::Key, tree::tree_leaves};
//! # fn main() -> solstice::Result<()> {
//! let [k1, k2] = Key::new(0).split();
//! let embedding = Embedding::new(11, 6, k1)?;
//! let linear = Linear::new(6, 11, k2)?;
//! let shared = Shared::new((embedding, linear), |p| &mut p.1.weight, |p| p.0.weight.clone())?;
//! let (embedding, linear) = shared.call()?;
//! assert!(embedding.weight.is(&linear.weight)); // same parameter
//! // The tied matrix is one leaf: embedding.weight and linear.bias.
//! assert_eq!(tree_leaves(&shared).len(), 2);
//! # Ok(()) }
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::array::Array;
use crate::error::{Error, Result};
use crate::transform::eval_shape::abstractly;
use crate::transform::grad::dependencies;
use crate::tree::path::strip_suffix;
use crate::tree::ties::{TargetMeta, TieMeta, TieTag, replace_node};
use crate::tree::{KeyPath, PathKey, Structure, Tree, tree_map, tree_slots, with_slots};

/// What `get` may return: the value itself, or a `Result` of it (for
/// transforms that can fail, such as `p.0.weight.t()`).
pub trait Tied<N> {
    /// The value, or the error `get` met.
    fn into_tied(self) -> Result<N>;
}

impl<N: Tree> Tied<N> for N {
    fn into_tied(self) -> Result<N> {
        Ok(self)
    }
}

impl<N: Tree> Tied<N> for Result<N> {
    fn into_tied(self) -> Result<N> {
        self
    }
}

/// A tree with some nodes tied to others. See the [module docs](self).
pub struct Shared<T> {
    pytree: T,
    core: Arc<Core<T>>,
    meta: Arc<TieMeta>,
    /// Set by [`Shared::pytree_mut`]: the tied slots may hold arrays again,
    /// and the tie is re-made before the tree is next used.
    dirty: bool,
}

impl<T: Tree> Shared<T> {
    /// Ties one node: `select` picks it (Equinox's `where`), `get` computes its value.
    ///
    /// Fails if `get`'s value and the node differ in structure, shape or
    /// dtype, and if `get` reads the node `select` removes (the value must
    /// come from the rest of the tree).
    ///
    /// These checks run `get` on shapes and dtypes only, as Equinox runs it
    /// under `filter_eval_shape` (see [`eval_shape`](crate::eval_shape)):
    /// building the tie computes nothing, and a `get` that reads values on
    /// the host (`to_vec`) is an error here.
    ///
    /// # Examples
    ///
    /// `get` may transform; here the tied weight is a transpose.
    ///
    /// ```
    /// use solstice::{nn::{Linear, Shared}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let [k1, k2] = Key::new(1).split();
    /// let pair = (Linear::new(3, 5, k1)?, Linear::new(5, 3, k2)?);
    /// let shared = Shared::new(pair.clone(), |p| &mut p.1.weight, |p| p.0.weight.t())?;
    /// let (a, b) = shared.call()?;
    /// assert_eq!(b.weight.to_vec::<f32>()?, a.weight.t()?.to_vec::<f32>()?);
    /// // `get` may not read what `select` removes.
    /// let err = Shared::new(pair, |p| &mut p.1.weight, |p| p.1.weight.clone()).unwrap_err();
    /// assert!(err.to_string().starts_with("Shared::new: `get` reads the node that `where` removes"));
    /// # Ok(()) }
    /// ```
    pub fn new<N, G>(
        pytree: T,
        select: impl for<'a> Fn(&'a mut T) -> &'a mut N + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        N: Tree,
        G: Tied<N>,
    {
        let select = Arc::new(select);
        let get = Arc::new(get);
        let (w1, w2, w3, g1, g2) = (select.clone(), select.clone(), select, get.clone(), get);
        let core = Core {
            visit: Box::new(move |t, f| visit_node(0, w1(t), f)),
            structures: Box::new(move |t| vec![w2(t).structure()]),
            values: Box::new(move |t| Ok(vec![value_slots(&g1(t).into_tied()?)])),
            rebuild: Box::new(move |t, fill| {
                let value = fill.apply(g2(t).into_tied()?)?;
                let mut out = t.clone();
                *w3(&mut out) = value;
                Ok(out)
            }),
        };
        Shared::build(pytree, Arc::new(core), None, "Shared::new")
    }

    /// Ties several nodes of one type: `select` picks them, `get` returns
    /// as many values, in the same order.
    pub fn new_each<N, G>(
        pytree: T,
        select: impl for<'a> Fn(&'a mut T) -> Vec<&'a mut N> + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        N: Tree,
        G: Tied<Vec<N>>,
    {
        let select = Arc::new(select);
        let get = Arc::new(get);
        let (w1, w2, w3, g1, g2) = (select.clone(), select.clone(), select, get.clone(), get);
        let core = Core {
            visit: Box::new(move |t, f| {
                for (k, node) in w1(t).into_iter().enumerate() {
                    visit_node(k, node, f);
                }
            }),
            structures: Box::new(move |t| w2(t).iter().map(|n| n.structure()).collect()),
            values: Box::new(move |t| Ok(g1(t).into_tied()?.iter().map(value_slots).collect())),
            rebuild: Box::new(move |t, fill| {
                let values = g2(t).into_tied()?;
                let mut out = t.clone();
                let nodes = w3(&mut out);
                if nodes.len() != values.len() {
                    return Err(Error::structure(format!(
                        "Shared::call: `where` selected {} nodes but `get` returned {} values",
                        nodes.len(),
                        values.len()
                    )));
                }
                for (node, value) in nodes.into_iter().zip(values) {
                    *node = fill.apply(value)?;
                }
                Ok(out)
            }),
        };
        Shared::build(pytree, Arc::new(core), None, "Shared::new_each")
    }

    /// Ties two nodes, possibly of different types: `select` picks them,
    /// `get` returns their two values.
    pub fn new_pair<A, B, G>(
        pytree: T,
        select: impl for<'a> Fn(&'a mut T) -> (&'a mut A, &'a mut B) + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        A: Tree,
        B: Tree,
        G: Tied<(A, B)>,
    {
        let select = Arc::new(select);
        let get = Arc::new(get);
        let (w1, w2, w3, g1, g2) = (select.clone(), select.clone(), select, get.clone(), get);
        let core = Core {
            visit: Box::new(move |t, f| {
                let (a, b) = w1(t);
                visit_node(0, a, f);
                visit_node(1, b, f);
            }),
            structures: Box::new(move |t| {
                let (a, b) = w2(t);
                vec![a.structure(), b.structure()]
            }),
            values: Box::new(move |t| {
                let (a, b) = g1(t).into_tied()?;
                Ok(vec![value_slots(&a), value_slots(&b)])
            }),
            rebuild: Box::new(move |t, fill| {
                let (va, vb) = g2(t).into_tied()?;
                let mut out = t.clone();
                let (a, b) = w3(&mut out);
                *a = fill.apply(va)?;
                *b = fill.apply(vb)?;
                Ok(out)
            }),
        };
        Shared::build(pytree, Arc::new(core), None, "Shared::new_pair")
    }

    /// The same tie with `get` named, as Equinox prints a named function:
    /// `get=<function transpose>`. [`tie_groups`](crate::tree::tie_groups)
    /// and the `{:#?}` printing show the name too.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{nn::{Linear, Shared}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let [k1, k2] = Key::new(1).split();
    /// let pair = (Linear::new(3, 5, k1)?, Linear::new(5, 3, k2)?);
    /// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t())?.named("transpose");
    /// assert!(format!("{shared:?}").contains("get=<function transpose>"));
    /// # Ok(()) }
    /// ```
    pub fn named(mut self, name: &str) -> Self {
        let meta = Arc::new(TieMeta {
            name: Some(Arc::from(name)),
            targets: self.meta.targets.clone(),
            broken: self.meta.broken.clone(),
        });
        self.retag(meta);
        self
    }

    /// The whole tree, with `get(pytree)` in place of the tied nodes:
    /// Equinox's `Shared.__call__`.
    ///
    /// Fails if surgery broke the tie (see [`Shared::pytree_mut`]).
    pub fn call(&self) -> Result<T> {
        if self.dirty {
            return self.settled().call();
        }
        if let Some(broken) = &self.meta.broken {
            return Err(broken.clone());
        }
        guarded("Shared::call", || {
            (self.core.rebuild)(&self.pytree, Fill::Same)
        })
    }

    /// The whole tree, as [`Shared::call`] builds it, with every tied node
    /// holding its own copy of the data: PyTorch's and Flax's "untie". The
    /// parts no longer share arrays, so they train independently from then
    /// on.
    ///
    /// A `Shared` that ties no node (a `new_each` whose `where` selected
    /// none) has nothing to untie: this is then [`Shared::call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{nn::{Embedding, Linear, Shared}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let [k1, k2] = Key::new(0).split();
    /// let pair = (Embedding::new(11, 6, k1)?, Linear::new(6, 11, k2)?);
    /// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
    /// let (embedding, linear) = shared.untie()?;
    /// assert!(!embedding.weight.is(&linear.weight));
    /// assert_eq!(embedding.weight.to_vec::<f32>()?, linear.weight.to_vec::<f32>()?);
    /// # Ok(()) }
    /// ```
    pub fn untie(&self) -> Result<T> {
        if self.dirty {
            return self.settled().untie();
        }
        if let Some(broken) = &self.meta.broken {
            return Err(broken.clone());
        }
        guarded("Shared::untie", || {
            (self.core.rebuild)(&self.pytree, Fill::Copy)
        })
    }

    /// The stored tree, with placeholders where the tied nodes were.
    pub fn pytree(&self) -> &T {
        &self.pytree
    }

    /// The stored tree, mutably, for surgery with
    /// [`tree_at`](crate::tree::tree_at): Equinox's
    /// `eqx.tree_at(lambda m: m.shared.pytree[1].bias, m, b)` is
    /// `tree_at(&m, |m| &mut m.shared.pytree_mut().1.bias, b)`.
    ///
    /// The tie is kept: the tied nodes are placeholders again afterwards,
    /// even if the surgery replaced a node that contained one, and the tie
    /// is checked again. If the surgery broke it (a source that no longer
    /// exists, or a source whose shape no longer fits the tied node),
    /// [`Shared::call`] and [`tree_check`](crate::tree::tree_check) say so.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, nn::{Embedding, Linear, Shared}, random::Key, tree::{tree_at, tree_leaves}};
    /// # fn main() -> solstice::Result<()> {
    /// let [k1, k2] = Key::new(0).split();
    /// let pair = (Embedding::new(11, 6, k1)?, Linear::new(6, 11, k2)?);
    /// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
    /// let bias = Array::zeros(&[11], solstice::DType::F32)?;
    /// let new = tree_at(&shared, |s| &mut s.pytree_mut().1.bias, Some(bias.clone()))?;
    /// assert!(new.pytree().1.weight.is_placeholder()); // still tied
    /// assert!(new.call()?.1.bias.unwrap().is(&bias));
    /// assert_eq!(tree_leaves(&new).len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn pytree_mut(&mut self) -> &mut T {
        self.dirty = true;
        &mut self.pytree
    }

    /// Makes the tie from a tree whose tied nodes are in place (a full tree,
    /// as `call` returns): checks it, records its paths for the tie tools,
    /// and replaces the tied nodes by placeholders.
    ///
    /// `get` runs on shapes and dtypes only (as Equinox runs it under
    /// `filter_eval_shape`): no data is read or computed here. The arrays
    /// in `values` are abstract, and only their shapes and dtypes are used.
    fn build(pytree: T, core: Arc<Core<T>>, name: Option<Arc<str>>, api: &str) -> Result<Self> {
        let values = guarded(api, || abstractly(&pytree, |p| (core.values)(p)))?;
        let mut probe = pytree.clone();
        let targets = guarded(api, || Ok((core.structures)(&mut probe)))?;
        if values.len() != targets.len() {
            return Err(Error::structure(format!(
                "{api}: `where` selected {} nodes but `get` returned {} values; \
                 return one value per selected node",
                targets.len(),
                values.len()
            )));
        }
        let sources: Vec<Structure> = values.iter().map(|(s, _)| s.clone()).collect();
        check_same(&sources, &targets)?;

        // Find each node's path: mark its slots with fresh placeholders,
        // then look for them in the whole tree.
        let mut stored = pytree;
        let mut marks: Vec<(usize, KeyPath, Array)> = Vec::new();
        (core.visit)(&mut stored, &mut |k, rel, slot| {
            let mark = Array::placeholder();
            marks.push((k, rel.clone(), mark.clone()));
            *slot = mark;
        });
        let slots = tree_slots(&stored);
        let mut nodes: Vec<Option<KeyPath>> = vec![None; targets.len()];
        let mut slot_paths = Vec::with_capacity(marks.len());
        for (k, rel, mark) in &marks {
            let path = slots
                .iter()
                .find(|(_, a)| a.is(mark))
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            if nodes[*k].is_none() {
                nodes[*k] = strip_suffix(&path, rel);
            }
            slot_paths.push(path);
        }
        // `get` must compute the tied value from the rest of the tree.
        let reads_removed = |cause: String| {
            let removed: Vec<String> = nodes
                .iter()
                .flatten()
                .map(|p| format!(".pytree{p}"))
                .collect();
            Error::structure(format!(
                "{api}: `get` reads the node that `where` removes ({}): {cause}; `get` must \
                 compute the tied value from the rest of the tree, so read the source node \
                 (for example `p.0.weight`), not the tied one",
                removed.join(", ")
            ))
        };
        let on_stored =
            guarded(api, || abstractly(&stored, |s| (core.values)(s))).map_err(|e| {
                reads_removed(if e.is_hole() {
                    "it computes with that node".to_string()
                } else {
                    e.to_string()
                })
            })?;
        if on_stored
            .iter()
            .any(|(_, v)| v.iter().any(Array::is_placeholder))
        {
            return Err(reads_removed("it returned a placeholder".to_string()));
        }
        let meta = Arc::new(TieMeta {
            name,
            targets: trace_sources(&stored, &core, nodes),
            broken: None,
        });
        let mut i = 0;
        (core.visit)(&mut stored, &mut |k, _, slot| {
            let value = &values[k].1;
            let j = marks[..i].iter().filter(|m| m.0 == k).count();
            let (dtype, shape) = value
                .get(j)
                .map(|a| (a.dtype(), a.shape().to_vec()))
                .unwrap_or((crate::array::DType::F32, Vec::new()));
            *slot = Array::tied_placeholder(Arc::new(TieTag {
                meta: meta.clone(),
                target: k,
                slot: slot_paths[i].clone(),
                dtype,
                shape,
            }));
            i += 1;
        });
        Ok(Shared {
            pytree: stored,
            core,
            meta,
            dirty: false,
        })
    }

    /// This `Shared` after surgery through [`Shared::pytree_mut`]: the tied
    /// nodes placeholders again, the tie checked and its paths recorded
    /// again. A tie that no longer holds is kept, marked broken, so that
    /// using it reports why.
    fn settle(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let name = self.meta.name.clone();
        match self.remake() {
            Ok(mut remade) => {
                let meta = Arc::new(TieMeta {
                    name,
                    targets: remade.meta.targets.clone(),
                    broken: None,
                });
                remade.retag(meta);
                *self = remade;
            }
            Err(e) => {
                let meta = Arc::new(TieMeta {
                    name,
                    targets: self.meta.targets.clone(),
                    broken: Some(e.context("the tie no longer holds after surgery on its tree")),
                });
                self.meta = meta.clone();
                // Placeholders back where `where` still reaches, each
                // carrying the broken tie so that the tie tools report it.
                let core = self.core.clone();
                let pytree = &mut self.pytree;
                let _ = guarded("tree_at", || {
                    (core.visit)(pytree, &mut |k, rel, slot| {
                        let (dtype, shape) = match slot.tie_tag() {
                            Some(tag) => (tag.dtype, tag.shape.clone()),
                            None => (slot.dtype(), slot.shape().to_vec()),
                        };
                        let mut path = meta
                            .targets
                            .get(k)
                            .and_then(|t| t.node.clone())
                            .unwrap_or_default();
                        for key in rel.keys() {
                            path.push(key.clone());
                        }
                        *slot = Array::tied_placeholder(Arc::new(TieTag {
                            meta: meta.clone(),
                            target: k,
                            slot: path,
                            dtype,
                            shape,
                        }));
                    });
                    Ok(())
                });
            }
        }
    }

    fn remake(&self) -> Result<Self> {
        // What each tied slot must hold: what surgery put there, or else
        // what the tie gave it.
        let mut expected = Vec::new();
        let core = self.core.clone();
        let mut pytree = self.pytree.clone();
        guarded("tree_at", || {
            (core.visit)(&mut pytree, &mut |k, rel, slot| {
                let shape = match slot.tie_tag() {
                    Some(tag) => Some((tag.dtype, tag.shape.clone())),
                    None if !slot.is_hole() => Some((slot.dtype(), slot.shape().to_vec())),
                    None => None,
                };
                expected.push((k, rel.clone(), shape));
                *slot = Array::placeholder();
            });
            Ok(())
        })?;
        let values = guarded("tree_at", || abstractly(&pytree, |p| (core.values)(p)))?;
        let got: Vec<(usize, &Array)> = values
            .iter()
            .enumerate()
            .flat_map(|(k, (_, v))| v.iter().map(move |a| (k, a)))
            .collect();
        if got.len() != expected.len() {
            return Err(Error::structure(format!(
                "the tied nodes have {} array slots but `get` now returns {}",
                expected.len(),
                got.len()
            )));
        }
        for ((k, rel, want), (_, a)) in expected.iter().zip(&got) {
            if let Some((dtype, shape)) = want
                && (a.dtype() != *dtype || a.shape() != shape.as_slice())
            {
                let node = self.meta.targets.get(*k).and_then(|t| t.node.clone());
                let at = node.map(|n| format!("{n}")).unwrap_or_default();
                return Err(Error::structure(format!(
                    "a tie group's shapes changed: the tied slot .pytree{at}{} holds {}{:?} \
                     but `get` now gives {}; change the source and the tied node together, \
                     or rebuild the `Shared`",
                    if rel.keys().is_empty() {
                        String::new()
                    } else {
                        rel.to_string()
                    },
                    dtype.short_name(),
                    shape,
                    a.short_description()
                )));
            }
        }
        let full = guarded("tree_at", || (core.rebuild)(&pytree, Fill::Same))?;
        Shared::build(full, core, None, "tree_at")
    }

    /// A settled copy of a `Shared` changed through `pytree_mut`.
    fn settled(&self) -> Self {
        let mut copy = self.clone();
        copy.settle();
        copy
    }

    /// Points every placeholder of the tie at `meta`.
    fn retag(&mut self, meta: Arc<TieMeta>) {
        self.meta = meta.clone();
        (self.core.visit)(&mut self.pytree, &mut |_, _, slot| {
            if let Some(tag) = slot.tie_tag() {
                *slot = Array::tied_placeholder(Arc::new(TieTag {
                    meta: meta.clone(),
                    ..(**tag).clone()
                }));
            }
        });
    }

    /// Equinox's structure: a tied node, leaf or sub-module, is one
    /// `SharedNode`.
    fn equinox_structure(&self) -> Structure {
        if self.dirty {
            return self.settled().equinox_structure();
        }
        let mut pytree = self.pytree.structure();
        for target in &self.meta.targets {
            if let Some(node) = &target.node {
                replace_node(&mut pytree, node.keys(), Structure::Placeholder);
            }
        }
        let get = self.meta.name.as_deref().unwrap_or("<lambda>");
        Structure::Struct {
            name: "Shared".to_string(),
            fields: vec![
                ("pytree".to_string(), pytree),
                (
                    "where".to_string(),
                    Structure::Opaque("<function <lambda>>".to_string()),
                ),
                (
                    "get".to_string(),
                    Structure::Opaque(format!("<function {get}>")),
                ),
            ],
        }
    }
}

impl<N: Tree> Shared<Vec<N>> {
    /// Every node of `nodes` after the first tied to the first: one block
    /// used `nodes.len()` times, as in a Universal Transformer. The
    /// gradient of the first block is the sum over every use.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{nn::{Linear, Shared}, random::Key, tree::tree_leaves};
    /// # fn main() -> solstice::Result<()> {
    /// let blocks = (0..4).map(|i| Linear::new(3, 3, Key::new(i))).collect::<solstice::Result<Vec<_>>>()?;
    /// let shared = Shared::tie_to_first(blocks)?;
    /// assert_eq!(tree_leaves(&shared).len(), 2); // block 0's weight and bias
    /// let blocks = shared.call()?;
    /// assert!(blocks[3].weight.is(&blocks[0].weight));
    /// # Ok(()) }
    /// ```
    pub fn tie_to_first(nodes: Vec<N>) -> Result<Self> {
        Self::tie_field_to_first(nodes, |n| n)
    }

    /// The part `field` selects of every node of `nodes` tied to the first
    /// node's: one weight across all layers, the rest of each layer its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{nn::{Linear, Shared}, random::Key, tree::tree_leaves};
    /// # fn main() -> solstice::Result<()> {
    /// let layers = (0..3).map(|i| Linear::new(4, 4, Key::new(i))).collect::<solstice::Result<Vec<_>>>()?;
    /// let shared = Shared::tie_field_to_first(layers, |l| &mut l.weight)?;
    /// assert_eq!(tree_leaves(&shared).len(), 4); // one weight, three biases
    /// let layers = shared.call()?;
    /// assert!(layers[2].weight.is(&layers[0].weight));
    /// assert!(!layers[2].bias.as_ref().unwrap().is(layers[0].bias.as_ref().unwrap()));
    /// # Ok(()) }
    /// ```
    pub fn tie_field_to_first<F: Tree>(
        nodes: Vec<N>,
        field: impl for<'a> Fn(&'a mut N) -> &'a mut F + Send + Sync + 'static,
    ) -> Result<Self> {
        if nodes.is_empty() {
            return Err(Error::invalid(
                "Shared::tie_field_to_first got no nodes; give at least one (the first is the source)",
            ));
        }
        let field = Arc::new(field);
        let get_field = field.clone();
        Shared::new_each(
            nodes,
            move |v: &mut Vec<N>| v.iter_mut().skip(1).map(|n| field(n)).collect(),
            move |v: &Vec<N>| -> Result<Vec<F>> {
                let mut first = v
                    .first()
                    .ok_or_else(|| {
                        Error::structure(
                            "the nodes tied to the first have no first node: surgery emptied \
                             the list; rebuild the `Shared` on the new list",
                        )
                    })?
                    .clone();
                let value = get_field(&mut first).clone();
                Ok(vec![value; v.len() - 1])
            },
        )
    }
}

/// A visitor of the tied slots: `(node index, path inside the node, slot)`.
type SlotVisitor<'a> = &'a mut dyn FnMut(usize, &KeyPath, &mut Array);
/// `get`'s value for one node: its structure and array slots.
type Value = (Structure, Vec<Array>);
type VisitFn<T> = Box<dyn Fn(&mut T, SlotVisitor<'_>) + Send + Sync>;
type StructuresFn<T> = Box<dyn Fn(&mut T) -> Vec<Structure> + Send + Sync>;
type ValuesFn<T> = Box<dyn Fn(&T) -> Result<Vec<Value>> + Send + Sync>;
type RebuildFn<T> = Box<dyn Fn(&T, Fill) -> Result<T> + Send + Sync>;

/// The closures a `Shared` keeps, with the types of the tied nodes erased.
struct Core<T> {
    /// Visits the array slots of each tied node.
    visit: VisitFn<T>,
    /// The structure of each tied node.
    structures: StructuresFn<T>,
    /// `get`'s value for each node.
    values: ValuesFn<T>,
    /// The tree with `get`'s values in place.
    rebuild: RebuildFn<T>,
}

/// How `rebuild` puts `get`'s values in place.
#[derive(Clone, Copy)]
enum Fill {
    /// As they are: the tie (`call`).
    Same,
    /// Each array copied: no tie (`untie`).
    Copy,
}

impl Fill {
    fn apply<N: Tree>(self, value: N) -> Result<N> {
        match self {
            Fill::Same => Ok(value),
            Fill::Copy => tree_map(&value, |_, a| {
                if a.is_hole() {
                    Ok(a.clone())
                } else {
                    a.deep_copy()
                }
            }),
        }
    }
}

fn visit_node<N: Tree>(k: usize, node: &mut N, f: &mut dyn FnMut(usize, &KeyPath, &mut Array)) {
    node.visit_mut(&mut KeyPath::root(), &mut |path, slot| f(k, path, slot));
}

fn value_slots<N: Tree>(value: &N) -> (Structure, Vec<Array>) {
    let slots = tree_slots(value).into_iter().map(|(_, a)| a).collect();
    (value.structure(), slots)
}

/// Which leaves of `stored` each tied node's value is computed from, and
/// whether `get` returns them as they are. Found by running `get` on traced
/// abstract leaves (shapes and dtypes, no data) and walking the recorded
/// operations back; where that cannot run (a `get` that fails under
/// tracing), the sources are left unknown.
fn trace_sources<T: Tree>(
    stored: &T,
    core: &Core<T>,
    nodes: Vec<Option<KeyPath>>,
) -> Vec<TargetMeta> {
    let (paths, primals): (Vec<KeyPath>, Vec<Array>) = tree_slots(stored).into_iter().unzip();
    let mut owner = Vec::new();
    let found = abstractly(&primals, |primals| {
        dependencies(
            |traced| {
                let values = (core.values)(&with_slots(stored, traced))?;
                let mut outs = Vec::new();
                for (k, (_, slots)) in values.into_iter().enumerate() {
                    owner.extend(std::iter::repeat_n(k, slots.len()));
                    outs.extend(slots);
                }
                Ok(outs)
            },
            primals,
        )
    });
    let mut targets: Vec<TargetMeta> = nodes
        .into_iter()
        .map(|node| TargetMeta {
            node,
            sources: Vec::new(),
            identity: true,
        })
        .collect();
    let Ok(found) = found else {
        for t in &mut targets {
            t.identity = false;
        }
        return targets;
    };
    for (k, (inputs, identity)) in owner.into_iter().zip(found) {
        let Some(target) = targets.get_mut(k) else {
            continue;
        };
        target.identity &= identity;
        for i in inputs {
            if !target.sources.contains(&paths[i]) {
                target.sources.push(paths[i].clone());
            }
        }
    }
    for t in &mut targets {
        t.sources.sort_by_key(|p| paths.iter().position(|q| q == p));
    }
    targets
}

/// Runs a call into user closures, turning a panic (an index past the end
/// of a list that surgery shortened, say) into an error.
fn guarded<R>(api: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(Error::structure(format!(
                "{api}: `where` or `get` panicked ({what}); the node it reads may no longer \
                 exist after a tree_at: rebuild the `Shared` on the new tree"
            )))
        }
    }
}

fn check_same(sources: &[Structure], targets: &[Structure]) -> Result<()> {
    if sources == targets {
        return Ok(());
    }
    let show = |s: &[Structure]| -> String {
        if s.len() == 1 {
            s[0].pformat()
        } else {
            Structure::Tuple(s.to_vec()).pformat()
        }
    };
    Err(Error::structure(format!(
        "Every node being shared together must have the same pytree structure, \
         shape+dtype of arrays, etc., as each other. Got:\n{}\nand\n{}",
        show(sources),
        show(targets)
    )))
}

impl<T: Tree> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            pytree: self.pytree.clone(),
            core: self.core.clone(),
            meta: self.meta.clone(),
            dirty: self.dirty,
        }
    }
}

impl<T: Tree> Tree for Shared<T> {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {
        if self.dirty {
            return self.settled().visit_leaves(path, f);
        }
        path.push(PathKey::Field("pytree"));
        self.pytree.visit_leaves(path, f);
        path.pop();
    }

    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
        self.settle();
        path.push(PathKey::Field("pytree"));
        self.pytree.visit_leaves_mut(path, f);
        path.pop();
    }

    fn structure(&self) -> Structure {
        self.equinox_structure()
    }
}

impl<T: Tree> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::tree::ties::tree_fmt(self, f)
    }
}
