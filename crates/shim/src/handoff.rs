//! `handoff`: at `shim start`, write the container's `Plan` into its bundle's spec.
//!
//! containerd runs `containerd-shim-wasmbox-v1 ... start` once per task, with the task's bundle
//! as working directory, before it asks the shim to create the task (runtime v2 protocol). That
//! is the last moment the shim sees the whole spec on the host; see `plan` for why it is needed.
//! Any `WASMBOX_SHIM_PLAN` entry the user put in the env is replaced, so a pod spec cannot
//! forge grants through its env.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::plan::{PLAN_ENV, Plan};

/// True when containerd invoked the shim binary with the `start` action (its last argument).
pub fn is_start(args: &[String]) -> bool {
    args.len() > 1 && args.last().map(String::as_str) == Some("start")
}

/// Rewrites `bundle/config.json` with the plan entry in `process.env`; returns the plan.
pub fn write_plan(bundle: &Path) -> Result<Plan> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("cannot read the OCI spec {}", path.display()))?;
    let mut spec: Value =
        serde_json::from_slice(&text).with_context(|| format!("the OCI spec {} is not JSON", path.display()))?;
    let plan = Plan::from_spec(&spec, |source| Path::new(source).is_dir());
    let Some(process) = spec.get_mut("process").and_then(Value::as_object_mut) else {
        return Ok(plan);
    };
    let env = process.entry("env").or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(entries) = env else {
        anyhow::bail!("the OCI spec {}: process.env is not a list", path.display());
    };
    let prefix = format!("{PLAN_ENV}=");
    entries.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
    entries.push(Value::String(plan.to_env()));
    // Same directory and rename: containerd or a crash never sees half a spec.
    let tmp = bundle.join(".config.json.wasmbox");
    std::fs::write(&tmp, serde_json::to_vec(&spec)?).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn start_is_the_last_argument() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_start(&args(&["shim", "-namespace", "default", "-id", "x", "start"])));
        assert!(!is_start(&args(&["shim", "-namespace", "default", "-id", "start", "delete"])));
        assert!(!is_start(&args(&["shim"])));
    }

    #[test]
    fn writes_the_plan_and_replaces_a_forged_one() {
        let bundle = tempfile::tempdir().unwrap();
        let data = bundle.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let spec = json!({
            "process": { "args": ["/app.wasm"], "env": ["A=1", format!("{PLAN_ENV}={{\"dirs\":[{{\"path\":\"/\",\"read_only\":false}}]}}")] },
            "mounts": [{ "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"] }],
            "annotations": { "wasmbox.dev/net-allow": "127.0.0.1:80" },
        });
        std::fs::write(bundle.path().join("config.json"), spec.to_string()).unwrap();
        let plan = write_plan(bundle.path()).unwrap();
        assert_eq!(plan.dirs.len(), 1);
        let written: Value =
            serde_json::from_slice(&std::fs::read(bundle.path().join("config.json")).unwrap()).unwrap();
        let env: Vec<String> =
            written["process"]["env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(env.len(), 2, "{env:?}");
        assert_eq!(env[0], "A=1");
        let (taken, guest) = Plan::take_from_env(&env);
        let taken = taken.unwrap();
        assert_eq!(taken, plan);
        assert_eq!(taken.dirs[0].path, "/data");
        assert!(taken.dirs[0].read_only);
        assert_eq!(taken.net_allow, vec!["127.0.0.1:80".to_string()]);
        assert_eq!(guest.len(), 1);
        assert!(!bundle.path().join(".config.json.wasmbox").exists());
    }

    #[test]
    fn a_missing_spec_is_a_clear_error() {
        let bundle = tempfile::tempdir().unwrap();
        let e = write_plan(bundle.path()).unwrap_err();
        assert!(format!("{e:#}").contains("cannot read the OCI spec"), "{e:#}");
    }
}
