//! One file per subcommand: each parses its flags into library types and calls a crate.

pub mod agent;
pub mod build;
pub mod compile;
pub mod completions;
#[cfg(feature = "compose")]
pub mod compose;
pub mod containers;
pub mod daemon;
pub mod image;
pub mod image_load;
pub mod image_save;
pub mod images;
pub mod inspect;
pub mod key;
pub mod kill;
pub mod login;
pub mod logs;
pub mod optimize;
pub mod policy;
pub mod ps;
pub mod pull;
pub mod push;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod serve;
pub mod sign;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod system_df;
pub mod system_prune;
pub mod tag;
pub mod verify;
pub mod version;

use std::path::Path;

use oci_spec::distribution::Reference;
use wasmbox_engine::{Artifact, CompileCache, CompileSource, Compiled, Runtime};
use wasmbox_image::registry::Registry;
use wasmbox_image::{App, ImageError, Store, WasmImage, display_reference, parse_reference};

use crate::home::wasmbox_home;

/// The compile cache under `$WASMBOX_HOME/cache`, unless disabled.
pub fn compile_cache(no_cache: bool) -> anyhow::Result<Option<CompileCache>> {
    if no_cache {
        return Ok(None);
    }
    Ok(Some(CompileCache::new(&wasmbox_home()?.join("cache"))))
}

/// The local image store, `$WASMBOX_HOME/images` (an OCI Image Layout).
pub fn image_store() -> anyhow::Result<Store> {
    Ok(Store::open(&wasmbox_home()?.join("images"))?)
}

/// Where `wasmbox login` keeps credentials.
pub fn auth_file() -> anyhow::Result<std::path::PathBuf> {
    Ok(wasmbox_home()?.join("auth.json"))
}

/// A registry client for `reference`, with stored credentials for its registry if any.
pub fn registry_client(reference: &Reference, insecure: bool) -> anyhow::Result<Registry> {
    let credentials = wasmbox_image::auth::lookup(&auth_file()?, reference.resolve_registry());
    Ok(Registry::new(reference, insecure, credentials))
}

/// The sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A size for a listing column, docker's way: `1.5MB`, `64.0kB`, `512B`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1}MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1}kB", b as f64 / (1 << 10) as f64),
        b => format!("{b}B"),
    }
}

/// Runs a future to completion on a fresh single-threaded runtime.
pub fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(fut))
}

/// Whether Wasm code needs the vector ISA when compiled (`target::uses_simd`). Only a compiler
/// asks; the edge build has none and leaves wasmparser's validator out.
#[cfg(feature = "compiler")]
pub fn uses_simd(wasm: &[u8]) -> bool {
    wasmbox_engine::target::uses_simd(wasm)
}

#[cfg(not(feature = "compiler"))]
pub fn uses_simd(_: &[u8]) -> bool {
    false
}

/// Compiles `artifact` (through the cache when given).
pub fn compile(
    rt: &Runtime,
    artifact: &Artifact,
    cache: Option<&CompileCache>,
    allow_precompiled: bool,
) -> anyhow::Result<(Compiled, CompileSource)> {
    Ok(wasmbox_engine::compile(rt, artifact, cache, allow_precompiled)?)
}

/// What a SOURCE argument named: a file, or an image in the local store.
pub struct Source {
    pub artifact: Artifact,
    pub image: Option<(String, WasmImage)>,
    /// For an image: the reference it was named by (the trust policy's scope comes from it).
    pub reference: Option<Reference>,
    /// For a `wasmbox.toml` directory: its app manifest (the user's own file).
    pub local_app: Option<App>,
}

impl Source {
    /// Models bundled in the image (`[nn] models` of its app): name and model file.
    pub fn bundled_models(&self) -> &[(String, std::path::PathBuf)] {
        self.image.as_ref().map_or(&[], |(_, image)| image.models.as_slice())
    }

    pub fn app(&self) -> Option<&App> {
        self.image.as_ref().and_then(|(_, i)| i.app.as_ref()).or(self.local_app.as_ref())
    }

