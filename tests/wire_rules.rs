//! One test per RFC 4861 / 6980 / 7113 validity rule and per wire-level hostile input of
//! NDP reference §5, each next to a valid twin that differs only in the broken field.
//!
//! Frames are assembled byte by byte here, with this file's own checksum, so that the
//! production builder and checksum are not used to judge themselves.

use std::net::Ipv6Addr;

use ndprelay::DropReason;
use ndprelay::wire::{
    LlaRewrite, Mac, NdMessage, NdPacket, Parsed, Rewrite, parse_frame, rewrite,
    verify_icmpv6_checksum,
};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_R: Mac = Mac([2, 0, 0, 0, 0, 0xaa]);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// RFC 1071 over the pseudo-header and `icmp` with its checksum field zeroed.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut words = Vec::new();
    words.extend_from_slice(&src.octets());
    words.extend_from_slice(&dst.octets());
    words.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    words.extend_from_slice(&[0, 0, 0, 58]);
    for (i, b) in icmp.iter().enumerate() {
        words.push(if i == 2 || i == 3 { 0 } else { *b });
    }
    if words.len() % 2 == 1 {
        words.push(0);
    }
    let mut sum: u64 = words
        .chunks(2)
        .map(|w| u64::from(w[0]) << 8 | u64::from(w[1]))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame description that tests mutate before calling [`Frame::build`].
#[derive(Clone)]
struct Frame {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    /// Extension headers between the IPv6 header and `icmp`, first Next Header value
    /// and the bytes (whose own Next Header fields the test sets).
    ext: Option<(u8, Vec<u8>)>,
    icmp: Vec<u8>,
    /// Keep the checksum field of `icmp` as given instead of computing it.
    raw_checksum: bool,
}

