//! `vmap`: a function of one example turned into a function of a batch.
//!
//! Inside, every mapped array is a batch tracer; each operation on it runs
//! its primitive's batching rule, once, on the whole batch. Nothing loops
//! over examples.

use std::sync::Arc;

use crate::array::{Array, resolve_axis};
use crate::error::{Error, Result};
use crate::tree::{KeyPath, PathKey, Tree, tree_map, tree_slots, with_slots};

use super::trace::{FrameKind, check_output, make_batch_tracer, push_frame, unwrap_batch};

/// Picks an axis for the array at a path; see [`Axes::ByPath`].
pub type PathAxis = Arc<dyn Fn(&KeyPath) -> Option<isize> + Send + Sync>;

/// Which axis of each array `vmap` maps (Equinox's and JAX's `in_axes` and
/// `out_axes`). `None` means not mapped: an input broadcast to every
/// example, or an output that is the same for every example. Negative axes
/// count from the end.
#[derive(Clone)]
pub enum Axes {
    /// The same for every array of the tree.
    All(Option<isize>),
    /// One entry per element of a tuple, applying to every array under it,
    /// as JAX's `in_axes=(0, None)` does for positional arguments.
    PerElement(Vec<Option<isize>>),
    /// Chosen for each array by its path in the tree.
    ByPath(PathAxis),
}

impl Axes {
    fn axis_for(&self, api: &str, path: &KeyPath) -> Result<Option<isize>> {
        match self {
            Axes::All(axis) => Ok(*axis),
            Axes::PerElement(axes) => match path.keys().first() {
                Some(PathKey::Index(i)) if *i < axes.len() => Ok(axes[*i]),
                _ => Err(Error::invalid(format!(
                    "{api}: Axes::PerElement has {} entries but the array at {path} is not under \
                     one of the first {} elements of a tuple",
                    axes.len(),
                    axes.len()
                ))),
            },
            Axes::ByPath(f) => Ok(f(path)),
        }
    }
}

fn resolve(api: &str, axis: isize, rank: usize, path: &KeyPath) -> Result<usize> {
    resolve_axis(api, axis, rank).map_err(|e| e.context(format!("at {path}")))
}

/// Vectorises `f` over axis 0 of every array in its input tree: Equinox's
/// `filter_vmap` with its defaults. Arrays `f` closes over are the same for
/// every example. Every array of the output gets the batch as axis 0 (an
/// output that does not depend on the batch is broadcast). For other axes,
/// use [`vmap_with`].
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
    vmap_with(f, Axes::All(Some(0)), Axes::All(Some(0)))
}

/// [`vmap`] under Equinox's name.
pub fn filter_vmap<I: Tree, O: Tree, F>(f: F) -> impl Fn(&I) -> Result<O>
where
    F: Fn(&I) -> Result<O>,
{
    vmap(f)
}

/// [`vmap`] with chosen axes for the inputs and outputs.
///
/// # Examples
///
/// ```
/// use solstice::{Array, Axes, vmap_with};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let b = Array::from_vec(vec![10.0f32, 20.0], &[2])?;
/// // Map the columns of x (axis 1); b is the same for every column.
/// let f = vmap_with(
///     |p: &(Array, Array)| p.0.add(&p.1),
///     Axes::PerElement(vec![Some(1), None]),
///     Axes::All(Some(1)),
/// );
/// let y = f(&(x, b))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
/// # Ok(()) }
/// ```
pub fn vmap_with<I: Tree, O: Tree, F>(
    f: F,
    in_axes: Axes,
    out_axes: Axes,
) -> impl Fn(&I) -> Result<O>
where
    F: Fn(&I) -> Result<O>,
{
    move |inputs: &I| vmap_tree(&f, inputs, &in_axes, &out_axes)
}

fn vmap_tree<I: Tree, O: Tree>(
    f: &impl Fn(&I) -> Result<O>,
    inputs: &I,
    in_axes: &Axes,
    out_axes: &Axes,
) -> Result<O> {
    let slots = tree_slots(inputs);
    let mut axes = Vec::with_capacity(slots.len());
    let mut size: Option<(usize, String)> = None;
    for (path, a) in &slots {
        let axis = if a.is_hole() {
            None
        } else {
            in_axes.axis_for("vmap", path)?
        };
        let Some(axis) = axis else {
            axes.push(None);
            continue;
        };
        if a.rank() == 0 {
            return Err(Error::shape(format!(
                "vmap maps axis {axis} of the array at {path} but it is a scalar ({}); \
                 give it axis None to broadcast it",
                a.short_description()
            )));
        }
        let axis = resolve("vmap", axis, a.rank(), path)?;
        let n = a.shape()[axis];
        match &size {
            None => size = Some((n, path.to_string())),
            Some((m, first)) if *m != n => {
                return Err(Error::shape(format!(
                    "vmap got inputs of different batch sizes: {m} at {first} and {n} at {path}"
                )));
            }
            _ => {}
        }
        axes.push(Some(axis));
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
        .zip(&axes)
        .map(|((_, a), axis)| match axis {
            Some(axis) => make_batch_tracer(&frame, a.clone(), *axis),
            None => a.clone(),
        })
        .collect();
    let out = f(&with_slots(inputs, &traced))?;
    drop(guard);
    tree_map(&out, |path, a| {
        if a.is_hole() {
            return Ok(a.clone());
        }
        check_output(&frame, a)?;
        let (value, axis) = unwrap_batch(&frame, a);
        let Some(target) = out_axes.axis_for("vmap", path)? else {
            return match axis {
                None => Ok(value),
                Some(_) => Err(Error::shape(format!(
                    "vmap was told the output at {path} is not mapped (out axis None) \
                     but it differs across the batch"
                ))),
            };
        };
        let target = resolve(
            "vmap",
            target,
            value.rank() + usize::from(axis.is_none()),
            path,
        )?;
        match axis {
            Some(axis) if axis == target => Ok(value),
            Some(axis) => value.moveaxis(axis as isize, target as isize),
            None => {
                let mut shape = value.shape().to_vec();
                shape.insert(target, size);
                value.expand_dims(target as isize)?.broadcast_to(&shape)
            }
        }
    })
}
