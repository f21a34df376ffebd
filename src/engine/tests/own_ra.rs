//! A silent uplink (no router RA, static setups): ports enabled with the relay's own
//! P-bit RAs after `ra_wait`, repeated every `own_ra_interval`, stopped by a router's
//! RA; the loop rules and guests' RS change nothing of it.

use super::*;
use crate::engine::{LinkEvent, ProxyState, Tunables};
use crate::wire::NdOption;

fn state(h: &Harness, p: PortId) -> ProxyState {
    h.engine.snapshot(h.now).ports[p.index()].state
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn ras(h: &mut Harness, p: PortId) -> Vec<Sent> {
    h.take(p).into_iter().filter(Sent::is_ra).collect()
}

fn no_router_ra_events(h: &Harness) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, Event::NoRouterRa { .. }))
        .count()
}

/// An own RA: P alone, lifetime 0, only the SLLA (this port's MAC), from the port's
/// link-local to all-nodes.
fn assert_own_ra(s: &Sent) {
    let pkt = s.nd();
    let NdMessage::RouterAdvert(ra) = pkt.message else {
        panic!("not an RA: {:?}", pkt.message);
    };
    assert_eq!(ra.flags, RaFlags::PROXY, "P set, M/O and the rest clear");
    assert_eq!(ra.router_lifetime, 0, "never a default router");
    assert_eq!(
        (ra.reachable_time, ra.retrans_timer, ra.cur_hop_limit),
        (0, 0, 0)
    );
    let opts: Vec<_> = pkt.options().collect();
    assert_eq!(opts, [NdOption::SourceLla(port_mac(s.port))], "SLLA only");
    assert_eq!((pkt.src_addr, pkt.dst_addr), (port_ll(s.port), all_nodes()));
    assert_eq!(
        (pkt.eth_src, pkt.eth_dst),
        (port_mac(s.port), Mac::ipv6_multicast(all_nodes()))
    );
}

/// Both downstream ports enabled by own RAs at 5 s and 8 s; outputs discarded.
fn enabled_by_own_ras(cfg: EngineConfig) -> Harness {
    let mut h = Harness::new(cfg);
    h.advance(Duration::from_secs(8));
    assert!(h.proxying(D1) && h.proxying(D2));
    h.clear();
    h
}

#[test]
fn a_silent_uplink_enables_ports_with_own_p_bit_ras_after_the_wait() {
    let mut h = Harness::new(config());
    h.advance(Duration::from_millis(4999));
    assert_eq!(
        h.take(UP).iter().filter(|s| s.is_rs()).count(),
        2,
        "RS at 0 s, 3 s"
    );
    assert!(h.sent.is_empty(), "nothing downstream while waiting");
    assert_eq!(
        state(&h, D1),
        ProxyState::WaitingForRa {
            since: Instant::ZERO,
            own_ras_at: Some(at(5))
        }
    );
    h.advance(Duration::from_millis(1));
    assert_eq!(no_router_ra_events(&h), 1);
    for p in [D1, D2] {
        let out = ras(&mut h, p);
        assert_eq!(out.len(), 1, "first own RA at the end of the wait");
        assert_own_ra(&out[0]);
        assert_eq!(state(&h, p), ProxyState::SendingRas { own: true, sent: 1 });
    }
    assert!(!h.proxying(D1), "one RA is not enough (RFC 4389 §6)");
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.count("drop_port_disabled"), 1);
    // Paced like relayed RAs: the second one ra_min_interval later.
    h.advance(Duration::from_millis(2999));
    assert!(ras(&mut h, D1).is_empty());
    h.advance(Duration::from_millis(1));
    for p in [D1, D2] {
        let out = ras(&mut h, p);
        assert_eq!(out.len(), 1);
        assert_own_ra(&out[0]);
        assert!(h.proxying(p));
        assert_eq!(state(&h, p), ProxyState::Proxying);
        assert!(h.events.contains(&Event::PortProxying {
            port: p,
            enabled: true
        }));
    }
    assert_eq!(h.count("sent_own_ra"), 4);
    assert_eq!(h.count("relayed_ra"), 0);
    h.clear();
    h.advance(Duration::from_millis(1100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(
        h.take(D1).iter().filter(|s| s.is_ns_for(addr(10))).count(),
        1
    );
    // No more RS once the ports proxy, and the own RA repeats only every 10 minutes.
    h.clear();
    h.engine.handle_timeout(h.now);
    h.advance(Duration::from_secs(599 - 1));
    assert!(h.sent.is_empty(), "{:?}", h.sent);
    h.advance(Duration::from_secs(1));
    for p in [D1, D2] {
        let out = ras(&mut h, p);
        assert_eq!(out.len(), 1, "the repeat at 8 s + 600 s");
        assert_own_ra(&out[0]);
    }
    assert!(h.sent.is_empty(), "{:?}", h.sent);
    h.advance(Duration::from_secs(600));
    assert_eq!(ras(&mut h, D1).len(), 1, "and every 600 s after");
    assert_eq!(no_router_ra_events(&h), 0, "the warning came once, at 5 s");
}

#[test]
fn a_router_ra_that_comes_later_is_relayed_and_own_ras_stop() {
    let mut h = enabled_by_own_ras(config());
    h.advance(Duration::from_secs(30));
    h.clear();
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    for p in [D1, D2] {
        let out = ras(&mut h, p);
        assert_eq!(out.len(), 1, "relayed at once (pacing allows)");
        let pkt = out[0].nd();
        let NdMessage::RouterAdvert(ra) = pkt.message else {
            unreachable!()
        };
        assert_eq!((pkt.src_addr, ra.router_lifetime), (router_ll(), 1800));
        assert!(ra.flags.proxy());
        assert!(h.proxying(p), "still proxying");
    }
    assert!(h.events.contains(&Event::RouterRaAfterAll {
        uplink: UP,
        router: router_ll()
    }));
    let own = h.count("sent_own_ra");
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.count("sent_own_ra"), own, "own RAs stopped");
    assert!(ras(&mut h, D1).is_empty());
    assert_eq!(
        h.count("sent_rs"),
        3,
        "RS at 0, 3, 6 s, none after: an RA is known"
    );
    // A port that comes back up is enabled with copies of the router's RA, at once.
    h.link(D1, LinkEvent::Down);
    h.link(D1, LinkEvent::Up);
    assert_eq!(
        state(&h, D1),
        ProxyState::SendingRas {
            own: false,
            sent: 1
        }
    );
    h.advance(Duration::from_secs(3));
    assert!(h.proxying(D1));
    assert_eq!(h.count("sent_own_ra"), own);
}

