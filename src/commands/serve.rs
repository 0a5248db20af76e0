//! `wasmbox serve`: serve a `wasi:http/proxy` component over HTTP, a fresh instance per request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmbox_engine::http::HttpHandler;
use wasmbox_engine::units::{parse_duration, parse_size};
use wasmbox_engine::{Compiled, EngineError, EngineOptions, Runtime};
use wasmbox_http::{ServeOptions, serve};

use crate::flags::{GrantArgs, LimitArgs};

/// The per-request deadline when --timeout is not given (a server must not let one request
/// run forever).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve a wasi:http component over HTTP, with a fresh isolated instance per request
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the first line on stderr names it)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub grants: GrantArgs,

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

    /// A wasi:http/proxy component (.wasm/.wat) or an image
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
}

pub fn exec(a: ServeArgs) -> anyhow::Result<i32> {
    let source = super::resolve_source(&a.source)?;
    let mut limits = a.limits.limits(source.app().map(|app| &app.limits))?;
    limits.timeout = limits.timeout.or(Some(DEFAULT_REQUEST_TIMEOUT));
    let caps = a.grants.capabilities(vec![a.source.display().to_string()], &[])?;
    let rt = Runtime::new(EngineOptions { fuel: limits.fuel.is_some(), pooling: true })?;
    let cache = super::compile_cache(false)?;
    let (compiled, _) = super::compile(&rt, &source.artifact, cache.as_ref(), false)?;
    let Compiled::Component(component) = compiled else {
        return Err(EngineError::NotRunnable(
            "serve needs a wasi:http component; this is a core module (use `wasmbox run`)".into(),
        )
        .into());
    };
    let handler = HttpHandler::new(&rt, &component, caps, limits)?;
    let options = ServeOptions {
        listen: a.listen,
        max_concurrency: a.max_concurrency.max(1),
        queue: a.queue,
        queue_timeout: a.queue_timeout,
        max_body: a.max_body_size,
        max_header_bytes: a.max_header_size as usize,
        header_timeout: a.header_timeout,
        max_connections: a.max_connections.max(1),
        shutdown_timeout: a.shutdown_timeout,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(async {
        // Deadlines are checked on epoch ticks for as long as the server runs.
        let _ticker = rt.start_ticker();
        serve(handler, options, shutdown_signal()).await
    })?;
    Ok(0)
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
