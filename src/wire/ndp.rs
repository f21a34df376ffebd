//! Classifying frames and validating the five ND messages (RFC 4861 §4, §6.1, §7.1, §8.1).

use std::net::Ipv6Addr;
use std::ops::Range;

use etherparse::err::ipv6::HeaderSliceError;
use etherparse::{EtherType, Ethernet2HeaderSlice, Ipv6HeaderSlice};

use super::checksum::verify_icmpv6_checksum;
use super::option::{self, NdOptionIter, read16};
use super::{
    ETH_HEADER_LEN, IPPROTO_ICMPV6, IPV6_HEADER_LEN, Mac, icmp_type, is_link_local,
    is_solicited_node,
};
use crate::DropReason;

/// Byte offsets inside the ICMPv6 message (RFC 4861 §4.1-§4.5).
///
/// ```text
///  0               1               2               3
/// +---------------+---------------+-------------------------------+
/// |     Type      |     Code      |           Checksum            |  all
/// +---------------+---------------+-------------------------------+
/// | Cur Hop Limit |M|O|H|Prf|P|R R|        Router Lifetime        |  RA
/// |                        Reachable Time                         |
/// |                        Retrans Timer                          |
/// +---------------+---------------+-------------------------------+
/// |R|S|O|         Reserved (NS, Redirect: all reserved)           |  NS NA Redirect
/// |              Target Address (16 octets, offset 8)             |
/// |   Redirect: Destination Address (16 octets, offset 24)        |
/// +---------------------------------------------------------------+
/// ```
pub(super) mod field {
    use core::ops::Range;

    pub(crate) const CODE: usize = 1;
    pub(crate) const CUR_HOP_LIMIT: usize = 4;
    pub(crate) const RA_FLAGS: usize = 5;
    pub(crate) const ROUTER_LIFETIME: Range<usize> = 6..8;
    pub(crate) const REACHABLE_TIME: Range<usize> = 8..12;
    pub(crate) const RETRANS_TIMER: Range<usize> = 12..16;
    pub(crate) const NA_FLAGS: usize = 4;
    pub(crate) const TARGET: Range<usize> = 8..24;
    pub(crate) const DEST: Range<usize> = 24..40;
}

/// What a frame turned out to be.
#[derive(Debug, Clone)]
pub enum Parsed<'a> {
    /// Not an IPv6 frame (IPv4, ARP, ...): not ND, not an error.
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

bitflags::bitflags! {
    /// Neighbor Advertisement flags byte: `R S O Reserved` (RFC 4861 §4.4). Reserved bits
    /// are dropped on parse (`from_bits_truncate`) and sent as zero.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub struct NaFlags: u8 {
        /// R: the sender is a router.
        const ROUTER = 0x80;
        /// S: sent in response to a Neighbor Solicitation.
        const SOLICITED = 0x40;
        /// O: override an existing cache entry.
        const OVERRIDE = 0x20;
    }
}

bitflags::bitflags! {
    /// Router Advertisement flags byte: `M O H Prf Prf P Rsv Rsv` (RFC 4861, 4191, 4389).
    /// Every bit is kept as received (`from_bits_retain`): a relayed RA carries the
    /// router's H, Prf and reserved bits unchanged.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub struct RaFlags: u8 {
        /// M: managed address configuration.
        const MANAGED = 0x80;
        /// O: other configuration.
        const OTHER = 0x40;
        /// P: proxied (RFC 4389 §4.1.3.3).
        const PROXY = 0x04;
        // The bits this crate does not name (H, Prf, reserved) are still part of the byte.
        const _ = !0;
    }
}

