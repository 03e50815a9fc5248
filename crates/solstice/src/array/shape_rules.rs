//! Abstract evaluation: each primitive's output shape and dtype from its
//! inputs' shapes and dtypes alone.
//!
//! [`Prim::abstract_eval`] is the one statement of what a primitive
//! accepts and what it returns. Inside [`eval_shape`](crate::eval_shape)
//! it is the only thing that runs: no kernel, no data. In debug builds
//! (every test) `bind` runs it before every primitive on every path (eager,
//! `vmap`, `grad`, `jvp`) and checks the kernel's or the transformation's
//! result against it, so a rule that drifts from its kernel fails the
//! tests; release builds skip it where a kernel runs, to keep eager
//! dispatch cheap.
//!
//! The public operations check their arguments first, with messages in
//! the user's terms (axes as given, the operation's own name); the rules
//! restate the primitive's contract, which those checks must imply.

use super::prim::{Prim, RandomOp};
use super::{DType, broadcast_shapes};
use crate::error::{Error, Result};

/// What abstract evaluation knows of an array: its shape and dtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Aval {
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

impl Aval {
    pub(crate) fn new(shape: Vec<usize>, dtype: DType) -> Self {
        Aval { shape, dtype }
    }

    fn describe(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        format!("{}[{}]", self.dtype.short_name(), dims.join(","))
    }
}

