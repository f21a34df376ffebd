//! Which MAC the relay had on each captured port, when the operator does not say.
//!
//! Replay needs the relay's own MACs: frames it sent appear in captures taken on its
//! ports and must be recognised as its own. In order of trust: `--mac PORT=MAC`, then
//! what the capture shows of the relay's own traffic — on a downstream port the source
//! of RAs carrying the Proxy bit (only a proxy sets it), on the uplink the MAC that
//! speaks for the most distinct IPv6 sources (the relay answers for every guest).

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;

use crate::engine::{PortId, Role};
use crate::wire::{Mac, NdMessage, Parsed, parse_frame};

/// Where a port's MAC came from, for the line replay prints about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacSource {
    /// Given with `--mac`.
    Given,
    /// The capture's interface description (`if_MACaddr`, as `ndprelay run --dump` writes).
    CaptureHeader,
    /// Source of RAs with the Proxy bit on a downstream port.
    ProxyRa,
    /// The uplink MAC speaking for the most IPv6 sources.
    ManySources,
    /// Nothing to go by: a locally administered placeholder.
    Placeholder,
}

impl MacSource {
    /// Words for the listing.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Given => "given with --mac",
            Self::CaptureHeader => "from the capture's interface description",
            Self::ProxyRa => "inferred: source of the relayed RAs with the P bit",
            Self::ManySources => "inferred: the MAC speaking for the most IPv6 sources",
            Self::Placeholder => "unknown: placeholder (give --mac PORT=MAC for exact results)",
        }
    }
}

/// Evidence gathered from frames, one port at a time.
#[derive(Debug, Default)]
pub struct MacEvidence {
    declared: HashMap<PortId, Mac>,
    proxy_ra: HashMap<PortId, HashMap<Mac, u32>>,
    sources: HashMap<PortId, HashMap<Mac, HashSet<Ipv6Addr>>>,
}

/// Looking at more frames than this per port changes nothing in practice.
const MAX_SOURCES_PER_MAC: usize = 64;

impl MacEvidence {
    /// Looks at one captured frame.
    pub fn observe(&mut self, port: PortId, frame: &[u8]) {
        let Ok(Parsed::Nd(p)) = parse_frame(frame) else {
            return;
        };
        if p.eth_src.is_multicast() {
            return;
        }
        if let NdMessage::RouterAdvert(ra) = p.message
            && ra.flags.proxy()
        {
            *self
                .proxy_ra
                .entry(port)
                .or_default()
                .entry(p.eth_src)
                .or_default() += 1;
        }
        if !p.src_addr.is_unspecified() {
            let set = self
                .sources
                .entry(port)
                .or_default()
                .entry(p.eth_src)
                .or_default();
            if set.len() < MAX_SOURCES_PER_MAC {
                set.insert(p.src_addr);
            }
        }
    }

    /// Records the MAC a capture file declares for a port.
    pub fn declared(&mut self, port: PortId, mac: Mac) {
        self.declared.insert(port, mac);
    }

    /// The best guess for `port`, given its role.
    pub fn infer(&self, port: PortId, role: Role) -> Option<(Mac, MacSource)> {
        if let Some(mac) = self.declared.get(&port) {
            return Some((*mac, MacSource::CaptureHeader));
        }
        if role == Role::Downstream
            && let Some(mac) = most(
                self.proxy_ra
                    .get(&port)?
                    .iter()
                    .map(|(m, n)| (*m, *n as usize)),
            )
        {
            return Some((mac, MacSource::ProxyRa));
        }
        let counts = self.sources.get(&port)?.iter().map(|(m, s)| (*m, s.len()));
        // A single source address per MAC is any ordinary host: no evidence.
        most(counts.filter(|(_, n)| *n >= 3)).map(|mac| (mac, MacSource::ManySources))
    }
}

/// The MAC with the highest count; ties go to the lowest MAC so results are stable.
fn most(counts: impl Iterator<Item = (Mac, usize)>) -> Option<Mac> {
    counts
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(m, _)| m)
}

/// A locally administered MAC that no real port has, for port `index`.
pub fn placeholder(index: usize) -> Mac {
    Mac([
        0x02,
        0x00,
        0x5e,
        0x10,
        0x00,
        u8::try_from(index).unwrap_or(u8::MAX),
    ])
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::{OptionRepr, RaFlags, RouterAdvert, emit_nd};

    fn ra(src_mac: Mac, flags: u8) -> Vec<u8> {
        let all: Ipv6Addr = "ff02::1".parse().unwrap();
        let ra = RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::from_bits_retain(flags),
            router_lifetime: 1800,
            ..Default::default()
        };
        emit_nd(
            src_mac,
            Mac::ipv6_multicast(all),
            "fe80::1".parse().unwrap(),
            all,
            &NdMessage::RouterAdvert(ra),
            &[OptionRepr::SourceLla(src_mac)],
        )
    }

    #[test]
    fn downstream_mac_is_the_source_of_proxy_ras() {
        let relay = Mac([0x02, 0, 0, 0, 0, 2]);
        let rogue = Mac([0x52, 0x54, 0, 0, 0, 9]);
        let mut ev = MacEvidence::default();
        ev.observe(PortId(1), &ra(rogue, 0));
        ev.observe(PortId(1), &ra(relay, RaFlags::PROXY.bits()));
        assert_eq!(
            ev.infer(PortId(1), Role::Downstream),
            Some((relay, MacSource::ProxyRa))
        );
        assert_eq!(ev.infer(PortId(2), Role::Downstream), None);
    }

    #[test]
    fn uplink_mac_speaks_for_many_sources() {
        let relay = Mac([0x02, 0, 0, 0, 0, 1]);
        let router = Mac([0, 0, 0x5e, 0, 0x53, 1]);
        let mut ev = MacEvidence::default();
        for i in 1..=4u16 {
            let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i);
            let target: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
            let ns = emit_nd(
                relay,
                router,
                src,
                target,
                &NdMessage::NeighborSolicit {
                    target_addr: target,
                },
                &[OptionRepr::SourceLla(relay)],
            );
            ev.observe(PortId(0), &ns);
        }
        ev.observe(PortId(0), &ra(router, 0));
        assert_eq!(
            ev.infer(PortId(0), Role::Upstream),
            Some((relay, MacSource::ManySources))
        );
    }
}