#[test]
fn a_router_ra_within_the_wait_means_no_own_ra_at_all() {
    let mut h = Harness::new(config());
    h.advance(Duration::from_secs(4));
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.advance(Duration::from_secs(700));
    assert!(h.proxying(D1) && h.proxying(D2));
    assert_eq!(h.count("sent_own_ra"), 0);
    assert_eq!(no_router_ra_events(&h), 0);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::RouterRaAfterAll { .. }))
    );
}

#[test]
fn a_port_coming_back_up_on_a_silent_uplink_does_not_wait_again() {
    let mut h = enabled_by_own_ras(config());
    h.link(D1, LinkEvent::Down);
    assert_eq!(state(&h, D1), ProxyState::LinkDown);
    h.advance(Duration::from_secs(20));
    assert!(ras(&mut h, D1).is_empty(), "nothing sent on a dead port");
    h.link(D1, LinkEvent::Up);
    h.advance(Duration::ZERO);
    let out = ras(&mut h, D1);
    assert_eq!(
        out.len(),
        1,
        "own RA at once: the uplink already proved silent"
    );
    assert_own_ra(&out[0]);
    assert_eq!(
        h.take(UP).iter().filter(|s| s.is_rs()).count(),
        1,
        "RS still asked"
    );
    h.advance(Duration::from_secs(3));
    assert!(h.proxying(D1));
    h.link(D1, LinkEvent::MtuChanged(1200));
    assert_eq!(state(&h, D1), ProxyState::MtuTooSmall { mtu: 1200 });
}

#[test]
fn p_bit_ras_on_the_uplink_are_no_router_ra_and_change_nothing() {
    let other_proxy = Mac([0x02, 0, 0, 0, 0, 0x77]);
    let p_bit = emit_nd(
        other_proxy,
        Mac::ipv6_multicast(all_nodes()),
        other_proxy.link_local(),
        all_nodes(),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 0,
            flags: RaFlags::PROXY,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(other_proxy)],
    );
    let mut h = Harness::new(config());
    h.advance(Duration::from_secs(2));
    h.inject(UP, &p_bit);
    assert_eq!(h.count("drop_ra_p_bit"), 1, "never relayed");
    assert_eq!(h.count("quarantined_senders"), 1);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::RouterRaAfterAll { .. }))
    );
    h.advance(Duration::from_secs(6));
    assert!(h.proxying(D1) && h.proxying(D2), "still enabled by own RAs");
    assert_eq!(h.count("sent_own_ra"), 4);
}

