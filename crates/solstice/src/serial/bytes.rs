//! Arrays to and from little-endian bytes in C order, the layout both
//! `.npy` and safetensors store.

use crate::array::{Array, DType};
use crate::error::{Error, Result};

/// The size in bytes of one element.
pub(crate) fn itemsize(dtype: DType) -> usize {
    match dtype {
        DType::F64 | DType::I64 => 8,
        DType::F32 | DType::I32 | DType::U32 => 4,
        DType::U8 => 1,
    }
}

/// The array's elements as little-endian bytes, row-major. Fails on holes
/// and tracers, whose values do not exist.
pub(crate) fn to_le_bytes(a: &Array) -> Result<Vec<u8>> {
    macro_rules! bytes {
        ($t:ty) => {
            a.to_vec::<$t>()?
                .into_iter()
                .flat_map(|x| x.to_le_bytes())
                .collect()
        };
    }
    Ok(match a.dtype() {
        DType::F32 => bytes!(f32),
        DType::F64 => bytes!(f64),
        DType::I64 => bytes!(i64),
        DType::I32 => bytes!(i32),
        DType::U32 => bytes!(u32),
        DType::U8 => a.to_vec::<u8>()?,
    })
}

/// An array of `dtype` and `shape` from little-endian bytes, row-major.
pub(crate) fn from_le_bytes(bytes: &[u8], dtype: DType, shape: &[usize]) -> Result<Array> {
    let count: usize = shape.iter().product();
    if bytes.len() != count * itemsize(dtype) {
        return Err(Error::invalid(format!(
            "{} bytes cannot hold a {}{shape:?} array",
            bytes.len(),
            dtype.short_name()
        )));
    }
    macro_rules! array {
        ($t:ty) => {{
            let n = std::mem::size_of::<$t>();
            let data: Vec<$t> = bytes
                .chunks_exact(n)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunks of the item size")))
                .collect();
            Array::from_vec(data, shape)
        }};
    }
    match dtype {
        DType::F32 => array!(f32),
        DType::F64 => array!(f64),
        DType::I64 => array!(i64),
        DType::I32 => array!(i32),
        DType::U32 => array!(u32),
        DType::U8 => Array::from_vec(bytes.to_vec(), shape),
    }
}
