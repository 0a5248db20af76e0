//! `compile`: an `Artifact` to ready-to-instantiate code, through the compile cache.

use wasmtime::Engine;
use wasmtime::Module;
use wasmtime::component::Component;

use crate::artifact::{Artifact, Code, Kind};
use crate::cache::{Binding, CompileCache};
use crate::engine::Runtime;
use crate::error::EngineError;
use crate::mapped::CodeBytes;

/// Compiled code of either kind.
#[derive(Clone)]
pub enum Compiled {
    Module(Module),
    Component(Component),
}

impl Compiled {
    pub fn kind(&self) -> Kind {
        match self {
            Compiled::Module(_) => Kind::Module,
            Compiled::Component(_) => Kind::Component,
        }
    }

    /// The engine that made this code: stores and linkers for it must come from this one (the
    /// runtime's own engine, or its baseline tier's, see [`crate::tier`]).
    pub fn engine(&self) -> &Engine {
        match self {
            Compiled::Module(m) => m.engine(),
            Compiled::Component(c) => c.engine(),
        }
    }

    /// True for a component that exports `wasi:http/incoming-handler`: it is served, not run.
    pub fn is_http_proxy(&self) -> bool {
        match self {
            Compiled::Component(c) => {
                c.component_type().exports(c.engine()).any(|(name, _)| name.starts_with("wasi:http/incoming-handler"))
            }
            Compiled::Module(_) => false,
        }
    }

    /// wasmtime's serialized form (what the cache and `wasmbox compile` store).
    #[cfg(feature = "cranelift")]
    pub fn serialize(&self) -> Result<Vec<u8>, EngineError> {
        match self {
            Compiled::Module(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        }
        .map_err(|e| EngineError::Internal(e.into()))
    }
}

/// How a compile was satisfied (observable in logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    Cache,
    Compiled,
    Precompiled,
    /// Baseline-tier code (compiled now or found in the cache): optimized code is still to be
    /// made ([`crate::tier`]).
    Baseline,
}

/// Compiles `artifact`, reading and filling `cache` when given. Precompiled artifacts are loaded
/// only when `allow_precompiled` is set: their native code is trusted, not validated.
pub fn compile(
    rt: &Runtime,
    artifact: &Artifact,
    cache: Option<&CompileCache>,
    allow_precompiled: bool,
) -> Result<(Compiled, CompileSource), EngineError> {
    let engine = rt.engine();
    let wasm = match &artifact.code {
        Code::Precompiled(file) => {
            if !allow_precompiled {
                return Err(EngineError::PrecompiledNotAllowed { path: artifact.path.clone() });
            }
            // Checked (checksum included) when the artifact was classified.
            let entry = crate::cache::decode_checked_entry(file).map_err(|why| EngineError::NotWasm {
                path: artifact.path.clone(),
                reason: format!("damaged precompiled file: {why}"),
            })?;
            check_runnable_here(rt, &entry.target, &entry.binding)
                .and_then(|()| check_cpu_features(entry.payload))
                .map_err(|why| EngineError::PrecompiledIncompatible {
                    path: artifact.path.clone(),
                    source: anyhow::anyhow!(why),
                })?;
            let compiled = deserialize(engine, artifact.kind, file, entry.payload).map_err(|source| {
                EngineError::PrecompiledIncompatible { path: artifact.path.clone(), source: source.into() }
            })?;
            return Ok((compiled, CompileSource::Precompiled));
        }
        Code::Wasm(w) => w,
    };

    let binding = binding(rt, wasm);
    if let Some(compiled) = cache.and_then(|cache| cached(engine, artifact, cache, &binding)) {
        return Ok((compiled, CompileSource::Cache));
    }
    compile_wasm(rt, artifact, wasm, cache, &binding).map(|compiled| (compiled, CompileSource::Compiled))
}

/// The code `cache` holds for `binding`, loaded into `engine` (whose code it must be).
pub(crate) fn cached(
    engine: &Engine,
    artifact: &Artifact,
    cache: &CompileCache,
    binding: &Binding,
) -> Option<Compiled> {
    let key = binding.key();
    let (kind, entry) = cache.get(binding).filter(|(kind, _)| *kind == artifact.kind)?;
    // `get` checked the record; wasmtime's part is what precedes it.
    let payload = &entry[..entry.len() - crate::cache::RECORD_LEN];
    match deserialize(engine, kind, &entry, payload) {
        Ok(compiled) => {
            tracing::debug!(path = %artifact.path.display(), %key, "compile cache hit");
            Some(compiled)
        }
        Err(e) => {
            tracing::warn!(%key, "unusable compile cache entry, recompiling: {e:#}");
            None
        }
    }
}

