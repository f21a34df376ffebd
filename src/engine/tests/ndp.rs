//! NS/NA relay, DAD, static prefixes, fast path, pending solicitations and floods.

use super::*;
use crate::engine::{BindingState, PrefixMode, PrefixRule, RaSource};
use crate::wire::NdOption;
use std::net::Ipv6Addr;

#[test]
fn upstream_ns_for_unknown_target_goes_to_every_downstream_port_with_slla_rewritten() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.take(UP).is_empty(), "never back out the ingress port");
    for p in [D1, D2] {
        let out = h.take(p);
        assert_eq!(out.len(), 1, "one copy on {p:?}");
        let pkt = out[0].nd();
        assert_eq!(pkt.eth_src, port_mac(p));
        assert_eq!(pkt.slla, Some(port_mac(p)), "SLLA = egress MAC");
        assert_eq!(pkt.src_addr, router_ll(), "IPv6 source kept");
        assert_eq!(pkt.eth_dst, Mac::ipv6_multicast(solicited_node(addr(10))));
        assert_eq!(pkt.hop_limit, 255);
    }
    assert_eq!(h.count("relayed_ns"), 2);
}

#[test]
fn na_returns_to_the_solicitor_with_tlla_rewritten_and_owner_flags_kept() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    h.clear();
    for flags in [SOLICITED, NaFlags::ROUTER | NaFlags::SOLICITED] {
        let f = na(
            gmac(10),
            D1_MAC,
            addr(10),
            router_ll(),
            flags,
            addr(10),
            Some(gmac(10)),
        );
        h.inject(D1, &f);
        let out = h.take(UP);
        assert_eq!(out.len(), 1);
        let pkt = out[0].nd();
        assert_eq!(pkt.eth_dst, ROUTER_MAC, "to the solicitor's MAC");
        assert_eq!(pkt.eth_src, UP_MAC);
        assert_eq!(pkt.tlla, Some(UP_MAC), "TLLA = egress MAC");
        assert_eq!(
            pkt.message,
            NdMessage::NeighborAdvert {
                flags,
                target_addr: addr(10)
            },
            "R/S/O as the owner set them"
        );
        assert!(h.sent.is_empty(), "nothing else sent: {:?}", h.sent);
    }
    assert_eq!(h.count("relayed_na"), 2);
}

#[test]
fn bound_target_gets_the_ns_only_on_its_port_and_is_never_answered_from_the_cache() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 1);
    assert!(h.take(D2).is_empty(), "bound: only the bound port");
    assert!(h.take(UP).is_empty(), "RFC 4389: no answer from the cache");
    assert_eq!(h.count("answered_ns"), 0);
}

#[test]
fn ns_for_a_bound_target_is_relayed_every_time_under_its_own_budget() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.clear();
    // A router asking faster than RetransTimer still gets every NS through: a bound
    // target's NS goes to one port only, so dropping it only loses an answer.
    for _ in 0..5 {
        h.inject(UP, &ns_from_router(addr(10)));
        h.advance(Duration::from_millis(100));
    }
    assert_eq!(
        h.take(D1).iter().filter(|s| s.is_ns_for(addr(10))).count(),
        5
    );
    assert_eq!(h.count("drop_rate_limited"), 0);
    // A flood for the bound target is capped by the known-target budget (a multiple of
    // ns_rate and ns_burst), not relayed without end.
    h.clear();
    let burst = u64::from(config().tunables.ns_burst * crate::engine::KNOWN_NS_FACTOR);
    for _ in 0..burst + 500 {
        h.inject(UP, &ns_from_router(addr(10)));
    }
    let relayed = h.take(D1).len() as u64;
    assert!(
        relayed >= burst && relayed < burst + 50,
        "relayed {relayed} of {}",
        burst + 500
    );
    assert!(h.count("drop_rate_limited") >= 450);
}

#[test]
fn a_scan_of_unknown_targets_does_not_starve_a_bound_target() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.clear();
    let mut answered = 0;
    for round in 0..20u16 {
        // 1000 random-target NS every 50 ms (20k NS/s), far over the unknown budget.
        for i in 0..1000u16 {
            let target = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0x7, round, i, 0x1);
            h.inject(UP, &ns_from_router(target));
        }
        h.clear();
        h.inject(UP, &ns_from_router(addr(10)));
        answered += h.take(D1).iter().filter(|s| s.is_ns_for(addr(10))).count();
        h.advance(Duration::from_millis(50));
    }
    assert_eq!(
        answered, 20,
        "every NS for the known guest is relayed during the scan"
    );
    assert!(
        h.count("drop_rate_limited") > 10_000,
        "the scan itself is limited"
    );
}

