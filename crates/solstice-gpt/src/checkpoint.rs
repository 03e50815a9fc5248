//! Checkpoints: the model, the optimiser state, the step and the key, as one
//! tree in one file, replaced atomically (a killed save leaves the previous
//! checkpoint in place).

use std::path::Path;

use anyhow::{Context, Result};
use solstice::random::Key;
use solstice::{Array, Module};

use crate::model::Gpt;
use crate::optimizer::OptState;

/// The file name of the checkpoint in a run directory.
pub const FILE: &str = "checkpoint.eqx";

/// Everything needed to continue a run exactly.
#[derive(Module)]
pub struct TrainState {
    /// The parameters.
    pub model: Gpt,
    /// The optimiser's state.
    pub opt: OptState,
    /// Steps done, a `u32` scalar.
    pub step: Array,
    /// The run's key; each step's batch and dropout keys are folded from
    /// it.
    pub key: Key,
}

impl TrainState {
    /// Steps done.
    pub fn steps_done(&self) -> Result<usize> {
        Ok(self.step.to_scalar::<u32>()? as usize)
    }
}

/// Writes `state` to `dir`'s checkpoint, atomically.
pub fn save(dir: &Path, state: &TrainState) -> Result<()> {
    let path = dir.join(FILE);
    store::save(&path, state)
        .with_context(|| format!("cannot save the checkpoint {}", path.display()))
}

/// Reads `dir`'s checkpoint into a state shaped like `like`.
pub fn load(dir: &Path, like: &TrainState) -> Result<TrainState> {
    let path = dir.join(FILE);
    store::load(&path, like).with_context(|| {
        format!(
            "cannot load the checkpoint {} into the model its config describes; a run keeps \
             its shapes, so resume without flags that change them (layers, heads, dim, \
             mlp_ratio, context, positions, tokenizer)",
            path.display()
        )
    })
}

/// The one place that names the library's checkpoint format: Equinox's
/// `.eqx` (each leaf an `.npy` record, in leaf order), checked leaf by leaf
/// against `like` on load.
mod store {
    use super::*;

    pub fn save(path: &Path, state: &TrainState) -> solstice::Result<()> {
        solstice::serial::tree_serialise_leaves(path, state)
    }

    pub fn load(path: &Path, like: &TrainState) -> solstice::Result<TrainState> {
        solstice::serial::tree_deserialise_leaves(path, like)
    }
}
