//! solstice's own elementwise and reduction kernels against candle's, on
//! 4M-element arrays, in one run: comparisons, `select`, conversions,
//! `sin`/`erf`/`sign`/`log`, the f64 transcendentals, integer arithmetic
//! and reductions, and arg-extremes.
//! Each line prints both medians and `own/candle R` (below 1 is faster);
//! the rounds interleave the two sides, so machine load hits both alike.
//!
//! Run with `cargo bench --bench kernels`; `cargo bench --bench kernels --
//! sign` runs only the lines whose name holds `sign`.

use std::time::Instant;

use candle_core::{DType as C, Device, Tensor};
use solstice::{Array, CmpOp, DType, Result};

const ROWS: usize = 2048;
const COLS: usize = 2048;
/// Timed rounds per line; `KERNELS_ROUNDS` overrides it (for profiling).
fn rounds() -> usize {
    std::env::var("KERNELS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Times `own` and `candle` alternately and prints the medians and ratio.
fn compare(
    name: &str,
    own: impl Fn() -> Result<()>,
    candle: impl Fn() -> candle_core::Result<()>,
) -> Option<f64> {
    if !selected(name) {
        return None;
    }
    own().expect("own kernel");
    candle().expect("candle kernel");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        let t = Instant::now();
        own().expect("own kernel");
        a.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        candle().expect("candle kernel");
        b.push(t.elapsed().as_secs_f64());
    }
    let (a, b) = (median(a), median(b));
    println!(
        "{name:<28} own {:>8.2} ms  candle {:>8.2} ms  own/candle {:.3}",
        a * 1e3,
        b * 1e3,
        a / b
    );
    Some(a / b)
}

/// Whether `name` holds every filter given on the command line (cargo's
/// own `--bench` flag aside).
fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .all(|f| name.contains(&f))
}

fn data(seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..ROWS * COLS)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn main() -> Result<()> {
    // candle's worker threads spin after each of its kernels, on the very
    // cores the next (own) kernel then needs: interleaved, that taxes our
    // side for candle's work. Parked at once, they do not; candle's own
    // timings barely change. A value set by the caller is kept.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0") };
    }
    let (x, y) = (data(1), data(2));
    let shape = [ROWS, COLS];
    let (a, b) = (
        Array::from_vec(x.clone(), &shape)?,
        Array::from_vec(y.clone(), &shape)?,
    );
    let dev = Device::Cpu;
    let ta = Tensor::from_vec(x, (ROWS, COLS), &dev)?;
    let tb = Tensor::from_vec(y, (ROWS, COLS), &dev)?;
    let (ia, ib) = (a.astype(DType::I32)?, b.astype(DType::I32)?);
    let (tia, tib) = (ta.to_dtype(C::I32)?, tb.to_dtype(C::I32)?);
    let (la, tla) = (a.astype(DType::I64)?, ta.to_dtype(C::I64)?);
    let cond = a.compare(&b, CmpOp::Lt)?;
    let tcond = ta.lt(&tb)?;
    let (d, td) = (a.astype(DType::F64)?, ta.to_dtype(C::F64)?);
    let (pos, tpos) = (a.abs()?, ta.abs()?);
    let (dpos, tdpos) = (d.abs()?, td.abs()?);
    let at = a.transpose(&[1, 0])?;
    let tat = ta.t()?;

    let mut ratios = vec![
        compare(
            "lt f32",
            || a.compare(&b, CmpOp::Lt).map(drop),
            || ta.lt(&tb).map(drop),
        ),
        compare(
            "lt f32, transposed",
            || at.compare(&b, CmpOp::Lt).map(drop),
            || tat.lt(&tb).map(drop),
        ),
        compare(
            "select f32",
            || cond.select(&a, &b).map(drop),
            || tcond.where_cond(&ta, &tb).map(drop),
        ),
        compare(
            "astype f32->f64",
            || a.astype(DType::F64).map(drop),
            || ta.to_dtype(C::F64).map(drop),
        ),
        compare(
            "astype f32->i32",
            || a.astype(DType::I32).map(drop),
            || ta.to_dtype(C::I32).map(drop),
        ),
        compare("sin f32", || a.sin().map(drop), || ta.sin().map(drop)),
        compare("erf f32", || a.erf().map(drop), || ta.erf().map(drop)),
        compare("log f32", || pos.log().map(drop), || tpos.log().map(drop)),
        compare("exp f64", || d.exp().map(drop), || td.exp().map(drop)),
        compare("log f64", || dpos.log().map(drop), || tdpos.log().map(drop)),
        compare("tanh f64", || d.tanh().map(drop), || td.tanh().map(drop)),
        compare("sin f64", || d.sin().map(drop), || td.sin().map(drop)),
        compare("erf f64", || d.erf().map(drop), || td.erf().map(drop)),
        compare("sign f32", || a.sign().map(drop), || ta.sign().map(drop)),
        compare(
            "add i32",
            || ia.add(&ib).map(drop),
            || tia.broadcast_add(&tib).map(drop),
        ),
        compare(
            "mul i32",
            || ia.mul(&ib).map(drop),
            || tia.broadcast_mul(&tib).map(drop),
        ),
    ];
    // Per element, a sum of rows of 256 against one sum of everything.
    let short = a.reshape(&[ROWS * COLS / 256, 256])?;
    let tshort = ta.reshape((ROWS * COLS / 256, 256))?;
    ratios.extend([
        compare(
            "sum f32 over rows of 256",
            || short.sum(&[1]).map(drop),
            || tshort.sum(1).map(drop),
        ),
        compare(
            "sum f32 of everything",
            || a.sum(&[0, 1]).map(drop),
            || ta.sum_all().map(drop),
        ),
        compare(
            "sum i64 over rows",
            || la.sum(&[1]).map(drop),
            || tla.sum(1).map(drop),
        ),
        compare(
            "max i32 over columns",
            || ia.max(&[0]).map(drop),
            || tia.max(0).map(drop),
        ),
        compare(
            "min f32 over rows",
            || a.min(&[1]).map(drop),
            || ta.min(1).map(drop),
        ),
        compare(
            "argmax f32 over rows",
            || a.argmax(1).map(drop),
            || ta.argmax(1).map(drop),
        ),
    ]);
    let ratios: Vec<f64> = ratios.into_iter().flatten().collect();
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!("own/candle geometric mean ratio: {geo:.3}");
    Ok(())
}
