//! `wasmbox run`: run a module or component as a deny-by-default container.

use std::path::PathBuf;

use clap::Args;
use wasmbox_engine::{EngineOptions, Runtime};

use crate::flags::{GrantArgs, LimitArgs};

const EXIT_CODES: &str = "\
Exit codes:
  N     the guest exited normally with code N
  125   wasmbox itself failed (bad flags, internal error)
  126   the artifact cannot run (not Wasm, invalid, missing import)
  127   the source was not found
  134   the guest trapped (message and Wasm backtrace on stderr)
  137   a limit stopped the guest (memory, timeout or fuel; named on stderr)

Nothing is granted by default: no files, no environment, no network, no current directory.
stdin, stdout and stderr are connected.";

/// Run a WebAssembly module (WASI preview 1) or component (WASI 0.2) as a container
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    #[command(flatten)]
    pub grants: GrantArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Do not read or write the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Allow running a precompiled file from `wasmbox compile` (native code, not validated)
    #[arg(long)]
    pub allow_precompiled: bool,

    /// A .wasm module or component, .wat text, or a `wasmbox compile` output
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Arguments passed to the guest
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn exec(a: RunArgs) -> anyhow::Result<i32> {
    let limits = a.limits.limits();
    let mut argv = vec![a.source.display().to_string()];
    argv.extend(a.args.iter().cloned());
    let caps = a.grants.capabilities(argv)?;
    let rt = Runtime::new(EngineOptions { fuel: limits.fuel.is_some(), pooling: false })?;
    let cache = super::compile_cache(a.no_cache)?;
    let (_, compiled, _) = super::load_and_compile(&rt, &a.source, cache.as_ref(), a.allow_precompiled)?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(tokio.block_on(wasmbox_engine::run(&rt, &compiled, &caps, &limits))?)
}
