//! Neighbor Solicitations (RFC 4861 §7.2.3, RFC 4389 §4.1.3.1): learn the SLLA, relay
//! with the SLLA rewritten, never answer from the cache, except for `Static` prefixes
//! and the opt-in fast path, never for DAD.
//!
//! Heads up: read RFC 4861 §7.2 and RFC 4389 §4.1.3.1 first.

use std::net::Ipv6Addr;

use super::pending::Solicitor;
use super::{
    ALL_NODES, BindingState, Counter, Engine, Event, Instant, NdMessage, OptionRepr, PortId,
    PrefixMode,
};
use crate::DropReason;
use crate::wire::{Mac, NaFlags, NdPacket, solicited_node};

impl Engine {
    pub(super) fn process_ns(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
    ) {
        let dad = pkt.src_addr.is_unspecified();
        if target == self.port(port).cfg.link_local {
            // Our own address on this link: answer as the port's stack would (a guest
            // resolving the relay after a probe, or its router under RaSource::Relay).
            if dad {
                return self.drop_frame(port, DropReason::NotProxied);
            }
            self.learn_from_solicit(now, port, pkt);
            if !self.cfg.answer_own_link_local {
                // The host's own stack answers for its addresses.
                self.counters.bump(Counter::LeftToHost);
                return;
            }
            let flags = NaFlags::SOLICITED | NaFlags::OVERRIDE;
            return self.answer_ns(port, pkt, target, target, flags);
        }
        let Some(mode) = self.proxied(target) else {
            return self.drop_frame(port, DropReason::NotProxied);
        };
        if self.routed_port(target).is_some() {
            self.learn_from_solicit(now, port, pkt);
            return self.answer_routed(port, pkt, target);
        }
        if self.ports.iter().all(|p| p.is_upstream() || p.cfg.routed) {
            // Only routed ports behind the uplink, and no route to the target through
            // one: nobody to relay to, the address is simply not served here.
            return self.drop_frame(port, DropReason::NotProxied);
        }
        if dad {
            return self.relay_dad(now, port, pkt, target);
        }
        self.learn_from_solicit(now, port, pkt);
        if self.port(port).is_upstream() {
            self.ns_from_upstream(now, port, pkt, target, mode);
        } else {
            self.ns_from_downstream(now, port, pkt, target);
        }
    }

    /// RFC 4861 §7.2.3: the SLLA of a non-DAD NS updates the sender's entry.
    fn learn_from_solicit(&mut self, now: Instant, port: PortId, pkt: &NdPacket<'_>) {
        if let Some(mac) = pkt.slla {
            self.learn(now, port, pkt.src_addr, mac, None);
        }
    }

    fn ns_from_upstream(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        mode: PrefixMode,
    ) {
        if mode == PrefixMode::Static {
            // Static rule: every address in the prefix is ours to answer (ndppd
            // `static`); a solicited proxy answer from the uplink, O=0 (RFC 4861 §7.2.8).
            let flags = NaFlags::SOLICITED;
            return self.answer_ns(port, pkt, target, target, flags);
        }
        let Some(b) = self.cache.get(&target) else {
            return self.relay_unknown(now, port, pkt, target);
        };
        let (bport, bmac, confirmed_at) = (b.port, b.mac, b.confirmed_at);
        let reverify_sent = b.reverify_sent;
        // Opt-in fast path (reference §1.3): answer from a binding confirmed within the
        // window, and still relay so the binding re-verifies; one relayed NS per
        // RetransTimer is enough for that, so a fast asker is answered from the cache
        // without a frame to the guest for every NS. Never for DAD (handled above) and
        // never from a merely learned (unconfirmed) binding.
        let fast =
            self.cfg.fast_path.is_some_and(|window| {
                confirmed_at.is_some_and(|t| now.saturating_since(t) <= window)
            }) && bport != port
                && self.forwarding(bport);
        let flags = NaFlags::SOLICITED;
        let kernel_answered = fast && self.kernel_answered(port, target);
        let kernel_relayed = self.kernel_relayed_ns(port, target);
        if fast {
            self.tell_kernel(now, port, target, confirmed_at);
        }
        let retrans = self.cfg.tunables.retrans_timer;
        if fast && reverify_sent.is_some_and(|t| now.saturating_since(t) < retrans) {
            return self.answer_unless_kernel_did(kernel_answered, port, pkt, target, flags);
        }
        // Same port: both on the uplink, they resolve each other without us.
        if let Err(reason) = self.admit_bound_ns(now, port, pkt, target, bport, kernel_relayed) {
            return self.drop_frame(port, reason);
        }
        if fast {
            self.answer_unless_kernel_did(kernel_answered, port, pkt, target, flags);
            if let Some(b) = self.cache.get_mut(&target) {
                b.reverify_sent = Some(now);
            }
        }
        self.relay_ns_to(now, port, pkt, target, bport, bmac, kernel_relayed);
    }

