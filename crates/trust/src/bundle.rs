//! Sigstore bundles (v0.1–v0.3), as cosign attaches them as OCI referrers: a DSSE envelope
//! around an in-toto statement whose subject names the image digest, or a message signature
//! over the manifest itself. Only key-based bundles are read (no certificates, no
//! transparency log: wasmbox verifies offline with the keys the policy names).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::TrustError;

pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<MessageSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<Sig>,
}

#[derive(Deserialize)]
struct Sig {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct Statement {
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

/// What a bundle signs: the message the signature covers, the signature (base64 DER), and the
/// manifest digests (with their repository names, when the statement gives them) it vouches for.
pub struct Signed {
    pub message: Vec<u8>,
    pub signatures: Vec<String>,
    pub subjects: Vec<(String, Option<String>)>,
    /// True when `message` is the manifest's digest itself (message signatures).
    pub prehashed: bool,
}

pub fn decode(bytes: &[u8]) -> Result<Signed, TrustError> {
    let bad = |what: String| TrustError::Malformed(format!("sigstore bundle: {what}"));
    let b: Bundle = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !b.media_type.starts_with("application/vnd.dev.sigstore.bundle") {
        return Err(bad(format!("media type `{}`", b.media_type)));
    }
    if let Some(env) = b.dsse_envelope {
        if env.payload_type != IN_TOTO {
            return Err(bad(format!("DSSE payload type `{}`", env.payload_type)));
        }
        let payload = B64.decode(&env.payload).map_err(|e| bad(e.to_string()))?;
        let statement: Statement = serde_json::from_slice(&payload).map_err(|e| bad(format!("statement: {e}")))?;
        let subjects = statement
            .subject
            .into_iter()
            .filter_map(|s| {
                s.digest.get("sha256").map(|d| (format!("sha256:{d}"), Some(s.name).filter(|n| !n.is_empty())))
            })
            .collect();
        return Ok(Signed {
            message: pae(&env.payload_type, &payload),
            signatures: env.signatures.into_iter().map(|s| s.sig).collect(),
            subjects,
            prehashed: false,
        });
    }
    if let Some(m) = b.message_signature {
        if m.message_digest.algorithm != "SHA2_256" {
            return Err(bad(format!("digest algorithm `{}`", m.message_digest.algorithm)));
        }
        let digest = B64.decode(&m.message_digest.digest).map_err(|e| bad(e.to_string()))?;
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        return Ok(Signed {
            message: digest,
            signatures: vec![m.signature],
            subjects: vec![(format!("sha256:{hex}"), None)],
            prehashed: true,
        });
    }
    Err(bad("neither a DSSE envelope nor a message signature".into()))
}

/// DSSE's pre-authentication encoding: what the envelope's signatures sign.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsse_bundles_name_their_subjects_and_sign_the_pae() {
        // As `cosign attest --new-bundle-format` wrote it (signature replaced: not checked here).
        let statement = r#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://example.com/p","subject":[{"name":"127.0.0.1:5077/demo/hello","digest":{"sha256":"d3d6"}}],"predicate":{}}"#;
        let bundle = format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{{"publicKey":{{"hint":"x"}}}},"dsseEnvelope":{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{{"sig":"MEQ="}}]}}}}"#,
            B64.encode(statement)
        );
        let signed = decode(bundle.as_bytes()).unwrap();
        assert_eq!(signed.subjects, vec![("sha256:d3d6".to_string(), Some("127.0.0.1:5077/demo/hello".to_string()))]);
        assert!(signed.message.starts_with(b"DSSEv1 28 application/vnd.in-toto+json "));
        assert!(decode(b"{}").is_err());
    }
}
