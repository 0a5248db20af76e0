//! `agent.toml`: the desired state of a device (docs/edge.md). Unknown keys are errors, every
//! value is checked when the file is read (a bad file is refused whole, the running agent
//! keeps its last good one), and relative paths are relative to the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use oci_spec::distribution::Reference;
use serde::Deserialize;
use wasmbox_engine::units::{parse_duration, parse_size};
use wasmbox_host::spec::RestartPolicy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    poll_interval: Option<String>,
    #[serde(default)]
    source: Vec<SourceFile>,
    #[serde(default)]
    app: Vec<AppFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    registry: Option<String>,
    oci_layout: Option<PathBuf>,
    /// Plain HTTP to a mirror that is not on this machine.
    #[serde(default)]
    insecure: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    name: String,
    image: String,
    restart: Option<String>,
    stop_timeout: Option<String>,
    port: Option<String>,
    args: Option<Vec<String>>,
    #[serde(default)]
    grants: GrantsFile,
    #[serde(default)]
    limits: LimitsFile,
    health: Option<HealthFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    net: Vec<String>,
    #[serde(default)]
    http: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory: Option<String>,
    fuel: Option<u64>,
    max_handles: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthFile {
    running: Option<String>,
    http: Option<String>,
    timeout: Option<String>,
}

/// Where images come from, in the order they are tried.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A registry mirror (`host[:port]`): an app's repository is looked up there.
    Mirror { registry: String, insecure: bool },
    /// An OCI Image Layout directory or tar (a mounted USB stick).
    Layout(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Mirror { registry, .. } => write!(f, "registry {registry}"),
            Source::Layout(path) => write!(f, "oci_layout {}", path.display()),
        }
    }
}

/// When a new version counts as healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Running this long without exiting or being restarted.
    Running(Duration),
    /// `GET PATH` on the app's port answers 2xx within `timeout`.
    Http { path: String, timeout: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    /// As written (tag or digest); the trust policy's scope comes from it.
    pub image: Reference,
    pub restart: RestartPolicy,
    /// How long the old version may finish on its own when an update stops it (whole seconds:
    /// WASI has no signals, so waiting longer only delays the switch).
    pub stop_timeout: Duration,
    pub port: Option<SocketAddr>,
    /// The guest's arguments; `None`: the image's own (its wasmbox.toml `args`).
    pub args: Option<Vec<String>>,
    /// `HOST:GUEST[:ro]`, host paths absolute.
    pub dirs: Vec<wasmbox_engine::Preopen>,
    pub env: BTreeMap<String, String>,
    pub net: Vec<String>,
    pub http: Vec<String>,
    pub memory: Option<u64>,
    pub fuel: Option<u64>,
    pub max_handles: Option<usize>,
    pub health: Health,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub poll_interval: Duration,
    pub sources: Vec<Source>,
    pub apps: Vec<App>,
}

/// What `health` is when an app says nothing.
pub const DEFAULT_HEALTH: Duration = Duration::from_secs(5);

/// What `stop_timeout` is when an app says nothing.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads and checks `path`.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    parse(&text, &base).with_context(|| format!("invalid {}", path.display()))
}

fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
    let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
    let poll_interval = match &file.poll_interval {
        Some(s) => parse_duration(s).map_err(|e| anyhow::anyhow!("poll_interval: {e}"))?,
        None => Duration::from_secs(30),
    };
    if poll_interval < Duration::from_millis(100) {
        bail!("poll_interval must be at least 100ms");
    }
    let mut sources = Vec::new();
    for s in file.source {
        sources.push(match (s.registry, s.oci_layout) {
            (Some(registry), None) => {
                if registry.is_empty() || registry.contains('/') {
                    bail!("[[source]] registry `{registry}`: expected host[:port]");
                }
                Source::Mirror { registry, insecure: s.insecure }
            }
            (None, Some(dir)) => Source::Layout(base.join(dir)),
            _ => bail!("each [[source]] needs exactly one of `registry` and `oci_layout`"),
        });
    }
    let mut apps: Vec<App> = Vec::new();
    for a in file.app {
        let app = app(a, base)?;
        if apps.iter().any(|x| x.name == app.name) {
            bail!("two apps are named `{}`", app.name);
        }
        apps.push(app);
    }
    Ok(Config { poll_interval, sources, apps })
}

