//! `HttpHandler`: a `wasi:http/proxy` component served with a brand-new instance (and Store)
//! per request, so no request can see another's memory, and a trap or runaway loop costs one
//! request. Limits are the container's (`Limits`), grants the container's (`Capabilities`);
//! outbound `wasi:http` requests are denied.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Bytes;
use wasmtime::Store;
use wasmtime::component::{Component, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::capabilities::Capabilities;
use crate::engine::Runtime;
use crate::error::{EngineError, LimitHit};
use crate::limits::{Limits, MemoryLimiter};
use crate::run::{arm_limits, finish, internal, link_error};
use crate::wasi::build_ctx;

pub type ResponseBody = HyperOutgoingBody;

/// Why a request got no response from the guest.
#[derive(Debug)]
pub enum HttpFailure {
    /// The deadline passed (504).
    Timeout,
    /// The guest trapped, hit a limit, or answered with an error (500).
    Guest(String),
}

struct HttpHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    hooks: DenyOutbound,
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

/// Outbound HTTP is not granted (an allow-list comes with `--http-allow`).
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    hyper::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// A component ready to answer requests, each in a fresh instance.
#[derive(Clone)]
pub struct HttpHandler {
    rt: Runtime,
    pre: ProxyPre<HttpHost>,
    caps: Arc<Capabilities>,
    limits: Limits,
}

impl HttpHandler {
    /// Links `component` against WASI 0.2 and `wasi:http`; fails (126) if it is not a proxy.
    pub fn new(rt: &Runtime, component: &Component, caps: Capabilities, limits: Limits) -> Result<Self, EngineError> {
        let mut linker = wasmtime::component::Linker::<HttpHost>::new(rt.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(internal)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(internal)?;
        let pre = linker.instantiate_pre(component).map_err(link_error)?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            EngineError::NotRunnable(format!(
                "the component does not export `wasi:http/incoming-handler`: it is not an HTTP component ({e})"
            ))
        })?;
        Ok(HttpHandler { rt: rt.clone(), pre, caps: Arc::new(caps), limits })
    }

    /// Answers one request in a fresh instance. The response head comes back as soon as the
    /// guest sets it; its body streams while the guest keeps running (bounded by the limits).
    /// The request body is cut off at `max_body` bytes (the guest sees a body-size error).
    pub async fn handle(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        max_body: u64,
    ) -> Result<hyper::Response<ResponseBody>, HttpFailure> {
        let request = request.map(|body| {
            http_body_util::Limited::new(body, max_body as usize).map_err(move |e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body))
                } else {
                    match e.downcast::<hyper::Error>() {
                        Ok(h) => wasmtime_wasi_http::Error::Hyper(*h),
                        Err(_) => wasmtime_wasi_http::Error::ConnectionTerminated,
                    }
                }
            })
        });
        let wasi = build_ctx(&self.caps).map_err(|e| HttpFailure::Guest(e.to_string()))?.build();
        let host = HttpHost {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(&self.limits),
            hooks: DenyOutbound,
        };
        let mut store = Store::new(self.rt.engine(), host);
        store.limiter(|h| &mut h.limiter);
        arm_limits(&mut store, &self.limits).map_err(|e| HttpFailure::Guest(e.to_string()))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, request).map_err(guest)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(guest)?;
        let pre = self.pre.clone();
        let limits = self.limits.clone();
        let task = tokio::spawn(async move {
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            }
            .await;
            // The Store (and the instance's memory) is dropped here, never reused.
            finish(Some(result.map(|()| 0)), store.data().limiter.hit, &limits)
        });
        let deadline = self.limits.timeout.unwrap_or(std::time::Duration::from_secs(u32::MAX as u64));
        match tokio::time::timeout(deadline, receiver).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => Err(HttpFailure::Guest(format!("the guest answered with an error: {code:?}"))),
            // The guest ended without setting a response: its outcome says why.
            Ok(Err(_)) => match task.await {
                Ok(Err(EngineError::Limit(LimitHit::Timeout(_)))) => Err(HttpFailure::Timeout),
                Ok(Err(e)) => Err(HttpFailure::Guest(e.to_string())),
                Ok(Ok(_)) => Err(HttpFailure::Guest("the guest returned without setting a response".into())),
                Err(e) => Err(HttpFailure::Guest(format!("the request task failed: {e}"))),
            },
            Err(_) => {
                task.abort();
                Err(HttpFailure::Timeout)
            }
        }
    }
}

/// A plain-text response in the same body type guest responses have (for 4xx/5xx from the
/// server itself).
pub fn text_response(status: u16, text: impl Into<String>) -> hyper::Response<ResponseBody> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(Bytes::from(text.into())).map_err(|never| match never {}).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    response
}

fn guest(e: wasmtime::Error) -> HttpFailure {
    HttpFailure::Guest(e.to_string())
}