impl RaFlags {
    /// True if the Proxy bit is set.
    pub const fn proxy(self) -> bool {
        self.contains(Self::PROXY)
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
///
/// Order of checks: Ethernet/IPv6 framing (`truncated`, `bad_ip_version`), multicast
/// source, loopback source or destination, multicast destination scope, the
/// extension-header walk (`frag_nd`, `ext_hdr_nd`), then the RFC 4861 rules
/// of the message: hop limit, minimum length, code, checksum, fixed fields, options.
pub fn parse_frame(frame: &[u8]) -> Result<Parsed<'_>, DropReason> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| DropReason::Truncated)?;
    if VLAN_TPIDS.contains(&eth.ether_type()) {
        // Whatever it carries belongs to a VLAN no port serves (see `VLAN_TPIDS`).
        return Err(DropReason::VlanTagged);
    }
    if eth.ether_type() != EtherType::IPV6 {
        return Ok(Parsed::NotIpv6);
    }
    let eth_dst = Mac(eth.destination());
    let eth_src = Mac(eth.source());
    let after_eth = frame.get(ETH_HEADER_LEN..).unwrap_or_default();
    let ip = Ipv6HeaderSlice::from_slice(after_eth).map_err(|e| match e {
        HeaderSliceError::Len(_) => DropReason::Truncated,
        HeaderSliceError::Content(_) => DropReason::BadIpVersion,
    })?;
    let packet_len = IPV6_HEADER_LEN + usize::from(ip.payload_length());
    let packet = after_eth.get(..packet_len).ok_or(DropReason::Truncated)?;
    let src_addr = ip.source_addr();
    let dst_addr = ip.destination_addr();
    let hop_limit = ip.hop_limit();
    if src_addr.is_multicast() {
        return Err(DropReason::McastSource);
    }
    // RFC 4291 §2.5.3: `::1` never leaves its node, and a packet received with it is
    // dropped; relaying one would carry it onto other links.
    if src_addr.is_loopback() || dst_addr.is_loopback() {
        return Err(DropReason::LoopbackAddr);
    }
    // RFC 4291 §2.7: scope 0 is reserved and silently dropped; erratum 3480: interface-
    // local multicast (scope 1) received from another node is discarded. The kernel's
    // ipv6_rcv drops both, so a relayed copy would reach no host (13-differential.sh).
    if dst_addr.is_multicast() && dst_addr.octets()[1] & 0x0f <= 1 {
        return Err(DropReason::McastDstScope);
    }
    match classify(packet, ip.next_header().0)? {
        Upper::Data => Ok(Parsed::Data(Ipv6Data {
            eth_dst,
            eth_src,
            src_addr,
            dst_addr,
            hop_limit,
            packet,
        })),
        Upper::Nd => {
            let icmp = packet.get(IPV6_HEADER_LEN..).unwrap_or_default();
            let header = IpFields {
                eth_dst,
                eth_src,
                src_addr,
                dst_addr,
                hop_limit,
            };
            validate(header, icmp).map(Parsed::Nd)
        }
    }
}

/// Tag Protocol Identifiers of a VLAN tag: 802.1Q, 802.1ad and the pre-standard QinQ
/// 0x9100. Such a frame comes from a VLAN, and no port is configured for one: a VLAN is
/// served by making its VLAN sub-interface (`eth0.100`) the port, whose frames arrive
/// untagged. The kernel moves the outer tag into packet metadata before AF_PACKET sees
/// the frame; the capture puts it back (`live/sys`), libpcap does the same and so do
/// captures replayed from files, so every tagged frame is dropped here, by one reason.
const VLAN_TPIDS: [EtherType; 3] = [EtherType(0x8100), EtherType(0x88a8), EtherType(0x9100)];

/// IPv6 extension headers using the RFC 6564 layout `(len + 1) * 8` octets.
const EXT_UNIFORM: [u8; 6] = [0, 43, 60, 135, 139, 140];
/// Fragment header (RFC 8200 §4.5), fixed 8 octets.
const EXT_FRAGMENT: u8 = 44;
/// Authentication Header (RFC 4302): length in 4-octet units minus 2.
const EXT_AH: u8 = 51;
/// No Next Header.
const NO_NEXT_HEADER: u8 = 59;
/// Highest IANA-assigned protocol number; 147..=255 are unclassifiable.
const LAST_ASSIGNED_PROTOCOL: u8 = 146;

/// Where the extension-header walk ended.
enum Upper {
    /// ICMPv6 ND right after the fixed header.
    Nd,
    /// Anything that is not Neighbor Discovery.
    Data,
}

const fn is_nd_type(t: u8) -> bool {
    matches!(t, icmp_type::ROUTER_SOLICIT..=icmp_type::REDIRECT)
}

/// Walks the whole Next Header chain (RFC 7113 §3, RFC 6980 §5).
///
/// Each extension header is at least 8 octets and must lie inside `packet`, so the walk
/// takes at most `packet.len() / 8` steps. Decisions:
/// - ND behind any extension header: `ext_hdr_nd` (RAs and the rest have no legitimate
///   extension headers); behind a Fragment header, atomic ones included: `frag_nd`.
/// - A first fragment whose chain or ICMPv6 type is cut off, or that reaches an
///   unclassifiable Next Header: `frag_nd`.
/// - An unclassifiable Next Header (unassigned 147..=252, the RFC 4727 experiment
///   values 253 and 254, which may be extension headers or not, reserved 255) without a
///   Fragment header: `ext_hdr_nd`, since it may be an extension header hiding ND.
/// - A non-first fragment is `Data`: it carries no upper-layer header, and the first
///   fragment of any fragmented ND is dropped above, so it can never be reassembled.
/// - A chain running past the Payload Length without a Fragment header: `truncated`.
fn classify(packet: &[u8], first: u8) -> Result<Upper, DropReason> {
    let mut next = first;
    let mut off = IPV6_HEADER_LEN;
    let mut ext = false;
    let mut frag = false;
    let cut_off = |frag: bool| {
        if frag {
            DropReason::FragNd
        } else {
            DropReason::Truncated
        }
    };
    loop {
        let (nh, len) = match next {
            IPPROTO_ICMPV6 => {
                let Some(&ty) = packet.get(off) else {
                    return Err(cut_off(frag));
                };
                return match (is_nd_type(ty), frag, ext) {
                    (false, _, _) => Ok(Upper::Data),
                    (true, true, _) => Err(DropReason::FragNd),
                    (true, false, true) => Err(DropReason::ExtHdrNd),
                    (true, false, false) => Ok(Upper::Nd),
                };
            }
            NO_NEXT_HEADER => return Ok(Upper::Data),
            EXT_FRAGMENT => match packet.get(off..off + 8) {
                Some(h) => {
                    frag = true;
                    if u16::from_be_bytes([h[2], h[3]]) >> 3 != 0 {
                        return Ok(Upper::Data);
                    }
                    (h[0], 8)
                }
                None => return Err(cut_off(true)),
            },
            EXT_AH => match packet.get(off..off + 2) {
                Some(h) => (h[0], (usize::from(h[1]) + 2) * 4),
                None => return Err(cut_off(frag)),
            },
            x if EXT_UNIFORM.contains(&x) => match packet.get(off..off + 2) {
                Some(h) => (h[0], (usize::from(h[1]) + 1) * 8),
                None => return Err(cut_off(frag)),
            },
            x if x <= LAST_ASSIGNED_PROTOCOL => return Ok(Upper::Data),
            _ if frag => return Err(DropReason::FragNd),
            _ => return Err(DropReason::ExtHdrNd),
        };
        if off + len > packet.len() {
            return Err(cut_off(frag));
        }
        off += len;
        ext = true;
        next = nh;
    }
}

/// The IPv6-level fields of a frame being validated.
#[derive(Clone, Copy)]
struct IpFields {
    eth_dst: Mac,
    eth_src: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    hop_limit: u8,
}

/// Fixed-part length, hence minimum ICMP length, of each ND message (RFC 4861 §4).
const fn min_len(t: u8) -> usize {
    match t {
        icmp_type::ROUTER_SOLICIT => 8,
        icmp_type::ROUTER_ADVERT => 16,
        icmp_type::NEIGHBOR_SOLICIT | icmp_type::NEIGHBOR_ADVERT => 24,
        _ => 40,
    }
}

fn addr_at(icmp: &[u8], at: Range<usize>) -> Ipv6Addr {
    Ipv6Addr::from(read16(&icmp[at]))
}

fn u16_at(b: &[u8], at: Range<usize>) -> u16 {
    let mut a = [0; 2];
    a.copy_from_slice(&b[at]);
    u16::from_be_bytes(a)
}

fn u32_at(b: &[u8], at: Range<usize>) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at]);
    u32::from_be_bytes(a)
}

/// RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2, §8.1 validity checks.
fn validate(ip: IpFields, icmp: &[u8]) -> Result<NdPacket<'_>, DropReason> {
    // classify() returns Nd only once the type byte exists.
    let ty = icmp.first().copied().unwrap_or_default();
    if ip.hop_limit != 255 {
        return Err(DropReason::HopLimit);
    }
    let options_offset = min_len(ty);
    if icmp.len() < options_offset {
        return Err(DropReason::TooShort);
    }
    if icmp[field::CODE] != 0 {
        return Err(DropReason::BadCode);
    }
    if !verify_icmpv6_checksum(ip.src_addr, ip.dst_addr, icmp) {
        return Err(DropReason::BadCsum);
    }
    // From here on icmp.len() >= options_offset, so the fixed fields can be indexed.
    let message = match ty {
        icmp_type::ROUTER_SOLICIT => NdMessage::RouterSolicit,
        icmp_type::ROUTER_ADVERT => {
            if !is_link_local(ip.src_addr) {
                return Err(DropReason::RaSrcNotLl);
            }
            NdMessage::RouterAdvert(RouterAdvert {
                cur_hop_limit: icmp[field::CUR_HOP_LIMIT],
                flags: RaFlags::from_bits_retain(icmp[field::RA_FLAGS]),
                router_lifetime: u16_at(icmp, field::ROUTER_LIFETIME),
                reachable_time: u32_at(icmp, field::REACHABLE_TIME),
                retrans_timer: u32_at(icmp, field::RETRANS_TIMER),
            })
        }
        icmp_type::NEIGHBOR_SOLICIT => {
            let target_addr = addr_at(icmp, field::TARGET);
            if target_addr.is_multicast() {
                return Err(DropReason::McastTarget);
            }
            if ip.src_addr.is_unspecified() && !is_solicited_node(ip.dst_addr) {
                return Err(DropReason::DadBadDst);
            }
            NdMessage::NeighborSolicit { target_addr }
        }
        icmp_type::NEIGHBOR_ADVERT => {
            let flags = NaFlags::from_bits_truncate(icmp[field::NA_FLAGS]);
            let target_addr = addr_at(icmp, field::TARGET);
            if target_addr.is_multicast() {
                return Err(DropReason::McastTarget);
            }
            if flags.contains(NaFlags::SOLICITED) && ip.dst_addr.is_multicast() {
                return Err(DropReason::McastSolicited);
            }
            NdMessage::NeighborAdvert { flags, target_addr }
        }
        _ => {
            let target_addr = addr_at(icmp, field::TARGET);
            let dest_addr = addr_at(icmp, field::DEST);
            if !is_link_local(ip.src_addr) {
                return Err(DropReason::RedirectSrcNotLl);
            }
            if dest_addr.is_multicast() {
                return Err(DropReason::RedirectMcastDst);
            }
            if !is_link_local(target_addr) && target_addr != dest_addr {
                return Err(DropReason::RedirectBadTarget);
            }
            NdMessage::Redirect {
                target_addr,
                dest_addr,
            }
        }
    };
    let is_ra = matches!(message, NdMessage::RouterAdvert(_));
    let (slla, tlla) = check_options(&icmp[options_offset..], is_ra)?;
    let from_unspecified = ip.src_addr.is_unspecified();
    if from_unspecified
        && slla.is_some()
        && matches!(
            message,
            NdMessage::RouterSolicit | NdMessage::NeighborSolicit { .. }
        )
    {
        return Err(DropReason::DadSlla);
    }
    Ok(NdPacket {
        eth_dst: ip.eth_dst,
        eth_src: ip.eth_src,
        src_addr: ip.src_addr,
        dst_addr: ip.dst_addr,
        hop_limit: ip.hop_limit,
        message,
        slla,
        tlla,
        icmp,
        options_offset,
    })
}

