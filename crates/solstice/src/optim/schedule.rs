//! Schedules: functions of the step count, optax's `optax.schedules`.
//!
//! A schedule maps an `i32` 0-d count to an `f32` 0-d value, with `Array`
//! operations, so that it works on a state's count under `vmap` too.
//! Optimisers evaluate it at the count **before** incrementing it, as optax
//! does: with a warmup from 0, the first update is zero.
//!
//! Arithmetic follows optax's in `f32` step for step: the constants are
//! Python floats computed in `f64` and rounded where they meet the count.

use std::sync::Arc;

use super::base::pow_f32;
use crate::array::{Array, CmpOp, DType};
use crate::error::{Error, Result};

/// A function of the step count. Closures `Fn(&Array) -> Result<Array>`
/// are schedules too.
pub trait Schedule: Send + Sync {
    /// The value at `count` (an integer 0-d array) as an `f32` 0-d array.
    fn value(&self, count: &Array) -> Result<Array>;

    /// The value at step `step`, read back as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::optim::schedule::{Schedule, warmup_cosine_decay_schedule};
    /// # fn main() -> solstice::Result<()> {
    /// let s = warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, 0.0, 1.0)?;
    /// assert_eq!(s.at(0)?, 0.0); // the first update of a warmup from 0 is zero
    /// assert_eq!(s.at(10)?, 1.0);
    /// assert!((s.at(60)? - 0.5).abs() < 1e-6);
    /// # Ok(()) }
    /// ```
    fn at(&self, step: i32) -> Result<f32> {
        self.value(&Array::scalar(step)?)?.to_scalar::<f32>()
    }
}

impl<F: Fn(&Array) -> Result<Array> + Send + Sync> Schedule for F {
    fn value(&self, count: &Array) -> Result<Array> {
        self(count)?.astype(DType::F32)
    }
}

impl std::fmt::Debug for dyn Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schedule")
    }
}

/// A shared, type-erased schedule, what the constructors return.
pub type SharedSchedule = Arc<dyn Schedule>;

fn f32c(v: f64) -> Result<Array> {
    Array::scalar_of(v, DType::F32)
}

fn i32c(v: i64) -> Result<Array> {
    let v = v.clamp(i32::MIN as i64, i32::MAX as i64);
    Array::scalar(v as i32)
}

fn count_i32(count: &Array) -> Result<Array> {
    if count.is_hole() || count.elem_count() != 1 || count.dtype().is_float() {
        return Err(Error::invalid(format!(
            "a schedule takes an integer 0-d step count but got {}",
            count.short_description()
        )));
    }
    count.reshape(&[])?.astype(DType::I32)
}

/// `x ** n` for an integer `n`, as `lax.integer_pow` multiplies.
pub(crate) fn integer_pow(x: &Array, n: i64) -> Result<Array> {
    if n == 0 {
        return x.full_like(1.0);
    }
    let (mut y, reciprocal) = (n.unsigned_abs(), n < 0);
    let mut base = x.clone();
    let mut acc: Option<Array> = None;
    while y > 0 {
        if y & 1 == 1 {
            acc = Some(match acc {
                None => base.clone(),
                Some(a) => a.mul(&base)?,
            });
        }
        y >>= 1;
        if y > 0 {
            base = base.mul(&base)?;
        }
    }
    let acc = acc.expect("n != 0 sets acc");
    if reciprocal {
        acc.full_like(1.0)?.div(&acc)
    } else {
        Ok(acc)
    }
}

/// `x ** p` as `jnp.power` computes it: by multiplication for a whole `p`,
/// else through `exp`/`ln`.
fn power(x: &Array, p: f64) -> Result<Array> {
    if p.fract() == 0.0 && p.abs() < 64.0 {
        integer_pow(x, p as i64)
    } else {
        pow_f32(x, &f32c(p)?)
    }
}

struct Constant(f64);

impl Schedule for Constant {
    fn value(&self, count: &Array) -> Result<Array> {
        count_i32(count)?;
        f32c(self.0)
    }
}

/// The same value at every step: `optax.constant_schedule`.
pub fn constant_schedule(value: f64) -> SharedSchedule {
    Arc::new(Constant(value))
}

struct Polynomial {
    init: f64,
    end: f64,
    power: f64,
    steps: i64,
    begin: i64,
}

