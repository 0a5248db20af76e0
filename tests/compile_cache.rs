//! The compile cache: the second run never compiles, damage is detected and rebuilt,
//! concurrent runs are safe; `wasmbox compile` output runs with --allow-precompiled.

mod common;
use common::*;

fn logged_run(home: &Home, args: &[&str]) -> Out {
    Out::from(home.cmd().env("WASMBOX_LOG", "debug").args(args).output().unwrap())
}

#[test]
fn second_run_hits_the_cache() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        let first = logged_run(&home, &["run", probe, "hello"]);
        first.code(0).stderr_has("compiling (cache miss)");
        let second = logged_run(&home, &["run", probe, "hello"]);
        second.code(0).stderr_has("compile cache hit");
        assert!(!second.stderr.contains("compiling"), "{kind} recompiled: {}", second.stderr);
    }
    assert_eq!(home.cache_entries().len(), 2);
}

#[test]
fn damaged_entries_are_rebuilt_not_loaded() {
    let home = Home::new();
    for damage in ["truncate", "flip", "empty", "older"] {
        let _ = std::fs::remove_dir_all(home.path().join("cache"));
        logged_run(&home, &["run", PROBE_COMPONENT, "hello"]).code(0);
        let entries = home.cache_entries();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        let mut bytes = std::fs::read(entry).unwrap();
        match damage {
            "truncate" => bytes.truncate(bytes.len() - 100),
            "flip" => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
            }
            // An entry of format 3 or before (record first), left by an older wasmbox.
            "older" => bytes.rotate_right(128),
            _ => bytes.clear(),
        }
        std::fs::write(entry, &bytes).unwrap();
        let out = logged_run(&home, &["run", PROBE_COMPONENT, "hello"]);
        out.code(0).stdout_has("hello").stderr_has("compiling (cache miss)").no_panic();
        match damage {
            "empty" => {}
            // Replaced quietly: an upgrade is not damage.
            "older" => assert!(!out.stderr.contains("WARN"), "{}", out.stderr),
            _ => {
                out.stderr_has("damaged compile cache entry");
            }
        }
        // Rewritten whole: the next run hits again.
        logged_run(&home, &["run", PROBE_COMPONENT, "hello"]).code(0).stderr_has("compile cache hit");
    }
}

#[test]
fn an_entry_swapped_for_another_programs_code_is_not_run() {
    // Issue 12.9: entries are bound to the Wasm and engine they came from. Renaming the entry
    // of a trapping module to the key of the probe must not make the probe trap.
    let home = Home::new();
    logged_run(&home, &["run", &wat("unreachable")]).code(134);
    let trapper = home.cache_entries();
    logged_run(&home, &["run", PROBE_MODULE, "hello"]).code(0);
    let probe: Vec<_> = home.cache_entries().into_iter().filter(|e| !trapper.contains(e)).collect();
    assert_eq!((trapper.len(), probe.len()), (1, 1));
    std::fs::rename(&trapper[0], &probe[0]).unwrap();
    let out = logged_run(&home, &["run", PROBE_MODULE, "hello"]);
    out.code(0).stdout_has("hello").stderr_has("damaged compile cache entry").stderr_has("compiling (cache miss)");
    // An entry that is a symlink to an endless file is neither followed nor read.
    std::fs::remove_file(&probe[0]).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &probe[0]).unwrap();
    let started = std::time::Instant::now();
    logged_run(&home, &["run", PROBE_MODULE, "hello"]).code(0).stdout_has("hello");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(!std::fs::symlink_metadata(&probe[0]).unwrap().file_type().is_symlink(), "replaced by a real entry");
}

#[test]
fn concurrent_first_runs_both_succeed() {
    let home = Home::new();
    for (_, probe) in PROBES {
        let children: Vec<_> = (0..4)
            .map(|_| home.cmd().args(["run", probe, "hello"]).stdout(std::process::Stdio::piped()).spawn().unwrap())
            .collect();
        for child in children {
            Out::from(child.wait_with_output().unwrap()).code(0).stdout_has("hello");
        }
    }
    assert_eq!(home.cache_entries().len(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(home.path().join("cache/compiled-v1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".bin"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let home = Home::new();
    logged_run(&home, &["run", "--no-cache", PROBE_MODULE, "hello"]).code(0).stderr_has("compiling");
    assert!(home.cache_entries().is_empty());
}

#[test]
fn precompiled_output_runs_only_when_allowed() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for (kind, probe) in PROBES {
        let out_path = dir.path().join(format!("{kind}.cwasm"));
        let out = out_path.to_str().unwrap();
        home.run(&["compile", probe, "-o", out]).code(0).stderr_has("compiled");
        home.run(&["run", out, "hello"]).code(126).stderr_has("--allow-precompiled");
        home.run(&["inspect", out]).code(0).stdout_has(&format!("kind:    precompiled {kind}")).stdout_has("not kept");
        home.run(&["run", "--allow-precompiled", out, "exit", "42"]).code(42);
        // Fuel-metered code is a different engine configuration: refused clearly.
        home.run(&["run", "--allow-precompiled", "--fuel", "1000000", out, "hello"])
            .code(126)
            .stderr_has("different wasmbox or engine configuration");
        let mut bytes = std::fs::read(&out_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&out_path, &bytes).unwrap();
        home.run(&["run", "--allow-precompiled", out, "hello"]).code(126).stderr_has("checksum mismatch").no_panic();
        // A file of an older wasmbox's format (our record first) is named as such.
        bytes[last] ^= 1;
        bytes.rotate_right(128);
        std::fs::write(&out_path, &bytes).unwrap();
        home.run(&["run", "--allow-precompiled", out, "hello"])
            .code(126)
            .stderr_has("format of an older wasmbox")
            .stderr_has("wasmbox compile");
    }
}

/// Precompiled files and cache entries are mapped, not read and copied into the heap: their
/// code pages are the page cache's (fewer page faults at start, shared between processes).
#[test]
fn precompiled_files_and_cache_entries_are_mapped() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for (kind, probe) in PROBES {
        let wbx = dir.path().join(format!("{kind}.wbx"));
        home.run(&["compile", probe, "-o", wbx.to_str().unwrap()]).code(0);
        let _ = std::fs::remove_dir_all(home.path().join("cache"));
        home.run(&["run", probe, "hello"]).code(0);
        let entry = home.cache_entries().pop().unwrap();
        for args in [vec!["run", "--allow-precompiled", wbx.to_str().unwrap()], vec!["run", probe]] {
            let mut child =
                home.cmd().args(&args).args(["sleep", "20000"]).stdout(std::process::Stdio::null()).spawn().unwrap();
            let file = if args.len() == 3 { &wbx } else { &entry };
            wait_mapped(child.id(), file.to_str().unwrap());
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
