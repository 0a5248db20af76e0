//! Signatures in a registry, the way cosign keeps them, and next to images in the local store.
//!
//! Read: the `sha256-<hex>.sig` tag (an OCI manifest whose layers are simple-signing payloads
//! with the signature in an annotation), and sigstore bundles attached as OCI 1.1 referrers
//! (the referrers API, else the `sha256-<hex>` referrers tag, an index). Written: a layer added
//! to the `.sig` manifest; signatures already there are kept. Every document and blob is
//! capped and digest-checked; more than 1000 signatures or referrers is refused outright. A
//! missing tag (404) means "no signatures"; any other failure (401, 500, ...) is an error,
//! never a silent "unsigned".

use std::path::PathBuf;

use futures_util::StreamExt;
use oci_client::Reference;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wasmbox_trust::evidence::{MAX_DOCUMENT, MAX_EVIDENCE};
use wasmbox_trust::{Evidence, bundle, payload};

use crate::error::{ImageError, RegistryFailure};
use crate::media;
use crate::registry::Registry;
use crate::store::{Store, hex, parse_digest};

/// The evidence file of one manifest in the store is never larger than this.
const MAX_STORED: u64 = 64 << 20;

fn tag_for(digest: &str, suffix: &str) -> String {
    format!("{}{suffix}", digest.replacen(':', "-", 1))
}

impl Registry {
    /// Everything the registry holds that may sign `digest` in `reference`'s repository.
    pub async fn fetch_evidence(&self, reference: &Reference, digest: &str) -> Result<Vec<Evidence>, ImageError> {
        // Both lookups at once: a pull pays about one round trip for them, not two.
        let (tagged, referred) =
            tokio::join!(self.sig_tag_evidence(reference, digest), self.referrer_evidence(reference, digest));
        let mut found = tagged?;
        found.extend(referred?);
        if found.len() > MAX_EVIDENCE {
            return Err(self.refused(format!("more than {MAX_EVIDENCE} signatures for {digest}")));
        }
        Ok(found)
    }

    /// Adds a cosign signature (`payload` signed as `signature`) to `digest`'s `.sig` tag,
    /// keeping every signature already there.
    pub async fn push_signature(
        &self,
        reference: &Reference,
        digest: &str,
        payload_bytes: &[u8],
        signature: &str,
    ) -> Result<(), ImageError> {
        let sig_ref = at_tag(reference, &tag_for(digest, ".sig"));
        let mut layers: Vec<Value> = match self.optional(self.manifest(&sig_ref).await)? {
            Some((bytes, _)) => {
                let doc: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
                doc.get("layers").and_then(Value::as_array).cloned().unwrap_or_default()
            }
            None => Vec::new(),
        };
        if layers.len() >= MAX_EVIDENCE {
            return Err(self.refused(format!("{digest} already has {MAX_EVIDENCE} signatures")));
        }
        let payload_digest = format!("sha256:{}", hex(&Sha256::digest(payload_bytes)));
        let annotation = |l: &Value| l["annotations"][payload::SIGNATURE_ANNOTATION].as_str().map(str::to_string);
        if layers.iter().any(|l| l["digest"] == payload_digest.as_str() && annotation(l).as_deref() == Some(signature))
        {
            return Ok(());
        }
        layers.push(json!({
            "mediaType": payload::MEDIA_TYPE,
            "size": payload_bytes.len(),
            "digest": payload_digest,
            "annotations": { payload::SIGNATURE_ANNOTATION: signature },
        }));
        let (config, manifest) = sig_manifest(&layers)?;
        let config_digest = format!("sha256:{}", hex(&Sha256::digest(&config)));
        self.client
            .auth(&sig_ref, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.failure(e))?;
        for (bytes, d) in [(payload_bytes.to_vec(), payload_digest), (config, config_digest)] {
            if !self.client.blob_exists(&sig_ref, &d).await.map_err(|e| self.failure(e))? {
                self.client.push_blob(&sig_ref, bytes, &d).await.map_err(|e| self.failure(e))?;
            }
        }
        let content_type = reqwest::header::HeaderValue::from_static(media::MANIFEST);
        self.client.push_manifest_raw(&sig_ref, manifest, content_type).await.map_err(|e| self.failure(e))?;
        Ok(())
    }

