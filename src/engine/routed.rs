//! Routed ports (tun, WireGuard, PPP): a link without link-layer addresses carries no
//! NS to relay, so the engine answers for the addresses the kernel's main table routes
//! through such a port, from the routes the driver feeds ([`Engine::handle_route`]).
//!
//! Heads up: read RFC 4861 §7.2.4 and §7.2.8 (proxy advertisements) first.
//!
//! Only routes inside a configured prefix are kept: a default or aggregate route (a
//! VPN's `::/0`) says nothing about the addresses of the prefix. The longest match
//! decides, as it does for the kernel: a more specific route through any other
//! interface (the uplink, an Ethernet port, an interface the relay does not use, an
//! `unreachable` route) means the address is not behind a routed port, and an equal
//! prefix through another interface wins a tie, since the kernel's choice between them
//! (the metric) is not fed. The relay's own /128 routes are not fed: they follow
//! bindings learned from guests, who are untrusted, while these routes are the
//! operator's; an address routed through a routed port is answered even if a guest on
//! an Ethernet port claims it.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::{Counter, Engine, Instant, NdPacket, PortId};
use crate::wire::NaFlags;

/// Most routes the table holds; more are refused and counted (`routed_routes_refused`).
pub const MAX_ROUTED_ROUTES: usize = 4096;

/// A route of the kernel's main table appeared or went, as the driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteUpdate {
    /// Destination.
    pub prefix: Ipv6Net,
    /// The relay port the route leads through; `None` for any other interface and for
    /// routes that lead nowhere (`unreachable`, `blackhole`, `prohibit`).
    pub port: Option<PortId>,
    /// Added (or changed) rather than deleted.
    pub present: bool,
}

/// One route the engine serves addresses from, as shown by `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutedInfo {
    /// Destination.
    pub prefix: Ipv6Net,
    /// The routed port it leads through.
    pub port: PortId,
    /// Whether an NS for the prefix's first address would be answered now: the port is
    /// up and no more specific route elsewhere takes that address.
    pub answered: bool,
}

/// The fed routes: by (prefix length, network), each with the ports it leads through
/// (`None` = elsewhere). Lookups walk only the prefix lengths present.
#[derive(Debug, Default, Clone)]
pub(super) struct RouteTable {
    routes: BTreeMap<(u8, u128), Vec<Option<PortId>>>,
    /// How many routes have each prefix length.
    lens: Vec<u32>,
    len: usize,
}

