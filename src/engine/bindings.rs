//! Binding life cycle (RFC 4861 §7.3 states, RFC 4389 §4.1 learning): learning from
//! ND, confirmation by solicited NAs, NUD probes the relay sends itself, host moves
//! (NDP reference §5 #21) and the host routes that follow confirmed downstream bindings.
//!
//! States: REACHABLE after a solicited NA; when it runs out a downstream binding goes
//! to DELAY then PROBE (the relay probes its guests itself so routes stay right), an
//! upstream one to STALE; STALE entries are forgotten after `stale_lifetime`; a PROBE
//! that gets no answer after `max_probes` removes the binding (or moves it to the port
//! that claimed it meanwhile). INCOMPLETE is never stored: a target being resolved
//! lives in the pending table only, so unanswered targets create no binding.

use std::net::Ipv6Addr;

use super::cache::Refused;
use super::{
    Action, Binding, BindingState, Counter, DataPlane, Engine, Event, Instant, NdMessage,
    OptionRepr, PortId,
};
use crate::time::Duration;
use crate::wire::{Mac, NaFlags};

impl Engine {
    /// Learns `addr` → (`port`, `mac`). `na` carries the flags when the evidence is an
    /// NA for `addr` (its target); otherwise it is an NS/RS SLLA or a data source.
    pub(super) fn learn(
        &mut self,
        now: Instant,
        port: PortId,
        addr: Ipv6Addr,
        mac: Mac,
        na: Option<NaFlags>,
    ) {
        // RFC 4861 §7.2.3 and reference §5: never from ::, never a group MAC.
        if addr.is_unspecified() || addr.is_multicast() || mac.is_multicast() {
            return;
        }
        let solicited = na.is_some_and(|f| f.contains(NaFlags::SOLICITED));
        let Some(b) = self.cache.get(&addr) else {
            let t = &self.cfg.tunables;
            let (state, deadline) = if solicited {
                (BindingState::Reachable, now + self.reachable_time())
            } else {
                (BindingState::Stale, now + t.stale_lifetime)
            };
            let mut b = Binding::new(port, mac, state, deadline);
            b.since = now;
            if solicited {
                b.confirmed_at = Some(now);
            }
            match self.cache.insert(addr, b) {
                Err(Refused::TableFull) => self.counters.bump(Counter::LearnTableFull),
                Err(Refused::Quota) => self.counters.bump(Counter::LearnQuota),
                Ok(evicted) => {
                    if let Some((old, old_port)) = evicted {
                        self.counters.bump(Counter::BindingsEvicted);
                        self.emit(|| Event::Unbound {
                            addr: old,
                            port: old_port,
                        });
                    }
                    self.counters.bump(Counter::BindingsLearned);
                    if !self.held.is_empty() {
                        self.held.bound(addr);
                    }
                    if solicited {
                        self.counters.bump(Counter::BindingsConfirmed);
                    }
                    self.emit(|| Event::Binding {
                        addr,
                        port,
                        mac,
                        state,
                    });
                    self.sync_route(addr);
                    if solicited {
                        self.announce_binding(now, addr);
                    }
                }
            }
            return;
        };
        if b.port != port {
            // The uplink never takes an address from a guest (reference §5 #20); the
            // caller counts the drop when the evidence was an NA.
            if self.port(port).is_upstream() && !self.port(b.port).is_upstream() {
                return;
            }
            if b.restored && solicited {
                // An earlier run's binding, never confirmed by this one, yields at once
                // to a guest confirmed now: it never beats a confirmed binding.
                self.remove_binding(addr);
                return self.learn(now, port, addr, mac, na);
            }
            return self.start_conflict(now, addr, port, mac);
        }
        let (same_mac, state, moving) = (b.mac == mac, b.state, b.moving.is_some());
        if moving && let Some(b) = self.cache.get_mut(&addr) {
            // Anything from the old port proves the address still lives there.
            b.moving = None;
        }
        match na {
            None if !same_mac => self.set_mac_stale(now, addr, mac),
            None => {}
            Some(f) if same_mac || f.contains(NaFlags::OVERRIDE) => {
                if !same_mac {
                    self.set_mac_stale(now, addr, mac);
                }
                if f.contains(NaFlags::SOLICITED) {
                    self.confirm(now, addr);
                }
            }
            // RFC 4861 §7.2.5: O=0 with another MAC only downgrades REACHABLE.
            Some(_) if state == BindingState::Reachable => {
                let stale = now + self.cfg.tunables.stale_lifetime;
                self.set_state(addr, BindingState::Stale, stale);
            }
            Some(_) => {}
        }
    }

    fn set_mac_stale(&mut self, now: Instant, addr: Ipv6Addr, mac: Mac) {
        if let Some(port) = self.cache.get(&addr).map(|b| b.port) {
            self.cache.relocate(addr, port, mac);
        }
        let stale = now + self.cfg.tunables.stale_lifetime;
        self.set_state(addr, BindingState::Stale, stale);
    }

