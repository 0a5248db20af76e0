//! `--deterministic`: the host state a guest could otherwise observe, replaced by fixed rules so
//! the same Wasm, arguments, environment, stdin and seed give the same bytes out on any CPU and
//! on Pulley. Clocks start at 2000-01-01T00:00:00Z (wall) and 0 (monotonic) and advance exactly
//! [`CLOCK_STEP`] per read; random data comes from a generator seeded with the seed. The engine
//! side (NaN canonicalization, deterministic relaxed SIMD) is `EngineOptions::deterministic`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand_core::{Infallible, TryRng};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Each clock read advances the clock by this much.
pub const CLOCK_STEP: Duration = Duration::from_millis(1);
/// 2000-01-01T00:00:00Z in seconds since the Unix epoch.
pub const WALL_START_SECS: u64 = 946_684_800;

/// The seed of a deterministic run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Determinism {
    pub seed: u64,
}

impl Determinism {
    /// Replaces the clocks and random sources of `b`.
    pub fn apply(&self, b: &mut WasiCtxBuilder) {
        b.wall_clock(SteppingWall::default())
            .monotonic_clock(SteppingMonotonic::default())
            .secure_random(SeededRng::new(self.seed))
            .insecure_random(SeededRng::new(self.seed ^ 0x9e37_79b9_7f4a_7c15))
            .insecure_random_seed(u128::from(self.seed));
    }
}

#[derive(Default)]
struct SteppingWall {
    reads: AtomicU64,
}

impl HostWallClock for SteppingWall {
    fn resolution(&self) -> Duration {
        CLOCK_STEP
    }

    fn now(&self) -> Duration {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        Duration::from_secs(WALL_START_SECS) + CLOCK_STEP * n as u32
    }
}

#[derive(Default)]
struct SteppingMonotonic {
    reads: AtomicU64,
}

impl HostMonotonicClock for SteppingMonotonic {
    fn resolution(&self) -> u64 {
        CLOCK_STEP.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::Relaxed) * CLOCK_STEP.as_nanos() as u64
    }
}

/// SplitMix64: small, fast, and the same sequence everywhere for a seed. Not for secrets —
/// a deterministic run has none to keep.
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let (mut a, mut b, mut c) = (SeededRng::new(7), SeededRng::new(7), SeededRng::new(8));
        let (mut x, mut y, mut z) = ([0u8; 13], [0u8; 13], [0u8; 13]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        c.fill_bytes(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        let wall = SteppingWall::default();
        assert_eq!(wall.now(), Duration::from_secs(WALL_START_SECS));
        assert_eq!(wall.now(), Duration::from_secs(WALL_START_SECS) + CLOCK_STEP);
    }
}
