//! Property tests: emit → parse is the identity for all five ND messages, rewrites keep
//! frames valid with correct checksums, and no byte string makes the parser panic.

use std::net::Ipv6Addr;

use ndprelay::wire::{
    LlaRewrite, Mac, NaFlags, NdMessage, NdOption, OptionRepr, Parsed, PrefixInfo, RaFlags,
    Rewrite, RouterAdvert, emit_nd, parse_frame, rewrite, solicited_node,
};
use proptest::prelude::*;

/// RFC 1071 sum over the pseudo-header and the whole message, checksum field included;
/// a correct message sums to 0xffff.
fn checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> bool {
    let mut bytes = [src.octets(), dst.octets()].concat();
    bytes.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(icmp);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|w| u64::from(w[0]) << 8 | u64::from(w[1]))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

fn unicast_mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(|mut m| {
        m[0] &= 0xfe;
        Mac(m)
    })
}

fn global_addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 12]>().prop_map(|low| {
        let mut o = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..].copy_from_slice(&low);
        Ipv6Addr::from(o)
    })
}

fn link_local() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 8]>().prop_map(|low| {
        let mut o = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        o[8..].copy_from_slice(&low);
        Ipv6Addr::from(o)
    })
}

fn unicast_addr() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![global_addr(), link_local()]
}

/// Unknown options (types 200..=250) of 1 to 4 units with random bodies.
fn unknown_options() -> impl Strategy<Value = Vec<OptionRepr>> {
    prop::collection::vec(
        (200u8..=250, 1u8..=4, any::<[u8; 30]>()).prop_map(|(kind, units, body)| {
            let mut o = vec![kind, units];
            o.extend_from_slice(&body[..usize::from(units) * 8 - 2]);
            OptionRepr::Raw(o)
        }),
        0..4,
    )
}

fn prefix_info() -> impl Strategy<Value = OptionRepr> {
    (
        0u8..=128,
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        global_addr(),
    )
        .prop_map(
            |(prefix_len, on_link, autonomous, valid_lifetime, preferred_lifetime, prefix)| {
                OptionRepr::PrefixInfo(PrefixInfo {
                    prefix_len,
                    on_link,
                    autonomous,
                    valid_lifetime,
                    preferred_lifetime,
                    prefix,
                })
            },
        )
}

/// A valid frame's description: Ethernet and IPv6 addresses, message, options.
#[derive(Debug, Clone)]
struct Nd {
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    message: NdMessage,
    options: Vec<OptionRepr>,
}

impl Nd {
    fn emit(&self) -> Vec<u8> {
        emit_nd(
            self.eth_src,
            self.eth_dst,
            self.src,
            self.dst,
            &self.message,
            &self.options,
        )
    }
}

/// Link-layer options: none, one, or two identical copies, placed among `rest`.
fn with_lla(
    mut rest: Vec<OptionRepr>,
    lla: Option<OptionRepr>,
    copies: usize,
    at: usize,
) -> Vec<OptionRepr> {
    if let Some(o) = lla {
        for _ in 0..copies {
            let at = at.min(rest.len());
            rest.insert(at, o.clone());
        }
    }
    rest
}

