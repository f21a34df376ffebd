//! The userspace data plane (RFC 4389 §4.1, `DataPlane::Userspace`): unicast IPv6 frames
//! forwarded by binding with only the Ethernet header rewritten (Hop Limit untouched),
//! never back out the ingress port, Packet Too Big for oversize packets (§4.1.1), and
//! resolution (a relay-originated NS, §4.2) for unknown destinations. Multicast goes to
//! every other proxying port with the L2 source rewritten.
//!
//! While a destination is resolved its latest packet is held (RFC 4389 §4.1 "SHOULD
//! queue", RFC 4861 §7.2.2: at least one packet per destination, a new arrival
//! replaces the old one), so the first packet of a flow is not lost. The hold is
//! bounded ([`MAX_HELD`] packets in all, the oldest gives way) and every packet in it
//! leaves within the resolution's lifetime: forwarded once the destination is bound,
//! or dropped as `resolution_failed` when it never answers.

use std::net::Ipv6Addr;

use super::{Counter, DataPlane, Engine, Event, Instant, PortId, PrefixMode};
use crate::DropReason;
use crate::wire::{
    ETH_HEADER_LEN, ETHERTYPE_IPV6, Ipv6Data, Mac, Parsed, emit_packet_too_big, parse_frame,
};

/// Most packets held for unresolved destinations, all destinations together.
pub(crate) const MAX_HELD: usize = 64;

/// One packet waiting for its destination to be resolved.
#[derive(Debug, Clone)]
struct Held {
    dst: Ipv6Addr,
    ingress: PortId,
    /// The frame as received (untagged Ethernet).
    frame: Vec<u8>,
    /// Dropped as `resolution_failed` at this time if still unresolved.
    give_up_at: Instant,
}

/// Packets held while their destinations are resolved: at most one per destination and
/// [`MAX_HELD`] in all, oldest first (a short list: scans are cheaper than maps).
#[derive(Debug, Clone, Default)]
pub(super) struct HeldData {
    list: Vec<Held>,
    /// A binding was created for a held destination: flush after this frame.
    ready: bool,
}

impl HeldData {
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// A binding for `addr` was just created (the only way a held destination becomes
    /// forwardable, since packets are held only when it had none).
    pub(super) fn bound(&mut self, addr: Ipv6Addr) {
        if self.list.iter().any(|h| h.dst == addr) {
            self.ready = true;
        }
    }

    /// True once after a held destination got bound.
    pub(super) fn take_ready(&mut self) -> bool {
        std::mem::take(&mut self.ready)
    }

    /// Holds `frame` for `dst`; returns the ingress port of a packet this displaced (the
    /// older packet for the same destination, or the oldest of all when full).
    fn hold(
        &mut self,
        dst: Ipv6Addr,
        ingress: PortId,
        frame: Vec<u8>,
        give_up_at: Instant,
    ) -> Option<PortId> {
        if let Some(h) = self.list.iter_mut().find(|h| h.dst == dst) {
            let old = h.ingress;
            h.ingress = ingress;
            h.frame = frame;
            return Some(old);
        }
        let displaced = (self.list.len() >= MAX_HELD).then(|| self.list.remove(0).ingress);
        self.list.push(Held {
            dst,
            ingress,
            frame,
            give_up_at,
        });
        displaced
    }

    /// Takes out the packets for which `ready` holds, oldest first.
    fn take(&mut self, mut ready: impl FnMut(&Held) -> bool) -> Vec<Held> {
        let (out, keep) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|h| ready(h));
        self.list = keep;
        out
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|h| h.give_up_at).min()
    }

    /// Follows a reload's port renumbering; returns how many packets lost their ingress.
    pub(super) fn remap_ports(&mut self, map: impl Fn(PortId) -> Option<PortId>) -> usize {
        let before = self.list.len();
        self.list.retain_mut(|h| match map(h.ingress) {
            Some(p) => {
                h.ingress = p;
                true
            }
            None => false,
        });
        before - self.list.len()
    }
}

