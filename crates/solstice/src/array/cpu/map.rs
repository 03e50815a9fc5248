//! Generic elementwise maps of one, two or three inputs of any element
//! types, read in place through candle's layouts (numpy broadcasting,
//! transposes, offsets) and written to a new contiguous buffer, split over
//! the threads as `unary.rs` and `binary.rs` split theirs.

use std::mem::MaybeUninit;

use candle_core::{Layout, Storage, Tensor};

use super::strided::{Reader, collapse};

/// A function of one element. Closures and fns are one through the blanket
/// impl; the large special functions (`erf`, `tanh`, ...) are unit
/// structs (see [`scalar_fn!`]) whose `call` is `#[inline(always)]`, since
/// LLVM will not inline a large closure into the vectorised loop, which
/// then stays a scalar call per element.
pub(crate) trait Fn1<A, U>: Sync {
    fn call(&self, a: A) -> U;
}

impl<A, U, F: Fn(A) -> U + Sync> Fn1<A, U> for F {
    #[inline(always)]
    fn call(&self, a: A) -> U {
        self(a)
    }
}

/// Declares `$name`, a unit struct that is [`Fn1`] through the
/// `#[inline(always)]` function `$f` of `$t`.
macro_rules! scalar_fn {
    ($(#[$doc:meta])* $name:ident, $t:ty, $f:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name;

        impl $crate::array::cpu::map::Fn1<$t, $t> for $name {
            #[inline(always)]
            fn call(&self, a: $t) -> $t {
                $f(a)
            }
        }
    };
}
use super::{Elem, alloc, fill_tiled, for_groups, for_rows, group_starts, tensor};
use crate::error::{Error, Result};
pub(crate) use scalar_fn;

/// `f` on every element of `x`, or `None` if `x` does not hold `A`s on the
/// CPU.
pub(crate) fn map1<A: Elem, U: Elem>(
    op: &str,
    x: &Tensor,
    f: impl Fn1<A, U>,
) -> Result<Option<Tensor>> {
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some(data) = A::of_storage(cpu) else {
        return Ok(None);
    };
    let shape = layout.dims().to_vec();
    let out = alloc::filled(op, layout.shape().elem_count(), |out| {
        fill1(data, layout, out, &f)
    })?;
    tensor(out, &shape).map(Some)
}

/// Writes `f(x)` for `x` laid out by `layout` into the contiguous `out`.
pub(crate) fn fill1<A: Elem, U: Elem>(
    data: &[A],
    layout: &Layout,
    out: &mut [MaybeUninit<U>],
    f: &impl Fn1<A, U>,
) {
    let mut readers = [Reader::new(layout, layout.dims())];
    let dims = collapse(layout.dims(), &mut readers);
    let [reader] = readers;
    let inner = *dims.last().expect("at least one axis");
    let stride = reader.inner();
    let n = out.len();
    for_rows(out, inner, n, |first, chunk| {
        if stride > 1 {
            for_groups(chunk, inner, |r0, group| {
                let count = group.len().div_ceil(inner);
                let s = group_starts(&reader, &dims, first + r0, count);
                fill_tiled(group, inner, |k, j| f.call(data[s[k] + j * stride]));
            });
            return;
        }
        for (i, row) in chunk.chunks_mut(inner).enumerate() {
            // The last row of a split axis is short.
            let len = row.len();
            let start = reader.row_start(&dims, first + i);
            if stride == 1 {
                contiguous1(&data[start..start + len], row, f);
            } else {
                let v = f.call(data[start]);
                for o in row.iter_mut() {
                    o.write(v);
                }
            }
        }
    });
}

/// `f` over a contiguous row, 8 f32 lanes at a time where the CPU has AVX2
/// (the compiler vectorises the loop once `f` is inlined into it).
pub(crate) fn contiguous1<A: Elem, U: Elem>(
    x: &[A],
    out: &mut [MaybeUninit<U>],
    f: &impl Fn1<A, U>,
) {
    #[cfg(target_arch = "x86_64")]
    if super::unary::has_avx2() {
        // SAFETY: the CPU was just found to support AVX2.
        return unsafe { contiguous1_avx2(x, out, f) };
    }
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f.call(v));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn contiguous1_avx2<A: Elem, U: Elem>(x: &[A], out: &mut [MaybeUninit<U>], f: &impl Fn1<A, U>) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f.call(v));
    }
}