fn valid_nd() -> impl Strategy<Value = Nd> {
    let macs = || (unicast_mac(), unicast_mac());
    let lla = || (prop::option::of(unicast_mac()), 1usize..=2, 0usize..4);
    let rs = (
        macs(),
        prop::option::of(unicast_addr()),
        lla(),
        unknown_options(),
    )
        .prop_map(|((es, ed), src, (mac, copies, at), rest)| {
            // RS from :: carries no SLLA (RFC 4861 §6.1.1).
            let mac = src.and(mac);
            Nd {
                eth_src: es,
                eth_dst: ed,
                src: src.unwrap_or(Ipv6Addr::UNSPECIFIED),
                dst: "ff02::2".parse().unwrap(),
                message: NdMessage::RouterSolicit,
                options: with_lla(rest, mac.map(OptionRepr::SourceLla), copies, at),
            }
        });
    let ra_fields = (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(cur_hop_limit, flags, router_lifetime, reachable_time, retrans_timer)| RouterAdvert {
                cur_hop_limit,
                flags: RaFlags::from_bits_retain(flags),
                router_lifetime,
                reachable_time,
                retrans_timer,
            },
        );
    let ra = (
        macs(),
        link_local(),
        prop_oneof![Just("ff02::1".parse().unwrap()), unicast_addr()],
        ra_fields,
        lla(),
        prop::option::of(any::<u32>()),
        prop::collection::vec(prefix_info(), 0..3),
        unknown_options(),
    )
        .prop_map(
            |((es, ed), src, dst, ra, (mac, copies, at), mtu, pios, mut rest)| {
                rest.extend(mtu.map(OptionRepr::Mtu));
                rest.extend(pios);
                Nd {
                    eth_src: es,
                    eth_dst: ed,
                    src,
                    dst,
                    message: NdMessage::RouterAdvert(ra),
                    options: with_lla(rest, mac.map(OptionRepr::SourceLla), copies, at),
                }
            },
        );
    let ns = (
        macs(),
        prop::option::of(unicast_addr()),
        unicast_addr(),
        any::<bool>(),
        unicast_addr(),
        lla(),
        prop::option::of(unicast_mac()),
        unknown_options(),
    )
        .prop_map(
            |((es, ed), src, target, multicast, unicast_dst, (mac, copies, at), tlla, rest)| {
                let dad = src.is_none();
                let dst = if multicast || dad {
                    solicited_node(target)
                } else {
                    unicast_dst
                };
                let mac = src.and(mac);
                let mut options = with_lla(rest, mac.map(OptionRepr::SourceLla), copies, at);
                options.extend(tlla.map(OptionRepr::TargetLla));
                Nd {
                    eth_src: es,
                    eth_dst: ed,
                    src: src.unwrap_or(Ipv6Addr::UNSPECIFIED),
                    dst,
                    message: NdMessage::NeighborSolicit {
                        target_addr: target,
                    },
                    options,
                }
            },
        );
    let na = (
        macs(),
        unicast_addr(),
        prop_oneof![Just("ff02::1".parse().unwrap()), unicast_addr()],
        unicast_addr(),
        any::<[bool; 3]>(),
        lla(),
        unknown_options(),
    )
        .prop_map(
            |((es, ed), src, dst, target, [r, s, o], (mac, copies, at), rest)| Nd {
                eth_src: es,
                eth_dst: ed,
                src,
                dst,
                message: NdMessage::NeighborAdvert {
                    flags: {
                        let mut f = NaFlags::empty();
                        f.set(NaFlags::ROUTER, r);
                        f.set(NaFlags::SOLICITED, s && !dst.is_multicast());
                        f.set(NaFlags::OVERRIDE, o);
                        f
                    },
                    target_addr: target,
                },
                options: with_lla(rest, mac.map(OptionRepr::TargetLla), copies, at),
            },
        );
    let redirect = (
        macs(),
        link_local(),
        unicast_addr(),
        link_local(),
        unicast_addr(),
        any::<bool>(),
        lla(),
        unknown_options(),
    )
        .prop_map(
            |((es, ed), src, dst, ll_target, dest, on_link, (mac, copies, at), rest)| Nd {
                eth_src: es,
                eth_dst: ed,
                src,
                dst,
                message: NdMessage::Redirect {
                    target_addr: if on_link { dest } else { ll_target },
                    dest_addr: dest,
                },
                options: with_lla(rest, mac.map(OptionRepr::TargetLla), copies, at),
            },
        );
    prop_oneof![rs, ra, ns, na, redirect]
}

fn lla_rewrite() -> impl Strategy<Value = LlaRewrite> {
    prop_oneof![
        Just(LlaRewrite::Keep),
        Just(LlaRewrite::Remove),
        unicast_mac().prop_map(LlaRewrite::Replace),
    ]
}

