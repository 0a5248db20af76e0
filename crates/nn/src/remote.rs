//! The host side of the inference backend process: `wasmbox-nn`, installed next to `wasmbox`
//! (or named by `WASMBOX_NN_BACKEND`), started on the first model load and shared by every
//! container of this process, one pipe each way.
//!
//! Requests carry ids; one reader thread hands each reply to the caller waiting for it, so many
//! computations run at once. If the backend dies (a model crashed it, it was killed), every
//! waiting call fails with the reason and the next call starts a new backend; models are
//! loaded into it again from the bytes this side keeps.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{ErrorKind, NnError};
use crate::model::{Model, Runner};
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

static CURRENT: Mutex<Option<Arc<Conn>>> = Mutex::new(None);

/// A reply: status and body (after the id and status).
type Reply = Result<(u8, Vec<u8>), NnError>;

struct Conn {
    stdin: Mutex<ChildStdin>,
    waiting: Mutex<Waiting>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Waiting {
    /// Set once the backend is gone: why.
    dead: Option<String>,
    calls: HashMap<u64, mpsc::Sender<Reply>>,
}

/// Where the backend binary is: `WASMBOX_NN_BACKEND`, else `wasmbox-nn` next to this executable.
fn backend_path() -> Result<PathBuf, NnError> {
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
fn conn() -> Result<Arc<Conn>, NnError> {
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(conn) = current.as_ref().filter(|c| c.alive()) {
        return Ok(conn.clone());
    }
    let conn = Conn::start()?;
    *current = Some(conn.clone());
    Ok(conn)
}

impl Conn {
    fn start() -> Result<Arc<Conn>, NnError> {
        let path = backend_path()?;
        let mut child = Command::new(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its only output is replies; a panic message would land in a guest's stderr.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                NnError::new(
                    ErrorKind::Unsupported,
                    format!("cannot start the inference backend {}: {e}", path.display()),
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were asked for");
        };
        let conn = Arc::new(Conn {
            stdin: Mutex::new(stdin),
            waiting: Mutex::new(Waiting::default()),
            next_id: AtomicU64::new(1),
        });
        let reader = conn.clone();
        std::thread::Builder::new()
            .name("nn-backend".into())
            .spawn(move || reader.read_replies(BufReader::new(stdout), child))
            .map_err(|e| NnError::new(ErrorKind::RuntimeError, format!("cannot start a thread: {e}")))?;
        Ok(conn)
    }

    fn alive(&self) -> bool {
        self.waiting.lock().map(|w| w.dead.is_none()).unwrap_or(false)
    }

    /// Hands every reply to its caller until the pipe ends, then fails whoever still waits.
    fn read_replies(&self, mut out: BufReader<std::process::ChildStdout>, mut child: Child) {
        let why = loop {
            let frame = match wire::read_frame(&mut out, MAX_REPLY) {
                Ok(Some(frame)) => frame,
                Ok(None) => break None,
                Err(e) => break Some(format!("a broken reply ({e})")),
            };
            let mut body = Body::new(&frame);
            let (Ok(id), Ok(status)) = (body.u64(), body.u8()) else { break Some("a broken reply".into()) };
            let caller = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).calls.remove(&id);
            if let Some(caller) = caller {
                let _ = caller.send(Ok((status, body.rest().to_vec())));
            }
        };
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        let why = match why {
            Some(why) => format!("the inference backend sent {why} and was stopped"),
            None => format!("the inference backend exited ({status}); the next call starts a new one"),
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for (_, caller) in waiting.calls.drain() {
            let _ = caller.send(Err(NnError::new(ErrorKind::RuntimeError, why.clone())));
        }
        waiting.dead = Some(why);
    }

    /// Sends one request and waits for its reply, giving up (and telling the backend) when
    /// `cancel` is set.
    fn call(&self, frame: impl FnOnce(u64) -> Frame, cancel: Option<&AtomicBool>) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(why) = &waiting.dead {
                return Err(NnError::new(ErrorKind::RuntimeError, why.clone()));
            }
            waiting.calls.insert(id, tx);
        }
        if let Err(e) = self.send(frame(id)) {
            self.waiting.lock().unwrap_or_else(|p| p.into_inner()).calls.remove(&id);
            return Err(e);
        }
        let Some(cancel) = cancel else {
            return rx.recv().unwrap_or_else(|_| Err(gone()));
        };
        loop {
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(reply) => return reply,
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(RecvTimeoutError::Timeout) if cancel.load(Ordering::Relaxed) => {
                    self.waiting.lock().unwrap_or_else(|p| p.into_inner()).calls.remove(&id);
                    let _ = self.send(Frame::new(id, wire::CANCEL));
                    return Err(NnError::new(ErrorKind::Cancelled, "the inference was stopped"));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Writes one frame. A failed write means the backend is gone: the next call starts another.
    fn send(&self, mut frame: Frame) -> Result<(), NnError> {
        let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        frame.write_to(&mut *stdin).and_then(|()| stdin.flush()).map_err(|e| {
            let why = format!("the inference backend stopped taking requests: {e}");
            self.waiting.lock().unwrap_or_else(|p| p.into_inner()).dead.get_or_insert(why.clone());
            NnError::new(ErrorKind::RuntimeError, why)
        })
    }

    /// Loads a model into this backend; its signature.
    fn load(&self, digest: &Digest, bytes: &[u8]) -> Result<crate::model::ModelInfo, NnError> {
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

fn gone() -> NnError {
    NnError::new(ErrorKind::RuntimeError, "the inference backend went away")
}

fn decode<T>(status: u8, body: &[u8], ok: impl FnOnce(&mut Body) -> Result<T, NnError>) -> Result<T, NnError> {
    let mut body = Body::new(body);
    match status {
        wire::OK => ok(&mut body),
        wire::ERR => Err(body.error()?),
        _ => Err(NnError::new(ErrorKind::RuntimeError, "the inference backend sent an unknown reply")),
    }
}

/// Loads `bytes` (whose sha256 is `digest`) in the backend process.
pub(crate) fn load(digest: Digest, bytes: &[u8]) -> Result<Model, NnError> {
    let info = conn()?.load(&digest, bytes)?;
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
            let conn = conn()?;
            let reply = conn.call(
                |id| {
                    let mut f = Frame::new(id, wire::RUN);
                    f.bytes(&self.digest).tensors(&inputs);
                    f
                },
                Some(cancel),
            );
            let (status, body) = match reply {
                Ok(reply) => reply,
                Err(e) if e.kind == ErrorKind::Cancelled => return Err(e),
                Err(e) if restarted => return Err(e),
                Err(_) => {
                    restarted = true;
                    continue;
                }
            };
            if status == wire::UNKNOWN_MODEL && !reloaded {
                conn.load(&self.digest, &self.bytes)?;
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
        if let Some(conn) = current.filter(|c| c.alive()) {
            let mut frame = Frame::new(0, wire::RELEASE);
            frame.bytes(&self.digest);
            let _ = conn.send(frame);
        }
    }
}
