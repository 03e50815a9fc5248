//! Adafactor: `scale_by_factored_rms` and [`adafactor`].

use super::base::{
    Chain, GradientTransformation, needs_params, pow_f32, safe_increment, zero_count,
};
use super::mask::Mask;
use super::scalar::{Hyper, ScalarOrSchedule};
use super::transform::{
    AddDecayedWeights, DecayState, LearningRateState, Scale, ScaleByLearningRate,
    add_decayed_weights, scale, scale_by_learning_rate,
};
use crate::Module;
use crate::array::{Array, DType};
use crate::error::Result;
use crate::tree::{Tree, tree_map_n};

/// The state of `scale_by_factored_rms` (optax's `FactoredState`). Each
/// tree has the parameters' type: a factored leaf keeps its row and column
/// statistics in `v_row`/`v_col` (and a `[1]` zero in `v`), any other
/// leaf its full statistics in `v` (and `[1]` zeros in `v_row`/`v_col`).
#[derive(Module)]
pub struct FactoredState<T: Tree> {
    /// Updates so far, `i32`.
    pub count: Array,
    /// Row statistics of factored leaves.
    pub v_row: T,
    /// Column statistics of factored leaves.
    pub v_col: T,
    /// Statistics of leaves that are not factored.
    pub v: T,
}

/// Adafactor's rescaling: `optax.scale_by_factored_rms`.
#[derive(Clone, Debug)]
pub struct ScaleByFactoredRms {
    factored: bool,
    decay_rate: f64,
    step_offset: i64,
    min_dim_size_to_factor: usize,
    epsilon: f64,
}

impl ScaleByFactoredRms {
    /// `(d1, d0)`: the second-largest and the largest dimension, when the
    /// leaf is factored.
    fn factored_dims(&self, shape: &[usize]) -> Option<(usize, usize)> {
        if !self.factored || shape.len() < 2 {
            return None;
        }
        // numpy's argsort (stable for the short shapes of parameters).
        let mut order: Vec<usize> = (0..shape.len()).collect();
        order.sort_by_key(|&i| shape[i]);
        let (d1, d0) = (order[order.len() - 2], order[order.len() - 1]);
        (shape[d1] >= self.min_dim_size_to_factor).then_some((d1, d0))
    }

    fn init_leaf(&self, p: &Array) -> Result<[Array; 3]> {
        let one = Array::zeros(&[1], p.dtype())?;
        Ok(match self.factored_dims(p.shape()) {
            Some((d1, d0)) => {
                let drop = |axis: usize| {
                    let mut s = p.shape().to_vec();
                    s.remove(axis);
                    Array::zeros(&s, p.dtype())
                };
                [drop(d0)?, drop(d1)?, one]
            }
            None => [one.clone(), one, p.full_like(0.0)?],
        })
    }
}

fn mean_axis(x: &Array, axis: usize) -> Result<Array> {
    let n = x.shape()[axis] as f64;
    x.sum(&[axis as isize])?
        .div(&Array::scalar_of(n, x.dtype())?)
}

impl<T: Tree> GradientTransformation<T> for ScaleByFactoredRms {
    type State = FactoredState<T>;

