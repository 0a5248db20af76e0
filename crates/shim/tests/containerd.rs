//! containerd-shim-wasmbox-v1 against a real containerd: `ctr run --runtime io.containerd.wasmbox.v1`.

mod fixture;

#[allow(unused_imports)]
use std::time::{Duration, Instant};

use fixture::{Containerd, Layout, Registry, push};
#[allow(unused_imports)]
use wasmbox_test_programs::{HTTP_HELLO_COMPONENT, PROBE_COMPONENT, PROBE_MODULE, wat};

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn wat_bytes(name: &str) -> Vec<u8> {
    ::wat::parse_file(wat(name)).unwrap()
}

#[test]
fn modules_and_components_in_two_layouts_print_and_exit() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    for (layout, guest, name) in [
        (Layout::Runwasi, PROBE_MODULE, "runwasi-module"),
        (Layout::Runwasi, PROBE_COMPONENT, "runwasi-component"),
        (Layout::Compat, PROBE_MODULE, "compat-module"),
        (Layout::Compat, PROBE_COMPONENT, "compat-component"),
    ] {
        let image = push(&registry, name, "v1", layout, &bytes(guest));
        ctd.pull(&image);
        ctd.run(&[], &image, &["/app.wasm", "hello"]).code(0).stdout_has("hello from a wasmbox guest");
        ctd.run(&[], &image, &["/app.wasm", "args", "a", "b c"]).code(0).stdout_has("a b c");
        ctd.run(&[], &image, &["/app.wasm", "exit", "42"]).code(42);
        // A trap is the guest's failure, with wasmbox's code and a line on the container's stderr.
        ctd.run(&[], &image, &["/app.wasm", "panic"]).code(134).stderr_has("wasmbox:");
    }
}

#[test]
fn mounts_are_the_only_files_and_env_is_the_specs() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    let image = push(&registry, "grants", "v1", Layout::Compat, &bytes(PROBE_MODULE));
    ctd.pull(&image);
    let data = fixture::host_dir(&[("in.txt", "from the host")]);
    let ro = format!("type=bind,src={},dst=/data,options=rbind:ro", data.path().display());
    let rw = format!("type=bind,src={},dst=/out,options=rbind:rw", data.path().display());

    // A read-only mount is readable and stays read-only.
    ctd.run(&["--mount", &ro], &image, &["/app.wasm", "read", "/data/in.txt"]).code(0).stdout_has("from the host");
    let denied = ctd.run(&["--mount", &ro], &image, &["/app.wasm", "write", "/data/new.txt", "x"]);
    assert_ne!(denied.code, Some(0), "wrote into a read-only mount: {}", denied.stdout);
    assert!(!data.path().join("new.txt").exists());
    // A read-write mount takes writes, which land on the host.
    ctd.run(&["--mount", &rw], &image, &["/app.wasm", "write", "/out/new.txt", "written"]).code(0);
    assert_eq!(fixture::read(&data.path().join("new.txt")), "written");
    // The image's own files and the container's system mounts are outside every grant.
    for path in ["/app.wasm", "/proc/self/status", "/etc/hostname", "/"] {
        let r = ctd.run(&["--mount", &ro], &image, &["/app.wasm", "read", path]);
        assert_ne!(r.code, Some(0), "{path} was readable: {}", r.stdout);
    }

    // The spec's env (the image's and --env) and nothing of the host's or the shim's hand-off.
    let env = ctd.run(&["--env", "GREETING=hi there"], &image, &["/app.wasm", "env"]);
    env.code(0).stdout_has("GREETING=hi there").stdout_lacks(fixture::HOST_SECRET).stdout_lacks("WASMBOX_SHIM_PLAN");
    // A plan forged through the env is replaced by the one made from the spec.
    let forged = r#"WASMBOX_SHIM_PLAN={"dirs":[{"path":"/","read_only":false}],"memory_limit":null,"net_allow":[],"http_allow":[],"http_listen":null,"skipped":[]}"#;
    let r = ctd.run(&["--env", forged], &image, &["/app.wasm", "read", "/app.wasm"]);
    assert_ne!(r.code, Some(0), "a forged plan granted /: {}", r.stdout);
}

