//! Masks and [`masked`]: applying a transformation to some leaves only.

use std::sync::Arc;

use super::base::GradientTransformation;
use crate::Module;
use crate::array::Array;
use crate::error::{Error, Result};
use crate::tree::spec::spec_value;
use crate::tree::{KeyPath, Structure, Tree, tree_map, tree_slots};

type Predicate = dyn Fn(&KeyPath, &Array) -> bool + Send + Sync;

/// Which leaves a transformation applies to: a predicate on `(path, leaf)`,
/// or a tree of bools of the parameters' type (a filter spec, see
/// [`spec_like`](crate::tree::spec_like)). optax's `mask` argument.
///
/// nanoGPT's rule, weight decay only on leaves with two or more dimensions,
/// is one line:
///
/// ```
/// use solstice::optim::{self, Mask};
/// let opt = optim::adamw(6e-4).weight_decay(0.1).mask(|_: &_, w: &solstice::Array| w.rank() >= 2);
/// # let _ = opt;
/// ```
#[derive(Clone)]
pub enum Mask {
    /// `true` where the leaf at that path is included.
    Predicate(Arc<Predicate>),
    /// A filter spec flattened to its slots (`None` for a hole, which is
    /// excluded), with its structure to check against the updates.
    Spec(Arc<Vec<Option<bool>>>, Arc<Structure>),
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Predicate(_) => f.write_str("Mask::Predicate"),
            Mask::Spec(v, _) => write!(f, "Mask::Spec({v:?})"),
        }
    }
}

impl<F: Fn(&KeyPath, &Array) -> bool + Send + Sync + 'static> From<F> for Mask {
    fn from(f: F) -> Self {
        Mask::Predicate(Arc::new(f))
    }
}

impl Mask {
    /// A mask from a predicate on `(path, leaf)`.
    pub fn predicate(f: impl Fn(&KeyPath, &Array) -> bool + Send + Sync + 'static) -> Mask {
        Mask::Predicate(Arc::new(f))
    }

    /// A mask from a filter spec: a tree of the parameters' type holding
    /// bools, built with [`spec_like`](crate::tree::spec_like).
    pub fn from_spec<T: Tree>(spec: &T) -> Result<Mask> {
        let flags = tree_slots(spec)
            .iter()
            .map(|(path, s)| spec_value(path, s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mask::Spec(Arc::new(flags), Arc::new(spec.structure())))
    }

    /// For each array slot of `tree`, in order: whether it is included.
    /// Holes are never included.
    pub fn flags<T: Tree>(&self, tree: &T) -> Result<Vec<bool>> {
        let slots = tree_slots(tree);
        match self {
            Mask::Predicate(f) => Ok(slots
                .iter()
                .map(|(path, a)| !a.is_hole() && f(path, a))
                .collect()),
            Mask::Spec(flags, structure) => {
                let s = tree.structure();
                if !structure.same_treedef(&s) || flags.len() != slots.len() {
                    return Err(Error::structure(format!(
                        "a mask's spec has structure\n{structure}\nbut the updates have\n{s}; \
                         build the spec from the parameters with `spec_like`"
                    )));
                }
                Ok(slots
                    .iter()
                    .zip(flags.iter())
                    .map(|((_, a), f)| !a.is_hole() && f.unwrap_or(false))
                    .collect())
            }
        }
    }
}

/// `tree` with the slots whose flag is `false` made absent: optax's
/// `MaskedNode`.
pub(crate) fn mask_tree<T: Tree>(tree: &T, flags: &[bool]) -> Result<T> {
    check_len(tree, flags)?;
    let mut i = 0;
    tree_map(tree, |_, a| {
        let keep = flags[i];
        i += 1;
        Ok(if keep { a.clone() } else { Array::absent() })
    })
}

/// `new` where the flag is `true`, `old` elsewhere.
pub(crate) fn merge_masked<T: Tree>(new: &T, old: &T, flags: &[bool]) -> Result<T> {
    check_len(old, flags)?;
    let new_slots = tree_slots(new);
    if new_slots.len() != flags.len() {
        return Err(Error::structure(
            "a masked transformation returned updates of another structure than its input",
        ));
    }
    let mut i = 0;
    tree_map(old, |_, a| {
        let keep = flags[i];
        let n = &new_slots[i].1;
        i += 1;
        Ok(if keep { n.clone() } else { a.clone() })
    })
}

fn check_len<T: Tree>(tree: &T, flags: &[bool]) -> Result<()> {
    let n = tree_slots(tree).len();
    if n != flags.len() {
        return Err(Error::structure(format!(
            "a mask has {} slots but the tree has {n}; the updates and params of `masked` have \
             one structure",
            flags.len()
        )));
    }
    Ok(())
}

/// The state of [`masked`]: the inner transformation's state, built from
/// the masked parameters (absent where the mask is `false`).
#[derive(Module)]
pub struct MaskedState<S: Tree> {
    /// The inner transformation's state.
    pub inner_state: S,
}

/// A transformation applied to the leaves a [`Mask`] includes; the others
/// pass through unchanged. Built by [`masked`].
#[derive(Clone, Debug)]
pub struct Masked<G> {
    inner: G,
    mask: Mask,
}

/// `optax.masked(inner, mask)`: `inner` sees the updates (and params) with
/// the excluded leaves absent, so its state has holes there; the excluded
/// leaves' updates are passed through unchanged.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let g = (Array::from_vec(vec![1.0f32, 2.0], &[1, 2])?, Array::scalar(3.0f32)?);
/// let opt = optim::masked(optim::scale(10.0), |_: &_, a: &Array| a.rank() >= 2);
/// let state = opt.init(&g)?;
/// let (u, _) = opt.update(&g, &state, None)?;
/// assert_eq!(u.0.to_vec::<f32>()?, vec![10.0, 20.0]);
/// assert!(u.1.is(&g.1));
/// # Ok(()) }
/// ```
pub fn masked<G>(inner: G, mask: impl Into<Mask>) -> Masked<G> {
    Masked {
        inner,
        mask: mask.into(),
    }
}

impl<G> Masked<G> {
    pub(crate) fn new(inner: G, mask: Mask) -> Self {
        Masked { inner, mask }
    }
}

impl<T: Tree, G: GradientTransformation<T>> GradientTransformation<T> for Masked<G> {
    type State = MaskedState<G::State>;

    fn init(&self, params: &T) -> Result<Self::State> {
        let flags = self.mask.flags(params)?;
        let inner_state = self.inner.init(&mask_tree(params, &flags)?)?;
        Ok(MaskedState { inner_state })
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        let flags = self.mask.flags(updates).map_err(|e| e.context("masked"))?;
        let masked_updates = mask_tree(updates, &flags)?;
        let masked_params = params.map(|p| mask_tree(p, &flags)).transpose()?;
        let (new, inner_state) =
            self.inner
                .update(&masked_updates, &state.inner_state, masked_params.as_ref())?;
        Ok((
            merge_masked(&new, updates, &flags)?,
            MaskedState { inner_state },
        ))
    }
}
