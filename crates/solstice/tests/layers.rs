//! Differential tests of the layers against real Equinox: the same key
//! gives the same initial leaves, and the same leaves and inputs give the
//! same outputs and the same gradients of `sum(y ** 2)`, with respect to
//! both the layer's floating leaves and the inputs. The fixtures come from
//! `tools/reference/layers2_ref.py`.

mod common;

use common::{Case, Fixture, assert_close};
use serde_json::Value;
use solstice::nn::activation;
use solstice::nn::{
    Activation, AttentionCall, Dropout, Features, Identity, Lambda, LayerNorm, Linear, Mlp,
    MlpOptions, MultiheadAttention, MultiheadAttentionOptions, NormOptions, RmsNorm,
    RotaryPositionalEmbedding, Sequential,
};
use solstice::random::Key;
use solstice::tree::{tree_leaves_with_path, tree_map};
use solstice::{Array, DType, Result, Tree, filter_grad, grad, vmap};

/// Initial weights are drawn bit for bit as JAX draws them.
const WEIGHTS: f64 = 1e-6;
const OUTPUTS: f64 = 1e-5;

fn fixture() -> Fixture {
    Fixture::load("layers2.json")
}

/// The names of the case's arrays that start with `prefix`, sorted.
fn names(case: &Case, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = case.0["arrays"]
        .as_object()
        .map(|arrays| {
            arrays
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn has_array(case: &Case, name: &str) -> bool {
    !case.0["arrays"][name].is_null()
}

/// Checks the tree's leaves against the case's `<prefix><path>` arrays: the
/// same paths, and values within `tol`.
#[track_caller]
fn check_leaves<T: Tree>(case: &Case, tree: &T, prefix: &str, tol: f64) {
    let leaves = tree_leaves_with_path(tree);
    let mut got: Vec<String> = leaves
        .iter()
        .map(|(path, _)| format!("{prefix}{path}"))
        .collect();
    got.sort();
    let name = case.str("name");
    assert_eq!(
        got,
        names(case, &format!("{prefix}.")),
        "{name}: leaf paths"
    );
    for (path, leaf) in &leaves {
        let key = format!("{prefix}{path}");
        assert_close(leaf, &case.array(&key), tol, &format!("{name}: {key}"));
    }
}

/// `layer` with each leaf replaced by the case's `param<path>`, if any.
fn with_params<T: Tree>(case: &Case, layer: &T) -> T {
    tree_map(layer, |path, leaf| {
        let key = format!("param{path}");
        Ok(if has_array(case, &key) {
            case.array(&key)
        } else {
            leaf.clone()
        })
    })
    .unwrap()
}

/// The case's inputs `x0`, `x1`, ...
fn inputs(case: &Case) -> Vec<Array> {
    (0..)
        .map(|i| format!("x{i}"))
        .take_while(|k| has_array(case, k))
        .map(|k| case.array(&k))
        .collect()
}

/// Checks the initial leaves, then the output and gradients of `call`.
#[track_caller]
fn check_layer<T: Tree>(case: &Case, layer: &T, call: impl Fn(&T, &[Array]) -> Result<Array>) {
    let name = case.str("name");
    check_leaves(case, layer, "init", WEIGHTS);
    let layer = with_params(case, layer);
    let xs = inputs(case);
    let y = call(&layer, &xs).unwrap();
    assert_close(&y, &case.array("y"), OUTPUTS, &format!("{name}: y"));

    let loss = |(m, xs): &(T, Vec<Array>), _: &()| call(m, xs)?.square()?.sum_all();
    let (grads, grad_xs) = filter_grad(loss)(&(layer, xs), &()).unwrap();
    check_leaves(case, &grads, "grad", OUTPUTS);
    for (i, g) in grad_xs.iter().enumerate() {
        let key = format!("grad_x{i}");
        assert_close(g, &case.array(&key), OUTPUTS, &format!("{name}: {key}"));
    }
}

/// Equinox's `tree_pformat`, as solstice spells what Python spells
/// differently: `true`, `1e-5`, lists for `Vec` fields (an `Mlp`'s layers, a
/// norm's shape), its own names for the default functions. The fixture's
/// GELUs are named Python functions; solstice prints them as Equinox prints
/// `jax.nn.gelu` and its exact `partial` (checked in `ties.rs`).
fn python_to_rust(python: &str) -> String {
    let s = python
        .replace("True", "true")
        .replace("False", "false")
        .replace("1e-05", "1e-5")
        .replace("<function <lambda>>", "<function identity>")
        .replace(
            "<function gelu_exact>",
            "partial(<function gelu>, approximate=False)",
        )
        .replace("<function gelu_tanh>", "<function gelu>")
        .replace("jax.numpy.float32", "F32");
    let s = if s.starts_with("MLP(") {
        tuple_to_list(&s, "layers=(")
    } else {
        s
    };
    tuple_to_list(&s, "shape=(")
}

/// Rewrites the tuple opened by `opening` (which ends in `(`) as a list,
/// dropping a one-element tuple's trailing comma.
fn tuple_to_list(s: &str, opening: &str) -> String {
    let Some(start) = s.find(opening) else {
        return s.to_string();
    };
    let open = start + opening.len() - 1;
    let mut depth = 0;
    let close = (open..s.len())
        .find(|&i| {
            match &s[i..=i] {
                "(" => depth += 1,
                ")" => depth -= 1,
                _ => {}
            }
            depth == 0
        })
        .expect("balanced");
    let inner = s[open + 1..close].trim_end();
    let inner = inner.strip_suffix(',').unwrap_or(inner);
    let trailing = &s[open + 1 + inner.len()..close];
    let trailing = trailing.trim_start_matches(',');
    format!("{}[{inner}{trailing}]{}", &s[..open], &s[close + 1..])
}

/// The printed tree on one line, so that layouts that wrap differently
/// (Python's longer spellings) still compare.
fn one_line(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            if out.ends_with(',') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The printed layer equals Equinox's, exactly.
#[track_caller]
fn check_pformat<T: Tree + std::fmt::Debug>(case: &Case, layer: &T) {
    assert_eq!(
        format!("{layer:?}"),
        python_to_rust(&case.str("pformat")),
        "{}",
        case.str("name")
    );
}

/// The printed layer equals Equinox's up to line breaks.
#[track_caller]
fn check_pformat_one_line<T: Tree + std::fmt::Debug>(case: &Case, layer: &T) {
    assert_eq!(
        one_line(&format!("{layer:?}")),
        one_line(&python_to_rust(&case.str("pformat"))),
        "{}",
        case.str("name")
    );
}

fn activation_named(name: &str) -> Activation {
    match name {
        "relu" => Activation::relu(),
        "gelu" => Activation::gelu(),
        "gelu_tanh" => Activation::gelu_tanh(),
        "silu" => Activation::silu(),
        "tanh" => Activation::tanh(),
        "sigmoid" => Activation::sigmoid(),
        "softplus" => Activation::softplus(),
        "identity" => Activation::identity(),
        other => panic!("no activation {other}"),
    }
}

fn features(v: &Value) -> Features {
    match v.as_str() {
        Some("scalar") => Features::Scalar,
        _ => Features::Count(v.as_u64().expect("size") as usize),
    }
}

fn seed(case: &Case, field: &str) -> Key {
    Key::new(case.0[field].as_u64().expect(field))
}

fn flag(case: &Case, field: &str) -> bool {
    case.0[field].as_bool().expect(field)
}

#[test]
fn activations_match_jax_nn() {
    let fixture = fixture();
    let case = fixture.case("activations");
    let x = case.array("x");
    let names: Vec<String> = case.0["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 8);
    for name in names {
        let f = activation_named(&name);
        let y = f.call(&x).unwrap();
        assert_close(&y, &case.array(&format!("y_{name}")), OUTPUTS, &name);
        // The elementwise derivative, including relu's 0 and softplus's 1/2
        // at 0, and no overflow at ±25.
        let g = grad(|x: &Array| f.call(x)?.sum_all())(&x).unwrap();
        assert_close(&g, &case.array(&format!("grad_{name}")), OUTPUTS, &name);
    }
    // The free functions are the same functions.
    assert_close(
        &activation::gelu_tanh(&x).unwrap(),
        &case.array("y_gelu_tanh"),
        OUTPUTS,
        "gelu_tanh",
    );
}

#[test]
fn mlp_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "MLP");
    assert_eq!(all.len(), 5);
    for case in all {
        let options = MlpOptions {
            activation: activation_named(&case.str("activation")),
            final_activation: activation_named(&case.str("final_activation")),
            use_bias: flag(&case, "use_bias"),
            use_final_bias: flag(&case, "use_final_bias"),
            dtype: DType::F32,
        };
        let mlp = Mlp::with_options(
            features(&case.0["in_size"]),
            features(&case.0["out_size"]),
            case.0["width_size"].as_u64().unwrap() as usize,
            case.0["depth"].as_u64().unwrap() as usize,
            options,
            seed(&case, "key_seed"),
        )
        .unwrap();
        check_layer(&case, &mlp, |m, xs| m.forward(&xs[0]));
        check_pformat(&case, &mlp);
    }
}

/// The cases of one Equinox layer type.
fn fixture_cases<'a>(fixture: &'a Fixture, layer: &str) -> Vec<Case<'a>> {
    fixture
        .cases()
        .into_iter()
        .filter(|c| c.0["layer"] == layer)
        .collect()
}

fn norm_options(case: &Case) -> NormOptions {
    NormOptions {
        eps: case.0["eps"].as_f64().unwrap(),
        use_weight: flag(case, "use_weight"),
        use_bias: flag(case, "use_bias"),
        dtype: DType::F32,
    }
}

fn shape_field(case: &Case) -> Vec<usize> {
    case.0["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn layer_norm_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "LayerNorm");
    assert_eq!(all.len(), 2);
    for case in all {
        let norm = LayerNorm::with_options(&shape_field(&case), norm_options(&case)).unwrap();
        check_layer(&case, &norm, |m, xs| m.forward(&xs[0]));
        check_pformat_one_line(&case, &norm);
    }
}

#[test]
fn rms_norm_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "RMSNorm");
    assert_eq!(all.len(), 2);
    for case in all {
        let norm = RmsNorm::with_options(&shape_field(&case), norm_options(&case)).unwrap();
        check_layer(&case, &norm, |m, xs| m.forward(&xs[0]));
        check_pformat_one_line(&case, &norm);
    }
}

