//! Differential tests of `solstice::random` against JAX.
//!
//! `tests/fixtures/random.json` is written by `tools/reference/random_ref.py`
//! with JAX's default threefry2x32 PRNG. Keys, splits and folds must match
//! exactly, and so must the samples: solstice reproduces JAX's bits and the
//! float arithmetic XLA:CPU performs on them, so every comparison here is
//! bitwise.

use serde_json::Value;
use solstice::DType;
use solstice::random::{self, Key};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/random.json"
);

/// A fixture case and its `data`, parsed exactly.
struct Case {
    fields: Value,
    data: Vec<f64>,
}

impl Case {
    fn name(&self) -> &str {
        self.fields["name"].as_str().unwrap_or("?")
    }

    fn key(&self) -> Key {
        let words = u32_list(&self.fields["key"]);
        Key::from_data([words[0], words[1]])
    }

    fn shape(&self) -> Vec<usize> {
        self.fields["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| usize::try_from(d.as_u64().expect("dim")).expect("usize"))
            .collect()
    }

    fn f64_field(&self, field: &str) -> f64 {
        self.fields[field].as_f64().expect(field)
    }

    fn u64_field(&self, field: &str) -> u64 {
        self.fields[field].as_u64().expect(field)
    }

    /// The data as 32-bit words (for key data).
    fn words(&self) -> Vec<u32> {
        self.data.iter().map(|&v| v as u32).collect()
    }
}

fn u32_list(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("integer")).expect("u32"))
        .collect()
}

/// The fixture's cases with the given `op` and output `dtype`.
fn cases(op: &str, dtype: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(FIXTURE).expect("read tests/fixtures/random.json");
    let root: Value = serde_json::from_str(&text).expect("parse random.json");
    let all = root["cases"].as_array().expect("cases");
    let data = exact_data(&text);
    assert_eq!(all.len(), data.len(), "one data array per case");
    let selected: Vec<Case> = all
        .iter()
        .zip(data)
        .filter(|(c, _)| c["op"] == op && c["dtype"] == dtype)
        .map(|(c, data)| Case {
            fields: c.clone(),
            data,
        })
        .collect();
    assert!(!selected.is_empty(), "no {op} {dtype} cases in the fixture");
    selected
}

/// Every `"data"` array in the fixture, in document order, each number
/// parsed by `str::parse`.
///
/// serde_json's default float parser (without its `float_roundtrip`
/// feature) can be one ulp off for 17-digit numbers, which would break exact
/// float64 comparisons; Rust's own parser is correctly rounded, so the
/// fixture's shortest round-trip reprs come back as exactly JAX's values.
fn exact_data(text: &str) -> Vec<Vec<f64>> {
    const TAG: &str = "\"data\": [";
    text.match_indices(TAG)
        .map(|(start, _)| {
            let body = &text[start + TAG.len()..];
            let body = &body[..body.find(']').expect("unterminated data array")];
            body.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<f64>().expect("number"))
                .collect()
        })
        .collect()
}

/// Asserts `got == want` element by element (bitwise for floats, via
/// `to_bits` at the call sites), naming the first difference.
fn assert_same<T: PartialEq + std::fmt::Debug>(name: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("{name}: element {i}: got {:?}, want {:?}", got[i], want[i]);
    }
}

fn key_words(keys: &[Key]) -> Vec<u32> {
    keys.iter()
        .flat_map(|k| k.data().expect("concrete key"))
        .collect()
}

#[test]
fn key_from_seed() {
    for case in cases("key", "uint32") {
        let key = Key::new(case.u64_field("seed"));
        assert_same(
            case.name(),
            &key.data().expect("concrete key"),
            &case.words(),
        );
    }
}

#[test]
fn split() {
    for case in cases("split", "uint32") {
        let key = case.key();
        let n = usize::try_from(case.u64_field("num")).expect("usize");
        let want = case.words();
        assert_same(case.name(), &key_words(&key.split_n(n)), &want);
        let fixed: Option<Vec<Key>> = match n {
            2 => Some(key.split::<2>().to_vec()),
            3 => Some(key.split::<3>().to_vec()),
            5 => Some(key.split::<5>().to_vec()),
            _ => None,
        };
        if let Some(keys) = fixed {
            assert_same(case.name(), &key_words(&keys), &want);
        }
    }
}

