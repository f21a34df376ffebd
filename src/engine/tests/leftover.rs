//! Routes an earlier run left (`Engine::adopt_routes`): the re-verification schedule,
//! takeover by a confirmed binding without a flap, removal at the end of the grace
//! period, on port loss, and the cap.

use super::*;
use crate::engine::{LeftoverFate, LinkEvent, ROUTE_GRACE};

fn remove(a: Ipv6Addr, port: PortId) -> Action {
    Action::RemoveRoute { addr: a, port }
}

/// When NS for `target` went out on `port` while time advances to `until` in steps of
/// 100 ms (times since `from`, in whole tenths of a second).
fn probe_times(
    h: &mut Harness,
    port: PortId,
    target: Ipv6Addr,
    from: Instant,
    until: Duration,
) -> Vec<u64> {
    let mut at = Vec::new();
    let end = from + until;
    while h.now < end {
        h.advance(Duration::from_millis(100));
        let n = h.take(port).iter().filter(|s| s.is_ns_for(target)).count();
        for _ in 0..n {
            at.push((h.now - from).total_micros() / 100_000);
        }
    }
    at
}

#[test]
fn probes_wait_for_the_port_to_be_enabled_then_follow_the_schedule() {
    let mut h = Harness::new(config());
    let start = h.now;
    h.engine
        .adopt_routes(h.now, &[(addr(5), D1), (addr(6), D2)]);
    h.drain();
    assert_eq!(h.count("routes_reconciled_kept"), 2);
    assert!(h.routes.is_empty(), "kept, not touched");
    assert!(h.events.contains(&Event::LeftoverRoute {
        addr: addr(5),
        port: D1,
        fate: LeftoverFate::Kept {
            until: start + ROUTE_GRACE
        },
    }));
    assert!(
        h.sent.iter().all(|s| !s.is_ns_for(addr(5))),
        "port not enabled yet"
    );
    // Nothing before the port is enabled, even long after.
    let early = probe_times(&mut h, D1, addr(5), start, Duration::from_secs(5));
    assert!(early.is_empty(), "probed before enabling: {early:?}");
    assert!(!h.proxying(D1));
    // The router's RA arrives at 5 s: the first P-bit RA at once, the second (enabling)
    // one MIN_DELAY_BETWEEN_RAS later, at 8 s; the rounds start then, every NS from
    // the port's link-local to the solicited-node group.
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    let enabled_at = h.now + Duration::from_secs(3);
    let times = probe_times(&mut h, D1, addr(5), start, Duration::from_secs(29));
    let since_enabled: Vec<u64> = times
        .iter()
        .map(|t| t - (enabled_at - start).total_micros() / 100_000)
        .collect();
    assert_eq!(
        since_enabled,
        [0, 30, 60, 110],
        "rounds at 0, 3, 6, 11 s after enabling"
    );
    assert_eq!(
        probe_times(&mut h, D2, addr(6), start, Duration::ZERO),
        Vec::<u64>::new()
    );
    assert!(
        h.routes.is_empty(),
        "nothing removed inside the grace period"
    );
    // The grace period ends 30 s after adoption: both routes go, each on its port.
    h.advance(Duration::from_secs(1));
    assert_eq!(h.routes, vec![remove(addr(5), D1), remove(addr(6), D2)]);
    assert_eq!(h.count("routes_reconciled_removed"), 2);
    assert!(h.events.contains(&Event::LeftoverRoute {
        addr: addr(5),
        port: D1,
        fate: LeftoverFate::NotVerified,
    }));
    assert!(h.engine.leftover_routes().is_empty());
    // The grace timer is disarmed: nothing wakes the driver for leftovers any more.
    assert!(h.engine.poll_timeout().is_none_or(|t| t > h.now));
}