    fn answer_unless_kernel_did(
        &mut self,
        kernel_answered: bool,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        flags: NaFlags,
    ) {
        if kernel_answered {
            self.counters.bump(Counter::AnsweredByKernel);
            self.emit(|| Event::AnsweredByKernel { port, target });
        } else {
            self.answer_ns(port, pkt, target, target, flags);
        }
    }

    fn ns_from_downstream(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
    ) {
        let Some(b) = self.cache.get(&target) else {
            return self.relay_unknown(now, port, pkt, target);
        };
        let (bport, bmac) = (b.port, b.mac);
        let kernel_relayed = self.kernel_relayed_ns(port, target);
        // Same port: the target is on the asker's own segment and answers by itself.
        if let Err(reason) = self.admit_bound_ns(now, port, pkt, target, bport, kernel_relayed) {
            return self.drop_frame(port, reason);
        }
        self.relay_ns_to(now, port, pkt, target, bport, bmac, kernel_relayed);
    }

    /// Whether an NS for a target bound on `bound` may be relayed there, from either
    /// direction: never back to its own port, only to a forwarding port, and under the
    /// known-target budget (which an NS the kernel relayed already did not wait for);
    /// if so, remembers the asker so the NA finds its way back.
    fn admit_bound_ns(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        bound: PortId,
        kernel_relayed: bool,
    ) -> Result<(), DropReason> {
        if bound == port {
            return Err(DropReason::IngressPort);
        }
        if !self.forwarding(bound) {
            return Err(DropReason::PortDisabled);
        }
        // A guest asking for an uplink address (the router, another customer) spends its
        // port's budget: one NS relayed per NS, but at the provider's router, which must
        // never see a guest's flood come from us (issue 14).
        let toward_uplink = bound == self.upstream;
        if !kernel_relayed
            && !(if toward_uplink {
                self.flood_token(now, port)
            } else {
                self.known_ns_bucket.take(now)
            })
        {
            return Err(DropReason::RateLimited);
        }
        self.note_solicitor(now, port, pkt, target);
        Ok(())
    }

    /// Relays to the one port where the target is bound, unless the kernel did
    /// (`kernel_relayed`); either way tells the kernel what it may relay next.
    #[allow(clippy::too_many_arguments)]
    fn relay_ns_to(
        &mut self,
        now: Instant,
        ingress: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        egress: PortId,
        mac: Mac,
        kernel_relayed: bool,
    ) {
        let eth_dst = if pkt.dst_addr.is_multicast() && !self.ns_to_bound_mac(now, target) {
            Mac::ipv6_multicast(pkt.dst_addr)
        } else {
            mac
        };
        self.tell_kernel_relay(now, ingress, pkt, target, egress, mac);
        if eth_dst == mac {
            self.tell_kernel_ns(now, ingress, target, egress);
        }
        if kernel_relayed {
            return self.relayed_by_kernel(ingress, egress, "NS", target);
        }
        let rw = self.relay_rewrite(egress, eth_dst);
        if self.transmit_rewrite(ingress, egress, pkt, &rw) {
            self.counters.bump(Counter::RelayedNs);
            self.note_ns_relayed(now, target, pkt.src_addr);
            self.relayed_event(ingress, 1 << egress.0, "NS", target);
        }
    }

    /// Whether a multicast NS for a bound target goes to the target's MAC, its IPv6
    /// destination (the solicited-node group) unchanged: only the target listens to
    /// that group, and a group frame makes a bridge hand it to every guest on the
    /// segment, whose kernels each walk their multicast list inside our send (a cost
    /// that grows with each guest's address count, on the answer's path; see
    /// BENCHMARKS.md, session 3). Hosts accept it
    /// like the Linux bridge's `multicast_to_unicast` copies and like a NUD probe
    /// (RFC 4861 §7.2.2). Only for a REACHABLE binding, and not once such an NS has
    /// gone a RetransTimer without the confirmation that clears `unicast_ns_since`:
    /// a guest whose MAC changed does not announce it by default, and the group
    /// reaches it under its new MAC.
    fn ns_to_bound_mac(&mut self, now: Instant, target: Ipv6Addr) -> bool {
        let retrans = self.cfg.tunables.retrans_timer;
        let Some(b) = self.cache.get_mut(&target) else {
            return false;
        };
        if b.state != BindingState::Reachable {
            return false;
        }
        match b.unicast_ns_since {
            Some(first) => now.saturating_since(first) < retrans,
            None => {
                b.unicast_ns_since = Some(now);
                true
            }
        }
    }

