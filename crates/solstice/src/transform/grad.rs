//! Reverse-mode differentiation: `grad`, `filter_grad`,
//! `filter_value_and_grad`.
//!
//! A `grad` frame records every operation on its tracers on a tape. The
//! backward pass walks the tape in reverse, calling each primitive's VJP
//! rule. Those rules are `Array` operations one level down, so an outer
//! `grad` records them in turn (`grad(grad(f))`) and an outer `vmap` batches
//! them (per-example gradients).

use std::cell::RefCell;
use std::rc::Rc;

use crate::array::Array;
use crate::array::prim::Prim;
use crate::error::{Error, Result};
use crate::tree::ties::check_aliasing_slots;
use crate::tree::{KeyPath, Tree, tree_map, tree_slots, with_slots};

use super::trace::{FrameKind, check_output, make_grad_tracer, push_frame, unwrap_grad};
use super::vjp_rules;

/// The record of one `grad` frame.
#[derive(Default)]
pub(crate) struct Tape {
    entries: Vec<Entry>,
}

enum Entry {
    Input,
    Op {
        prim: Prim,
        inputs: Vec<Array>,
        parents: Vec<Option<usize>>,
        output: Array,
    },
}

impl Tape {
    pub(crate) fn push_op(
        &mut self,
        prim: Prim,
        inputs: Vec<Array>,
        parents: Vec<Option<usize>>,
        output: Array,
    ) -> usize {
        self.entries.push(Entry::Op {
            prim,
            inputs,
            parents,
            output,
        });
        self.entries.len() - 1
    }

    fn push_input(&mut self) -> usize {
        self.entries.push(Entry::Input);
        self.entries.len() - 1
    }

    /// Cotangents of every node, from `seed` at node `out`. The tape is
    /// kept, so a pullback can run many times (as `jacrev` does).
    fn backward(&self, out: usize, seed: Array) -> Result<Vec<Option<Array>>> {
        let mut cts: Vec<Option<Array>> = vec![None; self.entries.len()];
        cts[out] = Some(seed);
        for (i, entry) in self.entries.iter().enumerate().rev() {
            let Entry::Op {
                prim,
                inputs,
                parents,
                output,
            } = entry
            else {
                continue;
            };
            let Some(ct) = cts[i].take() else { continue };
            let grads = vjp_rules::apply(prim, inputs, output, &ct)
                .map_err(|e| e.context(format!("in the derivative of {}", prim.name())))?;
            for (parent, g) in parents.iter().zip(grads) {
                if let (Some(p), Some(g)) = (*parent, g) {
                    cts[p] = Some(match cts[p].take() {
                        Some(acc) => acc.add(&g)?,
                        None => g,
                    });
                }
            }
        }
        Ok(cts)
    }
}

/// What `f` recorded: enough to pull cotangents back to its inputs.
pub(crate) struct Recording {
    tape: Rc<Tape>,
    out_node: Option<usize>,
    input_nodes: Vec<Option<usize>>,
    inputs: Vec<Array>,
    out_shape: Vec<usize>,
    out_dtype: crate::array::DType,
}

impl Recording {
    /// The cotangents of the inputs for the output cotangent `ct` (zeros
    /// where the output does not depend on an input; `None` where the input
    /// was not differentiated).
    pub(crate) fn pull_back(&self, ct: &Array, api: &str) -> Result<Vec<Option<Array>>> {
        if ct.shape() != self.out_shape.as_slice() || ct.dtype() != self.out_dtype {
            return Err(Error::shape(format!(
                "{api} needs a cotangent of the output's shape and dtype, {}{:?}, but got {}",
                self.out_dtype.short_name(),
                self.out_shape,
                ct.short_description()
            )));
        }
        let cts = match self.out_node {
            Some(node) => self.tape.backward(node, ct.clone())?,
            None => Vec::new(),
        };
        self.inputs
            .iter()
            .zip(&self.input_nodes)
            .map(|(p, node)| {
                node.map(|n| match cts.get(n).cloned().flatten() {
                    Some(g) if g.shape() != p.shape() => Err(Error::internal(format!(
                        "{api} computed a gradient of shape {:?} for an input of shape {:?}",
                        g.shape(),
                        p.shape()
                    ))),
                    Some(g) => Ok(g),
                    None => Array::zeros(p.shape(), p.dtype()),
                })
                .transpose()
            })
            .collect()
    }
}

