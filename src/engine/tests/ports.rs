//! Link events, MAC/MTU changes, reload, config validation, loop suspects, counters.

use super::*;
use crate::DropReason;
use crate::engine::{
    BindingState, DataPlane, EngineConfigError, LinkEvent, PrefixMode, PrefixRule,
};
use crate::wire::NdOption;

#[test]
fn link_down_stops_sending_and_suspects_bindings_link_up_reenables_and_reverifies() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.link(D1, LinkEvent::Down);
    assert_eq!(
        h.routes,
        vec![Action::RemoveRoute {
            addr: addr(10),
            port: D1
        }]
    );
    let b = h.binding(addr(10)).unwrap();
    assert_eq!((b.state, b.routed), (BindingState::Stale, false));
    assert!(!h.proxying(D1));
    assert_eq!(h.count("link_down"), 1);
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(UP, &ns_from_router(addr(20)));
    assert!(h.take(D1).is_empty(), "nothing is sent to a down port");
    assert_eq!(h.take(D2).len(), 1, "unknown target still goes to D2");
    assert_eq!(h.count("drop_port_disabled"), 1, "bound on the down port");
    // Frames from a down port are not processed.
    h.inject(D1, &dad(gmac(10), addr(10)));
    assert!(h.sent.is_empty());

    h.clear();
    h.link(D1, LinkEvent::Up);
    let up_at = h.now;
    assert!(!h.proxying(D1), "up, but not before two P-bit RAs");
    let ras = h.take(D1);
    assert_eq!(
        ras.len(),
        1,
        "{:?}",
        ras.iter().map(|s| s.nd().message).collect::<Vec<_>>()
    );
    assert!(ras[0].is_ra());
    h.advance(Duration::from_secs(3));
    assert!(h.proxying(D1));
    // Re-verification: the binding is probed within delay_first_probe, and only its
    // answer brings the route back.
    let mut probes = Vec::new();
    for _ in 0..50 {
        probes.extend(h.take(D1).into_iter().filter(|s| s.is_ns_for(addr(10))));
        if !probes.is_empty() {
            break;
        }
        h.advance(Duration::from_millis(100));
    }
    assert!(
        h.now - up_at <= Duration::from_millis(5_100),
        "probed within delay_first_probe"
    );
    assert!(!probes.is_empty());
    assert_eq!(probes[0].nd().dst_addr, addr(10));
    assert!(h.routes.is_empty());
    let f = probe_answer(10, D1);
    h.inject(D1, &f);
    assert_eq!(
        h.routes,
        vec![Action::InstallRoute {
            addr: addr(10),
            port: D1
        }]
    );
}

#[test]
fn mac_change_is_used_at_once_and_announced() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let new = Mac([0x02, 0, 0, 0, 0, 0x42]);
    h.link(UP, LinkEvent::MacChanged(new));
    // Confirmed guests are re-announced upstream with O=1 and the new MAC.
    let ann = h.take(UP);
    assert_eq!(ann.len(), 1);
    let pkt = ann[0].nd();
    assert!(
        matches!(pkt.message, NdMessage::NeighborAdvert { flags, target_addr }
        if target_addr == addr(10) && flags.contains(NaFlags::OVERRIDE) && !flags.contains(NaFlags::SOLICITED))
    );
    assert_eq!(
        (pkt.eth_src, pkt.tlla, pkt.dst_addr),
        (new, Some(new), all_nodes())
    );
    // The next relayed NA carries the new MAC.
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    let out = h.take(UP);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].nd().eth_src, out[0].nd().tlla), (new, Some(new)));
    // The old MAC is no longer ours; the new one is (loop detection).
    h.inject(
        D2,
        &ns(
            new,
            Mac::ipv6_multicast(solicited_node(addr(5))),
            addr(6),
            solicited_node(addr(5)),
            addr(5),
            Some(new),
        ),
    );
    assert_eq!(h.count("drop_loop_suspect"), 1);
}

