//! [`MultiheadAttention`]: Equinox's `eqx.nn.MultiheadAttention`, on one
//! sequence.
//!
//! ```text
//! Q_h = query W^Q_h + b^Q_h      (per head h, each [q_seq, qk_size])
//! K_h = key   W^K_h + b^K_h      ([kv_seq, qk_size])
//! V_h = value W^V_h + b^V_h      ([kv_seq, vo_size])
//! A_h = dropout(softmax(mask(Q_h K_h^T / sqrt(qk_size))))   [q_seq, kv_seq]
//! y   = concat_h(A_h V_h) W^O + b^O                         [q_seq, output_size]
//! ```
//!
//! - Inputs: `query` `[q_seq, query_size]`, `key` `[kv_seq, key_size]`,
//!   `value` `[kv_seq, value_size]`. Batch with [`vmap`].
//! - `mask`: `u8` (1 = attend, 0 = ignore), `[q_seq, kv_seq]` or per head
//!   `[num_heads, q_seq, kv_seq]`. A masked logit becomes the dtype's lowest
//!   finite value, as in Equinox.
//! - The four projections are [`Linear`] layers without bias by default;
//!   initialisation splits the key into four, for the query, key, value and
//!   output projections in that order, as Equinox does.
//! - [`MultiheadAttention::forward`] takes the three inputs alone;
//!   [`MultiheadAttention::forward_with`] adds an [`AttentionCall`]: a mask,
//!   the PRNG key for dropout, or inference mode.
//! - Dropout on the attention weights: the PRNG key is split into one key
//!   per head, and head `h` draws its mask from key `h`, as Equinox's
//!   per-head `vmap` does.
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, DType, nn::{AttentionCall, MultiheadAttention}, random::{self, Key}};
//! # fn main() -> solstice::Result<()> {
//! let [k_init, k_x] = Key::new(0).split();
//! let attention = MultiheadAttention::new(2, 8, k_init)?;
//! assert_eq!(attention.qk_size, 4); // query_size / num_heads
//! let x = random::normal(k_x, &[5, 8], DType::F32)?;
//! let y = attention.forward(&x, &x, &x)?;
//! assert_eq!(y.shape(), &[5, 8]);
//! // A causal mask: position i attends to positions j <= i.
//! let causal: Vec<u8> = (0..25).map(|i| u8::from(i % 5 <= i / 5)).collect();
//! let mask = Array::from_vec(causal, &[5, 5])?;
//! let masked = AttentionCall { mask: Some(&mask), ..AttentionCall::default() };
//! let y_causal = attention.forward_with(&x, &x, &x, masked)?;
//! // The last position sees everything, so it is unchanged by the mask.
//! let last = Array::scalar(4u32)?;
//! assert_eq!(
//!     y_causal.take(&last, 0)?.to_vec::<f32>()?,
//!     y.take(&last, 0)?.to_vec::<f32>()?
//! );
//! let err = attention.forward(&x, &x, &x.take(&Array::arange(3, DType::U32)?, 0)?);
//! assert!(err.unwrap_err().to_string().contains("key and value"));
//! # Ok(()) }
//! ```

use crate::Module;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::random::Key;
use crate::transform::vmap;

use super::dropout::Dropout;
use super::linear::{Linear, LinearOptions};

/// The optional parts of one call of [`MultiheadAttention::forward_with`]:
/// Equinox's `mask=`, `key=` and `inference=` arguments. The default is
/// no mask, no key, and the layer's own mode.
#[derive(Clone, Debug, Default)]
pub struct AttentionCall<'a> {
    /// `u8` (1 = attend, 0 = ignore), `[q_seq, kv_seq]` or
    /// `[num_heads, q_seq, kv_seq]`.
    pub mask: Option<&'a Array>,
    /// The PRNG key for dropout on the attention weights; needed when
    /// dropout is active (training mode and `dropout_p > 0`).
    pub dropout_key: Option<Key>,
    /// Runs without dropout whatever the layer's own mode.
    pub inference: bool,
}

