//! `recover`: make the state consistent when the daemon starts. Containers the database says
//! were running were stopped with the previous daemon (crash, `kill -9` or shutdown): they are
//! recorded as exited with reason "daemon stopped", then started again when their restart
//! policy says so. Container directories without a database row are deleted, and so is stored
//! Wasm no container uses any more (if older than an hour: a CLI may have just stored it for a
//! container it is about to create).

use std::sync::Arc;

use crate::error::HostError;
use crate::manager::{Manager, now_ms};
use crate::spec::RestartPolicy;
use crate::status::Status;

pub const DAEMON_STOPPED: &str = "daemon stopped";

/// What recovery did.
#[derive(Debug, Default)]
pub struct Recovered {
    pub marked_exited: usize,
    pub restarted: usize,
    pub orphans_removed: usize,
    pub wasm_removed: usize,
}

/// Stored Wasm younger than this is kept even when no container uses it.
const WASM_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

impl Manager {
    /// Must run inside the tokio runtime that runs the containers.
    pub fn recover(self: &Arc<Self>) -> Result<Recovered, HostError> {
        let mut report = Recovered::default();
        let all = self.db().list()?;
        for c in &all {
            if !c.status.can_stop() && c.status != Status::Created {
                continue;
            }
            self.db().set_ended(&c.id, Status::Exited, None, Some(DAEMON_STOPPED), now_ms())?;
            report.marked_exited += 1;
            let restart = match c.spec.restart {
                RestartPolicy::No => false,
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure { max } => max.is_none_or(|m| c.restarts < m),
            };
            if restart {
                let stored = self.db().get(&c.id)?.ok_or_else(|| HostError::NotFound(c.id.clone()))?;
                match self.start_stored(stored, 1) {
                    Ok(_) => report.restarted += 1,
                    Err(e) => tracing::warn!(id = %c.id, "restart after recovery failed: {e}"),
                }
            } else if c.spec.auto_remove {
                match self.remove_stored(&c.id) {
                    Ok(()) | Err(HostError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let known: std::collections::HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
        if let Ok(entries) = std::fs::read_dir(self.home.join("containers")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.len() == 64 && !known.contains(name.as_str()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                    report.orphans_removed += 1;
                }
            }
        }
        report.wasm_removed = self.remove_unused_wasm(&all);
        Ok(report)
    }

    fn remove_unused_wasm(&self, all: &[crate::db::Container]) -> usize {
        let used: std::collections::HashSet<String> =
            all.iter().map(|c| format!("{}.wasm", c.spec.wasm_sha256)).collect();
        let Ok(entries) = std::fs::read_dir(self.home.join("containers/wasm")) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if !used.contains(&name)
                && old.is_some_and(|age| age > WASM_GRACE)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }
}
