//! Flags shared by every command that starts a container (grants and limits), and their
//! conversion into the engine's `Capabilities` and `Limits`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use wasmbox_engine::units::{format_size, parse_duration, parse_size};
use wasmbox_engine::{Capabilities, Limits, NetPolicy, NetRule, Preopen};
use wasmbox_image::app::AppLimits;

#[derive(Args, Debug, Clone, Default)]
pub struct GrantArgs {
    /// Grant a host directory: HOST[:GUEST][:ro] (GUEST defaults to HOST; `:ro` makes it read-only)
    #[arg(short = 'v', long = "dir", value_name = "HOST[:GUEST][:ro]", value_parser = Preopen::parse)]
    pub dirs: Vec<Preopen>,

    /// Set an environment variable (NAME=VALUE), or copy NAME from the host environment
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file (NAME=VALUE lines, `#` comments, bare NAME copies)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,

    /// Allow sockets to HOST:PORT, IP[:PORT] or CIDR[:PORT], and lookups of allowed host names
    #[arg(long = "net-allow", value_name = "SPEC", value_parser = |s: &str| s.parse::<NetRule>())]
    pub net_allow: Vec<NetRule>,

    /// Grant an ONNX model to WASI-NN's load-by-name as NAME: SOURCE is an .onnx file or a
    /// model image (repeatable)
    #[arg(long = "nn-model", value_name = "NAME=SOURCE", value_parser = parse_nn_model)]
    pub nn_models: Vec<(String, String)>,

    /// Allow the guest to supply model bytes itself (WASI-NN load), up to SIZE [default: 64M]
    #[arg(long = "nn-allow-load", value_name = "SIZE", num_args = 0..=1, require_equals = true,
          default_missing_value = "64M", value_parser = parse_size)]
    pub nn_allow_load: Option<u64>,
}

/// `NAME=SOURCE` of `--nn-model`: NAME is what the guest asks for.
pub fn parse_nn_model(spec: &str) -> Result<(String, String), String> {
    let Some((name, source)) = spec.split_once('=') else {
        return Err(format!("invalid --nn-model `{spec}` (expected NAME=SOURCE, e.g. digits=./digits.onnx)"));
    };
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(format!("invalid --nn-model name `{name}` (1 to 128 printable characters)"));
    }
    if source.is_empty() || source.contains('\0') {
        return Err(format!("invalid --nn-model `{spec}`: empty SOURCE"));
    }
    Ok((name.to_string(), source.to_string()))
}

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory limit for the whole container: all linear memories and tables together [default: 1G]
    #[arg(short = 'm', long = "memory", value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Wall-clock deadline (e.g. 500ms, 5s, 2m); default: none
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Instruction budget (about one unit per Wasm instruction; host calls that produce data
    /// are charged per byte); default: none
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Open handles at once (files, directories, sockets, streams, HTTP fields) [default: 1024]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(8..=1_000_000))]
    pub max_handles: Option<u32>,
}

impl GrantArgs {
    /// The capabilities these flags grant; `args` are the guest's argv including argv[0], and
    /// `base_env` the app's own environment (an image's), which the flags override.
    pub fn capabilities(&self, args: Vec<String>, base_env: &[(String, String)]) -> anyhow::Result<Capabilities> {
        let mut env: Vec<(String, String)> = base_env.to_vec();
        for file in &self.env_files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("failed to read --env-file {}", file.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let entry = parse_env(line).with_context(|| format!("{}:{}", file.display(), i + 1))?;
                env.extend(entry);
            }
        }
        for spec in &self.env {
            env.extend(parse_env(spec)?);
        }
        // Later settings win, as with docker; keep each name once, at its last position.
        let mut deduped: Vec<(String, String)> = Vec::new();
        for (k, v) in env.into_iter().rev() {
            if !deduped.iter().any(|(seen, _)| *seen == k) {
                deduped.push((k, v));
            }
        }
        deduped.reverse();
        Ok(Capabilities {
            deps: None,
            preopens: self.dirs.clone(),
            env: deduped,
            args,
            net: NetPolicy::new(self.net_allow.clone()),
            ..Capabilities::default()
        })
    }
}

