//! `wasmbox system df`: how many images, containers, compile-cache entries and log files
//! wasmbox keeps, and their bytes on disk.

use clap::Args;
use serde::Serialize;

use super::system::{container_dirs, is_log_file, tree_size};
use crate::home::wasmbox_home;

/// Show disk use: images, containers, compile cache, logs
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug, Clone, Copy, Default)]
pub struct Usage {
    pub count: u64,
    pub bytes: u64,
}

#[derive(Serialize, Debug)]
pub struct DiskUse {
    /// Tagged images; bytes: every blob in the store (shared layers counted once).
    pub images: Usage,
    /// Container directories; bytes: their files except logs, plus the Wasm they run.
    pub containers: Usage,
    /// Compile-cache entries, and Wasm pending a background compile.
    pub compile_cache: Usage,
    /// Log files of all containers (current and rotated).
    pub logs: Usage,
}

pub fn measure() -> anyhow::Result<DiskUse> {
    let home = wasmbox_home()?;
    let store = super::image_store()?;
    let images = Usage { count: store.list()?.len() as u64, bytes: tree_size(&store.root().join("blobs")) };
    let (mut containers, mut logs) = (Usage::default(), Usage::default());
    for dir in container_dirs(&home) {
        containers.count += 1;
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let size = tree_size(&entry.path());
            if is_log_file(&entry.file_name().to_string_lossy()) {
                logs.count += 1;
                logs.bytes += size;
            } else {
                containers.bytes += size;
            }
        }
    }
    containers.bytes += tree_size(&home.join("containers/wasm"));
    let cache = super::compile_cache(false)?.expect("cache enabled");
    // Entries, and Wasm waiting for (or left by) a background compile (`cache/pending`).
    let pending = std::fs::read_dir(home.join("cache/pending")).map(|d| d.count()).unwrap_or(0);
    let compile_cache =
        Usage { count: (cache.entries()?.len() + pending) as u64, bytes: tree_size(&home.join("cache")) };
    Ok(DiskUse { images, containers, compile_cache, logs })
}

pub fn exec(a: DfArgs) -> anyhow::Result<i32> {
    let d = measure()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(0);
    }
    println!("{:<15} {:>7} {:>10}", "TYPE", "COUNT", "SIZE");
    for (name, u) in
        [("Images", d.images), ("Containers", d.containers), ("Compile cache", d.compile_cache), ("Logs", d.logs)]
    {
        println!("{:<15} {:>7} {:>10}", name, u.count, super::human_size(u.bytes));
    }
    Ok(0)
}
