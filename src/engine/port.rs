//! Port state: link events (reference §5 fault table) and the RFC 4389 §4.1.3.3/§6
//! rules that switch proxying on a port off (P-bit or rogue RA) and on again (two
//! P-bit RAs sent first).

use std::net::Ipv6Addr;

use super::timer::{GlobalTimer, PortTimer};
use super::{
    ALL_NODES, BindingState, Counter, Engine, Event, Instant, LinkEvent, NdMessage, OptionRepr,
    PortId, ProxyState,
};
use crate::wire::{Mac, NaFlags};

impl Engine {
    /// Reports a link change on `port`.
    ///
    /// - `Down` (and an MTU below 1280): nothing is sent there any more, its bindings
    ///   turn STALE and lose their routes.
    /// - `Up`: the port re-enables (two P-bit RAs before forwarding, RFC 4389 §6) and
    ///   its bindings are re-verified by probes spread over `delay_first_probe`; routes
    ///   return only for re-confirmed guests.
    /// - `MacChanged`: every later rewrite uses the new MAC; confirmed addresses proxied
    ///   onto the port are re-announced with O=1 NAs so neighbours update (odhcpd #25).
    /// - `MtuChanged`: used at once for RA MTU clamping and the MTU checks.
    pub fn handle_link_event(&mut self, now: Instant, port: PortId, event: LinkEvent) {
        let now = self.advance(now);
        if port.index() >= self.ports.len() {
            return;
        }
        let was_live = self.port(port).live();
        match event {
            LinkEvent::Up => self.port_mut(port).carrier = true,
            LinkEvent::Down => self.port_mut(port).carrier = false,
            LinkEvent::MtuChanged(mtu) => self.port_mut(port).cfg.mtu = mtu,
            LinkEvent::MacChanged(mac) => {
                self.counters.bump(Counter::MacChanged);
                self.port_mut(port).cfg.mac = mac;
                self.announce_mac(port, mac);
            }
        }
        if !matches!(event, LinkEvent::MtuChanged(_)) {
            // Down, up (perhaps a re-created interface, new index) or a new MAC: what
            // the kernel was told for this port may no longer hold.
            self.forget_kernel_entries(Some(port));
        }
        match (was_live, self.port(port).live()) {
            (true, false) => self.port_dead(now, port),
            (false, true) => self.port_live(now, port),
            _ => {}
        }
    }

    pub(super) fn port_dead(&mut self, now: Instant, port: PortId) {
        self.counters.bump(Counter::LinkDown);
        let was = self.forwarding(port);
        let p = self.port_mut(port);
        p.ras_sent = 0;
        p.ra_pending = false;
        p.waiting_since = None;
        p.own_ras = false;
        self.timers.set_port(port, PortTimer::RaPace, None);
        self.timers.set_port(port, PortTimer::OwnRa, None);
        self.bindings_port_dead(now, port);
        // Like a binding's route: nobody behind a dead port can re-verify it.
        self.leftovers_unwanted(Some(port));
        if was {
            self.emit(|| Event::PortProxying {
                port,
                enabled: false,
            });
        }
    }

    pub(super) fn port_live(&mut self, now: Instant, port: PortId) {
        self.counters.bump(Counter::LinkUp);
        self.bindings_port_live(now, port);
        self.resume_proxying(now, port);
    }

    /// A port may proxy again (link up, hold time over): the uplink at once, asking for
    /// an RA so waiting ports get one sooner; a downstream port after its two P-bit RAs.
    fn resume_proxying(&mut self, now: Instant, port: PortId) {
        if self.port(port).is_upstream() {
            self.want_ra(now);
            if self.forwarding(port) {
                self.emit(|| Event::PortProxying {
                    port,
                    enabled: true,
                });
            }
        } else {
            self.start_enabling(now, port);
        }
    }

    /// RFC 4389 §6: a downstream port proxies only after two P-bit RAs went out on it;
    /// without a stored RA, ask the uplink for one, and send our own RAs if none comes
    /// within `ra_wait`.
    pub(super) fn start_enabling(&mut self, now: Instant, port: PortId) {
        let p = self.port_mut(port);
        p.ras_sent = 0;
        p.ra_next = now;
        p.ra_pending = false;
        p.waiting_since = None;
        p.own_ras = false;
        self.timers.set_port(port, PortTimer::OwnRa, None);
        if !self.port(port).usable() {
            return;
        }
        if !self.cfg.ra_relay {
            self.emit(|| Event::PortProxying {
                port,
                enabled: true,
            });
            self.leftover_port_enabled(now, port);
            return;
        }
        if self.last_ra.is_some() {
            self.offer_ra(now, port);
        } else {
            self.want_ra(now);
            self.port_mut(port).waiting_since = Some(now);
            // Once the uplink proved silent, a port coming (back) up does not wait again:
            // the RS still goes, and a router's answer is relayed as soon as it comes.
            let at = if self.no_router_ra {
                now
            } else {
                now + self.cfg.tunables.ra_wait
            };
            self.timers.set_port(port, PortTimer::OwnRa, Some(at));
        }
    }

