// Every bad attribute is reported at once, each at its own span.
use solstice::{Array, Module};

#[derive(Module)]
struct Layer {
    #[module(frozen)]
    weight: Array,
    #[module]
    bias: Array,
    #[module(static, static)]
    size: usize,
}

fn main() {}
