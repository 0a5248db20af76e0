//! Where wasmbox keeps state: `$WASMBOX_HOME`, else `$XDG_DATA_HOME/wasmbox`, else
//! `~/.local/share/wasmbox`.

use std::path::PathBuf;

use anyhow::Context;

pub fn wasmbox_home() -> anyhow::Result<PathBuf> {
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
