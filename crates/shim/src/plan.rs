//! `Plan`: what a container is granted, read from its OCI runtime spec (`config.json`).
//!
//! runwasi runs `Sandbox::run_wasi` inside the youki container, after `pivot_root`: by then the
//! bundle and its spec are out of reach and `RuntimeContext` offers only args, env and the
//! entrypoint. The spec's mounts, annotations and memory limit are what wasmbox's sandbox is
//! made of, so the shim reads them on the host when containerd runs `shim start` (with the bundle
//! as working directory, before the task is created) and hands them in as one environment entry
//! of the spec's process (see `handoff`). The guest never sees that entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment entry that carries the plan into the container.
pub const PLAN_ENV: &str = "WASMBOX_SHIM_PLAN";

/// Annotations that grant network access (same syntax as `wasmbox run --net-allow`, comma-separated).
pub const NET_ALLOW: &str = "wasmbox.dev/net-allow";
/// Outbound `wasi:http` hosts an HTTP component may call (as `wasmbox serve --http-allow`).
pub const HTTP_ALLOW: &str = "wasmbox.dev/http-allow";
/// Where an HTTP component listens (`ADDR:PORT`); the env var of the same meaning is below.
pub const HTTP_LISTEN: &str = "wasmbox.dev/http-listen";
/// Env alternative to the `wasmbox.dev/http-listen` annotation (annotations need CRI pass-through).
pub const HTTP_LISTEN_ENV: &str = "WASMBOX_HTTP_LISTEN";
/// Where an HTTP component listens when nothing says otherwise: every address of the pod network.
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:8080";

/// Mount destinations that are the container's system plumbing, never a guest's data.
const SYSTEM_PREFIXES: [&str; 3] = ["/proc", "/sys", "/dev"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Directories the guest may open: the spec's bind mounts, at their destinations.
    pub dirs: Vec<Dir>,
    /// `linux.resources.memory.limit`, which becomes the Wasm memory limit.
    pub memory_limit: Option<u64>,
    pub net_allow: Vec<String>,
    pub http_allow: Vec<String>,
    pub http_listen: Option<String>,
    /// Mounts that are not granted and why (logged at start).
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dir {
    pub path: String,
    pub read_only: bool,
}

impl Plan {
    /// Reads the plan from a runtime spec. `is_dir` tells whether a mount source is a directory
    /// (WASI grants directories; a bind-mounted file such as `/etc/hosts` is not granted).
    pub fn from_spec(spec: &Value, is_dir: impl Fn(&str) -> bool) -> Plan {
        let mut plan = Plan::default();
        for mount in spec["mounts"].as_array().into_iter().flatten() {
            let dest = mount["destination"].as_str().unwrap_or_default();
            let options: Vec<&str> =
                mount["options"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let is_bind =
                mount["type"].as_str() == Some("bind") || options.iter().any(|o| *o == "bind" || *o == "rbind");
            let system = SYSTEM_PREFIXES.iter().any(|p| dest == *p || dest.starts_with(&format!("{p}/")));
            if !is_bind || system || !dest.starts_with('/') {
                continue;
            }
            let source = mount["source"].as_str().unwrap_or_default();
            if !is_dir(source) {
                plan.skipped.push(format!("{dest}: not a directory (WASI grants directories)"));
                continue;
            }
            plan.dirs.push(Dir { path: dest.to_string(), read_only: options.contains(&"ro") });
        }
        plan.memory_limit = spec["linux"]["resources"]["memory"]["limit"].as_i64().filter(|l| *l > 0).map(|l| l as u64);
        let annotation = |key: &str| spec["annotations"][key].as_str().map(str::to_string);
        let list = |key: &str| {
            annotation(key)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default()
        };
        plan.net_allow = list(NET_ALLOW);
        plan.http_allow = list(HTTP_ALLOW);
        plan.http_listen = annotation(HTTP_LISTEN);
        plan
    }

    /// The `KEY=VALUE` entry that carries this plan.
    pub fn to_env(&self) -> String {
        format!("{PLAN_ENV}={}", serde_json::to_string(self).expect("a plan serializes"))
    }

    /// Splits the container's env into the plan and the guest's own entries. A container started
    /// without the hand-off (an older shim, a bundle made by hand) gets the empty plan: nothing granted.
    pub fn take_from_env(env: &[String]) -> (Result<Plan, String>, Vec<(String, String)>) {
        let mut plan = Ok(Plan::default());
        let mut guest = Vec::new();
        for entry in env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            if key == PLAN_ENV {
                plan = serde_json::from_str(value).map_err(|e| format!("unreadable {PLAN_ENV}: {e}"));
            } else {
                guest.push((key.to_string(), value.to_string()));
            }
        }
        (plan, guest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "process": { "args": ["/app.wasm"], "env": ["PATH=/bin", "FOO=bar"] },
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["rbind"] },
                { "destination": "/run", "type": "tmpfs", "source": "tmpfs" },
                { "destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"] },
                { "destination": "/cache", "source": "/srv/cache", "options": ["bind", "rw"] },
                { "destination": "/etc/hosts", "type": "bind", "source": "/srv/hosts", "options": ["rbind", "ro"] },
            ],
            "annotations": {
                "wasmbox.dev/net-allow": "10.0.0.1:5432, example.com:443",
                "wasmbox.dev/http-listen": "127.0.0.1:9000",
                "io.kubernetes.cri.sandbox-id": "abc",
            },
            "linux": { "resources": { "memory": { "limit": 67108864 } } },
        })
    }

    #[test]
    fn mounts_annotations_and_memory() {
        let plan = Plan::from_spec(&spec(), |s| s != "/srv/hosts");
        assert_eq!(
            plan.dirs,
            vec![Dir { path: "/data".into(), read_only: true }, Dir { path: "/cache".into(), read_only: false }]
        );
        assert_eq!(plan.skipped, vec!["/etc/hosts: not a directory (WASI grants directories)".to_string()]);
        assert_eq!(plan.memory_limit, Some(64 << 20));
        assert_eq!(plan.net_allow, vec!["10.0.0.1:5432".to_string(), "example.com:443".to_string()]);
        assert!(plan.http_allow.is_empty());
        assert_eq!(plan.http_listen.as_deref(), Some("127.0.0.1:9000"));
    }

    #[test]
    fn an_empty_spec_grants_nothing() {
        let plan = Plan::from_spec(&json!({}), |_| true);
        assert_eq!(plan, Plan::default());
        let plan = Plan::from_spec(&json!({ "linux": { "resources": { "memory": { "limit": -1 } } } }), |_| true);
        assert_eq!(plan.memory_limit, None);
    }

    #[test]
    fn env_round_trip_keeps_the_plan_from_the_guest() {
        let plan = Plan::from_spec(&spec(), |_| true);
        let env = vec!["A=1".to_string(), plan.to_env(), "B=x=y".to_string()];
        let (taken, guest) = Plan::take_from_env(&env);
        assert_eq!(taken.unwrap(), plan);
        assert_eq!(guest, vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]);
        let (none, _) = Plan::take_from_env(&["A=1".to_string()]);
        assert_eq!(none.unwrap(), Plan::default());
        let (bad, _) = Plan::take_from_env(&[format!("{PLAN_ENV}=nope")]);
        assert!(bad.unwrap_err().contains(PLAN_ENV));
    }
}