/// `f(x, y)` with numpy broadcasting, or `None` if either input is not on
/// the CPU with the expected element type.
pub(crate) fn map2<A: Elem, B: Elem, U: Elem>(
    op: &str,
    x: &Tensor,
    y: &Tensor,
    f: impl Fn(A, B) -> U + Sync,
) -> Result<Option<Tensor>> {
    let shape = crate::array::broadcast_shapes(x.dims(), y.dims())
        .ok_or_else(|| Error::shape(format!("{op} got inputs that do not broadcast")))?;
    let (sx, lx) = x.storage_and_layout();
    let (sy, ly) = y.storage_and_layout();
    let (Storage::Cpu(cx), Storage::Cpu(cy)) = (&*sx, &*sy) else {
        return Ok(None);
    };
    let (Some(a), Some(b)) = (A::of_storage(cx), B::of_storage(cy)) else {
        return Ok(None);
    };
    let mut readers = [Reader::new(lx, &shape), Reader::new(ly, &shape)];
    let dims = collapse(&shape, &mut readers);
    let n: usize = shape.iter().product();
    let [ra, rb] = &readers;
    let (ia, ib) = (ra.inner(), rb.inner());
    let inner = *dims.last().expect("at least one axis");
    let out = alloc::filled(op, n, |out| {
        for_rows(out, inner, n, |first, chunk| {
            if ia > 1 || ib > 1 {
                for_groups(chunk, inner, |r0, group| {
                    let count = group.len().div_ceil(inner);
                    let sa = group_starts(ra, &dims, first + r0, count);
                    let sb = group_starts(rb, &dims, first + r0, count);
                    fill_tiled(group, inner, |k, j| f(a[sa[k] + j * ia], b[sb[k] + j * ib]));
                });
                return;
            }
            for (i, row) in chunk.chunks_mut(inner).enumerate() {
                // The last row of a split axis is short.
                let len = row.len();
                let (oa, ob) = (
                    ra.row_start(&dims, first + i),
                    rb.row_start(&dims, first + i),
                );
                // The common layouts get loops the compiler vectorises.
                match (ia, ib) {
                    (1, 1) => {
                        for ((o, &p), &q) in
                            row.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len])
                        {
                            o.write(f(p, q));
                        }
                    }
                    (1, 0) => {
                        let q = b[ob];
                        for (o, &p) in row.iter_mut().zip(&a[oa..oa + len]) {
                            o.write(f(p, q));
                        }
                    }
                    (0, 1) => {
                        let p = a[oa];
                        for (o, &q) in row.iter_mut().zip(&b[ob..ob + len]) {
                            o.write(f(p, q));
                        }
                    }
                    _ => {
                        for (j, o) in row.iter_mut().enumerate() {
                            o.write(f(a[oa + j * ia], b[ob + j * ib]));
                        }
                    }
                }
            }
        })
    })?;
    tensor(out, &shape).map(Some)
}

/// `f(x, y, z)` with numpy broadcasting of all three, or `None` if an
/// input is not on the CPU with the expected element type.
pub(crate) fn map3<A: Elem, B: Elem, C: Elem, U: Elem>(
    op: &str,
    x: &Tensor,
    y: &Tensor,
    z: &Tensor,
    f: impl Fn(A, B, C) -> U + Sync,
) -> Result<Option<Tensor>> {
    let shape = crate::array::broadcast_shapes(x.dims(), y.dims())
        .and_then(|s| crate::array::broadcast_shapes(&s, z.dims()))
        .ok_or_else(|| Error::shape(format!("{op} got inputs that do not broadcast")))?;
    let (sx, lx) = x.storage_and_layout();
    let (sy, ly) = y.storage_and_layout();
    let (sz, lz) = z.storage_and_layout();
    let (Storage::Cpu(cx), Storage::Cpu(cy), Storage::Cpu(cz)) = (&*sx, &*sy, &*sz) else {
        return Ok(None);
    };
    let (Some(a), Some(b), Some(c)) = (A::of_storage(cx), B::of_storage(cy), C::of_storage(cz))
    else {
        return Ok(None);
    };
    let mut readers = [
        Reader::new(lx, &shape),
        Reader::new(ly, &shape),
        Reader::new(lz, &shape),
    ];
    let dims = collapse(&shape, &mut readers);
    let n: usize = shape.iter().product();
    let [ra, rb, rc] = &readers;
    let (ia, ib, ic) = (ra.inner(), rb.inner(), rc.inner());
    let inner = *dims.last().expect("at least one axis");
    let out = alloc::filled(op, n, |out| {
        for_rows(out, inner, n, |first, chunk| {
            if ia > 1 || ib > 1 || ic > 1 {
                for_groups(chunk, inner, |r0, group| {
                    let count = group.len().div_ceil(inner);
                    let sa = group_starts(ra, &dims, first + r0, count);
                    let sb = group_starts(rb, &dims, first + r0, count);
                    let sc = group_starts(rc, &dims, first + r0, count);
                    fill_tiled(group, inner, |k, j| {
                        f(a[sa[k] + j * ia], b[sb[k] + j * ib], c[sc[k] + j * ic])
                    });
                });
                return;
            }
            for (i, row) in chunk.chunks_mut(inner).enumerate() {
                // The last row of a split axis is short.
                let len = row.len();
                let r = first + i;
                let (oa, ob, oc) = (
                    ra.row_start(&dims, r),
                    rb.row_start(&dims, r),
                    rc.row_start(&dims, r),
                );
                if (ia, ib, ic) == (1, 1, 1) {
                    for (((o, &p), &q), &s) in row
                        .iter_mut()
                        .zip(&a[oa..oa + len])
                        .zip(&b[ob..ob + len])
                        .zip(&c[oc..oc + len])
                    {
                        o.write(f(p, q, s));
                    }
                } else {
                    for (j, o) in row.iter_mut().enumerate() {
                        o.write(f(a[oa + j * ia], b[ob + j * ib], c[oc + j * ic]));
                    }
                }
            }
        })
    })?;
    tensor(out, &shape).map(Some)
}