/// RFC 4861 §4.6 and §4.4 of the NDP reference: walks every option once.
///
/// Returns the (consistent) SLLA and TLLA. RA-only options are length-checked only in
/// RAs; elsewhere they are unknown options and are ignored (RFC 4861 §4.6).
fn check_options(mut rest: &[u8], is_ra: bool) -> Result<(Option<Mac>, Option<Mac>), DropReason> {
    let mut slla = None;
    let mut tlla = None;
    while !rest.is_empty() {
        // Every option is at least 8 octets, so a shorter tail cannot be one.
        if rest.len() < 8 {
            return Err(DropReason::OptTrailing);
        }
        let (kind, units) = (rest[0], rest[1]);
        if units == 0 {
            return Err(DropReason::OptLen0);
        }
        let len = usize::from(units) * 8;
        if len > rest.len() {
            return Err(DropReason::OptOverrun);
        }
        let (opt, tail) = rest.split_at(len);
        match kind {
            option::kind::SOURCE_LLA | option::kind::TARGET_LLA => {
                if units != 1 {
                    return Err(DropReason::BadLlaLen);
                }
                let mac = Mac([opt[2], opt[3], opt[4], opt[5], opt[6], opt[7]]);
                if mac.is_multicast() {
                    return Err(DropReason::McastLla);
                }
                let slot = if kind == option::kind::SOURCE_LLA {
                    &mut slla
                } else {
                    &mut tlla
                };
                match *slot {
                    Some(seen) if seen != mac => return Err(DropReason::DupLla),
                    _ => *slot = Some(mac),
                }
            }
            _ if is_ra && !ra_option_len_ok(kind, units, opt[2]) => {
                return Err(DropReason::BadOptLen);
            }
            _ => {}
        }
        rest = tail;
    }
    Ok((slla, tlla))
}

