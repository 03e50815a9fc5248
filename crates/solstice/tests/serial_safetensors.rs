//! safetensors checkpoints: names are key paths, ties are stored once and
//! come back as ties, the files are what the safetensors crate reads and
//! writes, and every bad file is an error naming the file and the tensor.

mod common;

use std::collections::HashMap;

use common::lm::LanguageModel;
use solstice::nn::{Dropout, Linear, MultiheadAttention, Shared};
use solstice::random::Key;
use solstice::serial::{
    Placeholder, SafetensorsFile, load_safetensors, load_safetensors_with, safetensors_bytes,
    safetensors_bytes_with, safetensors_named_bytes, save_safetensors, save_safetensors_with,
};
use solstice::tree::tree_equal;
use solstice::{Array, DType, Module};

fn lm(seed: u64) -> LanguageModel {
    LanguageModel::new(11, 6, Key::new(seed)).unwrap()
}

#[test]
fn names_are_dotted_key_paths_and_a_shared_tie_is_stored_once() {
    let bytes = safetensors_bytes(&lm(0)).unwrap();
    let file = SafetensorsFile::from_bytes(bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["shared.pytree.0.weight", "shared.pytree.1.bias"]);
    assert_eq!(file.metadata()["format"], "pt");
    // The placeholder names the tensor its value comes from.
    assert_eq!(
        file.metadata()["solstice.placeholder.shared.pytree.1.weight"],
        r#"{"get":null,"sources":["shared.pytree.0.weight"]}"#
    );
    assert_eq!(
        file.placeholders(),
        [Placeholder {
            name: "shared.pytree.1.weight",
            get: None,
            sources: vec!["shared.pytree.0.weight".to_string()],
        }]
    );
    let loaded = file.load(&lm(9)).unwrap();
    assert!(tree_equal(&loaded, &lm(0)).unwrap());
    let (embedding, linear) = loaded.shared.call().unwrap();
    assert!(embedding.weight.is(&linear.weight));
}

#[test]
fn a_placeholder_records_a_named_get_and_its_renamed_source() {
    let [k1, k2] = Key::new(0).split();
    let pair = (
        Linear::new(4, 3, k1).unwrap(),
        Linear::new(3, 4, k2).unwrap(),
    );
    let tied = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.t())
        .unwrap()
        .named("transpose");
    // The hook renames the source; the record follows the stored name.
    let bytes = safetensors_bytes_with(&tied, |_, name, a| {
        Ok(Some((name.replace("pytree.0", "encoder"), a.clone())))
    })
    .unwrap();
    let file = SafetensorsFile::from_bytes(bytes).unwrap();
    assert_eq!(
        file.placeholders(),
        [Placeholder {
            name: "pytree.1.weight",
            get: Some("transpose".to_string()),
            sources: vec!["encoder.weight".to_string()],
        }]
    );
}

#[test]
fn one_array_at_two_paths_is_stored_once_and_loads_as_one_array() {
    let w = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    let tree = (w.clone(), Array::scalar(5i32).unwrap(), w.clone());
    // Saving one array twice is refused by default, naming both paths.
    let err = safetensors_bytes(&tree).unwrap_err().to_string();
    assert!(
        err.contains("[0]") && err.contains("[2]") && err.contains("Shared"),
        "{err}"
    );
    let bytes = solstice::tree::allow_aliasing(|| safetensors_bytes(&tree)).unwrap();
    let file = SafetensorsFile::from_bytes(bytes).unwrap();
    assert_eq!(file.names().len(), 2);
    assert_eq!(file.ties(), [("2", "0")]);
    let like = (
        Array::zeros(&[3], DType::F32).unwrap(),
        Array::scalar(0i32).unwrap(),
        Array::zeros(&[3], DType::F32).unwrap(),
    );
    let loaded = file.load(&like).unwrap();
    assert!(loaded.0.is(&loaded.2), "the tie comes back");
    assert_eq!(loaded.2.to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(loaded.1.to_scalar::<i32>().unwrap(), 5);
}

#[test]
fn scalars_are_0_d_tensors_bool_i64_f64() {
    let attention = MultiheadAttention::new(2, 4, Key::new(0)).unwrap();
    let bytes = safetensors_bytes(&(attention, 7u8)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let p = st.tensor("0.dropout.p").unwrap();
    assert_eq!((p.dtype(), p.shape()), (safetensors::Dtype::F64, &[][..]));
    assert_eq!(p.data(), 0.0f64.to_le_bytes());
    let inference = st.tensor("0.dropout.inference").unwrap();
    assert_eq!(inference.dtype(), safetensors::Dtype::BOOL);
    assert_eq!(st.tensor("1").unwrap().dtype(), safetensors::Dtype::I64);
}

/// The bytes are the safetensors crate's own, except that `__metadata__`
/// has a fixed order (here there is one entry, so the crate's is fixed
/// too).
#[test]
fn the_bytes_are_what_the_safetensors_crate_writes() {
    let model = Linear::new(3, 4, Key::new(0)).unwrap();
    let ours =
        safetensors_bytes(&(model.clone(), Array::from_vec(vec![1u8, 2], &[2]).unwrap())).unwrap();
    let weight: Vec<u8> = model
        .weight
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let bias: Vec<u8> = model
        .bias
        .as_ref()
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let views = vec![
        (
            "0.weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 3], &weight)
                .unwrap(),
        ),
        (
            "0.bias",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &bias).unwrap(),
        ),
        (
            "1",
            safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![2], &[1, 2]).unwrap(),
        ),
    ];
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let theirs = safetensors::serialize(views, Some(metadata)).unwrap();
    assert!(
        ours == theirs,
        "{}\n{}",
        String::from_utf8_lossy(&ours[8..200]),
        String::from_utf8_lossy(&theirs[8..200])
    );
}

