//! Issue 14: what one hostile guest (or uplink neighbour) can cost. Each test replays an
//! attack that worked before the fix and checks that only the sender pays.

use super::*;
use crate::engine::{BindingState, DataPlane, Tunables};

/// An unsolicited NA with S=1 from guest MAC `mac` for `target`, sent to the relay's
/// link-local on `port` as if answering a probe the relay never sent.
fn forged_probe_answer(mac: Mac, port: PortId, target: Ipv6Addr) -> Vec<u8> {
    na(
        mac,
        port_mac(port),
        target,
        port_ll(port),
        SOLICITED,
        target,
        Some(mac),
    )
}

/// An NS for `target` from `src` (spoofed) with `mac` as L2 source and SLLA.
fn spoofed_ns(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    ns(
        mac,
        Mac::ipv6_multicast(group),
        src,
        group,
        target,
        Some(mac),
    )
}

fn routes_installed(h: &Harness) -> usize {
    h.engine
        .snapshot(h.now)
        .bindings
        .iter()
        .filter(|b| b.routed)
        .count()
}

#[test]
fn unsolicited_nas_to_our_link_local_create_no_binding_and_no_route() {
    let mut h = Harness::ready(config());
    h.bind_guest(3, D1);
    // Issue 14 item 2: 5000 NAs with S=1 for random targets, to the relay's link-local.
    for i in 0..5000u16 {
        h.inject(D1, &forged_probe_answer(gmac(66), D1, addr(0x1000 + i)));
    }
    assert_eq!(h.engine.binding_count(), 2, "router + the real guest");
    assert_eq!(routes_installed(&h), 1);
    assert_eq!(h.count("unsolicited_na_ignored"), 5000);
    assert_eq!(h.count("routes_installed"), 1);
    // A guest that boots afterwards binds and is routed as usual.
    h.bind_guest(4, D1);
    assert_eq!(routes_installed(&h), 2);
}

#[test]
fn an_unsolicited_s_flag_does_not_confirm_a_binding_the_relay_did_not_probe() {
    let mut h = Harness::ready(config());
    // A guest claims an address with an NS SLLA (STALE, unrouted, as RFC 4861 §7.2.3
    // says), then "confirms" it itself: no route follows.
    h.inject(D1, &spoofed_ns(gmac(66), addr(0x77), router_global()));
    assert_eq!(
        h.binding(addr(0x77)).map(|b| b.state),
        Some(BindingState::Stale)
    );
    h.inject(D1, &forged_probe_answer(gmac(66), D1, addr(0x77)));
    let b = h.binding(addr(0x77)).unwrap();
    assert_ne!(b.state, BindingState::Reachable);
    assert!(!b.routed);
    // Unicast NAs nobody asked for are not relayed either (no flood to the router).
    h.clear();
    for i in 0..100u16 {
        h.inject(D1, &na_to_router(gmac(66), D1, addr(0x2000 + i)));
    }
    assert!(h.take(UP).is_empty());
    assert_eq!(h.count("drop_unsolicited"), 100);
}

#[test]
fn one_mac_fills_only_its_own_share_of_the_table() {
    let mut cfg = config();
    cfg.tunables.max_bindings_per_mac = 8;
    let mut h = Harness::ready(cfg);
    // Spoofed NS sources from one MAC: each would be a STALE binding.
    for i in 0..1000u16 {
        h.inject(D1, &spoofed_ns(gmac(66), addr(0x3000 + i), router_global()));
    }
    let snap = h.engine.snapshot(h.now);
    let by_attacker = snap.bindings.iter().filter(|b| b.mac == gmac(66)).count();
    assert_eq!(by_attacker, 8);
    // The attacker's own entries made room for each other; nobody else's were touched.
    assert!(h.count("bindings_evicted") >= 990);
    h.bind_guest(3, D1);
    h.bind_guest(4, D2);
    assert_eq!(routes_installed(&h), 2);
}

#[test]
fn no_single_port_holds_the_whole_table() {
    let mut cfg = config();
    cfg.tunables.max_bindings = 64;
    cfg.tunables.max_bindings_per_port = 48;
    let mut h = Harness::ready(cfg);
    // Many MACs on D1 (a MAC-cycling guest): D1 stops at its share.
    for i in 0..2000u16 {
        let mac = Mac([0x52, 0x54, 1, 0, (i >> 8) as u8, i as u8]);
        h.inject(D1, &spoofed_ns(mac, addr(0x4000 + i), router_global()));
    }
    let on_d1 = |h: &Harness| {
        h.engine
            .snapshot(h.now)
            .bindings
            .iter()
            .filter(|b| b.port == D1)
            .count()
    };
    assert_eq!(on_d1(&h), 48);
    // D2's guests still get in.
    for i in 1..=10u8 {
        h.bind_guest(i, D2);
    }
    assert_eq!(routes_installed(&h), 10);
}

