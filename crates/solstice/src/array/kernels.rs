//! Eager kernels: each primitive evaluated on candle tensors.
//!
//! This is the only place that computes with candle. Tensors are used
//! untracked (no `Var`), so candle records nothing for backprop.

use candle_core::Tensor;

use super::DType;
use super::cpu::adam::adam_update;
use super::cpu::binary::{BinaryOp, binary};
use super::cpu::elementwise::{self as ew, MathOp, math};
use super::cpu::reduce::{ReduceOp, reduce};
use super::cpu::rowwise::{
    GradOp, RowOp, cross_entropy, cross_entropy_grad, rowwise, rowwise_grad,
};
use super::cpu::unary::{UnaryOp, unary};
use super::kernels_ext as ext;
use super::prim::{CmpOp, Prim, RandomOp};
use crate::error::{Error, Result};

/// Evaluates `prim` on concrete inputs.
///
/// Float work runs on solstice's own kernels (`array/cpu/`) where they
/// apply; the rest runs on candle.
pub(crate) fn eval(prim: &Prim, xs: &[&Tensor]) -> Result<Tensor> {
    super::cpu::alloc::init();
    let x = xs[0];
    let out = match prim {
        Prim::Neg => or(
            either(unary(UnaryOp::Neg, x)?, || math(MathOp::IntNeg, x))?,
            || x.neg(),
        )?,
        Prim::Exp => or(unary(UnaryOp::Exp, x)?, || x.exp())?,
        Prim::Log => or(unary(UnaryOp::Log, x)?, || x.log())?,
        Prim::Tanh => or(unary(UnaryOp::Tanh, x)?, || x.tanh())?,
        Prim::Sqrt => or(unary(UnaryOp::Sqrt, x)?, || x.sqrt())?,
        Prim::Sin => or(math(MathOp::Sin, x)?, || x.sin())?,
        Prim::Cos => or(math(MathOp::Cos, x)?, || x.cos())?,
        Prim::Abs => or(
            either(unary(UnaryOp::Abs, x)?, || math(MathOp::IntAbs, x))?,
            || x.abs(),
        )?,
        Prim::Sign => or(math(MathOp::Sign, x)?, || x.sign())?,
        Prim::Erf => or(math(MathOp::Erf, x)?, || x.erf())?,
        Prim::Add => or(binary(BinaryOp::Add, x, xs[1])?, || x.broadcast_add(xs[1]))?,
        Prim::Sub => or(binary(BinaryOp::Sub, x, xs[1])?, || x.broadcast_sub(xs[1]))?,
        Prim::Mul => or(binary(BinaryOp::Mul, x, xs[1])?, || x.broadcast_mul(xs[1]))?,
        Prim::Div => match ew::int_div(x, xs[1])? {
            Some(out) => out,
            None => div(x, xs[1])?,
        },
        Prim::Maximum => match binary(BinaryOp::Maximum, x, xs[1])? {
            Some(out) => out,
            None => with_nans(x, xs[1], x.broadcast_maximum(xs[1])?)?,
        },
        Prim::Minimum => match binary(BinaryOp::Minimum, x, xs[1])? {
            Some(out) => out,
            None => with_nans(x, xs[1], x.broadcast_minimum(xs[1])?)?,
        },
        Prim::Compare(op) => or_else(ew::compare(*op, x, xs[1])?, || {
            let op = match op {
                CmpOp::Eq => candle_core::op::CmpOp::Eq,
                CmpOp::Ne => candle_core::op::CmpOp::Ne,
                CmpOp::Lt => candle_core::op::CmpOp::Lt,
                CmpOp::Le => candle_core::op::CmpOp::Le,
                CmpOp::Gt => candle_core::op::CmpOp::Gt,
                CmpOp::Ge => candle_core::op::CmpOp::Ge,
            };
            let shape = broadcast_all(&[x, xs[1]])?;
            Ok(x.broadcast_as(shape.as_slice())?
                .cmp(&xs[1].broadcast_as(shape.as_slice())?, op)?)
        })?,
        Prim::Select => or_else(ew::select(x, xs[1], xs[2])?, || {
            let shape = broadcast_all(&[x, xs[1], xs[2]])?;
            Ok(x.broadcast_as(shape.as_slice())?.where_cond(
                &xs[1].broadcast_as(shape.as_slice())?,
                &xs[2].broadcast_as(shape.as_slice())?,
            )?)
        })?,
        Prim::Reshape(shape) => x.reshape(shape.as_slice())?,
        Prim::Permute(perm) => x.permute(perm.as_slice())?,
        Prim::BroadcastTo(shape) => x.broadcast_as(shape.as_slice())?,
        Prim::Convert(dtype) => or(ew::convert(x, dtype.to_candle())?, || {
            x.to_dtype(dtype.to_candle())
        })?,
        Prim::Sum(axes) => {
            if axes.is_empty() {
                x.clone()
            } else {
                or(reduce(ReduceOp::Sum, x, axes)?, || x.sum(axes.as_slice()))?
            }
        }
        Prim::Max(axes) => match reduce(ReduceOp::Max, x, axes)? {
            Some(out) if x.elem_count() > 0 => out,
            _ => max(x, axes)?,
        },
        Prim::MatMul => matmul(x, xs[1])?,
        Prim::Take(axis) => {
            let indices = checked_indices("take", xs[1], x.dims()[*axis], *axis)?;
            match leading_run(x, &indices, *axis)? {
                Some(start) => x.narrow(0, start, indices.elem_count())?,
                None => x.contiguous()?.index_select(&indices, *axis)?,
            }
        }
        Prim::IndexAdd(axis) => {
            let indices = checked_indices("index_add", xs[1], x.dims()[*axis], *axis)?;
            x.contiguous()?
                .index_add(&indices, &xs[2].contiguous()?, *axis)?
        }
        Prim::StopGradient => x.clone(),
        Prim::CheckIndices(len) => {
            let flat = x.flatten_all()?;
            checked_indices("take", &flat, *len, 0)?;
            x.clone()
        }
        Prim::Random(op) => random(op, x)?,
        Prim::Log1p => or_else(math(MathOp::Log1p, x)?, || ext::log1p(x))?,
        Prim::Expm1 => or_else(math(MathOp::Expm1, x)?, || ext::expm1(x))?,
        Prim::Round(mode) => or_else(math(MathOp::Round(*mode), x)?, || ext::round(x, *mode))?,
        Prim::Pow => or_else(ew::pow(x, xs[1])?, || ext::pow(x, xs[1]))?,
        Prim::Rem => or_else(ew::rem(x, xs[1])?, || ext::rem(x, xs[1]))?,
        Prim::Min(axes) => match reduce(ReduceOp::Min, x, axes)? {
            Some(out) if x.elem_count() > 0 => out,
            _ => ext::min(x, axes)?,
        },
        Prim::ArgExtreme { axis, min } => {
            or_else(super::cpu::arg::arg_extreme(x, *axis, *min)?, || {
                ext::arg_extreme(x, *axis, *min)
            })?
        }
        Prim::Argsort {
            axis,
            descending,
            k,
        } => ext::argsort(x, *axis, *descending, *k)?,
        Prim::Cumsum { axis, reverse } => ext::cumsum(x, *axis, *reverse)?,
        Prim::Concat(axis) => Tensor::cat(xs, *axis)?,
        Prim::Custom(_) => {
            return Err(Error::internal(
                "custom_vjp runs its own function, not a kernel",
            ));
        }
        Prim::Softmax => fused(rowwise(RowOp::Softmax, x, last(x))?, prim)?,
        Prim::LogSoftmax => fused(rowwise(RowOp::LogSoftmax, x, last(x))?, prim)?,
        Prim::Logsumexp => fused(rowwise(RowOp::Logsumexp, x, last(x))?, prim)?,
        Prim::Standardize { axes, eps } => {
            let row = x.dims()[x.rank() - axes..].iter().product();
            fused(rowwise(RowOp::Normalize { eps: *eps }, x, row)?, prim)?
        }
        Prim::GeluTanh => fused(unary(UnaryOp::GeluTanh, x)?, prim)?,
        Prim::GeluTanhGrad => fused(unary(UnaryOp::GeluTanhGrad, x)?, prim)?,
        Prim::SoftmaxCrossEntropy => fused(cross_entropy(x, &labels(xs[1])?)?, prim)?,
        Prim::SoftmaxCrossEntropyGrad => {
            fused(cross_entropy_grad(x, &labels(xs[1])?, xs[2])?, prim)?
        }
        Prim::SoftmaxGrad => fused(rowwise_grad(GradOp::Softmax, xs, last(x))?, prim)?,
        Prim::LogSoftmaxGrad => fused(rowwise_grad(GradOp::LogSoftmax, xs, last(x))?, prim)?,
        Prim::LogsumexpGrad => fused(rowwise_grad(GradOp::Logsumexp, xs, last(x))?, prim)?,
        Prim::StandardizeGrad { axes, eps } => {
            let row = x.dims()[x.rank() - axes..].iter().product();
            let op = GradOp::Normalize { eps: *eps };
            fused(rowwise_grad(op, xs, row)?, prim)?
        }
        Prim::AdamUpdate => fused(adam_update(xs, &broadcast_all(xs)?)?, prim)?,
    };
    Ok(out)
}

