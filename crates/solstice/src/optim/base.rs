//! [`GradientTransformation`], [`chain`] and [`identity`]: optax's base.

use crate::array::{Array, CmpOp, DType};
use crate::error::{Error, Result};
use crate::tree::Tree;

/// An optimiser, or one step of one: optax's `GradientTransformation`.
///
/// `init` builds the state from the parameters; `update` turns updates
/// (gradients, at the start of a chain) into new updates and a new state.
/// [`apply_updates`](crate::apply_updates) then adds the updates to the
/// model.
///
/// States are trees (tuples and `#[derive(Module)]` structs of arrays), so
/// they serialise with the checkpoint functions and map under `vmap`.
/// Moments such as Adam's `mu` and `nu` have the parameters' own type with
/// holes where the parameters have holes: a weight tied through
/// [`Shared`](crate::nn::Shared) is one leaf with one state. Counts and
/// injected hyperparameters live in the state as arrays.
///
/// Initialise from the trainable arrays: `opt.init(&filter(&model,
/// is_inexact_array))`, or from the model itself when every array leaf is
/// trainable.
///
/// # Examples
///
/// ```
/// use solstice::{Array, apply_updates, filter_grad};
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::chain((optim::clip_by_global_norm(1.0), optim::adamw(0.1)));
/// let mut model = Array::from_vec(vec![1.0f32, -2.0], &[2])?;
/// let mut state = opt.init(&model)?;
/// for _ in 0..3 {
///     let grads = filter_grad(|w: &Array, _: &()| w.square()?.sum_all())(&model, &())?;
///     let (updates, next) = opt.update(&grads, &state, Some(&model))?;
///     model = apply_updates(&model, &updates)?;
///     state = next;
/// }
/// let w = model.to_vec::<f32>()?;
/// assert!(w[0] < 1.0 && w[1] > -2.0);
/// # Ok(()) }
/// ```
pub trait GradientTransformation<T: Tree> {
    /// The state: a tree.
    type State: Tree;

    /// The initial state for `params`.
    fn init(&self, params: &T) -> Result<Self::State>;

    /// The new updates and state. `params` is needed by transformations
    /// that read the parameters (weight decay); they fail without it.
    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)>;
}

impl<T: Tree, G: GradientTransformation<T> + ?Sized> GradientTransformation<T> for &G {
    type State = G::State;

    fn init(&self, params: &T) -> Result<Self::State> {
        (**self).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        (**self).update(updates, state, params)
    }
}

impl<T: Tree, G: GradientTransformation<T> + ?Sized> GradientTransformation<T> for Box<G> {
    type State = G::State;

    fn init(&self, params: &T) -> Result<Self::State> {
        (**self).init(params)
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        (**self).update(updates, state, params)
    }
}

/// An optional transformation: `None` is [`identity`] (with a `None`
/// state), `Some(g)` is `g`. Optional steps of an optimiser (momentum)
/// are written this way.
impl<T: Tree, G: GradientTransformation<T>> GradientTransformation<T> for Option<G> {
    type State = Option<G::State>;

    fn init(&self, params: &T) -> Result<Self::State> {
        self.as_ref().map(|g| g.init(params)).transpose()
    }

    fn update(
        &self,
        updates: &T,
        state: &Self::State,
        params: Option<&T>,
    ) -> Result<(T, Self::State)> {
        match (self, state) {
            (None, _) => Ok((updates.clone(), None)),
            (Some(g), Some(s)) => {
                let (u, s) = g.update(updates, s, params)?;
                Ok((u, Some(s)))
            }
            (Some(_), None) => Err(Error::structure(
                "an optional transformation is present but its state is `None`; build the state \
                 with `init` of the same optimiser",
            )),
        }
    }
}

/// The transformation that leaves updates as they are: `optax.identity`.
/// Its state is `()`, optax's `EmptyState`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

/// `optax.identity()`.
pub fn identity() -> Identity {
    Identity
}

impl<T: Tree> GradientTransformation<T> for Identity {
    type State = ();

    fn init(&self, _: &T) -> Result<()> {
        Ok(())
    }

    fn update(&self, updates: &T, _: &(), _: Option<&T>) -> Result<(T, ())> {
        Ok((updates.clone(), ()))
    }
}

/// Transformations applied one after the other: `optax.chain`. Built by
/// [`chain`] from a tuple; its state is the tuple of their states.
#[derive(Clone, Debug)]
pub struct Chain<C>(pub C);

/// `optax.chain(a, b, ...)` from a tuple `(a, b, ...)` of up to 8
/// transformations. The state is the tuple of their states, in order.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// use solstice::optim::{self, GradientTransformation};
/// # fn main() -> solstice::Result<()> {
/// let opt = optim::chain((optim::clip(0.5), optim::scale(-2.0)));
/// let g = Array::from_vec(vec![1.0f32, -0.25], &[2])?;
/// let (u, ()) = {
///     let state = opt.init(&g)?;
///     let (u, ((), ())) = opt.update(&g, &state, None)?;
///     (u, ())
/// };
/// assert_eq!(u.to_vec::<f32>()?, vec![-1.0, 0.5]);
/// # Ok(()) }
/// ```
pub fn chain<C>(transforms: C) -> Chain<C> {
    Chain(transforms)
}

