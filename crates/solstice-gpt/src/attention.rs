//! Causal self-attention through a [`MultiheadAttention`]'s layers: on a
//! whole sequence (training), or one position at a time against a key/value
//! cache (sampling).
//!
//! With learned positions a whole sequence goes through
//! `MultiheadAttention::forward` with a causal mask. Rotary positions rotate
//! each head's queries and keys between the projections and the attention
//! (Equinox's `process_heads`), so that path, and the cached one, use the
//! layer's projections and the same formula:
//!
//! ```text
//! A_h = softmax(mask(Q_h K_h^T / sqrt(qk_size)))    y = concat_h(A_h V_h) W^O
//! ```

use solstice::nn::{AttentionCall, Linear, MultiheadAttention, RotaryPositionalEmbedding};
use solstice::{Array, DType, Result, vmap};

/// The causal mask of a sequence of `len`: `mask[i, j] = 1` for `j <= i`.
pub fn causal_mask(len: usize) -> Result<Array> {
    let bits: Vec<u8> = (0..len * len)
        .map(|i| u8::from(i % len <= i / len))
        .collect();
    Array::from_vec(bits, &[len, len])
}

/// Causal self-attention over `x` `[seq, dim]`, rotating queries and keys
/// when `rope` is given.
pub fn self_attention(
    attention: &MultiheadAttention,
    rope: Option<&RotaryPositionalEmbedding>,
    x: &Array,
) -> Result<Array> {
    let mask = causal_mask(x.shape()[0])?;
    let Some(rope) = rope else {
        let masked = AttentionCall {
            mask: Some(&mask),
            ..AttentionCall::default()
        };
        return attention.forward_with(x, x, x, masked);
    };
    let heads = attention.num_heads;
    let rotate = |h: &Array| rope.forward(h);
    let q = vmap(rotate)(&split_heads(&attention.query_proj, x, heads)?)?;
    let k = vmap(rotate)(&split_heads(&attention.key_proj, x, heads)?)?;
    let v = split_heads(&attention.value_proj, x, heads)?;
    attend(attention, &q, &k, &v, Some(&mask))
}

/// The keys and values of earlier positions, per block, for incremental
/// decoding.
#[derive(Clone, Default)]
pub struct LayerCache {
    /// Projected (and rotated) keys, position-major: `[len, heads * qk]`.
    keys: Vec<f32>,
    /// Projected values, position-major: `[len, heads * vo]`.
    values: Vec<f32>,
    len: usize,
}

impl LayerCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// Attention of the token `x` `[dim]` at position `cache.len()` over itself
/// and the cached positions; `cache` gains its key and value. Returns
/// `[dim]`.
pub fn attend_one(
    attention: &MultiheadAttention,
    rope: Option<&RotaryPositionalEmbedding>,
    x: &Array,
    cache: &mut LayerCache,
) -> Result<Array> {
    let heads = attention.num_heads;
    let (qk, vo) = (attention.qk_size, attention.vo_size);
    let position = cache.len;
    let x = x.reshape(&[1, x.shape()[0]])?;
    let mut q = split_heads(&attention.query_proj, &x, heads)?;
    let mut k = split_heads(&attention.key_proj, &x, heads)?;
    let v = split_heads(&attention.value_proj, &x, heads)?;
    if let Some(rope) = rope {
        q = rotate_at(rope, &q, position)?;
        k = rotate_at(rope, &k, position)?;
    }
    cache.keys.extend(k.to_vec::<f32>()?);
    cache.values.extend(v.to_vec::<f32>()?);
    cache.len += 1;
    let len = cache.len;
    let keys = Array::from_vec(cache.keys.clone(), &[len, heads, qk])?.moveaxis(1, 0)?;
    let values = Array::from_vec(cache.values.clone(), &[len, heads, vo])?.moveaxis(1, 0)?;
    let y = attend(attention, &q, &keys, &values, None)?;
    y.reshape(&[y.shape()[1]])
}

/// `x` `[seq, in]` projected and split into heads: `[heads, seq, size]`.
fn split_heads(proj: &Linear, x: &Array, heads: usize) -> Result<Array> {
    let seq = x.shape()[0];
    let y = vmap(|t: &Array| proj.forward(t))(x)?;
    let size = y.shape()[1] / heads;
    y.reshape(&[seq, heads, size])?.moveaxis(1, 0)
}

/// Rotates `x` `[heads, 1, size]` as position `position` of a sequence: the
/// row is placed at `position` of an otherwise zero sequence, so the layer
/// computes exactly the angles a whole-sequence pass would.
fn rotate_at(rope: &RotaryPositionalEmbedding, x: &Array, position: usize) -> Result<Array> {
    let len = position + 1;
    let mut one_hot = vec![0f32; len];
    one_hot[position] = 1.0;
    let place = Array::from_vec(one_hot, &[len, 1])?;
    let last = Array::from_vec(vec![position as u32], &[1])?;
    vmap(|h: &Array| rope.forward(&place.mul(h)?)?.take(&last, 0))(x)
}

/// Scaled dot-product attention of `q` `[heads, q_seq, qk]` over `k`
/// `[heads, kv_seq, qk]` and `v` `[heads, kv_seq, vo]`, then the output
/// projection: `[q_seq, output_size]`.
fn attend(
    attention: &MultiheadAttention,
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<&Array>,
) -> Result<Array> {
    let (heads, q_seq) = (q.shape()[0], q.shape()[1]);
    let scale = Array::scalar_of((attention.qk_size as f64).sqrt(), q.dtype())?;
    let logits = q.div(&scale)?.matmul(&k.transpose(&[0, 2, 1])?)?;
    let logits = match mask {
        Some(mask) => {
            let lowest = Array::scalar_of(f64::from(f32::MIN), DType::F32)?;
            mask.select(&logits, &lowest)?
        }
        None => logits,
    };
    let weights = logits.softmax(-1)?;
    let out = weights.matmul(v)?.moveaxis(0, 1)?;
    let out = out.reshape(&[q_seq, heads * attention.vo_size])?;
    vmap(|t: &Array| attention.output_proj.forward(t))(&out)
}