#[test]
fn mtu_change_applies_at_once_and_below_1280_counts_as_down() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.link(D1, LinkEvent::MtuChanged(1400));
    h.advance(Duration::from_secs(5));
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[OptionRepr::Mtu(1500)]));
    let out = h.take(D1);
    assert!(out[0].nd().options().any(|o| o == NdOption::Mtu(1400)));
    h.link(D1, LinkEvent::MtuChanged(1000));
    assert!(!h.proxying(D1));
    assert!(h.routes.contains(&Action::RemoveRoute {
        addr: addr(10),
        port: D1
    }));
    assert!(!h.engine.snapshot(h.now).ports[1].up);
    h.link(D1, LinkEvent::MtuChanged(1500));
    assert!(h.engine.snapshot(h.now).ports[1].up);
}

#[test]
fn reload_keeps_unchanged_ports_and_cleans_removed_ones() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.bind_guest(20, D2);
    // New config: br1 removed, br0 moved to index 2 behind a new port, MAC of br0 changed.
    let mut cfg = config();
    let br1 = cfg.ports.remove(2);
    let mut br0 = cfg.ports.remove(1);
    br0.mac = Mac([0x02, 0, 0, 0, 0, 0x12]);
    let mut br2 = br1.clone();
    br2.name = "br2".into();
    br2.mac = Mac([0x02, 0, 0, 0, 0, 0x13]);
    cfg.ports.push(br2);
    cfg.ports.push(br0);
    let t = h.now;
    h.engine.reload(t, cfg).unwrap();
    h.drain();
    assert_eq!(
        h.routes,
        vec![Action::RemoveRoute {
            addr: addr(20),
            port: D2
        }],
        "only the removed port's routes go (named by the old PortId)"
    );
    assert!(h.binding(addr(20)).is_none());
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(
        (b.port, b.routed, b.state),
        (PortId(2), true, BindingState::Reachable)
    );
    assert!(h.proxying(PortId(2)), "kept port keeps proxying");
    assert!(!h.proxying(PortId(1)), "new port enables first");
    assert_eq!(h.count("reloads"), 1);
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    let out = h.take(PortId(2));
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].nd().slla,
        Some(Mac([0x02, 0, 0, 0, 0, 0x12])),
        "new MAC at once"
    );
}

#[test]
fn reload_of_a_port_mtu_below_1280_takes_it_down() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let mut cfg = config();
    cfg.ports[1].mtu = 1000;
    let t = h.now;
    h.engine.reload(t, cfg).unwrap();
    h.drain();
    assert_eq!(
        h.routes,
        vec![Action::RemoveRoute {
            addr: addr(10),
            port: D1
        }]
    );
    assert!(!h.proxying(D1));
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Stale);
    assert_eq!(h.count("link_down"), 1);
}

#[test]
fn reload_rejects_a_bad_config_without_changing_anything() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let mut bad = config();
    bad.ports[1].role = crate::engine::Role::Upstream;
    let t = h.now;
    assert_eq!(
        h.engine.reload(t, bad),
        Err(EngineConfigError::UpstreamCount(2))
    );
    assert!(h.binding(addr(10)).is_some_and(|b| b.routed));
    assert_eq!(h.count("reloads"), 0);
}

#[test]
fn reload_applies_policy_changes_to_existing_routes() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    let mut cfg = config();
    cfg.data_plane = DataPlane::Userspace;
    let t = h.now;
    h.engine.reload(t, cfg).unwrap();
    h.drain();
    assert_eq!(
        h.routes,
        vec![Action::RemoveRoute {
            addr: addr(10),
            port: D1
        }]
    );
    h.clear();
    let t = h.now;
    h.engine.reload(t, config()).unwrap();
    h.drain();
    assert_eq!(
        h.routes,
        vec![Action::InstallRoute {
            addr: addr(10),
            port: D1
        }]
    );
}

