//! The fused operations: softmax, log-softmax, logsumexp, softmax
//! cross-entropy and standardisation over rows, and the tanh GELU
//! elementwise. Each is one primitive (one kernel,
//! one pass over memory) with its own batching, VJP and JVP rules, rather
//! than a composition of elementwise operations and reductions.

use super::prim::Prim;
use super::{Array, resolve_axis};
use crate::error::{Error, Result};
use crate::transform::trace::bind;

impl Array {
    fn check_float(&self, op: &str) -> Result<()> {
        self.check_value(op)?;
        if !self.dtype().is_float() {
            return Err(Error::dtype(format!(
                "{op} needs a float array but got {}; convert with `astype`",
                self.short_description()
            )));
        }
        Ok(())
    }

    /// Applies a last-axis primitive along `axis`, moving it last and back.
    /// An empty axis gives what JAX gives without running a kernel: an
    /// empty result, or `-inf` where the primitive removes the axis (the
    /// log of an empty sum).
    fn along_axis(&self, op: &str, axis: isize, prim: Prim, removes: bool) -> Result<Array> {
        self.check_float(op)?;
        let axis = resolve_axis(op, axis, self.rank())?;
        if self.shape()[axis] == 0 {
            if !removes {
                return Ok(self.clone());
            }
            let mut shape = self.shape().to_vec();
            shape.remove(axis);
            return Array::full(&shape, f64::NEG_INFINITY, self.dtype());
        }
        let last = self.rank() - 1;
        let x = self.moveaxis(axis as isize, -1)?;
        let y = bind(prim, &[&x])?;
        if removes || axis == last {
            Ok(y)
        } else {
            y.moveaxis(-1, axis as isize)
        }
    }

    /// `log(sum(exp(x)))` over `axis`, computed stably, removing the axis,
    /// as `jax.nn.logsumexp`: a slice of only `-inf` gives `-inf`, and an
    /// empty axis gives `-inf`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let x = Array::from_vec(vec![1000.0f64, 1000.0], &[2])?;
    /// let want = 1000.0 + 2f64.ln();
    /// assert!((x.logsumexp(0)?.to_scalar::<f64>()? - want).abs() < 1e-12);
    /// # Ok(()) }
    /// ```
    pub fn logsumexp(&self, axis: isize) -> Result<Array> {
        self.along_axis("logsumexp", axis, Prim::Logsumexp, true)
    }

    /// `x - logsumexp(x)` over `axis`, as `jax.nn.log_softmax` computes it
    /// (so an infinite input gives NaN, as there; an empty axis gives an
    /// empty result).
    pub fn log_softmax(&self, axis: isize) -> Result<Array> {
        self.along_axis("log_softmax", axis, Prim::LogSoftmax, false)
    }

    /// `exp(x) / sum(exp(x))` over `axis`, computed stably, as
    /// `jax.nn.softmax` does: `softmax([inf, 0])` is `[nan, nan]`, a row of
    /// only `-inf` is NaN, and an empty axis gives an empty result.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let p = Array::from_vec(vec![0.0f64, 0.0], &[2])?.softmax(-1)?;
    /// assert_eq!(p.to_vec::<f64>()?, vec![0.5, 0.5]);
    /// let ints = Array::from_vec(vec![1i32, 2], &[2])?;
    /// assert_eq!(
    ///     ints.softmax(-1).unwrap_err().to_string(),
    ///     "softmax needs a float array but got i32[2]; convert with `astype`"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn softmax(&self, axis: isize) -> Result<Array> {
        self.along_axis("softmax", axis, Prim::Softmax, false)
    }

    /// The cross-entropy of `softmax(self)` against integer `labels`, per
    /// row of the last axis: `logsumexp(x) - x[label]`, optax's
    /// `softmax_cross_entropy_with_integer_labels`. `self` is `[..., n]`
    /// logits and `labels` is `[...]`, each in `0..n` (others are an
    /// error). The gradient is one fused pass, `softmax(x) - one_hot(label)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let logits = Array::from_vec(vec![0.0f64, 0.0, 5.0, 5.0], &[2, 2])?;
    /// let labels = Array::from_vec(vec![0i32, 1], &[2])?;
    /// let loss = logits.softmax_cross_entropy(&labels)?.to_vec::<f64>()?;
    /// assert!((loss[0] - 2f64.ln()).abs() < 1e-12 && (loss[1] - 2f64.ln()).abs() < 1e-12);
    /// # Ok(()) }
    /// ```
    pub fn softmax_cross_entropy(&self, labels: &Array) -> Result<Array> {
        let op = "softmax_cross_entropy";
        self.check_float(op)?;
        labels.check_value(op)?;
        if !labels.dtype().is_int() {
            return Err(Error::dtype(format!(
                "{op} needs integer labels but got {}",
                labels.short_description()
            )));
        }
        if self.rank() == 0 || labels.shape() != &self.shape()[..self.rank() - 1] {
            return Err(Error::shape(format!(
                "{op} needs logits [..., n] and labels [...] but got {:?} and {:?}",
                self.shape(),
                labels.shape()
            )));
        }
        bind(Prim::SoftmaxCrossEntropy, &[self, labels])
    }

    /// The tanh approximation of GELU,
    /// `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise in one pass
    /// (and its derivative in one more): `jax.nn.gelu(x)`, whose default
    /// is `approximate=True`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let y = Array::from_vec(vec![0.0f64, 1.0], &[2])?.gelu_tanh()?.to_vec::<f64>()?;
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 0.841_191_990_608_276_8).abs() < 1e-12);
    /// # Ok(()) }
    /// ```
    pub fn gelu_tanh(&self) -> Result<Array> {
        self.check_float("gelu_tanh")?;
        bind(Prim::GeluTanh, &[self])
    }

    /// `(x - mean) / sqrt(var + eps)` with the mean and (biased) variance
    /// over every element: the normalisation of
    /// [`LayerNorm`](crate::nn::LayerNorm) on one example, in one fused
    /// kernel. Under `vmap` each example is standardised on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let y = Array::from_vec(vec![1.0f64, 3.0], &[2])?.standardize(0.0)?;
    /// assert_eq!(y.to_vec::<f64>()?, vec![-1.0, 1.0]);
    /// # Ok(()) }
    /// ```
    pub fn standardize(&self, eps: f64) -> Result<Array> {
        self.check_float("standardize")?;
        if eps.is_nan() || eps < 0.0 {
            return Err(Error::invalid(format!(
                "standardize needs eps >= 0 but got {eps}"
            )));
        }
        bind(
            Prim::Standardize {
                axes: self.rank(),
                eps,
            },
            &[self],
        )
    }
}
