//! Pending solicitations: targets the relay has solicited on other ports and who asked,
//! so the answer goes to the right solicitor, retransmissions are paced (one NS per
//! target per RetransTimer per port, RFC 4861 §7.2.2) and targets that never answered
//! are remembered briefly (negative cache) instead of being relayed again.
//!
//! This table is the only state an unanswered target ever creates, and it is bounded
//! globally and per ingress port (RFC 6583 §7).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;

use super::PortId;
use super::timer::DeadlineQueue;
use crate::time::{Duration, Instant};
use crate::wire::Mac;

/// Most solicitors remembered per target; more are served by the binding table.
pub(crate) const MAX_SOLICITORS: usize = 4;

/// Someone who asked for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Solicitor {
    pub(crate) addr: Ipv6Addr,
    pub(crate) port: PortId,
    pub(crate) mac: Mac,
    /// When it last asked (pacing of NS for bound targets).
    pub(crate) asked_at: Instant,
    /// When the engine last relayed its NS, until the answer is relayed back (the
    /// NS→NA time).
    pub(crate) relayed_at: Option<Instant>,
}

/// One pending target.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Port whose NS created the entry (per-port accounting).
    pub(crate) ingress: PortId,
    pub(crate) created: Instant,
    pub(crate) expires_at: Instant,
    /// Last time the NS went out, and to which ports (bit per `PortId`).
    pub(crate) last_relay: Instant,
    pub(crate) relayed_mask: u64,
    pub(crate) solicitors: [Option<Solicitor>; MAX_SOLICITORS],
    /// Never answered: negative-cache entry until `expires_at`.
    pub(crate) failed: bool,
    /// An NA for the target was seen.
    pub(crate) answered: bool,
    scheduled: Option<Instant>,
}

impl Pending {
    /// Remembers a solicitor (replacing the oldest when all slots are used).
    pub(crate) fn add_solicitor(&mut self, s: Solicitor) {
        if self.solicitors.iter().flatten().any(|x| x.addr == s.addr) {
            for x in self.solicitors.iter_mut().flatten() {
                if x.addr == s.addr {
                    // Asking again does not restart the clock of the NS already relayed.
                    *x = Solicitor {
                        relayed_at: x.relayed_at,
                        ..s
                    };
                }
            }
            return;
        }
        if let Some(slot) = self.solicitors.iter_mut().find(|x| x.is_none()) {
            *slot = Some(s);
        } else {
            self.solicitors.rotate_left(1);
            self.solicitors[MAX_SOLICITORS - 1] = Some(s);
        }
    }

    /// Notes that the NS of solicitor `addr` was relayed at `now`.
    pub(crate) fn mark_ns_relayed(&mut self, addr: Ipv6Addr, now: Instant) {
        for x in self.solicitors.iter_mut().flatten() {
            if x.addr == addr {
                x.relayed_at = Some(now);
            }
        }
    }

    /// When the NS of solicitor `addr` was relayed, forgotten as the answer goes back:
    /// a second NA for the same NS is not timed again.
    pub(crate) fn take_ns_relayed_at(&mut self, addr: Ipv6Addr) -> Option<Instant> {
        self.solicitors
            .iter_mut()
            .flatten()
            .find(|x| x.addr == addr)
            .and_then(|x| x.relayed_at.take())
    }

    pub(crate) fn solicitor(&self, addr: Ipv6Addr) -> Option<Solicitor> {
        self.solicitors
            .iter()
            .flatten()
            .find(|s| s.addr == addr)
            .copied()
    }
}

/// Why an entry could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingFull;

/// The bounded table.
#[derive(Debug, Clone)]
pub(crate) struct PendingTable {
    map: HashMap<Ipv6Addr, Pending>,
    queue: DeadlineQueue<Ipv6Addr>,
    fifo: VecDeque<(Ipv6Addr, Instant)>,
    per_port: Vec<usize>,
    max: usize,
    max_per_port: usize,
}

/// How far the per-port eviction looks for an old entry of the same port.
const PORT_EVICT_SCAN: usize = 64;

impl PendingTable {
    pub(crate) fn new(max: usize, max_per_port: usize) -> Self {
        Self {
            map: HashMap::new(),
            queue: DeadlineQueue::default(),
            fifo: VecDeque::new(),
            per_port: Vec::new(),
            max: max.max(1),
            max_per_port: max_per_port.max(1),
        }
    }

