//! `Model`: an ONNX graph parsed, typed and optimized once per process, and shared.
//!
//! Loading the same bytes again (another request, another container, another grant of the same
//! file) returns the model already in memory, keyed by the bytes' sha256, for as long as anyone
//! holds it. Parsing runs under `catch_unwind`: a hostile model is an error, not a host crash.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::error::{ErrorKind, NnError};
use crate::tensor::TensorType;

/// One input of a model: its name, element type and dimensions (`None` for a symbolic one,
/// such as a batch size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    pub name: String,
    /// `None` when the model's type has no WASI-NN equivalent (bool, string, i8...).
    pub ty: Option<TensorType>,
    pub dims: Vec<Option<u64>>,
}

/// A loaded model. Cheap to share (`Arc`); sessions run it concurrently.
pub struct Model {
    digest: [u8; 32],
    size: u64,
    pub(crate) plan: Arc<TypedSimplePlan>,
    inputs: Vec<ModelInput>,
    outputs: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("digest", &self.digest_hex()).field("size", &self.size).finish()
    }
}

impl Model {
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
        &self.inputs
    }

    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }
}

/// Models in memory by sha256. A slot is locked while its model is parsed, so the same bytes
/// loaded at once by many callers are parsed once; other models load in parallel.
type Slot = Arc<Mutex<Weak<Model>>>;
static LOADED: LazyLock<Mutex<HashMap<[u8; 32], Slot>>> = LazyLock::new(Default::default);

/// Parses and optimizes an ONNX model, or returns the one already loaded from the same bytes.
/// Fails with `InvalidEncoding` for bytes that are not a loadable ONNX model (with tract's
/// reason).
pub fn load_onnx(bytes: &[u8]) -> Result<Arc<Model>, NnError> {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    let slot = {
        let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.lock().is_ok_and(|w| w.strong_count() > 0));
        loaded.entry(digest).or_default().clone()
    };
    let mut cached = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(model) = cached.upgrade() {
        return Ok(model);
    }
    let model = Arc::new(parse(bytes, digest)?);
    *cached = Arc::downgrade(&model);
    Ok(model)
}

fn parse(bytes: &[u8], digest: [u8; 32]) -> Result<Model, NnError> {
    let optimized = catch_unwind(AssertUnwindSafe(|| -> TractResult<_> {
        // Read from bytes, never from a path: a model's external-data references then have no
        // directory to resolve against and are refused.
        let model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
        let typed = model.into_optimized()?;
        let plan = typed.into_runnable()?;
        Ok(plan)
    }))
    .map_err(|_| NnError::new(ErrorKind::InvalidEncoding, "the ONNX parser failed on this model (it panicked)"))?
    .map_err(|e| NnError::new(ErrorKind::InvalidEncoding, format!("not a loadable ONNX model: {}", one_line(&e))))?;
    let graph = optimized.model();
    let mut inputs = Vec::new();
    for (ix, outlet) in graph.input_outlets().map_err(runtime)?.iter().enumerate() {
        let fact = graph.input_fact(ix).map_err(runtime)?;
        inputs.push(ModelInput {
            name: graph.node(outlet.node).name.clone(),
            ty: tensor_type(fact.datum_type),
            dims: fact.shape.iter().map(|d| d.to_i64().ok().map(|v| v.max(0) as u64)).collect(),
        });
    }
    let outputs = graph
        .output_outlets()
        .map_err(runtime)?
        .iter()
        .map(|o| graph.outlet_label(*o).unwrap_or(&graph.node(o.node).name).to_string())
        .collect();
    Ok(Model { digest, size: bytes.len() as u64, plan: optimized, inputs, outputs })
}

pub(crate) fn tensor_type(dt: DatumType) -> Option<TensorType> {
    Some(match dt {
        DatumType::F16 => TensorType::F16,
        DatumType::F32 => TensorType::F32,
        DatumType::F64 => TensorType::F64,
        DatumType::U8 => TensorType::U8,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        _ => return None,
    })
}

pub(crate) fn datum_type(ty: TensorType) -> Option<DatumType> {
    Some(match ty {
        TensorType::F16 => DatumType::F16,
        TensorType::F32 => DatumType::F32,
        TensorType::F64 => DatumType::F64,
        TensorType::U8 => DatumType::U8,
        TensorType::I32 => DatumType::I32,
        TensorType::I64 => DatumType::I64,
        TensorType::Bf16 => return None,
    })
}

pub(crate) fn runtime(e: TractError) -> NnError {
    NnError::new(ErrorKind::RuntimeError, one_line(&e))
}

/// tract's error chain on one line: "outer: inner: root".
pub(crate) fn one_line(e: &TractError) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}
