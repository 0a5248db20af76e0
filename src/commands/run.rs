//! `wasmbox run`: run a module or component as a deny-by-default container — in the
//! foreground, or detached (`-d`) under the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use wasmbox_engine::units::parse_size;
use wasmbox_engine::{Capabilities, CompileSource, Compiler, EngineOptions, Limits, Runtime};
use wasmbox_host::{ContainerSpec, DirGrant, NnModelGrant, RestartPolicy};

use crate::flags::{GrantArgs, LimitArgs};
use crate::requests;

const EXIT_CODES: &str = "\
Exit codes:
  N     the guest exited normally with code N
  125   wasmbox itself failed (bad flags, internal error)
  126   the artifact cannot run (not Wasm, invalid, missing import)
  127   the source was not found
  134   the guest trapped (message and Wasm backtrace on stderr)
  137   a limit stopped the guest (memory, timeout, fuel or open handles; named on stderr)
With -d: 0 once the container is stored and started (its id is printed), 1 when the daemon
refuses the request (e.g. the name is in use), 125/126/127 as above.

Nothing is granted by default: no files, no environment, no network, no current directory.
Everything after SOURCE goes to the guest; wasmbox options go before it.
stdin, stdout and stderr are connected (with -d: stdin is empty, output goes to `wasmbox logs`).";

/// Run a WebAssembly module (WASI preview 1) or component (WASI 0.2) as a container
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    #[command(flatten)]
    pub grants: GrantArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub detach: DetachArgs,

    /// Do not read or write the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Allow running a precompiled file from `wasmbox compile` (native code, not validated)
    #[arg(long)]
    pub allow_precompiled: bool,

    /// How guest code runs: `native` (Cranelift machine code for this CPU), `pulley`
    /// (Wasmtime's portable interpreter: slower, runs anywhere), `auto` (native where Cranelift
    /// supports this CPU, else Pulley)
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto, conflicts_with = "detach")]
    pub engine: EngineChoice,

    /// What compiles code that is not in the cache yet: `auto` (large Wasm starts at once on
    /// Winch's baseline code while Cranelift's optimized code is compiled into the cache in the
    /// background, for the next runs), `cranelift` (wait for optimized code), `winch` (baseline
    /// only)
    #[arg(long, default_value = "auto", value_name = "COMPILER", conflicts_with = "detach",
          value_parser = |s: &str| s.parse::<Compiler>())]
    pub compiler: Compiler,

    /// Run deterministically: canonical NaNs, deterministic relaxed SIMD, clocks that start at
    /// 2000-01-01T00:00:00Z and advance 1 ms per read, random data from --seed, stdin read up
    /// front; grants that cannot be deterministic (-v, --net-allow, --timeout) are refused
    #[arg(long, conflicts_with = "detach")]
    pub deterministic: bool,

    /// The seed of a deterministic run's random data
    #[arg(long, value_name = "N", default_value_t = 0, requires = "deterministic")]
    pub seed: u64,

    /// Write a receipt of the deterministic run (input and output digests, exit code, fuel) as JSON
    #[arg(long, value_name = "FILE", requires = "deterministic")]
    pub receipt: Option<PathBuf>,

    /// Run deterministically again and compare with this receipt: exit 0 if it matches, 1
    /// listing each difference
    #[arg(long, value_name = "FILE", conflicts_with = "receipt")]
    pub check_receipt: Option<PathBuf>,

    /// When to pull an image SOURCE from its registry
    #[arg(long, value_enum, default_value_t = super::PullPolicy::Missing)]
    pub pull: super::PullPolicy,

    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,

    /// Grant the environment variables and network destinations the image's app requests
    /// (printed first), and its memory limit where it is above the default; requested
    /// directories still need -v
    #[arg(long)]
    pub grant_requested: bool,

    /// SOURCE (a .wasm module or component, .wat text, a `wasmbox compile` output, or an image:
    /// NAME[:TAG] or NAME@sha256:DIGEST, pulled when missing, see --pull), then the guest's
    /// arguments. Everything after SOURCE belongs to the guest, as with `docker run IMAGE ARGS`:
    /// wasmbox options go before SOURCE.
    #[arg(value_name = "SOURCE [ARGS]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub command: Vec<String>,
}

impl RunArgs {
    /// The SOURCE: the first word after the options.
    pub fn source(&self) -> PathBuf {
        PathBuf::from(&self.command[0])
    }

    /// The guest's arguments: every word after SOURCE, untouched.
    pub fn args(&self) -> &[String] {
        &self.command[1..]
    }
}

/// Flags of a detached container (`-d`); each needs `-d`.
#[derive(Args, Debug)]
pub struct DetachArgs {
    /// Run in the background under the daemon (started if needed) and print the container id
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,

