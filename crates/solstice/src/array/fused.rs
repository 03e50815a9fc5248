//! The fused row-wise operations: softmax, log-softmax, logsumexp, softmax
//! cross-entropy and standardisation. Each is one primitive (one kernel,
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
                "{op} needs a float array but got {}",
                self.short_description()
            )));
        }
        Ok(())
    }

    /// Applies a last-axis primitive along `axis`, moving it last and back.
    fn along_axis(&self, op: &str, axis: isize, prim: Prim, removes: bool) -> Result<Array> {
        self.check_float(op)?;
        let axis = resolve_axis(op, axis, self.rank())?;
        let last = self.rank() - 1;
        let x = self.moveaxis(axis as isize, -1)?;
        let y = bind(prim, &[&x])?;
        if removes || axis == last {
            Ok(y)
        } else {
            y.moveaxis(-1, axis as isize)
        }
    }

    /// `log(sum(exp(x)))` over `axis`, computed stably, removing the axis.
    /// A slice of `-inf` gives `-inf`, as in JAX.
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
        self.check_float("logsumexp")?;
        let a = resolve_axis("logsumexp", axis, self.rank())?;
        if self.shape()[a] == 0 {
            // The sum of nothing is 0, its log -inf, as in JAX.
            let mut shape = self.shape().to_vec();
            shape.remove(a);
            return Array::full(&shape, f64::NEG_INFINITY, self.dtype());
        }
        self.along_axis("logsumexp", axis, Prim::Logsumexp, true)
    }

    /// `x - logsumexp(x)` over `axis`: `jax.nn.log_softmax`.
    pub fn log_softmax(&self, axis: isize) -> Result<Array> {
        self.along_axis("log_softmax", axis, Prim::LogSoftmax, false)
    }

    /// `exp(x) / sum(exp(x))` over `axis`, computed stably:
    /// `jax.nn.softmax`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::Array;
    /// # fn main() -> solstice::Result<()> {
    /// let p = Array::from_vec(vec![0.0f64, 0.0], &[2])?.softmax(-1)?;
    /// assert_eq!(p.to_vec::<f64>()?, vec![0.5, 0.5]);
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
