//! `inspect`: what an artifact is, what it imports and exports, and which host capabilities it
//! could ask for — read from its imports, without running it.

use std::collections::BTreeSet;

use serde::Serialize;
use wasmtime::component::types::ComponentItem;

use crate::artifact::{Artifact, Code, Kind};
use crate::cache::hex;
use crate::compile::Compiled;
use crate::engine::Runtime;

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub path: String,
    pub kind: Kind,
    pub precompiled: bool,
    pub size: u64,
    pub sha256: String,
    /// `preview1`, `preview0`, `0.2.x`, `none`, or `unknown` (precompiled code).
    pub wasi: String,
    /// `command` (has `_start` / `wasi:cli/run`), `http-proxy`, `library`, `reactor`, or
    /// `unknown` (precompiled code).
    pub world: String,
    pub imports: Vec<Item>,
    pub exports: Vec<Item>,
    pub capabilities: Vec<Capability>,
    /// For precompiled code: what it was compiled for and what it needs to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeCode>,
}

/// What a precompiled file's code assumes.
#[derive(Debug, Clone, Serialize)]
pub struct NativeCode {
    /// The target triple (`x86_64-unknown-linux-gnu`, `aarch64-…`, `pulley64`).
    pub target: String,
    /// Compiled for the CPU features of the machine that compiled it (`true`), or for the
    /// target's baseline (cross-compiled with `--target`).
    pub native: bool,
    /// Optional CPU features the code uses (wasmtime's ISA flags that are on).
    pub cpu_features: Vec<String>,
    /// The engine digest it was compiled by (`wasmbox version` shows this wasmbox's).
    pub engine: String,
    /// Whether this wasmbox can run it on this machine (with the default engine).
    pub runs_here: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// A top-level import or export, with the functions of an interface (components) or its kind.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    /// `func`, `memory`, `table`, `global`, `tag` (modules); `interface`, `func`, `type`,
    /// `module`, `component`, `resource` (components).
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
}

/// A capability the artifact's imports let it ask for, and how a user grants it.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub grant: &'static str,
}

/// (capability, how to grant, preview-1 function prefixes, WASI 0.2 interface prefixes)
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("filesystem", "-v/--dir HOST[:GUEST][:ro]", &["path_", "fd_readdir", "fd_prestat"], &["wasi:filesystem/"]),
    ("sockets", "--net-allow SPEC", &["sock_"], &["wasi:sockets/"]),
    ("http", "not available in `run`", &[], &["wasi:http/"]),
    ("wasi-nn", "--nn-model NAME=SOURCE, --nn-allow-load[=SIZE]", &[], &["wasi:nn/", "wasi_ephemeral_nn#"]),
    ("env/args", "-e/--env, --env-file, ARGS", &["environ_", "args_"], &["wasi:cli/environment"]),
    ("clocks", "always granted", &["clock_", "poll_oneoff"], &["wasi:clocks/"]),
    ("random", "always granted", &["random_get"], &["wasi:random/"]),
    ("stdio", "always granted", &["fd_read", "fd_write"], &["wasi:cli/stdin", "wasi:cli/stdout", "wasi:cli/stderr"]),
];

/// Inspects `artifact`. Components are described through wasmtime's types, so their compiled
/// form is needed; modules are read with wasmparser.
pub fn inspect(rt: &Runtime, artifact: &Artifact, compiled: Option<&Compiled>) -> Inspection {
    let (imports, exports) = match (compiled, artifact.wasm()) {
        (Some(Compiled::Component(c)), _) => component_items(c),
        (_, Some(wasm)) if artifact.kind == Kind::Module => module_items(wasm),
        _ => (Vec::new(), Vec::new()),
    };
    let names = |items: &[Item]| items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    let import_names = names(&imports);
    let export_names = names(&exports);
    let precompiled = matches!(artifact.code, Code::Precompiled(_));
    // Native code does not keep the Wasm import/export sections we read: say so, not "none".
    let unknown = |known: String| if precompiled { "unknown".to_string() } else { known };
    Inspection {
        path: artifact.path.display().to_string(),
        kind: artifact.kind,
        precompiled,
        size: artifact.file_size,
        sha256: hex(&artifact.sha256()),
        wasi: unknown(wasi_version(&import_names)),
        world: unknown(world(artifact.kind, &export_names)),
        capabilities: capabilities(&import_names),
        imports,
        exports,
        native: native_code(rt, artifact),
    }
}

fn native_code(rt: &Runtime, artifact: &Artifact) -> Option<NativeCode> {
    let Code::Precompiled(file) = &artifact.code else { return None };
    let entry = crate::cache::decode_entry(file).ok()?;
    let info = crate::native_info::read(entry.payload);
    let here = crate::compile::check_runnable_here(rt, &entry.target, &entry.binding);
    Some(NativeCode {
        target: entry.target.triple.clone(),
        native: entry.target.native,
        cpu_features: info.map(|i| i.cpu_features).unwrap_or_default(),
        engine: hex(&entry.binding.engine),
        runs_here: here.is_ok(),
        why_not: here.err(),
    })
}

