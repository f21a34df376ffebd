//! Ethernet/IPv6/ICMPv6 Neighbor Discovery on the wire: parse, validate, build.
//!
//! Heads up: read RFC 4861 §4 (formats), §6.1/§7.1/§8.1 (validity), RFC 6980 §5 and
//! RFC 7113 §3 first. `etherparse` slices Ethernet and IPv6; it neither verifies the
//! ICMPv6 checksum nor enforces RFC 4861 nor writes ND options, so that is done here.
//!
//! - [`parse_frame`] classifies a frame as not-IPv6, IPv6 data, or a validated ND
//!   message ([`NdPacket`]), or rejects it with a [`DropReason`](crate::DropReason).
//! - [`rewrite`] builds a relayed copy of an [`NdPacket`] (new L2 header, SLLA/TLLA
//!   replaced in every copy or removed, RA P bit, Payload Length and checksum fixed),
//!   keeping unknown options byte for byte.
//! - [`emit_nd`] builds a frame from an [`NdMessage`] and [`OptionRepr`]s for messages
//!   the relay originates (RS, RA, NA answers) and that simulated hosts send.

mod build;
mod checksum;
#[cfg(test)]
mod golden;
mod ndp;
mod option;

pub use build::{
    LlaRewrite, Rewrite, emit_icmpv6_echo, emit_ipv6, emit_nd, emit_packet_too_big, rewrite,
};
pub use checksum::{icmpv6_checksum, verify_icmpv6_checksum};
pub use ndp::{Ipv6Data, NaFlags, NdMessage, NdPacket, Parsed, RaFlags, RouterAdvert, parse_frame};
pub use option::{NdOption, NdOptionIter, OptionRepr, PrefixInfo, kind as option_kind};

use std::fmt;
use std::net::Ipv6Addr;

/// ICMPv6 message types of Neighbor Discovery (RFC 4861 §4).
pub mod icmp_type {
    /// Router Solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router Advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
    /// Packet Too Big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
}

/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IPv6 Next Header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// Ethernet header length (no VLAN tag).
pub const ETH_HEADER_LEN: usize = 14;
/// Fixed IPv6 header length.
pub const IPV6_HEADER_LEN: usize = 40;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: Self = Self([0xff; 6]);

    /// True for group (multicast or broadcast) addresses: the I/G bit is set.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The `33:33:xx:xx:xx:xx` MAC for an IPv6 multicast group (RFC 2464 §7).
    pub const fn ipv6_multicast(group: Ipv6Addr) -> Self {
        let o = group.octets();
        Self([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The modified EUI-64 link-local address `fe80::/64` derived from this MAC.
    pub fn link_local(self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing a textual MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex pairs like 02:00:00:00:00:01")]
pub struct MacParseError(pub String);

impl std::str::FromStr for Mac {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(|| MacParseError(s.to_owned()))?;
            if part.len() != 2 {
                return Err(MacParseError(s.to_owned()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacParseError(s.to_owned()))?;
        }
        if parts.next().is_some() {
            return Err(MacParseError(s.to_owned()));
        }
        Ok(Self(out))
    }
}

/// The solicited-node multicast address `ff02::1:ffXX:XXXX` of `addr` (RFC 4291 §2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// True if `addr` is a solicited-node multicast address.
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    let o = addr.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// True for `fe80::/10`.
pub fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}
