//! wasmbox-trust: signatures and the trust policy, byte-compatible with cosign. Keys in
//! cosign's encrypted format (`keys`), simple-signing payloads (`payload`), sigstore bundles
//! with DSSE envelopes (`bundle`), the evidence an image carries and its check against keys
//! (`evidence`), and a subset of containers-policy.json (`policy`). No I/O beyond reading
//! key files named by a policy; no wasmtime.

pub mod bundle;
pub mod error;
pub mod evidence;
pub mod keys;
pub mod payload;
pub mod policy;

pub use error::TrustError;
pub use evidence::{Evidence, Verified};
pub use keys::PublicKey;
pub use policy::{Decision, Policy};
