//! Every hostile input of NDP-REFERENCE §5 fed through the public engine API.
//!
//! Each test builds the frame, hands it to a three-port relay (uplink, br0, br1) and
//! asserts the named `drop_<reason>` counter, or, for inputs that must be relayed, what
//! went out. A valid twin of each broken frame is relayed elsewhere in this file, so
//! a counter can only move because of the broken field.

use std::net::Ipv6Addr;

use ndprelay::engine::{Action, DataPlane, Engine, EngineConfig, PortConfig, PortId, Role};
use ndprelay::time::{Duration, Instant};
use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, Parsed, RaFlags, RouterAdvert, emit_ipv6, emit_nd,
    icmpv6_checksum, parse_frame, solicited_node,
};

const UPLINK: PortId = PortId(0);
const BR0: PortId = PortId(1);
const BR1: PortId = PortId(2);
const UPLINK_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const BR0_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const BR1_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x03]);
const ROUTER_MAC: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const GUEST_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);
const OTHER_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x20]);

/// IPv6 header offsets inside an untagged Ethernet frame.
const HOP_LIMIT: usize = 14 + 7;
const PAYLOAD_LEN: usize = 14 + 4;
const ICMP: usize = 14 + 40;

fn router_ll() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}
fn router_global() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
fn guest() -> Ipv6Addr {
    "2001:db8:1::10".parse().unwrap()
}
fn guest_ll() -> Ipv6Addr {
    GUEST_MAC.link_local()
}
fn all_nodes() -> Ipv6Addr {
    "ff02::1".parse().unwrap()
}

struct Relay {
    engine: Engine,
    now: Instant,
    sent: Vec<(PortId, Vec<u8>)>,
    routes: Vec<Action>,
}

impl Relay {
    /// A relay whose downstream ports are already enabled: an uplink RA was seen and
    /// both P-bit RAs went out on every downstream port (RFC 4389 §6).
    fn ready() -> Self {
        let mut relay = Self::fresh();
        relay.inject(UPLINK, &uplink_ra(&[]));
        relay.advance(Duration::from_secs(10));
        relay.sent.clear();
        relay
    }

    fn fresh() -> Self {
        let port = |name: &str, role, mac: Mac| PortConfig {
            name: name.into(),
            role,
            mac,
            link_local: mac.link_local(),
            mtu: 1500,
        };
        let ports = vec![
            port("uplink", Role::Upstream, UPLINK_MAC),
            port("br0", Role::Downstream, BR0_MAC),
            port("br1", Role::Downstream, BR1_MAC),
        ];
        let mut config = EngineConfig::new(ports, vec!["2001:db8:1::/64".parse().unwrap()]);
        config.data_plane = DataPlane::KernelRoutes;
        config.seed = 7;
        let now = Instant::ZERO;
        let engine = Engine::new(config, now).expect("valid test config");
        let mut relay = Self {
            engine,
            now,
            sent: Vec::new(),
            routes: Vec::new(),
        };
        relay.drain();
        relay
    }

    fn drain(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Transmit { port, frame } => self.sent.push((port, frame)),
                route @ (Action::InstallRoute { .. } | Action::RemoveRoute { .. }) => {
                    self.routes.push(route)
                }
                Action::Event(_) => {}
            }
        }
    }

    fn inject(&mut self, port: PortId, frame: &[u8]) {
        self.engine.handle_frame(self.now, port, frame);
        self.drain();
    }

    /// Moves virtual time forward, running every timer on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(deadline) = self.engine.poll_timeout() {
            if deadline > end {
                break;
            }
            self.now = self.now.max(deadline);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    fn drops(&self, reason: &str) -> u64 {
        self.engine.counter(&format!("drop_{reason}"))
    }

    /// Frames sent on `port` since the last `take`, parsed.
    fn take(&mut self, port: PortId) -> Vec<Vec<u8>> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(p, _)| *p == port);
        self.sent = rest;
        mine.into_iter().map(|(_, f)| f).collect()
    }

    /// Binds `guest()` on br0 the way it happens live: the router solicits, the relay
    /// relays, the guest answers.
    fn bind_guest(&mut self) {
        self.inject(UPLINK, &ns_from_router(guest()));
        self.inject(BR0, &na_from_guest(true));
        self.sent.clear();
        let bound = self.engine.snapshot(self.now).bindings;
        assert!(
            bound.iter().any(|b| b.addr == guest() && b.port == BR0),
            "guest not bound on br0: {bound:?}"
        );
    }
}

