//! Building frames: relayed copies of validated ND messages, and originated messages.

use std::net::Ipv6Addr;

use super::checksum::fill_icmpv6_checksum;
use super::ndp::{NdMessage, NdPacket, RaFlags, field};
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
/// recomputed; Hop Limit stays 255. Traffic Class and Flow Label are written as zero
/// ([`NdPacket`] does not carry them). Any trailer of the received frame is dropped.
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
        if let Some(flags) = out.get_mut(icmp_start + field::RA_FLAGS) {
            *flags |= RaFlags::PROXY.bits();
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
                // Byte 3 of a PIO holds the L and A flags (RFC 4861 §4.6.2).
                let flags_at = out.len() + 3;
                out.extend_from_slice(opt);
                out[flags_at] &= !PrefixInfo::FLAG_ON_LINK;
            }
            // CVE-2015-8215: never advertise an MTU below the IPv6 minimum.
            (kind::MTU, 1) if is_ra => match rw.max_mtu {
                Some(max) => {
                    let clamped = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]).min(max);
                    if clamped >= MIN_MTU {
                        OptionRepr::Mtu(clamped).emit(out);
                    }
                }
                None => out.extend_from_slice(opt),
            },
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
            out.extend_from_slice(&[ra.cur_hop_limit, ra.flags.bits()]);
            out.extend_from_slice(&ra.router_lifetime.to_be_bytes());
            out.extend_from_slice(&ra.reachable_time.to_be_bytes());
            out.extend_from_slice(&ra.retrans_timer.to_be_bytes());
        }
        NdMessage::NeighborSolicit { target_addr } => {
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&target_addr.octets());
        }
        NdMessage::NeighborAdvert { flags, target_addr } => {
            out.extend_from_slice(&[flags.bits(), 0, 0, 0]);
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
    let ty = if reply {
        icmp_type::ECHO_REPLY
    } else {
        icmp_type::ECHO_REQUEST
    };
    let mut rest = [0u8; 4];
    rest[..2].copy_from_slice(&ident.to_be_bytes());
    rest[2..].copy_from_slice(&seq.to_be_bytes());
    emit_icmpv6(
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        [ty, 0, 0, 0],
        rest,
        data,
    )
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
    let head = [icmp_type::PACKET_TOO_BIG, 0, 0, 0];
    emit_icmpv6(
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        head,
        mtu.to_be_bytes(),
        quoted,
    )
}

