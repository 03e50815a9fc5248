//! solstice: Equinox's programming model in Rust.
//!
//! A model is a plain Rust value: a tree of [`Array`]s (derive
//! [`Module`]). It is transformed by pure functions: [`vmap`],
//! [`grad`]/[`filter_value_and_grad`], optimiser updates, and tree surgery
//! ([`tree::tree_at`], [`tree::partition`], ...).
//!
//! **The tree rule.** A model is a tree, not a graph: the same layer placed in
//! two fields is two independent copies that update separately. Sharing is
//! always explicit, through [`nn::Shared`], which ties nodes so that a weight
//! used in two places is one leaf with one gradient (summed over its uses).
//! Leaves are visited depth first, fields in declaration order; fields marked
//! `#[module(static)]` are part of the structure, not leaves.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, Module, filter_value_and_grad, nn::Linear, random::Key, vmap};
//! # fn main() -> solstice::Result<()> {
//! #[derive(Module)]
//! struct Model {
//!     layer: Linear,
//!     #[module(static)]
//!     name: &'static str,
//! }
//!
//! let model = Model { layer: Linear::new(2, 1, Key::new(0))?, name: "tiny" };
//! let xs = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
//! let loss = |m: &Model, xs: &Array| vmap(|x: &Array| m.layer.forward(x))(xs)?.square()?.mean_all();
//! let (value, grads) = filter_value_and_grad(loss)(&model, &xs)?;
//! assert_eq!(value.shape(), &[] as &[usize]);
//! assert_eq!(grads.layer.weight.shape(), &[1, 2]);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

// Lets `#[derive(Module)]` inside this crate name `::solstice` as users do.
extern crate self as solstice;

pub mod array;
mod error;
pub mod nn;
pub mod optim;
pub mod random;
pub mod serial;
mod transform;
pub mod tree;

pub use array::CmpOp;
pub use array::{Array, DType, Element, Hole};
pub use array::{concatenate, einsum, one_hot, stack, where_cond};
pub use error::{Error, Result};
pub use solstice_derive::Module;
pub use transform::{
    Axes, Pullback, apply_updates, custom_vjp, eval_shape, filter_grad, filter_grad_aux,
    filter_value_and_grad, filter_value_and_grad_aux, filter_vmap, grad, hessian, jacfwd, jacrev,
    jvp, tree_scale, vjp, vmap, vmap_with,
};
pub use tree::Tree;

/// What `#[derive(Module)]` expands to refers only to this module.
#[doc(hidden)]
pub mod __private {
    pub use crate::array::Array;
    pub use crate::transform::trace::record_kernels;
    pub use crate::tree::ties::tree_fmt;
    pub use crate::tree::{KeyPath, Leaf, LeafMut, PathKey, Structure, Tree, tree_pformat};
}