// The same key drops the same elements as Equinox, and the gradient flows
// only through the kept ones, scaled by 1 / (1 - p).
#[test]
fn dropout_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "Dropout");
    assert_eq!(all.len(), 2);
    for case in all {
        let dropout = Dropout::new(case.0["p"].as_f64().unwrap()).unwrap();
        let key = seed(&case, "call_key_seed");
        check_layer(&case, &dropout, |m, xs| m.forward(&xs[0], key.clone()));
        check_pformat(&case, &dropout);
    }
}

fn attention_options(case: &Case) -> MultiheadAttentionOptions {
    let o = &case.0["options"];
    let size = |k: &str| o[k].as_u64().map(|v| v as usize);
    let bias = |k: &str| o[k].as_bool().unwrap_or(false);
    MultiheadAttentionOptions {
        key_size: size("key_size"),
        value_size: size("value_size"),
        output_size: size("output_size"),
        qk_size: size("qk_size"),
        vo_size: size("vo_size"),
        use_query_bias: bias("use_query_bias"),
        use_key_bias: bias("use_key_bias"),
        use_value_bias: bias("use_value_bias"),
        use_output_bias: bias("use_output_bias"),
        dropout_p: o["dropout_p"].as_f64().unwrap_or(0.0),
        ..MultiheadAttentionOptions::default()
    }
}

