//! Every primitive's shape rule against its eager kernel on random inputs.
//!
//! `cases!` writes an exhaustive `match` over the listed patterns, so a new
//! primitive does not compile here until it has a case; each case's
//! primitive is checked to match the pattern it is listed under.

use std::sync::Arc;

use super::prim::{CmpOp, CustomRule, Prim, RandomOp, RoundMode};
use super::shape_rules::Aval;
use super::{Array, DType};
use crate::error::Result;

/// A small xorshift generator: the tests need variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A dimension in `1..=4`.
    fn dim(&mut self) -> usize {
        1 + (self.next() % 4) as usize
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn floats(&mut self, shape: &[usize], dtype: DType) -> Array {
        let n = shape.iter().product();
        let data: Vec<f64> = (0..n).map(|_| self.unit() * 4.0 - 2.0).collect();
        Array::from_vec(data, shape)
            .and_then(|a| a.astype(dtype))
            .expect("random floats")
    }

    /// Integers in `1..=hi` (never zero, so integer divisions are defined).
    fn ints(&mut self, shape: &[usize], hi: usize, dtype: DType) -> Array {
        let n = shape.iter().product();
        let data: Vec<i64> = (0..n).map(|_| 1 + self.below(hi) as i64).collect();
        Array::from_vec(data, shape)
            .and_then(|a| a.astype(dtype))
            .expect("random integers")
    }

    /// Indices in `0..len`.
    fn indices(&mut self, n: usize, len: usize) -> Array {
        let data: Vec<i64> = (0..n).map(|_| self.below(len) as i64).collect();
        Array::from_vec(data, &[n]).expect("random indices")
    }

    fn mask(&mut self, shape: &[usize]) -> Array {
        let n = shape.iter().product();
        let data: Vec<u8> = (0..n).map(|_| self.below(2) as u8).collect();
        Array::from_vec(data, shape).expect("random mask")
    }

    fn keys(&mut self, batch: &[usize]) -> Array {
        let mut shape = batch.to_vec();
        shape.push(2);
        let n: usize = shape.iter().product();
        let data: Vec<u32> = (0..n).map(|_| self.next() as u32).collect();
        Array::from_vec(data, &shape).expect("random keys")
    }
}

macro_rules! cases {
    ($rng:ident; $($pat:pat => [$(($prim:expr, $inputs:expr $(,)?)),+ $(,)?]),+ $(,)?) => {
        /// Compiles only while every primitive has a case below.
        fn covered(prim: &Prim) {
            match prim {
                $($pat => {})+
            }
        }

        /// Each primitive with random inputs.
        fn cases($rng: &mut Rng) -> Vec<(Prim, Vec<Array>)> {
            let mut out = Vec::new();
            $($(
                let prim: Prim = $prim;
                assert!(
                    matches!(prim, $pat),
                    "the case for {} is listed under another primitive",
                    prim.name()
                );
                out.push((prim, $inputs));
            )+)+
            out
        }
    };
}

const FLOATS: [DType; 2] = [DType::F32, DType::F64];

fn float(rng: &mut Rng) -> DType {
    FLOATS[rng.below(2)]
}

fn any_numeric(rng: &mut Rng) -> DType {
    [DType::F32, DType::F64, DType::I64, DType::I32, DType::U32][rng.below(5)]
}

fn shape(rng: &mut Rng, rank: usize) -> Vec<usize> {
    (0..rank).map(|_| rng.dim()).collect()
}

/// Two shapes that broadcast: `[a, b]` against `[b]`, `[a, 1]` or `[1, b]`.
fn broadcast_pair(rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let (a, b) = (rng.dim(), rng.dim());
    let other = [vec![b], vec![a, 1], vec![1, b], vec![a, b]][rng.below(4)].clone();
    if rng.below(2) == 0 {
        (vec![a, b], other)
    } else {
        (other, vec![a, b])
    }
}

fn unary(rng: &mut Rng) -> Vec<Array> {
    let (r, t) = (1 + rng.below(3), float(rng));
    let s = shape(rng, r);
    vec![rng.floats(&s, t)]
}

fn values(rng: &mut Rng, shape: &[usize], dtype: DType) -> Array {
    if dtype.is_float() {
        rng.floats(shape, dtype)
    } else {
        rng.ints(shape, 9, dtype)
    }
}

fn binary(rng: &mut Rng, dtype: DType) -> Vec<Array> {
    let (s1, s2) = broadcast_pair(rng);
    vec![values(rng, &s1, dtype), values(rng, &s2, dtype)]
}

