//! Equinox's tests of `tree_at` and `tree_equal` (its `tests/test_tree.py`),
//! re-expressed with the same intent. Where Equinox checks at run time what
//! Rust's types reject at compile time (a replacement of the wrong arity or
//! type), the check is a `compile_fail` doctest in `tree/at.rs`.

use solstice::nn::Linear;
use solstice::random::Key;
use solstice::tree::{tree_at, tree_at_each, tree_at_each_with, tree_at_pair, tree_equal};
use solstice::{Array, DType, Module};

#[derive(Module)]
struct Dict {
    a: Array,
}

/// Equinox's `[1, 2, {"a": jnp.array([1.0, 2.0])}, eqx.nn.Linear(1, 2, key=key)]`.
type Pytree = (i64, i64, Dict, Linear);

fn pytree(key: Key) -> Pytree {
    let a = Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    (1, 2, Dict { a }, Linear::new(1, 2, key).unwrap())
}

// Equinox: test_tree_at_replace.
#[test]
fn tree_at_replace() {
    let [key1, key2] = Key::new(0).split();
    let tree = pytree(key1.clone());

    // where1 = lambda tree: tree[2]["a"]
    let hi = Array::from_vec(vec![7.0f32], &[1]).unwrap();
    let tree1 = tree_at(&tree, |t| &mut t.2.a, hi.clone()).unwrap();
    assert!(tree1.2.a.is(&hi));
    assert_eq!((tree1.0, tree1.1), (1, 2));
    assert!(tree_equal(&tree1.3, &tree.3).unwrap());

    // where2 = lambda tree: (tree[3].weight, tree[3].bias)
    let other = Linear::new(1, 2, key2).unwrap();
    let tree2 = tree_at_pair(
        &tree,
        |t| (&mut t.3.weight, &mut t.3.bias),
        (other.weight.clone(), other.bias.clone()),
    )
    .unwrap();
    assert!(tree_equal(&tree2.3, &other).unwrap());
    assert!(tree_equal(&tree2.2, &tree.2).unwrap());

    // where3 = lambda tree: (tree[0], tree[2]["a"]), nodes of two types.
    let four = Array::scalar(4.0f32).unwrap();
    let tree3 = tree_at_pair(&tree, |t| (&mut t.0, &mut t.2.a), (-1, four.clone())).unwrap();
    assert_eq!(tree3.0, -1);
    assert!(tree3.2.a.is(&four));
    assert!(tree_equal(&tree3.3, &tree.3).unwrap());

    // replace=(3, 4, 5) for two nodes: a run-time error for a Vec of nodes.
    let err = tree_at_each(&tree, |t| vec![&mut t.0, &mut t.1], vec![3, 4, 5]).unwrap_err();
    assert!(err.is_structure_mismatch());
}

// Equinox: test_tree_at_replace_fn.
#[test]
fn tree_at_replace_fn() {
    let tree = pytree(Key::new(1));
    let out = tree_at_each_with(&tree, |t| vec![&mut t.0, &mut t.1], |x| Ok(x + 100)).unwrap();
    assert_eq!((out.0, out.1), (101, 102));
    assert!(tree_equal(&out.2, &tree.2).unwrap());
    assert!(tree_equal(&out.3, &tree.3).unwrap());
}

// Equinox: test_tree_at_subtree. A whole list of layers is a node, and so is
// the sequence of its elements.
#[test]
fn tree_at_subtree() {
    let [k1, k2] = Key::new(2).split();
    let layers = vec![
        Linear::new(2, 2, k1).unwrap(),
        Linear::new(2, 2, k2).unwrap(),
    ];
    let identity = || Linear {
        weight: Array::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2]).unwrap(),
        bias: Some(Array::zeros(&[2], DType::F32).unwrap()),
        ..layers[0].clone()
    };
    let model = (layers.clone(),);
    let forward = |m: &(Vec<Linear>,), x: &Array| -> solstice::Result<Array> {
        m.0.iter().try_fold(x.clone(), |h, l| l.forward(&h))
    };
    let x = Array::from_vec(vec![0.5f32, -1.5], &[2]).unwrap();

    // m.layers is a node.
    let new1 = tree_at(&model, |m| &mut m.0, vec![identity(), identity()]).unwrap();
    // m.layers' elements, as a sequence of nodes.
    let new2 = tree_at_each(
        &model,
        |m| m.0.iter_mut().collect(),
        vec![identity(), identity()],
    )
    .unwrap();
    for new in [&new1, &new2] {
        assert_eq!(
            forward(new, &x).unwrap().to_vec::<f32>().unwrap(),
            vec![0.5, -1.5]
        );
    }
    assert!(
        !tree_equal(&model, &new1).unwrap(),
        "the input is unchanged"
    );
}

// Equinox: test_tree_at_none_leaf. Equinox cannot select a `None` (it is not
// a leaf); in Rust an `Option` field is a node like any other, so it can be
// replaced.
#[test]
fn tree_at_none_node() {
    let tree: (Option<Array>, Option<Array>, i64) = (None, None, 0);
    let one = Array::scalar(1.0f32).unwrap();
    let out = tree_at(&tree, |t| &mut t.0, Some(one.clone())).unwrap();
    assert!(out.0.unwrap().is(&one));
    assert!(out.1.is_none());
}

// Equinox: test_tree_equal.
#[test]
fn tree_equal_like_equinox() {
    let (key1, key2) = (Key::new(0), Key::new(1));
    let make = |scalar: i64, a: [f32; 2], key: Key| {
        (
            1i64,
            2i64,
            scalar,
            Dict {
                a: Array::from_vec(a.to_vec(), &[2]).unwrap(),
            },
            Linear::new(1, 2, key).unwrap(),
        )
    };
    let pytree1 = make(3, [1.0, 2.0], key1.clone());
    let pytree2 = make(3, [1.0, 2.0], key1.clone());
    let pytree3 = make(3, [1.0, 2.0], key2);
    let pytree4 = make(3, [1.0, 4.0], key1.clone());
    let pytree5 = make(4, [1.0, 2.0], key1);
    assert!(tree_equal(&pytree1, &pytree1).unwrap());
    assert!(tree_equal(&pytree1, &pytree2).unwrap());
    assert!(!tree_equal(&pytree1, &pytree3).unwrap());
    assert!(!tree_equal(&pytree1, &pytree4).unwrap());
    assert!(!tree_equal(&pytree1, &pytree5).unwrap());
}
