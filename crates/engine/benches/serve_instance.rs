//! What `serve` spends per request on Wasm, without sockets: the floor under the HTTP stack
//! (issue 17 target 2, docs/benchmarks.md). One thread, the hello component, the engine the way
//! `serve` configures it (pooling, 16 MiB kept resident, pagemap reset).
//!
//! Run: `cargo bench -p wasmbox-engine --bench serve_instance [-- handle|instantiate]` (one
//! path only, e.g. under `perf record`). Prints CPU time per request
//! (this thread's, so nothing else on the machine counts) for two paths:
//! - `handle`: `HttpHandler::handle` exactly as `serve` calls it for each request: WASI and
//!   wasi:http contexts, a Store, the instance task, the guest's answer, its body read to the end,
//!   the instance dropped;
//! - `instantiate`: only a fresh Store with empty contexts, the component instantiated and
//!   dropped: what a fresh instance per request costs in wasmtime 48 before the guest runs.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use wasmbox_engine::http::{BodyLimits, Handled, HttpAllow, HttpHandler};
use wasmbox_engine::{Capabilities, Compiled, EngineOptions, Limits, Runtime, Stdin, artifact, compile};
use wasmtime::Store;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `one` WARMUP times, then ITERATIONS times measured; returns CPU time per iteration.
async fn per_request(mut one: impl AsyncFnMut()) -> Duration {
    for _ in 0..WARMUP {
        one().await;
    }
    let start = thread_cpu();
    for _ in 0..ITERATIONS {
        one().await;
    }
    (thread_cpu() - start) / ITERATIONS as u32
}

fn runtime() -> (Runtime, wasmtime::component::Component) {
    let rt = Runtime::new(EngineOptions { pooling: true, keep_resident: 16 << 20, ..Default::default() }).unwrap();
    let art = artifact::load(std::path::Path::new(wasmbox_test_programs::HTTP_HELLO_COMPONENT)).unwrap();
    let Compiled::Component(component) = compile(&rt, &art, None, false).unwrap().0 else { unreachable!() };
    (rt, component)
}

fn request() -> hyper::Request<Empty<Bytes>> {
    hyper::Request::builder().uri("http://localhost/").body(Empty::new()).unwrap()
}

/// `serve`'s per-request path; returns CPU time per request.
fn handle() -> Duration {
    let (_rt, component) = runtime();
    let caps = Capabilities { args: vec!["hello".into()], stdin: Stdin::Null, ..Default::default() };
    let limits = Limits { timeout: Some(Duration::from_secs(30)), ..Limits::default() };
    let handler =
        HttpHandler::new(&component, caps, HttpAllow::new(Vec::new()), limits, Arc::new(AtomicUsize::new(0))).unwrap();
    let body = BodyLimits { max_bytes: 10 << 20, idle_timeout: Duration::from_secs(10) };
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio.block_on(per_request(async || {
        let Handled::Response(response, done) = handler.handle(request(), body).await else {
            panic!("the hello component failed")
        };
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello world\n");
        done.outcome().await.result.unwrap();
    }))
}

struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: wasmtime_wasi_http::default_hooks() }
    }
}

/// A fresh Store and instance, dropped; returns CPU time per instance.
fn instantiate() -> Duration {
    let (rt, component) = runtime();
    let mut linker = Linker::<Host>::new(rt.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    let pre = ProxyPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio.block_on(per_request(async || {
        let host = Host { wasi: WasiCtx::builder().build(), http: WasiHttpCtx::new(), table: ResourceTable::new() };
        let mut store = Store::new(rt.engine(), host);
        store.set_epoch_deadline(u64::MAX / 2);
        let proxy = pre.instantiate_async(&mut store).await.unwrap();
        std::hint::black_box(proxy);
        drop(store);
    }))
}

fn main() {
    // `cargo test --benches` lists benches; only measure when benching.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    println!("serve's Wasm work per request, hello component, {ITERATIONS} requests after {WARMUP}, one thread");
    for (name, measure) in [("handle", handle as fn() -> Duration), ("instantiate", instantiate)] {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let cpu = measure();
        println!("{name:>12}: {:>6.2} µs CPU per request", cpu.as_secs_f64() * 1e6);
    }
}
