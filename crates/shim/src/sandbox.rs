//! `sandbox`: runs one container's Wasm (runwasi's `Sandbox`), inside the youki container.
//!
//! The guest gets exactly the plan (see `plan`): the spec's bind mounts as directory grants at
//! their destinations (`ro` stays read-only), the spec's env minus the plan entry, no network
//! unless an annotation grants it, and the spec's memory limit as its Wasm memory limit.
//! stdout and stderr are this process's, which runwasi connected to containerd's pipes. A
//! `wasi:http/proxy` component is served instead of run. Failures print one line to the
//! container's stderr and end with wasmbox's exit codes (125 wasmbox failed, 126 cannot run,
//! 127 not found, 134 trap, 137 limit; a trap after the memory limit refused growth is 137 too).

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source};
use futures_util::FutureExt;
use tokio::signal::unix::{SignalKind, signal};
use wasmbox_engine::http::{HttpAllow, HttpHandler, HttpRule};
use wasmbox_engine::limits::Limits;
use wasmbox_engine::{
    Capabilities, Compiled, EngineError, LimitHit, NetPolicy, NetRule, Output, Preopen, Runtime, Stdin, artifact,
};
use wasmbox_http::{LogTarget, Route, Router, ServeOptions};

use crate::plan::{DEFAULT_HTTP_LISTEN, HTTP_ALLOW, HTTP_LISTEN, HTTP_LISTEN_ENV, NET_ALLOW, Plan};

#[derive(Default)]
pub struct WasmboxSandbox;

/// Why a container could not run: one line for its stderr, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    fn config(message: String) -> Failure {
        Failure { code: 125, message, hint: None }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        let out_of_memory =
            matches!(&e, EngineError::Limit(LimitHit::Memory(_)) | EngineError::Trap { memory_hit: true, .. });
        // The CLI's hints name CLI flags; in a pod the knob is the spec.
        let hint = match &e {
            _ if out_of_memory => {
                Some("raise the container's memory limit (resources.limits.memory, ctr --memory-limit)".into())
            }
            EngineError::NotFound { .. } => Some("the image's entrypoint must name a .wasm file in the image".into()),
            EngineError::PrecompiledNotAllowed { .. } => Some(
                "images carry Wasm; the shim precompiles it itself and never runs native code from an image".into(),
            ),
            _ => e.hint(),
        };
        // A guest its memory limit stopped (growth refused, then a trap) ends as a container the
        // kernel's OOM killer ended: 137, which the task service reports to CRI as OOMKilled.
        let code = if out_of_memory { 137 } else { e.exit_code() };
        Failure { code, message: e.to_string(), hint }
    }
}

impl Sandbox for WasmboxSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        let entrypoint = ctx.entrypoint();
        let (plan, env) = Plan::take_from_env(ctx.envs());
        let code = match read_source(&entrypoint.source, &entrypoint.func) {
            Ok((path, bytes, precompiled)) => {
                let job = Job { plan, env, args: ctx.args().to_vec(), path, bytes, precompiled };
                AssertUnwindSafe(job.run()).catch_unwind().await.unwrap_or_else(|_| {
                    Err(Failure::config("the Wasm runner panicked (a wasmbox bug; see the shim log)".into()))
                })
            }
            Err(f) => Err(f),
        };
        Ok(match code {
            Ok(code) => code,
            Err(f) => {
                eprintln!("wasmbox: {}", f.message);
                if let Some(hint) = f.hint {
                    eprintln!("hint: {hint}");
                }
                f.code
            }
        })
    }
}

/// The module's bytes, a name for messages, and whether runwasi says they are precompiled.
fn read_source(source: &Source<'_>, func: &str) -> Result<(PathBuf, Vec<u8>, bool), Failure> {
    if func != "_start" {
        return Err(Failure {
            code: 126,
            message: format!(
                "entrypoint function `{func}`: wasmbox runs a module's _start or a component's wasi:cli/run"
            ),
            hint: Some("drop the `#function` suffix from the entrypoint".into()),
        });
    }
    let path = match source {
        Source::File(p) => p.clone(),
        Source::Oci(_) => PathBuf::from("image layer"),
    };
    let precompiled = source.is_precompiled().map_err(|e| Failure { code: 126, message: e.to_string(), hint: None })?;
    let bytes = source.as_bytes().map_err(|e| Failure {
        code: if matches!(source, Source::File(_)) { 127 } else { 126 },
        message: format!("{}: {e}", path.display()),
        hint: Some("the image's entrypoint must name a .wasm file in the image".into()),
    })?;
    Ok((path, bytes.into_owned(), precompiled))
}

struct Job {
    plan: Result<Plan, String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    path: PathBuf,
    bytes: Vec<u8>,
    precompiled: bool,
}

impl Job {
    /// Runs on runwasi's runtime in the container process (its `block_on` on the main thread,
    /// two worker threads): the guest runs on the main thread, the signal watch on a worker.
    /// No thread or runtime of our own, each of which would cost every pod memory.
    async fn run(self) -> Result<i32, Failure> {
        let plan = self.plan.map_err(Failure::config)?;
        for skipped in &plan.skipped {
            log::info!("mount not granted: {skipped}");
        }
        let artifact = artifact::from_bytes(&self.path, self.bytes)?;
        let rt = crate::runtime_for(&artifact)?;
        // Precompiled code is loaded only when runwasi took it from its own precompile label.
        let (compiled, how) = wasmbox_engine::compile(&rt, &artifact, None, self.precompiled)?;
        log::info!("{} ready ({how:?})", self.path.display());
        let listen = compiled.is_http_proxy().then(|| http_listen(&plan, &self.env)).transpose()?;
        let caps = capabilities(&plan, self.env, self.args)?;
        let memory_bytes = plan.memory_limit.map(wasm_share).unwrap_or(Limits::DEFAULT_MEMORY);
        let limits = Limits { memory_bytes, ..Limits::default() };
        if let Some(listen) = listen {
            // The HTTP server brings its own tokio runtime, which cannot start inside runwasi's.
            return std::thread::spawn(move || serve(&rt, compiled, caps, &plan, limits, listen))
                .join()
                .unwrap_or_else(|_| Err(Failure::config("the HTTP server panicked (a wasmbox bug)".into())));
        }
        end_on_signals()?;
        Ok(wasmbox_engine::run(&rt, &compiled, &caps, &limits).await?)
    }
}