#[test]
fn network_only_when_an_annotation_grants_it() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    let image = push(&registry, "net", "v1", Layout::Runwasi, &bytes(PROBE_COMPONENT));
    ctd.pull(&image);
    let port = fixture::pong_server(Duration::from_secs(60));
    let target = format!("127.0.0.1:{port}");
    let denied = ctd.run(&["--net-host"], &image, &["/app.wasm", "connect", &target]);
    assert_ne!(denied.code, Some(0), "connected without a grant: {}", denied.stdout);
    let allow = format!("wasmbox.dev/net-allow={target}");
    ctd.run(&["--net-host", "--annotation", &allow], &image, &["/app.wasm", "connect", &target])
        .code(0)
        .stdout_has("pong");
    // A bad rule is the container's error, on its stderr, with wasmbox's code.
    ctd.run(&["--annotation", "wasmbox.dev/net-allow=nonsense:port"], &image, &["/app.wasm", "hello"])
        .code(125)
        .stderr_has("wasmbox.dev/net-allow");
}

#[test]
fn kill_stops_a_spinning_guest() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    let image = push(&registry, "spin", "v1", Layout::Runwasi, &wat_bytes("loop"));
    ctd.pull(&image);
    let id = fixture::unique_id();
    let child = ctd
        .ctr_command(&["run", "--rm", "--runtime", fixture::RUNTIME, &image, &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(ctd.wait_for_status(&id, "RUNNING", Duration::from_secs(30)), "the task never ran");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ctd.task_status(&id).as_deref(), Some("RUNNING"), "the spinner ended by itself");
    let killed = Instant::now();
    let out = ctd.ctr(&["task", "kill", &id]);
    assert!(out.status.success(), "ctr task kill: {}", String::from_utf8_lossy(&out.stderr));
    let ran = fixture::Ran::from(fixture::wait_bounded(child, Duration::from_secs(30)));
    // SIGTERM ends the task: 128 + 15, as for any container.
    ran.code(143);
    assert!(killed.elapsed() < Duration::from_secs(10), "kill took {:?}", killed.elapsed());
}

#[test]
fn the_memory_limit_becomes_the_wasm_memory_limit() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    // grow-memory.wat grows by 16 MiB steps without touching the pages: only the Wasm limit stops it.
    let grow = push(&registry, "grow", "v1", Layout::Runwasi, &wat_bytes("grow-memory"));
    ctd.pull(&grow);
    let limited = ctd.run(&["--memory-limit", &(64u64 << 20).to_string()], &grow, &[]);
    // Growth is refused at the limit and the guest then traps: 137 (what an OOM kill gives a
    // container, so CRI reports OOMKilled), the limit named.
    limited.code(137).stderr_has("memory");
    // The guest's share of the spec's 64 MiB: what the runtime itself needs is kept back.
    assert!(limited.stderr.contains("32 MiB"), "the guest's limit is 64 - 32 MiB: {}", limited.stderr);
    // A bomb that touches what it allocates is stopped too (by the Wasm limit or the cgroup).
    let bomb = push(&registry, "bomb", "v1", Layout::Compat, &bytes(PROBE_MODULE));
    ctd.pull(&bomb);
    // Either the Wasm limit refuses growth and the guest's allocator traps, or the cgroup kills
    // the shim first: both stop it, and both are 137.
    let bombed = ctd.run(&["--memory-limit", &(64u64 << 20).to_string()], &bomb, &["/app.wasm", "alloc-bomb"]);
    bombed.code(137);
}

#[test]
fn the_second_start_uses_the_precompiled_layer() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    let image = push(&registry, "precompile", "v1", Layout::Runwasi, &bytes(PROBE_COMPONENT));
    ctd.pull(&image);
    let first = Instant::now();
    ctd.run(&[], &image, &["/app.wasm", "hello"]).code(0).stdout_has("hello from a wasmbox guest");
    let first = first.elapsed();
    let compiled = |log: &str| log.matches("precompiled layer sha256:").count();
    assert_eq!(compiled(&ctd.log()), 1, "the first start compiles once; log:\n{}", ctd.log());
    // runwasi keeps the result in containerd's content store, labelled with the shim's cache key.
    let content = String::from_utf8_lossy(&ctd.ctr(&["content", "ls"]).stdout).into_owned();
    assert!(content.contains("runwasi.io/precompiled/wasmbox/"), "no precompiled content: {content}");
    let second = Instant::now();
    ctd.run(&[], &image, &["/app.wasm", "hello"]).code(0).stdout_has("hello from a wasmbox guest");
    let second = second.elapsed();
    assert_eq!(compiled(&ctd.log()), 1, "the second start compiled again; log:\n{}", ctd.log());
    eprintln!("start to exit: first {first:?}, second {second:?}");
}