#[test]
fn unicast_nud_ns_goes_to_the_bound_port_with_the_guest_mac() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let f = ns(
        ROUTER_MAC,
        UP_MAC,
        router_ll(),
        addr(10),
        addr(10),
        Some(ROUTER_MAC),
    );
    h.inject(UP, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(pkt.eth_dst, gmac(10));
    assert_eq!(pkt.dst_addr, addr(10));
    assert_eq!(pkt.slla, Some(D1_MAC));
    assert!(h.sent.is_empty());
}

#[test]
fn na_reaches_an_unbound_solicitor_through_the_pending_table() {
    let mut h = Harness::ready(config());
    // A unicast-source NS without SLLA: the solicitor is not learned as a binding.
    let asker = addr(0x99);
    let f = ns(
        UPHOST_MAC,
        Mac::ipv6_multicast(solicited_node(addr(10))),
        asker,
        solicited_node(addr(10)),
        addr(10),
        None,
    );
    h.inject(UP, &f);
    assert!(h.binding(asker).is_none());
    h.clear();
    let f = na(
        gmac(10),
        D1_MAC,
        addr(10),
        asker,
        SOLICITED,
        addr(10),
        Some(gmac(10)),
    );
    h.inject(D1, &f);
    let out = h.take(UP);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].nd().eth_dst,
        UPHOST_MAC,
        "the MAC the solicitor asked from"
    );
    // Without any record of the destination the NA goes nowhere.
    let f = na(
        gmac(10),
        D1_MAC,
        addr(10),
        addr(0x98),
        SOLICITED,
        addr(10),
        Some(gmac(10)),
    );
    h.inject(D1, &f);
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_unsolicited"), 1);
}

#[test]
fn downstream_ns_goes_up_and_to_the_port_where_the_target_is_bound() {
    let mut h = Harness::ready(config());
    h.bind_guest(20, D2);
    // Guest 10 on D1 resolves the router (unbound): uplink and D2.
    let group = solicited_node(router_global());
    let f = ns(
        gmac(10),
        Mac::ipv6_multicast(group),
        addr(10),
        group,
        router_global(),
        Some(gmac(10)),
    );
    h.inject(D1, &f);
    let up = h.take(UP);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].nd().slla, Some(UP_MAC));
    assert!(h.take(D1).is_empty());
    // Learned from the SLLA on the ingress port.
    assert_eq!(
        h.binding(addr(10)).map(|b| (b.port, b.state)),
        Some((D1, BindingState::Stale))
    );
    h.clear();
    // Guest 10 resolves guest 20 (bound on D2): only D2.
    let group = solicited_node(addr(20));
    let f = ns(
        gmac(10),
        Mac::ipv6_multicast(group),
        addr(10),
        group,
        addr(20),
        Some(gmac(10)),
    );
    h.inject(D1, &f);
    assert_eq!(h.take(D2).len(), 1);
    assert!(h.sent.is_empty(), "bound elsewhere: only that port");
    // Guest 20 answers guest 10 through the relay.
    let f = na(
        gmac(20),
        D2_MAC,
        addr(20),
        addr(10),
        SOLICITED,
        addr(20),
        Some(gmac(20)),
    );
    h.inject(D2, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nd().eth_dst, gmac(10));
    assert_eq!(out[0].nd().tlla, Some(D1_MAC));
}

#[test]
fn ns_for_a_target_on_the_askers_own_segment_is_not_relayed() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let group = solicited_node(addr(10));
    let f = ns(
        gmac(11),
        Mac::ipv6_multicast(group),
        addr(11),
        group,
        addr(10),
        Some(gmac(11)),
    );
    h.inject(D1, &f);
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_ingress_port"), 1);
}

