//! Binding states, NUD probes, routes, host moves, the uplink rule and table bounds.

use super::*;
use crate::engine::{BindingState, DataPlane};

fn installs(h: &Harness) -> Vec<(Ipv6Addr, PortId)> {
    h.routes
        .iter()
        .filter_map(|r| match r {
            Action::InstallRoute { addr, port } => Some((*addr, *port)),
            _ => None,
        })
        .collect()
}

fn removes(h: &Harness) -> Vec<(Ipv6Addr, PortId)> {
    h.routes
        .iter()
        .filter_map(|r| match r {
            Action::RemoveRoute { addr, port } => Some((*addr, *port)),
            _ => None,
        })
        .collect()
}

/// Steps time until the binding leaves REACHABLE (at most 45 s, the jitter's top).
fn run_out_reachable(h: &mut Harness, a: Ipv6Addr) {
    let start = h.now;
    while h.binding(a).unwrap().state == BindingState::Reachable {
        assert!(
            h.now - start <= Duration::from_secs(45),
            "REACHABLE beyond 1.5 × base"
        );
        h.advance(Duration::from_millis(100));
    }
}

#[test]
fn solicited_na_confirms_and_installs_the_route_once() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert_eq!(installs(&h), vec![(addr(10), D1)]);
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(b.state, BindingState::Reachable);
    assert_eq!(b.confirmed_at, Some(h.now));
    assert!(b.routed);
    // Re-confirmation does not install again.
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert!(h.routes.is_empty());
    assert_eq!(h.count("routes_installed"), 1);
    // Upstream bindings (the router) are never routed.
    assert!(!h.binding(router_ll()).unwrap().routed);
}

#[test]
fn no_routes_without_the_kernel_data_plane() {
    let mut cfg = config();
    cfg.data_plane = DataPlane::None;
    let mut h = Harness::ready(cfg);
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert!(h.routes.is_empty());
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Reachable);
}

#[test]
fn reachable_runs_out_then_delay_probe_and_removal_with_the_route() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    // ReachableTime is jittered in 15..45 s; DELAY 5 s; 3 probes 1 s apart.
    run_out_reachable(&mut h, addr(10));
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Delay);
    assert!(h.sent.is_empty(), "no probe during DELAY");
    h.advance(Duration::from_secs(5));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(b.state, BindingState::Probe);
    let probes = h.take(D1);
    assert_eq!(probes.len(), 1);
    let p = probes[0].nd();
    assert_eq!(
        p.message,
        NdMessage::NeighborSolicit {
            target_addr: addr(10)
        }
    );
    assert_eq!(
        (p.src_addr, p.dst_addr, p.eth_dst),
        (port_ll(D1), addr(10), gmac(10))
    );
    assert_eq!(p.slla, Some(D1_MAC));
    assert!(b.routed, "the route stays while probing");
    h.advance(Duration::from_secs(3));
    assert_eq!(h.take(D1).len(), 2, "three probes in all");
    assert!(
        h.binding(addr(10)).is_none(),
        "failed NUD removes the binding"
    );
    assert_eq!(removes(&h), vec![(addr(10), D1)]);
    assert_eq!(h.count("bindings_removed"), 1);
}

#[test]
fn answered_probe_keeps_the_binding_and_its_route() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    run_out_reachable(&mut h, addr(10));
    h.advance(Duration::from_secs(5));
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Probe);
    h.clear();
    // The guest answers our probe (to our link-local): consumed, not relayed.
    let f = probe_answer(10, D1);
    h.inject(D1, &f);
    assert!(h.sent.is_empty());
    assert_eq!(h.count("consumed_na"), 1);
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(b.state, BindingState::Reachable);
    assert!(b.routed);
    assert!(h.routes.is_empty(), "no second InstallRoute");
}

