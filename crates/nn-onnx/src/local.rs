//! The ONNX backend itself, in this process: tract parses, types and optimizes a model once and
//! runs it. The backend process (`helper`) is built on it; `load_onnx` here is for tools and
//! tests that want tract without a second process (the native baseline of the benchmarks).
//! Parsing and computing run under `catch_unwind`: a hostile model is an error, not a crash.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

use wasmbox_nn::{ErrorKind, Model, ModelInfo, ModelInput, NnError, Runner, Tensor as NnTensor, TensorType, digest};

/// A model tract has parsed and optimized, ready to run.
pub struct Plan(Arc<TypedSimplePlan>);

/// Parses and optimizes an ONNX model in this process (not shared with other loads).
pub fn load_onnx(bytes: &[u8]) -> Result<Arc<Model>, NnError> {
    let (info, plan) = parse(bytes)?;
    Ok(Arc::new(Model::new(digest(bytes), bytes.len() as u64, info, Box::new(plan))))
}

impl Runner for Plan {
    fn run(&self, inputs: Vec<NnTensor>, cancel: &AtomicBool) -> Result<Vec<NnTensor>, NnError> {
        self.compute(&inputs, &|| cancel.load(Ordering::Relaxed))
    }
}

/// Fails with `InvalidEncoding` for bytes that are not a loadable ONNX model (with tract's reason).
pub fn parse(bytes: &[u8]) -> Result<(ModelInfo, Plan), NnError> {
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
    Ok((ModelInfo { inputs, outputs }, Plan(optimized)))
}

impl Plan {
    /// Runs the model on inputs already checked against it (by `Session`), asking `stop`
    /// before every operation.
    pub fn compute(&self, inputs: &[NnTensor], stop: &dyn Fn() -> bool) -> Result<Vec<NnTensor>, NnError> {
        let mut values = TVec::new();
        for t in inputs {
            let dt = datum_type(t.ty()).ok_or_else(|| {
                NnError::new(ErrorKind::Unsupported, format!("{:?} tensors are not supported", t.ty()))
            })?;
            let shape: Vec<usize> = t.dims().iter().map(|&d| d as usize).collect();
            // SAFETY: `Tensor::new` checked that the bytes are exactly shape × element size, and
            // every bit pattern is a valid value of these plain numeric types.
            let value = unsafe { Tensor::from_raw_dt(dt, &shape, t.data()) }.map_err(runtime)?;
            values.push(value.into_tvalue());
        }
        let outputs = catch_unwind(AssertUnwindSafe(|| -> TractResult<TVec<TValue>> {
            let mut state = self.0.spawn()?;
            state.run_plan_with_eval(values, |ctx, op_state, node, values| {
                if stop() {
                    return Err(tract_onnx::tract_core::internal::format_err!("{CANCELLED}"));
                }
                eval(ctx, op_state, node, values)
            })
        }))
        .map_err(|_| NnError::new(ErrorKind::RuntimeError, "the inference backend failed (it panicked)"))?;
        let outputs = outputs.map_err(|e| {
            if stop() {
                NnError::new(ErrorKind::Cancelled, "the inference was stopped")
            } else {
                NnError::new(ErrorKind::RuntimeError, format!("inference failed: {}", one_line(&e)))
            }
        })?;
        outputs.iter().map(to_tensor).collect()
    }
}

const CANCELLED: &str = "cancelled";

fn to_tensor(value: &TValue) -> Result<NnTensor, NnError> {
    let ty: TensorType = tensor_type(value.datum_type()).ok_or_else(|| {
        NnError::new(ErrorKind::Unsupported, format!("an output of type {:?} has no WASI-NN type", value.datum_type()))
    })?;
    let dims = value
        .shape()
        .iter()
        .map(|&d| u32::try_from(d))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| NnError::new(ErrorKind::TooLarge, "an output dimension does not fit in 32 bits"))?;
    NnTensor::new(dims, ty, value.as_bytes().to_vec())
}

fn tensor_type(dt: DatumType) -> Option<TensorType> {
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

fn datum_type(ty: TensorType) -> Option<DatumType> {
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

fn runtime(e: TractError) -> NnError {
    NnError::new(ErrorKind::RuntimeError, one_line(&e))
}

/// tract's error chain on one line: "outer: inner: root".
fn one_line(e: &TractError) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}
