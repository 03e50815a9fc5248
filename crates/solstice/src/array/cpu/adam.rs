//! The fused Adam(W) update: the two moments and the update of one leaf in
//! one pass over its data (see `Prim::AdamUpdate` for the formula).
//!
//! Unfused, an AdamW step of a leaf is some fifteen elementwise kernels,
//! each reading and writing the whole leaf; this reads the gradient, the
//! moments and (with weight decay) the parameter once and writes the three
//! results once. The arithmetic is the unfused sequence's, operation for
//! operation in the leaf's dtype (no fused multiply-add), so the results
//! are the same bits.

use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::{Float, PARALLEL_MIN, alloc, tensor, threads};
use crate::error::{Error, Result};

/// The inputs, in `Prim::AdamUpdate`'s order.
const G: usize = 0;
const MU: usize = 1;
const NU: usize = 2;
const P: usize = 3;
const SCALARS: usize = 4;
/// `a1, b1, a2, b2, c1, c2, eps, eps_root, wd, s`.
const N_SCALARS: usize = 10;

/// An input as the loop reads it: the whole leaf, or one value.
enum Operand<'a, T> {
    Full(&'a [T]),
    One(T),
}

impl<T: Float> Operand<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        match self {
            Operand::Full(x) => x[i],
            Operand::One(v) => *v,
        }
    }
}

/// `[3, ...shape]`: the new first moment, second moment and update, or
/// `None` where the inputs are not all `f32` or all `f64`.
pub(crate) fn adam_update(xs: &[&Tensor], shape: &[usize]) -> Result<Option<Tensor>> {
    let dtype = xs[0].dtype();
    if xs.iter().any(|x| x.dtype() != dtype) {
        return Ok(None);
    }
    match dtype {
        candle_core::DType::F32 => run::<f32>(xs, shape),
        candle_core::DType::F64 => run::<f64>(xs, shape),
        _ => Ok(None),
    }
}

fn run<T: Float>(xs: &[&Tensor], shape: &[usize]) -> Result<Option<Tensor>> {
    let n: usize = shape.iter().product();
    // An input that is a broadcast or strided view is copied to the full
    // shape first (batched hyperparameters under `vmap`, say); the leaves
    // themselves are read in place.
    let mut owned: Vec<Tensor> = Vec::with_capacity(xs.len());
    for x in xs {
        let x = if x.elem_count() == 1 {
            x.flatten_all()?
        } else {
            x.broadcast_as(shape)?.contiguous()?
        };
        owned.push(x);
    }
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let mut ops: Vec<Operand<'_, T>> = Vec::with_capacity(owned.len());
    for (t, (storage, layout)) in owned.iter().zip(&guards) {
        let candle_core::Storage::Cpu(cpu) = &**storage else {
            return Ok(None);
        };
        let Some(data) = T::slice(cpu) else {
            return Ok(None);
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Err(Error::internal("adam_update: an input is not contiguous"));
        };
        let data = &data[start..end];
        ops.push(if t.elem_count() == 1 && n != 1 {
            Operand::One(data[0])
        } else {
            Operand::Full(data)
        });
    }
    let scalar = |i: usize| match &ops[SCALARS + i] {
        Operand::One(v) => Some(*v),
        Operand::Full(_) => None,
    };
    let per_element = (0..N_SCALARS).any(|i| scalar(i).is_none());
    let out = alloc::filled("adam_update", 3 * n, |out| {
        let (m_out, rest) = out.split_at_mut(n);
        let (v_out, u_out) = rest.split_at_mut(n);
        let chunk = if n < PARALLEL_MIN || threads() == 1 {
            n.max(1)
        } else {
            n.div_ceil(threads() * 4).max(PARALLEL_MIN / 4)
        };
        let body = |first: usize,
                    m: &mut [MaybeUninit<T>],
                    v: &mut [MaybeUninit<T>],
                    u: &mut [MaybeUninit<T>]| {
            let range = first..first + m.len();
            let full = |i: usize| match &ops[i] {
                Operand::Full(x) => Some(&x[range.clone()]),
                Operand::One(_) => None,
            };
            match (per_element, full(G), full(MU), full(NU), &ops[P]) {
                (false, Some(g), Some(mu), Some(nu), p) => {
                    let s: [T; N_SCALARS] = std::array::from_fn(|k| scalar(k).unwrap_or(T::ZERO));
                    match p {
                        Operand::Full(p) => fill_leaf(g, mu, nu, &p[range.clone()], s, m, v, u),
                        Operand::One(p) => fill_leaf(g, mu, nu, &[*p], s, m, v, u),
                    }
                }
                _ => fill(&ops, first, m, v, u, |i, k| ops[SCALARS + k].at(i)),
            }
        };
        if chunk >= n {
            body(0, m_out, v_out, u_out);
            return;
        }
        rayon::scope(|scope| {
            let parts = m_out
                .chunks_mut(chunk)
                .zip(v_out.chunks_mut(chunk))
                .zip(u_out.chunks_mut(chunk))
                .enumerate();
            for (i, ((m, v), u)) in parts {
                let body = &body;
                scope.spawn(move |_| body(i * chunk, m, v, u));
            }
        });
    })?;
    let mut out_shape = vec![3];
    out_shape.extend_from_slice(shape);
    tensor(out, &out_shape).map(Some)
}