    /// Starts as a relay that has been running does (replay's default, for captures that
    /// begin long after the relay started): every usable downstream port counts as having
    /// sent its two P-bit RAs (RFC 4389 §6) and proxies at once; nothing is sent. Called
    /// right after [`Engine::new`]; later it only enables ports still enabling.
    pub fn assume_running(&mut self, now: Instant) {
        let now = self.advance(now);
        if !self.cfg.ra_relay {
            return;
        }
        for port in self.port_ids() {
            if self.port(port).is_upstream() || self.forwarding(port) || !self.port(port).usable() {
                continue;
            }
            let p = self.port_mut(port);
            p.ras_sent = 2;
            p.ra_pending = false;
            p.waiting_since = None;
            p.own_ras = false;
            self.timers.set_port(port, PortTimer::RaPace, None);
            self.timers.set_port(port, PortTimer::OwnRa, None);
            self.emit(|| Event::PortProxying {
                port,
                enabled: true,
            });
            self.leftover_port_enabled(now, port);
        }
        // Nobody waits for an RA now: the RS due at start is not sent.
        self.timers.set_global(GlobalTimer::Solicit, None);
    }

    /// RFC 4389 §4.1.3.3: the port must not be used for proxying for the hold time; a
    /// new trigger (an RA from `by`: IPv6 and Ethernet source) during the hold extends it.
    pub(super) fn disable_port(&mut self, now: Instant, port: PortId, by: (Ipv6Addr, Mac)) {
        let until = now + self.cfg.tunables.proxy_disable_hold;
        let was = self.forwarding(port);
        let p = self.port_mut(port);
        p.disabled_until = Some(until);
        p.disabled_by = Some(by);
        p.ras_sent = 0;
        p.ra_pending = false;
        p.waiting_since = None;
        p.own_ras = false;
        self.timers.set_port(port, PortTimer::RaPace, None);
        self.timers.set_port(port, PortTimer::OwnRa, None);
        self.timers
            .set_port(port, PortTimer::ProxyHold, Some(until));
        self.forget_kernel_entries(Some(port));
        if was {
            self.counters.bump(Counter::PortsDisabled);
            self.emit(|| Event::PortProxying {
                port,
                enabled: false,
            });
        }
    }

    pub(super) fn proxy_hold_timer(&mut self, now: Instant, port: PortId) {
        let p = self.port_mut(port);
        p.disabled_until = None;
        p.disabled_by = None;
        self.resume_proxying(now, port);
    }

    /// Why `port` proxies or not, for `status` (decided here, not by the drivers).
    pub(super) fn proxy_state(&self, port: PortId) -> ProxyState {
        let p = self.port(port);
        if !p.carrier {
            return ProxyState::LinkDown;
        }
        if !p.live() {
            return ProxyState::MtuTooSmall { mtu: p.cfg.mtu };
        }
        if let Some(until) = p.disabled_until {
            return ProxyState::Disabled {
                until,
                by: p.disabled_by,
            };
        }
        if self.forwarding(port) {
            return ProxyState::Proxying;
        }
        match p.waiting_since {
            Some(since) if !p.own_ras && self.last_ra.is_none() => ProxyState::WaitingForRa {
                since,
                own_ras_at: self.timers.port(port, PortTimer::OwnRa),
            },
            _ => ProxyState::SendingRas {
                own: self.last_ra.is_none(),
                sent: p.ras_sent,
            },
        }
    }

    /// After a MAC change, neighbours on the port still hold the old MAC for every
    /// address proxied there: announce the confirmed ones with O=1 (reference §2.5,
    /// odhcpd #25). Bounded by the binding table.
    pub(super) fn announce_mac(&mut self, port: PortId, mac: Mac) {
        if !self.forwarding(port) {
            return;
        }
        let mut addrs: Vec<_> = self
            .cache
            .iter()
            .filter(|(a, b)| {
                b.port != port && b.state == BindingState::Reachable && self.proxied(**a).is_some()
            })
            .map(|(a, _)| *a)
            .collect();
        addrs.sort();
        let flags = NaFlags::OVERRIDE;
        for addr in addrs {
            self.originate(
                port,
                Mac::ipv6_multicast(ALL_NODES),
                addr,
                ALL_NODES,
                NdMessage::NeighborAdvert {
                    flags,
                    target_addr: addr,
                },
                &[OptionRepr::TargetLla(mac)],
            );
            self.counters.bump(Counter::SentNa);
        }
    }

    /// A pending solicitation's time is up: an unanswered, unbound target goes into the
    /// short negative cache; anything else is forgotten.
    pub(super) fn pending_timer(&mut self, now: Instant, target: std::net::Ipv6Addr) {
        let Some(p) = self.pending.get(&target) else {
            return;
        };
        if p.failed || p.answered || self.cache.get(&target).is_some() {
            self.pending.remove(&target);
            return;
        }
        self.counters.bump(Counter::PendingFailed);
        let until = now + self.cfg.tunables.negative_cache;
        if let Some(p) = self.pending.get_mut(&target) {
            p.failed = true;
        }
        self.pending.set_deadline(target, until);
    }
}
