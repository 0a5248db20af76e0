//! `Tensor`: dimensions, element type and little-endian bytes whose length matches them.
//!
//! Every tensor a guest hands over is built here, so the checks (rank, dimension product
//! overflow, byte length) happen once, before anything is allocated for it.

use crate::error::{ErrorKind, NnError};

/// The most dimensions a tensor may have (ONNX models in practice use up to 6).
pub const MAX_RANK: usize = 8;

/// Element types of WASI-NN tensors (both ABIs name the same set; modules have no bf16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F16,
    F32,
    F64,
    Bf16,
    U8,
    I32,
    I64,
}

impl TensorType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            TensorType::U8 => 1,
            TensorType::F16 | TensorType::Bf16 => 2,
            TensorType::F32 | TensorType::I32 => 4,
            TensorType::F64 | TensorType::I64 => 8,
        }
    }

    /// The byte length a tensor of these dimensions must have; an error for too many
    /// dimensions or a product that does not fit in 64 bits.
    pub fn byte_len(self, dims: &[u32]) -> Result<u64, NnError> {
        if dims.len() > MAX_RANK {
            return Err(NnError::invalid(format!(
                "tensor has {} dimensions; at most {MAX_RANK} are supported",
                dims.len()
            )));
        }
        dims.iter()
            .try_fold(self.size(), |acc, &d| acc.checked_mul(u64::from(d)))
            .ok_or_else(|| NnError::new(ErrorKind::TooLarge, format!("tensor dimensions {dims:?} overflow")))
    }
}

/// A checked tensor: `data.len()` is the product of `dims` times the element size.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    dims: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
}

impl Tensor {
    pub fn new(dims: Vec<u32>, ty: TensorType, data: Vec<u8>) -> Result<Tensor, NnError> {
        let expected = ty.byte_len(&dims)?;
        if data.len() as u64 != expected {
            return Err(NnError::invalid(format!(
                "tensor data is {} bytes but dimensions {dims:?} of {ty:?} need {expected}",
                data.len()
            )));
        }
        Ok(Tensor { dims, ty, data })
    }

    pub fn dims(&self) -> &[u32] {
        &self.dims
    }

    pub fn ty(&self) -> TensorType {
        self.ty
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The host memory this tensor holds (what a container is charged for it).
    pub fn bytes(&self) -> u64 {
        self.data.len() as u64 + 4 * self.dims.len() as u64
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_match_dimensions() {
        assert!(Tensor::new(vec![2, 3], TensorType::F32, vec![0; 24]).is_ok());
        let e = Tensor::new(vec![2, 3], TensorType::F32, vec![0; 23]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("need 24"), "{e}");
        let e = TensorType::F64.byte_len(&[u32::MAX, u32::MAX, u32::MAX]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert!(TensorType::U8.byte_len(&[1; 9]).is_err(), "rank 9 is refused");
        assert_eq!(TensorType::U8.byte_len(&[]).unwrap(), 1, "a scalar is one element");
    }
}
