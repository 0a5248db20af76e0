//! Images in the local store: build, images, tag, rmi, prune, run and inspect by reference,
//! the app manifest's defaults and requests, foreign layouts, and store integrity.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A directory with a wasmbox.toml for the probe component.
fn app_dir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"probe\"\nversion = \"1.0\"\nwasm = \"{PROBE_COMPONENT}\"\nargs = [\"env\"]\n\
         env = {{ GREETING = \"from-image\" }}\n{extra}"
    );
    std::fs::write(dir.path().join("wasmbox.toml"), toml).unwrap();
    dir
}

fn images_json(home: &Home) -> serde_json::Value {
    let out = home.run(&["images", "--json"]);
    out.code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every blob's name is the sha256 of its content (the layout invariant).
fn assert_store_consistent(home: &Home) {
    let blobs = home.path().join("images/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp"), "temp file left in the store: {name}");
        assert_eq!(sha256_hex(&std::fs::read(&p).unwrap()), name, "blob content does not match its name");
    }
}

#[test]
fn build_run_tag_rmi_prune() {
    let home = Home::new();
    let app = app_dir("");
    let built = home.run(&["build", app.path().to_str().unwrap()]);
    built.code(0).stderr_has("built probe:1.0 (component");
    let digest = built.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");

    let list = images_json(&home);
    assert_eq!(list[0]["reference"], "probe:1.0");
    assert_eq!(list[0]["digest"], digest.as_str());
    home.run(&["images"]).code(0).stdout_has("REPOSITORY").stdout_has("probe");

    // Runs by name with the app's default args and env; flags add to and override them.
    let out = home.run(&["run", "probe:1.0"]);
    out.code(0);
    assert_eq!(out.stdout, "ok\nGREETING=from-image\n");
    let out = home.run(&["run", "-e", "GREETING=flag", "probe:1.0", "env"]);
    assert_eq!(out.stdout, "ok\nGREETING=flag\n");
    home.run(&["run", "probe:1.0", "exit", "42"]).code(42);

    // Another name, then by pinned digest.
    home.run(&["tag", "probe:1.0", "localhost:5000/team/probe:v2"]).code(0);
    home.run(&["run", "localhost:5000/team/probe:v2", "exit", "3"]).code(3);
    home.run(&["run", &format!("probe@{digest}"), "exit", "5"]).code(5);

    // rmi checks every name before removing any.
    home.run(&["rmi", "probe:1.0", "nope:1"]).code(127).stderr_has("image `nope:1` not found");
    assert_eq!(images_json(&home).as_array().unwrap().len(), 2);
    home.run(&["rmi", "probe:1.0"]).code(0).stdout_has("untagged: probe:1.0");
    home.run(&["run", "--pull", "never", "probe:1.0"]).code(127).stderr_has("not found").stderr_has("hint:");
    // Still referenced by the other tag: prune keeps everything.
    home.run(&["image", "prune"]).code(0).stdout_has("removed 0 unreferenced blobs");
    home.run(&["rmi", "localhost:5000/team/probe:v2"]).code(0);
    home.run(&["image", "prune"]).code(0).stdout_has("removed 3 unreferenced blobs");
    assert_eq!(std::fs::read_dir(home.path().join("images/blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn store_is_a_standard_oci_image_layout_in_the_cncf_wasm_format() {
    let home = Home::new();
    let app = app_dir("");
    let digest = home.run(&["build", "-t", "demo:7", app.path().to_str().unwrap()]).code(0).stdout.trim().to_string();
    let root = home.path().join("images");
    let layout: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], digest.as_str());
    assert_eq!(entry["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], "docker.io/library/demo:7");

    let blob = |d: &str| std::fs::read(root.join("blobs/sha256").join(d.strip_prefix("sha256:").unwrap())).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&digest)).unwrap();
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(layer, std::fs::read(PROBE_COMPONENT).unwrap(), "the layer is the component, byte for byte");
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], manifest["layers"][0]["digest"]);
    assert!(config["created"].as_str().unwrap().ends_with('Z'));
    assert!(config["component"]["target"].as_str().unwrap().starts_with("wasi:cli/command@0.2."));
    let exports = config["component"]["exports"].as_array().unwrap();
    assert!(exports.iter().any(|e| e.as_str().unwrap().starts_with("wasi:cli/run@")));
    let app_json = manifest["annotations"]["dev.wasmbox.app.v1"].as_str().unwrap();
    assert!(app_json.contains("\"name\":\"probe\"") && !app_json.contains(PROBE_COMPONENT), "{app_json}");
    assert_store_consistent(&home);
}

