//! The main table's routes the engine serves routed ports from: which kernel routes it
//! is told about, and the changes to tell it, from the start-up dump and every
//! `RTM_NEWROUTE`/`RTM_DELROUTE` after it (no polling).
//!
//! Kept: IPv6 routes of the main table inside a configured prefix, except the relay's
//! own (`ROUTE_PROTOCOL`: they follow guests' bindings, see `engine/routed.rs`). A
//! route through a relay port names that port; any other (another interface, a
//! multipath or a route that does not forward) is "elsewhere", which still matters for
//! the longest match. The kernel keys a route by prefix and metric (a replace changes
//! the interface of that key without a delete), so this module does too and tells the
//! engine the union per (prefix, port).

use std::collections::HashMap;

use ipnet::Ipv6Net;

use super::netlink::Route;
use crate::engine::{MAX_ROUTED_ROUTES, PortId, RouteUpdate};

/// What the feed needs to know of the relay: its prefixes, its ports' ifindexes and
/// its own route protocol.
#[derive(Debug, Clone, Copy)]
pub(super) struct FeedContext<'a> {
    pub(super) prefixes: &'a [Ipv6Net],
    /// Port ifindexes in `PortId` order (`None` while a port's device is missing).
    pub(super) ports: &'a [Option<i32>],
    pub(super) own_protocol: u8,
}

impl FeedContext<'_> {
    /// The (prefix, metric) key and the port of `route`, if the engine cares.
    fn wanted(&self, route: &Route) -> Option<((Ipv6Net, u32), Option<PortId>)> {
        if !route.in_main_table() || route.protocol == self.own_protocol {
            return None;
        }
        let prefix = Ipv6Net::new(route.dst, route.dst_len).ok()?.trunc();
        if !self.prefixes.iter().any(|p| p.contains(&prefix)) {
            return None;
        }
        let port = if route.unicast && route.oif > 0 {
            self.ports
                .iter()
                .position(|&ix| ix == Some(route.oif))
                .and_then(|i| u16::try_from(i).ok())
                .map(PortId)
        } else {
            None
        };
        Some(((prefix, route.priority), port))
    }
}

/// The routes told to the engine, by the kernel's key.
#[derive(Debug, Default)]
pub(super) struct RouteFeed {
    known: HashMap<(Ipv6Net, u32), Option<PortId>>,
    /// Routes not kept because `known` was full (logged by the caller once).
    pub(super) refused: u64,
}

impl RouteFeed {
    fn has(&self, prefix: Ipv6Net, port: Option<PortId>) -> bool {
        self.known
            .iter()
            .any(|(&(p, _), &via)| p == prefix && via == port)
    }

    /// The engine's changes for one route event.
    pub(super) fn apply(
        &mut self,
        cx: &FeedContext<'_>,
        route: &Route,
        present: bool,
    ) -> Vec<RouteUpdate> {
        let Some((key, port)) = cx.wanted(route) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let told = self.has(key.0, port);
        let old = if present {
            if !self.known.contains_key(&key) && self.known.len() >= MAX_ROUTED_ROUTES {
                self.refused += 1;
                return out;
            }
            self.known.insert(key, port)
        } else {
            // A delete names the route's interface; anything else is not ours to drop.
            match self.known.get(&key) {
                Some(&via) if via == port => self.known.remove(&key),
                _ => None,
            }
        };
        if let Some(old) = old.filter(|&o| !(present && o == port)) {
            if !self.has(key.0, old) {
                out.push(RouteUpdate {
                    prefix: key.0,
                    port: old,
                    present: false,
                });
            }
        }
        if present && !told {
            out.push(RouteUpdate {
                prefix: key.0,
                port,
                present: true,
            });
        }
        out
    }

    /// The engine's changes to go from what it was told to `routes` (a full dump: at
    /// start, after lost events, after a reload or a port's device came back).
    pub(super) fn reset(&mut self, cx: &FeedContext<'_>, routes: &[Route]) -> Vec<RouteUpdate> {
        let before: Vec<(Ipv6Net, Option<PortId>)> = self.pairs();
        self.known.clear();
        for r in routes {
            if let Some((key, port)) = cx.wanted(r) {
                if self.known.len() < MAX_ROUTED_ROUTES || self.known.contains_key(&key) {
                    self.known.insert(key, port);
                } else {
                    self.refused += 1;
                }
            }
        }
        let after = self.pairs();
        let gone = before.iter().filter(|p| !after.contains(p));
        let new = after.iter().filter(|p| !before.contains(p));
        gone.map(|&(prefix, port)| RouteUpdate {
            prefix,
            port,
            present: false,
        })
        .chain(new.map(|&(prefix, port)| RouteUpdate {
            prefix,
            port,
            present: true,
        }))
        .collect()
    }