// Without a mask, with a [q, kv] mask, with a per-head mask (one query of
// one head masked entirely), several sizes and biases, and dropout on the
// attention weights with Equinox's per-head keys.
#[test]
fn multihead_attention_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "MultiheadAttention");
    assert_eq!(all.len(), 5);
    for case in all {
        let attention = MultiheadAttention::with_options(
            case.0["num_heads"].as_u64().unwrap() as usize,
            case.0["query_size"].as_u64().unwrap() as usize,
            attention_options(&case),
            seed(&case, "key_seed"),
        )
        .unwrap();
        let mask = has_array(&case, "mask").then(|| case.array("mask").astype(DType::U8).unwrap());
        let key = case.0["call_key_seed"].as_u64().map(Key::new);
        check_layer(&case, &attention, |m, xs| {
            let call = AttentionCall {
                mask: mask.as_ref(),
                dropout_key: key.clone(),
                inference: false,
            };
            m.forward_with(&xs[0], &xs[1], &xs[2], call)
        });
        check_pformat(&case, &attention);
    }
}

#[test]
fn rotary_positional_embedding_matches_equinox() {
    let fixture = fixture();
    let all = fixture_cases(&fixture, "RotaryPositionalEmbedding");
    assert_eq!(all.len(), 2);
    for case in all {
        let rope = RotaryPositionalEmbedding::with_theta(
            case.0["embedding_size"].as_u64().unwrap() as usize,
            case.0["theta"].as_f64().unwrap(),
            DType::F32,
        )
        .unwrap();
        check_layer(&case, &rope, |m, xs| m.forward(&xs[0]));
        check_pformat_one_line(&case, &rope);
    }
}

