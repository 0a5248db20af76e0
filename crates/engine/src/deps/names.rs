//! How a dependency's own copy of a capability-bearing WASI interface is named in a composed
//! component: `wasi:filesystem/preopens@0.2.0` imported by dependency 1 becomes
//! `wasmbox-dep1:wasi-filesystem/preopens@0.2.0` (still a valid interface name, so every
//! component tool reads it).

/// The interfaces (without version) a dependency never shares with the app: each is where a
/// capability enters a guest. Everything else (streams, clocks, random, stdio, the resource
/// types) is shared, since it grants nothing by itself.
pub const ISOLATED: &[&str] = &[
    "wasi:filesystem/preopens",
    "wasi:cli/environment",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp-create-socket",
    // Not `ip-name-lookup`: a lookup follows the app's --net-allow rules and connects nowhere.
    "wasi:http/outgoing-handler",
    "wasi:nn/graph",
];

const PREFIX: &str = "wasmbox-dep";

/// Whether `import` (with or without a version) is one of [`ISOLATED`].
pub fn is_isolated(import: &str) -> bool {
    let bare = import.split('@').next().unwrap_or(import);
    ISOLATED.contains(&bare)
}

/// The name dependency `index` imports `original` under (a `wasi:` interface name).
pub fn dep_import_name(index: usize, original: &str) -> Option<String> {
    let rest = original.strip_prefix("wasi:")?;
    Some(format!("{PREFIX}{index}:wasi-{rest}"))
}

/// The dependency index and the original interface of a renamed import.
pub fn split_dep_import(name: &str) -> Option<(usize, String)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (index, iface) = rest.split_once(':')?;
    let index: usize = index.parse().ok()?;
    let iface = iface.strip_prefix("wasi-")?;
    Some((index, format!("wasi:{iface}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let renamed = dep_import_name(3, "wasi:filesystem/preopens@0.2.0").unwrap();
        assert_eq!(renamed, "wasmbox-dep3:wasi-filesystem/preopens@0.2.0");
        assert_eq!(split_dep_import(&renamed), Some((3, "wasi:filesystem/preopens@0.2.0".into())));
        assert!(is_isolated("wasi:cli/environment@0.2.6"));
        assert!(!is_isolated("wasi:cli/stdout@0.2.6"));
        assert_eq!(split_dep_import("wasi:cli/environment@0.2.6"), None);
        assert_eq!(dep_import_name(0, "example:greet/greeter"), None);
    }
}