    /// Remembers who asked so the NA finds its way back even if the solicitor is not
    /// bound (a full table is fine here: the binding table serves bound solicitors).
    /// A bound target's NS is not paced per asker: it goes to one port only, so a fast
    /// asker costs one relayed frame per NS under the known-target budget, while
    /// dropping it would lose an answer a peer is waiting for.
    fn note_solicitor(&mut self, now: Instant, port: PortId, pkt: &NdPacket<'_>, target: Ipv6Addr) {
        let retrans = self.cfg.tunables.retrans_timer;
        let sol = Solicitor {
            addr: pkt.src_addr,
            port,
            mac: pkt.slla.unwrap_or(pkt.eth_src),
            asked_at: now,
            relayed_at: None,
        };
        if let Some(p) = self.pending.get_mut(&target) {
            p.failed = false;
            p.add_solicitor(sol);
            return;
        }
        let t = &self.cfg.tunables;
        let expires = now + pending_lifetime(t.retrans_timer, t.max_probes);
        if let Ok(evicted) = self.pending.insert(target, port, now, expires, retrans) {
            self.counters.add(Counter::PendingEvicted, evicted as u64);
            if let Some(p) = self.pending.get_mut(&target) {
                p.add_solicitor(sol);
            }
        }
    }

    /// A target with no binding: relay to every other proxying port, under the budget
    /// (RFC 6583 §7; reference §5 flood row): one NS per target per RetransTimer per
    /// port, new targets only with a token, a bounded pending entry per target, and a
    /// short negative cache for targets that never answered.
    fn relay_unknown(&mut self, now: Instant, port: PortId, pkt: &NdPacket<'_>, target: Ipv6Addr) {
        let sol = Solicitor {
            addr: pkt.src_addr,
            port,
            mac: pkt.slla.unwrap_or(pkt.eth_src),
            asked_at: now,
            relayed_at: None,
        };
        let mask = match self.budget_unknown(now, port, target, Some(sol)) {
            Ok(mask) => mask,
            Err(reason) => return self.drop_frame(port, reason),
        };
        let sent = self.relay_to_mask(port, pkt, mask);
        self.mark_relayed(now, target, sent);
        if sent != 0 {
            self.note_ns_relayed(now, target, pkt.src_addr);
        }
        self.counters
            .add(Counter::RelayedNs, u64::from(sent.count_ones()));
        self.relayed_event(port, sent, "NS", target);
    }

    /// Decides where a solicitation for an unbound target may go now (see
    /// [`Self::relay_unknown`]); creates or refreshes its pending entry.
    pub(super) fn budget_unknown(
        &mut self,
        now: Instant,
        port: PortId,
        target: Ipv6Addr,
        sol: Option<Solicitor>,
    ) -> Result<u64, DropReason> {
        let candidates = self.other_forwarding(port);
        if candidates == 0 {
            return Err(DropReason::PortDisabled);
        }
        let t = &self.cfg.tunables;
        let (retrans, lifetime) = (
            t.retrans_timer,
            pending_lifetime(t.retrans_timer, t.max_probes),
        );
        let mask = if let Some(p) = self.pending.get_mut(&target) {
            if p.failed {
                return Err(DropReason::NegativeCache);
            }
            if let Some(s) = sol {
                p.add_solicitor(s);
            }
            let fresh = now.saturating_since(p.last_relay) < retrans;
            let mask = if fresh {
                candidates & !p.relayed_mask
            } else {
                candidates
            };
            if mask == 0 {
                return Err(DropReason::RateLimited);
            }
            mask
        } else {
            if !self.flood_token(now, port) {
                return Err(DropReason::RateLimited);
            }
            match self
                .pending
                .insert(target, port, now, now + lifetime, retrans)
            {
                Ok(evicted) => self.counters.add(Counter::PendingEvicted, evicted as u64),
                Err(_) => return Err(DropReason::TableFull),
            }
            if let (Some(s), Some(p)) = (sol, self.pending.get_mut(&target)) {
                p.add_solicitor(s);
            }
            candidates
        };
        Ok(mask)
    }

    /// Starts the NS→NA clock of solicitor `asker` for `target`.
    fn note_ns_relayed(&mut self, now: Instant, target: Ipv6Addr, asker: Ipv6Addr) {
        if let Some(p) = self.pending.get_mut(&target) {
            p.mark_ns_relayed(asker, now);
        }
    }

    pub(super) fn mark_relayed(&mut self, now: Instant, target: Ipv6Addr, sent: u64) {
        let retrans = self.cfg.tunables.retrans_timer;
        if let Some(p) = self.pending.get_mut(&target) {
            if now.saturating_since(p.last_relay) >= retrans {
                p.relayed_mask = 0;
                p.last_relay = now;
            } else if p.relayed_mask == 0 {
                p.last_relay = now;
            }
            p.relayed_mask |= sent;
        }
    }

