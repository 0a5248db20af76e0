//! `wasmbox system prune`: removes stopped containers, dangling images (blobs no tag uses)
//! and compile-cache entries nothing can use any more, then says what it freed.
//!
//! A cache entry is kept when it was compiled by this wasmbox's engine (any setting a run can
//! use: `--fuel`, `--deterministic`, `--engine pulley`, `--compiler winch`) from the Wasm of a
//! tagged image or of a container that remains. Entries for loose
//! `.wasm` files are removed too: the next `run` of such a file compiles it again. So is Wasm
//! left in `cache/pending` by a background compile (`__optimize`) whose process died.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use sha2::{Digest, Sha256};
use wasmbox_engine::{EngineOptions, Runtime, Target};
use wasmbox_host::{Container, Status};

use super::system::{container_dirs, tree_size};
use crate::home::wasmbox_home;

/// Remove stopped containers, dangling images and unused compile-cache entries
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Default)]
struct Freed {
    containers: u64,
    blobs: u64,
    cache_entries: u64,
    bytes: u64,
}

pub fn exec(a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force && !confirm()? {
        return Ok(0);
    }
    let home = wasmbox_home()?;
    let mut freed = Freed::default();
    let remaining = prune_containers(&home, &mut freed)?;

    let store = super::image_store()?;
    let (blobs, bytes) = store.prune()?;
    freed.blobs = blobs as u64;
    freed.bytes += bytes;

    // What compiled code may still be needed for.
    let mut wasm: BTreeSet<[u8; 32]> = BTreeSet::new();
    for tagged in store.list()? {
        if let Ok(image) = wasmbox_image::unpack(&store, &tagged.manifest) {
            wasm.insert(Sha256::digest(&image.wasm).into());
        }
    }
    for c in &remaining {
        if let Ok(sha) = <[u8; 32]>::try_from(decode_hex(&c.spec.wasm_sha256).as_slice()) {
            wasm.insert(sha);
        }
    }
    // Every engine setting a run can use: with or without fuel, deterministic or not, native
    // or Pulley (`run --engine pulley`).
    let mut engines: Vec<[u8; 32]> = Vec::new();
    for fuel in [false, true] {
        for deterministic in [false, true] {
            for target in [Target::Native, Target::PULLEY] {
                let options = EngineOptions { fuel, deterministic, target, ..Default::default() };
                engines.push(Runtime::new(options)?.compat_digest());
            }
        }
    }
    // `--compiler winch` keeps Winch's code as the final code (no fuel, not deterministic, native).
    if let Some(baseline) = Runtime::new(EngineOptions::default())?.baseline() {
        engines.push(baseline.compat);
    }
    let cache = super::compile_cache(false)?.expect("cache enabled");
    // Wasm left for a background compile whose process died.
    for (path, bytes) in super::optimize::stale_pending()? {
        if std::fs::remove_file(&path).is_ok() {
            freed.cache_entries += 1;
            freed.bytes += bytes;
        }
    }
    for entry in cache.entries()? {
        let used = entry.binding.is_some_and(|b| wasm.contains(&b.wasm_sha256) && engines.contains(&b.engine));
        if !used && std::fs::remove_file(&entry.path).is_ok() {
            freed.cache_entries += 1;
            freed.bytes += entry.bytes;
        }
    }

    println!("Deleted containers: {}", freed.containers);
    println!("Deleted image blobs: {}", freed.blobs);
    println!("Deleted compile cache entries: {}", freed.cache_entries);
    println!("Total reclaimed space: {} ({} bytes)", super::human_size(freed.bytes), freed.bytes);
    Ok(0)
}

/// Asks on the terminal, like `docker system prune`; without one, `-f` is required.
fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "system prune removes stopped containers, dangling images and unused compile-cache entries; \
             pass -f to confirm (no terminal to ask on)"
        );
    }
    eprint!(
        "This removes all stopped containers, all dangling images and unused compile-cache entries.\n\
         Are you sure you want to continue? [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Removes stopped containers through the daemon (it owns their state); returns the others.
/// With no container stored, no daemon is started.
fn prune_containers(home: &std::path::Path, freed: &mut Freed) -> anyhow::Result<Vec<Container>> {
    if container_dirs(home).is_empty() {
        return Ok(Vec::new());
    }
    super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        let all: Vec<Container> = client.call("GET", "/v1/containers?all=true", None).await?;
        let mut remaining = Vec::new();
        for c in all {
            if !matches!(c.status, Status::Exited | Status::Created) {
                remaining.push(c);
                continue;
            }
            let size = tree_size(&home.join("containers").join(&c.id));
            let path = format!("/v1/containers/{}", c.id);
            match client.call::<serde_json::Value>("DELETE", &path, None).await {
                Ok(_) => {
                    freed.containers += 1;
                    freed.bytes += size;
                    println!("deleted container {}", &c.id[..12]);
                }
                // Started again (or removed) meanwhile: not ours to remove now.
                Err(_) => remaining.push(c),
            }
        }
        anyhow::Ok(remaining)
    })?
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}
