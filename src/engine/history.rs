//! The last few decisions the engine made about each address, and the uplink's last NS
//! for it, kept for `ndprelay explain` (live) and `replay --explain`: a table of at most
//! [`HISTORY_ADDRS`] addresses with [`HISTORY_DEPTH`] decisions each. A new address takes
//! the slot of the one recorded first (round robin), so a flood of random targets only
//! evicts older entries and never grows the table. Entries are small `Copy` values
//! recorded whether or not the driver asked for events; they read as [`Event`]s do.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv6Addr;

use super::{
    BindingInfo, BindingState, DataPlane, Engine, Event, EventNames, LeftoverFate, PortId,
    PortInfo, PrefixRule, Role,
};
use crate::DropReason;
use crate::time::Instant;
use crate::wire::Mac;

/// Most addresses remembered.
pub const HISTORY_ADDRS: usize = 256;
/// Most decisions remembered per address.
pub const HISTORY_DEPTH: usize = 8;

/// One decision about an address (the address itself is the table's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A frame about the address (NS/NA target, data destination) was dropped.
    Dropped {
        /// Ingress port.
        port: PortId,
        /// Why.
        reason: DropReason,
    },
    /// An ND message about it was relayed to the ports in `to` (a bit per port).
    Relayed {
        /// Ingress port.
        from: PortId,
        /// Egress ports, bit `i` for `PortId(i)`.
        to: u64,
        /// `NS`, `NA`, ...
        message: &'static str,
    },
    /// The engine answered for it by itself.
    Answered {
        /// Port the answer went out on.
        port: PortId,
    },
    /// The in-kernel fast path answered for it.
    AnsweredByKernel {
        /// Port.
        port: PortId,
    },
    /// The in-kernel relay relayed an NS or NA for it.
    RelayedByKernel {
        /// Ingress port.
        from: PortId,
        /// Egress port.
        to: PortId,
        /// `NS` or `NA`.
        message: &'static str,
    },
    /// Its binding was created or changed state.
    Binding {
        /// Port.
        port: PortId,
        /// MAC.
        mac: Mac,
        /// New state.
        state: BindingState,
    },
    /// Its binding was removed.
    Unbound {
        /// Port it was on.
        port: PortId,
    },
    /// It was announced on the uplink.
    Announced {
        /// The uplink.
        port: PortId,
        /// Where it is bound.
        bound_on: PortId,
    },
    /// Data to it was forwarded (userspace data plane).
    Forwarded {
        /// Ingress.
        from: PortId,
        /// Egress.
        to: PortId,
    },
    /// An earlier run's route for it was kept, taken over or removed.
    Leftover {
        /// Port the route points to.
        port: PortId,
        /// What became of it.
        fate: LeftoverFate,
    },
    /// The engine asked for its /128 route (`Action::InstallRoute`).
    RouteInstalled {
        /// Port.
        port: PortId,
    },
    /// The engine asked for its /128 route to go (`Action::RemoveRoute`).
    RouteRemoved {
        /// Port.
        port: PortId,
    },
}

impl Decision {
    /// The decision an event records, under the address it is about; `None` for events
    /// about no single address (ports, quarantines, RAs, drops, which the engine records
    /// with the frame's address itself).
    pub fn of_event(event: &Event) -> Option<(Ipv6Addr, Self)> {
        Some(match *event {
            Event::Relayed {
                from,
                ref to,
                message,
                addr,
            } => {
                let to = to
                    .iter()
                    .filter(|p| p.0 < 64)
                    .fold(0u64, |m, p| m | (1 << p.0));
                (addr, Self::Relayed { from, to, message })
            }
            Event::Answered { port, target } => (target, Self::Answered { port }),
            Event::AnsweredByKernel { port, target } => (target, Self::AnsweredByKernel { port }),
            Event::RelayedByKernel {
                from,
                to,
                message,
                target,
            } => (target, Self::RelayedByKernel { from, to, message }),
            Event::Binding {
                addr,
                port,
                mac,
                state,
            } => (addr, Self::Binding { port, mac, state }),
            Event::Unbound { addr, port } => (addr, Self::Unbound { port }),
            Event::Announced {
                port,
                target,
                bound_on,
            } => (target, Self::Announced { port, bound_on }),
            Event::Forwarded { from, to, dst } => (dst, Self::Forwarded { from, to }),
            Event::LeftoverRoute { addr, port, fate } => (addr, Self::Leftover { port, fate }),
            Event::Dropped { .. }
            | Event::PortProxying { .. }
            | Event::Quarantined { .. }
            | Event::NoRouterRa { .. }
            | Event::RouterRaAfterAll { .. } => return None,
        })
    }