#[test]
fn named_arrays_are_written_as_a_tree_of_the_same_names_would_be() {
    let model = Linear::new(3, 4, Key::new(0)).unwrap();
    let bytes = Array::from_vec(vec![1u8, 2], &[2]).unwrap();
    let tree = safetensors_bytes(&(model.clone(), bytes.clone())).unwrap();
    let named = safetensors_named_bytes(&[
        ("1".to_string(), bytes.clone()),
        ("0.weight".to_string(), model.weight.clone()),
        ("0.bias".to_string(), model.bias.clone().unwrap()),
    ])
    .unwrap();
    assert!(
        tree == named,
        "the same tensors give the same file, in any order"
    );

    let twice =
        safetensors_named_bytes(&[("w".to_string(), bytes.clone()), ("w".to_string(), bytes)]);
    let err = twice.unwrap_err().to_string();
    assert!(
        err.contains("two leaves are saved under the name \"w\""),
        "{err}"
    );

    let hole = safetensors_named_bytes(&[("h".to_string(), Array::absent())]);
    let err = hole.unwrap_err();
    assert!(err.is_hole() && err.to_string().contains("\"h\""), "{err}");
}

#[test]
fn files_are_memory_mapped_and_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    // 16 MiB of f32, loaded through the memory map.
    let big = Array::full(&[4096, 1024], 0.5, DType::F32).unwrap();
    save_safetensors(&path, &(big.clone(),)).unwrap();
    let like = (Array::zeros(&[4096, 1024], DType::F32).unwrap(),);
    let loaded = load_safetensors(&path, &like).unwrap();
    assert!(tree_equal(&loaded, &(big,)).unwrap());
    // Saving again over an open (mapped) file leaves the open one intact.
    let open = SafetensorsFile::open(&path).unwrap();
    save_safetensors(&path, &(Array::zeros(&[2], DType::F32).unwrap(),)).unwrap();
    assert_eq!(open.array("0").unwrap().shape(), &[4096, 1024]);
    assert_eq!(
        SafetensorsFile::open(&path)
            .unwrap()
            .array("0")
            .unwrap()
            .shape(),
        &[2]
    );
}

