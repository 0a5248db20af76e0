//! The container daemon: `run -d`, `ps`, `logs`, `stop`, `kill`, `rm`, `restart`, `inspect`,
//! `stats` against a real daemon process (auto-started by the CLI) with a real SQLite state,
//! including `kill -9` of the daemon and damaged state (SECURITY-CASES E28–E30).

mod common;
use common::registry::http;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A home whose daemon (started by the first command that needs it) is killed on drop.
struct DaemonHome {
    home: Home,
}

impl DaemonHome {
    fn new() -> DaemonHome {
        DaemonHome { home: Home::new() }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.home.run(args)
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path().join("wasmbox.lock")).ok()?.trim().parse().ok()
    }

    fn kill_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            // SAFETY: sending SIGKILL to a pid we read from our own test home's lock file.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Wait until it is gone, so the next command starts a fresh one. A zombie is gone:
            // it holds no lock or socket any more, and the daemon's reaper (pid 1 here, not the
            // test) may take seconds to collect it.
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && alive(pid) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// `run -d ARGS`, returning the id.
    fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        out.code(0);
        let id = out.stdout.trim().to_string();
        assert_eq!(id.len(), 64, "an id: {out:?}");
        id
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.run(&["inspect", "--json", name]);
        out.code(0);
        serde_json::from_str(&out.stdout).unwrap()
    }

    fn status(&self, name: &str) -> String {
        self.inspect(name)["status"].as_str().unwrap().to_string()
    }

    /// Polls `f` until it is true or `secs` pass.
    fn wait(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; daemon log:\n{}", self.daemon_log());
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
    }

    fn logs(&self, name: &str) -> String {
        let out = self.run(&["logs", name]);
        out.code(0);
        out.stdout
    }
}