fn ns(
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    opts: &[OptionRepr],
) -> Vec<u8> {
    let eth_dst = if dst.is_multicast() {
        Mac::ipv6_multicast(dst)
    } else {
        UPLINK_MAC
    };
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        opts,
    )
}

fn ns_from_router(target: Ipv6Addr) -> Vec<u8> {
    ns(
        ROUTER_MAC,
        router_ll(),
        solicited_node(target),
        target,
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    )
}

/// An NS from the guest on br0 resolving the router: the valid twin of most tests.
fn ns_from_guest() -> Vec<u8> {
    ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    )
}

fn na(
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    flags: NaFlags,
    target: Ipv6Addr,
    tlla: Mac,
) -> Vec<u8> {
    let eth_dst = if dst.is_multicast() {
        Mac::ipv6_multicast(dst)
    } else {
        BR0_MAC
    };
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborAdvert {
            flags,
            target_addr: target,
        },
        &[OptionRepr::TargetLla(tlla)],
    )
}

fn na_from_guest(solicited: bool) -> Vec<u8> {
    let flags = NaFlags {
        router: false,
        solicited,
        override_: true,
    };
    let dst = if solicited { router_ll() } else { all_nodes() };
    na(GUEST_MAC, guest(), dst, flags, guest(), GUEST_MAC)
}

fn ra(eth_src: Mac, src: Ipv6Addr, flags: u8, opts: &[OptionRepr]) -> Vec<u8> {
    let ra = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags(flags),
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
    };
    emit_nd(
        eth_src,
        Mac::ipv6_multicast(all_nodes()),
        src,
        all_nodes(),
        &NdMessage::RouterAdvert(ra),
        opts,
    )
}

fn uplink_ra(extra: &[OptionRepr]) -> Vec<u8> {
    let mut opts = vec![OptionRepr::SourceLla(ROUTER_MAC)];
    opts.extend_from_slice(extra);
    ra(ROUTER_MAC, router_ll(), 0, &opts)
}

fn src_of(frame: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap())
}
fn dst_of(frame: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap())
}

/// Recomputes the ICMPv6 checksum after a test edits a frame (no extension headers).
fn fix_csum(frame: &mut [u8]) {
    let len = usize::from(u16::from_be_bytes([
        frame[PAYLOAD_LEN],
        frame[PAYLOAD_LEN + 1],
    ]));
    let end = (ICMP + len).min(frame.len());
    frame[ICMP + 2] = 0;
    frame[ICMP + 3] = 0;
    let csum = icmpv6_checksum(src_of(frame), dst_of(frame), &frame[ICMP..end]);
    frame[ICMP + 2..ICMP + 4].copy_from_slice(&csum.to_be_bytes());
}

fn set_payload_len(frame: &mut Vec<u8>, len: usize) {
    frame.resize(ICMP + len, 0);
    frame[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&(len as u16).to_be_bytes());
}

/// Asserts the frame is dropped for `reason` and that nothing was sent or learned.
fn assert_dropped(port: PortId, frame: &[u8], reason: &str) {
    let mut relay = Relay::ready();
    let before = relay.engine.snapshot(relay.now).bindings.len();
    relay.inject(port, frame);
    assert_eq!(relay.drops(reason), 1, "drop_{reason} not counted");
    assert!(
        relay.sent.is_empty(),
        "a dropped frame caused transmissions: {:?}",
        relay.sent
    );
    assert!(
        relay.routes.is_empty(),
        "a dropped frame caused route changes"
    );
    assert_eq!(
        relay.engine.snapshot(relay.now).bindings.len(),
        before,
        "a dropped frame was learned"
    );
}

