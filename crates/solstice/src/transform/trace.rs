//! The interpreter stack that makes transformations compose.
//!
//! Each active transformation (a `vmap` or a `grad`) pushes a *frame* on a
//! per-thread stack; its level is its depth there. Inside it, arrays are
//! *tracers* that remember their level. [`bind`] sends each primitive to the
//! highest level among its inputs: that frame handles the operation by
//! calling `bind` again on the values one level down (batched values for
//! `vmap`, primals for `grad`). With no tracer among the inputs, the eager
//! kernel runs. This is how `vmap(grad(f))` and `grad(grad(f))` work with no
//! special cases.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::array::prim::Prim;
use crate::array::{Array, Aval};
use crate::error::{Error, Result};

use super::{batching, grad::Tape};

/// The payload of a tracer [`Array`].
pub(crate) struct Tracer {
    pub(crate) level: usize,
    /// Identifies the frame, so a tracer that escaped its transformation is
    /// caught instead of being confused with a later frame at its level.
    pub(crate) frame: u64,
    /// The thread whose transformation made it: frames are per thread, so a
    /// tracer sent to another thread is reported as such.
    pub(crate) thread: u64,
    pub(crate) kind: TracerKind,
}

pub(crate) enum TracerKind {
    /// A batch of values: `value` has the batch axis at `axis`.
    Batch { value: Array, axis: usize },
    /// A value whose derivative `grad` tracks: `node` indexes the tape.
    Grad { primal: Array, node: usize },
    /// A value with its tangent, for `jvp`; `None` is a zero tangent.
    Jvp {
        primal: Array,
        tangent: Option<Array>,
    },
    /// Only a shape and dtype, for `eval_shape`: no value exists.
    Abstract,
}

impl Tracer {
    /// The value this tracer stands for, where it has one (grad tracers).
    pub(crate) fn primal(&self) -> Option<&Array> {
        match &self.kind {
            TracerKind::Grad { primal, .. } | TracerKind::Jvp { primal, .. } => Some(primal),
            TracerKind::Batch { .. } | TracerKind::Abstract => None,
        }
    }

    pub(crate) fn transform_name(&self) -> &'static str {
        match self.kind {
            TracerKind::Batch { .. } => "vmap",
            TracerKind::Grad { .. } => "grad",
            TracerKind::Jvp { .. } => "jvp",
            TracerKind::Abstract => "eval_shape",
        }
    }
}

pub(crate) enum FrameKind {
    Batch {
        size: usize,
    },
    Grad {
        tape: RefCell<Tape>,
    },
    Jvp,
    /// `eval_shape`: primitives are answered by their shape rules alone.
    Abstract,
}

pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) level: usize,
    pub(crate) kind: FrameKind,
}

thread_local! {
    static STACK: RefCell<Vec<Rc<Frame>>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    static KERNEL_LOG: RefCell<Option<Vec<&'static str>>> = const { RefCell::new(None) };
}

/// Runs `f` and lists the eager kernels it ran, by primitive name. Tests use
/// it to show that `vmap` runs one kernel per primitive, not a loop.
#[doc(hidden)]
pub fn record_kernels<R>(f: impl FnOnce() -> R) -> (R, Vec<&'static str>) {
    let previous = KERNEL_LOG.with(|log| log.borrow_mut().replace(Vec::new()));
    let out = f();
    let recorded = KERNEL_LOG.with(|log| std::mem::replace(&mut *log.borrow_mut(), previous));
    (out, recorded.unwrap_or_default())
}

static NEXT_FRAME: AtomicU64 = AtomicU64::new(1);
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

fn this_thread() -> u64 {
    THREAD.with(|t| *t)
}

/// Pops its frame when dropped, so an error or panic inside a transformed
/// function leaves the stack as it was.
pub(crate) struct FrameGuard {
    pub(crate) frame: Rc<Frame>,
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(pos) = s.iter().rposition(|f| f.id == self.frame.id) {
                s.truncate(pos);
            }
        });
    }
}

