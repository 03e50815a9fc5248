//! Transformations: `vmap`, `grad` and friends, on one interpreter stack.
//!
//! - `trace`: the stack of active transformations and [`bind`](trace::bind),
//!   the single door every primitive goes through;
//! - `batching` and `vjp`: each primitive's rules for `vmap` and `grad`;
//! - `vmap`, `grad`: the public transformations;
//! - `updates`: `apply_updates`.

mod batching;
pub(crate) mod grad;
pub(crate) mod trace;
mod updates;
mod vjp;
mod vmap;

pub use grad::{filter_grad, filter_value_and_grad, grad};
pub use updates::{apply_updates, tree_scale};
pub use vmap::vmap;