/// Runs `f` on `primals` with those marked in `wrt` traced, and returns its
/// output (untraced at this level) and the recording to pull back through.
pub(crate) fn record<R: Tree>(
    f: impl FnOnce(&[Array]) -> Result<(Array, R)>,
    primals: &[Array],
    wrt: &[bool],
    api: &str,
) -> Result<(Array, R, Recording)> {
    let guard = push_frame(FrameKind::Grad {
        tape: RefCell::new(Tape::default()),
    });
    let frame = guard.frame.clone();
    let FrameKind::Grad { tape } = &frame.kind else {
        unreachable!("a grad frame was just pushed")
    };
    let mut input_nodes = Vec::with_capacity(primals.len());
    let traced: Vec<Array> = primals
        .iter()
        .zip(wrt)
        .map(|(p, &w)| {
            if w {
                let node = tape.borrow_mut().push_input();
                input_nodes.push(Some(node));
                make_grad_tracer(&frame, p.clone(), node)
            } else {
                input_nodes.push(None);
                p.clone()
            }
        })
        .collect();
    let (out, aux) = f(&traced)?;
    drop(guard);
    // Auxiliary outputs come back as values, not derivatives: JAX's
    // `has_aux` stops their gradient the same way.
    let aux = tree_map(&aux, |_, a| {
        check_output(&frame, a)?;
        Ok(unwrap_grad(&frame, a).0)
    })?;
    check_output(&frame, &out)?;
    out.check_value(api)?;
    if !out.dtype().is_float() {
        return Err(Error::transform(format!(
            "{api} needs the function to return a float array but it returned {}",
            out.short_description()
        )));
    }
    let (value, out_node) = unwrap_grad(&frame, &out);
    let tape = std::mem::take(&mut *tape.borrow_mut());
    let recording = Recording {
        tape: Rc::new(tape),
        out_node,
        input_nodes,
        inputs: primals.to_vec(),
        out_shape: value.shape().to_vec(),
        out_dtype: value.dtype(),
    };
    Ok((value, aux, recording))
}

/// The value of `f` at `primals` and its gradient with respect to each
/// primal marked in `wrt` (zeros where `f` does not depend on it).
pub(crate) fn value_and_grad_slots<R: Tree>(
    f: impl FnOnce(&[Array]) -> Result<(Array, R)>,
    primals: &[Array],
    wrt: &[bool],
    api: &str,
) -> Result<(Array, R, Vec<Option<Array>>)> {
    let (value, aux, recording) = record(f, primals, wrt, api)?;
    if !value.shape().is_empty() {
        return Err(Error::transform(format!(
            "{api} needs the function to return a float scalar (shape []) but it returned {}; \
             reduce it first, for example with `mean_all`",
            value.short_description()
        )));
    }
    let grads = recording.pull_back(&Array::ones(&[], value.dtype())?, api)?;
    Ok((value, aux, grads))
}

/// The value of `f(model, args)` and its gradient with respect to the
/// floating arrays of `model`, as a tree of `model`'s own type: Equinox's
/// `filter_value_and_grad`.
///
/// `args` is borrowed, so one gradient function serves every batch: pass a
/// tuple such as `&(x, y)` for several arguments, `&()` for none.
///
/// The gradient holds an array for every floating leaf of `model` (zeros
/// where `f` does not depend on it) and is absent elsewhere: at integer
/// arrays, at absent slots, and at `Shared` placeholders (the gradient of a
/// tied node lands on its source leaf).
///
/// The same floating array in two leaves of `model` is an error naming both
/// paths: the two leaves would get two gradients and drift apart. Tie them with
/// `Shared`, or opt out with [`allow_aliasing`](crate::tree::allow_aliasing).
///
/// # Examples
///
/// ```
/// use solstice::{Array, filter_value_and_grad};
/// # fn main() -> solstice::Result<()> {
/// // f(w, c) = sum(w * w) + c; only floats are differentiated.
/// let model = (Array::from_vec(vec![1.0f32, -2.0], &[2])?, Array::scalar(3i64)?);
/// let loss = |m: &(Array, Array), scale: &f64| m.0.square()?.sum_all()?.mul_scalar(*scale);
/// let (value, grads) = filter_value_and_grad(loss)(&model, &1.0)?;
/// assert_eq!(value.to_scalar::<f32>()?, 5.0);
/// assert_eq!(grads.0.to_vec::<f32>()?, vec![2.0, -4.0]);
/// assert!(grads.1.is_absent());
/// # Ok(()) }
/// ```
pub fn filter_value_and_grad<T: Tree, A: ?Sized, F>(f: F) -> impl Fn(&T, &A) -> Result<(Array, T)>
where
    F: Fn(&T, &A) -> Result<Array>,
{
    move |model: &T, args: &A| {
        let ((value, ()), grads) =
            value_and_grad_tree(model, |m| Ok((f(m, args)?, ())), "filter_value_and_grad")?;
        Ok((value, grads))
    }
}