fn module_items(wasm: &[u8]) -> (Vec<Item>, Vec<Item>) {
    use wasmparser::{ExternalKind, Payload, TypeRef};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ImportSection(section) => {
                for import in section.into_imports().flatten() {
                    let kind = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
                        TypeRef::Memory(_) => "memory",
                        TypeRef::Table(_) => "table",
                        TypeRef::Global(_) => "global",
                        TypeRef::Tag(_) => "tag",
                    };
                    imports.push(Item {
                        name: format!("{}#{}", import.module, import.name),
                        kind: kind.into(),
                        functions: vec![],
                    });
                }
            }
            Payload::ExportSection(section) => {
                for export in section.into_iter().flatten() {
                    let kind = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => "func",
                        ExternalKind::Memory => "memory",
                        ExternalKind::Table => "table",
                        ExternalKind::Global => "global",
                        ExternalKind::Tag => "tag",
                    };
                    exports.push(Item { name: export.name.to_string(), kind: kind.into(), functions: vec![] });
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

fn component_items(component: &wasmtime::component::Component) -> (Vec<Item>, Vec<Item>) {
    let engine = component.engine();
    let ty = component.component_type();
    let describe = |name: &str, item: ComponentItem| {
        let (kind, functions) = match item {
            ComponentItem::ComponentInstance(inst) => (
                "interface",
                inst.exports(engine)
                    .filter(|(_, i)| matches!(i.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(n, _)| n.to_string())
                    .collect(),
            ),
            ComponentItem::ComponentFunc(_) => ("func", vec![]),
            ComponentItem::CoreFunc(_) => ("core-func", vec![]),
            ComponentItem::Module(_) => ("module", vec![]),
            ComponentItem::Component(_) => ("component", vec![]),
            ComponentItem::Type(_) => ("type", vec![]),
            ComponentItem::Resource(_) => ("resource", vec![]),
        };
        Item { name: name.to_string(), kind: kind.into(), functions }
    };
    let imports = ty.imports(engine).map(|(n, i)| describe(n, i.ty)).collect();
    let exports = ty.exports(engine).map(|(n, i)| describe(n, i.ty)).collect();
    (imports, exports)
}

fn wasi_version(imports: &[String]) -> String {
    if imports.iter().any(|i| i.starts_with("wasi_snapshot_preview1#")) {
        return "preview1".into();
    }
    if imports.iter().any(|i| i.starts_with("wasi_unstable#")) {
        return "preview0".into();
    }
    // Components: the highest version of any wasi: import (`wasi:cli/environment@0.2.6`).
    let versions: BTreeSet<Vec<u64>> = imports
        .iter()
        .filter(|i| i.starts_with("wasi:"))
        .filter_map(|i| i.rsplit_once('@'))
        .map(|(_, v)| v.split('.').map(|p| p.parse().unwrap_or(0)).collect())
        .collect();
    match versions.last() {
        Some(v) => v.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        None => "none".into(),
    }
}

fn world(kind: Kind, exports: &[String]) -> String {
    let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
    match kind {
        Kind::Module if has("_start") => "command",
        Kind::Module if has("_initialize") => "reactor",
        // An HTTP handler may carry a `run` export too (Rust bins do); serving is its point.
        Kind::Component if has("wasi:http/incoming-handler") => "http-proxy",
        Kind::Component if has("wasi:cli/run") => "command",
        _ => "library",
    }
    .into()
}

fn capabilities(imports: &[String]) -> Vec<Capability> {
    CAPABILITIES
        .iter()
        .filter(|(_, _, p1, p2)| {
            imports.iter().any(|i| match i.split_once('#') {
                Some(("wasi_snapshot_preview1" | "wasi_unstable", func)) => p1.iter().any(|p| func.starts_with(p)),
                _ => p2.iter().any(|p| i.starts_with(p)),
            })
        })
        .map(|(name, grant, _, _)| Capability { name, grant })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_imports() {
        let caps = capabilities(&[
            "wasi_snapshot_preview1#path_open".into(),
            "wasi_snapshot_preview1#fd_write".into(),
            "wasi:sockets/tcp@0.2.6".into(),
            "wasi_ephemeral_nn#load_by_name".into(),
        ]);
        let names: Vec<_> = caps.iter().map(|c| c.name).collect();
        assert_eq!(names, ["filesystem", "sockets", "wasi-nn", "stdio"]);
        let names: Vec<_> =
            capabilities(&["wasi:nn/graph@0.2.0-rc-2024-10-28".into()]).iter().map(|c| c.name).collect();
        assert_eq!(names, ["wasi-nn"]);
        assert_eq!(wasi_version(&["wasi:cli/run@0.2.6".into(), "wasi:io/poll@0.2.10".into()]), "0.2.10");
        assert_eq!(wasi_version(&["env#f".into()]), "none");
    }
}