#[test]
fn valid_twin_is_relayed_upstream() {
    let mut relay = Relay::ready();
    relay.inject(BR0, &ns_from_guest());
    let out = relay.take(UPLINK);
    assert_eq!(
        out.len(),
        1,
        "the valid NS from the guest must go to the uplink"
    );
    let Ok(Parsed::Nd(p)) = parse_frame(&out[0]) else {
        panic!("relayed frame does not parse")
    };
    assert_eq!(p.slla, Some(UPLINK_MAC), "SLLA rewritten to the uplink MAC");
    assert_eq!(p.eth_src, UPLINK_MAC);
}

#[test]
fn h01_hop_limit_254() {
    let mut f = ns_from_guest();
    f[HOP_LIMIT] = 254;
    assert_dropped(BR0, &f, "hop_limit");
}

#[test]
fn h02_code_1() {
    let mut f = ns_from_guest();
    f[ICMP + 1] = 1;
    fix_csum(&mut f);
    assert_dropped(BR0, &f, "bad_code");
}

#[test]
fn h03_bad_checksum_and_zero_checksum() {
    let mut f = ns_from_guest();
    f[ICMP + 2] ^= 0x55;
    assert_dropped(BR0, &f, "bad_csum");
    let mut z = ns_from_guest();
    z[ICMP + 2] = 0;
    z[ICMP + 3] = 0;
    assert_dropped(BR0, &z, "bad_csum");
}

#[test]
fn h04_icmp_length_23() {
    let mut f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[],
    );
    set_payload_len(&mut f, 23);
    fix_csum(&mut f);
    assert_dropped(BR0, &f, "too_short");
}

#[test]
fn h05_payload_length_beyond_frame() {
    let mut f = ns_from_guest();
    f.truncate(80);
    f[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&200u16.to_be_bytes());
    assert_dropped(BR0, &f, "truncated");
}

#[test]
fn h06_trailing_bytes_are_not_relayed() {
    let mut relay = Relay::ready();
    let clean = ns_from_guest();
    let mut f = clean.clone();
    f.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    relay.inject(BR0, &f);
    let out = relay.take(UPLINK);
    assert_eq!(out.len(), 1, "NS with a trailer must still be relayed");
    assert_eq!(out[0].len(), clean.len(), "the trailer must not be relayed");
    assert!(matches!(parse_frame(&out[0]), Ok(Parsed::Nd(_))));
}

#[test]
fn h07_multicast_target() {
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(all_nodes()),
        all_nodes(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    assert_dropped(BR0, &f, "mcast_target");
}

#[test]
fn h08_dad_to_unicast_destination() {
    let f = ns(
        GUEST_MAC,
        Ipv6Addr::UNSPECIFIED,
        router_global(),
        guest(),
        &[],
    );
    assert_dropped(BR0, &f, "dad_bad_dst");
}

#[test]
fn h09_dad_with_slla() {
    let f = ns(
        GUEST_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(guest()),
        guest(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    assert_dropped(BR0, &f, "dad_slla");
}

#[test]
fn h10_valid_dad_is_relayed_and_nothing_learned() {
    let mut relay = Relay::ready();
    let f = ns(
        GUEST_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(guest()),
        guest(),
        &[],
    );
    relay.inject(BR0, &f);
    assert_eq!(relay.take(UPLINK).len(), 1, "DAD NS must reach the uplink");
    assert_eq!(
        relay.take(BR1).len(),
        1,
        "DAD NS must reach the other downstream port"
    );
    assert!(
        relay.take(BR0).is_empty(),
        "never back out the ingress port"
    );
    assert!(
        relay.engine.snapshot(relay.now).bindings.is_empty(),
        "DAD must not be learned"
    );
    assert!(relay.routes.is_empty(), "DAD must not install routes");
}

#[test]
fn h11_option_length_zero() {
    let mut f = ns_from_guest();
    f[ICMP + 24 + 1] = 0;
    fix_csum(&mut f);
    assert_dropped(BR0, &f, "opt_len0");
}

#[test]
fn h12_last_option_overruns() {
    let mut f = ns_from_guest();
    f[ICMP + 24 + 1] = 2;
    fix_csum(&mut f);
    assert_dropped(BR0, &f, "opt_overrun");
}

#[test]
fn h13_stray_byte_after_options() {
    let mut f = ns_from_guest();
    set_payload_len(&mut f, 24 + 8 + 1);
    fix_csum(&mut f);
    assert_dropped(BR0, &f, "opt_trailing");
}

#[test]
fn h14_slla_length_two_units() {
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[OptionRepr::Raw(vec![
            1, 2, 0x52, 0x54, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0,
        ])],
    );
    assert_dropped(BR0, &f, "bad_lla_len");
}

#[test]
fn h15_two_different_sllas() {
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[
            OptionRepr::SourceLla(GUEST_MAC),
            OptionRepr::SourceLla(OTHER_MAC),
        ],
    );
    assert_dropped(BR0, &f, "dup_lla");
}

#[test]
fn h16_unknown_option_is_relayed_byte_for_byte() {
    let mut relay = Relay::ready();
    let unknown = vec![200, 1, 0xca, 0xfe, 0xba, 0xbe, 0x12, 0x34];
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[
            OptionRepr::SourceLla(GUEST_MAC),
            OptionRepr::Raw(unknown.clone()),
        ],
    );
    relay.inject(BR0, &f);
    let out = relay.take(UPLINK);
    assert_eq!(out.len(), 1);
    assert!(
        out[0]
            .windows(unknown.len())
            .any(|w| w == unknown.as_slice()),
        "unknown option altered"
    );
}