impl Schedule for Polynomial {
    fn value(&self, count: &Array) -> Result<Array> {
        let c = count_i32(count)?.sub(&i32c(self.begin)?)?;
        let c = c.maximum(&i32c(0)?)?.minimum(&i32c(self.steps)?)?;
        let t = c.astype(DType::F32)?.div(&f32c(self.steps as f64)?)?;
        let frac = f32c(1.0)?.sub(&t)?;
        f32c(self.init - self.end)?
            .mul(&power(&frac, self.power)?)?
            .add(&f32c(self.end)?)
    }
}

/// From `init_value` to `end_value` over `transition_steps` steps (after
/// `transition_begin`), as `(init - end) * (1 - t / steps) ** power + end`:
/// `optax.polynomial_schedule`. Non-positive `transition_steps` gives the
/// constant `init_value`; a negative `transition_begin` counts as 0, as in
/// optax (which warns).
pub fn polynomial_schedule(
    init_value: f64,
    end_value: f64,
    power: f64,
    transition_steps: i64,
    transition_begin: i64,
) -> SharedSchedule {
    if transition_steps <= 0 {
        return constant_schedule(init_value);
    }
    Arc::new(Polynomial {
        init: init_value,
        end: end_value,
        power,
        steps: transition_steps,
        begin: transition_begin.max(0),
    })
}

/// Linear from `init_value` to `end_value` over `transition_steps` steps:
/// `optax.linear_schedule` (a polynomial of power 1).
pub fn linear_schedule(
    init_value: f64,
    end_value: f64,
    transition_steps: i64,
    transition_begin: i64,
) -> SharedSchedule {
    polynomial_schedule(
        init_value,
        end_value,
        1.0,
        transition_steps,
        transition_begin,
    )
}

struct CosineDecay {
    init: f64,
    steps: f64,
    alpha: f64,
    exponent: f64,
}

impl Schedule for CosineDecay {
    fn value(&self, count: &Array) -> Result<Array> {
        let steps = f32c(self.steps)?;
        let c = count_i32(count)?.astype(DType::F32)?.minimum(&steps)?;
        let angle = f32c(std::f64::consts::PI)?.mul(&c)?.div(&steps)?;
        let cosine = f32c(0.5)?.mul(&f32c(1.0)?.add(&angle.cos()?)?)?;
        let cosine = if self.exponent == 1.0 {
            cosine
        } else {
            pow_f32(&cosine, &f32c(self.exponent)?)?
        };
        let decayed = f32c(1.0 - self.alpha)?
            .mul(&cosine)?
            .add(&f32c(self.alpha)?)?;
        f32c(self.init)?.mul(&decayed)
    }
}

/// Cosine decay from `init_value` to `alpha * init_value` over
/// `decay_steps`, then constant: `optax.cosine_decay_schedule` (optax's
/// defaults: `alpha = 0`, `exponent = 1`). `decay_steps` must be positive.
pub fn cosine_decay_schedule(
    init_value: f64,
    decay_steps: i64,
    alpha: f64,
    exponent: f64,
) -> Result<SharedSchedule> {
    if decay_steps <= 0 {
        return Err(Error::invalid(format!(
            "cosine_decay_schedule needs positive decay_steps, got {decay_steps}"
        )));
    }
    Ok(Arc::new(CosineDecay {
        init: init_value,
        steps: decay_steps as f64,
        alpha,
        exponent,
    }))
}

struct ExponentialDecay {
    init: f64,
    steps: i64,
    rate: f64,
    begin: i64,
    staircase: bool,
    end: Option<f64>,
}

impl Schedule for ExponentialDecay {
    fn value(&self, count: &Array) -> Result<Array> {
        let dc = count_i32(count)?.sub(&i32c(self.begin)?)?;
        let p = if self.staircase {
            // floor(dc / steps) for dc > 0, the only case the result uses.
            dc.floor_divide(&i32c(self.steps)?)?.astype(DType::F32)?
        } else {
            dc.astype(DType::F32)?.div(&f32c(self.steps as f64)?)?
        };
        let init = f32c(self.init)?;
        let decayed = init.mul(&pow_f32(&f32c(self.rate)?, &p)?)?;
        let before = dc.compare(&i32c(0)?, CmpOp::Le)?;
        let v = before.select(&init, &decayed)?;
        match self.end {
            None => Ok(v),
            Some(end) if self.rate < 1.0 => v.maximum(&f32c(end)?),
            Some(end) => v.minimum(&f32c(end)?),
        }
    }
}

