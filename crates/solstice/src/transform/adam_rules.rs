//! The batching, VJP and JVP rules of the fused Adam(W) step
//! (`Prim::AdamUpdate`). Its inputs broadcast together like an elementwise
//! primitive's, with the three outputs stacked in front. The derivative
//! rules differentiate the same step composed of elementwise operations
//! (`array/adam.rs`), so they are exact and nest like any other.

use crate::array::Array;
use crate::array::adam::adam_reference;
use crate::array::prim::Prim;
use crate::error::Result;

use super::batching::broadcast_front;
use super::grad::vjp as vjp_of;
use super::jvp::jvp as jvp_of;
use super::trace::bind;

/// The batched step: every batched input gets its batch axis in front (and
/// size-1 axes up to the highest logical rank); the outputs stay stacked in
/// front, so the batch axis is 1.
pub(crate) fn batch(
    values: &[Array],
    axes: &[Option<usize>],
    size: usize,
) -> Result<(Array, Option<usize>)> {
    let moved = broadcast_front(values, axes, size)?;
    let refs: Vec<&Array> = moved.iter().collect();
    Ok((bind(Prim::AdamUpdate, &refs)?, Some(1)))
}

/// Cotangents of all fourteen inputs, each of its input's shape.
pub(crate) fn vjp(inputs: &[Array], ct: &Array) -> Result<Vec<Option<Array>>> {
    let (_, pullback) = vjp_of(|x: &Vec<Array>| adam_reference(x), &inputs.to_vec())?;
    Ok(pullback.call(ct)?.into_iter().map(Some).collect())
}

/// The output's tangent.
pub(crate) fn jvp(x: &[Array], t: &[Option<Array>]) -> Result<Option<Array>> {
    if t.iter().all(Option::is_none) {
        return Ok(None);
    }
    let tangents = x
        .iter()
        .zip(t)
        .map(|(x, t)| match t {
            Some(t) => Ok(t.clone()),
            None => Array::zeros(x.shape(), x.dtype()),
        })
        .collect::<Result<Vec<_>>>()?;
    let (_, tangent) = jvp_of(|x: &Vec<Array>| adam_reference(x), &x.to_vec(), &tangents)?;
    Ok(Some(tangent))
}
