//! [`RandomOp`]: what a random primitive draws for one key.
//!
//! Every sampler is one primitive, `Prim::Random(op)`, over key words
//! `u32[..., 2]`. A concrete key draws directly; a key array or a key traced
//! by `vmap` goes through the primitive, whose kernel draws for each key of
//! the batch. That is how `vmap` over keys builds ensembles.

use super::{sample, threefry};
use crate::array::{Array, DType};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RandomOp {
    /// `n` keys: `u32[n, 2]`.
    Split(usize),
    /// A key with data mixed in: `u32[2]`.
    FoldIn(u32),
    Uniform {
        shape: Vec<usize>,
        dtype: DType,
        minval: f64,
        maxval: f64,
    },
    Normal {
        shape: Vec<usize>,
        dtype: DType,
    },
    TruncatedNormal {
        shape: Vec<usize>,
        dtype: DType,
        lower: f64,
        upper: f64,
    },
    /// `u8` 0/1 with mean `p`, from f32 bits (`wide`: f64 bits, as JAX in
    /// 64-bit mode).
    Bernoulli {
        shape: Vec<usize>,
        p: f64,
        wide: bool,
    },
    Randint {
        shape: Vec<usize>,
        minval: i32,
        maxval: i32,
    },
    /// A permutation of `0..n` as `i32[n]`.
    Permutation(usize),
}

impl RandomOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            RandomOp::Split(_) => "random::split",
            RandomOp::FoldIn(_) => "random::fold_in",
            RandomOp::Uniform { .. } => "random::uniform",
            RandomOp::Normal { .. } => "random::normal",
            RandomOp::TruncatedNormal { .. } => "random::truncated_normal",
            RandomOp::Bernoulli { .. } => "random::bernoulli",
            RandomOp::Randint { .. } => "random::randint",
            RandomOp::Permutation(_) => "random::permutation",
        }
    }

    /// The shape and dtype of one key's draw.
    pub(crate) fn draw_shape(&self) -> (Vec<usize>, DType) {
        match self {
            RandomOp::Split(n) => (vec![*n, 2], DType::U32),
            RandomOp::FoldIn(_) => (vec![2], DType::U32),
            RandomOp::Uniform { shape, dtype, .. }
            | RandomOp::Normal { shape, dtype }
            | RandomOp::TruncatedNormal { shape, dtype, .. } => (shape.clone(), *dtype),
            RandomOp::Bernoulli { shape, .. } => (shape.clone(), DType::U8),
            RandomOp::Randint { shape, .. } => (shape.clone(), DType::I32),
            RandomOp::Permutation(n) => (vec![*n], DType::I32),
        }
    }

    /// One key's draw.
    pub(crate) fn draw(&self, key: [u32; 2]) -> Result<Array> {
        // The draw holds 32 or 64 random bits per element besides its values:
        // too large a draw is an error, not an abort.
        let (shape, dtype) = self.draw_shape();
        let count = crate::array::element_count(self.name(), &shape)?;
        crate::array::probe_alloc(self.name(), count, 8 + dtype.size())?;
        match self {
            RandomOp::Split(n) => Array::from_vec(
                threefry::split(key, *n).into_iter().flatten().collect(),
                &[*n, 2],
            ),
            RandomOp::FoldIn(data) => Array::from_vec(threefry::fold_in(key, *data).to_vec(), &[2]),
            RandomOp::Uniform {
                shape,
                dtype,
                minval,
                maxval,
            } => {
                if *dtype == DType::F32 {
                    Array::from_vec(
                        sample::uniform_f32(key, shape, *minval as f32, *maxval as f32),
                        shape,
                    )
                } else {
                    Array::from_vec(sample::uniform_f64(key, shape, *minval, *maxval), shape)
                }
            }
            RandomOp::Normal { shape, dtype } => {
                if *dtype == DType::F32 {
                    Array::from_vec(sample::normal_f32(key, shape), shape)
                } else {
                    Array::from_vec(sample::normal_f64(key, shape), shape)
                }
            }
            RandomOp::TruncatedNormal {
                shape,
                dtype,
                lower,
                upper,
            } => {
                if *dtype == DType::F32 {
                    let draws =
                        sample::truncated_normal_f32(key, shape, *lower as f32, *upper as f32);
                    Array::from_vec(draws, shape)
                } else {
                    Array::from_vec(
                        sample::truncated_normal_f64(key, shape, *lower, *upper),
                        shape,
                    )
                }
            }
            RandomOp::Bernoulli { shape, p, wide } => {
                let bits = if *wide {
                    sample::bernoulli_f64(key, shape, *p)
                } else {
                    sample::bernoulli_f32(key, shape, *p as f32)
                };
                Array::from_vec(bits.into_iter().map(u8::from).collect(), shape)
            }
            RandomOp::Randint {
                shape,
                minval,
                maxval,
            } => Array::from_vec(sample::randint_i32(key, shape, *minval, *maxval), shape),
            RandomOp::Permutation(n) => Array::from_vec(
                sample::permutation(key, *n)
                    .into_iter()
                    .map(|i| i as i32)
                    .collect(),
                &[*n],
            ),
        }
    }
}
