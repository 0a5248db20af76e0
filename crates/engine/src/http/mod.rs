//! `HttpHandler`: a `wasi:http/proxy` component served with a brand-new instance (and Store)
//! per request, so no request can see another's memory, and a trap or runaway loop costs one
//! request. Limits are the container's (`Limits`), grants the container's (`Capabilities`);
//! outbound `wasi:http` requests go only where `HttpAllow` says (see `outbound`).
//!
//! The deadline covers the whole life of the instance, including streaming the response body
//! to a slow client: when it passes, the instance is dropped wherever it is.

mod body;
mod dep_outgoing;
mod outbound;
mod send;

pub use outbound::{HttpAllow, HttpRule};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use wasmtime::Store;
use wasmtime::component::{Component, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::Capabilities;
use crate::error::{EngineError, LimitHit};
use crate::limits::{Limits, MemoryLimiter};
use crate::lookup::{HasNetPolicy, shadow_name_lookup};
use crate::net::NetPolicy;
use crate::run::{Yielding, arm_limits, finish, internal, link_error, meter_host_work, with_deadline};
use crate::wasi::build_ctx;
use body::{BodyIdle, IdleTimeout};
use outbound::OutboundHooks;

pub type ResponseBody = HyperOutgoingBody;

/// Links `component` against WASI 0.2 and `wasi:http`; fails (126) if it is not a proxy.
fn link(component: &Component) -> Result<ProxyPre<HttpHost>, EngineError> {
    let mut linker = wasmtime::component::Linker::<HttpHost>::new(component.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(internal)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(internal)?;
    // Name lookups only for --net-allow's host names, exactly as in `run`.
    shadow_name_lookup(&mut linker).map_err(EngineError::Internal)?;
    #[cfg(feature = "nn")]
    crate::nn::wit::add_to_linker(&mut linker, |h| crate::nn::wit::NnView { state: &mut h.nn, table: &mut h.table })
        .map_err(internal)?;
    crate::deps::link::add_to_linker(&mut linker, component).map_err(internal)?;
    dep_outgoing::add_to_linker(&mut linker, component).map_err(internal)?;
    #[cfg(feature = "nn")]
    crate::nn::wit::add_dep_graphs(&mut linker, component, |h| crate::nn::wit::NnView {
        state: &mut h.nn,
        table: &mut h.table,
    })
    .map_err(internal)?;
    let pre = linker.instantiate_pre(component).map_err(link_error)?;
    ProxyPre::new(pre).map_err(|e| {
        EngineError::NotRunnable(format!(
            "the component does not export `wasi:http/incoming-handler`: it is not an HTTP component ({e})"
        ))
    })
}

/// Why a request got no response from the guest.
#[derive(Debug)]
pub enum HttpFailure {
    /// The deadline passed (504).
    Timeout,
    /// The guest trapped, hit a limit, or answered with an error (500).
    Guest(String),
}

/// How one instance ended, known once it is gone (after its response body, if any).
#[derive(Debug)]
pub struct Outcome {
    /// From the start of instantiation to the end of the instance.
    pub instance_time: Duration,
    /// `Err(Trap)` and `Err(Limit)` are what metrics count; a guest that returned is `Ok`.
    pub result: Result<(), EngineError>,
}

/// The answer to one request.
pub enum Handled {
    /// The guest set a response; its body may still be streaming. `InstanceDone` resolves
    /// when the instance has ended.
    Response(hyper::Response<ResponseBody>, InstanceDone),
    /// The guest ended without a response.
    Failed(HttpFailure, Outcome),
}

/// The end of an instance that is still running after its response head was sent.
pub struct InstanceDone(tokio::task::JoinHandle<Outcome>);

impl InstanceDone {
    pub async fn outcome(self) -> Outcome {
        self.0.await.unwrap_or_else(|e| Outcome {
            instance_time: Duration::ZERO,
            result: Err(EngineError::Internal(anyhow::anyhow!("the request task failed: {e}"))),
        })
    }
}

/// What a request body may do before the guest sees an error.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Bytes at most (the server answers 413 earlier when Content-Length says more).
    pub max_bytes: u64,
    /// Longest pause between body chunks.
    pub idle_timeout: Duration,
}

struct HttpHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    hooks: OutboundHooks,
    net: Arc<NetPolicy>,
    #[cfg(feature = "nn")]
    nn: crate::nn::NnState,
    deps: crate::deps::DepContexts,
}

impl crate::deps::HasDeps for HttpHost {
    fn deps(&mut self) -> (&mut crate::deps::DepContexts, &mut ResourceTable) {
        (&mut self.deps, &mut self.table)
    }
}

impl HasNetPolicy for HttpHost {
    fn net_policy(&self) -> Arc<NetPolicy> {
        self.net.clone()
    }
}

impl WasiView for HttpHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// A component ready to answer requests, each in a fresh instance.
#[derive(Clone)]
pub struct HttpHandler {
    /// The linked component; replaced once when optimized code supersedes the baseline tier
    /// ([`HttpHandler::upgrade`]). Requests already running keep the code they started with.
    pre: Arc<RwLock<ProxyPre<HttpHost>>>,
    caps: Arc<Capabilities>,
    allow: Arc<HttpAllow>,
    /// The sockets policy, shared by every request's instance (its names resolved once).
    net: Arc<NetPolicy>,
    /// The models every request's instance may load (loaded once, shared by all of them).
    #[cfg_attr(not(feature = "nn"), allow(dead_code))]
    nn: Arc<crate::nn::NnGrants>,
    limits: Limits,
    live: Arc<AtomicUsize>,
}

