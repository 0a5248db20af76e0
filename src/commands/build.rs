//! `wasmbox build`: package a Wasm app (a `wasmbox.toml` directory or a `.wasm`/`.wat` file)
//! as an OCI image in the local store.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use wasmbox_engine::inspect::inspect;
use wasmbox_engine::{EngineOptions, Kind, Runtime};
use wasmbox_image::pack::{PrecompiledLayer, WasmMeta};
use wasmbox_image::{App, display_reference, pack, parse_reference};

/// Build an image from a directory with wasmbox.toml, a .wasm/.wat file, or an .onnx model
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag (NAME[:TAG]); default: the app's name:version, or FILE:latest
    #[arg(short = 't', long = "tag", value_name = "REF")]
    pub tag: Option<String>,

    /// Also carry precompiled code for these targets (x86_64, aarch64, riscv64gc, pulley64 or
    /// their triples), used by trusted pulls on matching machines instead of compiling
    #[arg(long, value_name = "TARGET,…", value_delimiter = ',', value_parser = wasmbox_engine::Target::parse)]
    pub precompile: Vec<wasmbox_engine::Target>,

    /// A directory containing wasmbox.toml, a .wasm/.wat file, or an .onnx model (a model
    /// image, granted to apps with --nn-model NAME=REF)
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
}

pub fn exec(a: BuildArgs) -> anyhow::Result<i32> {
    if a.path.extension().is_some_and(|e| e == "onnx") {
        return build_model(&a);
    }
    let (app, wasm_path) = if a.path.is_dir() {
        let app = App::load(&a.path)?;
        if app.wasm.as_os_str().is_empty() {
            bail!(
                "{} has routes but no `wasm`: a routed app is served from its directory \
                 (`wasmbox serve {}`); build each route's component as its own image",
                a.path.join("wasmbox.toml").display(),
                a.path.display()
            );
        }
        let wasm = a.path.join(&app.wasm);
        (Some(app), wasm)
    } else {
        (None, a.path.clone())
    };
    let tag = match (&a.tag, &app) {
        (Some(t), _) => t.clone(),
        (None, Some(app)) => format!("{}:{}", app.name, app.version.as_deref().unwrap_or("latest")),
        (None, None) => {
            let stem = wasm_path.file_stem().and_then(|s| s.to_str()).context("cannot name the image; pass -t NAME")?;
            format!("{}:latest", stem.to_ascii_lowercase())
        }
    };
    let reference = parse_reference(&tag)?;
    if reference.digest().is_some() {
        bail!("cannot build into a digest reference `{tag}`; use NAME[:TAG]");
    }

    // Validate by compiling (which also warms the compile cache for the first run).
    let rt = Runtime::new(EngineOptions::default())?;
    // `[dependencies]` are plugged in here: the image holds one component.
    #[cfg_attr(not(feature = "compose"), allow(unused_mut))]
    let mut deps = std::collections::BTreeMap::new();
    let artifact = match app.as_ref().filter(|app| !app.dependencies.is_empty()) {
        #[cfg(feature = "compose")]
        Some(app) => {
            let registry = super::pull::RegistryArgs::default();
            let composed = crate::app_deps::compose_dir(&a.path, app, super::PullPolicy::Missing, &registry)?
                .expect("an app with dependencies composes");
            for (key, digest) in &composed.deps {
                eprintln!("plugged {key} ({digest})");
            }
            deps = composed.deps;
            wasmbox_engine::artifact::from_bytes(&wasm_path, composed.wasm)?
        }
        #[cfg(not(feature = "compose"))]
        Some(_) => {
            bail!("this wasmbox was built without composition (the `compose` feature): it cannot plug [dependencies]")
        }
        None => wasmbox_engine::artifact::load(&wasm_path)?,
    };
    let Some(wasm) = artifact.wasm() else {
        bail!("{} is precompiled code; build from the .wasm", wasm_path.display())
    };
    let cache = super::compile_cache(false)?;
    let (compiled, _) = super::compile(&rt, &artifact, cache.as_ref(), false)?;
    let info = inspect(&rt, &artifact, Some(&compiled));
    let names = |items: &[wasmbox_engine::inspect::Item]| items.iter().map(|i| i.name.clone()).collect();
    let component = artifact.kind == Kind::Component;
    let meta = WasmMeta {
        component,
        imports: if component { names(&info.imports) } else { vec![] },
        exports: if component { names(&info.exports) } else { vec![] },
        deps,
    };

    let mut precompiled = Vec::new();
    let vector = super::uses_simd(wasm);
    for target in &a.precompile {
        let rt = Runtime::new(EngineOptions { target: *target, vector, ..Default::default() })?;
        let code = wasmbox_engine::compile::precompile(&rt, &artifact)?;
        let binding = wasmbox_engine::compile::binding(&rt, wasm);
        let bytes = wasmbox_engine::cache::encode_entry(artifact.kind, &binding, &rt.code_target(), &code);
        eprintln!("precompiled for {} ({} bytes)", target.triple(), bytes.len());
        precompiled.push(PrecompiledLayer { target: target.triple().to_string(), bytes });
    }
    // Bundled models are checked the way --nn-model checks a grant, before anything is stored.
    let mut models = Vec::new();
    if let Some(app) = &app {
        for (name, file) in &app.nn.models {
            let path = a.path.join(file).display().to_string();
            crate::nn_grants::load(name, &path, crate::nn_grants::Pulling::never())
                .with_context(|| format!("wasmbox.toml [nn] models: {name} = \"{file}\""))?;
            models.push((name.clone(), std::fs::read(&path).with_context(|| format!("failed to read {path}"))?));
        }
    }
    let store = super::image_store()?;
    let manifest = pack(&store, wasm, &meta, app.as_ref(), &precompiled, &models)?;
    store.tag(&reference.whole(), &manifest)?;
    eprintln!("built {} ({}, {} bytes of Wasm)", display_reference(&reference), artifact.kind, wasm.len());
    println!("{}", manifest.digest());
    Ok(0)
}

/// `build -t REF model.onnx`: a model image, checked by loading it the way `--nn-model` will.
fn build_model(a: &BuildArgs) -> anyhow::Result<i32> {
    if !a.precompile.is_empty() {
        bail!("--precompile is for Wasm apps; a model image holds the ONNX file only");
    }
    let path = a.path.display().to_string();
    let stem = a.path.file_stem().and_then(|s| s.to_str()).context("cannot name the image; pass -t NAME")?;
    let tag = a.tag.clone().unwrap_or_else(|| format!("{}:latest", stem.to_ascii_lowercase()));
    let reference = parse_reference(&tag)?;
    if reference.digest().is_some() {
        bail!("cannot build into a digest reference `{tag}`; use NAME[:TAG]");
    }
    let model = crate::nn_grants::load(stem, &path, crate::nn_grants::Pulling::never())?;
    let bytes = std::fs::read(&a.path).with_context(|| format!("failed to read {path}"))?;
    let store = super::image_store()?;
    let title = a.path.file_name().and_then(|n| n.to_str()).unwrap_or(stem);
    let manifest = wasmbox_image::pack_model(&store, &bytes, title)?;
    store.tag(&reference.whole(), &manifest)?;
    eprintln!("built {} (ONNX model, {} bytes, {})", display_reference(&reference), bytes.len(), model.digest());
    println!("{}", manifest.digest());
    Ok(0)
}
