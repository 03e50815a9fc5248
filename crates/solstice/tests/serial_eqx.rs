//! `.eqx` checkpoints against files written by real Equinox
//! (`tools/reference/serial_ref.py`): the same model from the same key gives
//! the same bytes, Equinox's files load to the same leaves, and loading is
//! strict where Equinox is lenient.
//!
//! The files solstice writes for Equinox to load back are committed in
//! `tests/fixtures/serial/from_solstice/`; this test checks they are what
//! solstice writes today. To rewrite them and run Equinox's check:
//!
//! ```sh
//! SOLSTICE_WRITE_FIXTURES=1 cargo test -p solstice --test serial_eqx
//! python3 tools/reference/serial_ref.py --check tests/fixtures/serial/from_solstice
//! ```

mod common;

use std::path::PathBuf;

use common::lm::LanguageModel;
use solstice::nn::{
    Activation, Embedding, LayerNorm, Linear, Mlp, MlpOptions, MultiheadAttention,
    MultiheadAttentionOptions, Shared,
};
use solstice::random::Key;
use solstice::serial::{
    tree_deserialise_leaves, tree_deserialise_leaves_from, tree_serialise_leaves,
    tree_serialise_leaves_to,
};
use solstice::tree::{tree_equal, tree_map};
use solstice::{Array, DType, Module, Result, Tree};

const GPT_VOCAB: usize = 13;
const GPT_DIM: usize = 8;
const GPT_CTX: usize = 5;
const GPT_HEADS: usize = 2;
const GPT_LAYERS: usize = 2;

/// The GPT block of `serial_ref.py`, field for field.
#[derive(Module)]
struct Block {
    ln1: LayerNorm,
    attn: MultiheadAttention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(key: Key) -> Result<Self> {
        let [k1, k2] = key.split();
        let options = MultiheadAttentionOptions {
            use_query_bias: true,
            use_key_bias: true,
            use_value_bias: true,
            use_output_bias: true,
            dropout_p: 0.1,
            ..MultiheadAttentionOptions::default()
        };
        let mlp = MlpOptions {
            activation: Activation::gelu(),
            ..MlpOptions::default()
        };
        Ok(Block {
            ln1: LayerNorm::new(&[GPT_DIM])?,
            attn: MultiheadAttention::with_options(GPT_HEADS, GPT_DIM, options, k1)?,
            ln2: LayerNorm::new(&[GPT_DIM])?,
            mlp: Mlp::with_options(GPT_DIM, GPT_DIM, 4 * GPT_DIM, 1, mlp, k2)?,
        })
    }
}