#[test]
fn upstream_bindings_go_stale_then_are_forgotten() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(10)));
    let r = h.binding(router_ll()).unwrap();
    assert_eq!(
        (r.port, r.mac, r.state),
        (UP, ROUTER_MAC, BindingState::Stale)
    );
    h.advance(config().tunables.stale_lifetime + Duration::from_secs(1));
    assert!(h.binding(router_ll()).is_none());
}

#[test]
fn host_move_rebinds_only_after_the_old_port_fails_its_probes() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    // The guest shows up on D2 with an unsolicited O=1 NA.
    let f = na_to_all_nodes(gmac(10), UNSOLICITED_O, addr(10));
    h.inject(D2, &f);
    assert_eq!(h.count("binding_conflict"), 1);
    assert_eq!(h.binding(addr(10)).unwrap().port, D1, "not moved yet");
    let probe = h
        .take(D1)
        .into_iter()
        .filter(|s| s.is_ns_for(addr(10)))
        .count();
    assert_eq!(probe, 1, "the old port is probed at once");
    h.clear();
    h.advance(Duration::from_secs(3));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(
        (b.port, b.state, b.routed),
        (D2, BindingState::Probe, false),
        "moved, and being verified on the new port"
    );
    assert_eq!(removes(&h), vec![(addr(10), D1)]);
    assert_eq!(h.count("bindings_moved"), 1);
    // Peers still point at the relay and will not solicit the host: the relay probes
    // it on D2 itself, and its answer brings the route there.
    let probes: Vec<_> = h
        .take(D2)
        .into_iter()
        .filter(|s| s.is_ns_for(addr(10)))
        .collect();
    assert_eq!(probes.len(), 1, "the new port is probed at once");
    assert_eq!(probes[0].nd().dst_addr, addr(10));
    let answer = probe_answer(10, D2);
    h.inject(D2, &answer);
    assert_eq!(installs(&h), vec![(addr(10), D2)]);
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Reachable);
    // The router's next NS goes to D2 only.
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D2).len(), 1, "router NS now goes to D2 only");
    assert!(h.take(D1).is_empty());
}

#[test]
fn dad_on_another_downstream_port_rechecks_the_old_binding_at_once() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.clear();
    // The guest was moved to D2 and runs DAD there before saying anything else.
    h.inject(D2, &dad(gmac(10), addr(10)));
    let probes = h
        .take(D1)
        .into_iter()
        .filter(|s| s.is_ns_for(addr(10)) && !s.nd().src_addr.is_unspecified())
        .count();
    assert_eq!(
        probes, 1,
        "the old port is probed as soon as DAD shows up elsewhere"
    );
    assert_eq!(
        h.binding(addr(10)).unwrap().port,
        D1,
        "DAD itself is never learned"
    );
    // Nobody answers on D1: after the probes the stale binding is gone, not moved.
    h.clear();
    h.advance(Duration::from_secs(4));
    assert!(
        h.binding(addr(10)).is_none(),
        "the old binding must go after failed probes"
    );
    assert_eq!(removes(&h), vec![(addr(10), D1)]);
    // The host's first real word on D2 binds it there.
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D2, &na_to_router(gmac(10), D2, addr(10)));
    assert_eq!(h.binding(addr(10)).unwrap().port, D2);
    assert_eq!(installs(&h), vec![(addr(10), D2)]);
}

#[test]
fn dad_from_the_uplink_for_a_guest_address_starts_no_recheck() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.clear();
    h.inject(UP, &dad(UPHOST_MAC, addr(10)));
    let d1 = h.take(D1);
    assert_eq!(d1.len(), 1, "only the relayed DAD, no probe");
    assert!(d1[0].nd().src_addr.is_unspecified());
}

#[test]
fn conflict_is_resolved_for_the_old_port_when_it_answers() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let f = na_to_all_nodes(gmac(99), UNSOLICITED_O, addr(10));
    h.inject(D2, &f);
    let answer = probe_answer(10, D1);
    h.inject(D1, &answer);
    h.clear();
    h.advance(Duration::from_secs(10));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!((b.port, b.mac), (D1, gmac(10)), "bindings do not flap");
    assert!(removes(&h).is_empty());
    assert_eq!(h.count("bindings_moved"), 0);
}