    pub(crate) fn set_limits(&mut self, max: usize, max_per_port: usize) {
        self.max = max.max(1);
        self.max_per_port = max_per_port.max(1);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, target: &Ipv6Addr) -> Option<&Pending> {
        self.map.get(target)
    }

    pub(crate) fn get_mut(&mut self, target: &Ipv6Addr) -> Option<&mut Pending> {
        self.map.get_mut(target)
    }

    fn port_count(&mut self, port: PortId) -> &mut usize {
        if self.per_port.len() <= port.index() {
            self.per_port.resize(port.index() + 1, 0);
        }
        &mut self.per_port[port.index()]
    }

    /// Creates an entry for `target`. An entry that was answered, is older than `min_age`
    /// (it had its chance to be answered) or already failed may be evicted to make room;
    /// young unanswered ones never.
    /// Returns how many entries were evicted.
    pub(crate) fn insert(
        &mut self,
        target: Ipv6Addr,
        ingress: PortId,
        now: Instant,
        expires_at: Instant,
        min_age: Duration,
    ) -> Result<usize, PendingFull> {
        let mut evicted = 0;
        if *self.port_count(ingress) >= self.max_per_port {
            self.evict(now, min_age, Some(ingress)).ok_or(PendingFull)?;
            evicted += 1;
        }
        if self.map.len() >= self.max {
            self.evict(now, min_age, None).ok_or(PendingFull)?;
            evicted += 1;
        }
        self.map.insert(
            target,
            Pending {
                ingress,
                created: now,
                expires_at,
                last_relay: now,
                relayed_mask: 0,
                solicitors: [None; MAX_SOLICITORS],
                failed: false,
                answered: false,
                scheduled: Some(expires_at),
            },
        );
        *self.port_count(ingress) += 1;
        self.queue.push(expires_at, target);
        self.fifo.push_back((target, now));
        self.compact();
        Ok(evicted)
    }

    fn evictable(p: &Pending, now: Instant, min_age: Duration) -> bool {
        p.failed || p.answered || p.created + min_age <= now
    }

    fn evict(&mut self, now: Instant, min_age: Duration, port: Option<PortId>) -> Option<()> {
        let mut scanned = 0;
        let mut i = 0;
        while i < self.fifo.len() && scanned < PORT_EVICT_SCAN.max(1) {
            let (addr, created) = self.fifo[i];
            let live = self.map.get(&addr).filter(|p| p.created == created);
            let Some(p) = live else {
                // Stale queue item: drop it without counting it as a scan step.
                self.fifo.remove(i);
                continue;
            };
            // Oldest first; a young unanswered one is skipped, an answered one behind it
            // may still go.
            if port.is_none_or(|q| p.ingress == q) && Self::evictable(p, now, min_age) {
                self.fifo.remove(i);
                self.remove(&addr);
                return Some(());
            }
            scanned += 1;
            i += 1;
        }
        None
    }

    pub(crate) fn remove(&mut self, target: &Ipv6Addr) -> Option<Pending> {
        let p = self.map.remove(target)?;
        let c = self.port_count(p.ingress);
        *c = c.saturating_sub(1);
        Some(p)
    }

