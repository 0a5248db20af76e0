//! `compose`: wires each part's imports to the one dependency that exports them, isolates the
//! dependencies' capability imports, and encodes and validates the result.

use wac_graph::types::{ItemKind, Package, SubtypeChecker, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeError, EncodeOptions, NodeId, PackageId, Processor};

use wasmbox_engine::deps::names::{dep_import_name, is_isolated};
use wasmbox_engine::deps::record::{DepGrants, DepRecord, Record, section_bytes};

use crate::error::{ComposeError, Mismatch};
use crate::wit_text;

/// The WASI packages a wasmbox host implements: imports of these may stay unplugged.
const PROVIDED: &[&str] = &[
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "wasi:http/",
    "wasi:nn/",
];

/// One dependency to plug in.
pub struct Dep {
    /// The path or image reference the user gave (used in messages and the record).
    pub name: String,
    pub bytes: Vec<u8>,
    /// `sha256:…` of the component file, or the manifest digest of the image it came from.
    pub digest: String,
    pub grants: DepGrants,
}

/// The composed component (the record is also in its custom section).
pub struct Composed {
    pub bytes: Vec<u8>,
    pub record: Record,
}

struct Part {
    name: String,
    package: PackageId,
    node: NodeId,
}

/// Plugs `deps` into `app` (named `app_name` in messages). The same inputs give the same bytes.
pub fn compose(app_name: &str, app: &[u8], deps: &[Dep]) -> Result<Composed, ComposeError> {
    let mut graph = CompositionGraph::new();
    let mut parts = Vec::with_capacity(deps.len() + 1);
    let inputs = std::iter::once((app_name, app)).chain(deps.iter().map(|d| (d.name.as_str(), d.bytes.as_slice())));
    for (index, (name, bytes)) in inputs.enumerate() {
        let key = if index == 0 { "app".to_string() } else { format!("dep{}", index - 1) };
        let package = Package::from_bytes(&key, None, bytes.to_vec(), graph.types_mut())
            .map_err(|e| ComposeError::NotAComponent { part: name.to_string(), reason: first_line(&e) })?;
        let package = graph.register_package(package).map_err(|e| ComposeError::Invalid(e.to_string()))?;
        let node = graph.instantiate(package);
        parts.push(Part { name: name.to_string(), package, node });
    }

    let mut record = Record {
        deps: deps
            .iter()
            .map(|d| DepRecord {
                source: d.name.clone(),
                digest: d.digest.clone(),
                provides: Vec::new(),
                isolated: Vec::new(),
                grants: d.grants.clone(),
            })
            .collect(),
    };
    for p in 0..parts.len() {
        let imports: Vec<(String, ItemKind)> =
            world(&graph, parts[p].package).imports.iter().map(|(n, k)| (n.clone(), *k)).collect();
        for (import, kind) in imports {
            match provider(&graph, &parts, p, &import)? {
                Some((q, export)) => {
                    check_type(&graph, &parts, p, q, &import, &export, kind)?;
                    let alias = graph
                        .alias_instance_export(parts[q].node, &export)
                        .map_err(|e| ComposeError::Invalid(e.to_string()))?;
                    graph
                        .set_instantiation_argument(parts[p].node, &import, alias)
                        .map_err(|e| ComposeError::Invalid(e.to_string()))?;
                    let provides = &mut record.deps[q - 1].provides;
                    if !provides.contains(&export) {
                        provides.push(export);
                    }
                }
                None if !PROVIDED.iter().any(|w| import.starts_with(w)) => {
                    return Err(ComposeError::Unsatisfied { part: parts[p].name.clone(), import });
                }
                // A dependency's own copy of a capability import (deny by default).
                None if p > 0 && is_isolated(&import) => {
                    let renamed = dep_import_name(p - 1, &import).expect("isolated imports are wasi: interfaces");
                    let kind = own_copy(&mut graph, kind, &renamed);
                    let node = graph.import(renamed, kind).map_err(|e| ComposeError::Invalid(e.to_string()))?;
                    graph
                        .set_instantiation_argument(parts[p].node, &import, node)
                        .map_err(|e| ComposeError::Invalid(e.to_string()))?;
                    record.deps[p - 1].isolated.push(import);
                }
                None => {}
            }
        }
    }
    for (q, dep) in record.deps.iter().enumerate() {
        if dep.provides.is_empty() {
            let exports: Vec<&str> = world(&graph, parts[q + 1].package).exports.keys().map(String::as_str).collect();
            return Err(ComposeError::Unused {
                dep: dep.source.clone(),
                app: app_name.to_string(),
                exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
            });
        }
    }

    let exports: Vec<String> = world(&graph, parts[0].package).exports.keys().cloned().collect();
    for name in exports {
        let alias =
            graph.alias_instance_export(parts[0].node, &name).map_err(|e| ComposeError::Invalid(e.to_string()))?;
        graph.export(alias, &name).map_err(|e| ComposeError::Invalid(e.to_string()))?;
    }
    let options = EncodeOptions {
        define_components: true,
        validate: true,
        processor: Some(Processor { name: "wasmbox", version: env!("CARGO_PKG_VERSION") }),
    };
    let mut bytes = graph.encode(options).map_err(|e| match e {
        EncodeError::GraphContainsCycle { .. } => {
            ComposeError::Cycle { parts: deps.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ") }
        }
        other => ComposeError::Invalid(chain(&other)),
    })?;
    bytes.extend(section_bytes(&record));
    Ok(Composed { bytes, record })
}

/// The same interface under another identity: the encoder merges imports of one interface id
/// into one import, and a dependency's copy must stay an import of its own.
fn own_copy(graph: &mut CompositionGraph, kind: ItemKind, id: &str) -> ItemKind {
    let ItemKind::Instance(iface) = kind else { return kind };
    let mut copy = graph.types()[iface].clone();
    copy.id = Some(id.to_string());
    ItemKind::Instance(graph.types_mut().add_interface(copy))
}

fn world(graph: &CompositionGraph, package: PackageId) -> &wac_graph::types::World {
    &graph.types()[graph[package].ty()]
}

/// The one dependency (other than part `p`) exporting `import`, with its export's name.
fn provider(
    graph: &CompositionGraph,
    parts: &[Part],
    p: usize,
    import: &str,
) -> Result<Option<(usize, String)>, ComposeError> {
    let mut found: Option<(usize, String)> = None;
    for (q, part) in parts.iter().enumerate().skip(1) {
        if q == p {
            continue;
        }
        let exports = &world(graph, part.package).exports;
        let export = exports
            .get_key_value(import)
            .map(|(k, _)| k.clone())
            .or_else(|| exports.keys().find(|e| are_semver_compatible(e, import)).cloned());
        if let Some(export) = export {
            if let Some((first, _)) = &found {
                return Err(ComposeError::Ambiguous {
                    part: parts[p].name.clone(),
                    import: import.to_string(),
                    first: parts[*first].name.clone(),
                    second: part.name.clone(),
                });
            }
            found = Some((q, export));
        }
    }
    Ok(found)
}

/// Checks that part `q`'s `export` can stand for part `p`'s `import`, naming the first member
/// that differs (in WIT syntax) when it cannot.
fn check_type(
    graph: &CompositionGraph,
    parts: &[Part],
    p: usize,
    q: usize,
    import: &str,
    export: &str,
    want: ItemKind,
) -> Result<(), ComposeError> {
    let types = graph.types();
    let have = world(graph, parts[q].package).exports[export];
    let mut cache = Default::default();
    if SubtypeChecker::new(&mut cache).is_subtype(have, types, want, types).is_ok() {
        return Ok(());
    }
    let fail = |detail: String, expected: String, found: String| {
        ComposeError::Incompatible(Box::new(Mismatch {
            part: parts[p].name.clone(),
            dep: parts[q].name.clone(),
            import: import.to_string(),
            detail,
            expected,
            found,
        }))
    };
    if let (ItemKind::Instance(w), ItemKind::Instance(h)) = (want, have) {
        for (member, wk) in &types[w].exports {
            match types[h].exports.get(member) {
                None => {
                    return Err(fail(format!("it has no `{member}`"), wit_text::item(types, *wk), "nothing".into()));
                }
                Some(hk) => {
                    let mut cache = Default::default();
                    if SubtypeChecker::new(&mut cache).is_subtype(*hk, types, *wk, types).is_err() {
                        return Err(fail(
                            format!("`{member}` differs"),
                            wit_text::item(types, *wk),
                            wit_text::item(types, *hk),
                        ));
                    }
                }
            }
        }
    }
    Err(fail("the types differ".into(), wit_text::item(types, want), wit_text::item(types, have)))
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
