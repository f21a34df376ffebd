//! Routed ports (tun, WireGuard, PPP): NS for addresses the main table routes through
//! them are answered from the fed routes; nothing is ever sent on them.

use super::*;
use crate::engine::{EngineConfigError, LinkEvent, MAX_ROUTED_ROUTES, RouteUpdate};

/// D2 (`tun0`) is a routed port; D1 stays an Ethernet bridge.
fn routed_config() -> EngineConfig {
    let mut c = config();
    c.ports[2].name = "tun0".into();
    c.ports[2].routed = true;
    c
}

/// The relay with D1 enabled; D2 never proxies in the RFC 4389 sense.
fn ready() -> Harness {
    let mut h = Harness::new(routed_config());
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.advance(Duration::from_secs(10));
    assert!(h.proxying(D1), "the Ethernet port enables as always");
    assert!(h.take(D2).is_empty(), "no RA ever goes to a routed port");
    h.clear();
    h
}

fn route(h: &mut Harness, prefix: &str, port: Option<PortId>, present: bool) {
    let update = RouteUpdate {
        prefix: prefix.parse().unwrap(),
        port,
        present,
    };
    h.engine.handle_route(h.now, update);
    h.drain();
}

/// The relay's answer on the uplink for `target`, asserting it is the only frame sent.
fn answered(h: &mut Harness, target: Ipv6Addr) -> bool {
    h.inject(UP, &ns_from_router(target));
    assert!(
        h.take(D2).is_empty(),
        "nothing is ever sent on a routed port"
    );
    let out = h.take(UP);
    match out.as_slice() {
        [] => false,
        [na] => {
            let pkt = na.nd();
            assert_eq!(
                pkt.message,
                NdMessage::NeighborAdvert {
                    flags: NaFlags::SOLICITED,
                    target_addr: target
                },
                "S=1 for a unicast solicitor, O=0 as a proxy (RFC 4861 §7.2.8)"
            );
            assert_eq!(pkt.tlla, Some(UP_MAC), "the uplink MAC is the way in");
            assert_eq!((pkt.src_addr, pkt.dst_addr), (target, router_ll()));
            assert_eq!((pkt.eth_src, pkt.eth_dst), (UP_MAC, ROUTER_MAC));
            assert!(h.take(D1).is_empty(), "an answered NS is not relayed");
            true
        }
        more => panic!("one answer expected, sent {more:?}"),
    }
}

#[test]
fn an_address_with_a_host_route_through_the_routed_port_is_answered_until_the_route_goes() {
    let mut h = ready();
    let peer = addr(0x100);
    assert!(!answered(&mut h, peer), "no route yet: not answered");
    assert_eq!(h.take(D1).len(), 1, "relayed to the Ethernet port as usual");
    h.advance(Duration::from_secs(5));
    h.clear();

    route(&mut h, "2001:db8:1::100/128", Some(D2), true);
    assert!(answered(&mut h, peer));
    assert_eq!(h.count("answered_routed"), 1);
    assert!(
        h.binding(peer).is_none(),
        "nothing is learned for the peer itself"
    );
    // Its neighbour without a route is not answered.
    assert!(!answered(&mut h, addr(0x101)));

    route(&mut h, "2001:db8:1::100/128", Some(D2), false);
    h.advance(Duration::from_secs(5));
    h.clear();
    assert!(
        !answered(&mut h, peer),
        "route deleted: answers stop at once"
    );
    assert_eq!(h.count("answered_routed"), 1);
}