    fn pairs(&self) -> Vec<(Ipv6Net, Option<PortId>)> {
        let mut v: Vec<_> = self.known.iter().map(|(&(p, _), &via)| (p, via)).collect();
        v.sort_unstable_by_key(|&(p, via)| (p, via.map(|x| x.0)));
        v.dedup();
        v
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::Ipv6Addr;

    fn route(dst: &str, len: u8, oif: i32, metric: u32, protocol: u8) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            dst_len: len,
            oif,
            table: u32::from(libc::RT_TABLE_MAIN),
            protocol,
            priority: metric,
            unicast: true,
        }
    }

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    const PREFIXES: &[&str] = &["2001:db8:1::/64"];

    fn with_cx<R>(f: impl FnOnce(&FeedContext<'_>) -> R) -> R {
        let prefixes: Vec<Ipv6Net> = PREFIXES.iter().map(|p| net(p)).collect();
        // uplink ifindex 2, br0 3, tun0 7.
        let ports = [Some(2), Some(3), Some(7)];
        f(&FeedContext {
            prefixes: &prefixes,
            ports: &ports,
            own_protocol: 199,
        })
    }

    fn up(prefix: &str, port: Option<u16>, present: bool) -> RouteUpdate {
        RouteUpdate {
            prefix: net(prefix),
            port: port.map(PortId),
            present,
        }
    }

    #[test]
    fn keeps_routes_inside_the_prefixes_except_the_relays_own() {
        with_cx(|cx| {
            let mut f = RouteFeed::default();
            let r = route("2001:db8:1::100", 128, 7, 1024, 3);
            assert_eq!(
                f.apply(cx, &r, true),
                vec![up("2001:db8:1::100/128", Some(2), true)]
            );
            // Ours (a guest's binding), a default route through the VPN, another prefix.
            for r in [
                route("2001:db8:1::5", 128, 3, 1024, 199),
                route("::", 0, 7, 1024, 3),
                route("2001:db8:2::1", 128, 7, 1024, 3),
            ] {
                assert_eq!(f.apply(cx, &r, true), vec![]);
            }
            // Another interface is "elsewhere".
            let r = route("2001:db8:1::200", 128, 9, 1024, 3);
            assert_eq!(
                f.apply(cx, &r, true),
                vec![up("2001:db8:1::200/128", None, true)]
            );
            let mut unreachable = route("2001:db8:1::300", 128, 7, 1024, 3);
            unreachable.unicast = false;
            assert_eq!(
                f.apply(cx, &unreachable, true),
                vec![up("2001:db8:1::300/128", None, true)]
            );
        });
    }

    #[test]
    fn a_replace_moves_the_route_and_a_second_metric_keeps_it() {
        with_cx(|cx| {
            let mut f = RouteFeed::default();
            let _ = f.apply(cx, &route("2001:db8:1::", 112, 7, 1024, 3), true);
            // `ip route replace` to br0: no delete comes for tun0.
            assert_eq!(
                f.apply(cx, &route("2001:db8:1::", 112, 3, 1024, 3), true),
                vec![
                    up("2001:db8:1::/112", Some(2), false),
                    up("2001:db8:1::/112", Some(1), true)
                ]
            );
            // The same prefix through br0 at another metric: the engine already knows.
            assert_eq!(
                f.apply(cx, &route("2001:db8:1::", 112, 3, 100, 3), true),
                vec![]
            );
            assert_eq!(
                f.apply(cx, &route("2001:db8:1::", 112, 3, 1024, 3), false),
                vec![]
            );
            assert_eq!(
                f.apply(cx, &route("2001:db8:1::", 112, 3, 100, 3), false),
                vec![up("2001:db8:1::/112", Some(1), false)]
            );
            // A delete for a route never told is ignored.
            assert_eq!(
                f.apply(cx, &route("2001:db8:1::9", 128, 7, 1024, 3), false),
                vec![]
            );
        });
    }

    #[test]
    fn a_dump_tells_only_the_difference() {
        with_cx(|cx| {
            let mut f = RouteFeed::default();
            let a = route("2001:db8:1::100", 128, 7, 1024, 3);
            let b = route("2001:db8:1::200", 128, 7, 1024, 3);
            assert_eq!(f.reset(cx, &[a, b]).len(), 2);
            let c = route("2001:db8:1::300", 128, 7, 1024, 3);
            assert_eq!(
                f.reset(cx, &[b, c]),
                vec![
                    up("2001:db8:1::100/128", Some(2), false),
                    up("2001:db8:1::300/128", Some(2), true)
                ]
            );
            assert_eq!(f.reset(cx, &[b, c]), vec![]);
        });
    }

    #[test]
    fn the_feed_is_bounded() {
        with_cx(|cx| {
            let mut f = RouteFeed::default();
            let base = u128::from("2001:db8:1::".parse::<Ipv6Addr>().unwrap());
            for i in 0..=MAX_ROUTED_ROUTES as u128 {
                let mut r = route("::", 128, 7, 1024, 3);
                r.dst = Ipv6Addr::from(base + i);
                let _ = f.apply(cx, &r, true);
            }
            assert_eq!(f.known.len(), MAX_ROUTED_ROUTES);
            assert_eq!(f.refused, 1);
        });
    }
}
