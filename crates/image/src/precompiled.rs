//! Precompiled layers: native code (or Pulley bytecode) for named targets, carried next to the
//! Wasm layer of an image so a small device runs without compiling. Each layer is a
//! `wasmbox compile` file (our record binds it to the Wasm's sha256, the engine digest and the
//! target) and its descriptor names the target and the Wasm layer it was compiled from. Such
//! layers are native code: whether to use one is the caller's decision (trust).

use oci_spec::image::{Descriptor, ImageManifest};
use wasmbox_engine::mapped::CodeBytes;

use crate::error::ImageError;
use crate::media;
use crate::store::{Store, descriptor_digest};

pub const LAYER: &str = "application/vnd.wasmbox.precompiled.v1";
pub const TARGET_ANNOTATION: &str = "dev.wasmbox.precompiled.target";
pub const WASM_ANNOTATION: &str = "dev.wasmbox.precompiled.wasm";

/// A precompiled layer's target triple, if `d` is one.
pub fn target_of(d: &Descriptor) -> Option<&str> {
    if d.media_type().to_string() != LAYER {
        return None;
    }
    d.annotations().as_ref()?.get(TARGET_ANNOTATION).map(String::as_str)
}

/// The architecture part of a triple, as `wasmbox_engine::target` names it.
fn architecture(triple: &str) -> &'static str {
    wasmbox_engine::target::architecture_of(triple)
}

/// Whether a pull should download `d`: every layer but precompiled ones for other CPUs.
pub fn wanted(d: &Descriptor, host_arch: &str) -> bool {
    match d.media_type().to_string().as_str() {
        LAYER => target_of(d).is_some_and(|t| architecture(t) == host_arch),
        _ => true,
    }
}

/// The precompiled layer of `manifest` for `host_arch` compiled from the Wasm layer `wasm`,
/// mapped from the store (digest-checked), if the image has one and it was downloaded.
pub fn for_host(
    store: &Store,
    manifest: &ImageManifest,
    wasm_layer: &Descriptor,
    host_arch: &str,
) -> Result<Option<(String, CodeBytes)>, ImageError> {
    let wasm_digest = wasm_layer.digest().to_string();
    for d in manifest.layers() {
        let Some(target) = target_of(d) else { continue };
        let from = d.annotations().as_ref().and_then(|a| a.get(WASM_ANNOTATION));
        if architecture(target) != host_arch || from != Some(&wasm_digest) {
            continue;
        }
        let digest = descriptor_digest(d)?;
        if !store.has_blob(&digest) {
            continue;
        }
        if d.size() > media::HARD_MAX_BLOB {
            return Err(ImageError::TooLarge { digest: d.digest().to_string(), cap: media::HARD_MAX_BLOB });
        }
        return Ok(Some((target.to_string(), store.map_blob(&digest, d.size())?)));
    }
    Ok(None)
}

/// The precompiled layer for `host_arch` of the stored image `manifest_digest`, if any.
pub fn for_stored_image(
    store: &Store,
    manifest_digest: &str,
    host_arch: &str,
) -> Result<Option<(String, CodeBytes)>, ImageError> {
    let Some(descriptor) = store.manifest_by_digest(manifest_digest)? else { return Ok(None) };
    let bytes = store.read_blob(&descriptor_digest(&descriptor)?, media::MAX_MANIFEST)?;
    let manifest = crate::unpack::parse_manifest(&bytes, None)?;
    if crate::compat::is_compat(&manifest) {
        return Ok(None);
    }
    let (wasm_layer, _) = crate::unpack::select_wasm_layer(&manifest)?;
    for_host(store, &manifest, wasm_layer, host_arch)
}