/// Options of [`MultiheadAttention::with_options`]; the defaults are
/// Equinox's.
#[derive(Clone, Copy, Debug)]
pub struct MultiheadAttentionOptions {
    /// Channels of the `key` input. Default `query_size`.
    pub key_size: Option<usize>,
    /// Channels of `value`. Default `query_size`.
    pub value_size: Option<usize>,
    /// Channels of the output. Default `query_size`.
    pub output_size: Option<usize>,
    /// Channels per head compared between query and key. Default
    /// `query_size / num_heads`.
    pub qk_size: Option<usize>,
    /// Channels per head of the attended values. Default
    /// `query_size / num_heads`.
    pub vo_size: Option<usize>,
    /// Whether the query projection has a bias. Default `false`.
    pub use_query_bias: bool,
    /// Whether the key projection has a bias. Default `false`.
    pub use_key_bias: bool,
    /// Whether the value projection has a bias. Default `false`.
    pub use_value_bias: bool,
    /// Whether the output projection has a bias. Default `false`.
    pub use_output_bias: bool,
    /// Dropout probability on the attention weights. Default `0`.
    pub dropout_p: f64,
    /// Whether the dropout starts in inference mode. Default `false`.
    pub inference: bool,
    /// The dtype of every weight and bias. Default f32.
    pub dtype: DType,
}

impl Default for MultiheadAttentionOptions {
    fn default() -> Self {
        MultiheadAttentionOptions {
            key_size: None,
            value_size: None,
            output_size: None,
            qk_size: None,
            vo_size: None,
            use_query_bias: false,
            use_key_bias: false,
            use_value_bias: false,
            use_output_bias: false,
            dropout_p: 0.0,
            inference: false,
            dtype: DType::F32,
        }
    }
}

/// Multi-head attention. See the [module docs](self).
///
/// Fields in Equinox's order.
#[derive(Module)]
pub struct MultiheadAttention {
    /// `query_size -> num_heads * qk_size`.
    pub query_proj: Linear,
    /// `key_size -> num_heads * qk_size`.
    pub key_proj: Linear,
    /// `value_size -> num_heads * vo_size`.
    pub value_proj: Linear,
    /// `num_heads * vo_size -> output_size`.
    pub output_proj: Linear,
    /// Dropout on the attention weights.
    pub dropout: Dropout,
    /// The number of heads.
    #[module(static)]
    pub num_heads: usize,
    /// Channels of `query`.
    #[module(static)]
    pub query_size: usize,
    /// Channels of the `key` input.
    #[module(static)]
    pub key_size: usize,
    /// Channels of `value`.
    #[module(static)]
    pub value_size: usize,
    /// Channels of the output.
    #[module(static)]
    pub output_size: usize,
    /// Channels per head compared between query and key.
    #[module(static)]
    pub qk_size: usize,
    /// Channels per head of the attended values.
    #[module(static)]
    pub vo_size: usize,
    /// Whether the query projection has a bias.
    #[module(static)]
    pub use_query_bias: bool,
    /// Whether the key projection has a bias.
    #[module(static)]
    pub use_key_bias: bool,
    /// Whether the value projection has a bias.
    #[module(static)]
    pub use_value_bias: bool,
    /// Whether the output projection has a bias.
    #[module(static)]
    pub use_output_bias: bool,
}

impl MultiheadAttention {
    /// Attention with Equinox's defaults: every size from `query_size`, no
    /// biases, no dropout, f32.
    pub fn new(num_heads: usize, query_size: usize, key: Key) -> Result<Self> {
        Self::with_options(
            num_heads,
            query_size,
            MultiheadAttentionOptions::default(),
            key,
        )
    }

