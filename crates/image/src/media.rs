//! Media types wasmbox writes and accepts. Anything else is refused (SECURITY-CASES D25).

/// OCI image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest (compat images built by docker/buildah).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// CNCF TAG Wasm artifact config (the format wasmbox writes).
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// CNCF TAG Wasm artifact layer.
pub const WASM_LAYER: &str = "application/wasm";
/// runwasi's component layer.
pub const RUNWASI_LAYER: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
/// Spin's Wasm content layer.
pub const SPIN_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// Spin's locked-application config.
pub const SPIN_CONFIG: &str = "application/vnd.fermyon.spin.application.v1+config";
/// OCI image config (runwasi and compat images).
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Manifest annotation carrying the `wasmbox.toml` app manifest (as JSON).
pub const APP_ANNOTATION: &str = "dev.wasmbox.app.v1";
/// On a composed app's manifest: JSON `{ interface: digest }` of the dependencies `build` plugged in.
pub const DEPS_ANNOTATION: &str = "dev.wasmbox.deps.v1";
/// Index annotation naming a tagged manifest (OCI Image Layout convention).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Size caps (SECURITY-CASES D24).
pub const MAX_MANIFEST: u64 = 4 << 20;
pub const MAX_CONFIG: u64 = 4 << 20;
/// Default for `--max-blob-size`: the largest blob a pull accepts.
pub const DEFAULT_MAX_BLOB: u64 = 1 << 30;
/// No descriptor may declare more than this, whatever the configured cap (sizes like 2^62).
pub const HARD_MAX_BLOB: u64 = 1 << 40;

/// Docker image config (compat images built by docker/buildah).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Config media types we accept.
pub const CONFIGS: [&str; 4] = [WASM_CONFIG, OCI_CONFIG, SPIN_CONFIG, DOCKER_CONFIG];

/// Layer media types that hold a Wasm binary directly.
pub const WASM_LAYERS: [&str; 3] = [WASM_LAYER, RUNWASI_LAYER, SPIN_LAYER];

/// Config of a model image (`wasmbox build -t REF model.onnx`): what the model is, as JSON.
pub const MODEL_CONFIG: &str = "application/vnd.wasmbox.model.config.v1+json";
/// The one layer of a model image: the ONNX model file, as is.
pub const ONNX_LAYER: &str = "application/vnd.onnx";
/// On an `application/vnd.onnx` layer of an app image: the name the app loads the model by.
pub const MODEL_NAME_ANNOTATION: &str = "dev.wasmbox.nn.model";
