//! Classifying frames and validating the five ND messages (RFC 4861 §4, §6.1, §7.1, §8.1).

use std::net::Ipv6Addr;

use super::Mac;
use super::option::NdOptionIter;
use crate::DropReason;

/// What a frame turned out to be.
#[derive(Debug, Clone)]
pub enum Parsed<'a> {
    /// Not an untagged IPv6 frame (IPv4, ARP, VLAN-tagged, ...): not ND, not an error.
    NotIpv6,
    /// An IPv6 packet that is not Neighbor Discovery (data, echo, other ICMPv6).
    Data(Ipv6Data<'a>),
    /// A validated Neighbor Discovery message.
    Nd(NdPacket<'a>),
}

/// A non-ND IPv6 packet, as the userspace data plane needs it.
#[derive(Debug, Clone)]
pub struct Ipv6Data<'a> {
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// Ethernet source.
    pub eth_src: Mac,
    /// IPv6 source.
    pub src_addr: Ipv6Addr,
    /// IPv6 destination.
    pub dst_addr: Ipv6Addr,
    /// IPv6 Hop Limit.
    pub hop_limit: u8,
    /// The IPv6 packet (header and Payload Length bytes), without Ethernet or trailer.
    pub packet: &'a [u8],
}

/// Neighbor Advertisement flags (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a Neighbor Solicitation.
    pub solicited: bool,
    /// O: override an existing cache entry.
    pub override_: bool,
}

/// Router Advertisement flags byte: `M O H Prf Prf P Rsv Rsv` (RFC 4861, 4191, 4389).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RaFlags(pub u8);

impl RaFlags {
    /// M: managed address configuration.
    pub const MANAGED: u8 = 0x80;
    /// O: other configuration.
    pub const OTHER: u8 = 0x40;
    /// P: proxied (RFC 4389 §4.1.3.3).
    pub const PROXY: u8 = 0x04;

    /// True if the Proxy bit is set.
    pub const fn proxy(self) -> bool {
        self.0 & Self::PROXY != 0
    }
}

/// The fixed part of a Router Advertisement (RFC 4861 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RouterAdvert {
    /// Cur Hop Limit.
    pub cur_hop_limit: u8,
    /// Flags byte.
    pub flags: RaFlags,
    /// Router Lifetime in seconds.
    pub router_lifetime: u16,
    /// Reachable Time in milliseconds.
    pub reachable_time: u32,
    /// Retrans Timer in milliseconds.
    pub retrans_timer: u32,
}

/// The message-specific fixed fields of an ND message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdMessage {
    /// Router Solicitation (type 133).
    RouterSolicit,
    /// Router Advertisement (type 134).
    RouterAdvert(RouterAdvert),
    /// Neighbor Solicitation (type 135).
    NeighborSolicit {
        /// Target Address.
        target_addr: Ipv6Addr,
    },
    /// Neighbor Advertisement (type 136).
    NeighborAdvert {
        /// R, S, O flags.
        flags: NaFlags,
        /// Target Address.
        target_addr: Ipv6Addr,
    },
    /// Redirect (type 137).
    Redirect {
        /// Target Address (the better first hop).
        target_addr: Ipv6Addr,
        /// Destination Address being redirected.
        dest_addr: Ipv6Addr,
    },
}

impl NdMessage {
    /// The ICMPv6 type of this message.
    pub const fn icmp_type(&self) -> u8 {
        match self {
            Self::RouterSolicit => super::icmp_type::ROUTER_SOLICIT,
            Self::RouterAdvert(_) => super::icmp_type::ROUTER_ADVERT,
            Self::NeighborSolicit { .. } => super::icmp_type::NEIGHBOR_SOLICIT,
            Self::NeighborAdvert { .. } => super::icmp_type::NEIGHBOR_ADVERT,
            Self::Redirect { .. } => super::icmp_type::REDIRECT,
        }
    }

    /// Short name for logs: `RS`, `RA`, `NS`, `NA`, `Redirect`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::RouterSolicit => "RS",
            Self::RouterAdvert(_) => "RA",
            Self::NeighborSolicit { .. } => "NS",
            Self::NeighborAdvert { .. } => "NA",
            Self::Redirect { .. } => "Redirect",
        }
    }
}

/// A validated ND message borrowed from its frame.
///
/// Every RFC 4861 validity rule has been checked when this exists; `slla`/`tlla` are the
/// (consistent) link-layer options if present. Options are walked again with
/// [`NdPacket::options`] without re-validation.
#[derive(Debug, Clone)]
pub struct NdPacket<'a> {
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// Ethernet source.
    pub eth_src: Mac,
    /// IPv6 source.
    pub src_addr: Ipv6Addr,
    /// IPv6 destination.
    pub dst_addr: Ipv6Addr,
    /// IPv6 Hop Limit (always 255 once validated).
    pub hop_limit: u8,
    /// The message's fixed fields.
    pub message: NdMessage,
    /// Source link-layer address option, if present.
    pub slla: Option<Mac>,
    /// Target link-layer address option, if present.
    pub tlla: Option<Mac>,
    /// The whole ICMPv6 message (Payload Length bytes; trailer excluded).
    pub icmp: &'a [u8],
    /// Offset of the first option within `icmp`.
    pub options_offset: usize,
}

impl<'a> NdPacket<'a> {
    /// The options, in wire order.
    pub fn options(&self) -> NdOptionIter<'a> {
        NdOptionIter::new(&self.icmp[self.options_offset.min(self.icmp.len())..])
    }

    /// True for a DAD probe: an NS from the unspecified address.
    pub fn is_dad(&self) -> bool {
        matches!(self.message, NdMessage::NeighborSolicit { .. }) && self.src_addr.is_unspecified()
    }
}

/// Parses and validates one Ethernet frame.
///
/// Never panics and always terminates, whatever the bytes. The IPv6 Payload Length, not
/// the frame length, decides where the packet ends; trailing bytes are ignored.
pub fn parse_frame(frame: &[u8]) -> Result<Parsed<'_>, DropReason> {
    let _ = frame;
    todo!("wire::parse_frame")
}