    async fn sig_tag_evidence(&self, reference: &Reference, digest: &str) -> Result<Vec<Evidence>, ImageError> {
        let sig_ref = at_tag(reference, &tag_for(digest, ".sig"));
        let Some((bytes, _)) = self.optional(self.manifest(&sig_ref).await)? else { return Ok(Vec::new()) };
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        let layers = doc.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
        if layers.len() > MAX_EVIDENCE {
            return Err(
                self.refused(format!("{} signature layers for {digest} (more than {MAX_EVIDENCE})", layers.len()))
            );
        }
        // cosign's payload for this digest in this repository is known to the byte: a layer
        // with its digest *is* that payload (content addressing), so it need not be fetched.
        let (repository, _) = crate::admit::identity(reference);
        let expected = payload::encode(&repository, digest);
        let expected_digest = format!("sha256:{}", hex(&Sha256::digest(&expected)));
        let mut out = Vec::new();
        for layer in layers.iter().filter(|l| l["mediaType"] == payload::MEDIA_TYPE) {
            let Some(signature) = layer["annotations"][payload::SIGNATURE_ANNOTATION].as_str() else { continue };
            let bytes = if layer["digest"] == expected_digest.as_str() {
                expected.clone()
            } else {
                self.small_blob(&sig_ref, layer).await?
            };
            out.push(Evidence::simple(&bytes, signature));
        }
        Ok(out)
    }

    async fn referrer_evidence(&self, reference: &Reference, digest: &str) -> Result<Vec<Evidence>, ImageError> {
        let index_accept = media::INDEX;
        let listing = match self.document(reference, &format!("referrers/{digest}"), index_accept).await {
            Ok(found) => Some(found),
            // No referrers API here (404, or 400/405/501 from registries that predate it): the
            // fallback tag, which cosign writes on such registries. Any other failure (401,
            // 500, …) is an error, never "no signatures".
            Err(ImageError::Registry { failure, reason, .. })
                if failure == RegistryFailure::NotFound
                    || ["HTTP 400", "HTTP 405", "HTTP 501"].iter().any(|s| reason.ends_with(s)) =>
            {
                self.optional(self.manifest(&at_tag(reference, &tag_for(digest, ""))).await)?
            }
            Err(e) => return Err(e),
        };
        let Some((bytes, _)) = listing else { return Ok(Vec::new()) };
        let index: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        let entries = index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        if entries.len() > MAX_EVIDENCE {
            return Err(self.refused(format!("{} referrers for {digest} (more than {MAX_EVIDENCE})", entries.len())));
        }
        let mut out = Vec::new();
        for entry in &entries {
            let Some(entry_digest) = entry["digest"].as_str() else { continue };
            parse_digest(entry_digest)?;
            let (doc, got) = self.manifest(&reference.clone_with_digest(entry_digest.to_string())).await?;
            if got != entry_digest {
                return Err(self.integrity(ImageError::DigestMismatch { expected: entry_digest.into(), actual: got }));
            }
            let manifest: Value = serde_json::from_slice(&doc).map_err(|e| malformed(e.to_string()))?;
            if manifest["subject"]["digest"] != digest {
                continue; // a referrer of something else: not evidence for this digest
            }
            let layers = manifest.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
            for layer in layers.iter().filter(|l| l["mediaType"] == bundle::MEDIA_TYPE).take(MAX_EVIDENCE) {
                let bytes = self.small_blob(reference, layer).await?;
                out.push(Evidence::bundle(&bytes));
            }
        }
        Ok(out)
    }