    /// Name the container (letters, digits, `_`, `.`, `-`); default: a generated one
    #[arg(long, value_name = "NAME", requires = "detach")]
    pub name: Option<String>,

    /// Restart policy: no, on-failure[:MAX] or always
    #[arg(long, value_name = "POLICY", default_value = "no", requires = "detach",
          value_parser = |s: &str| s.parse::<RestartPolicy>())]
    pub restart: RestartPolicy,

    /// Remove the container when it ends
    #[arg(long, requires = "detach")]
    pub rm: bool,

    /// Serve a wasi:http/proxy component on ADDR (e.g. 127.0.0.1:8080), a fresh instance per request
    #[arg(short = 'p', long = "publish", value_name = "ADDR", requires = "detach")]
    pub publish: Option<SocketAddr>,

    /// With -p: allow outbound wasi:http requests to HOST[:PORT] (as `serve --http-allow`)
    #[arg(long = "http-allow", value_name = "HOST[:PORT]", requires = "publish",
          value_parser = |s: &str| s.parse::<wasmbox_engine::http::HttpRule>().map(|_| s.to_string()))]
    pub http_allow: Vec<String>,

    /// Rotate the container's log at this size (one older file is kept)
    #[arg(long, value_name = "SIZE", default_value = "10M", value_parser = parse_size, requires = "detach")]
    pub log_max_size: u64,
}

pub fn exec(a: RunArgs) -> anyhow::Result<i32> {
    let source_path = a.source();
    let source = super::resolve_source_pulling(&source_path, a.pull, &a.registry)?;
    let verified = source.admit()?;
    let app = source.app();
    let limits = a.limits.limits(app.map(|app| &app.limits), a.grant_requested)?;
    let mut argv = vec![source_path.display().to_string()];
    match (a.args().is_empty(), app) {
        (true, Some(app)) => argv.extend(app.args.iter().cloned()),
        _ => argv.extend(a.args().iter().cloned()),
    }
    let base_env: Vec<(String, String)> =
        app.map(|app| app.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    let mut caps = a.grants.capabilities(argv, &base_env)?;
    let pulling = crate::nn_grants::Pulling { policy: a.pull, registry: &a.registry };
    caps.nn = crate::nn_grants::resolve(&a.grants, pulling)?;
    crate::nn_grants::add_bundled(&mut caps.nn, source.bundled_models())?;
    caps.deps = super::record_of(&source.artifact)?;
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
    if a.detach.detach {
        return detach(&a, &source, &verified, caps, &limits);
    }
    let deterministic = a.deterministic || a.check_receipt.is_some();
    let mut limits = limits;
    let recorder =
        if deterministic { Some(crate::receipt::Recorder::prepare(&mut caps, &mut limits, a.seed)?) } else { None };
    let target = match a.engine {
        EngineChoice::Pulley => wasmbox_engine::Target::PULLEY,
        EngineChoice::Native if !has_cranelift_backend() => {
            bail!(
                "--engine native: Cranelift has no backend for this CPU ({}); use --engine pulley",
                std::env::consts::ARCH
            )
        }
        // wasmtime itself picks Pulley on CPUs Cranelift does not support.
        EngineChoice::Native | EngineChoice::Auto => wasmbox_engine::Target::Native,
    };
    let rt = Runtime::new(EngineOptions { fuel: limits.fuel.is_some(), target, deterministic, ..Default::default() })?;
    let cache = super::compile_cache(a.no_cache)?;
    // An image's precompiled layer for this CPU, when trusted, saves the compile; if this
    // engine cannot load it (other settings, e.g. --fuel), the Wasm is compiled as usual.
    let precompiled = if a.detach.detach { None } else { source.trusted_precompiled(&verified, a.allow_precompiled) };
    let loaded = precompiled.and_then(|artifact| match super::compile(&rt, &artifact, None, true) {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::debug!("precompiled layer not usable here, compiling the Wasm: {e:#}");
            None
        }
    });
    let (compiled, _) = match loaded {
        Some(done) => done,
        None => {
            let first =
                wasmbox_engine::compile_first(&rt, &source.artifact, cache.as_ref(), a.allow_precompiled, a.compiler)?;
            if first.1 == CompileSource::Baseline && a.compiler == Compiler::Auto {
                super::optimize::spawn(&source.artifact);
            }
            first
        }
    };
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stats = Arc::new(wasmbox_engine::RunStats::default());
    // Deadlines and host-work charges (fuel) are applied on epoch ticks.
    let _ticker = (limits.timeout.is_some() || limits.fuel.is_some()).then(|| rt.start_ticker());
    let result = tokio.block_on(wasmbox_engine::run_observed(&rt, &compiled, &caps, &limits, stats.clone()));
    // A guest stopped at its deadline inside a blocking file operation (reading a FIFO) leaves
    // that thread blocked: exit without waiting for it.
    tokio.shutdown_background();
    let Some(recorder) = recorder else { return Ok(result?) };
    let exit_code = match &result {
        Ok(code) => *code,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.exit_code()
        }
    };
    let receipt = recorder.receipt(&source.artifact, &caps, exit_code, &stats);
    receipt.settle(a.receipt.as_deref(), a.check_receipt.as_deref())
}

