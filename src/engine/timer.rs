//! Deadlines: a fixed table of engine and per-port timers, and a lazy queue for
//! per-entry `expires_at` deadlines (bindings, pending solicitations).
//!
//! Entries own their `expires_at`; the queue only says when to look. A queued deadline
//! that no longer matches its entry is skipped when it pops, and an entry whose deadline
//! moved later is re-queued then, so refreshing an entry on every frame costs no heap work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::PortId;
use crate::time::Instant;

/// Timers with one deadline per port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortTimer {
    /// Next RA may go out on the port (RFC 4861 MIN_DELAY_BETWEEN_RAS pacing and the
    /// RFC 4389 §6 two P-bit RAs before enabling).
    RaPace = 0,
    /// End of the RFC 4389 §4.1.3.3 proxy-disable hold.
    ProxyHold = 1,
    /// Next round of NS re-verifying the routes an earlier run left on the port.
    LeftoverProbe = 2,
    /// The port's own P-bit RA is due: `ra_wait` after it started waiting for a
    /// router's RA, then every `own_ra_interval` while none is known.
    OwnRa = 3,
}

impl PortTimer {
    /// Every per-port timer, in slot order.
    pub(crate) const ALL: [Self; PORT_TIMERS] = [
        Self::RaPace,
        Self::ProxyHold,
        Self::LeftoverProbe,
        Self::OwnRa,
    ];
}

const PORT_TIMERS: usize = 4;

/// Engine-wide timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalTimer {
    /// Send (or repeat) an RS upstream while downstream ports wait for an RA.
    Solicit = 0,
    /// The earliest end of the grace period of a route an earlier run left.
    RouteGrace = 1,
}

impl GlobalTimer {
    /// Every engine-wide timer, in slot order.
    pub(crate) const ALL: [Self; GLOBAL_TIMERS] = [Self::Solicit, Self::RouteGrace];
}

const GLOBAL_TIMERS: usize = 2;

/// Optional deadlines for the fixed timers; `next` is the earliest.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    global: [Option<Instant>; GLOBAL_TIMERS],
    ports: Vec<[Option<Instant>; PORT_TIMERS]>,
}

impl TimerTable {
    pub(crate) fn new(ports: usize) -> Self {
        Self {
            global: [None; GLOBAL_TIMERS],
            ports: vec![[None; PORT_TIMERS]; ports],
        }
    }

    pub(crate) fn set_global(&mut self, t: GlobalTimer, at: Option<Instant>) {
        self.global[t as usize] = at;
    }

    pub(crate) fn global(&self, t: GlobalTimer) -> Option<Instant> {
        self.global[t as usize]
    }

    pub(crate) fn set_port(&mut self, port: PortId, t: PortTimer, at: Option<Instant>) {
        if let Some(slot) = self.ports.get_mut(port.index()) {
            slot[t as usize] = at;
        }
    }

    pub(crate) fn port(&self, port: PortId, t: PortTimer) -> Option<Instant> {
        self.ports.get(port.index()).and_then(|s| s[t as usize])
    }

    /// Earliest deadline of all fixed timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.global
            .iter()
            .chain(self.ports.iter().flatten())
            .flatten()
            .min()
            .copied()
    }

    /// Clears and returns the global timers due at `now`.
    pub(crate) fn take_due_global(&mut self, now: Instant) -> Option<GlobalTimer> {
        for t in GlobalTimer::ALL {
            let slot = &mut self.global[t as usize];
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                return Some(t);
            }
        }
        None
    }

    /// Clears and returns one per-port timer due at `now`, if any.
    pub(crate) fn take_due_port(&mut self, now: Instant) -> Option<(PortId, PortTimer)> {
        for (i, slots) in self.ports.iter_mut().enumerate() {
            for kind in PortTimer::ALL {
                let t = kind as usize;
                if slots[t].is_some_and(|at| at <= now) {
                    slots[t] = None;
                    // Port counts are validated to fit in u16 (EngineConfig::validate).
                    return Some((PortId(i as u16), kind));
                }
            }
        }
        None
    }
}

/// A min-heap of `(deadline, key)` with lazy invalidation (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct DeadlineQueue<K: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Default for DeadlineQueue<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> DeadlineQueue<K> {
    pub(crate) fn push(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        if self.peek()? <= now {
            self.heap.pop().map(|Reverse(x)| x)
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops queued deadlines whose key fails `keep` (used when the heap outgrows its
    /// entries, so it stays bounded by the tables it serves).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Instant, K) -> bool) {
        self.heap.retain(|Reverse((at, k))| keep(*at, *k));
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn table_next_is_earliest_and_take_clears() {
        let mut t = TimerTable::new(3);
        assert_eq!(t.next(), None);
        t.set_port(PortId(2), PortTimer::ProxyHold, Some(Instant::from_secs(9)));
        t.set_port(PortId(1), PortTimer::RaPace, Some(Instant::from_secs(3)));
        t.set_global(GlobalTimer::Solicit, Some(Instant::from_secs(5)));
        assert_eq!(t.next(), Some(Instant::from_secs(3)));
        assert_eq!(t.take_due_port(Instant::from_secs(2)), None);
        assert_eq!(
            t.take_due_port(Instant::from_secs(4)),
            Some((PortId(1), PortTimer::RaPace))
        );
        assert_eq!(t.port(PortId(1), PortTimer::RaPace), None);
        assert_eq!(t.next(), Some(Instant::from_secs(5)));
        assert_eq!(
            t.take_due_global(Instant::from_secs(5)),
            Some(GlobalTimer::Solicit)
        );
        assert_eq!(t.next(), Some(Instant::from_secs(9)));
        // Out-of-range ports are ignored, not a panic.
        t.set_port(PortId(7), PortTimer::RaPace, Some(Instant::ZERO));
        assert_eq!(t.port(PortId(7), PortTimer::RaPace), None);
    }

    #[test]
    fn queue_pops_in_order_only_when_due() {
        let mut q = DeadlineQueue::default();
        q.push(Instant::from_secs(3), 3u32);
        q.push(Instant::from_secs(1), 1u32);
        q.push(Instant::from_secs(2), 2u32);
        assert_eq!(q.peek(), Some(Instant::from_secs(1)));
        assert_eq!(q.pop_due(Instant::ZERO), None);
        assert_eq!(q.pop_due(Instant::from_secs(2)).map(|x| x.1), Some(1));
        assert_eq!(q.pop_due(Instant::from_secs(2)).map(|x| x.1), Some(2));
        assert_eq!(q.pop_due(Instant::from_secs(2)), None);
        q.retain(|_, k| k != 3);
        assert_eq!(q.len(), 0);
    }
}