/// [`filter_value_and_grad`] for a function that also returns auxiliary
/// data (Equinox's `has_aux=True`): `f` returns `(loss, aux)`, and the
/// result is `((loss, aux), grads)`. `aux` is not differentiated.
///
/// # Examples
///
/// ```
/// use solstice::{Array, filter_value_and_grad_aux};
/// # fn main() -> solstice::Result<()> {
/// let w = Array::from_vec(vec![3.0f32], &[1])?;
/// let f = |w: &Array, _: &()| {
///     let y = w.square()?;
///     Ok((y.sum_all()?, y)) // the loss, and the squares as aux
/// };
/// let ((loss, squares), grads) = filter_value_and_grad_aux(f)(&w, &())?;
/// assert_eq!(loss.to_scalar::<f32>()?, 9.0);
/// assert_eq!(squares.to_vec::<f32>()?, vec![9.0]);
/// assert_eq!(grads.to_vec::<f32>()?, vec![6.0]);
/// # Ok(()) }
/// ```
pub fn filter_value_and_grad_aux<T: Tree, A: ?Sized, Aux: Tree, F>(
    f: F,
) -> impl Fn(&T, &A) -> Result<((Array, Aux), T)>
where
    F: Fn(&T, &A) -> Result<(Array, Aux)>,
{
    move |model: &T, args: &A| {
        value_and_grad_tree(model, |m| f(m, args), "filter_value_and_grad_aux")
    }
}

/// [`filter_grad`] for a function that also returns auxiliary data
/// (Equinox's `has_aux=True`): the result is `(grads, aux)`.
pub fn filter_grad_aux<T: Tree, A: ?Sized, Aux: Tree, F>(
    f: F,
) -> impl Fn(&T, &A) -> Result<(T, Aux)>
where
    F: Fn(&T, &A) -> Result<(Array, Aux)>,
{
    move |model: &T, args: &A| {
        let ((_, aux), grads) = value_and_grad_tree(model, |m| f(m, args), "filter_grad_aux")?;
        Ok((grads, aux))
    }
}

/// The gradient of `f(model, args)` with respect to the floating arrays of
/// `model`: Equinox's `filter_grad`. See [`filter_value_and_grad`], whose
/// aliasing guard it shares.
pub fn filter_grad<T: Tree, A: ?Sized, F>(f: F) -> impl Fn(&T, &A) -> Result<T>
where
    F: Fn(&T, &A) -> Result<Array>,
{
    move |model: &T, args: &A| {
        Ok(value_and_grad_tree(model, |m| Ok((f(m, args)?, ())), "filter_grad")?.1)
    }
}

/// The gradient of a scalar function of one array: `jax.grad`. Compose it
/// freely: `grad(grad(f))` is the second derivative.
///
/// # Examples
///
/// ```
/// use solstice::{Array, grad};
/// # fn main() -> solstice::Result<()> {
/// let cube = |x: &Array| x.mul(x)?.mul(x);
/// let x = Array::scalar(2.0f64)?;
/// assert_eq!(grad(cube)(&x)?.to_scalar::<f64>()?, 12.0);
/// assert_eq!(grad(grad(cube))(&x)?.to_scalar::<f64>()?, 12.0);
/// # Ok(()) }
/// ```
pub fn grad<F>(f: F) -> impl Fn(&Array) -> Result<Array>
where
    F: Fn(&Array) -> Result<Array>,
{
    move |x: &Array| {
        if !x.dtype().is_float() {
            return Err(Error::dtype(format!(
                "grad differentiates float arrays but got {}",
                x.short_description()
            )));
        }
        let (_, (), grads) = value_and_grad_slots(
            |xs| Ok((f(&xs[0])?, ())),
            std::slice::from_ref(x),
            &[true],
            "grad",
        )?;
        Ok(grads
            .into_iter()
            .next()
            .flatten()
            .expect("one differentiated input"))
    }
}