impl Frame {
    fn new(src: &str, dst: &str, icmp: Vec<u8>) -> Self {
        Self {
            src: ip(src),
            dst: ip(dst),
            hop_limit: 255,
            ext: None,
            icmp,
            raw_checksum: false,
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut icmp = self.icmp.clone();
        if !self.raw_checksum && icmp.len() >= 4 {
            let c = checksum(self.src, self.dst, &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let (next, ext) = self.ext.clone().unwrap_or((58, Vec::new()));
        let mut f = Vec::new();
        let eth_dst = if self.dst.is_multicast() {
            Mac::ipv6_multicast(self.dst).0
        } else {
            [2, 0, 0, 0, 0, 2]
        };
        f.extend_from_slice(&eth_dst);
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&((ext.len() + icmp.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[next, self.hop_limit]);
        f.extend_from_slice(&self.src.octets());
        f.extend_from_slice(&self.dst.octets());
        f.extend_from_slice(&ext);
        f.extend_from_slice(&icmp);
        f
    }

    fn with(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut f = self.clone();
        change(&mut f);
        f
    }
}

fn slla(mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![1, 1];
    o.extend_from_slice(&mac);
    o
}

fn tlla(mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![2, 1];
    o.extend_from_slice(&mac);
    o
}

fn ns(target: &str, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&ip(target).octets());
    m.extend(opts.concat());
    m
}

fn na(flags: u8, target: &str, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&ip(target).octets());
    m.extend(opts.concat());
    m
}

fn rs(opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![133, 0, 0, 0, 0, 0, 0, 0];
    m.extend(opts.concat());
    m
}

fn ra(opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend(opts.concat());
    m
}

fn redirect(target: &str, dest: &str, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![137, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&ip(target).octets());
    m.extend_from_slice(&ip(dest).octets());
    m.extend(opts.concat());
    m
}

fn valid_ns() -> Frame {
    Frame::new(
        "2001:db8::1",
        "ff02::1:ff00:2",
        ns("2001:db8::2", &[slla(MAC_A)]),
    )
}

fn valid_na() -> Frame {
    Frame::new(
        "2001:db8::2",
        "2001:db8::1",
        na(0x60, "2001:db8::2", &[tlla([2, 0, 0, 0, 0, 2])]),
    )
}

fn valid_rs() -> Frame {
    Frame::new("fe80::1", "ff02::2", rs(&[slla(MAC_A)]))
}

fn valid_ra() -> Frame {
    Frame::new("fe80::1", "ff02::1", ra(&[slla(MAC_A)]))
}

fn valid_redirect() -> Frame {
    Frame::new(
        "fe80::1",
        "2001:db8::5",
        redirect("fe80::9", "2001:db8::77", &[tlla([2, 0, 0, 0, 0, 9])]),
    )
}

fn all_valid() -> [Frame; 5] {
    [
        valid_rs(),
        valid_ra(),
        valid_ns(),
        valid_na(),
        valid_redirect(),
    ]
}

fn parse_nd(frame: &[u8]) -> NdPacket<'_> {
    match parse_frame(frame) {
        Ok(Parsed::Nd(p)) => p,
        other => panic!("expected valid ND, got {other:?}"),
    }
}

/// The twin parses as ND; the broken frame is dropped for exactly `reason`.
fn assert_rule(twin: &Frame, broken: &Frame, reason: DropReason) {
    let good = twin.build();
    let bad = broken.build();
    parse_nd(&good);
    assert_eq!(parse_frame(&bad).err(), Some(reason));
}

// --- RFC 4861 rules common to all five messages (§4.1 of the reference) ---

#[test]
fn hop_limit_not_255() {
    // #1
    for twin in all_valid() {
        for hop in [0, 1, 64, 254] {
            assert_rule(
                &twin,
                &twin.with(|f| f.hop_limit = hop),
                DropReason::HopLimit,
            );
        }
    }
}

#[test]
fn code_not_zero() {
    // #2
    for twin in all_valid() {
        assert_rule(&twin, &twin.with(|f| f.icmp[1] = 1), DropReason::BadCode);
    }
}

#[test]
fn checksum_wrong_or_zero() {
    // #3
    for twin in all_valid() {
        let good = twin.build();
        let stored = [good[56], good[57]];
        let with_stored = |bytes: [u8; 2]| {
            twin.with(|f| {
                f.raw_checksum = true;
                f.icmp[2..4].copy_from_slice(&bytes);
            })
        };
        assert_rule(
            &twin,
            &with_stored([stored[0], stored[1] ^ 0x10]),
            DropReason::BadCsum,
        );
        assert_rule(&twin, &with_stored([0, 0]), DropReason::BadCsum);
        // The twin with the stored (correct) checksum given raw is accepted too.
        parse_nd(&with_stored(stored).build());
    }
}

#[test]
fn below_minimum_length() {
    // #4 (NS 23), #24 (RA 15), #30 (Redirect 39), RS 7, NA 23.
    for (min, twin) in [8, 16, 24, 24, 40].into_iter().zip(all_valid()) {
        let twin = twin.with(|f| f.icmp.truncate(min));
        assert_rule(
            &twin,
            &twin.with(|f| f.icmp.truncate(min - 1)),
            DropReason::TooShort,
        );
    }
}

#[test]
fn payload_length_beyond_frame_is_truncated() {
    // #5: Payload Length 200 in an 80-byte frame.
    let good = valid_ns().with(|f| f.icmp.truncate(24)).build();
    assert_eq!(good.len(), 78);
    let mut frame = good.clone();
    frame.extend_from_slice(&[0, 0]);
    parse_nd(&frame);
    frame[18..20].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(parse_frame(&frame).err(), Some(DropReason::Truncated));
}

#[test]
fn trailing_bytes_ignored_and_not_relayed() {
    // #6
    let good = valid_ns().build();
    let mut frame = good.clone();
    frame.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let p = parse_nd(&frame);
    assert_eq!(p.icmp, &good[54..]);
    let mut out = Vec::new();
    rewrite(&p, &relay(), &mut out);
    assert_eq!(out.len(), good.len());
    assert_eq!(parse_nd(&out).icmp.len(), good.len() - 54);
}

fn relay() -> Rewrite {
    Rewrite {
        eth_src: MAC_R,
        eth_dst: Mac([0x33, 0x33, 0xff, 0, 0, 2]),
        src_addr: None,
        dst_addr: None,
        slla: LlaRewrite::Replace(MAC_R),
        tlla: LlaRewrite::Replace(MAC_R),
        set_proxy_flag: false,
        clear_pio_on_link: false,
        max_mtu: None,
    }
}

// --- NS and NA (§7.1.1, §7.1.2) ---

#[test]
fn ns_multicast_target() {
    // #7
    let twin = valid_ns();
    let broken = twin.with(|f| f.icmp[8..24].copy_from_slice(&ip("ff02::1").octets()));
    assert_rule(&twin, &broken, DropReason::McastTarget);
}

#[test]
fn dad_ns_to_unicast_destination() {
    // #8
    let twin = Frame::new("::", "ff02::1:ff00:2", ns("2001:db8::2", &[]));
    let broken = twin.with(|f| f.dst = ip("2001:db8::2"));
    assert_rule(&twin, &broken, DropReason::DadBadDst);
}

#[test]
fn dad_ns_with_slla() {
    // #9
    let twin = Frame::new(
        "::",
        "ff02::1:ff00:2",
        ns("2001:db8::2", &[vec![200, 1, 0, 0, 0, 0, 0, 0]]),
    );
    let broken = twin.with(|f| f.icmp[24] = 1);
    assert_rule(&twin, &broken, DropReason::DadSlla);
}

#[test]
fn valid_dad_ns_parses_as_dad() {
    // #10: the relay forwards it unchanged and learns nothing (engine); here: is_dad.
    let frame = Frame::new("::", "ff02::1:ff00:2", ns("2001:db8::2", &[])).build();
    let p = parse_nd(&frame);
    assert!(p.is_dad());
    assert_eq!(p.slla, None);
    assert!(!parse_nd(&valid_ns().build()).is_dad());
}

#[test]
fn option_length_zero() {
    // #11
    let twin = valid_ns();
    assert_rule(&twin, &twin.with(|f| f.icmp[25] = 0), DropReason::OptLen0);
    for t in all_valid() {
        let broken = t.with(|f| f.icmp.extend_from_slice(&[200, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(
            parse_frame(&broken.build()).err(),
            Some(DropReason::OptLen0)
        );
    }
}

#[test]
fn last_option_overruns() {
    // #12
    let twin = valid_ns().with(|f| f.icmp.extend_from_slice(&[200, 1, 0, 0, 0, 0, 0, 0]));
    assert_rule(
        &twin,
        &twin.with(|f| f.icmp[33] = 2),
        DropReason::OptOverrun,
    );
    assert_rule(
        &twin,
        &twin.with(|f| f.icmp[33] = 255),
        DropReason::OptOverrun,
    );
}

#[test]
fn stray_bytes_after_options() {
    // #13
    let twin = valid_ns();
    for n in 1..8 {
        let broken = twin.with(|f| f.icmp.extend(std::iter::repeat_n(0xc8, n)));
        assert_rule(&twin, &broken, DropReason::OptTrailing);
    }
}

#[test]
fn lla_option_not_one_unit() {
    // #14: with length 1 the next 8 bytes form an unknown option; with 2 they are
    // part of a 16-octet SLLA.
    for kind in [1, 2] {
        let twin = valid_ns().with(|f| {
            f.icmp.truncate(24);
            f.icmp
                .extend_from_slice(&[kind, 1, 2, 0, 0, 0, 0, 1, 200, 1, 0, 0, 0, 0, 0, 0]);
        });
        assert_rule(&twin, &twin.with(|f| f.icmp[25] = 2), DropReason::BadLlaLen);
    }
}

#[test]
fn two_different_llas() {
    // #15: identical copies are fine, different ones are not.
    for (kind, twin) in [(1, valid_ns()), (2, valid_na())] {
        let twin = twin.with(|f| {
            f.icmp.truncate(24);
            f.icmp
                .extend_from_slice(&[kind, 1, 2, 0, 0, 0, 0, 1, kind, 1, 2, 0, 0, 0, 0, 1]);
        });
        assert_rule(&twin, &twin.with(|f| f.icmp[39] = 3), DropReason::DupLla);
    }
}

#[test]
fn unknown_option_relayed_unchanged() {
    // #16
    let unknown = [200, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    let frame = valid_ns()
        .with(|f| {
            f.icmp.truncate(24);
            f.icmp.extend_from_slice(&unknown);
            f.icmp.extend(slla(MAC_A));
            f.icmp.extend_from_slice(&unknown);
        })
        .build();
    let mut out = Vec::new();
    rewrite(&parse_nd(&frame), &relay(), &mut out);
    assert_eq!(out[54 + 24..54 + 40], unknown);
    assert_eq!(out[54 + 40..54 + 48], [1, 1, 2, 0, 0, 0, 0, 0xaa]);
    assert_eq!(out[54 + 48..], unknown);
    assert!(verify_icmpv6_checksum(
        ip("2001:db8::1"),
        ip("ff02::1:ff00:2"),
        &out[54..]
    ));
}

#[test]
fn ns_with_tlla_is_processed() {
    // #17: parsed with the TLLA reported; the engine must not learn from it.
    let frame = valid_ns()
        .with(|f| f.icmp.extend(tlla([2, 0, 0, 0, 0, 7])))
        .build();
    let p = parse_nd(&frame);
    assert_eq!(p.tlla, Some(Mac([2, 0, 0, 0, 0, 7])));
    assert_eq!(p.slla, Some(Mac(MAC_A)));
}

#[test]
fn na_solicited_to_multicast() {
    // #18
    let twin = valid_na().with(|f| {
        f.dst = ip("ff02::1");
        f.icmp[4] = 0x20;
    });
    assert_rule(
        &twin,
        &twin.with(|f| f.icmp[4] = 0x60),
        DropReason::McastSolicited,
    );
}

#[test]
fn na_multicast_target() {
    // #19
    let twin = valid_na();
    let broken = twin.with(|f| f.icmp[8..24].copy_from_slice(&ip("ff02::1").octets()));
    assert_rule(&twin, &broken, DropReason::McastTarget);
}

#[test]
fn multicast_mac_in_lla() {
    // Fuzz seed: a multicast MAC inside an SLLA (never learned).
    for twin in all_valid() {
        // Every valid frame carries one LLA option right after the fixed part.
        let at = [8, 16, 24, 24, 40][usize::from(twin.icmp[0] - 133)];
        for first in [0x33, 0x01, 0xff] {
            let broken = twin.with(|f| f.icmp[at + 2] = first);
            assert_rule(&twin, &broken, DropReason::McastLla);
        }
    }
}

#[test]
fn multicast_source() {
    // Fuzz seed: a multicast source address is never valid, ND or not.
    for twin in all_valid() {
        assert_rule(
            &twin,
            &twin.with(|f| f.src = ip("ff02::1")),
            DropReason::McastSource,
        );
    }
    let echo = Frame::new("2001:db8::1", "2001:db8::2", vec![128, 0, 0, 0, 0, 1, 0, 1]);
    assert!(matches!(parse_frame(&echo.build()), Ok(Parsed::Data(_))));
    let broken = echo.with(|f| f.src = ip("ff0e::1")).build();
    assert_eq!(parse_frame(&broken).err(), Some(DropReason::McastSource));
}

// --- RS and RA (§6.1.1, §6.1.2, reference §4.4) ---

#[test]
fn rs_from_unspecified_with_slla() {
    // #29
    let twin = Frame::new("::", "ff02::2", rs(&[vec![200, 1, 2, 0, 0, 0, 0, 1]]));
    assert_rule(&twin, &twin.with(|f| f.icmp[8] = 1), DropReason::DadSlla);
}

#[test]
fn ra_source_not_link_local() {
    // #23
    let twin = valid_ra();
    for src in ["2001:db8::1", "::", "fec0::1"] {
        assert_rule(
            &twin,
            &twin.with(|f| f.src = ip(src)),
            DropReason::RaSrcNotLl,
        );
    }
}

fn ra_with(opt: &[u8]) -> Frame {
    valid_ra().with(|f| f.icmp.extend_from_slice(opt))
}

/// Bytes of a 64-bit prefix whose second half reads as a type-200 option.
const PREFIX_TAIL_AS_OPTION: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 200, 1, 0, 0, 0, 0, 0, 0];

#[test]
fn ra_pio_length_and_prefix_length() {
    // Reference §4.4: PIO length 4, prefix length at most 128.
    let mut pio = vec![3, 4, 64, 0xc0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    pio.extend_from_slice(&PREFIX_TAIL_AS_OPTION);
    let twin = ra_with(&pio);
    assert_rule(&twin, &twin.with(|f| f.icmp[25] = 3), DropReason::BadOptLen);
    assert_rule(
        &twin,
        &twin.with(|f| f.icmp[26] = 129),
        DropReason::BadOptLen,
    );
    let twin128 = twin.with(|f| f.icmp[26] = 128);
    parse_nd(&twin128.build());
}

#[test]
fn ra_mtu_length() {
    let twin = ra_with(&[5, 1, 0, 0, 0, 0, 5, 0xdc, 200, 1, 0, 0, 0, 0, 0, 0]);
    assert_rule(&twin, &twin.with(|f| f.icmp[25] = 2), DropReason::BadOptLen);
}

#[test]
fn ra_rio_length_rules() {
    // #27 (RIO /128 with length 2) and RFC 4191 §2.3.
    let rio = |units: u8, plen: u8| {
        let mut o = vec![24, units, plen, 0, 0, 0, 0x0e, 0x10];
        o.resize(usize::from(units) * 8, 0);
        o
    };
    for (units, good_plen, bad_plen) in [(1, 0, 1), (2, 64, 65), (2, 64, 128), (3, 128, 129)] {
        let twin = ra_with(&rio(units, good_plen));
        assert_rule(
            &twin,
            &twin.with(|f| f.icmp[26] = bad_plen),
            DropReason::BadOptLen,
        );
    }
    let twin = ra_with(&rio(3, 0));
    let broken = ra_with(&rio(4, 0));
    assert_rule(&twin, &broken, DropReason::BadOptLen);
}

#[test]
fn ra_rdnss_odd_length_at_least_3() {
    // #27 (even-length RDNSS), RFC 8106, CVE-2020-16898.
    let mut rdnss = vec![25, 3, 0, 0, 0, 0, 0x0e, 0x10];
    rdnss.extend_from_slice(&PREFIX_TAIL_AS_OPTION);
    let twin = ra_with(&rdnss);
    assert_rule(&twin, &twin.with(|f| f.icmp[25] = 2), DropReason::BadOptLen);
    let twin1 = ra_with(&[200, 1, 0, 0, 0, 0, 0, 0]);
    let broken1 = ra_with(&[25, 1, 0, 0, 0, 0, 0, 0]);
    assert_rule(&twin1, &broken1, DropReason::BadOptLen);
    let mut five = vec![25, 5, 0, 0, 0, 0, 0x0e, 0x10];
    five.resize(40, 0x11);
    parse_nd(&ra_with(&five).build());
    let mut four = five.clone();
    four[1] = 4;
    four.truncate(32);
    assert_eq!(
        parse_frame(&ra_with(&four).build()).err(),
        Some(DropReason::BadOptLen)
    );
}

#[test]
fn ra_dnssl_at_least_2() {
    let twin = ra_with(&[31, 2, 0, 0, 0, 0, 0x0e, 0x10, 200, 1, 0, 0, 0, 0, 0, 0]);
    assert_rule(&twin, &twin.with(|f| f.icmp[25] = 1), DropReason::BadOptLen);
}

#[test]
fn ra_only_option_rules_do_not_apply_to_ns() {
    // RFC 4861 §4.6: an option that does not belong to the message is ignored.
    let frame = valid_ns().with(|f| {
        f.icmp
            .extend_from_slice(&[25, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    });
    parse_nd(&frame.build());
}

// --- Redirect (§8.1, #30) ---

#[test]
fn redirect_source_not_link_local() {
    let twin = valid_redirect();
    assert_rule(
        &twin,
        &twin.with(|f| f.src = ip("2001:db8::1")),
        DropReason::RedirectSrcNotLl,
    );
}

#[test]
fn redirect_multicast_destination() {
    let twin = valid_redirect();
    let broken = twin.with(|f| f.icmp[24..40].copy_from_slice(&ip("ff02::1").octets()));
    assert_rule(&twin, &broken, DropReason::RedirectMcastDst);
}

#[test]
fn redirect_target_neither_link_local_nor_destination() {
    let twin = valid_redirect();
    let broken = twin.with(|f| f.icmp[8..24].copy_from_slice(&ip("2001:db8::9").octets()));
    assert_rule(&twin, &broken, DropReason::RedirectBadTarget);
    // Target equal to the Destination (on-link destination) is valid.
    let on_link = twin.with(|f| f.icmp[8..24].copy_from_slice(&ip("2001:db8::77").octets()));
    assert_rule(&on_link, &broken, DropReason::RedirectBadTarget);
}

// --- RFC 6980 fragments (#31) and RFC 7113 extension headers (#32) ---

fn fragment_header(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let field = (offset << 3) | u16::from(more);
    let [hi, lo] = field.to_be_bytes();
    vec![next, 0, hi, lo, 0xde, 0xad, 0xbe, 0xef]
}

fn dest_opts(next: u8) -> Vec<u8> {
    // Next Header, length 0, PadN of 4 octets.
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

fn classify(frame: &Frame) -> Result<&'static str, DropReason> {
    match parse_frame(&frame.build())? {
        Parsed::NotIpv6 => Ok("not_ipv6"),
        Parsed::Data(_) => Ok("data"),
        Parsed::Nd(_) => Ok("nd"),
    }
}

#[test]
fn nd_in_atomic_fragment() {
    for twin in all_valid() {
        let broken = twin.with(|f| f.ext = Some((44, fragment_header(58, 0, false))));
        assert_rule(&twin, &broken, DropReason::FragNd);
        let first = twin.with(|f| f.ext = Some((44, fragment_header(58, 0, true))));
        assert_eq!(classify(&first), Err(DropReason::FragNd));
    }
}

#[test]
fn first_fragment_without_icmpv6_header() {
    // #31: an RA whose first fragment stops inside the header chain or before the type.
    let ra = valid_ra();
    let mut ext = fragment_header(60, 0, true);
    ext.extend_from_slice(&[58, 1, 0, 0]);
    let cut_chain = ra.with(|f| {
        f.ext = Some((44, ext));
        f.icmp.clear();
    });
    assert_eq!(classify(&cut_chain), Err(DropReason::FragNd));
    let no_icmp = ra.with(|f| {
        f.ext = Some((44, fragment_header(58, 0, true)));
        f.icmp.clear();
    });
    assert_eq!(classify(&no_icmp), Err(DropReason::FragNd));
    let unknown_next = ra.with(|f| f.ext = Some((44, fragment_header(200, 0, true))));
    assert_eq!(classify(&unknown_next), Err(DropReason::FragNd));
}

#[test]
fn non_nd_fragments_are_data() {
    let echo = Frame::new("2001:db8::1", "2001:db8::2", vec![128, 0, 0, 0, 0, 1, 0, 1]);
    let first = echo.with(|f| f.ext = Some((44, fragment_header(58, 0, true))));
    assert_eq!(classify(&first), Ok("data"));
    // A non-first fragment has no upper-layer header; the first fragment decides.
    let later = echo.with(|f| f.ext = Some((44, fragment_header(58, 185, false))));
    assert_eq!(classify(&later), Ok("data"));
    let udp = echo.with(|f| f.ext = Some((44, fragment_header(17, 0, true))));
    assert_eq!(classify(&udp), Ok("data"));
}

#[test]
fn nd_behind_destination_options() {
    for twin in all_valid() {
        let broken = twin.with(|f| f.ext = Some((60, dest_opts(58))));
        assert_rule(&twin, &broken, DropReason::ExtHdrNd);
    }
}

#[test]
fn nd_behind_every_walkable_extension_header() {
    // Hop-by-hop, Routing, Destination Options, Mobility, HIP, Shim6.
    for first in [0, 43, 60, 135, 139, 140] {
        let f = valid_ns().with(|f| f.ext = Some((first, dest_opts(58))));
        assert_eq!(
            classify(&f),
            Err(DropReason::ExtHdrNd),
            "next header {first}"
        );
    }
    // AH: length in 4-octet units minus 2; 12 octets here.
    let ah = vec![58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    let f = valid_ns().with(|f| f.ext = Some((51, ah)));
    assert_eq!(classify(&f), Err(DropReason::ExtHdrNd));
}

#[test]
fn nd_behind_40_deep_chain() {
    let mut chain = Vec::new();
    for _ in 0..39 {
        chain.extend(dest_opts(60));
    }
    chain.extend(dest_opts(58));
    let broken = valid_na().with(|f| f.ext = Some((60, chain.clone())));
    assert_eq!(classify(&broken), Err(DropReason::ExtHdrNd));
    // The same chain in front of an echo is data.
    let echo = Frame::new("2001:db8::1", "2001:db8::2", vec![128, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(
        classify(&echo.with(|f| f.ext = Some((60, chain)))),
        Ok("data")
    );
}

#[test]
fn longest_possible_chain_terminates() {
    // 8186 Destination Options headers fill a 65535-octet payload.
    let mut chain = Vec::new();
    while chain.len() + 8 + 24 <= 65535 {
        chain.extend(dest_opts(60));
    }
    let n = chain.len();
    chain[n - 8] = 58;
    let f = valid_ns().with(|f| {
        f.icmp.truncate(24);
        f.ext = Some((60, chain));
    });
    assert_eq!(classify(&f), Err(DropReason::ExtHdrNd));
}

#[test]
fn unknown_next_header() {
    // Unassigned, experimental or reserved Next Header values cannot be classified:
    // treated as possibly hiding ND, as the IPv6 Next Header and behind an extension.
    let ns = valid_ns();
    for unknown in [147, 200, 252, 253, 254, 255] {
        let direct = ns.with(|f| f.ext = Some((unknown, Vec::new())));
        assert_eq!(classify(&direct), Err(DropReason::ExtHdrNd), "{unknown}");
        let behind = ns.with(|f| f.ext = Some((60, dest_opts(unknown))));
        assert_eq!(classify(&behind), Err(DropReason::ExtHdrNd), "{unknown}");
    }
    // Known upper layers and No Next Header behind options are data.
    for known in [6, 17, 50, 59, 132] {
        let behind = ns.with(|f| f.ext = Some((60, dest_opts(known))));
        assert_eq!(classify(&behind), Ok("data"), "{known}");
    }
}

#[test]
fn mld_behind_hop_by_hop_is_data() {
    // MLDv2 reports carry a Router Alert hop-by-hop option; they must not be dropped.
    let mld = Frame::new("fe80::1", "ff02::16", vec![143, 0, 0, 0, 0, 0, 0, 0]).with(|f| {
        f.hop_limit = 1;
        f.ext = Some((0, vec![58, 0, 5, 2, 0, 0, 1, 0]));
    });
    assert_eq!(classify(&mld), Ok("data"));
}

#[test]
fn extension_header_past_payload_length() {
    let mut ext = dest_opts(58);
    ext[1] = 200;
    let f = valid_ns().with(|f| f.ext = Some((60, ext)));
    assert_eq!(classify(&f), Err(DropReason::Truncated));
}

// --- Framing fuzz seeds ---

#[test]
fn ip_version_not_6() {
    let good = valid_ns().build();
    for version in [0u8, 4, 5, 7, 15] {
        let mut bad = good.clone();
        bad[14] = (version << 4) | (bad[14] & 0x0f);
        assert_eq!(parse_frame(&bad).err(), Some(DropReason::BadIpVersion));
    }
}

#[test]
fn vlan_tagged_ns_is_dropped_ipv4_arp_are_not_ipv6() {
    let good = valid_ns().build();
    // An 802.1Q tag in front of the IPv6 ethertype: from a VLAN no port serves.
    let mut vlan = good[..12].to_vec();
    vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    vlan.extend_from_slice(&good[12..]);
    assert_eq!(parse_frame(&vlan).err(), Some(DropReason::VlanTagged));
    let mut ipv4 = good[..12].to_vec();
    ipv4.extend_from_slice(&[
        0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    assert!(matches!(parse_frame(&ipv4), Ok(Parsed::NotIpv6)));
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert!(matches!(parse_frame(&arp), Ok(Parsed::NotIpv6)));
}

#[test]
fn big_ns_parses_and_rewrites_whole() {
    // Fuzz seed: an 8 KB NS; the engine compares the rewritten length with the MTU.
    let frame = valid_ns()
        .with(|f| {
            let mut big = vec![200, 255];
            big.resize(255 * 8, 0x42);
            for _ in 0..4 {
                f.icmp.extend_from_slice(&big);
            }
        })
        .build();
    let p = parse_nd(&frame);
    assert_eq!(p.options().count(), 5);
    let mut out = Vec::new();
    rewrite(&p, &relay(), &mut out);
    assert_eq!(out.len(), frame.len());
    assert!(matches!(
        parse_nd(&out).message,
        NdMessage::NeighborSolicit { .. }
    ));
}