#[test]
fn config_validation() {
    let check = |f: &dyn Fn(&mut EngineConfig)| {
        let mut c = config();
        f(&mut c);
        Engine::new(c, Instant::ZERO).err()
    };
    assert_eq!(check(&|_| {}), None);
    assert_eq!(
        check(&|c| c.ports[0].role = crate::engine::Role::Downstream),
        Some(EngineConfigError::UpstreamCount(0))
    );
    assert_eq!(
        check(&|c| c.ports.truncate(1)),
        Some(EngineConfigError::NoDownstream)
    );
    assert!(matches!(
        check(&|c| c.ports[2].mac = D1_MAC),
        Some(EngineConfigError::DuplicateMac(..))
    ));
    assert!(matches!(
        check(&|c| c.prefixes.push(PrefixRule {
            prefix: "2001:db8:1:0:8000::/65".parse().unwrap(),
            mode: PrefixMode::Static
        })),
        Some(EngineConfigError::OverlappingPrefixes(..))
    ));
    assert_eq!(
        check(&|c| c.tunables.max_bindings = 0),
        Some(EngineConfigError::ZeroLimit("max_bindings"))
    );
    assert!(matches!(
        check(&|c| {
            let p = c.ports[2].clone();
            for i in 0..70u8 {
                let mut q = p.clone();
                q.mac = Mac([0x02, 1, 0, 0, 0, i]);
                c.ports.push(q);
            }
        }),
        Some(EngineConfigError::TooManyPorts(73))
    ));
}

#[test]
fn frames_with_our_mac_are_loop_suspects() {
    let mut h = Harness::ready(config());
    let group = solicited_node(addr(5));
    // Our MAC as L2 source.
    h.inject(
        D1,
        &ns(
            D2_MAC,
            Mac::ipv6_multicast(group),
            addr(6),
            group,
            addr(5),
            Some(gmac(6)),
        ),
    );
    // Our MAC in the SLLA.
    h.inject(
        D1,
        &ns(
            gmac(6),
            Mac::ipv6_multicast(group),
            addr(6),
            group,
            addr(5),
            Some(UP_MAC),
        ),
    );
    // Data from our MAC (checked whatever the data plane).
    h.inject(D1, &data(D1_MAC, UP_MAC, addr(6), addr(5), 10));
    // One of our link-locals as source from a foreign MAC.
    h.inject(
        D1,
        &ns(
            gmac(6),
            Mac::ipv6_multicast(group),
            port_ll(UP),
            group,
            addr(5),
            Some(gmac(6)),
        ),
    );
    assert_eq!(h.count("drop_loop_suspect"), 4);
    assert!(h.sent.is_empty());
    assert!(h.binding(addr(6)).is_none(), "nothing learned from a loop");
}

#[test]
fn counters_cover_every_drop_reason_and_events_are_opt_in() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router("2001:db8:9::1".parse().unwrap()));
    let snap = h.engine.snapshot(h.now);
    for r in DropReason::ALL {
        let name = format!("drop_{}", r.name());
        assert!(
            snap.counters.iter().any(|(n, _)| *n == name),
            "{name} missing"
        );
    }
    for name in [
        "rx_frames",
        "relayed_ns",
        "relayed_na",
        "relayed_rs",
        "relayed_ra",
        "relayed_redirect",
        "answered_ns",
        "bindings_learned",
        "routes_installed",
        "forwarded_data",
    ] {
        assert!(
            snap.counters.iter().any(|(n, _)| n == name),
            "{name} missing"
        );
    }
    assert!(
        snap.counters
            .iter()
            .any(|(n, v)| n == "drop_not_proxied" && *v == 1)
    );
    assert!(h.events.contains(&Event::Dropped {
        port: UP,
        reason: DropReason::NotProxied
    }));

    let mut cfg = config();
    cfg.emit_events = false;
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    h.inject(UP, &ns_from_router("2001:db8:9::1".parse().unwrap()));
    assert!(h.events.is_empty(), "no events unless emit_events");
    assert_eq!(h.count("drop_not_proxied"), 1);
    assert!(h.count("rx_frames") >= 3);
}