impl Drop for DaemonHome {
    fn drop(&mut self) {
        self.kill_daemon();
    }
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn alive(pid: i32) -> bool {
    proc_stat(pid as u32).is_some_and(|fields| !matches!(fields[0].as_str(), "Z" | "X"))
}

fn idle() -> String {
    wat("idle")
}

#[test]
fn lifecycle_round_trip() {
    let h = DaemonHome::new();
    let out = h.run(&["run", "-d", "--name", "web", PROBE_MODULE, "tick", "0", "50"]);
    out.code(0);
    assert!(out.stderr.contains("started the daemon"), "auto-start is announced: {out:?}");
    let id = out.stdout.trim().to_string();
    let second = h.run(&["ps"]);
    second.code(0).stdout_has("web").stdout_has(&id[..12]).stdout_has("Up ");
    assert!(!second.stderr.contains("started the daemon"), "announced once only");
    h.wait(10, "output", || h.logs("web").contains("tick 2"));

    h.run(&["stop", "-t", "0", "web"]).code(0).stdout_has("web");
    assert_eq!(h.status("web"), "exited");
    assert_eq!(h.inspect("web")["reason"], "stopped");
    assert!(!h.run(&["ps"]).stdout.contains("web"), "ps lists running containers only");
    h.run(&["ps", "-a"]).code(0).stdout_has("web").stdout_has("Exited (137)");
    let before = h.logs("web");

    h.run(&["start", "web"]).code(0);
    assert_eq!(h.status("web"), "running");
    h.wait(10, "output after start", || h.logs("web").len() > before.len());
    h.run(&["restart", "-t", "0", "web"]).code(0);
    let c = h.inspect("web");
    assert_eq!((c["status"].as_str(), c["restarts"].as_u64()), (Some("running"), Some(1)));

    h.run(&["kill", "web"]).code(0);
    assert_eq!(h.inspect("web")["reason"], "killed");
    h.run(&["kill", "web"]).code(1).stderr_has("not running");
    h.run(&["rm", "web"]).code(0).stdout_has("web");
    h.run(&["ps", "-a"]).code(0);
    assert!(!h.run(&["ps", "-a"]).stdout.contains("web"));
    assert!(!h.path().join("containers").join(&id).exists(), "rm deletes the container directory");
    h.run(&["logs", "web"]).code(1).stderr_has("no such container: web").stderr_has("hint:");
}

#[test]
fn names_and_id_prefixes() {
    let h = DaemonHome::new();
    let a = h.detach(&[&idle()]);
    let b = h.detach(&["--name", "named", &idle()]);
    assert_ne!(a, b);
    let generated = h.inspect(&a[..8])["name"].as_str().unwrap().to_string();
    assert!(generated.contains('_'), "a docker-style generated name: {generated}");
    assert_eq!(h.inspect(&generated)["id"], a.as_str());
    assert_eq!(h.inspect("named")["id"], b.as_str());
    assert_eq!(h.inspect(&b)["name"], "named", "the whole id works too");
    h.run(&["run", "-d", "--name", "named", &idle()]).code(1).stderr_has("already in use");
    h.run(&["run", "-d", "--name", "bad/name", &idle()]).code(1).stderr_has("invalid container name");
    h.run(&["stop", "nope"]).code(1).stderr_has("no such container: nope");
    h.run(&["rm", &a[..6]]).code(1).stderr_has("is running").stderr_has("rm -f");
    h.run(&["rm", "-f", &a[..6], "named"]).code(0);
    assert_eq!(h.run(&["ps", "-a", "-q"]).stdout.trim(), "");
}

#[test]
fn on_failure_restarts_exactly_max_times() {
    let h = DaemonHome::new();
    h.detach(&["--name", "failing", "--restart", "on-failure:3", PROBE_MODULE, "exit", "1"]);
    h.wait(20, "the container to give up", || h.status("failing") == "exited");
    let c = h.inspect("failing");
    assert_eq!(c["restarts"], 3, "{c}");
    assert_eq!(c["exit_code"], 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(h.inspect("failing")["restarts"], 3, "no restart after the last");
    // A clean exit under on-failure is not restarted.
    h.detach(&["--name", "clean", "--restart", "on-failure", PROBE_MODULE, "hello"]);
    h.wait(10, "exit", || h.status("clean") == "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.inspect("clean")["restarts"], 0);
}

#[test]
fn always_survives_a_daemon_kill() {
    let h = DaemonHome::new();
    h.detach(&["--name", "keeper", "--restart", "always", PROBE_MODULE, "tick", "0", "50"]);
    h.detach(&["--name", "plain", PROBE_MODULE, "tick", "0", "50"]);
    h.wait(10, "output", || h.logs("keeper").contains("tick 3"));
    let first = h.daemon_pid().unwrap();
    h.kill_daemon();
    // The next command starts a new daemon, which recovers the state.
    let ps = h.run(&["ps", "-a"]);
    ps.code(0);
    assert_ne!(h.daemon_pid(), Some(first));
    let keeper = h.inspect("keeper");
    assert_eq!((keeper["status"].as_str(), keeper["restarts"].as_u64()), (Some("running"), Some(1)), "{keeper}");
    let plain = h.inspect("plain");
    assert_eq!((plain["status"].as_str(), plain["reason"].as_str()), (Some("exited"), Some("daemon stopped")));
    let log = h.logs("keeper");
    assert!(log.starts_with("tick 0\ntick 1\ntick 2\ntick 3"), "logs from before the kill are kept: {log}");
    h.wait(10, "output from the restarted run", || h.logs("keeper").matches("tick 0").count() == 2);
}

#[test]
fn logs_follow_streams_new_lines_and_tail_limits() {
    let h = DaemonHome::new();
    h.detach(&["--name", "ticker", PROBE_MODULE, "tick", "8", "150"]);
    let mut child = h.home.cmd().args(["logs", "-f", "ticker"]).stdout(Stdio::piped()).spawn().unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let started = Instant::now();
    let lines: Vec<String> = reader.lines().map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(lines.iter().filter(|l| l.starts_with("tick ")).count(), 8, "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("ok"));
    assert!(started.elapsed() > Duration::from_millis(500), "it followed the guest, not a snapshot");
    assert!(started.elapsed() < Duration::from_secs(15), "it ended with the container");
    h.run(&["logs", "--tail", "2", "ticker"]).code(0);
    assert_eq!(h.run(&["logs", "--tail", "2", "ticker"]).stdout, "tick 7\nok\n");
    h.run(&["logs", "--tail", "x", "ticker"]).code(125).stderr_has("invalid --tail");
}

#[test]
fn logs_keep_streams_apart_with_times_tail_since_and_until() {
    let h = DaemonHome::new();
    let before = std::time::SystemTime::now();
    h.detach(&["--name", "both", PROBE_MODULE, "streams", "6", "300"]);
    h.wait(20, "the guest to end", || h.status("both") == "exited");
    let all = h.run(&["logs", "both"]);
    all.code(0);
    let outs: Vec<String> = (0..6).map(|i| format!("out {i}\n")).collect();
    let errs: Vec<String> = (0..6).map(|i| format!("err {i}\n")).collect();
    assert_eq!(all.stdout, format!("{}ok\n", outs.concat()), "stdout only, in order");
    assert_eq!(all.stderr, errs.concat(), "stderr only, in order");

    // --timestamps: RFC 3339 per line, in writing order, within the run's time.
    let stamped = h.run(&["logs", "-t", "both"]);
    let times: Vec<&str> = stamped.stdout.lines().map(|l| l.split_once(' ').unwrap().0).collect();
    assert_eq!(times.len(), 7);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let first = time_of(times[0]);
    assert!(first >= before - Duration::from_secs(1) && first <= std::time::SystemTime::now(), "{}", times[0]);
    assert!(stamped.stdout.lines().all(|l| l.len() == 31 + l.split_once(' ').unwrap().1.len()), "{}", stamped.stdout);
    assert!(stamped.stderr.lines().nth(2).unwrap().ends_with("Z err 2"), "{}", stamped.stderr);

    // --tail counts lines of both streams together, the newest.
    let tail = h.run(&["logs", "--tail", "3", "both"]);
    assert_eq!((tail.stdout.as_str(), tail.stderr.as_str()), ("out 5\nok\n", "err 5\n"));
    let none = h.run(&["logs", "--tail", "0", "both"]);
    assert_eq!((none.stdout.as_str(), none.stderr.as_str()), ("", ""));

    // --since/--until at a line's own time include it (the lines around it are 300 ms away).
    let third = stamped.stdout.lines().nth(3).unwrap().split_once(' ').unwrap().0.to_string();
    let since = h.run(&["logs", "--since", &third, "both"]);
    assert_eq!(since.stdout, "out 3\nout 4\nout 5\nok\n");
    let until = h.run(&["logs", "--until", &third, "both"]);
    assert_eq!(until.stdout, "out 0\nout 1\nout 2\nout 3\n");
    assert_eq!(h.run(&["logs", "--since", "1h", "both"]).stdout, all.stdout, "a duration back from now");
    assert_eq!(h.run(&["logs", "--since", "2999-01-01", "both"]).stdout, "");
    h.run(&["logs", "--since", "yesterday", "both"]).code(125).stderr_has("invalid --since");

    // -f combines with the others: a finished container prints the selection and ends.
    let followed = h.run(&["logs", "-f", "-t", "--tail", "1", "both"]);
    assert!(followed.stdout.ends_with(" ok\n") && followed.stdout.lines().count() == 1, "{}", followed.stdout);
}

fn time_of(stamp: &str) -> std::time::SystemTime {
    // `2026-11-27T13:27:29.123456789Z`, checked against `date`, the reference users have.
    let out = std::process::Command::new("date").args(["-u", "-d", stamp, "+%s"]).output().unwrap();
    let secs: u64 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn logs_written_before_the_record_format_still_read() {
    let h = DaemonHome::new();
    let id = h.detach(&["--name", "old", PROBE_MODULE, "hello"]);
    h.wait(20, "the guest to end", || h.status("old") == "exited");
    let dir = h.path().join("containers").join(&id);
    let _ = std::fs::remove_file(dir.join("output.log"));
    std::fs::write(dir.join("log.1"), "older 1\nolder 2\n").unwrap();
    std::fs::write(dir.join("log"), "old 3\nmixed stderr\n").unwrap();
    let out = h.run(&["logs", "old"]);
    out.code(0);
    assert_eq!(out.stdout, "older 1\nolder 2\nold 3\nmixed stderr\n");
    assert_eq!(h.run(&["logs", "-n", "1", "old"]).stdout, "mixed stderr\n");
    assert!(h.run(&["logs", "-t", "old"]).stdout.lines().all(|l| l.contains("Z ")), "stamped with the file time");
}

#[test]
fn a_flooding_guest_hits_the_log_cap() {
    let h = DaemonHome::new();
    let id = h.detach(&["--name", "flood", "--log-max-size", "64K", PROBE_MODULE, "flood", "8"]);
    h.wait(60, "the flood to end", || h.status("flood") == "exited");
    assert_eq!(h.inspect("flood")["exit_code"], 0);
    let dir = h.path().join("containers").join(&id);
    for name in ["output.log", "output.log.1"] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(len <= 64 * 1024, "{name} is {len} bytes, over the 64K cap");
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "one rotated file only: {names:?}");
    let tail = h.run(&["logs", "-n", "1", "flood"]);
    assert_eq!(tail.stdout, "ok\n");
}

#[test]
fn twenty_concurrent_run_d_share_one_daemon() {
    let h = DaemonHome::new();
    let idle = idle();
    let children: Vec<_> = (0..20)
        .map(|_| h.home.cmd().args(["run", "-d", &idle]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outs: Vec<Out> = children.into_iter().map(|c| Out::from(c.wait_with_output().unwrap())).collect();
    let mut ids: Vec<String> = outs.iter().map(|o| o.code(0).stdout.trim().to_string()).collect();
    let announced = outs.iter().filter(|o| o.stderr.contains("started the daemon")).count();
    assert_eq!(announced, 1, "one daemon started, announced once: {outs:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "distinct ids");
    let ps = h.run(&["ps", "-q"]);
    assert_eq!(ps.stdout.lines().count(), 20, "{ps:?}");
    // 20 ids over 16 hex digits: some first digit is shared, so that 1-digit prefix is ambiguous.
    let shared = ids.windows(2).find(|w| w[0][..1] == w[1][..1]).map(|w| w[0][..1].to_string()).unwrap();
    h.run(&["inspect", &shared]).code(1).stderr_has("ambiguous");
}

#[test]
fn a_spinning_guest_does_not_stop_anothers_output() {
    let h = DaemonHome::new();
    for _ in 0..3 {
        h.detach(&[&wat("loop")]);
    }
    h.detach(&["--name", "ticker", PROBE_MODULE, "tick", "0", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    let before = h.logs("ticker").lines().count();
    std::thread::sleep(Duration::from_secs(1));
    let after = h.logs("ticker").lines().count();
    assert!(
        after >= before + 20,
        "the ticker (50 lines/s alone) kept printing beside 3 spinning guests: {before} -> {after}"
    );
    let stats = h.run(&["stats", "--no-stream", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats.code(0).stdout).unwrap();
    let spinning = stats.as_array().unwrap().iter().filter(|s| s["cpu_ms"].as_u64().unwrap() > 100).count();
    assert!(spinning >= 3, "the spinners show CPU time: {stats}");
}

#[test]
fn stats_report_memory_fuel_and_uptime() {
    let h = DaemonHome::new();
    h.detach(&["--name", "metered", "--fuel", "100000000000", PROBE_MODULE, "tick", "0", "20"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = h.run(&["stats", "--no-stream", "--json", "metered"]);
    let s: serde_json::Value = serde_json::from_str(&out.code(0).stdout).unwrap();
    let s = &s[0];
    assert!(s["memory_bytes"].as_u64().unwrap() >= 64 * 1024, "{s}");
    assert!(s["fuel_used"].as_u64().unwrap() > 0, "{s}");
    assert!(s["uptime_ms"].as_u64().unwrap() >= 400, "{s}");
    h.run(&["stats", "--no-stream", "metered"]).code(0).stdout_has("metered").stdout_has("CPU TIME");
}

#[test]
fn detached_http_component_serves_until_stopped() {
    let h = DaemonHome::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    h.detach(&["--name", "web", "-p", &addr, HTTP_HELLO_COMPONENT]);
    let mut got = None;
    h.wait(20, "the server", || {
        got = http(&addr, "GET", "/", None, &[]).ok();
        got.is_some()
    });
    let r = got.unwrap();
    assert_eq!(r.status, 200);
    // The server's lines and the access log go to the container's log.
    // The server's messages and access log are its stderr, as for `wasmbox serve`.
    h.wait(10, "the access log", || h.run(&["logs", "web"]).stderr.contains("GET / 200"));
    assert!(h.run(&["logs", "web"]).stderr.starts_with(&format!("Serving HTTP on http://{addr}/")));
    h.run(&["stop", "-t", "1", "web"]).code(0);
    assert!(http(&addr, "GET", "/", None, &[]).is_err(), "the port is closed after stop");
    h.run(&["run", "-d", "-p", &addr, PROBE_MODULE]).code(126).stderr_has("core module");
}

#[test]
fn bad_input_is_refused_clearly() {
    let h = DaemonHome::new();
    h.run(&["run", "-d", "--restart", "sometimes", &idle()]).code(125).stderr_has("invalid --restart");
    h.run(&["run", "-d", "--rm", "--restart", "always", &idle()]).code(125).stderr_has("conflict");
    h.run(&["run", "--name", "x", &idle()]).code(125).stderr_has("--detach");
    h.run(&["run", "-d", "--http-allow", "example.com", &idle()]).code(125).stderr_has("--publish");
    h.run(&["run", "-d", "/no/such.wasm"]).code(127);
    h.run(&["run", "-d", &wat("missing-import")]).code(126).stderr_has("acme");
    assert_eq!(h.run(&["ps", "-a", "-q"]).stdout, "", "nothing stored for refused requests");
    h.run(&["run", "-d", "-v", "/no/such/dir", &idle()]).code(125).stderr_has("not a directory");
}

#[test]
fn rm_flag_removes_a_container_when_it_ends() {
    let h = DaemonHome::new();
    let id = h.detach(&["--rm", PROBE_MODULE, "hello"]);
    h.wait(10, "auto-removal", || h.run(&["ps", "-a", "-q"]).stdout.is_empty());
    assert!(!h.path().join("containers").join(id).exists());
}

#[test]
fn a_socket_others_can_use_is_refused() {
    let h = DaemonHome::new();
    h.detach(&[&idle()]);
    let socket = h.path().join("wasmbox.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    h.run(&["ps"]).code(125).stderr_has("refusing to use").stderr_has("666");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    h.run(&["ps"]).code(0);
    // As root, the other half of the check can be shown too: a socket someone else owns.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&socket, Some(65534), None).unwrap();
        h.run(&["ps"]).code(125).stderr_has("owned by uid 65534");
        std::os::unix::fs::chown(&socket, Some(0), None).unwrap();
        h.run(&["ps"]).code(0);
    }
}

#[test]
fn a_trap_or_limit_ends_that_container_only() {
    let h = DaemonHome::new();
    h.detach(&["--name", "ticker", PROBE_MODULE, "tick", "0", "20"]);
    h.detach(&["--name", "trap", &wat("unreachable")]);
    h.detach(&["--name", "bomb", "-m", "8M", PROBE_MODULE, "alloc-bomb"]);
    h.detach(&["--name", "late", "--timeout", "300ms", &wat("loop")]);
    h.wait(20, "all three to end", || ["trap", "bomb", "late"].iter().all(|n| h.status(n) == "exited"));
    let trap = h.inspect("trap");
    assert_eq!(trap["exit_code"], 134, "{trap}");
    assert!(trap["reason"].as_str().unwrap().contains("unreachable"), "{trap}");
    let bomb = h.inspect("bomb");
    assert_eq!(bomb["exit_code"], 134, "{bomb}");
    assert!(bomb["reason"].as_str().unwrap().contains("memory"), "{bomb}");
    let late = h.inspect("late");
    assert_eq!(late["exit_code"], 137, "{late}");
    assert!(late["reason"].as_str().unwrap().contains("timeout of 300ms"), "{late}");
    assert_eq!(h.status("ticker"), "running");
    let before = h.logs("ticker").len();
    h.wait(10, "the neighbour to keep printing", || h.logs("ticker").len() > before);
    h.run(&["ps", "-a"]).code(0).stdout_has("Exited (134)").stdout_has("Exited (137)");
}

/// E30: a damaged database is a clean error, quickly — never a panic, a hang or a rebuild that
/// silently drops containers.
#[test]
fn a_corrupt_database_is_a_clean_error() {
    let h = DaemonHome::new();
    std::fs::create_dir_all(h.path()).unwrap();
    std::fs::write(h.path().join("wasmbox.db"), vec![0x5a; 8192]).unwrap();
    let started = Instant::now();
    let out = h.run(&["ps"]);
    out.code(125).stderr_has("damaged").no_panic();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(std::fs::read(h.path().join("wasmbox.db")).unwrap(), vec![0x5a; 8192], "the file is left as it was");
}

/// E28: `kill -9` of the daemon while requests are in flight: every acknowledged `run -d` and
/// `rm` holds afterwards, and the database and the container directories agree.
#[test]
fn kill_9_during_requests_keeps_every_acknowledged_operation() {
    let h = DaemonHome::new();
    let idle = idle();
    let mut acknowledged = Vec::new();
    let mut removed = Vec::new();
    for round in 0..4 {
        let children: Vec<_> = (0..6)
            .map(|_| {
                h.home.cmd().args(["run", "-d", &idle]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        // Kill the daemon while those requests are being served (at a varying point).
        std::thread::sleep(Duration::from_millis(30 * round));
        h.kill_daemon();
        for c in children {
            let out = Out::from(c.wait_with_output().unwrap());
            if out.code == 0 {
                acknowledged.push(out.stdout.trim().to_string());
            }
        }
        if let Some(id) = acknowledged.iter().find(|id| !removed.contains(*id)).cloned()
            && h.run(&["rm", "-f", &id]).code == 0
        {
            removed.push(id);
        }
    }
    let ps = h.run(&["ps", "-a", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&ps.code(0).stdout).unwrap();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    for id in &acknowledged {
        assert_eq!(ids.contains(&id.as_str()), !removed.contains(id), "acknowledged {id}");
    }
    let dirs: Vec<String> = std::fs::read_dir(h.path().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.len() == 64)
        .collect();
    for id in &ids {
        assert!(dirs.contains(&id.to_string()), "container {id} has its directory");
    }
    for dir in &dirs {
        assert!(ids.contains(&dir.as_str()), "no orphan directory {dir}");
    }
}

/// E29: writes fail (here: a file-size limit on the daemon makes every write past 256 KiB fail
/// with EFBIG, as a full disk would): requests fail with a clear error, nothing acknowledged is
/// lost, nothing unacknowledged appears, and it works again once writes can succeed.
#[test]
fn failing_writes_fail_requests_cleanly_and_recover() {
    let h = DaemonHome::new();
    let mut daemon = std::process::Command::new("prlimit")
        .arg("--fsize=262144:unlimited")
        .arg(env!("CARGO_BIN_EXE_wasmbox"))
        .arg("daemon")
        .env("WASMBOX_HOME", h.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    h.wait(20, "the daemon", || h.path().join("wasmbox.sock").exists());
    let idle = idle();
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for _ in 0..400 {
        let out = h.run(&["run", "-d", &idle]);
        if out.code == 0 {
            acknowledged.push(out.stdout.trim().to_string());
        } else {
            failure = Some(out);
            break;
        }
    }
    let failure = failure.expect("writes past the limit must fail");
    failure.code(125).no_panic();
    assert_eq!(failure.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{failure:?}");
    assert!(failure.stderr.contains("state database"), "{failure:?}");
    assert!(failure.stderr.contains("hint: nothing was changed"), "{failure:?}");
    let ids = h.run(&["ps", "-a", "-q"]);
    assert_eq!(ids.code(0).stdout.lines().count(), acknowledged.len(), "exactly the acknowledged containers");
    // Lift the limit: the same daemon works again.
    let lifted = std::process::Command::new("prlimit")
        .args(["--pid", &daemon.id().to_string(), "--fsize=unlimited:unlimited"])
        .status()
        .unwrap();
    assert!(lifted.success());
    h.run(&["run", "-d", "--name", "after", &idle]).code(0);
    assert_eq!(h.run(&["ps", "-a", "-q"]).stdout.lines().count(), acknowledged.len() + 1);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

#[test]
fn recovery_removes_orphans_and_old_unused_wasm_only() {
    let h = DaemonHome::new();
    let id = h.detach(&[&idle()]);
    let wasm_dir = h.path().join("containers/wasm");
    let used: Vec<_> = std::fs::read_dir(&wasm_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(used.len(), 1);
    let (old, fresh) =
        (wasm_dir.join(format!("{}.wasm", "a".repeat(64))), wasm_dir.join(format!("{}.wasm", "b".repeat(64))));
    std::fs::write(&old, b"\0asm").unwrap();
    std::fs::write(&fresh, b"\0asm").unwrap();
    let touched = std::process::Command::new("touch").args(["-d", "2 hours ago"]).arg(&old).arg(&used[0]).status();
    assert!(touched.unwrap().success());
    let orphan = h.path().join("containers").join("c".repeat(64));
    std::fs::create_dir_all(&orphan).unwrap();
    h.kill_daemon();
    h.run(&["ps", "-a"]).code(0);
    assert!(!old.exists(), "unused and old: removed");
    assert!(fresh.exists(), "unused but fresh (a CLI may be about to use it): kept");
    assert!(used[0].exists(), "used by a container: kept however old");
    assert!(!orphan.exists(), "a directory without a row: removed");
    assert!(h.path().join("containers").join(id).exists());
}

// ---- Issue 12 (hardening): a guest that hoards host resources fails alone.

#[test]
fn a_descriptor_hoarding_guest_fails_alone_and_the_api_keeps_answering() {
    let h = DaemonHome::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let grant = format!("{}:/d:ro", dir.path().display());
    h.detach(&["--name", "ticker", PROBE_MODULE, "tick", "0", "20"]);
    // Three hoarders with the default budget, one restarting forever: each holds at most its
    // handle budget of descriptors, then fails (137, the limit named).
    for name in ["hog1", "hog2"] {
        h.detach(&["--name", name, "-v", &grant, PROBE_COMPONENT, "open-many", "/d/f", "60000"]);
    }
    h.detach(&["--name", "hog3", "--restart", "always", "-v", &grant, PROBE_MODULE, "open-many", "/d/f", "0"]);
    h.wait(30, "the hoarders to hit their budget", || {
        ["hog1", "hog2"].iter().all(|n| h.status(n) == "exited")
            && h.inspect("hog3")["restarts"].as_u64().unwrap_or(0) >= 2
    });
    for name in ["hog1", "hog2"] {
        let c = h.inspect(name);
        assert_eq!(c["exit_code"], 137, "{c}");
        assert!(c["reason"].as_str().unwrap().contains("handle limit of 1024"), "{c}");
    }
    // The operator is never locked out: ps and rm -f answer at once, also for the restarter.
    for _ in 0..3 {
        let started = Instant::now();
        h.run(&["ps", "-a"]).code(0).stdout_has("hog3");
        assert!(started.elapsed() < Duration::from_secs(1), "ps took {:?}", started.elapsed());
    }
    let started = Instant::now();
    h.run(&["rm", "-f", "hog3"]).code(0);
    assert!(started.elapsed() < Duration::from_secs(2), "rm -f took {:?}", started.elapsed());
    assert_eq!(h.status("ticker"), "running");
    let before = h.logs("ticker").lines().count();
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.logs("ticker").lines().count() > before, "the ticker stopped ticking");
    // A smaller budget is the user's to set.
    h.detach(&["--name", "small", "--max-handles", "40", "-v", &grant, PROBE_MODULE, "open-many", "/d/f", "0"]);
    h.wait(20, "small to end", || h.status("small") == "exited");
    assert!(h.inspect("small")["reason"].as_str().unwrap().contains("handle limit of 40"));
}

#[test]
fn state_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let h = DaemonHome::new();
    // An install from before: a world-readable home and database.
    std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(h.path().join("old-file"), "x").unwrap();
    std::fs::set_permissions(h.path().join("old-file"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let first = h.run(&["run", "-d", "--name", "secretive", "-e", "TOKEN=hunter2", PROBE_MODULE, "env"]);
    first.code(0).stderr_has("made").stderr_has("private to its owner");
    h.wait(10, "the container to end", || h.status("secretive") == "exited");
    assert!(h.logs("secretive").contains("TOKEN=hunter2"));
    // Told once: the next command says nothing about it.
    assert!(!h.run(&["ps", "-a"]).stderr.contains("private to its owner"));
    let mut checked = 0;
    let mut stack = vec![h.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        checked += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    for name in ["wasmbox.db", "daemon.log", "old-file"] {
        assert!(h.path().join(name).exists(), "{name} missing");
    }
    assert!(checked > 6, "only {checked} paths checked");
}

#[test]
fn of_two_concurrent_removals_one_says_the_container_is_gone() {
    let h = DaemonHome::new();
    for round in 0..3 {
        let name = format!("victim{round}");
        h.detach(&["--name", &name, &idle()]);
        let spawn = || h.home.cmd().args(["rm", "-f", &name]).output().unwrap();
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (Out::from(a.join().unwrap()), Out::from(b.join().unwrap()))
        });
        let mut codes = [a.code, b.code];
        codes.sort();
        assert_eq!(codes, [0, 1], "exactly one removal succeeds:\n{a:?}\n{b:?}");
        let failed = if a.code == 1 { &a } else { &b };
        failed.stderr_has("no such container");
    }
}

/// Bytes of the regular files under `dir` whose names pass `keep`, counted independently of
/// wasmbox's own code.
fn disk_bytes(dir: &Path, keep: &dyn Fn(&str) -> bool) -> (u64, u64) {
    let (mut count, mut bytes) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    for e in entries.map(Result::unwrap) {
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            let (c, b) = disk_bytes(&e.path(), keep);
            (count, bytes) = (count + c, bytes + b);
        } else if meta.is_file() && keep(&e.file_name().to_string_lossy()) {
            (count, bytes) = (count + 1, bytes + meta.len());
        }
    }
    (count, bytes)
}

fn df(h: &DaemonHome) -> serde_json::Value {
    let out = h.run(&["system", "df", "--json"]);
    out.code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn df_total(d: &serde_json::Value) -> u64 {
    ["images", "containers", "compile_cache", "logs"].iter().map(|k| d[k]["bytes"].as_u64().unwrap()).sum()
}

#[test]
fn system_df_matches_the_disk_and_prune_frees_exactly_the_unused() {
    let h = DaemonHome::new();
    let app = |name: &str, wasm: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("wasmbox.toml"),
            format!("name = \"{name}\"\nversion = \"1\"\nwasm = \"{wasm}\"\n"),
        )
        .unwrap();
        h.run(&["build", dir.path().to_str().unwrap()]).code(0);
    };
    app("live", PROBE_MODULE);
    app("gone", PROBE_COMPONENT);
    // A running container from an image; a stopped one; an untagged image; a loose file's cache entry.
    h.detach(&["--name", "up", "live:1", "tick", "1", "100000"]);
    h.detach(&["--name", "done", PROBE_COMPONENT, "streams", "2", "0"]);
    h.wait(20, "the short container to end", || h.status("done") == "exited");
    h.wait(20, "the running container's first line", || h.logs("up") == "tick 0\n");
    h.run(&["rmi", "gone:1"]).code(0);
    h.run(&["run", &wat("unreachable")]).code(134);

    let before = df(&h);
    let home = h.path();
    let logs = |n: &str| matches!(n, "output.log" | "output.log.1" | "log" | "log.1");
    assert_eq!(before["images"]["count"], 1);
    assert_eq!(before["images"]["bytes"], disk_bytes(&home.join("images/blobs"), &|_| true).1);
    let (cache_files, cache_bytes) = disk_bytes(&home.join("cache"), &|_| true);
    assert_eq!(
        (before["compile_cache"]["count"].as_u64(), before["compile_cache"]["bytes"].as_u64()),
        (Some(cache_files), Some(cache_bytes))
    );
    assert!(cache_files >= 3, "live, gone/done and the loose file: {cache_files}");
    let (log_files, log_bytes) = disk_bytes(&home.join("containers"), &logs);
    assert_eq!(
        (before["logs"]["count"].as_u64(), before["logs"]["bytes"].as_u64()),
        (Some(log_files), Some(log_bytes))
    );
    assert_eq!(before["containers"]["count"], 2);
    assert_eq!(before["containers"]["bytes"], disk_bytes(&home.join("containers"), &|n| !logs(n)).1);
    let table = h.run(&["system", "df"]);
    table.code(0).stdout_has("Compile cache").stdout_has("Logs");

    // Without -f and without a terminal to ask on, nothing is touched.
    h.run(&["system", "prune"]).code(125).stderr_has("pass -f");
    assert_eq!(df(&h), before);

    let pruned = h.run(&["system", "prune", "-f"]);
    pruned.code(0).stdout_has("Deleted containers: 1");
    let after = df(&h);
    let reported: u64 = pruned.stdout.split(" (").last().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(reported, df_total(&before) - df_total(&after), "{}", pruned.stdout);
    assert!(reported > 0);

    // What is in use survived: the running container, its image, and its cache entry.
    assert_eq!(h.status("up"), "running");
    assert_eq!(h.run(&["ps", "-a", "--format", "{{.Names}}"]).stdout, "up\n");
    assert_eq!((after["images"]["count"].as_u64(), after["containers"]["count"].as_u64()), (Some(1), Some(1)));
    assert_eq!(after["compile_cache"]["count"], 1, "only the running image's entry: {}", pruned.stdout);
    let cached = h.run(&["run", "live:1", "hello"]);
    cached.code(0);
    assert_eq!(df(&h)["compile_cache"]["count"], 1, "the kept entry was used, not rebuilt");
    assert!(
        pruned.stdout.contains(&format!("Deleted compile cache entries: {}", cache_files - 1)),
        "{}",
        pruned.stdout
    );

    // A second prune finds nothing.
    let again = h.run(&["system", "prune", "-f"]);
    again.code(0).stdout_has("Deleted containers: 0").stdout_has("(0 bytes)");
}

#[test]
fn ps_format_takes_json_and_templates() {
    let h = DaemonHome::new();
    h.detach(&["--name", "fmt-up", PROBE_MODULE, "tick", "1", "100000"]);
    h.detach(&["--name", "fmt-done", PROBE_MODULE, "hello"]);
    h.wait(20, "the short container to end", || h.status("fmt-done") == "exited");
    let plain = h.run(&["ps", "--format", "{{.Names}} {{.State}} {{ .Image }}"]);
    plain.code(0);
    assert_eq!(plain.stdout, format!("fmt-up running {PROBE_MODULE}\n"));
    let all = h.run(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = all.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let done = rows.iter().find(|r| r["Names"] == "fmt-done").unwrap();
    assert_eq!((done["State"].as_str(), done["ExitCode"].as_str()), (Some("exited"), Some("0")));
    assert!(done["Status"].as_str().unwrap().starts_with("Exited (0)"), "{done}");
    assert_eq!(done["ID"].as_str().unwrap().len(), 12);
    let table = h.run(&["ps", "-a", "--format", "table {{.Names}}\\t{{.ExitCode}}"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines[0], "NAMES      EXIT CODE", "{}", table.stdout);
    assert_eq!(lines.len(), 3);
    h.run(&["ps", "--format", "{{json .}}"]).code(125).stderr_has("fields: {{.ID}}");
    h.run(&["ps", "--format", "json", "--json"]).code(125);
}

/// Issue 17, target 3: the daemon starts a large container on Winch's baseline code, compiles
/// Cranelift's code on a thread of its own, and starts later containers of it on that.
#[test]
fn a_large_container_starts_on_the_baseline_tier_and_later_ones_on_optimized_code() {
    let h = DaemonHome::new();
    let big = h.path().join("big.wasm");
    // A command Winch compiles whole (the probes use relaxed SIMD, which it lacks).
    std::fs::write(&big, with_code(&wat::parse_file(wat("hello")).unwrap(), 1 << 20)).unwrap();
    let big = big.to_str().unwrap();
    // The first `run -d` starts the daemon, which inherits the log setting.
    let out = h.home.cmd().env("WASMBOX_LOG", "debug").args(["run", "-d", "--name", "first", big]).output();
    Out::from(out.unwrap()).code(0);
    h.wait(30, "the first container's output", || h.logs("first").contains("hello"));
    h.wait(120, "the optimizing compile", || h.daemon_log().contains("optimized code ready"));
    assert!(h.daemon_log().contains("compiled the baseline tier (Winch)"), "{}", h.daemon_log());
    h.detach(&["--name", "second", big]);
    h.wait(30, "the second container's output", || h.logs("second").contains("hello"));
    assert_eq!(h.daemon_log().matches("compiled the baseline tier").count(), 1, "{}", h.daemon_log());
    assert_eq!(h.home.cache_entries().len(), 1, "the baseline entry is replaced by the optimized one");
}
