//! Buffers: fallible allocation, and keeping freed memory for reuse.
//!
//! Every output buffer of the kernels here is reserved with
//! `try_reserve_exact`, so a request the allocator refuses is a
//! [`Kind::OutOfMemory`](crate::error::Kind) error, not an abort. Paths that
//! still allocate inside candle probe large requests the same way first.
//!
//! A training step frees and re-requests the same few buffer sizes hundreds
//! of times. glibc serves requests above its mmap threshold (at most
//! 32 MiB) with fresh `mmap`s, each paid again in page faults (the kernel
//! zeroes every page) and `munmap`s. On first use, glibc is told to serve
//! every request from its heaps (`M_MMAP_MAX = 0`; it still maps memory
//! when the heap cannot grow) and to return freed memory to the system only
//! past 512 MiB, so those buffers are reused. On the GPT bench
//! (`tools/profile/memory_syscalls.py` counts the calls), a step after the
//! second then maps and unmaps nothing, moves the heap's end not at all,
//! and takes about a hundred minor page faults; untuned, each step made 3
//! `mmap`s and `munmap`s of 96 MiB in all, 23 `brk`s growing and shrinking
//! the heap by 70-80 MiB, and 34-40 thousand page faults, at the same peak
//! RSS. So no buffer pool of our own is needed on this path.
//! `SOLSTICE_MALLOC_TUNING=0` leaves the allocator alone.

use std::mem::MaybeUninit;
use std::sync::Once;

use crate::error::{Error, Result};

/// Requests of at least this many bytes that candle allocates are probed
/// first; smaller ones abort only when the machine is truly out of memory.
const PROBE_BYTES: usize = 64 << 20;

/// Tunes the allocator once per process (see the module docs).
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("SOLSTICE_MALLOC_TUNING").is_some_and(|v| v == "0") {
            return;
        }
        tune_malloc();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only changes allocator parameters; 32 MiB is the
    // largest threshold glibc accepts on 64-bit targets (kept for when
    // mapping is allowed again).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// The error for a buffer of `bytes` that could not be allocated.
pub(crate) fn out_of_memory(op: &str, bytes: usize) -> Error {
    Error::out_of_memory(format!(
        "{op} could not allocate {bytes} bytes ({:.1} GiB); use smaller arrays",
        bytes as f64 / (1u64 << 30) as f64
    ))
}

/// Fails with an out-of-memory error if `count` elements of `size` bytes
/// cannot be allocated now. Only large requests are probed; the probe's
/// pages are never touched, so it costs no page faults.
pub(crate) fn probe(op: &str, count: usize, size: usize) -> Result<()> {
    let bytes = count
        .checked_mul(size)
        .ok_or_else(|| out_of_memory(op, usize::MAX))?;
    if bytes >= PROBE_BYTES {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(bytes)
            .map_err(|_| out_of_memory(op, bytes))?;
    }
    Ok(())
}

/// A buffer of `n` elements, written by `fill` before it is returned.
///
/// `fill` must write every element of the slice it is given.
pub(crate) fn filled<T: Copy>(
    op: &str,
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory(op, n.saturating_mul(size_of::<T>())))?;
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the capacity is at least `n` and `fill` initialised the first
    // `n` elements (every caller writes each element of its slice).
    unsafe { v.set_len(n) };
    Ok(v)
}

/// `n` copies of `value`, fallibly.
pub(crate) fn full<T: Copy + Send + Sync>(op: &str, n: usize, value: T) -> Result<Vec<T>> {
    filled(op, n, |out| {
        super::for_rows(out, 1, n, |_, chunk| {
            for o in chunk {
                o.write(value);
            }
        })
    })
}