/// Pushes a new frame of `kind` and returns its guard.
pub(crate) fn push_frame(kind: FrameKind) -> FrameGuard {
    let id = NEXT_FRAME.fetch_add(1, Ordering::Relaxed);
    STACK.with(|s| {
        let mut s = s.borrow_mut();
        let frame = Rc::new(Frame {
            id,
            level: s.len() + 1,
            kind,
        });
        s.push(frame.clone());
        FrameGuard { frame }
    })
}

fn frame_at(level: usize) -> Option<Rc<Frame>> {
    STACK.with(|s| s.borrow().get(level - 1).cloned())
}

/// Applies a primitive to arrays: the single door of every numeric op.
pub(crate) fn bind(prim: Prim, args: &[&Array]) -> Result<Array> {
    let arity_holds = match prim.arity() {
        Some(n) => args.len() == n,
        None => !args.is_empty(),
    };
    if !arity_holds {
        return Err(Error::internal(format!(
            "{} takes {} inputs but got {}",
            prim.name(),
            prim.arity()
                .map_or("one or more".to_string(), |n| n.to_string()),
            args.len()
        )));
    }
    for a in args {
        a.check_value(prim.name())?;
    }
    let top = args
        .iter()
        .filter_map(|a| a.tracer())
        .max_by_key(|t| t.level);
    let Some(top) = top else {
        // Inside `eval_shape` even constants are computed abstractly, as
        // JAX stages everything out: no kernel runs there.
        if let Some(frame) = innermost_abstract() {
            return abstract_process(&frame, prim, args);
        }
        if let Prim::Custom(rule) = &prim {
            return (rule.forward)(args[0]);
        }
        // The public operations have checked the inputs in their own words,
        // so release builds leave the rule to `eval_shape`; debug builds run
        // it, and check the kernel against it.
        let aval = if cfg!(debug_assertions) {
            Some(prim.abstract_eval(&avals(args))?)
        } else {
            None
        };
        let tensors = args
            .iter()
            .map(|a| a.tensor(prim.name()))
            .collect::<Result<Vec<_>>>()?;
        KERNEL_LOG.with(|log| {
            if let Some(log) = log.borrow_mut().as_mut() {
                log.push(prim.name());
            }
        });
        let out = crate::array::eval_kernel(&prim, &tensors)
            .map_err(|e| e.context(format!("in {}", prim.name())))?;
        let out = Array::from_tensor(out)?;
        return match aval {
            Some(aval) => agrees(&prim, "kernel", &aval, out),
            None => Ok(out),
        };
    };
    let frame = frame_at(top.level)
        .filter(|f| f.id == top.frame)
        .ok_or_else(|| escaped(top))?;
    for a in args {
        if let Some(t) = a.tracer()
            && t.level == frame.level
            && t.frame != frame.id
        {
            return Err(escaped(t));
        }
    }
    // `Custom` is a composition: its own primitives are checked as they run.
    let aval = match &prim {
        Prim::Custom(_) => None,
        _ if cfg!(debug_assertions) => Some(prim.abstract_eval(&avals(args))?),
        _ => None,
    };
    let out = match &frame.kind {
        FrameKind::Batch { size } => batch_process(&frame, *size, prim.clone(), args)?,
        FrameKind::Grad { tape } => grad_process(&frame, tape, prim.clone(), args)?,
        FrameKind::Jvp => jvp_process(&frame, prim.clone(), args)?,
        FrameKind::Abstract => return abstract_process(&frame, prim, args),
    };
    match aval {
        Some(aval) => agrees(&prim, frame_name(&frame.kind), &aval, out),
        None => Ok(out),
    }
}

/// `prim` answered by its shape rule alone, with a tracer of the
/// `eval_shape` frame `frame`; a custom rule's function is traced.
fn abstract_process(frame: &Frame, prim: Prim, args: &[&Array]) -> Result<Array> {
    if let Prim::Custom(rule) = &prim {
        return (rule.forward)(args[0]);
    }
    let aval = prim.abstract_eval(&avals(args))?;
    Ok(make_abstract_tracer(frame, aval.shape, aval.dtype))
}

