//! [`inject_hyperparams`]: hyperparameters held in the state, to read and
//! change between steps.

use super::base::{GradientTransformation, safe_increment, zero_count};
use super::scalar::{Hyper, ScalarOrSchedule};
use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::tree::{KeyPath, Leaf, LeafMut, PathKey, Structure, Tree, tree_leaves};

/// Named 0-d arrays, in name order: a dict of hyperparameters (or of their
/// schedules' counts) as optax keeps them. A tree whose leaves are the
/// arrays, with paths `.learning_rate` and so on.
#[derive(Clone, Debug, Default)]
pub struct Hyperparams(Vec<(&'static str, Array)>);

impl Hyperparams {
    /// The value named `name`.
    pub fn get(&self, name: &str) -> Result<&Array> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "no hyperparameter `{name}`; the injected ones are {:?}",
                    self.names()
                ))
            })
    }

    /// The value named `name` as a [`Hyper`], to pass to an optimiser.
    pub fn hyper(&self, name: &str) -> Result<Hyper> {
        Ok(Hyper::Array(self.get(name)?.clone()))
    }

    /// Sets `name` to `value` (converted to the current value's dtype), for
    /// example a new learning rate between steps. Fails for an unknown name.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// use solstice::optim::{self, GradientTransformation, inject_hyperparams};
    /// # fn main() -> solstice::Result<()> {
    /// let opt = inject_hyperparams(
    ///     |h| Ok(optim::adam(h.hyper("learning_rate")?)),
    ///     vec![("learning_rate", 0.1.into())],
    /// );
    /// let p = Array::scalar(1.0f32)?;
    /// let mut state = opt.init(&p)?;
    /// state.hyperparams.set("learning_rate", 0.01)?;
    /// let (u, _) = opt.update(&Array::scalar(2.0f32)?, &state, None)?;
    /// assert!((u.to_scalar::<f32>()? + 0.01).abs() < 1e-7);
    /// # Ok(()) }
    /// ```
    pub fn set(&mut self, name: &str, value: f64) -> Result<()> {
        let names = self.names();
        let slot = self.0.iter_mut().find(|(n, _)| *n == name).ok_or_else(|| {
            Error::invalid(format!(
                "no hyperparameter `{name}`; the injected ones are {names:?}"
            ))
        })?;
        slot.1 = Array::scalar_of(value, slot.1.dtype())?;
        Ok(())
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(n, _)| *n).collect()
    }

    fn insert(&mut self, name: &'static str, value: Array) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => {
                self.0.push((name, value));
                self.0.sort_by_key(|(n, _)| *n);
            }
        }
    }
}

impl Tree for Hyperparams {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        for (name, a) in &self.0 {
            path.push(PathKey::Field(name));
            a.visit_leaves(path, f);
            path.pop();
        }
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        for (name, a) in &mut self.0 {
            path.push(PathKey::Field(name));
            a.visit_leaves_mut(path, f);
            path.pop();
        }
    }

    fn structure(&self) -> Structure {
        Structure::Struct {
            name: "dict".to_string(),
            fields: self
                .0
                .iter()
                .map(|(n, a)| (n.to_string(), a.structure()))
                .collect(),
        }
    }
}

/// The state of [`inject_hyperparams`] (optax's
/// `InjectStatefulHyperparamsState`).
#[derive(Module)]
pub struct InjectState<S: Tree> {
    /// Updates so far, `i32`.
    pub count: Array,
    /// The hyperparameters' current values, by name; set one to change it
    /// for the next step.
    pub hyperparams: Hyperparams,
    /// The step count of each scheduled hyperparameter, by name.
    pub hyperparams_states: Hyperparams,
    /// The inner optimiser's state.
    pub inner_state: S,
}

