//! Activation functions, elementwise as in `jax.nn`, and [`Activation`], a
//! named function that a layer can hold ([`Mlp`](super::Mlp),
//! [`Lambda`](super::Lambda)).
//!
//! | function | formula | `jax.nn` |
//! | --- | --- | --- |
//! | [`relu`] | `max(x, 0)`, derivative 0 at 0 | `relu` |
//! | [`gelu`] | `x/2 (1 + erf(x/√2))` | `gelu(x, approximate=False)` |
//! | [`gelu_tanh`] | `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))` | `gelu(x)` (its default) |
//! | [`silu`] | `x σ(x)` | `silu` / `swish` |
//! | [`tanh`] | `tanh x` | `jnp.tanh` |
//! | [`sigmoid`] | `σ(x) = 1 / (1 + e^-x)` | `sigmoid` |
//! | [`softplus`] | `log(1 + e^x)`, computed stably | `softplus` |
//! | [`identity`] | `x` | `lambda x: x` |
//!
//! Each is written with [`Array`] operations, so `grad` and `vmap` see
//! through it; each takes and returns any shape.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, nn::activation};
//! # fn main() -> solstice::Result<()> {
//! let x = Array::from_vec(vec![-1.0f32, 0.0, 2.0], &[3])?;
//! assert_eq!(activation::relu(&x)?.to_vec::<f32>()?, vec![0.0, 0.0, 2.0]);
//! let y = activation::softplus(&Array::from_vec(vec![0.0f64, 1000.0], &[2])?)?;
//! assert_eq!(y.to_vec::<f64>()?, vec![std::f64::consts::LN_2, 1000.0]);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::array::Array;
use crate::error::Result;
use crate::tree::{KeyPath, Structure, Tree};

/// `max(x, 0)`; its derivative at 0 is 0, as `jax.nn.relu`'s.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![-2.0f32, 0.0, 3.0], &[3])?;
/// assert_eq!(activation::relu(&x)?.to_vec::<f32>()?, vec![0.0, 0.0, 3.0]);
/// # Ok(()) }
/// ```
pub fn relu(x: &Array) -> Result<Array> {
    x.relu()
}

/// The exact Gaussian error linear unit `x/2 (1 + erf(x/√2))`:
/// `jax.nn.gelu(x, approximate=False)` and PyTorch's default `gelu`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation::gelu};
/// # fn main() -> solstice::Result<()> {
/// let y = gelu(&Array::from_vec(vec![0.0f64, 1.0], &[2])?)?.to_vec::<f64>()?;
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 0.841_344_746_068_542_9).abs() < 1e-12);
/// # Ok(()) }
/// ```
pub fn gelu(x: &Array) -> Result<Array> {
    let inner = x
        .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
        .erf()?
        .add_scalar(1.0)?;
    x.mul(&inner)?.mul_scalar(0.5)
}

/// The tanh approximation of GELU,
/// `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`: `jax.nn.gelu(x)` with its
/// default `approximate=True`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![0.0f64, 1.0], &[2])?;
/// let y = activation::gelu_tanh(&x)?.to_vec::<f64>()?;
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 0.841_191_990_608_276_8).abs() < 1e-12);
/// # Ok(()) }
/// ```
pub fn gelu_tanh(x: &Array) -> Result<Array> {
    // One fused pass forward and one backward, instead of nine of each.
    x.gelu_tanh()
}

/// `x σ(x)`: `jax.nn.silu`, also called swish.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![0.0f64, 2.0], &[2])?;
/// let y = activation::silu(&x)?.to_vec::<f64>()?;
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 2.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15);
/// # Ok(()) }
/// ```
pub fn silu(x: &Array) -> Result<Array> {
    x.mul(&x.sigmoid()?)
}

/// `tanh x`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let y = activation::tanh(&Array::from_vec(vec![0.0f64, 1.0], &[2])?)?.to_vec::<f64>()?;
/// assert_eq!(y, vec![0.0, 1f64.tanh()]);
/// # Ok(()) }
/// ```
pub fn tanh(x: &Array) -> Result<Array> {
    x.tanh()
}

/// `σ(x) = 1 / (1 + e^-x)`: `jax.nn.sigmoid`.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let y = activation::sigmoid(&Array::from_vec(vec![0.0f32], &[1])?)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.5]);
/// # Ok(()) }
/// ```
pub fn sigmoid(x: &Array) -> Result<Array> {
    x.sigmoid()
}

/// `log(1 + e^x)`, as `jax.nn.softplus`: computed as
/// `m + log(e^(x-m) + e^-m)` with `m = max(x, 0)`, so that neither
/// exponential overflows and the derivative is exactly `σ(x)` (½ at 0).
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// use solstice::grad;
/// let x = Array::from_vec(vec![-100.0f64, 0.0, 100.0], &[3])?;
/// assert_eq!(activation::softplus(&x)?.to_vec::<f64>()?[2], 100.0);
/// // The derivative is the sigmoid, without overflow at either end.
/// let d = grad(|x: &Array| activation::softplus(x)?.sum_all())(&x)?.to_vec::<f64>()?;
/// assert_eq!(d[1], 0.5);
/// assert!(d[0] < 1e-40 && d[2] == 1.0);
/// # Ok(()) }
/// ```
pub fn softplus(x: &Array) -> Result<Array> {
    let zero = Array::scalar_of(0.0, x.dtype())?;
    let m = x.maximum(&zero)?.stop_gradient()?;
    let sum = x.sub(&m)?.exp()?.add(&m.neg()?.exp()?)?;
    m.add(&sum.log()?)
}

