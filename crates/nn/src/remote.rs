//! The host side of the inference backend process: `wasmbox-nn`, installed next to `wasmbox`
//! (or named by `WASMBOX_NN_BACKEND`), started on the first model load and shared by every
//! container of this process.
//!
//! Each computation has a connection of its own (a stream socket handed to the backend over
//! its control socket, `control`; idle ones are reused): the calling thread writes the request
//! and reads the reply itself. Closing a connection is how a computation is cancelled. If the
//! backend dies (a model crashed it, it was killed), the calls on it fail with the reason and
//! the next one starts a new backend; models are loaded into it again from the bytes this side
//! keeps.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::control;
use crate::error::{ErrorKind, NnError};
use crate::model::{Model, ModelInfo, Runner};
use crate::tensor::Tensor;
use crate::wire::{self, Body, Digest, Frame};

/// The environment variable naming the backend binary (packagers who install it elsewhere).
pub const BACKEND_ENV: &str = "WASMBOX_NN_BACKEND";
/// The backend binary's file name, next to `wasmbox`.
pub const BACKEND_BIN: &str = "wasmbox-nn";

/// Replies larger than this are refused: no WASI-NN output comes near it, and a compromised
/// backend must not make the host allocate what it likes.
const MAX_REPLY: u64 = 1 << 30;

/// How often a waiting computation looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(5);

static CURRENT: Mutex<Option<Arc<Backend>>> = Mutex::new(None);

/// One backend process.
struct Backend {
    control: Mutex<OwnedFd>,
    child: Mutex<Child>,
    idle: Mutex<Vec<UnixStream>>,
    /// Set once it is known to be gone: why.
    dead: Mutex<Option<String>>,
    next_id: AtomicU64,
}

/// Where the backend binary is: `WASMBOX_NN_BACKEND`, else `wasmbox-nn` next to this executable.
pub fn backend_path() -> Result<PathBuf, NnError> {
    if let Some(path) = std::env::var_os(BACKEND_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| NnError::new(ErrorKind::Unsupported, format!("cannot locate the inference backend: {e}")))?;
    let path = exe.with_file_name(BACKEND_BIN);
    if path.is_file() {
        return Ok(path);
    }
    Err(NnError::new(
        ErrorKind::Unsupported,
        format!(
            "the inference backend `{BACKEND_BIN}` is not installed next to {} (install both binaries of the \
             wasmbox package, as `cargo install` and `cargo build` do, or set {BACKEND_ENV} to its path)",
            exe.display()
        ),
    ))
}

/// The live backend, started if there is none (or the last one died).
fn backend() -> Result<Arc<Backend>, NnError> {
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(backend) = current.as_ref().filter(|b| b.alive()) {
        return Ok(backend.clone());
    }
    let backend = Backend::start()?;
    *current = Some(backend.clone());
    Ok(backend)
}

/// Why a reply did not come.
enum Stop {
    Cancelled,
    Broken(io::Error),
}

impl Backend {
    fn start() -> Result<Arc<Backend>, NnError> {
        let path = backend_path()?;
        let cannot = |e: io::Error| {
            NnError::new(ErrorKind::Unsupported, format!("cannot start the inference backend {}: {e}", path.display()))
        };
        let (ours, theirs) = control::pair().map_err(cannot)?;
        let child = Command::new(&path)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            // A panic message would land in a guest's stderr; failures come back as replies.
            .stderr(Stdio::null())
            .spawn()
            .map_err(cannot)?;
        Ok(Arc::new(Backend {
            control: Mutex::new(ours),
            child: Mutex::new(child),
            idle: Mutex::default(),
            dead: Mutex::default(),
            next_id: AtomicU64::new(1),
        }))
    }

    fn alive(&self) -> bool {
        self.dead.lock().map(|d| d.is_none()).unwrap_or(false)
    }

    /// Marks the backend gone (stopping it if it is not) and says why, with its exit status.
    fn fail(&self, what: &str) -> NnError {
        let mut dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        if dead.is_none() {
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            *dead = Some(format!("the inference backend {what} ({status}); the next call starts a new one"));
        }
        NnError::new(ErrorKind::RuntimeError, dead.clone().unwrap_or_default())
    }

