//! Where wasmbox keeps state: `$WASMBOX_HOME`, else `$XDG_DATA_HOME/wasmbox`, else
//! `~/.local/share/wasmbox` — and keeping it private: state holds secrets (`-e` values of
//! detached containers in `wasmbox.db`, container logs, registry credentials), so the home is
//! 0700 and everything in it 0600/0700 (the process umask is 077, see `main`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::Context;

pub fn wasmbox_home() -> anyhow::Result<PathBuf> {
    let home = locate()?;
    static SECURED: Once = Once::new();
    SECURED.call_once(|| secure_existing(&home));
    Ok(home)
}

fn locate() -> anyhow::Result<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = non_empty("WASMBOX_HOME") {
        // Absolute, so a daemon started from here finds the same place.
        return Ok(std::path::absolute(&home).unwrap_or(home));
    }
    if let Some(data) = non_empty("XDG_DATA_HOME") {
        return Ok(data.join("wasmbox"));
    }
    let home = non_empty("HOME").context("cannot find a state directory: set WASMBOX_HOME or HOME")?;
    Ok(home.join(".local/share/wasmbox"))
}

/// An install made before state was private (home 0755, files 0644) is tightened once: the
/// home's own mode tells whether it still needs it, so later starts cost one `stat`.
fn secure_existing(home: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(home) else { return };
    if !meta.is_dir() || meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    let mut fixed = 0usize;
    tighten(home, &mut fixed);
    eprintln!(
        "wasmbox: made {} private to its owner ({fixed} files and directories were readable by others; \
         it holds secrets such as -e values and logs)",
        home.display()
    );
}

/// Removes group and other bits below `dir` (symlinks are left alone, never followed).
fn tighten(path: &Path, fixed: &mut usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 && std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).is_ok() {
        *fixed += 1;
    }
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            tighten(&entry.path(), fixed);
        }
    }
}

/// The umask wasmbox found at start, for files it writes for the user outside its state
/// (`compile -o`), which should get the user's usual permissions.
pub fn user_umask() -> u32 {
    USER_UMASK.load(std::sync::atomic::Ordering::Relaxed)
}

static USER_UMASK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0o022);

/// Makes every file and directory this process creates private to its owner.
pub fn private_umask() {
    // SAFETY: umask only changes this process's file-creation mask; called first thing in main,
    // before any other thread exists.
    let old = unsafe { libc::umask(0o077) };
    USER_UMASK.store(old as u32, std::sync::atomic::Ordering::Relaxed);
}