impl HttpHandler {
    /// Links `component` against WASI 0.2 and `wasi:http`; fails (126) if it is not a proxy.
    /// `live` counts the instances alive at any moment (shared by all handlers of a server).
    pub fn new(
        component: &Component,
        caps: Capabilities,
        allow: HttpAllow,
        limits: Limits,
        live: Arc<AtomicUsize>,
    ) -> Result<Self, EngineError> {
        let pre = Arc::new(RwLock::new(link(component)?));
        let net = Arc::new(caps.net.clone());
        let nn = Arc::new(caps.nn.clone());
        let limits = Limits { max_handles: limits.http_handles(), ..limits };
        Ok(HttpHandler { pre, caps: Arc::new(caps), allow: Arc::new(allow), net, nn, limits, live })
    }

    /// Serves the next requests with `component` (the same Wasm, optimized code).
    pub fn upgrade(&self, component: &Component) -> Result<(), EngineError> {
        let pre = link(component)?;
        *self.pre.write().unwrap_or_else(|e| e.into_inner()) = pre;
        Ok(())
    }

    /// Answers one request in a fresh instance. The response head comes back as soon as the
    /// guest sets it; its body streams while the guest keeps running (bounded by the limits).
    /// Generic over the request body so the in-process benchmark (`benches/serve_instance.rs`)
    /// drives the same path without sockets; `serve` passes hyper's `Incoming`.
    pub async fn handle<B>(&self, request: hyper::Request<B>, body: BodyLimits) -> Handled
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let failed = |why: String| {
            Handled::Failed(
                HttpFailure::Guest(why.clone()),
                Outcome { instance_time: started.elapsed(), result: Err(EngineError::Internal(anyhow::anyhow!(why))) },
            )
        };
        let request = request.map(|incoming| {
            http_body_util::Limited::new(IdleTimeout::new(incoming, body.idle_timeout), body.max_bytes as usize)
                .map_err(move |e| body_error(e, body.max_bytes))
        });
        let (wasi, work) = match build_ctx(&self.caps) {
            Ok(mut b) => {
                let work = meter_host_work(&mut b, &self.limits, None);
                (b.build(), work)
            }
            Err(e) => return failed(e.to_string()),
        };
        // Handles and header sizes bound the host memory a request can pin (see Limits).
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(Limits::HTTP_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(self.limits.max_handles);
        let limiter = MemoryLimiter::new(&self.limits);
        let deps = match crate::deps::DepContexts::new(&self.caps, self.caps.deps.as_ref()) {
            Ok(deps) => deps,
            Err(e) => return failed(e.to_string()),
        };
        let host = HttpHost {
            deps,
            wasi,
            http,
            table,
            #[cfg(feature = "nn")]
            nn: crate::nn::NnState::new(self.nn.clone(), limiter.host_memory(), self.limits.max_handles),
            limiter,
            hooks: OutboundHooks { allow: self.allow.clone() },
            net: self.net.clone(),
        };
        let pre = self.pre.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut store = Store::new(pre.engine(), host);
        store.limiter(|h| &mut h.limiter);
        if let Err(e) = arm_limits(&mut store, &self.limits, work, Yielding::AfterIo) {
            return failed(e.to_string());
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = match store.data_mut().http().new_incoming_request(Scheme::Http, request) {
            Ok(r) => r,
            Err(e) => return failed(e.to_string()),
        };
        let out = match store.data_mut().http().new_response_outparam(sender) {
            Ok(o) => o,
            Err(e) => return failed(e.to_string()),
        };
        let limits = self.limits.clone();
        let live = LiveGuard::new(self.live.clone());
        let task = tokio::spawn(async move {
            let _live = live;
            let result = with_deadline(limits.timeout, async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map(|()| 0)
            })
            .await;
            let result = finish(result, store.data().limiter.hit(), &limits).map(|_| ());
            // The Store (and the instance's memory) is dropped here, never reused.
            drop(store);
            Outcome { instance_time: started.elapsed(), result }
        });
        match receiver.await {
            Ok(Ok(response)) => Handled::Response(response, InstanceDone(task)),
            Ok(Err(code)) => {
                let outcome = InstanceDone(task).outcome().await;
                Handled::Failed(HttpFailure::Guest(format!("the guest answered with an error: {code:?}")), outcome)
            }
            // The guest ended (or was stopped) without setting a response: its outcome says why.
            Err(_) => {
                let outcome = InstanceDone(task).outcome().await;
                let failure = match &outcome.result {
                    Err(EngineError::Limit(LimitHit::Timeout(_))) => HttpFailure::Timeout,
                    Err(e) => HttpFailure::Guest(e.to_string()),
                    Ok(()) => HttpFailure::Guest("the guest returned without setting a response".into()),
                };
                Handled::Failed(failure, outcome)
            }
        }
    }
}

/// Counts an instance as live from creation until it is dropped.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        LiveGuard(live)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the guest sees when the request body fails.
fn body_error(e: Box<dyn std::error::Error + Send + Sync>, max_bytes: u64) -> wasmtime_wasi_http::Error {
    if e.is::<http_body_util::LengthLimitError>() {
        return wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_bytes));
    }
    if e.is::<BodyIdle>() {
        return wasmtime_wasi_http::Error::ConnectionReadTimeout;
    }
    match e.downcast::<hyper::Error>() {
        Ok(h) => wasmtime_wasi_http::Error::Hyper(*h),
        Err(_) => wasmtime_wasi_http::Error::ConnectionTerminated,
    }
}

/// A plain-text response in the same body type guest responses have (for 4xx/5xx from the
/// server itself).
pub fn text_response(status: u16, text: impl Into<String>) -> hyper::Response<ResponseBody> {
    let body = http_body_util::Full::new(Bytes::from(text.into())).map_err(|never| match never {}).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    response
}
