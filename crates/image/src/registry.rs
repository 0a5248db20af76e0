//! `Registry`: push and pull images with any OCI registry. oci-client speaks the distribution
//! protocol (auth challenges, tokens, uploads); every byte it hands us is checked here before
//! it reaches the store: manifest size cap and digest, allow-listed media types, no ambiguous
//! documents, blobs streamed through [`BlobWriter`](crate::store::BlobWriter) (size and
//! sha256 checked, cut off at the declared size).
//!
//! Plain HTTP is used for loopback registries (`localhost`, `127.0.0.0/8`, `::1`), as docker
//! does, and for others only with `insecure`.

use std::net::IpAddr;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Arch, Descriptor, ImageIndex};
use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, RegistryFailure};
use crate::media;
use crate::store::{Store, descriptor_digest, full, hex, manifest_descriptor, parse_digest};
use crate::unpack::{check_runnable, parse_manifest};

/// A registry that stops sending (or never answers) fails after this much silence, so a
/// stalled pull, or a stalled signature lookup, is an error and never a hang.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const ACCEPT: [&str; 4] = [media::MANIFEST, media::INDEX, media::DOCKER_MANIFEST, media::DOCKER_INDEX];

/// What push and pull report while they work (the CLI draws bars on a TTY, lines otherwise).
pub trait Progress {
    /// A blob of `size` bytes starts moving.
    fn start(&self, digest: &str, size: u64);
    /// `bytes` more of the current blob moved.
    fn advance(&self, bytes: u64);
    /// The blob is done; `what` says how ("downloaded", "uploaded", "already present", ...).
    fn done(&self, digest: &str, size: u64, what: &str);
}

/// A manifest fetched and checked, not yet pulled: `digest` is what signatures must name.
pub struct Resolved {
    pub bytes: Vec<u8>,
    pub digest: String,
    /// Where its blobs come from (the index entry's digest reference, or the reference itself).
    source: Reference,
}

pub struct Registry {
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    pub(crate) registry: String,
    /// Plain HTTP (loopback or --insecure).
    pub(crate) plain: bool,
    /// The largest blob a pull accepts (`--max-blob-size`).
    max_blob: u64,
}