#[test]
fn probes_start_at_once_on_an_enabled_port_and_the_answer_takes_the_route_over() {
    let mut h = Harness::ready(config());
    h.engine.adopt_routes(h.now, &[(addr(10), D1)]);
    h.drain();
    // Due now: the driver's next handle_timeout sends it.
    assert_eq!(h.engine.poll_timeout(), Some(h.now));
    h.advance(Duration::ZERO);
    let ns: Vec<_> = h
        .take(D1)
        .into_iter()
        .filter(|s| s.is_ns_for(addr(10)))
        .collect();
    assert_eq!(ns.len(), 1);
    let p = ns[0].nd();
    assert_eq!(p.src_addr, port_ll(D1));
    assert_eq!(p.dst_addr, solicited_node(addr(10)));
    assert_eq!(h.count("sent_ns"), 1);
    // The guest answers the relay: a confirmed binding, and the route is taken over with
    // one InstallRoute (a replace in place), never removed first.
    h.inject(D1, &probe_answer(10, D1));
    let b = h.binding(addr(10)).expect("bound by the answer");
    assert_eq!(
        (b.port, b.state, b.routed),
        (D1, super::super::BindingState::Reachable, true)
    );
    assert_eq!(
        h.routes,
        vec![Action::InstallRoute {
            addr: addr(10),
            port: D1
        }]
    );
    assert_eq!(h.count("routes_reconciled_verified"), 1);
    assert!(h.events.contains(&Event::LeftoverRoute {
        addr: addr(10),
        port: D1,
        fate: LeftoverFate::Verified,
    }));
    // No more rounds for it, and the grace period ends with nothing to remove.
    h.clear();
    h.advance(ROUTE_GRACE);
    assert!(h.take(D1).iter().all(|s| !s.is_ns_for(addr(10))));
    assert!(h.routes.is_empty(), "{:?}", h.routes);
    assert_eq!(h.count("routes_reconciled_removed"), 0);
}

#[test]
fn a_guest_confirmed_on_another_port_moves_the_route() {
    let mut h = Harness::ready(config());
    h.engine.adopt_routes(h.now, &[(addr(10), D2)]);
    h.drain();
    h.clear();
    // The guest answers the router's NS on br0 now.
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert_eq!(
        h.routes,
        vec![
            remove(addr(10), D2),
            Action::InstallRoute {
                addr: addr(10),
                port: D1
            }
        ]
    );
    assert_eq!(h.count("routes_reconciled_removed"), 1);
    assert!(h.engine.leftover_routes().is_empty());
}

#[test]
fn a_route_already_routed_for_its_binding_is_left_to_the_binding() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.engine.adopt_routes(h.now, &[(addr(10), D1)]);
    h.drain();
    assert!(h.routes.is_empty());
    assert!(h.engine.leftover_routes().is_empty());
    assert_eq!(h.count("routes_reconciled_verified"), 1);
}

#[test]
fn routes_the_config_would_not_make_are_removed_at_once() {
    let mut h = Harness::ready(config());
    let outside: Ipv6Addr = "2001:db8:99::5".parse().unwrap();
    h.link(D2, LinkEvent::Down);
    h.clear();
    h.engine.adopt_routes(
        h.now,
        &[
            (addr(1), UP),
            (outside, D1),
            (addr(2), D2),
            (addr(3), PortId(9)),
        ],
    );
    h.drain();
    assert_eq!(
        h.routes,
        vec![
            remove(addr(1), UP),
            remove(outside, D1),
            remove(addr(2), D2)
        ]
    );
    assert_eq!(h.count("routes_reconciled_removed"), 3);
    assert_eq!(
        h.count("routes_reconciled_refused"),
        1,
        "a port the engine lacks"
    );
    assert_eq!(h.count("routes_reconciled_kept"), 0);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LeftoverRoute {
            fate: LeftoverFate::Unwanted,
            ..
        }
    )));
}