// Equinox splits the call's key into one per layer; the dropout (third
// layer) gets the third key.
#[test]
fn sequential_matches_equinox() {
    let fixture = fixture();
    let case = fixture.case("sequential_linear_relu_dropout_linear_identity");
    let [k1, k2] = seed(&case, "key_seed").split();
    let model = Sequential::new((
        Linear::new(3, 4, k1).unwrap(),
        Lambda::new(Activation::relu()),
        Dropout::new(0.25).unwrap(),
        Linear::new(4, 2, k2).unwrap(),
        Identity::new(),
    ));
    let key = seed(&case, "call_key_seed");
    check_layer(&case, &model, |m, xs| {
        m.forward_with_key(&xs[0], key.clone())
    });
    check_pformat(&case, &model);

    let identity = fixture.case("identity");
    check_pformat(&identity, &Identity::new());
}

// Layers work on one example; `vmap` batches them, and the batch agrees
// with the examples one at a time.
#[test]
fn layers_batch_with_vmap() {
    let [k1, k2, k3] = Key::new(5).split();
    let attention = MultiheadAttention::new(2, 4, k1).unwrap();
    let xs = solstice::random::normal(k2, &[3, 5, 4], DType::F32).unwrap();
    let mask =
        Array::from_vec((0..25).map(|i| u8::from(i % 5 <= i / 5)).collect(), &[5, 5]).unwrap();
    let rope = RotaryPositionalEmbedding::new(4).unwrap();
    let norm = LayerNorm::new(&[5, 4]).unwrap();
    let mlp = Mlp::new(4, 3, 6, 2, k3).unwrap();
    let block = |x: &Array| -> Result<Array> {
        let h = rope.forward(&norm.forward(x)?)?;
        let masked = AttentionCall {
            mask: Some(&mask),
            ..AttentionCall::default()
        };
        let h = attention.forward_with(&h, &h, &h, masked)?;
        vmap(|t: &Array| mlp.forward(t))(&h)
    };
    let batched = vmap(block)(&xs).unwrap();
    assert_eq!(batched.shape(), &[3, 5, 3]);
    for i in 0..3u32 {
        let one = block(&xs.take(&Array::scalar(i).unwrap(), 0).unwrap()).unwrap();
        let row = batched.take(&Array::scalar(i).unwrap(), 0).unwrap();
        assert_close(&row, &one, 1e-6, "vmap(block)");
    }
}

