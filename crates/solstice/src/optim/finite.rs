//! [`apply_if_finite`]: skipping steps whose gradients are not finite.

use super::base::{GradientTransformation, concrete_bool, safe_increment, tree_select, zero_count};
use crate::Module;
use crate::array::{Array, CmpOp, DType};
use crate::error::Result;
use crate::tree::{Tree, tree_leaves, zeros_like};

/// The state of [`apply_if_finite`] (optax's `ApplyIfFiniteState`).
#[derive(Module)]
pub struct ApplyIfFiniteState<S: Tree> {
    /// Non-finite steps in a row, `i32`.
    pub notfinite_count: Array,
    /// Whether the last updates were all finite, a `u8` bool.
    pub last_finite: Array,
    /// Non-finite steps so far, `i32`.
    pub total_notfinite: Array,
    /// The inner optimiser's state.
    pub inner_state: S,
}

/// Skips steps with a NaN or infinity in the updates: zero updates and an
/// unchanged inner state, until more than `max_consecutive_errors` in a row
/// (then the step is applied anyway, as in optax). Built by
/// [`apply_if_finite`].
#[derive(Clone, Debug)]
pub struct ApplyIfFinite<G> {
    inner: G,
    max_consecutive_errors: i32,
}

/// `optax.apply_if_finite(inner, max_consecutive_errors)`.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::apply_if_finite(optim::sgd(0.1, None, false), 3);
/// let p = Array::scalar(1.0f32)?;
/// let s = opt.init(&p)?;
/// let (u, s) = opt.update(&Array::scalar(f32::NAN)?, &s, Some(&p))?;
/// assert_eq!(u.to_scalar::<f32>()?, 0.0);
/// assert_eq!(s.total_notfinite.to_scalar::<i32>()?, 1);
/// # Ok(()) }
/// ```
pub fn apply_if_finite<G>(inner: G, max_consecutive_errors: usize) -> ApplyIfFinite<G> {
    ApplyIfFinite {
        inner,
        max_consecutive_errors: max_consecutive_errors.min(i32::MAX as usize) as i32,
    }
}

/// `u8` 1 when every element of every array leaf is finite.
pub fn all_finite<T: Tree>(tree: &T) -> Result<Array> {
    let mut bad = Array::scalar(0u32)?;
    for leaf in tree_leaves(tree) {
        // x - x is 0 for a finite x and NaN for an infinity or NaN.
        let d = leaf.sub(&leaf)?;
        let n = d.compare(&d.full_like(0.0)?, CmpOp::Ne)?.sum_all()?;
        bad = bad.add(&n.astype(DType::U32)?)?;
    }
    bad.compare(&bad.full_like(0.0)?, CmpOp::Eq)
}

impl<T: Tree, G: GradientTransformation<T>> GradientTransformation<T> for ApplyIfFinite<G> {
    type State = ApplyIfFiniteState<G::State>;

    fn init(&self, params: &T) -> Result<Self::State> {
        Ok(ApplyIfFiniteState {
            notfinite_count: zero_count()?,
            last_finite: Array::scalar(1u8)?,
            total_notfinite: zero_count()?,
            inner_state: self.inner.init(params)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        let finite = all_finite(updates)?;
        let notfinite_count = finite.select(
            &state.notfinite_count.full_like(0.0)?,
            &safe_increment(&state.notfinite_count)?,
        )?;
        let total_notfinite = finite.select(
            &state.total_notfinite,
            &safe_increment(&state.total_notfinite)?,
        )?;
        let max = Array::scalar_of(self.max_consecutive_errors as f64, notfinite_count.dtype())?;
        let too_many = notfinite_count.compare(&max, CmpOp::Gt)?;
        let apply = finite.maximum(&too_many)?;
        let (u, inner_state) = match concrete_bool(&apply) {
            Some(true) => self.inner.update(updates, &state.inner_state, params)?,
            Some(false) => (zeros_like(updates)?, state.inner_state.clone()),
            None => {
                let (u, s) = self.inner.update(updates, &state.inner_state, params)?;
                let zeros = zeros_like(&u)?;
                (
                    tree_select(&apply, &u, &zeros)?,
                    tree_select(&apply, &s, &state.inner_state)?,
                )
            }
        };
        Ok((
            u,
            ApplyIfFiniteState {
                notfinite_count,
                last_finite: finite,
                total_notfinite,
                inner_state,
            },
        ))
    }
}
