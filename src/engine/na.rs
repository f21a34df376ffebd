//! Neighbor Advertisements (RFC 4861 §7.2.5, RFC 4389 §4.1.3.2): update the ingress
//! cache as if the NA were for the relay, then relay it with the TLLA rewritten; R/S/O
//! stay as the owner set them.
//!
//! As for a host (RFC 4861 §7.2.5: no entry, discard), an NA creates a binding only if
//! the relay solicited its target on the NA's port, and its S flag confirms a binding
//! only then or in answer to the relay's own probe: a guest cannot make bindings or
//! routes by announcing addresses (DESIGN.md "Trust").
//!
//! Heads up: read RFC 4861 §7.2.5 and RFC 4389 §4.1.3.2 first.

use std::net::Ipv6Addr;

use super::{BindingState, Counter, Engine, Instant, PortId};
use crate::DropReason;
use crate::wire::{Mac, NaFlags, NdPacket};

impl Engine {
    pub(super) fn process_na(
        &mut self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        flags: NaFlags,
        target: Ipv6Addr,
    ) {
        let mac = pkt.tlla.unwrap_or(pkt.eth_src);
        if self.our_link_local(pkt.dst_addr).is_some() {
            // An answer to the relay's own probe or resolution: learn, do not relay.
            self.counters.bump(Counter::ConsumedNa);
            self.learn_from_na(now, port, target, mac, flags);
            return;
        }
        if self.proxied(target).is_none() {
            return self.drop_frame(port, DropReason::NotProxied);
        }
        if self.port(port).is_upstream()
            && self
                .cache
                .get(&target)
                .is_some_and(|b| !self.port(b.port).is_upstream())
        {
            // Reference §5 #20: the uplink cannot take a guest's address; the binding
            // stays, the NA goes nowhere.
            return self.drop_frame(port, DropReason::UplinkClaimsGuest);
        }
        let known = self.learn_from_na(now, port, target, mac, flags);

        if pkt.dst_addr.is_multicast() {
            // Unsolicited announcements and DAD defences (to ff02::1) go everywhere else,
            // so a guest whose address is used upstream sees its DAD fail; under the
            // ingress port's flood budget, like every flood.
            let mask = self.other_forwarding(port);
            if mask == 0 {
                return self.drop_frame(port, DropReason::PortDisabled);
            }
            if !self.flood_token(now, port) {
                return self.drop_frame(port, DropReason::RateLimited);
            }
            let sent = self.relay_to_mask(port, pkt, mask);
            self.counters
                .add(Counter::RelayedNa, u64::from(sent.count_ones()));
            self.relayed_event(port, sent, "NA", target);
            return;
        }
        // A unicast NA that nobody asked for and that updates nothing goes nowhere: it
        // would only carry a guest's flood to its destination.
        let destination = known
            .then(|| self.na_destination(target, pkt.dst_addr))
            .flatten();
        let Some((egress, eth_dst)) = destination else {
            return self.drop_frame(port, DropReason::Unsolicited);
        };
        if egress == port {
            return self.drop_frame(port, DropReason::IngressPort);
        }
        if !self.forwarding(egress) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        if self.kernel_relayed(port, pkt, target, egress, eth_dst) {
            // Answered, though not through the engine: a later NA for the same NS must
            // not be timed from it.
            if let Some(p) = self.pending.get_mut(&target) {
                p.take_ns_relayed_at(pkt.dst_addr);
            }
            return self.relayed_by_kernel(port, egress, "NA", target);
        }
        let rw = self.relay_rewrite(egress, eth_dst);
        if self.transmit_rewrite(port, egress, pkt, &rw) {
            self.counters.bump(Counter::RelayedNa);
            let relayed_at = self
                .pending
                .get_mut(&target)
                .and_then(|p| p.take_ns_relayed_at(pkt.dst_addr));
            if let Some(at) = relayed_at {
                self.ns_na.observe(now.saturating_since(at));
            }
            self.relayed_event(port, 1 << egress.0, "NA", target);
        }
    }

    /// Where a unicast NA goes: the solicitor remembered for the target (the one that
    /// asked, with the MAC it asked from), else the binding of the destination.
    fn na_destination(&self, target: Ipv6Addr, dst: Ipv6Addr) -> Option<(PortId, Mac)> {
        if let Some(s) = self.pending.get(&target).and_then(|p| p.solicitor(dst)) {
            return Some((s.port, s.mac));
        }
        self.cache.get(&dst).map(|b| (b.port, b.mac))
    }

    /// Learns what the NA may teach; returns whether the target is bound or was asked
    /// for on `port`, i.e. whether the NA is more than an unsolicited announcement of
    /// an unknown address.
    fn learn_from_na(
        &mut self,
        now: Instant,
        port: PortId,
        target: Ipv6Addr,
        mac: Mac,
        flags: NaFlags,
    ) -> bool {
        let asked = self.solicited_on(port, target);
        if asked && let Some(p) = self.pending.get_mut(&target) {
            // Answered: no negative cache for it, whoever answered.
            p.answered = true;
            p.failed = false;
        }
        let bound = self.cache.get(&target).is_some();
        if !bound && !asked {
            self.counters.bump(Counter::UnsolicitedNaIgnored);
            return false;
        }
        let mut flags = flags;
        if !asked {
            flags.remove(NaFlags::SOLICITED);
        }
        self.learn(now, port, target, mac, Some(flags));
        true
    }

    /// Whether the relay asked for `target` on `port`: an NS for it went there (relayed
    /// or resolved, still pending), or the relay is probing its binding there.
    fn solicited_on(&self, port: PortId, target: Ipv6Addr) -> bool {
        let binding = self.cache.get(&target);
        if binding.is_some_and(|b| b.port == port && b.state == BindingState::Probe) {
            return true;
        }
        self.pending.get(&target).is_some_and(|p| {
            p.relayed_mask & (1 << port.0) != 0 || binding.is_some_and(|b| b.port == port)
        })
    }
}
