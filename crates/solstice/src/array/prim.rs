//! The primitive operations.
//!
//! Every numeric operation on [`Array`](crate::Array) is built from these.
//! Each primitive has three rules, kept apart by job:
//! - an eager kernel on candle (`array/kernels.rs`);
//! - a batching rule for `vmap` (`transform/batching.rs`);
//! - a VJP rule for `grad`, written in `Array` operations so that it can be
//!   differentiated again (`transform/vjp.rs`).
//!
//! Primitives take inputs of the shapes their public operation has already
//! checked: elementwise primitives broadcast numpy-style in the kernel (their
//! VJP rules sum each cotangent back to its input's shape), `MatMul` sees
//! equal leading dimensions, `Take` and `IndexAdd` see 1-d indices.

use std::sync::Arc;

use super::{Array, DType};
use crate::error::Result;
pub(crate) use crate::random::RandomOp;

/// A comparison, giving `u8` 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Prim {
    // Unary, elementwise.
    Neg,
    Exp,
    Log,
    Tanh,
    Sqrt,
    Sin,
    Cos,
    Abs,
    Sign,
    Erf,
    // Binary, elementwise, with numpy broadcasting.
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Compare(CmpOp),
    /// `(cond, on_true, on_false)`, broadcast together; `cond` is `u8`.
    Select,
    // Shape.
    Reshape(Vec<usize>),
    Permute(Vec<usize>),
    /// Numpy broadcasting of the input to this shape.
    BroadcastTo(Vec<usize>),
    Convert(DType),
    // Reductions: the listed axes are removed.
    Sum(Vec<usize>),
    Max(Vec<usize>),
    /// `[..., m, k] @ [..., k, n]`, equal leading dimensions.
    MatMul,
    /// `(x, indices)`: picks `indices` (1-d, integer) along the axis.
    Take(usize),
    /// `(base, indices, source)`: adds `source` into `base` at `indices`
    /// (1-d, integer) along the axis, summing repeats.
    IndexAdd(usize),
    /// Identity whose derivative is zero.
    StopGradient,
    /// Identity on integer indices that fails unless each is in `0..len`.
    /// Batching rules that fold a batch into one gather check with it first.
    CheckIndices(usize),
    /// A random operation over key words `u32[..., 2]`; leading dimensions
    /// are a batch of keys, each drawing on its own.
    Random(RandomOp),
    /// A user's function with a user's derivative (`custom_vjp`).
    Custom(CustomRule),
    // Fused row-wise primitives (kernels in `array/cpu/rowwise.rs`, rules
    // in `transform/fused_rules.rs`), all over the last axis.
    /// `exp(x) / sum(exp(x))`.
    Softmax,
    /// `x - logsumexp(x)`.
    LogSoftmax,
    /// `log(sum(exp(x)))`, removing the axis.
    Logsumexp,
    /// `(logits [..., n], labels [...])`, integer labels in `0..n`:
    /// `logsumexp(logits) - logits[label]`, removing the axis.
    SoftmaxCrossEntropy,
    /// `(logits, labels, ct [...])`: `ct * (softmax(logits) - one_hot(label))`,
    /// the cross-entropy's gradient in one pass.
    SoftmaxCrossEntropyGrad,
    /// `(x - mean) / sqrt(var + eps)` over the trailing `axes` axes.
    Standardize {
        axes: usize,
        eps: f64,
    },
    /// Elementwise `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`, one pass.
    GeluTanh,
    /// Elementwise derivative of `GeluTanh`, one pass.
    GeluTanhGrad,
    /// `(y, u)` with `y = softmax(x)`: `y (u - sum(u y))`, softmax's VJP
    /// (and JVP: its Jacobian is symmetric) in one pass.
    SoftmaxGrad,
    /// `(y, u)` with `y = log_softmax(x)`: `u - exp(y) sum(u)`, the VJP of
    /// log-softmax in one pass.
    LogSoftmaxGrad,
    /// `(x [..., n], l [...], u [...])` with `l = logsumexp(x)`:
    /// `u exp(x - l)`, the VJP of logsumexp in one pass.
    LogsumexpGrad,
    /// `(x, u)`: `rstd (u - mean(u) - y mean(u y))` with `y` and `rstd`
    /// those of `Standardize` of `x` over the trailing `axes` axes: its
    /// VJP (and JVP: the Jacobian is symmetric) in one pass.
    StandardizeGrad {
        axes: usize,
        eps: f64,
    },
    // The array API's primitives (`ops_math.rs`, `ops_index.rs`; kernels in
    // `kernels_ext.rs`).
    /// Elementwise `ln(1 + x)`, accurate near 0.
    Log1p,
    /// Elementwise `e^x - 1`, accurate near 0.
    Expm1,
    /// Elementwise rounding to an integral value; its derivative is zero.
    Round(RoundMode),
    /// Elementwise `x ^ y` for floats, numpy broadcasting.
    Pow,
    /// Elementwise remainder of truncated division (C's `fmod`, `lax.rem`),
    /// numpy broadcasting; integer division by zero is an error.
    Rem,
    /// The minimum over the listed axes, which are removed.
    Min(Vec<usize>),
    /// The index (`i32`) of the first maximum (or minimum) along `axis`,
    /// which is removed; a NaN counts as the extreme, as in JAX.
    ArgExtreme {
        axis: usize,
        min: bool,
    },
    /// The indices (`i32`) of the first `k` elements along `axis` in a
    /// stable sort, ascending or descending (NaN counts as the largest);
    /// `axis` keeps size `k`.
    Argsort {
        axis: usize,
        descending: bool,
        k: usize,
    },
    /// The running sum along `axis`, from the end when `reverse`.
    Cumsum {
        axis: usize,
        reverse: bool,
    },
    /// Its inputs joined along the axis; other dimensions are equal.
    Concat(usize),
    /// One Adam(W) step of a leaf in one pass (kernel in
    /// `array/cpu/adam.rs`, rules in `transform/adam_rules.rs`):
    /// `(g, mu, nu, p, a1, b1, a2, b2, c1, c2, eps, eps_root, wd, s)`,
    /// broadcast together, give `[3, ...]` stacking `m = a1 g + b1 mu`,
    /// `v = a2 g² + b2 nu` and `s (m / c1 / (sqrt(v / c2 + eps_root) + eps)
    /// + wd p)`.
    AdamUpdate,
}

