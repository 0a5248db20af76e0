//! `api`: the daemon's HTTP/JSON API on its Unix socket (documented in docs/api.md). Routing
//! and (de)serialisation only; every verb is a `Manager` method.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::error::HostError;
use crate::log_read::{self, Follower, Selection};
use crate::log_time;
use crate::manager::Manager;
use crate::spec::ContainerSpec;

type Body = BoxBody<Bytes, Infallible>;

/// Largest request body the API reads (a container spec).
const MAX_REQUEST: usize = 1 << 20;

/// The answer of `GET /v1/ping`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Ping {
    pub pid: u32,
    pub version: String,
}

pub async fn handle(manager: Arc<Manager>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(route(&manager, req).await.unwrap_or_else(|e| {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json(status, &e.to_api())
    }))
}

async fn route(m: &Arc<Manager>, req: Request<Incoming>) -> Result<Response<Body>, HostError> {
    let path = req.uri().path().to_string();
    let query = Query(req.uri().query().unwrap_or_default().to_string());
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, parts.as_slice()) {
        (&Method::GET, ["v1", "ping"]) => {
            Ok(json(StatusCode::OK, &Ping { pid: std::process::id(), version: env!("CARGO_PKG_VERSION").into() }))
        }
        (&Method::POST, ["v1", "containers"]) => {
            let body = Limited::new(req.into_body(), MAX_REQUEST)
                .collect()
                .await
                .map_err(|e| HostError::BadRequest(format!("cannot read the request body: {e}")))?
                .to_bytes();
            let spec: ContainerSpec = serde_json::from_slice(&body)
                .map_err(|e| HostError::BadRequest(format!("invalid container spec: {e}")))?;
            let m = m.clone();
            // Compiling and the database commit block: keep them off the async workers.
            let c = blocking(move || m.create(spec)).await?;
            Ok(json(StatusCode::CREATED, &c))
        }
        (&Method::GET, ["v1", "containers"]) => Ok(json(StatusCode::OK, &m.list(query.flag("all"))?)),
        (&Method::GET, ["v1", "stats"]) => {
            let list = m.list(query.flag("all"))?;
            Ok(json(StatusCode::OK, &list.iter().map(|c| m.stats(c)).collect::<Vec<_>>()))
        }
        (&Method::GET, ["v1", "containers", name]) => Ok(json(StatusCode::OK, &m.resolve(name)?)),
        (&Method::DELETE, ["v1", "containers", name]) => {
            Ok(json(StatusCode::OK, &m.remove(name, query.flag("force")).await?))
        }
        (&Method::POST, ["v1", "containers", name, "start"]) => {
            let (m, name) = (m.clone(), name.to_string());
            Ok(json(StatusCode::OK, &blocking(move || m.start(&name)).await?))
        }
        (&Method::POST, ["v1", "containers", name, "stop"]) => {
            Ok(json(StatusCode::OK, &m.stop(name, query.seconds("t")?).await?))
        }
        (&Method::POST, ["v1", "containers", name, "kill"]) => Ok(json(StatusCode::OK, &m.kill(name).await?)),
        (&Method::POST, ["v1", "containers", name, "restart"]) => {
            Ok(json(StatusCode::OK, &m.restart(name, query.seconds("t")?).await?))
        }
        (&Method::GET, ["v1", "containers", name, "stats"]) => Ok(json(StatusCode::OK, &m.stats(&m.resolve(name)?))),
        (&Method::GET, ["v1", "containers", name, "logs"]) => logs(m, name, &query),
        (_, ["v1", ..]) => Err(HostError::NotFound(format!("{method} {path} (no such API endpoint)"))),
        _ => Err(HostError::NotFound(format!("{path}: the API is under /v1/"))),
    }
}

/// The selected log records (`since`/`until` in Unix nanoseconds, `tail` lines), then (with
/// `follow`) new ones as they are written, until the container stops running and everything
/// written is sent, or `until` has passed. The body is records, one per line (`log_read`).
fn logs(m: &Arc<Manager>, name: &str, query: &Query) -> Result<Response<Body>, HostError> {
    let c = m.resolve(name)?;
    let dir = m.container_dir(&c.id);
    let bad = |what: &str| HostError::BadRequest(format!("{what} in the logs query"));
    let tail = query.get("tail").filter(|t| *t != "all").map(|t| t.parse::<usize>()).transpose();
    let tail = tail.map_err(|_| bad("--tail takes a number of lines or `all`;"))?;
    let nanos =
        |key: &str| query.get(key).map(|v| v.parse::<i64>().map_err(|_| bad(&format!("bad `{key}`")))).transpose();
    let sel = Selection { since: nanos("since")?, until: nanos("until")?, tail };
    let follower = Follower::at_end(&dir);
    let all = log_read::read_all(&dir).map_err(|e| HostError::Internal(format!("cannot read the log: {e}")))?;
    let mut head = Vec::new();
    for r in log_read::select(all, &sel) {
        r.encode(&mut head);
    }
    if !query.flag("follow") {
        return Ok(Response::new(Full::new(Bytes::from(head)).boxed()));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let m = m.clone();
    let id = c.id.clone();
    tokio::spawn(async move {
        let mut follower = follower;
        if tx.send(Bytes::from(head)).await.is_err() {
            return;
        }
        loop {
            let running = m.resolve(&id).map(|c| c.status.can_stop()).unwrap_or(false);
            let Ok(records) = follower.poll(&dir) else { return };
            let mut bytes = Vec::new();
            for r in records.iter().filter(|r| sel.admits(r.time)) {
                r.encode(&mut bytes);
            }
            if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
                return;
            }
            let past_until = sel.until.is_some_and(|u| log_time::now() > u);
            if past_until || (!running && follower.caught_up(&dir)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Ok(Response::new(ChannelBody(rx).boxed()))
}

/// A response body fed by a channel; it ends when the sender is dropped.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HostError> + Send + 'static,
) -> Result<T, HostError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| HostError::Internal(format!("request failed: {e}")))?
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    resp
}

struct Query(String);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn seconds(&self, key: &str) -> Result<Duration, HostError> {
        match self.get(key) {
            None => Ok(Duration::from_secs(10)),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| HostError::BadRequest(format!("`{key}` takes whole seconds, not `{v}`"))),
        }
    }
}
