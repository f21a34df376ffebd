//! Router Solicitations and Advertisements (RFC 4861 §6, RFC 4389 §4.1.3.3 and §6):
//! RS downstream → uplink only, SLLA rewritten, rate-limited; RA uplink → every
//! downstream port, each copy built from the original with P set, SLLA = that port's
//! MAC, MTU clamped to the port's MTU, paced to one multicast RA per port per
//! `ra_min_interval` (latest wins). RAs with P set and RAs on downstream ports are the
//! loop signals: never relayed and counted. A P-bit RA quarantines its sender on the
//! port instead of disabling the port (THREAT-MODEL.md: RFC 4389 §4.1.3.3 would let one
//! guest switch proxying off for all); a rogue RA disables the port only by opt-in.
//! Without any router RA on the uplink (static setups), ports are enabled with the
//! relay's own P-bit RAs after `ra_wait`, repeated every `own_ra_interval`.
//!
//! Heads up: read RFC 4389 §4.1.3.3 and §6, and RFC 4861 §6.2.6 first.

use super::timer::{GlobalTimer, PortTimer};
use super::{
    ALL_NODES, ALL_ROUTERS, Action, Counter, Engine, Event, Instant, MAX_ROUTERS, NdMessage,
    OptionRepr, PortId, RaSource, Router,
};
use crate::DropReason;
use crate::wire::{LlaRewrite, Mac, NdPacket, Parsed, RaFlags, Rewrite, RouterAdvert, parse_frame};

impl Engine {
    pub(super) fn process_rs(&mut self, now: Instant, port: PortId, pkt: &NdPacket<'_>) {
        if self.port(port).is_upstream() {
            // For the routers on the uplink, not for us.
            return self.counters.bump(Counter::IgnoredRs);
        }
        if let Some(mac) = pkt.slla {
            self.learn(now, port, pkt.src_addr, mac, None);
        }
        if !self.cfg.ra_relay {
            return self.drop_frame(port, DropReason::NotProxied);
        }
        let up = self.upstream;
        if !self.forwarding(up) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        if !self.rs_bucket.take(now) {
            return self.drop_frame(port, DropReason::RateLimited);
        }
        let rw = self.relay_rewrite(up, self.l2_dst(pkt.dst_addr, up));
        if self.transmit_rewrite(port, up, pkt, &rw) {
            self.counters.bump(Counter::RelayedRs);
            self.relayed_event(port, 1 << up.0, "RS", pkt.src_addr);
        }
    }

