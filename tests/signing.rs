//! Trusted images: keys, `sign`, `verify` and the policy, against the real cosign (Debian 13's
//! 2.5, installed by scripts/deps.sh) and a real registry, plus a hostile registry the test
//! controls (SECURITY-CASES G).

mod common;
use common::registry::{Answer, FakeRegistry, Registry, sha256_digest};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmbox_trust::keys::PrivateKey;
use wasmbox_trust::payload;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn cosign_binary() -> PathBuf {
    let path = std::env::var_os("WASMBOX_COSIGN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/wasmbox-test/cosign-trixie/cosign")
    });
    assert!(path.is_file(), "cosign not found at {}: scripts/deps.sh installs it", path.display());
    path
}

/// The real cosign, offline: no transparency log, plain HTTP to the loopback registry.
fn cosign(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(cosign_binary())
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", "cosign-pw")
        .env("HOME", dir)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Out::from(out)
}

/// Builds the probe module as REF and pushes it; returns the manifest digest.
fn push_image(home: &Home, reference: &str) -> String {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("wasmbox.toml"),
        format!("name = \"probe\"\nversion = \"1\"\nwasm = \"{PROBE_MODULE}\"\nargs = [\"hello\"]\n"),
    )
    .unwrap();
    let digest = home.run(&["build", "-t", reference, app.path().to_str().unwrap()]).code(0).stdout.trim().to_string();
    home.run(&["push", "-q", reference]).code(0);
    digest
}

fn with_password(home: &Home, args: &[&str]) -> Out {
    Out::from(home.cmd().env("WASMBOX_PASSWORD", "wasmbox-pw").args(args).output().unwrap())
}

fn write_policy(home: &Home, policy: &str) {
    std::fs::write(home.path().join("policy.json"), policy).unwrap();
}

/// Forgets the local copy of REF (tags and blobs), so the next `run` must pull.
fn forget(home: &Home, reference: &str) {
    home.run(&["rmi", reference]).code(0);
    home.run(&["image", "prune"]).code(0);
}

