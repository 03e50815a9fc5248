// A module is a struct: an enum has no fixed fields to be leaves.
use solstice::Module;

#[derive(Module)]
enum Choice {
    A,
    B,
}

fn main() {}
