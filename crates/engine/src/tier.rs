//! Tiered first starts: Wasm that is not in the compile cache yet is compiled by Winch,
//! wasmtime's baseline compiler (about 3× faster to compile than Cranelift, slower code), so
//! it starts at once; Cranelift's optimized code is made afterwards ([`optimize`]) into the
//! cache for the next starts — and, for `serve` and the daemon, for the next instances. Steady
//! state always runs Cranelift's code.
//!
//! Only Wasm with much code is tiered ([`TIER_MIN_BYTES`] of function bodies, [`code_bytes`]):
//! below that, Cranelift takes milliseconds and a second compile would cost more than it
//! saves. Code, not file size, because data segments, names and debug sections cost no compile
//! time — and a padded file tiered by its size would try Winch for nothing. The baseline code
//! of a tiered start is not cached (writing tens of MiB would delay the start it is for, and
//! optimized code follows within seconds); under [`Compiler::Winch`] it is the final code, and
//! cached as such.

use crate::artifact::{Artifact, Code};
use crate::cache::{Binding, CompileCache};
use crate::compile::{CompileSource, Compiled, binding, cached, compile};
use crate::engine::{Baseline, Runtime};
use crate::error::EngineError;

/// Which compiler makes code that is not in the cache yet (`--compiler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compiler {
    /// Cranelift; a first start of large Wasm runs Winch's code until Cranelift's is made.
    #[default]
    Auto,
    /// Always wait for Cranelift's optimized code (the behaviour before tiering).
    Cranelift,
    /// Winch only, never optimized: the fastest compile, for code that runs briefly.
    Winch,
}

impl std::str::FromStr for Compiler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Compiler::Auto),
            "cranelift" => Ok(Compiler::Cranelift),
            "winch" => Ok(Compiler::Winch),
            other => Err(format!("unknown compiler `{other}` (expected auto, cranelift or winch)")),
        }
    }
}

/// Wasm with at least this many bytes of function bodies is tiered by [`Compiler::Auto`]
/// (Cranelift compiles 1 MiB of code in about 0.3 s on one core).
pub const TIER_MIN_BYTES: usize = 1 << 20;

/// The bytes of function bodies in `wasm`: the code sections of a module, or of every core
/// module inside a component. What compile time grows with. Malformed Wasm counts what was
/// read before the error (compiling it fails anyway, with the real error).
#[cfg(feature = "compiler")]
pub fn code_bytes(wasm: &[u8]) -> usize {
    let mut total = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionStart { size, .. }) => total = total.saturating_add(size as usize),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    total
}

/// Without a compiler nothing is tiered; nothing needs to be counted.
#[cfg(not(feature = "compiler"))]
pub fn code_bytes(_: &[u8]) -> usize {
    0
}