/// `NAME=VALUE` sets; a bare `NAME` copies the host's value, or nothing if the host has none.
fn parse_env(spec: &str) -> anyhow::Result<Option<(String, String)>> {
    let (name, value) = match spec.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (spec, None),
    };
    if name.is_empty() || name.contains('\0') || value.as_deref().is_some_and(|v| v.contains('\0')) {
        bail!("invalid environment variable `{spec}` (expected NAME=VALUE or NAME)");
    }
    let value = match value {
        Some(v) => Some(v),
        None => std::env::var(name).ok(),
    };
    Ok(value.map(|v| (name.to_string(), v)))
}

impl LimitArgs {
    /// The limits: each flag given wins, then the app's default, then ours. An image's app may
    /// only lower our defaults unless `may_raise` (the user opted in with `--grant-requested`,
    /// or the app is the user's own local wasmbox.toml): an image must not grant itself more
    /// than a plain `run` would. A raise that is ignored is said once on stderr.
    pub fn limits(&self, app: Option<&AppLimits>, may_raise: bool) -> anyhow::Result<Limits> {
        let app = app.cloned().unwrap_or_default();
        let app_memory = app.memory.as_deref().map(parse_size).transpose().map_err(anyhow::Error::msg)?;
        let app_timeout = app.timeout.as_deref().map(parse_duration).transpose().map_err(anyhow::Error::msg)?;
        let app_memory = match app_memory {
            Some(m) if m > Limits::DEFAULT_MEMORY && !may_raise && self.memory.is_none() => {
                eprintln!(
                    "note: the image asks for memory = {} (above the default {}); ignored: pass -m {} or --grant-requested to allow it",
                    format_size(m),
                    format_size(Limits::DEFAULT_MEMORY),
                    app.memory.as_deref().unwrap_or_default()
                );
                None
            }
            other => other,
        };
        Ok(Limits {
            memory_bytes: self.memory.or(app_memory).unwrap_or(Limits::DEFAULT_MEMORY),
            timeout: self.timeout.or(app_timeout),
            fuel: self.fuel.or(app.fuel),
            max_handles: self.max_handles.map_or(Limits::DEFAULT_MAX_HANDLES, |n| n as usize),
            ..Limits::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars");
        std::fs::write(&file, "# comment\nA=from-file\n\nB=keep=equals\n").unwrap();
        let g = GrantArgs {
            env: vec!["A=flag".into(), "C=".into(), "WASMBOX_SURELY_UNSET_VAR".into()],
            env_files: vec![file],
            ..Default::default()
        };
        let caps = g.capabilities(vec!["prog".into()], &[("A".into(), "image".into())]).unwrap();
        let env: Vec<(&str, &str)> = caps.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, [("B", "keep=equals"), ("A", "flag"), ("C", "")]);
        assert!(parse_env("=x").is_err());
    }

    #[test]
    fn flags_beat_app_defaults_beat_ours() {
        let app = AppLimits { memory: Some("64M".into()), timeout: Some("5s".into()), fuel: None };
        let none = LimitArgs { memory: None, timeout: None, fuel: None, max_handles: None };
        let l = none.limits(Some(&app), false).unwrap();
        assert_eq!((l.memory_bytes, l.timeout), (64 << 20, Some(Duration::from_secs(5))));
        let flags = LimitArgs { memory: Some(1 << 20), timeout: None, fuel: Some(7), max_handles: None };
        let l = flags.limits(Some(&app), false).unwrap();
        assert_eq!((l.memory_bytes, l.timeout, l.fuel), (1 << 20, Some(Duration::from_secs(5)), Some(7)));
        assert_eq!(none.limits(None, false).unwrap().memory_bytes, Limits::DEFAULT_MEMORY);
    }

    #[test]
    fn an_image_cannot_raise_its_own_memory_limit() {
        let greedy = AppLimits { memory: Some("4G".into()), timeout: None, fuel: None };
        let none = LimitArgs { memory: None, timeout: None, fuel: None, max_handles: None };
        assert_eq!(none.limits(Some(&greedy), false).unwrap().memory_bytes, Limits::DEFAULT_MEMORY);
        assert_eq!(none.limits(Some(&greedy), true).unwrap().memory_bytes, 4 << 30);
        let flag = LimitArgs { memory: Some(2 << 30), timeout: None, fuel: None, max_handles: None };
        assert_eq!(flag.limits(Some(&greedy), false).unwrap().memory_bytes, 2 << 30);
    }
}
