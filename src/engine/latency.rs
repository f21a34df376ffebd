//! The time from relaying an NS to relaying the NA that answers it, as a fixed-bucket
//! histogram (the engine is sans-IO: both times are the `now` the driver passed in).
//!
//! Only NS the engine itself relayed and NAs it relayed back to the solicitor that NS
//! was relayed for count; the in-kernel programs' relays are not seen here, and an NS
//! nobody answers counts nothing.

use crate::time::Duration;

/// Upper bounds of the buckets, in microseconds (10 µs to 1 s); one more bucket holds
/// everything above the last.
pub const NS_NA_BOUNDS_MICROS: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];

/// Bucket counts (each bucket on its own, not cumulative), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsNaHistogram {
    /// Per bucket of [`NS_NA_BOUNDS_MICROS`], plus the last one for longer times.
    pub buckets: [u64; NS_NA_BOUNDS_MICROS.len() + 1],
    /// Sum of every observed time, in microseconds.
    pub sum_micros: u64,
    /// How many times were observed.
    pub count: u64,
}

impl NsNaHistogram {
    /// Counts one relayed NS answered after `d`.
    pub(crate) fn observe(&mut self, d: Duration) {
        let us = d.total_micros();
        let i = NS_NA_BOUNDS_MICROS.partition_point(|&b| b < us);
        self.buckets[i] = self.buckets[i].saturating_add(1);
        self.sum_micros = self.sum_micros.saturating_add(us);
        self.count = self.count.saturating_add(1);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_time_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let mut h = NsNaHistogram::default();
        for us in [0, 10, 11, 37, 50, 1_000_000, 1_000_001, u64::MAX / 2] {
            h.observe(Duration::from_micros(us));
        }
        let mut want = [0; 17];
        want[0] = 2; // 0 and 10 (the bound is inclusive, like Prometheus' `le`)
        want[1] = 1; // 11
        want[2] = 2; // 37, 50
        want[15] = 1; // 1 s
        want[16] = 2; // above 1 s
        assert_eq!(h.buckets, want);
        assert_eq!(h.count, 8);
    }
}