/// An ICMPv6 error or informational message (hop limit 64): type, code and a zero
/// checksum in `head`, the message's second 32-bit word in `rest`, then `body`.
fn emit_icmpv6(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    head: [u8; 4],
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + 8 + body.len());
    push_headers(
        &mut out,
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        IPPROTO_ICMPV6,
        64,
    );
    out.extend_from_slice(&head);
    out.extend_from_slice(&rest);
    out.extend_from_slice(body);
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

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// Rewrites `frame` into a buffer pre-filled with 0xa5.
    fn rewritten(frame: &[u8], rw: &Rewrite) -> Vec<u8> {
        let mut out = vec![0xa5; 2000];
        rewrite(&nd(frame), rw, &mut out);
        out
    }

    fn ra_golden_message() -> (NdMessage, Vec<OptionRepr>) {
        let msg = NdMessage::RouterAdvert(crate::wire::RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::MANAGED | RaFlags::OTHER,
            router_lifetime: 1800,
            reachable_time: 30000,
            retrans_timer: 1000,
        });
        let opts = vec![
            OptionRepr::SourceLla(MAC_A),
            OptionRepr::Mtu(1500),
            OptionRepr::PrefixInfo(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: ip("2001:db8::"),
            }),
            OptionRepr::Raw(vec![200, 1, 1, 2, 3, 4, 5, 6]),
        ];
        (msg, opts)
    }

    #[test]
    fn emit_ns_golden() {
        let frame = emit_nd(
            MAC_A,
            Mac([0x33, 0x33, 0xff, 0, 0, 2]),
            ip("2001:db8::1"),
            ip("ff02::1:ff00:2"),
            &NdMessage::NeighborSolicit {
                target_addr: ip("2001:db8::2"),
            },
            &[OptionRepr::SourceLla(MAC_A)],
        );
        assert_eq!(frame, NS_FRAME);
    }

    #[test]
    fn emit_rs_golden() {
        let frame = emit_nd(
            MAC_A,
            Mac::ipv6_multicast(ip("ff02::2")),
            ip("fe80::1"),
            ip("ff02::2"),
            &NdMessage::RouterSolicit,
            &[OptionRepr::SourceLla(MAC_A)],
        );
        assert_eq!(frame, RS_FRAME);
    }

    #[test]
    fn emit_ra_golden() {
        let (msg, opts) = ra_golden_message();
        let frame = emit_nd(
            MAC_A,
            Mac::ipv6_multicast(ip("ff02::1")),
            ip("fe80::1"),
            ip("ff02::1"),
            &msg,
            &opts,
        );
        assert_eq!(frame, RA_FRAME);
    }

    #[test]
    fn emit_na_golden() {
        let frame = emit_nd(
            MAC_B,
            MAC_A,
            ip("2001:db8::2"),
            ip("2001:db8::1"),
            &NdMessage::NeighborAdvert {
                flags: crate::wire::NaFlags::SOLICITED | crate::wire::NaFlags::OVERRIDE,
                target_addr: ip("2001:db8::2"),
            },
            &[OptionRepr::TargetLla(MAC_B)],
        );
        assert_eq!(frame, NA_FRAME);
    }

    #[test]
    fn emit_redirect_golden() {
        // The Redirected Header option as built by hand: type 4, length 6, 6 reserved
        // octets, then the quoted IPv6 header.
        let mut rh = vec![4, 6, 0, 0, 0, 0, 0, 0];
        rh.extend_from_slice(&REDIRECT_FRAME[REDIRECT_FRAME.len() - 40..]);
        let frame = emit_nd(
            MAC_A,
            MAC_B,
            ip("fe80::1"),
            ip("2001:db8::5"),
            &NdMessage::Redirect {
                target_addr: ip("fe80::9"),
                dest_addr: ip("2001:db8::77"),
            },
            &[OptionRepr::TargetLla(MAC_N), OptionRepr::Raw(rh)],
        );
        assert_eq!(frame, REDIRECT_FRAME);
    }

    #[test]
    fn rewrite_ns_slla_golden() {
        let out = rewritten(&NS_FRAME, &relay(Mac([0x33, 0x33, 0xff, 0, 0, 2])));
        assert_eq!(out, NS_REWRITTEN);
    }

    #[test]
    fn rewrite_drops_trailer() {
        // Hostile input #6: the trailer is not part of the IPv6 packet.
        let mut frame = NS_FRAME.to_vec();
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
        let out = rewritten(&frame, &relay(Mac([0x33, 0x33, 0xff, 0, 0, 2])));
        assert_eq!(out, NS_REWRITTEN);
    }

    #[test]
    fn rewrite_rs_slla_golden() {
        let out = rewritten(&RS_FRAME, &relay(Mac::ipv6_multicast(ip("ff02::2"))));
        assert_eq!(out, RS_REWRITTEN);
    }

    #[test]
    fn rewrite_na_tlla_golden() {
        let out = rewritten(&NA_FRAME, &relay(MAC_A));
        assert_eq!(out, NA_REWRITTEN);
    }

    #[test]
    fn rewrite_ra_proxy_pio_mtu_golden() {
        let rw = Rewrite {
            set_proxy_flag: true,
            clear_pio_on_link: true,
            max_mtu: Some(1400),
            ..relay(Mac::ipv6_multicast(ip("ff02::1")))
        };
        assert_eq!(rewritten(&RA_FRAME, &rw), RA_REWRITTEN);
    }

    #[test]
    fn rewrite_ra_mtu_below_minimum_is_removed() {
        let rw = Rewrite {
            set_proxy_flag: true,
            max_mtu: Some(1000),
            ..relay(Mac::ipv6_multicast(ip("ff02::1")))
        };
        let out = rewritten(&RA_FRAME, &rw);
        assert_eq!(out, RA_MTU_STRIPPED);
        assert_eq!(out.len(), RA_FRAME.len() - 8);
    }

    #[test]
    fn rewrite_ra_mtu_kept_when_within_limit() {
        let rw = Rewrite {
            max_mtu: Some(9000),
            slla: LlaRewrite::Keep,
            ..relay(RA_FRAME[..6].try_into().map(Mac).unwrap())
        };
        let out = rewritten(&RA_FRAME, &rw);
        // Only the Ethernet source differs from the received frame.
        assert_eq!(out[..6], RA_FRAME[..6]);
        assert_eq!(out[6..12], MAC_R.0);
        assert_eq!(out[12..], RA_FRAME[12..]);
    }

    #[test]
    fn rewrite_redirect_removes_tlla_golden() {
        let rw = Rewrite {
            tlla: LlaRewrite::Remove,
            ..relay(MAC_B)
        };
        let out = rewritten(&REDIRECT_FRAME, &rw);
        assert_eq!(out, REDIRECT_NO_TLLA);
        let p = nd(&out);
        assert_eq!(p.tlla, None);
        assert_eq!(p.icmp.len(), nd(&REDIRECT_FRAME).icmp.len() - 8);
    }

    #[test]
    fn rewrite_every_slla_copy_golden() {
        let rw = Rewrite {
            tlla: LlaRewrite::Keep,
            ..relay(Mac([0x33, 0x33, 0xff, 0, 0, 2]))
        };
        assert_eq!(rewritten(&NS_TWO_SLLA, &rw), NS_TWO_SLLA_REWRITTEN);
    }

    #[test]
    fn rewrite_addresses_recomputes_checksum() {
        let rw = Rewrite {
            src_addr: Some(ip("fe80::aa")),
            dst_addr: Some(ip("ff02::1")),
            ..relay(Mac::ipv6_multicast(ip("ff02::1")))
        };
        let out = rewritten(&NA_FRAME, &rw);
        // Solicited NA to a multicast destination is invalid, so check fields by hand.
        assert_eq!(out[22..38], ip("fe80::aa").octets());
        assert_eq!(out[38..54], ip("ff02::1").octets());
        assert!(crate::wire::verify_icmpv6_checksum(
            ip("fe80::aa"),
            ip("ff02::1"),
            &out[54..]
        ));
    }

    #[test]
    fn emit_echo_golden() {
        let frame = emit_icmpv6_echo(
            MAC_A,
            MAC_B,
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            false,
            0x1234,
            7,
            b"ping",
        );
        assert_eq!(frame, ECHO_FRAME);
        let reply = emit_icmpv6_echo(
            MAC_A,
            MAC_B,
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            true,
            0x1234,
            7,
            b"ping",
        );
        assert_eq!(reply[54], icmp_type::ECHO_REPLY);
    }

    #[test]
    fn emit_ipv6_golden() {
        let frame = emit_ipv6(
            MAC_A,
            MAC_B,
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            17,
            63,
            &[1, 2, 3],
        );
        let mut want = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        want.extend_from_slice(&[0x60, 0, 0, 0, 0, 3, 17, 63]);
        want.extend_from_slice(&ip("2001:db8::1").octets());
        want.extend_from_slice(&ip("2001:db8::2").octets());
        want.extend_from_slice(&[1, 2, 3]);
        assert_eq!(frame, want);
    }

    #[test]
    fn packet_too_big_quotes_up_to_1280() {
        for len in [48usize, 1232, 1233, 1500, 9000] {
            let offending = emit_ipv6(
                MAC_A,
                MAC_B,
                ip("2001:db8::1"),
                ip("2001:db8::2"),
                17,
                64,
                &vec![0x5a; len - 40],
            );
            let offending = &offending[ETH_HEADER_LEN..];
            let frame = emit_packet_too_big(MAC_R, MAC_A, ip("fe80::aa"), 1400, offending);
            let ipv6 = &frame[ETH_HEADER_LEN..];
            assert_eq!(ipv6.len(), len.min(1232) + 48, "offending length {len}");
            assert!(ipv6.len() <= 1280);
            assert_eq!(ipv6[24..40], ip("2001:db8::1").octets());
            let icmp = &ipv6[40..];
            assert_eq!(icmp[..2], [icmp_type::PACKET_TOO_BIG, 0]);
            assert_eq!(icmp[4..8], 1400u32.to_be_bytes());
            assert_eq!(icmp[8..], offending[..icmp.len() - 8]);
            assert!(crate::wire::verify_icmpv6_checksum(
                ip("fe80::aa"),
                ip("2001:db8::1"),
                icmp
            ));
            assert!(matches!(parse_frame(&frame), Ok(Parsed::Data(_))));
        }
    }
}
