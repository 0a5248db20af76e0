//! `wasmbox serve`: a real server on loopback, a real (raw) HTTP client, a fresh instance per
//! request; failures of one request never affect the next; slow or malformed clients are cut off.

mod common;
use common::registry::{Answer, FakeRegistry, http, http_with_headers};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `wasmbox serve`; SIGKILLed when dropped (tests that shut down gracefully take it).
struct Server {
    child: Option<Child>,
    addr: String,
    log: Arc<Mutex<String>>,
    _home: Home,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_in(Home::new(), args)
    }

    /// Starts the server with an existing home (to serve images stored there).
    fn start_in(home: Home, args: &[&str]) -> Server {
        let cmd = home.cmd();
        Server::start_cmd(home, cmd, args)
    }

    /// Starts `cmd` (wasmbox with `home`'s environment) as the server.
    fn start_cmd(home: Home, mut cmd: std::process::Command, args: &[&str]) -> Server {
        let mut child =
            cmd.arg("serve").args(["--listen", "127.0.0.1:0"]).args(args).stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        // Debug logs (WASMBOX_LOG) may come before the line with the address.
        let mut before = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("serve ended before listening: {before}");
            }
            if let Some(addr) = line.trim().strip_prefix("Serving HTTP on http://").and_then(|s| s.strip_suffix('/')) {
                break addr.to_string();
            }
            if !line.contains("DEBUG") && !line.contains("INFO") {
                let _ = child.kill();
                panic!("unexpected line before the address: {line:?}");
            }
            before.push_str(&line);
        };
        let log = Arc::new(Mutex::new(before));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server { child: Some(child), addr, log, _home: home }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http(&self.addr, "GET", path, None, &[]).unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    /// The access log once it holds every one of `needles`, waited for up to 5 s: the reader
    /// thread copies stderr behind the responses, so a line may land after its request returned.
    fn log_with(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log.lock().unwrap().clone();
            match needles.iter().find(|n| !log.contains(*n)) {
                None => return log,
                Some(missing) => assert!(Instant::now() < deadline, "access log lacks {missing:?}:\n{log}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn healthy(&self) {
        assert_eq!(self.get("/"), (200, "hello from wasmbox serve\n".to_string()), "server not healthy");
    }

    /// Sends raw bytes and returns what came back until the server closed or 3 s passed.
    fn raw(&self, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn every_request_gets_a_fresh_instance_and_failures_stay_contained() {
    let server = Server::start(&["--timeout", "1s", "-m", "64M", HTTP_PROBE_COMPONENT]);
    server.healthy();
    let r = http(&server.addr, "POST", "/echo", Some("text/plain"), b"streamed back").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"streamed back"[..]));

    // Isolation (SECURITY-CASES B17): what one request leaves in memory, the next never sees.
    assert_eq!(server.get("/remember/s3cret").0, 200);
    assert_eq!(server.get("/recall"), (200, String::new()));

    assert_eq!(server.get("/trap").0, 500);
    server.healthy();
    let start = Instant::now();
    assert_eq!(server.get("/spin").0, 504);
    assert!(start.elapsed() < Duration::from_secs(5), "deadline took {:?}", start.elapsed());
    server.healthy();
    assert_eq!(server.get("/bomb").0, 500);
    server.healthy();
    server.log_with(&[
        "GET / 200",
        "GET /trap 500",
        "GET /spin 504",
        "GET /bomb 500",
        "POST /echo 200",
        "memory limit of 64 MiB",
    ]);
}

/// SECURITY-CASES B17 with memory kept resident (issue 17): a slot that keeps pages between
/// requests resets them by copying, and pages past the kept size are still given back; either
/// way the next request on that slot sees none of what the last one wrote. One worker, so every
/// request reuses the same slot.
#[test]
fn memory_kept_resident_is_still_fresh_for_every_request() {
    for keep in ["0", "4M", "64M"] {
        let server = Server::start(&["--keep-resident", keep, "--workers", "1", HTTP_PROBE_COMPONENT]);
        for round in 0..3 {
            let (status, marked) = server.get("/scribble/16");
            assert_eq!(status, 200);
            let marked: usize = marked.trim().parse().unwrap();
            // 16 MiB from an allocation that need not start on a page boundary.
            assert!(marked >= 16 * 256 - 1, "the probe marked only {marked} pages");
            assert_eq!(server.get("/scan"), (200, "0\n".to_string()), "keep {keep}, round {round}");
            assert_eq!(server.get("/remember/s3cret").0, 200);
            assert_eq!(server.get("/recall"), (200, String::new()), "keep {keep}, round {round}");
        }
    }
}

/// What `--keep-resident` is for (issue 17): a reused slot's memory stays mapped, so the next
/// request takes no page faults to touch it again; with `0` every request faults its pages
/// back in. Counted as the server's minor faults over 200 requests (one worker, one slot).
#[test]
fn memory_kept_resident_spares_each_request_its_page_faults() {
    let faults = |keep: &str| {
        let server = Server::start(&["--keep-resident", keep, "--workers", "1", HTTP_PROBE_COMPONENT]);
        server.healthy();
        let pid = server.child.as_ref().unwrap().id();
        let before = minor_faults(pid);
        for _ in 0..200 {
            server.healthy();
        }
        minor_faults(pid) - before
    };
    let (kept, given_back) = (faults("16M"), faults("0"));
    assert!(given_back >= 400, "without keeping, each request should fault its pages back: {given_back}");
    assert!(kept * 4 < given_back, "keeping memory resident should spare most faults: {kept} vs {given_back}");
}

/// The same with writes in many separate runs (every other page of 8 MiB: 1,024 runs), as
/// CPython makes them. Where the kernel has PAGEMAP_SCAN, the reset copies back only the pages
/// written — wasmtime 48 reported at most 32 runs and decommitted the rest, which then faulted
/// back in on every request (third_party/wasmtime/PATCHES.md) — and the next request on the
/// slot still sees none of them.
#[test]
fn scattered_writes_are_reset_without_faulting_back() {
    let server = Server::start(&["--keep-resident", "16M", "--workers", "1", HTTP_PROBE_COMPONENT]);
    let pid = server.child.as_ref().unwrap().id();
    let scatter = |round: usize| {
        let (status, marked) = server.get("/scatter/8");
        assert_eq!(status, 200);
        let marked: usize = marked.trim().parse().unwrap();
        assert!(marked >= 1023, "round {round}: the probe marked only {marked} pages");
        assert_eq!(server.get("/scan"), (200, "0\n".to_string()), "round {round}: a fresh instance sees them");
    };
    for round in 0..3 {
        scatter(round);
    }
    let before = minor_faults(pid);
    for round in 0..20 {
        scatter(round);
    }
    let per_request = (minor_faults(pid) - before) / 40;
    assert!(per_request < 100, "{per_request} page faults per request: written pages were given back, not reset");
}

/// A process's minor page faults so far (`/proc/PID/stat`, field 10).
fn minor_faults(pid: u32) -> u64 {
    proc_stat(pid).unwrap()[7].parse().unwrap()
}

#[test]
fn concurrency_limit_answers_503_beyond_the_queue() {
    let server = Server::start(&["--max-concurrency", "1", "--queue", "0", "--timeout", "5s", HTTP_PROBE_COMPONENT]);
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/slow/1500", None, &[]).unwrap().status);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(server.get("/").0, 503);
    assert_eq!(slow.join().unwrap(), 200);
    server.healthy();
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let server = Server::start(&["--max-body-size", "1K", "--max-header-size", "16K", HTTP_PROBE_COMPONENT]);
    let r = http(&server.addr, "POST", "/echo", Some("text/plain"), &[b'x'; 4096]).unwrap();
    assert_eq!(r.status, 413);
    server.healthy();
    // 1 MiB of headers (SECURITY-CASES C20): 431 or a close, never a crash.
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..16384 {
        huge.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "a".repeat(48)).as_bytes());
    }
    huge.extend_from_slice(b"\r\n");
    let answer = server.raw(&huge);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Just over the cap: a clean 431.
    let over = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert!(server.raw(over.as_bytes()).starts_with("HTTP/1.1 431"));
    // Both Content-Length and Transfer-Encoding, with a request smuggled behind the chunked
    // end: framed by Transfer-Encoding, the connection closed, the smuggled request never runs.
    let smuggle = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /trap HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = server.raw(smuggle);
    assert!(answer.matches("HTTP/1.1 ").count() <= 1, "a second response: {answer}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400") || answer.contains("connection: close"),
        "{answer}"
    );
    assert!(!server.log.lock().unwrap().contains("/trap"), "the smuggled request ran");
    let answer = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");
    server.healthy();
}

