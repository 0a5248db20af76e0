//! The inference backend process (`wasmbox-nn`): reads requests on stdin, answers on stdout
//! (`wire`), runs models with `local`. wasmbox starts it on the first model load and closes
//! its stdin on exit, which ends it.
//!
//! The main thread reads and dispatches in order (so a model released, or loaded, before a
//! request is seen that way by it); loading and computing run on a pool of threads that grows
//! with the number of requests in flight, so a long inference never holds up another.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use wasmbox_nn::NnError;
use wasmbox_nn::wire::{self, Body, Digest, Frame};

use crate::local::{Plan, parse};

type Task = Box<dyn FnOnce() + Send>;

/// Models parsed by the pool, waiting to join the main thread's table.
type Parsed = Arc<Mutex<Vec<(Digest, Arc<Plan>)>>>;

/// Threads that grow on demand: a task goes to an idle thread, or a new one.
struct Pool {
    tx: mpsc::Sender<Task>,
    rx: Arc<Mutex<mpsc::Receiver<Task>>>,
    idle: Arc<AtomicUsize>,
}

impl Pool {
    fn new() -> Pool {
        let (tx, rx) = mpsc::channel();
        Pool { tx, rx: Arc::new(Mutex::new(rx)), idle: Arc::new(AtomicUsize::new(0)) }
    }

    fn submit(&self, task: Task) {
        // An idle thread is claimed by taking it off the count; it will pick the task up.
        if self.idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            let _ = self.tx.send(task);
            return;
        }
        let (rx, idle) = (self.rx.clone(), self.idle.clone());
        std::thread::spawn(move || {
            task();
            loop {
                idle.fetch_add(1, Ordering::SeqCst);
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match next {
                    Ok(task) => task(),
                    Err(_) => return,
                }
            }
        });
    }
}

/// The backend's main loop; returns when stdin ends (wasmbox exited or closed it).
pub fn main() {
    // Panics are caught and answered as errors; their messages must not reach any output.
    std::panic::set_hook(Box::new(|_| {}));
    let out = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Arc::new(Mutex::new(File::from(fd))),
        Err(_) => return,
    };
    let reply = move |mut frame: Frame| {
        let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
        // The host is gone if this fails; the read loop ends at the same time.
        let _ = frame.write_to(&mut *out);
    };
    let reply = Arc::new(reply);
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut models: HashMap<Digest, Arc<Plan>> = HashMap::new();
    let loaded: Parsed = Arc::default();
    let running: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>> = Arc::default();
    let pool = Pool::new();
    // The host sends no frame larger than a model plus its header.
    while let Ok(Some(frame)) = wire::read_frame(&mut input, u64::MAX) {
        // Models parsed since the last request join the table here, in request order.
        models.extend(loaded.lock().unwrap_or_else(|p| p.into_inner()).drain(..));
        let mut body = Body::new(&frame);
        let (Ok(id), Ok(op)) = (body.u64(), body.u8()) else { return };
        match op {
            wire::LOAD => {
                let Ok(digest) = body.digest() else { return };
                let bytes = body.rest().to_vec();
                let (reply, loaded) = (reply.clone(), loaded.clone());
                pool.submit(Box::new(move || {
                    let mut frame;
                    match parse(&bytes) {
                        Ok((info, plan)) => {
                            loaded.lock().unwrap_or_else(|p| p.into_inner()).push((digest, Arc::new(plan)));
                            frame = Frame::new(id, wire::OK);
                            frame.info(&info);
                        }
                        Err(e) => frame = error(id, &e),
                    }
                    reply(frame);
                }));
            }
            wire::RUN => {
                let Ok(digest) = body.digest() else { return };
                let Some(plan) = models.get(&digest).cloned() else {
                    reply(Frame::new(id, wire::UNKNOWN_MODEL));
                    continue;
                };
                let inputs = match body.tensors() {
                    Ok(inputs) => inputs,
                    Err(e) => {
                        reply(error(id, &e));
                        continue;
                    }
                };
                let cancel = Arc::new(AtomicBool::new(false));
                running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, cancel.clone());
                let (reply, running) = (reply.clone(), running.clone());
                pool.submit(Box::new(move || {
                    let frame = match plan.compute(&inputs, &cancel) {
                        Ok(outputs) => {
                            let mut f = Frame::new(id, wire::OK);
                            f.tensors(&outputs);
                            f
                        }
                        Err(e) => error(id, &e),
                    };
                    running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    reply(frame);
                }));
            }
            wire::CANCEL => {
                if let Some(flag) = running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            wire::RELEASE => {
                if let Ok(digest) = body.digest() {
                    models.remove(&digest);
                    loaded.lock().unwrap_or_else(|p| p.into_inner()).retain(|(d, _)| *d != digest);
                }
            }
            _ => return,
        }
    }
}

fn error(id: u64, e: &NnError) -> Frame {
    let mut frame = Frame::new(id, wire::ERR);
    frame.error(e);
    frame
}