macro_rules! chain_impl {
    ($($g:ident $i:tt),+) => {
        impl<T: Tree, $($g: GradientTransformation<T>),+> GradientTransformation<T>
            for Chain<($($g,)+)>
        {
            type State = ($($g::State,)+);

            fn init(&self, params: &T) -> Result<Self::State> {
                check_params(params)?;
                Ok(($(self.0.$i.init(params).map_err(|e| e.context(concat!("chain[", $i, "]")))?,)+))
            }

            fn update(
                &self,
                updates: &T,
                state: &Self::State,
                params: Option<&T>,
            ) -> Result<(T, Self::State)> {
                let u = updates.clone();
                $(
                    #[allow(non_snake_case)]
                    let (u, $g) = self.0.$i
                        .update(&u, &state.$i, params)
                        .map_err(|e| e.context(concat!("chain[", $i, "]")))?;
                )+
                Ok((u, ($($g,)+)))
            }
        }
    };
}

chain_impl!(A 0);
chain_impl!(A 0, B 1);
chain_impl!(A 0, B 1, C 2);
chain_impl!(A 0, B 1, C 2, D 3);
chain_impl!(A 0, B 1, C 2, D 3, E 4);
chain_impl!(A 0, B 1, C 2, D 3, E 4, F 5);
chain_impl!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
chain_impl!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// A fresh step counter: an `i32` zero, as optax's `jnp.zeros([], jnp.int32)`.
pub fn zero_count() -> Result<Array> {
    Array::scalar(0i32)
}

/// `count + 1`, staying at the dtype's maximum instead of wrapping:
/// `optax.safe_increment`.
pub fn safe_increment(count: &Array) -> Result<Array> {
    let max = match count.dtype() {
        DType::I32 => i32::MAX as f64,
        DType::I64 => i64::MAX as f64,
        DType::U32 => u32::MAX as f64,
        DType::U8 => u8::MAX as f64,
        DType::F32 => f32::MAX as f64,
        DType::F64 => f64::MAX,
    };
    let max = Array::scalar_of(max, count.dtype())?;
    let below = count.compare(&max, CmpOp::Lt)?;
    below.select(&count.add_scalar(1.0)?, &max)
}

/// `1 - decay ** count` in `f32`, the divisor of Adam's bias correction.
///
/// `decay` is taken in `f32` as optax's weakly typed constant is. The power
/// is computed in `f64` and rounded once, which matches XLA's `f32` power
/// for the counts of a training run.
pub fn bias_correction(decay: &Array, count: &Array) -> Result<Array> {
    let p = pow_f32(decay, count)?;
    p.full_like(1.0)?.sub(&p)
}

/// `base ** exponent` (both 0-d or broadcastable) in `f32`: computed as
/// `exp(exponent * ln(base))` in `f64` and rounded once to `f32`.
pub(crate) fn pow_f32(base: &Array, exponent: &Array) -> Result<Array> {
    let b = base.astype(DType::F32)?.astype(DType::F64)?;
    let e = exponent.astype(DType::F32)?.astype(DType::F64)?;
    // exp(e * ln(0)) is exp(-inf) = 0 for e > 0 and NaN for e = 0; pow(0, 0)
    // is 1, so pick that case out.
    let zero = e.full_like(0.0)?;
    let is_zero = e.compare(&zero, CmpOp::Eq)?;
    let p = e.mul(&b.log()?)?.exp()?;
    let one = p.full_like(1.0)?;
    is_zero.select(&one, &p)?.astype(DType::F32)
}

/// The value of a 0-d `u8`/integer array when it is concrete (not traced by
/// `vmap`), for shortcuts that skip work a data-dependent select would do.
pub(crate) fn concrete_bool(a: &Array) -> Option<bool> {
    a.to_vec::<f64>().ok().map(|v| v.iter().any(|&x| x != 0.0))
}

/// The error for a transformation that needs `params` but got none.
pub(crate) fn needs_params(what: &str) -> Error {
    Error::invalid(format!(
        "{what} reads the parameters but `update` got `params = None`; pass `Some(&params)`"
    ))
}

/// `on_true` where the 0-d `u8` `cond` holds, `on_false` elsewhere, slot by
/// slot over trees of one structure (holes pass through from `on_true`):
/// the data-dependent branch of a wrapper when `cond` is traced.
pub(crate) fn tree_select<T: Tree>(cond: &Array, on_true: &T, on_false: &T) -> Result<T> {
    crate::tree::tree_map_n(&[on_true, on_false], |_, x| {
        cond.select(&x[0], &x[1].astype(x[0].dtype())?)
    })
}

/// Refuses parameters that hold one array in two leaves (see
/// [`tree_check`](crate::tree::tree_check)): each copy would get its own
/// state and its own update, and the copies would drift apart. Tie them
/// with [`Shared`](crate::nn::Shared), or opt out with
/// [`allow_aliasing`](crate::tree::allow_aliasing).
pub(crate) fn check_params<T: Tree>(params: &T) -> Result<()> {
    crate::tree::ties::check_aliasing(params, "optimiser init")
}
