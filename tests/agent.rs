//! The edge agent against the real registry (docker-registry) with real signatures: updates,
//! rollbacks, refusal of unsigned versions, offline updates from a saved layout, `kill -9` at
//! each step of an update, and HTTP health checks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::registry::{Registry, free_port};
use common::{HTTP_PROBE_COMPONENT, Home, Out, PROBE_MODULE};
use serde_json::Value;

fn with_password(home: &Home, args: &[&str]) -> Out {
    Out::from(home.cmd().env("WASMBOX_PASSWORD", "wasmbox-pw").args(args).output().unwrap())
}

/// A signing key and the policy that trusts only it.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new(home: &Home) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("fleet");
        with_password(home, &["key", "generate", "--output-prefix", prefix.to_str().unwrap()]).code(0);
        Keys { dir }
    }

    fn key(&self) -> String {
        self.dir.path().join("fleet.key").display().to_string()
    }

    fn policy(&self) -> String {
        format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}"#,
            self.dir.path().join("fleet.pub").display()
        )
    }
}

/// Builds `wasm` with `extra` wasmbox.toml lines as `reference`, pushes it and, with `keys`,
/// signs it; returns the manifest digest.
fn release(build: &Home, reference: &str, wasm: &str, extra: &str, keys: Option<&Keys>) -> String {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("wasmbox.toml"),
        format!("name = \"app\"\nversion = \"1\"\nwasm = \"{wasm}\"\n{extra}\n"),
    )
    .unwrap();
    let digest = build.run(&["build", "-t", reference, app.path().to_str().unwrap()]).code(0).stdout.trim().to_string();
    build.run(&["push", "-q", reference]).code(0);
    if let Some(keys) = keys {
        with_password(build, &["sign", "--key", &keys.key(), reference]).code(0);
    }
    digest
}

fn short(digest: &str) -> &str {
    &digest[7..19]
}

/// A running `wasmbox agent`; killed (SIGKILL) when dropped.
struct AgentProc {
    child: Child,
    log: PathBuf,
}

