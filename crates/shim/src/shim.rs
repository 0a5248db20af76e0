//! `shim`: wasmbox's implementation of runwasi's `Shim` trait.

use containerd_shim_wasm::shim::{Compiler, Shim, Version, version};

use crate::compiler::WasmboxCompiler;
use crate::sandbox::WasmboxSandbox;

/// Layer media types the shim runs: runwasi's component layer and the CNCF TAG Wasm layer.
pub const LAYER_TYPES: [&str; 2] =
    ["application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", "application/wasm"];

pub struct WasmboxShim;

impl Shim for WasmboxShim {
    type Sandbox = WasmboxSandbox;

    /// Names the youki state directory (`/run/containerd/wasmbox`) and the precompiled-layer
    /// label (`runwasi.io/precompiled/wasmbox/<cache key>`).
    fn name() -> &'static str {
        "wasmbox"
    }

    fn version() -> Version {
        version!()
    }

    async fn compiler() -> Option<impl Compiler> {
        match WasmboxCompiler::new() {
            Ok(c) => Some(c),
            Err(e) => {
                log::error!("no precompilation (every start compiles): {e}");
                None
            }
        }
    }

    fn supported_layers_types() -> &'static [&'static str] {
        &LAYER_TYPES
    }
}