    /// The decision about `addr` in words, ports named by `names`: an event reads as
    /// [`Event::display`] writes it, a route as replay lists it.
    pub fn describe<N: EventNames + ?Sized>(self, addr: Ipv6Addr, names: &N) -> String {
        struct Port<'a, N: ?Sized>(&'a N, PortId);
        impl<N: EventNames + ?Sized> fmt::Display for Port<'_, N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.port(f, self.1)
            }
        }
        let event = match self {
            Self::Dropped { port, reason } => {
                return format!(
                    "frame for {addr} dropped on {}: {reason}",
                    Port(names, port)
                );
            }
            Self::RouteInstalled { port } => {
                return format!("route {addr}/128 via {} installed", Port(names, port));
            }
            Self::RouteRemoved { port } => {
                return format!("route {addr}/128 via {} removed", Port(names, port));
            }
            Self::Relayed { from, to, message } => Event::Relayed {
                from,
                to: (0..64u16)
                    .filter(|i| to & (1 << i) != 0)
                    .map(PortId)
                    .collect(),
                message,
                addr,
            },
            Self::Answered { port } => Event::Answered { port, target: addr },
            Self::AnsweredByKernel { port } => Event::AnsweredByKernel { port, target: addr },
            Self::RelayedByKernel { from, to, message } => Event::RelayedByKernel {
                from,
                to,
                message,
                target: addr,
            },
            Self::Binding { port, mac, state } => Event::Binding {
                addr,
                port,
                mac,
                state,
            },
            Self::Unbound { port } => Event::Unbound { addr, port },
            Self::Announced { port, bound_on } => Event::Announced {
                port,
                target: addr,
                bound_on,
            },
            Self::Forwarded { from, to } => Event::Forwarded {
                from,
                to,
                dst: addr,
            },
            Self::Leftover { port, fate } => Event::LeftoverRoute { addr, port, fate },
        };
        event.display(names).to_string()
    }
}

/// The last NS for an address that came in on the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UplinkNs {
    /// When.
    pub at: Instant,
    /// Its IPv6 source (`::` for DAD).
    pub src: Ipv6Addr,
    /// Its Ethernet source.
    pub mac: Mac,
}

#[derive(Debug, Clone)]
struct Slot {
    addr: Ipv6Addr,
    /// A ring: `len` entries, the oldest at `head`.
    entries: [(Instant, Decision); HISTORY_DEPTH],
    head: u8,
    len: u8,
    uplink_ns: Option<UplinkNs>,
}

impl Slot {
    fn new(addr: Ipv6Addr) -> Self {
        Self {
            addr,
            entries: [(Instant::ZERO, Decision::Unbound { port: PortId(0) }); HISTORY_DEPTH],
            head: 0,
            len: 0,
            uplink_ns: None,
        }
    }

    fn push(&mut self, at: Instant, d: Decision) {
        let len = usize::from(self.len);
        let head = usize::from(self.head);
        if len < HISTORY_DEPTH {
            self.entries[(head + len) % HISTORY_DEPTH] = (at, d);
            self.len += 1;
        } else {
            self.entries[head] = (at, d);
            self.head = ((head + 1) % HISTORY_DEPTH) as u8;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Instant, Decision)> + '_ {
        (0..usize::from(self.len))
            .map(|i| self.entries[(usize::from(self.head) + i) % HISTORY_DEPTH])
    }
}

/// The bounded per-address decision table.
#[derive(Debug, Clone, Default)]
pub struct History {
    index: HashMap<Ipv6Addr, u16>,
    slots: Vec<Slot>,
    /// The slot a new address takes once all are in use.
    next: usize,
}