#[test]
fn cosign_and_wasmbox_read_each_others_keys_and_signatures() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let home = Home::new();
    let reference = format!("{}/team/app:1", registry.addr);
    let digest = push_image(&home, &reference);
    let pinned = format!("{}/team/app@{digest}", registry.addr);

    // Key files both ways: cosign's load in wasmbox, wasmbox's in cosign.
    cosign(keys.path(), &["generate-key-pair"]).code(0);
    let prefix = keys.path().join("wb");
    with_password(&home, &["key", "generate", "--output-prefix", prefix.to_str().unwrap()]).code(0);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(keys.path().join("wb.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(keys.path().join("wb.key"))
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    );
    let (cosign_key, cosign_pub) = (keys.path().join("cosign.key"), keys.path().join("cosign.pub"));
    let (wb_key, wb_pub) = (keys.path().join("wb.key"), keys.path().join("wb.pub"));

    // Nothing signed yet: verify says so with exit 1.
    home.run(&["verify", "--key", cosign_pub.to_str().unwrap(), &reference]).code(1).stderr_has("no signatures");

    // cosign signs → wasmbox verifies.
    cosign(
        keys.path(),
        &["sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes", &pinned],
    )
    .code(0);
    let v = home.run(&["verify", "--key", cosign_pub.to_str().unwrap(), &reference]);
    v.code(0).stdout_has(&digest).stdout_has("cosign.pub (cosign signature)");
    home.run(&["verify", "--key", wb_pub.to_str().unwrap(), &reference]).code(1);

    // wasmbox signs with its own key and with cosign's → cosign verifies both; cosign's
    // signature is kept (re-signing adds, never drops).
    let cosign_pw =
        |args: &[&str]| Out::from(home.cmd().env("COSIGN_PASSWORD", "cosign-pw").args(args).output().unwrap());
    with_password(&home, &["sign", "--key", wb_key.to_str().unwrap(), &reference]).code(0).stdout_has(&digest);
    cosign_pw(&["sign", "--key", cosign_key.to_str().unwrap(), &reference]).code(0);
    for key in ["wb.pub", "cosign.pub"] {
        cosign(keys.path(), &["verify", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", &pinned])
            .code(0)
            .stdout_has(&digest);
    }
    let both =
        home.run(&["verify", "--key", wb_pub.to_str().unwrap(), "--key", cosign_pub.to_str().unwrap(), &reference]);
    both.code(0).stdout_has("wb.pub").stdout_has("cosign.pub");

    // cosign signs with wasmbox's key (the key file loads in cosign).
    let out = Command::new(cosign_binary())
        .args(["sign", "--key", "wb.key", "--tlog-upload=false", "--allow-http-registry", "--yes", &pinned])
        .current_dir(keys.path())
        .env("COSIGN_PASSWORD", "wasmbox-pw")
        .env("HOME", keys.path())
        .output()
        .unwrap();
    Out::from(out).code(0);

    // A cosign attestation in the new bundle format (an OCI referrer) is read and verified.
    std::fs::write(keys.path().join("predicate.json"), r#"{"built":"by a test"}"#).unwrap();
    cosign(
        keys.path(),
        &[
            "attest",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "--allow-http-registry",
            "--yes",
            "--new-bundle-format",
            "--predicate",
            "predicate.json",
            "--type",
            "https://example.com/built",
            &pinned,
        ],
    )
    .code(0);
    home.run(&["verify", "--key", cosign_pub.to_str().unwrap(), &reference]).code(0).stdout_has("(sigstore bundle)");

    // A policy naming cosign's key lets the cosign-signed image be pulled and run.
    write_policy(
        &home,
        &format!(r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}"#, cosign_pub.display()),
    );
    forget(&home, &reference);
    home.run(&["pull", &reference]).code(0).stderr_has("verified");
    home.run(&["run", &reference]).code(0).stdout_has("hello from a wasmbox guest");

    // Key problems: a wrong password, a private key others can read.
    Out::from(
        home.cmd()
            .env("WASMBOX_PASSWORD", "nope")
            .args(["sign", "--key", wb_key.to_str().unwrap(), &reference])
            .output()
            .unwrap(),
    )
    .code(125)
    .stderr_has("wrong password");
    std::fs::set_permissions(&wb_key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    with_password(&home, &["sign", "--key", wb_key.to_str().unwrap(), &reference]).code(125).stderr_has("chmod 600");
}

#[test]
fn the_policy_is_enforced_at_pull_run_serve_and_every_daemon_start() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let home = Home::new();
    let prefix = keys.path().join("team");
    with_password(&home, &["key", "generate", "--output-prefix", prefix.to_str().unwrap()]).code(0);
    let team_key = keys.path().join("team.key");
    let signed = format!("{}/team/signed:1", registry.addr);
    let unsigned = format!("{}/team/unsigned:1", registry.addr);
    let legacy = format!("{}/legacy/app:1", registry.addr);
    let signed_digest = push_image(&home, &signed);
    push_image(&home, &unsigned);
    push_image(&home, &legacy);
    with_password(&home, &["sign", "--key", team_key.to_str().unwrap(), &signed]).code(0);
    let policy = format!(
        r#"{{"default":[{{"type":"reject"}}],
            "transports":{{"docker":{{
              "{r}/team":[{{"type":"sigstoreSigned","keyPath":"{k}"}}],
              "{r}/legacy/app":[{{"type":"insecureAcceptAnything"}}]}}}}}}"#,
        r = registry.addr,
        k = keys.path().join("team.pub").display()
    );
    write_policy(&home, &policy);
    for r in [&signed, &unsigned, &legacy] {
        forget(&home, r);
    }

    // Unsigned: refused at pull, before any layer is stored, naming reference, digest and scope.
    let refused = home.run(&["pull", &unsigned]);
    refused.code(126).stderr_has("policy refused").stderr_has("team/unsigned").stderr_has("has no signatures");
    refused.stderr_has(&format!("scope transports.docker \"{}/team\"", registry.addr));
    assert!(home.run(&["images", "--json"]).stdout.trim() == "[]");
    home.run(&["run", &unsigned]).code(126).stderr_has("policy refused");
    // The scope that applies, with its requirement.
    home.run(&["policy", &unsigned]).code(0).stdout_has("/team\"").stdout_has("team.pub");
    // A more specific scope wins over `default: reject`; other repositories fall to the default.
    home.run(&["run", &legacy]).code(0);
    home.run(&["policy", &format!("{}/other/x:1", registry.addr)]).code(0).stdout_has("scope:   default");

    // Signed: pulled, run, served, run detached.
    home.run(&["pull", &signed]).code(0).stderr_has("verified");
    home.run(&["run", &signed]).code(0);
    let detached = home.run(&["run", "-d", "--name", "kept", &signed, "tick", "1", "10"]);
    detached.code(0);
    let wait_exited = |name: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let out = home.run(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
            if out.stdout.contains(&format!("{name} exited")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name} did not exit");
    };
    wait_exited("kept");

    // The key leaves the policy: with the registry gone (offline), the stored image is refused
    // by `run`, and by the daemon when the container starts again (its own check).
    drop(registry);
    let other = keys.path().join("other");
    with_password(&home, &["key", "generate", "--output-prefix", other.to_str().unwrap()]).code(0);
    write_policy(&home, &policy.replace("team.pub", "other.pub"));
    home.run(&["run", &signed]).code(126).stderr_has("policy refused").stderr_has(&signed_digest[7..19]);
    home.run(&["start", "kept"]).code(126).stderr_has("policy refused");
    home.run(&["serve", "--listen", "127.0.0.1:0", &signed]).code(126).stderr_has("policy refused");
    home.run(&["run", "-d", &signed]).code(126);

    // Back to the right key: it runs again; a tampered stored signature is caught offline.
    write_policy(&home, &policy);
    home.run(&["run", &signed]).code(0);
    let stored = home.path().join("images/signatures").join(format!("{}.json", &signed_digest[7..]));
    let text = std::fs::read_to_string(&stored).unwrap();
    std::fs::write(&stored, text.replacen("\"signature\":\"ME", "\"signature\":\"MF", 1)).unwrap();
    home.run(&["run", &signed]).code(126).stderr_has("none valid");

    // A malformed policy fails closed for images (125, naming the file); local files still run.
    write_policy(&home, r#"{"default":[{"type":"signedBy"}]}"#);
    home.run(&["run", &signed]).code(125).stderr_has("invalid policy").stderr_has("signedBy");
    home.run(&["run", PROBE_MODULE, "hello"]).code(0);
}

/// Signature layers: (payload, base64 signature).
type Layers = Vec<(Vec<u8>, String)>;

/// A registry the test controls, serving one image and whatever signatures the case needs.
struct Hostile {
    fake: FakeRegistry,
    digest: String,
    reference: String,
}

fn hostile() -> Hostile {
    let fake = FakeRegistry::start(Duration::from_secs(120));
    let (manifest, _, _) = fake.serve_probe_image("evil/app");
    let digest = sha256_digest(manifest.as_bytes());
    let reference = format!("{}/evil/app:1", fake.addr);
    Hostile { fake, digest, reference }
}

impl Hostile {
    /// Serves a `.sig` manifest with one layer per (payload, signature).
    fn serve_signatures(&self, layers: &[(Vec<u8>, String)]) {
        let mut descriptors = Vec::new();
        for (payload_bytes, signature) in layers {
            let d = sha256_digest(payload_bytes);
            self.fake
                .set(&format!("/v2/evil/app/blobs/{d}"), Answer::ok("application/octet-stream", payload_bytes.clone()));
            descriptors.push(serde_json::json!({
                "mediaType": payload::MEDIA_TYPE, "digest": d, "size": payload_bytes.len(),
                "annotations": { payload::SIGNATURE_ANNOTATION: signature },
            }));
        }
        let config = b"{}".to_vec();
        let config_digest = sha256_digest(&config);
        self.fake.set(&format!("/v2/evil/app/blobs/{config_digest}"), Answer::ok("application/octet-stream", config));
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2 },
            "layers": descriptors,
        });
        self.serve_sig_manifest(Answer::ok(MANIFEST, manifest.to_string().into_bytes()));
    }

    fn serve_sig_manifest(&self, answer: Answer) {
        self.fake.set(&format!("/v2/evil/app/manifests/{}.sig", self.digest.replace(':', "-")), answer);
    }
}

