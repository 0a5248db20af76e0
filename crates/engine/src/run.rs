//! `run`: instantiate compiled code as one container and run it to its end — a WASI preview 1
//! command module (`_start`) or a WASI 0.2 command component (`wasi:cli/run`).
//!
//! The result is the guest's exit code, or an [`EngineError`] that says which exit code and why.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ResourceTable, ResourceTableError};
use wasmtime::{Module, Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capabilities::Capabilities;
use crate::compile::Compiled;
use crate::engine::Runtime;
use crate::error::{EngineError, LimitHit};
use crate::limits::{Limits, MemoryLimiter};
use crate::lookup::{HasNetPolicy, shadow_name_lookup};
use crate::meter::{HostWork, MeteredRng};
use crate::net::NetPolicy;
use crate::stable_fs::{HasListings, Listings, shadow_p1, shadow_p2};
use crate::wasi::build_ctx;

/// What a running container has used so far, readable from another thread while it runs.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Time spent running the guest (its code and the host calls it makes), in nanoseconds.
    pub cpu_nanos: AtomicU64,
    /// Bytes of linear memory and tables currently held.
    pub memory_bytes: AtomicU64,
    /// Fuel consumed, when fuel is metered (updated every epoch tick and at the end).
    pub fuel_used: AtomicU64,
}

/// Runs `compiled` with exactly `caps` and `limits`; returns the guest's exit code.
pub async fn run(rt: &Runtime, compiled: &Compiled, caps: &Capabilities, limits: &Limits) -> Result<i32, EngineError> {
    // Deadlines and host-work charges (fuel) are applied on epoch ticks.
    let _ticker = (limits.timeout.is_some() || limits.fuel.is_some()).then(|| rt.start_ticker());
    run_observed(rt, compiled, caps, limits, Arc::new(RunStats::default())).await
}

/// [`run`] publishing what the guest uses to `stats`. The caller keeps the epoch ticking
/// (`Runtime::start_ticker`) when a timeout is set or many guests share a thread: on every tick
/// a running guest yields to the executor.
pub async fn run_observed(
    rt: &Runtime,
    compiled: &Compiled,
    caps: &Capabilities,
    limits: &Limits,
    stats: Arc<RunStats>,
) -> Result<i32, EngineError> {
    if limits.fuel.is_some() && !rt.options().fuel {
        return Err(EngineError::Internal(anyhow::anyhow!("--fuel needs an engine created with fuel enabled")));
    }
    if rt.options().uninterruptible && (limits.fuel.is_some() || limits.timeout.is_some()) {
        return Err(EngineError::Internal(anyhow::anyhow!(
            "--timeout and --fuel need epoch checks, which an uninterruptible engine leaves out"
        )));
    }
    let mut wasi = build_ctx(caps)?;
    let work = meter_host_work(&mut wasi, limits, caps.deterministic.as_ref());
    let deps = match compiled {
        Compiled::Component(_) => crate::deps::DepContexts::new(caps, caps.deps.as_ref())?,
        Compiled::Module(_) => crate::deps::DepContexts::default(),
    };
    let guest = Guest { wasi, stable: caps.deterministic.is_some(), work, nn: Arc::new(caps.nn.clone()), deps };
    let running = async {
        match compiled {
            Compiled::Module(m) => run_module(m, guest, limits, stats.clone()).await,
            Compiled::Component(c) => run_component(c, guest, Arc::new(caps.net.clone()), limits, stats.clone()).await,
        }
    };
    CpuTimed { fut: std::pin::pin!(running), stats: &stats }.await
}

/// Adds the time spent inside each poll of `fut` to `stats.cpu_nanos`.
struct CpuTimed<'a, F> {
    fut: Pin<&'a mut F>,
    stats: &'a RunStats,
}

impl<F: Future> Future for CpuTimed<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        let result = self.fut.as_mut().poll(cx);
        self.stats.cpu_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result
    }
}

struct ModuleHost {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
    #[cfg(feature = "nn")]
    nn: crate::nn::NnState,
}

struct ComponentHost {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    net: Arc<NetPolicy>,
    listings: Listings,
    #[cfg(feature = "nn")]
    nn: crate::nn::NnState,
    deps: crate::deps::DepContexts,
}

