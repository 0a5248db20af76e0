//! `publish`: a detached container started with `-p ADDR` serves its `wasi:http/proxy`
//! component there through wasmbox-http, a fresh instance per request, until it is stopped.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::watch;
use wasmbox_engine::http::{HttpAllow, HttpHandler, HttpRule};
use wasmbox_engine::{Capabilities, Compiled, EngineError, GuestOutput};
use wasmbox_http::{LogTarget, Route, Router, ServeOptions};

use crate::manager::EndRequest;
use crate::spec::ContainerSpec;

/// Per-request deadline when the container has no --timeout (as `wasmbox serve`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until an end is requested; the access log goes to the container's log.
pub(crate) async fn serve(
    compiled: Compiled,
    spec: ContainerSpec,
    caps: Capabilities,
    log: Arc<dyn GuestOutput>,
    mut end: watch::Receiver<Option<EndRequest>>,
) -> Result<i32, EngineError> {
    let Compiled::Component(component) = compiled else {
        return Err(EngineError::NotRunnable("-p serves wasi:http components; this is a core module".into()));
    };
    let listen = spec
        .publish
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e| EngineError::Internal(anyhow::anyhow!("invalid -p address: {e}")))?;
    let mut limits = spec.limits();
    limits.timeout = limits.timeout.or(Some(REQUEST_TIMEOUT));
    let live = Arc::new(AtomicUsize::new(0));
    let rules = spec.http_allow.iter().filter_map(|r| r.parse::<HttpRule>().ok()).collect();
    let handler = HttpHandler::new(&component, caps, HttpAllow::new(rules), limits, live.clone())?;
    let options = ServeOptions::for_app(listen, LogTarget::Sink(log));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = end.wait_for(Option::is_some).await;
        let _ = stop.send(());
    });
    let router = Router::new(vec![Route { prefix: "/".into(), handler }]);
    let served = tokio::task::spawn_blocking(move || {
        wasmbox_http::serve(router, live, options, async {
            let _ = stopped.await;
        })
    })
    .await
    .map_err(|e| EngineError::Internal(anyhow::anyhow!("the HTTP server failed: {e}")))?;
    served.map_err(|e| EngineError::Internal(anyhow::anyhow!("cannot serve on {listen}: {e}")))?;
    Ok(0)
}
