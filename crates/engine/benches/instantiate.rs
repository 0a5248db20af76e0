//! In-process instantiate latency: a fresh Store + WASI context + instance of a real Rust
//! WASI module, per iteration, the way a server would per request.
//!
//! Run: `cargo bench -p wasmbox-engine --bench instantiate` (prints p50/p99 per allocator).
//! Pooling allocator with copy-on-write memory images is what `serve` will use; the on-demand
//! allocator (what one-shot `run` uses) is printed beside it for comparison.

use std::time::{Duration, Instant};

use wasmbox_engine::{Compiled, EngineOptions, Limits, Runtime, artifact, compile};
use wasmtime::{Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

const WARMUP: usize = 500;
const ITERATIONS: usize = 20_000;

struct Host {
    wasi: WasiP1Ctx,
    limiter: wasmbox_engine::limits::MemoryLimiter,
}

fn measure(pooling: bool) -> Vec<Duration> {
    let rt = Runtime::new(EngineOptions { fuel: false, pooling, ..Default::default() }).unwrap();
    let art = artifact::load(std::path::Path::new(wasmbox_test_programs::PROBE_MODULE)).unwrap();
    let Compiled::Module(module) = compile(&rt, &art, None, false).unwrap().0 else { unreachable!() };
    let mut linker = Linker::<Host>::new(rt.engine());
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |h| &mut h.wasi).unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let limits = Limits::default();
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut samples = Vec::with_capacity(ITERATIONS);
    tokio.block_on(async {
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let wasi = WasiCtxBuilder::new().build_p1();
            let mut store =
                Store::new(rt.engine(), Host { wasi, limiter: wasmbox_engine::limits::MemoryLimiter::new(&limits) });
            store.limiter(|h| &mut h.limiter);
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let elapsed = start.elapsed();
            std::hint::black_box(instance);
            drop(store);
            if i >= WARMUP {
                samples.push(elapsed);
            }
        }
    });
    samples.sort();
    samples
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too. Only run when benching.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("instantiate: fresh Store + WASI ctx + instance of probe.wasm (wasm32-wasip1), {ITERATIONS} iterations");
    for (name, pooling) in [("pooling+cow", true), ("on-demand+cow", false)] {
        let s = measure(pooling);
        println!(
            "{name:>14}: p50 {:>8.2?}  p90 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            pct(&s, 0.5),
            pct(&s, 0.9),
            pct(&s, 0.99),
            s.last().unwrap()
        );
    }
}
