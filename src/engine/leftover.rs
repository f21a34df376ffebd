//! Routes an earlier run left behind (NDP reference §5, restart: "rebuild from ...
//! probes"): the driver finds them at start and hands them over with
//! [`Engine::adopt_routes`]; from then on the engine decides their fate like any other
//! route's.
//!
//! An adopted route stays while its guest gets a chance to re-verify: once its port is
//! enabled (two P-bit RAs, RFC 4389 §6; at once without RA relaying) the relay asks for
//! the address from the port's link-local in `PROBE_ROUNDS` rounds, through the same
//! solicitation path as a resolution, so the answer counts as solicited and binds the
//! guest. A confirmed binding for the address on the same port takes the route over
//! (an `InstallRoute` that replaces it in place, never a remove and re-install); one on
//! another port replaces it (the guest moved while the relay was away). A route nobody
//! confirmed by the end of `ROUTE_GRACE` is removed, as is one whose port goes down or
//! away, or which the current config would not route (upstream port, outside the
//! prefixes, no kernel routes). At most `max_bindings` routes are adopted: the rest are
//! removed at once and counted as refused.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use super::timer::{GlobalTimer, PortTimer};
use super::{Action, Counter, DataPlane, Engine, Event, Instant, PortId};
use crate::time::Duration;

/// How long an earlier run's route waits for its guest to re-verify.
pub const ROUTE_GRACE: Duration = Duration::from_secs(30);

/// Rounds of re-verification NS per port: the first when the port is enabled, each
/// later one this long after the one before. The gaps give a guest whose first answer
/// was lost three more chances well inside the grace period.
const PROBE_GAPS: [Duration; 3] = [
    Duration::from_secs(3),
    Duration::from_secs(3),
    Duration::from_secs(5),
];
/// How many rounds go out in all.
pub(super) const PROBE_ROUNDS: u8 = PROBE_GAPS.len() as u8 + 1;

/// What became of a route an earlier run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverFate {
    /// Kept while its guest re-verifies, until `until` at the latest.
    Kept {
        /// End of its grace period.
        until: Instant,
    },
    /// A confirmed binding on its port took it over.
    Verified,
    /// Nobody confirmed it within the grace period; removed.
    NotVerified,
    /// Its guest was confirmed on another port; removed there.
    Moved,
    /// Its port went down or away, or the config would not route it; removed.
    Unwanted,
    /// More routes than `max_bindings` were found; removed.
    Refused,
}

impl LeftoverFate {
    /// One line saying what became of the route for `addr` via the port named `port`,
    /// as every driver prints it.
    pub fn describe(self, addr: Ipv6Addr, port: &str) -> String {
        let route = format!("route {addr}/128 via {port} of an earlier run");
        match self {
            Self::Kept { until } => format!(
                "{route} kept until {:.3} s while its guest re-verifies",
                until.as_secs_f64()
            ),
            Self::Verified => format!("{route} re-verified; kept"),
            Self::NotVerified => format!("{route} did not re-verify; removed"),
            Self::Moved => format!("{route}: its guest is on another port now; removed"),
            Self::Unwanted => format!(
                "{route} is not routed here (port down or gone, uplink, not a proxied \
                 prefix, or no kernel routes); removed"
            ),
            Self::Refused => format!("{route} is beyond max_bindings; removed"),
        }
    }
}

/// One adopted route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leftover {
    pub(super) port: PortId,
    pub(super) until: Instant,
}

/// The adopted routes not yet verified or removed (bounded by `max_bindings`).
#[derive(Debug, Clone, Default)]
pub(super) struct Leftovers {
    routes: BTreeMap<Ipv6Addr, Leftover>,
}

impl Leftovers {
    pub(super) fn len(&self) -> usize {
        self.routes.len()
    }

    fn on_port(&self, port: PortId) -> Vec<Ipv6Addr> {
        self.routes
            .iter()
            .filter(|(_, l)| l.port == port)
            .map(|(a, _)| *a)
            .collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.routes.values().map(|l| l.until).min()
    }
}

