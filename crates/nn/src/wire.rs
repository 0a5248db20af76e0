//! The frames wasmbox and its inference backend process (`wasmbox-nn`) exchange on a
//! connection (one request, one reply at a time; `control` makes connections).
//!
//! A frame is a little-endian u64 length, then that many bytes: a u64 request id, then a
//! request (op byte + payload) or a reply (status byte + payload). The backend trusts the
//! host; the host does not trust the backend (a hostile model may have taken it over), so
//! every reply is decoded with bounds checks and its tensors go through `Tensor::new`.

use std::io::{self, Read, Write};

use crate::error::{ErrorKind, NnError};
use crate::model::{ModelInfo, ModelInput};
use crate::tensor::{MAX_RANK, Tensor, TensorType};

/// Requests (host → backend).
pub const LOAD: u8 = 1;
pub const RUN: u8 = 2;

/// Reply statuses (backend → host).
pub const OK: u8 = 0;
pub const ERR: u8 = 1;
/// The backend does not hold the model a `RUN` names (it was restarted): load it again.
pub const UNKNOWN_MODEL: u8 = 2;

pub type Digest = [u8; 32];

/// Reads one frame; `None` at a clean end of the stream. Frames longer than `cap` are an error.
pub fn read_frame(r: &mut impl Read, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0; body_len(len, cap)?];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The body length a frame header announces, if it is within `cap`.
pub fn body_len(header: [u8; 8], cap: u64) -> io::Result<usize> {
    let len = u64::from_le_bytes(header);
    if len > cap || len < 9 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes")));
    }
    Ok(len as usize)
}

/// A frame being built: its length is filled in by [`Frame::finish`].
pub struct Frame(Vec<u8>);

impl Frame {
    pub fn new(id: u64, tag: u8) -> Frame {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&id.to_le_bytes());
        buf.push(tag);
        Frame(buf)
    }

    pub fn u8(&mut self, v: u8) -> &mut Frame {
        self.0.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Frame {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Frame {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Frame {
        self.0.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Frame {
        self.u32(s.len() as u32).bytes(s.as_bytes())
    }

    pub fn tensors(&mut self, tensors: &[Tensor]) -> &mut Frame {
        let total: usize = tensors.iter().map(|t| t.data().len() + 16 + 4 * t.dims().len()).sum();
        self.0.reserve(total);
        self.u32(tensors.len() as u32);
        for t in tensors {
            self.u8(type_code(t.ty())).u8(t.dims().len() as u8);
            for &d in t.dims() {
                self.u32(d);
            }
            self.u64(t.data().len() as u64).bytes(t.data());
        }
        self
    }

    pub fn info(&mut self, info: &ModelInfo) -> &mut Frame {
        self.u32(info.inputs.len() as u32);
        for input in &info.inputs {
            self.str(&input.name).u8(input.ty.map_or(NO_TYPE, type_code)).u8(input.dims.len() as u8);
            for d in &input.dims {
                self.u64(d.unwrap_or(u64::MAX));
            }
        }
        self.u32(info.outputs.len() as u32);
        for name in &info.outputs {
            self.str(name);
        }
        self
    }

    pub fn error(&mut self, e: &NnError) -> &mut Frame {
        self.u8(kind_code(e.kind)).bytes(e.message.as_bytes())
    }

    /// The frame's bytes with its length in front, ready to be written in one go.
    pub fn finish(&mut self) -> &[u8] {
        let len = (self.0.len() - 8) as u64;
        self.0[..8].copy_from_slice(&len.to_le_bytes());
        &self.0
    }

    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(self.finish())
    }
}

/// A bounds-checked reader over a frame's body.
pub struct Body<'a>(&'a [u8]);

fn malformed() -> NnError {
    NnError::new(ErrorKind::RuntimeError, "the inference backend sent a malformed reply")
}

impl<'a> Body<'a> {
    pub fn new(frame: &'a [u8]) -> Body<'a> {
        Body(frame)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], NnError> {
        if n > self.0.len() {
            return Err(malformed());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    pub fn u8(&mut self) -> Result<u8, NnError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, NnError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| malformed())?))
    }

    pub fn u64(&mut self) -> Result<u64, NnError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| malformed())?))
    }

    pub fn digest(&mut self) -> Result<Digest, NnError> {
        self.take(32)?.try_into().map_err(|_| malformed())
    }

    pub fn str(&mut self) -> Result<String, NnError> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| malformed())
    }

    pub fn tensors(&mut self) -> Result<Vec<Tensor>, NnError> {
        let count = self.u32()? as usize;
        // Every tensor takes at least 10 bytes: a count past that is a lie, not a reason to allocate.
        if count > self.0.len() / 10 {
            return Err(malformed());
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let ty = tensor_type(self.u8()?).ok_or_else(malformed)?;
            let rank = self.u8()? as usize;
            if rank > MAX_RANK {
                return Err(malformed());
            }
            let dims = (0..rank).map(|_| self.u32()).collect::<Result<Vec<u32>, _>>()?;
            let len = usize::try_from(self.u64()?).map_err(|_| malformed())?;
            out.push(Tensor::new(dims, ty, self.take(len)?.to_vec())?);
        }
        Ok(out)
    }

    pub fn info(&mut self) -> Result<ModelInfo, NnError> {
        let count = self.u32()? as usize;
        if count > self.0.len() / 6 {
            return Err(malformed());
        }
        let mut inputs = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.str()?;
            let code = self.u8()?;
            let ty = if code == NO_TYPE { None } else { Some(tensor_type(code).ok_or_else(malformed)?) };
            let rank = self.u8()? as usize;
            let dims =
                (0..rank).map(|_| self.u64().map(|d| (d != u64::MAX).then_some(d))).collect::<Result<Vec<_>, _>>()?;
            inputs.push(ModelInput { name, ty, dims });
        }
        let count = self.u32()? as usize;
        if count > self.0.len() / 4 {
            return Err(malformed());
        }
        let outputs = (0..count).map(|_| self.str()).collect::<Result<Vec<_>, _>>()?;
        Ok(ModelInfo { inputs, outputs })
    }

    pub fn error(&mut self) -> Result<NnError, NnError> {
        let kind = error_kind(self.u8()?).ok_or_else(malformed)?;
        Ok(NnError::new(kind, String::from_utf8_lossy(self.rest()).into_owned()))
    }
}

