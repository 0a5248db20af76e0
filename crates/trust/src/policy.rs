//! The trust policy: a documented subset of containers-policy.json (what podman and CRI-O
//! read), at `$WASMBOX_HOME/policy.json`.
//!
//! ```json
//! { "default": [{"type": "insecureAcceptAnything"}],
//!   "transports": { "docker": {
//!       "registry.example.com/team": [{"type": "sigstoreSigned", "keyPath": "/etc/wasmbox/team.pub"}],
//!       "registry.example.com/team/legacy": [{"type": "reject"}] } } }
//! ```
//!
//! Scopes under `transports.docker`: `host[:port]/repo:tag`, `host/repo`, `host/namespace`,
//! `host`, and `*.domain` for a host's subdomains; the most specific scope that exists wins,
//! else `default`. Every requirement of the chosen list must hold. Requirement types:
//! `insecureAcceptAnything`, `reject`, `sigstoreSigned` with `keyPath`, `keyPaths` or `keyData`
//! (base64 of the PEM) and an optional `signedIdentity` of type `matchRepository` (what
//! wasmbox checks anyway). Anything else — an unknown type or field, a missing key — makes
//! the whole file invalid: the policy fails closed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::evidence::{self, Evidence, Verified};
use crate::{PublicKey, TrustError};

/// The largest policy file read.
const MAX_POLICY: u64 = 1 << 20;

#[derive(Debug)]
pub struct Policy {
    pub path: PathBuf,
    default: Vec<Requirement>,
    docker: BTreeMap<String, Vec<Requirement>>,
}

#[derive(Debug, Clone)]
pub enum Requirement {
    Accept,
    Reject,
    Sigstore { keys: Vec<PublicKey> },
}

/// What the policy says about one image.
#[derive(Debug)]
pub enum Decision {
    Accepted { scope: String, verified: Vec<Verified> },
    Refused { scope: String, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Vec<RawRequirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequirement {
    #[serde(rename = "type")]
    kind: String,
    key_path: Option<PathBuf>,
    key_paths: Option<Vec<PathBuf>>,
    key_data: Option<String>,
    signed_identity: Option<Identity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "type")]
    kind: String,
}

impl Policy {
    /// Reads the policy at `path`; `None` when there is no file (everything is accepted).
    pub fn load(path: &Path) -> Result<Option<Policy>, TrustError> {
        let bad = |reason: String| TrustError::Policy { path: path.display().to_string(), reason };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        if meta.len() > MAX_POLICY {
            return Err(bad(format!("{} bytes (more than 1 MiB)", meta.len())));
        }
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let file: File = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let convert = |list: Vec<RawRequirement>, scope: &str| -> Result<Vec<Requirement>, TrustError> {
            if list.is_empty() {
                return Err(bad(format!("`{scope}` has no requirements (use [{{\"type\":\"reject\"}}] to refuse)")));
            }
            list.into_iter().map(|r| requirement(r, base).map_err(|e| bad(format!("`{scope}`: {e}")))).collect()
        };
        let default = convert(file.default, "default")?;
        let mut docker = BTreeMap::new();
        for (transport, scopes) in file.transports {
            // Other transports (containers-storage, oci, ...) do not reach wasmbox.
            if transport != "docker" {
                continue;
            }
            for (scope, list) in scopes {
                let reqs = convert(list, &scope)?;
                docker.insert(scope, reqs);
            }
        }
        Ok(Some(Policy { path: path.to_path_buf(), default, docker }))
    }

    /// The scope that applies to `repository` (`host/path`) with `tag`, and its requirements.
    pub fn scope_for(&self, repository: &str, tag: Option<&str>) -> (String, &[Requirement]) {
        for candidate in scopes(repository, tag) {
            if let Some(reqs) = self.docker.get(&candidate) {
                return (format!("transports.docker \"{candidate}\""), reqs);
            }
        }
        ("default".to_string(), &self.default)
    }

    /// Decides about the image `repository[:tag]` whose manifest is `digest`, given the
    /// signatures stored for it.
    pub fn decide(&self, repository: &str, tag: Option<&str>, digest: &str, evidence: &[Evidence]) -> Decision {
        let (scope, reqs) = self.scope_for(repository, tag);
        let mut verified = Vec::new();
        for r in reqs {
            match r {
                Requirement::Accept => {}
                Requirement::Reject => return Decision::Refused { scope, why: "the policy rejects this scope".into() },
                Requirement::Sigstore { keys } => {
                    let (found, why) = evidence::verify(evidence, keys, digest, Some(repository));
                    if found.is_empty() {
                        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                        let seen = if evidence.is_empty() {
                            "it has no signatures".to_string()
                        } else {
                            format!("{} signature(s), none valid: {}", evidence.len(), summarize(&why))
                        };
                        return Decision::Refused {
                            scope,
                            why: format!("needs a signature by {} for this digest; {seen}", names.join(" or ")),
                        };
                    }
                    verified.extend(found);
                }
            }
        }
        Decision::Accepted { scope, verified }
    }

    /// Human-readable requirements of a scope (for `wasmbox policy`).
    pub fn describe(reqs: &[Requirement]) -> Vec<String> {
        reqs.iter()
            .map(|r| match r {
                Requirement::Accept => "insecureAcceptAnything: accepted without signatures".to_string(),
                Requirement::Reject => "reject: refused".to_string(),
                Requirement::Sigstore { keys } => format!(
                    "sigstoreSigned: a cosign signature by {} naming the repository",
                    keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(" or ")
                ),
            })
            .collect()
    }
}

