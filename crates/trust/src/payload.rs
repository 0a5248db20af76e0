//! The simple-signing payload cosign signs: which manifest digest, in which repository.

use serde::Deserialize;

use crate::TrustError;

pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const TYPE: &str = "cosign container image signature";

/// What a payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `registry/repository` (no tag), as cosign writes it.
    pub docker_reference: String,
    /// `sha256:<hex>` of the signed manifest.
    pub manifest_digest: String,
}

/// The exact bytes `cosign sign` writes (field order and `"optional":null` included).
pub fn encode(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let reference = serde_json::to_string(docker_reference).unwrap_or_default();
    let digest = serde_json::to_string(manifest_digest).unwrap_or_default();
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{reference}}},\"image\":{{\"docker-manifest-digest\":{digest}}},\"type\":\"{TYPE}\"}},\"optional\":null}}"
    )
    .into_bytes()
}

pub fn decode(bytes: &[u8]) -> Result<Claim, TrustError> {
    #[derive(Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(Deserialize)]
    struct Critical {
        identity: Identity,
        image: Image,
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Identity {
        #[serde(rename = "docker-reference")]
        docker_reference: String,
    }
    #[derive(Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        docker_manifest_digest: String,
    }
    let p: Payload =
        serde_json::from_slice(bytes).map_err(|e| TrustError::Malformed(format!("simple-signing payload: {e}")))?;
    if p.critical.kind != TYPE {
        return Err(TrustError::Malformed(format!("payload type `{}`", p.critical.kind)));
    }
    Ok(Claim {
        docker_reference: p.critical.identity.docker_reference,
        manifest_digest: p.critical.image.docker_manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosigns_own_bytes_decode_and_encode_identically() {
        let cosign = br#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5077/demo/hello"},"image":{"docker-manifest-digest":"sha256:d3d68a92c1d8f94d00081a66cac86fc5fc62a09a7095982cb5a63861a6968f75"},"type":"cosign container image signature"},"optional":null}"#;
        let claim = decode(cosign).unwrap();
        assert_eq!(claim.docker_reference, "127.0.0.1:5077/demo/hello");
        assert_eq!(encode(&claim.docker_reference, &claim.manifest_digest), cosign.to_vec());
        assert!(decode(br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"y"},"type":"other"}}"#).is_err());
    }
}
