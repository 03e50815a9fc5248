//! The Threefry-2x32 counter-based PRNG, bit-for-bit compatible with JAX's
//! default `threefry2x32` implementation.
//!
//! A key is two `u32` words. Every operation is a pure function of the key and
//! a counter, so there is no hidden state: splitting, folding in data and
//! drawing bits all hash counters with the Threefry block function.
//!
//! This matches JAX's *current defaults* (checked against JAX 0.10.2):
//!
//! * `jax_threefry_partitionable = True`: element `i` of any output is hashed
//!   from the 64-bit counter `i`, split into `(hi, lo)` words. Keys produced
//!   by [`split`] and bits produced by [`random_bits_u32`] are therefore
//!   independent of how the output is laid out or sharded. (The legacy
//!   non-partitionable scheme, which hashed a flat `iota` split into two
//!   halves, produces different bits and is not implemented.)
//! * `jax_enable_x64 = False` for seeding: `jax.random.key(seed)` keeps only
//!   the low 32 bits of the seed (see [`seed`]).
//!
//! The block function and counters are the same on every backend, so these
//! bits match JAX on CPU, GPU and TPU alike.

/// Threefry key-schedule parity constant (from the Skein specification).
const KS_PARITY: u32 = 0x1BD1_1BDA;

/// Rotation amounts for the two alternating groups of four rounds.
const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];

/// The Threefry-2x32 block function with 20 rounds: hashes the counter pair
/// `count` under `key`.
///
/// This is the primitive JAX calls `threefry2x32_p`; everything else in this
/// module is a particular choice of counters fed through it.
#[inline(always)]
pub(crate) fn threefry2x32(key: [u32; 2], count: [u32; 2]) -> [u32; 2] {
    // Extended key schedule: the two key words plus their parity word.
    let ks = [key[0], key[1], key[0] ^ key[1] ^ KS_PARITY];
    let mut x = [count[0].wrapping_add(ks[0]), count[1].wrapping_add(ks[1])];
    // Five groups of four rounds; after group `g` the key schedule is rotated
    // by one word and injected together with the group number.
    for g in 0..5 {
        for &r in &ROTATIONS[g % 2] {
            x[0] = x[0].wrapping_add(x[1]);
            x[1] = x[1].rotate_left(r) ^ x[0];
        }
        x[0] = x[0].wrapping_add(ks[(g + 1) % 3]);
        x[1] = x[1]
            .wrapping_add(ks[(g + 2) % 3])
            .wrapping_add(g as u32 + 1);
    }
    x
}

/// Key data for an integer seed, as `jax.random.key(seed)` /
/// `jax.random.PRNGKey(seed)` produce with 64-bit mode disabled (the default).
///
/// JAX turns a Python int into an `int64` and then, without x64, into an
/// `int32`, keeping only the low 32 bits; the key is `[hi, lo]` of that
/// 32-bit value, so the high word is always zero. For example seeds `7` and
/// `2**32 + 7` give the same key `[0, 7]`, and seed `-1` (as `u64::MAX` here)
/// gives `[0, 0xFFFF_FFFF]`. (With `jax_enable_x64` JAX would instead keep
/// all 64 bits as `[seed >> 32, seed & 0xFFFF_FFFF]`.)
pub(crate) fn seed(seed: u64) -> [u32; 2] {
    [0, seed as u32]
}

/// Number of elements of an array of the given shape (1 for a scalar).
///
/// # Panics
///
/// If the count overflows `usize`; such an array could not be allocated.
pub(crate) fn shape_size(shape: &[usize]) -> usize {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .expect("array size overflows usize")
}

/// The two 32-bit counter words for flat element `i`: JAX's
/// `iota_2x32_shape` is a 64-bit row-major iota split into `(hi, lo)`.
fn counter(i: usize) -> [u32; 2] {
    let i = i as u64;
    [(i >> 32) as u32, i as u32]
}

/// Hashes the counters of all `n` elements, in row-major order.
fn hash_counters(key: [u32; 2], n: usize) -> impl Iterator<Item = [u32; 2]> {
    (0..n).map(move |i| threefry2x32(key, counter(i)))
}

