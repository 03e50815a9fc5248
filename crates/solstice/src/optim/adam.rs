//! Adam and AdamW: `scale_by_adam`, [`adam`], [`adamw`].

use super::base::{Chain, GradientTransformation, bias_correction, safe_increment, zero_count};
use super::mask::Mask;
use super::scalar::{Hyper, ScalarOrSchedule};
use super::transform::{
    AddDecayedWeights, DecayState, LearningRateState, ScaleByLearningRate, add_decayed_weights,
    scale_by_learning_rate,
};
use crate::Module;
use crate::array::adam::{AdamScalars, adam_update};
use crate::array::{Array, DType};
use crate::error::Result;
use crate::tree::{Tree, tree_map, tree_map_n, tree_slots, zeros_like};

/// The state of [`scale_by_adam`] (optax's `ScaleByAdamState`): the count
/// and the two moments, with the parameters' type and holes.
#[derive(Module)]
pub struct AdamState<T: Tree> {
    /// Updates so far, `i32`.
    pub count: Array,
    /// The first moment, an exponential average of the gradients.
    pub mu: T,
    /// The second moment, an exponential average of their squares.
    pub nu: T,
}

/// `m * (1 - decay) ... ` helpers shared by the moment-based optimisers.
pub(crate) struct Moment {
    pub(crate) decay: Hyper,
}

impl Moment {
    /// `(1 - decay) * g**order + decay * t`, optax's `update_moment`.
    pub(crate) fn update(&self, g: &Array, t: &Array, order: u32) -> Result<Array> {
        let dt = g.dtype();
        let g = if order == 2 { g.mul(g)? } else { g.clone() };
        self.decay
            .one_minus(dt)?
            .mul(&g)?
            .add(&self.decay.to_array(dt)?.mul(t)?)
    }

    /// `1 - decay ** count` in `f32`.
    pub(crate) fn correction(&self, count: &Array) -> Result<Array> {
        bias_correction(&self.decay.to_array(DType::F32)?, count)
    }
}

/// Adam's rescaling without the learning rate: `optax.scale_by_adam`.
#[derive(Clone, Debug)]
pub struct ScaleByAdam {
    b1: Hyper,
    b2: Hyper,
    eps: Hyper,
    eps_root: Hyper,
    nesterov: bool,
}

/// `optax.scale_by_adam()` with optax's defaults: `b1 = 0.9`,
/// `b2 = 0.999`, `eps = 1e-8`, `eps_root = 0`, no Nesterov.
pub fn scale_by_adam() -> ScaleByAdam {
    ScaleByAdam {
        b1: Hyper::Const(0.9),
        b2: Hyper::Const(0.999),
        eps: Hyper::Const(1e-8),
        eps_root: Hyper::Const(0.0),
        nesterov: false,
    }
}

impl ScaleByAdam {
    /// The decay of the first moment.
    pub fn b1(mut self, b1: impl Into<Hyper>) -> Self {
        self.b1 = b1.into();
        self
    }

    /// The decay of the second moment.
    pub fn b2(mut self, b2: impl Into<Hyper>) -> Self {
        self.b2 = b2.into();
        self
    }

    /// Added to the denominator, outside the square root.
    pub fn eps(mut self, eps: impl Into<Hyper>) -> Self {
        self.eps = eps.into();
        self
    }

    /// Added to the second moment inside the square root.
    pub fn eps_root(mut self, eps_root: impl Into<Hyper>) -> Self {
        self.eps_root = eps_root.into();
        self
    }

    /// Nesterov momentum (NAdam).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

impl<T: Tree> GradientTransformation<T> for ScaleByAdam {
    type State = AdamState<T>;

