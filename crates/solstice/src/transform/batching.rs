//! Batching rules: how each primitive runs on a whole batch at once.
//!
//! A rule gets the inputs' values with their batch axes (`None` for inputs
//! that are the same for every example) and returns the output value with
//! its batch axis. Rules run one level down, through `Array` operations, so
//! an outer transformation sees them like any other operation. No rule loops
//! over examples: each primitive stays one kernel call on the whole batch.

use crate::array::Array;
use std::sync::Arc;

use crate::array::prim::{CustomRule, Prim};
use crate::error::Result;

use super::trace::bind;
use super::vmap::vmap;

/// Applies `prim` to batched `values` whose batch axes are `axes`.
pub(crate) fn apply(
    prim: &Prim,
    values: &[Array],
    axes: &[Option<usize>],
    size: usize,
) -> Result<(Array, Option<usize>)> {
    match prim {
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
        | Prim::Convert(_)
        | Prim::StopGradient
        | Prim::CheckIndices(_)
        | Prim::Log1p
        | Prim::Expm1
        | Prim::Round(_) => Ok((bind(prim.clone(), &[&values[0]])?, axes[0])),
        Prim::Add
        | Prim::Sub
        | Prim::Mul
        | Prim::Div
        | Prim::Maximum
        | Prim::Minimum
        | Prim::Compare(_)
        | Prim::Select
        | Prim::Pow
        | Prim::Rem => {
            let moved = broadcast_front(values, axes, size)?;
            let refs: Vec<&Array> = moved.iter().collect();
            Ok((bind(prim.clone(), &refs)?, Some(0)))
        }
        Prim::Reshape(shape) => {
            let x = front(&values[0], axes[0])?;
            let mut new_shape = vec![size];
            new_shape.extend_from_slice(shape);
            Ok((x.reshape(&new_shape)?, Some(0)))
        }
        Prim::Permute(perm) => {
            let x = front(&values[0], axes[0])?;
            let mut new_perm = vec![0];
            new_perm.extend(perm.iter().map(|p| p + 1));
            Ok((x.transpose(&new_perm)?, Some(0)))
        }
        Prim::BroadcastTo(shape) => {
            let x = front(&values[0], axes[0])?;
            let rank = x.rank() - 1;
            let mut aligned = vec![size];
            aligned.extend(std::iter::repeat_n(1, shape.len() - rank));
            aligned.extend_from_slice(&x.shape()[1..]);
            let mut target = vec![size];
            target.extend_from_slice(shape);
            Ok((x.reshape(&aligned)?.broadcast_to(&target)?, Some(0)))
        }
        Prim::Sum(reduced) | Prim::Max(reduced) | Prim::Min(reduced) => {
            let x = front(&values[0], axes[0])?;
            let shifted: Vec<usize> = reduced.iter().map(|a| a + 1).collect();
            let prim = match prim {
                Prim::Sum(_) => Prim::Sum(shifted),
                Prim::Max(_) => Prim::Max(shifted),
                _ => Prim::Min(shifted),
            };
            Ok((bind(prim, &[&x])?, Some(0)))
        }
        Prim::MatMul => matmul(&values[0], axes[0], &values[1], axes[1], size),
        Prim::Take(axis) => take(&values[0], axes[0], &values[1], axes[1], *axis, size),
        Prim::IndexAdd(axis) => index_add(values, axes, *axis, size),
        Prim::Custom(rule) => {
            // The batched primitive is the same rule mapped over the batch,
            // so an outer `grad` still sees the user's derivative.
            let x = front(&values[0], axes[0])?;
            let (forward, backward) = (rule.forward.clone(), rule.backward.clone());
            let batched = CustomRule {
                forward: Arc::new(move |x: &Array| vmap(|x: &Array| forward(x))(x)),
                backward: Arc::new(move |x: &Array, y: &Array, ct: &Array| {
                    vmap(|(x, y, ct): &(Array, Array, Array)| backward(x, y, ct))(&(
                        x.clone(),
                        y.clone(),
                        ct.clone(),
                    ))
                }),
            };
            Ok((bind(Prim::Custom(batched), &[&x])?, Some(0)))
        }
        Prim::Softmax
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
        | Prim::StandardizeGrad { .. } => super::fused_rules::batch(prim, values, axes, size),
        // Operations along one axis: the batch goes in front and the axis
        // moves one along.
        Prim::ArgExtreme { axis, min } => {
            let x = front(&values[0], axes[0])?;
            let prim = Prim::ArgExtreme {
                axis: axis + 1,
                min: *min,
            };
            Ok((bind(prim, &[&x])?, Some(0)))
        }
        Prim::Argsort {
            axis,
            descending,
            k,
        } => {
            let x = front(&values[0], axes[0])?;
            let prim = Prim::Argsort {
                axis: axis + 1,
                descending: *descending,
                k: *k,
            };
            Ok((bind(prim, &[&x])?, Some(0)))
        }
        Prim::Cumsum { axis, reverse } => {
            let x = front(&values[0], axes[0])?;
            let prim = Prim::Cumsum {
                axis: axis + 1,
                reverse: *reverse,
            };
            Ok((bind(prim, &[&x])?, Some(0)))
        }
        Prim::AdamUpdate => super::adam_rules::batch(values, axes, size),
        Prim::Concat(axis) => {
            let parts = values
                .iter()
                .zip(axes)
                .map(|(v, a)| batched_front(v, *a, size))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Array> = parts.iter().collect();
            Ok((bind(Prim::Concat(axis + 1), &refs)?, Some(0)))
        }
        // Random primitives take any leading batch of keys.
        Prim::Random(_) => {
            let keys = front(&values[0], axes[0])?;
            Ok((bind(prim.clone(), &[&keys])?, Some(0)))
        }
    }
}

