//! The optimisers besides Adam: [`sgd`], [`rmsprop`], [`adagrad`], [`lion`].

use super::adam::Moment;
use super::base::{Chain, GradientTransformation, safe_increment, zero_count};
use super::mask::Mask;
use super::scalar::{Hyper, ScalarOrSchedule};
use super::transform::{
    AddDecayedWeights, DecayState, LearningRateState, ScaleByLearningRate, Trace, TraceState,
    add_decayed_weights, scale_by_learning_rate, trace,
};
use crate::Module;
use crate::array::{Array, CmpOp};
use crate::error::Result;
use crate::tree::{Tree, full_like, tree_map_n, zeros_like};

/// optax's `sgd`: optional momentum ([`trace`]) then the learning rate.
/// Its state is `(Option<TraceState>, LearningRateState)`.
pub type SgdTransform = Chain<(Option<Trace>, ScaleByLearningRate)>;

/// `optax.sgd(learning_rate, momentum, nesterov)`: plain gradient descent
/// when `momentum` is `None`, heavy-ball (or Nesterov) momentum otherwise.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::sgd(0.1, Some(0.9), false);
/// let g = Array::scalar(1.0f32)?;
/// let s = opt.init(&g)?;
/// let (u1, s) = opt.update(&g, &s, None)?;
/// let (u2, _) = opt.update(&g, &s, None)?;
/// assert!((u1.to_scalar::<f32>()? + 0.1).abs() < 1e-7);
/// assert!((u2.to_scalar::<f32>()? + 0.19).abs() < 1e-7); // -(1 + 0.9) * 0.1
/// # Ok(()) }
/// ```
pub fn sgd(
    learning_rate: impl Into<ScalarOrSchedule>,
    momentum: Option<f64>,
    nesterov: bool,
) -> SgdTransform {
    Chain((
        momentum.map(|m| trace(m, nesterov)),
        scale_by_learning_rate(learning_rate),
    ))
}

/// The state of RMSProp's rescaling: optax's `ScaleByRmsState` (`nu`),
/// `ScaleByRStdDevState` (`mu`, `nu`, when centred), with a `count` first
/// when bias-corrected.
#[derive(Module)]
pub struct RmsState<T: Tree> {
    /// Updates so far, present with bias correction.
    pub count: Option<Array>,
    /// The exponential average of gradients, present when centred.
    pub mu: Option<T>,
    /// The exponential average of squared gradients.
    pub nu: T,
}

/// `optax.scale_by_rms`, or `optax.scale_by_stddev` when centred: divides
/// by the root of the (centred) mean square.
#[derive(Clone, Debug)]
pub struct ScaleByRms {
    decay: Hyper,
    eps: Hyper,
    initial_scale: f64,
    eps_in_sqrt: bool,
    bias_correction: bool,
    centered: bool,
}

impl ScaleByRms {
    fn scaling(&self, count: Option<&Array>, nu: &Array, mu: Option<&Array>) -> Result<Array> {
        let m = Moment {
            decay: self.decay.clone(),
        };
        let nu_hat = match count {
            Some(c) => nu.div(&m.correction(c)?.astype(nu.dtype())?)?,
            None => nu.clone(),
        };
        let var = match mu {
            None => nu_hat,
            Some(mu) => {
                let mu_hat = match count {
                    Some(c) => mu.div(&m.correction(c)?.astype(mu.dtype())?)?,
                    None => mu.clone(),
                };
                nu_hat.sub(&mu_hat.mul(&mu_hat)?)?
            }
        };
        let eps = self.eps.to_array(var.dtype())?;
        let r = if self.eps_in_sqrt {
            var.add(&eps)?.sqrt()?
        } else {
            var.sqrt()?.add(&eps)?
        };
        r.full_like(1.0)?.div(&r)
    }
}

impl<T: Tree> GradientTransformation<T> for ScaleByRms {
    type State = RmsState<T>;

    fn init(&self, params: &T) -> Result<RmsState<T>> {
        super::base::check_params(params)?;
        Ok(RmsState {
            count: self.bias_correction.then(zero_count).transpose()?,
            mu: self.centered.then(|| zeros_like(params)).transpose()?,
            nu: full_like(params, self.initial_scale)?,
        })
    }

    fn update(&self, updates: &T, state: &RmsState<T>, _: Option<&T>) -> Result<(T, RmsState<T>)> {
        let m = Moment {
            decay: self.decay.clone(),
        };
        let mu = match (&state.mu, self.centered) {
            (Some(mu), true) => Some(tree_map_n(&[mu, updates], |_, x| {
                m.update(&x[1], &x[0], 1)
            })?),
            (None, false) => None,
            _ => {
                return Err(crate::Error::structure(
                    "rmsprop's state is of the other variant (centred or not); build it with \
                     `init` of the same optimiser",
                ));
            }
        };
        let nu = tree_map_n(&[&state.nu, updates], |_, x| m.update(&x[1], &x[0], 2))?;
        let count = state.count.as_ref().map(safe_increment).transpose()?;
        let u = match &mu {
            None => tree_map_n(&[updates, &nu], |_, x| {
                self.scaling(count.as_ref(), &x[1], None)?.mul(&x[0])
            })?,
            Some(mu) => tree_map_n(&[updates, &nu, mu], |_, x| {
                self.scaling(count.as_ref(), &x[1], Some(&x[2]))?.mul(&x[0])
            })?,
        };
        Ok((u, RmsState { count, mu, nu }))
    }
}

