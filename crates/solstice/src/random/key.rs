//! The public PRNG key type.

use super::RandomOp;
use super::threefry;
use crate::array::prim::Prim;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::transform::trace::bind;
use crate::tree::{KeyPath, Structure, Tree};

/// A key for JAX's default pseudo-random number generator (threefry2x32).
///
/// Like a `jax.random` key, a `Key` is an immutable value: nothing draws
/// from it in place. To get several independent streams, [`split`] it into
/// new keys (or [`fold_in`] some data) and never reuse a key once it has been
/// split or used for sampling. Keys and everything derived from them are
/// bit-for-bit identical to JAX's (with its default settings).
///
/// A key is a tree with one leaf, its two `u32` words, so a batch of keys
/// can be mapped over: `vmap(|k: &Key| make_model(k.clone()))(&keys)` builds
/// an ensemble, one member per key, as `eqx.filter_vmap` does.
///
/// ```
/// use solstice::random::Key;
/// # fn main() -> solstice::Result<()> {
/// let key = Key::new(0);
/// assert_eq!(key.data()?, [0, 0]);
///
/// // Same as `k1, k2 = jax.random.split(jax.random.key(0))`.
/// let [k1, k2] = key.split();
/// assert_ne!(k1, k2);
/// assert_eq!(key.split_n(2), vec![k1.clone(), k2]);
///
/// // Keys round-trip through their raw data.
/// assert_eq!(Key::from_data(k1.data()?), k1);
/// # Ok(()) }
/// ```
///
/// [`split`]: Key::split
/// [`fold_in`]: Key::fold_in
#[derive(Clone)]
pub struct Key {
    /// `u32[2]`, possibly a tracer of `vmap`; or the error met deriving it,
    /// reported when the key is used.
    data: std::result::Result<Array, Error>,
}

impl Key {
    /// The key of `seed`: `jax.random.key(seed)`.
    pub fn new(seed: u64) -> Key {
        Key::from_data(threefry::seed(seed))
    }

    /// A key with the given raw words: `jax.random.wrap_key_data`.
    pub fn from_data(data: [u32; 2]) -> Key {
        Key {
            data: Array::from_vec(data.to_vec(), &[2]),
        }
    }

    /// A key whose words are the array `data`: `u32[2]` for one key, or
    /// `u32[..., 2]` for an array of keys (JAX's key arrays), as `vmap`
    /// maps over. `data` may be traced.
    pub fn from_array(data: Array) -> Result<Key> {
        data.check_value("Key::from_array")?;
        if data.shape().last() != Some(&2) || data.dtype() != DType::U32 {
            return Err(Error::shape(format!(
                "Key::from_array needs u32 words ending in a dimension of 2 but got {}",
                data.short_description()
            )));
        }
        Ok(Key { data: Ok(data) })
    }

    /// `n` keys split from this one, as one key array of `u32[n, 2]`:
    /// `jax.random.split(key, n)`, ready to be mapped over with `vmap`.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, random::{self, Key}, vmap, DType};
    /// # fn main() -> solstice::Result<()> {
    /// let keys = Key::new(0).split_batch(3);
    /// assert_eq!(keys.array()?.shape(), &[3, 2]);
    /// // One draw per key, in one batched call...
    /// let draws = vmap(|k: &Key| random::normal(k.clone(), &[2], DType::F32))(&keys)?;
    /// // ...equal to drawing from each key on its own.
    /// let second = random::normal(Key::new(0).split_n(3)[1].clone(), &[2], DType::F32)?;
    /// assert_eq!(draws.to_vec::<f32>()?[2..4], second.to_vec::<f32>()?[..]);
    /// # Ok(()) }
    /// ```
    pub fn split_batch(&self, n: usize) -> Key {
        match self
            .array()
            .and_then(|data| bind(Prim::Random(RandomOp::Split(n)), &[data]))
        {
            Ok(data) => Key { data: Ok(data) },
            Err(e) => Key { data: Err(e) },
        }
    }

    /// How many keys this holds: `[]` for one key, `[n]` for a key array of
    /// `n`, ...
    pub fn batch_shape(&self) -> Result<&[usize]> {
        let data = self.array()?;
        Ok(&data.shape()[..data.rank() - 1])
    }

    /// The raw words of one key: `jax.random.key_data`. Fails for a key
    /// array and for a key inside `vmap`, which stand for many keys.
    pub fn data(&self) -> Result<[u32; 2]> {
        match self.concrete()? {
            Some(words) => Ok(words),
            None => Err(Error::invalid(format!(
                "Key::data reads one key but this holds {}; map over it with `vmap`",
                self.array()?.short_description()
            ))),
        }
    }