#[test]
fn slow_clients_are_closed_after_the_header_timeout() {
    // SECURITY-CASES C18: many connections dribbling a header byte; a real client still served.
    let server = Server::start(&["--header-timeout", "500ms", HTTP_PROBE_COMPONENT]);
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    server.healthy();
    std::thread::sleep(Duration::from_millis(1500));
    let mut closed = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(b"a");
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => closed += 1,
            // A 408 before closing also counts as cut off.
            Ok(n) if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408") => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            other => panic!("a slow connection was still open: {other:?}"),
        }
    }
    assert_eq!(closed, 50);
    server.healthy();
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    let mut server = Server::start(&["--timeout", "10s", HTTP_PROBE_COMPONENT]);
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/slow/1500", None, &[]).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    let mut child = server.child.take().unwrap();
    assert_eq!(terminate(&mut child, Duration::from_secs(10)), Some(0), "exit 0 after draining");
    let response = slow.join().unwrap();
    assert_eq!((response.status, response.body.as_slice()), (200, &b"slept\n"[..]));
    // The drained request is in the access log.
    server.log_with(&["GET /slow/1500 200"]);
    // No new connections after the signal.
    assert!(TcpStream::connect(&server.addr).is_err());
}

#[test]
fn non_http_artifacts_are_refused() {
    let home = Home::new();
    home.run(&["serve", "--listen", "127.0.0.1:0", PROBE_COMPONENT]).code(126).stderr_has("not an HTTP component");
    home.run(&["serve", "--listen", "127.0.0.1:0", PROBE_MODULE]).code(126).stderr_has("core module");
    home.run(&["serve", "--listen", "127.0.0.1:0", "/no/such.wasm"]).code(127);
    let v: serde_json::Value =
        serde_json::from_str(&home.run(&["inspect", "--json", HTTP_PROBE_COMPONENT]).stdout).unwrap();
    assert_eq!(v["world"], "http-proxy");
}

