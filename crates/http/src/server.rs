//! `serve`: accept connections, admit requests (concurrency, queue, body cap), hand each to a
//! fresh instance, log it, and shut down gracefully.
//!
//! Slow clients cannot hold the server: headers must arrive within `header_timeout` (hyper's
//! timer), headers are capped at `max_header_bytes` (431), connections at `max_connections`.
//! A request with both Content-Length and Transfer-Encoding is framed by Transfer-Encoding and
//! its connection closed after the response (hyper, RFC 9112), so nothing can be smuggled
//! behind it. Guests cannot hold the server either: the engine stops each request at its deadline (504) and contains
//! traps and limit kills (500); the server keeps serving the others.

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
use tokio::sync::Semaphore;
use wasmbox_engine::http::{HttpFailure, HttpHandler, ResponseBody, text_response};

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
    /// Request head cap (431).
    pub max_header_bytes: usize,
    /// Time a client has to send the request head.
    pub header_timeout: Duration,
    /// Open connections; more are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may finish after a shutdown signal.
    pub shutdown_timeout: Duration,
}

struct State {
    handler: HttpHandler,
    options: ServeOptions,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Serves until `shutdown` resolves, then drains in-flight requests for up to
/// `shutdown_timeout`. Prints `Serving HTTP on http://ADDR/` (the real port) first.
pub async fn serve(
    handler: HttpHandler,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(options.listen).await?;
    eprintln!("Serving HTTP on http://{}/", listener.local_addr()?);
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let state = Arc::new(State {
        handler,
        slots: Arc::new(Semaphore::new(options.max_concurrency)),
        waiting: AtomicUsize::new(0),
        options,
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(stream); // over the connection cap
            continue;
        };
        let (header_timeout, max_header_bytes) = (state.options.header_timeout, state.options.max_header_bytes);
        let state = state.clone();
        let service = service_fn(move |req| respond(state.clone(), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(max_header_bytes.max(8192))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let timeout = state.options.shutdown_timeout;
    eprintln!("shutting down: finishing in-flight requests (up to {timeout:?})");
    if tokio::time::timeout(timeout, graceful.shutdown()).await.is_err() {
        eprintln!("shutdown timeout reached; closing the remaining connections");
    }
    Ok(())
}

/// One request: admit, run, log. Never fails: every outcome is an HTTP response.
async fn respond(state: Arc<State>, request: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = admit_and_run(&state, request).await;
    eprintln!("{method} {path} {} {:.1}ms", response.status().as_u16(), started.elapsed().as_secs_f64() * 1e3);
    Ok(response)
}

async fn admit_and_run(state: &State, request: Request<Incoming>) -> Response<ResponseBody> {
    let options = &state.options;

    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > options.max_body) {
        return text_response(413, format!("request body over the {}-byte limit\n", options.max_body));
    }
    let _slot = match state.slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            // Wait in the bounded queue, or be told to come back later.
            if state.waiting.fetch_add(1, Ordering::SeqCst) >= options.queue {
                state.waiting.fetch_sub(1, Ordering::SeqCst);
                return text_response(503, "server busy: too many requests in flight\n");
            }
            let waited = tokio::time::timeout(options.queue_timeout, state.slots.clone().acquire_owned()).await;
            state.waiting.fetch_sub(1, Ordering::SeqCst);
            match waited {
                Ok(Ok(slot)) => slot,
                _ => return text_response(503, "server busy: no slot within the queue timeout\n"),
            }
        }
    };
    match state.handler.handle(request, options.max_body).await {
        Ok(response) => response,
        Err(HttpFailure::Timeout) => text_response(504, "the request deadline passed; the instance was stopped\n"),
        Err(HttpFailure::Guest(why)) => {
            eprintln!("guest failed: {why}");
            text_response(500, "the component failed to handle the request\n")
        }
    }
}
