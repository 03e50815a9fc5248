//! Transformations: `vmap`, `grad` and friends, on one interpreter stack.
//!
//! - `trace`: the stack of active transformations and [`bind`](trace::bind),
//!   the single door every primitive goes through;
//! - `batching` and `vjp_rules`: each primitive's rules for `vmap` and `grad`;
//! - `jvp`: forward mode, with each primitive's JVP rule;
//! - `jac`: `jacfwd`, `jacrev`, `hessian`, from `vmap` over `jvp`/`vjp`;
//! - `eval_shape`: a function run on shapes and dtypes, no data;
//! - `vmap`, `grad`: the public transformations;
//! - `fused_rules`: the rules of the fused row-wise primitives;
//! - `custom`: `custom_vjp`, a user's derivative as a primitive;
//! - `updates`: `apply_updates`.

mod adam_rules;
mod batching;
mod custom;
pub(crate) mod eval_shape;
mod fused_rules;
pub(crate) mod grad;
mod jac;
mod jvp;
pub(crate) mod trace;
mod updates;
mod vjp_rules;
mod vmap;

pub use custom::custom_vjp;
pub use eval_shape::eval_shape;
pub use grad::{
    Pullback, filter_grad, filter_grad_aux, filter_value_and_grad, filter_value_and_grad_aux, grad,
    vjp,
};
pub use jac::{hessian, jacfwd, jacrev};
pub use jvp::jvp;
pub use updates::{apply_updates, tree_scale};
pub use vmap::{Axes, filter_vmap, vmap, vmap_with};
