//! Images through a real registry (Debian's docker-registry, CNCF distribution 2.8): push,
//! pull, run by reference, foreign layouts, basic auth; and SECURITY-CASES D against a
//! hostile fake registry.

mod common;
use common::registry::{Answer, FakeRegistry, Registry, sha256_digest};
use common::*;
use std::time::Duration;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn blob_names(home: &Home) -> Vec<String> {
    match std::fs::read_dir(home.path().join("images/blobs/sha256")) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => vec![],
    }
}

/// Every stored blob's content hashes to its name; temp files (from a killed pull) excepted.
fn assert_blobs_match_names(home: &Home) {
    for name in blob_names(home).into_iter().filter(|n| !n.starts_with(".tmp")) {
        let bytes = std::fs::read(home.path().join("images/blobs/sha256").join(&name)).unwrap();
        assert_eq!(sha256_digest(&bytes), format!("sha256:{name}"));
    }
}

#[test]
fn build_push_rmi_pull_run_keeps_the_digest() {
    let registry = Registry::start();
    let home = Home::new();
    let reference = format!("{}/team/probe:1.0", registry.addr);
    let built = home.run(&["build", "-t", &reference, PROBE_COMPONENT]).code(0).stdout.trim().to_string();
    let pushed = home.run(&["push", &reference]);
    pushed.code(0).stderr_has("uploaded");
    assert_eq!(pushed.stdout.trim(), built);
    // A second push finds the blobs already there.
    home.run(&["push", &reference]).code(0).stderr_has("already in the registry");

    home.run(&["rmi", &reference]).code(0);
    home.run(&["image", "prune"]).code(0);
    assert!(blob_names(&home).is_empty());
    let pulled = home.run(&["pull", &reference]);
    pulled.code(0).stderr_has("downloaded");
    assert_eq!(pulled.stdout.trim(), built);
    assert_blobs_match_names(&home);
    home.run(&["run", "--pull", "never", &reference, "exit", "42"]).code(42);

    // `run` pulls what is missing (the default policy), into a fresh store.
    let other = Home::new();
    other.run(&["run", &reference, "hello"]).code(0).stdout_has("hello from a wasmbox guest").stderr_has("pulling");
    // By digest, pinned.
    let other = Home::new();
    let pinned = format!("{}/team/probe@{built}", registry.addr);
    other.run(&["pull", &pinned]).code(0);
    other.run(&["run", &pinned, "exit", "7"]).code(7);
    // Never pull, and a name the registry does not have.
    Home::new().run(&["run", "--pull", "never", &reference]).code(127);
    Home::new().run(&["pull", &format!("{}/team/nope:1", registry.addr)]).code(127).stderr_has("manifest unknown");
}

#[test]
fn foreign_layouts_and_indexes_pull_and_run() {
    let registry = Registry::start();
    let wasm = std::fs::read(PROBE_COMPONENT).unwrap();
    let push_image = |repo: &str, tag: &str, config_type: &str, config: &str, layer_type: &str| {
        let config_digest = registry.upload_blob(repo, config.as_bytes());
        let layer_digest = registry.upload_blob(repo, &wasm);
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": { "mediaType": config_type, "digest": config_digest, "size": config.len() },
            "layers": [{ "mediaType": layer_type, "digest": layer_digest, "size": wasm.len() }],
        })
        .to_string();
        let digest = registry.put_manifest(repo, tag, MANIFEST, &manifest);
        (digest, manifest.len())
    };
    push_image(
        "runwasi/app",
        "v1",
        "application/vnd.oci.image.config.v1+json",
        r#"{"architecture":"wasm","os":"wasip2","rootfs":{"type":"layers","diff_ids":[]}}"#,
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    );
    push_image(
        "spin/app",
        "v1",
        "application/vnd.fermyon.spin.application.v1+config",
        r#"{"spin_lock_version":1,"components":[]}"#,
        "application/vnd.wasm.content.layer.v1+wasm",
    );
    let (inner, inner_size) = push_image(
        "multi/app",
        "wasm-only",
        "application/vnd.wasm.config.v0+json",
        r#"{"architecture":"wasm","os":"wasip2","layerDigests":[]}"#,
        "application/wasm",
    );
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{ "mediaType": MANIFEST, "digest": inner, "size": inner_size, "platform": { "architecture": "wasm", "os": "wasip2" } }],
    })
    .to_string();
    registry.put_manifest("multi/app", "latest", "application/vnd.oci.image.index.v1+json", &index);

    // A compat image: the module in a tar+gzip layer, named by the config's Entrypoint.
    let layer = tar_gz(&[("bin/app.wasm", &std::fs::read(PROBE_MODULE).unwrap())]);
    let config =
        r#"{"architecture":"wasm","os":"wasip1","config":{"Entrypoint":["/bin/app.wasm"],"Cmd":["exit","24"]}}"#;
    let config_digest = registry.upload_blob("compat/app", config.as_bytes());
    let layer_digest = registry.upload_blob("compat/app", &layer);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len() }],
        "annotations": { "module.wasm.image/variant": "compat" },
    })
    .to_string();
    registry.put_manifest("compat/app", "v1", MANIFEST, &manifest);

    let home = Home::new();
    home.run(&["run", &format!("{}/compat/app:v1", registry.addr)]).code(24);
    home.run(&["run", &format!("{}/runwasi/app:v1", registry.addr), "exit", "21"]).code(21);
    home.run(&["run", &format!("{}/spin/app:v1", registry.addr), "exit", "22"]).code(22);
    home.run(&["run", &format!("{}/multi/app", registry.addr), "exit", "23"]).code(23);
    let v: serde_json::Value =
        serde_json::from_str(&home.run(&["inspect", "--json", &format!("{}/runwasi/app:v1", registry.addr)]).stdout)
            .unwrap();
    assert_eq!(v["image"]["format"], "runwasi");
    assert_blobs_match_names(&home);
}