/// `f` of the hash of every counter `0..n`, in row-major order. Each
/// element's counter is its index, so large draws are split over the
/// threads with the same bits as one pass.
fn hash_counters_with<T: Copy + Default + Send>(
    key: [u32; 2],
    n: usize,
    f: impl Fn([u32; 2]) -> T + Sync,
) -> Vec<T> {
    // Large draws are buffers the allocator should reuse, as the kernels'.
    crate::array::cpu::alloc::init();
    let mut out = vec![T::default(); n];
    crate::array::cpu::for_rows(&mut out, 1, n, |first, chunk| {
        #[cfg(target_arch = "x86_64")]
        if super::sample::has_fma() && crate::array::cpu::unary::has_avx2() {
            // SAFETY: the CPU was just found to support FMA and AVX2.
            return unsafe { hash_chunk_fma(key, first, chunk, &f) };
        }
        hash_chunk(key, first, chunk, &f)
    });
    out
}

/// Element `first + k` of a draw into `chunk[k]`.
#[inline(always)]
fn hash_chunk<T>(key: [u32; 2], first: usize, chunk: &mut [T], f: &impl Fn([u32; 2]) -> T) {
    for (k, o) in chunk.iter_mut().enumerate() {
        *o = f(threefry2x32(key, counter(first + k)));
    }
}

/// [`hash_chunk`] compiled for AVX2 and FMA: the hash of 8 counters runs
/// at once, and the samplers' fused multiply-adds inlined into it are
/// instructions rather than calls to the C library's software `fma` (the
/// same bits: both round once).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hash_chunk_fma<T>(key: [u32; 2], first: usize, chunk: &mut [T], f: &impl Fn([u32; 2]) -> T) {
    hash_chunk(key, first, chunk, f)
}

/// `n` new keys, as `jax.random.split(key, n)` (partitionable scheme): key
/// `i` is the hash of counter `i`. A shaped split such as
/// `jax.random.split(key, (2, 3))` is `split(key, 6)` in row-major order.
pub(crate) fn split(key: [u32; 2], n: usize) -> Vec<[u32; 2]> {
    hash_counters(key, n).collect()
}

/// `jax.random.fold_in(key, data)`: hashes the counter pair `[0, data]`,
/// which is the key JAX's threefry seeding makes from the 32-bit `data`.
pub(crate) fn fold_in(key: [u32; 2], data: u32) -> [u32; 2] {
    threefry2x32(key, seed(u64::from(data)))
}

/// Uniformly random 32-bit words for an array of `shape` (row-major), as
/// `jax.random.bits(key, shape, jnp.uint32)`: the two hash outputs of each
/// element's counter are combined with XOR.
pub(crate) fn random_bits_u32(key: [u32; 2], shape: &[usize]) -> Vec<u32> {
    random_bits_u32_with(key, shape, |bits| bits)
}

/// `f` of each word [`random_bits_u32`] gives, in one parallel pass.
pub(crate) fn random_bits_u32_with<T: Copy + Default + Send>(
    key: [u32; 2],
    shape: &[usize],
    f: impl Fn(u32) -> T + Sync,
) -> Vec<T> {
    hash_counters_with(key, shape_size(shape), |[a, b]| f(a ^ b))
}

/// Uniformly random 64-bit words for an array of `shape` (row-major), as
/// `jax.random.bits(key, shape, jnp.uint64)`: the two hash outputs of each
/// element's counter are concatenated, first word high.
#[cfg(test)]
pub(crate) fn random_bits_u64(key: [u32; 2], shape: &[usize]) -> Vec<u64> {
    random_bits_u64_with(key, shape, |bits| bits)
}

