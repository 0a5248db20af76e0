//! `unpack`: from a manifest in the store to the Wasm binary and app manifest to run.
//!
//! Reads the format wasmbox writes (CNCF TAG Wasm artifact), the single-layer formats of
//! runwasi (component layer) and Spin (content layer), and tar-based compat images
//! ([`crate::compat`]). Every document is checked before use:
//! size caps, allow-listed media types, no ambiguous manifest/index hybrids (CVE-2021-41190).

use oci_spec::image::{Descriptor, ImageManifest};

use crate::app::App;
use crate::compat;
use crate::error::ImageError;
use crate::media;
use crate::store::{Store, descriptor_digest, full};

/// Which layout an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// CNCF TAG Wasm OCI artifact (what `wasmbox build` writes).
    CncfWasm,
    /// runwasi's `application/vnd.bytecodealliance.wasm.component.layer.v0+wasm`.
    Runwasi,
    /// Spin's `application/vnd.wasm.content.layer.v1+wasm`.
    Spin,
    /// Tar layers holding a `.wasm` named by the config's entrypoint.
    Compat,
    /// Not an app: an ONNX model (config `application/vnd.wasmbox.model.config.v1+json`, one
    /// `application/vnd.onnx` layer), granted with `--nn-model NAME=REF`.
    Model,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::CncfWasm => "wasm-artifact",
            Format::Runwasi => "runwasi",
            Format::Spin => "spin",
            Format::Compat => "compat",
            Format::Model => "model",
        })
    }
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct WasmImage {
    pub manifest_digest: String,
    pub format: Format,
    pub wasm: Vec<u8>,
    pub app: Option<App>,
    /// Models bundled with the app (`[nn] models`): name and the verified layer's file.
    pub models: Vec<(String, std::path::PathBuf)>,
}

/// Parses and checks a manifest document. `declared` is the media type the document was
/// announced with (descriptor or Content-Type), which must agree with the document's own.
pub fn parse_manifest(bytes: &[u8], declared: Option<&str>) -> Result<ImageManifest, ImageError> {
    let bad = |reason: String| ImageError::Malformed { what: "manifest", reason };
    if bytes.len() as u64 > media::MAX_MANIFEST {
        return Err(bad(format!("{} bytes is over the {}-byte limit", bytes.len(), media::MAX_MANIFEST)));
    }
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let obj = doc.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
    if obj.contains_key("manifests") && (obj.contains_key("layers") || obj.contains_key("config")) {
        return Err(bad("it has both `manifests` and `layers`/`config` (ambiguous index/manifest)".into()));
    }
    let own = obj.get("mediaType").and_then(|m| m.as_str());
    if let (Some(own), Some(declared)) = (own, declared)
        && own != declared
    {
        return Err(bad(format!("declared as {declared} but its mediaType is {own}")));
    }
    match own.or(declared) {
        None | Some(media::MANIFEST) | Some(media::DOCKER_MANIFEST) => {}
        Some(other) => return Err(ImageError::Unsupported(format!("manifest media type {other}"))),
    }
    let manifest = ImageManifest::from_reader(bytes).map_err(|e| bad(e.to_string()))?;
    for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
        if d.size() > media::HARD_MAX_BLOB {
            return Err(bad(format!("blob {} declares {} bytes, over the limit", d.digest(), d.size())));
        }
    }
    Ok(manifest)
}

/// Refuses, before anything is downloaded, an image wasmbox could not run. A model image
/// ([`model_layer`]) is accepted: it is pulled to be granted, not run.
pub fn check_runnable(m: &ImageManifest) -> Result<Format, ImageError> {
    if is_model(m) {
        return model_layer(m).map(|_| Format::Model);
    }
    if compat::is_compat(m) {
        check_config(m)?;
        return Ok(Format::Compat);
    }
    select_wasm_layer(m).map(|(_, format)| format)
}

fn check_config(m: &ImageManifest) -> Result<(), ImageError> {
    let config_type = m.config().media_type().to_string();
    if !media::CONFIGS.contains(&config_type.as_str()) {
        return Err(ImageError::Unsupported(format!("config media type {config_type}")));
    }
    Ok(())
}

