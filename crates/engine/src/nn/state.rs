//! `NnState`: one store's WASI-NN state shared by both ABIs — its grants, its memory charges,
//! and the steps both ABIs take the same way (load by name, load guest bytes, compute).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmbox_nn::{ErrorKind, Job, Model, NnError, Tensor};

use super::NnGrants;
use crate::limits::HostMemory;

/// A model handle's share of the container's memory: the model's size, charged while held.
pub struct Graph {
    pub model: Arc<Model>,
    charged: u64,
}

/// One store's WASI-NN state.
pub(crate) struct NnState {
    grants: Arc<NnGrants>,
    pub memory: HostMemory,
    /// Preview 1 handle tables (components keep theirs in the resource table).
    pub p1: super::witx::Handles,
}

impl NnState {
    pub fn new(grants: Arc<NnGrants>, memory: HostMemory, max_handles: usize) -> NnState {
        NnState { grants, memory, p1: super::witx::Handles::new(max_handles) }
    }

    /// `load-by-name`: a granted model, or not-found naming it.
    pub fn load_by_name(&self, name: &str) -> Result<Graph, NnError> {
        let Some(model) = self.grants.models.get(name) else {
            let hint = if self.grants.models.is_empty() {
                "no models were granted to this container".to_string()
            } else {
                let names: Vec<&str> = self.grants.models.keys().map(String::as_str).collect();
                format!("granted: {}", names.join(", "))
            };
            return Err(NnError::new(
                ErrorKind::NotFound,
                format!("no model named `{name}` ({hint}; grant one with --nn-model {name}=FILE)"),
            ));
        };
        self.hold(model.inner.clone())
    }

    /// `load`: guest-supplied ONNX bytes, only with `--nn-allow-load`, at most its cap.
    /// Parsing runs on the blocking pool.
    pub async fn load_bytes(&self, builders: &[&[u8]], onnx: bool, cpu: bool) -> Result<Graph, NnError> {
        let Some(cap) = self.grants.allow_load else {
            return Err(NnError::new(
                ErrorKind::Denied,
                "guest-supplied models are not allowed (grant models with --nn-model NAME=FILE, or allow this with --nn-allow-load)",
            ));
        };
        if !onnx {
            return Err(NnError::new(ErrorKind::InvalidEncoding, "this host reads ONNX models only"));
        }
        if !cpu {
            return Err(NnError::new(ErrorKind::Unsupported, "this host runs models on the CPU only"));
        }
        let [bytes] = builders else {
            return Err(NnError::invalid(format!("an ONNX model is one buffer, not {}", builders.len())));
        };
        if bytes.len() as u64 > cap {
            return Err(NnError::new(
                ErrorKind::TooLarge,
                format!("the model is {} bytes; --nn-allow-load allows {cap}", bytes.len()),
            ));
        }
        // The copy the parser works on is the guest's too.
        let copy = self.charge(bytes.len() as u64, "the model")?;
        let owned = bytes.to_vec();
        let parsed = tokio::task::spawn_blocking(move || wasmbox_nn::load_onnx(&owned)).await;
        self.memory.release(copy);
        let model = parsed.map_err(|_| NnError::new(ErrorKind::RuntimeError, "the model parser failed"))??;
        self.hold(model)
    }

    fn hold(&self, model: Arc<Model>) -> Result<Graph, NnError> {
        let charged = self.charge(model.size(), "the model")?;
        Ok(Graph { model, charged })
    }

    pub fn release_graph(&self, graph: Graph) {
        self.memory.release(graph.charged);
    }

    /// Charges `bytes` of host memory for `what`, or fails with too-large.
    pub fn charge(&self, bytes: u64, what: &str) -> Result<u64, NnError> {
        if self.memory.try_charge(bytes) {
            Ok(bytes)
        } else {
            Err(NnError::new(
                ErrorKind::TooLarge,
                format!("{what} ({bytes} bytes) does not fit in the container's memory limit (-m)"),
            ))
        }
    }

    /// Charges a tensor the host keeps for the guest.
    pub fn charge_tensor(&self, tensor: &Tensor) -> Result<u64, NnError> {
        self.charge(tensor.bytes(), "the tensor")
    }
}

/// Runs `job` on tokio's blocking pool. Dropping the returned future (the guest's deadline
/// passed, the container was stopped) stops the computation before its next operation.
pub(crate) async fn compute(job: Job) -> Result<Vec<Tensor>, NnError> {
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || job.run(&cancel))
        .await
        .unwrap_or_else(|_| Err(NnError::new(ErrorKind::RuntimeError, "the inference thread failed")))
}
