//! `Runtime`: the configured wasmtime `Engine` every container of one wasmbox process shares.

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// What code is compiled for (and, for Pulley, run by): this machine unless told.
    pub target: Target,
    /// NaN canonicalization and deterministic relaxed SIMD: the same float bits on every CPU.
    pub deterministic: bool,
}

/// A wasmtime engine configured the one way wasmbox runs guests.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    options: EngineOptions,
    compat: [u8; 32],
}

impl Runtime {
    pub fn new(options: EngineOptions) -> Result<Runtime, EngineError> {
        let mut config = Config::new();
        if let Target::Triple(triple) = options.target {
            config.target(triple).map_err(|e| EngineError::Internal(e.into()))?;
        }
        config.epoch_interruption(true);
        if options.deterministic {
            config.cranelift_nan_canonicalization(true);
            config.relaxed_simd_deterministic(true);
        }
        config.consume_fuel(options.fuel);
        config.memory_init_cow(true);
        if options.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(1000).total_memories(1000).total_tables(1000).total_stacks(1000);
            pool.total_component_instances(1000);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| EngineError::Internal(e.into()))?;
        let compat = compat_digest(&engine);
        Ok(Runtime { engine, options, compat })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// What code this engine compiles is for (recorded in cache entries and `.cwasm` files).
    pub fn code_target(&self) -> crate::cache::CodeTarget {
        crate::cache::CodeTarget {
            triple: self.options.target.triple().to_string(),
            native: self.options.target == Target::Native,
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
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasmbox-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("failed to spawn the epoch thread");
        Ticker { stop }
    }
}

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
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the sha256 digest is read")
    }
}

fn compat_digest(engine: &Engine) -> [u8; 32] {
    use std::hash::Hash;
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().into()
}