#[test]
fn one_ports_ns_flood_is_held_to_its_own_budget() {
    let mut h = Harness::ready(config());
    h.bind_guest(3, D2);
    h.clear();
    // Issue 14 item 5: a guest on D1 solicits random targets from spoofed sources.
    let mut up = 0;
    for i in 0..2000u32 {
        let t = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, (i >> 16) as u16 + 1, i as u16);
        let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 1, 0, i as u16);
        h.inject(D1, &spoofed_ns(gmac(66), src, t));
        if i % 100 == 99 {
            h.advance(Duration::from_millis(100));
        }
        up += h.take(UP).len();
        h.clear();
    }
    // 2 s at 100/s plus the burst of 200.
    assert!(up <= 200 + 2 * 100 + 1, "{up} NS reached the uplink");
    assert!(up >= 200, "{up}: the budget is used, not closed");
    assert!(h.count("drop_rate_limited") >= 1500);
    // Meanwhile the uplink's own resolution and the other port are untouched.
    h.inject(UP, &ns_from_router(addr(0x99)));
    assert_eq!(h.take(D2).len(), 1, "the router's NS for an unknown target");
    h.clear();
    let t = addr(0x98);
    h.inject(D2, &spoofed_ns(gmac(3), addr(3), t));
    assert_eq!(
        h.take(UP).len(),
        1,
        "another port's NS for an unknown target"
    );
    h.clear();
    h.inject(UP, &ns_from_router(addr(3)));
    assert_eq!(h.take(D2).len(), 1, "a bound guest's NS");
}

#[test]
fn per_port_budget_is_configurable() {
    let mut cfg = config();
    cfg.tunables = Tunables {
        ns_rate_per_port: 5,
        ns_burst_per_port: 10,
        ..Tunables::default()
    };
    let mut h = Harness::ready(cfg);
    for i in 0..50u16 {
        h.inject(D1, &spoofed_ns(gmac(66), addr(0x500 + i), addr(0x600 + i)));
    }
    assert_eq!(h.take(UP).len(), 10);
}

#[test]
fn ns_toward_an_uplink_address_spends_the_ports_budget() {
    let mut h = Harness::ready(config());
    // The router's global address is bound on the uplink (it answers a guest's NS).
    h.inject(D1, &spoofed_ns(gmac(1), addr(0x11), router_global()));
    let ans = na(
        ROUTER_MAC,
        UP_MAC,
        router_global(),
        addr(0x11),
        SOLICITED,
        router_global(),
        Some(ROUTER_MAC),
    );
    h.inject(UP, &ans);
    assert_eq!(h.binding(router_global()).map(|b| b.port), Some(UP));
    h.clear();
    // Now a guest floods NS for the router itself: one relayed per NS, but under the
    // port's budget, not the generous one for bound targets.
    for i in 0..1000u16 {
        h.inject(D1, &spoofed_ns(gmac(66), addr(0x700 + i), router_global()));
    }
    let up = h.take(UP).len();
    assert!(up <= 200, "{up} NS at the router");
}

#[test]
fn multicast_na_floods_are_budgeted_per_port() {
    let mut h = Harness::ready(config());
    for i in 0..1000u16 {
        h.inject(
            D1,
            &na_to_all_nodes(gmac(66), UNSOLICITED_O, addr(0x800 + i)),
        );
    }
    assert_eq!(
        h.take(UP).len(),
        200,
        "the burst, then nothing within the same instant"
    );
    assert_eq!(h.engine.binding_count(), 0, "nothing learned");
    // The uplink's DAD defence still reaches the guests.
    h.clear();
    h.inject(UP, &na_to_all_nodes(UPHOST_MAC, UNSOLICITED_O, addr(0x900)));
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn packet_too_big_is_rate_limited() {
    let mut cfg = config();
    cfg.data_plane = DataPlane::Userspace;
    cfg.ports[D2.index()].mtu = 1280;
    let mut h = Harness::ready(cfg);
    h.bind_guest(2, D2);
    h.bind_guest(3, D1);
    h.clear();
    for _ in 0..100 {
        h.inject(D1, &data(gmac(3), D1_MAC, addr(3), addr(2), 1400));
    }
    let ptb = h.take(D1).len();
    assert_eq!(ptb, 10, "the burst of Packet Too Big");
    assert_eq!(h.count("ptb_rate_limited"), 90);
    assert_eq!(h.count("drop_mtu_exceeded"), 100);
    h.advance(Duration::from_secs(1));
    h.clear();
    h.inject(D1, &data(gmac(3), D1_MAC, addr(3), addr(2), 1400));
    assert_eq!(h.take(D1).len(), 1, "refilled");
}

#[test]
fn a_drivers_solicitation_makes_the_answer_count_and_only_on_its_port() {
    let mut h = Harness::ready(config());
    // After a restart the driver asks for the guests behind its earlier routes.
    h.engine.solicit(h.now, D1, addr(7));
    h.drain();
    let asked = h.take(D1);
    assert_eq!(asked.len(), 1);
    assert!(asked[0].is_ns_for(addr(7)));
    assert_eq!(asked[0].nd().src_addr, port_ll(D1));
    // The same NA on another port is not an answer; on D1 it binds and routes.
    h.inject(D2, &forged_probe_answer(gmac(7), D2, addr(7)));
    assert_eq!(h.binding(addr(7)), None);
    h.inject(D1, &forged_probe_answer(gmac(7), D1, addr(7)));
    let b = h.binding(addr(7)).unwrap();
    assert_eq!(
        (b.port, b.state, b.routed),
        (D1, BindingState::Reachable, true)
    );
}