#[test]
fn split_of_split() {
    let [k1, k2] = Key::new(0).split();
    let [_, middle, _] = Key::new(0).split();
    let mut checked = 0;
    for case in cases("split", "uint32") {
        if case.fields["parent"].is_object() {
            assert_eq!(case.key(), middle, "{}", case.name());
            let n = usize::try_from(case.u64_field("num")).expect("usize");
            assert_same(case.name(), &key_words(&middle.split_n(n)), &case.words());
            checked += 1;
        }
    }
    assert!(checked > 0);
    // Partitionable threefry: split children are prefixes of each other.
    assert_eq!(Key::new(0).split_n(3)[..2], [k1, k2]);
}

#[test]
fn fold_in() {
    for case in cases("fold_in", "uint32") {
        let data = u32::try_from(case.u64_field("fold_data")).expect("u32");
        let key = case.key().fold_in(data);
        assert_same(
            case.name(),
            &key.data().expect("concrete key"),
            &case.words(),
        );
    }
}

#[test]
fn uniform_f32() {
    for case in cases("uniform", "float32") {
        let (lo, hi) = (case.f64_field("minval"), case.f64_field("maxval"));
        let got = random::uniform(case.key(), &case.shape(), DType::F32, lo, hi)
            .expect("uniform")
            .to_vec::<f32>()
            .expect("to_vec");
        let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u32> = case.data.iter().map(|&x| (x as f32).to_bits()).collect();
        assert_same(case.name(), &got, &want);
    }
}

#[test]
fn uniform_f64() {
    for case in cases("uniform", "float64") {
        let (lo, hi) = (case.f64_field("minval"), case.f64_field("maxval"));
        let got = random::uniform(case.key(), &case.shape(), DType::F64, lo, hi)
            .expect("uniform")
            .to_vec::<f64>()
            .expect("to_vec");
        let got: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u64> = case.data.iter().map(|x| x.to_bits()).collect();
        assert_same(case.name(), &got, &want);
    }
}

#[test]
fn normal_f32() {
    for case in cases("normal", "float32") {
        let got = random::normal(case.key(), &case.shape(), DType::F32)
            .expect("normal")
            .to_vec::<f32>()
            .expect("to_vec");
        let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u32> = case.data.iter().map(|&x| (x as f32).to_bits()).collect();
        assert_same(case.name(), &got, &want);
    }
}

#[test]
fn normal_f64() {
    for case in cases("normal", "float64") {
        let got = random::normal(case.key(), &case.shape(), DType::F64)
            .expect("normal")
            .to_vec::<f64>()
            .expect("to_vec");
        let got: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u64> = case.data.iter().map(|x| x.to_bits()).collect();
        assert_same(case.name(), &got, &want);
    }
}

#[test]
fn samples_have_the_requested_size() {
    let key = Key::new(3);
    for shape in [&[][..], &[0], &[4, 0, 2], &[2, 3]] {
        let n: usize = shape.iter().product();
        let u = random::uniform(key.clone(), shape, DType::F32, 0.0, 1.0).expect("uniform");
        assert_eq!(u.to_vec::<f32>().expect("to_vec").len(), n);
        let z = random::normal(key.clone(), shape, DType::F64).expect("normal");
        assert_eq!(z.to_vec::<f64>().expect("to_vec").len(), n);
    }
}

#[test]
fn truncated_normal_matches_jax() {
    for (dtype, name) in [(DType::F32, "float32"), (DType::F64, "float64")] {
        for case in cases("truncated_normal", name) {
            let (lo, hi) = (case.f64_field("lower"), case.f64_field("upper"));
            let got = random::truncated_normal(case.key(), lo, hi, &case.shape(), dtype)
                .expect("truncated_normal");
            assert_eq!(got.shape(), case.shape().as_slice(), "{}", case.name());
            let got = got.to_vec::<f64>().expect("to_vec");
            // Widening to f64 is exact, so this is a bitwise comparison.
            let got: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
            let want: Vec<u64> = case.data.iter().map(|x| x.to_bits()).collect();
            assert_same(case.name(), &got, &want);
        }
    }
}