#[test]
fn link_local_targets_follow_the_ra_source_policy() {
    // KeepRouter: the router's link-local (seen in its RA) is proxied for guests.
    let mut h = Harness::ready(config());
    let group = solicited_node(router_ll());
    let ask = |h: &mut Harness, target| {
        let f = ns(
            gmac(10),
            Mac::ipv6_multicast(group),
            gmac(10).link_local(),
            solicited_node(target),
            target,
            Some(gmac(10)),
        );
        h.inject(D1, &f);
    };
    ask(&mut h, router_ll());
    assert_eq!(h.take(UP).len(), 1, "router link-local relayed upstream");
    let f = na(
        ROUTER_MAC,
        UP_MAC,
        router_ll(),
        gmac(10).link_local(),
        NaFlags::ROUTER | NaFlags::SOLICITED | NaFlags::OVERRIDE,
        router_ll(),
        Some(ROUTER_MAC),
    );
    h.inject(UP, &f);
    let back = h.take(D1);
    assert_eq!(back.len(), 1, "the router's answer comes back");
    assert_eq!(back[0].nd().tlla, Some(D1_MAC));
    h.clear();
    // Any other link-local is not proxied.
    let other: Ipv6Addr = "fe80::77".parse().unwrap();
    ask(&mut h, other);
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_not_proxied"), 1);

    // RaSource::Relay: guests use our link-local; no link-local target is proxied.
    let mut cfg = config();
    cfg.ra_source = RaSource::Relay;
    let mut h = Harness::ready(cfg);
    ask(&mut h, router_ll());
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_not_proxied"), 1);
    // ... and an NS for the relay's own link-local is answered (it is the router).
    let f = ns(
        gmac(10),
        Mac::ipv6_multicast(solicited_node(port_ll(D1))),
        gmac(10).link_local(),
        solicited_node(port_ll(D1)),
        port_ll(D1),
        Some(gmac(10)),
    );
    h.inject(D1, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(
        (pkt.src_addr, pkt.tlla, pkt.eth_dst),
        (port_ll(D1), Some(D1_MAC), gmac(10))
    );
}

#[test]
fn ns_for_a_target_outside_every_prefix_is_dropped() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router("2001:db8:9::1".parse().unwrap()));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_not_proxied"), 1);
}

#[test]
fn dad_is_relayed_everywhere_never_learned_never_answered() {
    let mut cfg = config();
    cfg.fast_path = Some(Duration::from_secs(60));
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    // Even with the fast path on and a fresh binding, DAD is relayed, not answered.
    h.inject(UP, &dad(UPHOST_MAC, addr(10)));
    assert!(h.take(UP).is_empty(), "DAD never answered from the cache");
    let d1 = h.take(D1);
    let d2 = h.take(D2);
    assert_eq!((d1.len(), d2.len()), (1, 1));
    let pkt = d1[0].nd();
    assert!(pkt.src_addr.is_unspecified() && pkt.slla.is_none());
    assert_eq!(pkt.eth_src, D1_MAC);
    // A guest's DAD goes up and to the other downstream port; nothing is learned.
    let before = h.engine.binding_count();
    h.inject(D2, &dad(gmac(30), addr(30)));
    assert_eq!(h.take(UP).len(), 1);
    assert_eq!(h.take(D1).len(), 1);
    assert!(h.take(D2).is_empty());
    assert_eq!(h.engine.binding_count(), before);
    assert!(h.binding(addr(30)).is_none());
    assert_eq!(h.count("relayed_dad"), 4);
    assert_eq!(h.count("answered_ns"), 0);
}

#[test]
fn dad_conflict_with_an_upstream_address_makes_the_guests_dad_fail() {
    let mut h = Harness::ready(config());
    let used = addr(0x50);
    h.inject(D1, &dad(gmac(10), used));
    assert_eq!(h.take(UP).len(), 1);
    h.clear();
    // The upstream owner defends: NA to ff02::1 (S=0, O=1).
    let f = na_to_all_nodes(UPHOST_MAC, UNSOLICITED_O, used);
    h.inject(UP, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1, "the defence reaches the guest");
    let pkt = out[0].nd();
    assert!(out[0].is_na_for(used));
    assert_eq!(pkt.tlla, Some(D1_MAC), "TLLA rewritten");
    assert_eq!(pkt.dst_addr, all_nodes());
    assert_eq!(h.take(D2).len(), 1);
    // Nobody asked for it, so nothing is learned from it (RFC 4861 §7.2.5).
    assert_eq!(h.binding(used), None);
    assert_eq!(h.count("unsolicited_na_ignored"), 1);
}