/// What the container's memory limit leaves the guest. The cgroup limit covers the whole
/// container process (the engine, compiled code, buffers) as well; a guest allowed all of it
/// would be killed by the kernel before its own limit ever stopped it, and for an HTTP
/// component one request's allocation bomb would end the whole server. So the guest gets the
/// limit less what the runtime itself needs (`RUNTIME_RESERVE`, at most half the limit).
pub fn wasm_share(limit: u64) -> u64 {
    limit - RUNTIME_RESERVE.min(limit / 2)
}

/// Kept for the container process's own memory besides the guest's (engine, compiled code, host
/// buffers). With 32 MiB, a 64 MiB pod's allocation bomb ends at the Wasm limit (tests/cri.rs).
pub const RUNTIME_RESERVE: u64 = 32 << 20;

fn capabilities(plan: &Plan, env: Vec<(String, String)>, args: Vec<String>) -> Result<Capabilities, Failure> {
    let preopens = plan
        .dirs
        .iter()
        .map(|d| Preopen { host: PathBuf::from(&d.path), guest: d.path.clone(), read_only: d.read_only })
        .collect();
    let rules = parse_rules::<NetRule>(&plan.net_allow, NET_ALLOW)?;
    Ok(Capabilities {
        preopens,
        env,
        args,
        net: NetPolicy::new(rules),
        stdin: Stdin::Inherit,
        output: Output::Inherit,
        deterministic: None,
        // The shim has no inference backend (its engine leaves the `nn` feature out).
        nn: Default::default(),
        // A composed component's dependencies get nothing in a pod (no record is read).
        deps: None,
    })
}

/// The rules of one grant annotation; a bad one names the annotation.
fn parse_rules<T: std::str::FromStr<Err: std::fmt::Display>>(
    rules: &[String],
    annotation: &str,
) -> Result<Vec<T>, Failure> {
    rules
        .iter()
        .map(|r| r.parse::<T>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::config(format!("annotation {annotation}: {e}")))
}

/// The guest is PID 1 of its container, and the kernel drops signals PID 1 has no handler
/// for, so without this `ctr task kill` (SIGTERM) would not stop it. WASI has no signals to pass
/// on: the container ends at once, with the code of a process killed by that signal.
fn end_on_signals() -> Result<(), Failure> {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return Err(Failure::config("cannot install the SIGTERM and SIGINT handlers".into()));
    };
    // A worker thread of runwasi's runtime watches, so a guest busy on the main thread is
    // stopped too.
    tokio::spawn(async move {
        let code = tokio::select! {
            _ = term.recv() => 128 + 15,
            _ = int.recv() => 128 + 2,
        };
        std::process::exit(code);
    });
    Ok(())
}

/// The annotation, else the env var, else every address of the pod network on 8080.
fn http_listen(plan: &Plan, env: &[(String, String)]) -> Result<SocketAddr, Failure> {
    let from_env = env.iter().find(|(k, _)| k == HTTP_LISTEN_ENV).map(|(_, v)| (HTTP_LISTEN_ENV, v.as_str()));
    let (origin, addr) = plan
        .http_listen
        .as_deref()
        .map(|a| (HTTP_LISTEN, a))
        .or(from_env)
        .unwrap_or(("the default", DEFAULT_HTTP_LISTEN));
    addr.parse().map_err(|e| Failure::config(format!("{origin}: `{addr}` is not an ADDRESS:PORT ({e})")))
}

/// Serves a `wasi:http/proxy` component, a fresh instance per request, until the task is killed.
fn serve(
    rt: &Runtime,
    compiled: Compiled,
    caps: Capabilities,
    plan: &Plan,
    limits: Limits,
    listen: SocketAddr,
) -> Result<i32, Failure> {
    let Compiled::Component(component) = compiled else {
        unreachable!("only components are HTTP proxies");
    };
    let rules = parse_rules::<HttpRule>(&plan.http_allow, HTTP_ALLOW)?;
    let live = Arc::new(AtomicUsize::new(0));
    let handler = HttpHandler::new(&component, caps, HttpAllow::new(rules), limits, live.clone())?;
    let router = Router::new(vec![Route { prefix: "/".into(), handler }]);
    let _ticker = rt.start_ticker();
    // Stopping a server is graceful: in-flight requests finish (up to the drain timeout).
    let stop = async {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    wasmbox_http::serve(router, live, ServeOptions::for_app(listen, LogTarget::Stderr), stop)
        .map_err(|e| Failure::config(format!("cannot serve HTTP on {listen}: {e}")))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::wasm_share;

    #[test]
    fn the_guest_gets_the_limit_less_the_runtimes_share() {
        assert_eq!(wasm_share(64 << 20), 32 << 20);
        assert_eq!(wasm_share(1 << 30), (1 << 30) - (32 << 20));
        // Small limits keep half for the guest rather than nothing.
        assert_eq!(wasm_share(16 << 20), 8 << 20);
    }
}