#[test]
fn a_rogue_ra_disables_one_port_only_and_own_ras_resume_after_the_hold() {
    let mut cfg = config();
    cfg.disable_on_rogue_ra = true;
    cfg.tunables = Tunables {
        proxy_disable_hold: Duration::from_secs(60),
        own_ra_interval: Duration::from_secs(30),
        ..Tunables::default()
    };
    let mut h = enabled_by_own_ras(cfg);
    let rogue = rogue_ra(66);
    h.inject(D1, &rogue);
    assert_eq!(
        h.count("drop_rogue_ra"),
        1,
        "a guest's RA is never a router's"
    );
    assert_eq!(
        state(&h, D1),
        ProxyState::Disabled {
            until: h.now + Duration::from_secs(60),
            by: Some((gmac(66).link_local(), gmac(66)))
        }
    );
    assert!(h.proxying(D2));
    h.advance(Duration::from_secs(59));
    assert!(ras(&mut h, D1).is_empty(), "no own RA on a disabled port");
    assert_eq!(ras(&mut h, D2).len(), 1, "D2 repeats 30 s after enabling");
    h.advance(Duration::from_secs(1));
    assert_eq!(
        ras(&mut h, D1).len(),
        1,
        "own RA at once when the hold ends"
    );
    h.advance(Duration::from_secs(3));
    assert!(h.proxying(D1));
    assert_eq!(no_router_ra_events(&h), 0, "warned once, before");
}

#[test]
fn a_guests_rs_changes_nothing_for_the_others() {
    let mut quiet = Harness::new(config());
    let mut h = Harness::new(config());
    let rs = emit_nd(
        gmac(5),
        Mac::ipv6_multicast(all_routers()),
        gmac(5).link_local(),
        all_routers(),
        &NdMessage::RouterSolicit,
        &[OptionRepr::SourceLla(gmac(5))],
    );
    for step in [1, 2, 2, 1, 1, 1, 600] {
        // RS from a guest before, during and after the enabling.
        for _ in 0..3 {
            h.inject(D1, &rs);
        }
        h.advance(Duration::from_secs(step));
        quiet.advance(Duration::from_secs(step));
        for p in [D1, D2] {
            assert_eq!(state(&h, p), state(&quiet, p), "at {:?}", h.now);
            assert_eq!(
                ras(&mut h, p).len(),
                ras(&mut quiet, p).len(),
                "at {:?}",
                h.now
            );
        }
    }
    assert_eq!(h.count("sent_own_ra"), quiet.count("sent_own_ra"));
    assert!(h.proxying(D2));
}

#[test]
fn without_ra_relaying_no_own_ra_is_sent() {
    let mut cfg = config();
    cfg.ra_relay = false;
    let mut h = Harness::new(cfg);
    assert!(h.proxying(D1));
    h.advance(Duration::from_secs(1200));
    assert_eq!(h.count("sent_own_ra"), 0);
    assert_eq!(no_router_ra_events(&h), 0);
    assert!(h.sent.iter().all(|s| !s.is_ra()));
}

#[test]
fn assume_running_proxies_at_once_and_sends_nothing() {
    let mut h = Harness::new(config());
    h.engine.assume_running(h.now);
    h.drain();
    assert!(h.proxying(D1) && h.proxying(D2));
    assert_eq!(state(&h, D1), ProxyState::Proxying);
    h.advance(Duration::from_secs(30));
    assert!(h.sent.is_empty(), "no RS, no own RA: {:?}", h.sent);
    // A router's RA is relayed as in a running relay: one copy per port, at once.
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    assert_eq!(ras(&mut h, D1).len(), 1);
    h.advance(Duration::from_secs(10));
    assert!(ras(&mut h, D1).is_empty(), "no enabling second copy");
}

#[test]
fn a_reload_that_turns_ra_relay_on_enables_the_ports_again() {
    let mut cfg = config();
    cfg.ra_relay = false;
    let mut h = Harness::new(cfg);
    assert!(h.proxying(D1));
    h.engine.reload(h.now, config()).unwrap();
    h.drain();
    assert!(matches!(
        state(&h, D1),
        ProxyState::WaitingForRa {
            own_ras_at: Some(_),
            ..
        }
    ));
    h.advance(Duration::from_secs(8));
    assert!(h.proxying(D1) && h.proxying(D2));
    assert_eq!(h.count("sent_own_ra"), 4);
}

#[test]
fn a_routers_unicast_answer_to_our_rs_is_its_ra_for_every_port() {
    // radvd answers an RS by unicast by default (AdvRASolicitedUnicast).
    let answer = emit_nd(
        ROUTER_MAC,
        UP_MAC,
        router_ll(),
        port_ll(UP),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::empty(),
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    let mut h = Harness::new(config());
    h.advance(Duration::from_millis(300));
    h.inject(UP, &answer);
    for p in [D1, D2] {
        let out = ras(&mut h, p);
        assert_eq!(out.len(), 1, "relayed to every downstream port");
        let pkt = out[0].nd();
        assert_eq!(
            (pkt.src_addr, pkt.dst_addr, pkt.eth_dst),
            (router_ll(), all_nodes(), Mac::ipv6_multicast(all_nodes()))
        );
    }
    h.advance(Duration::from_secs(3));
    assert!(h.proxying(D1) && h.proxying(D2));
    h.advance(Duration::from_secs(700));
    assert_eq!(h.count("sent_own_ra"), 0);
    assert_eq!(no_router_ra_events(&h), 0);
    assert_eq!(h.count("drop_no_binding"), 0);
}
