//! Optimisers in optax's shape: a [`GradientTransformation`] turns
//! gradients into updates, which [`apply_updates`](crate::apply_updates)
//! adds to the model.
//!
//! ```
//! use solstice::{Array, apply_updates, filter_grad};
//! use solstice::optim::{self, GradientTransformation, schedule::warmup_cosine_decay_schedule};
//! # fn main() -> solstice::Result<()> {
//! let lr = warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10, 1e-3, 1.0)?;
//! let opt = optim::chain((optim::clip_by_global_norm(1.0), optim::adamw(lr)));
//! let mut model = Array::from_vec(vec![1.0f32, -2.0], &[2])?;
//! let mut state = opt.init(&model)?;
//! let grads = filter_grad(|w: &Array, _: &()| w.square()?.sum_all())(&model, &())?;
//! let (updates, next) = opt.update(&grads, &state, Some(&model))?;
//! // The schedule is read at the count before the step: a warmup from 0
//! // makes the first update zero.
//! assert_eq!(updates.to_vec::<f32>()?, vec![0.0, 0.0]);
//! model = apply_updates(&model, &updates)?;
//! state = next;
//! # let _ = (model, state);
//! # Ok(()) }
//! ```
//!
//! Every optimiser follows optax 0.2.8: the same defaults, the same
//! arithmetic in the same order and dtype, and states with the same leaves
//! in the same order (so `tree_leaves(&state)` lines up with
//! `jax.tree.leaves(opt_state)`).
//!
//! - Optimisers: [`sgd`], [`adam`], [`nadam`], [`adamw`], [`rmsprop`],
//!   [`adagrad`], [`lion`], [`adafactor`].
//! - Transformations: [`chain`], [`identity`], [`scale`],
//!   [`scale_by_learning_rate`], [`scale_by_schedule`], [`scale_by_adam`],
//!   [`trace`], [`clip`], [`clip_by_global_norm`], [`add_decayed_weights`],
//!   [`masked`], [`multi_transform`].
//! - Wrappers: [`MultiSteps`] (gradient accumulation), [`apply_if_finite`],
//!   [`inject_hyperparams`].
//! - [`schedule`]s of the step count.
//!
//! [`Sgd`] is the stateless shortcut for plain gradient descent.

mod accumulate;
mod adam;
mod alias;
mod base;
mod combine;
mod factorized;
mod finite;
mod inject;
mod mask;
mod scalar;
pub mod schedule;
mod sgd;
mod transform;

pub use accumulate::{MultiSteps, MultiStepsState};
pub use adam::{Adam, AdamState, AdamW, ScaleByAdam, adam, adamw, nadam, scale_by_adam};
pub use alias::{
    Adagrad, Lion, LionState, RmsProp, RmsState, RssState, ScaleByLion, ScaleByRms, ScaleByRss,
    SgdTransform, adagrad, lion, rmsprop, sgd,
};
pub use base::{
    Chain, GradientTransformation, Identity, bias_correction, chain, identity, safe_increment,
    zero_count,
};
pub use combine::{Labelled, MultiTransform, multi_transform};
pub use factorized::{
    Adafactor, ClipByBlockRms, Ema, EmaState, FactoredState, ScaleByFactoredRms,
    ScaleByParamBlockRms, adafactor, clip_by_block_rms, ema, scale_by_param_block_rms,
};
pub use finite::{ApplyIfFinite, ApplyIfFiniteState, all_finite, apply_if_finite};
pub use inject::{Hyperparams, InjectHyperparams, InjectState, inject_hyperparams};
pub use mask::{Mask, Masked, MaskedState, masked};
pub use scalar::{Hyper, ScalarOrSchedule};
pub use schedule::{Schedule, SharedSchedule};
pub use sgd::Sgd;
pub use transform::{
    AddDecayedWeights, Clip, ClipByGlobalNorm, CountState, DecayState, LearningRateState, Scale,
    ScaleByLearningRate, ScaleBySchedule, Trace, TraceState, add_decayed_weights, clip,
    clip_by_global_norm, scale, scale_by_learning_rate, scale_by_schedule, trace,
};
