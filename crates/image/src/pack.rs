//! `pack`: a Wasm binary (plus optional app manifest) into an image in the store, in the CNCF
//! TAG Wasm OCI artifact format: config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer.

use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::Descriptor;
use serde_json::json;

use crate::app::App;
use crate::error::ImageError;
use crate::media;
use crate::store::{Store, full, manifest_descriptor};

/// What the config records about the Wasm binary.
#[derive(Debug, Clone)]
pub struct WasmMeta {
    pub component: bool,
    /// Component imports/exports (interface names); empty for modules.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// A composed app's dependencies (`[dependencies]`): interface → the digest of what
    /// provided it (an image's manifest digest, or `sha256:` of a component file).
    pub deps: std::collections::BTreeMap<String, String>,
}

/// Precompiled code for one target (a `wasmbox compile --target` file), to carry as a layer.
pub struct PrecompiledLayer {
    pub target: String,
    pub bytes: Vec<u8>,
}

/// Stores layers, config and manifest; returns the manifest descriptor (not yet tagged).
pub fn pack(
    store: &Store,
    wasm: &[u8],
    meta: &WasmMeta,
    app: Option<&App>,
    precompiled: &[PrecompiledLayer],
    models: &[(String, Vec<u8>)],
) -> Result<Descriptor, ImageError> {
    let layer = store.put_bytes(wasm)?;
    let mut config = json!({
        "created": rfc3339(SystemTime::now()),
        "architecture": "wasm",
        "os": if meta.component { "wasip2" } else { "wasip1" },
        "layerDigests": [full(&layer)],
    });
    if meta.component {
        config["component"] = json!({ "exports": meta.exports, "imports": meta.imports });
        if let Some(target) = target_world(&meta.exports) {
            config["component"]["target"] = json!(target);
        }
    }
    let config_bytes = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = store.put_bytes(&config_bytes)?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "artifactType": media::WASM_CONFIG,
        "config": { "mediaType": media::WASM_CONFIG, "digest": full(&config_digest), "size": config_bytes.len() },
        "layers": [{ "mediaType": media::WASM_LAYER, "digest": full(&layer), "size": wasm.len() }],
    });
    for p in precompiled {
        let digest = store.put_bytes(&p.bytes)?;
        manifest["layers"].as_array_mut().expect("layers").push(json!({
            "mediaType": crate::precompiled::LAYER,
            "digest": full(&digest),
            "size": p.bytes.len(),
            "annotations": {
                crate::precompiled::TARGET_ANNOTATION: p.target,
                crate::precompiled::WASM_ANNOTATION: full(&layer),
            },
        }));
    }
    for (name, model) in models {
        let digest = store.put_bytes(model)?;
        manifest["layers"].as_array_mut().expect("layers").push(json!({
            "mediaType": media::ONNX_LAYER,
            "digest": full(&digest),
            "size": model.len(),
            "annotations": { media::MODEL_NAME_ANNOTATION: name },
        }));
    }
    if let Some(app) = app {
        let mut annotations =
            json!({ media::APP_ANNOTATION: app.to_json(), "org.opencontainers.image.title": app.name });
        if let Some(v) = &app.version {
            annotations["org.opencontainers.image.version"] = json!(v);
        }
        manifest["annotations"] = annotations;
    }
    if !meta.deps.is_empty() {
        let text = serde_json::to_string(&meta.deps).expect("deps serialize");
        if !manifest["annotations"].is_object() {
            manifest["annotations"] = json!({});
        }
        manifest["annotations"][media::DEPS_ANNOTATION] = json!(text);
    }
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let digest = store.put_bytes(&manifest_bytes)?;
    Ok(manifest_descriptor(&digest, manifest_bytes.len()))
}

/// Stores an ONNX model as a model image (config [`media::MODEL_CONFIG`], one
/// [`media::ONNX_LAYER`] layer); returns the manifest descriptor (not yet tagged).
pub fn pack_model(store: &Store, model: &[u8], title: &str) -> Result<Descriptor, ImageError> {
    let layer = store.put_bytes(model)?;
    let config = json!({ "created": rfc3339(SystemTime::now()), "format": "onnx", "layerDigests": [full(&layer)] });
    let config_bytes = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = store.put_bytes(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "artifactType": media::MODEL_CONFIG,
        "config": { "mediaType": media::MODEL_CONFIG, "digest": full(&config_digest), "size": config_bytes.len() },
        "layers": [{
            "mediaType": media::ONNX_LAYER,
            "digest": full(&layer),
            "size": model.len(),
            "annotations": { "org.opencontainers.image.title": title },
        }],
        "annotations": { "org.opencontainers.image.title": title },
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let digest = store.put_bytes(&manifest_bytes)?;
    Ok(manifest_descriptor(&digest, manifest_bytes.len()))
}

/// The WASI world a component targets, from what it exports: `wasi:cli/run@V` makes it a
/// `wasi:cli/command@V`, `wasi:http/incoming-handler@V` a `wasi:http/proxy@V`.
fn target_world(exports: &[String]) -> Option<String> {
    exports.iter().find_map(|e| {
        let (interface, version) = e.split_once('@')?;
        match interface {
            "wasi:cli/run" => Some(format!("wasi:cli/command@{version}")),
            "wasi:http/incoming-handler" => Some(format!("wasi:http/proxy@{version}")),
            _ => None,
        }
    })
}

/// `2026-11-23T10:49:00Z` from a system time (UTC; civil-from-days, no time-zone database).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn target_worlds() {
        assert_eq!(target_world(&["wasi:cli/run@0.2.6".into()]).as_deref(), Some("wasi:cli/command@0.2.6"));
        assert_eq!(
            target_world(&["wasi:http/incoming-handler@0.2.0".into()]).as_deref(),
            Some("wasi:http/proxy@0.2.0")
        );
        assert_eq!(target_world(&["acme:x/y".into()]), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_430_096)), "2026-11-23T10:34:56Z");
    }
}
