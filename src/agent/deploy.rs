//! An app version as a daemon container: `<app>-<12 hex of its digest>`, made from the image
//! pinned in the store with the grants and limits of agent.toml, and the few daemon calls the
//! agent makes (list, create, start, stop, remove).

use std::path::Path;

use anyhow::Context;
use wasmbox_host::spec::{ContainerSpec, DirGrant, ImageOrigin, NnModelGrant};
use wasmbox_host::{Client, Container, Status};
use wasmbox_trust::Verified;

use super::config::App;
use super::state::short;

/// The container name of `digest` of `app`.
pub fn name(app: &str, digest: &str) -> String {
    format!("{app}-{}", short(digest))
}

/// Whether `container` is a version of `app` (its name is `<app>-<12 hex>`).
pub fn belongs(app: &str, container: &Container) -> bool {
    container
        .name
        .strip_prefix(app)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The container spec of version `digest` of `app` (its image pinned in the store).
pub fn spec(app: &App, digest: &str, verified: &[Verified]) -> anyhow::Result<ContainerSpec> {
    let pinned = super::fetch::pin(&app.image, digest);
    let source = crate::commands::resolve_source_pulling(
        Path::new(&pinned.whole()),
        crate::commands::PullPolicy::Never,
        &Default::default(),
    )?;
    let image_app = source.app();
    let display = wasmbox_image::display_reference(&app.image);
    let mut args = vec![display.clone()];
    match (&app.args, image_app) {
        (Some(own), _) => args.extend(own.iter().cloned()),
        (None, Some(image_app)) => args.extend(image_app.args.iter().cloned()),
        (None, None) => {}
    }
    let mut env: Vec<(String, String)> =
        image_app.map(|a| a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    for (k, v) in &app.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    let mut dirs = Vec::new();
    for p in &app.dirs {
        let host = std::fs::canonicalize(&p.host)
            .ok()
            .filter(|h| h.is_dir())
            .with_context(|| format!("grants.dirs {}: not a directory on this device", p.host.display()))?;
        dirs.push(DirGrant { host, guest: p.guest.clone(), read_only: p.read_only });
    }
    // The same rule as `run -d`: the file's limits win, then the image's, which may only
    // lower our defaults (an image must not grant itself more memory).
    let flags = crate::flags::LimitArgs {
        memory: app.memory,
        timeout: None,
        fuel: app.fuel,
        max_handles: app.max_handles.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    let limits = flags.limits(image_app.map(|a| &a.limits), false)?;
    // The agent has no `--allow-precompiled`: native code runs only from images a policy verified.
    let wasm_sha256 = crate::commands::run::stage_for_daemon(&source, verified, false, limits.fuel.is_some())?;
    let nn_models = source
        .bundled_models()
        .iter()
        .map(|(name, path)| NnModelGrant { name: name.clone(), path: path.clone() })
        .collect();
    Ok(ContainerSpec {
        name: Some(name(&app.name, digest)),
        source: display,
        wasm_sha256,
        args,
        env,
        dirs,
        net_allow: app.net.clone(),
        memory_bytes: limits.memory_bytes,
        timeout_ms: limits.timeout.map(|t| t.as_millis() as u64),
        fuel: limits.fuel,
        max_handles: Some(limits.max_handles),
        restart: app.restart,
        auto_remove: false,
        log_max_bytes: ContainerSpec::DEFAULT_LOG_MAX,
        publish: app.port.map(|p| p.to_string()),
        http_allow: app.http.clone(),
        image: Some(ImageOrigin { reference: app.image.whole(), manifest_digest: digest.to_string() }),
        nn_models,
        nn_allow_load: None,
        deps: crate::commands::record_of(&source.artifact)?,
    })
}

/// The daemon calls the agent makes.
pub struct Daemon {
    pub client: Client,
}

impl Daemon {
    pub async fn list(&self) -> anyhow::Result<Vec<Container>> {
        Ok(self.client.call("GET", "/v1/containers?all=1", None).await?)
    }

    /// The versions of `app` the daemon has.
    pub async fn versions(&self, app: &str) -> anyhow::Result<Vec<Container>> {
        Ok(self.list().await?.into_iter().filter(|c| belongs(app, c)).collect())
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<Option<Container>> {
        Ok(self.list().await?.into_iter().find(|c| c.name == name))
    }

    pub async fn create(&self, spec: &ContainerSpec) -> anyhow::Result<Container> {
        Ok(self.client.call("POST", "/v1/containers", Some(serde_json::to_vec(spec)?)).await?)
    }

    pub async fn start(&self, name: &str) -> anyhow::Result<()> {
        self.client.call::<serde_json::Value>("POST", &format!("/v1/containers/{name}/start"), None).await?;
        Ok(())
    }

    /// Stops `name` after `grace` (rounded up to whole seconds, as the API takes them).
    pub async fn stop(&self, name: &str, grace: std::time::Duration) -> anyhow::Result<()> {
        let t = grace.as_millis().div_ceil(1000);
        self.client.call::<serde_json::Value>("POST", &format!("/v1/containers/{name}/stop?t={t}"), None).await?;
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        self.client.call::<serde_json::Value>("DELETE", &format!("/v1/containers/{name}?force=1"), None).await?;
        Ok(())
    }
}

/// Is it running (or being restarted by its policy)?
pub fn alive(c: &Container) -> bool {
    matches!(c.status, Status::Running | Status::Restarting)
}
