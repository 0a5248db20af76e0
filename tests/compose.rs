//! `wasmbox compose`, `[dependencies]` and dependency isolation (docs/components.md), with
//! providers built by the real toolchains: Rust (cargo), JavaScript (componentize-js) and
//! Python (componentize-py), pinned and installed by scripts/deps.sh.

mod common;

use std::path::{Path, PathBuf};

use common::registry::Registry;
use common::{Home, Out, PROBE_COMPONENT, PROBE_MODULE};
use wasmbox_test_programs::{GREET_APP_COMPONENT, GREET_RUST_COMPONENT, GREET_WRONG_COMPONENT};

/// A work directory holding the parts under short names (`--plug` and `--grant` name them as
/// given), and a `/data` directory with a secret for the app to be granted.
struct Work {
    home: Home,
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        for (name, path) in [
            ("app.wasm", GREET_APP_COMPONENT),
            ("greet-rust.wasm", GREET_RUST_COMPONENT),
            ("greet-wrong.wasm", GREET_WRONG_COMPONENT),
            ("probe.wasm", PROBE_COMPONENT),
            ("probe-module.wasm", PROBE_MODULE),
        ] {
            std::fs::copy(path, dir.path().join(name)).unwrap();
        }
        std::fs::copy(GREET_RUST_COMPONENT, dir.path().join("greet-copy.wasm")).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/secret.txt"), "s3cret\n").unwrap();
        Work { home: Home::new(), dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Out {
        Out::from(self.home.cmd().current_dir(self.path()).args(args).output().unwrap())
    }

    /// `run` of `wasm` with the app granted GREETING and /data.
    fn run_granted(&self, wasm: &str, name: &str) -> Out {
        let data = format!("{}:/data", self.path().join("data").display());
        self.run(&["run", "-e", "GREETING=hi", "-v", &data, wasm, name])
    }
}

#[test]
fn a_plugged_dependency_gets_none_of_the_apps_grants_unless_shared() {
    let w = Work::new();
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "-o", "out.wasm"])
        .code(0)
        .stderr_has("greet-rust.wasm provides example:greet/greeter");
    // The app sees what it was granted; the dependency, composed without --grant, sees nothing.
    w.run_granted("out.wasm", "Ann")
        .code(0)
        .stdout_has("hello from rust, Ann! (dependency sees GREETING=absent /data/secret.txt=absent)")
        .stdout_has("app sees GREETING=hi /data/secret.txt=s3cret");
    // Its WIT is what the Bytecode Alliance's wasm-tools prints: the dependency's own WASI
    // imports are ordinary interface imports to every component tool.
    let ours = w.run(&["inspect", "--wit", "out.wasm"]);
    ours.code(0).stdout_has("import wasmbox-dep0:wasi-filesystem/preopens@");
    let theirs = std::process::Command::new(wasm_tools())
        .args(["component", "wit", "out.wasm"])
        .current_dir(w.path())
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{}", String::from_utf8_lossy(&theirs.stderr));
    assert_eq!(ours.stdout, String::from_utf8(theirs.stdout).unwrap());
    let shown = w.run(&["inspect", "out.wasm"]);
    shown.code(0).stdout_has("greet-rust.wasm").stdout_has("may use:   nothing of the app's grants");
    assert!(shown.stdout.contains("wasi:filesystem/preopens") && shown.stdout.contains("wasi:cli/environment"));

    // Shared by name: the dependency sees the app's directory and variable.
    w.run(&[
        "compose",
        "app.wasm",
        "--plug",
        "greet-rust.wasm",
        "--grant",
        "greet-rust.wasm=dir:/data",
        "--grant",
        "greet-rust.wasm=env:GREETING",
        "-o",
        "shared.wasm",
    ])
    .code(0);
    w.run_granted("shared.wasm", "Bo").code(0).stdout_has("(dependency sees GREETING=hi /data/secret.txt=s3cret)");
    w.run(&["inspect", "shared.wasm"]).code(0).stdout_has("may use:   dir:/data env:GREETING");
    // A share is of what the app has: a run that grants the app nothing gives the dependency nothing.
    w.run(&["run", "shared.wasm", "Cy"])
        .code(0)
        .stdout_has("(dependency sees GREETING=absent /data/secret.txt=absent)")
        .stdout_has("app sees GREETING=absent");
}