    pub(super) fn set_state(&mut self, addr: Ipv6Addr, state: BindingState, until: Instant) {
        let Some(b) = self.cache.get_mut(&addr) else {
            return;
        };
        if b.state != state {
            b.since = self.now;
        }
        b.state = state;
        let (port, mac) = (b.port, b.mac);
        self.cache.set_deadline(addr, until);
        self.emit(|| Event::Binding {
            addr,
            port,
            mac,
            state,
        });
    }

    /// A solicited NA for the binding arrived on its port.
    pub(super) fn confirm(&mut self, now: Instant, addr: Ipv6Addr) {
        let until = now + self.reachable_time();
        let Some(b) = self.cache.get_mut(&addr) else {
            return;
        };
        if b.confirmed_at.is_none() || b.restored {
            // What a state file holds changed (`Engine::state_stamp`).
            self.first_confirms = self.first_confirms.wrapping_add(1);
        }
        if b.restored {
            b.restored = false;
            self.counters.bump(Counter::BindingsReverified);
        }
        b.confirmed_at = Some(now);
        b.probes = 0;
        b.moving = None;
        b.unicast_ns_since = None;
        self.counters.bump(Counter::BindingsConfirmed);
        self.set_state(addr, BindingState::Reachable, until);
        self.sync_route(addr);
        self.announce_binding(now, addr);
    }

    /// Installs or removes the host route so that exactly the confirmed downstream
    /// bindings in a proxied prefix on live ports are routed (kernel data plane). A route
    /// is installed once, when the binding first becomes REACHABLE, and stays through
    /// STALE/DELAY/PROBE until the binding dies, moves or its port goes down.
    pub(super) fn sync_route(&mut self, addr: Ipv6Addr) {
        let Some(b) = self.cache.get(&addr) else {
            return;
        };
        let port = self.port(b.port);
        let eligible = self.cfg.data_plane == DataPlane::KernelRoutes
            && !port.is_upstream()
            && port.live()
            && self.cfg.prefixes.iter().any(|r| r.prefix.contains(&addr));
        let (routed, state, bport) = (b.routed, b.state, b.port);
        if !routed && eligible && state == BindingState::Reachable {
            self.leftover_take_over(addr, bport);
            self.set_routed(addr, true);
            self.counters.bump(Counter::RoutesInstalled);
            self.actions
                .push_back(Action::InstallRoute { addr, port: bport });
        } else if routed && !eligible {
            self.set_routed(addr, false);
            self.counters.bump(Counter::RoutesRemoved);
            self.actions
                .push_back(Action::RemoveRoute { addr, port: bport });
        }
    }

    fn set_routed(&mut self, addr: Ipv6Addr, routed: bool) {
        if let Some(b) = self.cache.get_mut(&addr) {
            b.routed = routed;
        }
    }

    pub(super) fn remove_binding(&mut self, addr: Ipv6Addr) {
        self.forget_kernel_target(addr);
        let Some(b) = self.cache.remove(&addr) else {
            return;
        };
        if b.routed {
            self.counters.bump(Counter::RoutesRemoved);
            self.actions
                .push_back(Action::RemoveRoute { addr, port: b.port });
        }
        self.counters.bump(Counter::BindingsRemoved);
        self.emit(|| Event::Unbound { addr, port: b.port });
    }

    /// Another port claims a bound address: probe the old port; the address moves only
    /// if the old port fails (NDP reference §5 #21; RFC 4389 §3 mobility).
    fn start_conflict(&mut self, now: Instant, addr: Ipv6Addr, port: PortId, mac: Mac) {
        let Some(b) = self.cache.get_mut(&addr) else {
            return;
        };
        if b.moving.is_some() {
            b.moving = Some((port, mac));
            return;
        }
        b.moving = Some((port, mac));
        let old = b.port;
        self.counters.bump(Counter::BindingConflict);
        if !self.port(old).live() {
            // Nobody can answer on a dead port.
            return self.probe_failed(now, addr);
        }
        if let Some(b) = self.cache.get_mut(&addr) {
            b.probes = 0;
        }
        self.set_state(addr, BindingState::Probe, now);
        self.send_probe(now, addr);
    }

    /// Probes a binding now, unless it is already being probed: a DAD probe for it came
    /// from another port, so the host may have moved (RFC 4389 §3). DAD is never learned
    /// from, so nothing is recorded about the new port; if the old port fails, the
    /// binding goes and the host is learned where it next speaks.
    pub(super) fn recheck_binding(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(b) = self.cache.get_mut(&addr) else {
            return;
        };
        if b.state == BindingState::Probe {
            return;
        }
        b.probes = 0;
        self.set_state(addr, BindingState::Probe, now);
        self.send_probe(now, addr);
    }

    /// One unicast NUD probe from the binding's port link-local (RFC 4389 §4.2).
    fn send_probe(&mut self, now: Instant, addr: Ipv6Addr) {
        let retrans = self.cfg.tunables.retrans_timer;
        let Some(b) = self.cache.get_mut(&addr) else {
            return;
        };
        b.probes = b.probes.saturating_add(1);
        let (port, mac) = (b.port, b.mac);
        self.cache.set_deadline(addr, now + retrans);
        if !self.port(port).usable() {
            return;
        }
        let (src, own_mac) = (self.port(port).cfg.link_local, self.port(port).cfg.mac);
        self.originate(
            port,
            mac,
            src,
            addr,
            NdMessage::NeighborSolicit { target_addr: addr },
            &[OptionRepr::SourceLla(own_mac)],
        );
        self.counters.bump(Counter::SentNs);
    }

