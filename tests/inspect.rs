//! `wasmbox inspect`: kind, digest, WASI version, imports/exports and derived capabilities.

mod common;
use common::*;

fn json(home: &Home, path: &str) -> serde_json::Value {
    let out = home.run(&["inspect", "--json", path]);
    out.code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn module_is_described() {
    let home = Home::new();
    let v = json(&home, PROBE_MODULE);
    assert_eq!(v["kind"], "module");
    assert_eq!(v["wasi"], "preview1");
    assert_eq!(v["world"], "command");
    assert_eq!(v["size"], std::fs::metadata(PROBE_MODULE).unwrap().len());
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert!(names(&v, "imports").contains(&"wasi_snapshot_preview1#fd_write".to_string()));
    assert!(names(&v, "exports").contains(&"_start".to_string()));
    let caps = names(&v, "capabilities");
    for c in ["filesystem", "env/args", "stdio"] {
        assert!(caps.contains(&c.to_string()), "{c} missing from {caps:?}");
    }
    assert!(!caps.contains(&"sockets".to_string()));
}

#[test]
fn component_interfaces_and_functions_are_listed() {
    let home = Home::new();
    let v = json(&home, PROBE_COMPONENT);
    assert_eq!(v["kind"], "component");
    assert_eq!(v["world"], "command");
    assert!(v["wasi"].as_str().unwrap().starts_with("0.2."));
    let exit =
        v["imports"].as_array().unwrap().iter().find(|i| i["name"].as_str().unwrap().starts_with("wasi:cli/exit@"));
    let functions = exit.expect("imports wasi:cli/exit")["functions"].as_array().unwrap();
    assert!(functions.iter().any(|f| f == "exit-with-code"));
    assert!(names(&v, "exports").iter().any(|e| e.starts_with("wasi:cli/run@")));
    assert!(names(&v, "capabilities").contains(&"sockets".to_string()));
    // Human output carries the same facts.
    home.run(&["inspect", PROBE_COMPONENT]).code(0).stdout_has("kind:    component").stdout_has("--net-allow");
}

#[test]
fn wat_and_bad_sources() {
    let home = Home::new();
    let v = json(&home, &wat("unreachable"));
    assert_eq!(v["kind"], "module");
    assert!(v["capabilities"].as_array().unwrap().is_empty());
    home.run(&["inspect", "/no/such.wasm"]).code(127);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0\x01\xff").unwrap();
    home.run(&["inspect", bad.to_str().unwrap()]).code(126).no_panic();
}

fn wasm_tools() -> std::path::PathBuf {
    let path = std::env::var_os("WASMBOX_WASM_TOOLS").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap())
            .join(".cache/wasmbox-test/wasm-tools-1.262.0/bin/wasm-tools")
    });
    assert!(path.is_file(), "wasm-tools not found at {}: scripts/deps.sh installs it", path.display());
    path
}

#[test]
fn wit_of_a_component_is_what_wasm_tools_prints() {
    let home = Home::new();
    for component in [PROBE_COMPONENT, HTTP_HELLO_COMPONENT] {
        let ours = home.run(&["inspect", "--wit", component]);
        ours.code(0);
        let theirs = std::process::Command::new(wasm_tools()).args(["component", "wit", component]).output().unwrap();
        assert!(theirs.status.success(), "{}", String::from_utf8_lossy(&theirs.stderr));
        assert_eq!(ours.stdout, String::from_utf8(theirs.stdout).unwrap(), "{component}");
        assert!(ours.stdout.contains("world "), "{}", ours.stdout);
    }
    // An image's too.
    home.run(&["build", "-t", "wit-demo:1", PROBE_COMPONENT]).code(0);
    assert_eq!(
        home.run(&["inspect", "--wit", "wit-demo:1"]).stdout,
        home.run(&["inspect", "--wit", PROBE_COMPONENT]).stdout
    );
    // A core module has none: said, then the usual inspection (exit 0).
    let module = home.run(&["inspect", "--wit", PROBE_MODULE]);
    module.code(0).stdout_has("modules have no WIT").stdout_has("imports:");
}