#[test]
fn requested_capabilities_are_shown_never_granted_silently() {
    let home = Home::new();
    let port = pong_server(std::time::Duration::from_secs(30));
    let extra = format!(
        "[capabilities]\ndirs = [{{ guest = \"/data\", read_only = true }}]\nenv = [\"API_KEY\"]\nnet = [\"127.0.0.1:{port}\"]\n"
    );
    let app = app_dir(&extra);
    home.run(&["build", "-t", "needy", app.path().to_str().unwrap()]).code(0);
    let addr = format!("127.0.0.1:{port}");

    // Without grants: the note names the exact flags, and the guest really is denied.
    let out = Out::from(home.cmd().env("API_KEY", "s3cret").args(["run", "needy", "connect", &addr]).output().unwrap());
    out.denied().stderr_has(&format!("not granted: -v HOST_DIR:/data:ro -e API_KEY --net-allow {addr}"));
    let out = Out::from(home.cmd().env("API_KEY", "s3cret").args(["run", "needy"]).output().unwrap());
    assert!(!out.stdout.contains("s3cret"), "env granted silently: {}", out.stdout);

    // --grant-requested grants env and network after saying so; directories still need -v.
    let out = Out::from(
        home.cmd()
            .env("API_KEY", "s3cret")
            .args(["run", "--grant-requested", "needy", "connect", &addr])
            .output()
            .unwrap(),
    );
    out.code(0)
        .stdout_has("pong")
        .stderr_has("granting what the app requests: -e API_KEY")
        .stderr_has("-v HOST_DIR:/data:ro");
    let out =
        Out::from(home.cmd().env("API_KEY", "s3cret").args(["run", "--grant-requested", "needy"]).output().unwrap());
    out.code(0).stdout_has("API_KEY=s3cret");

    // inspect lists the requests with their flags.
    home.run(&["inspect", "needy"])
        .code(0)
        .stdout_has("the app requests")
        .stdout_has("-v HOST_DIR:/data:ro")
        .stdout_has("-e API_KEY");
    let v: serde_json::Value = serde_json::from_str(&home.run(&["inspect", "--json", "needy"]).stdout).unwrap();
    assert_eq!(v["image"]["app"]["capabilities"]["env"][0], "API_KEY");
    assert_eq!(v["kind"], "component");
}

#[test]
fn an_image_cannot_raise_its_own_limits() {
    // Issue 12.8: `memory = "4G"` baked into an image is not a grant; inspect shows it.
    let home = Home::new();
    let app = app_dir("limits = { memory = \"4G\", timeout = \"9s\" }\n");
    home.run(&["build", "-t", "greedy", app.path().to_str().unwrap()]).code(0);
    home.run(&["inspect", "greedy"]).code(0).stdout_has("limits:  memory 4G, timeout 9s");
    home.run(&["run", "greedy", "alloc-bomb"])
        .code(134)
        .stderr_has("ignored: pass -m 4G or --grant-requested")
        .stderr_has("memory limit of 1 GiB");
    // The user's own flag is the opt-in.
    home.run(&["run", "-m", "40M", "greedy", "alloc-bomb"]).code(134).stderr_has("memory limit of 40 MiB");
}

#[test]
fn app_limits_apply_and_flags_override_them() {
    let home = Home::new();
    let app = app_dir("limits = { memory = \"32M\" }\n");
    home.run(&["build", "-t", "small", app.path().to_str().unwrap()]).code(0);
    home.run(&["run", "small", "alloc-bomb"]).code(134).stderr_has("memory limit of 32 MiB");
    home.run(&["run", "-m", "48M", "small", "alloc-bomb"]).code(134).stderr_has("memory limit of 48 MiB");
}