/// Our kernel's result, or candle's where ours does not apply.
fn or(own: Option<Tensor>, candle: impl FnOnce() -> candle_core::Result<Tensor>) -> Result<Tensor> {
    match own {
        Some(out) => Ok(out),
        None => Ok(candle()?),
    }
}

/// The first kernel's result, or the second's where the first does not
/// apply (float and integer kernels of one primitive).
fn either(
    first: Option<Tensor>,
    second: impl FnOnce() -> Result<Option<Tensor>>,
) -> Result<Option<Tensor>> {
    match first {
        Some(out) => Ok(Some(out)),
        None => second(),
    }
}

/// Our kernel's result, or the host loop's where ours does not apply.
fn or_else(own: Option<Tensor>, host: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
    match own {
        Some(out) => Ok(out),
        None => host(),
    }
}

/// A fused kernel's result; they exist for float inputs only, which the
/// public operations check.
fn fused(own: Option<Tensor>, prim: &Prim) -> Result<Tensor> {
    own.ok_or_else(|| Error::dtype(format!("{} needs float arrays", prim.name())))
}

/// The length of the last axis.
fn last(x: &Tensor) -> usize {
    x.dims().last().copied().unwrap_or(1)
}

/// Integer labels as `i64`, in row-major order.
fn labels(x: &Tensor) -> Result<Vec<i64>> {
    Ok(x.flatten_all()?
        .to_dtype(candle_core::DType::I64)?
        .to_vec1::<i64>()?)
}

