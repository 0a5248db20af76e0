//! One artifact on every CPU: `compile --target` for other architectures and for Pulley,
//! `run --engine pulley`, and what happens to code made for another CPU (issue 16, items 1–2).

mod common;
use common::*;
use std::path::Path;

fn compile(home: &Home, source: &str, target: &str, out: &Path) -> Out {
    home.run(&["compile", "--target", target, source, "-o", out.to_str().unwrap()])
}

fn host_triple() -> String {
    match std::env::consts::ARCH {
        "riscv64" => "riscv64gc-unknown-linux-gnu".into(),
        arch => format!("{arch}-unknown-linux-gnu"),
    }
}

#[test]
fn code_for_other_cpus_is_made_here_and_refused_here_by_name() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for (short, triple) in [
        ("aarch64", "aarch64-unknown-linux-gnu"),
        ("riscv64gc", "riscv64gc-unknown-linux-gnu"),
        ("x86_64", "x86_64-unknown-linux-gnu"),
        ("pulley64", "pulley64"),
    ] {
        for (kind, probe) in PROBES {
            let (a, b) = (dir.path().join(format!("{short}-{kind}.cwasm")), dir.path().join(format!("{triple}-{kind}.cwasm")));
            compile(&home, probe, short, &a).code(0).stderr_has(&format!("for {triple}"));
            compile(&home, probe, triple, &b).code(0);
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{short} and {triple} give the same bytes");

            let inspected = home.run(&["inspect", "--json", a.to_str().unwrap()]);
            inspected.code(0);
            let v: serde_json::Value = serde_json::from_str(&inspected.stdout).unwrap();
            assert_eq!(v["native"]["target"], triple, "{v}");
            assert_eq!(v["native"]["native"], false);
            assert_eq!(v["native"]["engine"].as_str().unwrap().len(), 64);

            let run = home.run(&["run", "--allow-precompiled", a.to_str().unwrap(), "hello"]);
            if triple == host_triple() {
                // Baseline code of this very architecture runs (wasmtime checks its settings).
                run.code(0).stdout_has("hello from a wasmbox guest");
                assert_eq!(v["native"]["runs_here"], true);
            } else {
                // Never a crash or SIGILL: 126, naming both targets.
                run.code(126).stderr_has(&format!("compiled for {triple}")).stderr_has(&host_triple()).no_panic();
                assert_eq!(v["native"]["runs_here"], false);
            }
        }
    }
    // Pulley bytecode runs under the interpreter engine.
    let pulley = dir.path().join("pulley64-module.cwasm");
    home.run(&["run", "--allow-precompiled", pulley.to_str().unwrap(), "hello"]).code(126).stderr_has("--engine pulley");
    home.run(&["run", "--engine", "pulley", "--allow-precompiled", pulley.to_str().unwrap(), "hello"])
        .code(0)
        .stdout_has("hello from a wasmbox guest");
    // A native file is not Pulley code either.
    let native = dir.path().join("native.cwasm");
    home.run(&["compile", PROBE_MODULE, "-o", native.to_str().unwrap()]).code(0);
    home.run(&["run", "--engine", "pulley", "--allow-precompiled", native.to_str().unwrap()]).code(126).stderr_has("pulley64");
    let text = home.run(&["inspect", native.to_str().unwrap()]);
    text.code(0).stdout_has("compiled for this machine's CPU features").stdout_has("runs here: yes");

    home.run(&["compile", "--target", "mips", PROBE_MODULE]).code(125).stderr_has("x86_64, aarch64, riscv64gc, pulley64");
}

#[test]
fn pulley_runs_what_native_runs() {
    let home = Home::new();
    let cases: Vec<Vec<String>> = vec![
        vec![PROBE_MODULE.into(), "hello".into()],
        vec![PROBE_COMPONENT.into(), "hello".into()],
        vec![PROBE_MODULE.into(), "args".into(), "a b".into(), "c".into()],
        vec![PROBE_COMPONENT.into(), "exit".into(), "7".into()],
        vec!["-m".into(), "2M".into(), wat("grow-memory")],
        vec!["--timeout".into(), "300ms".into(), wat("loop")],
        vec!["--fuel".into(), "100000".into(), wat("loop")],
        vec![wat("unreachable")],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let run = |engine: &str| {
            let mut all = vec!["run", "--engine", engine];
            all.extend(&args);
            home.run(&all)
        };
        let (native, pulley) = (run("native"), run("pulley"));
        assert_eq!(native.code, pulley.code, "{args:?}\nnative: {native:?}\npulley: {pulley:?}");
        assert_eq!(native.stdout, pulley.stdout, "{args:?}");
        pulley.no_panic();
    }
    // Pulley and native code are cached apart (different engines).
    // Six (Wasm, engine settings) pairs: the two probes, grow-memory, loop, loop with fuel,
    // unreachable — each once per engine.
    assert_eq!(home.cache_entries().len(), 6 * 2);
}