    /// DAD (RFC 4861 §7.2.3, reference §1.2): relayed to every other port unchanged but
    /// for L2, never learned from, never answered; the budget bounds DAD floods.
    fn relay_dad(&mut self, now: Instant, port: PortId, pkt: &NdPacket<'_>, target: Ipv6Addr) {
        // Hosts move between downstream ports only; the uplink never takes a guest's
        // address (reference §5 #20), so its DAD probes start no re-check.
        if !self.port(port).is_upstream() && self.cache.get(&target).is_some_and(|b| b.port != port)
        {
            self.recheck_binding(now, target);
        }
        let mask = self.other_forwarding(port);
        if mask == 0 {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        if !self.flood_token(now, port) {
            return self.drop_frame(port, DropReason::RateLimited);
        }
        let sent = self.relay_to_mask(port, pkt, mask);
        let n = u64::from(sent.count_ones());
        self.counters.add(Counter::RelayedNs, n);
        self.counters.add(Counter::RelayedDad, n);
        self.relayed_event(port, sent, "NS", target);
    }

    /// Answers an NS on its ingress port: solicited NA from `src` with TLLA = port MAC.
    pub(super) fn answer_ns(
        &mut self,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        src: Ipv6Addr,
        flags: NaFlags,
    ) {
        let mac = self.port(port).cfg.mac;
        let (dst, eth_dst) = if pkt.src_addr.is_unspecified() {
            (ALL_NODES, crate::wire::Mac::ipv6_multicast(ALL_NODES))
        } else {
            (pkt.src_addr, pkt.slla.unwrap_or(pkt.eth_src))
        };
        let mut flags = flags;
        if dst.is_multicast() {
            flags.remove(NaFlags::SOLICITED);
        }
        self.originate(
            port,
            eth_dst,
            src,
            dst,
            NdMessage::NeighborAdvert {
                flags,
                target_addr: target,
            },
            &[OptionRepr::TargetLla(mac)],
        );
        self.counters.bump(Counter::AnsweredNs);
        self.emit(|| Event::Answered { port, target });
    }

    /// Asks for `target` on `port` from the port's link-local, as a resolution would, so
    /// that its answer counts as solicited there (RFC 4861 §7.2.5) and binds it. The
    /// engine's own re-verification of an earlier run's routes goes this way (see
    /// [`Engine::adopt_routes`]); a driver or test may ask too.
    pub fn solicit(&mut self, now: Instant, port: PortId, target: Ipv6Addr) {
        let now = self.advance(now);
        self.solicit_on(now, port, target);
    }

    /// [`Engine::solicit`] at the engine's time `now`.
    pub(super) fn solicit_on(&mut self, now: Instant, port: PortId, target: Ipv6Addr) {
        if port.index() >= self.ports.len()
            || !self.port(port).usable()
            || self.proxied(target).is_none()
        {
            return;
        }
        if self.pending.get(&target).is_none() {
            let t = &self.cfg.tunables;
            let (retrans, lifetime) = (
                t.retrans_timer,
                pending_lifetime(t.retrans_timer, t.max_probes),
            );
            if self
                .pending
                .insert(target, port, now, now + lifetime, retrans)
                .is_err()
            {
                return self.counters.drop(DropReason::TableFull);
            }
        }
        self.send_solicitation(port, target);
        self.mark_relayed(now, target, 1 << port.0);
    }

    /// A relay-originated NS to resolve `target` (RFC 4389 §4.2: from the egress port's
    /// link-local, hop limit 255; unresolved, it may leave on every port).
    pub(super) fn resolve(&mut self, now: Instant, ingress: PortId, target: Ipv6Addr) {
        let mask = match self.budget_unknown(now, ingress, target, None) {
            Ok(m) => m,
            Err(_) => return,
        };
        let mut sent = 0u64;
        for p in self.port_ids() {
            if mask & (1 << p.0) == 0 {
                continue;
            }
            self.send_solicitation(p, target);
            sent |= 1 << p.0;
        }
        self.mark_relayed(now, target, sent);
    }

    /// A multicast NS for `target` from `port`'s link-local with its MAC as SLLA.
    fn send_solicitation(&mut self, port: PortId, target: Ipv6Addr) {
        let (src, mac) = (self.port(port).cfg.link_local, self.port(port).cfg.mac);
        let group = solicited_node(target);
        self.originate(
            port,
            Mac::ipv6_multicast(group),
            src,
            group,
            NdMessage::NeighborSolicit {
                target_addr: target,
            },
            &[OptionRepr::SourceLla(mac)],
        );
        self.counters.bump(Counter::SentNs);
    }
}

/// How long a pending solicitation waits for its NA: every retransmission's chance.
pub(super) fn pending_lifetime(
    retrans: crate::time::Duration,
    max_probes: u8,
) -> crate::time::Duration {
    crate::time::Duration::from_micros(
        retrans
            .total_micros()
            .saturating_mul(u64::from(max_probes.max(1))),
    )
}
