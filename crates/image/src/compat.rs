//! "Compat" images: ordinary (gzip) tar layers holding a `.wasm`, the entrypoint named by the
//! config's `Entrypoint`/`Cmd` (the crun/runwasi convention, annotation
//! `module.wasm.image/variant=compat`).
//!
//! The entrypoint is read out of the tar stream into memory: nothing is ever written to disk,
//! so `../`, absolute, symlink and hardlink entries cannot touch the host (RUSTSEC-2018-0002,
//! RUSTSEC-2021-0080, CVE-2025-62518). Decompressed bytes and entry counts are capped, so a
//! gzip bomb is cut off (SECURITY-CASES D26).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageManifest};

use crate::app::{App, AppLimits, Requests};
use crate::error::ImageError;
use crate::media;
use crate::store::{Store, descriptor_digest};

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Decompressed bytes read across all layers while looking for the entrypoint.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// Tar entries read across all layers.
pub const MAX_ENTRIES: u64 = 100_000;

/// Is this a compat image (every layer a tar)?
pub fn is_compat(m: &ImageManifest) -> bool {
    !m.layers().is_empty()
        && m.layers().iter().all(|l| [TAR, TAR_GZIP, DOCKER_TAR_GZIP].contains(&l.media_type().to_string().as_str()))
}

/// The entrypoint `.wasm` and the app implied by the config (default args from the rest of
/// Entrypoint + Cmd, baked env from Env).
pub fn extract(store: &Store, m: &ImageManifest) -> Result<(Vec<u8>, App), ImageError> {
    let bad = |reason: String| ImageError::Malformed { what: "compat image", reason };
    let config = store.read_blob(&descriptor_digest(m.config())?, media::MAX_CONFIG)?;
    let config: serde_json::Value = serde_json::from_slice(&config).map_err(|e| bad(e.to_string()))?;
    let strings = |key: &str| -> Vec<String> {
        config["config"][key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut command = strings("Entrypoint");
    command.extend(strings("Cmd"));
    let Some(entry) = command.first().cloned() else {
        return Err(bad("the config has no Entrypoint or Cmd naming the .wasm".into()));
    };
    let target = normalize(&entry).ok_or_else(|| bad(format!("entrypoint `{entry}` is not a plain path")))?;

    let mut budget = Budget { bytes: MAX_UNPACKED, entries: MAX_ENTRIES };
    // The last layer that has the file wins, as when layers are stacked.
    for layer in m.layers().iter().rev() {
        if let Some(wasm) = find_in_layer(store, layer, &target, &mut budget)? {
            let env: BTreeMap<String, String> = strings("Env")
                .iter()
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect();
            let app = App {
                name: target.rsplit('/').next().unwrap_or("app").to_string(),
                version: None,
                wasm: PathBuf::new(),
                args: command[1..].to_vec(),
                env,
                limits: AppLimits::default(),
                capabilities: Requests::default(),
                routes: Vec::new(),
                nn: Default::default(),
                dependencies: Default::default(),
            };
            return Ok((wasm, app));
        }
    }
    Err(bad(format!("entrypoint `{entry}` is not in the image layers")))
}

struct Budget {
    bytes: u64,
    entries: u64,
}

/// Counts decompressed bytes against the budget; stops the stream when it runs out.
struct Metered<'a, R> {
    inner: R,
    budget: &'a mut Budget,
    exhausted: bool,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.budget.bytes == 0 {
            self.exhausted = true;
            return Err(std::io::Error::other("decompressed size limit reached"));
        }
        let max = buf.len().min(self.budget.bytes as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.budget.bytes -= n as u64;
        Ok(n)
    }
}

fn find_in_layer(
    store: &Store,
    layer: &Descriptor,
    target: &str,
    budget: &mut Budget,
) -> Result<Option<Vec<u8>>, ImageError> {
    let digest = descriptor_digest(layer)?;
    let path = store.blob_path(&digest);
    let file = std::fs::File::open(&path).map_err(|_| ImageError::MissingBlob(crate::store::full(&digest)))?;
    let raw: Box<dyn Read> = if layer.media_type().to_string() == TAR {
        Box::new(std::io::BufReader::new(file))
    } else {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    };
    let limit_error = || ImageError::Malformed {
        what: "compat image",
        reason: format!("layers unpack to more than {MAX_UNPACKED} bytes or {MAX_ENTRIES} entries (a gzip bomb?)"),
    };
    let entries_left = budget.entries;
    let mut seen: u64 = 0;
    let mut metered = Metered { inner: raw, budget, exhausted: false };
    let mut archive = tar::Archive::new(&mut metered);
    let entries = archive.entries().map_err(|e| bad_tar(&e))?;
    let mut found = None;
    for entry in entries {
        seen += 1;
        if seen > entries_left {
            return Err(limit_error());
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Err(if e.to_string().contains("size limit") { limit_error() } else { bad_tar(&e) }),
        };
        let Ok(name) = entry.path().map(|p| p.to_string_lossy().into_owned()) else { continue };
        if normalize(&name).as_deref() != Some(target) {
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(ImageError::Unsupported(format!(
                "the entrypoint `/{target}` is a {kind:?} entry, not a regular file"
            )));
        }
        let mut wasm = Vec::new();
        entry
            .read_to_end(&mut wasm)
            .map_err(|e| if e.to_string().contains("size limit") { limit_error() } else { bad_tar(&e) })?;
        found = Some(wasm);
        // Later entries of the same layer may replace it: keep reading.
    }
    // The archive's borrow of `metered` ends here (non-lexical lifetimes).
    if metered.exhausted {
        return Err(limit_error());
    }
    metered.budget.entries = entries_left - seen;
    Ok(found)
}

fn bad_tar(e: &std::io::Error) -> ImageError {
    ImageError::Malformed { what: "compat image layer", reason: e.to_string() }
}

/// `/app.wasm`, `./app.wasm` and `app.wasm` are the same entry; `..` never is one.
fn normalize(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p if p.contains('\0') => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/app.wasm").as_deref(), Some("app.wasm"));
        assert_eq!(normalize("./bin//app.wasm").as_deref(), Some("bin/app.wasm"));
        assert_eq!(normalize("../app.wasm"), None);
        assert_eq!(normalize("bin/../../app.wasm"), None);
        assert_eq!(normalize("/"), None);
    }
}
