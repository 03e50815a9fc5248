//! Nothing lost, nothing trusted: a save killed midway leaves the old file,
//! hostile `.eqx` bytes are errors (checked before allocating), and the
//! fuzzers' seed corpora are valid files.

#[path = "../../../fuzz/fuzz_targets/common.rs"]
mod fuzz_like;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use solstice::serial::{
    npy, safetensors_bytes, tree_deserialise_leaves, tree_deserialise_leaves_from,
    tree_serialise_leaves, tree_serialise_leaves_to,
};
use solstice::tree::tree_equal;
use solstice::{Array, DType};

const CHILD: &str = "SOLSTICE_SERIAL_CHILD_SAVE";

/// In the child process: saves about 400 MB (one 4 MiB array, 100 times)
/// over the file named by the environment, until killed.
#[test]
fn child_large_save() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let block = Array::full(&[1 << 20], 1.0, DType::F32).unwrap();
    // One array a hundred times keeps the child small; the guard against
    // aliased leaves is lifted for it.
    let tree = vec![block; 100];
    solstice::tree::allow_aliasing(|| tree_serialise_leaves(PathBuf::from(path), &tree)).unwrap();
}

#[test]
fn a_save_killed_midway_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.eqx");
    let old = (Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap(), 3i64);
    tree_serialise_leaves(&path, &old).unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_large_save", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the temporary file has some megabytes in it: midway.
    let started = Instant::now();
    let temp = loop {
        let size = |t: &PathBuf| std::fs::metadata(t).map(|m| m.len()).unwrap_or(0);
        match temp_file(dir.path()) {
            Some(t) if size(&t) > 8 << 20 => break t,
            _ => {}
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no temporary file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        temp.exists(),
        "the kill came midway, leaving the temporary file"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the old file is intact"
    );
    let loaded = tree_deserialise_leaves(&path, &old).unwrap();
    assert!(tree_equal(&loaded, &old).unwrap());
}

fn temp_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tmp"))
}

/// A record header declaring `shape` for descr `<f4`, with no data.
fn record(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((dict.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.push(b'\n');
    out
}

#[test]
fn hostile_eqx_records_are_errors_before_anything_is_allocated() {
    let like = (Array::zeros(&[2, 3], DType::F32).unwrap(),);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "huge shape",
            record("<f4", "(1099511627776, 1099511627776)"),
        ),
        (
            "overflowing shape",
            record("<f4", "(4294967296, 4294967296, 4294967296)"),
        ),
        (
            "shape beyond usize",
            record("<f4", "(99999999999999999999999,)"),
        ),
        ("big-endian", record(">f4", "(2, 3)")),
        ("structured dtype", record("[('a', '<f4')]", "(2, 3)")),
        ("fortran order", {
            let mut r = record("<f4", "(2, 3)");
            let at = r.windows(5).position(|w| w == b"False").unwrap();
            r.splice(at..at + 5, b"True ".iter().copied());
            r
        }),
        ("corrupt magic", b"\x93NUMPX\x01\x00\x00\x00".to_vec()),
        (
            "header length past the end",
            b"\x93NUMPY\x01\x00\xff\x7f{'descr'".to_vec(),
        ),
        ("not a dict", {
            let mut r = record("<f4", "(2, 3)");
            r[10] = b'[';
            r
        }),
        ("non-ASCII header", {
            let mut r = record("<f4", "(2, 3)");
            r[12] = 0xe9;
            r
        }),
        ("declared data past the end", record("<f4", "(2, 3)")),
    ];
    for (what, bytes) in cases {
        let err = tree_deserialise_leaves_from(&bytes[..], &like).unwrap_err();
        assert!(err.to_string().contains("[0]"), "{what}: {err}");
        // Through a file, the error names the file too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.eqx");
        std::fs::write(&path, &bytes).unwrap();
        let err = tree_deserialise_leaves(&path, &like).unwrap_err();
        assert!(err.to_string().contains("bad.eqx"), "{what}: {err}");
    }
    // Without a `like`, a record's size is checked before it is read.
    let mut r: &[u8] = &record("<f4", "(4294967296, 4294967296, 4294967296)");
    assert!(npy::read_header(&mut r).is_err());
    let mut r: &[u8] = &record("<f4", "(1099511627776, 16)");
    let header = npy::read_header(&mut r).unwrap().unwrap();
    let len = header.data_len().unwrap();
    assert!(
        npy::read_data(&mut r, len)
            .unwrap_err()
            .to_string()
            .contains("truncated")
    );
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/../../fuzz/corpus/{target}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// The fuzzers' seeds: valid files for their `like`, which the fuzzer
/// mutates. `SOLSTICE_WRITE_FIXTURES=1` rewrites them.
#[test]
fn the_fuzz_seed_corpora_are_valid_files_for_the_fuzz_like() {
    let like = fuzz_like::like();
    let mut eqx = Vec::new();
    tree_serialise_leaves_to(&mut eqx, &like).unwrap();
    let st = safetensors_bytes(&like).unwrap();
    if std::env::var_os("SOLSTICE_WRITE_FIXTURES").is_some() {
        std::fs::write(corpus("eqx_reader").join("like.eqx"), &eqx).unwrap();
        std::fs::write(corpus("safetensors_loader").join("like.safetensors"), &st).unwrap();
    }
    assert!(std::fs::read(corpus("eqx_reader").join("like.eqx")).unwrap() == eqx);
    assert!(std::fs::read(corpus("safetensors_loader").join("like.safetensors")).unwrap() == st);
    assert!(tree_deserialise_leaves_from(&eqx[..], &like).is_ok());
    let file = solstice::serial::SafetensorsFile::from_bytes(st).unwrap();
    assert!(file.load(&like).is_ok());
}
