//! Building frames: relayed copies of validated ND messages, and originated messages.

use std::net::Ipv6Addr;

use super::checksum::fill_icmpv6_checksum;
use super::ndp::{NdMessage, NdPacket, RaFlags};
use super::option::{OptionRepr, PrefixInfo, emit_lla, kind, read16};
use super::{ETH_HEADER_LEN, ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPV6_HEADER_LEN, Mac, icmp_type};

/// What to do with one kind of link-layer address option when relaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LlaRewrite {
    /// Leave every copy as it is.
    #[default]
    Keep,
    /// Replace every copy with this MAC (RFC 4389 §4.1.2).
    Replace(Mac),
    /// Remove every copy (Redirect TLLA, RFC 4389 §4.1.3.4); Payload Length shrinks.
    Remove,
}

/// How [`rewrite`] turns a received ND message into the frame sent on an egress port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Ethernet source (the egress port's MAC).
    pub eth_src: Mac,
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// New IPv6 source, or `None` to keep it.
    pub src_addr: Option<Ipv6Addr>,
    /// New IPv6 destination, or `None` to keep it.
    pub dst_addr: Option<Ipv6Addr>,
    /// Source link-layer address options.
    pub slla: LlaRewrite,
    /// Target link-layer address options.
    pub tlla: LlaRewrite,
    /// Set the RA Proxy (P) bit.
    pub set_proxy_flag: bool,
    /// Clear the L (on-link) flag of every Prefix Information option (needed when the
    /// RA source is replaced by the relay's link-local).
    pub clear_pio_on_link: bool,
    /// Clamp an RA MTU option to at most this value; below 1280 the option is removed.
    pub max_mtu: Option<u32>,
}

/// Writes the relayed frame for `packet` into `out` (cleared first).
///
/// Unknown options are copied byte for byte; Payload Length and the ICMPv6 checksum are
/// recomputed; Hop Limit stays 255. The IPv6 Traffic Class and Flow Label are written as
/// zero, as ND senders use. Any trailer of the received frame is not copied.
pub fn rewrite(packet: &NdPacket<'_>, rw: &Rewrite, out: &mut Vec<u8>) {
    let src = rw.src_addr.unwrap_or(packet.src_addr);
    let dst = rw.dst_addr.unwrap_or(packet.dst_addr);
    out.clear();
    out.reserve(ETH_HEADER_LEN + IPV6_HEADER_LEN + packet.icmp.len());
    push_headers(
        out,
        rw.eth_src,
        rw.eth_dst,
        src,
        dst,
        IPPROTO_ICMPV6,
        packet.hop_limit,
    );
    let icmp_start = out.len();
    let fixed_len = packet.options_offset.min(packet.icmp.len());
    out.extend_from_slice(&packet.icmp[..fixed_len]);
    let is_ra = matches!(packet.message, NdMessage::RouterAdvert(_));
    if is_ra && rw.set_proxy_flag {
        if let Some(flags) = out.get_mut(icmp_start + 5) {
            *flags |= RaFlags::PROXY;
        }
    }
    let mut rest = &packet.icmp[fixed_len..];
    while let [kind, units, ..] = *rest {
        let len = usize::from(units) * 8;
        if len == 0 || len > rest.len() {
            break;
        }
        let (opt, tail) = rest.split_at(len);
        rest = tail;
        match (kind, units) {
            (kind::SOURCE_LLA, 1) => rewrite_lla(out, opt, rw.slla),
            (kind::TARGET_LLA, 1) => rewrite_lla(out, opt, rw.tlla),
            (kind::PREFIX_INFO, 4) if is_ra && rw.clear_pio_on_link => {
                let at = out.len();
                out.extend_from_slice(opt);
                out[at + 3] &= !PrefixInfo::FLAG_ON_LINK;
            }
            (kind::MTU, 1) if is_ra && rw.max_mtu.is_some() => {
                let mtu = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]);
                let clamped = mtu.min(rw.max_mtu.unwrap_or(mtu));
                if clamped >= MIN_MTU {
                    OptionRepr::Mtu(clamped).emit(out);
                }
            }
            _ => out.extend_from_slice(opt),
        }
    }
    // A hand-made packet may end in bytes that are not an option; keep them as they are.
    out.extend_from_slice(rest);
    finish_ipv6(out, src, dst);
}

/// IPv6 minimum link MTU (RFC 8200 §5).
const MIN_MTU: u32 = 1280;

fn rewrite_lla(out: &mut Vec<u8>, opt: &[u8], how: LlaRewrite) {
    match how {
        LlaRewrite::Keep => out.extend_from_slice(opt),
        LlaRewrite::Replace(mac) => emit_lla(out, opt[0], mac),
        LlaRewrite::Remove => {}
    }
}

/// Appends Ethernet and IPv6 headers; Payload Length is filled by [`finish_ipv6`].
fn push_headers(
    out: &mut Vec<u8>,
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
) {
    out.extend_from_slice(&eth_dst.0);
    out.extend_from_slice(&eth_src.0);
    out.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    out.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, next_header, hop_limit]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
}

/// Sets Payload Length from the buffer and, for ICMPv6, the checksum.
fn finish_ipv6(out: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let payload_start = ETH_HEADER_LEN + IPV6_HEADER_LEN;
    let payload_len = out.len().saturating_sub(payload_start);
    // Callers keep payloads within 65535 bytes (emit_ipv6 truncates).
    let len = u16::try_from(payload_len).unwrap_or(u16::MAX);
    out[ETH_HEADER_LEN + 4..ETH_HEADER_LEN + 6].copy_from_slice(&len.to_be_bytes());
    if out[ETH_HEADER_LEN + 6] == IPPROTO_ICMPV6 {
        fill_icmpv6_checksum(src, dst, &mut out[payload_start..]);
    }
}