/// Compiles Wasm with Cranelift and stores the code in `cache`.
#[cfg(feature = "cranelift")]
fn compile_wasm(
    rt: &Runtime,
    artifact: &Artifact,
    wasm: &[u8],
    cache: Option<&CompileCache>,
    binding: &Binding,
) -> Result<Compiled, EngineError> {
    let wasm_sha = crate::cache::hex(&binding.wasm_sha256);
    tracing::debug!(path = %artifact.path.display(), key = %binding.key(), wasm = %wasm_sha, "compiling (cache miss)");
    let compiled = from_wasm(rt.engine(), artifact, wasm)?;
    if let Some(cache) = cache {
        store(rt, artifact, &compiled, cache, binding);
    }
    Ok(compiled)
}

/// Writes `compiled` into `cache` under `binding`. A cache that cannot be written costs speed,
/// not correctness: a warning, no error.
#[cfg(feature = "cranelift")]
pub(crate) fn store(rt: &Runtime, artifact: &Artifact, compiled: &Compiled, cache: &CompileCache, binding: &Binding) {
    if let Err(e) = compiled.serialize().and_then(|bytes| {
        cache.put(binding, &rt.code_target(), artifact.kind, &bytes).map_err(|e| EngineError::Internal(e.into()))
    }) {
        tracing::warn!(dir = %cache.dir().display(), "could not write the compile cache: {e:#}");
    }
}

/// The edge build has no compiler: Wasm runs only from a cache entry or precompiled code.
#[cfg(not(feature = "cranelift"))]
fn compile_wasm(
    _: &Runtime,
    artifact: &Artifact,
    _: &[u8],
    _: Option<&CompileCache>,
    _: &Binding,
) -> Result<Compiled, EngineError> {
    Err(EngineError::NoCompiler { path: artifact.path.clone() })
}

/// Compiles Wasm with `engine`'s compiler.
#[cfg(feature = "cranelift")]
pub(crate) fn from_wasm(engine: &Engine, artifact: &Artifact, wasm: &[u8]) -> Result<Compiled, EngineError> {
    let invalid = |e: wasmtime::Error| EngineError::Invalid {
        path: artifact.path.clone(),
        what: what(artifact.kind),
        source: e.into(),
    };
    Ok(match artifact.kind {
        Kind::Module => Compiled::Module(Module::from_binary(engine, wasm).map_err(invalid)?),
        Kind::Component => Compiled::Component(Component::from_binary(engine, wasm).map_err(invalid)?),
    })
}

#[cfg(feature = "cranelift")]
fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Module => "module",
        Kind::Component => "component",
    }
}

/// Whether code compiled for `target` by the engine in `bound` can run on `rt`. Another
/// architecture never can (named, so a user sees both); code compiled natively needs exactly
/// this engine (the same CPU features and settings); cross-compiled code (a target's baseline)
/// is left to wasmtime's own check of its settings and CPU features against this host.
pub(crate) fn check_runnable_here(
    rt: &Runtime,
    target: &crate::cache::CodeTarget,
    bound: &Binding,
) -> Result<(), String> {
    let here = rt.code_target();
    let (file_arch, here_arch) =
        (crate::target::architecture_of(&target.triple), crate::target::architecture_of(&here.triple));
    if file_arch != here_arch {
        let hint = match (file_arch, here.native) {
            ("pulley64", _) => "; run it with --engine pulley",
            (_, false) => "; run it with --engine native on a matching machine",
            _ => "",
        };
        return Err(format!("it was compiled for {}, and this engine runs {} code{hint}", target.triple, here.triple));
    }
    if here.deterministic && !target.deterministic {
        return Err(
            "it was compiled without --deterministic, so its NaNs are the CPU's; recompile it with `wasmbox compile --deterministic`"
                .into(),
        );
    }
    // Only an engine with a compiler has wasmtime's compatibility hash to compare; without
    // one, wasmtime's own check at load (CPU features, settings) is what applies.
    if cfg!(feature = "cranelift") && target.native && here.native && bound.engine != rt.compat_digest() {
        return Err(format!(
            "it needs engine {}, this wasmbox is engine {} (compiled with other settings, e.g. --fuel, or by another wasmbox)",
            short(&bound.engine),
            short(&rt.compat_digest())
        ));
    }
    Ok(())
}