#[test]
fn static_prefix_is_answered_at_once_from_the_uplink_with_o_clear() {
    let mut cfg = config();
    cfg.prefixes.push(PrefixRule {
        prefix: "2001:db8:2::/64".parse().unwrap(),
        mode: PrefixMode::Static,
    });
    let mut h = Harness::ready(cfg);
    let target: Ipv6Addr = "2001:db8:2::1234".parse().unwrap();
    h.inject(UP, &ns_from_router(target));
    let out = h.take(UP);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(
        pkt.message,
        NdMessage::NeighborAdvert {
            flags: NaFlags::SOLICITED,
            target_addr: target
        },
        "solicited proxy answer, O=0 (RFC 4861 §7.2.8)"
    );
    assert_eq!(pkt.tlla, Some(UP_MAC));
    assert_eq!((pkt.src_addr, pkt.dst_addr), (target, router_ll()));
    assert_eq!((pkt.eth_src, pkt.eth_dst), (UP_MAC, ROUTER_MAC));
    assert!(h.sent.is_empty(), "static targets are not relayed");
    assert_eq!(h.count("answered_ns"), 1);
    // Relay-mode prefix next to it still relays.
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.take(UP).is_empty());
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn fast_path_off_by_default_on_answers_recent_bindings_and_still_relays() {
    // Off: relay only.
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.take(UP).is_empty());
    assert_eq!(h.take(D1).len(), 1);

    let mut cfg = config();
    cfg.fast_path = Some(Duration::from_secs(5));
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    h.inject(UP, &ns_from_router(addr(10)));
    let ans = h.take(UP);
    assert_eq!(ans.len(), 1, "answered at once");
    let pkt = ans[0].nd();
    assert!(
        matches!(pkt.message, NdMessage::NeighborAdvert { flags, target_addr }
        if target_addr == addr(10) && flags.contains(NaFlags::SOLICITED) && !flags.contains(NaFlags::OVERRIDE))
    );
    assert_eq!(pkt.tlla, Some(UP_MAC));
    assert_eq!(
        h.take(D1).len(),
        1,
        "still relayed so the binding re-verifies"
    );
    // Outside the window: relay only.
    h.advance(Duration::from_secs(6));
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.take(UP).is_empty(), "binding no longer recent");
    assert_eq!(h.take(D1).len(), 1);
    // A learned-but-unconfirmed binding is never used.
    let group = solicited_node(router_global());
    h.inject(
        D2,
        &ns(
            gmac(20),
            Mac::ipv6_multicast(group),
            addr(20),
            group,
            router_global(),
            Some(gmac(20)),
        ),
    );
    h.clear();
    h.inject(UP, &ns_from_router(addr(20)));
    assert!(h.take(UP).is_empty());
}

#[test]
fn ns_for_a_reachable_target_goes_to_its_mac_and_otherwise_to_the_group() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let group = solicited_node(addr(10));
    h.inject(UP, &ns_from_router(addr(10)));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(
        pkt.eth_dst,
        gmac(10),
        "only the confirmed owner gets the frame"
    );
    assert_eq!(pkt.dst_addr, group, "IPv6 destination kept");
    assert_eq!(pkt.slla, Some(D1_MAC));
    assert!(h.take(D2).is_empty());
    // An NA without O from another MAC leaves the binding STALE: its MAC may be old, so
    // the next NS goes to the group again.
    let f = na_to_all_nodes(gmac(11), NO_FLAGS, addr(10));
    h.inject(D1, &f);
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Stale);
    h.clear();
    h.advance(Duration::from_secs(1));
    h.inject(UP, &ns_from_router(addr(10)));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nd().eth_dst, Mac::ipv6_multicast(group));
}

#[test]
fn ns_unanswered_at_the_bound_mac_for_a_retrans_timer_goes_to_the_group_again() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let group = Mac::ipv6_multicast(solicited_node(addr(10)));
    // The guest changed its MAC without telling anyone: NS to the old MAC go unanswered.
    h.inject(UP, &ns_from_router(addr(10)));
    h.advance(Duration::from_millis(500));
    h.inject(UP, &ns_from_router(addr(10)));
    let dsts: Vec<Mac> = h.take(D1).iter().map(|s| s.nd().eth_dst).collect();
    assert_eq!(dsts, [gmac(10), gmac(10)], "within a RetransTimer");
    h.advance(Duration::from_millis(500));
    h.inject(UP, &ns_from_router(addr(10)));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nd().eth_dst, group, "unanswered for a RetransTimer");
    // The guest answers the group copy under its new MAC; NS go to that MAC again.
    h.inject(D1, &na_to_router(gmac(20), D1, addr(10)));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!((b.mac, b.state), (gmac(20), BindingState::Reachable));
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1)[0].nd().eth_dst, gmac(20));
}

