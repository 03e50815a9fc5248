//! Property: any tree (every dtype, every scalar type, ties, nested
//! `Option`/`Vec`/tuples) survives a round trip through `.eqx` and through
//! safetensors bit for bit, loaded into a `like` of zeros.

use proptest::prelude::*;
use solstice::nn::Shared;
use solstice::serial::{
    SafetensorsFile, safetensors_bytes, tree_deserialise_leaves_from, tree_serialise_leaves_to,
};
use solstice::tree::{KeyPath, LeafMut, Scalar, allow_aliasing, tree_equal, tree_map};
use solstice::{Array, DType, Module, Tree};

#[derive(Module)]
struct Random {
    arrays: Vec<Option<Array>>,
    signed: (bool, i8, i16, i32, i64, isize),
    unsigned: (u8, u16, u32, u64, usize, f32, f64),
    nested: Vec<(Option<Array>, Vec<Array>, Option<f64>)>,
    tied: Shared<(Array, Array)>,
    /// The same array as `arrays[0]` where that exists: a tie by identity.
    alias: Option<Array>,
}

const DTYPES: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::I64,
    DType::I32,
    DType::U32,
    DType::U8,
];

/// An array of dtype `DTYPES[d]` and `shape` whose elements are any bit
/// patterns (NaNs with payloads included).
fn array(d: usize, shape: &[usize], bits: &[u64]) -> Array {
    let n: usize = shape.iter().product();
    let b = |i: usize| bits[i % bits.len()];
    match DTYPES[d] {
        DType::F32 => Array::from_vec((0..n).map(|i| f32::from_bits(b(i) as u32)).collect(), shape),
        DType::F64 => Array::from_vec((0..n).map(|i| f64::from_bits(b(i))).collect(), shape),
        DType::I64 => Array::from_vec((0..n).map(|i| b(i) as i64).collect(), shape),
        DType::I32 => Array::from_vec((0..n).map(|i| b(i) as i32).collect(), shape),
        DType::U32 => Array::from_vec((0..n).map(|i| b(i) as u32).collect(), shape),
        DType::U8 => Array::from_vec((0..n).map(|i| b(i) as u8).collect(), shape),
    }
    .unwrap()
}

type Spec = (usize, Vec<usize>, Vec<u64>);

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..DTYPES.len(),
        prop::collection::vec(0usize..4, 0..4),
        prop::collection::vec(any::<u64>(), 1..8),
    )
}

fn from(s: &Spec) -> Array {
    array(s.0, &s.1, &s.2)
}

prop_compose! {
    fn random()(
        arrays in prop::collection::vec(prop::option::of(spec()), 0..4),
        signed in (any::<bool>(), any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>(), any::<isize>()),
        unsigned in (any::<u8>(), any::<u16>(), any::<u32>(), 0..=i64::MAX as u64, 0..=i64::MAX as usize,
                     any::<u32>(), any::<u64>()),
        nested in prop::collection::vec(
            (prop::option::of(spec()), prop::collection::vec(spec(), 0..3), prop::option::of(any::<u64>())),
            0..3,
        ),
        tied in spec(),
        alias in any::<bool>(),
    ) -> Random {
        let arrays: Vec<Option<Array>> = arrays.iter().map(|s| s.as_ref().map(from)).collect();
        let alias = match arrays.first() {
            Some(Some(a)) if alias => Some(a.clone()),
            _ => None,
        };
        let (u8_, u16_, u32_, u64_, usize_, f32_, f64_) = unsigned;
        Random {
            arrays,
            signed,
            unsigned: (u8_, u16_, u32_, u64_, usize_, f32::from_bits(f32_), f64::from_bits(f64_)),
            nested: nested
                .iter()
                .map(|(a, v, x)| (a.as_ref().map(from), v.iter().map(from).collect(), x.map(f64::from_bits)))
                .collect(),
            tied: Shared::new((from(&tied), from(&tied)), |p| &mut p.1, |p| p.0.clone()).unwrap(),
            alias,
        }
    }
}

/// The same structure with every array zero and every scalar zero/false:
/// a `like` that holds none of the values.
fn zeros<T: Tree>(tree: &T) -> T {
    let mut out = tree_map(tree, |_, a| {
        if a.is_hole() {
            Ok(a.clone())
        } else {
            Array::zeros(a.shape(), a.dtype())
        }
    })
    .unwrap();
    out.visit_leaves_mut(&mut KeyPath::root(), &mut |_, leaf| {
        if let LeafMut::Scalar(s) = leaf {
            let zero = match s.get() {
                Scalar::Bool(_) => Scalar::Bool(false),
                Scalar::Int(_) => Scalar::Int(0),
                Scalar::Float(_) => Scalar::Float(0.0),
            };
            s.set(zero).unwrap();
        }
    });
    out
}

fn eqx_bytes<T: Tree>(tree: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // The random trees hold one array at two paths on purpose.
    allow_aliasing(|| tree_serialise_leaves_to(&mut out, tree)).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn eqx_round_trips_bit_for_bit(tree in random()) {
        let bytes = eqx_bytes(&tree);
        let loaded = tree_deserialise_leaves_from(&bytes[..], &zeros(&tree)).unwrap();
        prop_assert!(tree_equal(&loaded, &tree).unwrap());
        prop_assert!(eqx_bytes(&loaded) == bytes);
        let (a, b) = loaded.tied.call().unwrap();
        prop_assert!(a.is(&b));
    }

    #[test]
    fn safetensors_round_trips_bit_for_bit_with_ties(tree in random()) {
        let bytes = allow_aliasing(|| safetensors_bytes(&tree)).unwrap();
        let file = SafetensorsFile::from_bytes(bytes.clone()).unwrap();
        let loaded = file.load(&zeros(&tree)).unwrap();
        prop_assert!(tree_equal(&loaded, &tree).unwrap());
        prop_assert!(allow_aliasing(|| safetensors_bytes(&loaded)).unwrap() == bytes);
        let (a, b) = loaded.tied.call().unwrap();
        prop_assert!(a.is(&b));
        if let Some(alias) = &loaded.alias {
            prop_assert!(alias.is(loaded.arrays[0].as_ref().unwrap()));
        }
    }
}

#[test]
fn integers_past_i64_are_refused_not_wrapped() {
    let mut out = Vec::new();
    let err = tree_serialise_leaves_to(&mut out, &(u64::MAX,)).unwrap_err();
    assert!(err.to_string().contains("[0]"), "{err}");
    assert!(safetensors_bytes(&(u64::MAX,)).is_err());
}
