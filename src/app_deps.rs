//! A `wasmbox.toml` directory's `[dependencies]`: its component composed with them — by
//! `build` (into the image) and by `run`/`serve` of the directory, cached under
//! `$WASMBOX_HOME/composed` by what went in, so a second run does not compose again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmbox_image::App;

use crate::commands::{PullPolicy, pull::RegistryArgs};

/// The app's component with its dependencies plugged in.
pub struct ComposedApp {
    pub wasm: Vec<u8>,
    /// Interface (the `[dependencies]` key) → the digest of what provided it.
    pub deps: BTreeMap<String, String>,
}

/// Composes `app` (loaded from `dir`) with its `[dependencies]`; `None` when it has none.
pub fn compose_dir(
    dir: &Path,
    app: &App,
    pull: PullPolicy,
    registry: &RegistryArgs,
) -> anyhow::Result<Option<ComposedApp>> {
    if app.dependencies.is_empty() {
        return Ok(None);
    }
    let app_wasm = dir.join(&app.wasm);
    let sources: Vec<(String, PathBuf)> =
        app.dependencies.iter().map(|(key, dep)| (key.clone(), source_path(dir, dep.source()))).collect();
    let cache = crate::home::wasmbox_home()?.join("composed");
    let key = cache_key(dir, app, &app_wasm, &sources, pull, registry)?;
    let (wasm_file, deps_file) = (cache.join(format!("{key}.wasm")), cache.join(format!("{key}.json")));
    if let (Ok(wasm), Ok(deps)) = (std::fs::read(&wasm_file), std::fs::read(&deps_file))
        && let Ok(deps) = serde_json::from_slice(&deps)
    {
        tracing::debug!(key = %key, "using the composed app from the cache");
        return Ok(Some(ComposedApp { wasm, deps }));
    }

    let started = std::time::Instant::now();
    let (app_bytes, _) = crate::commands::compose::load_part(&app_wasm, PullPolicy::Never, registry)?;
    let mut deps = Vec::new();
    for ((key, dep), (_, path)) in app.dependencies.iter().zip(&sources) {
        let (bytes, digest) = crate::commands::compose::load_part(path, pull, registry)
            .with_context(|| format!("wasmbox.toml [dependencies] `{key}` = \"{}\"", dep.source()))?;
        deps.push(wasmbox_compose::Dep { name: dep.source().to_string(), bytes, digest, grants: dep.grants() });
    }
    let composed = wasmbox_compose::compose(&app.wasm.display().to_string(), &app_bytes, &deps)?;
    let mut by_key = BTreeMap::new();
    for ((key, _), dep) in app.dependencies.iter().zip(&composed.record.deps) {
        let provides_key = dep
            .provides
            .iter()
            .any(|p| p == key || p.starts_with(&format!("{key}@")) || p.starts_with(&format!("{key}/")));
        if !provides_key {
            anyhow::bail!(wasmbox_compose::ComposeError::WrongProvider {
                dep: dep.source.clone(),
                key: key.clone(),
                provides: dep.provides.join(", "),
            });
        }
        by_key.insert(key.clone(), dep.digest.clone());
    }
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "composed the app's dependencies");
    std::fs::create_dir_all(&cache).with_context(|| format!("failed to create {}", cache.display()))?;
    wasmbox_engine::fs::write_atomic(&deps_file, &serde_json::to_vec(&by_key)?)
        .with_context(|| format!("failed to write {}", deps_file.display()))?;
    wasmbox_engine::fs::write_atomic(&wasm_file, &composed.bytes)
        .with_context(|| format!("failed to write {}", wasm_file.display()))?;
    Ok(Some(ComposedApp { wasm: composed.bytes, deps: by_key }))
}

/// A file beside `wasmbox.toml` when one exists by that name or the source looks like a path,
/// else an image reference.
fn source_path(dir: &Path, source: &str) -> PathBuf {
    let beside = dir.join(source);
    if beside.is_file() || looks_like_file(source) { beside } else { PathBuf::from(source) }
}

fn looks_like_file(source: &str) -> bool {
    source.starts_with(['.', '/']) || [".wasm", ".wat"].iter().any(|ext| source.ends_with(ext))
}

/// What identifies a composition without reading the parts: the manifest's text, each file's
/// path, size and modification time, and each image's manifest digest in the local store.
fn cache_key(
    dir: &Path,
    app: &App,
    app_wasm: &Path,
    sources: &[(String, PathBuf)],
    pull: PullPolicy,
    registry: &RegistryArgs,
) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    let manifest = dir.join(wasmbox_image::app::FILE_NAME);
    h.update(std::fs::read(&manifest).with_context(|| format!("failed to read {}", manifest.display()))?);
    file_stamp(&mut h, app_wasm)?;
    for ((key, path), dep) in sources.iter().zip(app.dependencies.values()) {
        h.update(key.as_bytes());
        if path.is_file() {
            file_stamp(&mut h, path)?;
        } else if looks_like_file(dep.source()) {
            // Missing: composing reports it (127), naming the entry.
            h.update(b"missing");
        } else {
            let digest = crate::commands::image_digest(&path.to_string_lossy(), pull, registry)
                .with_context(|| format!("wasmbox.toml [dependencies] `{key}` = \"{}\"", dep.source()))?;
            h.update(digest.as_bytes());
        }
        h.update([0]);
    }
    let digest: [u8; 32] = h.finalize().into();
    Ok(wasmbox_engine::cache::hex(&digest))
}

fn file_stamp(h: &mut Sha256, path: &Path) -> anyhow::Result<()> {
    let canonical = std::fs::canonicalize(path).with_context(|| format!("{} not found", path.display()))?;
    let meta = std::fs::metadata(&canonical).with_context(|| format!("failed to read {}", canonical.display()))?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    h.update(canonical.as_os_str().as_encoded_bytes());
    h.update(meta.len().to_le_bytes());
    h.update(mtime.as_nanos().to_le_bytes());
    Ok(())
}
