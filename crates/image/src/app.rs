//! `App`: the `wasmbox.toml` app manifest — what the app is, its defaults, and the
//! capabilities it *requests*. Requests travel inside the image and are never granted silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmbox_engine::NetRule;
use wasmbox_engine::units::{parse_duration, parse_size};

use crate::error::ImageError;

pub const FILE_NAME: &str = "wasmbox.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Wasm file, relative to the directory of `wasmbox.toml` (not stored in images).
    #[serde(default, skip_serializing)]
    pub wasm: PathBuf,
    /// Default arguments when `run` is given none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment baked into the app (like a Dockerfile's ENV); `-e` overrides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "AppLimits::is_empty")]
    pub limits: AppLimits,
    #[serde(default, skip_serializing_if = "Requests::is_empty")]
    pub capabilities: Requests,
}

/// Default limits (flags override): `memory = "64M"`, `timeout = "5s"`, `fuel = 1000000`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

impl AppLimits {
    fn is_empty(&self) -> bool {
        *self == AppLimits::default()
    }
}

/// What the app asks the host for. Granted only by the user's flags (or `--grant-requested`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// Directories the app expects at these guest paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<RequestedDir>,
    /// Host environment variables the app wants copied in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Network destinations, in `--net-allow` syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<String>,
    /// Outbound HTTP hosts (for `serve`), `HOST[:PORT]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        *self == Requests::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedDir {
    pub guest: String,
    #[serde(default)]
    pub read_only: bool,
}

impl App {
    /// Reads and validates `dir/wasmbox.toml`.
    pub fn load(dir: &Path) -> Result<App, ImageError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(ImageError::io("read", &path))?;
        let bad = |reason: String| ImageError::BadApp { path: path.clone(), reason };
        let app: App = toml::from_str(&text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        app.validate().map_err(bad)?;
        if app.wasm.as_os_str().is_empty() {
            return Err(bad("missing `wasm = \"path/to/app.wasm\"`".into()));
        }
        Ok(app)
    }

    /// Parses the JSON form stored in an image annotation.
    pub fn from_json(json: &str) -> Result<App, ImageError> {
        let app: App = serde_json::from_str(json)
            .map_err(|e| ImageError::Malformed { what: "app manifest annotation", reason: e.to_string() })?;
        app.validate().map_err(|reason| ImageError::Malformed { what: "app manifest annotation", reason })?;
        Ok(app)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("app manifest serializes")
    }

    /// Checks every field a later `run` would have to parse, so bad input fails at build time.
    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 128 {
            return Err("`name` must be 1-128 characters".into());
        }
        if let Some(m) = &self.limits.memory {
            parse_size(m)?;
        }
        if let Some(t) = &self.limits.timeout {
            parse_duration(t)?;
        }
        for spec in &self.capabilities.net {
            spec.parse::<NetRule>()?;
        }
        for d in &self.capabilities.dirs {
            if !d.guest.starts_with('/') || d.guest.contains('\0') {
                return Err(format!("requested dir `{}` must be an absolute guest path", d.guest));
            }
        }
        for name in self.capabilities.env.iter().chain(self.env.keys()) {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("invalid environment variable name `{name}`"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<App, ImageError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        App::load(dir.path())
    }

    #[test]
    fn full_manifest_roundtrips_through_json_without_the_path() {
        let app = load(
            r#"
            name = "greeter"
            version = "1.2.0"
            wasm = "greeter.wasm"
            args = ["--loud"]
            env = { LEVEL = "info" }
            limits = { memory = "64M", timeout = "5s" }
            [capabilities]
            dirs = [{ guest = "/data", read_only = true }]
            env = ["API_KEY"]
            net = ["api.example.com:443"]
            "#,
        )
        .unwrap();
        assert_eq!(app.capabilities.dirs, [RequestedDir { guest: "/data".into(), read_only: true }]);
        let back = App::from_json(&app.to_json()).unwrap();
        assert_eq!(back.wasm, PathBuf::new(), "host path stays out of the image");
        assert_eq!(App { wasm: app.wasm.clone(), ..back }, app);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("name = \"a\"", "missing `wasm"),
            ("name = \"a\"\nwasm = \"a.wasm\"\ncolour = 1", "colour"),
            ("name = \"a\"\nwasm = \"a.wasm\"\nlimits = { memory = \"lots\" }", "invalid size"),
            ("name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\nnet = [\"example.com\"]", "needs a port"),
            ("name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\ndirs = [{ guest = \"data\" }]", "absolute"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }
}
