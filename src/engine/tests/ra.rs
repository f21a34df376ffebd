//! RS/RA relay, pacing, enabling (two P-bit RAs) and the loop rules.

use super::*;
use crate::engine::{RaSource, Tunables};
use crate::wire::{NdOption, PrefixInfo};

fn ra_fields(s: &Sent) -> RouterAdvert {
    match s.nd().message {
        NdMessage::RouterAdvert(ra) => ra,
        m => panic!("not an RA: {m:?}"),
    }
}

fn rs_from_guest(i: u8) -> Vec<u8> {
    emit_nd(
        gmac(i),
        Mac::ipv6_multicast(all_routers()),
        gmac(i).link_local(),
        all_routers(),
        &NdMessage::RouterSolicit,
        &[OptionRepr::SourceLla(gmac(i))],
    )
}

fn pio() -> OptionRepr {
    OptionRepr::PrefixInfo(PrefixInfo {
        prefix_len: 64,
        on_link: true,
        autonomous: true,
        valid_lifetime: 86400,
        preferred_lifetime: 14400,
        prefix: "2001:db8:1::".parse().unwrap(),
    })
}

#[test]
fn start_sends_rs_upstream_and_repeats_until_an_ra_arrives() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.engine.poll_timeout(),
        Some(Instant::ZERO),
        "RS due at once"
    );
    h.advance(Duration::ZERO);
    let rs = h.take(UP);
    assert_eq!(rs.len(), 1);
    assert!(rs[0].is_rs());
    let p = rs[0].nd();
    assert_eq!(
        (p.src_addr, p.dst_addr, p.slla),
        (port_ll(UP), all_routers(), Some(UP_MAC))
    );
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.take(UP).iter().filter(|s| s.is_rs()).count(),
        1,
        "repeated after ra_min_interval"
    );
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.clear();
    h.advance(Duration::from_secs(30));
    assert!(h.take(UP).is_empty(), "no more RS once an RA is known");
}

#[test]
fn downstream_port_forwards_only_after_two_p_bit_ras() {
    let mut h = Harness::new(config());
    h.advance(Duration::ZERO);
    h.clear();
    assert!(!h.proxying(D1));
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    for p in [D1, D2] {
        let out = h.take(p);
        assert_eq!(out.len(), 1, "first P-bit RA at once");
        assert!(ra_fields(&out[0]).flags.proxy());
    }
    assert!(!h.proxying(D1), "one RA is not enough");
    // Nothing but RAs goes there yet.
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_port_disabled"), 1);
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.take(D1).iter().filter(|s| s.is_ra()).count(),
        1,
        "second RA after the interval"
    );
    assert!(h.proxying(D1) && h.proxying(D2));
    assert!(h.events.contains(&Event::PortProxying {
        port: D1,
        enabled: true
    }));
    h.clear();
    h.advance(Duration::from_millis(1100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn ra_copies_are_built_per_port_from_the_original() {
    let mut cfg = config();
    cfg.ports[2].mtu = 1400;
    let mut h = Harness::ready(cfg);
    h.advance(Duration::from_secs(5));
    h.inject(
        UP,
        &ra(RaFlags::MANAGED, 1800, &[OptionRepr::Mtu(1500), pio()]),
    );
    assert!(h.take(UP).is_empty());
    for (p, mtu) in [(D1, 1500), (D2, 1400)] {
        let out = h.take(p);
        assert_eq!(out.len(), 1);
        let pkt = out[0].nd();
        let f = ra_fields(&out[0]);
        assert!(f.flags.proxy(), "P set");
        assert!(f.flags.contains(RaFlags::MANAGED), "M kept");
        assert_eq!(pkt.slla, Some(port_mac(p)), "SLLA = this port's MAC");
        assert_eq!(pkt.eth_src, port_mac(p));
        assert_eq!(pkt.src_addr, router_ll(), "KeepRouter: router's link-local");
        assert!(
            pkt.options().any(|o| o == NdOption::Mtu(mtu)),
            "MTU clamped to {mtu}"
        );
        assert!(
            pkt.options()
                .any(|o| matches!(o, NdOption::PrefixInfo(pi) if pi.on_link))
        );
    }
    assert_eq!(
        h.count("relayed_ra"),
        2 + 4,
        "two enabling RAs per port, then this one"
    );
}

#[test]
fn ra_source_relay_uses_our_link_local_and_clears_pio_l() {
    let mut cfg = config();
    cfg.ra_source = RaSource::Relay;
    let mut h = Harness::new(cfg);
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[pio()]));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    let pkt = out[0].nd();
    assert_eq!(pkt.src_addr, port_ll(D1));
    assert!(
        pkt.options()
            .any(|o| matches!(o, NdOption::PrefixInfo(pi) if !pi.on_link && pi.autonomous))
    );
}

