//! Layers, each on a single example as in Equinox; batch them with
//! [`vmap`](crate::vmap).
//!
//! | layer | Equinox |
//! | --- | --- |
//! | [`Linear`] | `eqx.nn.Linear` |
//! | [`Embedding`] | `eqx.nn.Embedding` |
//! | [`Mlp`] | `eqx.nn.MLP` |
//! | [`LayerNorm`], [`RmsNorm`] | `eqx.nn.LayerNorm`, `eqx.nn.RMSNorm` |
//! | [`Dropout`] | `eqx.nn.Dropout` |
//! | [`MultiheadAttention`] | `eqx.nn.MultiheadAttention` |
//! | [`RotaryPositionalEmbedding`] | `eqx.nn.RotaryPositionalEmbedding` |
//! | [`Sequential`], [`Identity`], [`Lambda`] | `eqx.nn.Sequential`, `Identity`, `Lambda` |
//! | [`Shared`] | `eqx.nn.Shared` |
//!
//! Activation functions are in [`activation`].

pub mod activation;
pub mod attention;
pub mod dropout;
pub mod embedding;
pub mod identity;
pub mod lambda;
pub mod layer_norm;
pub mod linear;
pub mod mlp;
pub mod rms_norm;
pub mod rotary;
pub mod sequential;
pub mod shared;

pub use activation::Activation;
pub use attention::{AttentionCall, MultiheadAttention, MultiheadAttentionOptions};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use identity::Identity;
pub use lambda::Lambda;
pub use layer_norm::{LayerNorm, NormOptions};
pub use linear::{Features, Linear, LinearOptions};
pub use mlp::{Mlp, MlpOptions};
pub use rms_norm::RmsNorm;

/// The old name of [`Mlp`].
#[deprecated(note = "renamed to `Mlp`, which still prints as `MLP`")]
pub type MLP = Mlp;

/// The old name of [`RmsNorm`].
#[deprecated(note = "renamed to `RmsNorm`, which still prints as `RMSNorm`")]
pub type RMSNorm = RmsNorm;
pub use rotary::RotaryPositionalEmbedding;
pub use sequential::{BoxedLayer, Layer, Layers, Sequential};
pub use shared::{Shared, Tied};
