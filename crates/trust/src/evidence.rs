//! The signatures an image carries, as fetched from its registry and kept next to it in the
//! local store, and their check against keys: each must sign this manifest digest, and (under a
//! policy) name the repository the image came from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::{PublicKey, bundle, payload};

/// More signatures or referrers than this for one digest are refused outright.
pub const MAX_EVIDENCE: usize = 1000;
/// The largest payload or bundle read (cosign's are a few hundred bytes to a few KiB).
pub const MAX_DOCUMENT: u64 = 256 * 1024;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A layer of cosign's `sha256-<hex>.sig` image: the payload and the annotation's signature.
    SimpleSigning { payload: String, signature: String },
    /// A sigstore bundle attached as an OCI referrer (the JSON document, base64).
    Bundle { bundle: String },
}

/// One key that vouches for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key: String,
    pub digest: String,
    pub kind: &'static str,
}

impl Evidence {
    pub fn simple(payload_bytes: &[u8], signature: &str) -> Evidence {
        Evidence::SimpleSigning { payload: B64.encode(payload_bytes), signature: signature.to_string() }
    }

    pub fn bundle(document: &[u8]) -> Evidence {
        Evidence::Bundle { bundle: B64.encode(document) }
    }
}

/// The same repository, spelled either way docker spells Docker Hub.
pub fn same_repository(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        match s.strip_prefix("index.docker.io/") {
            Some(rest) => format!("docker.io/{rest}"),
            None => s,
        }
    };
    norm(a) == norm(b)
}

/// Which of `keys` vouch for `digest`; with `repository`, the signed identity must name it.
/// The second list says why each piece of evidence did not count (for the error message).
pub fn verify(
    evidence: &[Evidence],
    keys: &[PublicKey],
    digest: &str,
    repository: Option<&str>,
) -> (Vec<Verified>, Vec<String>) {
    let (mut ok, mut why) = (Vec::new(), Vec::new());
    if evidence.len() > MAX_EVIDENCE {
        why.push(format!("{} signatures for one digest (more than {MAX_EVIDENCE}): refused", evidence.len()));
        return (ok, why);
    }
    for e in evidence {
        match check_one(e, keys, digest, repository) {
            Ok(found) => ok.extend(found),
            Err(reason) => why.push(reason),
        }
    }
    ok.dedup_by(|a, b| a.key == b.key && a.kind == b.kind);
    (ok, why)
}

fn check_one(
    e: &Evidence,
    keys: &[PublicKey],
    digest: &str,
    repository: Option<&str>,
) -> Result<Vec<Verified>, String> {
    let decode = |b: &str| B64.decode(b).map_err(|e| format!("undecodable evidence: {e}"));
    match e {
        Evidence::SimpleSigning { payload: p, signature } => {
            let bytes = decode(p)?;
            if bytes.len() as u64 > MAX_DOCUMENT {
                return Err("a signature payload over 256 KiB".into());
            }
            let signers: Vec<&PublicKey> = keys.iter().filter(|k| k.verifies(&bytes, signature)).collect();
            if signers.is_empty() {
                return Err("a signature no trusted key made (or over other bytes)".into());
            }
            let claim = payload::decode(&bytes).map_err(|e| e.to_string())?;
            if claim.manifest_digest != digest {
                return Err(format!("a signature for another digest ({})", short(&claim.manifest_digest)));
            }
            if let Some(repo) = repository
                && !same_repository(&claim.docker_reference, repo)
            {
                return Err(format!("a signature for another repository ({})", claim.docker_reference));
            }
            Ok(signers
                .iter()
                .map(|k| Verified { key: k.name.clone(), digest: digest.into(), kind: "cosign signature" })
                .collect())
        }
        Evidence::Bundle { bundle: b } => {
            let bytes = decode(b)?;
            if bytes.len() as u64 > MAX_DOCUMENT {
                return Err("a bundle over 256 KiB".into());
            }
            let signed = bundle::decode(&bytes).map_err(|e| e.to_string())?;
            let signers: Vec<&PublicKey> = keys
                .iter()
                .filter(|k| {
                    signed.signatures.iter().any(|s| {
                        if signed.prehashed {
                            k.verifies_prehashed(&signed.message, s)
                        } else {
                            k.verifies(&signed.message, s)
                        }
                    })
                })
                .collect();
            if signers.is_empty() {
                return Err("a bundle no trusted key signed".into());
            }
            let names_it = signed.subjects.iter().any(|(d, name)| {
                d == digest
                    && (repository.is_none()
                        || name.as_deref().is_none_or(|n| same_repository(n, repository.unwrap_or(""))))
            });
            if !names_it {
                return Err("a bundle for another digest or repository".into());
            }
            Ok(signers
                .iter()
                .map(|k| Verified { key: k.name.clone(), digest: digest.into(), kind: "sigstore bundle" })
                .collect())
        }
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..12.min(hex.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    const DIGEST: &str = "sha256:d3d68a92c1d8f94d00081a66cac86fc5fc62a09a7095982cb5a63861a6968f75";

    #[test]
    fn only_the_right_key_digest_and_repository_count() {
        let (key, other) = (PrivateKey::generate(), PrivateKey::generate());
        let keys = [key.public("good.pub")];
        let good = payload::encode("reg/app", DIGEST);
        let sig = key.sign(&good);
        let ok = verify(&[Evidence::simple(&good, &sig)], &keys, DIGEST, Some("reg/app"));
        assert_eq!(ok.0.len(), 1);
        assert_eq!(ok.0[0].key, "good.pub");
        // Wrong key, other digest, other repository, tampered payload: none counts.
        let cases = [
            Evidence::simple(&good, &other.sign(&good)),
            Evidence::simple(
                &payload::encode("reg/app", "sha256:00"),
                &key.sign(&payload::encode("reg/app", "sha256:00")),
            ),
            Evidence::simple(&payload::encode("reg/evil", DIGEST), &key.sign(&payload::encode("reg/evil", DIGEST))),
            Evidence::simple(&payload::encode("reg/app ", DIGEST), &sig),
        ];
        for (i, e) in cases.iter().enumerate() {
            let (found, why) = verify(std::slice::from_ref(e), &keys, DIGEST, Some("reg/app"));
            assert!(found.is_empty(), "case {i}");
            assert_eq!(why.len(), 1, "case {i}");
        }
        // Without a repository to match (cosign's own verify), the other repository counts.
        assert_eq!(verify(&cases[2..3], &keys, DIGEST, None).0.len(), 1);
        let many = vec![Evidence::simple(&good, &sig); MAX_EVIDENCE + 1];
        assert!(verify(&many, &keys, DIGEST, None).0.is_empty());
    }
}