/// How [`Prim::Round`] rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoundMode {
    /// Towards minus infinity.
    Floor,
    /// Towards plus infinity.
    Ceil,
    /// To the nearest integer, ties to even (`jnp.round`).
    Nearest,
}

type Forward = dyn Fn(&Array) -> Result<Array> + Send + Sync;
type Backward = dyn Fn(&Array, &Array, &Array) -> Result<Array> + Send + Sync;

/// The function and derivative of a `custom_vjp` primitive. Rules compare
/// by identity.
#[derive(Clone)]
pub(crate) struct CustomRule {
    pub(crate) forward: Arc<Forward>,
    /// `(x, y, ct) -> ct_x`.
    pub(crate) backward: Arc<Backward>,
}

impl PartialEq for CustomRule {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.forward, &other.forward) && Arc::ptr_eq(&self.backward, &other.backward)
    }
}

impl std::fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomRule")
    }
}

impl Prim {
    /// The name used in error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Prim::Neg => "neg",
            Prim::Exp => "exp",
            Prim::Log => "log",
            Prim::Tanh => "tanh",
            Prim::Sqrt => "sqrt",
            Prim::Sin => "sin",
            Prim::Cos => "cos",
            Prim::Abs => "abs",
            Prim::Sign => "sign",
            Prim::Erf => "erf",
            Prim::Add => "add",
            Prim::Sub => "sub",
            Prim::Mul => "mul",
            Prim::Div => "div",
            Prim::Maximum => "maximum",
            Prim::Minimum => "minimum",
            Prim::Compare(_) => "compare",
            Prim::Select => "select",
            Prim::Reshape(_) => "reshape",
            Prim::Permute(_) => "transpose",
            Prim::BroadcastTo(_) => "broadcast_to",
            Prim::Convert(_) => "astype",
            Prim::Sum(_) => "sum",
            Prim::Max(_) => "max",
            Prim::MatMul => "matmul",
            Prim::Take(_) => "take",
            Prim::IndexAdd(_) => "index_add",
            Prim::StopGradient => "stop_gradient",
            Prim::CheckIndices(_) => "take",
            Prim::Random(op) => op.name(),
            Prim::Custom(_) => "custom_vjp",
            Prim::Softmax => "softmax",
            Prim::LogSoftmax => "log_softmax",
            Prim::Logsumexp => "logsumexp",
            Prim::SoftmaxCrossEntropy | Prim::SoftmaxCrossEntropyGrad => "softmax_cross_entropy",
            Prim::Standardize { .. } => "standardize",
            Prim::GeluTanh | Prim::GeluTanhGrad => "gelu_tanh",
            Prim::SoftmaxGrad => "softmax",
            Prim::LogSoftmaxGrad => "log_softmax",
            Prim::LogsumexpGrad => "logsumexp",
            Prim::StandardizeGrad { .. } => "standardize",
            Prim::Log1p => "log1p",
            Prim::Expm1 => "expm1",
            Prim::Round(RoundMode::Floor) => "floor",
            Prim::Round(RoundMode::Ceil) => "ceil",
            Prim::Round(RoundMode::Nearest) => "round",
            Prim::Pow => "pow",
            Prim::Rem => "rem",
            Prim::Min(_) => "min",
            Prim::ArgExtreme { min: false, .. } => "argmax",
            Prim::ArgExtreme { min: true, .. } => "argmin",
            Prim::Argsort { .. } => "argsort",
            Prim::Cumsum { .. } => "cumsum",
            Prim::Concat(_) => "concatenate",
            Prim::AdamUpdate => "adam_update",
        }
    }

    /// Whether the output can carry a derivative. Outputs that cannot
    /// (comparisons, signs) are not recorded by `grad`.
    ///
    /// This and the other facts below are exhaustive matches, so a new
    /// primitive does not compile until each is stated for it.
    pub(crate) fn is_differentiable(&self) -> bool {
        match self {
            Prim::Compare(_)
            | Prim::Sign
            | Prim::StopGradient
            | Prim::CheckIndices(_)
            | Prim::Random(_)
            | Prim::Round(_)
            | Prim::ArgExtreme { .. }
            | Prim::Argsort { .. } => false,
            Prim::Neg
            | Prim::Exp
            | Prim::Log
            | Prim::Tanh
            | Prim::Sqrt
            | Prim::Sin
            | Prim::Cos
            | Prim::Abs
            | Prim::Erf
            | Prim::Add
            | Prim::Sub
            | Prim::Mul
            | Prim::Div
            | Prim::Maximum
            | Prim::Minimum
            | Prim::Select
            | Prim::Reshape(_)
            | Prim::Permute(_)
            | Prim::BroadcastTo(_)
            | Prim::Convert(_)
            | Prim::Sum(_)
            | Prim::Max(_)
            | Prim::MatMul
            | Prim::Take(_)
            | Prim::IndexAdd(_)
            | Prim::Custom(_)
            | Prim::Softmax
            | Prim::LogSoftmax
            | Prim::Logsumexp
            | Prim::SoftmaxCrossEntropy
            | Prim::SoftmaxCrossEntropyGrad
            | Prim::Standardize { .. }
            | Prim::GeluTanh
            | Prim::GeluTanhGrad
            | Prim::SoftmaxGrad
            | Prim::LogSoftmaxGrad
            | Prim::LogsumexpGrad
            | Prim::StandardizeGrad { .. }
            | Prim::Log1p
            | Prim::Expm1
            | Prim::Pow
            | Prim::Rem
            | Prim::Min(_)
            | Prim::Cumsum { .. }
            | Prim::Concat(_)
            | Prim::AdamUpdate => true,
        }
    }

    /// The number of inputs, or `None` for any positive number.
    pub(crate) fn arity(&self) -> Option<usize> {
        match self {
            Prim::Neg
            | Prim::Exp
            | Prim::Log
            | Prim::Tanh
            | Prim::Sqrt
            | Prim::Sin
            | Prim::Cos
            | Prim::Abs
            | Prim::Sign
            | Prim::Erf
            | Prim::Reshape(_)
            | Prim::Permute(_)
            | Prim::BroadcastTo(_)
            | Prim::Convert(_)
            | Prim::Sum(_)
            | Prim::Max(_)
            | Prim::StopGradient
            | Prim::CheckIndices(_)
            | Prim::Random(_)
            | Prim::Custom(_)
            | Prim::Softmax
            | Prim::LogSoftmax
            | Prim::Logsumexp
            | Prim::Standardize { .. }
            | Prim::GeluTanh
            | Prim::GeluTanhGrad
            | Prim::Log1p
            | Prim::Expm1
            | Prim::Round(_)
            | Prim::Min(_)
            | Prim::ArgExtreme { .. }
            | Prim::Argsort { .. }
            | Prim::Cumsum { .. } => Some(1),
            Prim::Add
            | Prim::Sub
            | Prim::Mul
            | Prim::Div
            | Prim::Maximum
            | Prim::Minimum
            | Prim::Compare(_)
            | Prim::MatMul
            | Prim::Take(_)
            | Prim::SoftmaxCrossEntropy
            | Prim::SoftmaxGrad
            | Prim::LogSoftmaxGrad
            | Prim::StandardizeGrad { .. }
            | Prim::Pow
            | Prim::Rem => Some(2),
            Prim::Select
            | Prim::IndexAdd(_)
            | Prim::SoftmaxCrossEntropyGrad
            | Prim::LogsumexpGrad => Some(3),
            Prim::AdamUpdate => Some(14),
            Prim::Concat(_) => None,
        }
    }

    /// Whether the inputs broadcast against each other numpy-style and the
    /// output is elementwise in them: each input's cotangent is then summed
    /// back to its own shape.
    pub(crate) fn is_broadcasting(&self) -> bool {
        match self {
            Prim::Add
            | Prim::Sub
            | Prim::Mul
            | Prim::Div
            | Prim::Maximum
            | Prim::Minimum
            | Prim::Compare(_)
            | Prim::Select
            | Prim::Pow
            | Prim::Rem => true,
            Prim::Neg
            | Prim::Exp
            | Prim::Log
            | Prim::Tanh
            | Prim::Sqrt
            | Prim::Sin
            | Prim::Cos
            | Prim::Abs
            | Prim::Sign
            | Prim::Erf
            | Prim::Reshape(_)
            | Prim::Permute(_)
            | Prim::BroadcastTo(_)
            | Prim::Convert(_)
            | Prim::Sum(_)
            | Prim::Max(_)
            | Prim::MatMul
            | Prim::Take(_)
            | Prim::IndexAdd(_)
            | Prim::StopGradient
            | Prim::CheckIndices(_)
            | Prim::Random(_)
            | Prim::Custom(_)
            | Prim::Softmax
            | Prim::LogSoftmax
            | Prim::Logsumexp
            | Prim::SoftmaxCrossEntropy
            | Prim::SoftmaxCrossEntropyGrad
            | Prim::Standardize { .. }
            | Prim::GeluTanh
            | Prim::GeluTanhGrad
            | Prim::SoftmaxGrad
            | Prim::LogSoftmaxGrad
            | Prim::LogsumexpGrad
            | Prim::StandardizeGrad { .. }
            | Prim::Log1p
            | Prim::Expm1
            | Prim::Round(_)
            | Prim::Min(_)
            | Prim::ArgExtreme { .. }
            | Prim::Argsort { .. }
            | Prim::Cumsum { .. }
            | Prim::Concat(_)
            | Prim::AdamUpdate => false,
        }
    }

    /// Whether the (first) input must be a float array.
    pub(crate) fn is_float_only(&self) -> bool {
        match self {
            Prim::Exp
            | Prim::Log
            | Prim::Tanh
            | Prim::Sqrt
            | Prim::Sin
            | Prim::Cos
            | Prim::Erf
            | Prim::MatMul
            | Prim::Softmax
            | Prim::LogSoftmax
            | Prim::Logsumexp
            | Prim::SoftmaxCrossEntropy
            | Prim::SoftmaxCrossEntropyGrad
            | Prim::Standardize { .. }
            | Prim::GeluTanh
            | Prim::GeluTanhGrad
            | Prim::SoftmaxGrad
            | Prim::LogSoftmaxGrad
            | Prim::LogsumexpGrad
            | Prim::StandardizeGrad { .. }
            | Prim::Log1p
            | Prim::Expm1
            | Prim::Round(_)
            | Prim::Pow
            | Prim::AdamUpdate => true,
            Prim::Neg
            | Prim::Abs
            | Prim::Sign
            | Prim::Add
            | Prim::Sub
            | Prim::Mul
            | Prim::Div
            | Prim::Maximum
            | Prim::Minimum
            | Prim::Compare(_)
            | Prim::Select
            | Prim::Reshape(_)
            | Prim::Permute(_)
            | Prim::BroadcastTo(_)
            | Prim::Convert(_)
            | Prim::Sum(_)
            | Prim::Max(_)
            | Prim::Take(_)
            | Prim::IndexAdd(_)
            | Prim::StopGradient
            | Prim::CheckIndices(_)
            | Prim::Random(_)
            | Prim::Custom(_)
            | Prim::Rem
            | Prim::Min(_)
            | Prim::ArgExtreme { .. }
            | Prim::Argsort { .. }
            | Prim::Cumsum { .. }
            | Prim::Concat(_) => false,
        }
    }
}
