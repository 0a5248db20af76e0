//! `wasmbox serve`: serve `wasi:http/proxy` components over HTTP, a fresh instance per request.
//! SOURCE is one component (file or image), or a directory whose `wasmbox.toml` maps
//! `[[route]]` path prefixes to components, each with its own grants and limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use wasmbox_engine::http::{HttpAllow, HttpHandler, HttpRule};
use wasmbox_engine::units::{parse_duration, parse_size};
use wasmbox_engine::{
    Artifact, Capabilities, CompileCache, CompileSource, Compiled, Compiler, EngineError, EngineOptions, Limits,
    Preopen, Runtime, Stdin,
};
use wasmbox_http::{LogFormat, Route, Router, ServeOptions, serve};
use wasmbox_image::App;
use wasmbox_image::app::{AppLimits, AppRoute};

use crate::flags::{GrantArgs, LimitArgs};
use crate::requests;

/// The per-request deadline when neither --timeout nor the app gives one (a server must not
/// let one request run forever).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve wasi:http components over HTTP, with a fresh isolated instance per request
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the first line on stderr names it)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub grants: GrantArgs,

    /// Allow outbound wasi:http requests to HOST[:PORT] (port: the scheme's default, or `*`);
    /// loopback, link-local and metadata addresses only when listed as addresses
    #[arg(long = "http-allow", value_name = "HOST[:PORT]", value_parser = |s: &str| s.parse::<HttpRule>())]
    pub http_allow: Vec<HttpRule>,

    /// Per-request limits; --timeout defaults to 30s here
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Requests handled at once; more wait in the queue
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_concurrency: usize,

    /// Requests that may wait for a slot; beyond that they get 503 at once
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub queue: usize,

    /// How long a queued request waits before 503
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub queue_timeout: Duration,

    /// Request body limit (413 above it)
    #[arg(long, default_value = "10M", value_parser = parse_size, value_name = "SIZE")]
    pub max_body_size: u64,

    /// Longest pause between request body chunks before the body fails
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub body_timeout: Duration,

    /// Request head limit (431 above it)
    #[arg(long, default_value = "64K", value_parser = parse_size, value_name = "SIZE")]
    pub max_header_size: u64,

    /// Time a client has to send its request head (slow clients are closed)
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_timeout: Duration,

    /// Open connections at most; more are closed at once
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,

    /// After SIGINT/SIGTERM, how long in-flight requests may finish (a second signal exits at once)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,

    /// Access log format on stderr: text or json
    #[arg(long, default_value = "text", value_name = "FORMAT", value_parser = |s: &str| s.parse::<LogFormat>())]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics on ADDR at /metrics (port 0 picks a free one)
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// Memory each instance slot keeps resident between requests, reset by copying (0: give it
    /// all back to the kernel after every request). Kept pages cost no page faults or TLB
    /// shootdowns on the next request; the price is up to SIZE of RSS per instance that ran
    /// at once (at most --max-concurrency of them)
    #[arg(long, default_value = "16M", value_parser = parse_size, value_name = "SIZE")]
    pub keep_resident: u64,

    /// What compiles code that is not in the cache yet: `auto` (large components start at once
    /// on Winch's baseline code; Cranelift's optimized code replaces it for later requests when
    /// ready), `cranelift` (wait for optimized code before listening), `winch` (baseline only)
    #[arg(long, default_value = "auto", value_name = "COMPILER", value_parser = |s: &str| s.parse::<Compiler>())]
    pub compiler: Compiler,

    /// Worker threads; each connection and its requests stay on one [default: one per CPU]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// A wasi:http/proxy component (.wasm/.wat), an image, or a directory with a wasmbox.toml
    /// that has [[route]] tables
    ///
    /// Nothing may follow SOURCE: an HTTP component takes no arguments, and options after it
    /// are refused rather than read as grants (`serve app.wasm -v /` must not grant /).
    #[arg(value_name = "SOURCE", required = true, num_args = 1.., trailing_var_arg = true)]
    pub command: Vec<String>,

    /// SOURCE, once `exec` has checked that nothing follows it.
    #[arg(skip)]
    pub source: PathBuf,
}

/// One component to serve under a path prefix, with everything needed to build its handler.
struct Planned {
    prefix: String,
    label: String,
    source: super::Source,
    caps: Capabilities,
    allow: HttpAllow,
    limits: Limits,
}