#[test]
fn a_shorter_route_covers_its_range_and_the_longest_match_elsewhere_wins() {
    let mut h = ready();
    route(&mut h, "2001:db8:1::1:0/112", Some(D2), true);
    assert!(answered(&mut h, "2001:db8:1::1:5".parse().unwrap()));
    assert!(answered(&mut h, "2001:db8:1::1:ffff".parse().unwrap()));
    assert!(!answered(&mut h, "2001:db8:1::2:0".parse().unwrap()));
    h.advance(Duration::from_secs(5));
    h.clear();

    // A more specific route through the Ethernet port, another interface or an
    // `unreachable` route takes its addresses out of the tunnel's range.
    route(&mut h, "2001:db8:1::1:10/128", Some(D1), true);
    route(&mut h, "2001:db8:1::1:20/124", None, true);
    route(&mut h, "2001:db8:1::1:40/128", Some(UP), true);
    for a in ["2001:db8:1::1:10", "2001:db8:1::1:25", "2001:db8:1::1:40"] {
        assert!(!answered(&mut h, a.parse().unwrap()), "{a}");
    }
    h.clear();
    assert!(answered(&mut h, "2001:db8:1::1:11".parse().unwrap()));
    // A more specific route back through the tunnel wins over the one elsewhere.
    route(&mut h, "2001:db8:1::1:21/128", Some(D2), true);
    assert!(answered(&mut h, "2001:db8:1::1:21".parse().unwrap()));
    // The same prefix elsewhere too: the tie goes against answering.
    route(&mut h, "2001:db8:1::1:0/112", None, true);
    assert!(!answered(&mut h, "2001:db8:1::1:5".parse().unwrap()));
    h.clear();
    route(&mut h, "2001:db8:1::1:0/112", None, false);
    assert!(answered(&mut h, "2001:db8:1::1:5".parse().unwrap()));
}

#[test]
fn a_dad_probe_for_a_routed_address_is_defended_to_all_nodes() {
    let mut h = ready();
    let peer = addr(0x100);
    route(&mut h, "2001:db8:1::100/128", Some(D2), true);
    h.inject(UP, &dad(UPHOST_MAC, peer));
    assert!(
        h.take(D1).is_empty(),
        "not relayed: the owner is behind the tunnel"
    );
    let out = h.take(UP);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(
        pkt.message,
        NdMessage::NeighborAdvert {
            flags: NO_FLAGS,
            target_addr: peer
        },
        "RFC 4861 §7.2.4: S=0 to a DAD probe; O=0 as a proxy"
    );
    assert_eq!(pkt.dst_addr, all_nodes());
    assert_eq!(pkt.eth_dst, Mac::ipv6_multicast(all_nodes()));
    assert_eq!(pkt.tlla, Some(UP_MAC));
    // DAD for an address not routed there is relayed as before.
    h.inject(UP, &dad(UPHOST_MAC, addr(0x200)));
    assert!(h.take(UP).is_empty());
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn a_guest_on_an_ethernet_port_is_answered_too_and_cannot_take_a_routed_address() {
    let mut h = ready();
    let peer = addr(0x100);
    route(&mut h, "2001:db8:1::100/128", Some(D2), true);
    // A guest claims the peer's address with an unsolicited NA and its own NS.
    h.inject(D1, &na_to_all_nodes(gmac(9), UNSOLICITED_O, peer));
    h.inject(
        D1,
        &ns(
            gmac(9),
            Mac::ipv6_multicast(solicited_node(addr(0x300))),
            peer,
            solicited_node(addr(0x300)),
            addr(0x300),
            Some(gmac(9)),
        ),
    );
    h.clear();
    assert!(
        answered(&mut h, peer),
        "the operator's route wins over a guest"
    );
    // Another guest on the bridge reaches the peer through the relay as well.
    let group = solicited_node(peer);
    h.inject(
        D1,
        &ns(
            gmac(3),
            Mac::ipv6_multicast(group),
            addr(3),
            group,
            peer,
            Some(gmac(3)),
        ),
    );
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nd().tlla, Some(D1_MAC));
    assert!(h.take(UP).is_empty() && h.take(D2).is_empty());
}

