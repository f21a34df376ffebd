//! Redirects (RFC 4861 §8, RFC 4389 §4.1.3.4): accepted only on the uplink from a
//! router seen there, relayed to the redirected host with only the TLLA changed.
//!
//! Heads up: read RFC 4389 §4.1.3.4 first.

use std::net::Ipv6Addr;

use super::{BindingState, Counter, Engine, Instant, PortId};
use crate::DropReason;
use crate::wire::{LlaRewrite, NdPacket};

impl Engine {
    pub(super) fn process_redirect(
        &mut self,
        _now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        dest: Ipv6Addr,
    ) {
        if !self.port(port).is_upstream() {
            // Hosts never send Redirects (RFC 4861 §8.2).
            return self.drop_frame(port, DropReason::RedirectFromDownstream);
        }
        if !self.routers.contains_key(&pkt.src_addr) {
            return self.drop_frame(port, DropReason::RedirectUnknownRouter);
        }
        // The redirected host is the Redirect's IPv6 destination.
        let Some(host) = self.cache.get(&pkt.dst_addr) else {
            return self.drop_frame(port, DropReason::NoBinding);
        };
        let (egress, host_mac) = (host.port, host.mac);
        if egress == port {
            return self.drop_frame(port, DropReason::IngressPort);
        }
        if !self.forwarding(egress) {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        // RFC 4389 §4.1.3.4: target valid on the host's port → its real MAC; valid on
        // another port → the relay's MAC on the port the host sends from; else remove
        // the TLLA so the host resolves the target itself.
        let egress_mac = self.port(egress).cfg.mac;
        let tlla = match self.cache.get(&target) {
            Some(t) if t.state != BindingState::Incomplete && t.port == egress => {
                LlaRewrite::Replace(t.mac)
            }
            Some(t) if t.state != BindingState::Incomplete => LlaRewrite::Replace(egress_mac),
            _ => LlaRewrite::Remove,
        };
        let mut rw = self.relay_rewrite(egress, host_mac);
        rw.tlla = tlla;
        if self.transmit_rewrite(port, egress, pkt, &rw) {
            self.counters.bump(Counter::RelayedRedirect);
            self.relayed_event(port, 1 << egress.0, "Redirect", dest);
        }
    }
}
