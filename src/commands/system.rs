//! `wasmbox system df|prune`: what wasmbox keeps on disk, and freeing what nothing uses.

use std::path::Path;

use clap::{Args, Subcommand};

/// Show or free the disk space wasmbox uses
#[derive(Args, Debug)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk use: images, containers, compile cache, logs
    Df(super::system_df::DfArgs),
    /// Remove stopped containers, dangling images and unused compile-cache entries
    Prune(super::system_prune::PruneArgs),
}

pub fn exec(a: SystemArgs) -> anyhow::Result<i32> {
    match a.command {
        SystemCommand::Df(args) => super::system_df::exec(args),
        SystemCommand::Prune(args) => super::system_prune::exec(args),
    }
}

/// Bytes of the regular files under `path` (symlinks are not followed; a missing path is 0).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    std::fs::read_dir(path)
        .map(|entries| entries.filter_map(Result::ok).map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// A container's log files (current and rotated, old and new format) in its directory.
pub fn is_log_file(name: &str) -> bool {
    matches!(name, "log" | "log.1" | "output.log" | "output.log.1")
}

/// The container directories under `$WASMBOX_HOME/containers` (not the shared `wasm/` store).
pub fn container_dirs(home: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(home.join("containers")) else { return Vec::new() };
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "wasm" && e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}
