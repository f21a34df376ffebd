//! Announcements toward the uplink (`announce`): one unsolicited NA per binding on its
//! first confirmation, again after a move, never on re-confirmation, within each
//! port's budget, and none when off.

use super::*;
use crate::engine::{BindingState, Tunables};

fn announcing() -> EngineConfig {
    let mut c = config();
    c.announce = true;
    c
}

/// The announcements among the frames sent on the uplink since the last take: NAs to
/// all-nodes with no flag set (relayed answers go to the router that asked; a guest's
/// own relayed announcement keeps its O=1).
fn announcements(h: &mut Harness) -> Vec<Sent> {
    h.take(UP)
        .into_iter()
        .filter(|s| {
            matches!(s.nd().message, NdMessage::NeighborAdvert { flags, .. } if flags.is_empty())
                && s.nd().dst_addr == all_nodes()
        })
        .collect()
}

/// The router asks for guest `i`, the relay relays, the guest answers on `port`.
fn confirm_by_router(h: &mut Harness, i: u8, port: PortId) {
    let a = addr(u16::from(i));
    h.inject(UP, &ns_from_router(a));
    h.inject(port, &na_to_router(gmac(i), port, a));
}

#[test]
fn the_first_confirmation_announces_the_guest_once_with_the_uplinks_mac() {
    let mut h = Harness::ready(announcing());
    confirm_by_router(&mut h, 10, D1);
    let up = h.take(UP);
    let nas: Vec<_> = up.iter().filter(|s| s.is_na_for(addr(10))).collect();
    assert_eq!(nas.len(), 2, "the relayed answer and the announcement");
    assert_eq!(
        nas[0].nd().dst_addr,
        router_ll(),
        "the router's answer goes first"
    );
    let p = nas[1].nd();
    assert_eq!(p.eth_src, UP_MAC);
    assert_eq!(p.eth_dst, Mac::ipv6_multicast(all_nodes()));
    assert_eq!((p.src_addr, p.dst_addr), (addr(10), all_nodes()));
    assert_eq!(p.hop_limit, 255);
    assert_eq!(
        p.message,
        NdMessage::NeighborAdvert {
            flags: NaFlags::empty(),
            target_addr: addr(10)
        },
        "S=0 (to all-nodes), O=0 (never overrides another node), R=0"
    );
    assert_eq!(p.tlla, Some(UP_MAC));
    assert_eq!(p.slla, None);
    assert_eq!(h.count("announced_na"), 1);
    assert!(h.events.contains(&Event::Announced {
        port: UP,
        target: addr(10),
        bound_on: D1
    }));
    assert!(h.take(D1).iter().all(|s| !s.is_na_for(addr(10))));
}

#[test]
fn re_confirmations_announce_nothing() {
    let mut h = Harness::ready(announcing());
    confirm_by_router(&mut h, 10, D1);
    assert_eq!(announcements(&mut h).len(), 1);
    h.advance(Duration::from_secs(1));
    // The router asks again, and the relay's own NUD re-verifies it after ReachableTime.
    confirm_by_router(&mut h, 10, D1);
    for _ in 0..3 {
        while h.binding(addr(10)).unwrap().state != BindingState::Probe {
            h.advance(Duration::from_millis(500));
        }
        h.inject(D1, &probe_answer(10, D1));
        assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Reachable);
    }
    assert!(announcements(&mut h).is_empty());
    assert_eq!(h.count("announced_na"), 1);
    assert!(h.count("bindings_confirmed") >= 5);
}

#[test]
fn a_guest_moving_to_another_port_is_announced_once_more() {
    let mut h = Harness::ready(announcing());
    confirm_by_router(&mut h, 10, D1);
    assert_eq!(announcements(&mut h).len(), 1);
    h.advance(Duration::from_secs(1));
    h.inject(D2, &na_to_all_nodes(gmac(10), UNSOLICITED_O, addr(10)));
    // The old port fails its probes, the binding moves, the relay probes it on D2.
    h.advance(Duration::from_secs(3));
    assert_eq!(h.binding(addr(10)).unwrap().port, D2);
    assert!(
        announcements(&mut h).is_empty(),
        "not before it is confirmed"
    );
    h.inject(D2, &probe_answer(10, D2));
    let a = announcements(&mut h);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].nd().src_addr, a[0].nd().tlla),
        (addr(10), Some(UP_MAC))
    );
    assert!(h.events.contains(&Event::Announced {
        port: UP,
        target: addr(10),
        bound_on: D2
    }));
    assert_eq!(h.count("announced_na"), 2);
}

