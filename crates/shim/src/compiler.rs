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
use serde_bytes::ByteBuf;
use wasmbox_engine::{EngineError, artifact, cache};

pub struct WasmboxCompiler {
    /// The compatibility digests of the shim's two engines (see `crate::runtime`).
    digests: [[u8; 32]; 2],
}

impl WasmboxCompiler {
    pub fn new() -> Result<Self, EngineError> {
        Ok(WasmboxCompiler { digests: [crate::runtime(false)?.compat_digest(), crate::runtime(true)?.compat_digest()] })
    }
}

impl Compiler for WasmboxCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        self.digests.map(|d| cache::hex(&d)).join("-")
    }

    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let layers = layers.to_vec();
        // Compiling is CPU work; keep it off the shim's async threads.
        tokio::task::spawn_blocking(move || {
            let mut claims = Vec::new();
            let compiled = layers
                .iter()
                .map(|l| match claim::layer(l.config.digest().as_ref()) {
                    Some(claimed) => {
                        claims.push(claimed);
                        precompile(l)
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
///
/// The compile runs in a fresh process forked from runwasi's zygote (made before the shim
/// started any thread), not in the shim's own process: that one keeps a single malloc arena
/// (memory per pod, see third_party/containerd-shimkit/PATCHES.md), on which Cranelift's
/// parallel compile threads would contend (14% longer compiles measured), and it would keep
/// the compile's garbage for the pod's whole life. A fault while compiling ends only the helper.
pub fn precompile(layer: &WasmLayer) -> anyhow::Result<Option<Vec<u8>>> {
    if layer.precompiled {
        return Ok(None);
    }
    let helper = zygote::Zygote::global().spawn();
    let args = (layer.config.digest().to_string(), ByteBuf::from(layer.layer.clone()));
    let compiled = helper
        .try_run(precompile_in_helper, args)
        .map_err(|e| anyhow::anyhow!("the compile helper process failed: {e}"))?;
    // Dropping the helper ends its process.
    drop(helper);
    compiled.map(|entry| entry.map(ByteBuf::into_vec)).map_err(anyhow::Error::msg)
}

/// [`precompile_bytes`] in the helper process; errors cross back as text.
fn precompile_in_helper((name, wasm): (String, ByteBuf)) -> Result<Option<ByteBuf>, String> {
    precompile_bytes(&name, wasm.into_vec()).map(|entry| entry.map(ByteBuf::from)).map_err(|e| format!("{e:#}"))
}

/// [`precompile`] of a layer's bytes, compiled by the engine `crate::runtime_for` picks.
pub fn precompile_bytes(name: &str, bytes: Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
    let size = bytes.len();
    let artifact = artifact::from_bytes(Path::new(name), bytes)?;
    // Only Wasm is compiled: native code that arrived in an image is never trusted.
    let Some(wasm) = artifact.wasm() else {
        return Ok(None);
    };
    let rt = crate::runtime_for(&artifact)?;
    let binding = wasmbox_engine::compile::binding(&rt, wasm);
    let (compiled, _) = wasmbox_engine::compile(&rt, &artifact, None, false)?;
    log::info!("precompiled layer {name} ({size} bytes of Wasm)");
    Ok(Some(cache::encode_entry(compiled.kind(), &binding, &rt.code_target(), &compiled.serialize()?)))
}