/// Builds a complete Ethernet frame carrying an ND message with Hop Limit 255.
///
/// Options are written in the order given; the checksum and Payload Length are filled.
pub fn emit_nd(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    message: &NdMessage,
    options: &[OptionRepr],
) -> Vec<u8> {
    let opts_len: usize = options.iter().map(OptionRepr::buffer_len).sum();
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + 40 + opts_len);
    push_headers(
        &mut out,
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        IPPROTO_ICMPV6,
        255,
    );
    out.extend_from_slice(&[message.icmp_type(), 0, 0, 0]);
    match message {
        NdMessage::RouterSolicit => out.extend_from_slice(&[0; 4]),
        NdMessage::RouterAdvert(ra) => {
            out.extend_from_slice(&[ra.cur_hop_limit, ra.flags.0]);
            out.extend_from_slice(&ra.router_lifetime.to_be_bytes());
            out.extend_from_slice(&ra.reachable_time.to_be_bytes());
            out.extend_from_slice(&ra.retrans_timer.to_be_bytes());
        }
        NdMessage::NeighborSolicit { target_addr } => {
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&target_addr.octets());
        }
        NdMessage::NeighborAdvert { flags, target_addr } => {
            out.extend_from_slice(&[flags.to_byte(), 0, 0, 0]);
            out.extend_from_slice(&target_addr.octets());
        }
        NdMessage::Redirect {
            target_addr,
            dest_addr,
        } => {
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&target_addr.octets());
            out.extend_from_slice(&dest_addr.octets());
        }
    }
    for opt in options {
        opt.emit(&mut out);
    }
    finish_ipv6(&mut out, src_addr, dst_addr);
    out
}

/// Largest IPv6 payload a non-jumbo packet can carry.
const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Builds an Ethernet frame carrying an IPv6 packet with the given next header and payload.
///
/// The payload is taken as is (an ICMPv6 checksum in it is not touched) and cut at
/// 65535 bytes, the largest Payload Length.
pub fn emit_ipv6(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + payload.len());
    push_headers(
        &mut out,
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        next_header,
        hop_limit,
    );
    out.extend_from_slice(payload);
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out[ETH_HEADER_LEN + 4..ETH_HEADER_LEN + 6].copy_from_slice(&len.to_be_bytes());
    out
}

/// Builds an ICMPv6 Echo Request (`reply == false`) or Echo Reply frame, hop limit 64.
///
/// `data` is cut so that the ICMPv6 message fits a Payload Length.
#[allow(clippy::too_many_arguments)]
pub fn emit_icmpv6_echo(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    reply: bool,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let data = &data[..data.len().min(MAX_PAYLOAD - 8)];
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + 8 + data.len());
    push_headers(
        &mut out,
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        IPPROTO_ICMPV6,
        64,
    );
    let ty = if reply {
        icmp_type::ECHO_REPLY
    } else {
        icmp_type::ECHO_REQUEST
    };
    out.extend_from_slice(&[ty, 0, 0, 0]);
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(data);
    finish_ipv6(&mut out, src_addr, dst_addr);
    out
}

/// Builds an ICMPv6 Packet Too Big (RFC 4443 §3.2) quoting as much of `offending` (an
/// IPv6 packet) as fits in 1280 bytes.
///
/// The destination is the offending packet's source (`::` if `offending` is too short
/// to hold one); hop limit 64.
pub fn emit_packet_too_big(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    mtu: u32,
    offending: &[u8],
) -> Vec<u8> {
    let dst_addr = offending
        .get(8..24)
        .map_or(Ipv6Addr::UNSPECIFIED, |b| Ipv6Addr::from(read16(b)));
    // RFC 4443 §2.4 (c): the error must not exceed the minimum IPv6 MTU.
    let quote_max = MIN_MTU as usize - IPV6_HEADER_LEN - 8;
    let quoted = &offending[..offending.len().min(quote_max)];
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + MIN_MTU as usize);
    push_headers(
        &mut out,
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        IPPROTO_ICMPV6,
        64,
    );
    out.extend_from_slice(&[icmp_type::PACKET_TOO_BIG, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quoted);
    finish_ipv6(&mut out, src_addr, dst_addr);
    out
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::golden::*;
    use crate::wire::{Parsed, parse_frame};

    fn nd(frame: &[u8]) -> NdPacket<'_> {
        match parse_frame(frame) {
            Ok(Parsed::Nd(p)) => p,
            other => panic!("not ND: {other:?}"),
        }
    }

    fn relay(eth_dst: Mac) -> Rewrite {
        Rewrite {
            eth_src: MAC_R,
            eth_dst,
            src_addr: None,
            dst_addr: None,
            slla: LlaRewrite::Replace(MAC_R),
            tlla: LlaRewrite::Replace(MAC_R),
            set_proxy_flag: false,
            clear_pio_on_link: false,
            max_mtu: None,
        }
    }

    #[test]
    fn emit_ns_golden() {
        let frame = emit_nd(
            MAC_A,
            Mac([0x33, 0x33, 0xff, 0, 0, 2]),
            "2001:db8::1".parse().unwrap(),
            "ff02::1:ff00:2".parse().unwrap(),
            &NdMessage::NeighborSolicit {
                target_addr: "2001:db8::2".parse().unwrap(),
            },
            &[OptionRepr::SourceLla(MAC_A)],
        );
        assert_eq!(frame, NS_FRAME);
    }

    #[test]
    fn rewrite_ns_slla_golden() {
        let p = nd(&NS_FRAME);
        let mut out = vec![0xa5; 300];
        rewrite(&p, &relay(p.eth_dst), &mut out);
        assert_eq!(out, NS_REWRITTEN);
    }
}