/// The one layer holding the Wasm binary, and which layout that makes the image.
pub fn select_wasm_layer(m: &ImageManifest) -> Result<(&Descriptor, Format), ImageError> {
    check_config(m)?;
    let wasm_layers: Vec<&Descriptor> =
        m.layers().iter().filter(|l| media::WASM_LAYERS.contains(&l.media_type().to_string().as_str())).collect();
    let layer = match wasm_layers.as_slice() {
        [one] => *one,
        [] => {
            return Err(ImageError::Unsupported(format!(
                "no Wasm layer (layers: {})",
                m.layers().iter().map(|l| l.media_type().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        many => {
            return Err(ImageError::Unsupported(format!(
                "{} Wasm layers; wasmbox runs single-component images",
                many.len()
            )));
        }
    };
    let format = match layer.media_type().to_string().as_str() {
        media::RUNWASI_LAYER => Format::Runwasi,
        media::SPIN_LAYER => Format::Spin,
        _ => Format::CncfWasm,
    };
    Ok((layer, format))
}

/// Whether the manifest is a model image's.
pub fn is_model(m: &ImageManifest) -> bool {
    m.config().media_type().to_string() == media::MODEL_CONFIG
}

/// The ONNX layer of a model image: exactly one `application/vnd.onnx` layer.
pub fn model_layer(m: &ImageManifest) -> Result<&Descriptor, ImageError> {
    match m.layers().as_slice() {
        [one] if one.media_type().to_string() == media::ONNX_LAYER => Ok(one),
        layers => Err(ImageError::Unsupported(format!(
            "a model image has one {} layer (layers: {})",
            media::ONNX_LAYER,
            layers.iter().map(|l| l.media_type().to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A model image in the store: where its model file is (a verified blob; blobs never change).
#[derive(Debug, Clone)]
pub struct ModelImage {
    pub manifest_digest: String,
    pub path: std::path::PathBuf,
    pub size: u64,
}

/// Finds the model of the model image `manifest`, checking the layer's digest and size.
pub fn unpack_model(store: &Store, manifest: &Descriptor) -> Result<ModelImage, ImageError> {
    let digest = descriptor_digest(manifest)?;
    let bytes = store.read_blob(&digest, media::MAX_MANIFEST)?;
    let m = parse_manifest(&bytes, None)?;
    if !is_model(&m) {
        return Err(ImageError::Unsupported(format!(
            "{} is not a model image (its config is {}); build one with `wasmbox build -t NAME model.onnx`",
            full(&digest),
            m.config().media_type()
        )));
    }
    let layer = model_layer(&m)?;
    let layer_digest = descriptor_digest(layer)?;
    // Reading it re-checks digest and size (a damaged store is refused, not loaded).
    let model = store.read_blob(&layer_digest, layer.size())?;
    drop(model);
    Ok(ModelImage { manifest_digest: full(&digest), path: store.blob_path(&layer_digest), size: layer.size() })
}

/// Loads the image whose manifest is `manifest` from `store`.
pub fn unpack(store: &Store, manifest: &Descriptor) -> Result<WasmImage, ImageError> {
    let digest = descriptor_digest(manifest)?;
    let bytes = store.read_blob(&digest, media::MAX_MANIFEST)?;
    let m = parse_manifest(&bytes, None)?;
    if is_model(&m) {
        return Err(ImageError::Unsupported(format!(
            "{} is a model image, not an app; grant it to a Wasm app with --nn-model NAME=IMAGE",
            full(&digest)
        )));
    }
    if compat::is_compat(&m) {
        check_config(&m)?;
        let (wasm, app) = compat::extract(store, &m)?;
        let (format, app, models) = (Format::Compat, Some(app), vec![]);
        return Ok(WasmImage { manifest_digest: full(&digest), format, wasm, app, models });
    }
    let (layer, format) = select_wasm_layer(&m)?;
    let layer_digest = descriptor_digest(layer)?;
    let wasm = store.read_blob(&layer_digest, layer.size())?;
    if wasm.len() as u64 != layer.size() {
        return Err(ImageError::SizeMismatch {
            digest: full(&layer_digest),
            expected: layer.size(),
            actual: wasm.len() as u64,
        });
    }
    let app = match m.annotations().as_ref().and_then(|a| a.get(media::APP_ANNOTATION)) {
        Some(json) => Some(App::from_json(json)?),
        None => None,
    };
    let mut models = Vec::new();
    for layer in m.layers().iter().filter(|l| l.media_type().to_string() == media::ONNX_LAYER) {
        let Some(name) = layer.annotations().as_ref().and_then(|a| a.get(media::MODEL_NAME_ANNOTATION)) else {
            continue;
        };
        let layer_digest = descriptor_digest(layer)?;
        // Reading it re-checks digest and size: a damaged model is refused, not loaded.
        drop(store.read_blob(&layer_digest, layer.size())?);
        models.push((name.clone(), store.blob_path(&layer_digest)));
    }
    Ok(WasmImage { manifest_digest: full(&digest), format, wasm, app, models })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#""config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;

    #[test]
    fn ambiguous_and_mislabelled_documents_are_rejected() {
        // SECURITY-CASES D25.
        let hybrid = format!(r#"{{"schemaVersion":2,"manifests":[],{CONFIG},"layers":[]}}"#);
        assert!(parse_manifest(hybrid.as_bytes(), None).unwrap_err().to_string().contains("ambiguous"));
        let plain = format!(r#"{{"schemaVersion":2,"mediaType":"{}",{CONFIG},"layers":[]}}"#, media::MANIFEST);
        assert!(parse_manifest(plain.as_bytes(), Some(media::MANIFEST)).is_ok());
        let e = parse_manifest(plain.as_bytes(), Some(media::DOCKER_MANIFEST)).unwrap_err();
        assert!(e.to_string().contains("declared as"), "{e}");
        let odd = format!(r#"{{"schemaVersion":2,"mediaType":"text/html",{CONFIG},"layers":[]}}"#);
        assert!(matches!(parse_manifest(odd.as_bytes(), None), Err(ImageError::Unsupported(_))));
        let big = vec![b' '; (media::MAX_MANIFEST + 1) as usize];
        assert!(parse_manifest(&big, None).unwrap_err().to_string().contains("limit"));
        let huge_layer = format!(
            r#"{{"schemaVersion":2,{CONFIG},"layers":[{{"mediaType":"application/wasm","digest":"sha256:{}","size":4611686018427387904}}]}}"#,
            "a".repeat(64)
        );
        assert!(parse_manifest(huge_layer.as_bytes(), None).unwrap_err().to_string().contains("over the limit"));
        let bad_digest = format!(
            r#"{{"schemaVersion":2,{CONFIG},"layers":[{{"mediaType":"application/wasm","digest":"sha256:../../x","size":1}}]}}"#
        );
        assert!(parse_manifest(bad_digest.as_bytes(), None).is_err());
    }
}