    /// A signature-sized blob: its declared size and the bytes read are capped, the digest checked.
    async fn small_blob(&self, reference: &Reference, layer: &Value) -> Result<Vec<u8>, ImageError> {
        let digest = layer["digest"].as_str().ok_or_else(|| malformed("a layer without a digest".into()))?;
        let parsed = parse_digest(digest)?;
        let declared = layer["size"].as_u64().unwrap_or(u64::MAX);
        if declared > MAX_DOCUMENT {
            return Err(ImageError::TooLarge { digest: digest.into(), cap: MAX_DOCUMENT });
        }
        let descriptor = oci_client::client::LayerDescriptor { digest, urls: &None };
        let mut stream =
            self.client.pull_blob_stream(reference, &descriptor).await.map_err(|e| self.failure(e))?.stream;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ImageError::Registry {
                registry: self.registry.clone(),
                failure: RegistryFailure::Other,
                reason: format!("download of {digest} failed: {e}"),
            })?;
            if (bytes.len() + chunk.len()) as u64 > declared {
                return Err(self.integrity(ImageError::SizeMismatch {
                    digest: digest.into(),
                    expected: declared,
                    actual: (bytes.len() + chunk.len()) as u64,
                }));
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = hex(&Sha256::digest(&bytes));
        if actual != parsed.digest() {
            return Err(self.integrity(ImageError::DigestMismatch { expected: digest.into(), actual }));
        }
        Ok(bytes)
    }

    /// 404 is "nothing there"; every other failure stays an error.
    fn optional<T>(&self, r: Result<T, ImageError>) -> Result<Option<T>, ImageError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(ImageError::Registry { failure: RegistryFailure::NotFound, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn refused(&self, reason: String) -> ImageError {
        ImageError::Registry { registry: self.registry.clone(), failure: RegistryFailure::Integrity, reason }
    }
}

/// cosign's `.sig` image for signature `layers`: its config (an empty image whose rootfs
/// lists the payloads, as cosign writes it) and manifest.
pub(crate) fn sig_manifest(layers: &[Value]) -> Result<(Vec<u8>, Vec<u8>), ImageError> {
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {},
    }))
    .map_err(|e| malformed(e.to_string()))?;
    let config_digest = format!("sha256:{}", hex(&Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "size": config.len(), "digest": config_digest},
        "layers": layers,
    }))
    .map_err(|e| malformed(e.to_string()))?;
    Ok((config, manifest))
}

fn at_tag(reference: &Reference, tag: &str) -> Reference {
    Reference::with_tag(reference.registry().to_string(), reference.repository().to_string(), tag.to_string())
}

fn malformed(reason: String) -> ImageError {
    ImageError::Malformed { what: "signature manifest", reason }
}

impl Store {
    fn evidence_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let d = parse_digest(digest)?;
        Ok(self.root().join("signatures").join(format!("{}.json", d.digest())))
    }

    /// Keeps the signatures fetched for `digest` (replacing what was kept before).
    pub fn put_evidence(&self, digest: &str, evidence: &[Evidence]) -> Result<(), ImageError> {
        let path = self.evidence_path(digest)?;
        let dir = path.parent().expect("signatures dir");
        std::fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
        let text = serde_json::to_vec(evidence).map_err(|e| malformed(e.to_string()))?;
        wasmbox_engine::fs::write_atomic(&path, &text).map_err(ImageError::io("write", &path))
    }

    /// The signatures kept for `digest` (none if none were fetched).
    pub fn evidence(&self, digest: &str) -> Result<Vec<Evidence>, ImageError> {
        let path = self.evidence_path(digest)?;
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io("read", &path)(e)),
            Ok(m) if m.len() > MAX_STORED => {
                return Err(ImageError::Malformed {
                    what: "stored signatures",
                    reason: format!("{} is too large", path.display()),
                });
            }
            Ok(_) => {}
        }
        let bytes = std::fs::read(&path).map_err(ImageError::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
            what: "stored signatures",
            reason: format!("{}: {e}", path.display()),
        })
    }
}
