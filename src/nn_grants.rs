//! `--nn-model NAME=SOURCE` and `--nn-allow-load`: the models a container is granted, loaded
//! (parsed and optimized) before the guest starts, so a missing model exits 127 and one the
//! backend cannot load exits 126 — never halfway through the guest's run.

use std::path::PathBuf;

use anyhow::Context;

use wasmbox_engine::{EngineError, NnGrants, NnModel};

use crate::commands::PullPolicy;
use crate::commands::pull::RegistryArgs;
use crate::flags::GrantArgs;

/// Where model images come from: the local store, pulled per `policy` when missing.
#[derive(Clone, Copy)]
pub struct Pulling<'a> {
    pub policy: PullPolicy,
    pub registry: &'a RegistryArgs,
}

impl Pulling<'_> {
    /// The local store only (what `serve` uses for its SOURCE too).
    pub fn never() -> Pulling<'static> {
        static NO_REGISTRY: std::sync::LazyLock<RegistryArgs> = std::sync::LazyLock::new(RegistryArgs::default);
        Pulling { policy: PullPolicy::Never, registry: &NO_REGISTRY }
    }
}

/// The grants of `flags`, each model loaded once (a model already loaded in this process is
/// shared, not parsed again).
pub fn resolve(flags: &GrantArgs, pulling: Pulling<'_>) -> anyhow::Result<NnGrants> {
    let mut grants = NnGrants { allow_load: flags.nn_allow_load, ..NnGrants::default() };
    let asks = !flags.nn_models.is_empty() || flags.nn_allow_load.is_some();
    if asks && !wasmbox_engine::nn::AVAILABLE {
        return Err(EngineError::NotRunnable(
            "--nn-model/--nn-allow-load: this wasmbox (an edge build) has no inference backend".into(),
        )
        .into());
    }
    for (name, source) in &flags.nn_models {
        if grants.models.contains_key(name) {
            anyhow::bail!("--nn-model {name} is given twice; each name grants one model");
        }
        grants.models.insert(name.clone(), load(name, source, pulling)?);
    }
    Ok(grants)
}

/// The model file of the grant `name` = `source`, as an absolute path (what a detached
/// container's spec records): an existing path is a model file, anything else a model image
/// (its verified layer in the store; store blobs never change).
pub fn model_file(name: &str, source: &str, pulling: Pulling<'_>) -> anyhow::Result<PathBuf> {
    let not_found = || EngineError::ModelNotFound { name: name.into(), model: source.into() };
    let looks_like_path = source.starts_with(['.', '/']) || source.ends_with(".onnx");
    if !std::path::Path::new(source).exists() && !looks_like_path {
        let image = crate::commands::resolve_model_image(source, pulling.policy, pulling.registry)
            .with_context(|| format!("--nn-model {name}={source}"))?;
        return Ok(image.path);
    }
    let path = std::fs::canonicalize(source).map_err(|_| not_found())?;
    if !path.is_file() {
        let reason = "not a regular file".into();
        return Err(EngineError::BadModel { name: name.into(), model: source.into(), reason }.into());
    }
    Ok(path)
}

/// Loads the model at `source` for the grant `name`.
pub fn load(name: &str, source: &str, pulling: Pulling<'_>) -> anyhow::Result<NnModel> {
    let path = model_file(name, source, pulling)?;
    let path = path.as_path();
    let bytes = std::fs::read(path).map_err(|e| EngineError::Read { path: path.into(), source: e })?;
    NnModel::load_onnx(&bytes).map_err(|e| {
        let reason = match e {
            EngineError::NotRunnable(reason) => reason,
            other => other.to_string(),
        };
        EngineError::BadModel { name: name.into(), model: source.into(), reason }.into()
    })
}

/// Adds an app's own models (bundled in its image, or beside its local `wasmbox.toml`) to
/// `grants`; a model the flags grant under the same name wins.
pub fn add_bundled(grants: &mut NnGrants, bundled: &[(String, PathBuf)]) -> anyhow::Result<()> {
    for (name, path) in bundled {
        if !grants.models.contains_key(name) {
            let model = load(name, &path.display().to_string(), Pulling::never())?;
            grants.models.insert(name.clone(), model);
        }
    }
    Ok(())
}