const NO_TYPE: u8 = 0xff;

fn type_code(ty: TensorType) -> u8 {
    match ty {
        TensorType::F16 => 0,
        TensorType::F32 => 1,
        TensorType::F64 => 2,
        TensorType::Bf16 => 3,
        TensorType::U8 => 4,
        TensorType::I32 => 5,
        TensorType::I64 => 6,
    }
}

fn tensor_type(code: u8) -> Option<TensorType> {
    Some(match code {
        0 => TensorType::F16,
        1 => TensorType::F32,
        2 => TensorType::F64,
        3 => TensorType::Bf16,
        4 => TensorType::U8,
        5 => TensorType::I32,
        6 => TensorType::I64,
        _ => return None,
    })
}

const KINDS: [ErrorKind; 8] = [
    ErrorKind::InvalidArgument,
    ErrorKind::InvalidEncoding,
    ErrorKind::NotFound,
    ErrorKind::TooLarge,
    ErrorKind::RuntimeError,
    ErrorKind::Unsupported,
    ErrorKind::Denied,
    ErrorKind::Cancelled,
];

fn kind_code(kind: ErrorKind) -> u8 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(4) as u8
}

fn error_kind(code: u8) -> Option<ErrorKind> {
    KINDS.get(code as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &mut Frame) -> Vec<u8> {
        let bytes = frame.finish().to_vec();
        read_frame(&mut &bytes[..], 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn tensors_info_and_errors_round_trip() {
        let t = vec![
            Tensor::new(vec![1, 2], TensorType::F32, vec![1; 8]).unwrap(),
            Tensor::new(vec![], TensorType::U8, vec![7]).unwrap(),
        ];
        let info = ModelInfo {
            inputs: vec![ModelInput { name: "x".into(), ty: None, dims: vec![None, Some(64)] }],
            outputs: vec!["y".into()],
        };
        let e = NnError::new(ErrorKind::Cancelled, "stopped");
        let bytes = body(Frame::new(9, OK).tensors(&t).info(&info).error(&e));
        let mut b = Body::new(&bytes);
        assert_eq!(b.u64().unwrap(), 9);
        assert_eq!(b.u8().unwrap(), OK);
        assert_eq!(b.tensors().unwrap(), t);
        let back = b.info().unwrap();
        assert_eq!(back.inputs, info.inputs);
        assert_eq!(back.outputs, info.outputs);
        let back = b.error().unwrap();
        assert_eq!((back.kind, back.message.as_str()), (ErrorKind::Cancelled, "stopped"));
    }

    #[test]
    fn lies_in_a_reply_are_errors() {
        // A tensor count the frame cannot hold, a length past the end, a rank over the cap.
        let mut huge = Frame::new(1, OK);
        huge.u32(u32::MAX);
        let bytes = body(&mut huge);
        assert!(Body::new(&bytes[9..]).tensors().is_err());
        let mut short = Frame::new(1, OK);
        short.u32(1).u8(4).u8(1).u32(3).u64(3).bytes(&[1, 2]);
        let bytes = body(&mut short);
        assert!(Body::new(&bytes[9..]).tensors().is_err());
        let mut deep = Frame::new(1, OK);
        deep.u32(1).u8(4).u8(200);
        let bytes = body(&mut deep);
        assert!(Body::new(&bytes[9..]).tensors().is_err());
        // A frame over the cap is refused before anything is allocated for it.
        let over = (1u64 << 40).to_le_bytes();
        assert!(read_frame(&mut &over[..], 1 << 20).is_err());
        assert!(read_frame(&mut &[][..], 1 << 20).unwrap().is_none(), "end of stream");
    }
}
