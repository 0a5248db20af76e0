//! A network peer for tests: a tiny TCP server on 127.0.0.1 that stops by itself. Shared with
//! the shim's tests (crates/shim/tests/fixture), which include this file by path.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A one-shot TCP echo-ish server on 127.0.0.1: answers `pong` to the first 4 bytes of each
/// connection, and stops by itself after `lifetime`.
pub fn pong_server(lifetime: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let end = Instant::now() + lifetime;
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 4];
                    if s.read_exact(&mut buf).is_ok() {
                        let _ = s.write_all(b"pong");
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    port
}
