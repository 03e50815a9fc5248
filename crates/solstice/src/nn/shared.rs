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

use std::sync::Arc;

use crate::array::Array;
use crate::error::{Error, Result};
use crate::tree::{KeyPath, PathKey, Structure, Tree, tree_map};

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

type Rebuild<T> = Arc<dyn Fn(&T) -> Result<T> + Send + Sync>;

/// A tree with some nodes tied to others. See the [module docs](self).
pub struct Shared<T> {
    pytree: T,
    rebuild: Rebuild<T>,
}

impl<T: Tree> Shared<T> {
    /// Ties one node: `where_` selects it, `get` computes its value.
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
    /// let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t())?;
    /// let (a, b) = shared.call()?;
    /// assert_eq!(b.weight.to_vec::<f32>()?, a.weight.t()?.to_vec::<f32>()?);
    /// # Ok(()) }
    /// ```
    pub fn new<N, G>(
        pytree: T,
        where_: impl for<'a> Fn(&'a mut T) -> &'a mut N + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        N: Tree,
        G: Tied<N>,
    {
        let source = get(&pytree).into_tied()?;
        let mut probe = pytree.clone();
        check_same(&[source.structure()], &[where_(&mut probe).structure()])?;
        let mut stored = pytree;
        let node = where_(&mut stored);
        *node = placeholders(node)?;
        let rebuild = move |tree: &T| -> Result<T> {
            let value = get(tree).into_tied()?;
            let mut out = tree.clone();
            *where_(&mut out) = value;
            Ok(out)
        };
        Ok(Shared {
            pytree: stored,
            rebuild: Arc::new(rebuild),
        })
    }

    /// Ties several nodes of one type: `where_` selects them, `get` returns
    /// as many values, in the same order.
    pub fn new_each<N, G>(
        pytree: T,
        where_: impl for<'a> Fn(&'a mut T) -> Vec<&'a mut N> + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        N: Tree,
        G: Tied<Vec<N>>,
    {
        let sources = get(&pytree).into_tied()?;
        let mut probe = pytree.clone();
        let targets = where_(&mut probe);
        if sources.len() != targets.len() {
            return Err(Error::structure(format!(
                "Shared::new_each: `where` selected {} nodes but `get` returned {} values; \
                 return one value per selected node",
                targets.len(),
                sources.len()
            )));
        }
        let s: Vec<Structure> = sources.iter().map(Tree::structure).collect();
        let t: Vec<Structure> = targets.iter().map(|n| n.structure()).collect();
        check_same(&s, &t)?;
        let mut stored = pytree;
        for node in where_(&mut stored) {
            *node = placeholders(node)?;
        }
        let rebuild = move |tree: &T| -> Result<T> {
            let values = get(tree).into_tied()?;
            let mut out = tree.clone();
            let nodes = where_(&mut out);
            if nodes.len() != values.len() {
                return Err(Error::structure(format!(
                    "Shared::call: `where` selected {} nodes but `get` returned {} values",
                    nodes.len(),
                    values.len()
                )));
            }
            for (node, value) in nodes.into_iter().zip(values) {
                *node = value;
            }
            Ok(out)
        };
        Ok(Shared {
            pytree: stored,
            rebuild: Arc::new(rebuild),
        })
    }

    /// Ties two nodes, possibly of different types: `where_` selects them,
    /// `get` returns their two values.
    pub fn new_pair<A, B, G>(
        pytree: T,
        where_: impl for<'a> Fn(&'a mut T) -> (&'a mut A, &'a mut B) + Send + Sync + 'static,
        get: impl Fn(&T) -> G + Send + Sync + 'static,
    ) -> Result<Self>
    where
        A: Tree,
        B: Tree,
        G: Tied<(A, B)>,
    {
        let (sa, sb) = get(&pytree).into_tied()?;
        let mut probe = pytree.clone();
        let (ta, tb) = where_(&mut probe);
        check_same(
            &[sa.structure(), sb.structure()],
            &[ta.structure(), tb.structure()],
        )?;
        let mut stored = pytree;
        let (a, b) = where_(&mut stored);
        *a = placeholders(a)?;
        *b = placeholders(b)?;
        let rebuild = move |tree: &T| -> Result<T> {
            let (va, vb) = get(tree).into_tied()?;
            let mut out = tree.clone();
            let (a, b) = where_(&mut out);
            *a = va;
            *b = vb;
            Ok(out)
        };
        Ok(Shared {
            pytree: stored,
            rebuild: Arc::new(rebuild),
        })
    }

    /// The whole tree, with `get(pytree)` in place of the tied nodes:
    /// Equinox's `Shared.__call__`.
    pub fn call(&self) -> Result<T> {
        (self.rebuild)(&self.pytree)
    }

    /// The stored tree, with placeholders where the tied nodes were.
    pub fn pytree(&self) -> &T {
        &self.pytree
    }
}

/// `node` with every array slot replaced by a placeholder.
fn placeholders<N: Tree>(node: &N) -> Result<N> {
    tree_map(node, |_, _| Ok(Array::placeholder()))
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
            rebuild: self.rebuild.clone(),
        }
    }
}

impl<T: Tree> Tree for Shared<T> {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {
        path.push(PathKey::Field("pytree"));
        self.pytree.visit_leaves(path, f);
        path.pop();
    }

    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
        path.push(PathKey::Field("pytree"));
        self.pytree.visit_leaves_mut(path, f);
        path.pop();
    }

    fn structure(&self) -> Structure {
        Structure::Struct {
            name: "Shared".to_string(),
            fields: vec![
                ("pytree".to_string(), self.pytree.structure()),
                (
                    "where".to_string(),
                    Structure::Opaque("<function>".to_string()),
                ),
                (
                    "get".to_string(),
                    Structure::Opaque("<function>".to_string()),
                ),
            ],
        }
    }
}

impl<T: Tree> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.structure().pformat())
    }
}