/// An optimiser built from hyperparameters held in its state. Built by
/// [`inject_hyperparams`].
pub struct InjectHyperparams<F> {
    factory: F,
    hyperparams: Vec<(&'static str, ScalarOrSchedule)>,
}

/// `optax.inject_hyperparams(factory)(**hyperparams)`: the numeric
/// hyperparameters become 0-d arrays of the parameters' float dtype in the
/// state (`state.hyperparams`), which can be read and set between steps;
/// scheduled ones are re-evaluated at each step from their own count. Each
/// step builds the optimiser with `factory` from the current values (use
/// [`Hyperparams::hyper`] to pass one on).
///
/// List every numeric hyperparameter that optax's factory would see to get
/// optax's state leaves exactly (for `adam`: `b1`, `b2`, `eps`, `eps_root`
/// and `learning_rate`), as a hyperparameter held in an array is used in
/// `f32` (optax computes `1 - b1` in `f32` there, in `f64` for a number).
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation, inject_hyperparams};
/// # fn main() -> solstice::Result<()> {
/// let opt = inject_hyperparams(
///     |h| Ok(optim::adamw(h.hyper("learning_rate")?).weight_decay(h.hyper("weight_decay")?)),
///     vec![("learning_rate", 1e-3.into()), ("weight_decay", 0.1.into())],
/// );
/// let p = Array::scalar(1.0f32)?;
/// let state = opt.init(&p)?;
/// assert_eq!(state.hyperparams.get("learning_rate")?.to_scalar::<f32>()?, 1e-3);
/// # Ok(()) }
/// ```
pub fn inject_hyperparams<F, G>(
    factory: F,
    hyperparams: Vec<(&'static str, ScalarOrSchedule)>,
) -> InjectHyperparams<F>
where
    F: Fn(&Hyperparams) -> Result<G>,
{
    InjectHyperparams {
        factory,
        hyperparams,
    }
}

/// The dtype hyperparameters take: the widest float of the parameters (f32
/// without any), optax's `tree.dtype(params, 'highest')`.
fn hyper_dtype<T: Tree>(params: Option<&T>) -> DType {
    let wide = params
        .map(|p| tree_leaves(p).iter().any(|a| a.dtype() == DType::F64))
        .unwrap_or(false);
    if wide { DType::F64 } else { DType::F32 }
}

impl<F> InjectHyperparams<F> {
    fn values(
        &self,
        current: Option<&Hyperparams>,
        counts: &Hyperparams,
        dtype: DType,
    ) -> Result<Hyperparams> {
        let mut out = Hyperparams::default();
        for (name, h) in &self.hyperparams {
            let v = match h {
                ScalarOrSchedule::Schedule(s) => s.value(counts.get(name)?)?,
                ScalarOrSchedule::Scalar(h) => match current {
                    Some(c) => c.get(name)?.clone(),
                    None => h.to_array(dtype)?,
                },
            };
            out.insert(name, v.astype(dtype)?);
        }
        Ok(out)
    }
}

impl<T, F, G> GradientTransformation<T> for InjectHyperparams<F>
where
    T: Tree,
    F: Fn(&Hyperparams) -> Result<G>,
    G: GradientTransformation<T>,
{
    type State = InjectState<G::State>;

    fn init(&self, params: &T) -> Result<Self::State> {
        let mut counts = Hyperparams::default();
        for (name, h) in &self.hyperparams {
            if h.is_schedule() {
                counts.insert(name, zero_count()?);
            }
        }
        let hyperparams = self.values(None, &counts, hyper_dtype(Some(params)))?;
        let inner_state = (self.factory)(&hyperparams)?.init(params)?;
        Ok(InjectState {
            count: zero_count()?,
            hyperparams,
            hyperparams_states: counts,
            inner_state,
        })
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        let dtype = hyper_dtype(params);
        let hyperparams =
            self.values(Some(&state.hyperparams), &state.hyperparams_states, dtype)?;
        let mut counts = state.hyperparams_states.clone();
        for (_, c) in counts.0.iter_mut() {
            *c = safe_increment(c)?;
        }
        let (u, inner_state) =
            (self.factory)(&hyperparams)?.update(updates, &state.inner_state, params)?;
        Ok((
            u,
            InjectState {
                count: safe_increment(&state.count)?,
                hyperparams,
                hyperparams_states: counts,
                inner_state,
            },
        ))
    }
}
