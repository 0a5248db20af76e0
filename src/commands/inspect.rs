//! `wasmbox inspect`: describe an artifact — kind, digest, WASI version, imports, exports, and
//! the capabilities it could ask for.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use wasmbox_engine::inspect::{Inspection, inspect};
use wasmbox_engine::{EngineOptions, Kind, Runtime};

/// Show a container (of the running daemon), or what a module, component or local image is
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A container name or id prefix, a .wasm module or component, .wat text, a `wasmbox compile`
    /// output, or a local image
    #[arg(value_name = "CONTAINER|SOURCE")]
    pub source: PathBuf,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,

    /// Print a component's world as WIT (imports, exports and their types), as
    /// `wasm-tools component wit` does
    #[arg(long, conflicts_with = "json")]
    pub wit: bool,
}

/// An image's side of `inspect`: where it came from and what its app asks for.
#[derive(Serialize)]
struct ImageInfo<'a> {
    reference: &'a str,
    manifest_digest: &'a str,
    format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a wasmbox_image::App>,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    wasm: &'a Inspection,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageInfo<'a>>,
    /// A composed component's plugged dependencies and what each may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<&'a [wasmbox_engine::deps::DepRecord]>,
}

pub fn exec(a: InspectArgs) -> anyhow::Result<i32> {
    // A container of a running daemon first (docker's order), then an artifact or image.
    if let Some(c) = container(&a.source.to_string_lossy())? {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&c)?);
        } else {
            print_container(&c);
        }
        return Ok(0);
    }
    let rt = Runtime::new(EngineOptions::default())?;
    let source = match super::resolve_source(&a.source) {
        Ok(source) => source,
        Err(e) => return inspect_model_image(&a, e),
    };
    let artifact = &source.artifact;
    if a.wit {
        match (artifact.kind, artifact.wasm()) {
            (Kind::Component, Some(wasm)) => {
                let text = wasmbox_engine::wit::world_text(wasm).map_err(|why| {
                    anyhow::Error::new(wasmbox_engine::EngineError::NotWasm { path: a.source.clone(), reason: why })
                })?;
                print!("{text}");
                return Ok(0);
            }
            (_, None) => {
                anyhow::bail!("{}: precompiled code keeps no WIT; inspect the .wasm it came from", a.source.display())
            }
            (Kind::Module, Some(_)) => {
                println!(
                    "{} is a core module: modules have no WIT (a component has); its imports and exports:",
                    a.source.display()
                );
            }
        }
    }
    // Components are described through their compiled types; modules need no compile, but
    // validating them keeps `inspect` from describing a file `run` would reject.
    let cache = super::compile_cache(false)?;
    let compiled = match artifact.wasm() {
        Some(_) => Some(super::compile(&rt, artifact, cache.as_ref(), false)?.0),
        None => None,
    };
    let info = inspect(&rt, artifact, compiled.as_ref());
    let image = source.image.as_ref().map(|(name, image)| ImageInfo {
        reference: name,
        manifest_digest: &image.manifest_digest,
        format: image.format.to_string(),
        app: image.app.as_ref(),
    });
    let record = super::record_of(artifact)?;
    let dependencies = record.as_ref().map(|r| r.deps.as_slice());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&Report { wasm: &info, image, dependencies })?);
    } else {
        if let Some(image) = &image {
            print!("{}", render_image(image));
        }
        print!("{}", render(&info));
        if let Some(deps) = dependencies {
            print!("{}", render_deps(deps));
        }
    }
    Ok(0)
}

/// Which part of a composed component may use what: the app everything its run grants, each
/// dependency only what the composition shared with it.
fn render_deps(deps: &[wasmbox_engine::deps::DepRecord]) -> String {
    let mut s = String::from("composed: the app may use what its run grants; each dependency only what is listed\n");
    for (i, d) in deps.iter().enumerate() {
        let grants = d.grants.describe();
        s += &format!("  dependency {i}: {} ({})\n", d.source, d.digest);
        s += &format!("    provides:  {}\n", d.provides.join(", "));
        if !d.isolated.is_empty() {
            s += &format!("    own WASI:  {}\n", d.isolated.join(", "));
        }
        s += &format!(
            "    may use:   {}\n",
            if grants.is_empty() { "nothing of the app's grants".into() } else { grants.join(" ") }
        );
    }
    s
}

