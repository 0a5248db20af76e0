//! Builds the guest programs in `guests/` for wasm32-wasip1 (core modules) and wasm32-wasip2
//! (components) and writes their paths into `$OUT_DIR/guests.rs` as constants.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [(&str, &str); 2] = [("wasm32-wasip1", "MODULE"), ("wasm32-wasip2", "COMPONENT")];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let guests = manifest_dir.join("guests");
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!("cargo:rerun-if-changed={}", guests.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guests.join("wit").display());

    // One guest target directory per profile directory (target/debug/wasm-guests), not one per
    // build-script run: `cargo clippy` and `cargo test` run this script in different OUT_DIRs, and
    // a second build of the guests there would cost a fresh CI run 40 s for nothing.
    let target_dir = out_dir.ancestors().nth(3).unwrap_or(&out_dir).join("wasm-guests");
    let mut constants = String::new();
    for (target, suffix) in TARGETS {
        build(&guests, &target_dir, target);
        for bin in bins(&guests) {
            // `http-*` guests are `wasi:http/proxy` components and `greet-*` the parts of the
            // composition tests: they only mean something on p2.
            if (bin.starts_with("http-") || bin.starts_with("greet-")) && suffix == "MODULE" {
                continue;
            }
            let path = target_dir.join(target).join("release").join(format!("{bin}.wasm"));
            assert!(path.exists(), "guest {} was not built", path.display());
            let name = format!("{}_{suffix}", bin.to_uppercase().replace('-', "_"));
            constants.push_str(&format!("pub const {name}: &str = {:?};\n", path.display().to_string()));
        }
    }
    std::fs::write(out_dir.join("guests.rs"), constants).unwrap();
}

fn bins(guests: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(guests.join("src/bin"))
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(String::from))
        .collect();
    names.sort();
    names
}

fn build(guests: &Path, target_dir: &Path, target: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--target", target])
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags and wrappers (clippy, coverage, host RUSTFLAGS) must not leak into
    // the guest build.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("failed to spawn cargo to build the guest programs");
    if !status.success() {
        panic!(
            "building guests for {target} failed; is the target installed? \
             Run `rustup target add wasm32-wasip1 wasm32-wasip2` (scripts/test.sh does this)"
        );
    }
}
