//! `compiler`: precompiles an image's Wasm layers once per node (runwasi's `Compiler`).
//!
//! runwasi stores what `compile` returns in containerd's content store, labelled with
//! `cache_key`, and hands it back as a layer marked `precompiled` on later starts. The bytes are
//! wasmbox's compile-cache entries, so the key is the engine's compatibility digest, as in the
//! compile cache of `wasmbox run`.
//!
//! When several pods of a new image start at once, one shim per layer compiles and stores it
//! (see `claim`); the others run that start from the Wasm. runwasi stores each shim's result
//! under the same content ref, and a second writer fails the whole load, which made the
//! container start without its Wasm layers ("executor can't handle spec").

use std::path::Path;

mod claim;

use containerd_shim_wasm::sandbox::context::WasmLayer;
use containerd_shim_wasm::shim::Compiler;
use wasmbox_engine::{EngineError, Runtime, artifact, cache};

pub struct WasmboxCompiler {
    rt: Runtime,
}

impl WasmboxCompiler {
    pub fn new() -> Result<Self, EngineError> {
        Ok(WasmboxCompiler { rt: crate::runtime()? })
    }
}

impl Compiler for WasmboxCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        cache::hex(&self.rt.compat_digest())
    }

    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let rt = self.rt.clone();
        let layers = layers.to_vec();
        // Compiling is CPU work; keep it off the shim's async threads.
        tokio::task::spawn_blocking(move || {
            let mut claims = Vec::new();
            let compiled = layers
                .iter()
                .map(|l| match claim::layer(l.config.digest().as_ref()) {
                    Some(claimed) => {
                        claims.push(claimed);
                        precompile(&rt, l)
                    }
                    // Another shim is compiling and storing this layer: run from the Wasm.
                    None => Ok(None),
                })
                .collect();
            claim::hold(claims);
            compiled
        })
        .await?
    }
}

/// One layer's compile-cache entry; `None` for a layer there is nothing to compile in.
pub fn precompile(rt: &Runtime, layer: &WasmLayer) -> anyhow::Result<Option<Vec<u8>>> {
    if layer.precompiled {
        return Ok(None);
    }
    let name = layer.config.digest().to_string();
    let artifact = artifact::from_bytes(Path::new(&name), layer.layer.clone())?;
    // Only Wasm is compiled: native code that arrived in an image is never trusted.
    let Some(wasm) = artifact.wasm() else {
        return Ok(None);
    };
    let binding = wasmbox_engine::compile::binding(rt, wasm);
    let (compiled, _) = wasmbox_engine::compile(rt, &artifact, None, false)?;
    log::info!("precompiled layer {name} ({} bytes of Wasm)", layer.layer.len());
    Ok(Some(cache::encode_entry(compiled.kind(), &binding, &rt.code_target(), &compiled.serialize()?)))
}
