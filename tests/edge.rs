//! The edge build on emulated foreign CPUs (issue 16): code cross-compiled here runs on an
//! aarch64 and a riscv64 "device" (the edge wasmbox under qemu-user), deterministic runs give
//! the same bytes and receipts on every CPU and on Pulley, and a device pulls only its own
//! precompiled layer and runs it without compiling.

mod common;
use std::path::Path;

use common::edge::{AARCH64, RISCV64, RISCV64_V};
use common::*;

fn compile(home: &Home, source: &str, target: &str, deterministic: bool, out: &Path) {
    let mut args = vec!["compile", "--target", target, source, "-o", out.to_str().unwrap()];
    if deterministic {
        args.push("--deterministic");
    }
    home.run(&args).code(0);
}

/// A directory whose entries were created out of name order.
fn input_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["melon", "apple", "zucchini", "kiwi"] {
        std::fs::write(dir.path().join(name), name).unwrap();
    }
    dir
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no `{key}` line in {out}"))
}

#[test]
fn a_deterministic_run_gives_the_same_bytes_and_receipt_on_every_cpu() {
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let input = input_dir();
    let grant = format!("{}:/data", input.path().display());
    for (kind, probe) in PROBES {
        let receipt = |name: &str| work.path().join(format!("{kind}-{name}.json"));
        let code = |target: &str, det: bool| {
            let out = work.path().join(format!("{kind}-{target}-{det}.cwasm"));
            compile(&home, probe, target, det, &out);
            out.to_str().unwrap().to_string()
        };
        let det_args = |r: &Path| {
            ["run", "--deterministic", "--seed", "5", "-v", &grant, "--receipt", r.to_str().unwrap()].map(String::from)
        };
        let mut runs: Vec<(&str, Out)> = Vec::new();
        for engine in ["native", "pulley"] {
            let r = receipt(engine);
            let mut args: Vec<String> = det_args(&r).into();
            args.extend(["--engine", engine, probe, "entropy", "/data"].map(String::from));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            runs.push((engine, home.run(&args)));
        }
        for device in [AARCH64, RISCV64_V] {
            let cwasm = code(device.arch, true);
            let r = receipt(device.arch);
            let mut args: Vec<String> = det_args(&r).into();
            args.extend(["--allow-precompiled", &cwasm, "entropy", "/data"].map(String::from));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            runs.push((device.arch, device.run(&home, &args)));
        }
        let (first, reference) = &runs[0];
        reference.code(0).stdout_has("listing apple,kiwi,melon,zucchini").stdout_has("mtimes 946684800,");
        let reference_receipt = std::fs::read_to_string(receipt(first)).unwrap();
        for (name, out) in &runs[1..] {
            out.code(0);
            assert_eq!(out.stdout, reference.stdout, "{kind}: {name} prints what {first} prints");
            let r = std::fs::read_to_string(receipt(name)).unwrap();
            assert_eq!(r, reference_receipt, "{kind}: the {name} receipt equals the {first} one");
        }
        let v: serde_json::Value = serde_json::from_str(&reference_receipt).unwrap();
        assert_eq!(v["dirs"]["/data"].as_str().unwrap().len(), 64, "the input tree's digest: {v}");
        assert!(!reference_receipt.contains(input.path().to_str().unwrap()), "no host paths");

        // Without --deterministic the CPUs differ, in relaxed SIMD and NaN bits, not only in
        // the clock (x86 truncates NaN to 0x80000000, aarch64 to 0).
        let free_x86 = home.run(&["run", "-v", &grant, probe, "entropy", "/data"]);
        let free_arm = AARCH64
            .run(&home, &["run", "-v", &grant, "--allow-precompiled", &code("aarch64", false), "entropy", "/data"]);
        free_x86.code(0);
        free_arm.code(0);
        assert_ne!(
            line(&free_x86.stdout, "relaxed-trunc"),
            line(&free_arm.stdout, "relaxed-trunc"),
            "{kind}: relaxed SIMD differs between CPUs without the flag"
        );
    }
}

#[test]
fn riscv64_code_that_needs_the_vector_extension_is_refused_by_name_on_a_cpu_without_it() {
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let cwasm = work.path().join("probe-rv.cwasm");
    compile(&home, PROBE_MODULE, "riscv64gc", false, &cwasm);
    let cwasm = cwasm.to_str().unwrap();
    home.run(&["inspect", cwasm]).code(0).stdout_has(" v ");
    // wasmtime 48 would run it and die with SIGILL; wasmbox refuses before running.
    RISCV64
        .run(&home, &["run", "--allow-precompiled", cwasm, "hello"])
        .code(126)
        .stderr_has("CPU feature v")
        .no_panic();
    RISCV64_V
        .run(&home, &["run", "--allow-precompiled", cwasm, "hello"])
        .code(0)
        .stdout_has("hello from a wasmbox guest");
}

