//! `HostWork`: work a guest makes the host do on its behalf inside one host call, charged to
//! the guest's fuel — so `--fuel` bounds CPU spent in host calls too, not only in Wasm code.
//!
//! What is metered: random data (`random_get`, `get-random-bytes`, `get-insecure-random-bytes`),
//! the one host call whose work a guest sizes freely and repeats cheaply, one fuel unit per
//! value the generator produces (about one per byte). Other host calls are bounded in size by
//! the guest's own memory and by the budgets in `Limits` (handles, output caps).
//! The charge is checked on every epoch tick (every few milliseconds): once the charges reach
//! the fuel left, the guest stops as out of fuel (137).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{Infallible, TryRng};

/// Host work done for one container so far, in fuel units.
#[derive(Debug, Default)]
pub struct HostWork {
    charged: AtomicU64,
}

impl HostWork {
    fn add(&self, units: u64) {
        self.charged.fetch_add(units, Ordering::Relaxed);
    }

    /// Everything charged since the container started.
    pub fn charged(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }
}

/// A random generator that reports what it produces to a [`HostWork`].
pub struct MeteredRng {
    inner: Box<dyn wasmtime_wasi::Rng + Send>,
    work: Arc<HostWork>,
}

impl MeteredRng {
    /// A fresh secure generator (wasmtime-wasi's own) whose output is counted in `work`.
    pub fn new(work: Arc<HostWork>) -> Self {
        MeteredRng { inner: wasmtime_wasi::thread_rng(), work }
    }

    /// `inner`'s output, counted in `work` (deterministic runs meter their seeded generator).
    pub fn wrapping(inner: Box<dyn wasmtime_wasi::Rng + Send>, work: Arc<HostWork>) -> Self {
        MeteredRng { inner, work }
    }
}

impl TryRng for MeteredRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.work.add(1);
        Ok(self.inner.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.work.add(1);
        Ok(self.inner.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.work.add(dst.len() as u64);
        self.inner.fill_bytes(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn counts_what_it_produces() {
        let work = Arc::new(HostWork::default());
        let mut rng = MeteredRng::new(work.clone());
        let mut buf = [0u8; 100];
        rng.fill_bytes(&mut buf);
        rng.next_u64();
        assert_eq!(work.charged(), 101);
    }
}