impl crate::deps::HasDeps for ComponentHost {
    fn deps(&mut self) -> (&mut crate::deps::DepContexts, &mut ResourceTable) {
        (&mut self.deps, &mut self.table)
    }
}

impl HasListings for ComponentHost {
    fn listings(&mut self) -> &mut Listings {
        &mut self.listings
    }
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HasNetPolicy for ComponentHost {
    fn net_policy(&self) -> Arc<NetPolicy> {
        self.net.clone()
    }
}

/// What one run gives its guest: the WASI context, whether directories are shown in a stable
/// way (`--deterministic`), and the meter of host work charged to fuel.
struct Guest {
    wasi: WasiCtxBuilder,
    stable: bool,
    work: Option<Arc<HostWork>>,
    #[cfg_attr(not(feature = "nn"), allow(dead_code))]
    nn: Arc<crate::nn::NnGrants>,
    /// What each plugged dependency of a composed component may use.
    deps: crate::deps::DepContexts,
}

async fn run_module(module: &Module, guest: Guest, limits: &Limits, stats: Arc<RunStats>) -> Result<i32, EngineError> {
    let Guest { mut wasi, stable, work, nn, deps: _ } = guest;
    let engine = module.engine();
    let pre = link_module(module, stable)?;
    let limiter = MemoryLimiter::observed(limits, stats.clone());
    #[cfg(feature = "nn")]
    let nn = crate::nn::NnState::new(nn, limiter.host_memory(), limits.max_handles);
    #[cfg(not(feature = "nn"))]
    drop(nn);
    let mut host = ModuleHost {
        wasi: wasi.build_p1(),
        limiter,
        #[cfg(feature = "nn")]
        nn,
    };
    // WASI preview 1 descriptors live in the adapter's resource table: the handle budget.
    host.wasi.ctx().table.set_max_capacity(limits.max_handles);
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    arm_limits_observed(&mut store, limits, Some(stats.clone()), work, Yielding::Requeue)?;
    let outcome = with_deadline(limits.timeout, async {
        let instance = pre.instantiate_async(&mut store).await?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    })
    .await;
    let memory_hit = store.data().limiter.hit();
    record_fuel(&store, limits, &stats);
    finish(outcome.map(|r| r.map(|()| 0)), memory_hit, limits)
}

async fn run_component(
    component: &Component,
    guest: Guest,
    net: Arc<NetPolicy>,
    limits: &Limits,
    stats: Arc<RunStats>,
) -> Result<i32, EngineError> {
    let Guest { mut wasi, stable, work, nn, deps } = guest;
    let engine = component.engine();
    let pre = link_component(component, stable)?;
    let limiter = MemoryLimiter::observed(limits, stats.clone());
    let mut table = ResourceTable::new();
    table.set_max_capacity(limits.max_handles);
    #[cfg(feature = "nn")]
    let nn = crate::nn::NnState::new(nn, limiter.host_memory(), limits.max_handles);
    #[cfg(not(feature = "nn"))]
    drop(nn);
    let host = ComponentHost {
        wasi: wasi.build(),
        table,
        limiter,
        net,
        listings: Listings::default(),
        #[cfg(feature = "nn")]
        nn,
        deps,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    arm_limits_observed(&mut store, limits, Some(stats.clone()), work, Yielding::Requeue)?;
    let outcome = with_deadline(limits.timeout, async {
        let command = pre.instantiate_async(&mut store).await?;
        command.wasi_cli_run().call_run(&mut store).await
    })
    .await;
    let memory_hit = store.data().limiter.hit();
    record_fuel(&store, limits, &stats);
    // `run` returning `err` is the component's way to say "exit code 1".
    finish(outcome.map(|r| r.map(|ok| if ok.is_ok() { 0 } else { 1 })), memory_hit, limits)
}

/// Checks that `compiled` links as a WASI command (every import provided, `_start` or
/// `wasi:cli/run` exported) without running it: what `run` would refuse with 126.
pub fn preflight(compiled: &Compiled) -> Result<(), EngineError> {
    match compiled {
        Compiled::Module(m) => link_module(m, false).map(drop),
        Compiled::Component(c) => link_component(c, false).map(drop),
    }
}

/// `stable`: directory listings in name order and fixed file times (`--deterministic`).
fn link_module(module: &Module, stable: bool) -> Result<wasmtime::InstancePre<ModuleHost>, EngineError> {
    let mut linker = wasmtime::Linker::<ModuleHost>::new(module.engine());
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |h| &mut h.wasi).map_err(internal)?;
    if stable {
        shadow_p1(&mut linker, |h| &mut h.wasi).map_err(internal)?;
    }
    #[cfg(feature = "nn")]
    crate::nn::witx::add_to_linker(&mut linker, |h| &mut h.nn).map_err(internal)?;
    let pre = linker.instantiate_pre(module).map_err(link_error)?;
    if module.get_export("_start").is_none() {
        return Err(EngineError::NotRunnable(
            "the module exports no `_start` function: it is a library, not a WASI command".into(),
        ));
    }
    Ok(pre)
}

fn link_component(component: &Component, stable: bool) -> Result<CommandPre<ComponentHost>, EngineError> {
    let mut linker = wasmtime::component::Linker::<ComponentHost>::new(component.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(internal)?;
    shadow_name_lookup(&mut linker).map_err(EngineError::Internal)?;
    if stable {
        shadow_p2(&mut linker).map_err(internal)?;
    }
    #[cfg(feature = "nn")]
    crate::nn::wit::add_to_linker(&mut linker, |h| crate::nn::wit::NnView { state: &mut h.nn, table: &mut h.table })
        .map_err(internal)?;
    crate::deps::link::add_to_linker(&mut linker, component).map_err(internal)?;
    #[cfg(feature = "nn")]
    crate::nn::wit::add_dep_graphs(&mut linker, component, |h| crate::nn::wit::NnView {
        state: &mut h.nn,
        table: &mut h.table,
    })
    .map_err(internal)?;
    let pre = linker.instantiate_pre(component).map_err(link_error)?;
    CommandPre::new(pre).map_err(|e| {
        EngineError::NotRunnable(format!(
            "the component does not export `wasi:cli/run`: it is not a WASI command ({e})"
        ))
    })
}

/// With fuel, the guest's random data comes from generators that count what they produce, so
/// the host work can be charged to its fuel (see `meter`).
pub(crate) fn meter_host_work(
    wasi: &mut WasiCtxBuilder,
    limits: &Limits,
    deterministic: Option<&crate::determinism::Determinism>,
) -> Option<Arc<HostWork>> {
    limits.fuel?;
    let work = Arc::new(HostWork::default());
    match deterministic {
        Some(d) => {
            let seeded =
                |seed| Box::new(crate::determinism::SeededRng::new(seed)) as Box<dyn wasmtime_wasi::Rng + Send>;
            wasi.secure_random(MeteredRng::wrapping(seeded(d.seed), work.clone()))
                .insecure_random(MeteredRng::wrapping(seeded(d.seed ^ 0x9e37_79b9_7f4a_7c15), work.clone()));
        }
        None => {
            wasi.secure_random(MeteredRng::new(work.clone())).insecure_random(MeteredRng::new(work.clone()));
        }
    }
    Some(work)
}

/// Epoch ticks a guest runs before it yields its thread to other guests (a server's worker
/// runs many): 4 × [`crate::engine::EPOCH_TICK`], 15–20 ms. Longer than most requests take, so
/// a short request runs start to finish without another request's instance starting in
/// between: interleaving them would make every one of them wait longer and keep more
/// instances, and their memory, alive at once.
pub const SLICE_TICKS: u32 = 4;

/// How a guest whose time slice is over gives its thread to others.
#[derive(Clone, Copy)]
pub(crate) enum Yielding {
    /// Back of the run queue at once (wasmtime's own yield). For multi-threaded runtimes that
    /// check I/O between task polls anyway (the daemon's), and for a lone guest (`run`).
    Requeue,
    /// tokio's `yield_now`: woken only after the runtime has checked sockets and timers, so on
    /// a single-threaded server worker at tokio's default event interval a spinning guest
    /// cannot hold up the other connections' I/O for more than a slice. (On the daemon's
    /// multi-threaded runtime this starved the API behind a spinning container, so not there.)
    AfterIo,
}

/// Sets fuel and the epoch deadline on a fresh store.
pub(crate) fn arm_limits<T: Send + 'static>(
    store: &mut Store<T>,
    limits: &Limits,
    work: Option<Arc<HostWork>>,
    yielding: Yielding,
) -> Result<(), EngineError> {
    arm_limits_observed(store, limits, None, work, yielding)
}

fn arm_limits_observed<T: Send + 'static>(
    store: &mut Store<T>,
    limits: &Limits,
    stats: Option<Arc<RunStats>>,
    work: Option<Arc<HostWork>>,
    yielding: Yielding,
) -> Result<(), EngineError> {
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(internal)?;
    }
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let fuel = limits.fuel;
    store.set_epoch_deadline(1);
    let mut ticks_run = 0;
    // Each epoch tick the guest runs through: stop it once past its deadline; once it has run a
    // whole time slice, yield to the executor so guests sharing the thread get a turn. Ticks
    // are counted, not time since the store was made: a request waiting for its worker has
    // not used its slice. Without a ticker running the epoch never advances and this costs
    // nothing.
    store.epoch_deadline_callback(move |ctx| {
        // Host work is paid from fuel: once everything charged so far reaches the fuel left,
        // the guest stops as out of fuel. (Lowering the fuel from inside this callback does not
        // reach the running code, so the charge is compared, not subtracted.)
        if let Some(work) = &work
            && work.charged() > 0
            && work.charged() >= ctx.get_fuel()?
        {
            return Err(Trap::OutOfFuel.into());
        }
        if let (Some(stats), Some(fuel)) = (&stats, fuel) {
            let left = ctx.get_fuel().unwrap_or(fuel);
            stats.fuel_used.store(fuel.saturating_sub(left), Ordering::Relaxed);
        }
        Ok(match deadline {
            Some(d) if Instant::now() >= d => UpdateDeadline::Interrupt,
            _ if ticks_run + 1 >= SLICE_TICKS => {
                ticks_run = 0;
                match yielding {
                    Yielding::AfterIo => UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())),
                    Yielding::Requeue => UpdateDeadline::Yield(1),
                }
            }
            _ => {
                ticks_run += 1;
                UpdateDeadline::Continue(1)
            }
        })
    });
    Ok(())
}

