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
    /// `[[route]]` tables: `wasmbox serve DIR` maps path prefixes to components. A routed app
    /// is served from its directory (not built into one image), so routes are never stored.
    #[serde(default, rename = "route", skip_serializing)]
    pub routes: Vec<AppRoute>,
    /// `[nn] models = { NAME = "path.onnx" }`: models bundled into the app's image as layers of
    /// their own, the app's own content (loaded by name without a flag).
    #[serde(default, skip_serializing_if = "AppNn::is_empty")]
    pub nn: AppNn,
    /// `[dependencies]`: an interface (`example:greet/greeter`) or package (`example:greet`) →
    /// the component that provides it. `build` composes them into the image's one component
    /// (so they are not stored in the app manifest); `run`/`serve` of the directory compose
    /// on the fly.
    #[serde(default, skip_serializing)]
    pub dependencies: BTreeMap<String, AppDep>,
}

/// One `[dependencies]` value: a path relative to `wasmbox.toml` or an image reference, or a
/// table with the source and what of the app's grants the dependency may share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AppDep {
    Source(String),
    Table(AppDepTable),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDepTable {
    pub source: String,
    #[serde(default)]
    pub grants: AppDepGrants,
}

/// A dependency's share of the app's grants (nothing by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDepGrants {
    /// Guest paths of the app's directories (`/data`, `/data:ro`).
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Names of the app's variables it sees too, or a table NAME = VALUE set for it alone.
    #[serde(default)]
    pub env: AppDepEnv,
    /// The app's `--net-allow` rules (as written) its sockets may use; `true`: all of them.
    #[serde(default)]
    pub net: AppDepRules,
    /// `--http-allow` hosts for its outbound HTTP (`serve`), within the app's; `true`: all.
    #[serde(default)]
    pub http: AppDepRules,
    /// WASI-NN models of the app's, by name.
    #[serde(default)]
    pub nn: Vec<String>,
}

/// `net`/`http` of a dependency's grants: a list of rules, or `true` for all of the app's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AppDepRules {
    All(bool),
    Rules(Vec<String>),
}

impl Default for AppDepRules {
    fn default() -> Self {
        AppDepRules::All(false)
    }
}