impl std::fmt::Display for Aval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Prim {
    /// The shape and dtype of this primitive's output for inputs of the
    /// given shapes and dtypes, or the error the inputs deserve.
    ///
    /// Every primitive but `Custom` is answered from the avals alone;
    /// `Custom` traces its forward function on an abstract input. Index
    /// ranges and integer division by zero depend on values and are
    /// checked by the kernels only, as in JAX.
    pub(crate) fn abstract_eval(&self, xs: &[Aval]) -> Result<Aval> {
        let x = &xs[0];
        let same = || Ok(x.clone());
        match self {
            Prim::Neg | Prim::Abs | Prim::Sign | Prim::StopGradient => same(),
            Prim::Exp
            | Prim::Log
            | Prim::Tanh
            | Prim::Sqrt
            | Prim::Sin
            | Prim::Cos
            | Prim::Erf
            | Prim::GeluTanh
            | Prim::GeluTanhGrad
            | Prim::Log1p
            | Prim::Expm1
            | Prim::Round(_) => {
                self.float(x)?;
                same()
            }
            Prim::Softmax | Prim::LogSoftmax => {
                self.float(x)?;
                self.rank_at_least(x, 1)?;
                same()
            }
            Prim::Logsumexp => {
                self.float(x)?;
                self.rank_at_least(x, 1)?;
                Ok(Aval::new(x.shape[..x.shape.len() - 1].to_vec(), x.dtype))
            }
            Prim::Standardize { axes, .. } => {
                self.float(x)?;
                self.rank_at_least(x, *axes)?;
                same()
            }
            Prim::Add
            | Prim::Sub
            | Prim::Mul
            | Prim::Div
            | Prim::Maximum
            | Prim::Minimum
            | Prim::Rem => self.broadcast(xs, x.dtype),
            Prim::Pow => {
                self.float(x)?;
                self.broadcast(xs, x.dtype)
            }
            Prim::Compare(_) => self.broadcast(xs, DType::U8),
            Prim::Select => {
                if x.dtype != DType::U8 {
                    return Err(self.dtype_error(format!("needs a u8 condition but got {x}")));
                }
                let out = self.broadcast(&xs[1..], xs[1].dtype)?;
                let shape =
                    broadcast_shapes(&x.shape, &out.shape).ok_or_else(|| self.no_broadcast(xs))?;
                Ok(Aval::new(shape, out.dtype))
            }
            Prim::Reshape(shape) => {
                let count: Option<usize> = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                if count != Some(x.shape.iter().product()) {
                    return Err(self.shape_error(format!("cannot turn {x} into shape {shape:?}")));
                }
                Ok(Aval::new(shape.clone(), x.dtype))
            }
            Prim::Permute(perm) => {
                let mut seen = vec![false; x.shape.len()];
                let valid = perm.len() == x.shape.len()
                    && perm
                        .iter()
                        .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
                if !valid {
                    return Err(self.shape_error(format!("got permutation {perm:?} for {x}")));
                }
                Ok(Aval::new(
                    perm.iter().map(|&p| x.shape[p]).collect(),
                    x.dtype,
                ))
            }
            Prim::BroadcastTo(shape) => {
                if broadcast_shapes(&x.shape, shape).as_deref() != Some(shape.as_slice()) {
                    return Err(self.shape_error(format!("cannot broadcast {x} to {shape:?}")));
                }
                Ok(Aval::new(shape.clone(), x.dtype))
            }
            Prim::Convert(dtype) => Ok(Aval::new(x.shape.clone(), *dtype)),
            Prim::Sum(axes) | Prim::Max(axes) | Prim::Min(axes) => {
                Ok(Aval::new(self.remove_axes(x, axes)?, x.dtype))
            }
            Prim::MatMul => self.matmul(x, &xs[1]),
            Prim::Take(axis) => {
                self.axis(x, *axis)?;
                let n = self.indices(&xs[1])?;
                let mut shape = x.shape.clone();
                shape[*axis] = n;
                Ok(Aval::new(shape, x.dtype))
            }
            Prim::IndexAdd(axis) => {
                self.axis(x, *axis)?;
                let n = self.indices(&xs[1])?;
                let mut expected = x.shape.clone();
                expected[*axis] = n;
                let source = &xs[2];
                if source.shape != expected || source.dtype != x.dtype {
                    return Err(self.shape_error(format!(
                        "into {x} with {n} indices needs a source of {} but got {source}",
                        Aval::new(expected, x.dtype)
                    )));
                }
                same()
            }
            Prim::CheckIndices(_) => {
                if !x.dtype.is_int() {
                    return Err(self.dtype_error(format!("needs integer indices but got {x}")));
                }
                same()
            }
            Prim::Random(op) => self.random(op, x),
            Prim::Custom(rule) => crate::transform::eval_shape::custom_aval(rule, x),
            Prim::SoftmaxCrossEntropy | Prim::SoftmaxCrossEntropyGrad => {
                self.float(x)?;
                self.rank_at_least(x, 1)?;
                let batch = &x.shape[..x.shape.len() - 1];
                let labels = &xs[1];
                if !labels.dtype.is_int() || labels.shape != batch {
                    return Err(self.shape_error(format!(
                        "needs logits [..., n] and integer labels [...] but got {x} and {labels}"
                    )));
                }
                if let Prim::SoftmaxCrossEntropyGrad = self {
                    let ct = &xs[2];
                    if ct.shape != batch || ct.dtype != x.dtype {
                        return Err(self.shape_error(format!(
                            "needs a cotangent of {} but got {ct}",
                            Aval::new(batch.to_vec(), x.dtype)
                        )));
                    }
                    return same();
                }
                Ok(Aval::new(batch.to_vec(), x.dtype))
            }
            Prim::SoftmaxGrad | Prim::LogSoftmaxGrad | Prim::StandardizeGrad { .. } => {
                // (forward output or input, cotangent): both of x's aval.
                self.float(x)?;
                let rank = match self {
                    Prim::StandardizeGrad { axes, .. } => *axes,
                    _ => 1,
                };
                self.rank_at_least(x, rank)?;
                self.same_avals(x, &xs[1])?;
                same()
            }
            Prim::LogsumexpGrad => {
                // (x [..., n], logsumexp(x) [...], cotangent [...]).
                self.float(x)?;
                self.rank_at_least(x, 1)?;
                let row = Aval::new(x.shape[..x.shape.len() - 1].to_vec(), x.dtype);
                self.same_avals(&row, &xs[1])?;
                self.same_avals(&row, &xs[2])?;
                same()
            }
            Prim::AdamUpdate => {
                // (g, mu, nu, p and ten scalars), all of g's float dtype;
                // the moments and the update stacked in front.
                self.float(x)?;
                let all = self.broadcast(xs, x.dtype)?;
                let mut shape = vec![3];
                shape.extend(all.shape);
                Ok(Aval::new(shape, x.dtype))
            }
            Prim::ArgExtreme { axis, .. } => {
                Ok(Aval::new(self.remove_axes(x, &[*axis])?, DType::I32))
            }
            Prim::Argsort { axis, k, .. } => {
                self.axis(x, *axis)?;
                if *k > x.shape[*axis] {
                    return Err(
                        self.shape_error(format!("asks for {k} indices along axis {axis} of {x}"))
                    );
                }
                let mut shape = x.shape.clone();
                shape[*axis] = *k;
                Ok(Aval::new(shape, DType::I32))
            }
            Prim::Cumsum { axis, .. } => {
                self.axis(x, *axis)?;
                same()
            }
            Prim::Concat(axis) => {
                self.axis(x, *axis)?;
                let mut shape = x.shape.clone();
                for other in &xs[1..] {
                    let fits = other.dtype == x.dtype
                        && other.shape.len() == x.shape.len()
                        && (0..shape.len()).all(|a| a == *axis || other.shape[a] == x.shape[a]);
                    if !fits {
                        return Err(self
                            .shape_error(format!("cannot join {other} to {x} along axis {axis}")));
                    }
                    shape[*axis] += other.shape[*axis];
                }
                Ok(Aval::new(shape, x.dtype))
            }
        }
    }