/// RMSProp: `optax.rmsprop(learning_rate)`, the chain of `scale_by_rms`
/// (or `scale_by_stddev` when centred), [`scale_by_learning_rate`] and
/// optional momentum.
#[derive(Clone, Debug)]
pub struct RmsProp {
    rms: ScaleByRms,
    lr: ScaleByLearningRate,
    momentum: Option<Trace>,
    nesterov: bool,
    momentum_decay: Option<f64>,
}

/// `optax.rmsprop(learning_rate)` with optax's defaults: `decay = 0.9`,
/// `eps = 1e-8`, `initial_scale = 0`, `eps_in_sqrt = true`, not centred, no
/// momentum, no bias correction.
pub fn rmsprop(learning_rate: impl Into<ScalarOrSchedule>) -> RmsProp {
    RmsProp {
        rms: ScaleByRms {
            decay: Hyper::Const(0.9),
            eps: Hyper::Const(1e-8),
            initial_scale: 0.0,
            eps_in_sqrt: true,
            bias_correction: false,
            centered: false,
        },
        lr: scale_by_learning_rate(learning_rate),
        momentum: None,
        nesterov: false,
        momentum_decay: None,
    }
}

impl RmsProp {
    /// The decay of the mean square (default 0.9).
    pub fn decay(mut self, decay: impl Into<Hyper>) -> Self {
        self.rms.decay = decay.into();
        self
    }

    /// Added to the mean square (default 1e-8).
    pub fn eps(mut self, eps: impl Into<Hyper>) -> Self {
        self.rms.eps = eps.into();
        self
    }

    /// The initial mean square (default 0).
    pub fn initial_scale(mut self, initial_scale: f64) -> Self {
        self.rms.initial_scale = initial_scale;
        self
    }

    /// Whether `eps` goes inside the square root (default) or outside.
    pub fn eps_in_sqrt(mut self, inside: bool) -> Self {
        self.rms.eps_in_sqrt = inside;
        self
    }

    /// Centred RMSProp: divide by the standard deviation.
    pub fn centered(mut self, centered: bool) -> Self {
        self.rms.centered = centered;
        self
    }

    /// Bias-correct the moments, as Adam does.
    pub fn bias_correction(mut self, on: bool) -> Self {
        self.rms.bias_correction = on;
        self
    }

    /// Momentum applied after the learning rate.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum_decay = Some(momentum);
        self.momentum = Some(trace(momentum, self.nesterov));
        self
    }

    /// Nesterov momentum (with [`RmsProp::momentum`]).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self.momentum = self.momentum_decay.map(|m| trace(m, nesterov));
        self
    }
}

impl<T: Tree> GradientTransformation<T> for RmsProp {
    type State = (RmsState<T>, LearningRateState, Option<TraceState<T>>);

    fn init(&self, params: &T) -> Result<Self::State> {
        Chain((&self.rms, &self.lr, &self.momentum)).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        Chain((&self.rms, &self.lr, &self.momentum)).update(updates, state, params)
    }
}

/// The state of Adagrad's rescaling (optax's `ScaleByRssState`).
#[derive(Module)]
pub struct RssState<T: Tree> {
    /// The sum of squared gradients so far (plus the initial value).
    pub sum_of_squares: T,
}

/// `optax.scale_by_rss`: divides by the root of the sum of squares.
#[derive(Clone, Debug)]
pub struct ScaleByRss {
    initial_accumulator_value: f64,
    eps: Hyper,
}

impl<T: Tree> GradientTransformation<T> for ScaleByRss {
    type State = RssState<T>;

    fn init(&self, params: &T) -> Result<RssState<T>> {
        super::base::check_params(params)?;
        Ok(RssState {
            sum_of_squares: full_like(params, self.initial_accumulator_value)?,
        })
    }

    fn update(&self, updates: &T, state: &RssState<T>, _: Option<&T>) -> Result<(T, RssState<T>)> {
        let sum_of_squares = tree_map_n(&[&state.sum_of_squares, updates], |_, x| {
            x[1].mul(&x[1])?.add(&x[0])
        })?;
        let u = tree_map_n(&[updates, &sum_of_squares], |_, x| {
            let t = &x[1];
            let r = t.add(&self.eps.to_array(t.dtype())?)?.sqrt()?;
            let inv = r.full_like(1.0)?.div(&r)?;
            let zero = t.full_like(0.0)?;
            let inv = t.compare(&zero, CmpOp::Gt)?.select(&inv, &zero)?;
            inv.mul(&x[0])
        })?;
        Ok((u, RssState { sum_of_squares }))
    }
}

