//! [`multi_transform`]: a different transformation for each label of leaves.

use std::sync::Arc;

use super::base::GradientTransformation;
use super::mask::{Mask, Masked, MaskedState};
use crate::array::Array;
use crate::error::{Error, Result};
use crate::tree::{KeyPath, Tree, tree_slots};

type LabelFn = dyn Fn(&KeyPath, &Array) -> String + Send + Sync;

/// Transformations by label: each leaf gets the one its label names.
/// Built by [`multi_transform`].
pub struct MultiTransform<C> {
    parts: C,
    labels: Arc<LabelFn>,
    names: Vec<&'static str>,
}

/// `optax.multi_transform(transforms, param_labels)`: `transforms` is a
/// tuple of `(label, transformation)` pairs and `labels` gives each leaf's
/// label from its path and value. Each transformation runs
/// [`masked`](super::masked) to the leaves of its label; every leaf must
/// have a label of the tuple.
///
/// The state is the tuple of the parts' [`MaskedState`]s in the order
/// given. optax orders its states by label, so list the labels sorted to
/// get optax's leaf order.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::multi_transform(
///     (("frozen", optim::scale(0.0)), ("trained", optim::adam(0.1))),
///     |_: &_, w: &Array| if w.rank() >= 2 { "trained" } else { "frozen" }.to_string(),
/// );
/// let p = (Array::ones(&[2, 2], solstice::DType::F32)?, Array::ones(&[2], solstice::DType::F32)?);
/// let state = opt.init(&p)?;
/// let (u, _) = opt.update(&p, &state, Some(&p))?;
/// assert!(u.0.to_vec::<f32>()?.iter().all(|&x| (x + 0.1).abs() < 1e-6));
/// assert_eq!(u.1.to_vec::<f32>()?, vec![0.0, 0.0]);
/// # Ok(()) }
/// ```
pub fn multi_transform<C: Labelled>(
    transforms: C,
    labels: impl Fn(&KeyPath, &Array) -> String + Send + Sync + 'static,
) -> MultiTransform<C> {
    let names = transforms.names();
    MultiTransform {
        parts: transforms,
        labels: Arc::new(labels),
        names,
    }
}

/// A tuple of `(label, transformation)` pairs, for [`multi_transform`].
pub trait Labelled {
    /// The labels, in order.
    fn names(&self) -> Vec<&'static str>;
}

impl<C> MultiTransform<C> {
    fn check<T: Tree>(&self, tree: &T) -> Result<()> {
        for (path, a) in tree_slots(tree) {
            if a.is_hole() {
                continue;
            }
            let label = (self.labels)(&path, &a);
            if !self.names.contains(&label.as_str()) {
                return Err(Error::invalid(format!(
                    "multi_transform: the leaf at {path} has label `{label}`, which has no \
                     transformation; the labels are {:?}",
                    self.names
                )));
            }
        }
        Ok(())
    }

    fn mask(&self, name: &'static str) -> Mask {
        let labels = self.labels.clone();
        Mask::predicate(move |path, a| labels(path, a) == name)
    }
}

macro_rules! multi_impl {
    ($($g:ident $i:tt),+) => {
        impl<$($g),+> Labelled for ($((&'static str, $g),)+) {
            fn names(&self) -> Vec<&'static str> {
                vec![$(self.$i.0),+]
            }
        }

        impl<T: Tree, $($g: GradientTransformation<T>),+> GradientTransformation<T>
            for MultiTransform<($((&'static str, $g),)+)>
        {
            type State = ($(MaskedState<$g::State>,)+);

            fn init(&self, params: &T) -> Result<Self::State> {
                self.check(params)?;
                Ok(($(
                    Masked::new(&self.parts.$i.1, self.mask(self.parts.$i.0)).init(params)?,
                )+))
            }

            fn update(
                &self,
                updates: &T,
                state: &Self::State,
                params: Option<&T>,
            ) -> Result<(T, Self::State)> {
                self.check(updates)?;
                let u = updates.clone();
                $(
                    #[allow(non_snake_case)]
                    let (u, $g) = Masked::new(&self.parts.$i.1, self.mask(self.parts.$i.0))
                        .update(&u, &state.$i, params)
                        .map_err(|e| e.context(format!("multi_transform `{}`", self.parts.$i.0)))?;
                )+
                Ok((u, ($($g,)+)))
            }
        }
    };
}

multi_impl!(A 0);
multi_impl!(A 0, B 1);
multi_impl!(A 0, B 1, C 2);
multi_impl!(A 0, B 1, C 2, D 3);
