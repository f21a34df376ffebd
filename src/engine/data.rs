//! The userspace data plane (RFC 4389 §4.1, `DataPlane::Userspace`): unicast IPv6 frames
//! forwarded by binding with only the Ethernet header rewritten (Hop Limit untouched),
//! never back out the ingress port, Packet Too Big for oversize packets (§4.1.1), and
//! resolution (a relay-originated NS, §4.2) for unknown destinations, which are dropped
//! meanwhile. Multicast goes to every other proxying port with the L2 source rewritten.

use super::{Counter, DataPlane, Engine, Event, Instant, PortId, PrefixMode};
use crate::DropReason;
use crate::wire::{ETH_HEADER_LEN, ETHERTYPE_IPV6, Ipv6Data, Mac, emit_packet_too_big};

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
            // RFC 4389 §4.1.1: the only ICMP error a bridge-like proxy sends.
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