fn custom() -> CustomRule {
    CustomRule {
        forward: Arc::new(|x: &Array| x.sum(&[0])?.exp()),
        backward: Arc::new(|_: &Array, _: &Array, ct: &Array| Ok(ct.clone())),
    }
}

cases! { rng;
    Prim::Neg => [(Prim::Neg, unary(rng))],
    Prim::Exp => [(Prim::Exp, unary(rng))],
    Prim::Log => [(Prim::Log, unary(rng))],
    Prim::Tanh => [(Prim::Tanh, unary(rng))],
    Prim::Sqrt => [(Prim::Sqrt, unary(rng))],
    Prim::Sin => [(Prim::Sin, unary(rng))],
    Prim::Cos => [(Prim::Cos, unary(rng))],
    Prim::Abs => [(Prim::Abs, unary(rng))],
    Prim::Sign => [(Prim::Sign, unary(rng))],
    Prim::Erf => [(Prim::Erf, unary(rng))],
    Prim::Add => [(Prim::Add, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Sub => [(Prim::Sub, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Mul => [(Prim::Mul, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Div => [(Prim::Div, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Maximum => [(Prim::Maximum, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Minimum => [(Prim::Minimum, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Compare(_) => [
        (Prim::Compare(CmpOp::Lt), { let t = any_numeric(rng); binary(rng, t) }),
        (Prim::Compare(CmpOp::Eq), { let t = any_numeric(rng); binary(rng, t) }),
    ],
    Prim::Select => [(Prim::Select, {
        let (s1, s2) = broadcast_pair(rng);
        let t = any_numeric(rng);
        vec![rng.mask(&s1), values(rng, &s2, t), values(rng, &s1, t)]
    })],
    Prim::Reshape(_) => [(
        Prim::Reshape(vec![6, 2]),
        { let t = float(rng); vec![rng.floats(&[3, 4], t)] },
    )],
    Prim::Permute(_) => [(
        Prim::Permute(vec![2, 0, 1]),
        { let t = any_numeric(rng); let s = shape(rng, 3); vec![rng.floats(&s, DType::F64).astype(t).unwrap()] },
    )],
    Prim::BroadcastTo(_) => [(
        Prim::BroadcastTo(vec![2, 3, 4]),
        { let t = float(rng); vec![rng.floats(&[3, 1], t)] },
    )],
    Prim::Convert(_) => [
        (Prim::Convert(DType::I32), unary(rng)),
        (Prim::Convert(DType::F64), { let s = shape(rng, 2); vec![rng.ints(&s, 9, DType::U8)] }),
    ],
    Prim::Sum(_) => [
        (Prim::Sum(vec![0, 2]), { let t = any_numeric(rng); let s = shape(rng, 3); vec![rng.ints(&s, 9, t)] }),
        (Prim::Sum(vec![1]), { let t = float(rng); let s = shape(rng, 2); vec![rng.floats(&s, t)] }),
    ],
    Prim::Max(_) => [(Prim::Max(vec![1]), { let t = any_numeric(rng); let s = shape(rng, 3); vec![rng.ints(&s, 9, t)] })],
    Prim::MatMul => [(Prim::MatMul, {
        let t = float(rng);
        let (b, m, k, n) = (rng.dim(), rng.dim(), rng.dim(), rng.dim());
        vec![rng.floats(&[b, m, k], t), rng.floats(&[b, k, n], t)]
    })],
    Prim::Take(_) => [(Prim::Take(1), {
        let s = shape(rng, 3);
        let n = rng.dim();
        let t = float(rng);
        vec![rng.floats(&s, t), rng.indices(n, s[1])]
    })],
    Prim::IndexAdd(_) => [(Prim::IndexAdd(0), {
        let s = shape(rng, 2);
        let n = rng.dim();
        let t = float(rng);
        vec![rng.floats(&s, t), rng.indices(n, s[0]), rng.floats(&[n, s[1]], t)]
    })],
    Prim::StopGradient => [(Prim::StopGradient, unary(rng))],
    Prim::CheckIndices(_) => [(Prim::CheckIndices(5), vec![rng.indices(4, 5).reshape(&[2, 2]).unwrap()])],
    Prim::Random(_) => [
        (Prim::Random(RandomOp::Split(3)), { let b = shape(rng, 1); vec![rng.keys(&b)] }),
        (Prim::Random(RandomOp::FoldIn(7)), vec![rng.keys(&[])]),
        (Prim::Random(RandomOp::Uniform { shape: vec![2, 3], dtype: DType::F64, minval: -1.0, maxval: 1.0 }), { let b = shape(rng, 1); vec![rng.keys(&b)] }),
        (Prim::Random(RandomOp::Normal { shape: vec![4], dtype: DType::F32 }), vec![rng.keys(&[2, 2])]),
        (Prim::Random(RandomOp::TruncatedNormal { shape: vec![3], dtype: DType::F32, lower: -2.0, upper: 2.0 }), vec![rng.keys(&[])]),
        (Prim::Random(RandomOp::Bernoulli { shape: vec![5], p: 0.3, wide: false }), vec![rng.keys(&[2])]),
        (Prim::Random(RandomOp::Randint { shape: vec![2, 2], minval: 0, maxval: 9 }), vec![rng.keys(&[])]),
        (Prim::Random(RandomOp::Permutation(6)), vec![rng.keys(&[3])]),
    ],
    Prim::Custom(_) => [(Prim::Custom(custom()), unary(rng))],
    Prim::Softmax => [(Prim::Softmax, unary(rng))],
    Prim::LogSoftmax => [(Prim::LogSoftmax, unary(rng))],
    Prim::Logsumexp => [(Prim::Logsumexp, unary(rng))],
    Prim::SoftmaxCrossEntropy => [(Prim::SoftmaxCrossEntropy, {
        let (b, n, t) = (rng.dim(), rng.dim(), float(rng));
        vec![rng.floats(&[b, n], t), rng.indices(b, n).astype(DType::I32).unwrap()]
    })],
    Prim::SoftmaxCrossEntropyGrad => [(Prim::SoftmaxCrossEntropyGrad, {
        let (b, n, t) = (rng.dim(), rng.dim(), float(rng));
        vec![rng.floats(&[b, n], t), rng.indices(b, n), rng.floats(&[b], t)]
    })],
    Prim::Standardize { .. } => [
        (Prim::Standardize { axes: 1, eps: 1e-5 }, unary(rng)),
        (Prim::Standardize { axes: 2, eps: 0.0 }, { let t = float(rng); let s = shape(rng, 3); vec![rng.floats(&s, t)] }),
    ],
    Prim::SoftmaxGrad => [(Prim::SoftmaxGrad, { let u = unary(rng); vec![u[0].clone(), rng.floats(u[0].shape(), u[0].dtype())] })],
    Prim::LogSoftmaxGrad => [(Prim::LogSoftmaxGrad, { let u = unary(rng); vec![u[0].clone(), rng.floats(u[0].shape(), u[0].dtype())] })],
    Prim::LogsumexpGrad => [(Prim::LogsumexpGrad, {
        let (b, n, t) = (rng.dim(), rng.dim(), float(rng));
        vec![rng.floats(&[b, n], t), rng.floats(&[b], t), rng.floats(&[b], t)]
    })],
    Prim::StandardizeGrad { .. } => [
        (Prim::StandardizeGrad { axes: 1, eps: 1e-5 }, { let u = unary(rng); vec![u[0].clone(), rng.floats(u[0].shape(), u[0].dtype())] }),
        (Prim::StandardizeGrad { axes: 2, eps: 0.0 }, { let t = float(rng); let s = shape(rng, 3); vec![rng.floats(&s, t), rng.floats(&s, t)] }),
    ],
    Prim::AdamUpdate => [(Prim::AdamUpdate, {
        let (t, s) = (float(rng), shape(rng, 2));
        let mut inputs: Vec<Array> = (0..4).map(|_| rng.floats(&s, t)).collect();
        inputs.extend((0..10).map(|_| rng.floats(&[], t)));
        inputs
    })],
    Prim::GeluTanh => [(Prim::GeluTanh, unary(rng))],
    Prim::GeluTanhGrad => [(Prim::GeluTanhGrad, unary(rng))],
    Prim::Log1p => [(Prim::Log1p, unary(rng))],
    Prim::Expm1 => [(Prim::Expm1, unary(rng))],
    Prim::Round(_) => [
        (Prim::Round(RoundMode::Floor), unary(rng)),
        (Prim::Round(RoundMode::Ceil), unary(rng)),
        (Prim::Round(RoundMode::Nearest), unary(rng)),
    ],
    Prim::Pow => [(Prim::Pow, { let t = float(rng); binary(rng, t) })],
    Prim::Rem => [(Prim::Rem, { let t = any_numeric(rng); binary(rng, t) })],
    Prim::Min(_) => [(Prim::Min(vec![0, 1]), { let t = any_numeric(rng); let s = shape(rng, 3); vec![rng.ints(&s, 9, t)] })],
    Prim::ArgExtreme { .. } => [
        (Prim::ArgExtreme { axis: 1, min: false }, { let s = shape(rng, 2); let t = float(rng); vec![rng.floats(&s, t)] }),
        (Prim::ArgExtreme { axis: 0, min: true }, { let s = shape(rng, 3); vec![rng.ints(&s, 9, DType::I64)] }),
    ],
    Prim::Argsort { .. } => [
        (Prim::Argsort { axis: 1, descending: false, k: 1 }, { let s = shape(rng, 2); let t = float(rng); vec![rng.floats(&s, t)] }),
        (Prim::Argsort { axis: 0, descending: true, k: 2 }, { let s = vec![3, rng.dim()]; vec![rng.ints(&s, 9, DType::I32)] }),
    ],
    Prim::Cumsum { .. } => [
        (Prim::Cumsum { axis: 0, reverse: false }, unary(rng)),
        (Prim::Cumsum { axis: 1, reverse: true }, { let s = shape(rng, 2); let t = any_numeric(rng); vec![rng.ints(&s, 9, t)] }),
    ],
    Prim::Concat(_) => [(Prim::Concat(1), {
        let (a, t) = (rng.dim(), float(rng));
        let (b, c) = (rng.dim(), rng.dim());
        vec![rng.floats(&[a, b], t), rng.floats(&[a, c], t), rng.floats(&[a, 1], t)]
    })],
}

fn aval(a: &Array) -> Aval {
    Aval::new(a.shape().to_vec(), a.dtype())
}

/// The primitive run for real: its kernel, or a custom rule's function.
fn run(prim: &Prim, inputs: &[Array]) -> Result<Array> {
    if let Prim::Custom(rule) = prim {
        return (rule.forward)(&inputs[0]);
    }
    let tensors = inputs
        .iter()
        .map(|a| a.tensor(prim.name()))
        .collect::<Result<Vec<_>>>()?;
    Array::from_tensor(super::eval_kernel(prim, &tensors)?)
}

#[test]
fn every_shape_rule_matches_its_kernel() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for _ in 0..20 {
        for (prim, inputs) in cases(&mut rng) {
            covered(&prim);
            let avals: Vec<Aval> = inputs.iter().map(aval).collect();
            let rule = prim
                .abstract_eval(&avals)
                .unwrap_or_else(|e| panic!("{}'s rule rejects {avals:?}: {e}", prim.name()));
            let out = run(&prim, &inputs)
                .unwrap_or_else(|e| panic!("{}'s kernel fails on {avals:?}: {e}", prim.name()));
            assert_eq!(
                rule,
                aval(&out),
                "{} on {avals:?}: the rule and the kernel disagree",
                prim.name()
            );
            checked += 1;
        }
    }
    assert!(checked > 20 * 50, "only {checked} cases ran");
}

#[test]
fn shape_rules_reject_what_the_kernels_cannot_take() {
    let f = |shape: &[usize]| Aval::new(shape.to_vec(), DType::F32);
    let bad = [
        (Prim::Add, vec![f(&[2, 3]), f(&[4])]),
        (Prim::Add, vec![f(&[2]), Aval::new(vec![2], DType::F64)]),
        (Prim::MatMul, vec![f(&[2, 3]), f(&[4, 5])]),
        (Prim::Reshape(vec![5]), vec![f(&[2, 3])]),
        (Prim::Sum(vec![2]), vec![f(&[2, 3])]),
        (Prim::Exp, vec![Aval::new(vec![2], DType::I32)]),
        (Prim::Take(0), vec![f(&[3]), f(&[2])]),
        (Prim::Concat(0), vec![f(&[2, 3]), f(&[2, 4])]),
        (Prim::Random(RandomOp::FoldIn(1)), vec![f(&[2])]),
    ];
    for (prim, avals) in bad {
        let err = prim
            .abstract_eval(&avals)
            .expect_err(&format!("{} accepted {avals:?}", prim.name()));
        assert!(
            err.is_shape_mismatch() || err.is_dtype_mismatch(),
            "{}: {err}",
            prim.name()
        );
        assert!(err.to_string().starts_with(prim.name()), "{err}");
    }
}
