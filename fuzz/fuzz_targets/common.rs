//! The `like` tree both targets load into: the seed's tied language model,
//! attention with dropout (scalar leaves), an optional bias, a step and a
//! key, so that every kind of leaf and a tie are on the path.

use solstice::nn::{Embedding, Linear, MultiheadAttention, MultiheadAttentionOptions, Shared};
use solstice::random::Key;
use solstice::{Array, DType};

pub type Like = (
    Shared<(Embedding, Linear)>,
    MultiheadAttention,
    Option<Array>,
    (i64, u8, f32, bool),
    Key,
);

pub fn like() -> Like {
    let [k1, k2, k3] = Key::new(0).split();
    let pair = (
        Embedding::new(5, 4, k1).expect("embedding"),
        Linear::new(4, 5, k2).expect("linear"),
    );
    let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone()).expect("tie");
    let options = MultiheadAttentionOptions {
        dropout_p: 0.1,
        ..MultiheadAttentionOptions::default()
    };
    let attention = MultiheadAttention::with_options(2, 4, options, k3).expect("attention");
    (
        shared,
        attention,
        Some(Array::zeros(&[3], DType::I32).expect("zeros")),
        (7, 3, 0.5, true),
        Key::new(1),
    )
}