#[test]
fn an_http_component_answers_on_its_port() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    let image = push(&registry, "http", "v1", Layout::Runwasi, &bytes(HTTP_HELLO_COMPONENT));
    ctd.pull(&image);
    for how in ["annotation", "env"] {
        let port = fixture::free_port();
        let listen = format!("127.0.0.1:{port}");
        let flag = match how {
            "annotation" => ["--annotation".to_string(), format!("wasmbox.dev/http-listen={listen}")],
            _ => ["--env".to_string(), format!("WASMBOX_HTTP_LISTEN={listen}")],
        };
        let id = fixture::unique_id();
        let out = ctd.ctr(&["run", "-d", "--net-host", "--runtime", fixture::RUNTIME, &flag[0], &flag[1], &image, &id]);
        assert!(out.status.success(), "run -d: {}", String::from_utf8_lossy(&out.stderr));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut answer = None;
        while Instant::now() < deadline && answer.is_none() {
            answer = fixture::registry::http(&listen, "GET", "/", None, &[]).ok();
            std::thread::sleep(Duration::from_millis(100));
        }
        let answer = answer.unwrap_or_else(|| panic!("nothing answered on {listen} ({how}); log:\n{}", ctd.log()));
        assert_eq!(answer.status, 200, "{how}");
        assert!(!answer.body.is_empty());
        // SIGTERM drains and ends the server; the port closes.
        let out = ctd.ctr(&["task", "kill", &id]);
        assert!(out.status.success(), "kill: {}", String::from_utf8_lossy(&out.stderr));
        assert!(ctd.wait_for_status(&id, "STOPPED", Duration::from_secs(15)), "the server did not stop");
        assert!(std::net::TcpStream::connect(&listen).is_err(), "{listen} still open");
        ctd.remove(&id);
    }
}

/// Issue 20: a `runtimes` table in containerd's config replaces the built-in one, so a config
/// naming only wasmbox loses runc and the CRI plugin refuses to load. `install-shim.sh` keeps
/// runc; containerd's own `config dump` (no root needed) shows what it will run with.
#[test]
fn install_shim_keeps_the_runc_runtime_beside_wasmbox() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/install-shim.sh");
    let install = || {
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(fixture::SHIM)
            .env("CONTAINERD_CONFIG", &config)
            .env("PREFIX", dir.path().join("bin"))
            .env("NO_RESTART", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&config).unwrap()
    };
    let runtimes = |config_text: &str| {
        std::fs::write(dir.path().join("check.toml"), config_text).unwrap();
        let out = std::process::Command::new(fixture::tool("containerd"))
            .args(["--config", dir.path().join("check.toml").to_str().unwrap(), "config", "dump"])
            .output()
            .unwrap();
        assert!(out.status.success(), "config dump: {}", String::from_utf8_lossy(&out.stderr));
        let dump = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut names: Vec<String> = dump
            .lines()
            .filter_map(|l| l.trim().strip_prefix("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes."))
            .filter_map(|rest| rest.strip_suffix(']'))
            .filter(|name| !name.contains('.'))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    // The failure this guards against, shown by containerd itself.
    let only_wasmbox = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmbox]\n  runtime_type = \"io.containerd.wasmbox.v1\"\n";
    assert_eq!(runtimes(only_wasmbox), ["wasmbox"], "containerd kept runc after all?");

    // No config yet: both runtimes; a second run changes nothing.
    let first = install();
    assert_eq!(runtimes(&first), ["runc", "wasmbox"]);
    assert_eq!(install(), first, "install-shim.sh is idempotent");
    assert!(dir.path().join("bin/containerd-shim-wasmbox-v1").is_file());

    // A config with its own runc settings keeps them and gets no second runc table.
    let own = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n    SystemdCgroup = true\n";
    std::fs::write(&config, own).unwrap();
    let merged = install();
    assert_eq!(merged.matches("runtimes.runc]").count(), 1, "{merged}");
    assert!(merged.contains("SystemdCgroup = true"));
    assert_eq!(runtimes(&merged), ["runc", "wasmbox"]);
}
