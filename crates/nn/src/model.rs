//! `Model`: a loaded model's identity and signature, and the backend that runs it.
//!
//! [`load_onnx`] hands the bytes to the inference backend process (`remote`): tract is linked
//! into that process only, so the `wasmbox` binary starts without it (55,000 relocations and
//! 23 MB less per start) and a model that crashes the parser takes down only the backend.
//! Loading the same bytes again (another request, another container, another grant of the same
//! file) returns the model already loaded, keyed by the bytes' sha256, for as long as anyone
//! holds it. wasmbox-nn-onnx's `local::load_onnx` runs the same model in this process.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use sha2::{Digest, Sha256};

use crate::error::NnError;
use crate::tensor::{Tensor, TensorType};

/// One input of a model: its name, element type and dimensions (`None` for a symbolic one,
/// such as a batch size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    pub name: String,
    /// `None` when the model's type has no WASI-NN equivalent (bool, string, i8...).
    pub ty: Option<TensorType>,
    pub dims: Vec<Option<u64>>,
}

/// A model's signature: its inputs and the names of its outputs, in order.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub inputs: Vec<ModelInput>,
    pub outputs: Vec<String>,
}

/// What computes a model: the backend process, or (wasmbox-nn-onnx) tract in this process.
/// `inputs` were checked against the model by [`crate::Session`].
pub trait Runner: Send + Sync {
    fn run(&self, inputs: Vec<Tensor>, cancel: &AtomicBool) -> Result<Vec<Tensor>, NnError>;
}

/// A loaded model. Cheap to share (`Arc`); sessions run it concurrently.
pub struct Model {
    digest: [u8; 32],
    size: u64,
    info: ModelInfo,
    runner: Box<dyn Runner>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("digest", &self.digest_hex()).field("size", &self.size).finish()
    }
}

impl Model {
    pub fn new(digest: [u8; 32], size: u64, info: ModelInfo, runner: Box<dyn Runner>) -> Model {
        Model { digest, size, info, runner }
    }

    /// sha256 of the model's bytes, as `sha256:<hex>`.
    pub fn digest_hex(&self) -> String {
        let hex: String = self.digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Size of the model file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn inputs(&self) -> &[ModelInput] {
        &self.info.inputs
    }

    pub fn outputs(&self) -> &[String] {
        &self.info.outputs
    }

    pub(crate) fn runner(&self) -> &dyn Runner {
        &*self.runner
    }
}

/// sha256 of a model's bytes: what models are known by.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Models in memory by sha256. A slot is locked while its model is loaded, so the same bytes
/// loaded at once by many callers are parsed once; other models load in parallel.
type Slot = Arc<Mutex<Weak<Model>>>;
static LOADED: LazyLock<Mutex<HashMap<[u8; 32], Slot>>> = LazyLock::new(Default::default);

/// Loads an ONNX model in the inference backend process, or returns the one already loaded
/// from the same bytes. Fails with `InvalidEncoding` for bytes that are not a loadable ONNX
/// model (with tract's reason), `Unsupported` when the backend is not installed.
pub fn load_onnx(bytes: &[u8]) -> Result<Arc<Model>, NnError> {
    let digest = digest(bytes);
    let slot = {
        let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.lock().is_ok_and(|w| w.strong_count() > 0));
        loaded.entry(digest).or_default().clone()
    };
    let mut cached = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(model) = cached.upgrade() {
        return Ok(model);
    }
    let model = Arc::new(crate::remote::load(digest, bytes)?);
    *cached = Arc::downgrade(&model);
    Ok(model)
}
