//! `wasmbox inspect`: describe an artifact — kind, digest, WASI version, imports, exports, and
//! the capabilities it could ask for.

use std::path::PathBuf;

use clap::Args;
use wasmbox_engine::inspect::{Inspection, inspect};
use wasmbox_engine::{EngineOptions, Kind, Runtime};

/// Show what a module or component is, imports, exports and could ask for
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A .wasm module or component, .wat text, or a `wasmbox compile` output
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn exec(a: InspectArgs) -> anyhow::Result<i32> {
    let rt = Runtime::new(EngineOptions::default())?;
    let artifact = wasmbox_engine::artifact::load(&a.source)?;
    // Components are described through their compiled types; modules need no compile, but
    // validating them keeps `inspect` from describing a file `run` would reject.
    let cache = super::compile_cache(false)?;
    let compiled = match artifact.wasm() {
        Some(_) => Some(wasmbox_engine::compile(&rt, &artifact, cache.as_ref(), false)?.0),
        None => None,
    };
    let info = inspect(&rt, &artifact, compiled.as_ref());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", render(&info));
    }
    Ok(0)
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