/// `x / y` on our float kernel or candle's; integer division by zero and
/// `MIN / -1` are errors.
fn div(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if !DType::from_candle(x.dtype())?.is_float() {
        check_integer_division(x, y)?;
    }
    or(binary(BinaryOp::Div, x, y)?, || x.broadcast_div(y))
}

/// Integer division by zero, and `MIN / -1`, are errors, never a panic.
fn check_integer_division(x: &Tensor, y: &Tensor) -> Result<()> {
    let shape = broadcast_all(&[x, y])?;
    let as_i64 = |t: &Tensor| -> Result<Vec<i64>> {
        let t = t.broadcast_as(shape.as_slice())?.contiguous()?;
        Ok(t.flatten_all()?
            .to_dtype(candle_core::DType::I64)?
            .to_vec1::<i64>()?)
    };
    // The quotient that overflows: signed MIN / -1 (unsigned types have none).
    let min = match DType::from_candle(x.dtype())? {
        DType::I64 => Some(i64::MIN),
        DType::I32 => Some(i32::MIN as i64),
        _ => None,
    };
    for (a, b) in as_i64(x)?.into_iter().zip(as_i64(y)?) {
        if b == 0 {
            return Err(Error::invalid("div got an integer division by zero"));
        }
        if b == -1 && Some(a) == min {
            return Err(Error::invalid(
                "div got an integer division that overflows (MIN / -1)",
            ));
        }
    }
    Ok(())
}

/// NaN wherever either input is NaN: candle's maximum and minimum drop NaNs
/// depending on argument order, JAX's propagate them.
fn with_nans(x: &Tensor, y: &Tensor, out: Tensor) -> Result<Tensor> {
    if !DType::from_candle(x.dtype())?.is_float() {
        return Ok(out);
    }
    let shape = out.dims().to_vec();
    let nan_x = x.ne(x)?.broadcast_as(shape.as_slice())?;
    let nan_y = y.ne(y)?.broadcast_as(shape.as_slice())?;
    // `x + y` is NaN wherever an input is.
    let sum = x.broadcast_add(y)?;
    Ok(nan_x.maximum(&nan_y)?.where_cond(&sum, &out)?)
}