/// Writes elements `first..first + m.len()` of the three outputs.
#[inline(always)]
fn fill<T: Float>(
    ops: &[Operand<'_, T>],
    first: usize,
    m_out: &mut [MaybeUninit<T>],
    v_out: &mut [MaybeUninit<T>],
    u_out: &mut [MaybeUninit<T>],
    scalar: impl Fn(usize, usize) -> T,
) {
    let (g, mu, nu, p) = (&ops[G], &ops[MU], &ops[NU], &ops[P]);
    for (j, ((m_o, v_o), u_o)) in m_out.iter_mut().zip(v_out).zip(u_out).enumerate() {
        let i = first + j;
        let [a1, b1, a2, b2, c1, c2, eps, eps_root, wd, s] = std::array::from_fn(|k| scalar(i, k));
        let gi = g.at(i);
        let m = a1 * gi + b1 * mu.at(i);
        let v = a2 * (gi * gi) + b2 * nu.at(i);
        let d = (m / c1) / ((v / c2 + eps_root).sqrt() + eps);
        m_o.write(m);
        v_o.write(v);
        u_o.write(s * (d + wd * p.at(i)));
    }
}

/// [`fill`] for whole leaves and one value per scalar, the common case:
/// plain slices, so the loop vectorises. `p` has the leaf's length, or one
/// element.
#[allow(clippy::too_many_arguments)]
fn fill_leaf<T: Float>(
    g: &[T],
    mu: &[T],
    nu: &[T],
    p: &[T],
    s: [T; N_SCALARS],
    m_out: &mut [MaybeUninit<T>],
    v_out: &mut [MaybeUninit<T>],
    u_out: &mut [MaybeUninit<T>],
) {
    let [a1, b1, a2, b2, c1, c2, eps, eps_root, wd, scale] = s;
    let step = |gi: T, mi: T, ni: T, pi: T| {
        let m = a1 * gi + b1 * mi;
        let v = a2 * (gi * gi) + b2 * ni;
        let d = (m / c1) / ((v / c2 + eps_root).sqrt() + eps);
        (m, v, scale * (d + wd * pi))
    };
    let n = m_out.len();
    let (g, mu, nu) = (&g[..n], &mu[..n], &nu[..n]);
    let (v_out, u_out) = (&mut v_out[..n], &mut u_out[..n]);
    if p.len() == 1 {
        let pi = p[0];
        for i in 0..n {
            let (m, v, u) = step(g[i], mu[i], nu[i], pi);
            m_out[i].write(m);
            v_out[i].write(v);
            u_out[i].write(u);
        }
    } else {
        let p = &p[..n];
        for i in 0..n {
            let (m, v, u) = step(g[i], mu[i], nu[i], p[i]);
            m_out[i].write(m);
            v_out[i].write(v);
            u_out[i].write(u);
        }
    }
}
