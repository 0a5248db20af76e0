//! `wasmbox serve`: a real server on loopback, a real (raw) HTTP client, a fresh instance per
//! request; failures of one request never affect the next; slow or malformed clients are cut off.

mod common;
use common::registry::http;
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
        let home = Home::new();
        let mut child = home
            .cmd()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("Serving HTTP on http://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_string();
        let log = Arc::new(Mutex::new(String::new()));
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
    let log = server.log.lock().unwrap().clone();
    for line in ["GET / 200", "GET /trap 500", "GET /spin 504", "GET /bomb 500", "POST /echo 200"] {
        assert!(log.contains(line), "access log lacks {line:?}:\n{log}");
    }
    assert!(log.contains("memory limit of 64 MiB"), "{log}");
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
            Ok(0) | Err(_) => closed += 1,
            Ok(_) => closed += 1, // a 408 before closing also counts as cut off
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
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let response = slow.join().unwrap();
    assert_eq!((response.status, response.body.as_slice()), (200, &b"slept\n"[..]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
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
