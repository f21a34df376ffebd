//! The in-kernel NA relay: what the engine tells the kernel and in which order, when it
//! leaves a guest's NA to it, and when it relays the NA itself again.

use super::*;
use crate::engine::{BindingState, LinkEvent};

fn relay_config() -> EngineConfig {
    let mut cfg = config();
    cfg.relay_in_kernel = true;
    cfg
}

/// How long an entry lives: a pending solicitation (RetransTimer × MAX_PROBES).
const LIFETIME: Duration = Duration::from_secs(3);

/// The `until` of the single `KernelRelayNa` told since the last clear, checking the
/// path: guest 10 on D1 answering the router on UP.
fn told(h: &Harness) -> Instant {
    let na: Vec<_> = h
        .kernel
        .iter()
        .filter(|a| matches!(a, Action::KernelRelayNa { .. }))
        .collect();
    match na.as_slice() {
        [
            Action::KernelRelayNa {
                from,
                target,
                solicitor,
                guest_mac,
                to,
                mac,
                solicitor_mac,
                until,
            },
        ] => {
            assert_eq!(
                (*from, *target, *solicitor, *guest_mac),
                (D1, addr(10), router_ll(), gmac(10))
            );
            assert_eq!((*to, *mac, *solicitor_mac), (UP, UP_MAC, ROUTER_MAC));
            *until
        }
        other => panic!("expected one KernelRelayNa, got {other:?}"),
    }
}

/// Guest 10 answers the router; returns how many NAs the engine sent up.
fn guest_answers(h: &mut Harness) -> usize {
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    h.take(UP).iter().filter(|s| s.is_na_for(addr(10))).count()
}