#[test]
fn a_dependency_opens_no_socket_unless_the_apps_network_is_shared() {
    let w = Work::new();
    let port = common::pong_server(std::time::Duration::from_secs(30));
    let allow = format!("127.0.0.1:{port}");
    let target = format!("connect:127.0.0.1:{port}");
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "-o", "closed.wasm"]).code(0);
    w.run(&["run", "--net-allow", &allow, "closed.wasm", &target])
        .code(0)
        .stdout_has("dependency connect: failed")
        .stdout_has("app connect: ok");
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "--grant", "greet-rust.wasm=net", "-o", "open.wasm"])
        .code(0);
    w.run(&["run", "--net-allow", &allow, "open.wasm", &target])
        .code(0)
        .stdout_has("dependency connect: ok")
        .stdout_has("app connect: ok");
    // A share of nothing is nothing: the app has no network here.
    w.run(&["run", "open.wasm", &target]).code(0).stdout_has("dependency connect: failed");

    // A share of one rule: the app may reach both ports, the dependency only the one named.
    let other = format!("127.0.0.1:{}", common::pong_server(std::time::Duration::from_secs(30)));
    let one = format!("greet-rust.wasm=net:{other}");
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "--grant", &one, "-o", "one.wasm"]).code(0);
    w.run(&["run", "--net-allow", &allow, "--net-allow", &other, "one.wasm", &target])
        .code(0)
        .stdout_has("dependency connect: failed")
        .stdout_has("app connect: ok");
    w.run(&["run", "--net-allow", &allow, "--net-allow", &other, "one.wasm", &format!("connect:{other}")])
        .code(0)
        .stdout_has("dependency connect: ok");
}

#[test]
fn composing_is_deterministic() {
    let w = Work::new();
    for out in ["a.wasm", "b.wasm"] {
        w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "--grant", "greet-rust.wasm=env:X", "-o", out])
            .code(0);
    }
    let (a, b) = (std::fs::read(w.path().join("a.wasm")).unwrap(), std::fs::read(w.path().join("b.wasm")).unwrap());
    assert_eq!(a, b, "the same inputs must give the same bytes");
}

#[test]
fn composition_errors_name_the_import_the_types_and_the_parts() {
    let w = Work::new();
    let compose = |plugs: &[&str]| {
        let mut args = vec!["compose", "app.wasm"];
        for p in plugs {
            args.extend(["--plug", p]);
        }
        args.extend(["-o", "out.wasm"]);
        w.run(&args)
    };
    // An import nobody provides.
    compose(&["probe.wasm"])
        .code(126)
        .stderr_has("app.wasm imports `example:greet/greeter`, which no --plug dependency exports")
        .stderr_has("hint:");
    // An incompatible type: both sides in WIT syntax.
    compose(&["greet-wrong.wasm"])
        .code(126)
        .stderr_has("greet-wrong.wasm exports `example:greet/greeter` with an incompatible type")
        .stderr_has("func(name: string) -> string")
        .stderr_has("func(name: u32) -> string");
    // Two providers of one interface.
    compose(&["greet-rust.wasm", "greet-copy.wasm"])
        .code(126)
        .stderr_has("is exported by both greet-rust.wasm and greet-copy.wasm");
    // A dependency nothing needs.
    compose(&["greet-rust.wasm", "probe.wasm"]).code(126).stderr_has("probe.wasm exports nothing that app.wasm");
    // Parts that are not there, or not components.
    compose(&["missing.wasm"]).code(127);
    w.run(&["compose", "nope.wasm", "--plug", "greet-rust.wasm", "-o", "out.wasm"]).code(127);
    compose(&["probe-module.wasm"]).code(126).stderr_has("probe-module.wasm is not a WebAssembly component");
    // A grant for a dependency that is not plugged, or of an unknown kind.
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "--grant", "other.wasm=env:X", "-o", "out.wasm"])
        .code(125)
        .stderr_has("not one of the --plug dependencies");
    w.run(&["compose", "app.wasm", "--plug", "greet-rust.wasm", "--grant", "greet-rust.wasm=files:/x", "-o", "o.wasm"])
        .code(125)
        .stderr_has("unknown grant");
    assert!(!w.path().join("out.wasm").exists(), "a failed composition writes nothing");
}

#[test]
fn running_an_app_whose_import_nobody_provides_says_what_would() {
    let w = Work::new();
    w.run(&["run", "app.wasm"])
        .code(126)
        .stderr_has("example:greet/greeter")
        .stderr_has("--plug")
        .stderr_has("[dependencies]");
}

fn wasm_tools() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/wasmbox-test/wasm-tools-1.262.0/bin/wasm-tools")
}

fn write_app(dir: &Path, deps: &str) {
    let toml = format!("name = \"greeter-app\"\nwasm = \"app.wasm\"\n\n[dependencies]\n{deps}\n");
    std::fs::write(dir.join("wasmbox.toml"), toml).unwrap();
}