    pub(crate) fn set_deadline(&mut self, target: Ipv6Addr, at: Instant) {
        if let Some(p) = self.map.get_mut(&target) {
            p.expires_at = at;
            if p.scheduled.is_none_or(|s| at < s) {
                p.scheduled = Some(at);
                self.queue.push(at, target);
            }
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.peek()
    }

    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Ipv6Addr> {
        while let Some((at, addr)) = self.queue.pop_due(now) {
            let Some(p) = self.map.get_mut(&addr) else {
                continue;
            };
            if p.scheduled != Some(at) {
                continue;
            }
            if p.expires_at <= now {
                p.scheduled = None;
                return Some(addr);
            }
            p.scheduled = Some(p.expires_at);
            self.queue.push(p.expires_at, addr);
        }
        None
    }

    /// Forgets every solicitor on `port` and every entry created from it (port removed
    /// or renumbered by a reload).
    pub(crate) fn retain_ports(&mut self, mut keep: impl FnMut(PortId) -> Option<PortId>) {
        let old = std::mem::take(&mut self.map);
        self.per_port.clear();
        for (addr, mut p) in old {
            let Some(ingress) = keep(p.ingress) else {
                continue;
            };
            p.ingress = ingress;
            for slot in &mut p.solicitors {
                if let Some(s) = slot {
                    match keep(s.port) {
                        Some(np) => s.port = np,
                        None => *slot = None,
                    }
                }
            }
            p.relayed_mask = 0;
            *self.port_count(ingress) += 1;
            self.map.insert(addr, p);
        }
        self.compact();
    }

    fn compact(&mut self) {
        let limit = 2 * self.map.len() + 64;
        if self.fifo.len() > limit {
            let map = &self.map;
            self.fifo
                .retain(|(a, c)| map.get(a).is_some_and(|p| p.created == *c));
        }
        if self.queue.len() > limit {
            let map = &self.map;
            self.queue
                .retain(|at, a| map.get(&a).is_some_and(|p| p.scheduled == Some(at)));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn t(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i)
    }

    #[test]
    fn bounded_per_port_and_globally_young_entries_kept() {
        let mut p = PendingTable::new(4, 3);
        let age = Duration::from_secs(1);
        let now = Instant::from_secs(10);
        for i in 0..3 {
            assert_eq!(p.insert(t(i), PortId(0), now, now + age, age), Ok(0));
        }
        // Port 0 is at its cap and every entry is young.
        assert_eq!(
            p.insert(t(9), PortId(0), now, now + age, age),
            Err(PendingFull)
        );
        // Another port may still use the global room.
        assert_eq!(p.insert(t(10), PortId(1), now, now + age, age), Ok(0));
        assert_eq!(
            p.insert(t(11), PortId(1), now, now + age, age),
            Err(PendingFull)
        );
        assert_eq!(p.len(), 4);
        // Once old enough, the oldest gives way.
        let later = now + age;
        assert_eq!(p.insert(t(11), PortId(1), later, later + age, age), Ok(1));
        assert!(p.get(&t(0)).is_none());
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn answered_entries_give_way_at_once() {
        let mut p = PendingTable::new(8, 2);
        let age = Duration::from_secs(1);
        let now = Instant::from_secs(10);
        assert_eq!(p.insert(t(0), PortId(0), now, now + age, age), Ok(0));
        assert_eq!(p.insert(t(1), PortId(0), now, now + age, age), Ok(0));
        assert_eq!(
            p.insert(t(2), PortId(0), now, now + age, age),
            Err(PendingFull)
        );
        // The younger of the two is answered: it goes, the unanswered oldest stays.
        p.get_mut(&t(1)).unwrap().answered = true;
        assert_eq!(p.insert(t(2), PortId(0), now, now + age, age), Ok(1));
        assert!(p.get(&t(0)).is_some());
        assert!(p.get(&t(1)).is_none());
    }

    #[test]
    fn solicitors_are_deduplicated_and_bounded() {
        let mut p = PendingTable::new(4, 4);
        let now = Instant::ZERO;
        p.insert(t(1), PortId(0), now, now, Duration::ZERO).unwrap();
        let e = p.get_mut(&t(1)).unwrap();
        for i in 0..6u16 {
            e.add_solicitor(Solicitor {
                addr: t(100 + i),
                port: PortId(0),
                mac: Mac([2, 0, 0, 0, 0, i as u8]),
                asked_at: now,
                relayed_at: None,
            });
        }
        e.add_solicitor(Solicitor {
            addr: t(105),
            port: PortId(0),
            mac: Mac([2, 0, 0, 0, 0, 0x55]),
            asked_at: now,
            relayed_at: None,
        });
        assert_eq!(e.solicitors.iter().flatten().count(), MAX_SOLICITORS);
        assert!(e.solicitor(t(100)).is_none(), "oldest replaced");
        assert_eq!(e.solicitor(t(105)).unwrap().mac, Mac([2, 0, 0, 0, 0, 0x55]));
    }

    #[test]
    fn flood_keeps_table_and_queues_at_cap() {
        let mut p = PendingTable::new(64, 32);
        let age = Duration::from_millis(100);
        let mut now = Instant::ZERO;
        for i in 0..50_000u32 {
            now += Duration::from_micros(50);
            let a = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(i));
            let _ = p.insert(a, PortId(0), now, now + Duration::from_secs(3), age);
            while let Some(x) = p.pop_expired(now) {
                p.remove(&x);
            }
            assert!(p.len() <= 32);
        }
        assert!(p.fifo.len() <= 2 * 32 + 64 + 1);
        assert!(p.queue.len() <= 2 * 64 + 64 + 1);
    }
}