// The order of the telling and the NS: `ns_for_a_reachable_guest_is_left_to_the_kernel_once_told`.
#[test]
fn the_kernel_is_told_and_then_relays_the_answers() {
    // An NA that passed the program before the entry was there, processed after it:
    // the kernel says it did not relay it, so the engine does.
    let mut h = Harness::guest_asked_for(relay_config());
    assert_eq!(told(&h), h.now + LIFETIME);
    h.clear();
    h.advance(Duration::from_millis(1));
    h.inject_seen_at(D1, &na_to_router(gmac(10), D1, addr(10)), Instant::ZERO);
    let relayed_here = h.take(UP).iter().filter(|s| s.is_na_for(addr(10))).count();
    assert_eq!(relayed_here, 1, "seen by the kernel before its entry");
    assert_eq!(h.count("relayed_na_by_kernel"), 0);

    h.advance(Duration::from_millis(100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 0, "the kernel relayed the NS");
    assert_eq!(h.count("relayed_ns_by_kernel"), 1);
    assert!(h.kernel.is_empty(), "nothing new to tell");
    let relayed = h.count("relayed_na");
    assert_eq!(guest_answers(&mut h), 0, "the kernel relayed it");
    assert_eq!(h.count("relayed_na_by_kernel"), 1);
    assert_eq!(h.count("relayed_na"), relayed);
    assert!(h.events.contains(&Event::RelayedByKernel {
        from: D1,
        to: UP,
        message: "NA",
        target: addr(10)
    }));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(
        (b.port, b.mac, b.state),
        (D1, gmac(10), BindingState::Reachable),
        "still learned from"
    );
}

#[test]
fn answers_the_program_does_not_relay_go_through_the_engine() {
    let mut h = Harness::guest_asked_for(relay_config());
    h.advance(Duration::from_millis(100));
    h.clear();
    let to_router = |eth_src, tlla| {
        na(
            eth_src,
            D1_MAC,
            addr(10),
            router_ll(),
            SOLICITED,
            addr(10),
            tlla,
        )
    };
    // No TLLA: 24 bytes, which the program passes on.
    h.inject(D1, &to_router(gmac(10), None));
    assert_eq!(h.take(UP).len(), 1, "no TLLA");
    // Another MAC than the bound one the kernel was told.
    h.inject(D1, &to_router(gmac(11), Some(gmac(11))));
    assert_eq!(h.take(UP).len(), 1, "another MAC");
    // A TLLA other than the Ethernet source (the program compares both with the guest's).
    h.inject(D1, &to_router(gmac(10), Some(gmac(12))));
    assert_eq!(h.take(UP).len(), 1, "a TLLA other than the source");
    // To an asker the kernel was not told about (bound upstream, say).
    h.inject(UP, &ns_from_router(addr(10)));
    h.clear();
    let other = na(
        gmac(10),
        D1_MAC,
        addr(10),
        addr(99),
        SOLICITED,
        addr(10),
        Some(gmac(10)),
    );
    h.inject(D1, &other);
    assert_eq!(h.count("relayed_na_by_kernel"), 0);
}

#[test]
fn the_entry_is_renewed_in_place_and_not_counted_on_at_its_end() {
    let mut h = Harness::guest_asked_for(relay_config());
    let first = told(&h);
    h.clear();
    // Past half its life the next NS renews it; the kernel's entry has no gap, so the
    // answer right after the renewal is the kernel's.
    h.advance(Duration::from_millis(1600));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(told(&h), h.now + LIFETIME);
    assert!(told(&h) > first);
    h.clear();
    h.advance(Duration::from_millis(1));
    assert_eq!(guest_answers(&mut h), 0);
    assert_eq!(h.count("relayed_na_by_kernel"), 1);

    // Up to its end the kernel relays, and says so; after it, the engine.
    let end = h.now + LIFETIME;
    h.advance(Duration::from_millis(1));
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(
        !h.kernel
            .iter()
            .any(|a| matches!(a, Action::KernelRelayNa { .. })),
        "not renewed yet"
    );
    h.clear();
    let left = end.saturating_since(h.now).total_micros();
    h.advance(Duration::from_micros(left - 5_000 - 1_000));
    assert_eq!(guest_answers(&mut h), 0, "5 ms before the end");
    h.advance(Duration::from_millis(5));
    assert_eq!(guest_answers(&mut h), 1, "at the end");
}

#[test]
fn link_changes_reload_and_refusals_take_the_relaying_back() {
    let forgot = |h: &Harness| h.kernel.contains(&Action::KernelForgetRelays);
    let told_again = |h: &mut Harness| {
        h.clear();
        h.advance(Duration::from_millis(100));
        h.inject(UP, &ns_from_router(addr(10)));
        let told = h.kernel.len();
        h.advance(Duration::from_millis(100));
        h.clear();
        told
    };
    let mut h = Harness::guest_asked_for(relay_config());
    h.clear();
    let new_mac = Mac([0x02, 0, 0, 0, 0, 0x99]);
    h.link(UP, LinkEvent::MacChanged(new_mac));
    assert!(forgot(&h), "a new uplink MAC");
    h.clear();
    h.advance(Duration::from_millis(100));
    assert_eq!(guest_answers(&mut h), 1, "relayed here until told again");
    h.inject(UP, &ns_from_router(addr(10)));
    assert!(
        h.kernel
            .iter()
            .any(|a| matches!(a, Action::KernelRelayNa { mac, .. } if *mac == new_mac))
    );

    assert_eq!(told_again(&mut h), 0);
    h.link(D1, LinkEvent::Down);
    assert!(forgot(&h), "the guest's port went down");

    let mut h = Harness::guest_asked_for(relay_config());
    h.clear();
    h.engine.reload(h.now, relay_config()).unwrap();
    h.drain();
    assert!(forgot(&h), "reload");

    let mut h = Harness::guest_asked_for(relay_config());
    h.engine.kernel_relay_refused(addr(10), router_ll());
    h.kernel_model.refuse_relay(addr(10), router_ll());
    h.clear();
    h.advance(Duration::from_millis(100));
    assert_eq!(guest_answers(&mut h), 1, "refused: relayed here");
    assert_eq!(told_again(&mut h), 1);
    assert_eq!(guest_answers(&mut h), 0, "told again and counted on");
}

#[test]
fn without_the_option_the_kernel_is_never_told() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    for _ in 0..3 {
        h.inject(UP, &ns_from_router(addr(10)));
        h.advance(Duration::from_millis(100));
        assert_eq!(guest_answers(&mut h), 1);
    }
    assert!(h.kernel.is_empty());
    assert_eq!(h.count("relayed_na_by_kernel"), 0);
}

