//! `wasmbox compile`: precompile a module or component ahead of time for `run --allow-precompiled`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmbox_engine::cache::encode_entry;
use wasmbox_engine::fs::write_atomic;
use wasmbox_engine::{EngineOptions, Runtime};

/// Precompile a module or component for this machine (or, with --target, another CPU)
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// A .wasm module or component, or .wat text
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Output file (default: SOURCE with the extension .cwasm)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Compile for runs with --fuel (fuel-metered code)
    #[arg(long)]
    pub fuel: bool,

    /// Compile for another CPU: x86_64, aarch64, riscv64gc, pulley64 (Wasmtime's portable
    /// interpreter), or their Linux triples. Default: this machine, with its CPU features
    #[arg(long, value_name = "TARGET", value_parser = wasmbox_engine::Target::parse)]
    pub target: Option<wasmbox_engine::Target>,

    /// Compile for `run --deterministic` (canonical NaNs, deterministic relaxed SIMD; implies --fuel)
    #[arg(long)]
    pub deterministic: bool,
}

pub fn exec(a: CompileArgs) -> anyhow::Result<i32> {
    let target = a.target.unwrap_or_default();
    let artifact = wasmbox_engine::artifact::load(&a.source)?;
    let vector = artifact.wasm().is_some_and(super::uses_simd);
    // Deterministic runs always count fuel (it is in the receipt), so their code is metered.
    let fuel = a.fuel || a.deterministic;
    let options = EngineOptions { fuel, target, deterministic: a.deterministic, vector, ..Default::default() };
    let rt = Runtime::new(options)?;
    let code = wasmbox_engine::compile::precompile(&rt, &artifact)?;
    let out = a.output.unwrap_or_else(|| a.source.with_extension("cwasm"));
    let wasm = artifact.wasm().context("the source is already precompiled; compile the .wasm it came from")?;
    let binding = wasmbox_engine::compile::binding(&rt, wasm);
    let bytes = encode_entry(artifact.kind, &binding, &rt.code_target(), &code);
    write_atomic(&out, &bytes).with_context(|| format!("failed to write {}", out.display()))?;
    // Output for the user, not state: their usual permissions, not wasmbox's private umask.
    let mode = 0o644 & !crate::home::user_umask();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("failed to set the permissions of {}", out.display()))?;
    eprintln!(
        "compiled {} {} -> {} for {} ({} bytes)",
        artifact.kind,
        a.source.display(),
        out.display(),
        target.triple(),
        bytes.len()
    );
    Ok(0)
}
