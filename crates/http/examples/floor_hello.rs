//! The floor under `serve`'s per-request cost (bench/serve_vs_wasmtime.py --floor): the same
//! HTTP stack as `wasmbox serve` — one single-threaded tokio runtime per worker, connections
//! accepted on the first and handed round-robin to the workers, hyper's HTTP/1 with its header
//! timer, TCP_NODELAY — answering every request with `hello world\n` and running no Wasm at
//! all. No Wasm server built on this stack can be faster than this, so its ratio against
//! `wasmtime serve` bounds the ratio `wasmbox serve` can reach on the same machine and client.
//!
//! Usage: floor_hello ADDR [WORKERS]   (prints `Serving HTTP on http://ADDR/` when listening)

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr =
        args.next().and_then(|a| a.parse().ok()).expect("usage: floor_hello ADDR [WORKERS]");
    let workers: usize = args
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let main = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut handles = vec![main.handle().clone()];
    for _ in 1..workers.max(1) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        handles.push(runtime.handle().clone());
        // Each worker runs the connections spawned onto it for the life of the process.
        std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    }
    main.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("Serving HTTP on http://{}/", listener.local_addr()?);
        for next in (0..handles.len()).cycle() {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let Ok(stream) = stream.into_std() else { continue };
            handles[next].spawn(async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), service_fn(hello));
                let _ = conn.await;
            });
        }
        Ok(())
    })
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello world\n"))))
}
