//! `eval_shape`: a function run on shapes and dtypes alone.
//!
//! Inside, every input array is an abstract tracer, which holds a shape and
//! a dtype and nothing else. Each primitive applied to one is answered by
//! its shape rule ([`Prim::abstract_eval`](crate::array::prim::Prim)), so
//! no kernel runs and no memory is allocated for the arrays `f` computes.
//! Transformations nest with it as with any other: `eval_shape(vmap(f))`
//! batches abstract values and `eval_shape(grad(f))` records and pulls back
//! abstract values.

use crate::array::prim::CustomRule;
use crate::array::{Array, Aval};
use crate::error::Result;
use crate::tree::{Tree, tree_map};

use super::trace::{Frame, FrameKind, check_output, make_abstract_tracer, push_frame};

/// The shapes and dtypes of `f(args)`, computed without data: Equinox's
/// `filter_eval_shape` (JAX's `eval_shape`).
///
/// Every array of `args` (a real array or an [`Array::shape_dtype`]
/// stand-in) is replaced by an abstract value of its shape and dtype, and
/// every array of the output comes back as an [`Array::shape_dtype`]
/// stand-in; holes and the rest of both trees are kept. A mistake of shapes
/// or dtypes is the same [`Error`](crate::Error) as running `f` would give.
/// Only what needs values fails: reading them (`to_vec`), and checks of
/// values (an index out of range is not found).
///
/// # Examples
///
/// A layer far too large to allocate is built abstractly, instantly:
///
/// ```
/// use solstice::{eval_shape, nn::Linear, random::Key};
/// # fn main() -> solstice::Result<()> {
/// let big = eval_shape(|key: &Key| Linear::new(100_000, 100_000, key.clone()), &Key::new(0))?;
/// assert_eq!(big.weight.shape(), &[100_000, 100_000]);
/// assert!(big.weight.is_shape_dtype());
/// # Ok(()) }
/// ```
///
/// Shape errors are those of the eager run:
///
/// ```
/// use solstice::{Array, DType, eval_shape};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::shape_dtype(&[3, 4], DType::F32);
/// let y = eval_shape(|x: &Array| x.matmul(x), &x);
/// assert!(y.unwrap_err().is_shape_mismatch());
/// let z = eval_shape(|x: &Array| x.matmul(&x.t()?), &x)?;
/// assert_eq!(format!("{z:?}"), "f32[3,3]");
/// # Ok(()) }
/// ```
pub fn eval_shape<I: Tree, O: Tree>(f: impl FnOnce(&I) -> Result<O>, args: &I) -> Result<O> {
    let guard = push_frame(FrameKind::Abstract);
    let frame = guard.frame.clone();
    let traced = to_abstract(&frame, args)?;
    let out = f(&traced)?;
    let out = tree_map(&out, |_, a| {
        if a.is_hole() {
            return Ok(a.clone());
        }
        check_output(&frame, a)?;
        Ok(Array::shape_dtype(a.shape(), a.dtype()))
    })?;
    drop(guard);
    Ok(out)
}

/// Runs `f` on an abstract copy of `args` inside a frame of its own. What
/// `f` returns must not hold the abstract arrays, which die with the frame.
pub(crate) fn abstractly<I: Tree, R>(args: &I, f: impl FnOnce(&I) -> Result<R>) -> Result<R> {
    let guard = push_frame(FrameKind::Abstract);
    let traced = to_abstract(&guard.frame, args)?;
    f(&traced)
}

fn to_abstract<I: Tree>(frame: &Frame, args: &I) -> Result<I> {
    tree_map(args, |_, a| {
        Ok(if a.is_hole() {
            a.clone()
        } else {
            make_abstract_tracer(frame, a.shape().to_vec(), a.dtype())
        })
    })
}

/// The shape and dtype of a `custom_vjp` function's output: its forward
/// function traced on an abstract input.
pub(crate) fn custom_aval(rule: &CustomRule, x: &Aval) -> Result<Aval> {
    let input = Array::shape_dtype(&x.shape, x.dtype);
    abstractly(&input, |input| {
        let y = (rule.forward)(input)?;
        Ok(Aval::new(y.shape().to_vec(), y.dtype()))
    })
}
