//! The optimiser of a run, built from its config: gradient accumulation
//! (`MultiSteps`) around global-norm clipping and AdamW, whose learning
//! rate warms up linearly and then decays along a cosine. Everything the
//! trainer knows about optimisation goes through this one type.

use anyhow::{Result, bail};
use solstice::apply_updates;
use solstice::optim::schedule::{SharedSchedule, warmup_cosine_decay_schedule};
use solstice::optim::{
    AdamW, Chain, ClipByGlobalNorm, GradientTransformation, MultiSteps, adamw, chain,
    clip_by_global_norm,
};

use crate::config::Config;
use crate::model::Gpt;

type Inner = MultiSteps<Chain<(ClipByGlobalNorm, AdamW)>>;

/// The optimiser's state: a tree, saved in checkpoints (moments, counts and
/// the gradients accumulated so far).
pub type OptState = <Inner as GradientTransformation<Gpt>>::State;

/// The optimiser of a run.
pub struct Optimiser {
    inner: Inner,
    schedule: SharedSchedule,
}

impl Optimiser {
    /// The optimiser `config` asks for.
    pub fn new(config: &Config) -> Result<Optimiser> {
        if config.warmup_steps >= config.steps {
            bail!(
                "`warmup_steps` ({}) must be fewer than `steps` ({})",
                config.warmup_steps,
                config.steps
            );
        }
        let schedule = warmup_cosine_decay_schedule(
            0.0,
            config.learning_rate,
            config.warmup_steps as i64,
            config.steps as i64,
            config.learning_rate * config.final_lr_fraction,
            1.0,
        )?;
        let step = chain((
            clip_by_global_norm(config.clip_norm),
            adamw(schedule.clone()).weight_decay(config.weight_decay),
        ));
        Ok(Optimiser {
            inner: MultiSteps::new(step, config.accumulate),
            schedule,
        })
    }

    /// The state before the first step.
    pub fn init(&self, model: &Gpt) -> Result<OptState> {
        Ok(self.inner.init(model)?)
    }

    /// The learning rate of optimiser step `step` (counting from 0).
    pub fn learning_rate(&self, step: usize) -> f64 {
        self.schedule
            .at(step.min(i32::MAX as usize) as i32)
            .map_or(f64::NAN, f64::from)
    }

    /// One micro-step: the model and state after `grads`. The model changes
    /// on every `accumulate`-th call, with the mean of the gradients since.
    pub fn step(&self, model: &Gpt, grads: &Gpt, state: &OptState) -> Result<(Gpt, OptState)> {
        let (updates, state) = self.inner.update(grads, state, Some(model))?;
        Ok((apply_updates(model, &updates)?, state))
    }
}