/// `f` of each uniformly random 64-bit word for an array of `shape`, as
/// `jax.random.bits(key, shape, jnp.uint64)` gives them (the two hash
/// outputs of each element's counter, first word high), in one parallel
/// pass.
pub(crate) fn random_bits_u64_with<T: Copy + Default + Send>(
    key: [u32; 2],
    shape: &[usize],
    f: impl Fn(u64) -> T + Sync,
) -> Vec<T> {
    hash_counters_with(key, shape_size(shape), |[a, b]| {
        f((u64::from(a) << 32) | u64::from(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/random.json"
    );

    fn cases(op: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(FIXTURE).expect("read random.json");
        let root: Value = serde_json::from_str(&text).expect("parse random.json");
        let cases: Vec<Value> = root["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter(|c| c["op"] == op)
            .cloned()
            .collect();
        assert!(!cases.is_empty(), "no {op} cases in the fixture");
        cases
    }

    fn words(v: &Value) -> Vec<u32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| u32::try_from(x.as_u64().expect("u64")).expect("u32"))
            .collect()
    }

    fn key_of(case: &Value) -> [u32; 2] {
        let k = words(&case["key"]);
        [k[0], k[1]]
    }

    fn shape_of(case: &Value) -> Vec<usize> {
        case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect()
    }

    /// Known-answer test from the Threefry reference (Salmon et al. 2011),
    /// also used by JAX's own test suite.
    #[test]
    fn block_function_known_answers() {
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b20_0159, 0x99ba_4efe]);
        assert_eq!(
            threefry2x32([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]),
            [0x1cb9_96fc, 0xbb00_2be7]
        );
        assert_eq!(
            threefry2x32([0x1319_8a2e, 0x0370_7344], [0x243f_6a88, 0x85a3_08d3]),
            [0xc492_3a9c, 0x483d_f7a0]
        );
    }

    #[test]
    fn seeds_match_jax() {
        for case in cases("key") {
            let s = case["seed"].as_u64().expect("seed");
            assert_eq!(seed(s).to_vec(), words(&case["data"]), "{}", case["name"]);
        }
    }

    #[test]
    fn split_matches_jax() {
        for case in cases("split") {
            let n = case["num"].as_u64().expect("num") as usize;
            let got: Vec<u32> = split(key_of(&case), n).concat();
            assert_eq!(got, words(&case["data"]), "{}", case["name"]);
        }
    }

    #[test]
    fn fold_in_matches_jax() {
        for case in cases("fold_in") {
            let d = u32::try_from(case["fold_data"].as_u64().expect("data")).expect("u32");
            let got = fold_in(key_of(&case), d);
            assert_eq!(got.to_vec(), words(&case["data"]), "{}", case["name"]);
        }
    }

    #[test]
    fn bits_match_jax() {
        for case in cases("bits") {
            let got = random_bits_u32(key_of(&case), &shape_of(&case));
            assert_eq!(got, words(&case["data"]), "{}", case["name"]);
        }
    }

    #[test]
    fn bits_u64_concatenate_the_hash_words() {
        let key = seed(3);
        let wide = random_bits_u64(key, &[2, 3]);
        let narrow = random_bits_u32(key, &[2, 3]);
        assert_eq!(wide.len(), 6);
        for (i, (&w, &n)) in wide.iter().zip(&narrow).enumerate() {
            let [a, b] = threefry2x32(key, counter(i));
            assert_eq!(w, (u64::from(a) << 32) | u64::from(b));
            assert_eq!(n, a ^ b);
        }
    }

    #[test]
    fn scalar_and_empty_shapes() {
        assert_eq!(shape_size(&[]), 1);
        assert_eq!(shape_size(&[3, 0, 2]), 0);
        assert_eq!(random_bits_u32([1, 2], &[]).len(), 1);
        assert!(random_bits_u64([1, 2], &[0]).is_empty());
        assert!(split([1, 2], 0).is_empty());
    }

    #[test]
    fn large_draws_split_over_threads_give_the_bits_of_one_pass() {
        // 100,003 elements: several parallel chunks, the last uneven.
        let n = 100_003;
        let key = [0x1234_5678, 0x9abc_def0];
        let sequential: Vec<u32> = hash_counters(key, n).map(|[a, b]| a ^ b).collect();
        assert_eq!(random_bits_u32(key, &[n]), sequential);
        let wide: Vec<u64> = hash_counters(key, n)
            .map(|[a, b]| (u64::from(a) << 32) | u64::from(b))
            .collect();
        assert_eq!(random_bits_u64(key, &[n]), wide);
        // And a small draw is the prefix of a large one.
        assert_eq!(random_bits_u32(key, &[1000]), sequential[..1000]);
    }
}
