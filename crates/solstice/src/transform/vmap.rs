//! `vmap`: a function of one example turned into a function of a batch.
//!
//! Inside, every mapped array is a batch tracer; each operation on it runs
//! its primitive's batching rule, once, on the whole batch. Nothing loops
//! over examples.

use crate::array::Array;
use crate::error::{Error, Result};
use crate::tree::{Tree, tree_map, tree_slots, with_slots};

use super::trace::{FrameKind, make_batch_tracer, push_frame, unwrap_batch};

/// Vectorises `f` over axis 0 of every array in its input tree: Equinox's
/// `filter_vmap` with its defaults. Arrays `f` closes over are the same for
/// every example. Every array of the output gets the batch as axis 0 (an
/// output that does not depend on the batch is broadcast).
///
/// # Examples
///
/// ```
/// use solstice::{Array, vmap};
/// # fn main() -> solstice::Result<()> {
/// let w = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let xs = Array::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2])?;
/// // One example is a vector of 2; the batch is 3 of them.
/// let ys = vmap(|x: &Array| w.matmul(x))(&xs)?;
/// assert_eq!(ys.shape(), &[3, 2]);
/// assert_eq!(ys.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 4.0, 3.0, 7.0]);
/// # Ok(()) }
/// ```
pub fn vmap<I: Tree, O: Tree, F>(f: F) -> impl Fn(&I) -> Result<O>
where
    F: Fn(&I) -> Result<O>,
{
    move |inputs: &I| vmap_tree(&f, inputs)
}

fn vmap_tree<I: Tree, O: Tree>(f: &impl Fn(&I) -> Result<O>, inputs: &I) -> Result<O> {
    let slots = tree_slots(inputs);
    let mut size: Option<(usize, String)> = None;
    for (path, a) in &slots {
        if a.is_hole() {
            continue;
        }
        let Some(&n) = a.shape().first() else {
            return Err(Error::shape(format!(
                "vmap maps axis 0 of every input array but the array at {path} is a scalar ({})",
                a.short_description()
            )));
        };
        match &size {
            None => size = Some((n, path.to_string())),
            Some((m, first)) if *m != n => {
                return Err(Error::shape(format!(
                    "vmap got inputs of different batch sizes: {m} at {first} and {n} at {path}"
                )));
            }
            _ => {}
        }
    }
    let Some((size, _)) = size else {
        return Err(Error::shape(
            "vmap got no input arrays to map over; pass the batched arrays as the input",
        ));
    };
    let guard = push_frame(FrameKind::Batch { size });
    let frame = guard.frame.clone();
    let traced: Vec<Array> = slots
        .iter()
        .map(|(_, a)| {
            if a.is_hole() {
                a.clone()
            } else {
                make_batch_tracer(&frame, a.clone(), 0)
            }
        })
        .collect();
    let out = f(&with_slots(inputs, &traced))?;
    drop(guard);
    tree_map(&out, |_, a| {
        if a.is_hole() {
            return Ok(a.clone());
        }
        match unwrap_batch(&frame, a) {
            (value, Some(0)) => Ok(value),
            (value, Some(axis)) => value.moveaxis(axis as isize, 0),
            (value, None) => {
                let mut shape = vec![size];
                shape.extend_from_slice(value.shape());
                value.expand_dims(0)?.broadcast_to(&shape)
            }
        }
    })
}