    fn init(&self, params: &T) -> Result<FactoredState<T>> {
        super::base::check_params(params)?;
        let pick = |k: usize| tree_map_n(&[params], |_, x| Ok(self.init_leaf(&x[0])?[k].clone()));
        Ok(FactoredState {
            count: zero_count()?,
            v_row: pick(0)?,
            v_col: pick(1)?,
            v: pick(2)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &FactoredState<T>,
        params: Option<&T>,
    ) -> Result<(T, FactoredState<T>)> {
        let params = params.ok_or_else(|| needs_params("adafactor"))?;
        // decay_rate_t = 1 - (t + 1) ** -decay_rate, in f32.
        let t = state
            .count
            .add_scalar(1.0 - self.step_offset as f64)?
            .astype(DType::F32)?;
        let tpow = pow_f32(&t, &Array::scalar_of(-self.decay_rate, DType::F32)?)?;
        let rate = tpow.full_like(1.0)?.sub(&tpow)?;
        let one_minus = rate.full_like(1.0)?.sub(&rate)?;
        let step =
            |g: &Array, v_row: &Array, v_col: &Array, v: &Array, p: &Array| -> Result<[Array; 4]> {
                let dt = p.dtype();
                let (r, om) = (rate.astype(g.dtype())?, one_minus.astype(g.dtype())?);
                let grad_sqr = g.mul(g)?.add(&Array::scalar_of(self.epsilon, g.dtype())?)?;
                let zero1 = Array::zeros(&[1], dt)?;
                let minus_half = Array::scalar_of(-0.5, DType::F32)?;
                match self.factored_dims(p.shape()) {
                    Some((d1, d0)) => {
                        let new_row = r.mul(v_row)?.add(&om.mul(&mean_axis(&grad_sqr, d0)?)?)?;
                        let new_col = r.mul(v_col)?.add(&om.mul(&mean_axis(&grad_sqr, d1)?)?)?;
                        let (new_row, new_col) = (new_row.astype(dt)?, new_col.astype(dt)?);
                        let reduced_d1 = if d1 > d0 { d1 - 1 } else { d1 };
                        let row_col_mean =
                            mean_axis(&new_row, reduced_d1)?.expand_dims(reduced_d1 as isize)?;
                        let row_factor = pow_f32(&new_row.div(&row_col_mean)?, &minus_half)?
                            .astype(new_row.dtype())?;
                        let col_factor = pow_f32(&new_col, &minus_half)?.astype(new_col.dtype())?;
                        let u = g
                            .mul(&row_factor.expand_dims(d0 as isize)?)?
                            .mul(&col_factor.expand_dims(d1 as isize)?)?;
                        Ok([u, new_row, new_col, zero1])
                    }
                    None => {
                        let new_v = r.mul(v)?.add(&om.mul(&grad_sqr)?)?.astype(dt)?;
                        let u = g.mul(&pow_f32(&new_v, &minus_half)?.astype(dt)?)?;
                        Ok([u, zero1.clone(), zero1, new_v])
                    }
                }
            };
        let trees = [updates, &state.v_row, &state.v_col, &state.v, params];
        let pick = |k: usize| {
            tree_map_n(&trees, |_, x| {
                Ok(step(&x[0], &x[1], &x[2], &x[3], &x[4])?[k].clone())
            })
        };
        // Each pick recomputes the leaf's step; adafactor's parameters are
        // few and the work per leaf is small next to a forward pass.
        let u = pick(0)?;
        let (v_row, v_col, v) = (pick(1)?, pick(2)?, pick(3)?);
        let state = FactoredState {
            count: safe_increment(&state.count)?,
            v_row,
            v_col,
            v,
        };
        Ok((u, state))
    }
}

/// `optax.clip_by_block_rms(threshold)`: each leaf divided by
/// `max(1, rms(leaf) / threshold)`. State `()`.
#[derive(Clone, Debug)]
pub struct ClipByBlockRms(Hyper);

/// `optax.clip_by_block_rms(threshold)`.
pub fn clip_by_block_rms(threshold: impl Into<Hyper>) -> ClipByBlockRms {
    ClipByBlockRms(threshold.into())
}

fn rms(x: &Array) -> Result<Array> {
    let n = x.elem_count() as f64;
    x.mul(x)?
        .sum_all()?
        .div(&Array::scalar_of(n, x.dtype())?)?
        .sqrt()
}

impl<T: Tree> GradientTransformation<T> for ClipByBlockRms {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), _: Option<&T>) -> Result<(T, ())> {
        let u = tree_map_n(&[updates], |_, x| {
            let u = &x[0];
            let ratio = rms(u)?.div(&self.0.to_array(u.dtype())?)?;
            let denom = ratio.full_like(1.0)?.maximum(&ratio)?;
            u.div(&denom)
        })?;
        Ok((u, ()))
    }
}

