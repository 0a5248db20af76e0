//! `Limits`: what one container may consume, and the `ResourceLimiter` that enforces the memory part.
//!
//! Memory is counted per container across *all* linear memories and tables, so a module cannot
//! escape the limit by declaring many small memories.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::run::RunStats;

/// Resource limits of one container. The defaults are the documented ones for `wasmbox run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of all linear memories plus tables (8 bytes per table element).
    /// Default: [`Limits::DEFAULT_MEMORY`] (1 GiB).
    pub memory_bytes: u64,
    /// Wall-clock deadline for the whole run. Default: none.
    pub timeout: Option<Duration>,
    /// Instruction budget (wasmtime fuel units, about one per instruction). Default: none.
    pub fuel: Option<u64>,
    /// Maximum number of core instances, memories and tables each. Default: 1000.
    pub max_instances: usize,
    /// Open handles at once: files, directories, sockets, streams, pollables, HTTP fields —
    /// every host object a guest can make the host keep (and every host fd it holds is one).
    /// Past it the opening call fails inside the guest. Default: [`Limits::DEFAULT_MAX_HANDLES`].
    pub max_handles: usize,
}

impl Limits {
    pub const DEFAULT_MEMORY: u64 = 1 << 30;
    pub const DEFAULT_MAX_INSTANCES: usize = 1000;
    pub const DEFAULT_MAX_HANDLES: usize = 1024;
    /// Host memory one guest-built set of HTTP fields (headers, trailers) may take.
    pub const HTTP_FIELDS_BYTES: usize = 32 << 10;

    /// The handle budget of a store that serves wasi:http: also small enough that the host
    /// heap behind the largest possible fields in every handle stays within `memory_bytes`,
    /// so a guest cannot hold more host memory through headers than it may hold itself.
    pub fn http_handles(&self) -> usize {
        let by_memory = (self.memory_bytes / Self::HTTP_FIELDS_BYTES as u64).max(16) as usize;
        self.max_handles.min(by_memory)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: Self::DEFAULT_MEMORY,
            timeout: None,
            fuel: None,
            max_instances: Self::DEFAULT_MAX_INSTANCES,
            max_handles: Self::DEFAULT_MAX_HANDLES,
        }
    }
}

/// Bytes charged per table element: tables hold pointer-sized references on the host.
pub const TABLE_ELEMENT_BYTES: u64 = 8;

/// Tracks one container's memory total and refuses growth past it.
///
/// Growth past the limit fails the way Wasm says it fails (`memory.grow` returns -1), and
/// [`MemoryLimiter::hit`] records it, so a guest that then traps is reported as stopped by the
/// memory limit. Host memory held for the guest ([`HostMemory`]: WASI-NN tensors) is charged to
/// the same total.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    account: Arc<Account>,
    max_instances: usize,
    /// Where the current total is published for `stats`, if anyone watches.
    stats: Option<Arc<RunStats>>,
}

/// One container's memory total, shared by its limiter and its host-side charges.
#[derive(Debug, Default)]
struct Account {
    used: AtomicU64,
    hit: AtomicBool,
}

impl MemoryLimiter {
    pub fn new(limits: &Limits) -> Self {
        MemoryLimiter {
            limit: limits.memory_bytes,
            account: Arc::default(),
            max_instances: limits.max_instances,
            stats: None,
        }
    }

    /// A limiter that also publishes the container's memory total to `stats`.
    pub fn observed(limits: &Limits, stats: Arc<RunStats>) -> Self {
        MemoryLimiter { stats: Some(stats), ..MemoryLimiter::new(limits) }
    }

    /// Whether anything was refused for going past the limit.
    pub fn hit(&self) -> bool {
        self.account.hit.load(Ordering::Relaxed)
    }

    /// The handle host code uses to charge what it holds for this container.
    pub fn host_memory(&self) -> HostMemory {
        HostMemory { limit: self.limit, account: self.account.clone(), stats: self.stats.clone() }
    }

    fn grow(&mut self, current: u64, desired: u64) -> bool {
        let extra = desired.saturating_sub(current);
        self.host_memory().try_charge(extra) || {
            self.account.hit.store(true, Ordering::Relaxed);
            false
        }
    }
}

/// Host memory held on a container's behalf, counted against its memory limit.
#[derive(Debug, Clone)]
pub struct HostMemory {
    limit: u64,
    account: Arc<Account>,
    stats: Option<Arc<RunStats>>,
}

impl HostMemory {
    /// Charges `bytes` if they fit under the limit; false (and nothing charged) if not.
    pub fn try_charge(&self, bytes: u64) -> bool {
        let limit = self.limit;
        let charged = self.account.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            used.checked_add(bytes).filter(|total| *total <= limit)
        });
        match charged {
            Ok(before) => {
                self.publish(before + bytes);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back `bytes` charged earlier.
    pub fn release(&self, bytes: u64) {
        let before = self
            .account
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| Some(used.saturating_sub(bytes)))
            .unwrap_or(0);
        self.publish(before.saturating_sub(bytes));
    }

    /// Records that the container was stopped for holding too much (its outcome is then the
    /// memory limit, 137).
    pub fn mark_hit(&self) {
        self.account.hit.store(true, Ordering::Relaxed);
    }

    fn publish(&self, total: u64) {
        if let Some(stats) = &self.stats {
            stats.memory_bytes.store(total, Ordering::Relaxed);
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(current as u64, desired as u64))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let bytes = |n: usize| (n as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired)))
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn total_is_shared_across_memories_and_tables() {
        let mut l = MemoryLimiter::new(&Limits { memory_bytes: 100, ..Limits::default() });
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(!l.hit());
        assert!(!l.memory_growing(0, 60, None).unwrap(), "second memory must not fit");
        assert!(l.hit());
        assert!(l.table_growing(0, 5, None).unwrap(), "40 bytes of table fit beside 60 of memory");
        assert!(!l.table_growing(5, 6, None).unwrap());
    }

    #[test]
    fn host_memory_shares_the_total() {
        let mut l = MemoryLimiter::new(&Limits { memory_bytes: 100, ..Limits::default() });
        let host = l.host_memory();
        assert!(host.try_charge(70));
        assert!(!l.memory_growing(0, 40, None).unwrap(), "the host's 70 bytes count");
        assert!(!host.try_charge(31));
        host.release(70);
        assert!(l.memory_growing(0, 40, None).unwrap());
        host.release(1000);
        assert!(host.try_charge(100), "a release never goes below zero");
    }
}
