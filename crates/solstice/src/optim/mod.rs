//! Optimisers, in optax's shape: an optimiser turns gradients into updates,
//! which [`apply_updates`](crate::apply_updates) adds to the model.

mod sgd;

pub use sgd::Sgd;