/// The small GPT of `serial_ref.py`: the token embedding tied to the head.
#[derive(Module)]
struct Gpt {
    shared: Shared<(Embedding, Linear)>,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt {
    fn new(key: Key) -> Result<Self> {
        let [kt, kp, kh, kb] = key.split();
        let wte = Embedding::new(GPT_VOCAB, GPT_DIM, kt)?;
        let head = Linear::no_bias(GPT_DIM, GPT_VOCAB, kh)?;
        let shared = Shared::new((wte, head), |p| &mut p.1.weight, |p| p.0.weight.clone())?;
        Ok(Gpt {
            shared,
            wpe: Embedding::new(GPT_CTX, GPT_DIM, kp)?,
            blocks: kb
                .split_n(GPT_LAYERS)
                .into_iter()
                .map(Block::new)
                .collect::<Result<_>>()?,
            ln_f: LayerNorm::new(&[GPT_DIM])?,
        })
    }
}

fn lm(seed: u64) -> LanguageModel {
    LanguageModel::new(11, 6, Key::new(seed)).unwrap()
}

fn mlp(seed: u64) -> Mlp {
    Mlp::new(3, 2, 4, 2, Key::new(seed)).unwrap()
}

fn mha(seed: u64) -> MultiheadAttention {
    let options = MultiheadAttentionOptions {
        use_output_bias: true,
        dropout_p: 0.1,
        ..MultiheadAttentionOptions::default()
    };
    MultiheadAttention::with_options(2, 4, options, Key::new(seed)).unwrap()
}

fn gpt(seed: u64) -> Gpt {
    Gpt::new(Key::new(seed)).unwrap()
}

type State = (LanguageModel, i64, Key);

fn state(seed: u64, step: i64, key: u64) -> State {
    (lm(seed), step, Key::new(key))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/../../tests/fixtures/serial/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn bytes_of<T: Tree>(tree: &T) -> Vec<u8> {
    let mut out = Vec::new();
    tree_serialise_leaves_to(&mut out, tree).unwrap();
    out
}

/// Checks solstice writes Equinox's exact bytes for `model` and loads
/// Equinox's file back into `other` (a different model of the same
/// structure) as `model`.
fn check_against_equinox<T: Tree>(name: &str, model: &T, other: &T) {
    let equinox = std::fs::read(fixture(name)).unwrap();
    let ours = bytes_of(model);
    assert_eq!(ours.len(), equinox.len(), "{name}: length");
    assert!(
        ours == equinox,
        "{name}: solstice's bytes differ from Equinox's"
    );
    assert!(
        !tree_equal(other, model).unwrap(),
        "{name}: `like` must differ"
    );
    let loaded = tree_deserialise_leaves(fixture(name), other).unwrap();
    assert!(tree_equal(&loaded, model).unwrap(), "{name}: leaves differ");
}

#[test]
fn the_seed_language_model_is_byte_for_byte_equinoxs() {
    check_against_equinox("lm.eqx", &lm(0), &lm(9));
}

#[test]
fn an_mlp_is_byte_for_byte_equinoxs() {
    check_against_equinox("mlp.eqx", &mlp(1), &mlp(9));
}

#[test]
fn attention_with_dropout_writes_p_and_inference_as_equinox_does() {
    let mut other = mha(9);
    other.dropout.p = 0.5;
    other.dropout.inference = true;
    check_against_equinox("mha.eqx", &mha(2), &other);
    // The last two records are `dropout.p` (<f8, 0.1) and
    // `dropout.inference` (|b1, False).
    let bytes = std::fs::read(fixture("mha.eqx")).unwrap();
    let n = bytes.len();
    assert_eq!(&bytes[n - 1..], &[0u8]);
    assert_eq!(&bytes[n - 129 - 8..n - 129], &0.1f64.to_le_bytes());
    let loaded = tree_deserialise_leaves(fixture("mha.eqx"), &other).unwrap();
    assert_eq!((loaded.dropout.p, loaded.dropout.inference), (0.1, false));
}

#[test]
fn a_gpt_with_a_tied_head_is_byte_for_byte_equinoxs() {
    check_against_equinox("gpt.eqx", &gpt(3), &gpt(9));
    // Loading into a tied model keeps the tie.
    let loaded = tree_deserialise_leaves(fixture("gpt.eqx"), &gpt(9)).unwrap();
    let (wte, head) = loaded.shared.call().unwrap();
    assert!(wte.weight.is(&head.weight));
}

#[test]
fn a_training_state_with_a_step_and_a_key_is_byte_for_byte_equinoxs() {
    check_against_equinox("state.eqx", &state(0, 17, 5), &state(9, 3, 9));
    let loaded = tree_deserialise_leaves(fixture("state.eqx"), &state(9, 3, 9)).unwrap();
    assert_eq!(loaded.1, 17);
    assert_eq!(loaded.2.data().unwrap(), Key::new(5).data().unwrap());
}

#[test]
fn ties_hold_after_loading_into_a_tied_like() {
    let loaded = tree_deserialise_leaves(fixture("lm.eqx"), &lm(9)).unwrap();
    let (embedding, linear) = loaded.shared.call().unwrap();
    assert!(embedding.weight.is(&linear.weight));
    assert!(tree_equal(&loaded, &lm(0)).unwrap());
}

#[test]
fn the_path_variant_writes_the_same_file_and_adds_the_eqx_suffix() {
    let dir = tempfile::tempdir().unwrap();
    tree_serialise_leaves(dir.path().join("model"), &gpt(3)).unwrap();
    let written = std::fs::read(dir.path().join("model.eqx")).unwrap();
    assert!(written == std::fs::read(fixture("gpt.eqx")).unwrap());
    // Loading finds the suffixed file too, as Equinox does.
    let loaded = tree_deserialise_leaves(dir.path().join("model"), &gpt(9)).unwrap();
    assert!(tree_equal(&loaded, &gpt(3)).unwrap());
}

/// What solstice writes for Equinox to load back (`serial_ref.py --check`):
/// float arrays doubled, dropout changed, step 18 and `PRNGKey(6)`.
fn doubled<T: Tree>(tree: &T) -> T {
    tree_map(tree, |_, a| {
        if !a.is_hole() && a.dtype().is_float() {
            a.mul_scalar(2.0)
        } else {
            Ok(a.clone())
        }
    })
    .unwrap()
}

fn for_equinox() -> Vec<(&'static str, Vec<u8>)> {
    let mut attention = doubled(&mha(2));
    attention.dropout.p = 0.25;
    attention.dropout.inference = true;
    let state = (doubled(&lm(0)), 18i64, Key::new(6));
    vec![
        ("lm.eqx", bytes_of(&doubled(&lm(0)))),
        ("mlp.eqx", bytes_of(&doubled(&mlp(1)))),
        ("mha.eqx", bytes_of(&attention)),
        ("gpt.eqx", bytes_of(&doubled(&gpt(3)))),
        ("state.eqx", bytes_of(&state)),
    ]
}

#[test]
fn the_files_equinox_checks_are_what_solstice_writes() {
    let dir = fixture("from_solstice");
    if std::env::var_os("SOLSTICE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in for_equinox() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in for_equinox() {
        let committed = std::fs::read(dir.join(name)).unwrap();
        assert!(
            committed == bytes,
            "{name} is stale: rewrite it (see the file's docs)"
        );
    }
}

// Strict loading: every mismatch is an error naming the file and the path.

fn write_temp<T: Tree>(tree: &T) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.eqx");
    tree_serialise_leaves(&path, tree).unwrap();
    (dir, path)
}

#[test]
fn an_f64_record_does_not_load_into_an_f32_leaf() {
    let (_dir, path) = write_temp(&(Array::zeros(&[2, 3], DType::F64).unwrap(),));
    let like = (Array::zeros(&[2, 3], DType::F32).unwrap(),);
    let err = tree_deserialise_leaves(&path, &like).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("t.eqx") && msg.contains("[0]"), "{msg}");
    assert!(
        msg.contains("f64[2,3]") && msg.contains("f32[2,3]"),
        "{msg}"
    );
}

