//! WASI-NN for containers: which models a container was granted ([`NnGrants`]) and the host
//! side of both guest ABIs — `wasi_ephemeral_nn` for preview 1 modules (`witx`) and
//! `wasi:nn@0.2.0-rc-2024-10-28` for components (`wit`).
//!
//! Deny by default: without a grant `load-by-name` answers not-found, guest-supplied model
//! bytes are refused unless `allow_load` is set (and then capped). Everything the host holds for
//! a guest — models it loaded, tensors, outputs — is charged to its memory limit. Computing runs
//! on tokio's blocking pool and is stopped between two operations when the guest's future is
//! dropped (deadline, stop), so a long inference never holds a server's worker thread.
//! Models are loaded and computed by wasmbox-nn, in its backend process (tract is not linked
//! here); without the `nn` feature (the edge build) there is no backend and no models can be
//! granted.

use std::collections::BTreeMap;
#[cfg(feature = "nn")]
use std::sync::Arc;

#[cfg(feature = "nn")]
mod state;
#[cfg(feature = "nn")]
pub(crate) mod wit;
#[cfg(feature = "nn")]
pub(crate) mod witx;

#[cfg(feature = "nn")]
pub(crate) use state::NnState;

use crate::error::EngineError;

/// A model loaded on the host, ready to be granted to containers. Loading the same bytes twice
/// in one process gives the same model (parsed and optimized once).
#[derive(Clone)]
pub struct NnModel {
    #[cfg(feature = "nn")]
    pub(crate) inner: Arc<wasmbox_nn::Model>,
    #[cfg(not(feature = "nn"))]
    _never: std::convert::Infallible,
}

impl std::fmt::Debug for NnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NnModel({})", self.digest())
    }
}

impl NnModel {
    /// Parses an ONNX model. Not a loadable model → `NotRunnable` (126) with the parser's reason.
    pub fn load_onnx(bytes: &[u8]) -> Result<NnModel, EngineError> {
        #[cfg(feature = "nn")]
        {
            wasmbox_nn::load_onnx(bytes).map(|inner| NnModel { inner }).map_err(|e| EngineError::NotRunnable(e.message))
        }
        #[cfg(not(feature = "nn"))]
        {
            let _ = bytes;
            Err(EngineError::NotRunnable(
                "this wasmbox was built without an inference backend (the `nn` feature); use the full build".into(),
            ))
        }
    }

    /// `sha256:<hex>` of the model file.
    pub fn digest(&self) -> String {
        #[cfg(feature = "nn")]
        return self.inner.digest_hex();
        #[cfg(not(feature = "nn"))]
        match self._never {}
    }

    /// Size of the model file in bytes.
    pub fn size(&self) -> u64 {
        #[cfg(feature = "nn")]
        return self.inner.size();
        #[cfg(not(feature = "nn"))]
        match self._never {}
    }
}

/// The models one container may use. `NnGrants::default()` grants none and refuses
/// guest-supplied models.
#[derive(Debug, Clone, Default)]
pub struct NnGrants {
    /// By the name the guest passes to `load-by-name` (`--nn-model NAME=SOURCE`).
    pub models: BTreeMap<String, NnModel>,
    /// `--nn-allow-load[=SIZE]`: guest-supplied models (`load`) up to this many bytes.
    pub allow_load: Option<u64>,
}

/// Whether this build can run inference (the `nn` feature).
pub const AVAILABLE: bool = cfg!(feature = "nn");

/// The inference backend binary this process would start, or why there is none.
pub fn backend() -> Result<std::path::PathBuf, String> {
    #[cfg(feature = "nn")]
    return wasmbox_nn::backend_path().map_err(|e| e.message);
    #[cfg(not(feature = "nn"))]
    Err("this build has no inference backend (the `nn` feature)".into())
}
