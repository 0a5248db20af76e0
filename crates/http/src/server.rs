//! `serve`: accept connections, route and admit requests (concurrency, queue, body cap), hand
//! each to a fresh instance, log it, count it, and shut down gracefully.
//!
//! Slow clients cannot hold the server: headers must arrive within `header_timeout` (hyper's
//! timer), body chunks within `body_idle_timeout`, headers are capped at `max_header_bytes`
//! (431), connections at `max_connections`. A request with both Content-Length and
//! Transfer-Encoding is framed by Transfer-Encoding and its connection closed after the
//! response (hyper, RFC 9112), so nothing can be smuggled behind it. Guests cannot hold the
//! server either: the engine stops each instance at its deadline (504) and contains traps and
//! limit kills (500); the server keeps serving the others.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmbox_engine::http::{BodyLimits, Handled, HttpFailure, InstanceDone, Outcome, ResponseBody, text_response};
use wasmbox_engine::reserve::FdReserve;

use crate::access_log::{Entry, LogFormat, LogTarget, Logger};
use crate::metrics::{Metrics, serve_metrics};
use crate::router::Router;
use crate::tracked::Tracked;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Requests running at once; more wait in the queue.
    pub max_concurrency: usize,
    /// Requests that may wait for a slot; beyond that, 503 at once.
    pub queue: usize,
    /// How long a queued request waits for a slot before 503.
    pub queue_timeout: Duration,
    /// Request body cap (413 when Content-Length says more; cut off while streaming otherwise).
    pub max_body: u64,
    /// Longest pause between request body chunks.
    pub body_idle_timeout: Duration,
    /// Request head cap (431).
    pub max_header_bytes: usize,
    /// Time a client has to send the request head.
    pub header_timeout: Duration,
    /// Open connections; more are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Worker threads, each with its own single-threaded runtime.
    pub workers: usize,
    /// Where the access log and the server's own messages go.
    pub log_to: LogTarget,
}

impl ServeOptions {
    /// The settings for serving one app inside a container (a detached `run -d -p` container,
    /// a containerd task): one worker, 64 requests at once, `wasmbox serve`'s other defaults.
    pub fn for_app(listen: SocketAddr, log_to: LogTarget) -> ServeOptions {
        ServeOptions {
            listen,
            max_concurrency: 64,
            queue: 256,
            queue_timeout: Duration::from_secs(10),
            max_body: 10 << 20,
            body_idle_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            header_timeout: Duration::from_secs(5),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(5),
            log_format: LogFormat::Text,
            metrics: None,
            workers: 1,
            log_to,
        }
    }
}

struct State {
    router: Router,
    options: ServeOptions,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    metrics: Arc<Metrics>,
    log: Logger,
}

/// Descriptors kept back for the listener (see `FdReserve`).
const LISTENER_FD_RESERVE: usize = 32;

/// Serves until `shutdown` resolves, then drains in-flight requests for up to
/// `shutdown_timeout`. Prints `Serving HTTP on http://ADDR/` (the real port) first. `live`
/// is the instance counter the router's handlers share.
///
/// Threads: one single-threaded runtime per worker (`options.workers`). The calling thread
/// accepts connections and hands each to a worker in turn; a connection, its requests and
/// their instances then stay on that worker's thread. On a busy server this beats a
/// work-stealing runtime clearly (no cross-thread wake-ups per request; see
/// docs/benchmarks.md), and a runaway guest still yields after every time slice.
pub fn serve(
    router: Router,
    live: Arc<AtomicUsize>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let main = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut handles = vec![main.handle().clone()];
    let mut workers = Vec::new();
    for i in 1..options.workers.max(1) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        handles.push(runtime.handle().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(format!("wasmbox-worker-{i}")).spawn(move || {
            // Runs the connections spawned onto this runtime until told to stop.
            let _ = runtime.block_on(stopped);
            // A guest stopped at its deadline while blocked in a file operation (a FIFO read)
            // leaves its blocking thread behind: never wait for those.
            runtime.shutdown_background();
        })?;
        workers.push((stop, thread));
    }
    let result = main.block_on(accept_loop(router, live, options, handles, shutdown));
    for (stop, thread) in workers {
        let _ = stop.send(());
        let _ = thread.join();
    }
    main.shutdown_background();
    result
}

