//! The stateless and simple transformations: scaling, learning rates,
//! clipping, weight decay and momentum (`trace`).

use super::base::{GradientTransformation, needs_params, safe_increment, zero_count};
use super::mask::{Mask, mask_tree, merge_masked};
use super::scalar::{Hyper, ScalarOrSchedule};
use crate::Module;
use crate::array::{Array, CmpOp};
use crate::error::Result;
use crate::tree::{Tree, global_norm, tree_map_n, tree_slots, zeros_like};

/// `h * g` for every array of `updates`, holes kept.
pub(crate) fn scale_tree<T: Tree>(updates: &T, h: &Hyper) -> Result<T> {
    tree_map_n(&[updates], |_, g| h.mul(&g[0]))
}

/// Multiplies updates by a fixed factor: `optax.scale`. State `()`.
#[derive(Clone, Debug)]
pub struct Scale(Hyper);

/// `optax.scale(step_size)`.
pub fn scale(step_size: impl Into<Hyper>) -> Scale {
    Scale(step_size.into())
}

impl<T: Tree> GradientTransformation<T> for Scale {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), _: Option<&T>) -> Result<(T, ())> {
        Ok((scale_tree(updates, &self.0)?, ()))
    }
}

/// A step counter: the state of [`scale_by_schedule`] (optax's
/// `ScaleByScheduleState`).
#[derive(Module)]
pub struct CountState {
    /// Updates so far, `i32`.
    pub count: Array,
}

/// Multiplies updates by a schedule of the step count: `optax.scale_by_schedule`.
#[derive(Clone, Debug)]
pub struct ScaleBySchedule(ScalarOrSchedule);

/// `optax.scale_by_schedule(step_size_fn)`: the schedule is evaluated at the
/// count before it is incremented.
pub fn scale_by_schedule(schedule: impl Into<ScalarOrSchedule>) -> ScaleBySchedule {
    ScaleBySchedule(schedule.into())
}

impl<T: Tree> GradientTransformation<T> for ScaleBySchedule {
    type State = CountState;

    fn init(&self, _: &T) -> Result<CountState> {
        Ok(CountState {
            count: zero_count()?,
        })
    }

    fn update(&self, updates: &T, state: &CountState, _: Option<&T>) -> Result<(T, CountState)> {
        let step = self.0.at(Some(&state.count))?;
        let count = safe_increment(&state.count)?;
        Ok((scale_tree(updates, &step)?, CountState { count }))
    }
}

/// The state of [`scale_by_learning_rate`]: a count when the learning rate
/// is a schedule, nothing otherwise (optax's `ScaleByScheduleState` or
/// `EmptyState`).
#[derive(Module)]
pub struct LearningRateState {
    /// Updates so far, present when the learning rate is a schedule.
    pub count: Option<Array>,
}

/// Multiplies updates by minus the learning rate: `optax.scale_by_learning_rate`.
#[derive(Clone, Debug)]
pub struct ScaleByLearningRate {
    learning_rate: ScalarOrSchedule,
    flip_sign: bool,
}

/// `optax.scale_by_learning_rate(learning_rate)`: `-learning_rate * updates`.
/// Use [`ScaleByLearningRate::flip_sign`] for `+learning_rate`.
pub fn scale_by_learning_rate(learning_rate: impl Into<ScalarOrSchedule>) -> ScaleByLearningRate {
    ScaleByLearningRate {
        learning_rate: learning_rate.into(),
        flip_sign: true,
    }
}

impl ScaleByLearningRate {
    /// Whether to scale by `-learning_rate` (the default, `true`) or by
    /// `learning_rate`.
    pub fn flip_sign(mut self, flip: bool) -> Self {
        self.flip_sign = flip;
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> &ScalarOrSchedule {
        &self.learning_rate
    }

    /// The factor this step multiplies the updates by, and the next state.
    pub(crate) fn step(&self, state: &LearningRateState) -> Result<(Hyper, LearningRateState)> {
        let lr = self.learning_rate.at(state.count.as_ref())?;
        let step = if self.flip_sign { lr.neg()? } else { lr };
        let count = state.count.as_ref().map(safe_increment).transpose()?;
        Ok((step, LearningRateState { count }))
    }
}

impl<T: Tree> GradientTransformation<T> for ScaleByLearningRate {
    type State = LearningRateState;

