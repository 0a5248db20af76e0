//! Anything that is not a runnable Wasm artifact exits 126 (or 127 when missing) with a clear
//! one-line reason, never a panic.

mod common;
use common::*;
use std::io::Write;

fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn non_wasm_files_exit_126() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let png = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], &noise(200)].concat();
    for (name, bytes, needle) in [
        ("empty.wasm", Vec::new(), "the file is empty"),
        ("random.wasm", noise(4096), "instead of the Wasm magic"),
        ("picture.wasm", png, "89 50 4e 47"),
        ("text.wasm", b"just some text\n".to_vec(), "instead of the Wasm magic"),
        ("bad.wat", b"(module (func (i32.bogus)))".to_vec(), "not a valid WebAssembly text"),
    ] {
        let path = file_with(dir.path(), name, &bytes);
        let out = home.run(&["run", &path]);
        out.code(126).stderr_has(needle).no_panic();
        assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", out.stderr);
    }
}

#[test]
fn truncated_module_and_component_exit_126() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for (kind, probe) in PROBES {
        let bytes = std::fs::read(probe).unwrap();
        let path = file_with(dir.path(), &format!("truncated-{kind}.wasm"), &bytes[..bytes.len() / 2]);
        home.run(&["run", &path]).code(126).stderr_has(&format!("is not a valid WebAssembly {kind}")).no_panic();
    }
}

#[test]
fn huge_random_file_is_rejected_quickly() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.wasm");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = noise(1 << 20);
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let start = std::time::Instant::now();
    home.run(&["run", path.to_str().unwrap()]).code(126).stderr_has("is not a WebAssembly file").no_panic();
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "took {:?}", start.elapsed());
}

#[test]
fn missing_imports_are_named() {
    let home = Home::new();
    home.run(&["run", &wat("missing-interface")])
        .code(126)
        .stderr_has("imports `acme:metrics/emit@1.0.0`")
        .stderr_has("hint:")
        .no_panic();
    home.run(&["run", &wat("missing-import")]).code(126).stderr_has("imports `acme:metrics#emit`").no_panic();
    home.run(&["run", &wat("no-start")]).code(126).stderr_has("no `_start`");
}

#[test]
fn missing_source_exits_127_and_directories_126() {
    let home = Home::new();
    home.run(&["run", "/no/such/app.wasm"]).code(127).stderr_has("no such file");
    let dir = tempfile::tempdir().unwrap();
    home.run(&["run", dir.path().to_str().unwrap()]).code(126).stderr_has("directory");
}

#[test]
fn usage_errors_exit_125() {
    let home = Home::new();
    home.run(&["run"]).code(125);
    home.run(&["run", "--no-such-flag", PROBE_MODULE]).code(125);
    home.run(&["frobnicate"]).code(125);
    home.run(&["--help"]).code(0).stdout_has("run");
    home.run(&["run", "--help"]).code(0).stdout_has("137");
}

/// With `RUST_BACKTRACE=1` in the environment (common among Rust developers), errors stay one
/// line and a hint: wasmtime's errors used to carry 90 native frames into the message, and
/// capturing them cost a first `run` 0.2-0.3 s whenever Winch declined code (report.rs).
#[test]
fn errors_stay_short_with_rust_backtrace_set() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    // Relaxed SIMD, which Winch (wasmtime's baseline compiler) refuses with a wasmtime error.
    let wat = br#"(module (func (export "_start") (drop (i32x4.relaxed_trunc_f32x4_s (v128.const i32x4 0 0 0 0)))))"#;
    let path = file_with(dir.path(), "relaxed.wat", wat);
    let out: Out =
        home.cmd().args(["run", "--compiler", "winch", &path]).env("RUST_BACKTRACE", "1").output().unwrap().into();
    out.code(126).stderr_has("not a valid WebAssembly").no_panic();
    assert!(!out.stderr.contains("backtrace"), "a native backtrace in the message:\n{}", out.stderr);
    assert!(out.stderr.lines().count() <= 3, "not a short message:\n{}", out.stderr);
}
