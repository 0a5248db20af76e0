//! Helpers for integration tests: run the real `wasmbox` binary with a private WASMBOX_HOME.
#![allow(dead_code)]

pub mod edge;
pub mod net;
pub mod registry;

#[allow(unused_imports)] // each test binary uses a different subset
pub use net::pong_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[allow(unused_imports)] // each test binary uses a different subset
pub use wasmbox_test_programs::{HTTP_HELLO_COMPONENT, HTTP_PROBE_COMPONENT, PROBE_COMPONENT, PROBE_MODULE, wat};

/// Both builds of the probe guest, for tests that must hold for modules and components alike.
pub const PROBES: [(&str, &str); 2] = [("module", PROBE_MODULE), ("component", PROBE_COMPONENT)];

/// A temporary WASMBOX_HOME; removed when dropped.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A private (0700) home, as wasmbox creates its own: a group/world-readable one would be
    /// tightened with a notice on first use (tests/daemon.rs checks that case).
    pub fn new() -> Home {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `wasmbox` with this home, a clean log setting and no stdin. Tests talk only to
    /// loopback: any other HTTP(S) request goes to a dead proxy on 127.0.0.1:9 and fails there.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmbox"));
        c.env("WASMBOX_HOME", self.path()).env_remove("WASMBOX_LOG").env("NO_COLOR", "1").stdin(Stdio::null());
        for proxy in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"] {
            c.env(proxy, "http://127.0.0.1:9");
        }
        c.env("NO_PROXY", "127.0.0.1,localhost,::1").env("no_proxy", "127.0.0.1,localhost,::1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.cmd().args(args).output().unwrap())
    }

    /// Digests (`sha256:…`) of the blobs in this home's image store.
    pub fn stored_blobs(&self) -> Vec<String> {
        std::fs::read_dir(self.path().join("images/blobs/sha256"))
            .map(|d| d.map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy())).collect())
            .unwrap_or_default()
    }

    /// Compiled-code cache entries currently on disk.
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.path().join("cache/compiled-v1")) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "bin")).collect(),
            Err(_) => vec![],
        }
    }
}

/// Tests end by themselves: a daemon a test started in this home (`run -d` starts one) is
/// killed with it, so no daemon outlives its deleted home.
impl Drop for Home {
    fn drop(&mut self) {
        let Some(pid) =
            std::fs::read_to_string(self.path().join("wasmbox.lock")).ok().and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        // Only our daemon: the pid in the lock file may be stale and reused by now.
        let ours = std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|b| *b == 0).any(|v| v == format!("WASMBOX_HOME={}", self.path().display()).as_bytes())
        });
        if ours {
            // SAFETY: SIGKILL to a daemon process started for this test's home.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Out {
    /// Asserts the exit code, printing both streams when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Out {
        assert_eq!(self.code, expected, "exit code\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code_not(&self, unexpected: i32) -> &Out {
        assert_ne!(self.code, unexpected, "exit code\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Out {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Out {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\nstderr: {}", self.stderr);
        self
    }

    /// A sandbox refusal reported by the probe guest (exit 3, `denied: ...`).
    #[track_caller]
    pub fn denied(&self) -> &Out {
        self.code(3).stdout_has("denied:")
    }

    /// No Rust panic or backtrace of wasmbox itself reached the user. (A guest's own Rust
    /// runtime may print panic notes to the guest's stderr; those are not wasmbox's.)
    #[track_caller]
    pub fn no_panic(&self) -> &Out {
        for bad in ["thread 'main' panicked", "wasmbox bug", "stack backtrace:", "internal error"] {
            assert!(!self.stderr.contains(bad), "wasmbox leaked {bad:?}: {}", self.stderr);
        }
        self
    }
}

/// A gzip-compressed tar with `entries` (path, bytes); `("link:PATH", target)` makes a symlink.
pub fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        if let Some(link) = path.strip_prefix("link:") {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            // set_path refuses `..` and absolute paths, so write the raw name, as a hostile tool would.
            write_raw_name(&mut header, link);
            header.set_link_name(std::str::from_utf8(bytes).unwrap()).unwrap();
            header.set_cksum();
            builder.append(&header, &[][..]).unwrap();
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            write_raw_name(&mut header, path);
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn write_raw_name(header: &mut tar::Header, name: &str) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

/// Makes a FIFO at `path` (a file that blocks whoever opens it for reading).
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Sends SIGTERM to `child` and waits (at most `within`) for it to exit; returns its exit code.
pub fn terminate(child: &mut std::process::Child, within: std::time::Duration) -> Option<i32> {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(std::time::Instant::now() < deadline, "the process did not exit within {within:?} of SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
}

fn read_leb(bytes: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        n |= ((byte & 0x7f) as usize) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return n;
        }
    }
}

fn section(id: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(content.len(), out);
    out.extend_from_slice(content);
}

/// `wasm` (a module or component) with a custom section of `bytes` zero bytes appended: a
/// larger file with no more code.
pub fn padded(wasm: &[u8], bytes: usize) -> Vec<u8> {
    let name = b"padding";
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.resize(body.len() + bytes, 0);
    let mut out = wasm.to_vec();
    section(0, &body, &mut out);
    out
}

/// `wasm` (a module or component) with one more function of `bytes` bytes of code (`nop`s,
/// never called): the same program, with enough code to be tiered
/// (`wasmbox_engine::tier::TIER_MIN_BYTES` counts function bodies, not file size). A component
/// gets a core module of its own that nothing instantiates; a module gets the function
/// appended (its type, function and code sections must exist, without rec groups).
pub fn with_code(wasm: &[u8], bytes: usize) -> Vec<u8> {
    let mut body = vec![0]; // no locals
    body.resize(1 + bytes, 0x01); // nop
    body.push(0x0b); // end
    let mut entry = Vec::new();
    leb(body.len(), &mut entry);
    entry.extend_from_slice(&body);
    let component = wasm[4..8] == [0x0d, 0x00, 0x01, 0x00];
    if component {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        section(1, &[1, 0x60, 0, 0], &mut module);
        section(3, &[1, 0], &mut module);
        let mut code = vec![1];
        code.extend_from_slice(&entry);
        section(10, &code, &mut module);
        let mut out = wasm.to_vec();
        section(1, &module, &mut out); // a core module section
        return out;
    }
    let mut out = wasm[..8].to_vec();
    let (mut at, mut types) = (8, None);
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = read_leb(wasm, &mut at);
        let content = &wasm[at..at + size];
        at += size;
        let mut count_at = 0;
        let mut grown = match id {
            1 | 3 | 10 => {
                let count = read_leb(content, &mut count_at);
                let mut v = Vec::new();
                leb(count + 1, &mut v);
                v.extend_from_slice(&content[count_at..]);
                if id == 1 {
                    types = Some(count);
                }
                v
            }
            _ => {
                section(id, content, &mut out);
                continue;
            }
        };
        match id {
            1 => grown.extend_from_slice(&[0x60, 0, 0]),
            3 => leb(types.expect("a type section before the function section"), &mut grown),
            _ => grown.extend_from_slice(&entry),
        }
        section(id, &grown, &mut out);
    }
    out
}

/// Waits (up to 10 s) until process `pid` maps a file whose path contains `name`, else fails.
pub fn wait_mapped(pid: u32, name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        if maps.contains(name) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{name} is not mapped:\n{maps}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The fields of `/proc/PID/stat` after the command name (index 0 is field 3, the state), or
/// None once the process is gone. The name is in parentheses and may itself hold spaces and
/// parentheses, so the split is at the last `) `.
pub fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(") ")?.1.split(' ').map(str::to_string).collect())
}
