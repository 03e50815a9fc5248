//! Composition: per-example gradients of the seed's tied language model,
//! and an ensemble of such models built and evaluated with `filter_vmap`.

mod common;

use common::assert_close;
use common::lm::{LanguageModel, loss};
use solstice::random::Key;
use solstice::tree::{tree_leaves, tree_leaves_with_path};
use solstice::{Array, filter_grad, filter_vmap, vmap};

const VOCAB: usize = 11;
const DIM: usize = 6;

fn row(a: &Array, i: usize) -> Array {
    a.take(&Array::scalar(i as u32).unwrap(), 0).unwrap()
}

#[test]
fn per_example_gradients_of_the_tied_model_equal_a_loop() {
    let model = LanguageModel::new(VOCAB, DIM, Key::new(0)).unwrap();
    // Four sequences of five tokens.
    let tokens: Vec<u32> = (0..20).map(|i| (i * 7 + 3) % VOCAB as u32).collect();
    let targets: Vec<u32> = (0..20).map(|i| (i * 5 + 1) % VOCAB as u32).collect();
    let xs = Array::from_vec(tokens, &[4, 5]).unwrap();
    let ys = Array::from_vec(targets, &[4, 5]).unwrap();

    let per_example =
        vmap(|(x, y): &(Array, Array)| filter_grad(loss)(&model, &(x.clone(), y.clone())))(&(
            xs.clone(),
            ys.clone(),
        ))
        .unwrap();
    let tied = &per_example.shared.pytree().0.weight;
    assert_eq!(tied.shape(), &[4, VOCAB, DIM]);
    assert!(per_example.shared.pytree().1.weight.is_absent());
    for i in 0..4 {
        let single = filter_grad(loss)(&model, &(row(&xs, i), row(&ys, i))).unwrap();
        assert_close(
            &row(tied, i),
            &single.shared.pytree().0.weight,
            1e-6,
            "tied gradient",
        );
        assert_close(
            &row(per_example.shared.pytree().1.bias.as_ref().unwrap(), i),
            single.shared.pytree().1.bias.as_ref().unwrap(),
            1e-6,
            "bias gradient",
        );
    }
}

#[test]
fn an_ensemble_built_with_filter_vmap_matches_separate_models() {
    let members = 8;
    let keys = Key::new(0).split_batch(members);
    let ensemble = filter_vmap(|k: &Key| LanguageModel::new(VOCAB, DIM, k.clone()))(&keys).unwrap();

    // Stacked leaves: the tied matrix is still one leaf, now with a leading
    // member axis.
    let paths: Vec<String> = tree_leaves_with_path(&ensemble)
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(
        paths,
        [".shared.pytree[0].weight", ".shared.pytree[1].bias"]
    );
    assert_eq!(tree_leaves(&ensemble)[0].shape(), &[members, VOCAB, DIM]);

    let tokens = Array::from_vec(vec![1u32, 4, 2, 9, 0, 10, 5], &[7]).unwrap();
    // All members evaluated in one pass.
    let logits = vmap(|m: &LanguageModel| m.forward(&tokens))(&ensemble).unwrap();
    assert_eq!(logits.shape(), &[members, 7, VOCAB]);

    for (i, key) in Key::new(0).split_n(members).into_iter().enumerate() {
        let single = LanguageModel::new(VOCAB, DIM, key).unwrap();
        let (e, l) = single.shared.call().unwrap();
        assert_close(
            &row(&tree_leaves(&ensemble)[0], i),
            &e.weight,
            0.0,
            "member weight",
        );
        assert_close(
            &row(&tree_leaves(&ensemble)[1], i),
            l.bias.as_ref().unwrap(),
            0.0,
            "member bias",
        );
        assert_close(
            &row(&logits, i),
            &single.forward(&tokens).unwrap(),
            1e-6,
            "member logits",
        );
    }
}
