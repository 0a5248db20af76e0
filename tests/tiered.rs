//! Tiered first starts (issue 17, target 3): Wasm with much code that is not in the compile cache runs
//! at once on Winch's baseline code; Cranelift's optimized code is compiled in the background
//! and replaces it in the cache, so later runs start on optimized code. `--compiler` chooses.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn logged(home: &Home, args: &[&str]) -> Out {
    Out::from(home.cmd().env("WASMBOX_LOG", "debug").args(args).output().unwrap())
}

/// `wasm` with code past the tiering threshold, written into `home`.
fn large(home: &Home, wasm: &[u8], name: &str) -> String {
    let path = home.path().join(name);
    std::fs::write(&path, with_code(wasm, 1 << 20)).unwrap();
    path.display().to_string()
}

/// A WASI command that prints "hello" (Winch compiles all of it; the probes use relaxed SIMD,
/// which Winch lacks).
fn hello() -> Vec<u8> {
    wat::parse_file(wat("hello")).unwrap()
}

fn pending(home: &Home) -> usize {
    std::fs::read_dir(home.path().join("cache/pending")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_large_first_run_starts_on_the_baseline_tier_and_the_next_on_optimized_code() {
    let home = Home::new();
    let big = large(&home, &hello(), "big.wasm");
    let first = logged(&home, &["run", &big]);
    first.code(0).stdout_has("hello").stderr_has("compiled the baseline tier (Winch)");
    assert!(!first.stderr.contains("compiling (cache miss)"), "Cranelift compiled first: {}", first.stderr);
    // The background optimizer puts optimized code in the cache and removes its pending Wasm.
    let deadline = Instant::now() + Duration::from_secs(120);
    while pending(&home) > 0 {
        assert!(Instant::now() < deadline, "the background compile did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(home.cache_entries().len(), 1, "the optimized entry only: baseline code is not cached");
    let later = logged(&home, &["run", &big]);
    later.code(0).stdout_has("hello").stderr_has("compile cache hit");
    assert!(!later.stderr.contains("baseline"), "still on the baseline tier: {}", later.stderr);
}

#[test]
fn what_winch_cannot_compile_starts_on_cranelift() {
    // The probe uses relaxed SIMD: Winch refuses it, so the first run waits for Cranelift.
    let home = Home::new();
    let big = large(&home, &std::fs::read(PROBE_MODULE).unwrap(), "big-probe.wasm");
    let out = logged(&home, &["run", &big, "hello"]);
    out.code(0).stdout_has("hello").stderr_has("Winch cannot compile this, using Cranelift");
    assert_eq!(pending(&home), 0, "nothing left to optimize");
    assert_eq!(home.cache_entries().len(), 1);
}

#[test]
fn small_wasm_no_cache_and_compiler_cranelift_are_not_tiered() {
    let home = Home::new();
    let big = large(&home, &hello(), "big.wasm");
    let small = wat("hello");
    for args in [vec!["run", &small], vec!["run", "--no-cache", &big], vec!["run", "--compiler", "cranelift", &big]] {
        let out = logged(&home, &args);
        out.code(0).stdout_has("hello");
        assert!(!out.stderr.contains("baseline"), "{args:?} was tiered: {}", out.stderr);
    }
    assert_eq!(pending(&home), 0, "nothing left for a background compile");
}

/// Tiering goes by code, not file size: data and custom sections cost no compile time, and a
/// first run of a large file with little code trying Winch first was ~70 ms lost when Winch
/// then declined it (the images benchmark's padded probe).
#[test]
fn a_large_file_with_little_code_is_not_tiered() {
    let home = Home::new();
    let path = home.path().join("padded-probe.wasm");
    std::fs::write(&path, padded(&std::fs::read(PROBE_MODULE).unwrap(), 4 << 20)).unwrap();
    let out = logged(&home, &["run", path.to_str().unwrap(), "hello"]);
    out.code(0).stdout_has("hello").stderr_has("compiling (cache miss)");
    assert!(!out.stderr.contains("Winch"), "a file of 4 MiB padding was tiered: {}", out.stderr);
    assert_eq!(pending(&home), 0, "nothing left for a background compile");
}

#[test]
fn compiler_winch_runs_baseline_code_with_every_limit() {
    let home = Home::new();
    let out = logged(&home, &["run", "--compiler", "winch", &wat("hello")]);
    out.code(0).stdout_has("hello").stderr_has("compiled the baseline tier (Winch)");
    assert_eq!(pending(&home), 0, "--compiler winch never optimizes");
    // Here Winch's code is the final code: cached, and found by the next run.
    assert_eq!(home.cache_entries().len(), 1);
    let again = logged(&home, &["run", "--compiler", "winch", &wat("hello")]);
    again.code(0).stdout_has("hello").stderr_has("compile cache hit");
    // Traps, deadlines (epoch ticks reach the baseline engine) and memory limits still apply.
    home.run(&["run", "--compiler", "winch", &wat("unreachable")]).code(134).stderr_has("unreachable");
    let started = Instant::now();
    home.run(&["run", "--compiler", "winch", "--timeout", "300ms", &wat("loop")]).code(137).stderr_has("timeout");
    assert!(started.elapsed() < Duration::from_secs(10), "deadline took {:?}", started.elapsed());
    home.run(&["run", "--compiler", "winch", "-m", "64M", &wat("grow-memory")])
        .code(134)
        .stderr_has("memory.grow had been refused");
    // Where Winch cannot apply, the cause is named (126), not guessed around.
    home.run(&["run", "--compiler", "winch", "--fuel", "1000000", &wat("hello")])
        .code(126)
        .stderr_has("--compiler winch is not available here");
    home.run(&["run", "--compiler", "fast", &wat("hello")]).code_not(0).stderr_has("unknown compiler `fast`");
}

#[test]
fn the_background_compile_takes_only_wasm_whose_bytes_match_its_name() {
    let home = Home::new();
    let dir = home.path().join("cache/pending");
    std::fs::create_dir_all(&dir).unwrap();
    // Bytes under another program's name (swapped or torn): refused, removed, nothing cached.
    let wrong = dir.join(format!("{}.wasm", "ab".repeat(32)));
    std::fs::write(&wrong, hello()).unwrap();
    home.run(&["__optimize", wrong.to_str().unwrap()]).code(125).stderr_has("does not hold the Wasm its name says");
    assert!(!wrong.exists(), "the mismatched file is removed");
    assert!(home.cache_entries().is_empty());
    let named = |bytes: &[u8]| {
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("{digest}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // Wasm that does not compile: the failure would repeat, so the file goes too.
    let broken = named(b"\0asm\x01\0\0\0not a section");
    home.run(&["__optimize", broken.to_str().unwrap()]).code_not(0);
    assert!(!broken.exists(), "a failed compile leaves nothing pending");
    // The right name: compiled into the cache, the pending file removed.
    let right = named(&hello());
    home.run(&["__optimize", right.to_str().unwrap()]).code(0);
    assert!(!right.exists());
    assert_eq!(home.cache_entries().len(), 1);
}

#[test]
fn the_internal_command_is_not_offered_to_users() {
    let home = Home::new();
    assert!(!home.run(&["--help"]).stdout.contains("optimize"));
    let completions = home.run(&["completions", "bash"]);
    completions.code(0);
    assert!(!completions.stdout.contains("optimize"), "completions list the internal command");
}

#[test]
fn system_df_counts_and_prune_removes_wasm_a_dead_optimizer_left() {
    let home = Home::new();
    let dir = home.path().join("cache/pending");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.wasm", "cd".repeat(32))), hello()).unwrap();
    let df: serde_json::Value = serde_json::from_str(&home.run(&["system", "df", "--json"]).stdout).unwrap();
    assert_eq!(df["compile_cache"]["count"], 1, "{df}");
    let pruned = home.run(&["system", "prune", "-f"]);
    pruned.code(0).stdout_has("Deleted compile cache entries: 1");
    assert_eq!(pending(&home), 0);
}
