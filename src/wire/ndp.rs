//! Classifying frames and validating the five ND messages (RFC 4861 §4, §6.1, §7.1, §8.1).

use std::net::Ipv6Addr;

use etherparse::err::ipv6::HeaderSliceError;
use etherparse::{EtherType, Ethernet2HeaderSlice, Ipv6HeaderSlice};

use super::checksum::verify_icmpv6_checksum;
use super::option::{self, NdOptionIter, read16};
use super::{
    ETH_HEADER_LEN, IPPROTO_ICMPV6, IPV6_HEADER_LEN, Mac, icmp_type, is_link_local,
    is_solicited_node,
};
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
///
/// Order of checks: Ethernet/IPv6 framing (`truncated`, `bad_ip_version`), multicast
/// source, the extension-header walk (`frag_nd`, `ext_hdr_nd`), then the RFC 4861 rules
/// of the message: hop limit, minimum length, code, checksum, fixed fields, options.
pub fn parse_frame(frame: &[u8]) -> Result<Parsed<'_>, DropReason> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| DropReason::Truncated)?;
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

/// IPv6 extension headers using the RFC 6564 layout `(len + 1) * 8` octets.
const EXT_UNIFORM: [u8; 7] = [0, 43, 60, 135, 139, 140, 253];
/// Fragment header (RFC 8200 §4.5), fixed 8 octets.
const EXT_FRAGMENT: u8 = 44;
/// Authentication Header (RFC 4302): length in 4-octet units minus 2.
const EXT_AH: u8 = 51;
/// No Next Header.
const NO_NEXT_HEADER: u8 = 59;
/// Highest IANA-assigned protocol number; above it (and 254, 255) is unclassifiable.
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
/// - An unclassifiable Next Header (unassigned, 254, 255; 253 is walked as an RFC 6564
///   experiment header) without a Fragment header: `ext_hdr_nd`, since it may hide ND.
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

fn addr_at(icmp: &[u8], off: usize) -> Ipv6Addr {
    Ipv6Addr::from(read16(&icmp[off..off + 16]))
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
    if icmp[1] != 0 {
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
                cur_hop_limit: icmp[4],
                flags: RaFlags(icmp[5]),
                router_lifetime: u16::from_be_bytes([icmp[6], icmp[7]]),
                reachable_time: u32::from_be_bytes([icmp[8], icmp[9], icmp[10], icmp[11]]),
                retrans_timer: u32::from_be_bytes([icmp[12], icmp[13], icmp[14], icmp[15]]),
            })
        }
        icmp_type::NEIGHBOR_SOLICIT => {
            let target_addr = addr_at(icmp, 8);
            if target_addr.is_multicast() {
                return Err(DropReason::McastTarget);
            }
            if ip.src_addr.is_unspecified() && !is_solicited_node(ip.dst_addr) {
                return Err(DropReason::DadBadDst);
            }
            NdMessage::NeighborSolicit { target_addr }
        }
        icmp_type::NEIGHBOR_ADVERT => {
            let flags = NaFlags::from_byte(icmp[4]);
            let target_addr = addr_at(icmp, 8);
            if target_addr.is_multicast() {
                return Err(DropReason::McastTarget);
            }
            if flags.solicited && ip.dst_addr.is_multicast() {
                return Err(DropReason::McastSolicited);
            }
            NdMessage::NeighborAdvert { flags, target_addr }
        }
        _ => {
            let target_addr = addr_at(icmp, 8);
            let dest_addr = addr_at(icmp, 24);
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

impl NaFlags {
    /// R bit of the NA flags byte.
    pub const ROUTER: u8 = 0x80;
    /// S bit of the NA flags byte.
    pub const SOLICITED: u8 = 0x40;
    /// O bit of the NA flags byte.
    pub const OVERRIDE: u8 = 0x20;

    /// Decodes the first byte after the NA checksum.
    pub const fn from_byte(b: u8) -> Self {
        Self {
            router: b & Self::ROUTER != 0,
            solicited: b & Self::SOLICITED != 0,
            override_: b & Self::OVERRIDE != 0,
        }
    }

    /// Encodes the flags byte (reserved bits zero).
    pub const fn to_byte(self) -> u8 {
        (if self.router { Self::ROUTER } else { 0 })
            | (if self.solicited { Self::SOLICITED } else { 0 })
            | (if self.override_ { Self::OVERRIDE } else { 0 })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::golden::*;

    #[test]
    fn parse_golden_ns() {
        let Ok(Parsed::Nd(p)) = parse_frame(&NS_FRAME) else {
            panic!(
                "golden NS did not parse as ND: {:?}",
                parse_frame(&NS_FRAME)
            );
        };
        assert_eq!(p.eth_dst, Mac([0x33, 0x33, 0xff, 0, 0, 2]));
        assert_eq!(p.eth_src, MAC_A);
        assert_eq!(p.src_addr, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr, "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            p.message,
            NdMessage::NeighborSolicit {
                target_addr: "2001:db8::2".parse().unwrap()
            }
        );
        assert_eq!(p.slla, Some(MAC_A));
        assert_eq!(p.tlla, None);
        assert_eq!(p.icmp, &NS_FRAME[54..]);
        assert!(!p.is_dad());
    }
}
