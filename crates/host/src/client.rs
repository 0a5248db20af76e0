//! `Client`: the CLI's side of the daemon API — one HTTP/1.1 request per connection over the
//! Unix socket. Before connecting it checks that the socket is ours and private: a socket
//! another user owns, or that others may write to, is refused.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (absent, or left by a stopped daemon).
    #[error("the wasmbox daemon is not running ({0})")]
    NotRunning(String),
    #[error("refusing to use {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("talking to the wasmbox daemon failed: {0}")]
    Transport(String),
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client { socket: socket.to_path_buf() }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The socket must be a socket, owned by us, with no group or other permissions.
    pub fn check_socket(&self) -> Result<(), ClientError> {
        let meta = match std::fs::symlink_metadata(&self.socket) {
            Ok(m) => m,
            Err(e) => return Err(ClientError::NotRunning(format!("{}: {e}", self.socket.display()))),
        };
        let unsafe_ = |why: String| Err(ClientError::Unsafe { path: self.socket.clone(), why });
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return unsafe_("it is not a socket".into());
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return unsafe_(format!("it is owned by uid {}, not by you (uid {me})", meta.uid()));
        }
        if meta.mode() & 0o077 != 0 {
            return unsafe_(format!(
                "its mode {:o} lets other users connect; the daemon makes it 0600",
                meta.mode() & 0o777
            ));
        }
        Ok(())
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        self.check_socket()?;
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                ClientError::NotRunning(format!("{}: {e}", self.socket.display()))
            }
            _ => ClientError::Transport(format!("{}: {e}", self.socket.display())),
        })?;
        let transport = |e: hyper::Error| ClientError::Transport(e.to_string());
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(transport)?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "wasmbox")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let bytes = resp.into_body().collect().await.map_err(transport)?.to_bytes();
        let err = serde_json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| ApiError {
            kind: "internal".into(),
            message: String::from_utf8_lossy(&bytes).into_owned(),
            hint: None,
        });
        Err(ClientError::Api(err))
    }

    /// A request whose answer is JSON.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, body).await?;
        let bytes = resp.into_body().collect().await.map_err(|e| ClientError::Transport(e.to_string()))?.to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Transport(format!("unexpected answer: {e}")))
    }
}