pub fn exec(mut a: ServeArgs) -> anyhow::Result<i32> {
    if let [source, first, ..] = a.command.as_slice() {
        anyhow::bail!(
            "unexpected `{first}` after SOURCE {source}: options go before SOURCE (wasmbox serve [OPTIONS] SOURCE)"
        );
    }
    a.source = PathBuf::from(&a.command[0]);
    let routed = a.source.is_dir() && a.source.join(wasmbox_image::app::FILE_NAME).is_file();
    let planned = if routed { plan_dir(&a)? } else { vec![plan_single(&a, &a.source, None)?] };
    let fuel = planned.iter().any(|p| p.limits.fuel.is_some());
    let rt = Runtime::new(EngineOptions { fuel, pooling: true, keep_resident: a.keep_resident, ..Default::default() })?;
    let cache = super::compile_cache(false)?;
    let live = Arc::new(AtomicUsize::new(0));
    let mut routes = Vec::new();
    for mut p in planned {
        let (compiled, how) =
            wasmbox_engine::compile_first(&rt, &p.source.artifact, cache.as_ref(), false, a.compiler)?;
        let Compiled::Component(component) = compiled else {
            return Err(EngineError::NotRunnable(format!(
                "{}: serve needs a wasi:http component; this is a core module (use `wasmbox run`)",
                p.label
            ))
            .into());
        };
        // A fuel-metered engine needs every store to have fuel; routes without a budget get all.
        if fuel && p.limits.fuel.is_none() {
            p.limits.fuel = Some(u64::MAX);
        }
        let handler = HttpHandler::new(&component, p.caps, p.allow, p.limits, live.clone())?;
        if how == CompileSource::Baseline && a.compiler == Compiler::Auto {
            optimize_later(&rt, p.source.artifact, cache.clone(), handler.clone(), p.label);
        }
        routes.push(Route { prefix: p.prefix, handler });
    }
    let options = ServeOptions {
        listen: a.listen,
        max_concurrency: a.max_concurrency.max(1),
        queue: a.queue,
        queue_timeout: a.queue_timeout,
        max_body: a.max_body_size,
        body_idle_timeout: a.body_timeout,
        max_header_bytes: a.max_header_size as usize,
        header_timeout: a.header_timeout,
        max_connections: a.max_connections.max(1),
        shutdown_timeout: a.shutdown_timeout,
        log_format: a.log_format,
        metrics: a.metrics,
        workers: a.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1),
        log_to: wasmbox_http::LogTarget::Stderr,
    };
    // Deadlines are checked on epoch ticks for as long as the server runs.
    let _ticker = rt.start_ticker();
    serve(Router::new(routes), live, options, shutdown_signal())?;
    Ok(0)
}

