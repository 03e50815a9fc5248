//! Kernels of the array API's primitives that candle has no kernel for, or
//! none with JAX's semantics: sorting (stable, NaN last), arg-extremes
//! (first NaN wins), running sums in linear time, `fmod`, rounding half to
//! even, `log1p`/`expm1`. Each works on rows of plain slices, with the
//! operated axis moved last.

use std::cmp::Ordering;

use candle_core::{Device, Tensor, WithDType};

use super::DType;
use super::cpu::{alloc, for_rows};
use super::prim::RoundMode;
use crate::error::{Error, Result};

/// The scalar operations the kernels need, for every element type.
trait Host: WithDType + Copy + PartialOrd {
    /// A total order with NaN above everything, as JAX sorts.
    fn order(a: Self, b: Self) -> Ordering;
    fn is_nan(self) -> bool;
    fn add(self, other: Self) -> Self;
    /// Truncated remainder; `None` for an integer division by zero.
    fn rem(self, other: Self) -> Option<Self>;
}

macro_rules! host_float {
    ($($t:ty),*) => {$(
        impl Host for $t {
            fn order(a: Self, b: Self) -> Ordering {
                match (a.is_nan(), b.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    // -0.0 and 0.0 are equal, as in JAX's sort.
                    (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                }
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn add(self, other: Self) -> Self {
                self + other
            }
            fn rem(self, other: Self) -> Option<Self> {
                Some(self % other)
            }
        }
    )*};
}

macro_rules! host_int {
    ($($t:ty),*) => {$(
        impl Host for $t {
            fn order(a: Self, b: Self) -> Ordering {
                a.cmp(&b)
            }
            fn is_nan(self) -> bool {
                false
            }
            fn add(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            fn rem(self, other: Self) -> Option<Self> {
                (other != 0).then(|| self.wrapping_rem(other))
            }
        }
    )*};
}

host_float!(f32, f64);
host_int!(i64, i32, u32, u8);

/// Runs `$body` with `$t` the element type of `$dtype`.
macro_rules! by_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::U32 => {
                type $t = u32;
                $body
            }
            DType::U8 => {
                type $t = u8;
                $body
            }
        }
    };
}

fn dtype_of(x: &Tensor) -> Result<DType> {
    DType::from_candle(x.dtype())
}

/// Applies `f` to each row of `x` along `axis` (each row of `n` elements
/// giving `m` outputs, written into the slice it is handed) and puts the
/// outputs back with `axis` of size `m`. Rows run in parallel.
fn map_rows<T: WithDType, U: WithDType>(
    op: &str,
    x: &Tensor,
    axis: usize,
    m: usize,
    f: impl Fn(&[T], &mut [U]) + Sync,
) -> Result<Tensor> {
    let last = x.rank() - 1;
    let moved = x.transpose(axis, last)?.contiguous()?;
    let mut dims = moved.dims().to_vec();
    let n = dims[last];
    let outer: usize = dims[..last].iter().product();
    let data = moved.flatten_all()?.to_vec1::<T>()?;
    let mut out = alloc::full(op, outer * m, U::zero())?;
    for_rows(&mut out, m, outer * n, |first, chunk| {
        for (i, o) in chunk.chunks_mut(m).enumerate() {
            let r = first + i;
            f(&data[r * n..(r + 1) * n], o);
        }
    });
    dims[last] = m;
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?.transpose(axis, last)?)
}

/// Indices of the first `k` elements of a stable sort along `axis`.
pub(super) fn argsort(x: &Tensor, axis: usize, descending: bool, k: usize) -> Result<Tensor> {
    by_dtype!(dtype_of(x)?, T => map_rows::<T, i32>("argsort", x, axis, k, |row, out| {
        let cmp = |a: &usize, b: &usize| {
            let by_value = T::order(row[*a], row[*b]);
            let by_value = if descending { by_value.reverse() } else { by_value };
            by_value.then(a.cmp(b))
        };
        let mut idx: Vec<usize> = (0..row.len()).collect();
        // Top-k of a long row: select the first k, then sort only them. The
        // order breaks ties by index, so the result is the stable sort's.
        if k < row.len() / 4 && k > 0 {
            idx.select_nth_unstable_by(k - 1, cmp);
            idx.truncate(k);
        }
        idx.sort_unstable_by(cmp);
        for (o, &i) in out.iter_mut().zip(&idx[..k]) {
            *o = i as i32;
        }
    }))
}

/// The index of the first maximum (or minimum) along `axis`, removing it;
/// the first NaN wins, as in JAX.
pub(super) fn arg_extreme(x: &Tensor, axis: usize, min: bool) -> Result<Tensor> {
    let out = by_dtype!(dtype_of(x)?, T => map_rows::<T, i32>("argmax", x, axis, 1, |row, out| {
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if row[best].is_nan() {
                break;
            }
            let better = if min { T::order(v, row[best]).is_lt() } else { T::order(v, row[best]).is_gt() };
            if v.is_nan() || better {
                best = i;
            }
        }
        out[0] = best as i32;
    }))?;
    Ok(out.squeeze(axis)?)
}

