//! wasmbox-nn-onnx: the ONNX backend of wasmbox-nn — tract, in this process (`local`), and the
//! request loop of the backend process `wasmbox-nn` (`helper`).
//!
//! A crate of its own because tract registers its operators with link-time constructors:
//! whatever links a crate that depends on tract carries (and relocates at every start) all of
//! it. Only the `wasmbox-nn` binary, benchmarks and tests depend on this crate; the `wasmbox`
//! binary talks to the backend process through `wasmbox_nn::load_onnx`.

pub mod helper;
pub mod local;