fn value_and_grad_tree<T: Tree, R: Tree>(
    model: &T,
    f: impl FnOnce(&T) -> Result<(Array, R)>,
    api: &str,
) -> Result<((Array, R), T)> {
    let (paths, slots): (Vec<KeyPath>, Vec<Array>) = tree_slots(model).into_iter().unzip();
    let wrt: Vec<bool> = slots.iter().map(crate::tree::is_inexact_array).collect();
    // The same differentiated array in two leaves would get two gradients
    // and two updates: refuse it.
    check_aliasing_slots(&slots, &wrt, |i| paths[i].clone(), api)?;
    let (value, aux, grads) =
        value_and_grad_slots(|traced| f(&with_slots(model, traced)), &slots, &wrt, api)?;
    let grads: Vec<Array> = grads
        .into_iter()
        .map(|g| g.unwrap_or_else(Array::absent))
        .collect();
    Ok(((value, aux), with_slots(model, &grads)))
}

/// For each array `f` returns, which `primals` it is computed from, and
/// whether it is one of them, returned as it is. Floating primals are
/// traced, so dependencies through operations are found; other primals
/// count only when returned as they are.
pub(crate) fn dependencies(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    primals: &[Array],
) -> Result<Vec<(Vec<usize>, bool)>> {
    let guard = push_frame(FrameKind::Grad {
        tape: RefCell::new(Tape::default()),
    });
    let frame = guard.frame.clone();
    let FrameKind::Grad { tape } = &frame.kind else {
        unreachable!("a grad frame was just pushed")
    };
    let mut input_of = std::collections::HashMap::new();
    let traced: Vec<Array> = primals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if crate::tree::is_inexact_array(p) {
                let node = tape.borrow_mut().push_input();
                input_of.insert(node, i);
                make_grad_tracer(&frame, p.clone(), node)
            } else {
                p.clone()
            }
        })
        .collect();
    let outs = f(&traced)?;
    drop(guard);
    let tape = tape.borrow();
    Ok(outs
        .iter()
        .map(|out| {
            if let Some(i) = primals.iter().position(|p| p.is(out)) {
                return (vec![i], true);
            }
            let (_, node) = unwrap_grad(&frame, out);
            let Some(node) = node else {
                return (Vec::new(), false);
            };
            if let Some(&i) = input_of.get(&node) {
                return (vec![i], true);
            }
            let mut seen = vec![false; tape.entries.len()];
            let mut stack = vec![node];
            let mut inputs = Vec::new();
            while let Some(n) = stack.pop() {
                if std::mem::replace(&mut seen[n], true) {
                    continue;
                }
                match &tape.entries[n] {
                    Entry::Input => inputs.extend(input_of.get(&n).copied()),
                    Entry::Op { parents, .. } => stack.extend(parents.iter().flatten()),
                }
            }
            inputs.sort_unstable();
            (inputs, false)
        })
        .collect())
}

/// The pullback of [`vjp`]: maps a cotangent of the output to cotangents of
/// the input tree.
pub struct Pullback<I> {
    recording: Recording,
    template: I,
}

impl<I: Tree> Pullback<I> {
    /// The input's cotangent for the output cotangent `ct`, as a tree of the
    /// input's type (absent where the input was not differentiated). It can
    /// be called many times, and under `vmap`.
    pub fn call(&self, ct: &Array) -> Result<I> {
        let grads = self.recording.pull_back(ct, "vjp")?;
        let slots: Vec<Array> = grads
            .into_iter()
            .map(|g| g.unwrap_or_else(Array::absent))
            .collect();
        Ok(with_slots(&self.template, &slots))
    }
}

/// `f(primals)` and its pullback: `jax.vjp` for a function of a tree that
/// returns one array. The floating arrays of `primals` are differentiated.
///
/// # Examples
///
/// ```
/// use solstice::{Array, vjp};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let (y, pullback) = vjp(|x: &Array| x.square(), &x)?;
/// assert_eq!(y.to_vec::<f64>()?, vec![1.0, 4.0]);
/// let ct = Array::from_vec(vec![1.0f64, 10.0], &[2])?;
/// assert_eq!(pullback.call(&ct)?.to_vec::<f64>()?, vec![2.0, 40.0]);
/// # Ok(()) }
/// ```
pub fn vjp<I: Tree>(
    f: impl FnOnce(&I) -> Result<Array>,
    primals: &I,
) -> Result<(Array, Pullback<I>)> {
    let slots: Vec<Array> = tree_slots(primals).into_iter().map(|(_, a)| a).collect();
    let wrt: Vec<bool> = slots.iter().map(crate::tree::is_inexact_array).collect();
    let (value, (), recording) = record(
        |traced| Ok((f(&with_slots(primals, traced))?, ())),
        &slots,
        &wrt,
        "vjp",
    )?;
    Ok((
        value,
        Pullback {
            recording,
            template: primals.clone(),
        },
    ))
}
