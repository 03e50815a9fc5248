//! Elementwise math and reductions of the array API, with `jax.numpy`'s
//! semantics: rounding, `log1p`/`expm1`, `pow`, `clip`, division in its
//! three meanings (true, floor, remainder), `min`, `argmax`/`argmin`,
//! `var`/`std`, `cumsum`, `where_cond`, `zeros_like`/`ones_like`.

use super::ops::resolve_axis;
use super::prim::{CmpOp, Prim, RoundMode};
use super::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

impl Array {
    /// Elementwise `ln(1 + x)`, accurate for `x` near 0.
    pub fn log1p(&self) -> Result<Array> {
        self.unary(Prim::Log1p)
    }

    /// Elementwise `e^x - 1`, accurate for `x` near 0.
    pub fn expm1(&self) -> Result<Array> {
        self.unary(Prim::Expm1)
    }

    fn rounded(&self, mode: RoundMode) -> Result<Array> {
        self.check_value(Prim::Round(mode).name())?;
        if !self.dtype().is_float() {
            // Integers are already integral, as in JAX.
            return Ok(self.clone());
        }
        bind(Prim::Round(mode), &[self])
    }

    /// Elementwise rounding towards minus infinity. Its derivative is zero.
    pub fn floor(&self) -> Result<Array> {
        self.rounded(RoundMode::Floor)
    }

    /// Elementwise rounding towards plus infinity. Its derivative is zero.
    pub fn ceil(&self) -> Result<Array> {
        self.rounded(RoundMode::Ceil)
    }

    /// Elementwise rounding to the nearest integer, halves to even, as
    /// `jnp.round` does. Its derivative is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec(vec![0.5f32, 1.5, 2.5, -0.5, 2.7], &[5])?;
    /// assert_eq!(x.round()?.to_vec::<f32>()?, vec![0.0, 2.0, 2.0, -0.0, 3.0]);
    /// # Ok(()) }
    /// ```
    pub fn round(&self) -> Result<Array> {
        self.rounded(RoundMode::Nearest)
    }

    /// Elementwise `self ^ exponent` for float arrays, with numpy
    /// broadcasting: `jnp.power`. A negative base with an integral exponent
    /// keeps its sign (`(-2)^3 = -8`).
    pub fn pow(&self, exponent: &Array) -> Result<Array> {
        if !self.dtype().is_float() {
            return Err(Error::dtype(format!(
                "pow needs float arrays but got {}; convert with `astype`",
                self.short_description()
            )));
        }
        self.binary(exponent, Prim::Pow)
    }

    /// `self ^ exponent` with a scalar exponent in this array's dtype.
    pub fn pow_scalar(&self, exponent: f64) -> Result<Array> {
        self.pow(&Array::scalar_of(exponent, self.dtype())?)
    }

    /// Each element limited to `[min, max]`: `jnp.clip`. At a bound the
    /// derivative is shared as JAX shares it (one half).
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec(vec![-2.0f32, 0.5, 3.0], &[3])?;
    /// assert_eq!(x.clip(0.0, 1.0)?.to_vec::<f32>()?, vec![0.0, 0.5, 1.0]);
    /// # Ok(()) }
    /// ```
    pub fn clip(&self, min: f64, max: f64) -> Result<Array> {
        self.maximum(&Array::scalar_of(min, self.dtype())?)?
            .minimum(&Array::scalar_of(max, self.dtype())?)
    }

    /// True division, `jnp.divide`: integer arrays are divided as floats
    /// (`f64` for `i64`, else `f32`), so `7 / 2 = 3.5`. For Python's `//`
    /// use [`Array::floor_divide`].
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let a = Array::from_vec(vec![7i32, -7, 6], &[3])?;
    /// let b = Array::from_vec(vec![2i32, 2, -4], &[3])?;
    /// assert_eq!(a.div(&b)?.to_vec::<f32>()?, vec![3.5, -3.5, -1.5]);
    /// assert_eq!(a.floor_divide(&b)?.to_vec::<i32>()?, vec![3, -4, -2]);
    /// assert_eq!(a.rem(&b)?.to_vec::<i32>()?, vec![1, 1, -2]);
    /// # Ok(()) }
    /// ```
    pub fn div(&self, other: &Array) -> Result<Array> {
        if self.dtype().is_float() || self.dtype() != other.dtype() {
            return self.binary(other, Prim::Div);
        }
        let float = if self.dtype() == DType::I64 {
            DType::F64
        } else {
            DType::F32
        };
        self.astype(float)?.binary(&other.astype(float)?, Prim::Div)
    }