/// Stores trusted precompiled code (`artifact`, e.g. an image's layer for this CPU) in `cache`
/// as the compiled form of `wasm` for `rt`, after checking that `rt` loads it: a process that
/// later compiles `wasm` with the same engine settings (the daemon) finds it there, and an
/// edge build, which cannot compile, can run it.
pub fn adopt_precompiled(
    rt: &Runtime,
    artifact: &Artifact,
    wasm: &[u8],
    cache: &CompileCache,
) -> Result<(), EngineError> {
    compile(rt, artifact, None, true)?;
    let Code::Precompiled(file) = &artifact.code else {
        return Err(EngineError::NotWasm { path: artifact.path.clone(), reason: "it is not precompiled code".into() });
    };
    let entry = crate::cache::decode_entry(file)
        .map_err(|why| EngineError::NotWasm { path: artifact.path.clone(), reason: why })?;
    cache.put(&binding(rt, wasm), &entry.target, entry.kind, entry.payload).map_err(|e| EngineError::Internal(e.into()))
}

/// Refuses code that needs a CPU feature this machine lacks where wasmtime would not notice.
fn check_cpu_features(payload: &[u8]) -> Result<(), String> {
    let Some(info) = crate::native_info::read(payload) else { return Ok(()) };
    let missing = crate::target::missing_cpu_features(&info.cpu_features);
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "it needs the CPU feature{} {}, which this {} CPU lacks (Wasm SIMD on RISC-V needs the vector extension V)",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        std::env::consts::ARCH
    ))
}

/// Compiles `artifact` (Wasm) ahead of time into wasmtime's serialized form for this runtime's
/// target, which need not be this machine (`compile --target`): the code is produced, not
/// loaded, so another CPU's code can be made here.
#[cfg(feature = "cranelift")]
pub fn precompile(rt: &Runtime, artifact: &Artifact) -> Result<Vec<u8>, EngineError> {
    let Code::Wasm(wasm) = &artifact.code else {
        return Err(EngineError::NotWasm {
            path: artifact.path.clone(),
            reason: "it is already precompiled; compile the .wasm it came from".into(),
        });
    };
    let invalid = |e: wasmtime::Error| EngineError::Invalid {
        path: artifact.path.clone(),
        what: what(artifact.kind),
        source: e.into(),
    };
    match artifact.kind {
        Kind::Module => rt.engine().precompile_module(wasm),
        Kind::Component => rt.engine().precompile_component(wasm),
    }
    .map_err(invalid)
}

/// The edge build cannot produce code.
#[cfg(not(feature = "cranelift"))]
pub fn precompile(_: &Runtime, artifact: &Artifact) -> Result<Vec<u8>, EngineError> {
    Err(EngineError::NoCompiler { path: artifact.path.clone() })
}

/// What code compiled from `wasm` by this runtime's engine is bound to.
pub fn binding(rt: &Runtime, wasm: &[u8]) -> Binding {
    use sha2::Digest;
    Binding { wasm_sha256: sha2::Sha256::digest(wasm).into(), engine: rt.compat_digest() }
}

/// The first 12 hex digits of an engine digest: enough to tell two engines apart in a message.
fn short(digest: &[u8; 32]) -> String {
    crate::cache::hex(&digest[..6])
}

/// Loads `payload` (wasmtime's part of `file`, a whole entry). A mapped entry is handed to
/// wasmtime as its file, which wasmtime maps itself: its code pages are then the page cache's,
/// not copies. wasmtime ignores our record after its ELF data.
fn deserialize(engine: &Engine, kind: Kind, file: &CodeBytes, payload: &[u8]) -> wasmtime::Result<Compiled> {
    // SAFETY: wasmtime's deserializers trust their input to be its own output. Payloads reach
    // here only after our record's checksum matched and its binding is this engine's (and,
    // for the cache, this Wasm's): either a cache entry this user's wasmbox wrote, or a
    // `wasmbox compile` file the user explicitly allowed with --allow-precompiled. A mapped
    // file must not change while mapped: cache entries are replaced by rename, never
    // rewritten. wasmtime itself still rejects output of another version or configuration.
    if let Some(open) = file.file() {
        use std::os::fd::AsRawFd;
        // wasmtime 48 takes an open file for modules only; for components, the same open file
        // by its /proc name (the same inode even if the path was replaced since).
        let by_fd = std::path::PathBuf::from(format!("/proc/self/fd/{}", open.as_raw_fd()));
        match kind {
            Kind::Module => {
                return Ok(Compiled::Module(unsafe { Module::deserialize_open_file(engine, open.try_clone()?)? }));
            }
            Kind::Component if by_fd.exists() => {
                return Ok(Compiled::Component(unsafe { Component::deserialize_file(engine, &by_fd)? }));
            }
            // No /proc: copied, as for bytes in memory.
            Kind::Component => {}
        }
    }
    Ok(match kind {
        Kind::Module => Compiled::Module(unsafe { Module::deserialize(engine, payload)? }),
        Kind::Component => Compiled::Component(unsafe { Component::deserialize(engine, payload)? }),
    })
}