    /// Checks an image against the trust policy before it becomes a container (local files
    /// are outside the policy); returns the keys that vouched for it (none without a policy).
    pub fn admit(&self) -> anyhow::Result<Vec<wasmbox_trust::Verified>> {
        match (&self.reference, &self.image) {
            (Some(reference), Some((_, image))) => {
                crate::trust::admit_stored(&image_store()?, reference, &image.manifest_digest)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The image's precompiled code for this machine, when it has some and it may be used:
    /// native code runs only from an image whose signature a policy verified, or with
    /// `--allow-precompiled`. Its header must name this image's Wasm.
    pub fn trusted_precompiled(&self, verified: &[wasmbox_trust::Verified], allow: bool) -> Option<Artifact> {
        let (name, image) = self.image.as_ref()?;
        if verified.is_empty() && !allow {
            return None;
        }
        let store = image_store().ok()?;
        let arch = wasmbox_engine::Target::Native.architecture();
        let found = wasmbox_image::precompiled::for_stored_image(&store, &image.manifest_digest, arch);
        let (target, bytes) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("ignoring the precompiled layer of {name}: {e}");
                return None;
            }
        };
        let wasm_sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&image.wasm).into();
        let bound = match wasmbox_engine::cache::decode_entry(&bytes) {
            Ok(entry) => entry.binding,
            // E.g. a layer made by an older wasmbox (another format): the Wasm is compiled here.
            Err(why) => {
                tracing::warn!("ignoring the precompiled layer of {name}: {why}");
                return None;
            }
        };
        if bound.wasm_sha256 != wasm_sha {
            tracing::warn!("ignoring the precompiled layer of {name}: it was compiled from other Wasm");
            return None;
        }
        tracing::debug!(image = %name, %target, "using the image's precompiled layer");
        wasmbox_engine::artifact::precompiled(Path::new(name), bytes).ok()
    }

    /// Where the image came from, for the daemon's own check at every start.
    pub fn origin(&self) -> Option<wasmbox_host::spec::ImageOrigin> {
        match (&self.reference, &self.image) {
            (Some(reference), Some((_, image))) => Some(wasmbox_host::spec::ImageOrigin {
                reference: reference.whole(),
                manifest_digest: image.manifest_digest.clone(),
            }),
            _ => None,
        }
    }
}

/// Resolves SOURCE: an existing file wins; something that looks like a path is a file (missing
/// or not); anything else is an image reference (a same-named directory does not shadow it).
/// When `run` pulls an image reference (docker's `--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull only if the image is not in the local store
    #[default]
    Missing,
    /// Always pull (refresh the tag)
    Always,
    /// Never pull; use the local store only
    Never,
}

/// The manifest `reference` names in the local store, pulled first per `policy`.
fn find_image(
    store: &Store,
    reference: &Reference,
    policy: PullPolicy,
    registry: &pull::RegistryArgs,
) -> anyhow::Result<oci_spec::image::Descriptor> {
    let local = |store: &Store| match reference.digest() {
        // A pinned reference names content: any manifest with that digest will do.
        Some(digest) => store.manifest_by_digest(digest),
        None => store.resolve(&reference.whole()),
    };
    let mut descriptor = if policy == PullPolicy::Always { None } else { local(store)? };
    if descriptor.is_none() && policy != PullPolicy::Never {
        pull::pull(reference, registry)?;
        descriptor = local(store)?;
    }
    descriptor.ok_or_else(|| ImageError::NotFound(display_reference(reference)).into())
}

/// The model of the model image `text` (pulled per `policy` when missing), admitted by the
/// trust policy.
pub fn resolve_model_image(
    text: &str,
    policy: PullPolicy,
    registry: &pull::RegistryArgs,
) -> anyhow::Result<wasmbox_image::ModelImage> {
    let reference = parse_reference(text)?;
    let store = image_store()?;
    let descriptor = find_image(&store, &reference, policy, registry)?;
    let model = wasmbox_image::unpack_model(&store, &descriptor)?;
    // A model image is checked against the trust policy like an app image before it is used.
    crate::trust::admit_stored(&store, &reference, &model.manifest_digest)?;
    Ok(model)
}