#[test]
fn a_routed_port_that_is_down_answers_nothing_and_frames_never_come_from_one() {
    let mut h = ready();
    let peer = addr(0x100);
    route(&mut h, "2001:db8:1::100/128", Some(D2), true);
    h.link(D2, LinkEvent::Down);
    assert!(!answered(&mut h, peer), "the VPN process is gone");
    h.link(D2, LinkEvent::Up);
    h.clear();
    assert!(answered(&mut h, peer));
    assert!(!h.proxying(D2), "a routed port never relays frames");
    // A frame said to come from the routed port is dropped.
    h.inject(D2, &ns_from_router(addr(0x300)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_port_disabled"), 1);
}

#[test]
fn only_routes_inside_the_prefixes_count_and_the_table_is_bounded() {
    let mut h = ready();
    // A VPN default route and a route in another prefix say nothing about ours.
    route(&mut h, "::/0", Some(D2), true);
    route(&mut h, "2001:db8:2::5/128", Some(D2), true);
    // A port the engine does not have.
    route(&mut h, "2001:db8:1::7/128", Some(PortId(9)), true);
    assert!(!answered(&mut h, addr(5)));
    assert!(!answered(&mut h, addr(7)));
    assert!(h.engine.routed_routes().is_empty());

    let base = u128::from(addr(0));
    for i in 0..MAX_ROUTED_ROUTES as u128 + 3 {
        let prefix = ipnet::Ipv6Net::new(Ipv6Addr::from(base + 0x1_0000 + i), 128).unwrap();
        h.engine.handle_route(
            h.now,
            RouteUpdate {
                prefix,
                port: Some(D2),
                present: true,
            },
        );
    }
    h.drain();
    assert_eq!(h.engine.routed_routes().len(), MAX_ROUTED_ROUTES);
    assert_eq!(h.count("routed_routes_refused"), 3);
    // The same route again is no new entry.
    route(&mut h, "2001:db8:1::1:0/128", Some(D2), true);
    assert_eq!(h.count("routed_routes_refused"), 3);
}

#[test]
fn status_lists_the_routes_and_a_reload_keeps_or_drops_them() {
    let mut h = ready();
    route(&mut h, "2001:db8:1::100/128", Some(D2), true);
    route(&mut h, "2001:db8:1::1:0/112", Some(D2), true);
    route(&mut h, "2001:db8:1::1:0/120", Some(D1), true);
    route(&mut h, "2001:db8:1::9/128", None, true);
    let snap = h.engine.snapshot(h.now);
    assert!(snap.ports[2].routed && !snap.ports[1].routed);
    let listed: Vec<_> = snap
        .routed
        .iter()
        .map(|r| (r.prefix.to_string(), r.port, r.answered))
        .collect();
    assert_eq!(
        listed,
        vec![
            // The /112's first address is taken by the /120 through br0.
            ("2001:db8:1::1:0/112".to_owned(), D2, false),
            ("2001:db8:1::100/128".to_owned(), D2, true),
        ]
    );

    // A reload that keeps the port keeps its routes.
    h.engine.reload(h.now, routed_config()).unwrap();
    h.drain();
    assert!(answered(&mut h, addr(0x100)));
    // One that moves tun0 to another index follows it.
    let mut c = routed_config();
    c.ports.swap(1, 2);
    h.engine.reload(h.now, c).unwrap();
    h.drain();
    let ports: Vec<_> = h.engine.routed_routes().iter().map(|r| r.port).collect();
    assert_eq!(ports, vec![D1, D1]);
    // One without tun0 drops them.
    let mut c = config();
    c.ports.truncate(2);
    h.engine.reload(h.now, c).unwrap();
    h.drain();
    assert!(h.engine.routed_routes().is_empty());
    assert!(!answered(&mut h, addr(0x100)));
}

#[test]
fn the_uplink_cannot_be_routed_and_routed_ports_need_no_mac_of_their_own() {
    let mut c = routed_config();
    c.ports[0].routed = true;
    assert_eq!(
        Engine::new(c, Instant::ZERO).err(),
        Some(EngineConfigError::RoutedUplink("uplink".into()))
    );
    let mut c = routed_config();
    c.ports[1].routed = true;
    c.ports[1].mac = Mac::default();
    c.ports[2].mac = Mac::default();
    assert!(Engine::new(c, Instant::ZERO).is_ok());
}

#[test]
fn with_only_routed_ports_an_unrouted_target_is_not_proxied_rather_than_a_disabled_port() {
    let mut c = routed_config();
    c.ports.remove(1);
    let mut h = Harness::new(c);
    route(&mut h, "2001:db8:1::100/128", Some(D1), true);
    h.inject(UP, &ns_from_router(addr(0x100)));
    assert_eq!(h.take(UP).len(), 1, "the routed address is answered");
    h.inject(UP, &ns_from_router(addr(0x200)));
    h.inject(UP, &dad(UPHOST_MAC, addr(0x201)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_not_proxied"), 2);
    assert_eq!(h.count("drop_port_disabled"), 0);
}

/// The engine's answers against a model of the kernel's longest match, over random
/// route changes (overlapping lengths, ports elsewhere, unknown ports, outside the
/// prefix), link changes of the routed port and NS for random addresses.
#[test]
fn answers_follow_the_longest_match_of_a_model_table() {
    use std::collections::BTreeSet;
    let mut h = ready();
    let mut rng = crate::rng::Rng::new(16);
    let base = u128::from(addr(0)) + 0x1_0000;
    let mut model: BTreeSet<(u8, u128, Option<u16>)> = BTreeSet::new();
    let mut tun_up = true;
    let mut seen = [0u32; 2];
    let ports = [
        None,
        Some(UP),
        Some(D1),
        Some(D2),
        Some(D2),
        Some(PortId(7)),
    ];
    for step in 0..3000 {
        match rng.below(10) {
            0..=4 => {
                let len = [104u8, 112, 120, 124, 126, 128][rng.below(6) as usize];
                let mask = u128::MAX << (128 - u32::from(len));
                let outside = rng.below(8) == 0;
                let a = if outside { base + (1 << 80) } else { base } + u128::from(rng.below(256));
                let net = a & mask;
                let port = ports[rng.below(ports.len() as u64) as usize];
                let present = rng.below(3) != 0;
                let prefix = ipnet::Ipv6Net::new(Ipv6Addr::from(net), len).unwrap();
                h.engine.handle_route(
                    h.now,
                    RouteUpdate {
                        prefix,
                        port,
                        present,
                    },
                );
                if !outside && port != Some(PortId(7)) {
                    let key = (len, net, port.map(|p| p.0));
                    if present {
                        model.insert(key);
                    } else {
                        model.remove(&key);
                    }
                }
            }
            5 => {
                tun_up = !tun_up;
                let ev = if tun_up {
                    LinkEvent::Up
                } else {
                    LinkEvent::Down
                };
                h.link(D2, ev);
            }
            _ => {
                let a = base + u128::from(rng.below(256));
                let best = model
                    .iter()
                    .filter(|(len, net, _)| a & (u128::MAX << (128 - u32::from(*len))) == *net)
                    .map(|(len, _, _)| *len)
                    .max();
                let expected = best.is_some_and(|l| {
                    model
                        .iter()
                        .filter(|(len, net, _)| {
                            *len == l && a & (u128::MAX << (128 - u32::from(l))) == *net
                        })
                        .all(|(_, _, p)| *p == Some(D2.0))
                }) && tun_up;
                let target = Ipv6Addr::from(a);
                h.inject(UP, &ns_from_router(target));
                let answered = !h.take(UP).is_empty();
                assert_eq!(answered, expected, "step {step}: NS for {target}");
                seen[usize::from(answered)] += 1;
                h.clear();
            }
        }
        h.drain();
        h.now += Duration::from_millis(1);
    }
    assert_eq!(
        h.engine.routed_routes().len(),
        model.iter().filter(|k| k.2 == Some(D2.0)).count()
    );
}