impl AgentProc {
    fn start(home: &Home, config: &Path, stall: Option<&str>) -> AgentProc {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = home.path().join(format!("agent-test-{n}.log"));
        let mut cmd = home.cmd();
        cmd.args(["agent", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(stage) = stall {
            cmd.env("WASMBOX_AGENT_STALL", stage);
        }
        AgentProc { child: cmd.spawn().unwrap(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `needle` (panics with the log after `within`).
    fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent never said `{needle}`; its log:\n{}", self.log());
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agent status --json`, the app named `name`.
fn status(home: &Home, name: &str) -> Value {
    let out = home.run(&["agent", "status", "--json"]);
    out.code(0);
    let apps: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    apps.into_iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no app {name} in {}", out.stdout))
}

/// Waits until the first pass is done (`agent status` shows the app with a check).
fn first_pass(home: &Home, agent: &AgentProc, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let state: Value = std::fs::read(home.path().join("agent/state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if state["syncs"].as_u64().unwrap_or(0) >= 1 && !state["apps"][name].is_null() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no sync pass finished; the agent's log:\n{}", agent.log());
}

/// Containers of `app` in the daemon: (name, status).
fn versions(home: &Home, app: &str) -> Vec<(String, String)> {
    let out = home.run(&["ps", "-a", "--json"]);
    out.code(0);
    let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    list.iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with(&format!("{app}-")))
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

fn assert_only_running(home: &Home, app: &str, digest: &str) {
    let v = versions(home, app);
    assert_eq!(v, vec![(format!("{app}-{}", short(digest)), "running".to_string())], "containers of {app}");
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("poll_interval = \"1h\"\n{body}")).unwrap();
    path
}

fn sensor_app(name: &str, image: &str) -> String {
    format!("[[app]]\nname = \"{name}\"\nimage = \"{image}\"\nrestart = \"always\"\nhealth = {{ running = \"1s\" }}\n")
}

/// Tagged images in the store have every blob, and no temp file is left among the blobs.
fn store_is_whole(home: &Home) {
    let index: Value = serde_json::from_slice(&std::fs::read(home.path().join("images/index.json")).unwrap()).unwrap();
    let blobs = home.path().join("images/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()), "stray file {name} among the blobs");
    }
    for m in index["manifests"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(blobs.join(&digest[7..])).unwrap()).unwrap();
        for blob in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().unwrap()) {
            let d = blob["digest"].as_str().unwrap();
            assert!(blobs.join(&d[7..]).is_file(), "{digest} lacks {d}");
        }
    }
}

#[test]
fn updates_roll_back_a_crashing_version_and_never_start_an_unsigned_one() {
    let registry = Registry::start();
    let build = Home::new();
    let keys = Keys::new(&build);
    let device = Home::new();
    std::fs::write(device.path().join("policy.json"), keys.policy()).unwrap();
    let image = format!("{}/edge/sensor:stable", registry.addr);
    let tick = |ms: u32| format!("args = [\"tick\", \"0\", \"{ms}\"]");

    let v1 = release(&build, &image, PROBE_MODULE, &tick(200), Some(&keys));
    let config = write_config(device.path(), &sensor_app("sensor", &image));
    let agent = AgentProc::start(&device, &config, None);
    first_pass(&device, &agent, "sensor");
    let s = status(&device, "sensor");
    assert_eq!((s["current"].as_str(), s["state"].as_str()), (Some(v1.as_str()), Some("running")), "{s}");
    assert_only_running(&device, "sensor", &v1);

    // v2 is signed but exits at start: rolled back to v1 within the health window.
    let v2 = release(&build, &image, PROBE_MODULE, "args = [\"exit\", \"3\"]", Some(&keys));
    let started = Instant::now();
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0).stdout_has("sensor");
    assert!(started.elapsed() < Duration::from_secs(20), "the rollback took {:?}", started.elapsed());
    let s = status(&device, "sensor");
    assert_eq!(s["current"].as_str(), Some(v1.as_str()), "{s}");
    let why = s["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains(short(&v2)) && why.contains("failed its health check") && why.contains("exit code 3"),
        "{why}"
    );
    assert!(why.contains(&format!("rolled back to {}", short(&v1))), "{why}");
    assert_only_running(&device, "sensor", &v1);
    // The failed digest is not retried while the reference still names it.
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    assert_only_running(&device, "sensor", &v1);
    assert_eq!(agent.log().matches(&format!("resolves to {}", short(&v2))).count(), 1, "{}", agent.log());

    // v3 is good: current v3, previous v1 (the last good one, not the failed v2).
    let v3 = release(&build, &image, PROBE_MODULE, &tick(300), Some(&keys));
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "sensor");
    assert_eq!((s["current"].as_str(), s["previous"].as_str()), (Some(v3.as_str()), Some(v1.as_str())), "{s}");
    assert_eq!(s["last_error"], Value::Null, "{s}");
    assert_only_running(&device, "sensor", &v3);

    // v4 is not signed: never started, v3 keeps running, the reason is recorded.
    let v4 = release(&build, &image, PROBE_MODULE, &tick(400), None);
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "sensor");
    assert_eq!(s["current"].as_str(), Some(v3.as_str()), "{s}");
    let why = s["last_error"].as_str().unwrap_or_default();
    assert!(why.contains(short(&v4)) && why.contains("not verified") && why.contains("no signatures"), "{why}");
    assert_only_running(&device, "sensor", &v3);
    assert!(!agent.log().contains(&format!("started {}", short(&v4))), "{}", agent.log());

    // Only current + previous stay in the store (tags and blobs); the store is whole.
    let images = device.run(&["images"]).code(0).stdout.clone();
    for (d, kept) in [(&v1, true), (&v2, false), (&v3, true), (&v4, false)] {
        assert_eq!(images.contains(short(d)), kept, "{} in\n{images}", short(d));
        assert_eq!(device.stored_blobs().contains(d), kept, "manifest {d} stored");
    }
    store_is_whole(&device);

    // The text status names the app, its digests and the error.
    let text = device.run(&["agent", "status"]).code(0).stdout.clone();
    assert!(text.contains("running (pid") && text.contains(short(&v3)) && text.contains("not verified"), "{text}");
}

#[test]
fn an_offline_device_updates_from_a_saved_layout_and_keeps_running_without_sources() {
    let registry = Registry::start();
    let build = Home::new();
    let keys = Keys::new(&build);
    let image = format!("{}/edge/sensor:stable", registry.addr);
    let v1 = release(&build, &image, PROBE_MODULE, "args = [\"tick\", \"0\", \"200\"]", Some(&keys));
    let device = Home::new();
    std::fs::write(device.path().join("policy.json"), keys.policy()).unwrap();
    let usb = tempfile::tempdir().unwrap();
    let config = write_config(
        device.path(),
        &format!("[[source]]\noci_layout = \"{}\"\n{}", usb.path().display(), sensor_app("sensor", &image)),
    );
    let agent = AgentProc::start(&device, &config, None);
    first_pass(&device, &agent, "sensor");
    assert_eq!(status(&device, "sensor")["current"].as_str(), Some(v1.as_str()));

    // A depot pulls the signed v5 under the same policy (keeping its signatures) and saves it
    // to the stick; then the registry goes away.
    let v5 = release(&build, &image, PROBE_MODULE, "args = [\"tick\", \"0\", \"500\"]", Some(&keys));
    let hello = format!("{}/edge/hello:1", registry.addr);
    let hello_digest = release(&build, &hello, PROBE_MODULE, "args = [\"hello\"]", Some(&keys));
    let depot = Home::new();
    std::fs::write(depot.path().join("policy.json"), keys.policy()).unwrap();
    depot.run(&["pull", "-q", &image]).code(0);
    depot.run(&["pull", "-q", &hello]).code(0);
    depot.run(&["image", "save", &image, "-o", usb.path().to_str().unwrap()]).code(0);
    let tar = usb.path().join("hello.tar");
    depot.run(&["image", "save", &hello, "-o", tar.to_str().unwrap()]).code(0);
    drop(registry);

    // A stick whose copy of v5 was altered: not imported, nothing of it stored, v1 keeps running.
    let index: Value = serde_json::from_slice(&std::fs::read(usb.path().join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == v5.as_str()).unwrap().clone();
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], image.as_str());
    let manifest_path = usb.path().join("blobs/sha256").join(&v5[7..]);
    let good = std::fs::read(&manifest_path).unwrap();
    let mut bad = good.clone();
    *bad.last_mut().unwrap() = b' ';
    std::fs::write(&manifest_path, &bad).unwrap();
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "sensor");
    assert_eq!(s["current"].as_str(), Some(v1.as_str()), "{s}");
    assert!(s["last_error"].as_str().unwrap_or_default().contains("does not match its digest"), "{s}");
    assert!(!device.stored_blobs().contains(&v5), "an altered manifest was stored");
    assert_only_running(&device, "sensor", &v1);
    std::fs::write(&manifest_path, &good).unwrap();

    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "sensor");
    assert_eq!((s["current"].as_str(), s["previous"].as_str()), (Some(v5.as_str()), Some(v1.as_str())), "{s}");
    assert_only_running(&device, "sensor", &v5);
    assert!(agent.log().contains("from oci_layout"), "{}", agent.log());

    // The stick is gone and the registry too: nothing is stopped, the sources are reported.
    std::fs::remove_dir_all(usb.path().join("blobs")).unwrap();
    std::fs::remove_file(usb.path().join("index.json")).unwrap();
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "sensor");
    let why = s["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("sources unreachable") && why.contains(&registry_name(&image)), "{why}");
    assert_eq!(s["current"].as_str(), Some(v5.as_str()));
    assert_only_running(&device, "sensor", &v5);

    // `image load` of a saved tar carries the signatures: the policy passes offline.
    let other = Home::new();
    std::fs::write(other.path().join("policy.json"), keys.policy()).unwrap();
    other.run(&["image", "load", "-i", tar.to_str().unwrap()]).code(0).stdout_has(&hello_digest);
    other.run(&["run", "--pull", "never", &hello]).code(0).stdout_has("hello from a wasmbox guest");
    // Without its signatures (a plain copy of the blobs) the same image is refused.
    let bare = Home::new();
    std::fs::write(bare.path().join("policy.json"), keys.policy()).unwrap();
    bare.run(&["image", "load", "-i", tar.to_str().unwrap()]).code(0);
    std::fs::remove_dir_all(bare.path().join("images/signatures")).unwrap();
    bare.run(&["run", "--pull", "never", &hello]).code(126).stderr_has("policy refused");
}

fn registry_name(image: &str) -> String {
    image.split('/').next().unwrap().to_string()
}

#[test]
fn kill_9_at_any_step_of_an_update_leaves_one_verified_version_running() {
    let registry = Registry::start();
    let keys = Keys::new(&Home::new());
    // The steps are independent (a device, a build home and a repository each) and mostly wait
    // on the agent, so they run side by side.
    std::thread::scope(|s| {
        for stage in ["fetch", "start", "health", "rollback"] {
            let (registry, keys) = (&registry, &keys);
            s.spawn(move || kill_9_at(registry, keys, stage));
        }
    });
}

/// One step of `kill_9_at_any_step_of_an_update_leaves_one_verified_version_running`.
fn kill_9_at(registry: &Registry, keys: &Keys, stage: &str) {
    let build = Home::new();
    let device = Home::new();
    std::fs::write(device.path().join("policy.json"), keys.policy()).unwrap();
    let image = format!("{}/edge/{stage}:stable", registry.addr);
    let v1 = release(&build, &image, PROBE_MODULE, "args = [\"tick\", \"0\", \"200\"]", Some(keys));
    let config = write_config(device.path(), &sensor_app("app", &image));
    let agent = AgentProc::start(&device, &config, None);
    first_pass(&device, &agent, "app");
    agent.kill9();
    // A rollback needs a version that fails; the other steps update to a good one.
    let v2_args = if stage == "rollback" { "args = [\"exit\", \"3\"]" } else { "args = [\"tick\", \"0\", \"300\"]" };
    let v2 = release(&build, &image, PROBE_MODULE, v2_args, Some(keys));

    let stalled = AgentProc::start(&device, &config, Some(stage));
    stalled.wait_for(&format!("stalling at {stage}"), Duration::from_secs(60));
    stalled.kill9();
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(device.path().join("agent/state.json")).unwrap()).unwrap();
    assert_eq!(recorded["apps"]["app"]["pending"]["stage"], stage, "{recorded}");

    let agent = AgentProc::start(&device, &config, None);
    agent.wait_for("resuming after an interrupted update", Duration::from_secs(30));
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "app");
    let expect = if stage == "rollback" { &v1 } else { &v2 };
    assert_eq!(s["current"].as_str(), Some(expect.as_str()), "after kill -9 at {stage}: {s}\n{}", agent.log());
    assert_only_running(&device, "app", expect);
    let state: Value = serde_json::from_slice(&std::fs::read(device.path().join("agent/state.json")).unwrap()).unwrap();
    assert_eq!(state["apps"]["app"]["pending"], Value::Null, "{state}");
    if stage == "rollback" {
        assert_eq!(state["apps"]["app"]["failed"].as_str(), Some(v2.as_str()));
        assert!(s["last_error"].as_str().unwrap_or_default().contains("exit code 3"), "{s}");
    } else {
        assert_eq!(s["previous"].as_str(), Some(v1.as_str()), "{s}");
    }
    // It is a verified version: the daemon's own policy check passes at a restart.
    device.run(&["restart", &format!("app-{}", short(expect))]).code(0);
    assert_only_running(&device, "app", expect);
    store_is_whole(&device);
}

/// `GET path` on loopback `port`: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    Some((status, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
}

#[test]
fn an_http_app_whose_health_path_fails_is_rolled_back_and_its_port_answers_again() {
    let registry = Registry::start();
    let build = Home::new();
    let device = Home::new();
    let image = format!("{}/edge/web:stable", registry.addr);
    let port = free_port();
    let v1 = release(&build, &image, HTTP_PROBE_COMPONENT, "env = { VERSION = \"v1\" }", None);
    let config = write_config(
        device.path(),
        &format!(
            "[[app]]\nname = \"web\"\nimage = \"{image}\"\nport = \"127.0.0.1:{port}\"\nhealth = {{ http = \"/health\", timeout = \"3s\" }}\n"
        ),
    );
    let agent = AgentProc::start(&device, &config, None);
    first_pass(&device, &agent, "web");
    assert_eq!(status(&device, "web")["current"].as_str(), Some(v1.as_str()), "{}", agent.log());
    assert_eq!(get(port, "/env/VERSION"), Some((200, "v1".to_string())));

    let v2 = release(&build, &image, HTTP_PROBE_COMPONENT, "env = { VERSION = \"v2\", PROBE_HEALTH = \"fail\" }", None);
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    let s = status(&device, "web");
    let why = s["last_error"].as_str().unwrap_or_default();
    assert!(why.contains(short(&v2)) && why.contains("GET /health answered 503"), "{why}");
    assert_eq!(s["current"].as_str(), Some(v1.as_str()));
    assert_only_running(&device, "web", &v1);
    assert_eq!(get(port, "/env/VERSION"), Some((200, "v1".to_string())));

    // One agent per home; `agent sync` and `status` find it through the home alone.
    let second = device.run(&["agent", "--config", config.to_str().unwrap()]);
    second.code(125).stderr_has("an agent is already running");
    drop(agent);
    device.run(&["agent", "sync"]).code(125).stderr_has("no agent is running");
    device.run(&["agent", "status"]).code(0).stdout_has("not running");

    // A bad file is refused whole, with the key named.
    let bad = device.path().join("bad.toml");
    std::fs::write(&bad, "[[app]]\nname = \"web\"\nimage = \"x:1\"\nhelth = {}\n").unwrap();
    let out = device.run(&["agent", "--config", bad.to_str().unwrap()]);
    out.code(125).stderr_has("unknown field `helth`");
}

/// Copies `repo:tag` (manifest, config, layers) from registry `from` to `to`, as `cosign copy`
/// or `skopeo copy` would mirror an image and its `.sig` tag.
fn mirror_tag(from: &Registry, to: &Registry, repo: &str, tag: &str) {
    use common::registry::http_with_headers;
    let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
    let r = http_with_headers(&from.addr, "GET", &format!("/v2/{repo}/manifests/{tag}"), &accept, &[]).unwrap();
    assert_eq!(r.status, 200, "{repo}:{tag}");
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    for blob in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().unwrap()) {
        let d = blob["digest"].as_str().unwrap();
        let b = http_with_headers(&from.addr, "GET", &format!("/v2/{repo}/blobs/{d}"), &[], &[]).unwrap();
        assert_eq!(to.upload_blob(repo, &b.body), d);
    }
    to.put_manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", std::str::from_utf8(&r.body).unwrap());
}

#[test]
fn a_mirror_serves_an_image_signed_for_its_origin_repository() {
    let origin = Registry::start();
    let mirror = Registry::start();
    let build = Home::new();
    let keys = Keys::new(&build);
    let image = format!("{}/edge/sensor:stable", origin.addr);
    // The image asks for more memory than the default: an image may only lower limits.
    let v1 = release(
        &build,
        &image,
        PROBE_MODULE,
        "args = [\"tick\", \"0\", \"200\"]\n[limits]\nmemory = \"4G\"",
        Some(&keys),
    );
    mirror_tag(&origin, &mirror, "edge/sensor", "stable");
    mirror_tag(&origin, &mirror, "edge/sensor", &format!("sha256-{}.sig", &v1[7..]));
    // The origin is out of reach; the mirror, asked first, has the image and its signature,
    // which names the origin's repository — the one the policy checks.
    drop(origin);
    let device = Home::new();
    std::fs::write(device.path().join("policy.json"), keys.policy()).unwrap();
    let config = write_config(
        device.path(),
        &format!("[[source]]\nregistry = \"{}\"\n{}", mirror.addr, sensor_app("sensor", &image)),
    );
    let agent = AgentProc::start(&device, &config, None);
    first_pass(&device, &agent, "sensor");
    let s = status(&device, "sensor");
    assert_eq!(s["current"].as_str(), Some(v1.as_str()), "{s}\n{}", agent.log());
    assert!(agent.log().contains(&format!("from registry {}", mirror.addr)), "{}", agent.log());
    assert_only_running(&device, "sensor", &v1);
    let ps: Vec<Value> = serde_json::from_str(&device.run(&["ps", "--json"]).code(0).stdout).unwrap();
    assert_eq!(ps[0]["spec"]["memory_bytes"], 1u64 << 30, "{}", ps[0]);
}

fn skopeo(args: &[&str]) {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (Debian package skopeo) is needed; scripts/deps.sh installs it");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn skopeo_archives_load_and_skopeo_layouts_feed_a_detached_agent_that_follows_its_file() {
    let registry = Registry::start();
    let build = Home::new();
    let hello = format!("{}/edge/hello:1", registry.addr);
    let hello_digest = release(&build, &hello, PROBE_MODULE, "args = [\"hello\"]", None);
    let ticker = format!("{}/edge/ticker:stable", registry.addr);
    let v1 = release(&build, &ticker, PROBE_MODULE, "args = [\"tick\", \"0\", \"200\"]", None);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("hello.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{hello}"),
        &format!("oci-archive:{}:{hello}", archive.display()),
    ]);
    let usb = work.path().join("usb");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{ticker}"),
        &format!("oci:{}:stable", usb.display()),
    ]);
    drop(registry);

    // skopeo's oci-archive (named by the whole reference) loads and runs.
    let other = Home::new();
    other.run(&["image", "load", "-i", archive.to_str().unwrap()]).code(0).stdout_has(&hello_digest);
    other.run(&["run", "--pull", "never", &hello]).code(0).stdout_has("hello from a wasmbox guest");

    // skopeo's oci: layout names the image by its tag alone: an agent source all the same.
    let device = Home::new();
    let layout_source = format!("[[source]]\noci_layout = \"{}\"\n", usb.display());
    let config = write_config(device.path(), &format!("{layout_source}{}", sensor_app("ticker", &ticker)));
    let out = device.run(&["agent", "--config", config.to_str().unwrap(), "--detach"]);
    out.code(0);
    let pid: i32 = out.stdout.trim().parse().unwrap();
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: SIGKILL to the agent this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _kill = Kill(pid);
    device.run(&["agent", "status"]).code(0).stdout_has(&format!("running (pid {pid})"));
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    assert_eq!(status(&device, "ticker")["current"].as_str(), Some(v1.as_str()));
    assert_only_running(&device, "ticker", &v1);

    // The file changes: a second app appears, then goes; a broken file is reported and the
    // last good one kept.
    let two = format!("{layout_source}{}{}", sensor_app("ticker", &ticker), sensor_app("ticker2", &ticker));
    std::fs::write(&config, format!("poll_interval = \"1h\"\n{two}")).unwrap();
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0).stdout_has("ticker2");
    assert_only_running(&device, "ticker2", &v1);
    assert_only_running(&device, "ticker", &v1);
    write_config(device.path(), &format!("{layout_source}{}", sensor_app("ticker", &ticker)));
    device.run(&["agent", "sync", "--timeout", "60s"]).code(0);
    assert_eq!(versions(&device, "ticker2"), vec![], "a removed app's container stays");
    std::fs::write(&config, "poll_interval = \"1h\"\n[[app]]\nname = \"ticker\"\n").unwrap();
    let synced = device.run(&["agent", "sync", "--timeout", "60s"]);
    synced.code(0).stdout_has("configuration error").stdout_has("missing field `image`");
    assert_only_running(&device, "ticker", &v1);
    assert!(std::fs::read_to_string(device.path().join("agent/agent.log")).unwrap().contains("keeping the last good"));
}