/// Adagrad: `optax.adagrad(learning_rate)`, the chain of `scale_by_rss` and
/// [`scale_by_learning_rate`].
#[derive(Clone, Debug)]
pub struct Adagrad {
    rss: ScaleByRss,
    lr: ScaleByLearningRate,
}

/// `optax.adagrad(learning_rate)` with optax's defaults:
/// `initial_accumulator_value = 0.1`, `eps = 1e-7`.
pub fn adagrad(learning_rate: impl Into<ScalarOrSchedule>) -> Adagrad {
    Adagrad {
        rss: ScaleByRss {
            initial_accumulator_value: 0.1,
            eps: Hyper::Const(1e-7),
        },
        lr: scale_by_learning_rate(learning_rate),
    }
}

impl Adagrad {
    /// The starting value of the sum of squares (default 0.1).
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.rss.initial_accumulator_value = v;
        self
    }

    /// Added inside the square root (default 1e-7).
    pub fn eps(mut self, eps: impl Into<Hyper>) -> Self {
        self.rss.eps = eps.into();
        self
    }
}

impl<T: Tree> GradientTransformation<T> for Adagrad {
    type State = (RssState<T>, LearningRateState);

    fn init(&self, params: &T) -> Result<Self::State> {
        Chain((&self.rss, &self.lr)).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        Chain((&self.rss, &self.lr)).update(updates, state, params)
    }
}

/// The state of Lion's rescaling (optax's `ScaleByLionState`).
#[derive(Module)]
pub struct LionState<T: Tree> {
    /// Updates so far, `i32`.
    pub count: Array,
    /// The momentum.
    pub mu: T,
}

/// `optax.scale_by_lion`: the sign of an interpolation of the momentum and
/// the gradient.
#[derive(Clone, Debug)]
pub struct ScaleByLion {
    b1: Hyper,
    b2: Hyper,
}

impl<T: Tree> GradientTransformation<T> for ScaleByLion {
    type State = LionState<T>;

    fn init(&self, params: &T) -> Result<LionState<T>> {
        super::base::check_params(params)?;
        Ok(LionState {
            count: zero_count()?,
            mu: zeros_like(params)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &LionState<T>,
        _: Option<&T>,
    ) -> Result<(T, LionState<T>)> {
        let (m1, m2) = (
            Moment {
                decay: self.b1.clone(),
            },
            Moment {
                decay: self.b2.clone(),
            },
        );
        let u = tree_map_n(&[updates, &state.mu], |_, x| {
            m1.update(&x[0], &x[1], 1)?.sign()
        })?;
        let mu = tree_map_n(&[&state.mu, updates], |_, x| m2.update(&x[1], &x[0], 1))?;
        let count = safe_increment(&state.count)?;
        Ok((u, LionState { count, mu }))
    }
}

/// Lion: `optax.lion(learning_rate)`, the chain of `scale_by_lion`,
/// [`add_decayed_weights`] and [`scale_by_learning_rate`].
#[derive(Clone, Debug)]
pub struct Lion {
    lion: ScaleByLion,
    decay: AddDecayedWeights,
    lr: ScaleByLearningRate,
}

/// `optax.lion(learning_rate)` with optax's defaults: `b1 = 0.9`,
/// `b2 = 0.99`, `weight_decay = 1e-3` on every leaf unless masked.
pub fn lion(learning_rate: impl Into<ScalarOrSchedule>) -> Lion {
    Lion {
        lion: ScaleByLion {
            b1: Hyper::Const(0.9),
            b2: Hyper::Const(0.99),
        },
        decay: add_decayed_weights(1e-3),
        lr: scale_by_learning_rate(learning_rate),
    }
}

impl Lion {
    /// The interpolation between momentum and gradient (default 0.9).
    pub fn b1(mut self, b1: impl Into<Hyper>) -> Self {
        self.lion.b1 = b1.into();
        self
    }

    /// The decay of the momentum (default 0.99).
    pub fn b2(mut self, b2: impl Into<Hyper>) -> Self {
        self.lion.b2 = b2.into();
        self
    }

    /// The weight decay (default 1e-3), a number or a schedule.
    pub fn weight_decay(mut self, weight_decay: impl Into<ScalarOrSchedule>) -> Self {
        let mask = self.decay.mask_ref().cloned();
        self.decay = add_decayed_weights(weight_decay);
        if let Some(m) = mask {
            self.decay = self.decay.mask(m);
        }
        self
    }

    /// Decays only the leaves `mask` includes.
    pub fn mask(mut self, mask: impl Into<Mask>) -> Self {
        self.decay = self.decay.mask(mask);
        self
    }
}

impl<T: Tree> GradientTransformation<T> for Lion {
    type State = (LionState<T>, DecayState, LearningRateState);

    fn init(&self, params: &T) -> Result<Self::State> {
        Chain((&self.lion, &self.decay, &self.lr)).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        Chain((&self.lion, &self.decay, &self.lr)).update(updates, state, params)
    }
}