impl AppDepRules {
    fn to_grants(&self) -> Vec<String> {
        match self {
            AppDepRules::All(true) => vec![wasmbox_engine::deps::record::ALL.to_string()],
            AppDepRules::All(false) => Vec::new(),
            AppDepRules::Rules(rules) => rules.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AppDepEnv {
    Names(Vec<String>),
    Values(BTreeMap<String, String>),
}

impl Default for AppDepEnv {
    fn default() -> Self {
        AppDepEnv::Names(Vec::new())
    }
}

impl AppDep {
    pub fn source(&self) -> &str {
        match self {
            AppDep::Source(s) => s,
            AppDep::Table(t) => &t.source,
        }
    }

    /// The grants in the form the composition records.
    pub fn grants(&self) -> wasmbox_engine::deps::DepGrants {
        let AppDep::Table(t) = self else { return Default::default() };
        let g = &t.grants;
        let (env, env_set) = match &g.env {
            AppDepEnv::Names(names) => (names.clone(), BTreeMap::new()),
            AppDepEnv::Values(values) => (Vec::new(), values.clone()),
        };
        wasmbox_engine::deps::DepGrants {
            dirs: g.dirs.clone(),
            env,
            env_set,
            net: g.net.to_grants(),
            http: g.http.to_grants(),
            nn: g.nn.clone(),
        }
    }
}

/// The `[nn]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppNn {
    /// NAME = an .onnx file relative to `wasmbox.toml`.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

impl AppNn {
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// One `[[route]]`: requests whose path starts with `path` (whole segments; the longest
/// prefix wins) go to a fresh instance of `wasm`, with this route's own grants and limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoute {
    pub path: String,
    /// A component file relative to `wasmbox.toml`, or an image reference.
    pub wasm: String,
    #[serde(default)]
    pub limits: AppLimits,
    /// Granted by whoever serves the directory (this file is theirs, like a compose file).
    #[serde(default)]
    pub grants: RouteGrants,
}

/// A route's grants, in the syntax of the flags they mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteGrants {
    /// `-v` syntax, `HOST[:GUEST][:ro]`; a relative HOST is relative to `wasmbox.toml`.
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `--http-allow` syntax.
    #[serde(default)]
    pub http: Vec<String>,
    /// `--nn-model` as a table: NAME = SOURCE (an .onnx file relative to `wasmbox.toml`, or a
    /// model image in the store).
    #[serde(default)]
    pub nn: BTreeMap<String, String>,
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
    /// WASI-NN models the app loads by name; only the user can grant one (`--nn-model NAME=…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nn: Vec<String>,
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
        if app.wasm.as_os_str().is_empty() && app.routes.is_empty() {
            return Err(bad("missing `wasm = \"path/to/app.wasm\"` (or `[[route]]` tables for `serve`)".into()));
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
        for (key, dep) in &self.dependencies {
            if !key.contains(':') {
                return Err(format!(
                    "[dependencies] key `{key}` must be an interface (`example:greet/greeter`) or a package (`example:greet`)"
                ));
            }
            if dep.source().is_empty() {
                return Err(format!("[dependencies] `{key}` has an empty source"));
            }
            let grants = dep.grants();
            for d in &grants.dirs {
                if !d.starts_with('/') {
                    return Err(format!(
                        "[dependencies] `{key}`: grant dir `{d}` must be the app's guest path (e.g. \"/data\")"
                    ));
                }
            }
            let all = wasmbox_engine::deps::record::ALL;
            for rule in grants.net.iter().filter(|r| *r != all) {
                rule.parse::<NetRule>().map_err(|e| format!("[dependencies] `{key}`: {e}"))?;
            }
            for rule in grants.http.iter().filter(|r| *r != all) {
                rule.parse::<wasmbox_engine::http::HttpRule>().map_err(|e| format!("[dependencies] `{key}`: {e}"))?;
            }
        }
        let mut paths = std::collections::BTreeSet::new();
        for route in &self.routes {
            validate_route(route)?;
            if !paths.insert(route.path.trim_end_matches('/')) {
                return Err(format!("two routes for path `{}`", route.path));
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

fn validate_route(route: &AppRoute) -> Result<(), String> {
    let at = |why: String| format!("route `{}`: {why}", route.path);
    if !route.path.starts_with('/') || route.path.contains(['?', '#', '\0']) {
        return Err(at("`path` must be a path prefix starting with `/`".into()));
    }
    if route.wasm.is_empty() {
        return Err(at("`wasm` must name a component file or an image".into()));
    }
    if let Some(m) = &route.limits.memory {
        parse_size(m).map_err(at)?;
    }
    if let Some(t) = &route.limits.timeout {
        parse_duration(t).map_err(at)?;
    }
    for d in &route.grants.dirs {
        wasmbox_engine::Preopen::parse(d).map_err(at)?;
    }
    for h in &route.grants.http {
        h.parse::<wasmbox_engine::http::HttpRule>().map_err(at)?;
    }
    for name in route.grants.env.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(at(format!("invalid environment variable name `{name}`")));
        }
    }
    Ok(())
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
            ("name = \"a\"\n[[route]]\npath = \"api\"\nwasm = \"a.wasm\"", "starting with `/`"),
            (
                "name = \"a\"\n[[route]]\npath = \"/a\"\nwasm = \"a.wasm\"\n[[route]]\npath = \"/a/\"\nwasm = \"b.wasm\"",
                "two routes",
            ),
            (
                "name = \"a\"\n[[route]]\npath = \"/\"\nwasm = \"a.wasm\"\ngrants = { http = [\"http://x\"] }",
                "without a scheme",
            ),
            ("name = \"a\"\n[[route]]\npath = \"/\"\nwasm = \"a.wasm\"\nlimits = { timeout = \"soon\" }", "route `/`"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }
}
