//! Issue 12 (hardening) for `wasmbox run`: each attack as a hostile guest or user would try
//! it, and the healthy behaviour asserted.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn everything_after_source_belongs_to_the_guest() {
    // `-v / -e SECRET` after SOURCE are the guest's arguments, never grants (like docker run).
    let home = Home::new();
    let out = home
        .cmd()
        .env("WASMBOX_TEST_SECRET", "hunter2")
        .args(["run", PROBE_MODULE, "args", "-v", "/", "-e", "WASMBOX_TEST_SECRET", "x"])
        .output()
        .unwrap();
    Out::from(out).code(0).stdout_has("args -v / -e WASMBOX_TEST_SECRET x");
    for (_, probe) in PROBES {
        let out = home
            .cmd()
            .env("WASMBOX_TEST_SECRET", "hunter2")
            .args(["run", probe, "env", "-e", "WASMBOX_TEST_SECRET"])
            .output()
            .unwrap();
        let out = Out::from(out);
        out.code(0);
        assert!(!out.stdout.contains("hunter2"), "the host variable leaked: {}", out.stdout);
        home.run(&["run", probe, "read", "/etc/passwd", "-v", "/"]).code(3).stdout_has("denied");
    }
    // Before SOURCE they are grants, as documented.
    home.run(&["run", "-v", "/etc:/etc:ro", PROBE_MODULE, "read", "/etc/passwd"]).code(0);
}

#[test]
fn connect_rules_do_not_allow_listening() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let home = Home::new();
    home.run(&["run", "--net-allow", &addr, PROBE_COMPONENT, "listen", &addr]).code(3).stdout_has("denied");
    home.run(&["run", "--net-allow", &format!("listen={addr}"), PROBE_COMPONENT, "listen", &addr])
        .code(0)
        .stdout_has(&format!("listening on {addr}"));
    // A listen rule does not allow listening elsewhere.
    home.run(&["run", "--net-allow", &format!("listen={addr}"), PROBE_COMPONENT, "listen", "127.0.0.1:0"]).code(3);
}

#[test]
fn fuel_pays_for_random_bytes_the_host_makes() {
    // 100,000 host calls of 1 MiB each is minutes of host CPU for a few thousand instructions.
    let home = Home::new();
    for (kind, probe) in PROBES {
        let started = Instant::now();
        home.run(&["run", "--fuel", "2000000", probe, "random-loop", "100000"])
            .code(137)
            .stderr_has("fuel limit of 2000000");
        assert!(started.elapsed() < Duration::from_secs(5), "{kind}: {:?}", started.elapsed());
        // Within budget it still works.
        home.run(&["run", "--fuel", "100000000", probe, "random-loop", "2"]).code(0);
    }
}

#[test]
fn a_guest_hoarding_handles_stops_at_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let grant = format!("{}:/d:ro", dir.path().display());
    let home = Home::new();
    for (_, probe) in PROBES {
        home.run(&["run", "--max-handles", "64", "-v", &grant, probe, "open-many", "/d/f"])
            .code(137)
            .stderr_has("handle limit of 64 open handles reached")
            .stderr_has("--max-handles");
        home.run(&["run", "-v", &grant, probe, "open-many", "/d/f"]).code(137).stderr_has("handle limit of 1024");
    }
    home.run(&["run", "--max-handles", "3", PROBE_MODULE]).code(125).stderr_has("--max-handles");
}

#[test]
fn a_deadline_ends_a_guest_blocked_on_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe"));
    let grant = format!("{}:/d", dir.path().display());
    let home = Home::new();
    for (kind, probe) in PROBES {
        let started = Instant::now();
        let mut child =
            home.cmd().args(["run", "--timeout", "1s", "-v", &grant, probe, "read", "/d/pipe"]).spawn().unwrap();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{kind}: run --timeout 1s still blocked after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(code, Some(137), "{kind}");
    }
}

#[test]
fn a_trap_after_refused_growth_is_reported_as_the_trap() {
    let home = Home::new();
    home.run(&["run", "-m", "64M", &wat("grow-memory")])
        .code(134)
        .stderr_has("unreachable")
        .stderr_has("memory.grow had been refused")
        .stderr_has("-m/--memory");
    // Instantiation that cannot get its memory is still the limit.
    home.run(&["run", "-m", "64M", &wat("many-memories")]).code(137);
}