fn rewrite_spec() -> impl Strategy<Value = Rewrite> {
    (
        unicast_mac(),
        any::<[u8; 6]>(),
        lla_rewrite(),
        lla_rewrite(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0u32..20_000),
    )
        .prop_map(
            |(eth_src, eth_dst, slla, tlla, set_proxy_flag, clear_pio_on_link, max_mtu)| Rewrite {
                eth_src,
                eth_dst: Mac(eth_dst),
                src_addr: None,
                dst_addr: None,
                slla,
                tlla,
                set_proxy_flag,
                clear_pio_on_link,
                max_mtu,
            },
        )
}

fn parsed_nd(frame: &[u8]) -> ndprelay::wire::NdPacket<'_> {
    match parse_frame(frame) {
        Ok(Parsed::Nd(p)) => p,
        other => panic!("not valid ND: {other:?}"),
    }
}

/// What each option becomes under `rw` in a message of the given kind.
fn expected_option(opt: &OptionRepr, rw: &Rewrite, is_ra: bool) -> Option<OptionRepr> {
    let lla = |how: LlaRewrite, mac: Mac, make: fn(Mac) -> OptionRepr| match how {
        LlaRewrite::Keep => Some(make(mac)),
        LlaRewrite::Replace(m) => Some(make(m)),
        LlaRewrite::Remove => None,
    };
    match opt {
        OptionRepr::SourceLla(m) => lla(rw.slla, *m, OptionRepr::SourceLla),
        OptionRepr::TargetLla(m) => lla(rw.tlla, *m, OptionRepr::TargetLla),
        OptionRepr::PrefixInfo(p) if is_ra && rw.clear_pio_on_link => {
            Some(OptionRepr::PrefixInfo(PrefixInfo {
                on_link: false,
                ..*p
            }))
        }
        OptionRepr::Mtu(m) if is_ra => match rw.max_mtu {
            None => Some(OptionRepr::Mtu(*m)),
            Some(max) if (*m).min(max) >= 1280 => Some(OptionRepr::Mtu((*m).min(max))),
            Some(_) => None,
        },
        other => Some(other.clone()),
    }
}

fn mutate(frame: &mut Vec<u8>, edits: &[(u16, u8, u8)]) {
    for &(pos, value, op) in edits {
        if frame.is_empty() {
            frame.push(value);
            continue;
        }
        let pos = usize::from(pos) % frame.len();
        match op % 4 {
            0 => frame[pos] = value,
            1 => frame[pos] ^= 1 << (value % 8),
            2 => frame.truncate(pos),
            _ => frame.insert(pos, value),
        }
    }
}

