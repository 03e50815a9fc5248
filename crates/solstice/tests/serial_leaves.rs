//! The typed leaf visitor: every leaf, arrays and scalars, with its path, in
//! Equinox's order; static fields, strings and functions are not leaves.

use solstice::nn::{BoxedLayer, Dropout, Linear, MultiheadAttention, Sequential, Shared};
use solstice::random::Key;
use solstice::tree::{KeyPath, Leaf, LeafMut, Scalar, tree_leaves};
use solstice::{Array, Module, Tree};

/// `(path, description)` of every leaf.
fn leaves<T: Tree>(tree: &T) -> Vec<(String, String)> {
    let mut out = Vec::new();
    tree.visit_leaves(&mut KeyPath::root(), &mut |path, leaf| {
        let what = match leaf {
            Leaf::Array(a) => a.short_description(),
            Leaf::Scalar(s) => format!("{}:{}", s.type_name(), s.get()),
        };
        out.push((path.to_string(), what));
    });
    out
}

fn paths<T: Tree>(tree: &T) -> Vec<String> {
    leaves(tree).into_iter().map(|(p, _)| p).collect()
}

#[derive(Module)]
struct Config {
    weight: Array,
    #[module(static)]
    #[allow(dead_code)]
    width: usize,
    scale: f32,
    steps: Option<u8>,
    name: String,
    flags: (bool, Vec<i32>),
}

fn config() -> Config {
    Config {
        weight: Array::zeros(&[2], solstice::DType::F32).unwrap(),
        width: 7,
        scale: 0.5,
        steps: Some(3),
        name: "x".into(),
        flags: (true, vec![-1, 2]),
    }
}

#[test]
fn the_derive_visits_scalars_in_field_order_and_skips_static_fields_and_strings() {
    assert_eq!(
        leaves(&config()),
        [
            (".weight", "f32[2]"),
            (".scale", "f32:0.5"),
            (".steps", "u8:3"),
            (".flags[0]", "bool:true"),
            (".flags[1][0]", "i32:-1"),
            (".flags[1][1]", "i32:2"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn the_mutable_twin_visits_the_same_leaves_and_can_set_scalars() {
    let mut c = config();
    let mut seen = Vec::new();
    c.visit_leaves_mut(&mut KeyPath::root(), &mut |path, leaf| {
        seen.push(path.to_string());
        if let LeafMut::Scalar(s) = leaf {
            let v = match s.get() {
                Scalar::Bool(b) => Scalar::Bool(!b),
                Scalar::Int(i) => Scalar::Int(i + 1),
                Scalar::Float(x) => Scalar::Float(x * 2.0),
            };
            s.set(v).unwrap();
        }
    });
    assert_eq!(seen, paths(&config()));
    assert_eq!(
        (c.scale, c.steps, c.flags.0, c.flags.1.clone()),
        (1.0, Some(4), false, vec![0, 3])
    );
}

#[test]
fn dropout_has_two_scalar_leaves_as_in_equinox() {
    let attention = MultiheadAttention::new(2, 4, Key::new(0)).unwrap();
    assert_eq!(
        paths(&attention),
        [
            ".query_proj.weight",
            ".key_proj.weight",
            ".value_proj.weight",
            ".output_proj.weight",
            ".dropout.p",
            ".dropout.inference"
        ]
    );
    // The array-only visitors are unchanged: scalars are not array leaves.
    assert_eq!(tree_leaves(&attention).len(), 4);
}

#[test]
fn shared_visits_its_pytree_with_the_placeholder_slot() {
    let [k1, k2] = Key::new(0).split();
    let pair = (
        Linear::new(2, 3, k1).unwrap(),
        Linear::new(3, 2, k2).unwrap(),
    );
    let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t()).unwrap();
    assert_eq!(
        leaves(&shared),
        [
            (".pytree[0].weight", "f32[3,2]"),
            (".pytree[0].bias", "f32[3]"),
            (".pytree[1].weight", "SharedNode"),
            (".pytree[1].bias", "f32[2]"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn keys_activations_and_boxed_layers_visit_their_leaves() {
    assert_eq!(
        leaves(&Key::new(1)),
        [("<root>".to_string(), "u32[2]".to_string())]
    );
    assert!(leaves(&solstice::nn::Activation::relu()).is_empty());
    let boxed = Sequential::new(vec![
        BoxedLayer::new(Linear::new(2, 2, Key::new(0)).unwrap()),
        BoxedLayer::new(Dropout::new(0.5).unwrap()),
    ]);
    assert_eq!(
        paths(&boxed),
        [
            ".layers[0].weight",
            ".layers[0].bias",
            ".layers[1].p",
            ".layers[1].inference"
        ]
    );
    let mut boxed = boxed;
    boxed.visit_leaves_mut(&mut KeyPath::root(), &mut |_, leaf| match leaf {
        LeafMut::Scalar(s) if s.type_name() == "f64" => s.set(Scalar::Float(0.25)).unwrap(),
        _ => {}
    });
    let dropout = boxed.layers[1].downcast_ref::<Dropout>().unwrap();
    assert_eq!(dropout.p, 0.25);
}