impl Engine {
    /// Hands the engine the /128 routes an earlier run left (`(address, port)` pairs,
    /// found by the driver at start): they are kept while their guests re-verify and
    /// removed with [`Action::RemoveRoute`] when they do not (see `leftover.rs`). A
    /// route on the uplink, outside the proxied prefixes or on a port that is down is
    /// removed at once, and so is every one beyond `max_bindings`.
    pub fn adopt_routes(&mut self, now: Instant, routes: &[(Ipv6Addr, PortId)]) {
        let now = self.advance(now);
        for &(addr, port) in routes {
            if port.index() >= self.ports.len() {
                // The driver names ports it knows; a stray one has nothing to remove on.
                self.counters.bump(Counter::RoutesReconciledRefused);
                continue;
            }
            if self.leftovers.routes.contains_key(&addr) {
                continue;
            }
            if let Some(b) = self.cache.get(&addr)
                && b.routed
            {
                if b.port == port {
                    // Already routed for a guest: the route is the binding's (one
                    // restored from saved state re-verifies as a binding).
                    if !b.restored {
                        self.counters.bump(Counter::RoutesReconciledVerified);
                    }
                } else {
                    // The guest was confirmed elsewhere before the route was found.
                    self.leftover_removed(addr, port, LeftoverFate::Moved);
                }
                continue;
            }
            if !self.leftover_wanted(addr, port) {
                self.leftover_removed(addr, port, LeftoverFate::Unwanted);
                continue;
            }
            if self.leftovers.len() >= self.cfg.tunables.max_bindings {
                self.counters.bump(Counter::RoutesReconciledRefused);
                self.leftover_removed(addr, port, LeftoverFate::Refused);
                continue;
            }
            let until = now + ROUTE_GRACE;
            self.leftovers.routes.insert(addr, Leftover { port, until });
            self.counters.bump(Counter::RoutesReconciledKept);
            self.leftover_event(addr, port, LeftoverFate::Kept { until });
            if self.port(port).leftover_rounds >= PROBE_ROUNDS {
                // Routes adopted after an earlier batch's rounds ended get their own.
                self.port_mut(port).leftover_rounds = 0;
            }
            self.leftover_port_enabled(now, port);
        }
        self.arm_route_grace();
    }

    /// Routes of an earlier run still waiting for their guests, by address.
    pub fn leftover_routes(&self) -> Vec<(Ipv6Addr, PortId)> {
        self.leftovers
            .routes
            .iter()
            .map(|(a, l)| (*a, l.port))
            .collect()
    }

    /// Whether the config routes `addr` on `port` at all: a live downstream port, a
    /// proxied prefix, kernel routes (the rule of `sync_route`, minus the binding).
    fn leftover_wanted(&self, addr: Ipv6Addr, port: PortId) -> bool {
        let p = self.port(port);
        self.cfg.data_plane == DataPlane::KernelRoutes
            && !p.is_upstream()
            && p.live()
            && self.cfg.prefixes.iter().any(|r| r.prefix.contains(&addr))
    }

    fn leftover_removed(&mut self, addr: Ipv6Addr, port: PortId, fate: LeftoverFate) {
        self.counters.bump(Counter::RoutesReconciledRemoved);
        self.actions.push_back(Action::RemoveRoute { addr, port });
        self.leftover_event(addr, port, fate);
    }

    /// Says what became of a route an earlier run left. Unlike other events this one is
    /// queued even without `emit_events`: it happens at most a few times per route and
    /// start, and the daemon's log should say why a route it found went or stayed.
    fn leftover_event(&mut self, addr: Ipv6Addr, port: PortId, fate: LeftoverFate) {
        self.actions
            .push_back(Action::Event(Event::LeftoverRoute { addr, port, fate }));
    }

    fn arm_route_grace(&mut self) {
        let next = self.leftovers.next_deadline();
        self.timers.set_global(GlobalTimer::RouteGrace, next);
    }