/// `optax.scale_by_param_block_rms(min_scale)`: each update multiplied by
/// its parameter's root mean square, at least `min_scale`. State `()`.
#[derive(Clone, Debug)]
pub struct ScaleByParamBlockRms(f64);

/// `optax.scale_by_param_block_rms(min_scale)` (optax's default 1e-3).
pub fn scale_by_param_block_rms(min_scale: f64) -> ScaleByParamBlockRms {
    ScaleByParamBlockRms(min_scale)
}

impl<T: Tree> GradientTransformation<T> for ScaleByParamBlockRms {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), params: Option<&T>) -> Result<(T, ())> {
        let params = params.ok_or_else(|| needs_params("scale_by_param_block_rms"))?;
        let u = tree_map_n(&[updates, params], |_, x| {
            let p = &x[1];
            let min = Array::scalar_of(self.0, p.dtype())?;
            // optax's safe_root_mean_squares: a tiny rms is replaced by
            // min_scale (computed on ones so the gradient stays finite).
            let r = rms(p)?;
            let small = r.compare(&min, crate::CmpOp::Le)?;
            let x2 = small.select(&p.full_like(1.0)?, p)?;
            let scale = small.select(&min, &rms(&x2)?)?;
            x[0].mul(&scale.astype(x[0].dtype())?)
        })?;
        Ok((u, ()))
    }
}

/// The state of [`ema`] (optax's `EmaState`).
#[derive(Module)]
pub struct EmaState<T: Tree> {
    /// Updates so far, `i32`.
    pub count: Array,
    /// The exponential moving average of the updates.
    pub ema: T,
}

/// `optax.ema(decay, debias)`: an exponential moving average of the
/// updates, kept in `f32`.
#[derive(Clone, Debug)]
pub struct Ema {
    decay: Hyper,
    debias: bool,
}

/// `optax.ema(decay, debias)`.
pub fn ema(decay: impl Into<Hyper>, debias: bool) -> Ema {
    Ema {
        decay: decay.into(),
        debias,
    }
}

impl<T: Tree> GradientTransformation<T> for Ema {
    type State = EmaState<T>;

    fn init(&self, params: &T) -> Result<EmaState<T>> {
        super::base::check_params(params)?;
        Ok(EmaState {
            count: zero_count()?,
            ema: crate::tree::full_like_dtype(params, 0.0, DType::F32)?,
        })
    }

    fn update(&self, updates: &T, state: &EmaState<T>, _: Option<&T>) -> Result<(T, EmaState<T>)> {
        let m = super::adam::Moment {
            decay: self.decay.clone(),
        };
        let new = tree_map_n(&[&state.ema, updates], |_, x| m.update(&x[1], &x[0], 1))?;
        let count = safe_increment(&state.count)?;
        let u = if self.debias {
            let c = m.correction(&count)?;
            tree_map_n(&[&new], |_, x| x[0].div(&c.astype(x[0].dtype())?))?
        } else {
            new.clone()
        };
        let ema = tree_map_n(&[&new], |_, x| x[0].astype(DType::F32))?;
        Ok((u, EmaState { count, ema }))
    }
}

/// Adafactor: `optax.adafactor`. Built by [`adafactor`]; its state is the
/// tuple of its steps' states (see [`GradientTransformation::State`]).
#[derive(Clone, Debug)]
pub struct Adafactor {
    rms: ScaleByFactoredRms,
    clipping_threshold: Option<f64>,
    learning_rate: Option<ScalarOrSchedule>,
    multiply_by_parameter_scale: bool,
    momentum: Option<f64>,
    weight_decay_rate: Option<ScalarOrSchedule>,
    weight_decay_mask: Option<Mask>,
}

