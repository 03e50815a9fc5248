//! Trees: `#[derive(Module)]`, paths, structure, printing, `tree_at`,
//! filters, and the algebra's laws as property tests.

mod common;

use common::Fixture;
use proptest::prelude::*;
use solstice::nn::{Embedding, Linear};
use solstice::random::Key;
use solstice::tree::{
    Structure, combine, filter, is_array, is_inexact_array, partition, tree_at, tree_at_each,
    tree_at_each_with, tree_at_pair, tree_at_with, tree_equal, tree_from_slots, tree_leaves,
    tree_leaves_with_path, tree_map, tree_slots,
};
use solstice::{Array, DType, Module, Tree};

fn f32s(v: &[f32]) -> Array {
    Array::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

#[derive(Module)]
struct Mlp {
    layers: Vec<Linear>,
    #[module(static)]
    activation: &'static str,
    scale: f64,
}

#[derive(Module)]
struct Pair<A, B> {
    first: A,
    second: B,
    #[module(static)]
    tag: u8,
}

#[derive(Module)]
struct Wrapper(Array, Option<Array>);

#[test]
fn leaves_are_depth_first_in_field_order_with_paths() {
    let [k1, k2] = Key::new(0).split();
    let mlp = Mlp {
        layers: vec![
            Linear::new(2, 3, k1).unwrap(),
            Linear::no_bias(3, 1, k2).unwrap(),
        ],
        activation: "relu",
        scale: 0.5,
    };
    let paths: Vec<String> = tree_leaves_with_path(&mlp)
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(
        paths,
        [".layers[0].weight", ".layers[0].bias", ".layers[1].weight"]
    );
    assert!(tree_leaves(&mlp)[0].is(&mlp.layers[0].weight));
}

#[test]
fn generic_and_tuple_structs_derive() {
    let pair = Pair {
        first: f32s(&[1.0]),
        second: (f32s(&[2.0]), Wrapper(f32s(&[3.0]), None)),
        tag: 7,
    };
    let paths: Vec<String> = tree_leaves_with_path(&pair)
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(paths, [".first", ".second[0]", ".second[1][0]"]);
    assert_eq!(
        format!("{pair:?}"),
        "Pair(first=f32[1], second=(f32[1], Wrapper(0=f32[1], 1=None)), tag=7)"
    );
}

#[test]
fn static_fields_are_structure_not_leaves() {
    let a = Pair {
        first: f32s(&[1.0]),
        second: f32s(&[2.0]),
        tag: 1,
    };
    let b = Pair {
        tag: 2,
        ..a.clone()
    };
    assert_eq!(tree_leaves(&a).len(), 2);
    assert_ne!(a.structure(), b.structure());
    assert!(!a.structure().same_treedef(&b.structure()));
    assert!(!tree_equal(&a, &b).unwrap());
}

#[test]
fn pformat_matches_equinox() {
    // Equinox prints Python's `True`; solstice prints Rust's `true`.
    let fixture = Fixture::load("layers.json");
    let python = |s: String| s.replace("True", "true").replace("False", "false");
    let linear = Linear::new(4, 3, Key::new(0)).unwrap();
    assert_eq!(
        format!("{linear:?}"),
        python(fixture.case("linear_4_3").str("pformat"))
    );
    let no_bias = Linear::no_bias(4, 3, Key::new(1)).unwrap();
    assert_eq!(
        format!("{no_bias:?}"),
        python(fixture.case("linear_4_3_nobias").str("pformat"))
    );
    let scalar = Linear::new(solstice::nn::Features::Scalar, 3, Key::new(2)).unwrap();
    assert_eq!(
        format!("{scalar:?}"),
        python(fixture.case("linear_scalar_in").str("pformat"))
    );
    let embedding = Embedding::new(10, 4, Key::new(1)).unwrap();
    assert_eq!(
        format!("{embedding:?}"),
        fixture.case("embedding_10_4").str("pformat")
    );
}

#[test]
fn tree_at_replaces_only_what_it_selects() {
    let linear = Linear::new(2, 2, Key::new(0)).unwrap();
    let zeros = Array::zeros(&[2], DType::F32).unwrap();
    let new = tree_at(&linear, |l| &mut l.bias, Some(zeros.clone())).unwrap();
    assert!(new.bias.as_ref().unwrap().is(&zeros));
    assert!(
        new.weight.is(&linear.weight),
        "untouched arrays are shared, not copied"
    );
    assert!(
        !linear.bias.as_ref().unwrap().is(&zeros),
        "the input is unchanged"
    );

    // A whole sub-node, and a replace_fn.
    let pair = (linear.clone(), linear.clone());
    let new = tree_at_with(
        &pair,
        |p| &mut p.1,
        |l| tree_map(l, |_, a| a.mul_scalar(2.0)),
    )
    .unwrap();
    assert_eq!(
        new.1.weight.to_vec::<f32>().unwrap(),
        linear
            .weight
            .mul_scalar(2.0)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    );
    assert!(new.0.weight.is(&linear.weight));

    // Several nodes of one type, and two of different types.
    let v = vec![f32s(&[1.0]), f32s(&[2.0]), f32s(&[3.0])];
    let new = tree_at_each_with(&v, |v| v.iter_mut().step_by(2).collect(), |a| a.neg()).unwrap();
    assert_eq!(new[2].to_vec::<f32>().unwrap(), vec![-3.0]);
    assert!(new[1].is(&v[1]));
    let new = tree_at_pair(
        &linear,
        |l| (&mut l.weight, &mut l.use_bias),
        (zeros.clone(), false),
    )
    .unwrap();
    assert!(new.weight.is(&zeros) && !new.use_bias);
}

#[test]
fn tree_at_each_rejects_a_replacement_of_the_wrong_length() {
    let v = vec![f32s(&[1.0]), f32s(&[2.0])];
    let err = tree_at_each(&v, |v| v.iter_mut().collect(), vec![f32s(&[0.0])]).unwrap_err();
    assert!(err.is_structure_mismatch());
    assert_eq!(
        err.to_string(),
        "tree_at_each: `where` selected 2 nodes but `replace` has 1; give one replacement per selected node"
    );
}

#[test]
fn filter_partition_combine() {
    let tree = (
        f32s(&[1.0]),
        Array::scalar(3i64).unwrap(),
        Some(Array::placeholder()),
    );
    let arrays = filter(&tree, is_array);
    assert!(!arrays.1.is_absent() && arrays.2.as_ref().unwrap().is_absent());
    let (params, rest) = partition(&tree, is_inexact_array);
    assert!(params.0.is(&tree.0) && params.1.is_absent());
    assert!(rest.0.is_absent() && rest.1.is(&tree.1) && rest.2.as_ref().unwrap().is_placeholder());
    let back = combine(&params, &rest).unwrap();
    assert!(back.0.is(&tree.0) && back.1.is(&tree.1) && back.2.unwrap().is_placeholder());
}

#[test]
fn structure_shows_shapes_and_holes() {
    let tree = (
        f32s(&[1.0, 2.0]),
        Array::absent(),
        vec![Array::placeholder()],
    );
    assert_eq!(tree.structure().pformat(), "(f32[2], None, [SharedNode])");
    assert_eq!(
        Array::scalar(1.0f64).unwrap().structure(),
        Structure::Array {
            dtype: DType::F64,
            shape: vec![]
        }
    );
}

/// A random tree of a fixed type: arrays of random sizes, some absent.
fn arb_tree() -> impl Strategy<Value = Vec<(Array, Option<Array>)>> {
    let arb_array = prop::collection::vec(-10.0f32..10.0, 0..5).prop_map(|v| f32s(&v));
    prop::collection::vec((arb_array.clone(), prop::option::of(arb_array)), 0..6).prop_map(|v| v)
}

proptest! {
    #[test]
    fn unflatten_of_flatten_is_identity(tree in arb_tree()) {
        let slots: Vec<Array> = tree_slots(&tree).into_iter().map(|(_, a)| a).collect();
        let back = tree_from_slots(&tree, &slots).unwrap();
        prop_assert!(tree_equal(&back, &tree).unwrap());
        prop_assert_eq!(back.structure(), tree.structure());
    }

    #[test]
    fn combine_of_partition_is_identity(tree in arb_tree(), threshold in 0usize..5) {
        let keep = |a: &Array| a.elem_count() >= threshold;
        let (a, b) = partition(&tree, keep);
        prop_assert!(tree_equal(&combine(&a, &b).unwrap(), &tree).unwrap());
    }

    #[test]
    fn tree_at_changes_only_what_it_selects(tree in arb_tree(), pick in 0usize..6) {
        prop_assume!(pick < tree.len());
        let marker = f32s(&[42.0]);
        let new = tree_at(&tree, |t| &mut t[pick].0, marker.clone()).unwrap();
        prop_assert!(new[pick].0.is(&marker));
        for (i, ((a, b), (c, d))) in tree.iter().zip(&new).enumerate() {
            if i != pick { prop_assert!(a.is(c)); }
            prop_assert_eq!(b.is_some(), d.is_some());
            if let (Some(b), Some(d)) = (b, d) { prop_assert!(b.is(d)); }
        }
    }
}
