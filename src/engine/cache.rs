//! The binding table: address → (port, MAC, RFC 4861 state, expiry). Together these are
//! RFC 4389's per-port neighbour caches, keyed by address because an address lives
//! behind exactly one port at a time (RFC 4389 §3: hosts move, they are not duplicated).
//!
//! The table is bounded, and so is each port's and each MAC's share of it (RFC 6583 §7,
//! DESIGN.md "Trust": a guest may fill its own share, never the table). A new entry over
//! a share makes room by evicting the oldest never-confirmed, unrouted entry of the same
//! MAC, then of the same port, and a full table evicts from its fullest port; confirmed
//! entries are never evicted, so a new entry that finds no room is refused.

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
    /// Since when it is in `state` (`explain` shows it).
    pub(crate) since: Instant,
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
    /// Restored from an earlier run's state file and not yet re-verified
    /// (`restore.rs`): routed on trust until its guest answers or fails a probe.
    pub(crate) restored: bool,
    /// Its address was announced on the uplink for its current port
    /// (`Engine::announce_binding`); a move clears it.
    pub(crate) announced: bool,
    /// Deadline currently queued for this entry.
    scheduled: Option<Instant>,
}

impl Binding {
    /// What `status` and `explain` show of it.
    pub(crate) fn info(&self, addr: std::net::Ipv6Addr) -> super::BindingInfo {
        super::BindingInfo {
            addr,
            port: self.port,
            mac: self.mac,
            state: self.state,
            confirmed_at: self.confirmed_at,
            routed: self.routed,
            restored: self.restored,
        }
    }

    pub(crate) fn new(port: PortId, mac: Mac, state: BindingState, expires_at: Instant) -> Self {
        Self {
            port,
            mac,
            state,
            confirmed_at: None,
            since: Instant::ZERO,
            expires_at,
            probes: 0,
            routed: false,
            moving: None,
            reverify_sent: None,
            unicast_ns_since: None,
            kernel_answers: None,
            kernel_ns: None,
            kernel_relays: Vec::new(),
            restored: false,
            announced: false,
            scheduled: None,
        }
    }

    fn evictable(&self) -> bool {
        self.confirmed_at.is_none() && !self.routed
    }
}

/// Why an insert was refused: every entry that could make room is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The whole table.
    TableFull,
    /// The new entry's port or MAC holds its whole share.
    Quota,
}

/// How big the table and each share of it may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max: usize,
    pub(crate) per_port: usize,
    pub(crate) per_mac: usize,
}

/// The bounded binding table with its expiry queue.
#[derive(Debug, Clone)]
pub(crate) struct BindingCache {
    map: HashMap<Ipv6Addr, Binding>,
    queue: DeadlineQueue<Ipv6Addr>,
    /// Insertion order, for evicting the oldest unconfirmed entry (lazy: entries that
    /// were removed or confirmed since are skipped).
    fifo: VecDeque<Ipv6Addr>,
    /// Entries per port and per MAC, kept exact by every change of a binding's port or
    /// MAC (which is why those go through [`BindingCache::relocate`]).
    per_port: HashMap<PortId, usize>,
    per_mac: HashMap<Mac, usize>,
    limits: Limits,
    /// Inserts, removals and relocations so far: a driver saving the table compares it
    /// with the value it last saved at (`Engine::state_stamp`).
    changes: u64,
}