    fn init(&self, params: &T) -> Result<AdamState<T>> {
        super::base::check_params(params)?;
        Ok(AdamState {
            count: zero_count()?,
            mu: zeros_like(params)?,
            nu: zeros_like(params)?,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &AdamState<T>,
        _: Option<&T>,
    ) -> Result<(T, AdamState<T>)> {
        if let Some(out) = self.fused(updates, state, None, &Hyper::Const(1.0))? {
            return Ok(out);
        }
        let (m1, m2) = (
            Moment {
                decay: self.b1.clone(),
            },
            Moment {
                decay: self.b2.clone(),
            },
        );
        let mu = tree_map_n(&[&state.mu, updates], |_, x| m1.update(&x[1], &x[0], 1))?;
        let nu = tree_map_n(&[&state.nu, updates], |_, x| m2.update(&x[1], &x[0], 2))?;
        let count = safe_increment(&state.count)?;
        let c1 = m1.correction(&count)?;
        let c2 = m2.correction(&count)?;
        let c1_next = if self.nesterov {
            Some(m1.correction(&safe_increment(&count)?)?)
        } else {
            None
        };
        let u = tree_map_n(&[updates, &mu, &nu], |_, x| {
            let (g, m, v) = (&x[0], &x[1], &x[2]);
            let dt = m.dtype();
            let mu_hat = match &c1_next {
                None => m.div(&c1.astype(dt)?)?,
                Some(c1n) => {
                    // b1 * mu / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t).
                    let a = m.div(&c1n.astype(dt)?)?;
                    let b = g.div(&c1.astype(g.dtype())?)?;
                    self.b1
                        .to_array(dt)?
                        .mul(&a)?
                        .add(&self.b1.one_minus(dt)?.mul(&b)?)?
                }
            };
            let nu_hat = v.div(&c2.astype(v.dtype())?)?;
            let root = if self.eps_root.is_const(0.0) {
                nu_hat
            } else {
                nu_hat.add(&self.eps_root.to_array(dt)?)?
            };
            mu_hat.div(&root.sqrt()?.add(&self.eps.to_array(dt)?)?)
        })?;
        Ok((u, AdamState { count, mu, nu }))
    }
}

/// The weight decay of a fused step: its value, whether each array slot is
/// decayed, and the parameters.
type FusedDecay<'a, T> = (&'a Hyper, &'a [bool], &'a T);

impl ScaleByAdam {
    /// This step, followed by `wd * params` where `decay` says and a scaling
    /// by `scale`, as one fused pass per leaf (`array/adam.rs`). The results
    /// are those of the composed transformations, bit for bit. `None` where
    /// it does not apply (Nesterov; trees of other structures; leaves of
    /// mixed or integer dtypes), so the caller composes the step.
    fn fused<T: Tree>(
        &self,
        updates: &T,
        state: &AdamState<T>,
        decay: Option<FusedDecay<'_, T>>,
        scale: &Hyper,
    ) -> Result<Option<(T, AdamState<T>)>> {
        if self.nesterov {
            return Ok(None);
        }
        let structure = updates.structure();
        let same = |t: &T| structure.same_treedef(&t.structure());
        if !same(&state.mu) || !same(&state.nu) || decay.is_some_and(|(_, _, p)| !same(p)) {
            return Ok(None);
        }
        let column = |t: &T| -> Vec<Array> { tree_slots(t).into_iter().map(|(_, a)| a).collect() };
        let (g, mu, nu) = (column(updates), column(&state.mu), column(&state.nu));
        let params = decay.map(|(_, _, p)| column(p));
        let decayed = |k: usize| -> Option<&Array> {
            let (_, flags, _) = decay?;
            let p = &params.as_ref()?[k];
            (flags.get(k) == Some(&true) && !p.is_hole()).then_some(p)
        };
        let live = |k: usize| !(g[k].is_hole() || mu[k].is_hole() || nu[k].is_hole());
        for k in (0..g.len()).filter(|&k| live(k)) {
            let dt = g[k].dtype();
            let one_dtype = mu[k].dtype() == dt
                && nu[k].dtype() == dt
                && decayed(k).is_none_or(|p| p.dtype() == dt);
            if !matches!(dt, DType::F32 | DType::F64) || !one_dtype {
                return Ok(None);
            }
        }
        let (m1, m2) = (
            Moment {
                decay: self.b1.clone(),
            },
            Moment {
                decay: self.b2.clone(),
            },
        );
        let count = safe_increment(&state.count)?;
        let (c1, c2) = (m1.correction(&count)?, m2.correction(&count)?);
        let mut scalars: Vec<(DType, AdamScalars)> = Vec::new();
        let mut out = Vec::with_capacity(g.len());
        for k in 0..g.len() {
            if !live(k) {
                out.push((g[k].clone(), mu[k].clone(), nu[k].clone()));
                continue;
            }
            let dt = g[k].dtype();
            if !scalars.iter().any(|(d, _)| *d == dt) {
                let s = [
                    self.b1.one_minus(dt)?,
                    self.b1.to_array(dt)?,
                    self.b2.one_minus(dt)?,
                    self.b2.to_array(dt)?,
                    c1.astype(dt)?,
                    c2.astype(dt)?,
                    self.eps.to_array(dt)?,
                    self.eps_root.to_array(dt)?,
                    scale.to_array(dt)?,
                ];
                scalars.push((dt, s));
            }
            let s = &scalars.iter().find(|(d, _)| *d == dt).expect("cached").1;
            let wd = match (decay, decayed(k)) {
                (Some((wd, _, _)), Some(p)) => Some((p, wd.to_array(dt)?)),
                _ => None,
            };
            let (m, v, u) =
                adam_update(&g[k], &mu[k], &nu[k], wd.as_ref().map(|(p, w)| (*p, w)), s)?;
            out.push((u, m, v));
        }
        let rebuild = |t: &T, pick: &dyn Fn(&(Array, Array, Array)) -> Array| -> Result<T> {
            let mut k = 0;
            tree_map(t, |_, _| {
                k += 1;
                Ok(pick(&out[k - 1]))
            })
        };
        let u = rebuild(updates, &|o| o.0.clone())?;
        let mu = rebuild(&state.mu, &|o| o.1.clone())?;
        let nu = rebuild(&state.nu, &|o| o.2.clone())?;
        Ok(Some((u, AdamState { count, mu, nu })))
    }
}

/// Adam: `optax.adam(learning_rate)`, the chain of [`scale_by_adam`] and
/// [`scale_by_learning_rate`]. Its state is `(AdamState, LearningRateState)`.
#[derive(Clone, Debug)]
pub struct Adam {
    adam: ScaleByAdam,
    lr: ScaleByLearningRate,
}

/// `optax.adam(learning_rate)` with optax's defaults (`b1 = 0.9`,
/// `b2 = 0.999`, `eps = 1e-8`, `eps_root = 0`); change them with the
/// builder methods.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::adam(0.1);
/// let params = Array::from_vec(vec![1.0f32, 2.0], &[2])?;
/// let state = opt.init(&params)?;
/// let grads = Array::from_vec(vec![0.5f32, -4.0], &[2])?;
/// let (u, state) = opt.update(&grads, &state, None)?;
/// // The first Adam step is -lr * sign(g) (up to eps).
/// let u = u.to_vec::<f32>()?;
/// assert!((u[0] + 0.1).abs() < 1e-6 && (u[1] - 0.1).abs() < 1e-6);
/// assert_eq!(state.0.count.to_scalar::<i32>()?, 1);
/// # Ok(()) }
/// ```
pub fn adam(learning_rate: impl Into<ScalarOrSchedule>) -> Adam {
    Adam {
        adam: scale_by_adam(),
        lr: scale_by_learning_rate(learning_rate),
    }
}

/// `optax.nadam`: [`adam`] with Nesterov momentum.
pub fn nadam(learning_rate: impl Into<ScalarOrSchedule>) -> Adam {
    adam(learning_rate).nesterov(true)
}

macro_rules! adam_builders {
    () => {
        /// The decay of the first moment (default 0.9).
        pub fn b1(mut self, b1: impl Into<Hyper>) -> Self {
            self.adam = self.adam.b1(b1);
            self
        }

        /// The decay of the second moment (default 0.999).
        pub fn b2(mut self, b2: impl Into<Hyper>) -> Self {
            self.adam = self.adam.b2(b2);
            self
        }

        /// Added to the denominator outside the square root (default 1e-8).
        pub fn eps(mut self, eps: impl Into<Hyper>) -> Self {
            self.adam = self.adam.eps(eps);
            self
        }

        /// Added inside the square root (default 0).
        pub fn eps_root(mut self, eps_root: impl Into<Hyper>) -> Self {
            self.adam = self.adam.eps_root(eps_root);
            self
        }

        /// Nesterov momentum (default off).
        pub fn nesterov(mut self, nesterov: bool) -> Self {
            self.adam = self.adam.nesterov(nesterov);
            self
        }
    };
}

impl Adam {
    adam_builders!();
}

impl<T: Tree> GradientTransformation<T> for Adam {
    type State = (AdamState<T>, LearningRateState);

