//! `wasmbox compose APP --plug DEP…`: one component from an app and the dependencies that
//! satisfy its imports, each dependency isolated from the app's grants unless `--grant` shares
//! them (docs/components.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use wasmbox_engine::Kind;
use wasmbox_engine::deps::DepGrants;

/// Plug components together: every import of APP that a DEP exports is wired to it
#[derive(Args, Debug)]
#[command(after_help = "\
Exit codes: 0 composed; 125 bad flags; 126 the parts cannot be joined (an import no
DEP satisfies, an incompatible type, two DEPs exporting one interface, a DEP nobody
needs); 127 APP or a DEP was not found.")]
pub struct ComposeArgs {
    /// The app component: a file or an image reference
    #[arg(value_name = "APP")]
    pub app: PathBuf,

    /// A dependency component (file or image reference) whose exports satisfy imports of APP
    /// or of another DEP; repeatable
    #[arg(long = "plug", value_name = "DEP", required = true)]
    pub plugs: Vec<PathBuf>,

    /// Share one of the app's grants with a dependency, which otherwise gets none:
    /// DEP=dir:/GUEST[:ro], DEP=env:NAME, DEP=env:NAME=VALUE, DEP=net[:RULE], DEP=http[:HOST],
    /// DEP=nn:MODEL
    /// (DEP as given to --plug); repeatable
    #[arg(long = "grant", value_name = "DEP=GRANT")]
    pub grants: Vec<String>,

    /// Where to write the composed component
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// When to pull image references from their registry
    #[arg(long, value_enum, default_value_t = super::PullPolicy::Missing)]
    pub pull: super::PullPolicy,

    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

pub fn exec(a: ComposeArgs) -> anyhow::Result<i32> {
    let most = wasmbox_engine::deps::record::MAX_DEPS;
    if a.plugs.len() > most {
        anyhow::bail!("{} --plug dependencies; a composition holds at most {most}", a.plugs.len());
    }
    let mut grants: Vec<DepGrants> = vec![DepGrants::default(); a.plugs.len()];
    for spec in &a.grants {
        let (dep, grant) = spec
            .split_once('=')
            .with_context(|| format!("invalid --grant `{spec}` (expected DEP=GRANT, e.g. greet.wasm=dir:/data)"))?;
        let index = a.plugs.iter().position(|p| p.as_os_str() == dep).with_context(|| {
            format!("--grant `{spec}`: `{dep}` is not one of the --plug dependencies (name it as given to --plug)")
        })?;
        grants[index].add(grant).map_err(anyhow::Error::msg)?;
    }
    let app = load_part(&a.app, a.pull, &a.registry)?;
    let mut deps = Vec::with_capacity(a.plugs.len());
    for (plug, grants) in a.plugs.iter().zip(grants) {
        let (bytes, digest) = load_part(plug, a.pull, &a.registry)?;
        deps.push(wasmbox_compose::Dep { name: plug.display().to_string(), bytes, digest, grants });
    }
    let started = std::time::Instant::now();
    let composed = wasmbox_compose::compose(&a.app.display().to_string(), &app.0, &deps)?;
    wasmbox_engine::fs::write_atomic(&a.output, &composed.bytes)
        .with_context(|| format!("failed to write {}", a.output.display()))?;
    let mode = 0o644 & !crate::home::user_umask();
    std::fs::set_permissions(&a.output, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("failed to set the permissions of {}", a.output.display()))?;
    for dep in &composed.record.deps {
        eprintln!("  {} provides {}", dep.source, dep.provides.join(", "));
    }
    eprintln!(
        "composed {} -> {} ({} bytes, {:.1} ms)",
        a.app.display(),
        a.output.display(),
        composed.bytes.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(0)
}

/// A part's component bytes and digest: a file (`sha256:` of its bytes) or an image (its
/// manifest digest, after the trust policy admitted it).
pub fn load_part(
    source: &Path,
    pull: super::PullPolicy,
    registry: &super::pull::RegistryArgs,
) -> anyhow::Result<(Vec<u8>, String)> {
    let resolved = super::resolve_source_pulling(source, pull, registry)?;
    resolved.admit()?;
    let Some(wasm) = resolved.artifact.wasm() else {
        anyhow::bail!(wasmbox_compose::ComposeError::NotAComponent {
            part: source.display().to_string(),
            reason: "it is precompiled code; compose the .wasm it came from".into(),
        });
    };
    if resolved.artifact.kind != Kind::Component {
        anyhow::bail!(wasmbox_compose::ComposeError::NotAComponent {
            part: source.display().to_string(),
            reason: "it is a core module; only components have imports and exports to plug".into(),
        });
    }
    let digest = match &resolved.image {
        Some((_, image)) => image.manifest_digest.clone(),
        None => format!("sha256:{}", wasmbox_engine::cache::hex(&super::sha256(wasm))),
    };
    Ok((wasm.to_vec(), digest))
}