#[test]
fn a_renaming_hook_reads_and_writes_another_librarys_layout() {
    // Hugging Face GPT-2 style: `transformer.h.0.attn.c_attn.weight` holds
    // the [in, out] transpose; the solstice model holds [out, in].
    #[derive(Module)]
    struct Attn {
        c_attn: Linear,
    }
    let model = Attn {
        c_attn: Linear::new(4, 12, Key::new(0)).unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hf.safetensors");
    save_safetensors_with(&path, &model, |_, name, a| {
        let hf = format!("transformer.h.0.attn.{name}");
        Ok(Some(if name.ends_with("weight") {
            (hf, a.t()?)
        } else {
            (hf, a.clone())
        }))
    })
    .unwrap();
    let file = SafetensorsFile::open(&path).unwrap();
    assert_eq!(
        file.array("transformer.h.0.attn.c_attn.weight")
            .unwrap()
            .shape(),
        &[4, 12]
    );
    let like = Attn {
        c_attn: Linear::new(4, 12, Key::new(1)).unwrap(),
    };
    let loaded = load_safetensors_with(&path, &like, |_, name, file| {
        let a = file.array(&format!("transformer.h.0.attn.{name}"))?;
        Ok(Some(if name.ends_with("weight") { a.t()? } else { a }))
    })
    .unwrap();
    assert!(tree_equal(&loaded, &model).unwrap());
    assert!(file.load_with(&like, |_, _, _| Ok(None)).is_ok());
    assert_eq!(
        file.unused().len(),
        2,
        "a hook that reads nothing leaves both"
    );
    // A hook that returns the untransposed weight is caught by the shape
    // check, naming the leaf.
    let err = load_safetensors_with(&path, &like, |_, name, file| {
        Ok(Some(file.array(&format!("transformer.h.0.attn.{name}"))?))
    })
    .unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
    assert!(
        err.to_string().contains(".c_attn.weight") && err.to_string().contains("hf.safetensors"),
        "{err}"
    );
}

// Strict loading.

fn saved<T: solstice::Tree>(tree: &T) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save_safetensors(&path, tree).unwrap();
    (dir, path)
}

#[test]
fn dtype_and_shape_mismatches_name_the_file_the_tensor_and_the_path() {
    let (_dir, path) = saved(&(Array::zeros(&[2, 3], DType::F64).unwrap(),));
    let err = load_safetensors(&path, &(Array::zeros(&[2, 3], DType::F32).unwrap(),)).unwrap_err();
    assert!(err.is_dtype_mismatch(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("m.safetensors") && msg.contains("\"0\"") && msg.contains("[0]"),
        "{msg}"
    );
    let err = load_safetensors(&path, &(Array::zeros(&[3, 2], DType::F64).unwrap(),)).unwrap_err();
    assert!(err.is_shape_mismatch(), "{err}");
}

#[test]
fn missing_and_unused_tensors_are_errors() {
    let (_dir, path) = saved(&(Dropout::new(0.5).unwrap(), Array::scalar(1.0f32).unwrap()));
    let err = load_safetensors(&path, &(Dropout::new(0.5).unwrap(),)).unwrap_err();
    assert!(
        err.to_string().contains("no leaf for") && err.to_string().contains("\"1\""),
        "{err}"
    );
    let like = (
        Dropout::new(0.5).unwrap(),
        Array::scalar(1.0f32).unwrap(),
        3i64,
    );
    let err = load_safetensors(&path, &like).unwrap_err();
    assert!(err.is_structure_mismatch(), "{err}");
    assert!(err.to_string().contains("no tensor \"2\""), "{err}");
    // Scalars come back with their values.
    let mut other = Dropout::new(0.1).unwrap();
    other.inference = true;
    let loaded = load_safetensors(&path, &(other, Array::scalar(0.0f32).unwrap())).unwrap();
    assert_eq!((loaded.0.p, loaded.0.inference), (0.5, false));
}

#[test]
fn corrupt_files_are_errors_never_panics() {
    let good = safetensors_bytes(&lm(0)).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short length", good[..5].to_vec()),
        ("header length past the end", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
            b
        }),
        ("huge header length", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("non-UTF-8 header", {
            let mut b = good.clone();
            b[9] = 0xff;
            b
        }),
        ("hostile JSON", {
            let json =
                br#"{"a":{"dtype":"F32","shape":[18446744073709551615,4],"data_offsets":[0,16]}}"#;
            let mut b = (json.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(json);
            b.extend_from_slice(&[0; 16]);
            b
        }),
        ("nested JSON", {
            let json = "[".repeat(100_000);
            let mut b = (json.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(json.as_bytes());
            b
        }),
        ("truncated data", good[..good.len() - 3].to_vec()),
    ];
    for cut in (8 + n..good.len()).step_by(7) {
        cases.push(("cut", good[..cut].to_vec()));
    }
    for (what, bytes) in cases {
        let err = match SafetensorsFile::from_bytes(bytes) {
            Ok(file) => file.load(&lm(0)).unwrap_err(),
            Err(e) => e,
        };
        assert!(err.to_string().contains("<memory>"), "{what}: {err}");
    }
}