#[test]
fn bad_serve_input_is_named_and_nothing_starts() {
    let home = Home::new();
    let serve = |args: &[&str]| {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        home.run(&all)
    };
    serve(&["--http-allow", "http://api.example.com", HTTP_HELLO_COMPONENT]).code(125).stderr_has("without a scheme");
    serve(&["--log-format", "xml", HTTP_HELLO_COMPONENT]).code(125).stderr_has("text or json");
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let toml = dir.path().join("wasmbox.toml");
    std::fs::write(&toml, "name = \"x\"\n[[route]]\npath = \"api\"\nwasm = \"a.wasm\"\n").unwrap();
    serve(&[dir_arg]).code_not(0).stderr_has("route `api`").stderr_has("starting with `/`");
    std::fs::write(&toml, "name = \"x\"\n[[route]]\npath = \"/\"\nwasm = \"missing.wasm\"\n").unwrap();
    serve(&[dir_arg]).code(127).stderr_has("missing.wasm");
    let routes = format!("name = \"x\"\n[[route]]\npath = \"/\"\nwasm = \"{PROBE_COMPONENT}\"\n");
    std::fs::write(&toml, routes).unwrap();
    serve(&[dir_arg]).code(126).stderr_has("not an HTTP component");
    // A routed app is not one image.
    home.run(&["build", dir_arg]).code_not(0).stderr_has("wasmbox serve");
}