#[test]
fn an_app_directory_composes_its_dependencies_once() {
    let w = Work::new();
    write_app(w.path(), "\"example:greet/greeter\" = \"greet-rust.wasm\"");
    let dir = w.path().display().to_string();
    w.run_granted(&dir, "Di")
        .code(0)
        .stdout_has("hello from rust, Di! (dependency sees GREETING=absent")
        .stdout_has("app sees GREETING=hi");
    let composed = w.home.path().join("composed");
    let cached = || {
        std::fs::read_dir(&composed)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wasm"))
            .count()
    };
    assert_eq!(cached(), 1);
    // The second run takes the composition from the cache.
    let again = Out::from(
        w.home.cmd().current_dir(w.path()).env("WASMBOX_LOG", "debug").args(["run", &dir, "Ed"]).output().unwrap(),
    );
    again.code(0).stdout_has("hello from rust, Ed!").stderr_has("using the composed app from the cache");
    assert_eq!(cached(), 1);

    // Grants in the table form; a changed manifest composes again.
    write_app(
        w.path(),
        "\"example:greet/greeter\" = { source = \"greet-rust.wasm\", grants = { dirs = [\"/data\"], env = [\"GREETING\"] } }",
    );
    w.run_granted(&dir, "Fy").code(0).stdout_has("(dependency sees GREETING=hi /data/secret.txt=s3cret)");
    assert_eq!(cached(), 2);

    // A dependency listed for an interface it does not provide.
    write_app(w.path(), "\"example:other/thing\" = \"greet-rust.wasm\"");
    w.run(&["run", &dir]).code(126).stderr_has("is listed for `example:other/thing`");
    // A missing one names the manifest entry.
    write_app(w.path(), "\"example:greet/greeter\" = \"./gone.wasm\"");
    w.run(&["run", &dir]).code(127).stderr_has("[dependencies] `example:greet/greeter`");
}

#[test]
fn a_dependency_by_image_reference_is_built_into_the_pushed_image() {
    let registry = Registry::start();
    let w = Work::new();
    let provider = format!("{}/greet/provider:1", registry.addr);
    let built = w.run(&["build", "-t", &provider, "greet-rust.wasm"]);
    built.code(0);
    let provider_digest = built.stdout.trim().to_string();
    w.run(&["push", &provider]).code(0);
    // Gone from the local store: `build` pulls it.
    w.run(&["rmi", &provider]).code(0);

    write_app(w.path(), &format!("\"example:greet\" = \"{provider}\""));
    let app = format!("{}/greet/app:1", registry.addr);
    w.run(&["build", "-t", &app, "."]).code(0).stderr_has(&format!("plugged example:greet ({provider_digest})"));
    w.run(&["push", &app]).code(0);

    // The manifest records the dependency's digest.
    let manifest = common::registry::http_with_headers(
        &registry.addr,
        "GET",
        "/v2/greet/app/manifests/1",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&manifest.body).unwrap();
    let deps: serde_json::Value =
        serde_json::from_str(doc["annotations"]["dev.wasmbox.deps.v1"].as_str().expect("deps annotation")).unwrap();
    assert_eq!(deps["example:greet"], provider_digest.as_str());

    // Elsewhere: pulled and run, one component.
    let elsewhere = Home::new();
    elsewhere.run(&["run", &app, "Gus"]).code(0).stdout_has("hello from rust, Gus!");
    elsewhere.run(&["inspect", &app]).code(0).stdout_has(&provider).stdout_has(&provider_digest);
}

/// A provider built from `source` by a pinned toolchain of scripts/deps.sh, cached by what
/// went into it.
fn polyglot(lang: &str) -> PathBuf {
    use sha2::Digest;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join(format!("crates/test-programs/polyglot/greet.{lang}"));
    let wit = root.join("crates/test-programs/guests/wit/greet");
    let tools = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/wasmbox-test");
    let mut h = sha2::Sha256::new();
    h.update(std::fs::read(&src).unwrap());
    h.update(std::fs::read(wit.join("greet.wit")).unwrap());
    h.update(b"--disable http fetch-event");
    let out = tools.join(format!("polyglot/greet-{lang}-{:x}.wasm", h.finalize()));
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let partial = out.with_extension("partial.wasm");
    let status = match lang {
        "js" => std::process::Command::new(tools.join("componentize-js-0.23.0/node_modules/.bin/componentize-js"))
            .arg("--wit")
            .arg(&wit)
            // A plain provider: without these StarlingMonkey also imports wasi:http (for
            // `fetch`), which `run` does not provide.
            .args(["--world-name", "provider", "--disable", "http", "fetch-event", "-o"])
            .arg(&partial)
            .arg(&src)
            .status(),
        "py" => std::process::Command::new(tools.join("componentize-py-0.25.1/bin/componentize-py"))
            .arg("-d")
            .arg(&wit)
            .args(["-w", "provider", "componentize", "greet", "-o"])
            .arg(&partial)
            .current_dir(src.parent().unwrap())
            .status(),
        _ => unreachable!(),
    }
    .unwrap_or_else(|e| panic!("cannot start the {lang} toolchain ({e}): scripts/deps.sh installs it"));
    assert!(status.success(), "building the {lang} provider failed");
    std::fs::rename(&partial, &out).unwrap();
    out
}

#[test]
fn providers_in_javascript_and_python_plug_into_a_rust_app() {
    let w = Work::new();
    for (lang, greeting) in [("js", "hello from javascript, Ann!"), ("py", "hello from python, Ann!")] {
        let provider = w.path().join(format!("greet.{lang}.wasm"));
        std::fs::copy(polyglot(lang), &provider).unwrap();
        let out = format!("app-{lang}.wasm");
        w.run(&["compose", "app.wasm", "--plug", provider.to_str().unwrap(), "-o", &out])
            .code(0)
            .stderr_has("provides example:greet/greeter");
        w.run_granted(&out, "Ann").code(0).stdout_has(greeting).stdout_has("app sees GREETING=hi");
    }
}
