//! wasmbox-nn: inference behind one small API — load a model once per process, then run it in
//! sessions with checked tensors. ONNX on the CPU in pure Rust (tract).
//!
//! Not here: WASI-NN itself (the guest ABIs are glue in wasmbox-engine), how models are granted
//! or shipped (the CLI and wasmbox-image). Nothing here touches wasmtime.
//! Main types: [`Model`] (a parsed, optimized graph shared by every session), [`Session`] (one
//! guest's execution context), [`Tensor`] (checked dimensions, type and bytes), [`NnError`].

mod error;
mod model;
mod session;
mod tensor;

pub use error::{ErrorKind, NnError};
pub use model::{Model, ModelInput, load_onnx};
pub use session::{Job, Session};
pub use tensor::{MAX_RANK, Tensor, TensorType};
