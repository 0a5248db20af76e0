//! `EngineError`: every way running an artifact can fail, each mapped to one exit code.
//!
//! The CLI never guesses an exit code from a message: it asks [`EngineError::exit_code`].

use std::path::PathBuf;
use std::time::Duration;

use crate::units::{format_duration, format_size};

/// The limit that stopped a guest (exit code 137).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    /// The container's total memory (all memories and tables) would exceed this many bytes.
    Memory(u64),
    /// The wall-clock deadline passed.
    Timeout(Duration),
    /// The instruction budget ran out.
    Fuel(u64),
    /// The guest tried to hold more open handles (files, sockets, streams, ...) than this.
    Handles(usize),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Memory(b) => write!(f, "memory limit of {} reached", format_size(*b)),
            LimitHit::Timeout(d) => write!(f, "timeout of {} reached", format_duration(*d)),
            LimitHit::Fuel(n) => write!(f, "fuel limit of {n} instructions exhausted"),
            LimitHit::Handles(n) => write!(f, "handle limit of {n} open handles reached"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },

    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a WebAssembly file: {reason}")]
    NotWasm { path: PathBuf, reason: String },

    #[error("{path} is not a valid WebAssembly {what}")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: anyhow::Error,
    },

    #[error("{path} is precompiled native code; refusing to load it without --allow-precompiled")]
    PrecompiledNotAllowed { path: PathBuf },

    #[error("{path} was precompiled for a different wasmbox or engine configuration")]
    PrecompiledIncompatible {
        path: PathBuf,
        #[source]
        source: anyhow::Error,
    },

    /// This wasmbox was built without Cranelift (the edge build) and `path` is Wasm with no
    /// usable precompiled code.
    #[error("{path} is Wasm, and this wasmbox (an edge build) has no compiler to run it")]
    NoCompiler { path: PathBuf },

    #[error("the artifact imports `{import}`, which wasmbox does not provide")]
    MissingImport { import: String, hint: Option<String> },

    #[error("{0}")]
    NotRunnable(String),

    /// `--nn-model NAME=SOURCE` named neither a file nor a stored or pullable model image.
    #[error("--nn-model {name}={model}: no such model file or image")]
    ModelNotFound { name: String, model: String },

    /// `--nn-model NAME=SOURCE` is not a model the backend can load.
    #[error("--nn-model {name}={model}: {reason}")]
    BadModel { name: String, model: String, reason: String },

    /// The guest trapped; `memory_hit` when a growth had been refused at the memory limit
    /// before (an allocator that aborts on failure traps this way).
    #[error("guest trapped: {message}{backtrace}")]
    Trap { message: String, backtrace: String, memory_hit: bool },

    #[error("guest stopped: {0}")]
    Limit(LimitHit),

    #[error("cannot grant {what}")]
    Grant {
        what: String,
        #[source]
        source: anyhow::Error,
    },

    #[error("{0}")]
    Internal(#[source] anyhow::Error),
}

impl EngineError {
    /// The `wasmbox run` exit code for this failure (see the table in README.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::NotFound { .. } | EngineError::ModelNotFound { .. } => 127,
            EngineError::NotWasm { .. }
            | EngineError::Invalid { .. }
            | EngineError::PrecompiledNotAllowed { .. }
            | EngineError::PrecompiledIncompatible { .. }
            | EngineError::NoCompiler { .. }
            | EngineError::MissingImport { .. }
            | EngineError::NotRunnable(_)
            | EngineError::BadModel { .. } => 126,
            EngineError::Trap { .. } => 134,
            EngineError::Limit(_) => 137,
            EngineError::Read { .. } | EngineError::Grant { .. } | EngineError::Internal(_) => 125,
        }
    }

    /// A one-line suggestion for the user, where we know the fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::NotFound { .. } => Some("check the path; wasmbox run takes a .wasm or .wat file".into()),
            EngineError::PrecompiledNotAllowed { .. } => Some(
                "precompiled files run native code without validation; pass --allow-precompiled only for files you built with `wasmbox compile`".into(),
            ),
            EngineError::PrecompiledIncompatible { .. } => {
                Some("recompile it from the .wasm with `wasmbox compile` (or run the .wasm directly)".into())
            }
            EngineError::NoCompiler { .. } => Some(format!(
                "precompile it where wasmbox has a compiler: `wasmbox compile --target {arch}` or an image built with `--precompile {arch}`",
                arch = std::env::consts::ARCH
            )),
            EngineError::MissingImport { hint, .. } => hint.clone(),
            EngineError::ModelNotFound { .. } => Some(
                "SOURCE is an .onnx file or a model image (`wasmbox build -t NAME model.onnx`, `wasmbox pull`)".into(),
            ),
            EngineError::BadModel { .. } => Some("wasmbox runs ONNX models (opset 1 to 21, tract's operators)".into()),
            EngineError::Limit(LimitHit::Memory(_)) | EngineError::Trap { memory_hit: true, .. } => {
                Some("raise the limit with -m/--memory, e.g. -m 2G".into())
            }
            EngineError::Limit(LimitHit::Timeout(_)) => Some("raise the deadline with --timeout, e.g. --timeout 30s".into()),
            EngineError::Limit(LimitHit::Fuel(_)) => Some("raise the budget with --fuel".into()),
            EngineError::Limit(LimitHit::Handles(_)) => {
                Some("the guest keeps too many files, sockets or streams open; raise it with --max-handles".into())
            }
            _ => None,
        }
    }
}