/// The address of the `--metrics` listener, from its line on stderr.
fn metrics_addr(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log.lock().unwrap().clone();
        if let Some(line) = log.lines().find(|l| l.starts_with("Metrics on http://")) {
            return line.trim_start_matches("Metrics on http://").trim_end_matches("/metrics").to_string();
        }
        assert!(Instant::now() < deadline, "no metrics line in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Waits until the access log has `n` lines that start with `{`.
fn json_lines(server: &Server, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log.lock().unwrap().clone();
        let lines: Vec<serde_json::Value> =
            log.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "expected {n} JSON log lines in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_and_json_access_log_count_every_outcome() {
    let server = Server::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--timeout",
        "1s",
        "-m",
        "32M",
        HTTP_PROBE_COMPONENT,
    ]);
    let metrics = metrics_addr(&server);
    server.healthy();
    server.healthy();
    assert_eq!(server.get("/trap").0, 500);
    assert_eq!(server.get("/spin").0, 504);
    assert_eq!(server.get("/bomb").0, 500);
    let lines = json_lines(&server, 5);
    let hello = &lines[0];
    assert_eq!(
        (hello["method"].as_str(), hello["path"].as_str(), hello["status"].as_u64()),
        (Some("GET"), Some("/"), Some(200))
    );
    assert_eq!(hello["bytes"], 25);
    assert!(hello["instance_ms"].as_f64().unwrap() > 0.0, "{hello}");
    assert!(hello["duration_ms"].as_f64().unwrap() >= hello["instance_ms"].as_f64().unwrap() * 0.5, "{hello}");
    let trap = lines.iter().find(|l| l["path"] == "/trap").unwrap();
    assert!(trap["error"].as_str().unwrap().contains("trapped"), "{trap}");
    let bomb = lines.iter().find(|l| l["path"] == "/bomb").unwrap();
    assert!(bomb["error"].as_str().unwrap().contains("memory limit of 32 MiB"), "{bomb}");

    let r = http(&metrics, "GET", "/metrics", None, &[]).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/plain"));
    let text = String::from_utf8(r.body).unwrap();
    assert_eq!(metric(&text, "wasmbox_http_requests_total{status=\"200\"}"), 2);
    assert_eq!(metric(&text, "wasmbox_http_requests_total{status=\"500\"}"), 2);
    assert_eq!(metric(&text, "wasmbox_http_requests_total{status=\"504\"}"), 1);
    assert_eq!(metric(&text, "wasmbox_http_request_duration_seconds_count"), 5);
    assert_eq!(metric(&text, "wasmbox_http_request_duration_seconds_bucket{le=\"+Inf\"}"), 5);
    // The bomb traps after its growth was refused: a trap (issue 12), its error names the limit.
    assert_eq!(metric(&text, "wasmbox_traps_total"), 2);
    assert_eq!(metric(&text, "wasmbox_limit_kills_total{limit=\"memory\"}"), 0);
    assert_eq!(metric(&text, "wasmbox_limit_kills_total{limit=\"timeout\"}"), 1);
    assert_eq!(metric(&text, "wasmbox_instances_live"), 0);
    assert_eq!(http(&metrics, "GET", "/other", None, &[]).unwrap().status, 404);
}

#[test]
fn live_instances_gauge_counts_a_request_in_flight() {
    let server = Server::start(&["--metrics", "127.0.0.1:0", HTTP_PROBE_COMPONENT]);
    let metrics = metrics_addr(&server);
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/slow/1500", None, &[]).unwrap().status);
    std::thread::sleep(Duration::from_millis(500));
    let text = String::from_utf8(http(&metrics, "GET", "/metrics", None, &[]).unwrap().body).unwrap();
    assert_eq!(metric(&text, "wasmbox_instances_live"), 1);
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn a_directory_routes_by_longest_prefix_with_per_route_limits() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"name = "shop"

[[route]]
path = "/"
wasm = "{probe}"
limits = {{ timeout = "500ms" }}

[[route]]
path = "/hello"
wasm = "{hello}"

[[route]]
path = "/hello/probe"
wasm = "{probe}"
"#,
        probe = HTTP_PROBE_COMPONENT,
        hello = HTTP_HELLO_COMPONENT
    );
    std::fs::write(dir.path().join("wasmbox.toml"), toml).unwrap();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    assert_eq!(server.get("/hello"), (200, "hello world\n".into()));
    assert_eq!(server.get("/hello/anything"), (200, "hello world\n".into()));
    assert_eq!(server.get("/hello/probe/x"), (200, "hello from wasmbox serve\n".into()));
    assert_eq!(server.get("/helloworld"), (200, "hello from wasmbox serve\n".into()));
    server.healthy();
    // The `/` route has its own 500ms deadline (the server default is 30s).
    let start = Instant::now();
    assert_eq!(server.get("/spin").0, 504);
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    server.healthy();
}

