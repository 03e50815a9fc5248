//! The public PRNG key type.

use super::threefry;

/// A key for JAX's default pseudo-random number generator (threefry2x32).
///
/// Like a `jax.random` key, a `Key` is an immutable value: nothing draws
/// from it in place. To get several independent streams, [`split`] it into
/// new keys (or [`fold_in`] some data) and never reuse a key once it has been
/// split or used for sampling. Keys and everything derived from them are
/// bit-for-bit identical to JAX's (with its default settings).
///
/// ```
/// use solstice::random::Key;
///
/// let key = Key::new(0);
/// assert_eq!(key.data(), [0, 0]);
///
/// // Same as `k1, k2 = jax.random.split(jax.random.key(0))`.
/// let [k1, k2] = key.split();
/// assert_ne!(k1, k2);
/// assert_eq!(key.split_n(2), vec![k1, k2]);
///
/// // Keys round-trip through their raw data.
/// assert_eq!(Key::from_data(k1.data()), k1);
/// ```
///
/// [`split`]: Key::split
/// [`fold_in`]: Key::fold_in
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    data: [u32; 2],
}

impl Key {
    /// The key for an integer seed, equal to `jax.random.key(seed)` (and
    /// `jax.random.PRNGKey(seed)`) with JAX's default 32-bit mode.
    ///
    /// In that mode JAX keeps only the low 32 bits of the seed, so seeds that
    /// differ only above bit 31 give the same key. A negative JAX seed `s`
    /// corresponds to `s as u64` here.
    ///
    /// ```
    /// use solstice::random::Key;
    ///
    /// assert_eq!(Key::new(42).data(), [0, 42]);
    /// assert_eq!(Key::new((1 << 32) + 7), Key::new(7));
    /// assert_eq!(Key::new(-1i64 as u64).data(), [0, u32::MAX]);
    /// ```
    pub fn new(seed: u64) -> Key {
        Key {
            data: threefry::seed(seed),
        }
    }

    /// The key with the given raw data, like `jax.random.wrap_key_data`.
    pub fn from_data(data: [u32; 2]) -> Key {
        Key { data }
    }

    /// The key's raw data, like `jax.random.key_data`.
    pub fn data(&self) -> [u32; 2] {
        self.data
    }

    /// `N` new keys, equal to `jax.random.split(key, N)`.
    ///
    /// ```
    /// use solstice::random::Key;
    ///
    /// let [init_key, dropout_key, data_key] = Key::new(1).split();
    /// assert_eq!(Key::new(1).split_n(3), [init_key, dropout_key, data_key]);
    /// ```
    pub fn split<const N: usize>(&self) -> [Key; N] {
        let mut keys = [Key { data: [0; 2] }; N];
        for (key, data) in keys.iter_mut().zip(threefry::split(self.data, N)) {
            key.data = data;
        }
        keys
    }

    /// `n` new keys, equal to `jax.random.split(key, n)`, for a count known
    /// only at run time.
    pub fn split_n(&self, n: usize) -> Vec<Key> {
        threefry::split(self.data, n)
            .into_iter()
            .map(Key::from_data)
            .collect()
    }

    /// A new key derived from this one and `data`, equal to
    /// `jax.random.fold_in(key, data)`.
    ///
    /// ```
    /// use solstice::random::Key;
    ///
    /// let key = Key::new(0);
    /// // One key per step without splitting sequentially.
    /// let step_keys: Vec<Key> = (0..4).map(|step| key.fold_in(step)).collect();
    /// assert_ne!(step_keys[0], step_keys[1]);
    /// assert_eq!(key.fold_in(3), step_keys[3]);
    /// ```
    pub fn fold_in(&self, data: u32) -> Key {
        Key {
            data: threefry::fold_in(self.data, data),
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

    /// `jax.random.split(jax.random.key(0))` and `fold_in(key(0), 1)`.
    #[test]
    fn known_keys() {
        let [a, b] = Key::new(0).split();
        assert_eq!(a.data(), [1_797_259_609, 2_579_123_966]);
        assert_eq!(b.data(), [928_981_903, 3_453_687_069]);
        assert_eq!(Key::new(0).fold_in(1).data(), [928_981_903, 3_453_687_069]);
    }
}