    /// Attention with the given options.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{nn::{MultiheadAttention, MultiheadAttentionOptions}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let options = MultiheadAttentionOptions {
    ///     key_size: Some(5),
    ///     output_size: Some(3),
    ///     qk_size: Some(2),
    ///     use_query_bias: true,
    ///     ..MultiheadAttentionOptions::default()
    /// };
    /// let attention = MultiheadAttention::with_options(4, 8, options, Key::new(0))?;
    /// assert_eq!(attention.query_proj.weight.shape(), &[8, 8]); // 4 heads x qk_size 2
    /// assert_eq!(attention.key_proj.weight.shape(), &[8, 5]);
    /// assert_eq!(attention.value_proj.weight.shape(), &[8, 8]); // vo_size 8 / 4 = 2
    /// assert_eq!(attention.output_proj.weight.shape(), &[3, 8]);
    /// assert!(attention.query_proj.bias.is_some() && attention.key_proj.bias.is_none());
    /// # Ok(()) }
    /// ```
    pub fn with_options(
        num_heads: usize,
        query_size: usize,
        options: MultiheadAttentionOptions,
        key: Key,
    ) -> Result<Self> {
        if num_heads == 0 {
            return Err(Error::invalid(
                "MultiheadAttention::new needs at least one head but got num_heads = 0",
            ));
        }
        let key_size = options.key_size.unwrap_or(query_size);
        let value_size = options.value_size.unwrap_or(query_size);
        let output_size = options.output_size.unwrap_or(query_size);
        let qk_size = options.qk_size.unwrap_or(query_size / num_heads);
        let vo_size = options.vo_size.unwrap_or(query_size / num_heads);
        if qk_size == 0 || vo_size == 0 {
            return Err(Error::invalid(format!(
                "MultiheadAttention::new got qk_size = {qk_size} and vo_size = {vo_size} \
                 ({num_heads} heads, query_size {query_size}); both must be at least 1, \
                 so set them in the options or use fewer heads"
            )));
        }
        if !(0.0..=1.0).contains(&options.dropout_p) {
            return Err(Error::invalid(format!(
                "MultiheadAttention::new needs dropout_p in [0, 1] but got {}",
                options.dropout_p
            )));
        }
        let [qkey, kkey, vkey, okey] = key.split();
        let linear = |i: usize, o: usize, use_bias: bool, key: Key| {
            let options = LinearOptions {
                use_bias,
                dtype: options.dtype,
            };
            Linear::with_options(i, o, options, key)
        };
        Ok(MultiheadAttention {
            query_proj: linear(
                query_size,
                num_heads * qk_size,
                options.use_query_bias,
                qkey,
            )?,
            key_proj: linear(key_size, num_heads * qk_size, options.use_key_bias, kkey)?,
            value_proj: linear(
                value_size,
                num_heads * vo_size,
                options.use_value_bias,
                vkey,
            )?,
            output_proj: linear(
                num_heads * vo_size,
                output_size,
                options.use_output_bias,
                okey,
            )?,
            dropout: Dropout {
                p: options.dropout_p,
                inference: options.inference,
            },
            num_heads,
            query_size,
            key_size,
            value_size,
            output_size,
            qk_size,
            vo_size,
            use_query_bias: options.use_query_bias,
            use_key_bias: options.use_key_bias,
            use_value_bias: options.use_value_bias,
            use_output_bias: options.use_output_bias,
        })
    }

    /// Attention of `query` over `key`/`value`, without a mask and without
    /// dropout's randomness: the layer must be in inference mode or have
    /// `dropout_p == 0`, or the call needs a key through
    /// [`forward_with`](Self::forward_with). Returns `[q_seq, output_size]`.
    pub fn forward(&self, query: &Array, key: &Array, value: &Array) -> Result<Array> {
        self.forward_with(query, key, value, AttentionCall::default())
    }

    /// [`forward`](Self::forward) with a mask, a PRNG key for dropout, or
    /// inference mode forced, as Equinox's `mask=`, `key=` and `inference=`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{DType, nn::{AttentionCall, MultiheadAttention, MultiheadAttentionOptions}, random::{self, Key}};
    /// # fn main() -> solstice::Result<()> {
    /// let options = MultiheadAttentionOptions { dropout_p: 0.5, ..MultiheadAttentionOptions::default() };
    /// let attention = MultiheadAttention::with_options(2, 4, options, Key::new(0))?;
    /// let x = random::normal(Key::new(1), &[3, 4], DType::F32)?;
    /// // Training: dropout on the attention weights needs a key.
    /// assert!(attention.forward(&x, &x, &x).is_err());
    /// let training = AttentionCall { dropout_key: Some(Key::new(2)), ..AttentionCall::default() };
    /// let train = attention.forward_with(&x, &x, &x, training)?;
    /// // Inference: no dropout, no key.
    /// let inference = AttentionCall { inference: true, ..AttentionCall::default() };
    /// let eval = attention.forward_with(&x, &x, &x, inference)?;
    /// assert_eq!(train.shape(), eval.shape());
    /// assert_ne!(train.to_vec::<f32>()?, eval.to_vec::<f32>()?);
    /// # Ok(()) }
    /// ```
    pub fn forward_with(
        &self,
        query: &Array,
        key: &Array,
        value: &Array,
        call: AttentionCall<'_>,
    ) -> Result<Array> {
        let AttentionCall {
            mask,
            dropout_key,
            inference,
        } = call;
        let key_input = key;
        self.check_inputs(query, key_input, value)?;
        let (q_seq, kv_seq) = (query.shape()[0], key_input.shape()[0]);
        let heads = self.num_heads;
        let q = self.project(&self.query_proj, query)?;
        let k = self.project(&self.key_proj, key_input)?;
        let v = self.project(&self.value_proj, value)?;

        let scale = Array::scalar_of((self.qk_size as f64).sqrt(), q.dtype())?;
        let logits = q.div(&scale)?.matmul(&k.transpose(&[0, 2, 1])?)?;
        let logits = match mask {
            Some(mask) => {
                self.check_mask(mask, q_seq, kv_seq)?;
                let lowest = Array::scalar_of(lowest(logits.dtype()), logits.dtype())?;
                mask.select(&logits, &lowest)?
            }
            None => logits,
        };
        let mut weights = logits.softmax(-1)?;
        if self.dropout.is_active(inference) {
            let key = self.dropout.require_key(
                "MultiheadAttention::forward",
                dropout_key,
                "set `dropout_key` in the `AttentionCall`, or `inference: true`",
            )?;
            let keep = self.head_masks(key, [heads, q_seq, kv_seq], weights.dtype())?;
            weights = self.dropout.apply_mask(&weights, &keep)?;
        }
        let attn = weights.matmul(&v)?.moveaxis(0, 1)?;
        let attn = attn.reshape(&[q_seq, heads * self.vo_size])?;
        vmap(|t: &Array| self.output_proj.forward(t))(&attn)
    }