#[test]
fn bernoulli_matches_jax() {
    let mut checked = 0;
    for case in cases("bernoulli", "uint32") {
        // The public sampler is JAX's default: a float32 probability.
        if case.fields["p_dtype"] != "float32" {
            continue;
        }
        let got =
            random::bernoulli(case.key(), case.f64_field("p"), &case.shape()).expect("bernoulli");
        assert_eq!(got.dtype(), DType::U8);
        assert_eq!(got.shape(), case.shape().as_slice(), "{}", case.name());
        let want: Vec<u8> = case.data.iter().map(|&v| v as u8).collect();
        assert_same(case.name(), &got.to_vec::<u8>().expect("to_vec"), &want);
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn randint_matches_jax() {
    for case in cases("randint", "int32") {
        let lo = i32::try_from(case.fields["minval"].as_i64().expect("minval")).expect("i32");
        let hi = i32::try_from(case.fields["maxval"].as_i64().expect("maxval")).expect("i32");
        let got = random::randint(case.key(), &case.shape(), lo, hi, DType::I32).expect("randint");
        assert_eq!(got.shape(), case.shape().as_slice(), "{}", case.name());
        let want: Vec<i32> = case.data.iter().map(|&v| v as i32).collect();
        assert_same(case.name(), &got.to_vec::<i32>().expect("to_vec"), &want);
    }
}

#[test]
fn permutation_matches_jax() {
    for case in cases("permutation", "int32") {
        let n = usize::try_from(case.u64_field("n")).expect("usize");
        let got = random::permutation(case.key(), n).expect("permutation");
        assert_eq!(got.dtype(), DType::I32);
        let want: Vec<i32> = case.data.iter().map(|&v| v as i32).collect();
        assert_same(case.name(), &got.to_vec::<i32>().expect("to_vec"), &want);
    }
}

#[test]
fn samplers_reject_what_jax_rejects() {
    let key = Key::new(0);
    let err = random::truncated_normal(key.clone(), -1.0, 1.0, &[2], DType::I32).unwrap_err();
    assert!(err.is_dtype_mismatch());
    assert!(
        err.to_string().starts_with("random::truncated_normal"),
        "{err}"
    );
    let err = random::randint(key.clone(), &[2], 0, 3, DType::F32).unwrap_err();
    assert!(err.is_dtype_mismatch());
    assert!(err.to_string().starts_with("random::randint"), "{err}");
    // An empty range gives `minval` everywhere, as in JAX.
    let same = random::randint(key, &[4], 9, 2, DType::I32).unwrap();
    assert_eq!(same.to_vec::<i32>().unwrap(), vec![9; 4]);
}

/// Every sampler, mapped by `vmap` over a key array, draws for each key
/// exactly what that key draws on its own: the batch is one kernel call,
/// not a loop in user code, and no bits change.
#[test]
fn samplers_under_vmap_draw_what_each_key_draws() {
    type Sampler = fn(Key) -> solstice::Result<solstice::Array>;
    let samplers: [(&str, Sampler); 7] = [
        ("uniform", |k| {
            random::uniform(k, &[3], DType::F32, -1.0, 2.0)
        }),
        ("normal", |k| random::normal(k, &[2, 2], DType::F64)),
        ("truncated_normal", |k| {
            random::truncated_normal(k, -1.0, 0.5, &[4], DType::F32)
        }),
        ("bernoulli", |k| random::bernoulli(k, 0.3, &[5])),
        ("randint", |k| random::randint(k, &[3], -4, 9, DType::I32)),
        ("permutation", |k| random::permutation(k, 6)),
        ("split", |k| k.split_batch(2).array().cloned()),
    ];
    let keys = Key::new(11).split_batch(4);
    let singles = Key::new(11).split_n(4);
    for (name, sampler) in samplers {
        let batched = solstice::vmap(|k: &Key| sampler(k.clone()))(&keys).expect(name);
        assert_eq!(batched.shape()[0], 4, "{name}");
        for (i, key) in singles.iter().enumerate() {
            let row = batched
                .take(&solstice::Array::scalar(i as u32).unwrap(), 0)
                .unwrap();
            let single = sampler(key.clone()).expect(name);
            assert_eq!(
                row.to_vec::<f64>().unwrap(),
                single.to_vec::<f64>().unwrap(),
                "{name}, key {i}"
            );
        }
        // A key array without vmap draws the same batch.
        let direct = sampler(keys.clone()).expect(name);
        assert_eq!(
            direct.to_vec::<f64>().unwrap(),
            batched.to_vec::<f64>().unwrap(),
            "{name}"
        );
    }
}