#[test]
fn a_shape_mismatch_names_both_shapes_and_the_path() {
    let (_dir, path) = write_temp(&mlp(1));
    let like = Mlp::new(3, 2, 5, 2, Key::new(1)).unwrap();
    let err = tree_deserialise_leaves(&path, &like).unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(".layers[0].weight"), "{msg}");
    assert!(
        msg.contains("f32[4,3]") && msg.contains("f32[5,3]"),
        "{msg}"
    );
}

#[test]
fn a_scalar_record_does_not_load_into_an_array_leaf_nor_the_reverse() {
    let (_dir, path) = write_temp(&(0.5f64,));
    let err = tree_deserialise_leaves(&path, &(Array::scalar(0.5f32).unwrap(),)).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let err = tree_deserialise_leaves(&path, &(true,)).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let err = tree_deserialise_leaves(&path, &(3i64,)).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let (_dir, path) = write_temp(&(Array::zeros(&[2], DType::F64).unwrap(),));
    let err = tree_deserialise_leaves(&path, &(0.5f64,)).unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
}

#[test]
fn scalars_load_only_where_the_value_fits() {
    let (_dir, path) = write_temp(&(300i64, 0.1f64));
    let err = tree_deserialise_leaves(&path, &(0u8, 0.0f64)).unwrap_err();
    assert!(err.to_string().contains("300"), "{err}");
    let err = tree_deserialise_leaves(&path, &(0i64, 0.0f32)).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let loaded = tree_deserialise_leaves(&path, &(0u16, 0.0f64)).unwrap();
    assert_eq!(loaded, (300, 0.1));
}

#[test]
fn trailing_records_are_an_error() {
    let bytes = bytes_of(&(Array::scalar(1.0f32).unwrap(), 2.0f64));
    let like = (Array::scalar(0.0f32).unwrap(),);
    let err = tree_deserialise_leaves_from(&bytes[..], &like).unwrap_err();
    assert!(err.is_structure_mismatch(), "{err}");
    assert!(err.to_string().contains("more records"), "{err}");
    // Trailing bytes that are not a record are an error too.
    let mut junk = bytes_of(&like);
    junk.extend_from_slice(b"xyz");
    assert!(tree_deserialise_leaves_from(&junk[..], &like).is_err());
}

#[test]
fn a_truncated_file_is_an_error_at_every_cut() {
    let bytes = bytes_of(&mha(2));
    let like = mha(9);
    for cut in 0..bytes.len() {
        let err = tree_deserialise_leaves_from(&bytes[..cut], &like).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("truncated") || msg.contains("fewer leaves"),
            "cut {cut}: {msg}"
        );
    }
    assert!(tree_deserialise_leaves_from(&bytes[..], &like).is_ok());
}

#[test]
fn a_missing_file_names_the_file() {
    let err = tree_deserialise_leaves("/nonexistent/dir/model.eqx", &lm(0)).unwrap_err();
    assert!(err.is_io(), "{err}");
    assert!(err.to_string().contains("model.eqx"), "{err}");
}

#[test]
fn batched_tracers_are_not_saved() {
    let xs = Array::zeros(&[3], DType::F32).unwrap();
    let out = solstice::vmap(|x: &Array| {
        let mut out = Vec::new();
        let e = tree_serialise_leaves_to(&mut out, &(x.clone(),)).unwrap_err();
        assert!(e.to_string().contains("[0]"), "{e}");
        Ok(x.clone())
    })(&xs);
    assert!(out.is_ok());
}
