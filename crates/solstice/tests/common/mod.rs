//! Helpers shared by the integration tests: fixture loading and closeness.
#![allow(dead_code)]

pub mod lm;
pub mod ops;
pub mod optim;

use serde_json::Value;
use solstice::{Array, DType};

/// A fixture written by `tools/reference/generate.py` with real JAX/Equinox.
pub struct Fixture {
    json: Value,
}

impl Fixture {
    pub fn load(file: &str) -> Fixture {
        let path = format!("{}/../../tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Fixture {
            json: serde_json::from_str(&text).expect("fixture is JSON"),
        }
    }

    /// Every case, in file order.
    pub fn cases(&self) -> Vec<Case<'_>> {
        self.json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(Case)
            .collect()
    }

    pub fn case(&self, name: &str) -> Case<'_> {
        let case = self.json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"));
        Case(case)
    }
}

pub struct Case<'a>(pub &'a Value);

impl Case<'_> {
    /// An array of the case, as the dtype recorded.
    pub fn array(&self, key: &str) -> Array {
        let v = &self.0["arrays"][key];
        assert!(!v.is_null(), "no array {key}");
        to_array(v)
    }

    pub fn str(&self, key: &str) -> String {
        self.0[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key}"))
            .to_string()
    }
}

pub fn to_array(v: &Value) -> Array {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"].as_array().unwrap();
    match v["dtype"].as_str().unwrap() {
        "float32" => Array::from_vec(
            data.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            &shape,
        ),
        "float64" => Array::from_vec(data.iter().map(|x| x.as_f64().unwrap()).collect(), &shape),
        "int32" => Array::from_vec(
            data.iter().map(|x| x.as_i64().unwrap() as i32).collect(),
            &shape,
        ),
        "uint32" => Array::from_vec(
            data.iter().map(|x| x.as_u64().unwrap() as u32).collect(),
            &shape,
        ),
        "int64" => Array::from_vec(data.iter().map(|x| x.as_i64().unwrap()).collect(), &shape),
        other => panic!("unknown dtype {other}"),
    }
    .unwrap()
}

/// Asserts equal shapes and `|a - b| <= tol * max(1, |b|)` elementwise.
#[track_caller]
pub fn assert_close(actual: &Array, expected: &Array, tol: f64, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    let a = actual.to_vec::<f64>().unwrap();
    let b = expected.to_vec::<f64>().unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: element {i} is {x}, expected {y} (tolerance {tol})"
        );
    }
}

/// An f64 array from a list, for tests.
pub fn f64s(data: &[f64], shape: &[usize]) -> Array {
    Array::from_vec(data.to_vec(), shape).unwrap()
}

pub fn f32s(data: &[f32], shape: &[usize]) -> Array {
    Array::from_vec(data.to_vec(), shape).unwrap()
}

pub fn dtype_of(a: &Array) -> DType {
    a.dtype()
}

/// Same shape and dtype; NaN where JAX has NaN, infinities equal, other
/// values within `tol` relative.
#[track_caller]
pub fn assert_matches(actual: &Array, expected: &Array, tol: f64, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    assert_eq!(actual.dtype(), expected.dtype(), "{what}: dtype");
    let (a, e) = (
        actual.to_vec::<f64>().unwrap(),
        expected.to_vec::<f64>().unwrap(),
    );
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let ok = if y.is_nan() {
            x.is_nan()
        } else if y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= tol * y.abs().max(1.0)
        };
        assert!(
            ok,
            "{what}: element {i} is {x}, JAX gives {y}\n{a:?}\n{e:?}"
        );
    }
}
