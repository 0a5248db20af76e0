//! Key pairs in cosign's formats. The private key is PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (or
//! the older `ENCRYPTED COSIGN PRIVATE KEY`) around JSON: scrypt (N, r, p, salt) derives a
//! 32-byte key that seals a PKCS#8 ECDSA P-256 key with NaCl secretbox (XSalsa20-Poly1305,
//! 24-byte nonce); byte arrays are base64. The public key is a PEM `PUBLIC KEY` (SPKI).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::TrustError;

pub const PEM_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const OLD_PEM_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// cosign's parameters: N = 2^16, r = 8, p = 1.
const LOG_N: u8 = 16;
/// A hostile key file must not make us allocate gigabytes: cosign never uses more than 2^16.
const MAX_LOG_N: u8 = 20;
/// No key file is larger; a bigger one is not read.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A private signing key (P-256).
pub struct PrivateKey(SigningKey);

/// A public key that verifies signatures, with a name for messages (its file, or `keyData`).
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub name: String,
    key: VerifyingKey,
}

impl PrivateKey {
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut OsRng))
    }

    /// The sealed PEM, as `cosign generate-key-pair` writes it.
    pub fn seal(&self, password: &[u8]) -> Result<String, TrustError> {
        let der = self.0.to_pkcs8_der().map_err(|e| TrustError::Malformed(e.to_string()))?;
        let mut salt = vec![0u8; 32];
        let mut nonce = vec![0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let key = derive(password, &salt, LOG_N, 8, 1)?;
        let ciphertext = XSalsa20Poly1305::new(&key.into())
            .encrypt(nonce.as_slice().into(), der.as_bytes())
            .map_err(|_| TrustError::Malformed("encryption failed".into()))?;
        let sealed = Sealed {
            kdf: Kdf { name: "scrypt".into(), params: ScryptParams { n: 1 << LOG_N, r: 8, p: 1 }, salt },
            cipher: Cipher { name: "nacl/secretbox".into(), nonce },
            ciphertext,
        };
        let json = serde_json::to_vec(&sealed).map_err(|e| TrustError::Malformed(e.to_string()))?;
        Ok(pem_encode(PEM_LABEL, &json))
    }

    /// Opens a sealed PEM (`path` is for messages).
    pub fn open(pem: &str, password: &[u8], path: &str) -> Result<PrivateKey, TrustError> {
        let bad = |reason: &str| TrustError::Key { path: path.into(), reason: reason.into() };
        let json = pem_decode(pem, &[PEM_LABEL, OLD_PEM_LABEL])
            .ok_or_else(|| bad("not a cosign private key (expected PEM `ENCRYPTED SIGSTORE PRIVATE KEY`)"))?;
        let sealed: Sealed = serde_json::from_slice(&json).map_err(|e| bad(&format!("damaged key file: {e}")))?;
        if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
            return Err(bad(&format!("unsupported key sealing {}/{}", sealed.kdf.name, sealed.cipher.name)));
        }
        let p = &sealed.kdf.params;
        if !p.n.is_power_of_two() || p.n < 2 || p.n.trailing_zeros() > MAX_LOG_N as u32 || p.r > 32 || p.p > 16 {
            return Err(bad("scrypt parameters out of range"));
        }
        if sealed.cipher.nonce.len() != 24 {
            return Err(bad("nonce must be 24 bytes"));
        }
        let key = derive(password, &sealed.kdf.salt, p.n.trailing_zeros() as u8, p.r, p.p)?;
        let der = XSalsa20Poly1305::new(&key.into())
            .decrypt(sealed.cipher.nonce.as_slice().into(), sealed.ciphertext.as_slice())
            .map_err(|_| TrustError::WrongPassword { path: path.into() })?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|e| bad(&format!("not a P-256 key: {e}")))?;
        Ok(PrivateKey(key))
    }

    pub fn public(&self, name: &str) -> PublicKey {
        PublicKey { name: name.into(), key: *self.0.verifying_key() }
    }

    /// ECDSA P-256 with SHA-256, ASN.1 DER, base64: what cosign puts in its annotation.
    pub fn sign(&self, message: &[u8]) -> String {
        let sig: Signature = self.0.sign(message);
        B64.encode(sig.to_der().as_bytes())
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str, name: &str) -> Result<PublicKey, TrustError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| TrustError::Key {
            path: name.into(),
            reason: format!("not a P-256 public key (PEM `PUBLIC KEY`): {e}"),
        })?;
        Ok(PublicKey { name: name.into(), key })
    }

    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Whether `signature` (base64 DER) signs a message whose SHA-256 is `digest`.
    pub fn verifies_prehashed(&self, digest: &[u8], signature_b64: &str) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let Ok(der) = B64.decode(signature_b64.trim()) else { return false };
        let Ok(sig) = Signature::from_der(&der) else { return false };
        self.key.verify_prehash(digest, &sig).is_ok()
    }

    /// Whether `signature` (base64 DER, as cosign writes it) signs `message`.
    pub fn verifies(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(der) = B64.decode(signature_b64.trim()) else { return false };
        let Ok(sig) = Signature::from_der(&der) else { return false };
        self.key.verify(message, &sig).is_ok()
    }
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], TrustError> {
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| TrustError::Malformed(e.to_string()))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| TrustError::Malformed(e.to_string()))?;
    Ok(key)
}

fn pem_encode(label: &str, bytes: &[u8]) -> String {
    let b64 = B64.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &str, labels: &[&str]) -> Option<Vec<u8>> {
    let label = labels.iter().find(|l| pem.contains(&format!("-----BEGIN {l}-----")))?;
    let body =
        pem.split(&format!("-----BEGIN {label}-----")).nth(1)?.split(&format!("-----END {label}-----")).next()?;
    let joined: String = body.split_whitespace().collect();
    B64.decode(joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_round_trip_and_sign() {
        let key = PrivateKey::generate();
        let pem = key.seal(b"pw").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let opened = PrivateKey::open(&pem, b"pw", "k").unwrap();
        let public = PublicKey::from_pem(&key.public("k").to_pem(), "k.pub").unwrap();
        let sig = opened.sign(b"message");
        assert!(public.verifies(b"message", &sig));
        assert!(!public.verifies(b"messagE", &sig));
        assert!(!public.verifies(b"message", "AAAA"));
        assert!(matches!(PrivateKey::open(&pem, b"wrong", "k"), Err(TrustError::WrongPassword { .. })));
        assert!(PrivateKey::open("junk", b"pw", "k").is_err());
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_work() {
        let json = r#"{"kdf":{"name":"scrypt","params":{"N":4294967296,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AA=="}"#;
        let pem = pem_encode(PEM_LABEL, json.as_bytes());
        let started = std::time::Instant::now();
        let err = PrivateKey::open(&pem, b"pw", "k").err().unwrap().to_string();
        assert!(err.contains("out of range"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
}
