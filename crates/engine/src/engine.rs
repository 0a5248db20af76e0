//! `Runtime`: the configured wasmtime `Engine` every container of one wasmbox process shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::EngineError;
use crate::target::Target;

/// How often the epoch advances while a deadline is armed; a guest stops within about this
/// much of its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide choices. Artifacts compiled under different options are not interchangeable, so
/// they are part of the compile-cache key (through wasmtime's compatibility hash).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Count fuel (needed for `--fuel`; costs a few percent of guest speed, so off by default).
    pub fuel: bool,
    /// Pre-reserve instance slots (pooling allocator): fastest instantiation for servers that
    /// start many instances; a one-shot `run` is better off without the reservation.
    pub pooling: bool,
    /// With pooling: bytes at the start of each linear memory (and each table) that a slot keeps
    /// resident between instances, reset by copying instead of being given back to the kernel.
    /// Giving pages back (madvise) costs a page fault per touched page on the next instance and,
    /// while another worker runs guests in this address space, a TLB-shootdown interrupt; the
    /// price of keeping them is this many bytes of RSS per warm slot (see [`WARM_SLOTS`]).
    pub keep_resident: u64,
    /// What code is compiled for (and, for Pulley, run by): this machine unless told.
    pub target: Target,
    /// NaN canonicalization and deterministic relaxed SIMD: the same float bits on every CPU.
    pub deterministic: bool,
    /// For a riscv64 target: compile Wasm SIMD to the vector extension V (VLEN >= 128). Cranelift
    /// has no other way to compile SIMD for RISC-V, and a baseline riscv64gc CPU lacks V, so
    /// this is set only for Wasm that uses SIMD ([`crate::target::uses_simd`]); such code then
    /// runs only where the CPU has V (checked before it runs: `target::missing_cpu_features`).
    pub vector: bool,
    /// Compile without epoch checks: the code cannot be stopped by a deadline (`--timeout`),
    /// charged for host work (`--fuel`) or made to yield to other guests on its thread; only
    /// ending the process stops it. For a guest that runs alone in its process (the containerd
    /// shim's containers): compiling takes ~15% less time and the code runs without the checks.
    pub uninterruptible: bool,
}

/// A wasmtime engine configured the one way wasmbox runs guests.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    options: EngineOptions,
    compat: [u8; 32],
    /// The baseline tier (Winch), made on first use: see [`crate::tier`].
    baseline: Arc<OnceLock<Option<Baseline>>>,
}

/// An engine compiling with Winch, wasmtime's baseline compiler: it compiles several times
/// faster than Cranelift, and its code runs slower. Its code is loadable only by itself.
#[derive(Clone)]
pub struct Baseline {
    pub engine: Engine,
    pub compat: [u8; 32],
}

impl Runtime {
    pub fn new(options: EngineOptions) -> Result<Runtime, EngineError> {
        let mut config = base_config(&options)?;
        let engine = if options.pooling { pooled_engine(&mut config, &options)? } else { new_engine(&config)? };
        let compat = compat_digest(&engine, &options);
        Ok(Runtime { engine, options, compat, baseline: Arc::new(OnceLock::new()) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The baseline tier for this runtime's guests, or `None` where it does not apply: Winch
    /// compiles for x86_64 only (its other backends are incomplete in wasmtime 48), cannot
    /// count fuel, and does not canonicalize NaNs (`--deterministic`); cross-compiling has
    /// nothing to gain from it. Its instances are allocated on demand: the tier is transient,
    /// and a second pool would keep its own reservation and warm memory for good.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.get_or_init(|| make_baseline(&self.options)).as_ref()
    }

    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// What code this engine compiles is for (recorded in cache entries and `.cwasm` files).
    pub fn code_target(&self) -> crate::cache::CodeTarget {
        crate::cache::CodeTarget {
            triple: self.options.target.triple().to_string(),
            native: self.options.target == Target::Native,
            deterministic: self.options.deterministic,
        }
    }

    /// sha256 of wasmtime's precompile compatibility hash: equal exactly when compiled
    /// artifacts of one engine can be loaded by the other.
    pub fn compat_digest(&self) -> [u8; 32] {
        self.compat
    }

    /// Advances the epoch every [`EPOCH_TICK`] until the returned guard is dropped.
    pub fn start_ticker(&self) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = self.engine.clone();
        let baseline = self.baseline.clone();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasmbox-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    // The baseline tier's guests have deadlines too (it may be made later).
                    if let Some(Some(b)) = baseline.get() {
                        b.engine.increment_epoch();
                    }
                }
            })
            .expect("failed to spawn the epoch thread");
        Ticker { stop }
    }
}