#[test]
fn wire_rejections_are_counted_by_reason() {
    let mut h = Harness::ready(config());
    let mut f = ns_from_router(addr(10));
    f[14 + 7] = 254; // hop limit
    h.inject(UP, &f);
    assert_eq!(h.count("drop_hop_limit"), 1);
    assert!(h.sent.is_empty());
}

#[test]
fn answers_to_own_probes_count_while_a_port_still_announces_itself() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.link(D1, LinkEvent::Down);
    h.link(D1, LinkEvent::Up);
    assert!(!h.proxying(D1), "two P-bit RAs first");
    let dropped = h.count("drop_port_disabled");
    // The guest answers the relay's re-verification probe before the second RA.
    let answer = probe_answer(10, D1);
    h.inject(D1, &answer);
    assert_eq!(
        h.count("drop_port_disabled"),
        dropped,
        "an answer to our own probe is not dropped"
    );
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Reachable);
    // Anything else from the port still waits for the P-bit RAs.
    let other = na_to_all_nodes(gmac(10), UNSOLICITED_O, addr(10));
    h.inject(D1, &other);
    assert_eq!(h.count("drop_port_disabled"), dropped + 1);
}

#[test]
fn uplink_down_keeps_guests_local_and_up_resumes() {
    let mut h = Harness::ready(config());
    h.bind_guest(20, D2);
    h.link(UP, LinkEvent::Down);
    let group = solicited_node(router_global());
    let ask = ns(
        gmac(10),
        Mac::ipv6_multicast(group),
        addr(10),
        group,
        router_global(),
        Some(gmac(10)),
    );
    h.inject(D1, &ask);
    assert!(h.take(UP).is_empty(), "nothing to a down uplink");
    assert_eq!(h.take(D2).len(), 1, "other segments still reached");
    // Guests still reach each other.
    let group = solicited_node(addr(20));
    h.inject(
        D1,
        &ns(
            gmac(10),
            Mac::ipv6_multicast(group),
            addr(10),
            group,
            addr(20),
            Some(gmac(10)),
        ),
    );
    assert_eq!(h.take(D2).len(), 1);
    h.link(UP, LinkEvent::Up);
    h.advance(Duration::from_secs(2));
    h.clear();
    h.inject(D1, &ask);
    assert_eq!(h.take(UP).len(), 1);
}

#[test]
fn the_summary_counts_proxying_downstream_ports_and_confirmed_bindings() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.engine.summary(),
        crate::engine::Summary {
            downstream: 2,
            proxying: 0,
            bindings: 0,
            confirmed: 0
        },
        "before any RA no downstream port proxies"
    );
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.advance(Duration::from_secs(10));
    // The router asks for a guest that answers, and for one that does not exist.
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    h.inject(UP, &ns_from_router(addr(11)));
    let s = h.engine.summary();
    assert_eq!((s.downstream, s.proxying), (2, 2));
    assert_eq!(s.confirmed, 1, "only the guest that answered: {s:?}");
    assert!(s.bindings >= s.confirmed);
}

#[test]
fn frames_are_counted_per_port_received_dropped_and_sent() {
    let mut h = Harness::ready(config());
    let frames = |h: &Harness, p: PortId| h.engine.snapshot(h.now).ports[p.index()].frames;
    let before: Vec<_> = [UP, D1, D2].iter().map(|&p| frames(&h, p)).collect();
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &[0u8; 10]); // truncated
    let delta = |h: &Harness, p: PortId| {
        let (a, b) = (frames(h, p), before[p.index()]);
        (
            a.received - b.received,
            a.dropped - b.dropped,
            a.sent - b.sent,
        )
    };
    assert_eq!(delta(&h, UP), (1, 0, 0), "the NS came in on the uplink");
    assert_eq!(
        delta(&h, D1),
        (1, 1, 1),
        "one copy out, one truncated frame dropped"
    );
    assert_eq!(delta(&h, D2), (0, 0, 1), "one copy out");
}
