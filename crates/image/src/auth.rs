//! Registry credentials: `wasmbox login` writes `$WASMBOX_HOME/auth.json` (mode 0600, the
//! docker `config.json` shape); lookups also read `~/.docker/config.json` (or `$DOCKER_CONFIG`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use wasmbox_engine::fs::write_atomic_mode;

use crate::error::ImageError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

impl AuthEntry {
    fn credentials(&self) -> Option<(String, String)> {
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Some((u.clone(), p.clone()));
        }
        let decoded = String::from_utf8(STANDARD.decode(self.auth.as_ref()?).ok()?).ok()?;
        let (u, p) = decoded.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

fn read(path: &Path) -> Option<AuthFile> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn docker_config() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json")),
    }
}

/// Credentials for `registry` (`host[:port]`): ours first, then docker's.
pub fn lookup(wasmbox_auth: &Path, registry: &str) -> Option<(String, String)> {
    let keys = [registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    let docker_hub = ["https://index.docker.io/v1/".to_string()];
    let files = [Some(wasmbox_auth.to_path_buf()), docker_config()];
    for file in files.iter().flatten().filter_map(|p| read(p)) {
        let hub = if registry == "docker.io" { &docker_hub[..] } else { &[] };
        for key in keys.iter().chain(hub) {
            if let Some(creds) = file.auths.get(key).and_then(AuthEntry::credentials) {
                return Some(creds);
            }
        }
    }
    None
}

/// Stores credentials for `registry` in `wasmbox_auth` (0600, atomically).
pub fn store(wasmbox_auth: &Path, registry: &str, user: &str, password: &str) -> Result<(), ImageError> {
    let mut file = read(wasmbox_auth).unwrap_or_default();
    let auth = STANDARD.encode(format!("{user}:{password}"));
    file.auths.insert(registry.to_string(), AuthEntry { auth: Some(auth), ..Default::default() });
    let text = serde_json::to_vec_pretty(&file).expect("auth file serializes");
    if let Some(dir) = wasmbox_auth.parent() {
        std::fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
    }
    write_atomic_mode(wasmbox_auth, &text, 0o600).map_err(ImageError::io("write", wasmbox_auth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stored_credentials_are_private_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        store(&path, "127.0.0.1:5000", "alice", "s3:cret").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(lookup(&path, "127.0.0.1:5000"), Some(("alice".into(), "s3:cret".into())));
        assert_eq!(lookup(&path, "other:5000"), None);
    }
}