#[test]
fn build_from_files_and_bad_inputs() {
    let home = Home::new();
    home.run(&["build", PROBE_MODULE]).code(0).stderr_has("built probe:latest (module");
    home.run(&["run", "probe", "hello"]).code(0).stdout_has("hello from a wasmbox guest");
    // A directory named like the image does not shadow it.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("probe")).unwrap();
    let out = Out::from(home.cmd().current_dir(cwd.path()).args(["run", "probe", "exit", "2"]).output().unwrap());
    out.code(2);
    home.run(&["build", "-t", "trap", &wat("unreachable")]).code(0);
    home.run(&["run", "trap"]).code(134);

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0\x01\xff").unwrap();
    home.run(&["build", "-t", "junk", junk.to_str().unwrap()]).code(126).stderr_has("not a valid WebAssembly module");
    std::fs::write(dir.path().join("wasmbox.toml"), "name = \"x\"\nwasm = \"x.wasm\"\ncolour = \"red\"\n").unwrap();
    home.run(&["build", dir.path().to_str().unwrap()]).code(125).stderr_has("wasmbox.toml").stderr_has("colour");
    home.run(&["build", "-t", "Bad Name!", PROBE_MODULE]).code(125).stderr_has("invalid image reference");
    let refs: Vec<String> =
        images_json(&home).as_array().unwrap().iter().map(|i| i["reference"].as_str().unwrap().to_string()).collect();
    assert_eq!(refs, ["probe:latest", "trap:latest"], "a failed build tagged something");
    home.run(&["run", "--pull", "never", &format!("probe@sha256:{}", "0".repeat(64))]).code(127);
    home.run(&["run", "probe@sha256:1234"]).code(125).stderr_has("invalid image reference");
    home.run(&["run", "./missing.wasm"]).code(127).stderr_has("no such file");
    // The default policy pulls a missing image: off loopback, tests can only see it fail.
    home.run(&["run", "surely-not-local:1"]).code(125).stderr_has("pulling").stderr_has("registry");
}

#[test]
fn damaged_store_blob_is_detected() {
    let home = Home::new();
    home.run(&["build", "-t", "victim", PROBE_MODULE]).code(0);
    let blobs = home.path().join("images/blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    home.run(&["run", "victim", "hello"])
        .code(126)
        .stderr_has("does not match its digest")
        .stderr_has("store is damaged");
}

#[test]
fn concurrent_builds_keep_every_tag() {
    let home = Home::new();
    let children: Vec<_> = (0..6)
        .map(|i| {
            home.cmd()
                .args(["build", "-t", &format!("many:{i}"), PROBE_MODULE])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        Out::from(child.wait_with_output().unwrap()).code(0);
    }
    assert_eq!(images_json(&home).as_array().unwrap().len(), 6);
    assert_store_consistent(&home);
}

/// Stores `manifest` and names it `name:latest` in index.json by hand, as a pull would.
fn tag_by_hand(root: &Path, name: &str, manifest: &str) {
    let manifest_digest = put_blob(root, manifest.as_bytes());
    let index_path = root.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(),
        "annotations": { "org.opencontainers.image.ref.name": format!("docker.io/library/{name}:latest") },
    });
    match index["manifests"].as_array_mut() {
        Some(list) => list.push(entry),
        None => index["manifests"] = serde_json::json!([entry]),
    }
    std::fs::write(&index_path, index.to_string()).unwrap();
}

/// Writes a blob into the store's layout by hand, as a registry pull would.
fn put_blob(root: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(root.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn add_foreign_image(home: &Home, name: &str, config_type: &str, config: &str, layer_type: &str, wasm: &[u8]) {
    home.run(&["images"]).code(0); // creates the layout
    let root = home.path().join("images");
    let config_digest = put_blob(&root, config.as_bytes());
    let layer_digest = put_blob(&root, wasm);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": config_type, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": layer_type, "digest": layer_digest, "size": wasm.len() }],
    })
    .to_string();
    tag_by_hand(&root, name, &manifest);
}

#[test]
fn runwasi_and_spin_layouts_run() {
    let home = Home::new();
    let wasm = std::fs::read(PROBE_COMPONENT).unwrap();
    add_foreign_image(
        &home,
        "runwasi-app",
        "application/vnd.oci.image.config.v1+json",
        r#"{"architecture":"wasm","os":"wasip2","rootfs":{"type":"layers","diff_ids":[]}}"#,
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        &wasm,
    );
    add_foreign_image(
        &home,
        "spin-app",
        "application/vnd.fermyon.spin.application.v1+config",
        r#"{"spin_lock_version":1,"components":[]}"#,
        "application/vnd.wasm.content.layer.v1+wasm",
        &wasm,
    );
    add_foreign_image(&home, "html-app", "text/html", "<html>", "application/wasm", &wasm);
    home.run(&["run", "runwasi-app", "exit", "11"]).code(11);
    home.run(&["run", "spin-app", "exit", "12"]).code(12);
    let v: serde_json::Value = serde_json::from_str(&home.run(&["inspect", "--json", "spin-app"]).stdout).unwrap();
    assert_eq!(v["image"]["format"], "spin");
    home.run(&["run", "html-app"]).code(126).stderr_has("unsupported image: config media type text/html");
}

