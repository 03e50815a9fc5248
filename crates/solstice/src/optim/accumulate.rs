//! [`MultiSteps`]: gradient accumulation over micro-steps.

use super::base::{GradientTransformation, concrete_bool, safe_increment, tree_select, zero_count};
use crate::Module;
use crate::array::{Array, CmpOp, DType};
use crate::error::{Error, Result};
use crate::tree::{Tree, full_like_dtype, tree_map_n};

/// The state of [`MultiSteps`] (optax's `MultiStepsState`).
#[derive(Module)]
pub struct MultiStepsState<T: Tree, S: Tree> {
    /// Micro-steps accumulated since the last inner step, `i32`.
    pub mini_step: Array,
    /// Inner steps taken, `i32`.
    pub gradient_step: Array,
    /// The inner optimiser's state.
    pub inner_opt_state: S,
    /// The running mean (or sum) of the gradients, in `f32`.
    pub acc_grads: T,
}

/// Gradient accumulation: `optax.MultiSteps`. The inner optimiser steps
/// once every `every_k` calls, on the running mean of the gradients of the
/// micro-steps (`acc + (g - acc) / (n + 1)`, optax's formula); the calls
/// in between return zero updates, as optax's `0 * inner_update` (NaN where
/// the inner update of the mean so far is not finite).
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation, MultiSteps};
/// # fn main() -> solstice::Result<()> {
/// let opt = MultiSteps::new(optim::sgd(1.0, None, false), 2);
/// let p = Array::scalar(0.0f32)?;
/// let s = opt.init(&p)?;
/// let (u, s) = opt.update(&Array::scalar(1.0f32)?, &s, Some(&p))?;
/// assert_eq!(u.to_scalar::<f32>()?, 0.0);
/// assert!(!opt.has_updated(&s)?);
/// let (u, s) = opt.update(&Array::scalar(3.0f32)?, &s, Some(&p))?;
/// assert_eq!(u.to_scalar::<f32>()?, -2.0); // minus the mean of 1 and 3
/// assert!(opt.has_updated(&s)?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MultiSteps<G> {
    inner: G,
    every_k: i32,
    use_grad_mean: bool,
}

impl<G> MultiSteps<G> {
    /// Accumulates `every_k` micro-steps per step of `inner`, averaging.
    pub fn new(inner: G, every_k: usize) -> Self {
        MultiSteps {
            inner,
            every_k: every_k.min(i32::MAX as usize) as i32,
            use_grad_mean: true,
        }
    }

    /// Sum the gradients instead of averaging them (optax's
    /// `use_grad_mean=False`).
    pub fn use_grad_mean(mut self, mean: bool) -> Self {
        self.use_grad_mean = mean;
        self
    }

    /// The inner optimiser.
    pub fn inner(&self) -> &G {
        &self.inner
    }

    /// Whether the last call stepped the inner optimiser: optax's
    /// `MultiSteps.has_updated`.
    pub fn has_updated<T: Tree, S: Tree>(&self, state: &MultiStepsState<T, S>) -> Result<bool> {
        let zero = state.mini_step.full_like(0.0)?;
        let fresh = state
            .mini_step
            .compare(&zero, CmpOp::Eq)?
            .to_scalar::<u8>()?
            != 0;
        Ok(fresh && state.gradient_step.to_scalar::<i64>()? > 0)
    }
}

impl<T: Tree, G: GradientTransformation<T>> GradientTransformation<T> for MultiSteps<G> {
    type State = MultiStepsState<T, G::State>;

    fn init(&self, params: &T) -> Result<Self::State> {
        super::base::check_params(params)?;
        if self.every_k < 1 {
            return Err(Error::invalid(format!(
                "MultiSteps needs every_k >= 1, got {}",
                self.every_k
            )));
        }
        Ok(MultiStepsState {
            mini_step: zero_count()?,
            gradient_step: zero_count()?,
            inner_opt_state: self.inner.init(params)?,
            acc_grads: full_like_dtype(params, 0.0, DType::F32)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        let n = state.mini_step.add_scalar(1.0)?;
        let n_f = n.astype(DType::F32)?;
        let acc = tree_map_n(&[&state.acc_grads, updates], |_, x| {
            let (acc, g) = (&x[0], x[1].astype(x[0].dtype())?);
            if self.use_grad_mean {
                acc.add(&g.sub(acc)?.div(&n_f.astype(acc.dtype())?)?)
            } else {
                g.add(acc)
            }
        })?;
        let k = Array::scalar(self.every_k)?;
        let emit = state.mini_step.compare(&k.add_scalar(-1.0)?, CmpOp::Eq)?;
        let wrapped = n.compare(&k, CmpOp::Eq)?;
        let mini_step = wrapped.select(&n.full_like(0.0)?, &n)?;
        let gradient_step =
            emit.select(&safe_increment(&state.gradient_step)?, &state.gradient_step)?;
        let acc_like_updates = tree_map_n(&[&acc, updates], |_, x| x[0].astype(x[1].dtype()))?;
        match concrete_bool(&emit) {
            Some(true) => {
                let (u, inner) =
                    self.inner
                        .update(&acc_like_updates, &state.inner_opt_state, params)?;
                let state = MultiStepsState {
                    mini_step,
                    gradient_step,
                    inner_opt_state: inner,
                    // optax's `(1 - emit) * acc`: zero, or NaN where acc is not finite.
                    acc_grads: tree_map_n(&[&acc], |_, x| x[0].mul_scalar(0.0))?,
                };
                Ok((u, state))
            }
            Some(false) => {
                // optax returns `emit * inner_update` here, so the inner
                // step runs on every micro-step (its state is dropped): the
                // zeros are NaN where the inner update is not finite.
                let (u, _) =
                    self.inner
                        .update(&acc_like_updates, &state.inner_opt_state, params)?;
                let state = MultiStepsState {
                    mini_step,
                    gradient_step,
                    inner_opt_state: state.inner_opt_state.clone(),
                    acc_grads: acc,
                };
                Ok((tree_map_n(&[&u], |_, x| x[0].mul_scalar(0.0))?, state))
            }
            None => {
                // Traced (under `vmap`): take the inner step and select, as
                // optax does under `jit`.
                let (u, inner) =
                    self.inner
                        .update(&acc_like_updates, &state.inner_opt_state, params)?;
                let emit_f = |dt: DType| emit.astype(dt);
                let u = tree_map_n(&[&u], |_, x| x[0].mul(&emit_f(x[0].dtype())?))?;
                let acc_grads = tree_map_n(&[&acc], |_, x| {
                    let one = x[0].full_like(1.0)?;
                    x[0].mul(&one.sub(&emit_f(x[0].dtype())?)?)
                })?;
                let inner_opt_state = tree_select(&emit, &inner, &state.inner_opt_state)?;
                let state = MultiStepsState {
                    mini_step,
                    gradient_step,
                    inner_opt_state,
                    acc_grads,
                };
                Ok((u, state))
            }
        }
    }
}