#[test]
fn multicast_ras_are_paced_per_port_and_the_latest_wins() {
    let mut h = Harness::ready(config());
    h.advance(Duration::from_secs(5));
    h.inject(UP, &ra(RaFlags::empty(), 1000, &[]));
    assert_eq!(h.take(D1).len(), 1);
    h.clear();
    h.advance(Duration::from_secs(1));
    h.inject(UP, &ra(RaFlags::empty(), 1001, &[]));
    h.inject(UP, &ra(RaFlags::empty(), 1002, &[]));
    assert!(h.sent.is_empty(), "within ra_min_interval: held");
    h.advance(Duration::from_secs(2));
    let out = h.take(D1);
    assert_eq!(out.len(), 1, "one RA per interval");
    assert_eq!(ra_fields(&out[0]).router_lifetime, 1002, "latest wins");
    assert_eq!(h.take(D2).len(), 1);
    h.advance(Duration::from_secs(10));
    assert!(h.sent.is_empty(), "nothing pending any more");
}

#[test]
fn unicast_ra_to_a_guest_is_delivered_unpaced() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.clear();
    let f = emit_nd(
        ROUTER_MAC,
        UP_MAC,
        router_ll(),
        addr(10),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::empty(),
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    h.inject(UP, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nd().eth_dst, gmac(10));
    assert!(ra_fields(&out[0]).flags.proxy());
    assert!(h.sent.is_empty());
}

#[test]
fn rs_goes_upstream_only_with_slla_rewritten_and_rate_limited() {
    let mut h = Harness::ready(config());
    h.inject(D1, &rs_from_guest(10));
    let up = h.take(UP);
    assert_eq!(up.len(), 1);
    let p = up[0].nd();
    assert_eq!(
        (p.slla, p.eth_src, p.src_addr),
        (Some(UP_MAC), UP_MAC, gmac(10).link_local())
    );
    assert!(h.sent.is_empty(), "RS never goes to other downstream ports");
    h.inject(D2, &rs_from_guest(20));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_rate_limited"), 1, "rs_rate 1/s");
    h.advance(Duration::from_secs(1));
    h.inject(D2, &rs_from_guest(20));
    assert_eq!(h.take(UP).len(), 1);
    // RS on the uplink is for the routers.
    h.inject(UP, &rs_from_guest(30));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("ignored_rs"), 1);
    assert_eq!(h.count("relayed_rs"), 2);
}

/// An RA from `mac` (its link-local as source, `mac` as SLLA).
fn ra_from(mac: Mac, flags: RaFlags) -> Vec<u8> {
    emit_nd(
        mac,
        Mac::ipv6_multicast(all_nodes()),
        mac.link_local(),
        all_nodes(),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(mac)],
    )
}

/// An NS for `target` from `mac`'s link-local to the target's group.
fn ns_from(mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    ns(
        mac,
        Mac::ipv6_multicast(group),
        mac.link_local(),
        group,
        target,
        Some(mac),
    )
}

#[test]
fn p_bit_ra_on_the_uplink_quarantines_its_sender_not_the_uplink() {
    let mut cfg = config();
    cfg.tunables = Tunables {
        proxy_disable_hold: Duration::from_secs(60),
        ..Tunables::default()
    };
    let mut h = Harness::ready(cfg);
    h.inject(UP, &ra_from(UPHOST_MAC, RaFlags::PROXY));
    assert!(h.sent.is_empty(), "a P-bit RA is never relayed");
    assert_eq!(h.count("drop_ra_p_bit"), 1);
    assert_eq!(h.count("quarantined_senders"), 1);
    assert!(
        h.proxying(UP) && h.proxying(D1),
        "nobody else loses the relay"
    );
    // The router's NS still reach the guests; the other proxy's frames do not.
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 1);
    h.clear();
    h.inject(UP, &ns_from(UPHOST_MAC, addr(11)));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_quarantined"), 1);
    // A P-bit RA forged with the router's MAC quarantines nobody.
    h.inject(UP, &ra_from(ROUTER_MAC, RaFlags::PROXY));
    assert_eq!(h.count("drop_ra_p_bit"), 2);
    assert_eq!(h.count("quarantined_senders"), 1);
    h.inject(UP, &ns_from_router(addr(12)));
    assert_eq!(h.take(D1).len(), 1);
    // The hold ends a minute after the last P-bit RA.
    h.advance(Duration::from_secs(61));
    h.clear();
    h.inject(UP, &ns_from(UPHOST_MAC, addr(13)));
    assert_eq!(h.take(D1).len(), 1, "hold over");
}

