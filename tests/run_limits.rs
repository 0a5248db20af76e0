//! Limits stop hostile guests with exit 137 naming the limit; traps exit 134 with a backtrace.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn memory_bomb_traps_once_the_memory_limit_refuses_growth() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        let start = Instant::now();
        let out = home.run(&["run", "-m", "64M", probe, "alloc-bomb"]);
        // Growth fails the Wasm way and the guest's allocator aborts: a trap (134), with the
        // refused growth named, not a limit that stopped it (a guest can trap on purpose).
        out.code(134).stderr_has("memory.grow had been refused: memory limit of 64 MiB reached").no_panic();
        assert!(start.elapsed() < Duration::from_secs(20), "{kind} took {:?}", start.elapsed());
    }
}

#[test]
fn memory_limit_is_per_container_across_memories_and_tables() {
    let home = Home::new();
    // Eight 16 MiB memories: each would fit a per-memory limit of 64 MiB, the total does not.
    home.run(&["run", "-m", "64M", &wat("many-memories")]).code(137).stderr_has("memory limit of 64 MiB");
    home.run(&["run", "-m", "256M", &wat("many-memories")]).code(0);
    home.run(&["run", "-m", "64M", &wat("grow-memory")]).code(134).stderr_has("memory limit of 64 MiB");
    // 1M-element table growth is 8 MiB per step against the same total.
    home.run(&["run", "-m", "16M", &wat("grow-table")]).code(134).stderr_has("memory limit of 16 MiB");
}

#[test]
fn infinite_loop_is_stopped_by_timeout() {
    let home = Home::new();
    let start = Instant::now();
    home.run(&["run", "--timeout", "200ms", &wat("loop")]).code(137).stderr_has("timeout of 200ms reached");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[test]
fn yielding_and_sleeping_guests_are_stopped_by_timeout() {
    // B11: a loop of sleep(0) (poll_oneoff), and a guest blocked in a long sleep.
    let home = Home::new();
    for (kind, probe) in PROBES {
        // Compile first, so the bound below measures the deadline, not a cold compile on a busy CI.
        home.run(&["run", probe, "hello"]).code(0);
        for op in [&["spin"][..], &["sleep", "60000"]] {
            let start = Instant::now();
            let mut args = vec!["run", "--timeout", "300ms", probe];
            args.extend_from_slice(op);
            home.run(&args).code(137).stderr_has("timeout of 300ms");
            assert!(start.elapsed() < Duration::from_secs(3), "{kind} {op:?} took {:?}", start.elapsed());
        }
    }
}

#[test]
fn fuel_exhaustion_stops_the_guest() {
    let home = Home::new();
    home.run(&["run", "--fuel", "100000", &wat("loop")]).code(137).stderr_has("fuel limit of 100000");
    // Enough fuel lets a real program finish.
    home.run(&["run", "--fuel", "100000000", PROBE_MODULE, "hello"]).code(0).stdout_has("hello");
}

#[test]
fn deep_recursion_traps() {
    let home = Home::new();
    home.run(&["run", &wat("recurse")]).code(134).stderr_has("call stack exhausted").no_panic();
}

#[test]
fn unreachable_traps_with_a_named_backtrace() {
    let home = Home::new();
    let out = home.run(&["run", &wat("unreachable")]);
    out.code(134).stderr_has("wasm `unreachable` instruction executed").stderr_has("inner").stderr_has("outer");
    out.no_panic();
}

#[test]
fn guest_panic_is_a_trap() {
    let home = Home::new();
    for (_, probe) in PROBES {
        home.run(&["run", probe, "panic"]).code(134).stderr_has("probe was asked to panic").stderr_has("guest trapped");
    }
}

#[test]
fn descriptor_churn_does_not_exhaust_the_host() {
    // A7 (CVE-2025-53901, GHSA-3p27-qvp9-27qf): 100k open/renumber/close rounds.
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("{}:/sb", dir.path().display());
    let start = Instant::now();
    let child =
        home.cmd().args(["run", "-v", &grant, &wat("fd-churn")]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Mid-run, the host process holds a handful of descriptors, not one per round.
    std::thread::sleep(Duration::from_millis(1500));
    let open_fds = std::fs::read_dir(format!("/proc/{}/fd", child.id())).map(|d| d.count()).unwrap_or(0);
    assert!(open_fds < 64, "wasmbox holds {open_fds} descriptors mid-churn");
    Out::from(child.wait_with_output().unwrap()).code(0).no_panic();
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    assert!(dir.path().join("f").exists());
}

#[test]
fn huge_host_allocation_requests_are_refused() {
    // B14 (GHSA-852m-cvvp-9p4w): get-random-bytes(1<<32) must not make the host allocate 4 GiB.
    let home = Home::new();
    let start = Instant::now();
    let out = home.run(&["run", PROBE_COMPONENT, "random-bytes", &(1u64 << 32).to_string()]);
    out.code(134).stderr_has("guest trapped").no_panic();
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    // A modest request still works.
    home.run(&["run", PROBE_COMPONENT, "random-bytes", "4096"]).code(0).stdout_has("4096 bytes");
}