    /// `port` now forwards (enabled, or up without RA relaying): its re-verification
    /// rounds start, unless they already have.
    pub(super) fn leftover_port_enabled(&mut self, now: Instant, port: PortId) {
        if self.leftovers.len() == 0
            || !self.forwarding(port)
            || self.port(port).leftover_rounds >= PROBE_ROUNDS
            || self.timers.port(port, PortTimer::LeftoverProbe).is_some()
            || !self.leftovers.routes.values().any(|l| l.port == port)
        {
            return;
        }
        self.timers
            .set_port(port, PortTimer::LeftoverProbe, Some(now));
    }

    /// One round of NS for the routes left on `port`, from its link-local, each as a
    /// pending solicitation so its answer binds the guest; the next round is scheduled.
    /// A port that stopped forwarding meanwhile waits to be enabled again.
    pub(super) fn leftover_probe_timer(&mut self, now: Instant, port: PortId) {
        if !self.forwarding(port) {
            return;
        }
        let addrs = self.leftovers.on_port(port);
        if addrs.is_empty() {
            return;
        }
        for addr in addrs {
            self.solicit_on(now, port, addr);
        }
        let p = self.port_mut(port);
        p.leftover_rounds = p.leftover_rounds.saturating_add(1);
        if let Some(gap) = PROBE_GAPS.get(usize::from(p.leftover_rounds) - 1) {
            self.timers
                .set_port(port, PortTimer::LeftoverProbe, Some(now + *gap));
        }
    }

    /// The grace period of one or more routes ended: those nobody confirmed go.
    pub(super) fn route_grace_timer(&mut self, now: Instant) {
        let due: Vec<(Ipv6Addr, PortId)> = self
            .leftovers
            .routes
            .iter()
            .filter(|(_, l)| l.until <= now)
            .map(|(a, l)| (*a, l.port))
            .collect();
        for (addr, port) in due {
            self.leftovers.routes.remove(&addr);
            self.leftover_removed(addr, port, LeftoverFate::NotVerified);
        }
        self.arm_route_grace();
    }

    /// A confirmed binding for `addr` on `port` is about to be routed: a route an
    /// earlier run left for it on the same port is taken over (the `InstallRoute` that
    /// follows replaces it in place); one on another port is removed first.
    pub(super) fn leftover_take_over(&mut self, addr: Ipv6Addr, port: PortId) {
        let Some(l) = self.leftovers.routes.remove(&addr) else {
            return;
        };
        if l.port == port {
            self.counters.bump(Counter::RoutesReconciledVerified);
            self.leftover_event(addr, port, LeftoverFate::Verified);
        } else {
            self.leftover_removed(addr, l.port, LeftoverFate::Moved);
        }
        self.arm_route_grace();
    }

    /// Removes the routes left on `port` (it went down or away), or, with `None`, every
    /// one the config no longer routes (after a reload).
    pub(super) fn leftovers_unwanted(&mut self, port: Option<PortId>) {
        let doomed: Vec<(Ipv6Addr, PortId)> = self
            .leftovers
            .routes
            .iter()
            .filter(|(a, l)| match port {
                Some(p) => l.port == p,
                None => !self.leftover_wanted(**a, l.port),
            })
            .map(|(a, l)| (*a, l.port))
            .collect();
        for (addr, port) in doomed {
            self.leftovers.routes.remove(&addr);
            self.leftover_removed(addr, port, LeftoverFate::Unwanted);
        }
        self.arm_route_grace();
    }

    /// A reload renumbered the ports: routes left on a port the new config lacks go
    /// (named by their old `PortId`, like the bindings there), the rest follow theirs.
    pub(super) fn leftovers_remap(&mut self, lookup: impl Fn(PortId) -> Option<PortId>) {
        let routes = std::mem::take(&mut self.leftovers.routes);
        for (addr, l) in routes {
            match lookup(l.port) {
                Some(port) => {
                    self.leftovers.routes.insert(addr, Leftover { port, ..l });
                }
                None => self.leftover_removed(addr, l.port, LeftoverFate::Unwanted),
            }
        }
        self.arm_route_grace();
    }
}