    fn init(&self, _: &T) -> Result<LearningRateState> {
        let count = if self.learning_rate.is_schedule() {
            Some(zero_count()?)
        } else {
            None
        };
        Ok(LearningRateState { count })
    }

    fn update(
        &self,
        updates: &T,
        state: &LearningRateState,
        _: Option<&T>,
    ) -> Result<(T, LearningRateState)> {
        let (step, next) = self.step(state)?;
        Ok((scale_tree(updates, &step)?, next))
    }
}

/// Clips every element to `[-max_delta, max_delta]`: `optax.clip`. State `()`.
#[derive(Clone, Debug)]
pub struct Clip(Hyper);

/// `optax.clip(max_delta)`.
pub fn clip(max_delta: impl Into<Hyper>) -> Clip {
    Clip(max_delta.into())
}

impl<T: Tree> GradientTransformation<T> for Clip {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), _: Option<&T>) -> Result<(T, ())> {
        let u = tree_map_n(&[updates], |_, g| {
            let hi = self.0.to_array(g[0].dtype())?;
            g[0].maximum(&hi.neg()?)?.minimum(&hi)
        })?;
        Ok((u, ()))
    }
}

/// Rescales updates whose global norm exceeds `max_norm` down to it:
/// `optax.clip_by_global_norm`. State `()`.
#[derive(Clone, Debug)]
pub struct ClipByGlobalNorm(Hyper);

/// `optax.clip_by_global_norm(max_norm)`: when the norm `n` of all updates
/// together is at least `max_norm`, every update becomes
/// `(u / n) * max_norm`.
pub fn clip_by_global_norm(max_norm: impl Into<Hyper>) -> ClipByGlobalNorm {
    ClipByGlobalNorm(max_norm.into())
}

impl<T: Tree> GradientTransformation<T> for ClipByGlobalNorm {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), _: Option<&T>) -> Result<(T, ())> {
        let norm = global_norm(updates)?;
        let max = self.0.to_array(norm.dtype())?;
        let trigger = norm.compare(&max, CmpOp::Lt)?;
        if super::base::concrete_bool(&trigger) == Some(true) {
            return Ok((updates.clone(), ()));
        }
        let u = tree_map_n(&[updates], |_, g| {
            let dt = g[0].dtype();
            let clipped = g[0].div(&norm.astype(dt)?)?.mul(&self.0.to_array(dt)?)?;
            trigger.select(&g[0], &clipped)
        })?;
        Ok((u, ()))
    }
}

/// The state of [`add_decayed_weights`]: a count when the weight decay is a
/// schedule (optax's `WeightDecaySchedule`), nothing otherwise.
#[derive(Module)]
pub struct DecayState {
    /// Updates so far, present when the weight decay is a schedule.
    pub count: Option<Array>,
}

/// The weight decay of one fused step, and whether each array slot has it.
pub(crate) type DecayPlan = (Hyper, Vec<bool>);

/// Adds `weight_decay * params` to the updates: `optax.add_decayed_weights`.
#[derive(Clone, Debug)]
pub struct AddDecayedWeights {
    weight_decay: ScalarOrSchedule,
    mask: Option<Mask>,
}

/// `optax.add_decayed_weights(weight_decay)`, on every leaf. Restrict it
/// with [`AddDecayedWeights::mask`].
pub fn add_decayed_weights(weight_decay: impl Into<ScalarOrSchedule>) -> AddDecayedWeights {
    AddDecayedWeights {
        weight_decay: weight_decay.into(),
        mask: None,
    }
}

impl AddDecayedWeights {
    /// Decays only the leaves `mask` includes (optax's `mask` argument,
    /// which wraps the transformation in `masked`).
    pub fn mask(mut self, mask: impl Into<Mask>) -> Self {
        self.mask = Some(mask.into());
        self
    }

    /// The mask, if the decay is restricted to some leaves.
    pub fn mask_ref(&self) -> Option<&Mask> {
        self.mask.as_ref()
    }