    /// `x` `[seq, in]` projected and split into heads: `[heads, seq, size]`.
    fn project(&self, proj: &Linear, x: &Array) -> Result<Array> {
        let seq = x.shape()[0];
        let y = vmap(|t: &Array| proj.forward(t))(x)?;
        let size = y.shape()[1] / self.num_heads;
        y.reshape(&[seq, self.num_heads, size])?.moveaxis(1, 0)
    }

    /// One dropout mask per head, head `h` from the `h`-th split of `key`,
    /// as Equinox maps dropout over the heads with one key each. The masks
    /// are drawn by mapping over the split keys, never by reading them on
    /// the host, so this works with a traced key (one key per sequence
    /// under `vmap`).
    fn head_masks(&self, key: Key, shape: [usize; 3], dtype: DType) -> Result<Array> {
        let keys = key.split_batch(shape[0]);
        vmap(|k: &Key| self.dropout.keep_mask(k.clone(), &shape[1..], dtype))(&keys)
    }

    fn check_inputs(&self, query: &Array, key: &Array, value: &Array) -> Result<()> {
        for (name, x, size) in [
            ("query", query, self.query_size),
            ("key", key, self.key_size),
            ("value", value, self.value_size),
        ] {
            x.check_value("MultiheadAttention::forward")?;
            if x.rank() != 2 || x.shape()[1] != size {
                return Err(Error::shape(format!(
                    "MultiheadAttention::forward expected `{name}` of shape [seq, {size}] \
                     but got {:?}; for a batch of sequences, use `vmap`",
                    x.shape()
                )));
            }
        }
        if key.shape()[0] != value.shape()[0] {
            return Err(Error::shape(format!(
                "MultiheadAttention::forward needs key and value sequences of equal length \
                 but got `key` {:?} and `value` {:?}",
                key.shape(),
                value.shape()
            )));
        }
        Ok(())
    }

    fn check_mask(&self, mask: &Array, q_seq: usize, kv_seq: usize) -> Result<()> {
        mask.check_value("MultiheadAttention::forward")?;
        let per_head = [self.num_heads, q_seq, kv_seq];
        if mask.shape() != [q_seq, kv_seq] && mask.shape() != per_head {
            return Err(Error::shape(format!(
                "MultiheadAttention::forward expected a mask of shape {:?} or {per_head:?} \
                 but got {:?}",
                [q_seq, kv_seq],
                mask.shape()
            )));
        }
        if mask.dtype() != DType::U8 {
            return Err(Error::dtype(format!(
                "MultiheadAttention::forward needs a u8 mask (1 = attend), as comparisons \
                 return, but got {}; convert it with `astype(DType::U8)`",
                mask.short_description()
            )));
        }
        Ok(())
    }
}

/// The lowest finite value of a float dtype: `jnp.finfo(dtype).min`.
fn lowest(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}