#[test]
fn a_port_that_goes_down_loses_its_leftover_routes_at_once() {
    let mut h = Harness::ready(config());
    h.engine
        .adopt_routes(h.now, &[(addr(5), D1), (addr(6), D2)]);
    h.drain();
    h.clear();
    h.link(D1, LinkEvent::Down);
    assert_eq!(h.routes, vec![remove(addr(5), D1)]);
    assert_eq!(h.engine.leftover_routes(), vec![(addr(6), D2)]);
}

#[test]
fn adoption_is_capped_at_max_bindings_and_refusals_counted() {
    let mut cfg = config();
    cfg.tunables.max_bindings = 4;
    cfg.tunables.max_bindings_per_port = 3;
    let mut h = Harness::ready(cfg);
    let routes: Vec<_> = (1..=6).map(|i| (addr(i), D1)).collect();
    h.engine.adopt_routes(h.now, &routes);
    h.drain();
    assert_eq!(h.engine.leftover_routes().len(), 4);
    assert_eq!(h.count("routes_reconciled_kept"), 4);
    assert_eq!(h.count("routes_reconciled_refused"), 2);
    assert_eq!(h.routes, vec![remove(addr(5), D1), remove(addr(6), D1)]);
    // Each round asks for the kept ones only.
    h.advance(Duration::ZERO);
    let asked: Vec<_> = (1..=6)
        .filter(|&i| h.sent.iter().any(|s| s.is_ns_for(addr(i))))
        .collect();
    assert_eq!(asked, [1, 2, 3, 4]);
}

#[test]
fn a_reload_keeps_leftovers_on_kept_ports_and_removes_those_on_removed_ports() {
    let mut h = Harness::ready(config());
    h.engine
        .adopt_routes(h.now, &[(addr(5), D1), (addr(6), D2)]);
    h.drain();
    h.clear();
    // br0 goes from the config; br1 becomes port 1.
    let mut cfg = config();
    cfg.ports.remove(1);
    h.engine.reload(h.now, cfg).unwrap();
    h.drain();
    assert_eq!(
        h.routes,
        vec![remove(addr(5), D1)],
        "named by its old PortId"
    );
    assert_eq!(h.engine.leftover_routes(), vec![(addr(6), PortId(1))]);
    h.clear();
    h.advance(ROUTE_GRACE);
    assert_eq!(h.routes, vec![remove(addr(6), PortId(1))]);
}

#[test]
fn what_becomes_of_a_leftover_route_is_told_even_without_emit_events() {
    let mut cfg = config();
    cfg.emit_events = false;
    let mut h = Harness::new(cfg);
    h.engine.adopt_routes(h.now, &[(addr(5), D1)]);
    h.drain();
    h.advance(ROUTE_GRACE);
    let fates: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LeftoverRoute { fate, .. } => Some(*fate),
            _ => None,
        })
        .collect();
    assert_eq!(
        fates,
        [
            LeftoverFate::Kept {
                until: Instant::ZERO + ROUTE_GRACE
            },
            LeftoverFate::NotVerified
        ]
    );
    assert!(
        h.events
            .iter()
            .all(|e| matches!(e, Event::LeftoverRoute { .. } | Event::NoRouterRa { .. })),
        "no other event without emit_events (the uplink is silent here): {:?}",
        h.events
    );
    assert_eq!(
        LeftoverFate::NotVerified.describe(addr(5), "br0"),
        "route 2001:db8:1::5/128 via br0 of an earlier run did not re-verify; removed"
    );
}

#[test]
fn without_ra_relaying_the_first_round_goes_out_at_once() {
    let mut cfg = config();
    cfg.ra_relay = false;
    let mut h = Harness::new(cfg);
    h.engine.adopt_routes(h.now, &[(addr(5), D1)]);
    h.drain();
    h.advance(Duration::ZERO);
    assert_eq!(
        h.take(D1).iter().filter(|s| s.is_ns_for(addr(5))).count(),
        1,
        "a port that forwards from the start is probed at adoption"
    );
}