/// The innermost active `eval_shape` frame of this thread, if any.
fn innermost_abstract() -> Option<Rc<Frame>> {
    STACK.with(|s| {
        s.borrow()
            .iter()
            .rev()
            .find(|f| matches!(f.kind, FrameKind::Abstract))
            .cloned()
    })
}

/// Inside `eval_shape`, an abstract stand-in for a new constant of this
/// shape and dtype, so that constructors allocate nothing there either.
pub(crate) fn abstract_constant(shape: &[usize], dtype: crate::DType) -> Option<Array> {
    innermost_abstract().map(|frame| make_abstract_tracer(&frame, shape.to_vec(), dtype))
}

fn frame_name(kind: &FrameKind) -> &'static str {
    match kind {
        FrameKind::Batch { .. } => "batching rule",
        FrameKind::Grad { .. } => "grad",
        FrameKind::Jvp => "jvp rule",
        FrameKind::Abstract => "eval_shape",
    }
}

/// The shapes and dtypes of `args`, for the shape rules.
pub(crate) fn avals(args: &[&Array]) -> Vec<Aval> {
    args.iter()
        .map(|a| Aval::new(a.shape().to_vec(), a.dtype()))
        .collect()
}

/// `out`, after checking in debug builds that it has the shape and dtype
/// the primitive's shape rule gave: the rule and the kernels (or the
/// transformations' rules) must not drift apart.
fn agrees(prim: &Prim, by: &str, aval: &Aval, out: Array) -> Result<Array> {
    if cfg!(debug_assertions) && (out.shape() != aval.shape.as_slice() || out.dtype() != aval.dtype)
    {
        return Err(Error::internal(format!(
            "the {by} of {} gave {} but its shape rule says {aval}",
            prim.name(),
            out.short_description()
        )));
    }
    Ok(out)
}

/// A tracer of the `eval_shape` frame `frame` with this shape and dtype.
pub(crate) fn make_abstract_tracer(frame: &Frame, shape: Vec<usize>, dtype: crate::DType) -> Array {
    make_tracer(frame, shape, dtype, TracerKind::Abstract)
}

/// The error for `tracer`, which belongs to no active frame of this thread.
fn escaped(tracer: &Tracer) -> Error {
    if tracer.thread != this_thread() {
        return Error::transform(format!(
            "an array traced by `{}` was used on another thread than the one running its \
             transformation; transformations are per thread, so run the whole transformed \
             function on one thread (send concrete arrays between threads, not tracers)",
            tracer.transform_name()
        ));
    }
    Error::transform(format!(
        "an array traced by `{}` was used after its transformation returned; \
         return it from the transformed function instead of storing it",
        tracer.transform_name()
    ))
}

/// The payload of `a` if it is one of `frame`'s own tracers.
fn own<'a>(frame: &Frame, a: &'a Array) -> Option<&'a TracerKind> {
    a.tracer()
        .filter(|t| t.level == frame.level && t.frame == frame.id)
        .map(|t| &t.kind)
}

/// Fails if `a`, returned from `frame`'s function, is a tracer of a frame at
/// this level or above other than `frame`: one that escaped an earlier
/// transformation, which would otherwise be mistaken for a constant.
pub(crate) fn check_output(frame: &Frame, a: &Array) -> Result<()> {
    match a.tracer() {
        Some(t) if t.level >= frame.level && t.frame != frame.id => Err(escaped(t)),
        _ => Ok(()),
    }
}

fn make_tracer(frame: &Frame, shape: Vec<usize>, dtype: crate::DType, kind: TracerKind) -> Array {
    let tracer = Tracer {
        level: frame.level,
        frame: frame.id,
        thread: this_thread(),
        kind,
    };
    Array::from_tracer(shape, dtype, tracer)
}