impl History {
    fn slot(&mut self, addr: Ipv6Addr) -> &mut Slot {
        let i = match self.index.get(&addr) {
            Some(&i) => usize::from(i),
            None => {
                let i = if self.slots.len() < HISTORY_ADDRS {
                    self.slots.push(Slot::new(addr));
                    self.slots.len() - 1
                } else {
                    let i = self.next;
                    self.next = (i + 1) % HISTORY_ADDRS;
                    self.index.remove(&self.slots[i].addr);
                    self.slots[i] = Slot::new(addr);
                    i
                };
                // HISTORY_ADDRS fits in u16.
                self.index.insert(addr, i as u16);
                i
            }
        };
        &mut self.slots[i]
    }

    /// Records `d` about `addr` at `at`.
    pub fn record(&mut self, at: Instant, addr: Ipv6Addr, d: Decision) {
        self.slot(addr).push(at, d);
    }

    /// Records what `event` says about its address, if it is about one.
    pub fn record_event(&mut self, at: Instant, event: &Event) {
        if let Some((addr, d)) = Decision::of_event(event) {
            self.record(at, addr, d);
        }
    }

    /// Records an NS for `target` that came in on the uplink.
    pub fn uplink_ns(&mut self, target: Ipv6Addr, ns: UplinkNs) {
        self.slot(target).uplink_ns = Some(ns);
    }

    /// The decisions about `addr`, oldest first, and the uplink's last NS for it.
    pub fn get(&self, addr: Ipv6Addr) -> (Vec<(Instant, Decision)>, Option<UplinkNs>) {
        match self.index.get(&addr) {
            Some(&i) => {
                let s = &self.slots[usize::from(i)];
                (s.iter().collect(), s.uplink_ns)
            }
            None => (Vec::new(), None),
        }
    }

    /// Addresses remembered (at most [`HISTORY_ADDRS`]).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// One binding as `explain` shows it: [`BindingInfo`] and when its state began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingFacts {
    /// What `status` shows.
    pub info: BindingInfo,
    /// Since when it is in its state.
    pub since: Instant,
    /// Its MAC is quarantined on its port (it sent an RA with the P bit) until then.
    pub quarantined_until: Option<Instant>,
}

/// Everything the engine knows about one address, for `explain` (`crate::explain`
/// words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    /// The address.
    pub addr: Ipv6Addr,
    /// When the facts were taken.
    pub now: Instant,
    /// The `prefixes` rule it falls in.
    pub prefix: Option<PrefixRule>,
    /// A router's link-local on the uplink, proxied as such (`ra_source: KeepRouter`).
    pub router_link_local: bool,
    /// The routed port (tun, WireGuard) the main table routes it through, if any.
    pub routed_port: Option<PortId>,
    /// Its binding.
    pub binding: Option<BindingFacts>,
    /// Every port, in `PortId` order.
    pub ports: Vec<PortInfo>,
    /// Who forwards its data.
    pub data_plane: DataPlane,
    /// Whether RAs are relayed (ports then proxy after two P-bit RAs).
    pub ra_relay: bool,
    /// The engine's decisions about it, oldest first (at most [`HISTORY_DEPTH`]).
    pub decisions: Vec<(Instant, Decision)>,
    /// The uplink's last NS for it.
    pub uplink_ns: Option<UplinkNs>,
    /// The rate limiter refused frames about it lately: the last such refusal.
    pub rate_limited_at: Option<Instant>,
}

impl AddressFacts {
    /// The uplink port.
    pub fn uplink(&self) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.role == Role::Upstream)
            .map(|i| PortId(i as u16))
    }
}