/// Is `registry` (`host[:port]`) on this machine?
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Registry {
    /// A client for the registry of `reference`.
    pub fn new(reference: &Reference, insecure: bool, credentials: Option<(String, String)>) -> Registry {
        // reqwest is built without a default TLS provider (no C toolchain needed); pick ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.resolve_registry().to_string();
        let plain = insecure || is_loopback(&registry);
        let protocol = if plain { ClientProtocol::HttpsExcept(vec![registry.clone()]) } else { ClientProtocol::Https };
        let client = Client::new(ClientConfig {
            protocol,
            read_timeout: Some(IDLE_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
            ..Default::default()
        });
        let auth = match credentials {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        Registry { client, auth, registry, plain, max_blob: media::DEFAULT_MAX_BLOB }
    }

    /// Refuses blobs larger than `bytes` when pulling (default [`media::DEFAULT_MAX_BLOB`]).
    pub fn with_max_blob(mut self, bytes: u64) -> Registry {
        self.max_blob = bytes;
        self
    }

    /// Checks the credentials against the registry (an authenticated catalog request).
    pub async fn check_login(&self, reference: &Reference) -> Result<(), ImageError> {
        self.client.catalog(reference, &self.auth, Some(1), None).await.map(|_| ()).map_err(|e| self.failure(e))
    }

    /// Pulls `reference` into `store` and tags it; returns the manifest descriptor.
    pub async fn pull(
        &self,
        store: &Store,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<Descriptor, ImageError> {
        let resolved = self.resolve(reference).await?;
        self.pull_resolved(store, reference, resolved, progress).await
    }

    /// Fetches and checks the manifest `reference` names (through a `wasm` index entry), so a
    /// caller can decide about its digest before any layer moves.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved, ImageError> {
        let (mut bytes, digest) = self.manifest(reference).await?;
        let mut source = reference.clone();
        if is_index(&bytes)? {
            let index = ImageIndex::from_reader(&bytes[..])
                .map_err(|e| ImageError::Malformed { what: "image index", reason: e.to_string() })?;
            let entry = index
                .manifests()
                .iter()
                .find(|m| m.platform().as_ref().is_some_and(|p| *p.architecture() == Arch::Wasm))
                .ok_or_else(|| ImageError::Unsupported("the image index has no `wasm` architecture entry".into()))?;
            source = reference.clone_with_digest(entry.digest().to_string());
            let (inner, inner_digest) = self.manifest(&source).await?;
            if inner_digest != entry.digest().to_string() || inner.len() as u64 != entry.size() {
                let e = ImageError::DigestMismatch { expected: entry.digest().to_string(), actual: inner_digest };
                return Err(self.integrity(e));
            }
            bytes = inner;
        } else if let Some(pinned) = reference.digest()
            && pinned != digest
        {
            return Err(self.integrity(ImageError::DigestMismatch { expected: pinned.to_string(), actual: digest }));
        }
        let manifest = parse_manifest(&bytes, None)?;
        // Refuse what we cannot run, or will not hold, before downloading anything big.
        check_runnable(&manifest)?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        Ok(Resolved { bytes, digest, source })
    }

    /// Downloads the blobs of a resolved manifest into `store` and tags it `reference`.
    pub async fn pull_resolved(
        &self,
        store: &Store,
        reference: &Reference,
        resolved: Resolved,
        progress: &dyn Progress,
    ) -> Result<Descriptor, ImageError> {
        let Resolved { bytes, source, .. } = resolved;
        let manifest = parse_manifest(&bytes, None)?;
        // Precompiled code for other CPUs is never downloaded (only this machine's, if any).
        let host_arch = wasmbox_engine::target::Target::Native.architecture();
        let wanted: Vec<&Descriptor> = std::iter::once(manifest.config())
            .chain(manifest.layers().iter().filter(|l| crate::precompiled::wanted(l, host_arch)))
            .collect();
        for blob in &wanted {
            if blob.size() > self.max_blob {
                return Err(ImageError::TooLarge { digest: blob.digest().to_string(), cap: self.max_blob });
            }
        }
        for blob in wanted {
            let blob_digest = descriptor_digest(blob)?;
            let Some(mut writer) = store.begin_blob(&blob_digest, blob.size())? else {
                progress.done(&full(&blob_digest), blob.size(), "already present");
                continue;
            };
            progress.start(&full(&blob_digest), blob.size());
            let digest_text = full(&blob_digest);
            let layer = oci_client::client::LayerDescriptor { digest: &digest_text, urls: &None };
            let mut stream = self.client.pull_blob_stream(&source, &layer).await.map_err(|e| self.failure(e))?.stream;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| ImageError::Registry {
                    registry: self.registry.clone(),
                    failure: RegistryFailure::Other,
                    reason: format!("download of {} failed: {e}", full(&blob_digest)),
                })?;
                writer.write(&chunk).map_err(|e| self.integrity(e))?;
                progress.advance(chunk.len() as u64);
            }
            writer.finish().map_err(|e| self.integrity(e))?;
            progress.done(&full(&blob_digest), blob.size(), "downloaded");
        }
        let manifest_digest = store.put_bytes(&bytes)?;
        let descriptor = manifest_descriptor(&manifest_digest, bytes.len());
        store.tag(&reference.whole(), &descriptor)?;
        Ok(descriptor)
    }

    /// Pushes the image `manifest` from `store` to `target`; returns the manifest digest.
    pub async fn push(
        &self,
        store: &Store,
        manifest: &Descriptor,
        target: &Reference,
        progress: &dyn Progress,
    ) -> Result<String, ImageError> {
        // Blob checks and uploads need a push token (or basic credentials) up front.
        self.client.auth(target, &self.auth, RegistryOperation::Push).await.map_err(|e| self.failure(e))?;
        let manifest_digest = descriptor_digest(manifest)?;
        let bytes = store.read_blob(&manifest_digest, media::MAX_MANIFEST)?;
        let parsed = parse_manifest(&bytes, None)?;
        for blob in std::iter::once(parsed.config()).chain(parsed.layers()) {
            let digest = full(&descriptor_digest(blob)?);
            if self.client.blob_exists(target, &digest).await.map_err(|e| self.failure(e))? {
                progress.done(&digest, blob.size(), "already in the registry");
                continue;
            }
            progress.start(&digest, blob.size());
            let data = store.read_blob(&descriptor_digest(blob)?, blob.size())?;
            self.client.push_blob(target, data, &digest).await.map_err(|e| self.failure(e))?;
            progress.advance(blob.size());
            progress.done(&digest, blob.size(), "uploaded");
        }
        let media_type = parsed.media_type().as_ref().map(|m| m.to_string()).unwrap_or_else(|| media::MANIFEST.into());
        let content_type = reqwest_header(&media_type)?;
        self.client.push_manifest_raw(target, bytes, content_type).await.map_err(|e| self.failure(e))?;
        Ok(full(&manifest_digest))
    }

    /// Fetches a manifest or index: capped while streaming, digest recomputed, Content-Type
    /// compared with the document's own media type. This one GET is ours, not oci-client's,
    /// because oci-client reads the body whole (no cap) and hides the Content-Type; the token
    /// dance is still oci-client's.
    pub(crate) async fn manifest(&self, reference: &Reference) -> Result<(Vec<u8>, String), ImageError> {
        if let Some(pinned) = reference.digest() {
            parse_digest(pinned)?;
        }
        let target = reference.digest().or(reference.tag()).unwrap_or("latest");
        self.document(reference, &format!("manifests/{target}"), &ACCEPT.join(", ")).await
    }

    /// GETs `/v2/<repository>/<path>` (a manifest, an index, the referrers list), capped while
    /// streaming, its media type checked; returns the bytes and their digest.
    pub(crate) async fn document(
        &self,
        reference: &Reference,
        path: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, String), ImageError> {
        let token =
            self.client.auth(reference, &self.auth, RegistryOperation::Pull).await.map_err(|e| self.failure(e))?;
        let url = format!(
            "{scheme}://{registry}/v2/{repository}/{path}",
            scheme = if self.plain { "http" } else { "https" },
            registry = reference.resolve_registry(),
            repository = reference.repository(),
        );
        let http =
            reqwest::Client::builder().read_timeout(IDLE_TIMEOUT).connect_timeout(CONNECT_TIMEOUT).build().map_err(
                |e| ImageError::Registry {
                    registry: self.registry.clone(),
                    failure: RegistryFailure::Other,
                    reason: e.to_string(),
                },
            )?;
        let mut request = http.get(&url).header(reqwest::header::ACCEPT, accept);
        request = match (token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            _ => request,
        };
        let http_failure =
            |failure, reason: String| ImageError::Registry { registry: self.registry.clone(), failure, reason };
        let mut response = request.send().await.map_err(|e| {
            let failure =
                if e.is_connect() || e.is_timeout() { RegistryFailure::Unreachable } else { RegistryFailure::Other };
            http_failure(failure, format!("GET {url}: {e}"))
        })?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 => return Err(http_failure(RegistryFailure::Unauthorized, format!("GET {url}: HTTP {status}"))),
            404 => {
                return Err(http_failure(RegistryFailure::NotFound, format!("manifest unknown: GET {url}: HTTP 404")));
            }
            _ => return Err(http_failure(RegistryFailure::Other, format!("GET {url}: HTTP {status}"))),
        }
        let too_large =
            || ImageError::TooLarge { digest: format!("manifest of {}", reference.whole()), cap: media::MAX_MANIFEST };
        if response.content_length().is_some_and(|n| n > media::MAX_MANIFEST) {
            return Err(too_large());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
        let mut bytes = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| http_failure(RegistryFailure::Other, format!("GET {url}: {e}")))?
        {
            if (bytes.len() + chunk.len()) as u64 > media::MAX_MANIFEST {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        check_declared_type(&bytes, content_type.as_deref())?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        Ok((bytes, digest))
    }

    /// Content from the registry failed a size or digest check (nothing was stored).
    pub(crate) fn integrity(&self, e: ImageError) -> ImageError {
        match e {
            ImageError::SizeMismatch { .. } | ImageError::DigestMismatch { .. } => ImageError::Registry {
                registry: self.registry.clone(),
                failure: RegistryFailure::Integrity,
                reason: format!("served content that failed verification: {e}"),
            },
            other => other,
        }
    }

    pub(crate) fn failure(&self, e: OciDistributionError) -> ImageError {
        let failure = match &e {
            OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
                RegistryFailure::Unauthorized
            }
            OciDistributionError::ImageManifestNotFoundError(_) => RegistryFailure::NotFound,
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::ManifestUnknown
                            | oci_client::errors::OciErrorCode::NameUnknown
                            | oci_client::errors::OciErrorCode::NotFound
                    )
                }) =>
            {
                RegistryFailure::NotFound
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied
                    )
                }) =>
            {
                RegistryFailure::Unauthorized
            }
            OciDistributionError::ServerError { code: 401 | 403, .. } => RegistryFailure::Unauthorized,
            OciDistributionError::ServerError { code: 404, .. } => RegistryFailure::NotFound,
            OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => RegistryFailure::Unreachable,
            OciDistributionError::RequestError(r) => match r.status().map(|s| s.as_u16()) {
                Some(401 | 403) => RegistryFailure::Unauthorized,
                Some(404) => RegistryFailure::NotFound,
                _ => RegistryFailure::Other,
            },
            _ => RegistryFailure::Other,
        };
        let mut reason = e.to_string();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        ImageError::Registry { registry: self.registry.clone(), failure, reason }
    }
}

