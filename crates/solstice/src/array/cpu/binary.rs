//! The float arithmetic of two inputs with numpy broadcasting, read in
//! place through any strides (a broadcast operand is never materialised),
//! on `map.rs`'s `map2`; integers are in `elementwise.rs`.

use candle_core::Tensor;

use super::Float;
use super::map::map2;
use crate::error::Result;

/// The maps with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// NaN where either input is NaN, as JAX.
    Maximum,
    /// NaN where either input is NaN, as JAX.
    Minimum,
}

/// `op(a, b)` broadcast (integers in `elementwise.rs`), or `None` for a
/// dtype without a kernel here.
pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    if a.dtype() != b.dtype() {
        return Ok(None);
    }
    match a.dtype() {
        candle_core::DType::F32 => run::<f32>(op, a, b),
        candle_core::DType::F64 => run::<f64>(op, a, b),
        _ => super::elementwise::int_binary(op, a, b),
    }
}

/// The float maps, on `map.rs`'s strided, broadcasting `map2`.
fn run<T: Float>(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    let name = op_name(op);
    match op {
        BinaryOp::Add => map2::<T, T, T>(name, a, b, |p, q| p + q),
        BinaryOp::Sub => map2::<T, T, T>(name, a, b, |p, q| p - q),
        BinaryOp::Mul => map2::<T, T, T>(name, a, b, |p, q| p * q),
        BinaryOp::Div => map2::<T, T, T>(name, a, b, |p, q| p / q),
        BinaryOp::Maximum => map2::<T, T, T>(name, a, b, T::max_nan),
        BinaryOp::Minimum => map2::<T, T, T>(name, a, b, T::min_nan),
    }
}

fn op_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    }
}