impl Engine {
    /// What the engine knows about `addr` now (a getter: changes nothing).
    pub fn address_facts(&self, now: Instant, addr: Ipv6Addr) -> AddressFacts {
        let snapshot_ports = self.snapshot_ports(now);
        let binding = self.cache.get(&addr).map(|b| BindingFacts {
            info: b.info(addr),
            since: b.since,
            quarantined_until: self
                .ports
                .get(b.port.index())
                .and_then(|p| p.quarantine.iter().find(|(m, _)| *m == b.mac))
                .map(|&(_, until)| until)
                .filter(|until| *until > now),
        });
        let (decisions, uplink_ns) = self.history.get(addr);
        let rate_limited_at = decisions
            .iter()
            .rev()
            .find(|(_, d)| {
                matches!(
                    d,
                    Decision::Dropped {
                        reason: DropReason::RateLimited,
                        ..
                    }
                )
            })
            .map(|(at, _)| *at);
        AddressFacts {
            addr,
            now,
            prefix: self
                .cfg
                .prefixes
                .iter()
                .find(|r| r.prefix.contains(&addr))
                .copied(),
            router_link_local: crate::wire::is_link_local(addr)
                && self.proxied(addr).is_some()
                && self.routers.contains_key(&addr),
            routed_port: self.routed_port(addr),
            binding,
            ports: snapshot_ports,
            data_plane: self.cfg.data_plane,
            ra_relay: self.cfg.ra_relay,
            decisions,
            uplink_ns,
            rate_limited_at,
        }
    }

    /// How many addresses the decision table holds (tests and bounds checks).
    pub fn history_len(&self) -> usize {
        self.history.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn a(i: u128) -> Ipv6Addr {
        Ipv6Addr::from(0x2001_0db8_u128 << 96 | i)
    }

    #[test]
    fn each_address_keeps_its_last_decisions_oldest_first() {
        let mut h = History::default();
        for i in 0..20u64 {
            h.record(
                Instant::from_micros(i),
                a(1),
                Decision::Answered { port: PortId(0) },
            );
        }
        let (d, ns) = h.get(a(1));
        assert_eq!(d.len(), HISTORY_DEPTH);
        let times: Vec<u64> = d.iter().map(|(t, _)| t.total_micros()).collect();
        assert_eq!(times, (12..20).collect::<Vec<_>>());
        assert!(ns.is_none());
        assert_eq!(h.get(a(2)).0, Vec::new());
    }

    #[test]
    fn a_flood_of_random_targets_only_evicts() {
        let mut h = History::default();
        let known = a(0x10);
        h.record(
            Instant::ZERO,
            known,
            Decision::RouteInstalled { port: PortId(1) },
        );
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let target = a(u128::from(x));
            let at = Instant::from_micros(i);
            h.record(
                at,
                target,
                Decision::Relayed {
                    from: PortId(0),
                    to: 2,
                    message: "NS",
                },
            );
            h.uplink_ns(
                target,
                UplinkNs {
                    at,
                    src: a(1),
                    mac: Mac([2, 0, 0, 0, 0, 1]),
                },
            );
            assert!(h.len() <= HISTORY_ADDRS);
            assert!(h.slots.len() <= HISTORY_ADDRS);
        }
        assert_eq!(h.len(), HISTORY_ADDRS);
        assert_eq!(h.index.len(), h.slots.len());
        assert!(h.get(known).0.is_empty(), "the flood evicted the oldest");
        // Recorded after the flood, an address is there again.
        h.record(
            Instant::from_micros(200_000),
            known,
            Decision::Unbound { port: PortId(1) },
        );
        assert_eq!(h.get(known).0.len(), 1);
        assert_eq!(h.len(), HISTORY_ADDRS);
        // Every index entry points at the slot holding its address.
        for (addr, i) in &h.index {
            assert_eq!(h.slots[usize::from(*i)].addr, *addr);
        }
    }

    #[test]
    fn decisions_read_as_events_and_routes_as_replay_lists_them() {
        let names = ["eth0", "br0"];
        let d = Decision::Relayed {
            from: PortId(0),
            to: 0b10,
            message: "NS",
        };
        assert_eq!(
            d.describe(a(5), &names[..]),
            "NS 2001:db8::5 from eth0 relayed to br0"
        );
        let e = Event::Relayed {
            from: PortId(0),
            to: vec![PortId(1)],
            message: "NS",
            addr: a(5),
        };
        assert_eq!(Decision::of_event(&e), Some((a(5), d)));
        assert_eq!(
            Decision::RouteInstalled { port: PortId(1) }.describe(a(5), &names[..]),
            "route 2001:db8::5/128 via br0 installed"
        );
        assert_eq!(
            Decision::Dropped {
                port: PortId(0),
                reason: DropReason::RateLimited
            }
            .describe(a(5), &names[..]),
            "frame for 2001:db8::5 dropped on eth0: rate_limited"
        );
    }
}
