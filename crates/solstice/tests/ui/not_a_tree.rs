// A field that is not a tree must be marked static.
use solstice::{Array, Module};

struct Config {
    width: usize,
}

#[derive(Module)]
struct Layer {
    weight: Array,
    config: Config,
}

fn main() {}
