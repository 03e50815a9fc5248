//! The optimiser of a run, built from its config: everything the trainer
//! knows about optimisation goes through this one type.

use solstice::optim::Sgd;
use solstice::{Result, apply_updates};

use crate::config::Config;
use crate::model::Gpt;

/// The optimiser's state: a tree, saved in checkpoints.
pub type OptState = ();

/// The optimiser of a run.
pub struct Optimiser {
    sgd: Sgd,
}

impl Optimiser {
    /// The optimiser `config` asks for.
    pub fn new(config: &Config) -> Optimiser {
        Optimiser {
            sgd: Sgd::new(config.learning_rate),
        }
    }

    /// The state before the first step.
    pub fn init(&self, _model: &Gpt) -> Result<OptState> {
        Ok(())
    }

    /// The learning rate of step `step` (counting from 0).
    pub fn learning_rate(&self, _step: usize) -> f64 {
        self.sgd.learning_rate()
    }

    /// One step: the model and state after `grads`.
    pub fn step(&self, model: &Gpt, grads: &Gpt, state: &OptState) -> Result<(Gpt, OptState)> {
        let updates = self.sgd.update(grads)?;
        Ok((apply_updates(model, &updates)?, *state))
    }
}