/// The running sum along `axis`, from the end when `reverse`.
pub(super) fn cumsum(x: &Tensor, axis: usize, reverse: bool) -> Result<Tensor> {
    let n = x.dims()[axis];
    by_dtype!(dtype_of(x)?, T => map_rows::<T, T>("cumsum", x, axis, n, |row, sums| {
        sums.copy_from_slice(row);
        if reverse {
            for i in (0..n.saturating_sub(1)).rev() {
                sums[i] = sums[i].add(sums[i + 1]);
            }
        } else {
            for i in 1..n {
                sums[i] = sums[i].add(sums[i - 1]);
            }
        }
    }))
}

/// The minimum over `axes`, NaN where a reduced slice holds one.
pub(super) fn min(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    if x.elem_count() == 0 {
        let mut shape = x.dims().to_vec();
        for &a in &sorted {
            shape.remove(a);
        }
        return Ok(Tensor::zeros(shape, x.dtype(), x.device())?);
    }
    let float = dtype_of(x)?.is_float();
    // For floats, min(x) = -max(-x) with NaN kept: negation is exact.
    let mut out = if float { x.neg()? } else { x.clone() };
    let mut nans = x.ne(x)?.to_dtype(candle_core::DType::U32)?;
    for &axis in &sorted {
        out = if float {
            out.max(axis)?
        } else {
            out.min(axis)?
        };
        nans = nans.sum(axis)?;
    }
    if float {
        out = out.neg()?;
        let nan = Tensor::full(f64::NAN, out.dims(), x.device())?.to_dtype(x.dtype())?;
        out = nans.gt(0u32)?.where_cond(&nan, &out)?;
    }
    Ok(out)
}

/// Elementwise `f` of one float input.
fn unary_float(x: &Tensor, f32_op: fn(f32) -> f32, f64_op: fn(f64) -> f64) -> Result<Tensor> {
    let data = x.flatten_all()?;
    let out = match dtype_of(x)? {
        DType::F32 => Tensor::new(
            data.to_vec1::<f32>()?
                .into_iter()
                .map(f32_op)
                .collect::<Vec<_>>(),
            &Device::Cpu,
        )?,
        DType::F64 => Tensor::new(
            data.to_vec1::<f64>()?
                .into_iter()
                .map(f64_op)
                .collect::<Vec<_>>(),
            &Device::Cpu,
        )?,
        other => {
            return Err(Error::internal(format!(
                "a float kernel got {other}; the operation should have checked"
            )));
        }
    };
    Ok(out.reshape(x.dims())?)
}

pub(super) fn log1p(x: &Tensor) -> Result<Tensor> {
    unary_float(x, f32::ln_1p, f64::ln_1p)
}

pub(super) fn expm1(x: &Tensor) -> Result<Tensor> {
    unary_float(x, f32::exp_m1, f64::exp_m1)
}

pub(super) fn round(x: &Tensor, mode: RoundMode) -> Result<Tensor> {
    Ok(match mode {
        RoundMode::Floor => x.floor()?,
        RoundMode::Ceil => x.ceil()?,
        RoundMode::Nearest => unary_float(x, f32::round_ties_even, f64::round_ties_even)?,
    })
}

/// Both inputs broadcast together, as flat vectors, with the shape.
fn broadcast_pair<T: WithDType>(x: &Tensor, y: &Tensor) -> Result<(Vec<T>, Vec<T>, Vec<usize>)> {
    let shape = super::broadcast_shapes(x.dims(), y.dims())
        .ok_or_else(|| Error::internal("a binary kernel got shapes that do not broadcast"))?;
    let flat = |t: &Tensor| -> Result<Vec<T>> {
        Ok(t.broadcast_as(shape.as_slice())?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<T>()?)
    };
    Ok((flat(x)?, flat(y)?, shape))
}

pub(super) fn pow(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    fn go<T: WithDType>(x: &Tensor, y: &Tensor, f: fn(T, T) -> T) -> Result<Tensor> {
        let (a, b, shape) = broadcast_pair::<T>(x, y)?;
        let out: Vec<T> = a.into_iter().zip(b).map(|(a, b)| f(a, b)).collect();
        Ok(Tensor::from_vec(out, shape, &Device::Cpu)?)
    }
    match dtype_of(x)? {
        DType::F32 => go::<f32>(x, y, f32::powf),
        DType::F64 => go::<f64>(x, y, f64::powf),
        other => Err(Error::internal(format!(
            "pow's kernel got {other}; the operation should have checked"
        ))),
    }
}

pub(super) fn rem(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    by_dtype!(dtype_of(x)?, T => {
        let (a, b, shape) = broadcast_pair::<T>(x, y)?;
        let out = a
            .into_iter()
            .zip(b)
            .map(|(a, b)| a.rem(b).ok_or_else(|| Error::invalid("rem got an integer division by zero")))
            .collect::<Result<Vec<T>>>()?;
        Ok(Tensor::from_vec(out, shape, &Device::Cpu)?)
    })
}
