//! `NnError`: what went wrong, as a kind both WASI-NN ABIs can express, plus the message.

/// The kinds WASI-NN's error codes (components) and errnos (modules) can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's arguments were wrong: tensor shape, type, length, index, handle.
    InvalidArgument,
    /// The model's encoding is not one this backend reads.
    InvalidEncoding,
    /// No model by that name was granted.
    NotFound,
    /// Past a size cap: the model or a tensor does not fit what the container may hold.
    TooLarge,
    /// The backend failed while parsing or computing.
    RuntimeError,
    /// Something the interface allows but this backend does not do (bf16, a GPU target).
    Unsupported,
    /// Not allowed: guest-supplied model bytes without `--nn-allow-load`.
    Denied,
    /// The computation was stopped (the container's deadline passed).
    Cancelled,
}

/// A failure with its kind and a one-line reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NnError {
    pub kind: ErrorKind,
    pub message: String,
}

impl NnError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        NnError { kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        NnError::new(ErrorKind::InvalidArgument, message)
    }
}
