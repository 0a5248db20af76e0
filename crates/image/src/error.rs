//! `ImageError`: failures of the image store and formats, each naming the path, digest or
//! reference involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference `{reference}`: {reason}")]
    BadReference { reference: String, reason: String },

    #[error("invalid digest `{digest}`: {reason}")]
    BadDigest { digest: String, reason: String },

    #[error("image `{0}` not found in the local store")]
    NotFound(String),

    #[error("blob {digest} is {actual} bytes, expected {expected}")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },

    #[error("blob {digest} exceeds the {cap}-byte limit")]
    TooLarge { digest: String, cap: u64 },

    #[error("blob content does not match its digest {expected} (got sha256:{actual})")]
    DigestMismatch { expected: String, actual: String },

    #[error("blob {0} is missing from the local store")]
    MissingBlob(String),

    #[error("unsupported image: {0}")]
    Unsupported(String),

    #[error("invalid {what}: {reason}")]
    Malformed { what: &'static str, reason: String },

    #[error("invalid app manifest {path}: {reason}")]
    BadApp { path: PathBuf, reason: String },

    /// The trust policy does not accept this image (nothing of it reaches the engine).
    #[error("policy refused {reference} ({digest}): {why} [policy {policy}, scope {scope}]")]
    Refused { reference: String, digest: String, scope: String, policy: String, why: String },

    /// The policy file itself is unusable: everything fails closed until it is fixed.
    #[error("{0}")]
    Policy(String),

    #[error("registry {registry}: {reason}")]
    Registry { registry: String, failure: RegistryFailure, reason: String },

    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { action, path, source }
    }
}

/// What kind of registry failure, for the exit code and hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryFailure {
    Unauthorized,
    NotFound,
    Unreachable,
    /// The registry served bytes that do not match their digest or declared size.
    Integrity,
    Other,
}