fn app(a: AppFile, base: &Path) -> anyhow::Result<App> {
    let name = a.name;
    let in_app = |what: &str, e: String| anyhow::anyhow!("app `{name}`: {what}: {e}");
    // Container names are `<app>-<12 hex of the digest>`: the app name must fit docker's rule.
    let valid = name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        bail!("app name `{name}`: use up to 48 letters, digits, `_`, `.` and `-`, starting with a letter or digit");
    }
    let image = wasmbox_image::parse_reference(&a.image).map_err(|e| in_app("image", e.to_string()))?;
    let restart = match &a.restart {
        Some(r) => r.parse().map_err(|e| in_app("restart", e))?,
        None => RestartPolicy::Always,
    };
    let stop_timeout = match &a.stop_timeout {
        // No grace at all is a valid choice here (docker's `stop -t 0`).
        Some(t) if matches!(t.as_str(), "0" | "0s") => Duration::ZERO,
        Some(t) => parse_duration(t).map_err(|e| in_app("stop_timeout", e))?,
        None => DEFAULT_STOP_TIMEOUT,
    };
    let port = match &a.port {
        Some(p) => Some(p.parse::<SocketAddr>().map_err(|e| in_app("port", format!("`{p}`: {e} (expected IP:PORT)")))?),
        None => None,
    };
    let mut dirs = Vec::new();
    for d in &a.grants.dirs {
        let mut p = wasmbox_engine::Preopen::parse(d).map_err(|e| in_app("grants.dirs", e))?;
        p.host = base.join(&p.host);
        dirs.push(p);
    }
    for rule in &a.grants.net {
        rule.parse::<wasmbox_engine::NetRule>().map_err(|e| in_app("grants.net", e))?;
    }
    if !a.grants.http.is_empty() && port.is_none() {
        bail!("app `{name}`: grants.http is for HTTP apps (set `port`)");
    }
    let memory = match &a.limits.memory {
        Some(m) => Some(parse_size(m).map_err(|e| in_app("limits.memory", e))?),
        None => None,
    };
    let health = match a.health {
        None => Health::Running(DEFAULT_HEALTH),
        Some(HealthFile { running: Some(r), http: None, timeout: None }) => {
            Health::Running(parse_duration(&r).map_err(|e| in_app("health.running", e))?)
        }
        Some(HealthFile { running: None, http: Some(path), timeout }) => {
            if port.is_none() {
                bail!("app `{name}`: health.http needs `port` (the address the app serves on)");
            }
            if !path.starts_with('/') {
                bail!("app `{name}`: health.http `{path}` must start with `/`");
            }
            let timeout = match timeout {
                Some(t) => parse_duration(&t).map_err(|e| in_app("health.timeout", e))?,
                None => Duration::from_secs(10),
            };
            Health::Http { path, timeout }
        }
        Some(_) => {
            bail!("app `{name}`: health takes either `running = \"10s\"` or `http = \"/path\"` (with `timeout`)")
        }
    };
    Ok(App {
        name,
        image,
        restart,
        stop_timeout,
        port,
        args: a.args,
        dirs,
        env: a.grants.env,
        net: a.grants.net,
        http: a.grants.http,
        memory,
        fuel: a.limits.fuel,
        max_handles: a.limits.max_handles,
        health,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(text, Path::new("/etc/wasmbox")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", parse(text, Path::new("/etc/wasmbox")).unwrap_err())
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse_ok(
            r#"
poll_interval = "30s"
[[source]]
registry = "registry.local:5000"
[[source]]
oci_layout = "usb/images"
[[app]]
name = "sensor"
image = "registry.local:5000/edge/sensor:stable"
restart = "always"
grants = { dirs = ["/var/lib/sensor:/data"], env = { MODE = "field" }, net = ["10.0.0.5:1883"] }
limits = { memory = "64M" }
health = { running = "10s" }
[[app]]
name = "web"
stop_timeout = "0s"
image = "registry.local:5000/edge/web@sha256:0000000000000000000000000000000000000000000000000000000000000000"
port = "127.0.0.1:8080"
health = { http = "/healthz", timeout = "3s" }
"#,
        );
        assert_eq!(c.poll_interval, Duration::from_secs(30));
        assert_eq!(c.sources[1], Source::Layout(PathBuf::from("/etc/wasmbox/usb/images")));
        assert_eq!(c.apps[0].memory, Some(64 << 20));
        assert_eq!(c.apps[0].dirs[0].guest, "/data");
        assert_eq!(c.apps[0].health, Health::Running(Duration::from_secs(10)));
        assert_eq!(c.apps[1].health, Health::Http { path: "/healthz".into(), timeout: Duration::from_secs(3) });
        assert_eq!(c.apps[1].restart, RestartPolicy::Always);
        assert_eq!((c.apps[0].stop_timeout, c.apps[1].stop_timeout), (DEFAULT_STOP_TIMEOUT, Duration::ZERO));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse_err("pol_interval = \"1s\"").contains("unknown field `pol_interval`"));
        assert!(parse_err("[[app]]\nname = \"a\"\nimage = \"x:1\"\nlimit = {}").contains("unknown field `limit`"));
        assert!(parse_err("[[source]]\n").contains("exactly one of"));
        assert!(parse_err("[[app]]\nname = \"a b\"\nimage = \"x:1\"").contains("app name `a b`"));
        assert!(
            parse_err("[[app]]\nname = \"a\"\nimage = \"x:1\"\nhealth = { http = \"/h\" }").contains("needs `port`")
        );
        assert!(
            parse_err("[[app]]\nname = \"a\"\nimage = \"x:1\"\n[[app]]\nname = \"a\"\nimage = \"y:1\"")
                .contains("two apps")
        );
        assert!(
            parse_err("[[app]]\nname = \"a\"\nimage = \"x:1\"\nrestart = \"sometimes\"").contains("invalid --restart")
        );
        assert!(
            parse_err("[[app]]\nname = \"a\"\nimage = \"x:1\"\nlimits = { memory = \"lots\" }")
                .contains("limits.memory")
        );
    }
}
