//! What the live driver counts next to the engine's counters (`live_*` in `status`), and
//! its rate-limited warnings for per-packet problems.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use parking_lot::Mutex;

/// Counters the driver keeps next to the engine's, shared by its threads.
#[derive(Debug, Default)]
pub(super) struct DriverCounters {
    pub(super) rx_kernel_drops: AtomicU64,
    pub(super) rx_errors: AtomicU64,
    pub(super) tx_errors: AtomicU64,
    pub(super) route_errors: AtomicU64,
    pub(super) route_conflicts: AtomicU64,
    pub(super) routes_orphaned: AtomicU64,
    pub(super) link_events: AtomicU64,
    pub(super) netlink_resyncs: AtomicU64,
    pub(super) state_write_errors: AtomicU64,
}

impl DriverCounters {
    /// Adds one to `counter`.
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter with its `status` name.
    pub(super) fn list(&self) -> Vec<(String, u64)> {
        let l = |n: &str, v: &AtomicU64| (n.to_owned(), v.load(Ordering::Relaxed));
        vec![
            l("live_rx_kernel_drops", &self.rx_kernel_drops),
            l("live_rx_errors", &self.rx_errors),
            l("live_tx_errors", &self.tx_errors),
            l("live_route_errors", &self.route_errors),
            l("live_route_conflicts", &self.route_conflicts),
            l("live_routes_orphaned", &self.routes_orphaned),
            l("live_link_events", &self.link_events),
            l("live_netlink_resyncs", &self.netlink_resyncs),
            l("live_state_write_errors", &self.state_write_errors),
        ]
    }
}

/// Logs the first occurrence of a per-packet problem and then at most one line per
/// interval with how many more happened (the counter has the exact total).
#[derive(Debug)]
pub(super) struct RateLimitedLog {
    last: Mutex<Option<(StdInstant, u64)>>,
}

impl RateLimitedLog {
    const INTERVAL: StdDuration = StdDuration::from_secs(10);

    const fn new() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }

    pub(super) fn warn(&self, msg: std::fmt::Arguments<'_>) {
        let mut last = self.last.lock();
        match &mut *last {
            None => {
                log::warn!("{msg}");
                *last = Some((StdInstant::now(), 0));
            }
            Some((at, suppressed)) if at.elapsed() >= Self::INTERVAL => {
                log::warn!(
                    "{msg} (and {suppressed} more like it in the last {}s)",
                    at.elapsed().as_secs()
                );
                *at = StdInstant::now();
                *suppressed = 0;
            }
            Some((_, suppressed)) => *suppressed += 1,
        }
    }
}

/// Receive problems.
pub(super) static RX_LOG: RateLimitedLog = RateLimitedLog::new();
/// Transmit problems, and in-kernel entries that could not be written.
pub(super) static TX_LOG: RateLimitedLog = RateLimitedLog::new();
