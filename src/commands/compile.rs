//! `wasmbox compile`: precompile a module or component ahead of time for `run --allow-precompiled`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmbox_engine::cache::encode_entry;
use wasmbox_engine::fs::write_atomic;
use wasmbox_engine::{EngineOptions, Runtime};

/// Precompile a module or component to native code for this machine
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
}

pub fn exec(a: CompileArgs) -> anyhow::Result<i32> {
    let rt = Runtime::new(EngineOptions { fuel: a.fuel, pooling: false })?;
    let artifact = wasmbox_engine::artifact::load(&a.source)?;
    let (compiled, _) = super::compile(&rt, &artifact, None, false)?;
    let out = a.output.unwrap_or_else(|| a.source.with_extension("cwasm"));
    let wasm = artifact.wasm().context("the source is already precompiled; compile the .wasm it came from")?;
    let binding = wasmbox_engine::compile::binding(&rt, wasm);
    let bytes = encode_entry(artifact.kind, &binding, &compiled.serialize()?);
    write_atomic(&out, &bytes).with_context(|| format!("failed to write {}", out.display()))?;
    // Output for the user, not state: their usual permissions, not wasmbox's private umask.
    let mode = 0o644 & !crate::home::user_umask();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("failed to set the permissions of {}", out.display()))?;
    eprintln!("compiled {} {} -> {} ({} bytes)", artifact.kind, a.source.display(), out.display(), bytes.len());
    Ok(0)
}