    fn init(&self, params: &T) -> Result<Self::State> {
        Chain((&self.adam, &self.lr)).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        let (step, lr_state) = self.lr.step(&state.1)?;
        if let Some((u, adam)) = self.adam.fused(updates, &state.0, None, &step)? {
            return Ok((u, (adam, lr_state)));
        }
        Chain((&self.adam, &self.lr)).update(updates, state, params)
    }
}

/// AdamW: `optax.adamw(learning_rate)`, the chain of [`scale_by_adam`],
/// [`add_decayed_weights`] and [`scale_by_learning_rate`]. Its state is
/// `(AdamState, DecayState, LearningRateState)`.
#[derive(Clone, Debug)]
pub struct AdamW {
    adam: ScaleByAdam,
    decay: AddDecayedWeights,
    lr: ScaleByLearningRate,
}

/// `optax.adamw(learning_rate)` with optax's defaults (`b1 = 0.9`,
/// `b2 = 0.999`, `eps = 1e-8`, `eps_root = 0`, `weight_decay = 1e-4` on
/// every leaf unless masked); change them with the builder methods.
///
/// # Examples
///
/// ```
/// use solstice::{Array, optim::{self, GradientTransformation}};
/// # fn main() -> solstice::Result<()> {
/// // nanoGPT's setup: decay only matrices.
/// let opt = optim::adamw(6e-4).b2(0.95).weight_decay(0.1).mask(|_: &_, w: &Array| w.rank() >= 2);
/// let params = (Array::ones(&[2, 2], solstice::DType::F32)?, Array::ones(&[2], solstice::DType::F32)?);
/// let grads = solstice::tree::zeros_like(&params)?;
/// let state = opt.init(&params)?;
/// let (u, _) = opt.update(&grads, &state, Some(&params))?;
/// assert!(u.0.to_vec::<f32>()?.iter().all(|&x| x < 0.0)); // decayed
/// assert!(u.1.to_vec::<f32>()?.iter().all(|&x| x == 0.0)); // not decayed
/// # Ok(()) }
/// ```
pub fn adamw(learning_rate: impl Into<ScalarOrSchedule>) -> AdamW {
    AdamW {
        adam: scale_by_adam(),
        decay: add_decayed_weights(1e-4),
        lr: scale_by_learning_rate(learning_rate),
    }
}

impl AdamW {
    adam_builders!();

    /// The weight decay (default 1e-4), a number or a schedule.
    pub fn weight_decay(mut self, weight_decay: impl Into<ScalarOrSchedule>) -> Self {
        let mask = self.decay_mask();
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

    fn decay_mask(&self) -> Option<Mask> {
        self.decay.mask_ref().cloned()
    }
}

impl<T: Tree> GradientTransformation<T> for AdamW {
    type State = (AdamState<T>, DecayState, LearningRateState);

    fn init(&self, params: &T) -> Result<Self::State> {
        Chain((&self.adam, &self.decay, &self.lr)).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        if let Some(params) = params {
            let (decay, decay_state) = self.decay.fused_parts(updates, &state.1)?;
            let (step, lr_state) = self.lr.step(&state.2)?;
            let decay = decay
                .as_ref()
                .map(|(wd, flags)| (wd, flags.as_slice(), params));
            if let Some((u, adam)) = self.adam.fused(updates, &state.0, decay, &step)? {
                return Ok((u, (adam, decay_state, lr_state)));
            }
        }
        Chain((&self.adam, &self.decay, &self.lr)).update(updates, state, params)
    }
}