/// The `KernelRelayNs` entries told since the last clear, as (from, to, mac, guest MAC,
/// until) for guest 10.
fn told_ns(h: &Harness) -> Vec<(PortId, PortId, Mac, Mac, Instant)> {
    h.kernel
        .iter()
        .filter_map(|a| match a {
            Action::KernelRelayNs {
                from,
                target,
                to,
                mac,
                guest_mac,
                until,
            } if *target == addr(10) => Some((*from, *to, *mac, *guest_mac, *until)),
            _ => None,
        })
        .collect()
}

/// The router asks for guest 10; returns how many NS the engine sent to D1.
fn router_asks(h: &mut Harness) -> usize {
    h.inject(UP, &ns_from_router(addr(10)));
    h.take(D1).len()
}

#[test]
fn ns_for_a_reachable_guest_is_left_to_the_kernel_once_told() {
    let mut h = Harness::ready(relay_config());
    h.bind_guest(10, D1);
    // The NS entry is told with the NA entry, before the NS goes to the guest's MAC.
    h.engine.handle_frame(h.now, UP, &ns_from_router(addr(10)));
    let mut order = Vec::new();
    while let Some(a) = h.engine.poll_action() {
        match a {
            Action::KernelRelayNs { .. } => order.push("ns entry"),
            Action::KernelRelayNa { .. } => order.push("na entry"),
            Action::Transmit { port: D1, frame } => {
                assert_eq!(&frame[..6], &gmac(10).0, "to the guest's own MAC");
                order.push("ns");
            }
            _ => {}
        }
    }
    assert_eq!(order, ["na entry", "ns entry", "ns"]);

    let mut h = Harness::ready(relay_config());
    h.bind_guest(10, D1);
    assert_eq!(router_asks(&mut h), 1, "not told yet: the engine relays");
    let until = h.now + Duration::from_secs(1);
    assert_eq!(
        told_ns(&h),
        [(UP, D1, D1_MAC, gmac(10), until)],
        "until a RetransTimer after the first NS to the guest's MAC"
    );
    h.clear();
    h.advance(Duration::from_millis(1));
    h.inject_seen_at(UP, &ns_from_router(addr(10)), Instant::ZERO);
    assert_eq!(h.take(D1).len(), 1, "seen by the kernel before its entry");
    h.advance(Duration::from_millis(100));
    assert_eq!(router_asks(&mut h), 0, "the kernel relayed it");
    assert_eq!(h.count("relayed_ns_by_kernel"), 1);
    assert!(h.events.contains(&Event::RelayedByKernel {
        from: UP,
        to: D1,
        message: "NS",
        target: addr(10)
    }));
    assert!(told_ns(&h).is_empty(), "more than half a RetransTimer left");
    assert_eq!(
        guest_answers(&mut h),
        0,
        "and the kernel relayed the answer"
    );
    // Past half of it, the next NS (still the kernel's) renews the entry in place.
    h.advance(Duration::from_millis(500));
    assert_eq!(router_asks(&mut h), 0);
    assert_eq!(told_ns(&h).len(), 1);
    assert!(told_ns(&h)[0].4 > until);
    h.clear();
    h.advance(Duration::from_millis(1));
    assert_eq!(router_asks(&mut h), 0, "no gap after a renewal");
    assert_eq!(h.count("relayed_ns_by_kernel"), 3);
}