    /// The words as a `u32[..., 2]` array (or a tracer of one).
    ///
    /// Fails if the words are not of that form, as happens when `vmap` maps
    /// over a single key (mapping its two words) instead of a key array
    /// made by [`Key::split_batch`], or when a filter removed them.
    pub fn array(&self) -> Result<&Array> {
        let data = self.data.as_ref().map_err(Clone::clone)?;
        data.check_value("Key")?;
        if data.shape().last() != Some(&2) || data.dtype() != DType::U32 {
            return Err(Error::shape(format!(
                "a Key's words must be u32[..., 2] but are {}; to map over keys, \
                 vmap over a key array made by `Key::split_batch`",
                data.short_description()
            )));
        }
        Ok(data)
    }

    /// The words of one concrete key, or `None` for a traced key or a key
    /// array (which the random primitives handle as a batch).
    pub(crate) fn concrete(&self) -> Result<Option<[u32; 2]>> {
        let data = self.array()?;
        if data.is_tracer() || data.shape() != [2] {
            return Ok(None);
        }
        let words = data.to_vec::<u32>()?;
        Ok(Some([words[0], words[1]]))
    }

    /// `N` new keys: `jax.random.split(key, N)`, so that
    /// `let [k1, k2] = key.split();` reads as in JAX.
    pub fn split<const N: usize>(&self) -> [Key; N] {
        let mut keys = self.split_n(N).into_iter();
        std::array::from_fn(|_| keys.next().expect("split_n returns N keys"))
    }

    /// `n` new keys: `jax.random.split(key, n)`.
    pub fn split_n(&self, n: usize) -> Vec<Key> {
        let split = || -> Result<Vec<Key>> {
            match self.concrete()? {
                Some(words) => Ok(threefry::split(words, n)
                    .into_iter()
                    .map(Key::from_data)
                    .collect()),
                None => {
                    let keys = bind(Prim::Random(RandomOp::Split(n)), &[self.array()?])?;
                    (0..n)
                        .map(|i| Key::from_array(keys.take(&Array::scalar(i as u32)?, -2)?))
                        .collect()
                }
            }
        };
        match split() {
            Ok(keys) => keys,
            Err(e) => vec![Key { data: Err(e) }; n],
        }
    }

    /// A new key mixing in `data`: `jax.random.fold_in(key, data)`.
    pub fn fold_in(&self, data: u32) -> Key {
        let fold = || -> Result<Key> {
            match self.concrete()? {
                Some(words) => Ok(Key::from_data(threefry::fold_in(words, data))),
                None => Key::from_array(bind(
                    Prim::Random(RandomOp::FoldIn(data)),
                    &[self.array()?],
                )?),
            }
        };
        fold().unwrap_or_else(|e| Key { data: Err(e) })
    }
}

/// Keys compare by their words; traced keys only equal themselves.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (self.concrete(), other.concrete()) {
            (Ok(Some(a)), Ok(Some(b))) => a == b,
            _ => match (&self.data, &other.data) {
                (Ok(a), Ok(b)) => a.is(b),
                _ => false,
            },
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.concrete() {
            Ok(Some(words)) => write!(f, "Key({words:?})"),
            Ok(None) => f.write_str("Key(traced)"),
            Err(e) => write!(f, "Key(error: {e})"),
        }
    }
}

impl Tree for Key {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {
        if let Ok(data) = &self.data {
            f(path, crate::tree::Leaf::Array(data))
        }
    }

    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
        if let Ok(data) = &mut self.data {
            f(path, crate::tree::LeafMut::Array(data))
        }
    }

    fn structure(&self) -> Structure {
        match &self.data {
            Ok(data) => data.structure(),
            Err(e) => Structure::Opaque(format!("<key error: {e}>")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_agrees_with_split_n() {
        let key = Key::new(42);
        let arr: [Key; 5] = key.split();
        assert_eq!(arr.to_vec(), key.split_n(5));
        let [] = key.split::<0>();
        assert!(key.split_n(0).is_empty());
    }

    #[test]
    fn known_keys() {
        let [a, b] = Key::new(0).split();
        assert_eq!(a.data().unwrap(), [1_797_259_609, 2_579_123_966]);
        assert_eq!(b.data().unwrap(), [928_981_903, 3_453_687_069]);
        assert_eq!(
            Key::new(0).fold_in(1).data().unwrap(),
            [928_981_903, 3_453_687_069]
        );
    }
}
