//! The crate's one pseudo-random generator, SplitMix64 (Steele, Lea, Flood 2014): the
//! engine's jitter, the simulator's hosts and links and the load example all draw from it,
//! so a seed means the same sequence everywhere and every run with that seed repeats.
//! It is not cryptographic; the modulo bias of [`Rng::below`] is irrelevant for jitter.

use crate::time::Duration;

/// The SplitMix64 increment (the golden ratio in 64 bits), also used to decorrelate streams.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A seeded SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose first draw follows `seed` directly (the engine's, seeded from the
    /// config).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for `seed`, decorrelated for each `stream` (the simulator's host index,
    /// ...): one draw is discarded so neighbouring streams do not start side by side.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut r = Self::new(seed ^ stream.wrapping_mul(GOLDEN));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..bound` (`0` when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
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

    /// The reference SplitMix64 outputs for seed 0 (Vigna's splitmix64.c), so a change
    /// to the generator — which would change every scenario's output — fails here first.
    #[test]
    fn matches_reference_splitmix64() {
        let mut r = Rng::new(0);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    #[test]
    fn same_seed_same_sequence_different_seed_or_stream_different() {
        let draw = |mut r: Rng| -> Vec<u64> { (0..8).map(|_| r.next_u64()).collect() };
        assert_eq!(draw(Rng::new(7)), draw(Rng::new(7)));
        assert_ne!(draw(Rng::new(7)), draw(Rng::new(8)));
        assert_eq!(draw(Rng::for_stream(7, 1)), draw(Rng::for_stream(7, 1)));
        assert_ne!(draw(Rng::for_stream(7, 1)), draw(Rng::for_stream(7, 2)));
    }

    #[test]
    fn bounded_draws_stay_in_range_and_spread() {
        let mut r = Rng::for_stream(1, 0);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.below(10);
            seen[usize::try_from(v).expect("below 10")] = true;
            let j = r.jitter(Duration::from_secs(30), 50, 150);
            assert!(j >= Duration::from_secs(15) && j < Duration::from_secs(45));
            assert!(r.duration_below(Duration::from_millis(5)) < Duration::from_millis(5));
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.below(0), 0);
    }
}
