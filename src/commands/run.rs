//! `wasmbox run`: run a module or component as a deny-by-default container.

use std::path::PathBuf;

use clap::Args;
use wasmbox_engine::{EngineOptions, Runtime};

use crate::flags::{GrantArgs, LimitArgs};
use crate::requests;

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

    /// When to pull an image SOURCE from its registry
    #[arg(long, value_enum, default_value_t = super::PullPolicy::Missing)]
    pub pull: super::PullPolicy,

    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,

    /// Grant the environment variables and network destinations the image's app requests
    /// (printed first); requested directories still need -v
    #[arg(long)]
    pub grant_requested: bool,

    /// A .wasm module or component, .wat text, a `wasmbox compile` output, or an image
    /// (NAME[:TAG] or NAME@sha256:DIGEST; pulled when missing, see --pull)
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Arguments passed to the guest
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn exec(a: RunArgs) -> anyhow::Result<i32> {
    let source = super::resolve_source_pulling(&a.source, a.pull, &a.registry)?;
    let app = source.app();
    let limits = a.limits.limits(app.map(|app| &app.limits))?;
    let mut argv = vec![a.source.display().to_string()];
    match (a.args.is_empty(), app) {
        (true, Some(app)) => argv.extend(app.args.iter().cloned()),
        _ => argv.extend(a.args.iter().cloned()),
    }
    let base_env: Vec<(String, String)> =
        app.map(|app| app.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    let mut caps = a.grants.capabilities(argv, &base_env)?;
    if let Some(app) = app {
        if a.grant_requested {
            let granted = requests::grant(&app.capabilities, &mut caps);
            if !granted.is_empty() {
                eprintln!("granting what the app requests: {}", granted.join(" "));
            }
        }
        let missing = requests::missing(&app.capabilities, &caps);
        if !missing.is_empty() {
            eprintln!("note: the app requests capabilities that were not granted: {}", missing.join(" "));
        }
    }
    let rt = Runtime::new(EngineOptions { fuel: limits.fuel.is_some(), pooling: false })?;
    let cache = super::compile_cache(a.no_cache)?;
    let (compiled, _) = super::compile(&rt, &source.artifact, cache.as_ref(), a.allow_precompiled)?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(tokio.block_on(wasmbox_engine::run(&rt, &compiled, &caps, &limits))?)
}