#[test]
fn each_route_has_its_own_grants() {
    let upstream = FakeRegistry::start(Duration::from_secs(60));
    upstream.set("/data", Answer::ok("text/plain", b"from upstream".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"name = "two"
env = {{ SHARED = "app" }}

[[route]]
path = "/"
wasm = "{probe}"
grants = {{ env = {{ MODE = "root" }}, http = ["{upstream}"] }}

[[route]]
path = "/b"
wasm = "{probe}"
grants = {{ env = {{ MODE = "b" }} }}
"#,
        probe = HTTP_PROBE_COMPONENT,
        upstream = upstream.addr
    );
    std::fs::write(dir.path().join("wasmbox.toml"), toml).unwrap();
    let server = Server::start(&["-e", "FLAG=cli", dir.path().to_str().unwrap()]);
    assert_eq!(server.get("/-/env/MODE"), (200, "root".into()));
    assert_eq!(server.get("/b/-/env/MODE"), (200, "b".into()));
    assert_eq!(server.get("/b/-/env/SHARED"), (200, "app".into()));
    assert_eq!(server.get("/b/-/env/FLAG"), (200, "cli".into()));
    let url = format!("http://{}/data", upstream.addr);
    let fetch = |path: &str| {
        let r = http_with_headers(&server.addr, "GET", path, &[("x-fetch-url", &url)], b"").unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };
    assert_eq!(fetch("/-/fetch"), (200, "from upstream".into()));
    let (status, body) = fetch("/b/-/fetch");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn a_directory_without_a_root_route_answers_404_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("name = \"api\"\n[[route]]\npath = \"/api\"\nwasm = \"{HTTP_HELLO_COMPONENT}\"\n");
    std::fs::write(dir.path().join("wasmbox.toml"), toml).unwrap();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    assert_eq!(server.get("/api/v1").0, 200);
    assert_eq!(server.get("/").0, 404);
    assert_eq!(server.get("/apix").0, 404);
}

#[test]
fn outbound_http_only_to_listed_destinations() {
    let upstream = FakeRegistry::start(Duration::from_secs(60));
    upstream.set("/data", Answer::ok("text/plain", b"from upstream".to_vec()));
    let fetch = |server: &Server, url: &str| {
        let r = http_with_headers(&server.addr, "GET", "/fetch", &[("x-fetch-url", url)], b"").unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };
    let url = format!("http://{}/data", upstream.addr);

    // Deny by default.
    let server = Server::start(&[HTTP_PROBE_COMPONENT]);
    let (status, body) = fetch(&server, &url);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    drop(server);

    // Listed: allowed, and the route's answer is the upstream's.
    let server = Server::start(&["--http-allow", &upstream.addr, HTTP_PROBE_COMPONENT]);
    assert_eq!(fetch(&server, &url), (200, "from upstream".into()));
    // Another port on the same host is not listed.
    let (status, _) = fetch(&server, "http://127.0.0.1:9/data");
    assert_eq!(status, 502);
    drop(server);

    // `*` allows public hosts only: loopback and metadata addresses must be listed themselves.
    let server = Server::start(&["--http-allow", "*:*", HTTP_PROBE_COMPONENT]);
    for url in [url.as_str(), "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://0.0.0.0:9/"] {
        let (status, body) = fetch(&server, url);
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{url}: {body}");
    }
    server.log_with(&["list the address itself"]);
}

#[test]
fn a_100_mib_response_streams_without_buffering() {
    let server = Server::start(&["-m", "16M", HTTP_PROBE_COMPONENT]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /large/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut total = 0usize;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let pid = server.child.as_ref().unwrap().id();
    let mut peak_rss = 0;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 64 {
            head.extend_from_slice(&buf[..n.min(64)]);
        }
        total += n;
        if total % (8 << 20) < n {
            peak_rss = peak_rss.max(rss_kib(pid));
        }
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    // Chunked framing adds a little; the payload is 100 MiB.
    assert!((100 << 20..(100 << 20) + (1 << 20)).contains(&total), "{total} bytes");
    // The guest has 16 MiB; the server must not hold the whole response either.
    assert!(peak_rss < 200 * 1024, "server RSS reached {peak_rss} KiB while streaming");
    server.healthy();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_stalls_mid_body_is_cut_off() {
    let server = Server::start(&["--body-timeout", "500ms", HTTP_PROBE_COMPONENT]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b").unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("connection read timeout"), "{answer}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    server.healthy();
}

#[test]
fn a_runaway_guest_does_not_starve_requests_on_its_worker() {
    // One worker thread: the spinning instance and the next requests share it, so this only
    // passes if the running guest yields to the others (every epoch tick).
    let server = Server::start(&["--workers", "1", "--timeout", "3s", HTTP_PROBE_COMPONENT]);
    let addr = server.addr.clone();
    let spin = std::thread::spawn(move || http(&addr, "GET", "/spin", None, &[]).unwrap().status);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let start = Instant::now();
        server.healthy();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a request waited {:?} behind a spinning guest",
            start.elapsed()
        );
    }
    assert_eq!(spin.join().unwrap(), 504);
}

#[test]
fn an_image_reference_is_served() {
    let home = Home::new();
    home.run(&["build", "-t", "hello-http:1", HTTP_HELLO_COMPONENT]).code(0);
    let server = Server::start_in(home, &["hello-http:1"]);
    assert_eq!(server.get("/"), (200, "hello world\n".into()));
}

#[test]
fn connections_over_the_cap_are_closed_at_once() {
    let server = Server::start(&["--max-connections", "2", HTTP_PROBE_COMPONENT]);
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a connection over the cap was served: {other:?}"),
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    server.healthy();
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = Server::start(&["--shutdown-timeout", "30s", HTTP_PROBE_COMPONENT]);
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/slow/20000", None, &[]));
    std::thread::sleep(Duration::from_millis(400));
    let mut child = server.child.take().unwrap();
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the first signal should drain, not exit");
    let start = Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(start.elapsed() < Duration::from_secs(3), "the second signal did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    let _ = slow.join();
}

#[test]
fn the_deadline_stops_an_instance_streaming_to_a_slow_reader() {
    let server = Server::start(&["--timeout", "1s", HTTP_PROBE_COMPONENT]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /large/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Read nothing while the deadline passes: the guest is blocked on backpressure.
    std::thread::sleep(Duration::from_millis(2500));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.len() < 50 << 20, "{} bytes arrived: the instance outlived its deadline", rest.len());
    server.log_with(&["timeout of 1s reached"]);
    server.healthy();
}

// ---- Issue 12 (hardening): what an attack on `serve` broke, each as the attacker would try it.

#[test]
fn http_1_0_without_host_is_a_client_error() {
    let server = Server::start(&[HTTP_PROBE_COMPONENT]);
    let answer = server.raw(b"GET / HTTP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"), "{answer}");
    server.healthy();
}

#[test]
fn name_lookups_in_serve_are_limited_to_net_allow_names() {
    // A guest allowed to reach one address must not resolve (and leak data through DNS to) any
    // other name; `localhost` is listed, so it resolves.
    let server = Server::start(&["--net-allow", "localhost:9", HTTP_PROBE_COMPONENT]);
    let (status, body) = server.get("/lookup/exfil-secret.example.com");
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.get("/lookup/localhost");
    assert_eq!(status, 200, "{body}");
    server.healthy();
}

#[test]
fn header_fields_cannot_amplify_host_memory() {
    // Each `fields` a guest builds holds host memory; with -m 16M the handles and the fields
    // cap keep one request's host heap near that size (it was 500 MB).
    let server = Server::start(&["-m", "16M", HTTP_PROBE_COMPONENT]);
    let pid = server.child.as_ref().unwrap().id();
    let before = rss_kib(pid);
    let (status, body) = server.get("/fields/100000");
    // The guest stops at its handle budget (500, a limit) or keeps what the host accepted.
    assert!(status == 500 || body.starts_with("kept"), "{status} {body}");
    let after = rss_kib(pid);
    assert!(after < before + 96 * 1024, "server RSS grew from {before} KiB to {after} KiB");
    server.healthy();
    if status == 500 {
        server.log_with(&["handle limit of"]);
    }
}

#[test]
fn a_guest_blocked_on_a_fifo_is_stopped_and_sigterm_still_exits() {
    // A FIFO in a granted directory blocks the reading thread forever; the deadline must end
    // the request and SIGTERM must still end the server.
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe"));
    let grant = format!("{}:/data", dir.path().display());
    let mut server = Server::start(&["--timeout", "500ms", "-v", &grant, HTTP_PROBE_COMPONENT]);
    let started = Instant::now();
    let r = http(&server.addr, "GET", "/read/data/pipe", None, &[]).unwrap();
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    server.healthy();
    let mut child = server.child.take().unwrap();
    assert_eq!(terminate(&mut child, Duration::from_secs(15)), Some(0), "SIGTERM with a blocked guest thread");
}

#[test]
fn options_after_source_are_refused_not_granted() {
    let home = Home::new();
    home.run(&["serve", "--listen", "127.0.0.1:0", HTTP_PROBE_COMPONENT, "-v", "/"])
        .code(125)
        .stderr_has("unexpected `-v` after SOURCE");
}

#[test]
fn a_small_address_space_gets_a_smaller_instance_pool() {
    // 1000 pooled instance slots reserve terabytes of address space; a device or qemu-user has
    // far less. With 256 GiB (an RLIMIT_AS here), serve still starts, with fewer slots.
    use std::os::unix::process::CommandExt;
    let home = Home::new();
    let mut cmd = home.cmd();
    cmd.env("WASMBOX_LOG", "debug");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 256 << 30, rlim_max: 256 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::start_cmd(home, cmd, &[HTTP_PROBE_COMPONENT]);
    for _ in 0..3 {
        server.healthy();
    }
    server.log_with(&["instance pool sized down"]);
}

/// Issue 17, target 3: a large component not in the cache starts serving at once on Winch's
/// baseline code; Cranelift's code replaces it for later requests. Both tiers answer alike and
/// keep every request in a fresh instance.
#[test]
fn a_large_component_serves_at_once_then_switches_to_optimized_code() {
    let home = Home::new();
    let big = home.path().join("big-probe.wasm");
    std::fs::write(&big, with_code(&std::fs::read(HTTP_PROBE_COMPONENT).unwrap(), 1 << 20)).unwrap();
    let mut cmd = home.cmd();
    cmd.env("WASMBOX_LOG", "debug");
    let server = Server::start_cmd(home, cmd, &[big.to_str().unwrap()]);
    server.log_with(&["compiled the baseline tier"]);
    let checks = |tier: &str| {
        server.healthy();
        assert_eq!(server.get("/remember/s3cret").0, 200);
        assert_eq!(server.get("/recall"), (200, String::new()), "{tier}");
        assert_eq!(server.get("/trap").0, 500, "{tier}");
        server.healthy();
    };
    checks("baseline");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !server.log.lock().unwrap().contains("serving optimized code") {
        assert!(Instant::now() < deadline, "never switched: {}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    checks("optimized");
}

#[test]
fn a_directory_with_dependencies_serves_its_composed_app_and_the_dependency_gets_no_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasmbox_test_programs::HTTP_GREET_COMPONENT, dir.path().join("app.wasm")).unwrap();
    std::fs::copy(wasmbox_test_programs::GREET_RUST_COMPONENT, dir.path().join("greet.wasm")).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/secret.txt"), "s3cret").unwrap();
    let manifest =
        "name = \"greeter\"\nwasm = \"app.wasm\"\n[dependencies]\n\"example:greet/greeter\" = \"greet.wasm\"\n";
    std::fs::write(dir.path().join("wasmbox.toml"), manifest).unwrap();
    let data = format!("{}:/data", dir.path().join("data").display());
    let server = Server::start(&["-e", "GREETING=hi", "-v", &data, dir.path().to_str().unwrap()]);
    let (status, body) = server.get("/Ann");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from rust, Ann! (dependency sees GREETING=absent /data/secret.txt=absent)"), "{body}");

    // Shared in the manifest: the dependency sees them.
    let shared = "name = \"greeter\"\nwasm = \"app.wasm\"\n[dependencies]\n\"example:greet/greeter\" = { source = \"greet.wasm\", grants = { dirs = [\"/data\"], env = [\"GREETING\"] } }\n";
    std::fs::write(dir.path().join("wasmbox.toml"), shared).unwrap();
    let server = Server::start(&["-e", "GREETING=hi", "-v", &data, dir.path().to_str().unwrap()]);
    let (status, body) = server.get("/Bo");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("(dependency sees GREETING=hi /data/secret.txt=s3cret)"), "{body}");
}
