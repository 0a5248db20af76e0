//! `wasmbox version` (and `--version`): what this binary is and what it runs guests with.

use clap::Args;
use serde::Serialize;
use wasmbox_engine::{EngineOptions, Runtime};

/// Show the wasmbox and Wasmtime versions, the compile-cache engine hash, features and target
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct VersionInfo {
    pub wasmbox: &'static str,
    pub wasmtime: &'static str,
    /// The engine digest compiled code is bound to (plain runs; `--fuel` runs use their own).
    pub engine: String,
    pub engine_fuel: String,
    pub features: Vec<&'static str>,
    pub target: &'static str,
    /// The WASI-NN backend binary `--nn-model` starts (`null` when there is none).
    pub inference_backend: Option<String>,
}

impl VersionInfo {
    pub fn collect() -> anyhow::Result<VersionInfo> {
        let digest = |fuel| -> anyhow::Result<String> {
            let rt = Runtime::new(EngineOptions { fuel, ..Default::default() })?;
            Ok(wasmbox_engine::cache::hex(&rt.compat_digest()))
        };
        Ok(VersionInfo {
            wasmbox: env!("CARGO_PKG_VERSION"),
            wasmtime: env!("WASMBOX_WASMTIME_VERSION"),
            engine: digest(false)?,
            engine_fuel: digest(true)?,
            features: env!("WASMBOX_FEATURES").split(',').filter(|f| !f.is_empty()).collect(),
            target: env!("WASMBOX_TARGET"),
            inference_backend: wasmbox_engine::nn::backend().ok().map(|p| p.display().to_string()),
        })
    }
}

/// What `-V` prints after the command's name, like `wasmtime -V`.
pub fn short_line() -> String {
    format!("{} (wasmtime {}, {})", env!("CARGO_PKG_VERSION"), env!("WASMBOX_WASMTIME_VERSION"), env!("WASMBOX_TARGET"))
}

pub fn exec(a: VersionArgs) -> anyhow::Result<i32> {
    let v = VersionInfo::collect()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let features = if v.features.is_empty() { "none (default build)".to_string() } else { v.features.join(", ") };
    println!("wasmbox:   {}", v.wasmbox);
    println!("wasmtime:  {}", v.wasmtime);
    println!("engine:    {} (compile cache; with --fuel: {})", &v.engine[..16], &v.engine_fuel[..16]);
    println!("features:  {features}");
    println!("target:    {}", v.target);
    match wasmbox_engine::nn::backend() {
        Ok(path) => println!("inference: {} (WASI-NN backend)", path.display()),
        Err(why) => println!("inference: none: {why}"),
    }
    Ok(0)
}
