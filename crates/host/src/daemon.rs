//! `daemon`: the long-running process — one lock, one socket, one manager. Runs in the
//! foreground (for systemd or the CLI's auto-start) until SIGTERM or SIGINT.
//!
//! Only one daemon per `$WASMBOX_HOME`: it holds an exclusive `flock` on `wasmbox.lock` for its
//! whole life, so a second one (say, two CLIs auto-starting at once) exits at once, and a
//! socket file left by a killed daemon is known to be stale and replaced.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use wasmbox_engine::reserve::FdReserve;

use crate::error::HostError;
use crate::manager::{EndRequest, Manager};

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another wasmbox daemon is already running for {0}")]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Io(String),
}

pub fn socket_path(home: &Path) -> PathBuf {
    home.join("wasmbox.sock")
}

/// Runs the daemon for `home` until a signal; `ready` is called once the socket accepts.
pub fn run(home: &Path, ready: impl FnOnce(&Path, &crate::recover::Recovered)) -> Result<(), DaemonError> {
    let io = |what: &str, e: std::io::Error| DaemonError::Io(format!("{what}: {e}"));
    std::fs::create_dir_all(home).map_err(|e| io(&format!("failed to create {}", home.display()), e))?;
    let lock_path = home.join("wasmbox.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io(&format!("failed to open {}", lock_path.display()), e))?;
    // SAFETY: flock on a descriptor we own; the lock lives as long as `lock`.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(DaemonError::AlreadyRunning(home.to_path_buf()));
    }
    // The lock file names the daemon's pid (for people and tests; the lock is what counts).
    let _ = lock.set_len(0).and_then(|()| {
        use std::io::Write;
        (&lock).write_all(format!("{}\n", std::process::id()).as_bytes())
    });
    raise_fd_limit();
    // A full disk or a file-size limit must fail the write (EFBIG), not kill the daemon.
    // SAFETY: setting a signal disposition to "ignore" has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // A panic in one container's task is a wasmbox bug in that container, not the daemon's end.
    std::panic::set_hook(Box::new(|info| tracing::error!("internal error (a wasmbox bug): {info}")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmbox-daemon")
        // Check timers and sockets between every two task polls: a spinning guest is always
        // runnable (it yields after each time slice), and at tokio's default (every 61 polls)
        // the sleeping guests beside it would wake up to 61 slices late.
        .event_interval(1)
        .build()
        .map_err(|e| io("failed to start the runtime", e))?;
    let result = runtime.block_on(async {
        let manager = Manager::open(home)?;
        let recovered = manager.recover()?;
        let socket = socket_path(home);
        let listener =
            bind_private(&socket).map_err(|e| io(&format!("failed to listen on {}", socket.display()), e))?;
        ready(&socket, &recovered);
        serve(manager.clone(), listener).await;
        shutdown(&manager).await;
        let _ = std::fs::remove_file(&socket);
        Ok(())
    });
    // A container stopped while blocked in a file operation (a FIFO read) leaves a blocking
    // thread behind; the daemon must still exit.
    runtime.shutdown_background();
    result
}

/// Binds the socket with mode 0600 from the first instant (umask 077 around the bind).
fn bind_private(socket: &Path) -> std::io::Result<tokio::net::UnixListener> {
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(0o077) };
    let bound = tokio::net::UnixListener::bind(socket);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Descriptors kept for the API when containers have used up the process's limit.
const API_FD_RESERVE: usize = 64;

async fn serve(manager: Arc<Manager>, listener: tokio::net::UnixListener) {
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let reserve = Arc::new(FdReserve::new(API_FD_RESERVE));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut signal => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if FdReserve::is_exhaustion(&e) && reserve.release() > 0 => {
                tracing::warn!("out of file descriptors; answering the API from the reserve");
                continue;
            }
            Err(_) => {
                // Back off rather than spin; containers ending will free descriptors.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let m = manager.clone();
        let reserve = reserve.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| crate::api::handle(m.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            reserve.refill();
        });
    }
}

/// Ends every container; the database keeps them "running" so the next start recovers them.
async fn shutdown(manager: &Arc<Manager>) {
    manager.shutting_down.store(true, Ordering::Relaxed);
    let live: Vec<_> = {
        let live = manager.live.lock().unwrap_or_else(|e| e.into_inner());
        live.values().map(|l| (l.end.clone(), l.ended.clone())).collect()
    };
    for (end, _) in &live {
        let _ = end.send(Some(EndRequest::Daemon));
    }
    for (_, mut ended) in live {
        let _ = tokio::time::timeout(Duration::from_secs(10), ended.wait_for(|e| *e)).await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
}

/// Thousands of containers each may hold a log file open: take the hard descriptor limit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