/// `x`, unchanged: the default final activation of [`Mlp`](super::Mlp).
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::activation};
/// # fn main() -> solstice::Result<()> {
/// let x = Array::from_vec(vec![1.0f32], &[1])?;
/// assert!(activation::identity(&x)?.is(&x));
/// # Ok(()) }
/// ```
pub fn identity(x: &Array) -> Result<Array> {
    Ok(x.clone())
}

type ArrayFn = dyn Fn(&Array) -> Result<Array> + Send + Sync;

/// A named function of one array, held by a layer: an [`Mlp`](super::Mlp)'s
/// activations, a [`Lambda`](super::Lambda)'s function.
///
/// In a tree it is a node without leaves, like a function in an Equinox
/// module: `grad`, `vmap` and filters pass over it, and it prints as
/// Equinox prints the function: `<function NAME>`, except the two GELUs,
/// which print as `jax.nn.gelu` does (`gelu_tanh`, its default, as
/// `<function gelu>`; the exact `gelu` as
/// `partial(<function gelu>, approximate=False)`). Two activations have the
/// same structure when they print alike. Cloning shares the function.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::Activation};
/// # fn main() -> solstice::Result<()> {
/// let double = Activation::new("double", |x: &Array| x.mul_scalar(2.0));
/// let x = Array::from_vec(vec![1.0f32, -3.0], &[2])?;
/// assert_eq!(double.call(&x)?.to_vec::<f32>()?, vec![2.0, -6.0]);
/// assert_eq!(format!("{double:?}"), "<function double>");
/// assert_eq!(Activation::relu().name(), "relu");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Activation {
    name: Arc<str>,
    printed: Arc<str>,
    f: Arc<ArrayFn>,
}

impl Activation {
    /// Wraps `f` under `name`, which is how it prints.
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(&Array) -> Result<Array> + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        Activation {
            printed: Arc::from(format!("<function {name}>")),
            name: Arc::from(name),
            f: Arc::new(f),
        }
    }

    /// As [`Activation::new`], printed as `printed`.
    fn printed_as(
        name: &str,
        printed: &str,
        f: impl Fn(&Array) -> Result<Array> + Send + Sync + 'static,
    ) -> Self {
        Activation {
            name: Arc::from(name),
            printed: Arc::from(printed),
            f: Arc::new(f),
        }
    }

    /// [`relu`].
    pub fn relu() -> Self {
        Self::new("relu", relu)
    }

    /// [`gelu`], the exact form. It prints as Equinox prints
    /// `functools.partial(jax.nn.gelu, approximate=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::nn::Activation;
    /// assert_eq!(format!("{:?}", Activation::gelu()), "partial(<function gelu>, approximate=False)");
    /// ```
    pub fn gelu() -> Self {
        Self::printed_as("gelu", "partial(<function gelu>, approximate=False)", gelu)
    }

    /// [`gelu_tanh`], the tanh approximation: `jax.nn.gelu` with its
    /// default, so it prints as Equinox prints `jax.nn.gelu`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::nn::Activation;
    /// assert_eq!(format!("{:?}", Activation::gelu_tanh()), "<function gelu>");
    /// assert_eq!(Activation::gelu_tanh().name(), "gelu_tanh");
    /// ```
    pub fn gelu_tanh() -> Self {
        Self::printed_as("gelu_tanh", "<function gelu>", gelu_tanh)
    }

    /// [`silu`].
    pub fn silu() -> Self {
        Self::new("silu", silu)
    }

    /// [`tanh`].
    pub fn tanh() -> Self {
        Self::new("tanh", tanh)
    }

    /// [`sigmoid`].
    pub fn sigmoid() -> Self {
        Self::new("sigmoid", sigmoid)
    }

    /// [`softplus`].
    pub fn softplus() -> Self {
        Self::new("softplus", softplus)
    }

    /// [`identity`].
    pub fn identity() -> Self {
        Self::new("identity", identity)
    }

    /// Applies the function.
    pub fn call(&self, x: &Array) -> Result<Array> {
        (self.f)(x)
    }

    /// Its name (`"gelu_tanh"`); it prints as Equinox prints the function.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printed)
    }
}

/// A function is a node with no array leaves.
impl Tree for Activation {
    fn visit_leaves(&self, _: &mut KeyPath, _: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {}

    fn visit_leaves_mut(
        &mut self,
        _: &mut KeyPath,
        _: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
    }

    fn structure(&self) -> Structure {
        Structure::Opaque(format!("{self:?}"))
    }
}