/// A user's mistake is an error naming the layer and the shapes, never a
/// panic. The first words of each message are part of the contract.
#[test]
fn mistakes_are_errors_that_name_the_layer() {
    let key = Key::new(0);
    let f32s = |shape: &[usize]| Array::zeros(shape, DType::F32).unwrap();
    let check = |result: Result<Array>, start: &str, mentions: &str| {
        let message = result.unwrap_err().to_string();
        assert!(message.starts_with(start), "{message}");
        assert!(message.contains(mentions), "{message}");
    };

    let mlp = Mlp::new(3, 2, 4, 1, key.clone()).unwrap();
    check(
        mlp.forward(&f32s(&[4])),
        "Mlp::forward expected an input of shape [3]",
        "[4]",
    );
    check(mlp.forward(&f32s(&[2, 3])), "Mlp::forward", "vmap");

    let norm = LayerNorm::new(&[4]).unwrap();
    check(
        norm.forward(&f32s(&[2, 4])),
        "LayerNorm::forward expected",
        "[2, 4]",
    );
    let rms = RmsNorm::new(&[2, 3]).unwrap();
    check(
        rms.forward(&f32s(&[3, 2])),
        "RmsNorm::forward expected",
        "[3, 2]",
    );

    let dropout = Dropout::new(0.5).unwrap();
    // Inside a Sequential, training without a key is a mistake.
    check(
        Sequential::new((dropout.clone(),)).forward(&f32s(&[3])),
        "in Sequential layer 0: Dropout::forward needs a key",
        "forward_inference",
    );
    // Inference needs no key, nor does p = 0.
    assert!(dropout.forward_inference(&f32s(&[3])).is_ok());
    assert!(
        Sequential::new((Dropout::new(0.0).unwrap(),))
            .forward(&f32s(&[3]))
            .is_ok()
    );
    assert!(
        Dropout::new(1.5)
            .unwrap_err()
            .to_string()
            .starts_with("Dropout::new")
    );

    let attention = MultiheadAttention::new(2, 4, key.clone()).unwrap();
    let x = f32s(&[3, 4]);
    check(
        attention.forward(&f32s(&[3, 5]), &x, &x),
        "MultiheadAttention::forward expected `query` of shape [seq, 4]",
        "[3, 5]",
    );
    check(
        attention.forward(&x, &x, &f32s(&[2, 4])),
        "MultiheadAttention::forward needs key and value sequences of equal length",
        "[2, 4]",
    );
    let bad_mask = Array::from_vec(vec![1u8; 6], &[2, 3]).unwrap();
    check(
        attention.forward_with(
            &x,
            &x,
            &x,
            AttentionCall {
                mask: Some(&bad_mask),
                ..AttentionCall::default()
            },
        ),
        "MultiheadAttention::forward expected a mask of shape [3, 3] or [2, 3, 3]",
        "[2, 3]",
    );
    let float_mask = f32s(&[3, 3]);
    check(
        attention.forward_with(
            &x,
            &x,
            &x,
            AttentionCall {
                mask: Some(&float_mask),
                ..AttentionCall::default()
            },
        ),
        "MultiheadAttention::forward needs a u8 mask",
        "f32[3,3]",
    );
    let with_dropout = MultiheadAttention::with_options(
        2,
        4,
        MultiheadAttentionOptions {
            dropout_p: 0.1,
            ..MultiheadAttentionOptions::default()
        },
        key.clone(),
    )
    .unwrap();
    check(
        with_dropout.forward(&x, &x, &x),
        "MultiheadAttention::forward needs a key for dropout",
        "inference",
    );
    assert!(
        with_dropout
            .forward_with(
                &x,
                &x,
                &x,
                AttentionCall {
                    inference: true,
                    ..AttentionCall::default()
                }
            )
            .is_ok()
    );
    assert!(MultiheadAttention::new(0, 4, key.clone()).is_err());
    assert!(
        MultiheadAttention::new(8, 4, key.clone())
            .unwrap_err()
            .to_string()
            .contains("qk_size = 0")
    );

    let rope = RotaryPositionalEmbedding::new(4).unwrap();
    check(
        rope.forward(&f32s(&[3, 6])),
        "RotaryPositionalEmbedding::forward expected",
        "[3, 6]",
    );
    let f64_input = Array::zeros(&[3, 4], DType::F64).unwrap();
    check(
        rope.forward(&f64_input),
        "RotaryPositionalEmbedding::forward got f64[3,4]",
        "astype",
    );

    // An error inside a Sequential says which layer failed.
    let seq = Sequential::new((
        Linear::new(2, 3, key.clone()).unwrap(),
        Linear::new(4, 1, key.clone()).unwrap(),
    ));
    check(
        seq.forward(&f32s(&[2])),
        "in Sequential layer 1: Linear::forward",
        "[4]",
    );
}

// Dropout's `p` and `inference` are fields, not static: changing them with
// `tree_at`-style surgery switches the behaviour, as Equinox's
// `inference_mode` does.
#[test]
fn dropout_inference_flag_is_a_field() {
    let mut dropout = Dropout::new(0.5).unwrap();
    let x = Array::ones(&[8], DType::F32).unwrap();
    let trained = dropout.forward(&x, Key::new(1)).unwrap();
    assert!(!trained.is(&x));
    dropout.inference = true;
    assert!(dropout.forward(&x, Key::new(1)).unwrap().is(&x));
    // Back in training mode, the same key drops the same elements.
    dropout.inference = false;
    let again = dropout.forward(&x, Key::new(1)).unwrap();
    assert_eq!(
        again.to_vec::<f32>().unwrap(),
        trained.to_vec::<f32>().unwrap()
    );
}