#[test]
fn a_p_clear_ra_releases_a_router_quarantined_before_it_was_heard() {
    let mut h = Harness::new(config());
    // Someone posing as a proxy with the router's MAC before the router's first RA.
    h.inject(UP, &ra(RaFlags::PROXY, 1800, &[]));
    assert_eq!(h.count("quarantined_senders"), 1);
    // The router's own RA: relayed, and the router is heard from then on.
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.advance(Duration::from_secs(10));
    assert!(h.proxying(D1));
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn cascade_mode_relays_p_bit_ras() {
    let mut cfg = config();
    cfg.honour_proxy_bit = false;
    let mut h = Harness::ready(cfg);
    h.advance(Duration::from_secs(5));
    h.inject(UP, &ra(RaFlags::PROXY, 1800, &[]));
    assert_eq!(h.take(D1).len(), 1);
    assert_eq!(h.count("ra_p_bit_ignored"), 1);
    assert_eq!(h.count("drop_ra_p_bit"), 0);
    assert!(h.proxying(UP));
}

#[test]
fn rogue_ra_on_a_downstream_port_is_dropped_and_optionally_disables_it() {
    let rogue = rogue_ra(66);
    // Default: dropped and counted, the port keeps proxying (the §9 DoS lever is off).
    let mut h = Harness::ready(config());
    h.inject(D1, &rogue);
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_rogue_ra"), 1);
    assert!(h.proxying(D1));
    // disable_on_rogue_ra: the port stops proxying for the hold, others go on.
    let mut cfg = config();
    cfg.disable_on_rogue_ra = true;
    let mut h = Harness::ready(cfg);
    h.inject(D1, &rogue);
    assert!(!h.proxying(D1) && h.proxying(D2));
    assert_eq!(h.count("ports_disabled"), 1);
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(h.take(D1).is_empty());
    assert_eq!(h.take(D2).len(), 1);
    // After the hold the port re-enables with two P-bit RAs.
    h.clear();
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.take(D1).iter().filter(|s| s.is_ra()).count(), 1);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.take(D1).iter().filter(|s| s.is_ra()).count(), 1);
    assert!(h.proxying(D1));
}

#[test]
fn a_guests_p_bit_ras_quarantine_that_guest_and_nobody_else() {
    let mut cfg = config();
    cfg.tunables = Tunables {
        proxy_disable_hold: Duration::from_secs(60),
        ..Tunables::default()
    };
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D2);
    // Issue 14 item 1: three P-bit RAs from one guest used to switch D2 off for an hour.
    for _ in 0..3 {
        h.inject(D2, &ra_from(gmac(66), RaFlags::PROXY));
        h.advance(Duration::from_secs(1));
    }
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_rogue_ra"), 3);
    assert_eq!(
        h.count("quarantined_senders"),
        1,
        "renewed, not counted again"
    );
    assert!(h.proxying(D2), "the other guests keep their relay");
    let snap = h.engine.snapshot(h.now);
    assert_eq!(snap.ports[D2.index()].quarantined.len(), 1);
    assert_eq!(snap.ports[D2.index()].quarantined[0].0, gmac(66));
    // The other guest is still reachable; the quarantined one is not heard.
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D2).len(), 1);
    h.clear();
    h.inject(D2, &ns_from(gmac(66), router_global()));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_quarantined"), 1);
    // A minute after its last P-bit RA it is heard again.
    h.advance(Duration::from_secs(60));
    h.clear();
    h.inject(D2, &ns_from(gmac(66), addr(20)));
    assert!(!h.take(UP).is_empty());
    assert!(
        h.engine.snapshot(h.now).ports[D2.index()]
            .quarantined
            .is_empty()
    );
}

#[test]
fn quarantine_is_bounded_per_port() {
    let mut h = Harness::ready(config());
    for i in 0..40u8 {
        h.inject(D1, &ra_from(gmac(100 + i), RaFlags::PROXY));
        h.advance(Duration::from_millis(10));
    }
    assert_eq!(h.count("quarantined_senders"), 40);
    let snap = h.engine.snapshot(h.now);
    assert_eq!(snap.ports[D1.index()].quarantined.len(), 16);
    // The newest senders are the ones held.
    assert!(
        snap.ports[D1.index()]
            .quarantined
            .iter()
            .any(|(m, _)| *m == gmac(139))
    );
    assert!(h.proxying(D1));
}

#[test]
fn a_hold_that_ends_asks_for_an_ra_in_the_same_timeout_call() {
    // Found by the engine fuzz target: the port's hold ended after the global timers had
    // run, so the RS it asks for stayed due after `handle_timeout` returned.
    let mut cfg = config();
    cfg.disable_on_rogue_ra = true;
    let mut h = Harness::new(cfg);
    h.link(D1, super::super::LinkEvent::Down);
    h.inject(D2, &ra_from(gmac(66), RaFlags::empty()));
    assert!(!h.proxying(D2));
    // No port waits for an RA now, so the RS timer stops.
    h.advance(Duration::from_secs(10));
    let later = h.now + Duration::from_secs(3601);
    h.engine.handle_timeout(later);
    assert!(
        h.engine.poll_timeout().is_some_and(|t| t > later),
        "nothing left due"
    );
}