/// A document's own `mediaType`, when it has one, must be the Content-Type it was served with
/// (CVE-2021-41190: a registry must not make one document mean two things).
fn check_declared_type(bytes: &[u8], content_type: Option<&str>) -> Result<(), ImageError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed { what: "manifest", reason: e.to_string() })?;
    let own = doc.get("mediaType").and_then(|m| m.as_str());
    match (own, content_type) {
        // Generic types say nothing either way (some static registries serve them).
        (Some(own), Some(served))
            if own != served && !matches!(served, "" | "application/json" | "application/octet-stream") =>
        {
            Err(ImageError::Malformed {
                what: "manifest",
                reason: format!("served as {served} but its mediaType is {own}"),
            })
        }
        _ => Ok(()),
    }
}

/// A registry document is an index when it says so or lists manifests (never both kinds).
fn is_index(bytes: &[u8]) -> Result<bool, ImageError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed { what: "manifest", reason: e.to_string() })?;
    let has_manifests = doc.get("manifests").is_some();
    if has_manifests && (doc.get("layers").is_some() || doc.get("config").is_some()) {
        return Err(ImageError::Malformed {
            what: "manifest",
            reason: "it has both `manifests` and `layers`/`config` (ambiguous index/manifest)".into(),
        });
    }
    let media_type = doc.get("mediaType").and_then(|m| m.as_str());
    Ok(matches!(media_type, Some(media::INDEX | media::DOCKER_INDEX)) || (media_type.is_none() && has_manifests))
}

fn reqwest_header(media_type: &str) -> Result<reqwest::header::HeaderValue, ImageError> {
    reqwest::header::HeaderValue::from_str(media_type)
        .map_err(|e| ImageError::Malformed { what: "manifest media type", reason: e.to_string() })
}

/// The 12 hex digits docker shows for a digest.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..12.min(hex.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        for r in ["localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "ghcr.io", "10.0.0.1:5000", "localhost.evil.com:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