    /// What a fused step needs to decay `updates`: the weight decay now with,
    /// for each array slot, whether it is decayed (`None` where the decay is
    /// the constant 0), and the next state.
    pub(crate) fn fused_parts<T: Tree>(
        &self,
        updates: &T,
        state: &DecayState,
    ) -> Result<(Option<DecayPlan>, DecayState)> {
        let next = DecayState {
            count: state.count.as_ref().map(safe_increment).transpose()?,
        };
        if let ScalarOrSchedule::Scalar(h) = &self.weight_decay
            && h.is_const(0.0)
        {
            return Ok((None, next));
        }
        let wd = self.weight_decay.at(state.count.as_ref())?;
        let flags = match &self.mask {
            None => tree_slots(updates)
                .iter()
                .map(|(_, a)| !a.is_hole())
                .collect(),
            Some(mask) => mask.flags(updates)?,
        };
        Ok((Some((wd, flags)), next))
    }

    fn decay<T: Tree>(&self, updates: &T, params: &T, count: Option<&Array>) -> Result<T> {
        let s = self.weight_decay.at(count)?;
        tree_map_n(&[updates, params], |_, x| {
            let (g, p) = (&x[0], &x[1]);
            g.add(&s.to_array(p.dtype())?.mul(p)?.astype(g.dtype())?)
        })
    }
}

impl<T: Tree> GradientTransformation<T> for AddDecayedWeights {
    type State = DecayState;

    fn init(&self, _: &T) -> Result<DecayState> {
        let count = if self.weight_decay.is_schedule() {
            Some(zero_count()?)
        } else {
            None
        };
        Ok(DecayState { count })
    }

    fn update(
        &self,
        updates: &T,
        state: &DecayState,
        params: Option<&T>,
    ) -> Result<(T, DecayState)> {
        let params = params.ok_or_else(|| needs_params("add_decayed_weights"))?;
        let new_state = DecayState {
            count: state.count.as_ref().map(safe_increment).transpose()?,
        };
        if let ScalarOrSchedule::Scalar(h) = &self.weight_decay
            && h.is_const(0.0)
        {
            return Ok((updates.clone(), new_state));
        }
        let count = state.count.as_ref();
        let u = match &self.mask {
            None => self.decay(updates, params, count)?,
            Some(mask) => {
                let flags = mask.flags(updates)?;
                let decayed = self.decay(
                    &mask_tree(updates, &flags)?,
                    &mask_tree(params, &flags)?,
                    count,
                )?;
                merge_masked(&decayed, updates, &flags)?
            }
        };
        Ok((u, new_state))
    }
}

/// The state of [`trace`]: the momentum buffer (optax's `TraceState`).
#[derive(Module)]
pub struct TraceState<T: Tree> {
    /// The running sum `g + decay * trace`, holes where the params have them.
    pub trace: T,
}

/// Momentum: `optax.trace`.
#[derive(Clone, Debug)]
pub struct Trace {
    decay: Hyper,
    nesterov: bool,
}

/// `optax.trace(decay, nesterov)`: `t = g + decay * t`, and the update is
/// `t` (or `g + decay * t` with Nesterov).
pub fn trace(decay: impl Into<Hyper>, nesterov: bool) -> Trace {
    Trace {
        decay: decay.into(),
        nesterov,
    }
}

impl<T: Tree> GradientTransformation<T> for Trace {
    type State = TraceState<T>;

    fn init(&self, params: &T) -> Result<TraceState<T>> {
        super::base::check_params(params)?;
        Ok(TraceState {
            trace: zeros_like(params)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &TraceState<T>,
        _: Option<&T>,
    ) -> Result<(T, TraceState<T>)> {
        let f = |g: &Array, t: &Array| g.add(&self.decay.mul(t)?);
        let new_trace = tree_map_n(&[&state.trace, updates], |_, x| {
            f(&x[1], &x[0])?.astype(x[0].dtype())
        })?;
        let u = if self.nesterov {
            tree_map_n(&[updates, &new_trace], |_, x| f(&x[0], &x[1]))?
        } else {
            tree_map_n(&[updates, &new_trace], |_, x| Ok(x[1].clone()))?
        };
        Ok((u, TraceState { trace: new_trace }))
    }
}