fn summarize(why: &[String]) -> String {
    let mut unique: Vec<&String> = Vec::new();
    for w in why {
        if !unique.contains(&w) {
            unique.push(w);
        }
    }
    let shown: Vec<&str> = unique.iter().take(3).map(|s| s.as_str()).collect();
    shown.join("; ")
}

fn requirement(r: RawRequirement, base: &Path) -> Result<Requirement, String> {
    let keyless = r.key_path.is_none() && r.key_paths.is_none() && r.key_data.is_none();
    match r.kind.as_str() {
        "insecureAcceptAnything" | "reject" if !keyless || r.signed_identity.is_some() => {
            Err(format!("`{}` takes no other fields", r.kind))
        }
        "insecureAcceptAnything" => Ok(Requirement::Accept),
        "reject" => Ok(Requirement::Reject),
        "sigstoreSigned" => {
            if let Some(id) = &r.signed_identity
                && id.kind != "matchRepository"
            {
                return Err(format!("signedIdentity `{}` is not supported (only matchRepository)", id.kind));
            }
            let mut keys = Vec::new();
            let mut paths: Vec<PathBuf> = r.key_paths.unwrap_or_default();
            paths.extend(r.key_path);
            for p in paths {
                let p = if p.is_absolute() { p } else { base.join(p) };
                let name = p.display().to_string();
                let pem = read_key(&p).map_err(|e| format!("key {name}: {e}"))?;
                keys.push(PublicKey::from_pem(&pem, &name).map_err(|e| e.to_string())?);
            }
            if let Some(data) = r.key_data {
                let pem = B64.decode(data.trim()).map_err(|e| format!("keyData is not base64: {e}"))?;
                let pem = String::from_utf8(pem).map_err(|_| "keyData is not a PEM".to_string())?;
                keys.push(PublicKey::from_pem(&pem, "keyData").map_err(|e| e.to_string())?);
            }
            if keys.is_empty() {
                return Err("sigstoreSigned needs keyPath, keyPaths or keyData".into());
            }
            Ok(Requirement::Sigstore { keys })
        }
        other => Err(format!("unknown requirement type `{other}`")),
    }
}

fn read_key(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > crate::keys::MAX_KEY_FILE {
        return Err("larger than a key file".into());
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// Scopes from the most specific: `repo:tag`, `repo`, each parent namespace, the host, then
/// `*.domain` wildcards for the host's parent domains.
fn scopes(repository: &str, tag: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = tag {
        out.push(format!("{repository}:{t}"));
    }
    let mut path = repository.to_string();
    loop {
        out.push(path.clone());
        match path.rsplit_once('/') {
            Some((parent, _)) => path = parent.to_string(),
            None => break,
        }
    }
    let host = repository.split('/').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    for i in 1..labels.len() {
        out.push(format!("*.{}", labels[i..].join(".")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::payload;

    const DIGEST: &str = "sha256:d3d68a92c1d8f94d00081a66cac86fc5fc62a09a7095982cb5a63861a6968f75";

    fn write(dir: &Path, policy: &str) -> Result<Option<Policy>, TrustError> {
        let path = dir.join("policy.json");
        std::fs::write(&path, policy).unwrap();
        Policy::load(&path)
    }

    #[test]
    fn the_most_specific_scope_wins() {
        assert_eq!(
            scopes("reg.example.com:5000/team/app", Some("1")),
            [
                "reg.example.com:5000/team/app:1",
                "reg.example.com:5000/team/app",
                "reg.example.com:5000/team",
                "reg.example.com:5000",
                "*.example.com",
                "*.com"
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "reg/team":[{"type":"insecureAcceptAnything"}],
                "reg/team/legacy":[{"type":"reject"}]}}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(p.decide("reg/team/app", Some("1"), DIGEST, &[]), Decision::Accepted { .. }));
        assert!(matches!(p.decide("reg/team/legacy", None, DIGEST, &[]), Decision::Refused { .. }));
        let Decision::Refused { scope, .. } = p.decide("other/x", None, DIGEST, &[]) else { panic!() };
        assert_eq!(scope, "default");
    }

    #[test]
    fn signed_scopes_need_a_valid_signature_from_a_listed_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate();
        std::fs::write(dir.path().join("k.pub"), key.public("k").to_pem()).unwrap();
        let p = write(dir.path(), r#"{"default":[{"type":"sigstoreSigned","keyPath":"k.pub"}]}"#).unwrap().unwrap();
        let Decision::Refused { why, .. } = p.decide("reg/app", None, DIGEST, &[]) else { panic!() };
        assert!(why.contains("has no signatures") && why.contains("k.pub"), "{why}");
        let signed = payload::encode("reg/app", DIGEST);
        let e = Evidence::simple(&signed, &key.sign(&signed));
        assert!(matches!(p.decide("reg/app", None, DIGEST, std::slice::from_ref(&e)), Decision::Accepted { .. }));
        let Decision::Refused { why, .. } = p.decide("reg/other", None, DIGEST, &[e]) else { panic!() };
        assert!(why.contains("another repository"), "{why}");
    }

    #[test]
    fn anything_unknown_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "{",
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
            r#"{"default":[{"type":"reject","extra":1}]}"#,
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"sigstoreSigned"}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"missing.pub"}]}"#,
            r#"{"default":[{"type":"insecureAcceptAnything"}],"oops":{}}"#,
        ] {
            assert!(write(dir.path(), bad).is_err(), "{bad}");
        }
        assert!(Policy::load(&dir.path().join("none.json")).unwrap().is_none());
    }
}