#[test]
fn a_silent_guest_gets_the_group_again_from_the_engine() {
    let mut h = Harness::guest_asked_for(relay_config());
    let until = told_ns(&h)[0].4;
    h.clear();
    // The guest does not answer (a new MAC it has not announced): neither the engine's
    // unicast window nor the kernel's entry is renewed.
    h.advance(Duration::from_millis(600));
    assert_eq!(router_asks(&mut h), 0);
    assert!(
        told_ns(&h).is_empty(),
        "no confirmation: the window is not extended"
    );
    let left = until.saturating_since(h.now);
    h.advance(left + Duration::from_millis(1));
    h.inject(UP, &ns_from_router(addr(10)));
    let sent = h.take(D1);
    assert_eq!(sent.len(), 1, "the engine relays");
    let group = Mac::ipv6_multicast(solicited_node(addr(10)));
    assert_eq!(&sent[0].frame[..6], &group.0, "to the group");
    assert!(told_ns(&h).is_empty());
}

#[test]
fn removal_link_changes_and_refusals_take_the_ns_back() {
    let forgot = |h: &Harness| {
        h.kernel
            .contains(&Action::KernelForget { target: addr(10) })
    };
    let mut h = Harness::guest_asked_for(relay_config());
    h.clear();
    h.link(D1, LinkEvent::Down);
    assert!(forgot(&h), "the guest's port went down");

    let mut h = Harness::guest_asked_for(relay_config());
    h.clear();
    h.advance(Duration::from_secs(120));
    assert!(h.binding(addr(10)).is_none());
    assert!(forgot(&h), "binding removed");

    let mut h = Harness::guest_asked_for(relay_config());
    h.engine.kernel_relay_ns_refused(addr(10));
    h.kernel_model.refuse_ns(addr(10));
    h.clear();
    h.advance(Duration::from_millis(100));
    assert_eq!(router_asks(&mut h), 1, "refused: relayed here");
    assert_eq!(told_ns(&h).len(), 1, "and told again");
}

#[test]
fn with_the_fast_path_only_the_answers_are_relayed_in_the_kernel() {
    let mut cfg = relay_config();
    cfg.fast_path = Some(Duration::from_secs(5));
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    router_asks(&mut h);
    assert!(
        told_ns(&h).is_empty(),
        "re-verification is paced by the engine"
    );
    assert_eq!(h.kernel.len(), 1, "the NA entry: {:?}", h.kernel);
}

#[test]
fn ns_toward_the_uplink_are_never_left_to_the_kernel() {
    let mut h = Harness::ready(relay_config());
    // The router's global address, bound REACHABLE on the uplink.
    let group = solicited_node(router_global());
    let ask = |i: u16| {
        ns(
            gmac(20),
            Mac::ipv6_multicast(group),
            addr(0x20 + i),
            group,
            router_global(),
            Some(gmac(20)),
        )
    };
    h.inject(D1, &ask(0));
    let answer = na(
        ROUTER_MAC,
        UP_MAC,
        router_global(),
        addr(0x20),
        SOLICITED,
        router_global(),
        Some(ROUTER_MAC),
    );
    h.inject(UP, &answer);
    assert_eq!(
        h.binding(router_global()).map(|b| (b.port, b.state)),
        Some((UP, BindingState::Reachable))
    );
    h.clear();
    for i in 1..=300 {
        h.inject(D1, &ask(i));
    }
    assert!(
        !h.kernel
            .iter()
            .any(|a| matches!(a, Action::KernelRelayNs { .. })),
        "{:?}",
        h.kernel
    );
    // So the port's budget holds them: its burst of 200, less the first NS's token.
    assert_eq!(h.take(UP).len(), 199);
}

#[test]
fn a_backed_up_queue_loses_no_ns_the_kernel_saw_before_its_entry() {
    let mut h = Harness::ready(relay_config());
    h.bind_guest(10, D1);
    let seen = h.now;
    h.advance(Duration::from_micros(10));
    assert_eq!(router_asks(&mut h), 1, "not told yet: the engine relays");
    assert_eq!(told_ns(&h).len(), 1);
    h.clear();
    // 50 ms later the engine reaches an NS the kernel saw before its entry existed.
    h.advance(Duration::from_millis(50));
    h.inject_seen_at(UP, &ns_from_router(addr(10)), seen);
    assert_eq!(h.take(D1).len(), 1, "relayed by the engine: nothing lost");
    assert_eq!(h.count("relayed_ns_by_kernel"), 0);
}
