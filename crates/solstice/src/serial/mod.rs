//! Checkpoints: saving and loading trees.
//!
//! - **`.eqx`**, Equinox's format, byte for byte:
//!   [`tree_serialise_leaves`] and [`tree_deserialise_leaves`], with the
//!   names and meaning of Equinox's functions, plus stream variants and
//!   Equinox's `filter_spec` hook ([`tree_serialise_leaves_with`],
//!   [`tree_deserialise_leaves_with`]).
//!
//! - **safetensors**, keyed by tree paths, memory-mapped on load:
//!   [`save_safetensors`] and [`load_safetensors`], with hooks to read and
//!   write another library's names and layouts
//!   ([`load_safetensors_with`], [`save_safetensors_with`]), and named
//!   arrays for layouts that are not one tensor per leaf
//!   ([`save_safetensors_named`]).
//!
//! Every leaf is saved: arrays and scalars (`Dropout::p` is a float record,
//! as in Equinox), in leaf order. Holes write nothing: a weight tied through
//! [`Shared`](crate::nn::Shared) is one leaf and is stored once, and loading
//! into a tied `like` gives a tree whose ties hold.
//!
//! Loading checks every record against `like` (kind, dtype, shape) and
//! never panics on a bad file: each error names the file and the leaf's key
//! path. Savers replace files atomically ([`write_atomically`]).
//!
//! A checkpoint of training state is the tree of everything to restore,
//! for example `(model, optimiser_state, step, key)`: a tuple of trees is a
//! tree, the step is an integer leaf and the key a `u32[2]` leaf.

mod atomic;
mod bytes;
pub mod eqx;
pub mod npy;
pub mod safetensors;

pub use atomic::write_atomically;
pub use eqx::{
    default_deserialise_filter_spec, default_serialise_filter_spec, tree_deserialise_leaves,
    tree_deserialise_leaves_from, tree_deserialise_leaves_with, tree_serialise_leaves,
    tree_serialise_leaves_to, tree_serialise_leaves_with,
};
pub use safetensors::{
    Placeholder, SafetensorsFile, load_safetensors, load_safetensors_with, safetensors_bytes,
    safetensors_bytes_with, safetensors_name, safetensors_named_bytes, save_safetensors,
    save_safetensors_named, save_safetensors_with,
};