    fn probe_failed(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(b) = self.cache.get(&addr) else {
            return;
        };
        let Some((new_port, new_mac)) = b.moving else {
            if b.restored {
                self.counters.bump(Counter::BindingsRestoreFailed);
            }
            return self.remove_binding(addr);
        };
        // Route for the old port goes; the new location is STALE (the claim was not a
        // confirmation) and is routed once a solicited NA confirms it.
        if b.routed {
            let old = b.port;
            self.set_routed(addr, false);
            self.counters.bump(Counter::RoutesRemoved);
            self.actions
                .push_back(Action::RemoveRoute { addr, port: old });
        }
        self.forget_kernel_target(addr);
        self.cache.relocate(addr, new_port, new_mac);
        if let Some(b) = self.cache.get_mut(&addr) {
            b.moving = None;
            b.confirmed_at = None;
            b.probes = 0;
        }
        self.counters.bump(Counter::BindingsMoved);
        let stale = now + self.cfg.tunables.stale_lifetime;
        self.set_state(addr, BindingState::Stale, stale);
        // Peers keep their caches pointing at the relay, so nothing else will solicit
        // the host on its new port: verify it there ourselves, so its route follows as
        // soon as it answers (and the binding goes if it does not).
        if self.port(new_port).live() {
            self.recheck_binding(now, addr);
        }
    }

    /// The binding's `expires_at` passed.
    pub(super) fn binding_timer(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(b) = self.cache.get(&addr) else {
            return;
        };
        let t = &self.cfg.tunables;
        let (delay, stale, max_probes) = (t.delay_first_probe, t.stale_lifetime, t.max_probes);
        let downstream = !self.port(b.port).is_upstream();
        // Reference §5 (clock jump, suspend): deadlines that passed long ago all fire
        // together; spread their probes over another DELAY instead of a storm.
        let late = now.saturating_since(b.expires_at) > t.retrans_timer;
        match b.state {
            BindingState::Reachable if downstream && self.port(b.port).live() => {
                let spread = if late {
                    Duration::from_micros(self.rng.below(delay.total_micros()))
                } else {
                    Duration::ZERO
                };
                self.set_state(addr, BindingState::Delay, now + delay + spread);
            }
            BindingState::Reachable => self.set_state(addr, BindingState::Stale, now + stale),
            BindingState::Delay | BindingState::Probe if late => {
                let spread = Duration::from_micros(self.rng.below(delay.total_micros()) + 1);
                let state = b.state;
                self.set_state(addr, state, now + spread);
            }
            BindingState::Delay => {
                if let Some(b) = self.cache.get_mut(&addr) {
                    b.probes = 0;
                }
                self.set_state(addr, BindingState::Probe, now);
                self.send_probe(now, addr);
            }
            BindingState::Probe if b.probes < max_probes => self.send_probe(now, addr),
            BindingState::Probe => self.probe_failed(now, addr),
            // A binding restored from an earlier run is probed, not forgotten: its
            // route stays only if its guest answers (`restore.rs`).
            BindingState::Stale if b.restored && downstream && self.port(b.port).live() => {
                self.recheck_binding(now, addr);
            }
            BindingState::Stale | BindingState::Incomplete => self.remove_binding(addr),
        }
    }

    /// A STALE binding is used (data sent to it): start NUD (RFC 4861 §7.3.3).
    pub(super) fn binding_used(&mut self, now: Instant, addr: Ipv6Addr) {
        if self
            .cache
            .get(&addr)
            .is_some_and(|b| b.state == BindingState::Stale)
        {
            let delay = self.cfg.tunables.delay_first_probe;
            self.set_state(addr, BindingState::Delay, now + delay);
        }
    }

    /// The port went down (or its MTU fell below 1280): its bindings become suspect
    /// (STALE, no routes); a pending move away from it happens at once.
    pub(super) fn bindings_port_dead(&mut self, now: Instant, port: PortId) {
        let stale = now + self.cfg.tunables.stale_lifetime;
        for addr in self.cache.on_port(port) {
            if self.cache.get(&addr).is_some_and(|b| b.moving.is_some()) {
                self.probe_failed(now, addr);
                continue;
            }
            self.set_state(addr, BindingState::Stale, stale);
            self.sync_route(addr);
        }
    }

    /// The port came back: re-verify its bindings with probes spread over
    /// `delay_first_probe` (rate-limited re-verification); routes return only for
    /// re-confirmed guests.
    pub(super) fn bindings_port_live(&mut self, now: Instant, port: PortId) {
        let spread = self.cfg.tunables.delay_first_probe.total_micros();
        for addr in self.cache.on_port(port) {
            let at = now + Duration::from_micros(self.rng.below(spread) + 1);
            self.set_state(addr, BindingState::Delay, at);
        }
    }
}
