//! The guest's own exit code is wasmbox's exit code, for modules and components.

mod common;
use common::*;

#[test]
fn exit_codes_pass_through() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        for code in [0, 1, 42] {
            let out = home.run(&["run", probe, "exit", &code.to_string()]);
            assert_eq!(out.code, code, "{kind} exit {code}: {out:?}");
        }
        home.run(&["run", probe, "hello"]).code(0).stdout_has("hello from a wasmbox guest");
    }
}

#[test]
fn bundled_example_runs() {
    let home = Home::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello.wat");
    home.run(&["run", example]).code(0).stdout_has("Hello from a wasmbox container!");
}
