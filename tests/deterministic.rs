//! `run --deterministic`: the same bytes out on native code and on Pulley, receipts that
//! compare equal, and what cannot be deterministic refused by name (issue 16, item 5).

mod common;
use common::*;

fn run_with_stdin(home: &Home, args: &[&str], stdin: &[u8]) -> Out {
    use std::io::Write;
    let mut child = home
        .cmd()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    Out::from(child.wait_with_output().unwrap())
}

#[test]
fn deterministic_runs_give_the_same_bytes_and_receipts_on_native_and_pulley() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for (kind, probe) in PROBES {
        let receipt = |engine: &str| dir.path().join(format!("{kind}-{engine}.json"));
        let mut outs = Vec::new();
        for engine in ["native", "pulley"] {
            let r = receipt(engine);
            let args = [
                "run",
                "--engine",
                engine,
                "--deterministic",
                "--seed",
                "7",
                "--receipt",
                r.to_str().unwrap(),
                probe,
                "entropy",
            ];
            let out = run_with_stdin(&home, &args, b"some input");
            out.code(0);
            outs.push(out.stdout.clone());
        }
        assert_eq!(outs[0], outs[1], "{kind}: native and pulley print the same");
        assert!(outs[0].contains("time 946684800"), "the clock starts at 2000-01-01: {}", outs[0]);
        assert!(outs[0].contains("nan32 7fc00000"), "canonical NaN: {}", outs[0]);
        let (a, b) =
            (std::fs::read_to_string(receipt("native")).unwrap(), std::fs::read_to_string(receipt("pulley")).unwrap());
        assert_eq!(a, b, "{kind}: receipts compare equal");
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["seed"], 7);
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["args"], serde_json::json!(["entropy"]));
        assert!(v["fuel_used"].as_u64().unwrap() > 0);
        assert_eq!(v["stdin_sha256"].as_str().unwrap().len(), 64);
        assert!(!a.contains(probe), "no host paths in a receipt");

        // Another seed gives other random data; the flag's absence gives the host's clock.
        let other = home.run(&["run", "--deterministic", "--seed", "8", probe, "entropy"]);
        assert_ne!(other.stdout, outs[0]);
        let free = (home.run(&["run", probe, "entropy"]), home.run(&["run", "--engine", "pulley", probe, "entropy"]));
        assert_ne!(free.0.stdout, free.1.stdout, "without --deterministic the runs differ");

        // --check-receipt: the same run matches; other input is listed as a difference.
        let native_receipt = receipt("native");
        let check = [
            "run",
            "--check-receipt",
            native_receipt.to_str().unwrap(),
            "--seed",
            "7",
            "--deterministic",
            probe,
            "entropy",
        ];
        run_with_stdin(&home, &check, b"some input").code(0).stderr_has("matches");
        let changed = run_with_stdin(&home, &check, b"other input");
        changed.code(1).stderr_has("does not match").stderr_has("stdin_sha256");
    }
}

#[test]
fn what_cannot_be_deterministic_is_refused_by_name() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Directories can be granted: listings come in name order (tests/edge.rs checks the bytes).
    std::fs::write(dir.path().join("b"), "").unwrap();
    std::fs::write(dir.path().join("a"), "").unwrap();
    let grant = format!("{d}:/data");
    home.run(&["run", "--deterministic", "-v", &grant, PROBE_MODULE, "entropy", "/data"])
        .code(0)
        .stdout_has("listing a,b\n");
    home.run(&["run", "--deterministic", "--net-allow", "127.0.0.1:80", PROBE_MODULE])
        .code(125)
        .stderr_has("--net-allow");
    home.run(&["run", "--deterministic", "--timeout", "5s", PROBE_MODULE]).code(125).stderr_has("--fuel");
    home.run(&["run", "--seed", "3", PROBE_MODULE]).code(125).stderr_has("--deterministic");

    // Precompiled code runs deterministically only when compiled for it.
    let plain = dir.path().join("plain.cwasm");
    let det = dir.path().join("det.cwasm");
    home.run(&["compile", PROBE_MODULE, "-o", plain.to_str().unwrap()]).code(0);
    home.run(&["compile", "--deterministic", "--fuel", PROBE_MODULE, "-o", det.to_str().unwrap()]).code(0);
    home.run(&["run", "--deterministic", "--allow-precompiled", plain.to_str().unwrap(), "hello"]).code(126);
    let ok = home.run(&[
        "run",
        "--deterministic",
        "--allow-precompiled",
        "--receipt",
        dir.path().join("r.json").to_str().unwrap(),
        det.to_str().unwrap(),
        "hello",
    ]);
    ok.code(0).stdout_has("hello from a wasmbox guest");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let wasm = std::fs::read(PROBE_MODULE).unwrap();
    let sha: String = <sha2::Sha256 as sha2::Digest>::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(r["wasm_sha256"], sha.as_str(), "the Wasm's digest, also from precompiled code");
}
