//! The inference backend process (`wasmbox-nn`). Its stdin is the control socket
//! (`wasmbox_nn::control`): each `CONNECT` brings a connection, served by a thread of its own
//! that reads a request, computes it with `local` and writes the reply (`wasmbox_nn::wire`);
//! `RELEASE` drops a model. wasmbox closes the control socket when it exits, which ends this
//! process.
//!
//! A computation stops before its next operation once the host has closed its connection (the
//! guest's deadline passed, the container was stopped): the host never writes on a connection
//! while it waits, so anything readable there is that close.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use wasmbox_nn::control;
use wasmbox_nn::wire::{self, Body, Digest, Frame};
use wasmbox_nn::{ErrorKind, NnError};

use crate::local::{Plan, parse};

/// The models loaded, by sha256, shared by every connection.
type Models = Arc<Mutex<HashMap<Digest, Arc<Plan>>>>;

/// The backend's main loop; returns when the control socket ends (wasmbox exited).
pub fn main() {
    // Panics are caught and answered as errors; their messages must not reach any output.
    std::panic::set_hook(Box::new(|_| {}));
    let models: Models = Arc::default();
    let stdin = std::io::stdin();
    loop {
        let (tag, digest, fd) = match control::recv(stdin.as_fd()) {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(e) => {
                // Run by hand, or wasmbox is gone mid-message; only the former can read this.
                eprintln!("wasmbox-nn: stdin is not wasmbox's control socket ({e}); wasmbox starts this program");
                std::process::exit(2);
            }
        };
        match (tag, fd) {
            (control::CONNECT, Some(fd)) => {
                let models = models.clone();
                let spawned = std::thread::Builder::new()
                    .name("nn-connection".into())
                    .spawn(move || serve(UnixStream::from(fd), &models));
                // Without a thread the connection is dropped: the host sees it closed.
                drop(spawned);
            }
            (control::RELEASE, _) => {
                models.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest);
            }
            _ => return,
        }
    }
}

/// Answers one connection's requests until the host closes it.
fn serve(mut conn: UnixStream, models: &Models) {
    // The host sends no frame larger than a model plus its header.
    while let Ok(Some(frame)) = wire::read_frame(&mut conn, u64::MAX) {
        let mut body = Body::new(&frame);
        let (Ok(id), Ok(op)) = (body.u64(), body.u8()) else { return };
        let mut reply = match op {
            wire::LOAD => {
                let Ok(digest) = body.digest() else { return };
                match parse(body.rest()) {
                    Ok((info, plan)) => {
                        models.lock().unwrap_or_else(|p| p.into_inner()).insert(digest, Arc::new(plan));
                        let mut f = Frame::new(id, wire::OK);
                        f.info(&info);
                        f
                    }
                    Err(e) => error(id, &e),
                }
            }
            wire::RUN => {
                let Ok(digest) = body.digest() else { return };
                let plan = models.lock().unwrap_or_else(|p| p.into_inner()).get(&digest).cloned();
                match (plan, body.tensors()) {
                    (None, _) => Frame::new(id, wire::UNKNOWN_MODEL),
                    (Some(_), Err(e)) => error(id, &e),
                    (Some(plan), Ok(inputs)) => match plan.compute(&inputs, &|| host_closed(&conn)) {
                        Ok(outputs) => {
                            let mut f = Frame::new(id, wire::OK);
                            f.tensors(&outputs);
                            f
                        }
                        Err(e) if e.kind == ErrorKind::Cancelled => return,
                        Err(e) => error(id, &e),
                    },
                }
            }
            _ => return,
        };
        if reply.write_to(&mut conn).is_err() {
            return;
        }
    }
}

/// Whether the host has closed `conn` (anything readable while it waits for a reply is that).
fn host_closed(conn: &UnixStream) -> bool {
    let mut fd = libc::pollfd { fd: conn.as_raw_fd(), events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout: poll only reports on the descriptor.
    unsafe { libc::poll(&mut fd, 1, 0) > 0 }
}

fn error(id: u64, e: &NnError) -> Frame {
    let mut frame = Frame::new(id, wire::ERR);
    frame.error(e);
    frame
}
