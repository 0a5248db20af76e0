//! Limits stop hostile guests with exit 137 naming the limit; traps exit 134 with a backtrace.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn memory_bomb_is_stopped_by_the_memory_limit() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        let start = Instant::now();
        let out = home.run(&["run", "-m", "64M", probe, "alloc-bomb"]);
        out.code(137).stderr_has("memory limit of 64 MiB reached").no_panic();
        assert!(start.elapsed() < Duration::from_secs(20), "{kind} took {:?}", start.elapsed());
    }
}

#[test]
fn memory_limit_is_per_container_across_memories_and_tables() {
    let home = Home::new();
    // Eight 16 MiB memories: each would fit a per-memory limit of 64 MiB, the total does not.
    home.run(&["run", "-m", "64M", &wat("many-memories")]).code(137).stderr_has("memory limit of 64 MiB");
    home.run(&["run", "-m", "256M", &wat("many-memories")]).code(0);
    home.run(&["run", "-m", "64M", &wat("grow-memory")]).code(137).stderr_has("memory limit of 64 MiB");
    // 1M-element table growth is 8 MiB per step against the same total.
    home.run(&["run", "-m", "16M", &wat("grow-table")]).code(137).stderr_has("memory limit of 16 MiB");
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