#[test]
fn h17_tlla_in_ns_is_never_learned() {
    let mut relay = Relay::ready();
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[
            OptionRepr::SourceLla(GUEST_MAC),
            OptionRepr::TargetLla(OTHER_MAC),
        ],
    );
    relay.inject(BR0, &f);
    assert_eq!(
        relay.take(UPLINK).len(),
        1,
        "NS with a TLLA is still processed"
    );
    let bindings = relay.engine.snapshot(relay.now).bindings;
    assert!(
        bindings.iter().all(|b| b.mac != OTHER_MAC),
        "TLLA of an NS was learned: {bindings:?}"
    );
}

#[test]
fn h18_solicited_na_to_all_nodes() {
    let flags = NaFlags {
        router: false,
        solicited: true,
        override_: true,
    };
    let f = na(GUEST_MAC, guest(), all_nodes(), flags, guest(), GUEST_MAC);
    assert_dropped(BR0, &f, "mcast_solicited");
}

#[test]
fn h19_na_multicast_target() {
    let flags = NaFlags {
        router: false,
        solicited: false,
        override_: true,
    };
    let f = na(
        GUEST_MAC,
        guest(),
        all_nodes(),
        flags,
        all_nodes(),
        GUEST_MAC,
    );
    assert_dropped(BR0, &f, "mcast_target");
}

#[test]
fn h20_uplink_na_claiming_a_guest() {
    let mut relay = Relay::ready();
    relay.bind_guest();
    let flags = NaFlags {
        router: false,
        solicited: false,
        override_: true,
    };
    let f = na(OTHER_MAC, guest(), all_nodes(), flags, guest(), OTHER_MAC);
    relay.inject(UPLINK, &f);
    assert_eq!(relay.drops("uplink_claims_guest"), 1);
    let b = relay.engine.snapshot(relay.now).bindings;
    assert!(
        b.iter()
            .any(|b| b.addr == guest() && b.port == BR0 && b.mac == GUEST_MAC),
        "binding lost: {b:?}"
    );
}

#[test]
fn h21_override_na_on_other_port_moves_only_after_failed_probe() {
    let mut relay = Relay::ready();
    relay.bind_guest();
    let flags = NaFlags {
        router: false,
        solicited: false,
        override_: true,
    };
    let f = na(OTHER_MAC, guest(), all_nodes(), flags, guest(), OTHER_MAC);
    relay.inject(BR1, &f);
    assert!(
        relay.engine.counter("binding_conflict") >= 1,
        "conflict not counted"
    );
    let on = |r: &Relay| {
        r.engine
            .snapshot(r.now)
            .bindings
            .iter()
            .find(|b| b.addr == guest())
            .map(|b| b.port)
    };
    assert_eq!(
        on(&relay),
        Some(BR0),
        "binding moved before the old port failed a probe"
    );
    let probes = relay.take(BR0);
    relay.advance(Duration::from_secs(6));
    let probes = probes.len() + relay.take(BR0).len();
    assert!(probes >= 1, "the old port must be probed");
    assert_eq!(
        on(&relay),
        Some(BR1),
        "binding must move once br0 failed the probe"
    );
}

