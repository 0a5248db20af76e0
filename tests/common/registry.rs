//! Registry fixtures: a real CNCF distribution registry (Debian's `docker-registry`) on a free
//! loopback port, a raw HTTP client for uploading hand-made layouts, and a hostile fake
//! registry whose answers a test controls. Everything listens on 127.0.0.1 and stops by itself.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A real registry process; killed when dropped.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with_auth(None)
    }

    /// With `Some((user, password))`, the registry requires HTTP basic auth (htpasswd, bcrypt).
    pub fn start_with_auth(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (Debian package apache2-utils) is needed; scripts/test.sh installs it");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config += &format!("auth:\n  htpasswd:\n    realm: wasmbox-test\n    path: {}\n", htpasswd.display());
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) is needed; scripts/test.sh installs it");
        let registry = Registry { child, addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = http(&registry.addr, "GET", "/v2/", None, &[])
                && (r.status == 200 || r.status == 401)
            {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not come up on {}", registry.addr);
    }

    /// Uploads a blob (POST to open an upload, PUT the bytes with the digest) and returns its digest.
    pub fn upload_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let r = http(&self.addr, "POST", &format!("/v2/{repo}/blobs/uploads/"), None, &[]).unwrap();
        assert_eq!(r.status, 202, "upload start: {}", String::from_utf8_lossy(&r.body));
        let location = r.headers.get("location").expect("upload location").clone();
        let path = location.strip_prefix(&format!("http://{}", self.addr)).unwrap_or(&location).to_string();
        let sep = if path.contains('?') { '&' } else { '?' };
        let r =
            http(&self.addr, "PUT", &format!("{path}{sep}digest={digest}"), Some("application/octet-stream"), bytes)
                .unwrap();
        assert_eq!(r.status, 201, "blob upload: {}", String::from_utf8_lossy(&r.body));
        digest
    }

    /// Puts a manifest (or index) document under `tag`.
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, doc: &str) -> String {
        let r =
            http(&self.addr, "PUT", &format!("/v2/{repo}/manifests/{tag}"), Some(media_type), doc.as_bytes()).unwrap();
        assert_eq!(r.status, 201, "manifest put: {}", String::from_utf8_lossy(&r.body));
        sha256_digest(doc.as_bytes())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// One HTTP/1.1 request with `Connection: close` (enough for a registry on loopback).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<Response> {
    let headers: Vec<(&str, &str)> = content_type.map(|ct| ("Content-Type", ct)).into_iter().collect();
    http_with_headers(addr, method, path, &headers, body)
}

/// [`http`] with arbitrary request headers.
pub fn http_with_headers(
    addr: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in extra {
        req += &format!("{name}: {value}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body)?;
    if headers.get("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Ok(Response { status, headers, body })
}

/// Decodes a chunked body (`SIZE\r\nDATA\r\n ... 0\r\n\r\n`).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap_or("0").trim(), 16).unwrap_or(0);
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    out
}

/// What the fake registry answers for one path.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Send the body in chunks with this pause between them, without a Content-Length (a slow,
    /// stalling or endless registry).
    pub dribble: Option<(usize, Duration)>,
}

impl Answer {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Answer {
        Answer { status: 200, content_type: content_type.into(), body, dribble: None }
    }
}

/// A registry that serves exactly what the test put in `routes` (and 200 on `/v2/`).
pub struct FakeRegistry {
    pub addr: String,
    pub routes: Arc<Mutex<HashMap<String, Answer>>>,
}

impl FakeRegistry {
    pub fn start(lifetime: Duration) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let shared = routes.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + lifetime;
            while Instant::now() < end {
                match listener.accept() {
                    Ok((s, _)) => {
                        let routes = shared.clone();
                        std::thread::spawn(move || serve_one(s, &routes, end));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeRegistry { addr, routes }
    }

    pub fn set(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.to_string(), answer);
    }

    /// Serves the image `manifest_digest` stored under the wasmbox home `home` as `edge/app:1`,
    /// with one byte in the middle of its precompiled layer flipped (same length, other code);
    /// returns that layer's digest.
    pub fn serve_with_tampered_precompiled_layer(&self, home: &std::path::Path, manifest_digest: &str) -> String {
        let blob =
            |d: &str| std::fs::read(home.join("images/blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
        let manifest = blob(manifest_digest);
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        self.set(
            "/v2/edge/app/manifests/1",
            Answer::ok("application/vnd.oci.image.manifest.v1+json", manifest.clone()),
        );
        let config = m["config"]["digest"].as_str().unwrap();
        self.set(&format!("/v2/edge/app/blobs/{config}"), Answer::ok("application/octet-stream", blob(config)));
        let mut tampered = String::new();
        for layer in m["layers"].as_array().unwrap() {
            let d = layer["digest"].as_str().unwrap();
            let mut bytes = blob(d);
            if layer["mediaType"] == "application/vnd.wasmbox.precompiled.v1" {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                tampered = d.to_string();
            }
            self.set(&format!("/v2/edge/app/blobs/{d}"), Answer::ok("application/octet-stream", bytes));
        }
        tampered
    }

    /// Serves the probe module as the image `REPO:1` (a CNCF TAG Wasm manifest); returns the
    /// manifest, the layer digest and the Wasm, for tests that spoil one of them.
    pub fn serve_probe_image(&self, repo: &str) -> (String, String, Vec<u8>) {
        let wasm = std::fs::read(wasmbox_test_programs::PROBE_MODULE).unwrap();
        let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
        let (config_digest, layer_digest) = (sha256_digest(&config), sha256_digest(&wasm));
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.wasm.config.v0+json", "digest": config_digest, "size": config.len() },
            "layers": [{ "mediaType": "application/wasm", "digest": layer_digest, "size": wasm.len() }],
        })
        .to_string();
        self.set(&format!("/v2/{repo}/blobs/{config_digest}"), Answer::ok("application/octet-stream", config));
        self.set(&format!("/v2/{repo}/blobs/{layer_digest}"), Answer::ok("application/octet-stream", wasm.clone()));
        self.set(
            &format!("/v2/{repo}/manifests/1"),
            Answer::ok("application/vnd.oci.image.manifest.v1+json", manifest.clone().into_bytes()),
        );
        (manifest, layer_digest, wasm)
    }
}

fn serve_one(s: TcpStream, routes: &Mutex<HashMap<String, Answer>>, end: Instant) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let answer = if path == "/v2/" {
        Answer::ok("application/json", b"{}".to_vec())
    } else {
        routes.lock().unwrap().get(&path).cloned().unwrap_or(Answer {
            status: 404,
            content_type: "application/json".into(),
            body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
            dribble: None,
        })
    };
    let mut s = s;
    // A dribbled body has no Content-Length (it ends when the connection closes), so a client
    // cannot refuse it up front: only a cap on what it reads protects it.
    let length = match answer.dribble {
        None => format!("Content-Length: {}\r\n", answer.body.len()),
        Some(_) => String::new(),
    };
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\n{length}Connection: close\r\n\r\n",
        answer.status, answer.content_type
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    match answer.dribble {
        None => {
            let _ = s.write_all(&answer.body);
        }
        Some((chunk, pause)) => {
            for part in answer.body.chunks(chunk) {
                if Instant::now() > end || s.write_all(part).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        }
    }
}
