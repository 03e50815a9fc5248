//! The derive's struct and field options, the renamed layers, and
//! `BoxedLayer` crossing threads.

use solstice::nn::{Activation, BoxedLayer, Dropout, Lambda, Linear, Mlp, RmsNorm, Sequential};
use solstice::random::Key;
use solstice::tree::tree_pformat;
use solstice::{Array, DType, Module, Tree};

#[derive(Module)]
#[module(name = "MLP")]
struct Perceptron {
    layer: Linear,
    #[module(name = "fn")]
    function: Activation,
    #[module(static)]
    width: usize,
}

#[test]
fn structs_and_fields_print_under_the_names_given() {
    let p = Perceptron {
        layer: Linear::new(2, 2, Key::new(0)).unwrap(),
        function: Activation::relu(),
        width: 2,
    };
    let printed = format!("{p:?}");
    assert!(printed.starts_with("MLP("), "{printed}");
    assert!(printed.contains("fn=<function relu>"), "{printed}");
    assert!(!printed.contains("function="), "{printed}");
    // The layers of solstice keep Equinox's printed names.
    let mlp = Mlp::new(2, 2, 3, 1, Key::new(1)).unwrap();
    assert!(tree_pformat(&mlp).starts_with("MLP("));
    let norm = RmsNorm::new(&[3]).unwrap();
    assert!(tree_pformat(&norm).starts_with("RMSNorm("));
    let lambda = Lambda::new(Activation::relu());
    assert_eq!(tree_pformat(&lambda), "Lambda(fn=<function relu>)");
}

/// A module with its own `Clone` and `Debug`.
#[derive(Module)]
#[module(no_clone, no_debug)]
struct Counted {
    weight: Array,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted {
            weight: self.weight.clone(),
        }
    }
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counted with {} weights", self.weight.elem_count())
    }
}

#[test]
fn the_derive_can_leave_clone_and_debug_to_the_user() {
    let c = Counted {
        weight: Array::zeros(&[3], DType::F32).unwrap(),
    };
    assert_eq!(format!("{c:?}"), "Counted with 3 weights");
    // Still a tree, printed by the tree printer as a module.
    assert_eq!(tree_pformat(&c), "Counted(weight=f32[3])");
    assert_eq!(c.clone().structure(), c.structure());
}

#[test]
#[allow(deprecated)]
fn the_old_names_still_compile() {
    let mlp: solstice::nn::MLP = Mlp::new(2, 2, 3, 1, Key::new(1)).unwrap();
    let norm: solstice::nn::RMSNorm = RmsNorm::new(&[3]).unwrap();
    assert_eq!(mlp.depth, 1);
    assert_eq!(norm.shape, vec![3]);
}

#[test]
fn boxed_layers_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BoxedLayer>();
    let model = Sequential::new(vec![
        BoxedLayer::new(Linear::new(2, 2, Key::new(0)).unwrap()),
        BoxedLayer::new(Dropout::new(0.5).unwrap()),
    ]);
    let x = Array::ones(&[2], DType::F32).unwrap();
    let here = model.forward_with_key(&x, Key::new(3)).unwrap();
    let there = std::thread::spawn(move || {
        let x = Array::ones(&[2], DType::F32).unwrap();
        model
            .forward_with_key(&x, Key::new(3))
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(here.to_vec::<f32>().unwrap(), there);
}
