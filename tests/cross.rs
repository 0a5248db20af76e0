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
            let (a, b) =
                (dir.path().join(format!("{short}-{kind}.cwasm")), dir.path().join(format!("{triple}-{kind}.cwasm")));
            compile(&home, probe, short, &a).code(0).stderr_has(&format!("for {triple}"));
            compile(&home, probe, triple, &b).code(0);
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{short} and {triple} give the same bytes"
            );

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
    home.run(&["run", "--allow-precompiled", pulley.to_str().unwrap(), "hello"])
        .code(126)
        .stderr_has("--engine pulley");
    home.run(&["run", "--engine", "pulley", "--allow-precompiled", pulley.to_str().unwrap(), "hello"])
        .code(0)
        .stdout_has("hello from a wasmbox guest");
    // A native file is not Pulley code either.
    let native = dir.path().join("native.cwasm");
    home.run(&["compile", PROBE_MODULE, "-o", native.to_str().unwrap()]).code(0);
    home.run(&["run", "--engine", "pulley", "--allow-precompiled", native.to_str().unwrap()])
        .code(126)
        .stderr_has("pulley64");
    let text = home.run(&["inspect", native.to_str().unwrap()]);
    text.code(0).stdout_has("compiled for this machine's CPU features").stdout_has("runs here: yes");

    home.run(&["compile", "--target", "mips", PROBE_MODULE])
        .code(125)
        .stderr_has("x86_64, aarch64, riscv64gc, pulley64");
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

/// The layer digests of REF's manifest in a registry, by media type and target annotation.
fn layers(registry: &common::registry::Registry, repo: &str, tag: &str) -> Vec<(String, Option<String>, String)> {
    let r = common::registry::http_with_headers(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    )
    .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["annotations"]["dev.wasmbox.precompiled.target"].as_str().map(String::from),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn compiled_here(out: &Out) -> bool {
    out.stderr.lines().any(|l| l.contains("compiling (cache miss)"))
}

#[test]
fn precompiled_layers_are_pulled_for_this_cpu_only_and_used_only_when_trusted() {
    let registry = common::registry::Registry::start();
    let builder = Home::new();
    let reference = format!("{}/edge/app:1", registry.addr);
    let foreign = if std::env::consts::ARCH == "aarch64" { "x86_64" } else { "aarch64" };
    let here = host_triple();
    builder
        .run(&["build", "--precompile", &format!("{foreign},{here},pulley64"), "-t", &reference, PROBE_MODULE])
        .code(0)
        .stderr_has(&format!("precompiled for {here}"));
    builder.run(&["push", "-q", &reference]).code(0);
    builder.run(&["build", "--precompile", "mips", PROBE_MODULE]).code(125).stderr_has("unknown target");

    let layers = layers(&registry, "edge/app", "1");
    assert_eq!(layers.len(), 4, "{layers:?}");
    let digest_of = |target: &str| layers.iter().find(|l| l.1.as_deref() == Some(target)).unwrap().2.clone();
    let wasm_layer = layers.iter().find(|l| l.0 == "application/wasm").unwrap().2.clone();
    let debug =
        |home: &Home, args: &[&str]| Out::from(home.cmd().env("WASMBOX_LOG", "debug").args(args).output().unwrap());

    // Untrusted (no policy, no flag): pulled with only this CPU's layer; the layer is ignored.
    let device = Home::new();
    device.run(&["pull", "-q", &reference]).code(0);
    let blobs = device.stored_blobs();
    assert!(blobs.contains(&wasm_layer) && blobs.contains(&digest_of(&here)), "{blobs:?}");
    for other in [foreign, "pulley64"] {
        assert!(!blobs.contains(&digest_of(&triple_of(other))), "{other} layer downloaded");
    }
    let untrusted = debug(&device, &["run", "--no-cache", &reference, "hello"]);
    untrusted.code(0).stdout_has("hello from a wasmbox guest");
    assert!(compiled_here(&untrusted), "native code from a registry must not run untrusted: {}", untrusted.stderr);

    // Trusted by the flag: no compile happens.
    let flagged = debug(&device, &["run", "--no-cache", "--allow-precompiled", &reference, "hello"]);
    flagged.code(0).stdout_has("hello from a wasmbox guest");
    assert!(!compiled_here(&flagged), "{}", flagged.stderr);
    assert!(flagged.stderr.contains("using the image's precompiled layer"), "{}", flagged.stderr);
    // The layer's code is mapped from the stored blob, not copied into the heap.
    let blob = digest_of(&here);
    let hex = blob.trim_start_matches("sha256:");
    let mut child = device
        .cmd()
        .args(["run", "--no-cache", "--allow-precompiled", &reference, "sleep", "20000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_mapped(child.id(), hex);
    child.kill().unwrap();
    child.wait().unwrap();

    // Trusted by a verified signature under the policy: no compile either.
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("edge");
    let with_pw =
        |home: &Home, args: &[&str]| Out::from(home.cmd().env("WASMBOX_PASSWORD", "pw").args(args).output().unwrap());
    with_pw(&builder, &["key", "generate", "--output-prefix", prefix.to_str().unwrap()]).code(0);
    with_pw(&builder, &["sign", "--key", keys.path().join("edge.key").to_str().unwrap(), &reference]).code(0);
    let signed_device = Home::new();
    std::fs::write(
        signed_device.path().join("policy.json"),
        format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}"#,
            keys.path().join("edge.pub").display()
        ),
    )
    .unwrap();
    let trusted = debug(&signed_device, &["run", "--no-cache", &reference, "hello"]);
    trusted.code(0).stdout_has("hello from a wasmbox guest");
    assert!(!compiled_here(&trusted), "{}", trusted.stderr);

    // A precompiled layer this engine cannot load (fuel-metered runs need other code) is
    // skipped for the Wasm, not an error.
    let fuel =
        debug(&device, &["run", "--no-cache", "--fuel", "100000000", "--allow-precompiled", &reference, "hello"]);
    fuel.code(0).stdout_has("hello from a wasmbox guest");
    assert!(compiled_here(&fuel), "{}", fuel.stderr);
}

fn triple_of(short: &str) -> String {
    match short {
        "pulley64" => "pulley64".into(),
        "riscv64gc" => "riscv64gc-unknown-linux-gnu".into(),
        arch => format!("{arch}-unknown-linux-gnu"),
    }
}

#[test]
fn a_tampered_precompiled_layer_is_refused() {
    use common::registry::FakeRegistry;
    let builder = Home::new();
    let digest = builder
        .run(&["build", "--precompile", &host_triple(), "-t", "edge:1", PROBE_MODULE])
        .code(0)
        .stdout
        .trim()
        .to_string();
    let fake = FakeRegistry::start(std::time::Duration::from_secs(60));
    let precompiled_digest = fake.serve_with_tampered_precompiled_layer(builder.path(), &digest);
    let device = Home::new();
    let reference = format!("{}/edge/app:1", fake.addr);
    let out = device.run(&["run", "--allow-precompiled", &reference, "hello"]);
    out.code(125).stderr_has(&precompiled_digest).stderr_has("digest").no_panic();
    assert!(!device.stored_blobs().contains(&precompiled_digest), "the altered layer was stored");
    assert_eq!(device.run(&["images", "--json"]).stdout.trim(), "[]");
}
