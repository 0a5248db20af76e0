//! `ContainerSpec`: everything needed to (re)start a container, as stored in the database and
//! sent by the CLI — plain data, already resolved (absolute paths, final environment).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmbox_engine::{
    Capabilities, EngineError, Limits, NetPolicy, NetRule, NnGrants, NnModel, Output, Preopen, Stdin,
};

use crate::error::HostError;

/// When the supervisor starts a container again after it ends (docker's `--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// After a non-zero exit, a trap or a limit kill, at most `max` times (`None`: no cap).
    OnFailure { max: Option<u32> },
    /// After every end that was not a `stop`/`kill`.
    Always,
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid --restart `{s}` (expected no, on-failure[:MAX] or always)");
        match s.split_once(':') {
            None if s == "no" => Ok(RestartPolicy::No),
            None if s == "always" => Ok(RestartPolicy::Always),
            None if s == "on-failure" => Ok(RestartPolicy::OnFailure { max: None }),
            Some(("on-failure", n)) => Ok(RestartPolicy::OnFailure { max: Some(n.parse().map_err(|_| bad())?) }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::OnFailure { max: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
        }
    }
}

/// A directory grant with an absolute host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// `None`: the daemon picks one.
    #[serde(default)]
    pub name: Option<String>,
    /// What the user asked to run, for display (a path or an image reference).
    pub source: String,
    /// sha256 (hex) of the Wasm binary, stored in `$WASMBOX_HOME/containers/wasm/`.
    pub wasm_sha256: String,
    /// The guest's argv, argv[0] first.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// `--net-allow` rules, as typed.
    #[serde(default)]
    pub net_allow: Vec<String>,
    pub memory_bytes: u64,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub fuel: Option<u64>,
    /// `--max-handles`; `None` (and specs stored before it existed): the engine's default.
    #[serde(default)]
    pub max_handles: Option<usize>,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Remove the container when it ends for good (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// Size at which the log file is rotated; one rotated file is kept.
    pub log_max_bytes: u64,
    /// Serve this `wasi:http/proxy` component on this address instead of running a command.
    #[serde(default)]
    pub publish: Option<String>,
    /// `--http-allow` rules (outbound wasi:http of a `publish` container), as typed.
    #[serde(default)]
    pub http_allow: Vec<String>,
    /// The image this Wasm came from: the daemon checks it against its own trust policy at
    /// every start. `None`: a local file (outside the policy).
    #[serde(default)]
    pub image: Option<ImageOrigin>,
    /// `--nn-model NAME=SOURCE`, each resolved to a model file on the host.
    #[serde(default)]
    pub nn_models: Vec<NnModelGrant>,
    /// `--nn-allow-load`: guest-supplied models up to this many bytes.
    #[serde(default)]
    pub nn_allow_load: Option<u64>,
    /// A composed component's record of its dependencies' grants (read from its Wasm by `run -d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps: Option<wasmbox_engine::deps::Record>,
}

/// A WASI-NN model granted by name, as an absolute path to the model file (loaded at every
/// start; containers of one daemon share a model loaded from the same bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NnModelGrant {
    pub name: String,
    pub path: PathBuf,
}

/// An image reference and the manifest digest it resolved to when the container was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageOrigin {
    pub reference: String,
    pub manifest_digest: String,
}

impl ContainerSpec {
    pub const DEFAULT_LOG_MAX: u64 = 10 << 20;

    /// Checks what the CLI cannot be trusted to have checked (the API is public).
    pub fn validate(&self) -> Result<(), HostError> {
        let bad = |m: String| Err(HostError::BadRequest(m));
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        if self.wasm_sha256.len() != 64 || !self.wasm_sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return bad(format!("invalid wasm_sha256 `{}`", self.wasm_sha256));
        }
        for d in &self.dirs {
            if !d.host.is_absolute() {
                return bad(format!("directory grant {} is not an absolute path", d.host.display()));
            }
        }
        for r in &self.net_allow {
            NetRule::from_str(r).map_err(HostError::BadRequest)?;
        }
        if self.log_max_bytes < 4096 {
            return bad("--log-max-size must be at least 4K".into());
        }
        for r in &self.http_allow {
            r.parse::<wasmbox_engine::http::HttpRule>().map_err(HostError::BadRequest)?;
        }
        for m in &self.nn_models {
            if m.name.is_empty() || !m.path.is_absolute() {
                return bad(format!("invalid model grant `{}` = {}", m.name, m.path.display()));
            }
        }
        if let Some(p) = &self.publish {
            p.parse::<std::net::SocketAddr>().map_err(|e| HostError::BadRequest(format!("invalid -p `{p}`: {e}")))?;
        }
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes,
            timeout: self.timeout_ms.map(Duration::from_millis),
            fuel: self.fuel,
            max_handles: self.max_handles.unwrap_or(Limits::DEFAULT_MAX_HANDLES),
            ..Limits::default()
        }
    }

    /// The grants, with stdin at EOF and output to `output`. Loads the granted models: a model
    /// file that is gone or no longer loads fails the start (126/127).
    pub fn capabilities(&self, output: Output) -> Result<Capabilities, EngineError> {
        let rules = self.net_allow.iter().filter_map(|r| NetRule::from_str(r).ok()).collect();
        let mut nn = NnGrants { allow_load: self.nn_allow_load, ..NnGrants::default() };
        for m in &self.nn_models {
            let model = || m.path.display().to_string();
            let bytes = std::fs::read(&m.path)
                .map_err(|_| EngineError::ModelNotFound { name: m.name.clone(), model: model() })?;
            let loaded = NnModel::load_onnx(&bytes).map_err(|e| EngineError::BadModel {
                name: m.name.clone(),
                model: model(),
                reason: e.to_string(),
            })?;
            nn.models.insert(m.name.clone(), loaded);
        }
        Ok(Capabilities {
            preopens: self
                .dirs
                .iter()
                .map(|d| Preopen { host: d.host.clone(), guest: d.guest.clone(), read_only: d.read_only })
                .collect(),
            env: self.env.clone(),
            args: self.args.clone(),
            net: NetPolicy::new(rules),
            stdin: Stdin::Null,
            output,
            deterministic: None,
            nn,
            deps: self.deps.clone(),
        })
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, and at most 128 characters here.
pub fn validate_name(name: &str) -> Result<(), HostError> {
    let ok = name.len() <= 128
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(HostError::BadRequest(format!(
            "invalid container name `{name}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!("on-failure:3".parse(), Ok(RestartPolicy::OnFailure { max: Some(3) }));
        assert_eq!("on-failure".parse(), Ok(RestartPolicy::OnFailure { max: None }));
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        assert_eq!(RestartPolicy::OnFailure { max: Some(3) }.to_string(), "on-failure:3");
    }

    #[test]
    fn names() {
        assert!(validate_name("web-1.a_b").is_ok());
        for bad in ["", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
