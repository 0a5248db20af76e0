//! `HostError`: why a container request failed, with the HTTP status and CLI exit code it maps to.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container name or id prefix `{0}` is ambiguous: {1}")]
    Ambiguous(String, String),
    /// The request is not legal in the container's current state (or the name is taken).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// The container's code cannot be loaded or compiled.
    #[error("{0}")]
    NotRunnable(String, Option<String>),
    #[error("state database: {0}")]
    Db(String),
    #[error("{0}")]
    Internal(String),
}

impl From<wasmbox_engine::EngineError> for HostError {
    fn from(e: wasmbox_engine::EngineError) -> Self {
        HostError::NotRunnable(format!("{e:#}"), e.hint())
    }
}

impl From<rusqlite::Error> for HostError {
    fn from(e: rusqlite::Error) -> Self {
        HostError::Db(e.to_string())
    }
}

/// The JSON body of every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// `not_found`, `ambiguous`, `conflict`, `bad_request`, `not_runnable`, `db`, `internal`.
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl HostError {
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::NotFound(_) => "not_found",
            HostError::Ambiguous(..) => "ambiguous",
            HostError::Conflict(_) => "conflict",
            HostError::BadRequest(_) => "bad_request",
            HostError::NotRunnable(..) => "not_runnable",
            HostError::Db(_) => "db",
            HostError::Internal(_) => "internal",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            HostError::NotFound(_) => 404,
            HostError::Ambiguous(..) | HostError::BadRequest(_) => 400,
            HostError::Conflict(_) => 409,
            HostError::NotRunnable(..) => 422,
            HostError::Db(_) | HostError::Internal(_) => 500,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            HostError::NotFound(_) => Some("list containers with `wasmbox ps -a`".into()),
            HostError::Ambiguous(..) => Some("give more characters of the id, or the name".into()),
            HostError::NotRunnable(_, hint) => hint.clone(),
            HostError::Db(m) if m.contains("full") || m.contains("I/O") => {
                Some("nothing was changed; check free space and the file system under $WASMBOX_HOME, then retry".into())
            }
            _ => None,
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError { kind: self.kind().into(), message: self.to_string(), hint: self.hint() }
    }
}

impl ApiError {
    /// Exit code of a CLI command that got this answer: 1 for a refused request (docker's code
    /// for "no such container" or "conflict"), 126/127 as for `run`, 125 for our failures.
    pub fn exit_code(&self) -> i32 {
        match self.kind.as_str() {
            "not_found" | "ambiguous" | "conflict" | "bad_request" => 1,
            "not_runnable" => 126,
            _ => 125,
        }
    }
}
