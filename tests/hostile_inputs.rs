//! Every hostile input of NDP-REFERENCE §5 fed through the public engine API.
//!
//! Each test builds the frame, hands it to a three-port relay (uplink, br0, br1) and
//! asserts the named `drop_<reason>` counter, or, for inputs that must be relayed, what
//! went out. A valid twin of each broken frame is relayed elsewhere in this file, so
//! a counter can only move because of the broken field.

mod common;

use std::net::Ipv6Addr;

use common::*;

use ndprelay::engine::{Action, Engine, PortId};
use ndprelay::time::{Duration, Instant};
use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, Parsed, RaFlags, RouterAdvert, emit_nd, parse_frame,
    solicited_node,
};

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
        let mut config = three_port_config();
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
                // The in-kernel programs are off in these configs.
                Action::KernelAnswer { .. }
                | Action::KernelForget { .. }
                | Action::KernelRelayNs { .. }
                | Action::KernelRelayNa { .. }
                | Action::KernelForgetRelays
                | Action::Event(_) => {}
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

/// Runs every corpus frame of reference row `id` through a fresh relay.
fn assert_case(id: &str) {
    let cases: Vec<_> = malformed_corpus()
        .into_iter()
        .filter(|c| c.id == id)
        .collect();
    assert!(!cases.is_empty(), "no corpus frame for {id}");
    for c in cases {
        assert_dropped(c.port, &c.frame, c.reason);
    }
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
    assert_case("h01");
}

#[test]
fn h02_code_1() {
    assert_case("h02");
}

#[test]
fn h03_bad_checksum_and_zero_checksum() {
    assert_case("h03");
}

#[test]
fn h04_icmp_length_23() {
    assert_case("h04");
}

#[test]
fn h05_payload_length_beyond_frame() {
    assert_case("h05");
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
    assert_case("h07");
}

#[test]
fn h08_dad_to_unicast_destination() {
    assert_case("h08");
}

#[test]
fn h09_dad_with_slla() {
    assert_case("h09");
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
    assert_case("h11");
}

#[test]
fn h12_last_option_overruns() {
    assert_case("h12");
}

#[test]
fn h13_stray_byte_after_options() {
    assert_case("h13");
}

#[test]
fn h14_slla_length_two_units() {
    assert_case("h14");
}

#[test]
fn h15_two_different_sllas() {
    assert_case("h15");
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
    assert_case("h18");
}

#[test]
fn h19_na_multicast_target() {
    assert_case("h19");
}

#[test]
fn h20_uplink_na_claiming_a_guest() {
    let mut relay = Relay::ready();
    relay.bind_guest();
    let flags = NaFlags::OVERRIDE;
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
    let flags = NaFlags::OVERRIDE;
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
    relay.advance(Duration::from_millis(3_500));
    let probes = probes.len() + relay.take(BR0).len();
    assert!(probes >= 1, "the old port must be probed");
    assert_eq!(
        on(&relay),
        Some(BR1),
        "binding must move once br0 failed the probe"
    );
    // The claim itself is no confirmation: the claimant is probed on br1 and keeps the
    // address only by answering (an unanswered claim would be removed).
    let asked = relay
        .take(BR1)
        .into_iter()
        .filter(|f| f.len() > 60 && f[54] == 135)
        .count();
    assert_eq!(asked, 1, "the new port is probed");
    let mut answer = na(
        OTHER_MAC,
        guest(),
        BR1_MAC.link_local(),
        NaFlags::SOLICITED | NaFlags::OVERRIDE,
        guest(),
        OTHER_MAC,
    );
    // The builder addresses unicast NAs to br0; this one goes to br1's MAC.
    answer[0..6].copy_from_slice(&BR1_MAC.0);
    relay.inject(BR1, &answer);
    relay.advance(Duration::from_secs(5));
    assert_eq!(
        on(&relay),
        Some(BR1),
        "a verified claimant keeps the address"
    );
}

#[test]
fn h22_relay_mac_as_tlla_or_source() {
    assert_case("h22");
}

#[test]
fn h23_uplink_ra_from_global_source() {
    assert_case("h23");
}

#[test]
fn h24_ra_icmp_length_15() {
    assert_case("h24");
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
        flags: RaFlags::PROXY,
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
    assert_case("h27");
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
    assert_case("h29");
}

#[test]
fn h30_redirects() {
    assert_case("h30");
}

#[test]
fn h31_fragmented_nd() {
    assert_case("h31");
}

#[test]
fn h32_nd_behind_extension_headers() {
    assert_case("h32");
}

#[test]
fn vlan_tagged_nd_is_dropped_not_learned_nor_relayed() {
    assert_case("vlan");
    // Also where the untagged twin binds: a tagged NA answering a relayed NS.
    let mut relay = Relay::ready();
    relay.inject(UPLINK, &ns_from_router(guest()));
    relay.sent.clear();
    let guest_bound = |relay: &Relay| {
        let bound = relay.engine.snapshot(relay.now).bindings;
        bound.iter().any(|b| b.addr == guest())
    };
    relay.inject(BR0, &vlan_tagged(&na_from_guest(true), 0x8100, 7));
    assert_eq!(relay.drops("vlan_tagged"), 1);
    assert!(relay.sent.is_empty(), "{:?}", relay.sent);
    assert!(!guest_bound(&relay), "the tagged NA bound the guest");
    relay.inject(BR0, &na_from_guest(true));
    assert!(guest_bound(&relay), "the untagged twin binds");
    assert_eq!(relay.take(UPLINK).len(), 1, "the untagged twin is relayed");
}
