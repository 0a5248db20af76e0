//! What can go wrong with keys, signatures and policies.

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
    #[error("wrong password for {path} (or the key file is damaged)")]
    WrongPassword { path: String },
    #[error("invalid policy {path}: {reason}")]
    Policy { path: String, reason: String },
    #[error("invalid signature material: {0}")]
    Malformed(String),
}