pub fn resolve_source(source: &Path) -> anyhow::Result<Source> {
    resolve_source_pulling(source, PullPolicy::Never, &pull::RegistryArgs::default())
}

pub fn resolve_source_pulling(
    source: &Path,
    policy: PullPolicy,
    registry: &pull::RegistryArgs,
) -> anyhow::Result<Source> {
    let text = source.to_string_lossy();
    let looks_like_path = text.starts_with(['.', '/'])
        || [".wasm", ".wat", ".cwasm"].iter().any(|ext| text.ends_with(ext))
        || !text.contains(|c: char| c.is_ascii_alphanumeric());
    if source.is_dir() && source.join(wasmbox_image::app::FILE_NAME).is_file() {
        return app_dir_source(source, policy, registry);
    }
    if source.is_file() || looks_like_path {
        let artifact = wasmbox_engine::artifact::load(source)?;
        return Ok(Source { artifact, image: None, reference: None, local_app: None });
    }
    let reference = parse_reference(&text)?;
    let store = image_store()?;
    let descriptor = find_image(&store, &reference, policy, registry)?;
    let image = wasmbox_image::unpack(&store, &descriptor)?;
    let name = display_reference(&reference);
    let artifact = wasmbox_engine::artifact::from_bytes(Path::new(&name), image.wasm.clone())?;
    Ok(Source { artifact, image: Some((name, image)), reference: Some(reference), local_app: None })
}

/// A `wasmbox.toml` directory: its component, composed with its `[dependencies]` (cached).
fn app_dir_source(dir: &Path, policy: PullPolicy, registry: &pull::RegistryArgs) -> anyhow::Result<Source> {
    let app = App::load(dir)?;
    if app.wasm.as_os_str().is_empty() {
        anyhow::bail!(
            "{} has routes but no `wasm`: serve it with `wasmbox serve {}`",
            dir.join(wasmbox_image::app::FILE_NAME).display(),
            dir.display()
        );
    }
    let wasm_path = dir.join(&app.wasm);
    #[cfg(feature = "compose")]
    if let Some(composed) = crate::app_deps::compose_dir(dir, &app, policy, registry)? {
        let artifact = wasmbox_engine::artifact::from_bytes(&wasm_path, composed.wasm)?;
        return Ok(Source { artifact, image: None, reference: None, local_app: Some(app) });
    }
    #[cfg(not(feature = "compose"))]
    if !app.dependencies.is_empty() {
        let _ = (policy, registry);
        anyhow::bail!(
            "this wasmbox was built without composition (the `compose` feature): it cannot plug [dependencies]"
        );
    }
    let artifact = wasmbox_engine::artifact::load(&wasm_path)?;
    Ok(Source { artifact, image: None, reference: None, local_app: Some(app) })
}

/// The manifest digest of image `text` in the local store (pulled first per `policy`).
#[cfg(feature = "compose")]
pub fn image_digest(text: &str, policy: PullPolicy, registry: &pull::RegistryArgs) -> anyhow::Result<String> {
    let reference = parse_reference(text)?;
    let descriptor = find_image(&image_store()?, &reference, policy, registry)?;
    Ok(descriptor.digest().to_string())
}

/// The dependency record of a composed component (none for modules and precompiled code: its
/// dependencies then get nothing).
pub fn record_of(artifact: &Artifact) -> anyhow::Result<Option<wasmbox_engine::deps::Record>> {
    match artifact.wasm() {
        Some(wasm) if artifact.kind == wasmbox_engine::Kind::Component => {
            wasmbox_engine::deps::read_record(wasm).map_err(|why| anyhow::anyhow!("{}: {why}", artifact.path.display()))
        }
        _ => Ok(None),
    }
}