    /// The remainder of truncated division, with the sign of `self`: C's
    /// `fmod`, `jnp.fmod`. Integer division by zero is an error.
    pub fn fmod(&self, other: &Array) -> Result<Array> {
        self.binary(other, Prim::Rem)
    }

    /// The remainder with the sign of `other`: Python's `%`,
    /// `jnp.remainder`. Integer division by zero is an error.
    pub fn rem(&self, other: &Array) -> Result<Array> {
        let trunc = self.fmod(other)?;
        let zero = trunc.full_like_scalar(0.0)?;
        if !self.dtype().is_float() && self.dtype() != DType::I32 && self.dtype() != DType::I64 {
            // Unsigned: truncated and floored remainders agree.
            return Ok(trunc);
        }
        let differ = trunc
            .compare(&zero, CmpOp::Lt)?
            .compare(&other.compare(&zero, CmpOp::Lt)?, CmpOp::Ne)?;
        let nonzero = trunc.compare(&zero, CmpOp::Ne)?;
        let adjust = differ.mul(&nonzero)?;
        adjust.select(&trunc.add(other)?, &trunc)
    }

    /// Division rounded towards minus infinity: Python's `//`,
    /// `jnp.floor_divide`, for integers and floats. Integer division by zero
    /// is an error. Its derivative is zero.
    pub fn floor_divide(&self, other: &Array) -> Result<Array> {
        let signed = matches!(self.dtype(), DType::I32 | DType::I64);
        if !self.dtype().is_float() {
            let quotient = self.binary(other, Prim::Div)?;
            if !signed {
                return Ok(quotient);
            }
            let zero = self.full_like_scalar(0.0)?;
            let signs_differ = self.sign()?.compare(&other.sign()?, CmpOp::Ne)?;
            let inexact = self.fmod(other)?.compare(&zero, CmpOp::Ne)?;
            let lower = quotient.sub(&quotient.full_like_scalar(1.0)?)?;
            return signs_differ.mul(&inexact)?.select(&lower, &quotient);
        }
        // CPython's float_divmod, as JAX writes it.
        let zero = self.full_like_scalar(0.0)?;
        let modulo = self.fmod(other)?;
        let corrected = other.eq(&zero)?.select(self, &self.sub(&modulo)?)?;
        let quotient = corrected.div(other)?;
        let adjust = modulo
            .compare(&zero, CmpOp::Ne)?
            .mul(&other.sign()?.compare(&modulo.sign()?, CmpOp::Ne)?)?;
        let one = self.full_like_scalar(1.0)?;
        adjust.select(&quotient.sub(&one)?, &quotient)?.round()
    }