#[test]
fn fast_path_answers_every_ns_but_relays_one_per_retrans_timer() {
    let mut cfg = config();
    cfg.fast_path = Some(Duration::from_secs(5));
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    // Ten NS within 900 ms: ten answers, one re-verification NS to the guest.
    for _ in 0..10 {
        h.inject(UP, &ns_from_router(addr(10)));
        h.advance(Duration::from_millis(90));
    }
    assert_eq!(h.take(UP).len(), 10, "every NS answered from the binding");
    assert_eq!(
        h.take(D1).len(),
        1,
        "one NS relayed so the binding re-verifies"
    );
    // A RetransTimer after that relay, the next NS re-verifies again.
    h.advance(Duration::from_millis(200));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(UP).len(), 1);
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn floods_of_a_batch_wait_behind_relays_for_bound_targets() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.clear();
    // A batch as a driver reads it: a scan NS (unknown target, flooded to D1 and D2)
    // and then an NS for the bound guest, drained without floods after each frame.
    let mut order = Vec::new();
    for target in [addr(99), addr(10)] {
        h.engine.handle_frame(h.now, UP, &ns_from_router(target));
        while let Some(a) = h.engine.poll_action_before_floods() {
            order.push(a);
        }
    }
    while let Some(a) = h.engine.poll_action() {
        order.push(a);
    }
    let sent: Vec<(PortId, Ipv6Addr)> = order
        .into_iter()
        .filter_map(|a| match a {
            Action::Transmit { port, frame } => Some(Sent { port, frame }),
            _ => None,
        })
        .filter_map(|s| match s.nd().message {
            NdMessage::NeighborSolicit { target_addr } => Some((s.port, target_addr)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [(D1, addr(10)), (D1, addr(99)), (D2, addr(99))],
        "the bound guest's NS first, the scan's flood after"
    );
}

#[test]
fn one_ns_per_target_per_retrans_timer_then_negative_cache() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.sent.len(), 2);
    h.clear();
    // Retransmission within RetransTimer: suppressed.
    h.advance(Duration::from_millis(500));
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_rate_limited"), 1);
    // After RetransTimer: relayed again, once per port.
    h.advance(Duration::from_millis(600));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.sent.len(), 2);
    h.clear();
    // Nobody answers within max_probes × RetransTimer: negative cache.
    h.advance(Duration::from_secs(3));
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_negative_cache"), 1);
    assert_eq!(h.count("pending_failed"), 1);
    assert!(
        h.binding(addr(10)).is_none(),
        "unanswered targets create no binding"
    );
    // The negative entry expires and the target is tried again.
    h.advance(Duration::from_secs(4));
    assert_eq!(h.engine.pending_count(), 0);
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.sent.len(), 2);
}

#[test]
fn flood_of_100k_targets_stays_at_the_caps_and_a_known_guest_still_resolves() {
    let mut cfg = config();
    cfg.emit_events = false;
    let caps = cfg.tunables.clone();
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    let mut guest_relayed = 0;
    let mut max_pending = 0;
    let mut relayed_per_port = [0usize; 3];
    for i in 0..100_000u32 {
        h.now += Duration::from_micros(100); // 10 s of flood at 10 000 NS/s
        let target = Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0001_0000_0000u128 | u128::from(i));
        h.engine.handle_frame(h.now, UP, &ns_from_router(target));
        if i % 10_000 == 0 {
            // The real router keeps resolving the known guest during the flood.
            h.engine.handle_frame(h.now, UP, &ns_from_router(addr(10)));
        }
        if i % 1000 == 0 {
            let t = h.now;
            h.engine.handle_timeout(t);
        }
        h.drain();
        for s in h.sent.drain(..) {
            if s.is_ns_for(addr(10)) {
                guest_relayed += 1;
            } else {
                relayed_per_port[s.port.index()] += 1;
            }
        }
        max_pending = max_pending.max(h.engine.pending_count());
    }
    assert_eq!(guest_relayed, 10, "the known guest is resolved throughout");
    assert!(
        max_pending <= caps.max_pending_per_port,
        "pending {max_pending}"
    );
    assert!(
        h.engine.binding_count() <= 2,
        "no binding for flood targets"
    );
    // The global budget: burst + rate × 10 s, per port, at most.
    let budget = (caps.ns_burst + caps.ns_rate * 10) as usize;
    assert!(relayed_per_port[1] <= budget, "{relayed_per_port:?}");
    assert_eq!(relayed_per_port[0], 0);
    assert_eq!(relayed_per_port[1], relayed_per_port[2]);
    assert!(h.count("drop_rate_limited") + h.count("drop_table_full") > 80_000);
    // The guest answers and the answer reaches the router.
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert_eq!(h.take(UP).len(), 1);
    // Recovery: the flood's entries age out.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.engine.pending_count(), 0);
}