/// The maximum over `axes`, NaN where a reduced slice holds a NaN (as in
/// JAX), and an empty result for an empty input.
fn max(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let mut shape: Vec<usize> = x.dims().to_vec();
    let mut sorted = axes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    for &a in &sorted {
        shape.remove(a);
    }
    if x.elem_count() == 0 {
        return Ok(Tensor::zeros(shape, x.dtype(), x.device())?);
    }
    let mut out = x.clone();
    let mut nans = x.ne(x)?.to_dtype(candle_core::DType::U32)?;
    for &axis in &sorted {
        out = out.max(axis)?;
        nans = nans.sum(axis)?;
    }
    if DType::from_candle(x.dtype())?.is_float() {
        let nan = Tensor::full(f64::NAN, shape.as_slice(), x.device())?.to_dtype(x.dtype())?;
        out = nans.gt(0u32)?.where_cond(&nan, &out)?;
    }
    Ok(out)
}

/// `a @ b` over equal batch dimensions.
fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if let Some(out) = super::matmul::matmul(a, b)? {
        return Ok(out);
    }
    // Other dtypes: candle's matmul, which wants one plainly laid out batch
    // dimension.
    let rank = a.rank();
    let dims = a.dims();
    let batch: Vec<usize> = dims[..rank - 2].to_vec();
    let count: usize = batch.iter().product();
    let (m, k, n) = (dims[rank - 2], dims[rank - 1], b.dims()[rank - 1]);
    let a = a.contiguous()?.reshape((count, m, k))?;
    let b = b.contiguous()?.reshape((count, k, n))?;
    let mut shape = batch;
    shape.extend([m, n]);
    Ok(a.matmul(&b)?.reshape(shape)?)
}

/// A random operation over `u32[..., 2]` keys: each key of the leading
/// batch draws on its own, and the draws are stacked.
fn random(op: &RandomOp, keys: &Tensor) -> Result<Tensor> {
    let dims = keys.dims();
    let mut shape = dims[..dims.len() - 1].to_vec();
    let words = keys.flatten_all()?.to_vec1::<u32>()?;
    let mut draws = Vec::with_capacity(words.len() / 2);
    for w in words.chunks(2) {
        draws.push(op.draw([w[0], w[1]])?.tensor("random")?.clone());
    }
    let (item_shape, dtype) = op.draw_shape();
    shape.extend(item_shape);
    if draws.is_empty() {
        return Ok(Tensor::zeros(
            shape,
            dtype.to_candle(),
            &candle_core::Device::Cpu,
        )?);
    }
    Ok(Tensor::stack(&draws, 0)?.reshape(shape)?)
}

/// The indices as contiguous `i64`, which candle's gathers take whatever
/// the integer dtype. Indices out of range are an error, never a wrapped or
/// clamped read.
fn checked_indices(op: &str, indices: &Tensor, len: usize, axis: usize) -> Result<Tensor> {
    let indices = indices.to_dtype(candle_core::DType::I64)?.contiguous()?;
    let values = indices.to_vec1::<i64>()?;
    if let Some(bad) = values.iter().find(|&&i| i < 0 || i as usize >= len) {
        return Err(Error::invalid(format!(
            "{op} got index {bad}, out of range for axis {axis} of size {len}"
        )));
    }
    Ok(indices)
}

/// The first index when `indices` are a run `k, k + 1, ...` of whole rows
/// of a contiguous `x` along its first axis: that take is a view of `x`
/// (no copy), as the fused optimiser steps' stacked outputs are read.
fn leading_run(x: &Tensor, indices: &Tensor, axis: usize) -> Result<Option<usize>> {
    if axis != 0 || !x.is_contiguous() || indices.elem_count() == 0 {
        return Ok(None);
    }
    let values = indices.to_vec1::<i64>()?;
    let start = values[0];
    let run = values.iter().zip(start..).all(|(&v, k)| v == k);
    Ok(run.then_some(start as usize))
}

fn broadcast_all(xs: &[&Tensor]) -> Result<Vec<usize>> {
    let mut shape: Vec<usize> = Vec::new();
    for x in xs {
        shape = super::broadcast_shapes(&shape, x.dims())
            .ok_or_else(|| Error::shape("inputs do not broadcast"))?;
    }
    Ok(shape)
}