    /// An idle connection, or a new one handed to the backend.
    fn connection(&self) -> Result<UnixStream, NnError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let (ours, theirs) = UnixStream::pair().map_err(|e| self.fail(&format!("could not be reached: {e}")))?;
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        control::send(control.as_fd(), control::CONNECT, &[0; 32], Some(theirs.as_fd()))
            .map_err(|e| self.fail(&format!("stopped taking requests: {e}")))?;
        ours.set_read_timeout(Some(CANCEL_POLL)).map_err(|e| self.fail(&e.to_string()))?;
        Ok(ours)
    }

    /// Sends one request and reads its reply (status, and the frame: the body starts at
    /// [`REPLY_HEADER`]), giving up — and closing
    /// the connection, which stops the backend's work — when `cancel` is set.
    fn call(&self, frame: impl FnOnce(u64) -> Frame, cancel: Option<&AtomicBool>) -> Result<(u8, Vec<u8>), NnError> {
        if let Some(why) = self.dead.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(NnError::new(ErrorKind::RuntimeError, why));
        }
        let mut conn = self.connection()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = frame(id).write_to(&mut conn) {
            return Err(self.fail(&format!("stopped taking requests: {e}")));
        }
        let reply = match read_reply(&mut conn, cancel) {
            Ok(reply) => reply,
            Err(Stop::Cancelled) => return Err(NnError::new(ErrorKind::Cancelled, "the inference was stopped")),
            Err(Stop::Broken(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(self.fail("exited")),
            Err(Stop::Broken(e)) => return Err(self.fail(&format!("sent a broken reply ({e}) and was stopped"))),
        };
        let mut body = Body::new(&reply);
        let (Ok(got), Ok(status)) = (body.u64(), body.u8()) else {
            return Err(self.fail("sent a broken reply and was stopped"));
        };
        if got != id {
            return Err(self.fail("answered another request and was stopped"));
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        // The whole frame, not a copy of its body: outputs are copied once more into tensors.
        Ok((status, reply))
    }

    /// Loads a model into this backend; its signature.
    fn load(&self, digest: &Digest, bytes: &[u8]) -> Result<ModelInfo, NnError> {
        let (status, body) = self.call(
            |id| {
                let mut f = Frame::new(id, wire::LOAD);
                f.bytes(digest).bytes(bytes);
                f
            },
            None,
        )?;
        decode(status, &body, |b| b.info())
    }
}

/// One reply frame, read while watching `cancel` between reads.
fn read_reply(conn: &mut UnixStream, cancel: Option<&AtomicBool>) -> Result<Vec<u8>, Stop> {
    let mut header = [0u8; 8];
    read_full(conn, &mut header, cancel)?;
    let mut body = vec![0; wire::body_len(header, MAX_REPLY).map_err(Stop::Broken)?];
    read_full(conn, &mut body, cancel)?;
    Ok(body)
}

fn read_full(conn: &mut UnixStream, buf: &mut [u8], cancel: Option<&AtomicBool>) -> Result<(), Stop> {
    let mut done = 0;
    while done < buf.len() {
        match conn.read(&mut buf[done..]) {
            Ok(0) => return Err(Stop::Broken(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => done += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err(Stop::Cancelled);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Stop::Broken(e)),
        }
    }
    Ok(())
}

/// A reply's id and status, before its body.
const REPLY_HEADER: usize = 9;

fn decode<T>(status: u8, frame: &[u8], ok: impl FnOnce(&mut Body) -> Result<T, NnError>) -> Result<T, NnError> {
    let mut body = Body::new(&frame[REPLY_HEADER..]);
    match status {
        wire::OK => ok(&mut body),
        wire::ERR => Err(body.error()?),
        _ => Err(NnError::new(ErrorKind::RuntimeError, "the inference backend sent an unknown reply")),
    }
}

/// Loads `bytes` (whose sha256 is `digest`) in the backend process.
pub(crate) fn load(digest: Digest, bytes: &[u8]) -> Result<Model, NnError> {
    let info = backend()?.load(&digest, bytes)?;
    let runner = Remote { digest, bytes: Arc::from(bytes) };
    Ok(Model::new(digest, bytes.len() as u64, info, Box::new(runner)))
}

/// A model in the backend process. Keeps the bytes to load it again into a new backend.
struct Remote {
    digest: Digest,
    bytes: Arc<[u8]>,
}

impl Runner for Remote {
    fn run(&self, inputs: Vec<Tensor>, cancel: &AtomicBool) -> Result<Vec<Tensor>, NnError> {
        // Once more when the backend had died before this call (it is started again), and once
        // more when it was restarted since the model was loaded (it is loaded again). Not
        // more: a request that itself kills the backend fails rather than kill backends in a loop.
        let (mut restarted, mut reloaded) = (false, false);
        loop {
            let backend = backend()?;
            let reply = backend.call(
                |id| {
                    let mut f = Frame::new(id, wire::RUN);
                    f.bytes(&self.digest).tensors(&inputs);
                    f
                },
                Some(cancel),
            );
            let (status, body) = match reply {
                Ok(reply) => reply,
                Err(e) if e.kind == ErrorKind::Cancelled || restarted => return Err(e),
                Err(_) => {
                    restarted = true;
                    continue;
                }
            };
            if status == wire::UNKNOWN_MODEL && !reloaded {
                backend.load(&self.digest, &self.bytes)?;
                reloaded = true;
                continue;
            }
            return decode(status, &body, |b| b.tensors());
        }
    }
}

impl Drop for Remote {
    /// The backend may forget the model: no one here holds it any more.
    fn drop(&mut self) {
        let current = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(backend) = current.filter(|b| b.alive()) {
            let control = backend.control.lock().unwrap_or_else(|p| p.into_inner());
            let _ = control::send(control.as_fd(), control::RELEASE, &self.digest, None);
        }
    }
}
