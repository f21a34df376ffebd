//! The binding table: address → (port, MAC, RFC 4861 state, expiry). Together these are
//! RFC 4389's per-port neighbour caches, keyed by address because an address lives
//! behind exactly one port at a time (RFC 4389 §3: hosts move, they are not duplicated).
//!
//! The table is bounded: when full, the oldest never-confirmed, unrouted entry makes room;
//! confirmed entries are never evicted for unconfirmed ones (RFC 6583 §7).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;

use super::kernel::{KernelEntry, NaRelayPath, NsRelayPath};
use super::timer::DeadlineQueue;
use super::{BindingState, PortId};
use crate::time::Instant;
use crate::wire::Mac;

/// One binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) port: PortId,
    pub(crate) mac: Mac,
    pub(crate) state: BindingState,
    /// Last solicited NA (REACHABLE confirmation), if ever.
    pub(crate) confirmed_at: Option<Instant>,
    /// When the current state ends (REACHABLE → DELAY/STALE, DELAY → PROBE, next probe,
    /// STALE → forgotten).
    pub(crate) expires_at: Instant,
    /// Probes sent in PROBE state.
    pub(crate) probes: u8,
    /// An `InstallRoute` is outstanding for it.
    pub(crate) routed: bool,
    /// Another port claimed the address; it moves there only if this port fails its
    /// probes (NDP reference §5 #21).
    pub(crate) moving: Option<(PortId, Mac)>,
    /// When the fast path last relayed an NS for it so the binding re-verifies.
    pub(crate) reverify_sent: Option<Instant>,
    /// The first NS relayed to `mac` rather than to the group since the last
    /// confirmation (see `Engine::ns_to_bound_mac`).
    pub(crate) unicast_ns_since: Option<Instant>,
    /// What the kernel was told to answer for it (`Action::KernelAnswer`).
    pub(crate) kernel_answers: Option<KernelEntry<PortId>>,
    /// The NS for it the kernel was told to relay (`Action::KernelRelayNs`).
    pub(crate) kernel_ns: Option<KernelEntry<NsRelayPath>>,
    /// Its NAs the kernel was told to relay, one per solicitor (`Action::KernelRelayNa`).
    pub(crate) kernel_relays: Vec<KernelEntry<NaRelayPath>>,
    /// Deadline currently queued for this entry.
    scheduled: Option<Instant>,
}

impl Binding {
    pub(crate) fn new(port: PortId, mac: Mac, state: BindingState, expires_at: Instant) -> Self {
        Self {
            port,
            mac,
            state,
            confirmed_at: None,
            expires_at,
            probes: 0,
            routed: false,
            moving: None,
            reverify_sent: None,
            unicast_ns_since: None,
            kernel_answers: None,
            kernel_ns: None,
            kernel_relays: Vec::new(),
            scheduled: None,
        }
    }

    fn evictable(&self) -> bool {
        self.confirmed_at.is_none() && !self.routed
    }
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull;

/// The bounded binding table with its expiry queue.
#[derive(Debug, Clone)]
pub(crate) struct BindingCache {
    map: HashMap<Ipv6Addr, Binding>,
    queue: DeadlineQueue<Ipv6Addr>,
    /// Insertion order, for evicting the oldest unconfirmed entry (lazy: entries that
    /// were removed or confirmed since are skipped).
    fifo: VecDeque<Ipv6Addr>,
    max: usize,
}

impl BindingCache {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            queue: DeadlineQueue::default(),
            fifo: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, addr: &Ipv6Addr) -> Option<&Binding> {
        self.map.get(addr)
    }

    pub(crate) fn get_mut(&mut self, addr: &Ipv6Addr) -> Option<&mut Binding> {
        self.map.get_mut(addr)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Ipv6Addr, &Binding)> {
        self.map.iter()
    }

    /// Forgets every NA relaying the kernel was told; whether there was any.
    pub(crate) fn clear_kernel_relays(&mut self) -> bool {
        let mut any = false;
        for b in self.map.values_mut() {
            any |= !b.kernel_relays.is_empty();
            b.kernel_relays.clear();
        }
        any
    }