/// [`compile`] for a start that should not wait for optimized code: returns
/// [`CompileSource::Baseline`] when it hands out baseline code, and the caller then runs
/// [`optimize`] (in the background) unless it asked for [`Compiler::Winch`].
pub fn compile_first(
    rt: &Runtime,
    artifact: &Artifact,
    cache: Option<&CompileCache>,
    allow_precompiled: bool,
    compiler: Compiler,
) -> Result<(Compiled, CompileSource), EngineError> {
    let Code::Wasm(wasm) = &artifact.code else { return compile(rt, artifact, cache, allow_precompiled) };
    let tiered = match compiler {
        Compiler::Cranelift => false,
        Compiler::Winch => true,
        // Without a cache no optimized code would ever follow for a one-shot run.
        // Code is never larger than the file: smaller files are not parsed (every cached run
        // of them passes here).
        Compiler::Auto => cache.is_some() && wasm.len() >= TIER_MIN_BYTES && code_bytes(wasm) >= TIER_MIN_BYTES,
    };
    if !tiered {
        return compile(rt, artifact, cache, allow_precompiled);
    }
    let Some(baseline) = rt.baseline() else {
        if compiler == Compiler::Winch {
            return Err(EngineError::NotRunnable(format!(
                "--compiler winch is not available here: Winch compiles for x86_64 only, and cannot count fuel (--fuel), canonicalize NaNs (--deterministic) or cross-compile (this is {})",
                std::env::consts::ARCH
            )));
        }
        return compile(rt, artifact, cache, allow_precompiled);
    };
    let optimized = binding(rt, wasm);
    if compiler == Compiler::Auto
        && let Some(compiled) = cache.and_then(|cache| cached(rt.engine(), artifact, cache, &optimized))
    {
        return Ok((compiled, CompileSource::Cache));
    }
    // Baseline code is kept only where it is the final code.
    let keep = cache.filter(|_| compiler == Compiler::Winch);
    let tier = Binding { engine: baseline.compat, ..optimized };
    if let Some(compiled) = keep.and_then(|cache| cached(&baseline.engine, artifact, cache, &tier)) {
        return Ok((compiled, CompileSource::Baseline));
    }
    match compile_baseline(rt, baseline, artifact, wasm, keep, &tier) {
        Ok(compiled) => Ok((compiled, CompileSource::Baseline)),
        // Winch lacks some proposals (SIMD partly, tail calls, GC, exceptions): Cranelift has them.
        Err(e) if compiler == Compiler::Auto => {
            tracing::debug!(path = %artifact.path.display(), "Winch cannot compile this, using Cranelift: {e:#}");
            compile(rt, artifact, cache, allow_precompiled)
        }
        Err(e) => Err(e),
    }
}

#[cfg(feature = "compiler")]
fn compile_baseline(
    rt: &Runtime,
    baseline: &Baseline,
    artifact: &Artifact,
    wasm: &[u8],
    cache: Option<&CompileCache>,
    tier: &Binding,
) -> Result<Compiled, EngineError> {
    let started = std::time::Instant::now();
    let compiled = crate::compile::from_wasm(&baseline.engine, artifact, wasm)?;
    tracing::debug!(path = %artifact.path.display(), elapsed = ?started.elapsed(), "compiled the baseline tier (Winch)");
    if let Some(cache) = cache {
        crate::compile::store(rt, artifact, &compiled, cache, tier);
    }
    Ok(compiled)
}

/// Without a compiler there is no baseline tier ([`Runtime::baseline`] is `None`).
#[cfg(not(feature = "compiler"))]
fn compile_baseline(
    _: &Runtime,
    _: &Baseline,
    artifact: &Artifact,
    _: &[u8],
    _: Option<&CompileCache>,
    _: &Binding,
) -> Result<Compiled, EngineError> {
    Err(EngineError::NoCompiler { path: artifact.path.clone() })
}

/// Makes Cranelift's optimized code for `artifact` (Wasm), stores it in `cache` for the next
/// starts, and returns it.
pub fn optimize(rt: &Runtime, artifact: &Artifact, cache: Option<&CompileCache>) -> Result<Compiled, EngineError> {
    let started = std::time::Instant::now();
    let (compiled, _) = compile(rt, artifact, cache, false)?;
    tracing::debug!(path = %artifact.path.display(), elapsed = ?started.elapsed(), "optimized code ready (Cranelift)");
    Ok(compiled)
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::code_bytes;

    fn nops(n: usize) -> String {
        format!("(func {})", "nop ".repeat(n))
    }

    #[test]
    fn code_bytes_counts_function_bodies_of_modules_and_of_every_module_in_a_component() {
        let module =
            wat::parse_str(format!("(module {} (memory 1) (data (i32.const 0) \"{}\"))", nops(1000), "x".repeat(5000)))
                .unwrap();
        let counted = code_bytes(&module);
        assert!((1000..1010).contains(&counted), "{counted}: the data segment is not code");
        let component =
            wat::parse_str(format!("(component (core module {}) (core module {}))", nops(1000), nops(3000))).unwrap();
        let counted = code_bytes(&component);
        assert!((4000..4020).contains(&counted), "{counted}");
        assert_eq!(code_bytes(b"\0asm\x01\0\0\0\x0a\xff"), 0, "a truncated section counts nothing");
    }
}