/// RA option sanity (NDP reference §4.4); `third` is the option's third byte (the
/// prefix length of PIO and RIO).
fn ra_option_len_ok(kind: u8, units: u8, third: u8) -> bool {
    match kind {
        option::kind::PREFIX_INFO => units == 4 && third <= 128,
        option::kind::MTU => units == 1,
        // RFC 4191 §2.3: length 1..3, prefix > 64 needs 3, prefix > 0 needs 2 or 3.
        option::kind::ROUTE_INFO => {
            units <= 3 && third <= 128 && (third <= 64 || units == 3) && (third == 0 || units >= 2)
        }
        // RFC 8106 §5.1: 1 + 2 per address, at least one address.
        option::kind::RDNSS => units >= 3 && units % 2 == 1,
        option::kind::DNSSL => units >= 2,
        _ => true,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::golden::*;
    use crate::wire::{NdOption, PrefixInfo};

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn nd(frame: &[u8]) -> NdPacket<'_> {
        match parse_frame(frame) {
            Ok(Parsed::Nd(p)) => p,
            other => panic!("not ND: {other:?}"),
        }
    }

    #[test]
    fn parse_golden_ns() {
        let p = nd(&NS_FRAME);
        assert_eq!(p.eth_dst, Mac([0x33, 0x33, 0xff, 0, 0, 2]));
        assert_eq!(p.eth_src, MAC_A);
        assert_eq!(p.src_addr, ip("2001:db8::1"));
        assert_eq!(p.dst_addr, ip("ff02::1:ff00:2"));
        assert_eq!(p.hop_limit, 255);
        assert_eq!(
            p.message,
            NdMessage::NeighborSolicit {
                target_addr: ip("2001:db8::2")
            }
        );
        assert_eq!(p.slla, Some(MAC_A));
        assert_eq!(p.tlla, None);
        assert_eq!(p.icmp, &NS_FRAME[54..]);
        assert_eq!(p.options_offset, 24);
        assert_eq!(
            p.options().collect::<Vec<_>>(),
            [NdOption::SourceLla(MAC_A)]
        );
        assert!(!p.is_dad());
    }

    #[test]
    fn parse_golden_rs() {
        let p = nd(&RS_FRAME);
        assert_eq!(p.message, NdMessage::RouterSolicit);
        assert_eq!((p.src_addr, p.dst_addr), (ip("fe80::1"), ip("ff02::2")));
        assert_eq!(p.slla, Some(MAC_A));
        assert_eq!(p.options_offset, 8);
        assert_eq!(p.message.name(), "RS");
    }

    #[test]
    fn parse_golden_ra() {
        let p = nd(&RA_FRAME);
        assert_eq!(
            p.message,
            NdMessage::RouterAdvert(RouterAdvert {
                cur_hop_limit: 64,
                flags: RaFlags::MANAGED | RaFlags::OTHER,
                router_lifetime: 1800,
                reachable_time: 30000,
                retrans_timer: 1000,
            })
        );
        assert_eq!(p.slla, Some(MAC_A));
        let opts: Vec<_> = p.options().collect();
        assert_eq!(
            opts,
            [
                NdOption::SourceLla(MAC_A),
                NdOption::Mtu(1500),
                NdOption::PrefixInfo(PrefixInfo {
                    prefix_len: 64,
                    on_link: true,
                    autonomous: true,
                    valid_lifetime: 86400,
                    preferred_lifetime: 14400,
                    prefix: ip("2001:db8::"),
                }),
                NdOption::Other {
                    kind: 200,
                    bytes: &[200, 1, 1, 2, 3, 4, 5, 6]
                },
            ]
        );
    }

    #[test]
    fn parse_golden_na() {
        let p = nd(&NA_FRAME);
        assert_eq!(
            p.message,
            NdMessage::NeighborAdvert {
                flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
                target_addr: ip("2001:db8::2"),
            }
        );
        assert_eq!((p.slla, p.tlla), (None, Some(MAC_B)));
        assert_eq!((p.eth_src, p.eth_dst), (MAC_B, MAC_A));
    }

    #[test]
    fn parse_golden_redirect() {
        let p = nd(&REDIRECT_FRAME);
        assert_eq!(
            p.message,
            NdMessage::Redirect {
                target_addr: ip("fe80::9"),
                dest_addr: ip("2001:db8::77"),
            }
        );
        assert_eq!(p.tlla, Some(MAC_N));
        assert_eq!(p.options_offset, 40);
        let opts: Vec<_> = p.options().collect();
        assert_eq!(opts.len(), 2);
        assert!(matches!(opts[1], NdOption::Other { kind: 4, bytes } if bytes.len() == 48));
    }

    #[test]
    fn parse_two_identical_sllas_and_tlla_in_ns() {
        let p = nd(&NS_TWO_SLLA);
        assert_eq!((p.slla, p.tlla), (Some(MAC_A), Some(MAC_B)));
        assert_eq!(p.options().count(), 3);
    }

    #[test]
    fn echo_is_data_with_packet_bounds() {
        let mut frame = ECHO_FRAME.to_vec();
        frame.extend_from_slice(&[0; 10]);
        let Ok(Parsed::Data(d)) = parse_frame(&frame) else {
            panic!("echo is not data");
        };
        assert_eq!(d.packet, &ECHO_FRAME[14..]);
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("2001:db8::1"), ip("2001:db8::2"))
        );
        assert_eq!((d.eth_src, d.eth_dst, d.hop_limit), (MAC_A, MAC_B, 64));
    }

    #[test]
    fn not_ipv6_ethertypes() {
        for ethertype in [[0x08, 0x00], [0x08, 0x06], [0x88, 0xcc]] {
            let mut frame = NS_FRAME.to_vec();
            frame[12..14].copy_from_slice(&ethertype);
            assert!(matches!(parse_frame(&frame), Ok(Parsed::NotIpv6)));
        }
    }

    /// `frame` with new IPv6 addresses and, for ICMPv6 right after the fixed header, the
    /// checksum recomputed: only the addresses make it differ from a valid frame.
    fn readdressed(frame: &[u8], src: &str, dst: &str) -> Vec<u8> {
        let mut f = frame.to_vec();
        f[22..38].copy_from_slice(&ip(src).octets());
        f[38..54].copy_from_slice(&ip(dst).octets());
        let sum = crate::wire::icmpv6_checksum(ip(src), ip(dst), &f[54..]);
        f[56..58].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// `frame` with a VLAN tag (`tpid`, VLAN 100) inserted after the MAC addresses, as
    /// libpcap and the AF_PACKET capture hand over a frame whose tag the kernel had
    /// moved into metadata.
    fn tagged(frame: &[u8], tpid: u16) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&100u16.to_be_bytes());
        f.extend_from_slice(&frame[12..]);
        f
    }

    #[test]
    fn loopback_source_or_destination() {
        // RFC 4291 §2.5.3: a packet received with ::1 as source or destination is
        // dropped; the kernel's ipv6_rcv does (netns-tests/13-differential.sh,
        // ns_loopback_src and ns_loopback_dst). ND and data alike.
        let ns = readdressed(&NS_FRAME, "2001:db8::1", "2001:db8::2");
        assert!(matches!(parse_frame(&ns), Ok(Parsed::Nd(_))));
        for frame in [&ns[..], &ECHO_FRAME[..]] {
            for (src, dst) in [("::1", "2001:db8::2"), ("2001:db8::1", "::1")] {
                let broken = readdressed(frame, src, dst);
                assert_eq!(
                    parse_frame(&broken).err(),
                    Some(DropReason::LoopbackAddr),
                    "{src} -> {dst}"
                );
            }
        }
    }

    #[test]
    fn multicast_destination_of_scope_0_or_1() {
        // RFC 4291 §2.7 (scope 0 reserved: silently dropped) and its erratum 3480
        // (interface-local scope never comes from another node); the kernel's ipv6_rcv
        // drops both (13-differential.sh, ns_to_if_local_all_nodes). Link scope and
        // wider stay valid.
        for dst in ["ff02::1", "ff05::1", "ff0e::1", "ff12::1"] {
            let ns = readdressed(&NS_FRAME, "2001:db8::1", dst);
            assert!(matches!(parse_frame(&ns), Ok(Parsed::Nd(_))), "{dst}");
        }
        for dst in ["ff00::1", "ff01::1", "ff01::1:ff00:2", "ff11::1", "ff30::1"] {
            for frame in [&NS_FRAME[..], &ECHO_FRAME[..]] {
                let broken = readdressed(frame, "2001:db8::1", dst);
                assert_eq!(
                    parse_frame(&broken).err(),
                    Some(DropReason::McastDstScope),
                    "{dst}"
                );
            }
        }
    }

    #[test]
    fn vlan_tagged_frames_are_dropped_whatever_they_carry() {
        assert!(matches!(parse_frame(&NS_FRAME), Ok(Parsed::Nd(_))));
        for tpid in [0x8100, 0x88a8, 0x9100] {
            for inner in [&NS_FRAME[..], &ECHO_FRAME[..]] {
                let f = tagged(inner, tpid);
                assert_eq!(
                    parse_frame(&f).err(),
                    Some(DropReason::VlanTagged),
                    "{tpid:#x}"
                );
            }
            // QinQ: a second tag inside.
            let f = tagged(&tagged(&NS_FRAME, 0x8100), tpid);
            assert_eq!(parse_frame(&f).err(), Some(DropReason::VlanTagged));
            // A tag and nothing after it is still a tagged frame.
            assert_eq!(
                parse_frame(&tagged(&NS_FRAME, tpid)[..18]).err(),
                Some(DropReason::VlanTagged)
            );
        }
    }

    #[test]
    fn short_frames_are_truncated() {
        for len in 0..NS_FRAME.len() {
            let r = parse_frame(&NS_FRAME[..len]);
            assert_eq!(r.err(), Some(DropReason::Truncated), "length {len}");
        }
    }

    #[test]
    fn option_iter_stops_on_zero_length_and_overrun() {
        let bytes = [1, 1, 2, 0, 0, 0, 0, 1, 200, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(NdOptionIter::new(&bytes).count(), 1);
        let bytes = [1, 1, 2, 0, 0, 0, 0, 1, 200, 2, 0, 0, 0, 0, 0, 0];
        assert_eq!(NdOptionIter::new(&bytes).count(), 1);
        assert_eq!(NdOptionIter::new(&[1]).count(), 0);
        // A known type with an unusual length comes out as Other.
        let bytes = [5, 2, 0, 0, 0, 0, 5, 220, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            NdOptionIter::new(&bytes).next(),
            Some(NdOption::Other { kind: 5, .. })
        ));
    }

    #[test]
    fn na_flags_bits() {
        for b in 0..=0xe0u8 {
            let f = NaFlags::from_bits_truncate(b);
            assert_eq!(f.bits(), b & 0xe0);
        }
        assert_eq!(NaFlags::from_bits_truncate(0x9f), NaFlags::ROUTER);
        assert_eq!(NaFlags::from_bits_truncate(0x40), NaFlags::SOLICITED);
        assert_eq!(NaFlags::from_bits_truncate(0x20), NaFlags::OVERRIDE);
        for b in 0..=u8::MAX {
            assert_eq!(
                RaFlags::from_bits_retain(b).bits(),
                b,
                "RA flags byte kept whole"
            );
        }
    }
}