    /// The minimum over `axes` (negative axes count from the end), removing
    /// them; NaN where a reduced slice holds a NaN, as in JAX.
    pub fn min(&self, axes: &[isize]) -> Result<Array> {
        self.check_value("min")?;
        let axes = super::ops::resolve_axes("min", axes, self.rank())?;
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] == 0) {
            return Err(Error::shape(format!(
                "min over axis {a} of shape {:?}, which is empty, has no identity",
                self.shape()
            )));
        }
        if axes.is_empty() {
            return Ok(self.clone());
        }
        bind(Prim::Min(axes), &[self])
    }

    fn arg_extreme(&self, axis: isize, min: bool) -> Result<Array> {
        let prim = Prim::ArgExtreme { axis: 0, min };
        self.check_value(prim.name())?;
        let axis = resolve_axis(prim.name(), axis, self.rank())?;
        if self.shape()[axis] == 0 {
            return Err(Error::shape(format!(
                "{} over axis {axis} of shape {:?}, which is empty, has no answer",
                prim.name(),
                self.shape()
            )));
        }
        bind(Prim::ArgExtreme { axis, min }, &[self])
    }

    /// The index (`i32`) of the first maximum along `axis`, which is
    /// removed: `jnp.argmax`. A NaN counts as the maximum, as in JAX.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec(vec![1.0f32, 3.0, 3.0, 0.0, -1.0, 2.0], &[2, 3])?;
    /// assert_eq!(x.argmax(-1)?.to_vec::<i32>()?, vec![1, 2]);
    /// assert_eq!(x.argmin(-1)?.to_vec::<i32>()?, vec![0, 1]);
    /// # Ok(()) }
    /// ```
    pub fn argmax(&self, axis: isize) -> Result<Array> {
        self.arg_extreme(axis, false)
    }

    /// The index (`i32`) of the first minimum along `axis`, which is
    /// removed: `jnp.argmin`. A NaN counts as the minimum, as in JAX.
    pub fn argmin(&self, axis: isize) -> Result<Array> {
        self.arg_extreme(axis, true)
    }

    /// The variance over `axes` (population variance, `jnp.var` with
    /// `ddof=0`), removing them. Integer arrays give `f32`.
    pub fn var(&self, axes: &[isize]) -> Result<Array> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.astype(DType::F32)?
        };
        let resolved = super::ops::resolve_axes("var", axes, x.rank())?;
        let mut kept = x.shape().to_vec();
        for &a in &resolved {
            kept[a] = 1;
        }
        let centred = x.sub(&x.mean(axes)?.reshape(&kept)?)?;
        centred.square()?.mean(axes)
    }

    /// The standard deviation over `axes`: the square root of
    /// [`Array::var`].
    pub fn std(&self, axes: &[isize]) -> Result<Array> {
        self.var(axes)?.sqrt()
    }

    fn cumulative(&self, axis: isize, reverse: bool) -> Result<Array> {
        self.check_value("cumsum")?;
        let axis = resolve_axis("cumsum", axis, self.rank())?;
        bind(Prim::Cumsum { axis, reverse }, &[self])
    }

    /// The running sum along `axis`: `jnp.cumsum`, in this array's dtype
    /// (integers wrap, as in JAX).
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let p = Array::from_vec(vec![0.5f32, 0.25, 0.125, 0.125], &[4])?;
    /// assert_eq!(p.cumsum(0)?.to_vec::<f32>()?, vec![0.5, 0.75, 0.875, 1.0]);
    /// # Ok(()) }
    /// ```
    pub fn cumsum(&self, axis: isize) -> Result<Array> {
        self.cumulative(axis, false)
    }

    /// The running sum along `axis` from the end: `jnp.cumsum(x, reverse=True)`
    /// in `lax.cumsum`'s terms.
    pub fn cumsum_reverse(&self, axis: isize) -> Result<Array> {
        self.cumulative(axis, true)
    }

    /// Zeros of this array's shape and dtype: `jnp.zeros_like`.
    pub fn zeros_like(&self) -> Result<Array> {
        self.full_like(0.0)
    }

    /// Ones of this array's shape and dtype: `jnp.ones_like`.
    pub fn ones_like(&self) -> Result<Array> {
        self.full_like(1.0)
    }
}

/// `on_true` where `cond` is non-zero, `on_false` elsewhere, all three
/// broadcast together: `jnp.where(cond, x, y)`. `cond` may have any dtype.
///
/// # Examples
///
/// ```
/// use solstice::{Array, CmpOp, where_cond};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![-1.0f32, 2.0, -3.0], &[3])?;
/// let positive = x.compare(&Array::scalar(0.0f32)?, CmpOp::Gt)?;
/// let y = where_cond(&positive, &x, &Array::scalar(0.0f32)?)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 2.0, 0.0]);
/// # Ok(()) }
/// ```
pub fn where_cond(cond: &Array, on_true: &Array, on_false: &Array) -> Result<Array> {
    cond.check_value("where_cond")?;
    let cond = if cond.dtype() == DType::U8 {
        cond.clone()
    } else {
        cond.compare(&Array::scalar_of(0.0, cond.dtype())?, CmpOp::Ne)?
    };
    cond.select(on_true, on_false)
}