#[test]
fn basic_auth_login_push_pull() {
    let registry = Registry::start_with_auth(Some(("alice", "wonderland")));
    let home = Home::new();
    let reference = format!("{}/private/probe:1", registry.addr);
    home.run(&["build", "-t", &reference, PROBE_MODULE]).code(0);
    home.run(&["push", &reference]).code(125).stderr_has("wasmbox login");

    let login = |password: &str| {
        let mut child = home
            .cmd()
            .args(["login", &registry.addr, "-u", "alice", "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        Out::from(child.wait_with_output().unwrap())
    };
    login("wrong").code(125).stderr_has("registry");
    assert!(!home.path().join("auth.json").exists(), "failed login stored credentials");
    login("wonderland").code(0).stderr_has("login succeeded");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.path().join("auth.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    home.run(&["push", &reference]).code(0);
    home.run(&["rmi", &reference]).code(0);
    home.run(&["pull", &reference]).code(0);
    home.run(&["run", &reference, "exit", "4"]).code(4);
    // Credentials from docker's config.json work too.
    let other = Home::new();
    let docker = tempfile::tempdir().unwrap();
    std::fs::write(
        docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6d29uZGVybGFuZA=="}}}}}}"#, registry.addr),
    )
    .unwrap();
    Out::from(other.cmd().env("DOCKER_CONFIG", docker.path()).args(["pull", &reference]).output().unwrap()).code(0);
}

/// A fake registry serving one image whose parts the test may spoil.
struct Hostile {
    fake: FakeRegistry,
    manifest: String,
    layer_digest: String,
    wasm: Vec<u8>,
}

fn hostile() -> Hostile {
    let fake = FakeRegistry::start(Duration::from_secs(60));
    let (manifest, layer_digest, wasm) = fake.serve_probe_image("evil/app");
    Hostile { fake, manifest, layer_digest, wasm }
}

#[test]
fn altered_blobs_and_documents_never_reach_the_store() {
    // D22: the registry returns altered layer bytes (same length).
    let h = hostile();
    let reference = format!("{}/evil/app:1", h.fake.addr);
    let mut altered = h.wasm.clone();
    altered[200] ^= 0xff;
    h.fake.set(&format!("/v2/evil/app/blobs/{}", h.layer_digest), Answer::ok("application/octet-stream", altered));
    let home = Home::new();
    home.run(&["pull", &reference]).code(125).stderr_has("registry").no_panic();
    let layer_name = h.layer_digest.strip_prefix("sha256:").unwrap().to_string();
    assert!(!blob_names(&home).contains(&layer_name), "altered layer stored under its digest");
    assert!(blob_names(&home).iter().all(|n| !n.starts_with(".tmp")), "temp file left: {:?}", blob_names(&home));
    assert!(home.run(&["images", "--json"]).stdout.trim() == "[]", "an image was tagged");

    // A longer blob than its descriptor says (D24).
    let mut longer = h.wasm.clone();
    longer.extend_from_slice(b"trailing junk");
    h.fake.set(&format!("/v2/evil/app/blobs/{}", h.layer_digest), Answer::ok("application/octet-stream", longer));
    home.run(&["pull", &reference]).code(125).no_panic();
    assert!(!blob_names(&home).contains(&layer_name));

    // A blob over the configured cap is refused before any byte of it is fetched.
    home.run(&["pull", "--max-blob-size", "64K", &reference]).code(126).stderr_has("limit").no_panic();
    assert!(!blob_names(&home).contains(&layer_name));

    // The honest image pulls and runs.
    h.fake
        .set(&format!("/v2/evil/app/blobs/{}", h.layer_digest), Answer::ok("application/octet-stream", h.wasm.clone()));
    home.run(&["run", &reference, "exit", "6"]).code(6);
    assert_blobs_match_names(&home);
}

#[test]
fn hostile_manifests_are_refused() {
    let h = hostile();
    let home = Home::new();
    let serve = |tag: &str, content_type: &str, body: Vec<u8>| {
        h.fake.set(&format!("/v2/evil/app/manifests/{tag}"), Answer::ok(content_type, body));
        format!("{}/evil/app:{tag}", h.fake.addr)
    };
    // D24: a manifest over 4 MiB.
    let mut big: serde_json::Value = serde_json::from_str(&h.manifest).unwrap();
    big["annotations"] = serde_json::json!({ "padding": "x".repeat(5 << 20) });
    let r = serve("big", MANIFEST, big.to_string().into_bytes());
    home.run(&["pull", &r]).code(126).stderr_has("limit").no_panic();
    // D25: both `manifests` and `layers`.
    let mut hybrid: serde_json::Value = serde_json::from_str(&h.manifest).unwrap();
    hybrid["manifests"] = serde_json::json!([]);
    let r = serve("hybrid", MANIFEST, hybrid.to_string().into_bytes());
    home.run(&["pull", &r]).code(126).stderr_has("ambiguous").no_panic();
    // D25: unknown media type.
    let mut odd: serde_json::Value = serde_json::from_str(&h.manifest).unwrap();
    odd["mediaType"] = serde_json::json!("application/x-evil");
    let r = serve("odd", MANIFEST, odd.to_string().into_bytes());
    home.run(&["pull", &r]).code_not(0).no_panic();
    // D25: served with a Content-Type that contradicts the document.
    let r = serve("liar", "application/vnd.docker.distribution.manifest.v2+json", h.manifest.clone().into_bytes());
    home.run(&["pull", &r])
        .code(126)
        .stderr_has("served as application/vnd.docker.distribution.manifest.v2+json")
        .no_panic();
    // D24: an endless manifest is cut at the cap while streaming (served slowly, 8 MiB).
    let mut endless = Answer::ok(MANIFEST, vec![b' '; 8 << 20]);
    endless.dribble = Some((64 << 10, Duration::from_millis(1)));
    h.fake.set("/v2/evil/app/manifests/endless", endless);
    let start = std::time::Instant::now();
    home.run(&["pull", &format!("{}/evil/app:endless", h.fake.addr)]).code(126).stderr_has("limit").no_panic();
    assert!(start.elapsed() < Duration::from_secs(20));
    // D23: a descriptor digest that is a path, and a negative size.
    let escape = h.manifest.replacen(&h.layer_digest, "sha256:../../../../etc/passwd", 1);
    let r = serve("escape", MANIFEST, escape.into_bytes());
    home.run(&["pull", &r]).code(126).no_panic();
    let negative = h.manifest.replacen(&format!("\"size\":{}", h.wasm.len()), "\"size\":-1", 1);
    let r = serve("negative", MANIFEST, negative.into_bytes());
    home.run(&["pull", &r]).code(126).no_panic();
    assert!(blob_names(&home).iter().all(|n| !n.contains('/') && !n.starts_with(".tmp")));
    assert!(!home.path().join("etc").exists());
    assert_eq!(home.run(&["images", "--json"]).stdout.trim(), "[]");
}

#[test]
fn kill_during_pull_leaves_a_usable_store() {
    // D27: kill -9 while a slow registry is mid-way through the layer.
    let h = hostile();
    let reference = format!("{}/evil/app:1", h.fake.addr);
    let mut slow = Answer::ok("application/octet-stream", h.wasm.clone());
    slow.dribble = Some((4096, Duration::from_millis(20)));
    h.fake.set(&format!("/v2/evil/app/blobs/{}", h.layer_digest), slow);
    let home = Home::new();
    let mut child = home.cmd().args(["pull", &reference]).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let layer_name = h.layer_digest.strip_prefix("sha256:").unwrap().to_string();
    assert!(!blob_names(&home).contains(&layer_name), "a partial layer landed under its digest");
    assert_blobs_match_names(&home);

    h.fake
        .set(&format!("/v2/evil/app/blobs/{}", h.layer_digest), Answer::ok("application/octet-stream", h.wasm.clone()));
    home.run(&["pull", &reference]).code(0);
    home.run(&["run", &reference, "hello"]).code(0).stdout_has("hello");
    assert_blobs_match_names(&home);
    // prune clears what the killed pull left behind.
    home.run(&["image", "prune"]).code(0);
    assert!(blob_names(&home).iter().all(|n| !n.starts_with(".tmp")));
}

#[test]
fn concurrent_pulls_of_one_image_are_safe() {
    let registry = Registry::start();
    let publisher = Home::new();
    let reference = format!("{}/team/shared:1", registry.addr);
    publisher.run(&["build", "-t", &reference, PROBE_COMPONENT]).code(0);
    publisher.run(&["push", &reference]).code(0);

    let home = Home::new();
    let children: Vec<_> = (0..4)
        .map(|_| home.cmd().args(["pull", "-q", &reference]).stdout(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    let digests: Vec<String> = children
        .into_iter()
        .map(|c| Out::from(c.wait_with_output().unwrap()).code(0).stdout.trim().to_string())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    assert_blobs_match_names(&home);
    assert!(blob_names(&home).iter().all(|n| !n.starts_with(".tmp")), "temp files left: {:?}", blob_names(&home));
    let images: serde_json::Value = serde_json::from_str(&home.run(&["images", "--json"]).stdout).unwrap();
    assert_eq!(images.as_array().unwrap().len(), 1);
    home.run(&["run", &reference, "exit", "8"]).code(8);
}