/// The settings every engine for `options` shares, whichever compiler makes its code.
fn base_config(options: &EngineOptions) -> Result<Config, EngineError> {
    let mut config = Config::new();
    if let Target::Triple(triple) = options.target {
        config.target(triple).map_err(|e| EngineError::Internal(e.into()))?;
    }
    config.epoch_interruption(!options.uninterruptible);
    if options.deterministic {
        // Without a compiler this engine only loads code; whether that code canonicalizes
        // NaNs is recorded in our header and checked before it runs (`check_runnable_here`).
        #[cfg(feature = "cranelift")]
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
    }
    #[cfg(feature = "cranelift")]
    if options.vector && options.target.architecture() == "riscv64" {
        // SAFETY: only compiling is affected; the code's need for V is recorded in it and
        // checked on the device before it runs (wasmtime does not check it on riscv64).
        unsafe {
            config.cranelift_flag_enable("has_v");
            config.cranelift_flag_enable("zvl128b");
        }
    }
    config.consume_fuel(options.fuel);
    config.memory_init_cow(true);
    Ok(config)
}

#[cfg(feature = "compiler")]
fn make_baseline(options: &EngineOptions) -> Option<Baseline> {
    if !cfg!(target_arch = "x86_64") || options.target != Target::Native || options.fuel || options.deterministic {
        return None;
    }
    let mut config = base_config(options).ok()?;
    config.strategy(wasmtime::Strategy::Winch);
    match Engine::new(&config) {
        Ok(engine) => {
            let compat = compat_digest(&engine, options);
            Some(Baseline { engine, compat })
        }
        Err(e) => {
            tracing::debug!("no baseline compiler here: {e:#}");
            None
        }
    }
}

#[cfg(not(feature = "compiler"))]
fn make_baseline(_: &EngineOptions) -> Option<Baseline> {
    None
}

fn new_engine(config: &Config) -> Result<Engine, EngineError> {
    Engine::new(config).map_err(|e| EngineError::Internal(e.into()))
}

/// Instance slots a server pre-reserves; fewer where the address space is smaller.
const POOL_SLOTS: u32 = 1000;
const MIN_POOL_SLOTS: u32 = 16;

/// An engine with the pooling allocator, whose slots are reserved up front: each memory slot
/// is several GiB of address space, so 1000 slots need terabytes. Servers have that; a small
/// board (a 39-bit address space is 512 GiB) or qemu-user does not, and the reservation fails
/// when the engine is made. Then the pool is halved until it fits.
fn pooled_engine(config: &mut Config, options: &EngineOptions) -> Result<Engine, EngineError> {
    let mut slots = POOL_SLOTS;
    // No memory of a 32-bit Wasm can use more than 4 GiB; larger values mean "all of it".
    let keep = usize::try_from(options.keep_resident.min(1 << 32)).unwrap_or(usize::MAX);
    loop {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots).total_memories(slots).total_tables(slots).total_stacks(slots);
        pool.total_component_instances(slots);
        if keep > 0 {
            pool.linear_memory_keep_resident(keep).table_keep_resident(keep);
            // Reset only the pages an instance wrote (PAGEMAP_SCAN, Linux 6.7+) instead of
            // copying all `keep` bytes back; the vendored wasmtime reports every written run.
            pool.pagemap_scan(wasmtime::Enabled::Auto);
            // Every slot that ever ran an instance holds `keep` bytes, so the slots in use must
            // stay few: reuse the least recently used warm slot rather than warming a cold one.
            pool.max_unused_warm_slots(WARM_SLOTS);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(config) {
            Ok(engine) => {
                if slots < POOL_SLOTS {
                    tracing::debug!(slots, "instance pool sized down to fit this machine's address space");
                }
                return Ok(engine);
            }
            Err(e) if slots > MIN_POOL_SLOTS => {
                tracing::debug!(slots, "instance pool does not fit, halving: {e:#}");
                slots /= 2;
            }
            Err(e) => return Err(EngineError::Internal(e.into())),
        }
    }
}

/// Slots kept warm beyond those in use when memory is kept resident: the resident price is
/// then about (instances running at once + this) × `keep_resident`.
pub const WARM_SLOTS: u32 = 0;

/// Stops the epoch thread when dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Feeds a `Hash` value into sha256 so the digest is stable across processes (std's hashers
/// are not guaranteed to be).
#[cfg(feature = "cranelift")]
struct ShaHasher(Sha256);

#[cfg(feature = "cranelift")]
impl std::hash::Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the sha256 digest is read")
    }
}

#[cfg(feature = "cranelift")]
fn compat_digest(engine: &Engine, _: &EngineOptions) -> [u8; 32] {
    use std::hash::Hash;
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().into()
}

/// Without a compiler wasmtime has no compatibility hash. This engine only loads code, and
/// wasmtime checks every load itself (version, target, CPU features, settings), so the digest
/// only has to tell this build's engine configurations apart in cache keys.
#[cfg(not(feature = "cranelift"))]
fn compat_digest(_: &Engine, options: &EngineOptions) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(concat!("wasmbox-engine ", env!("CARGO_PKG_VERSION"), " without compiler\n"));
    // The field added last is left out while it is off, so digests of earlier builds still hold.
    h.update(format!("{options:?}").replace(", uninterruptible: false", ""));
    h.finalize().into()
}