/// `run -d`: store the Wasm where the daemon keeps container code, then ask it to start.
fn detach(
    a: &RunArgs,
    source: &super::Source,
    verified: &[wasmbox_trust::Verified],
    caps: Capabilities,
    limits: &Limits,
) -> anyhow::Result<i32> {
    let d = &a.detach;
    if d.rm && d.restart != RestartPolicy::No {
        bail!("--rm and --restart {} conflict: a container that is removed when it ends cannot restart", d.restart);
    }
    let sha256 = stage_for_daemon(source, verified, a.allow_precompiled, limits.fuel.is_some())?;
    let mut dirs = Vec::new();
    for p in &caps.preopens {
        let host = std::fs::canonicalize(&p.host)
            .ok()
            .filter(|h| h.is_dir())
            .with_context(|| format!("--dir {}: not a directory on the host", p.host.display()))?;
        dirs.push(DirGrant { host, guest: p.guest.clone(), read_only: p.read_only });
    }
    let mut nn_models = Vec::new();
    for (name, source) in &a.grants.nn_models {
        let pulling = crate::nn_grants::Pulling { policy: a.pull, registry: &a.registry };
        nn_models.push(NnModelGrant { name: name.clone(), path: crate::nn_grants::model_file(name, source, pulling)? });
    }
    for (name, path) in source.bundled_models() {
        if !nn_models.iter().any(|m| m.name == *name) {
            nn_models.push(NnModelGrant { name: name.clone(), path: path.clone() });
        }
    }
    let spec = ContainerSpec {
        name: d.name.clone(),
        source: a.source().display().to_string(),
        wasm_sha256: sha256,
        args: caps.args.clone(),
        env: caps.env.clone(),
        dirs,
        net_allow: caps.net.rules().iter().map(ToString::to_string).collect(),
        memory_bytes: limits.memory_bytes,
        timeout_ms: limits.timeout.map(|t| t.as_millis() as u64),
        fuel: limits.fuel,
        max_handles: Some(limits.max_handles),
        restart: d.restart,
        auto_remove: d.rm,
        log_max_bytes: d.log_max_size,
        publish: d.publish.map(|p| p.to_string()),
        http_allow: d.http_allow.clone(),
        image: source.origin(),
        nn_models,
        nn_allow_load: caps.nn.allow_load,
        deps: caps.deps.clone(),
    };
    let body = serde_json::to_vec(&spec)?;
    let container: wasmbox_host::Container = super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        anyhow::Ok(client.call("POST", "/v1/containers", Some(body)).await?)
    })??;
    println!("{}", container.id);
    Ok(0)
}

/// Puts a source's Wasm where the daemon keeps container code (`containers/wasm/<sha256>`);
/// returns its sha256. A trusted precompiled layer for this CPU goes into the shared compile
/// cache as that Wasm's compiled form, so the daemon does not compile (and an edge build,
/// which cannot, runs the container). Also the agent's way to the daemon.
pub fn stage_for_daemon(
    source: &super::Source,
    verified: &[wasmbox_trust::Verified],
    allow_precompiled: bool,
    fuel: bool,
) -> anyhow::Result<String> {
    let Some(wasm) = source.artifact.wasm() else {
        bail!("run -d takes Wasm (a module, component, .wat or image), not a precompiled file");
    };
    let sha256 = wasmbox_engine::cache::hex(&super::sha256(wasm));
    let home = crate::home::wasmbox_home()?;
    let path = wasmbox_host::Manager::wasm_path(&home, &sha256);
    if !path.is_file() {
        let dir = path.parent().expect("wasm path has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        wasmbox_engine::fs::write_atomic(&path, wasm).with_context(|| format!("failed to write {}", path.display()))?;
    }
    if let Some(precompiled) = source.trusted_precompiled(verified, allow_precompiled)
        && let Some(cache) = super::compile_cache(false)?
    {
        let rt = Runtime::new(EngineOptions { fuel, ..Default::default() })?;
        if let Err(e) = wasmbox_engine::compile::adopt_precompiled(&rt, &precompiled, wasm, &cache) {
            tracing::debug!("the precompiled layer is not usable by the daemon's engine: {e:#}");
        }
    }
    Ok(sha256)
}

/// `run --engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    Auto,
    Native,
    Pulley,
}

/// The CPUs Cranelift (and so `--engine native`) generates code for.
fn has_cranelift_backend() -> bool {
    matches!(std::env::consts::ARCH, "x86_64" | "aarch64" | "riscv64" | "s390x")
}