fn record_fuel<T>(store: &Store<T>, limits: &Limits, stats: &RunStats) {
    if let Some(fuel) = limits.fuel {
        let left = store.get_fuel().unwrap_or(fuel);
        stats.fuel_used.store(fuel.saturating_sub(left), Ordering::Relaxed);
    }
}

/// `None` when the deadline passed while the guest was blocked in a host call (sleeping,
/// reading stdin): dropping the future cancels the guest there.
pub(crate) async fn with_deadline<F: Future>(timeout: Option<Duration>, fut: F) -> Option<F::Output> {
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.ok(),
        None => Some(fut.await),
    }
}

pub(crate) fn finish(
    outcome: Option<wasmtime::Result<i32>>,
    memory_hit: bool,
    limits: &Limits,
) -> Result<i32, EngineError> {
    let timeout = || EngineError::Limit(LimitHit::Timeout(limits.timeout.unwrap_or_default()));
    let err = match outcome {
        None => return Err(timeout()),
        Some(Ok(code)) => return Ok(code),
        Some(Err(e)) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return Err(EngineError::Limit(LimitHit::Fuel(limits.fuel.unwrap_or(0)))),
        Some(Trap::Interrupt) => return Err(timeout()),
        _ => {}
    }
    // A full resource table is the handle budget, not a bug of the guest's.
    if matches!(err.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full)) {
        return Err(EngineError::Limit(LimitHit::Handles(limits.max_handles)));
    }
    let trap = err.downcast_ref::<Trap>().copied();
    // Growth past the limit fails the Wasm way (memory.grow returns -1) and the guest goes on.
    // Only a failure outside guest code (instantiation could not get its memory) was stopped by
    // the limit; a trap afterwards is the guest's own and is reported as what it is, with the
    // refused growth named so an out-of-memory abort is still recognisable.
    if memory_hit && trap.is_none() {
        return Err(EngineError::Limit(LimitHit::Memory(limits.memory_bytes)));
    }
    let backtrace = err.downcast_ref::<WasmBacktrace>().map(|bt| format!("\n{bt}")).unwrap_or_default();
    let mut message = match trap {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    if memory_hit {
        message.push_str(&format!(" (memory.grow had been refused: {})", LimitHit::Memory(limits.memory_bytes)));
    }
    Err(EngineError::Trap { message, backtrace: backtrace.trim_end().to_string(), memory_hit })
}