impl BindingCache {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            map: HashMap::new(),
            queue: DeadlineQueue::default(),
            fifo: VecDeque::new(),
            per_port: HashMap::new(),
            per_mac: HashMap::new(),
            limits: clamp(limits),
            changes: 0,
        }
    }

    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = clamp(limits);
    }

    fn count(&mut self, port: PortId, mac: Mac, add: bool) {
        for n in [
            self.per_port.entry(port).or_default(),
            self.per_mac.entry(mac).or_default(),
        ] {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        }
        if !add {
            self.per_port.retain(|_, n| *n > 0);
            self.per_mac.retain(|_, n| *n > 0);
        }
    }

    /// Moves a binding to another port and/or MAC, keeping the shares' counts exact.
    pub(crate) fn relocate(&mut self, addr: Ipv6Addr, port: PortId, mac: Mac) {
        let Some(b) = self.map.get_mut(&addr) else {
            return;
        };
        let (old_port, old_mac) = (b.port, b.mac);
        self.changes = self.changes.wrapping_add(1);
        b.port = port;
        b.mac = mac;
        // Upstream caches learn the new port's confirmation like a first one.
        b.announced &= port == old_port;
        // It may have left the FIFO when it was confirmed, and a move unconfirms it
        // (entries that are not evictable are skipped there).
        self.fifo.push_back(addr);
        self.count(old_port, old_mac, false);
        self.count(port, mac, true);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn changes(&self) -> u64 {
        self.changes
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
    /// address and its port, if one had to make room.
    pub(crate) fn insert(
        &mut self,
        addr: Ipv6Addr,
        mut b: Binding,
    ) -> Result<Option<(Ipv6Addr, PortId)>, Refused> {
        let (port, mac) = (b.port, b.mac);
        let mac_share = self.per_mac.get(&mac).copied().unwrap_or(0);
        let port_share = self.per_port.get(&port).copied().unwrap_or(0);
        let evicted = if mac_share >= self.limits.per_mac {
            Some(self.evict_oldest(|e| e.mac == mac).ok_or(Refused::Quota)?)
        } else if port_share >= self.limits.per_port {
            Some(
                self.evict_oldest(|e| e.port == port)
                    .ok_or(Refused::Quota)?,
            )
        } else if self.map.len() >= self.limits.max {
            // The fullest port gives way, so one port's churn never pushes out another's.
            let fullest = self
                .per_port
                .iter()
                .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))
                .map(|(p, _)| *p);
            let from_fullest = fullest.and_then(|f| self.evict_oldest(|e| e.port == f));
            Some(
                from_fullest
                    .or_else(|| self.evict_oldest(|_| true))
                    .ok_or(Refused::TableFull)?,
            )
        } else {
            None
        };
        let at = b.expires_at;
        b.scheduled = Some(at);
        self.queue.push(at, addr);
        self.map.insert(addr, b);
        self.changes = self.changes.wrapping_add(1);
        self.fifo.push_back(addr);
        self.count(port, mac, true);
        self.compact();
        Ok(evicted)
    }

    /// Evicts the oldest evictable entry that `which` selects. Entries that can no longer
    /// be evicted leave the FIFO as they are met at its front; a scan costs at most the
    /// FIFO's length, which `compact` keeps proportional to the table.
    fn evict_oldest(&mut self, which: impl Fn(&Binding) -> bool) -> Option<(Ipv6Addr, PortId)> {
        while let Some(front) = self.fifo.front() {
            if self.map.get(front).is_some_and(Binding::evictable) {
                break;
            }
            self.fifo.pop_front();
        }
        let i = self
            .fifo
            .iter()
            .position(|a| self.map.get(a).is_some_and(|b| b.evictable() && which(b)))?;
        let addr = self.fifo.remove(i)?;
        let b = self.remove(&addr)?;
        Some((addr, b.port))
    }

    pub(crate) fn remove(&mut self, addr: &Ipv6Addr) -> Option<Binding> {
        let b = self.map.remove(addr)?;
        self.changes = self.changes.wrapping_add(1);
        self.count(b.port, b.mac, false);
        self.compact();
        Some(b)
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
        self.changes = self.changes.wrapping_add(1);
        for b in self.map.values_mut() {
            if let Some(p) = map(b.port) {
                b.port = p;
            }
            b.moving = b.moving.and_then(|(p, mac)| map(p).map(|np| (np, mac)));
        }
        self.per_port.clear();
        for b in self.map.values() {
            *self.per_port.entry(b.port).or_default() += 1;
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

/// A share is at least one entry and, for a port, below the whole table when the table
/// has room for more than one entry: no single port may hold it all.
fn clamp(l: Limits) -> Limits {
    let max = l.max.max(1);
    let port_cap = if max > 1 { max - 1 } else { 1 };
    Limits {
        max,
        per_port: l.per_port.clamp(1, port_cap),
        per_mac: l.per_mac.max(1),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::time::Duration;

    fn addr(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)
    }

    fn limits(max: usize, per_port: usize, per_mac: usize) -> Limits {
        Limits {
            max,
            per_port,
            per_mac,
        }
    }

    /// An unconfirmed binding on `port` whose MAC is the port's own guest (one per port).
    fn stale(port: u16, at: Instant) -> Binding {
        mac_stale(port, port as u8, at)
    }

    fn mac_stale(port: u16, mac: u8, at: Instant) -> Binding {
        Binding::new(
            PortId(port),
            Mac([2, 0, 0, 0, 0, mac]),
            BindingState::Stale,
            at,
        )
    }

    #[test]
    fn a_mac_over_its_share_evicts_its_own_oldest_entry_and_never_another_macs() {
        let t = Instant::from_secs(100);
        let mut c = BindingCache::new(limits(100, 99, 2));
        c.insert(addr(1), mac_stale(1, 9, t)).unwrap();
        c.insert(addr(2), mac_stale(1, 7, t)).unwrap();
        c.insert(addr(3), mac_stale(1, 7, t)).unwrap();
        assert_eq!(
            c.insert(addr(4), mac_stale(1, 7, t)),
            Ok(Some((addr(2), PortId(1))))
        );
        // Its entries confirmed, the MAC gets no more; the other MAC is untouched.
        for a in [3, 4] {
            c.get_mut(&addr(a)).unwrap().confirmed_at = Some(t);
        }
        assert_eq!(c.insert(addr(5), mac_stale(1, 7, t)), Err(Refused::Quota));
        assert!(c.get(&addr(1)).is_some());
        assert_eq!(c.insert(addr(6), mac_stale(1, 8, t)), Ok(None));
    }

    #[test]
    fn no_port_holds_the_whole_table_and_a_full_table_evicts_from_the_fullest_port() {
        let t = Instant::from_secs(100);
        // Per-port share asked as large as the table: clamped below it.
        let mut c = BindingCache::new(limits(4, 4, 100));
        for (i, mac) in [(1, 1), (2, 2), (3, 3)] {
            c.insert(addr(i), mac_stale(1, mac, t)).unwrap();
        }
        // Port 1 is at its share (3 of 4): its own oldest goes, not the uplink's.
        c.insert(addr(10), mac_stale(0, 50, t)).unwrap();
        assert_eq!(
            c.insert(addr(4), mac_stale(1, 4, t)),
            Ok(Some((addr(1), PortId(1))))
        );
        assert!(c.get(&addr(10)).is_some());
        // Full table, a newcomer on port 2: the fullest port (1) gives way.
        assert_eq!(
            c.insert(addr(20), mac_stale(2, 60, t)),
            Ok(Some((addr(2), PortId(1))))
        );
        assert!(c.get(&addr(10)).is_some());
    }

    #[test]
    fn relocation_moves_the_share_and_makes_a_confirmed_entry_evictable_again() {
        let t = Instant::from_secs(100);
        let mut c = BindingCache::new(limits(10, 10, 1));
        c.insert(addr(1), mac_stale(1, 1, t)).unwrap();
        c.get_mut(&addr(1)).unwrap().confirmed_at = Some(t);
        assert_eq!(c.insert(addr(2), mac_stale(1, 1, t)), Err(Refused::Quota));
        // Moved to another MAC (and unconfirmed by the move): MAC 1's share is free.
        c.relocate(addr(1), PortId(2), Mac([2, 0, 0, 0, 0, 5]));
        c.get_mut(&addr(1)).unwrap().confirmed_at = None;
        assert_eq!(c.insert(addr(2), mac_stale(1, 1, t)), Ok(None));
        assert_eq!(
            c.insert(addr(3), mac_stale(2, 5, t)),
            Ok(Some((addr(1), PortId(2))))
        );
    }

    #[test]
    fn full_table_evicts_oldest_unconfirmed_never_confirmed() {
        let t = Instant::from_secs(100);
        let mut c = BindingCache::new(limits(3, 3, 3));
        c.insert(addr(1), stale(1, t)).unwrap();
        c.insert(addr(2), stale(1, t)).unwrap();
        c.insert(addr(3), stale(2, t)).unwrap();
        // Confirm 1: it must survive.
        c.get_mut(&addr(1)).unwrap().confirmed_at = Some(Instant::ZERO);
        assert_eq!(
            c.insert(addr(4), stale(2, t)),
            Ok(Some((addr(2), PortId(1))))
        );
        assert_eq!(c.len(), 3);
        assert!(c.get(&addr(1)).is_some());
        // Confirm (route) everything: no room left.
        c.get_mut(&addr(3)).unwrap().routed = true;
        c.get_mut(&addr(4)).unwrap().confirmed_at = Some(Instant::ZERO);
        assert_eq!(c.insert(addr(5), stale(3, t)), Err(Refused::TableFull));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn expiry_follows_latest_deadline() {
        let mut c = BindingCache::new(limits(10, 10, 10));
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
        let mut c = BindingCache::new(limits(16, 16, 16));
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
