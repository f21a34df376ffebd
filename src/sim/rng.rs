//! The simulator's seeded randomness (SplitMix64): small, fast, identical on every run.

use crate::time::Duration;

/// A deterministic pseudo-random generator; every random choice in a run comes from one
/// of these, derived from the scenario seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, decorrelated for each `stream` (host index, ...).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Self(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A uniform duration in `0..max`.
    pub fn duration_below(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.total_micros()))
    }

    /// `d` scaled by a uniform factor in `lo_pct..hi_pct` percent.
    pub fn jitter(&mut self, d: Duration, lo_pct: u64, hi_pct: u64) -> Duration {
        let pct = lo_pct + self.below(hi_pct.saturating_sub(lo_pct).max(1));
        Duration::from_micros(d.total_micros() / 100 * pct)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn same_seed_same_stream_same_values() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7, 1);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(7, 1);
        assert!(a.iter().all(|&x| x == r.next_u64()));
        let mut other = Rng::new(7, 2);
        assert_ne!(a[0], other.next_u64());
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut r = Rng::new(1, 0);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            let j = r.jitter(Duration::from_secs(30), 50, 150);
            assert!(j >= Duration::from_secs(15) && j < Duration::from_secs(45));
        }
        assert_eq!(r.below(0), 0);
    }
}
