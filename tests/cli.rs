//! The small things of the command line: shell completions, `version`, and `--format`.

mod common;
use common::*;

/// Every verb `wasmbox --help` lists.
fn verbs(home: &Home) -> Vec<String> {
    let help = home.run(&["--help"]);
    help.code(0);
    let commands = help.stdout.split("Commands:").nth(1).unwrap().split("Options:").next().unwrap().to_string();
    commands.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| *w != "help").map(String::from).collect()
}

#[test]
fn completion_scripts_cover_every_verb_and_bash_completes() {
    let home = Home::new();
    let verbs = verbs(&home);
    assert!(verbs.len() >= 20 && verbs.iter().any(|v| v == "system"), "{verbs:?}");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = home.run(&["completions", shell]);
        out.code(0);
        for verb in &verbs {
            assert!(out.stdout.contains(verb.as_str()), "{shell} script lacks `{verb}`");
        }
        // fish spells long flags `-l net-allow`, the others `--net-allow`.
        for flag in ["net-allow", "timestamps", "format", "max-handles", "since"] {
            assert!(out.stdout.contains(flag), "{shell} script lacks `--{flag}`");
        }
    }
    home.run(&["completions", "tcsh"]).code(125).stderr_has("invalid value 'tcsh'");

    // The bash script sources cleanly and completes like bash would call it.
    let script = home.path().join("wasmbox.bash");
    std::fs::write(&script, home.run(&["completions", "bash"]).stdout.as_bytes()).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "set -e; source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _wasmbox wasmbox '{}' '{}'; echo \"${{COMPREPLY[*]}}\"",
            script.display(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = std::process::Command::new("bash").arg("-c").arg(program).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut got: Vec<String> =
            String::from_utf8(out.stdout).unwrap().split_whitespace().map(String::from).collect();
        got.sort();
        got
    };
    assert_eq!(complete("wasmbox r"), ["restart", "rm", "rmi", "run"]);
    let system = complete("wasmbox system ");
    assert!(["df", "prune", "--help"].iter().all(|w| system.contains(&w.to_string())), "{system:?}");
    assert!(complete("wasmbox logs --t").contains(&"--timestamps".to_string()));
}

#[test]
fn version_names_wasmtime_the_engine_hash_features_and_target() {
    let home = Home::new();
    let out = home.run(&["version", "--json"]);
    out.code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["wasmbox"], env!("CARGO_PKG_VERSION"));
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let locked = lock.split("name = \"wasmtime\"\nversion = \"").nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(v["wasmtime"], locked);
    assert!(v["features"].is_array());
    assert!(v["target"].as_str().unwrap().contains(std::env::consts::ARCH), "{v}");
    assert!(v["inference_backend"].as_str().unwrap().ends_with("/wasmbox-nn"), "{v}");

    // The engine hash is the one compiled code is bound to: a fresh cache entry carries it.
    home.run(&["run", PROBE_MODULE, "hello"]).code(0);
    let entries = home.cache_entries();
    assert_eq!(entries.len(), 1);
    let entry = std::fs::read(&entries[0]).unwrap();
    let record = &entry[entry.len() - 128..]; // our record follows wasmtime's code
    assert_eq!(&record[..8], b"WBXCWASM");
    let engine: String = record[64..96].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v["engine"], engine.as_str());
    assert_ne!(v["engine_fuel"], v["engine"]);

    let long = home.run(&["--version"]);
    long.code(0);
    for needle in ["wasmbox:", "wasmtime:  48.", "engine:    ", &engine[..16], "features:", "target:"] {
        assert!(long.stdout.contains(needle), "--version lacks {needle}: {}", long.stdout);
    }
    let short = home.run(&["-V"]);
    assert_eq!(short.stdout.lines().count(), 1);
    assert!(
        short.stdout.starts_with(&format!("wasmbox {} (wasmtime {locked}", env!("CARGO_PKG_VERSION"))),
        "{}",
        short.stdout
    );
}

#[test]
fn images_format_takes_json_and_templates() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("wasmbox.toml"),
        format!("name = \"fmt\"\nversion = \"2\"\nwasm = \"{PROBE_MODULE}\"\n"),
    )
    .unwrap();
    home.run(&["build", app.path().to_str().unwrap()]).code(0);
    let plain = home.run(&["images", "--format", "{{.Repository}}:{{ .Tag }} {{.Size}}"]);
    plain.code(0);
    assert!(plain.stdout.starts_with("fmt:2 ") && plain.stdout.lines().count() == 1, "{}", plain.stdout);
    let json = home.run(&["images", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!((row["Repository"].as_str(), row["Tag"].as_str()), (Some("fmt"), Some("2")));
    assert!(row["Digest"].as_str().unwrap().starts_with("sha256:"));
    let table = home.run(&["images", "--format", "table {{.Repository}}\\t{{.ID}}"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY   ID") && lines[1].starts_with("fmt   "), "{}", table.stdout);
    home.run(&["images", "--format", "{{.Nope}}"]).code(125).stderr_has("fields: {{.Repository}}");
}