/// The inputs of an elementwise primitive that broadcasts, batched: a
/// batched input moved to axis 0 is `[B, ...shape]`; an unbatched one
/// broadcasts against it from the right, inside the kernel, without being
/// copied. Logical shapes may differ in rank (the kernels broadcast
/// numpy-style), so batched inputs get size-1 axes after the batch axis up
/// to the highest logical rank.
pub(crate) fn broadcast_front(
    values: &[Array],
    axes: &[Option<usize>],
    size: usize,
) -> Result<Vec<Array>> {
    let logical_rank = |v: &Array, a: &Option<usize>| v.rank() - usize::from(a.is_some());
    let rank = values
        .iter()
        .zip(axes)
        .map(|(v, a)| logical_rank(v, a))
        .max()
        .unwrap_or(0);
    values
        .iter()
        .zip(axes)
        .map(|(v, a)| {
            let x = front(v, *a)?;
            let missing = rank - logical_rank(v, a);
            if a.is_none() || missing == 0 {
                return Ok(x);
            }
            let mut shape = vec![size];
            shape.extend(std::iter::repeat_n(1, missing));
            shape.extend_from_slice(&x.shape()[1..]);
            x.reshape(&shape)
        })
        .collect::<Result<Vec<_>>>()
}

/// Moves the batch axis to the front; an unbatched value is left as it is.
pub(crate) fn front(x: &Array, axis: Option<usize>) -> Result<Array> {
    match axis {
        Some(0) | None => Ok(x.clone()),
        Some(a) => x.moveaxis(a as isize, 0),
    }
}

/// Gives every input a leading batch axis, broadcasting unbatched ones.
pub(crate) fn batched_front(x: &Array, axis: Option<usize>, size: usize) -> Result<Array> {
    match axis {
        Some(_) => front(x, axis),
        None => {
            let mut shape = vec![size];
            shape.extend_from_slice(x.shape());
            x.expand_dims(0)?.broadcast_to(&shape)
        }
    }
}

fn matmul(
    a: &Array,
    a_axis: Option<usize>,
    b: &Array,
    b_axis: Option<usize>,
    size: usize,
) -> Result<(Array, Option<usize>)> {
    let logical_rank = if a_axis.is_some() {
        a.rank() - 1
    } else {
        a.rank()
    };
    match (a_axis, b_axis) {
        // `[B*m, k] @ [k, n]`: one plain matrix product for the whole batch.
        (Some(_), None) if logical_rank == 2 => {
            let a = front(a, a_axis)?;
            let (m, k) = (a.shape()[1], a.shape()[2]);
            let n = b.shape()[1];
            let flat = a.reshape(&[size * m, k])?;
            let out = bind(Prim::MatMul, &[&flat, b])?;
            Ok((out.reshape(&[size, m, n])?, Some(0)))
        }
        // `a @ b_i` for each i is `(b_i^T a^T)^T`: stack the `b_i^T` into
        // `[B*n, k]` and multiply once by `a^T`.
        (None, Some(_)) if logical_rank == 2 => {
            let b = front(b, b_axis)?;
            let (k, n) = (b.shape()[1], b.shape()[2]);
            let m = a.shape()[0];
            let bt = b.transpose(&[0, 2, 1])?.reshape(&[size * n, k])?;
            let out = bind(Prim::MatMul, &[&bt, &a.t()?])?;
            Ok((out.reshape(&[size, n, m])?.transpose(&[0, 2, 1])?, Some(0)))
        }
        _ => {
            let a = batched_front(a, a_axis, size)?;
            let b = batched_front(b, b_axis, size)?;
            Ok((bind(Prim::MatMul, &[&a, &b])?, Some(0)))
        }
    }
}