/// If `a` is a batch tracer of `frame`, its value and batch axis;
/// otherwise `a` itself, unbatched.
pub(crate) fn unwrap_batch(frame: &Frame, a: &Array) -> (Array, Option<usize>) {
    match own(frame, a) {
        Some(TracerKind::Batch { value, axis }) => (value.clone(), Some(*axis)),
        _ => (a.clone(), None),
    }
}

pub(crate) fn make_batch_tracer(frame: &Frame, value: Array, axis: usize) -> Array {
    let mut shape = value.shape().to_vec();
    shape.remove(axis);
    let dtype = value.dtype();
    make_tracer(frame, shape, dtype, TracerKind::Batch { value, axis })
}

fn batch_process(frame: &Frame, size: usize, prim: Prim, args: &[&Array]) -> Result<Array> {
    let (values, axes): (Vec<Array>, Vec<Option<usize>>) =
        args.iter().map(|a| unwrap_batch(frame, a)).unzip();
    let (out, axis) = batching::apply(&prim, &values, &axes, size)?;
    Ok(match axis {
        Some(axis) => make_batch_tracer(frame, out, axis),
        None => out,
    })
}

/// If `a` is a grad tracer of `frame`, its primal and tape node; otherwise
/// `a` itself, untracked.
pub(crate) fn unwrap_grad(frame: &Frame, a: &Array) -> (Array, Option<usize>) {
    match own(frame, a) {
        Some(TracerKind::Grad { primal, node }) => (primal.clone(), Some(*node)),
        _ => (a.clone(), None),
    }
}

pub(crate) fn make_grad_tracer(frame: &Frame, primal: Array, node: usize) -> Array {
    let (shape, dtype) = (primal.shape().to_vec(), primal.dtype());
    make_tracer(frame, shape, dtype, TracerKind::Grad { primal, node })
}

fn grad_process(frame: &Frame, tape: &RefCell<Tape>, prim: Prim, args: &[&Array]) -> Result<Array> {
    let (primals, nodes): (Vec<Array>, Vec<Option<usize>>) =
        args.iter().map(|a| unwrap_grad(frame, a)).unzip();
    let refs: Vec<&Array> = primals.iter().collect();
    let out = bind(prim.clone(), &refs)?;
    if !prim.is_differentiable() || !out.dtype().is_float() {
        return Ok(out);
    }
    let node = tape.borrow_mut().push_op(prim, primals, nodes, out.clone());
    Ok(make_grad_tracer(frame, out, node))
}

/// If `a` is a jvp tracer of `frame`, its primal and tangent (`None` for a
/// zero tangent); otherwise `a` itself with a zero tangent.
pub(crate) fn unwrap_jvp(frame: &Frame, a: &Array) -> (Array, Option<Array>) {
    match own(frame, a) {
        Some(TracerKind::Jvp { primal, tangent }) => (primal.clone(), tangent.clone()),
        _ => (a.clone(), None),
    }
}

pub(crate) fn make_jvp_tracer(frame: &Frame, primal: Array, tangent: Option<Array>) -> Array {
    let (shape, dtype) = (primal.shape().to_vec(), primal.dtype());
    make_tracer(frame, shape, dtype, TracerKind::Jvp { primal, tangent })
}

fn jvp_process(frame: &Frame, prim: Prim, args: &[&Array]) -> Result<Array> {
    let (primals, tangents): (Vec<Array>, Vec<Option<Array>>) =
        args.iter().map(|a| unwrap_jvp(frame, a)).unzip();
    let refs: Vec<&Array> = primals.iter().collect();
    let out = bind(prim.clone(), &refs)?;
    if !prim.is_differentiable() || !out.dtype().is_float() || tangents.iter().all(Option::is_none)
    {
        return Ok(out);
    }
    let tangent = super::jvp::rule(&prim, &primals, &tangents, &out)
        .map_err(|e| e.context(format!("in the forward derivative of {}", prim.name())))?;
    Ok(match tangent {
        Some(t) => make_jvp_tracer(frame, out, Some(t)),
        None => out,
    })
}