/// `optax.adafactor(learning_rate)` with optax's defaults:
/// `min_dim_size_to_factor = 128`, `decay_rate = 0.8`, `decay_offset = 0`,
/// `multiply_by_parameter_scale = true`, `clipping_threshold = 1`, no
/// momentum, no weight decay, `eps = 1e-30`, factored.
pub fn adafactor(learning_rate: impl Into<ScalarOrSchedule>) -> Adafactor {
    Adafactor {
        rms: ScaleByFactoredRms {
            factored: true,
            decay_rate: 0.8,
            step_offset: 0,
            min_dim_size_to_factor: 128,
            epsilon: 1e-30,
        },
        clipping_threshold: Some(1.0),
        learning_rate: Some(learning_rate.into()),
        multiply_by_parameter_scale: true,
        momentum: None,
        weight_decay_rate: None,
        weight_decay_mask: None,
    }
}

impl Adafactor {
    /// Leaves whose second-largest dimension is at least this are factored.
    pub fn min_dim_size_to_factor(mut self, n: usize) -> Self {
        self.rms.min_dim_size_to_factor = n;
        self
    }

    /// The exponent of the decay schedule `1 - (t + 1) ** -decay_rate`.
    pub fn decay_rate(mut self, rate: f64) -> Self {
        self.rms.decay_rate = rate;
        self
    }

    /// Subtracted from the step count in the decay schedule.
    pub fn decay_offset(mut self, offset: i64) -> Self {
        self.rms.step_offset = offset;
        self
    }

    /// Whether to scale updates by the parameters' root mean square.
    pub fn multiply_by_parameter_scale(mut self, on: bool) -> Self {
        self.multiply_by_parameter_scale = on;
        self
    }

    /// Clip each update's root mean square at this (`None`: no clipping).
    pub fn clipping_threshold(mut self, threshold: Option<f64>) -> Self {
        self.clipping_threshold = threshold;
        self
    }

    /// An exponential moving average of the updates with this decay.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = Some(momentum);
        self
    }

    /// Decoupled weight decay at this rate.
    pub fn weight_decay_rate(mut self, rate: impl Into<ScalarOrSchedule>) -> Self {
        self.weight_decay_rate = Some(rate.into());
        self
    }

    /// Decay only the leaves `mask` includes.
    pub fn weight_decay_mask(mut self, mask: impl Into<Mask>) -> Self {
        self.weight_decay_mask = Some(mask.into());
        self
    }

    /// Regularising constant added to squared gradients (default 1e-30).
    pub fn eps(mut self, eps: f64) -> Self {
        self.rms.epsilon = eps;
        self
    }

    /// Whether to factor the second moments at all (default true).
    pub fn factored(mut self, factored: bool) -> Self {
        self.rms.factored = factored;
        self
    }

    #[allow(clippy::type_complexity)]
    fn parts(
        &self,
    ) -> Chain<(
        ScaleByFactoredRms,
        Option<ClipByBlockRms>,
        Option<ScaleByLearningRate>,
        Option<ScaleByParamBlockRms>,
        Option<Ema>,
        Option<AddDecayedWeights>,
        Scale,
    )> {
        let decay = self.weight_decay_rate.clone().map(|w| {
            let d = add_decayed_weights(w);
            match &self.weight_decay_mask {
                Some(m) => d.mask(m.clone()),
                None => d,
            }
        });
        Chain((
            self.rms.clone(),
            self.clipping_threshold.map(clip_by_block_rms),
            self.learning_rate
                .clone()
                .map(|lr| scale_by_learning_rate(lr).flip_sign(false)),
            self.multiply_by_parameter_scale
                .then(|| scale_by_param_block_rms(1e-3)),
            self.momentum.map(|m| ema(m, false)),
            decay,
            scale(-1.0),
        ))
    }
}

impl<T: Tree> GradientTransformation<T> for Adafactor {
    type State = (
        FactoredState<T>,
        Option<()>,
        Option<LearningRateState>,
        Option<()>,
        Option<EmaState<T>>,
        Option<DecayState>,
        (),
    );

    fn init(&self, params: &T) -> Result<Self::State> {
        self.parts().init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        self.parts().update(updates, state, params)
    }
}
