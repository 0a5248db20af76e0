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

use wasmbox_engine::artifact::{Artifact, Code};
use wasmbox_engine::{EngineError, EngineOptions, Runtime, artifact, cache};

/// The shim's engine for a guest; the compiler and the sandbox must agree on it, or precompiled
/// layers would not load. A `wasi:http/proxy` component is served: many requests' guests share
/// the server's threads and take turns on epoch ticks, so its code has epoch checks. Any other
/// guest runs alone in its container and is stopped by ending the process, so its code is
/// compiled without them (`EngineOptions::uninterruptible`): a faster first start and faster
/// code. runwasi's shims compile without them too.
pub fn runtime(serves_http: bool) -> Result<Runtime, EngineError> {
    Runtime::new(EngineOptions { uninterruptible: !serves_http, ..EngineOptions::default() })
}

/// The engine for an image layer: for Wasm (or text, once assembled), by its exports; for a
/// layer the shim precompiled, the engine that compiled it (its entry's header names it).
pub fn runtime_for(layer: &Artifact) -> Result<Runtime, EngineError> {
    match &layer.code {
        Code::Wasm(wasm) => runtime(artifact::exports_http_handler(wasm)),
        Code::Precompiled(entry) => {
            let alone = runtime(false)?;
            let compiled_by = cache::decode_entry(entry).map(|e| e.binding.engine);
            if compiled_by == Ok(alone.compat_digest()) { Ok(alone) } else { runtime(true) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn layer(bytes: Vec<u8>) -> Artifact {
        artifact::from_bytes(std::path::Path::new("layer"), bytes).unwrap()
    }

    #[test]
    fn only_http_servers_get_epoch_checks() {
        let served = runtime_for(&layer(read(wasmbox_test_programs::HTTP_HELLO_COMPONENT))).unwrap();
        assert!(!served.options().uninterruptible);
        for alone in [wasmbox_test_programs::PROBE_MODULE, wasmbox_test_programs::PROBE_COMPONENT] {
            assert!(runtime_for(&layer(read(alone))).unwrap().options().uninterruptible, "{alone}");
        }
        // Text is classified by the binary it assembles to.
        let text = br#"(component (import "i" (instance)) (export "wasi:http/incoming-handler@0.2.0" (instance 0)))"#;
        assert!(!runtime_for(&layer(text.to_vec())).unwrap().options().uninterruptible);
        assert_ne!(runtime(true).unwrap().compat_digest(), runtime(false).unwrap().compat_digest());
    }

    #[test]
    fn a_precompiled_layer_gets_the_engine_that_compiled_it() {
        for (guest, serves_http) in
            [(wasmbox_test_programs::PROBE_MODULE, false), (wasmbox_test_programs::HTTP_HELLO_COMPONENT, true)]
        {
            let entry = layer(crate::compiler::precompile_bytes("layer", read(guest)).unwrap().unwrap());
            let rt = runtime_for(&entry).unwrap();
            assert_eq!(rt.options().uninterruptible, !serves_http, "{guest}");
            wasmbox_engine::compile(&rt, &entry, None, true).unwrap();
        }
    }
}
