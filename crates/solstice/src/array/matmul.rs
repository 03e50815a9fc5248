//! The matmul kernel: gemm called directly on candle's storage.
//!
//! candle's own CPU matmul asks for its thread count on every call, and on
//! Linux that reads `/proc/cpuinfo` each time unless `RAYON_NUM_THREADS` is
//! set; for the small matrices of a training step that read costs more than
//! the product. Calling gemm (the library candle uses) with a thread count
//! found once avoids it. Layouts are taken as candle describes them: any
//! row and column strides, and any batch strides (including broadcast ones).

use std::sync::OnceLock;

use candle_core::{CpuStorage, Layout, Storage, Tensor};
use gemm::Parallelism;

use crate::error::{Error, Result};

/// `a @ b` for f32 or f64 tensors `[..., m, k]` and `[..., k, n]` with equal
/// batch dimensions, or `None` for other dtypes.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    match (&*sa, &*sb) {
        (Storage::Cpu(CpuStorage::F32(x)), Storage::Cpu(CpuStorage::F32(y))) => {
            let (data, shape) = product(x, la, y, lb)?;
            Ok(Some(Tensor::from_vec(data, shape, a.device())?))
        }
        (Storage::Cpu(CpuStorage::F64(x)), Storage::Cpu(CpuStorage::F64(y))) => {
            let (data, shape) = product(x, la, y, lb)?;
            Ok(Some(Tensor::from_vec(data, shape, a.device())?))
        }
        _ => Ok(None),
    }
}

/// The element types gemm multiplies here (it panics on any other).
trait Float: Copy + Send + Sync + 'static {
    const ZERO: Self;
    const ONE: Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

fn parallelism() -> Parallelism {
    static THREADS: OnceLock<usize> = OnceLock::new();
    let threads =
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// The batched product of `x` (laid out by `la`) and `y` (by `lb`), as a
/// contiguous buffer and its shape.
fn product<T: Float>(x: &[T], la: &Layout, y: &[T], lb: &Layout) -> Result<(Vec<T>, Vec<usize>)> {
    let (da, db) = (la.dims(), lb.dims());
    let rank = da.len();
    if rank < 2
        || db.len() != rank
        || da[..rank - 2] != db[..rank - 2]
        || da[rank - 1] != db[rank - 2]
    {
        return Err(Error::shape(format!(
            "matmul kernel got shapes {da:?} and {db:?}"
        )));
    }
    let (m, k, n) = (da[rank - 2], da[rank - 1], db[rank - 1]);
    let batch = &da[..rank - 2];
    let count: usize = batch.iter().product();
    let (ta, tb) = (la.stride(), lb.stride());
    let mut shape = batch.to_vec();
    shape.extend([m, n]);
    let size = count * m * n;
    // Offsets of batch element `i` in each operand.
    let offsets = |mut i: usize| -> (usize, usize) {
        let (mut oa, mut ob) = (la.start_offset(), lb.start_offset());
        for d in (0..batch.len()).rev() {
            let j = i % batch[d];
            i /= batch[d];
            oa += j * ta[d];
            ob += j * tb[d];
        }
        (oa, ob)
    };
    // Many small products (attention's per-head ones) run one per thread,
    // each single-threaded; a large one is split inside gemm.
    let small = m * n * k < (1 << 22);
    let threads = super::cpu::threads();
    let out = super::cpu::alloc::filled("matmul", size, |out| {
        if m * n == 0 {
            return;
        }
        let one = |i: usize, dst: &mut [std::mem::MaybeUninit<T>], parallelism: Parallelism| {
            let (oa, ob) = offsets(i);
            // SAFETY: candle's layouts keep every index `offset + r * rs + c * cs`
            // for `r < rows, c < cols` inside their storage, which `x` and `y`
            // are; `dst` is the `m * n` block of batch element `i`, which gemm
            // writes in full without reading it (`read_dst` is false). With
            // `k == 0` gemm reads nothing and writes zeros.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr().cast::<T>(),
                    1,
                    n as isize,
                    false,
                    x.as_ptr().add(oa),
                    ta[rank - 1] as isize,
                    ta[rank - 2] as isize,
                    y.as_ptr().add(ob),
                    tb[rank - 1] as isize,
                    tb[rank - 2] as isize,
                    T::ZERO,
                    T::ONE,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        };
        if count > 1 && small && threads > 1 {
            let per = count.div_ceil(threads * 2);
            rayon::scope(|s| {
                for (c, chunk) in out.chunks_mut(per * m * n).enumerate() {
                    let one = &one;
                    s.spawn(move |_| {
                        for (j, dst) in chunk.chunks_mut(m * n).enumerate() {
                            one(c * per + j, dst, Parallelism::None);
                        }
                    });
                }
            });
        } else {
            for (i, dst) in out.chunks_mut(m * n).enumerate() {
                one(i, dst, parallelism());
            }
        }
    })?;
    Ok((out, shape))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    /// The product by the definition, on contiguous copies.
    fn naive(a: &Tensor, b: &Tensor) -> Vec<f64> {
        let (a, b) = (a.contiguous().unwrap(), b.contiguous().unwrap());
        let (da, db) = (a.dims().to_vec(), b.dims().to_vec());
        let r = da.len();
        let (m, k, n) = (da[r - 2], da[r - 1], db[r - 1]);
        let count: usize = da[..r - 2].iter().product();
        let x = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let y = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let mut out = vec![0.0; count * m * n];
        for i in 0..count {
            for r in 0..m {
                for c in 0..n {
                    out[i * m * n + r * n + c] = (0..k)
                        .map(|j| x[i * m * k + r * k + j] * y[i * k * n + j * n + c])
                        .sum();
                }
            }
        }
        out
    }

    fn check(a: &Tensor, b: &Tensor) {
        let got = super::matmul(a, b).unwrap().unwrap();
        let got = got.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(got, naive(a, b));
    }

    fn arange(n: usize, shape: &[usize]) -> Tensor {
        Tensor::arange(0.0f64, n as f64, &Device::Cpu)
            .unwrap()
            .reshape(shape)
            .unwrap()
    }

    #[test]
    fn strided_layouts_multiply_as_their_contiguous_copies() {
        // Plain, transposed operands, broadcast (stride 0) batches, and views
        // that start inside their storage.
        let a = arange(24, &[2, 3, 4]);
        let b = arange(40, &[2, 4, 5]);
        check(&a, &b);
        let bt = arange(40, &[2, 5, 4]).transpose(1, 2).unwrap();
        check(&a, &bt);
        let shared = arange(20, &[4, 5])
            .unsqueeze(0)
            .unwrap()
            .broadcast_as((2, 4, 5))
            .unwrap();
        check(&a, &shared);
        let offset = arange(60, &[3, 4, 5]).narrow(0, 1, 2).unwrap();
        check(&a, &offset);
        let column = arange(12, &[4, 3]).narrow(1, 1, 1).unwrap(); // [4, 1], strided
        check(&arange(8, &[2, 4]), &column);
        // Empty products give zeros of the right shape.
        let empty = super::matmul(&arange(0, &[2, 0]), &arange(0, &[0, 3]))
            .unwrap()
            .unwrap();
        assert_eq!(empty.dims(), &[2, 3]);
        assert_eq!(
            empty.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            vec![0.0; 6]
        );
    }
}