fn key(prefix: Ipv6Net) -> (u8, u128) {
    let p = prefix.trunc();
    (p.prefix_len(), u128::from(p.network()))
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl RouteTable {
    /// Adds a route; `false` when the table is full.
    fn insert(&mut self, prefix: Ipv6Net, port: Option<PortId>) -> bool {
        let k = key(prefix);
        if self.routes.get(&k).is_some_and(|v| v.contains(&port)) {
            return true;
        }
        if self.len >= MAX_ROUTED_ROUTES {
            return false;
        }
        self.routes.entry(k).or_default().push(port);
        if self.lens.is_empty() {
            self.lens = vec![0; 129];
        }
        self.lens[usize::from(k.0)] += 1;
        self.len += 1;
        true
    }

    fn remove(&mut self, prefix: Ipv6Net, port: Option<PortId>) {
        let k = key(prefix);
        let Some(v) = self.routes.get_mut(&k) else {
            return;
        };
        let before = v.len();
        v.retain(|p| *p != port);
        if v.len() < before {
            self.len -= 1;
            self.lens[usize::from(k.0)] -= 1;
        }
        if v.is_empty() {
            self.routes.remove(&k);
        }
    }

    /// The routes with the longest prefix covering `addr`.
    fn longest(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, &[Option<PortId>])> {
        let a = u128::from(addr);
        (0..=128u8)
            .rev()
            .filter(|&l| self.lens.get(usize::from(l)).is_some_and(|&n| n > 0))
            .find_map(|l| {
                let k = (l, a & mask(l));
                self.routes.get(&k).map(|v| {
                    // Built from a valid prefix length.
                    let net = Ipv6Net::new(Ipv6Addr::from(k.1), l).unwrap_or_default();
                    (net, v.as_slice())
                })
            })
    }

    /// Keeps the routes `keep` accepts, with their port renamed (`None` drops a route
    /// through a port that went; `Some(None)` is a route elsewhere).
    pub(super) fn retain_map(
        &mut self,
        mut keep: impl FnMut(Ipv6Net, Option<PortId>) -> Option<Option<PortId>>,
    ) {
        let old = std::mem::take(self);
        for (&(l, n), ports) in &old.routes {
            let net = Ipv6Net::new(Ipv6Addr::from(n), l).unwrap_or_default();
            for &p in ports {
                if let Some(p) = keep(net, p) {
                    self.insert(net, p);
                }
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Ipv6Net, Option<PortId>)> + '_ {
        self.routes.iter().flat_map(|(&(l, n), ports)| {
            let net = Ipv6Net::new(Ipv6Addr::from(n), l).unwrap_or_default();
            ports.iter().map(move |&p| (net, p))
        })
    }
}

impl Engine {
    /// Feeds a change of the kernel's main table (the driver sends the table once at
    /// start, then every change). Routes outside the configured prefixes, or naming a
    /// port the engine does not have, are ignored; a full table refuses new routes
    /// (`routed_routes_refused`) until some go.
    pub fn handle_route(&mut self, now: Instant, update: RouteUpdate) {
        let _ = self.advance(now);
        let prefix = update.prefix.trunc();
        if update.port.is_some_and(|p| p.index() >= self.ports.len()) || !self.in_prefixes(prefix) {
            return;
        }
        if !update.present {
            return self.routed.remove(prefix, update.port);
        }
        if !self.routed.insert(prefix, update.port) {
            self.counters.bump(Counter::RoutedRoutesRefused);
        }
    }

    fn in_prefixes(&self, prefix: Ipv6Net) -> bool {
        self.cfg.prefixes.iter().any(|r| r.prefix.contains(&prefix))
    }

    /// The routed port `target` is reached through, if the longest matching route
    /// leads only through routed ports and one of them is up: the engine answers NS for
    /// it, and a driver without a kernel (the simulator) forwards its data there.
    pub fn routed_port(&self, target: Ipv6Addr) -> Option<PortId> {
        let (_, ports) = self.routed.longest(target)?;
        let routed = |p: &Option<PortId>| p.is_some_and(|p| self.port(p).cfg.routed);
        if !ports.iter().all(routed) {
            return None;
        }
        ports
            .iter()
            .flatten()
            .copied()
            .find(|&p| self.port(p).live())
    }

    /// An NS for an address behind a routed port: the relay answers as its proxy
    /// (RFC 4861 §7.2.8: O=0 so a real owner's NA would win; S=1 when solicited by a
    /// unicast source). A DAD NS is answered too, to all-nodes with S=0 (RFC 4861
    /// §7.2.4): nobody behind a routed port hears it, and the address is in use there,
    /// so the tentative address must be refused.
    pub(super) fn answer_routed(&mut self, port: PortId, pkt: &NdPacket<'_>, target: Ipv6Addr) {
        self.counters.bump(Counter::AnsweredRouted);
        self.answer_ns(port, pkt, target, target, NaFlags::SOLICITED);
    }

    /// The routes through routed ports, by prefix, for `status`.
    pub fn routed_routes(&self) -> Vec<RoutedInfo> {
        self.routed
            .iter()
            .filter_map(|(prefix, port)| {
                let port = port.filter(|p| self.port(*p).cfg.routed)?;
                Some(RoutedInfo {
                    prefix,
                    port,
                    answered: self.routed_port(prefix.network()) == Some(port),
                })
            })
            .collect()
    }
}
