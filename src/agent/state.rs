//! The agent's record of each app, `$WASMBOX_HOME/agent/state.json`: what runs, what ran
//! before, what failed, and the update in progress. Written atomically (temp file, fsync,
//! rename) before and after every step of an update, so an agent killed at any point finds
//! where it was: the recovery rules are in `update.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A step of an update; the one in progress is recorded before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Fetch,
    Verify,
    Start,
    Health,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub digest: String,
    pub stage: Stage,
    /// Why a rollback began (kept so a rollback finished after a restart still says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    pub name: String,
    /// The image reference as configured.
    pub desired: String,
    /// Manifest digest of the version that runs (the last one found healthy).
    pub current: Option<String>,
    /// The version before it (kept in the store for a rollback).
    pub previous: Option<String>,
    /// A digest that failed its health check: not tried again until the reference moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// `running`, `updating`, `rolling-back`, `waiting` (nothing deployed yet), `exited`.
    pub state: String,
    /// When the sources were last asked (RFC 3339).
    pub last_check: Option<String>,
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Completed sync passes; `agent sync` waits for it to move.
    #[serde(default)]
    pub syncs: u64,
    /// The last configuration error (the agent then keeps its last good configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// The token of the last `agent sync` request a completed pass had seen at its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<String>,
    #[serde(default)]
    pub apps: BTreeMap<String, AppState>,
}

pub fn dir(home: &Path) -> PathBuf {
    home.join("agent")
}

pub fn path(home: &Path) -> PathBuf {
    dir(home).join("state.json")
}

impl State {
    /// The recorded state; none yet is an empty one.
    pub fn load(home: &Path) -> anyhow::Result<State> {
        let path = path(home);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is damaged; move it aside to let the agent start from what runs", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, home: &Path) -> anyhow::Result<()> {
        let path = path(home);
        std::fs::create_dir_all(dir(home))?;
        let text = serde_json::to_vec_pretty(self)?;
        wasmbox_engine::fs::write_atomic(&path, &text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Now, as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    // Seconds are enough for a status line: `2026-11-28T16:30:00Z`.
    let full = wasmbox_host::log_time::format(wasmbox_host::log_time::now());
    format!("{}Z", &full[..19])
}

/// `sha256:abcdef…` → `abcdef012345` (12 hex digits, as `images` shows them).
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