#[test]
fn h22_relay_mac_as_tlla_or_source() {
    let flags = NaFlags {
        router: false,
        solicited: false,
        override_: true,
    };
    let tlla = na(GUEST_MAC, guest(), all_nodes(), flags, guest(), BR1_MAC);
    assert_dropped(BR0, &tlla, "loop_suspect");
    let src = na(UPLINK_MAC, guest(), all_nodes(), flags, guest(), GUEST_MAC);
    assert_dropped(BR0, &src, "loop_suspect");
}

#[test]
fn h23_uplink_ra_from_global_source() {
    let f = ra(
        ROUTER_MAC,
        router_global(),
        0,
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    assert_dropped(UPLINK, &f, "ra_src_not_ll");
}

#[test]
fn h24_ra_icmp_length_15() {
    let mut f = ra(ROUTER_MAC, router_ll(), 0, &[]);
    set_payload_len(&mut f, 15);
    fix_csum(&mut f);
    assert_dropped(UPLINK, &f, "too_short");
}

#[test]
fn h25_ra_on_guest_port_is_rogue() {
    let mut relay = Relay::ready();
    relay.inject(
        BR0,
        &ra(
            GUEST_MAC,
            guest_ll(),
            0,
            &[OptionRepr::SourceLla(GUEST_MAC)],
        ),
    );
    assert_eq!(relay.drops("rogue_ra"), 1);
    assert!(relay.sent.is_empty(), "a guest RA must never be relayed");
}

#[test]
fn h26_uplink_ra_with_p_bit() {
    let mut relay = Relay::ready();
    // A distinctive Router Lifetime marks any copy of this RA that might leak through.
    let marked = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags(RaFlags::PROXY),
        router_lifetime: 4321,
        reachable_time: 0,
        retrans_timer: 0,
    };
    let f = emit_nd(
        ROUTER_MAC,
        Mac::ipv6_multicast(all_nodes()),
        router_ll(),
        all_nodes(),
        &NdMessage::RouterAdvert(marked),
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    relay.inject(UPLINK, &f);
    assert_eq!(relay.drops("ra_p_bit"), 1);
    relay.advance(Duration::from_secs(10));
    let mut downstream = relay.take(BR0);
    downstream.extend(relay.take(BR1));
    for frame in downstream {
        if let Ok(Parsed::Nd(p)) = parse_frame(&frame)
            && let NdMessage::RouterAdvert(ra) = p.message
        {
            assert_ne!(ra.router_lifetime, 4321, "the P-bit RA was relayed");
        }
    }
}

#[test]
fn h27_even_rdnss_and_short_rio() {
    let rdnss = OptionRepr::Raw(vec![
        25, 2, 0, 0, 0, 0, 0x0e, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
    ]);
    let mut rio = vec![24, 2, 128, 0, 0, 0, 0x0e, 0x10];
    rio.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
    for opt in [rdnss, OptionRepr::Raw(rio)] {
        let f = ra(
            ROUTER_MAC,
            router_ll(),
            0,
            &[OptionRepr::SourceLla(ROUTER_MAC), opt],
        );
        let mut relay = Relay::ready();
        relay.inject(UPLINK, &f);
        assert_eq!(relay.drops("bad_opt_len"), 1);
    }
}

#[test]
fn h28_ra_mtu_is_clamped_or_stripped() {
    for (advertised, expect_max) in [(9000u32, 1500u32), (1000, 0)] {
        let mut relay = Relay::ready();
        relay.inject(UPLINK, &uplink_ra(&[OptionRepr::Mtu(advertised)]));
        relay.advance(Duration::from_secs(4));
        let out = relay.take(BR0);
        let ras: Vec<_> = out
            .iter()
            .filter_map(|f| match parse_frame(f) {
                Ok(Parsed::Nd(p)) if matches!(p.message, NdMessage::RouterAdvert(_)) => Some(
                    p.options()
                        .filter_map(|o| match o {
                            ndprelay::wire::NdOption::Mtu(m) => Some(m),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect();
        assert!(!ras.is_empty(), "the RA must still be relayed");
        for mtus in ras {
            if expect_max == 0 {
                assert!(
                    mtus.is_empty(),
                    "MTU {advertised} below 1280 must be stripped, got {mtus:?}"
                );
            } else {
                assert!(
                    mtus.iter().all(|m| *m <= expect_max),
                    "MTU not clamped: {mtus:?}"
                );
            }
        }
    }
}

#[test]
fn h29_rs_from_unspecified_with_slla() {
    let rs = emit_nd(
        GUEST_MAC,
        Mac::ipv6_multicast("ff02::2".parse().unwrap()),
        Ipv6Addr::UNSPECIFIED,
        "ff02::2".parse().unwrap(),
        &NdMessage::RouterSolicit,
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    assert_dropped(BR0, &rs, "dad_slla");
}

fn redirect(src: Ipv6Addr, target: Ipv6Addr, dest: Ipv6Addr) -> Vec<u8> {
    emit_nd(
        ROUTER_MAC,
        GUEST_MAC,
        src,
        guest(),
        &NdMessage::Redirect {
            target_addr: target,
            dest_addr: dest,
        },
        &[],
    )
}

#[test]
fn h30_redirects() {
    let dest: Ipv6Addr = "2001:db8:2::5".parse().unwrap();
    let target: Ipv6Addr = "fe80::99".parse().unwrap();
    assert_dropped(
        UPLINK,
        &redirect(router_global(), target, dest),
        "redirect_src_not_ll",
    );
    let mut short = redirect(router_ll(), target, dest);
    set_payload_len(&mut short, 39);
    fix_csum(&mut short);
    assert_dropped(UPLINK, &short, "too_short");
    assert_dropped(
        UPLINK,
        &redirect(router_ll(), target, all_nodes()),
        "redirect_mcast_dst",
    );
    assert_dropped(
        UPLINK,
        &redirect(router_ll(), router_global(), dest),
        "redirect_bad_target",
    );
    assert_dropped(
        BR0,
        &redirect(guest_ll(), target, dest),
        "redirect_from_downstream",
    );
}

/// Wraps the ICMPv6 part of `nd` behind `headers` (each a complete extension header whose
/// next-header byte the caller set), keeping the ND checksum valid.
fn behind(nd: &[u8], first_next_header: u8, headers: &[u8]) -> Vec<u8> {
    let mut payload = headers.to_vec();
    payload.extend_from_slice(&nd[ICMP..]);
    emit_ipv6(
        ROUTER_MAC,
        Mac::ipv6_multicast(dst_of(nd)),
        src_of(nd),
        dst_of(nd),
        first_next_header,
        255,
        &payload,
    )
}

#[test]
fn h31_fragmented_nd() {
    let nd = ns_from_guest();
    // Atomic fragment: offset 0, M = 0.
    let atomic = behind(&nd, 44, &[58, 0, 0, 0, 0, 0, 0, 1]);
    assert_dropped(BR0, &atomic, "frag_nd");
    // First fragment of an RA whose ICMPv6 header is not in it (only 4 bytes, M = 1).
    let ra = uplink_ra(&[]);
    let mut first = vec![58, 0, 0, 1, 0, 0, 0, 2];
    first.extend_from_slice(&ra[ICMP..ICMP + 4]);
    let f = emit_ipv6(
        ROUTER_MAC,
        Mac::ipv6_multicast(all_nodes()),
        router_ll(),
        all_nodes(),
        44,
        255,
        &first,
    );
    assert_dropped(UPLINK, &f, "frag_nd");
}

#[test]
fn h32_nd_behind_extension_headers() {
    let nd = ns_from_guest();
    let dest_opts = [58, 0, 1, 4, 0, 0, 0, 0];
    assert_dropped(BR0, &behind(&nd, 60, &dest_opts), "ext_hdr_nd");
    let mut chain = Vec::new();
    for i in 0..40 {
        let next = if i == 39 { 58 } else { 60 };
        chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    assert_dropped(BR0, &behind(&nd, 60, &chain), "ext_hdr_nd");
    let unknown = [253, 0, 1, 4, 0, 0, 0, 0];
    assert_dropped(BR0, &behind(&nd, 60, &unknown), "ext_hdr_nd");
}
