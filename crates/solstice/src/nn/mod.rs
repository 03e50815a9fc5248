//! Layers, each on a single example as in Equinox; batch them with
//! [`vmap`](crate::vmap).

mod embedding;
mod linear;
mod shared;

pub use embedding::Embedding;
pub use linear::{Features, Linear, LinearOptions};
pub use shared::{Shared, Tied};