async fn accept_loop(
    router: Router,
    live: Arc<AtomicUsize>,
    options: ServeOptions,
    workers: Vec<tokio::runtime::Handle>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(options.listen).await?;
    let say = options.log_to.clone();
    say.line(&format!("Serving HTTP on http://{}/", listener.local_addr()?));
    let metrics = Arc::new(Metrics::new(live));
    if let Some(addr) = options.metrics {
        let metrics_listener = TcpListener::bind(addr).await?;
        say.line(&format!("Metrics on http://{}/metrics", metrics_listener.local_addr()?));
        tokio::spawn(serve_metrics(metrics_listener, metrics.clone()));
    }
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let state = Arc::new(State {
        router,
        slots: Arc::new(Semaphore::new(options.max_concurrency)),
        waiting: AtomicUsize::new(0),
        metrics,
        log: Logger::start(options.log_format, options.log_to.clone()),
        options,
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    // Each instance is held to its handle budget; if all together still use up the process's
    // descriptors, the listener keeps accepting from this reserve.
    let reserve = Arc::new(FdReserve::new(LISTENER_FD_RESERVE));
    for next in (0..workers.len()).cycle() {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if FdReserve::is_exhaustion(&e) && reserve.release() > 0 => {
                    say.line("out of file descriptors; accepting from the reserve");
                    continue;
                }
                // Otherwise back off instead of spinning.
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(stream); // over the connection cap
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Hand the socket to the worker's own reactor.
        let Ok(stream) = stream.into_std() else { continue };
        let state = state.clone();
        let reserve = reserve.clone();
        let watcher = graceful.watcher();
        workers[next].spawn(async move {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
            let (header_timeout, max_header_bytes) = (state.options.header_timeout, state.options.max_header_bytes);
            let service = service_fn(move |req| respond(state.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(max_header_bytes.max(8192))
                .serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(conn).await;
            drop(permit);
            reserve.refill();
        });
    }
    drop(listener);
    let timeout = state.options.shutdown_timeout;
    say.line(&format!("shutting down: finishing in-flight requests (up to {timeout:?})"));
    let drained = async {
        graceful.shutdown().await;
        // Connections are closed; wait for their instances to end and be logged.
        let all = u32::try_from(state.options.max_concurrency).unwrap_or(u32::MAX);
        let _ = state.slots.acquire_many(all).await;
    };
    if tokio::time::timeout(timeout, drained).await.is_err() {
        say.line("shutdown timeout reached; closing the remaining connections");
    }
    state.log.flush();
    Ok(())
}

/// How the instance behind a response ends: already known, still running, or there was none.
enum Pending {
    None,
    Known(Outcome),
    Running(InstanceDone),
}

/// One request: route, admit, run; then, once the body is sent and the instance gone, log and
/// count it. Never fails: every outcome is an HTTP response.
async fn respond(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Tracked<ResponseBody>>, Infallible> {
    let started = Instant::now();
    let (method, path) = (request.method().to_string(), request.uri().path().to_string());
    let (response, pending, slot) = route_and_run(&state, request).await;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let (body, sent) = Tracked::new(body);
    tokio::spawn(async move {
        let bytes = sent.await.unwrap_or(0);
        let duration = started.elapsed();
        let outcome = match pending {
            Pending::None => None,
            Pending::Known(outcome) => Some(outcome),
            Pending::Running(done) => Some(done.outcome().await),
        };
        state.metrics.record(status, duration, outcome.as_ref().map(|o| &o.result));
        let error = outcome.as_ref().and_then(|o| o.result.as_ref().err()).map(|e| first_line(&e.to_string()));
        let entry = Entry {
            method: &method,
            path: &path,
            status,
            duration,
            instance_time: outcome.as_ref().map(|o| o.instance_time),
            bytes,
            error,
        };
        state.log.log(&entry);
        // The slot is held until the instance is gone (it bounds live instances, not heads
        // sent) and its line logged (so shutdown can wait for both).
        drop(slot);
    });
    Ok(Response::from_parts(parts, body))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

async fn route_and_run(
    state: &State,
    request: Request<Incoming>,
) -> (Response<ResponseBody>, Pending, Option<OwnedSemaphorePermit>) {
    let options = &state.options;
    // wasi:http hands the guest an authority; a request without one (HTTP/1.0 with no Host)
    // is the client's mistake, not a server failure.
    if request.uri().authority().is_none() && !request.headers().contains_key(hyper::header::HOST) {
        return (text_response(400, "the request has no Host header\n"), Pending::None, None);
    }
    let Some(route) = state.router.find(request.uri().path()) else {
        return (text_response(404, "no route for this path\n"), Pending::None, None);
    };
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > options.max_body) {
        let text = format!("request body over the {}-byte limit\n", options.max_body);
        return (text_response(413, text), Pending::None, None);
    }
    let slot = match state.slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            // Wait in the bounded queue, or be told to come back later.
            if state.waiting.fetch_add(1, Ordering::SeqCst) >= options.queue {
                state.waiting.fetch_sub(1, Ordering::SeqCst);
                return (text_response(503, "server busy: too many requests in flight\n"), Pending::None, None);
            }
            let waited = tokio::time::timeout(options.queue_timeout, state.slots.clone().acquire_owned()).await;
            state.waiting.fetch_sub(1, Ordering::SeqCst);
            match waited {
                Ok(Ok(slot)) => slot,
                _ => {
                    let text = "server busy: no slot within the queue timeout\n";
                    return (text_response(503, text), Pending::None, None);
                }
            }
        }
    };
    let body = BodyLimits { max_bytes: options.max_body, idle_timeout: options.body_idle_timeout };
    match route.handler.handle(request, body).await {
        Handled::Response(response, done) => (response, Pending::Running(done), Some(slot)),
        Handled::Failed(failure, outcome) => {
            let response = match failure {
                HttpFailure::Timeout => text_response(504, "the request deadline passed; the instance was stopped\n"),
                HttpFailure::Guest(_) => text_response(500, "the component failed to handle the request\n"),
            };
            (response, Pending::Known(outcome), Some(slot))
        }
    }
}