#[test]
fn the_uplink_cannot_steal_a_guest_binding() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let f = na_to_all_nodes(UPHOST_MAC, UNSOLICITED_O, addr(10));
    h.inject(UP, &f);
    assert_eq!(h.count("drop_uplink_claims_guest"), 1);
    assert!(h.sent.is_empty());
    // Nor through an NS source.
    let group = solicited_node(addr(77));
    h.inject(
        UP,
        &ns(
            UPHOST_MAC,
            Mac::ipv6_multicast(group),
            addr(10),
            group,
            addr(77),
            Some(UPHOST_MAC),
        ),
    );
    let b = h.binding(addr(10)).unwrap();
    assert_eq!((b.port, b.mac, b.routed), (D1, gmac(10), true));
    assert_eq!(h.count("binding_conflict"), 0);
}

#[test]
fn ns_slla_updates_the_mac_and_na_without_override_does_not() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    // O=0 NA with another MAC: REACHABLE → STALE, MAC kept (RFC 4861 §7.2.5).
    let f = na_to_all_nodes(gmac(11), NO_FLAGS, addr(10));
    h.inject(D1, &f);
    let b = h.binding(addr(10)).unwrap();
    assert_eq!((b.mac, b.state), (gmac(10), BindingState::Stale));
    // An NS with a new SLLA updates the MAC (RFC 4861 §7.2.3).
    let group = solicited_node(router_global());
    h.inject(
        D1,
        &ns(
            gmac(12),
            Mac::ipv6_multicast(group),
            addr(10),
            group,
            router_global(),
            Some(gmac(12)),
        ),
    );
    assert_eq!(h.binding(addr(10)).unwrap().mac, gmac(12));
}

#[test]
fn nothing_is_learned_from_the_unspecified_address_or_a_group_mac() {
    let mut h = Harness::ready(config());
    let t = h.now;
    h.engine.learn(t, D1, Ipv6Addr::UNSPECIFIED, gmac(1), None);
    h.engine
        .learn(t, D1, addr(5), Mac([0x33, 0x33, 0, 0, 0, 1]), None);
    h.engine.learn(t, D1, all_nodes(), gmac(1), None);
    assert_eq!(h.engine.binding_count(), 0);
    h.engine.learn(t, D1, addr(5), gmac(1), None);
    assert_eq!(h.engine.binding_count(), 1);
}

#[test]
fn table_is_bounded_and_confirmed_entries_are_never_evicted_for_unconfirmed_ones() {
    let mut cfg = config();
    cfg.tunables.max_bindings = 8;
    cfg.tunables.max_bindings_per_port = 7;
    let mut h = Harness::ready(cfg);
    for i in 1..=4u8 {
        h.bind_guest(i, D1);
    }
    // Router link-local (learned from its NS) + 4 guests. Now 100 unconfirmed sources.
    for i in 0..100u16 {
        let group = solicited_node(router_global());
        let f = ns(
            gmac(200),
            Mac::ipv6_multicast(group),
            addr(1000 + i),
            group,
            router_global(),
            Some(gmac(200)),
        );
        h.inject(D2, &f);
        assert!(h.engine.binding_count() <= 8);
    }
    for i in 1..=4u8 {
        assert!(
            h.binding(addr(u16::from(i))).is_some_and(|b| b.routed),
            "confirmed guest {i} kept"
        );
    }
    assert!(h.count("bindings_evicted") >= 90);
    // Fill the table with confirmed guests (D1 up to its share, one more on D2): then
    // learning is refused, counted.
    for i in 5..=7u8 {
        h.bind_guest(i, D1);
    }
    h.bind_guest(8, D2);
    let before = h.count("learn_table_full");
    let group = solicited_node(router_global());
    h.inject(
        D2,
        &ns(
            gmac(201),
            Mac::ipv6_multicast(group),
            addr(3000),
            group,
            router_global(),
            Some(gmac(201)),
        ),
    );
    assert!(h.binding(addr(3000)).is_none());
    assert_eq!(h.count("learn_table_full"), before + 1);
}