/// Recomputes the ICMPv6 checksum if the frame is long enough to hold one, so that
/// mutations reach the checks behind the checksum.
fn fix_checksum(frame: &mut [u8]) {
    if frame.len() < 58 {
        return;
    }
    let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    let end = (54 + plen).min(frame.len());
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
    frame[56] = 0;
    frame[57] = 0;
    let c = ndprelay::wire::icmpv6_checksum(src, dst, &frame[54..end]);
    frame[56..58].copy_from_slice(&c.to_be_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn emit_parse_identity(nd in valid_nd()) {
        let frame = nd.emit();
        let p = parsed_nd(&frame);
        prop_assert_eq!(p.eth_src, nd.eth_src);
        prop_assert_eq!(p.eth_dst, nd.eth_dst);
        prop_assert_eq!(p.src_addr, nd.src);
        prop_assert_eq!(p.dst_addr, nd.dst);
        prop_assert_eq!(p.hop_limit, 255);
        prop_assert_eq!(p.message, nd.message);
        let opts: Vec<OptionRepr> = p.options().map(OptionRepr::from).collect();
        prop_assert_eq!(&opts, &nd.options);
        let first_slla = nd.options.iter().find_map(|o| match o {
            OptionRepr::SourceLla(m) => Some(*m),
            _ => None,
        });
        prop_assert_eq!(p.slla, first_slla);
        prop_assert!(checksum_ok(nd.src, nd.dst, p.icmp));
        prop_assert_eq!(p.is_dad(), nd.src.is_unspecified() && matches!(nd.message, NdMessage::NeighborSolicit { .. }));
    }

    #[test]
    fn rewrite_keeps_frames_valid(nd in valid_nd(), rw in rewrite_spec(), trailer in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut frame = nd.emit();
        frame.extend_from_slice(&trailer);
        let p = parsed_nd(&frame);
        let mut out = vec![0xa5; 64];
        rewrite(&p, &rw, &mut out);
        let q = parsed_nd(&out);
        prop_assert_eq!(q.eth_src, rw.eth_src);
        prop_assert_eq!(q.eth_dst, rw.eth_dst);
        prop_assert!(checksum_ok(q.src_addr, q.dst_addr, q.icmp));
        prop_assert_eq!(out.len(), 54 + q.icmp.len());
        let is_ra = matches!(nd.message, NdMessage::RouterAdvert(_));
        let want_msg = match nd.message {
            NdMessage::RouterAdvert(ra) if rw.set_proxy_flag => {
                NdMessage::RouterAdvert(RouterAdvert { flags: ra.flags | RaFlags::PROXY, ..ra })
            }
            m => m,
        };
        prop_assert_eq!(q.message, want_msg);
        let want: Vec<OptionRepr> = nd.options.iter().filter_map(|o| expected_option(o, &rw, is_ra)).collect();
        let got: Vec<OptionRepr> = q.options().map(OptionRepr::from).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn rewrite_with_new_addresses_has_valid_checksum(nd in valid_nd(), rw in rewrite_spec(), src in unicast_addr(), dst in unicast_addr()) {
        let frame = nd.emit();
        let p = parsed_nd(&frame);
        let rw = Rewrite { src_addr: Some(src), dst_addr: Some(dst), ..rw };
        let mut out = Vec::new();
        rewrite(&p, &rw, &mut out);
        prop_assert_eq!(&out[22..38], &src.octets()[..]);
        prop_assert_eq!(&out[38..54], &dst.octets()[..]);
        prop_assert_eq!(usize::from(u16::from_be_bytes([out[18], out[19]])), out.len() - 54);
        prop_assert!(checksum_ok(src, dst, &out[54..]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_frame(&bytes);
        // Also as an IPv6 frame, so the bytes reach the IPv6 and ICMPv6 code.
        let mut frame = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        frame.extend_from_slice(&bytes);
        if let Ok(Parsed::Nd(p)) = parse_frame(&frame) {
            let mut out = Vec::new();
            rewrite(&p, &Rewrite { eth_src: Mac([2, 0, 0, 0, 0, 1]), eth_dst: Mac::BROADCAST, src_addr: None, dst_addr: None, slla: LlaRewrite::Keep, tlla: LlaRewrite::Keep, set_proxy_flag: false, clear_pio_on_link: false, max_mtu: None }, &mut out);
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        nd in valid_nd(),
        rw in rewrite_spec(),
        edits in prop::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..6),
        fix in any::<bool>(),
    ) {
        let mut frame = nd.emit();
        mutate(&mut frame, &edits);
        if fix {
            fix_checksum(&mut frame);
        }
        if let Ok(Parsed::Nd(p)) = parse_frame(&frame) {
            // Whatever was accepted stays acceptable after a rewrite.
            let _ = p.options().count();
            let rw = Rewrite { slla: LlaRewrite::Keep, tlla: LlaRewrite::Keep, ..rw };
            let mut out = Vec::new();
            rewrite(&p, &rw, &mut out);
            prop_assert!(matches!(parse_frame(&out), Ok(Parsed::Nd(_))), "{:?}", parse_frame(&out));
        }
    }

    #[test]
    fn option_iter_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let n = ndprelay::wire::NdOptionIter::new(&bytes).count();
        prop_assert!(n <= bytes.len() / 8);
        for o in ndprelay::wire::NdOptionIter::new(&bytes) {
            if let NdOption::Other { bytes, .. } = o {
                prop_assert!(bytes.len() >= 8 && bytes.len() % 8 == 0);
            }
        }
    }
}
