//! wasmbox-image: Wasm OCI images — the formats wasmbox writes and reads, the `wasmbox.toml`
//! app manifest that travels inside them, and the local store, an OCI Image Layout directory.
//!
//! Not here: running (wasmbox-engine).
//! Main types: [`Store`], [`registry::Registry`], [`App`], [`WasmImage`], [`ImageError`].

pub mod admit;
pub mod app;
pub mod auth;
pub mod compat;
pub mod error;
pub mod layout;
pub mod media;
pub mod pack;
pub mod precompiled;
pub mod reference;
pub mod registry;
pub mod signatures;
pub mod store;
pub mod unpack;

pub use app::App;
pub use error::{ImageError, RegistryFailure};
pub use pack::{pack, pack_model};
pub use store::Store;
pub use unpack::{ModelImage, WasmImage, unpack, unpack_model};

/// Parses a user's image reference (`name`, `name:tag`, `host:5000/ns/name@sha256:…`),
/// normalized the way docker does (`docker.io/library/name:latest`).
pub fn parse_reference(s: &str) -> Result<oci_spec::distribution::Reference, ImageError> {
    reference::parse(s).map_err(|reason| ImageError::BadReference { reference: s.to_string(), reason: reason.into() })
}

/// The short form users type and `images` shows: `docker.io/library/app:1` is `app:1`.
pub fn display_reference(r: &oci_spec::distribution::Reference) -> String {
    let whole = r.whole();
    whole.strip_prefix("docker.io/library/").or_else(|| whole.strip_prefix("docker.io/")).unwrap_or(&whole).to_string()
}