#[test]
fn code_compiled_here_for_aarch64_runs_on_the_aarch64_edge_build_and_not_here() {
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let cwasm = work.path().join("hello-aarch64.cwasm");
    compile(&home, PROBE_COMPONENT, "aarch64", false, &cwasm);
    let cwasm = cwasm.to_str().unwrap();
    AARCH64
        .run(&home, &["run", "--allow-precompiled", cwasm, "hello"])
        .code(0)
        .stdout_has("hello from a wasmbox guest");
    if std::env::consts::ARCH == "x86_64" {
        home.run(&["run", "--allow-precompiled", cwasm, "hello"])
            .code(126)
            .stderr_has("aarch64-unknown-linux-gnu")
            .stderr_has("x86_64-unknown-linux-gnu");
    }
    // The edge build has no compiler: Wasm without precompiled code is refused with the fix.
    AARCH64.run(&home, &["version"]).code(0).stdout_has("features:  edge").stdout_has("aarch64-unknown-linux-gnu");
    AARCH64
        .run(&home, &["run", PROBE_MODULE, "hello"])
        .code(126)
        .stderr_has("edge build")
        .stderr_has("--target aarch64");
}

/// The edge build has no unwind tables (scripts/edge-build.sh removes `.eh_frame`): a trap and
/// a stack overflow in guest code must still end as traps (134, the Wasm backtrace named),
/// never as a crash of wasmbox, on every emulated CPU.
#[test]
fn traps_and_stack_overflow_are_reported_by_the_edge_build_without_unwind_tables() {
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let guests = [
        ("unreachable", r#"(module (func (export "_start") unreachable))"#, "unreachable"),
        ("recursion", r#"(module (func $f (export "_start") call $f))"#, "call stack exhausted"),
    ];
    for device in [AARCH64, RISCV64] {
        for (name, wat, reason) in guests {
            let source = work.path().join(format!("{name}.wat"));
            std::fs::write(&source, wat).unwrap();
            let cwasm = work.path().join(format!("{name}-{}.cwasm", device.arch));
            compile(&home, source.to_str().unwrap(), device.arch, false, &cwasm);
            device
                .run(&home, &["run", "--allow-precompiled", cwasm.to_str().unwrap()])
                .code(134)
                .stderr_has(reason)
                .stderr_has("wasm backtrace")
                .no_panic();
        }
    }
}

/// The digests of the manifest's Wasm layer and its precompiled layer for `triple`.
fn layer_digests(home: &Home, manifest: &str, triple: &str) -> (String, String) {
    let path = home.path().join("images/blobs/sha256").join(manifest.trim_start_matches("sha256:"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let layers = m["layers"].as_array().unwrap();
    let digest = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        layers.iter().find(|l| pred(l)).unwrap()["digest"].as_str().unwrap().to_string()
    };
    (
        digest(&|l| l["mediaType"] == "application/wasm"),
        digest(&|l| l["annotations"]["dev.wasmbox.precompiled.target"] == triple),
    )
}

#[test]
fn an_emulated_device_pulls_only_its_layer_and_runs_it_without_compiling() {
    let registry = common::registry::Registry::start();
    let builder = Home::new();
    let reference = format!("{}/edge/probe:1", registry.addr);
    let manifest = builder
        .run(&["build", "--precompile", "x86_64,aarch64", "-t", &reference, PROBE_MODULE])
        .code(0)
        .stdout
        .trim()
        .to_string();
    builder.run(&["push", "-q", &reference]).code(0);
    let (wasm, arm) = layer_digests(&builder, &manifest, "aarch64-unknown-linux-gnu");
    let (_, x86) = layer_digests(&builder, &manifest, "x86_64-unknown-linux-gnu");

    let device = Home::new();
    AARCH64.run(&device, &["pull", "-q", &reference]).code(0);
    let blobs = device.stored_blobs();
    assert!(blobs.contains(&wasm) && blobs.contains(&arm), "{blobs:?}");
    assert!(!blobs.contains(&x86), "the x86_64 layer was downloaded: {blobs:?}");

    let out = Out::from(
        AARCH64
            .cmd(&device)
            .env("WASMBOX_LOG", "debug")
            .args(["run", "--allow-precompiled", &reference, "hello"])
            .output()
            .unwrap(),
    );
    out.code(0).stdout_has("hello from a wasmbox guest");
    assert!(out.stderr.contains("using the image's precompiled layer"), "{}", out.stderr);
    assert!(!out.stderr.contains("compiling"), "a compile happened on the device: {}", out.stderr);
    // Untrusted (no policy, no flag), the native layer is not used, and the device cannot compile.
    AARCH64.run(&device, &["run", &reference, "hello"]).code(126).stderr_has("no compiler");
}

#[test]
fn an_emulated_device_refuses_a_tampered_precompiled_layer() {
    use common::registry::FakeRegistry;
    let builder = Home::new();
    let manifest_digest = builder
        .run(&["build", "--precompile", "aarch64", "-t", "edge:1", PROBE_MODULE])
        .code(0)
        .stdout
        .trim()
        .to_string();
    let fake = FakeRegistry::start(std::time::Duration::from_secs(120));
    let tampered = fake.serve_with_tampered_precompiled_layer(builder.path(), &manifest_digest);
    let device = Home::new();
    let reference = format!("{}/edge/app:1", fake.addr);
    AARCH64
        .run(&device, &["run", "--allow-precompiled", &reference, "hello"])
        .code(125)
        .stderr_has(&tampered)
        .stderr_has("digest")
        .no_panic();
    assert!(!device.stored_blobs().contains(&tampered), "the altered layer was stored");
}

#[test]
fn the_edge_daemon_runs_a_container_from_a_precompiled_image() {
    let registry = common::registry::Registry::start();
    let builder = Home::new();
    let reference = format!("{}/edge/daemon:1", registry.addr);
    builder.run(&["build", "--precompile", "aarch64", "-t", &reference, PROBE_MODULE]).code(0);
    builder.run(&["push", "-q", &reference]).code(0);

    let device = Home::new();
    // qemu-user cannot start a foreign binary from inside itself, so the daemon is started here.
    let mut daemon = AARCH64.cmd(&device).arg("daemon").stderr(std::process::Stdio::null()).spawn().unwrap();
    let socket = device.path().join("wasmbox.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let id = AARCH64.run(&device, &["run", "-d", "--allow-precompiled", &reference, "hello"]);
    id.code(0);
    let id = id.stdout.trim().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let logs = loop {
        let logs = AARCH64.run(&device, &["logs", &id]);
        if logs.stdout.contains("hello from a wasmbox guest") || std::time::Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    logs.code(0).stdout_has("hello from a wasmbox guest");
    AARCH64.run(&device, &["ps", "-a"]).code(0).stdout_has("Exited (0)");
    assert_eq!(terminate(&mut daemon, std::time::Duration::from_secs(30)), Some(0));
}

#[test]
fn the_edge_agent_deploys_and_updates_a_signed_precompiled_app() {
    let registry = common::registry::Registry::start();
    let builder = Home::new();
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("fleet");
    let with_password =
        |args: &[&str]| Out::from(builder.cmd().env("WASMBOX_PASSWORD", "pw").args(args).output().unwrap());
    with_password(&["key", "generate", "--output-prefix", prefix.to_str().unwrap()]).code(0);
    let reference = format!("{}/edge/sensor:stable", registry.addr);
    let release = |ms: &str| {
        let app = tempfile::tempdir().unwrap();
        let toml = format!(
            "name = \"sensor\"\nversion = \"1\"\nwasm = \"{PROBE_MODULE}\"\nargs = [\"tick\", \"0\", \"{ms}\"]\n"
        );
        std::fs::write(app.path().join("wasmbox.toml"), toml).unwrap();
        let digest = builder
            .run(&["build", "--precompile", "aarch64", "-t", &reference, app.path().to_str().unwrap()])
            .code(0)
            .stdout
            .trim()
            .to_string();
        builder.run(&["push", "-q", &reference]).code(0);
        with_password(&["sign", "--key", prefix.with_extension("key").to_str().unwrap(), &reference]).code(0);
        digest
    };
    let v1 = release("200");

    // The device trusts the fleet key; the daemon is started here (qemu-user cannot start a
    // foreign binary from inside itself), the agent finds it through the home.
    let device = Home::new();
    let policy = format!(
        r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}"#,
        prefix.with_extension("pub").display()
    );
    std::fs::write(device.path().join("policy.json"), policy).unwrap();
    let mut daemon = AARCH64.cmd(&device).arg("daemon").stderr(std::process::Stdio::null()).spawn().unwrap();
    let socket = device.path().join("wasmbox.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let config = device.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("poll_interval = \"1h\"\n[[app]]\nname = \"sensor\"\nimage = \"{reference}\"\nhealth = {{ running = \"1s\" }}\n"),
    )
    .unwrap();
    let mut agent = AARCH64
        .cmd(&device)
        .args(["agent", "--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let current = |device: &Home| -> Option<String> {
        let out = AARCH64.run(device, &["agent", "status", "--json"]);
        let apps: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        apps[0]["current"].as_str().map(str::to_string)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while current(&device).as_deref() != Some(v1.as_str()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(current(&device), Some(v1.clone()));
    AARCH64.run(&device, &["ps"]).code(0).stdout_has(&format!("sensor-{}", &v1[7..19]));

    // An update on the device: the new version's own precompiled layer runs (an edge build
    // cannot compile), the old one is gone.
    let v2 = release("300");
    AARCH64.run(&device, &["agent", "sync", "--timeout", "120s"]).code(0);
    assert_eq!(current(&device), Some(v2.clone()));
    let ps = AARCH64.run(&device, &["ps", "-a"]);
    ps.code(0).stdout_has(&format!("sensor-{}", &v2[7..19]));
    assert!(!ps.stdout.contains(&v1[7..19]), "{}", ps.stdout);
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(terminate(&mut daemon, std::time::Duration::from_secs(30)), Some(0));
}