/// `init_value * decay_rate ** ((count - transition_begin) / transition_steps)`,
/// with the exponent floored when `staircase`, and clipped at `end_value`
/// when given: `optax.exponential_decay`. Non-positive `transition_steps`
/// or a zero `decay_rate` give the constant `init_value`, as in optax.
pub fn exponential_decay(
    init_value: f64,
    transition_steps: i64,
    decay_rate: f64,
    transition_begin: i64,
    staircase: bool,
    end_value: Option<f64>,
) -> SharedSchedule {
    if transition_steps <= 0 || decay_rate == 0.0 {
        return constant_schedule(init_value);
    }
    Arc::new(ExponentialDecay {
        init: init_value,
        steps: transition_steps,
        rate: decay_rate,
        begin: transition_begin.max(0),
        staircase,
        end: end_value,
    })
}

struct PiecewiseConstant {
    init: f64,
    boundaries: Vec<(i64, f64)>,
}

impl Schedule for PiecewiseConstant {
    fn value(&self, count: &Array) -> Result<Array> {
        let count = count_i32(count)?;
        let mut v = f32c(self.init)?;
        for &(threshold, scale) in &self.boundaries {
            let sign = i32c(threshold)?.sub(&count)?.astype(DType::F32)?.sign()?;
            let indicator = sign.maximum(&f32c(0.0)?)?;
            let rest = f32c(1.0)?.sub(&indicator)?.mul(&f32c(scale)?)?.mul(&v)?;
            v = v.mul(&indicator)?.add(&rest)?;
        }
        Ok(v)
    }
}

/// `init_value`, multiplied by `scale` once the count reaches each
/// `(boundary, scale)`: `optax.piecewise_constant_schedule`. Scales must
/// not be negative.
pub fn piecewise_constant_schedule(
    init_value: f64,
    boundaries_and_scales: &[(i64, f64)],
) -> Result<SharedSchedule> {
    if let Some((b, s)) = boundaries_and_scales.iter().find(|(_, s)| *s < 0.0) {
        return Err(Error::invalid(format!(
            "piecewise_constant_schedule expects non-negative scale factors, got {s} at \
             boundary {b}"
        )));
    }
    let mut boundaries = boundaries_and_scales.to_vec();
    boundaries.sort_by_key(|(b, _)| *b);
    Ok(Arc::new(PiecewiseConstant {
        init: init_value,
        boundaries,
    }))
}

struct Join {
    schedules: Vec<SharedSchedule>,
    boundaries: Vec<i64>,
}

impl Schedule for Join {
    fn value(&self, count: &Array) -> Result<Array> {
        let count = count_i32(count)?;
        let mut out = self.schedules[0].value(&count)?;
        for (b, s) in self.boundaries.iter().zip(&self.schedules[1..]) {
            let b = i32c(*b)?;
            let later = s.value(&count.sub(&b)?)?;
            out = count.compare(&b, CmpOp::Lt)?.select(&out, &later)?;
        }
        Ok(out)
    }
}

/// `schedules[0]` until `boundaries[0]`, then `schedules[1]` counted from
/// that boundary, and so on: `optax.join_schedules`. There is one boundary
/// fewer than schedules.
pub fn join_schedules(
    schedules: Vec<SharedSchedule>,
    boundaries: &[i64],
) -> Result<SharedSchedule> {
    if schedules.is_empty() || schedules.len() != boundaries.len() + 1 {
        return Err(Error::invalid(format!(
            "join_schedules needs one boundary fewer than schedules, got {} schedules and {} \
             boundaries",
            schedules.len(),
            boundaries.len()
        )));
    }
    Ok(Arc::new(Join {
        schedules,
        boundaries: boundaries.to_vec(),
    }))
}

/// Linear warmup from `init_value` to `peak_value` over `warmup_steps`, then
/// cosine decay to `end_value` at `decay_steps` (counted from 0, warmup
/// included): `optax.warmup_cosine_decay_schedule` (optax's defaults:
/// `end_value = 0`, `exponent = 1`). `decay_steps` must exceed
/// `warmup_steps`.
pub fn warmup_cosine_decay_schedule(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    decay_steps: i64,
    end_value: f64,
    exponent: f64,
) -> Result<SharedSchedule> {
    let alpha = if peak_value == 0.0 {
        0.0
    } else {
        end_value / peak_value
    };
    let cosine = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)
        .map_err(|e| e.context("warmup_cosine_decay_schedule: decay_steps - warmup_steps"))?;
    join_schedules(
        vec![
            linear_schedule(init_value, peak_value, warmup_steps, 0),
            cosine,
        ],
        &[warmup_steps],
    )
}