    pub(super) fn process_ra(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        ra: RouterAdvert,
    ) {
        if !self.port(port).live() {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        if !self.port(port).is_upstream() {
            // Reference §1.3 and §5 #25: a downstream RA is never relayed. RFC 4389
            // §4.1.3.3 disables the port for an hour; that is the §9 DoS lever (one guest
            // would cut every other guest off), so it is opt-in (`disable_on_rogue_ra`).
            self.drop_frame(port, DropReason::RogueRa);
            if ra.flags.proxy() && self.cfg.honour_proxy_bit {
                self.quarantine_sender(now, port, pkt.eth_src);
            }
            if self.cfg.disable_on_rogue_ra {
                self.disable_port(now, port, (pkt.src_addr, pkt.eth_src));
            }
            return;
        }
        if ra.flags.proxy() {
            if self.cfg.honour_proxy_bit {
                // Another proxy on the uplink: never relayed, and neither is anything it
                // sends. A router whose RAs we relay is never taken for one, so a P-bit
                // RA forged with its MAC cannot cut the uplink off.
                self.drop_frame(port, DropReason::RaPBit);
                if !self.routers.values().any(|r| r.mac == pkt.eth_src) {
                    self.quarantine_sender(now, port, pkt.eth_src);
                }
                return;
            }
            // Cascade mode (opt-in): relay it like any RA.
            self.counters.bump(Counter::RaPBitIgnored);
        } else {
            // Proxies set P in every RA they send (RFC 4389 §4.1.3.3): a P-clear RA comes
            // from a router, whose frames must flow even if its MAC was forged in a P-bit
            // RA before we heard from it.
            self.port_mut(port).release(pkt.eth_src);
        }
        if !self.port(port).usable() {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        let mac = pkt.slla.unwrap_or(pkt.eth_src);
        // The router's MAC lives in the router table; a binding for its link-local comes
        // from its NS/NA like any other address.
        self.note_router(now, pkt.src_addr, mac, ra.router_lifetime);
        if !self.cfg.ra_relay {
            return;
        }
        // A router answering our RS may do so by unicast (radvd's default,
        // AdvRASolicitedUnicast): that is the router's RA as much as a multicast one,
        // stored as sent to all-nodes (RFC 4861 §6.2.6) so its copies go to every guest.
        let to_us = self.our_link_local(pkt.dst_addr) == Some(port);
        if !pkt.dst_addr.is_multicast() && !to_us {
            return self.relay_unicast_ra(port, pkt);
        }
        let first = self.last_ra.is_none();
        self.last_ra = Some(rebuild_frame(pkt));
        self.timers.set_global(GlobalTimer::Solicit, None);
        if first {
            self.router_ra_arrived(port, pkt.src_addr);
        }
        for p in self.port_ids() {
            if !self.port(p).is_upstream() {
                self.offer_ra(now, p);
            }
        }
    }

    /// The first router RA: relayed from now on (with the pacing the ports already
    /// have), so the relay's own RAs stop and nobody waits for one any more.
    fn router_ra_arrived(&mut self, uplink: PortId, router: std::net::Ipv6Addr) {
        for p in self.port_ids() {
            let port = self.port_mut(p);
            port.own_ras = false;
            port.waiting_since = None;
            self.timers.set_port(p, PortTimer::OwnRa, None);
        }
        if std::mem::take(&mut self.no_router_ra) {
            self.actions
                .push_back(Action::Event(Event::RouterRaAfterAll { uplink, router }));
        }
    }

    /// A port's own-RA deadline: `ra_wait` passed without a router's RA (or
    /// `own_ra_interval` since our last one). RFC 4389 §6 wants two P-bit RAs on the
    /// port before it proxies, and there is nothing to relay: the relay sends its own,
    /// which other proxies on the segment see like relayed ones (§4.1.3.3).
    pub(super) fn own_ra_timer(&mut self, now: Instant, p: PortId) {
        if !self.cfg.ra_relay
            || self.last_ra.is_some()
            || self.port(p).is_upstream()
            || !self.port(p).usable()
        {
            return;
        }
        if !self.no_router_ra {
            self.no_router_ra = true;
            let (uplink, waited) = (self.upstream, self.cfg.tunables.ra_wait);
            self.actions
                .push_back(Action::Event(Event::NoRouterRa { uplink, waited }));
        }
        self.port_mut(p).own_ras = true;
        self.offer_ra(now, p);
    }

    /// Drops `mac`'s frames on `port` for `proxy_disable_hold` (each P-bit RA renews it):
    /// whatever another proxy relays onto the port would come back through us, so the
    /// loop is cut at its sender and the port keeps proxying for everyone else.
    fn quarantine_sender(&mut self, now: Instant, port: PortId, mac: Mac) {
        let until = now + self.cfg.tunables.proxy_disable_hold;
        if self.port_mut(port).quarantine(mac, now, until) {
            self.counters.bump(Counter::QuarantinedSenders);
            self.emit(|| Event::Quarantined { port, mac, until });
        }
    }

    fn note_router(&mut self, now: Instant, addr: std::net::Ipv6Addr, mac: Mac, lifetime: u16) {
        if !self.routers.contains_key(&addr) && self.routers.len() >= MAX_ROUTERS {
            // Bounded router state (reference §5 RA flood): forget the least recent.
            if let Some(old) = self
                .routers
                .iter()
                .min_by_key(|(a, r)| (r.last_seen, **a))
                .map(|(a, _)| *a)
            {
                self.routers.remove(&old);
            }
        }
        self.routers.insert(
            addr,
            Router {
                mac,
                last_seen: now,
                lifetime,
            },
        );
    }

    /// The rewrite of an RA for downstream port `p` (RFC 4389 §4.1.3.3; reference §4.4).
    fn ra_rewrite(&self, p: PortId, eth_dst: Mac) -> Rewrite {
        let port = self.port(p);
        let relay_src = self.cfg.ra_source == RaSource::Relay;
        Rewrite {
            eth_src: port.cfg.mac,
            eth_dst,
            src_addr: relay_src.then_some(port.cfg.link_local),
            dst_addr: None,
            slla: LlaRewrite::Replace(port.cfg.mac),
            tlla: LlaRewrite::Keep,
            set_proxy_flag: true,
            // With our link-local as source, guests must not treat the prefix as on-link
            // behind a router they cannot reach (odhcpd PR #300, ChromiumOS).
            clear_pio_on_link: relay_src,
            max_mtu: Some(port.cfg.mtu),
        }
    }

    /// A router may answer an RS with a unicast RA: deliver it to the guest, unpaced.
    fn relay_unicast_ra(&mut self, port: PortId, pkt: &NdPacket<'_>) {
        let Some(b) = self.cache.get(&pkt.dst_addr) else {
            return self.drop_frame(port, DropReason::NoBinding);
        };
        let (egress, mac) = (b.port, b.mac);
        if egress == port {
            return self.drop_frame(port, DropReason::IngressPort);
        }
        if !self.forwarding(egress) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        let rw = self.ra_rewrite(egress, mac);
        if self.transmit_rewrite(port, egress, pkt, &rw) {
            self.counters.bump(Counter::RelayedRa);
            self.relayed_event(port, 1 << egress.0, "RA", pkt.src_addr);
        }
    }

    /// Sends the latest RA (or, with none known, our own) on `p` now if pacing allows,
    /// else when it does (latest wins).
    pub(super) fn offer_ra(&mut self, now: Instant, p: PortId) {
        let has_ra = self.last_ra.is_some() || self.port(p).own_ras;
        if !self.cfg.ra_relay || !has_ra || !self.port(p).usable() {
            return;
        }
        let next = self.port(p).ra_next;
        if now < next {
            self.port_mut(p).ra_pending = true;
            self.timers.set_port(p, PortTimer::RaPace, Some(next));
            return;
        }
        if !self.send_ra(p) {
            return;
        }
        let interval = self.cfg.tunables.ra_min_interval;
        let own_interval = self.cfg.tunables.own_ra_interval;
        let port = self.port_mut(p);
        port.ra_next = now + interval;
        port.last_ra_sent = Some(now);
        port.ra_pending = false;
        let mut enabled = false;
        if port.ras_sent < 2 {
            port.ras_sent += 1;
            // RFC 4389 §6: two P-bit RAs before anything else is forwarded there.
            enabled = port.ras_sent == 2;
            port.ra_pending = !enabled;
        }
        if port.ras_owed > 0 {
            // Resumed from saved state (`restore.rs`): its two P-bit RAs follow anyway.
            port.ras_owed -= 1;
            port.ra_pending |= port.ras_owed > 0;
        }
        let pending = port.ra_pending.then_some(port.ra_next);
        let own_repeat = (port.own_ras && !port.ra_pending).then(|| now + own_interval);
        if enabled {
            port.waiting_since = None;
        }
        self.timers.set_port(p, PortTimer::RaPace, pending);
        if own_repeat.is_some() {
            // RFC 4389 §4.1.3.3: a proxy joining the segment later must still hear a
            // P-bit RA within its hold, as it would from relayed router RAs.
            self.timers.set_port(p, PortTimer::OwnRa, own_repeat);
        }
        if enabled {
            self.emit(|| Event::PortProxying {
                port: p,
                enabled: true,
            });
            self.leftover_port_enabled(now, p);
        }
    }

    /// Sends the stored router RA on `p`, or our own without one.
    fn send_ra(&mut self, p: PortId) -> bool {
        let Some(frame) = self.last_ra.take() else {
            return self.send_own_ra(p);
        };
        let mut sent = false;
        if let Ok(Parsed::Nd(pkt)) = parse_frame(&frame) {
            let rw = self.ra_rewrite(p, Mac::ipv6_multicast(pkt.dst_addr));
            let up = self.upstream;
            if self.transmit_rewrite(up, p, &pkt, &rw) {
                self.counters.bump(Counter::RelayedRa);
                self.relayed_event(up, 1 << p.0, "RA", pkt.src_addr);
                sent = true;
            }
        }
        self.last_ra = Some(frame);
        sent
    }

    /// Our own RA on `p`: P set (RFC 4389 §4.1.3.3), router lifetime 0 so no guest takes
    /// the relay for a default router (RFC 4861 §6.3.4), M/O clear, no prefix or other
    /// option but the SLLA, from the port's link-local to all-nodes.
    fn send_own_ra(&mut self, p: PortId) -> bool {
        if !self.port(p).own_ras {
            return false;
        }
        let (src, mac) = (self.port(p).cfg.link_local, self.port(p).cfg.mac);
        let ra = RouterAdvert {
            cur_hop_limit: 0,
            flags: RaFlags::PROXY,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
        };
        self.originate(
            p,
            Mac::ipv6_multicast(ALL_NODES),
            src,
            ALL_NODES,
            NdMessage::RouterAdvert(ra),
            &[OptionRepr::SourceLla(mac)],
        );
        self.counters.bump(Counter::SentOwnRa);
        true
    }

    pub(super) fn ra_pace_timer(&mut self, now: Instant, p: PortId) {
        if self.port(p).ra_pending {
            self.offer_ra(now, p);
        }
    }

    /// RS upstream while downstream ports wait for an RA to enable them (reference
    /// §1.3: at start and port-up, repeated every MIN_DELAY_BETWEEN_RAS).
    pub(super) fn solicit_timer(&mut self, now: Instant) {
        if !self.cfg.ra_relay || self.last_ra.is_some() {
            return;
        }
        let waiting = self.port_ids().any(|p| {
            !self.port(p).is_upstream()
                && self.port(p).usable()
                && (!self.forwarding(p) || self.port(p).ras_owed > 0)
        });
        if !waiting {
            return;
        }
        let up = self.upstream;
        if self.port(up).usable() {
            let (src, mac) = (self.port(up).cfg.link_local, self.port(up).cfg.mac);
            self.originate(
                up,
                Mac::ipv6_multicast(ALL_ROUTERS),
                src,
                ALL_ROUTERS,
                NdMessage::RouterSolicit,
                &[OptionRepr::SourceLla(mac)],
            );
            self.counters.bump(Counter::SentRs);
        }
        let next = now + self.cfg.tunables.ra_min_interval;
        self.timers.set_global(GlobalTimer::Solicit, Some(next));
    }

    /// Asks for an RS soon (the Solicit timer), unless one is already due earlier.
    pub(super) fn want_ra(&mut self, now: Instant) {
        if self.last_ra.is_none() && self.timers.global(GlobalTimer::Solicit).is_none() {
            self.timers.set_global(GlobalTimer::Solicit, Some(now));
        }
    }
}

/// The stored copy of an RA: the frame exactly as received up to the IPv6 payload end
/// (trailer dropped), rebuilt from the parsed packet's bytes; one sent to us by unicast
/// is stored as sent to all-nodes.
fn rebuild_frame(pkt: &NdPacket<'_>) -> Vec<u8> {
    // A rewrite that changes nothing reproduces the received RA; building it through
    // `wire::rewrite` keeps all frame building in one place.
    let unicast = !pkt.dst_addr.is_multicast();
    let rw = Rewrite {
        eth_src: pkt.eth_src,
        eth_dst: if unicast {
            Mac::ipv6_multicast(ALL_NODES)
        } else {
            pkt.eth_dst
        },
        src_addr: None,
        dst_addr: unicast.then_some(ALL_NODES),
        slla: LlaRewrite::Keep,
        tlla: LlaRewrite::Keep,
        set_proxy_flag: false,
        clear_pio_on_link: false,
        max_mtu: None,
    };
    let mut out = Vec::new();
    crate::wire::rewrite(pkt, &rw, &mut out);
    out
}