/// Puts a compat image (docker-style config with Entrypoint/Cmd, tar+gzip layers) in the store.
fn add_compat_image(home: &Home, name: &str, entrypoint: &str, cmd: &[&str], layers: &[Vec<u8>]) {
    home.run(&["images"]).code(0);
    let root = home.path().join("images");
    let config = serde_json::json!({
        "architecture": "wasm", "os": "wasip1",
        "config": { "Entrypoint": [entrypoint], "Cmd": cmd, "Env": ["FROM_CONFIG=yes"] },
        "rootfs": { "type": "layers", "diff_ids": [] },
    })
    .to_string();
    let config_digest = put_blob(&root, config.as_bytes());
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put_blob(&root, l), "size": l.len() }))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": layer_descs,
        "annotations": { "module.wasm.image/variant": "compat" },
    })
    .to_string();
    tag_by_hand(&root, name, &manifest);
}

#[test]
fn compat_tar_images_run_without_writing_their_layers() {
    // SECURITY-CASES D26: `../` and absolute entries, a symlink-then-file, all in the layers.
    let home = Home::new();
    let probe = std::fs::read(PROBE_MODULE).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let hostile = tar_gz(&[
        ("../../../../tmp/wasmbox-compat-escape", b"pwned"),
        ("/tmp/wasmbox-compat-absolute", b"pwned"),
        ("link:bin/evil", b"/etc"),
        ("bin/evil/passwd", b"pwned"),
        ("app.wasm", b"an older layer's app, replaced below"),
    ]);
    let top = tar_gz(&[("./app.wasm", &probe)]);
    add_compat_image(&home, "compat", "/app.wasm", &["exit", "13"], &[hostile, top]);
    let out =
        Out::from(home.cmd().current_dir(cwd.path()).args(["run", "--pull", "never", "compat"]).output().unwrap());
    out.code(13).no_panic();
    home.run(&["run", "compat", "env"]).code(0).stdout_has("FROM_CONFIG=yes");
    assert!(!std::path::Path::new("/tmp/wasmbox-compat-escape").exists());
    assert!(!std::path::Path::new("/tmp/wasmbox-compat-absolute").exists());
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "something was unpacked into the cwd");
    let v: serde_json::Value = serde_json::from_str(&home.run(&["inspect", "--json", "compat"]).stdout).unwrap();
    assert_eq!(v["image"]["format"], "compat");

    // The entrypoint as a symlink, a missing entrypoint, a `..` entrypoint: refused.
    add_compat_image(&home, "linked", "/app.wasm", &[], &[tar_gz(&[("link:app.wasm", b"/etc/passwd")])]);
    home.run(&["run", "linked"]).code(126).stderr_has("not a regular file").no_panic();
    add_compat_image(&home, "empty", "/app.wasm", &[], &[tar_gz(&[("other.wasm", &probe)])]);
    home.run(&["run", "empty"]).code(126).stderr_has("not in the image layers");
    add_compat_image(&home, "sneaky", "/../app.wasm", &[], &[tar_gz(&[("app.wasm", &probe)])]);
    home.run(&["run", "sneaky"]).code(126).stderr_has("not a plain path");
}

#[test]
fn compat_gzip_bomb_is_cut_off() {
    let home = Home::new();
    let zeros = vec![0u8; 300 << 20];
    let bomb = tar_gz(&[("padding.bin", &zeros), ("app.wasm", &std::fs::read(PROBE_MODULE).unwrap())]);
    drop(zeros);
    assert!(bomb.len() < 2 << 20, "the bomb should be small compressed ({} bytes)", bomb.len());
    add_compat_image(&home, "bomb", "/app.wasm", &[], &[bomb]);
    let start = std::time::Instant::now();
    home.run(&["run", "bomb"]).code(126).stderr_has("gzip bomb").no_panic();
    assert!(start.elapsed() < std::time::Duration::from_secs(30), "took {:?}", start.elapsed());
}
