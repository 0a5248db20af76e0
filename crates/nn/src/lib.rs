//! wasmbox-nn: inference behind one small API — load a model once per process, then run it in
//! sessions with checked tensors.
//!
//! [`load_onnx`] runs models in the backend process `wasmbox-nn` (`remote`), installed next to
//! `wasmbox` and built from wasmbox-nn-onnx (tract). tract is then not linked into — and not
//! relocated at every start of — the `wasmbox` binary, and a model that crashes the parser ends
//! only that process. [`wire`] is what the two processes say to each other on a connection,
//! [`control`] how connections reach the backend; [`Runner`] is how
//! a backend plugs in (wasmbox-nn-onnx's in-process one too).
//!
//! Not here: WASI-NN itself (the guest ABIs are glue in wasmbox-engine), how models are granted
//! or shipped (the CLI and wasmbox-image), tract. Nothing here touches wasmtime.
//! Main types: [`Model`] (a loaded model shared by every session), [`Session`] (one guest's
//! execution context), [`Tensor`] (checked dimensions, type and bytes), [`NnError`].

pub mod control;
mod error;
mod model;
mod remote;
mod session;
mod tensor;
pub mod wire;

pub use error::{ErrorKind, NnError};
pub use model::{Model, ModelInfo, ModelInput, Runner, digest, load_onnx};
pub use remote::{BACKEND_BIN, BACKEND_ENV, backend_path};
pub use session::{Job, Session};
pub use tensor::{MAX_RANK, Tensor, TensorType};