/// A model image is not an app: `inspect` says what it holds and how to grant it. Any other
/// failure of `resolve_source` is reported as it was.
fn inspect_model_image(a: &InspectArgs, failure: anyhow::Error) -> anyhow::Result<i32> {
    let text = a.source.to_string_lossy();
    let Ok(model) = super::resolve_model_image(&text, super::PullPolicy::Never, &Default::default()) else {
        return Err(failure);
    };
    let sha256 = super::sha256(&std::fs::read(&model.path)?);
    let digest = format!("sha256:{}", wasmbox_engine::cache::hex(&sha256));
    if a.json {
        let doc = serde_json::json!({
            "image": { "reference": text, "manifest_digest": model.manifest_digest, "format": "model" },
            "model": { "format": "onnx", "size": model.size, "sha256": digest },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("image:   {text}\nmanifest: {}\nformat:  model (ONNX, {} bytes)", model.manifest_digest, model.size);
        println!("sha256:  {digest}\ngrant it to an app: --nn-model NAME={text}");
    }
    Ok(0)
}

fn render_image(i: &ImageInfo) -> String {
    let mut s = format!(
        "image:   {}
manifest: {}
format:  {}
",
        i.reference, i.manifest_digest, i.format
    );
    let Some(app) = i.app else { return s };
    s += &format!(
        "app:     {} {}
",
        app.name,
        app.version.as_deref().unwrap_or("")
    );
    let l = &app.limits;
    if l.memory.is_some() || l.timeout.is_some() || l.fuel.is_some() {
        // Baked limits apply as defaults; above wasmbox's own defaults only when the user opts in.
        let parts: Vec<String> = [
            l.memory.as_ref().map(|m| format!("memory {m}")),
            l.timeout.as_ref().map(|t| format!("timeout {t}")),
            l.fuel.map(|f| format!("fuel {f}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        s += &format!(
            "limits:  {} (flags override; a memory above the default needs -m or --grant-requested)\n",
            parts.join(", ")
        );
    }
    for (name, file) in &app.nn.models {
        s += &format!("model:   {name} (bundled from {file}; the app loads it by name, no flag needed)\n");
    }
    let r = &app.capabilities;
    if r.is_empty() {
        s += "the app requests no capabilities
";
        return s;
    }
    s += "the app requests (granted only by your flags):
";
    for d in &r.dirs {
        s += &format!(
            "  directory {}{}   -v HOST_DIR:{}{}\n",
            d.guest,
            if d.read_only { " (read-only)" } else { "" },
            d.guest,
            if d.read_only { ":ro" } else { "" }
        );
    }
    for e in &r.env {
        s += &format!("  env {e}   -e {e}\n");
    }
    for n in &r.net {
        s += &format!("  network {n}   --net-allow {n}\n");
    }
    for h in &r.http {
        s += &format!("  http {h}   (for `serve`)\n");
    }
    for m in &r.nn {
        s += &format!("  model {m}   --nn-model {m}=MODEL\n");
    }
    s
}

fn render(i: &Inspection) -> String {
    let mut s = String::new();
    let kind = match (i.kind, i.precompiled) {
        (k, true) => format!("precompiled {k}"),
        (Kind::Module, false) => "module".into(),
        (Kind::Component, false) => "component".into(),
    };
    s += &format!("path:    {}\nkind:    {kind}\nsize:    {} bytes\nsha256:  {}\n", i.path, i.size, i.sha256);
    s += &format!("wasi:    {}\nworld:   {}\n", i.wasi, i.world);
    if let Some(n) = &i.native {
        let how = if n.native { "this machine's CPU features" } else { "the target's baseline" };
        s += &format!("target:  {} (compiled for {how})\n", n.target);
        let features =
            if n.cpu_features.is_empty() { "none beyond the baseline".to_string() } else { n.cpu_features.join(" ") };
        s += &format!("cpu:     {features}\n");
        s += &format!("engine:  {}\n", &n.engine[..16]);
        match &n.why_not {
            None => s += "runs here: yes (with --allow-precompiled)\n",
            Some(why) => s += &format!("runs here: no: {why}\n"),
        }
    }
    if i.precompiled {
        s += "imports, exports and capabilities are not kept in precompiled code; inspect the .wasm it came from\n";
        return s;
    }
    s += "capabilities it can ask for:\n";
    if i.capabilities.is_empty() {
        s += "  (none)\n";
    }
    for c in &i.capabilities {
        s += &format!("  {:<12} {}\n", c.name, c.grant);
    }
    for (title, items) in [("imports", &i.imports), ("exports", &i.exports)] {
        s += &format!("{title}:\n");
        if items.is_empty() {
            s += "  (none)\n";
        }
        for item in items.iter() {
            s += &format!("  {} ({})\n", item.name, item.kind);
            for f in &item.functions {
                s += &format!("    {f}\n");
            }
        }
    }
    s
}

/// The container named `name`, if a daemon is running and knows it (never starts a daemon).
fn container(name: &str) -> anyhow::Result<Option<wasmbox_host::Container>> {
    if name.contains('/') || name.ends_with(".wasm") || name.ends_with(".wat") {
        return Ok(None);
    }
    super::block_on(async {
        let Some(client) = crate::daemon_client::connect_existing().await? else { return anyhow::Ok(None) };
        match super::containers::get(&client, name).await {
            Ok(c) => Ok(Some(c)),
            Err(wasmbox_host::ClientError::Api(e)) if e.kind == "not_found" => Ok(None),
            Err(e) => Err(e.into()),
        }
    })?
}

fn print_container(c: &wasmbox_host::Container) {
    let s = &c.spec;
    println!("container: {} ({})", c.name, c.id);
    println!("source:    {} (wasm sha256:{})", s.source, s.wasm_sha256);
    println!("status:    {}", c.status);
    if let Some(code) = c.exit_code {
        println!("exit code: {code}");
    }
    if let Some(reason) = &c.reason {
        println!("reason:    {reason}");
    }
    println!("restart:   {} (restarts: {})", s.restart, c.restarts);
    println!("args:      {}", s.args.join(" "));
    for (k, v) in &s.env {
        println!("env:       {k}={v}");
    }
    for d in &s.dirs {
        println!("dir:       {} -> {}{}", d.host.display(), d.guest, if d.read_only { " (read-only)" } else { "" });
    }
    for r in &s.net_allow {
        println!("net-allow: {r}");
    }
    println!("memory:    {} bytes", s.memory_bytes);
    if let Some(t) = s.timeout_ms {
        println!("timeout:   {t} ms");
    }
    if let Some(f) = s.fuel {
        println!("fuel:      {f}");
    }
    if let Some(p) = &s.publish {
        println!("serving:   http://{p}/");
    }
}