#[test]
fn hostile_signatures_and_registries_are_refused_in_bounded_time() {
    let h = hostile();
    let home = Home::new();
    let key = PrivateKey::generate();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("trusted.pub"), key.public("trusted").to_pem()).unwrap();
    write_policy(
        &home,
        &format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}"#,
            keys.path().join("trusted.pub").display()
        ),
    );
    let repo = format!("{}/evil/app", h.fake.addr);
    let sign = |p: &[u8]| key.sign(p);
    let good = payload::encode(&repo, &h.digest);
    let pull = || {
        let started = Instant::now();
        let out = home.run(&["pull", &h.reference]);
        assert!(started.elapsed() < Duration::from_secs(20), "bounded time");
        out.no_panic();
        assert!(home.run(&["images", "--json"]).stdout.trim() == "[]", "nothing was tagged: {out:?}");
        out
    };

    let other_digest = payload::encode(&repo, &format!("sha256:{}", "0".repeat(64)));
    let other_repo = payload::encode(&format!("{}/evil/other", h.fake.addr), &h.digest);
    let mut tampered = good.clone();
    tampered[20] ^= 1;
    let wrong_key = PrivateKey::generate();
    let cases: Vec<(&str, Layers, &str)> = vec![
        ("another digest", vec![(other_digest.clone(), sign(&other_digest))], "another digest"),
        ("another repository", vec![(other_repo.clone(), sign(&other_repo))], "another repository"),
        ("a wrong key", vec![(good.clone(), wrong_key.sign(&good))], "no trusted key"),
        ("a tampered payload", vec![(tampered, sign(&good))], "no trusted key"),
        ("garbage signature", vec![(good.clone(), "!!!".into())], "no trusted key"),
    ];
    for (what, layers, expect) in cases {
        h.serve_signatures(&layers);
        let out = pull();
        assert_eq!(out.code, 126, "{what}: {out:?}");
        assert!(out.stderr.contains(expect) && out.stderr.contains(&h.digest[7..19]), "{what}: {}", out.stderr);
    }

    // Thousands of signature layers: refused outright, whatever they contain.
    let many: Layers = (0..1001).map(|_| (good.clone(), sign(&good))).collect();
    h.serve_signatures(&many);
    pull().code(125).stderr_has("more than 1000");

    // Thousands of referrers (the OCI 1.1 referrers API): refused the same way.
    let referrers: Vec<serde_json::Value> = (0..1001)
        .map(|i| serde_json::json!({"mediaType": MANIFEST, "digest": format!("sha256:{i:064x}"), "size": 10}))
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": referrers});
    let referrers_path = format!("/v2/evil/app/referrers/{}", h.digest);
    h.fake.set(&referrers_path, Answer::ok("application/vnd.oci.image.index.v1+json", index.to_string().into_bytes()));
    h.serve_signatures(&[(good.clone(), sign(&good))]);
    pull().code(125).stderr_has("1001 referrers");
    // A referrers API that fails (500) is an error too, not "no bundles".
    h.fake.set(
        &referrers_path,
        Answer { status: 500, content_type: "application/json".into(), body: b"{}".to_vec(), dribble: None },
    );
    pull().code(125).stderr_has("HTTP 500");
    h.fake.routes.lock().unwrap().remove(&referrers_path);

    // A signature manifest over the cap, and a payload layer over its cap.
    h.serve_sig_manifest(Answer::ok(MANIFEST, vec![b' '; 5 << 20]));
    pull().code(126).stderr_has("limit");
    let huge = vec![b'x'; 300 * 1024];
    h.serve_signatures(&[(huge.clone(), sign(&huge))]);
    pull().code(126).stderr_has("limit");

    // A registry that fails on the signature tag: an error naming the status, never "unsigned".
    for status in [401, 500] {
        h.serve_sig_manifest(Answer {
            status,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
            dribble: None,
        });
        let out = pull();
        assert_eq!(out.code, 125, "{status}: {out:?}");
        assert!(out.stderr.contains(&status.to_string()), "{status}: {}", out.stderr);
    }

    // A registry that stalls on the signature tag: an error after the idle timeout, not a hang.
    let stall = Answer {
        status: 200,
        content_type: MANIFEST.into(),
        body: b"{ ".to_vec(),
        dribble: Some((1, Duration::from_secs(60))),
    };
    h.serve_sig_manifest(stall);
    let started = Instant::now();
    home.run(&["pull", &h.reference]).code(125).stderr_has("registry");
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());

    // No signature tag at all (404): unsigned, refused by the policy.
    h.fake.routes.lock().unwrap().remove(&format!("/v2/evil/app/manifests/{}.sig", h.digest.replace(':', "-")));
    pull().code(126).stderr_has("has no signatures");

    // The honest signature among junk: accepted, and the image runs.
    h.serve_signatures(&[(other_digest.clone(), sign(&other_digest)), (good.clone(), sign(&good))]);
    home.run(&["pull", &h.reference]).code(0);
    home.run(&["run", &h.reference, "exit", "3"]).code(3);
}