impl Engine {
    pub(super) fn process_data(&mut self, now: Instant, port: PortId, d: &Ipv6Data<'_>) {
        if self.cfg.data_plane != DataPlane::Userspace {
            return self.counters.bump(Counter::IgnoredData);
        }
        if !self.forwarding(port) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        if d.eth_dst.is_multicast() {
            return self.forward_multicast(port, d);
        }
        if d.eth_dst != self.port(port).cfg.mac || self.our_link_local(d.dst_addr).is_some() {
            // Not sent to the relay, or for the relay's own stack.
            return self.counters.bump(Counter::IgnoredData);
        }
        // RFC 4389 §4.1 learning: a source not yet bound gets a STALE entry here.
        if self.cache.get(&d.src_addr).is_none() && self.proxied(d.src_addr).is_some() {
            self.learn(now, port, d.src_addr, d.eth_src, None);
        }
        let egress = match self.cache.get(&d.dst_addr) {
            Some(b) => Some((b.port, b.mac, d.dst_addr)),
            None => self.off_link_next_hop(now, port, d),
        };
        let Some((egress, mac, next_hop)) = egress else {
            if self.proxied(d.dst_addr) == Some(PrefixMode::Relay) {
                self.resolve(now, port, d.dst_addr);
                return self.hold(port, d);
            }
            return self.drop_frame(port, DropReason::NoBinding);
        };
        if egress == port {
            return self.drop_frame(port, DropReason::IngressPort);
        }
        if !self.forwarding(egress) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        let mtu = self.port(egress).cfg.mtu as usize;
        if d.packet.len() > mtu {
            // RFC 4389 §4.1.1: the only ICMP error a bridge-like proxy sends, rate-limited
            // (RFC 4443 §2.4(f)) so oversize frames never turn us into a generator.
            if !self.ptb_bucket.take(now) {
                self.counters.bump(Counter::PtbRateLimited);
                return self.drop_frame(port, DropReason::MtuExceeded);
            }
            let (src, own) = (self.port(port).cfg.link_local, self.port(port).cfg.mac);
            let frame = emit_packet_too_big(own, d.eth_src, src, mtu as u32, d.packet);
            self.actions
                .push_back(super::Action::Transmit { port, frame });
            self.counters.bump(Counter::PtbSent);
            return self.drop_frame(port, DropReason::MtuExceeded);
        }
        self.binding_used(now, next_hop);
        let frame = l2_frame(mac, self.port(egress).cfg.mac, d.packet);
        self.actions.push_back(super::Action::Transmit {
            port: egress,
            frame,
        });
        self.counters.bump(Counter::ForwardedData);
        let dst = d.dst_addr;
        self.emit(|| Event::Forwarded {
            from: port,
            to: egress,
            dst,
        });
    }

    /// Holds a packet whose destination is being resolved; without a live resolution
    /// (budget spent, negative cache) it is dropped as before.
    fn hold(&mut self, port: PortId, d: &Ipv6Data<'_>) {
        let give_up_at = match self.pending.get(&d.dst_addr) {
            Some(p) if !p.failed => p.expires_at,
            _ => return self.drop_frame(port, DropReason::NoBinding),
        };
        let frame = l2_frame(d.eth_dst, d.eth_src, d.packet);
        if let Some(displaced) = self.held.hold(d.dst_addr, port, frame, give_up_at) {
            self.drop_frame(displaced, DropReason::NoBinding);
        }
        self.counters.bump(Counter::HeldData);
    }

    /// Forwards the held packets whose destination is bound now (after each frame).
    pub(super) fn flush_held(&mut self, now: Instant) {
        let cache = &self.cache;
        let ready = self.held.take(|h| cache.get(&h.dst).is_some());
        for h in ready {
            // Built by `l2_frame` from a parsed data frame, so it parses as one again.
            if let Ok(Parsed::Data(d)) = parse_frame(&h.frame) {
                self.process_data(now, h.ingress, &d);
            }
        }
    }

    /// Drops the held packets whose resolution failed or ran out of time.
    pub(super) fn expire_held(&mut self, now: Instant) {
        let pending = &self.pending;
        let gone = self
            .held
            .take(|h| h.give_up_at <= now || pending.get(&h.dst).is_none_or(|p| p.failed));
        for h in gone {
            self.drop_frame(h.ingress, DropReason::ResolutionFailed);
        }
    }

    /// Guests send off-link traffic to the router's link-local, whose MAC we rewrote to
    /// ours: a destination outside every proxied prefix leaves through the uplink to the
    /// most recently heard router whose advertised lifetime has not run out.
    fn off_link_next_hop(
        &self,
        now: Instant,
        port: PortId,
        d: &Ipv6Data<'_>,
    ) -> Option<(PortId, Mac, std::net::Ipv6Addr)> {
        if self.port(port).is_upstream() || self.proxied(d.dst_addr).is_some() {
            return None;
        }
        let (addr, r) = self
            .routers
            .iter()
            .filter(|(_, r)| {
                now < r.last_seen + crate::time::Duration::from_secs(u64::from(r.lifetime))
            })
            .max_by_key(|(a, r)| (r.last_seen, **a))?;
        let mac = self.cache.get(addr).map_or(r.mac, |b| b.mac);
        Some((self.upstream, mac, *addr))
    }

    /// Bounded: one copy per other proxying port, dropped where it does not fit.
    fn forward_multicast(&mut self, port: PortId, d: &Ipv6Data<'_>) {
        for p in self.port_ids() {
            if p == port || !self.forwarding(p) {
                continue;
            }
            if d.packet.len() > self.port(p).cfg.mtu as usize {
                self.drop_frame(port, DropReason::MtuExceeded);
                continue;
            }
            let frame = l2_frame(d.eth_dst, self.port(p).cfg.mac, d.packet);
            self.actions
                .push_back(super::Action::Transmit { port: p, frame });
            self.counters.bump(Counter::ForwardedMulticast);
        }
    }
}

/// An Ethernet frame around an IPv6 packet that is forwarded byte for byte.
fn l2_frame(dst: Mac, src: Mac, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HEADER_LEN + packet.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(packet);
    f
}