    fn shape_error(&self, what: String) -> Error {
        Error::shape(format!("{} {what}", self.name()))
    }

    fn dtype_error(&self, what: String) -> Error {
        Error::dtype(format!("{} {what}", self.name()))
    }

    fn float(&self, x: &Aval) -> Result<()> {
        if x.dtype.is_float() {
            Ok(())
        } else {
            Err(self.dtype_error(format!("needs a float array but got {x}")))
        }
    }

    fn rank_at_least(&self, x: &Aval, rank: usize) -> Result<()> {
        if x.shape.len() >= rank {
            Ok(())
        } else {
            Err(self.shape_error(format!("needs an array of rank {rank} or more but got {x}")))
        }
    }

    fn axis(&self, x: &Aval, axis: usize) -> Result<()> {
        if axis < x.shape.len() {
            Ok(())
        } else {
            Err(self.shape_error(format!("got axis {axis} for {x}")))
        }
    }

    /// The length of 1-d integer indices.
    fn indices(&self, indices: &Aval) -> Result<usize> {
        if !indices.dtype.is_int() || indices.shape.len() != 1 {
            return Err(self.dtype_error(format!("needs 1-d integer indices but got {indices}")));
        }
        Ok(indices.shape[0])
    }

    fn no_broadcast(&self, xs: &[Aval]) -> Error {
        let all: Vec<String> = xs.iter().map(Aval::describe).collect();
        self.shape_error(format!("got {}, which do not broadcast", all.join(" and ")))
    }

    /// Inputs of one dtype broadcast together, giving `dtype`.
    /// `y` must have `x`'s shape and dtype.
    fn same_avals(&self, x: &Aval, y: &Aval) -> Result<()> {
        if x != y {
            return Err(self.shape_error(format!("needs {x} but got {y}")));
        }
        Ok(())
    }

    fn broadcast(&self, xs: &[Aval], dtype: DType) -> Result<Aval> {
        let mut shape: Vec<usize> = Vec::new();
        for x in xs {
            if x.dtype != xs[0].dtype {
                return Err(
                    self.dtype_error(format!("got arrays of different dtypes, {} and {x}", xs[0]))
                );
            }
            shape = broadcast_shapes(&shape, &x.shape).ok_or_else(|| self.no_broadcast(xs))?;
        }
        Ok(Aval::new(shape, dtype))
    }

    /// `x`'s shape without `axes`, which must be distinct axes of `x`.
    fn remove_axes(&self, x: &Aval, axes: &[usize]) -> Result<Vec<usize>> {
        let mut keep = vec![true; x.shape.len()];
        for &a in axes {
            if a >= keep.len() || !std::mem::replace(&mut keep[a], false) {
                return Err(self.shape_error(format!("got axes {axes:?} for {x}")));
            }
        }
        Ok(x.shape
            .iter()
            .zip(keep)
            .filter_map(|(&d, k)| k.then_some(d))
            .collect())
    }

    fn matmul(&self, a: &Aval, b: &Aval) -> Result<Aval> {
        self.float(a)?;
        let (ra, rb) = (a.shape.len(), b.shape.len());
        let fits = a.dtype == b.dtype
            && ra >= 2
            && ra == rb
            && a.shape[..ra - 2] == b.shape[..rb - 2]
            && a.shape[ra - 1] == b.shape[rb - 2];
        if !fits {
            return Err(self.shape_error(format!(
                "needs [..., m, k] and [..., k, n] of one dtype but got {a} and {b}"
            )));
        }
        let mut shape = a.shape[..ra - 1].to_vec();
        shape.push(b.shape[rb - 1]);
        Ok(Aval::new(shape, a.dtype))
    }

    /// A batch of keys `u32[..., 2]`, each drawing `op`'s shape.
    fn random(&self, op: &RandomOp, keys: &Aval) -> Result<Aval> {
        if keys.dtype != DType::U32 || keys.shape.last() != Some(&2) {
            return Err(self.shape_error(format!("needs u32[..., 2] keys but got {keys}")));
        }
        let (draw, dtype) = op.draw_shape();
        let mut shape = keys.shape[..keys.shape.len() - 1].to_vec();
        shape.extend(draw);
        super::element_count(self.name(), &shape)?;
        Ok(Aval::new(shape, dtype))
    }
}