pub(crate) fn internal(e: wasmtime::Error) -> EngineError {
    EngineError::Internal(e.into())
}

/// Maps a linking failure to "cannot run", naming the missing import and what would provide it.
pub(crate) fn link_error(e: wasmtime::Error) -> EngineError {
    let text = format!("{e:#}");
    // wasmtime 48 words it "unknown import: `m::f` has not been defined" (modules) and
    // "component imports instance `i`, but ..." (components): the name is the first `quoted` word.
    let import = ["unknown import", "component imports"]
        .iter()
        .any(|p| text.contains(p))
        .then(|| text.split('`').nth(1).map(str::to_string))
        .flatten();
    match import {
        Some(import) => {
            let import = import.replace("::", "#");
            let hint = import_hint(&import);
            EngineError::MissingImport { import, hint: Some(hint) }
        }
        None => EngineError::NotRunnable(format!("cannot link the artifact: {text}")),
    }
}

/// What to do about a missing import, by the family it belongs to.
fn import_hint(import: &str) -> String {
    const PROVIDED: &str = "wasmbox run provides WASI preview 1 (wasi_snapshot_preview1) and WASI 0.2 \
        (wasi:cli, wasi:filesystem, wasi:sockets, wasi:clocks, wasi:random, wasi:io)";
    if import.starts_with("wasi:http/") {
        format!("this is an HTTP component (wasi:http); {PROVIDED}")
    } else if import.starts_with("wasi_unstable#") {
        "the module targets the old WASI snapshot 0 (wasi_unstable); rebuild it for wasm32-wasip1".into()
    } else if import.starts_with("env#") {
        format!(
            "the module expects a non-WASI host (Emscripten or a JS embedder); build it for wasm32-wasip1 or wasm32-wasip2; {PROVIDED}"
        )
    } else if import.starts_with("wasi") {
        format!("that WASI interface or version is not available; {PROVIDED}")
    } else if import.contains(':') && !import.contains('#') {
        // A component's interface import: another component is meant to provide it.
        format!(
            "no component provides `{import}`: plug one that exports it (`wasmbox compose APP --plug DEP -o OUT`, \
             or `[dependencies]` in wasmbox.toml)"
        )
    } else {
        format!("the artifact needs a host that implements `{import}`; {PROVIDED}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_are_extracted() {
        let e = link_error(wasmtime::format_err!("unknown import: `acme:metrics::emit` has not been defined"));
        assert!(matches!(&e, EngineError::MissingImport { import, .. } if import == "acme:metrics#emit"), "{e:?}");
        let e = link_error(wasmtime::format_err!(
            "component imports instance `acme:metrics/emit@1.0.0`, but a matching implementation was not found in the linker"
        ));
        assert!(
            matches!(&e, EngineError::MissingImport { import, .. } if import == "acme:metrics/emit@1.0.0"),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), 126);
    }

    #[test]
    fn an_uninterruptible_engine_runs_but_refuses_a_deadline() {
        let rt = Runtime::new(crate::EngineOptions { uninterruptible: true, ..Default::default() }).unwrap();
        let wat = br#"(module (func (export "_start")))"#.to_vec();
        let artifact = crate::artifact::from_bytes(std::path::Path::new("t.wat"), wat).unwrap();
        let (compiled, _) = crate::compile(&rt, &artifact, None, false).unwrap();
        let caps = Capabilities::default();
        let block_on = |limits: Limits| {
            let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            tokio.block_on(run(&rt, &compiled, &caps, &limits))
        };
        assert_eq!(block_on(Limits::default()).unwrap(), 0);
        let e = block_on(Limits { timeout: Some(Duration::from_secs(5)), ..Limits::default() }).unwrap_err();
        assert!(e.to_string().contains("--timeout"), "{e}");
    }
}