#[test]
fn reachable_time_is_jittered_and_seeded() {
    let expiry = |seed: u64| {
        let mut cfg = config();
        cfg.seed = seed;
        let mut h = Harness::ready(cfg);
        h.bind_guest(10, D1);
        // Confirmed at bind time, one second before `bind_guest` returns.
        let start = h.binding(addr(10)).unwrap().confirmed_at.unwrap();
        while h.binding(addr(10)).unwrap().state == BindingState::Reachable {
            h.advance(Duration::from_millis(100));
        }
        h.now - start
    };
    let a = expiry(1);
    assert_eq!(a, expiry(1), "same seed, same timing");
    let spread: Vec<_> = (2..6).map(expiry).collect();
    assert!(
        spread.iter().any(|d| *d != a),
        "jitter varies with the seed"
    );
    for d in spread.iter().chain([&a]) {
        assert!(
            *d >= Duration::from_secs(15) && *d <= Duration::from_millis(45_100),
            "{d}"
        );
    }
}

#[test]
fn a_clock_jump_spreads_reverification_instead_of_a_probe_storm() {
    let mut cfg = config();
    cfg.emit_events = false;
    let mut h = Harness::ready(cfg);
    for i in 1..=40u8 {
        let (a, port) = (addr(u16::from(i)), if i % 2 == 0 { D1 } else { D2 });
        h.inject(UP, &ns_from_router(a));
        h.inject(port, &na_to_router(gmac(i), port, a));
    }
    assert_eq!(h.routes.len(), 40);
    h.clear();
    // Suspend for an hour: the driver's next call comes much later.
    h.now += Duration::from_secs(3600);
    let t = h.now;
    h.engine.handle_timeout(t);
    h.drain();
    assert!(
        h.sent.is_empty(),
        "no probe burst at wake-up: {:?}",
        h.sent
            .iter()
            .map(|s| (s.port, s.nd().message, s.nd().dst_addr))
            .collect::<Vec<_>>()
    );
    let mut instants = std::collections::BTreeSet::new();
    let end = h.now + Duration::from_secs(11);
    while let Some(at) = h.engine.poll_timeout().filter(|at| *at <= end) {
        h.now = h.now.max(at);
        let t = h.now;
        h.engine.handle_timeout(t);
        h.drain();
        if !h.sent.is_empty() {
            instants.insert(h.now);
        }
        h.sent.clear();
    }
    assert!(
        instants.len() >= 20,
        "probes spread over time: {}",
        instants.len()
    );
    // Every guest was probed and, unanswered, is eventually gone with its route.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.count("sent_ns"), 40 * 3);
    assert_eq!(h.count("routes_removed"), 40);
}

#[test]
fn the_snapshot_lists_bindings_by_address_and_the_unsorted_one_the_same_bindings() {
    let mut h = Harness::ready(config());
    // Bound out of address order, on both downstream ports.
    for (i, port) in [(30, D1), (12, D2), (21, D1), (11, D2)] {
        h.bind_guest(i, port);
    }
    let sorted = h.engine.snapshot(h.now);
    let addrs: Vec<Ipv6Addr> = sorted.bindings.iter().map(|b| b.addr).collect();
    // The router is bound too, on the uplink, from its NS.
    let mut expected = [11, 12, 21, 30].map(addr).to_vec();
    expected.push(router_ll());
    assert_eq!(addrs, expected);
    let mut unsorted = h.engine.snapshot_unsorted(h.now);
    unsorted.sort_bindings();
    assert_eq!(unsorted, sorted);
}
