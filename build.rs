//! Records what `wasmbox version` reports about the build itself: the target triple, the
//! cargo features it was built with, and the Wasmtime version locked in Cargo.lock.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=WASMBOX_TARGET={target}");
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_ascii_lowercase().replace('_', "-")))
        .collect();
    features.sort();
    println!("cargo:rustc-env=WASMBOX_FEATURES={}", features.join(","));
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"').map(str::to_string)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WASMBOX_WASMTIME_VERSION={wasmtime}");
}
