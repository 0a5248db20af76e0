//! `wasmbox __optimize FILE` (internal): the background half of a tiered first `run`. The run that
//! started on Winch's baseline code leaves the Wasm in `$WASMBOX_HOME/cache/pending/` and
//! starts this process, which compiles it with Cranelift into the compile cache at the lowest
//! CPU priority, so the next run starts on optimized code.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use wasmbox_engine::{Artifact, EngineOptions, Runtime};

/// The first argument that makes `wasmbox` this process; the second is a file in the pending
/// directory, named by the sha256 of its bytes.
pub const COMMAND: &str = "__optimize";

fn pending_dir() -> anyhow::Result<PathBuf> {
    Ok(crate::home::wasmbox_home()?.join("cache/pending"))
}

/// Leaves `artifact`'s Wasm for the optimizer and starts it, detached: it outlives this run,
/// ignores this terminal's Ctrl-C, and prints nothing. Failing to start it costs speed only.
pub fn spawn(artifact: &Artifact) {
    if let Err(e) = try_spawn(artifact) {
        tracing::warn!("cannot start the background compile: {e:#}");
    }
}

fn try_spawn(artifact: &Artifact) -> anyhow::Result<()> {
    let wasm = artifact.wasm().context("precompiled code is not optimized again")?;
    let dir = pending_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join(format!("{}.wasm", wasmbox_engine::cache::hex(&super::sha256(wasm))));
    if !path.is_file() {
        // Not synced: the optimizer checks the bytes against the name, and drops a torn file.
        wasmbox_engine::fs::write_replace(&path, wasm)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    let exe = std::env::current_exe().context("cannot find the wasmbox executable")?;
    Command::new(exe)
        .arg(COMMAND)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("failed to start the background compile")?;
    Ok(())
}

pub fn exec(file: &Path) -> anyhow::Result<i32> {
    // SAFETY: setpriority on this process only; lowest priority, so runs started meanwhile
    // (and everything else on the machine) come first.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    let Some(_lock) = lock(file)? else {
        return Ok(0); // another optimizer has this Wasm
    };
    // The file is gone once an optimizer has finished it.
    let Ok(bytes) = std::fs::read(file) else { return Ok(0) };
    let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if wasmbox_engine::cache::hex(&super::sha256(&bytes)) != name {
        let _ = std::fs::remove_file(file); // torn by a crash: nothing to finish
        anyhow::bail!("{} does not hold the Wasm its name says", file.display());
    }
    let optimized = optimize(file, bytes);
    // Done or failed for good (a failure would repeat): either way nothing is left to finish.
    let _ = std::fs::remove_file(file);
    optimized.map(|()| 0)
}

fn optimize(file: &Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    let artifact = wasmbox_engine::artifact::from_bytes(file, bytes)?;
    let cache = super::compile_cache(false)?.context("no compile cache")?;
    // The same engine settings as the `run` that started this (tiering needs all defaults).
    let rt = Runtime::new(EngineOptions::default())?;
    wasmbox_engine::optimize(&rt, &artifact, Some(&cache))?;
    Ok(())
}

/// Pending Wasm no optimizer is working on (its optimizer died), for `system prune` to remove,
/// each with its size. A run that has just left its Wasm and not yet started its optimizer
/// looks the same; removing that file costs it only the background compile.
pub fn stale_pending() -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let Ok(listing) = std::fs::read_dir(pending_dir()?) else { return Ok(Vec::new()) };
    let mut stale = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        // A running optimizer holds the lock; `lock` returns None then.
        if lock(&path)?.is_some() {
            stale.push((path, bytes));
        }
    }
    Ok(stale)
}

/// An exclusive lock on `file` (held until the returned handle drops), or `None` when another
/// process holds it.
fn lock(file: &Path) -> anyhow::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let Ok(handle) = std::fs::File::open(file) else { return Ok(None) };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(handle))
}
