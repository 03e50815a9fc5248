//! One checkpoint holds the whole training state, `(model, optimiser
//! state, step, key)`, and restores it exactly: training on from the
//! restored state gives the same bits as never having stopped.
//!
//! Optimiser states are trees, so any of them fits in the tuple; this test
//! uses a momentum state written out here (a velocity of the model's type
//! and an integer count array, as optax's states are).

mod common;

use common::lm::{LanguageModel, loss};
use solstice::random::Key;
use solstice::serial::{
    load_safetensors, save_safetensors, tree_deserialise_leaves, tree_serialise_leaves,
};
use solstice::tree::{tree_equal, tree_map, tree_map2};
use solstice::{Array, DType, Module, Result, Tree, apply_updates, filter_value_and_grad};

#[derive(Module)]
struct Momentum<T: Tree> {
    count: Array,
    velocity: T,
}

fn init<T: Tree>(model: &T) -> Result<Momentum<T>> {
    Ok(Momentum {
        count: Array::scalar(0i32)?,
        velocity: tree_map(model, |_, a| {
            if a.is_hole() {
                Ok(a.clone())
            } else {
                Array::zeros(a.shape(), a.dtype())
            }
        })?,
    })
}

type State = (LanguageModel, Momentum<LanguageModel>, u64, Key);

/// One step: momentum SGD on a batch drawn from the state's key.
fn step((model, opt, step, key): &State) -> Result<State> {
    let [k_tokens, k_targets, k_next] = key.split();
    let tokens = solstice::random::randint(k_tokens, &[7], 0, 11, DType::I32)?;
    let targets = solstice::random::randint(k_targets, &[7], 0, 11, DType::I32)?;
    let (_, grads) = filter_value_and_grad(loss)(model, &(tokens, targets))?;
    let velocity = tree_map2(&opt.velocity, &grads, |_, v, g| {
        if v.is_hole() {
            Ok(v.clone())
        } else {
            v.mul_scalar(0.9)?.add(g)
        }
    })?;
    let updates = tree_map(&velocity, |_, v| {
        if v.is_hole() {
            Ok(v.clone())
        } else {
            v.mul_scalar(-0.1)
        }
    })?;
    let model = apply_updates(model, &updates)?;
    let opt = Momentum {
        count: opt.count.add_scalar(1.0)?,
        velocity,
    };
    Ok((model, opt, step + 1, k_next))
}

fn fresh(seed: u64) -> State {
    let model = LanguageModel::new(11, 6, Key::new(seed)).unwrap();
    let opt = init(&model).unwrap();
    (model, opt, 0, Key::new(seed + 100))
}

fn same(a: &State, b: &State) -> bool {
    tree_equal(a, b).unwrap() && a.3.data().unwrap() == b.3.data().unwrap()
}

#[test]
fn a_checkpoint_restores_model_optimiser_state_step_and_key_exactly() {
    let mut state = fresh(0);
    for _ in 0..3 {
        state = step(&state).unwrap();
    }
    assert_eq!(state.1.count.to_scalar::<i32>().unwrap(), 3);
    let dir = tempfile::tempdir().unwrap();
    let eqx = dir.path().join("ckpt.eqx");
    let st = dir.path().join("ckpt.safetensors");
    tree_serialise_leaves(&eqx, &state).unwrap();
    save_safetensors(&st, &state).unwrap();

    // Restored into a state that shares nothing with the saved one.
    let like = fresh(7);
    assert!(!same(&like, &state));
    for restored in [
        tree_deserialise_leaves(&eqx, &like).unwrap(),
        load_safetensors(&st, &like).unwrap(),
    ] {
        assert!(same(&restored, &state));
        assert_eq!(restored.2, 3);
        let (e, l) = restored.0.shared.call().unwrap();
        assert!(e.weight.is(&l.weight), "the tie holds");
        // Training on gives the same bits as the run that never stopped.
        let (a, b) = (step(&restored).unwrap(), step(&state).unwrap());
        assert!(same(&a, &b));
        assert!(tree_equal(&a.0, &b.0).unwrap());
    }
    assert_eq!(state.1.count.dtype(), DType::I32);
}
