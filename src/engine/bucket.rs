//! Token buckets that budget relayed solicitations (RFC 6583 §7) and RS relaying.

use crate::time::{Duration, Instant};

/// A classic token bucket in micro-tokens so refills need no floating point.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens per second.
    rate: u64,
    /// Capacity in micro-tokens.
    cap: u64,
    /// Current level in micro-tokens.
    level: u64,
    last: Instant,
}

const MICRO: u64 = 1_000_000;

impl TokenBucket {
    /// A full bucket; a burst below 1 still allows one token.
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let cap = u64::from(burst.max(1)) * MICRO;
        Self {
            rate: u64::from(rate),
            cap,
            level: cap,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed: Duration = now - self.last;
        self.last = self.last.max(now);
        // elapsed µs × tokens/s = micro-tokens; saturating so a long idle period is fine.
        let add = elapsed.total_micros().saturating_mul(self.rate);
        self.level = self.level.saturating_add(add).min(self.cap);
    }

    /// Takes one token if available.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.level >= MICRO {
            self.level -= MICRO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::ZERO;
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0), "burst of 3 exhausted");
        // 10/s: one token per 100 ms.
        assert!(!b.take(t0 + Duration::from_millis(99)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(150)));
        // Long idle refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        let got = (0..10).filter(|_| b.take(later)).count();
        assert_eq!(got, 3);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let mut b = TokenBucket::new(1, 1, Instant::from_secs(5));
        assert!(b.take(Instant::from_secs(5)));
        assert!(!b.take(Instant::from_secs(4)));
    }
}
