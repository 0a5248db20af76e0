//! containerd-shim-wasmbox-v1: the containerd runtime `io.containerd.wasmbox.v1`.
//!
//! Built on runwasi's `containerd-shim-wasm` (its `Shim`, `Sandbox` and `Compiler` traits: youki
//! makes the Linux container, containerd's content store keeps precompiled layers); every Wasm
//! step is wasmbox's engine. See docs/kubernetes.md.

pub mod compiler;
pub mod handoff;
pub mod plan;
pub mod sandbox;
pub mod shim;

use wasmbox_engine::{EngineError, EngineOptions, Runtime};

/// The one engine configuration of the shim: the compiler and the sandbox must agree on it, or
/// precompiled layers would not load.
pub fn runtime() -> Result<Runtime, EngineError> {
    Runtime::new(EngineOptions::default())
}