#[test]
fn each_port_has_its_own_bounded_budget_and_refused_ones_retry_later() {
    let mut cfg = announcing();
    cfg.tunables = Tunables {
        announce_rate: 1,
        announce_burst: 2,
        ..Tunables::default()
    };
    let mut h = Harness::ready(cfg);
    for i in 10..15 {
        confirm_by_router(&mut h, i, D1);
    }
    assert_eq!(announcements(&mut h).len(), 2, "D1's burst");
    assert_eq!(h.count("announce_rate_limited"), 3);
    // D1's guests have spent D1's budget only.
    confirm_by_router(&mut h, 20, D2);
    let a = announcements(&mut h);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].nd().src_addr, addr(20));
    // Their next confirmation (NUD after ReachableTime) announces the refused ones,
    // within the rate.
    let refused = [addr(12), addr(13), addr(14)];
    let mut announced = Vec::new();
    for _ in 0..120 {
        h.advance(Duration::from_millis(500));
        for i in 12..15u8 {
            let b = h.binding(addr(u16::from(i))).unwrap();
            if b.state == BindingState::Probe {
                h.inject(D1, &probe_answer(i, D1));
            }
        }
        announced.extend(announcements(&mut h).iter().map(|s| s.nd().src_addr));
    }
    announced.sort();
    assert_eq!(announced, refused, "each refused address once, none twice");
    assert_eq!(h.count("announced_na"), 6);
}

#[test]
fn a_binding_re_verified_after_a_restart_is_announced() {
    // A restarted relay finds the route the earlier run left and re-verifies it: the
    // confirmation is the first in this engine's life.
    let mut h = Harness::ready(announcing());
    h.engine.adopt_routes(h.now, &[(addr(10), D1)]);
    h.drain();
    h.advance(Duration::ZERO);
    assert!(h.take(D1).iter().any(|s| s.is_ns_for(addr(10))));
    h.inject(D1, &probe_answer(10, D1));
    let a = announcements(&mut h);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].nd().message,
        NdMessage::NeighborAdvert {
            flags: NaFlags::empty(),
            target_addr: addr(10)
        }
    );
}

#[test]
fn upstream_bindings_and_a_relay_with_announce_off_announce_nothing() {
    let mut h = Harness::ready(config());
    confirm_by_router(&mut h, 10, D1);
    assert!(announcements(&mut h).is_empty());
    assert_eq!(h.count("announced_na"), 0);

    // An address bound on the uplink (a host there answering the relay) is not a guest.
    let mut h = Harness::ready(announcing());
    h.engine.solicit(h.now, UP, addr(99));
    h.drain();
    let answer = na(
        UPHOST_MAC,
        UP_MAC,
        addr(99),
        port_ll(UP),
        SOLICITED,
        addr(99),
        Some(UPHOST_MAC),
    );
    h.inject(UP, &answer);
    assert_eq!(h.binding(addr(99)).unwrap().state, BindingState::Reachable);
    assert!(announcements(&mut h).is_empty());
    assert_eq!(h.count("announced_na"), 0);
}

#[test]
fn nothing_is_announced_while_the_uplink_is_down_and_the_next_confirmation_does() {
    let mut h = Harness::ready(announcing());
    h.link(UP, super::super::LinkEvent::Down);
    h.engine.solicit(h.now, D1, addr(10));
    h.drain();
    h.inject(D1, &probe_answer(10, D1));
    assert_eq!(h.binding(addr(10)).unwrap().state, BindingState::Reachable);
    assert!(announcements(&mut h).is_empty());
    assert_eq!(h.count("announce_rate_limited"), 0);
    h.link(UP, super::super::LinkEvent::Up);
    while h.binding(addr(10)).unwrap().state != BindingState::Probe {
        h.advance(Duration::from_millis(500));
    }
    h.inject(D1, &probe_answer(10, D1));
    assert_eq!(announcements(&mut h).len(), 1);
}