/// Compiles optimized code for a route that started on the baseline tier, on a thread of its
/// own, and hands it to `handler`: requests that start after that run Cranelift's code.
fn optimize_later(rt: &Runtime, artifact: Artifact, cache: Option<CompileCache>, handler: HttpHandler, label: String) {
    let rt = rt.clone();
    let spawned = std::thread::Builder::new().name("wasmbox-optimize".into()).spawn(move || {
        let upgraded = wasmbox_engine::optimize(&rt, &artifact, cache.as_ref()).and_then(|compiled| match compiled {
            Compiled::Component(component) => handler.upgrade(&component),
            Compiled::Module(_) => unreachable!("the same Wasm compiles to the same kind"),
        });
        match upgraded {
            Ok(()) => tracing::info!(route = %label, "serving optimized code"),
            Err(e) => tracing::warn!(route = %label, "optimized compile failed; staying on the baseline tier: {e:#}"),
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the optimizing compile: {e}");
    }
}

/// One component (a file or an image) served at `/`: the flags over the app's defaults (an
/// image's, or `dir_app` for a directory without routes).
fn plan_single(a: &ServeArgs, path: &Path, dir_app: Option<&App>) -> anyhow::Result<Planned> {
    let source = super::resolve_source(path)?;
    source.admit()?;
    let app = dir_app.or(source.app()).cloned();
    // A local wasmbox.toml is the user's own configuration; an image's may only lower limits.
    let mut limits = a.limits.limits(app.as_ref().map(|app| &app.limits), dir_app.is_some())?;
    limits.timeout = limits.timeout.or(Some(DEFAULT_REQUEST_TIMEOUT));
    let base_env: Vec<(String, String)> = app.as_ref().map(app_env).unwrap_or_default();
    let label = path.display().to_string();
    let mut caps = a.grants.capabilities(vec![label.clone()], &base_env)?;
    caps.stdin = Stdin::Null;
    caps.deps = super::record_of(&source.artifact)?;
    caps.nn = crate::nn_grants::resolve(&a.grants, crate::nn_grants::Pulling::never())?;
    let bundled: Vec<(String, PathBuf)> = match dir_app {
        // A local wasmbox.toml's models are files beside it.
        Some(app) => app.nn.models.iter().map(|(name, file)| (name.clone(), a.source.join(file))).collect(),
        None => source.bundled_models().to_vec(),
    };
    crate::nn_grants::add_bundled(&mut caps.nn, &bundled)?;
    if let Some(app) = &app {
        let mut missing = requests::missing(&app.capabilities, &caps);
        for spec in &app.capabilities.http {
            if !spec.parse::<HttpRule>().is_ok_and(|rule| a.http_allow.contains(&rule)) {
                missing.push(format!("--http-allow {spec}"));
            }
        }
        if !missing.is_empty() {
            eprintln!("note: the app requests capabilities that were not granted: {}", missing.join(" "));
        }
    }
    Ok(Planned { prefix: "/".into(), label, source, caps, allow: HttpAllow::new(a.http_allow.clone()), limits })
}

/// SOURCE is a directory with a `wasmbox.toml`: its `[[route]]` tables, or its one `wasm`.
fn plan_dir(a: &ServeArgs) -> anyhow::Result<Vec<Planned>> {
    let dir = &a.source;
    let app = App::load(dir)?;
    if app.routes.is_empty() {
        // With [dependencies], the directory itself: its component composed with them.
        let path = if app.dependencies.is_empty() { dir.join(&app.wasm) } else { dir.clone() };
        return Ok(vec![plan_single(a, &path, Some(&app))?]);
    }
    app.routes.iter().map(|route| plan_route(a, dir, &app, route)).collect()
}

/// A route gets the flags' grants plus its own, and its own limits under the flags
/// (flags > route > app `[limits]` > defaults).
fn plan_route(a: &ServeArgs, dir: &Path, app: &App, route: &AppRoute) -> anyhow::Result<Planned> {
    let merged = AppLimits {
        memory: route.limits.memory.clone().or(app.limits.memory.clone()),
        timeout: route.limits.timeout.clone().or(app.limits.timeout.clone()),
        fuel: route.limits.fuel.or(app.limits.fuel),
    };
    let mut limits = a.limits.limits(Some(&merged), true)?;
    limits.timeout = limits.timeout.or(Some(DEFAULT_REQUEST_TIMEOUT));
    let mut env = app_env(app);
    env.extend(route.grants.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut caps = a.grants.capabilities(vec![route.wasm.clone()], &env)?;
    caps.stdin = Stdin::Null;
    let mut nn = a.grants.clone();
    for (name, model) in &route.grants.nn {
        // The flags' grant of a name wins over the route's.
        if !nn.nn_models.iter().any(|(n, _)| n == name) {
            // A file beside wasmbox.toml, or else a model image in the store.
            let beside = dir.join(model);
            let source = if beside.exists() { beside.display().to_string() } else { model.clone() };
            nn.nn_models.push((name.clone(), source));
        }
    }
    caps.nn = crate::nn_grants::resolve(&nn, crate::nn_grants::Pulling::never())
        .with_context(|| format!("route {}", route.path))?;
    for spec in &route.grants.dirs {
        let mut preopen = Preopen::parse(spec).map_err(anyhow::Error::msg)?;
        if preopen.host.is_relative() {
            preopen.host = dir.join(&preopen.host);
        }
        caps.preopens.push(preopen);
    }
    let mut rules = a.http_allow.clone();
    for spec in &route.grants.http {
        rules.push(spec.parse::<HttpRule>().map_err(anyhow::Error::msg)?);
    }
    // A file next to wasmbox.toml, or else an image reference.
    let in_dir = dir.join(&route.wasm);
    let is_file = in_dir.exists() || [".wasm", ".wat", ".cwasm"].iter().any(|ext| route.wasm.ends_with(ext));
    let path = if is_file { in_dir } else { PathBuf::from(&route.wasm) };
    let source = super::resolve_source(&path).with_context(|| format!("route {}", route.path))?;
    source.admit().with_context(|| format!("route {}", route.path))?;
    caps.deps = super::record_of(&source.artifact)?;
    let label = format!("route {} ({})", route.path, route.wasm);
    Ok(Planned { prefix: route.path.clone(), label, source, caps, allow: HttpAllow::new(rules), limits })
}

fn app_env(app: &App) -> Vec<(String, String)> {
    app.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}