/// Indices as `i64` after checking each is in `0..len`: folding a batch
/// into one gather offsets them by row, so an index out of its own row's
/// range would otherwise read or write another example's.
fn checked_i64(idx: &Array, len: usize) -> Result<Array> {
    bind(Prim::CheckIndices(len), &[idx])?.astype(crate::DType::I64)
}

fn take(
    x: &Array,
    x_axis: Option<usize>,
    idx: &Array,
    idx_axis: Option<usize>,
    axis: usize,
    size: usize,
) -> Result<(Array, Option<usize>)> {
    match (x_axis, idx_axis) {
        (Some(_), None) => {
            let x = front(x, x_axis)?;
            Ok((bind(Prim::Take(axis + 1), &[&x, idx])?, Some(0)))
        }
        // One gather with all the batch's indices; the batch axis of the
        // result sits where the indexed axis was.
        (None, Some(_)) => {
            let idx = front(idx, idx_axis)?;
            let n = idx.shape()[1];
            let flat = idx.reshape(&[size * n])?;
            let picked = bind(Prim::Take(axis), &[x, &flat])?;
            let mut shape = x.shape()[..axis].to_vec();
            shape.extend([size, n]);
            shape.extend_from_slice(&x.shape()[axis + 1..]);
            Ok((picked.reshape(&shape)?, Some(axis)))
        }
        _ => {
            // Both batched: fold the batch into the indexed axis, offsetting
            // each example's indices by its row, and gather once.
            let x = front(x, x_axis)?.moveaxis(axis as isize + 1, 1)?;
            let len = x.shape()[1];
            let idx = checked_i64(&front(idx, idx_axis)?, len)?;
            let n = idx.shape()[1];
            let rest = x.shape()[2..].to_vec();
            let mut folded_shape = vec![size * len];
            folded_shape.extend_from_slice(&rest);
            let folded = x.reshape(&folded_shape)?;
            let offsets = Array::arange(size, idx.dtype())?
                .mul_scalar(len as f64)?
                .expand_dims(1)?;
            let flat = idx.add(&offsets)?.reshape(&[size * n])?;
            let picked = bind(Prim::Take(0), &[&folded, &flat])?;
            let mut shape = vec![size, n];
            shape.extend_from_slice(&rest);
            Ok((
                picked.reshape(&shape)?.moveaxis(1, axis as isize + 1)?,
                Some(0),
            ))
        }
    }
}

fn index_add(
    values: &[Array],
    axes: &[Option<usize>],
    axis: usize,
    size: usize,
) -> Result<(Array, Option<usize>)> {
    let (base, idx, src) = (&values[0], &values[1], &values[2]);
    if axes[1].is_none() {
        // Same indices for every example: add along the shifted axis.
        let base = batched_front(base, axes[0], size)?;
        let src = batched_front(src, axes[2], size)?;
        return Ok((
            bind(Prim::IndexAdd(axis + 1), &[&base, idx, &src])?,
            Some(0),
        ));
    }
    // Per-example indices: fold the batch into the indexed axis, offset the
    // indices, and add once.
    let base = batched_front(base, axes[0], size)?.moveaxis(axis as isize + 1, 1)?;
    let src = batched_front(src, axes[2], size)?.moveaxis(axis as isize + 1, 1)?;
    let len = base.shape()[1];
    let idx = checked_i64(&front(idx, axes[1])?, len)?;
    let n = idx.shape()[1];
    let rest = base.shape()[2..].to_vec();
    let fold = |x: &Array, rows: usize| -> Result<Array> {
        let mut shape = vec![size * rows];
        shape.extend_from_slice(&rest);
        x.reshape(&shape)
    };
    let offsets = Array::arange(size, idx.dtype())?
        .mul_scalar(len as f64)?
        .expand_dims(1)?;
    let flat = idx.add(&offsets)?.reshape(&[size * n])?;
    let out = bind(
        Prim::IndexAdd(0),
        &[&fold(&base, len)?, &flat, &fold(&src, n)?],
    )?;
    let mut shape = vec![size, len];
    shape.extend_from_slice(&rest);
    Ok((
        out.reshape(&shape)?.moveaxis(1, axis as isize + 1)?,
        Some(0),
    ))
}