    /// Addresses bound on `port`, sorted (hash order must never leak into outputs:
    /// the same inputs and seed give the same actions).
    pub(crate) fn on_port(&self, port: PortId) -> Vec<Ipv6Addr> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter(|(_, b)| b.port == port)
            .map(|(a, _)| *a)
            .collect();
        v.sort_unstable();
        v
    }

    /// Every bound address, sorted.
    pub(crate) fn addrs(&self) -> Vec<Ipv6Addr> {
        let mut v: Vec<_> = self.map.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Inserts a new binding (the address must not be bound). Returns the evicted
    /// address, if one had to make room.
    pub(crate) fn insert(
        &mut self,
        addr: Ipv6Addr,
        mut b: Binding,
    ) -> Result<Option<Ipv6Addr>, TableFull> {
        let mut evicted = None;
        if self.map.len() >= self.max {
            evicted = Some(self.evict_one().ok_or(TableFull)?);
        }
        let at = b.expires_at;
        b.scheduled = Some(at);
        self.queue.push(at, addr);
        self.map.insert(addr, b);
        self.fifo.push_back(addr);
        self.compact();
        Ok(evicted)
    }

    fn evict_one(&mut self) -> Option<Ipv6Addr> {
        while let Some(addr) = self.fifo.pop_front() {
            if self.map.get(&addr).is_some_and(Binding::evictable) {
                self.map.remove(&addr);
                return Some(addr);
            }
        }
        None
    }

    pub(crate) fn remove(&mut self, addr: &Ipv6Addr) -> Option<Binding> {
        let b = self.map.remove(addr);
        self.compact();
        b
    }

    /// Sets the entry's deadline, queueing it only if earlier than the queued one.
    pub(crate) fn set_deadline(&mut self, addr: Ipv6Addr, at: Instant) {
        if let Some(b) = self.map.get_mut(&addr) {
            b.expires_at = at;
            if b.scheduled.is_none_or(|s| at < s) {
                b.scheduled = Some(at);
                self.queue.push(at, addr);
            }
        }
    }

    /// Earliest queued deadline (may be a stale one; waking early is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.peek()
    }

    /// The next entry whose `expires_at` has passed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Ipv6Addr> {
        while let Some((at, addr)) = self.queue.pop_due(now) {
            let Some(b) = self.map.get_mut(&addr) else {
                continue;
            };
            if b.scheduled != Some(at) {
                continue;
            }
            if b.expires_at <= now {
                b.scheduled = None;
                return Some(addr);
            }
            b.scheduled = Some(b.expires_at);
            self.queue.push(b.expires_at, addr);
        }
        None
    }

    /// Renumbers ports after a reload; every bound port must map (callers remove the
    /// bindings of removed ports first). Move candidates on removed ports are dropped.
    pub(crate) fn remap_ports(&mut self, map: impl Fn(PortId) -> Option<PortId>) {
        for b in self.map.values_mut() {
            if let Some(p) = map(b.port) {
                b.port = p;
            }
            b.moving = b.moving.and_then(|(p, mac)| map(p).map(|np| (np, mac)));
        }
    }

    /// Keeps the side queues proportional to the table.
    fn compact(&mut self) {
        let limit = 2 * self.map.len() + 64;
        if self.fifo.len() > limit {
            let map = &self.map;
            self.fifo
                .retain(|a| map.get(a).is_some_and(Binding::evictable));
        }
        if self.queue.len() > limit {
            let map = &self.map;
            self.queue
                .retain(|at, a| map.get(&a).is_some_and(|b| b.scheduled == Some(at)));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::time::Duration;

    fn addr(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)
    }

    fn stale(port: u16, at: Instant) -> Binding {
        Binding::new(
            PortId(port),
            Mac([2, 0, 0, 0, 0, 1]),
            BindingState::Stale,
            at,
        )
    }

    #[test]
    fn full_table_evicts_oldest_unconfirmed_never_confirmed() {
        let t = Instant::from_secs(100);
        let mut c = BindingCache::new(3);
        c.insert(addr(1), stale(1, t)).unwrap();
        c.insert(addr(2), stale(1, t)).unwrap();
        c.insert(addr(3), stale(1, t)).unwrap();
        // Confirm 1: it must survive.
        c.get_mut(&addr(1)).unwrap().confirmed_at = Some(Instant::ZERO);
        assert_eq!(c.insert(addr(4), stale(1, t)), Ok(Some(addr(2))));
        assert_eq!(c.len(), 3);
        assert!(c.get(&addr(1)).is_some());
        // Confirm (route) everything: no room left.
        c.get_mut(&addr(3)).unwrap().routed = true;
        c.get_mut(&addr(4)).unwrap().confirmed_at = Some(Instant::ZERO);
        assert_eq!(c.insert(addr(5), stale(1, t)), Err(TableFull));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn expiry_follows_latest_deadline() {
        let mut c = BindingCache::new(10);
        c.insert(addr(1), stale(1, Instant::from_secs(5))).unwrap();
        c.insert(addr(2), stale(1, Instant::from_secs(3))).unwrap();
        // Push 2 later, 1 earlier.
        c.set_deadline(addr(2), Instant::from_secs(8));
        c.set_deadline(addr(1), Instant::from_secs(2));
        assert_eq!(c.next_deadline(), Some(Instant::from_secs(2)));
        assert_eq!(c.pop_expired(Instant::from_secs(2)), Some(addr(1)));
        assert_eq!(c.pop_expired(Instant::from_secs(2)), None);
        // The stale 3 s deadline of entry 2 does not fire it; it re-queues for 8 s.
        assert_eq!(c.pop_expired(Instant::from_secs(7)), None);
        assert_eq!(c.pop_expired(Instant::from_secs(8)), Some(addr(2)));
        // A removed entry never fires.
        c.set_deadline(addr(2), Instant::from_secs(9));
        c.remove(&addr(2));
        assert_eq!(c.pop_expired(Instant::from_secs(60)), None);
    }

    #[test]
    fn side_queues_stay_bounded_under_churn() {
        let mut c = BindingCache::new(16);
        let mut now = Instant::ZERO;
        for i in 0..10_000u16 {
            now += Duration::from_millis(1);
            let _ = c.insert(addr(i), stale(1, now));
            c.set_deadline(addr(i), now + Duration::from_secs(1));
            while c.pop_expired(now).is_some() {}
        }
        assert!(c.len() <= 16);
        assert!(c.fifo.len() <= 2 * 16 + 64 + 1);
        assert!(c.queue.len() <= 2 * 16 + 64 + 1);
    }
}