#[test]
fn relayed_ns_carries_unknown_options_and_fits_the_mtu_or_is_dropped() {
    let mut cfg = config();
    cfg.ports[2].mtu = 1280;
    let mut h = Harness::ready(cfg);
    let group = solicited_node(addr(10));
    let big = OptionRepr::Raw({
        let mut v = vec![200u8, 160];
        v.resize(1280, 0xab);
        v
    });
    let f = emit_nd(
        ROUTER_MAC,
        Mac::ipv6_multicast(group),
        router_ll(),
        group,
        &NdMessage::NeighborSolicit {
            target_addr: addr(10),
        },
        &[OptionRepr::SourceLla(ROUTER_MAC), big],
    );
    h.inject(UP, &f);
    let d1 = h.take(D1);
    assert_eq!(d1.len(), 1, "fits 1500");
    assert!(
        d1[0]
            .nd()
            .options()
            .any(|o| matches!(o, NdOption::Other { kind: 200, bytes } if bytes.len() == 1280))
    );
    assert!(
        h.take(D2).is_empty(),
        "1280 is too small: dropped, never fragmented"
    );
    assert_eq!(h.count("drop_mtu_exceeded"), 1);
}

#[test]
fn upstream_dad_for_a_guest_address_is_defended_by_the_guest() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.inject(UP, &dad(UPHOST_MAC, addr(10)));
    assert_eq!(h.take(D1).len(), 1);
    h.clear();
    let f = na_to_all_nodes(gmac(10), UNSOLICITED_O, addr(10));
    h.inject(D1, &f);
    let up = h.take(UP);
    assert_eq!(up.len(), 1, "the defence reaches the uplink");
    assert_eq!(
        (up[0].nd().tlla, up[0].nd().eth_src),
        (Some(UP_MAC), UP_MAC)
    );
    assert_eq!(h.binding(addr(10)).map(|b| b.port), Some(D1));
    assert_eq!(h.count("binding_conflict"), 0);
}

#[test]
fn relay_decisions_are_reported_as_events() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.events.contains(&Event::Relayed {
        from: UP,
        to: vec![D1, D2],
        message: "NS",
        addr: addr(10),
    }));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert!(h.events.contains(&Event::Binding {
        addr: addr(10),
        port: D1,
        mac: gmac(10),
        state: BindingState::Reachable,
    }));
    assert!(h.events.contains(&Event::Relayed {
        from: D1,
        to: vec![UP],
        message: "NA",
        addr: addr(10),
    }));
}

#[test]
fn ns_for_the_relays_own_link_local_is_answered_only_where_no_kernel_is() {
    // A guest resolving the relay's link-local on D1 (its router under RaSource::Relay).
    let ask = |h: &mut Harness| {
        let target = port_ll(D1);
        let group = solicited_node(target);
        h.inject(
            D1,
            &ns(
                gmac(10),
                Mac::ipv6_multicast(group),
                addr(10),
                group,
                target,
                Some(gmac(10)),
            ),
        );
    };
    // The simulator: no kernel, the engine answers as the port's stack would.
    let mut h = Harness::ready(config());
    h.clear();
    ask(&mut h);
    let answers: Vec<_> = h
        .take(D1)
        .into_iter()
        .filter(|s| s.is_na_for(port_ll(D1)))
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].nd().tlla, Some(D1_MAC));
    // A real host: the kernel owns the address and answers; the relay stays silent.
    let mut cfg = config();
    cfg.answer_own_link_local = false;
    let mut h = Harness::ready(cfg);
    h.clear();
    ask(&mut h);
    assert!(
        h.sent.is_empty(),
        "a second answer next to the kernel's: {:?}",
        h.sent.len()
    );
    assert_eq!(h.count("left_to_host"), 1);
    assert_eq!(h.count("answered_ns"), 0);
}
