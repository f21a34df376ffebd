//! State carried across a restart (`Engine::export_state`, `Engine::restore_state`):
//! what is saved, restored bindings routed then re-verified (kept or removed), never
//! beating a confirmed binding, the per-MAC share, ports resuming proxying only within
//! the disable hold and still sending their P-bit RAs, loop state shortened by the age.

use super::*;
use crate::engine::{BindingState, LinkEvent, SavedBinding, SavedPort, SavedState};

fn install(a: Ipv6Addr, port: PortId) -> Action {
    Action::InstallRoute { addr: a, port }
}

fn remove(a: Ipv6Addr, port: PortId) -> Action {
    Action::RemoveRoute { addr: a, port }
}

/// A saved downstream port that proxied and sent a P-bit RA `ago` before the save.
fn proxying_port(port: PortId, ago: Duration) -> SavedPort {
    SavedPort {
        port,
        mac: port_mac(port),
        proxying: true,
        last_ra_ago: Some(ago),
        disabled_for: None,
        quarantined: Vec::new(),
    }
}

fn saved_guest(i: u8, port: PortId) -> SavedBinding {
    SavedBinding {
        addr: addr(u16::from(i)),
        port,
        mac: gmac(i),
    }
}

/// The unicast NUD probes for guest `i` sent on `port` (to its MAC, from the port's
/// link-local) since the last take.
fn probes_for(h: &mut Harness, i: u8, port: PortId) -> usize {
    h.take(port)
        .iter()
        .filter(|s| {
            s.is_ns_for(addr(u16::from(i)))
                && s.nd().eth_dst == gmac(i)
                && s.nd().src_addr == port_ll(port)
        })
        .count()
}

#[test]
fn export_holds_confirmed_downstream_bindings_and_each_ports_loop_state() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.bind_guest(11, D2);
    // Learned, never confirmed: not saved.
    h.inject(
        D1,
        &ns(
            gmac(12),
            UP_MAC,
            addr(12),
            router_global(),
            router_global(),
            Some(gmac(12)),
        ),
    );
    assert!(h.binding(addr(12)).is_some());
    let saved = h.engine.export_state(h.now);
    assert_eq!(saved.bindings, [saved_guest(10, D1), saved_guest(11, D2)]);
    assert_eq!(saved.ports.len(), 3);
    for p in [D1, D2] {
        let sp = &saved.ports[p.index()];
        assert!(sp.proxying && sp.disabled_for.is_none());
        let ago = sp.last_ra_ago.expect("P-bit RAs were sent");
        assert!(ago < Duration::from_secs(10), "last RA {ago} ago");
    }
}

#[test]
fn restored_bindings_are_routed_at_once_then_kept_or_removed_by_their_probes() {
    let mut h = Harness::new(config());
    let saved = SavedState {
        ports: vec![
            proxying_port(D1, Duration::from_secs(5)),
            proxying_port(D2, Duration::from_secs(5)),
        ],
        bindings: vec![saved_guest(10, D1), saved_guest(11, D2)],
    };
    let report = h
        .engine
        .restore_state(h.now, &saved, Some(Duration::from_secs(2)));
    h.drain();
    assert_eq!((report.restored, report.refused), (2, 0));
    assert_eq!(report.resumed, [D1, D2]);
    assert_eq!(h.routes, [install(addr(10), D1), install(addr(11), D2)]);
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(
        (b.port, b.mac, b.state),
        (D1, gmac(10), BindingState::Stale)
    );
    assert!(b.restored && b.routed && b.confirmed_at.is_none());
    assert!(
        h.proxying(D1) && h.proxying(D2),
        "resumed without P-bit RAs first"
    );
    h.routes.clear();

    // Both are probed within a second, unicast to the saved MAC.
    h.advance(Duration::from_millis(1100));
    assert_eq!(probes_for(&mut h, 10, D1), 1);
    assert_eq!(probes_for(&mut h, 11, D2), 1);
    // Guest 10 answers: re-verified, its route untouched; guest 11 is gone.
    h.inject(D1, &probe_answer(10, D1));
    let b = h.binding(addr(10)).unwrap();
    assert_eq!(b.state, BindingState::Reachable);
    assert!(!b.restored && b.routed);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.routes, [remove(addr(11), D2)]);
    assert!(h.binding(addr(11)).is_none());
    assert!(h.binding(addr(10)).is_some());
    assert_eq!(h.count("bindings_restored"), 2);
    assert_eq!(h.count("bindings_reverified"), 1);
    assert_eq!(h.count("bindings_restore_failed"), 1);
}

#[test]
fn a_restored_binding_never_beats_a_confirmed_one() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D2);
    h.routes.clear();
    // Saved on D1, confirmed on D2 by this run: the confirmed one stays.
    let saved = SavedState {
        ports: Vec::new(),
        bindings: vec![saved_guest(10, D1), saved_guest(11, D1)],
    };
    let report = h.engine.restore_state(h.now, &saved, None);
    h.drain();
    assert_eq!((report.restored, report.refused), (1, 1));
    assert_eq!(h.binding(addr(10)).unwrap().port, D2);
    assert_eq!(h.routes, [install(addr(11), D1)]);
    h.routes.clear();
    // Guest 11 has moved to D2 meanwhile and is confirmed there (it answers an NS the
    // relay sent there): the restored binding yields at once, route and all.
    h.engine.solicit(h.now, D2, addr(11));
    h.inject(D2, &probe_answer(11, D2));
    let b = h.binding(addr(11)).unwrap();
    assert_eq!((b.port, b.state), (D2, BindingState::Reachable));
    assert!(!b.restored);
    assert_eq!(h.routes, [remove(addr(11), D1), install(addr(11), D2)]);
}

#[test]
fn restored_bindings_go_through_the_per_mac_share_and_skip_what_the_config_lacks() {
    let mut cfg = config();
    cfg.tunables.max_bindings_per_mac = 2;
    let mut h = Harness::new(cfg);
    h.link(D2, LinkEvent::Down);
    let one_mac = |i: u16| SavedBinding {
        addr: addr(i),
        port: D1,
        mac: gmac(7),
    };
    let saved = SavedState {
        ports: Vec::new(),
        bindings: vec![
            one_mac(1),
            one_mac(2),
            one_mac(3),
            // A port that is down, the uplink, a port the engine lacks, outside the prefix.
            saved_guest(20, D2),
            saved_guest(21, UP),
            saved_guest(22, PortId(9)),
            SavedBinding {
                addr: "2001:db8:99::1".parse().unwrap(),
                port: D1,
                mac: gmac(23),
            },
        ],
    };
    let report = h.engine.restore_state(h.now, &saved, None);
    h.drain();
    assert_eq!((report.restored, report.refused), (2, 5));
    assert_eq!(h.engine.binding_count(), 2);
    assert_eq!(h.count("bindings_restore_refused"), 5);
    assert_eq!(h.routes, [install(addr(1), D1), install(addr(2), D1)]);
}

#[test]
fn proxying_resumes_only_if_the_last_p_bit_ra_is_younger_than_the_hold() {
    let hold = config().tunables.proxy_disable_hold;
    let resumes = |ago: Duration, age: Option<Duration>, proxying: bool, mac: Mac| {
        let mut h = Harness::new(config());
        let saved = SavedState {
            ports: vec![SavedPort {
                proxying,
                mac,
                ..proxying_port(D1, ago)
            }],
            bindings: Vec::new(),
        };
        let report = h.engine.restore_state(h.now, &saved, age);
        assert_eq!(report.resumed.contains(&D1), h.proxying(D1));
        h.proxying(D1)
    };
    let secs = Duration::from_secs;
    assert!(resumes(secs(10), Some(secs(60)), true, D1_MAC));
    let just_over = Duration::from_micros(hold.total_micros() - 10_000_000);
    assert!(
        !resumes(secs(10), Some(just_over), true, D1_MAC),
        "hold reached"
    );
    assert!(!resumes(secs(10), None, true, D1_MAC), "age unknown");
    assert!(
        !resumes(secs(10), Some(secs(1)), false, D1_MAC),
        "was not proxying"
    );
    assert!(
        !resumes(secs(10), Some(secs(1)), true, D2_MAC),
        "its P-bit RAs came from another MAC"
    );
}

/// A fresh engine restored from a save in which D1 proxied and sent a P-bit RA 30 s
/// before (saved 1 s ago), its actions drained.
fn resumed_d1() -> Harness {
    let mut h = Harness::new(config());
    h.clear();
    let saved = SavedState {
        ports: vec![proxying_port(D1, Duration::from_secs(30))],
        bindings: Vec::new(),
    };
    h.engine
        .restore_state(h.now, &saved, Some(Duration::from_secs(1)));
    h.drain();
    h
}

#[test]
fn a_resumed_port_asks_for_an_ra_and_still_sends_its_two_p_bit_ras() {
    let mut h = resumed_d1();
    assert!(h.proxying(D1) && !h.proxying(D2));
    // D2 waits as before; both make the relay solicit the router, now and again later.
    h.advance(Duration::from_millis(10));
    assert!(h.take(UP).iter().any(Sent::is_rs));
    h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
    h.advance(Duration::from_secs(4));
    let p_bit_ras = |h: &mut Harness, p: PortId| {
        h.take(p)
            .iter()
            .filter(|s| matches!(s.nd().message, NdMessage::RouterAdvert(ra) if ra.flags.proxy()))
            .count()
    };
    assert_eq!(p_bit_ras(&mut h, D1), 2, "owed RAs, paced");
    assert_eq!(p_bit_ras(&mut h, D2), 2, "RFC 4389 §6 enabling");
    assert!(h.proxying(D1) && h.proxying(D2));
    // Owed no more: the next router RA gives one each, and no RS goes up.
    h.advance(Duration::from_secs(10));
    assert!(!h.take(UP).iter().any(Sent::is_rs));
}

#[test]
fn loop_state_comes_back_shortened_by_the_age() {
    let mut h = Harness::new(config());
    let other_proxy = Mac([0x02, 0xaa, 0, 0, 0, 1]);
    let secs = Duration::from_secs;
    let saved = SavedState {
        ports: vec![
            SavedPort {
                port: UP,
                mac: UP_MAC,
                proxying: true,
                last_ra_ago: None,
                disabled_for: None,
                quarantined: vec![(other_proxy, secs(50)), (gmac(1), secs(5))],
            },
            SavedPort {
                disabled_for: Some(secs(100)),
                ..proxying_port(D1, secs(1))
            },
        ],
        bindings: Vec::new(),
    };
    h.engine.restore_state(h.now, &saved, Some(secs(20)));
    h.drain();
    let snap = h.engine.snapshot(h.now);
    assert_eq!(
        snap.ports[UP.index()].quarantined,
        [(other_proxy, h.now + secs(30))]
    );
    assert_eq!(
        snap.ports[D1.index()].disabled_until,
        Some(h.now + secs(80))
    );
    assert!(!h.proxying(D1), "held, not resumed");
    // What it saves again keeps counting down.
    h.advance(secs(10));
    let again = h.engine.export_state(h.now);
    assert_eq!(again.ports[D1.index()].disabled_for, Some(secs(70)));
    assert_eq!(
        again.ports[UP.index()].quarantined,
        [(other_proxy, secs(20))]
    );
}

#[test]
fn the_stamp_changes_with_what_is_saved_not_with_time() {
    let mut h = Harness::ready(config());
    let before = h.engine.state_stamp();
    h.advance(Duration::from_secs(20));
    assert_eq!(h.engine.state_stamp(), before);
    h.bind_guest(10, D1);
    let bound = h.engine.state_stamp();
    assert_ne!(bound, before);
    h.link(D2, LinkEvent::Down);
    assert_ne!(h.engine.state_stamp(), bound);
}

#[test]
fn with_the_userspace_data_plane_restored_guests_get_data_at_once_and_no_route() {
    let mut cfg = config();
    cfg.data_plane = crate::engine::DataPlane::Userspace;
    let mut h = Harness::new(cfg);
    let saved = SavedState {
        ports: vec![proxying_port(D1, Duration::from_secs(5))],
        bindings: vec![saved_guest(10, D1)],
    };
    h.engine
        .restore_state(h.now, &saved, Some(Duration::from_secs(1)));
    h.drain();
    h.clear();
    h.inject(
        UP,
        &data(ROUTER_MAC, UP_MAC, router_global(), addr(10), 100),
    );
    let out = h.take(D1);
    assert_eq!(out.len(), 1, "forwarded before the guest re-verified");
    assert_eq!(out[0].data().eth_dst, gmac(10));
    assert!(h.routes.is_empty());
    assert!(h.binding(addr(10)).unwrap().restored);
}

#[test]
fn a_restored_binding_owns_the_earlier_runs_route_and_one_on_another_port_goes() {
    let mut h = Harness::new(config());
    let saved = SavedState {
        ports: Vec::new(),
        bindings: vec![saved_guest(10, D1), saved_guest(11, D1)],
    };
    h.engine.restore_state(h.now, &saved, None);
    // The routes the earlier run left: 10's on its port, 11's on another one.
    h.engine
        .adopt_routes(h.now, &[(addr(10), D1), (addr(11), D2)]);
    h.drain();
    assert_eq!(
        h.routes,
        [
            install(addr(10), D1),
            install(addr(11), D1),
            remove(addr(11), D2)
        ]
    );
    assert!(
        h.engine.leftover_routes().is_empty(),
        "no leftover to re-verify"
    );
    assert_eq!(h.count("routes_reconciled_kept"), 0);
    assert_eq!(h.count("routes_reconciled_verified"), 0, "not verified yet");
}

/// The `KernelRelayNs` entries told for guest 10 since the last clear: (from, to, guest MAC).
fn kernel_ns_entries(h: &Harness) -> Vec<(PortId, PortId, Mac)> {
    h.kernel
        .iter()
        .filter_map(|a| match a {
            Action::KernelRelayNs {
                from,
                target,
                to,
                guest_mac,
                ..
            } if *target == addr(10) => Some((*from, *to, *guest_mac)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restored_guest_reaches_the_in_kernel_relay_as_a_confirmed_one_does_once_re_verified() {
    let mut cfg = config();
    cfg.relay_in_kernel = true;
    let mut h = Harness::new(cfg);
    let saved = SavedState {
        ports: vec![proxying_port(D1, Duration::from_secs(5))],
        bindings: vec![saved_guest(10, D1)],
    };
    h.engine
        .restore_state(h.now, &saved, Some(Duration::from_secs(1)));
    h.drain();
    h.clear();
    // Unverified: the router's NS is relayed by the engine (to the group, as for any
    // binding that is not REACHABLE) and nothing is left to the kernel for it yet.
    h.inject(UP, &ns_from_router(addr(10)));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].nd().eth_dst,
        Mac::ipv6_multicast(solicited_node(addr(10)))
    );
    assert!(kernel_ns_entries(&h).is_empty());
    // The guest's answer re-verifies it; the router's next NS goes to the guest's MAC
    // and the kernel is told to relay the following ones, as for any confirmed guest.
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert!(!h.binding(addr(10)).unwrap().restored);
    h.advance(Duration::from_millis(1100));
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1)[0].nd().eth_dst, gmac(10));
    assert_eq!(kernel_ns_entries(&h), [(UP, D1, gmac(10))]);
}

#[test]
fn a_resumed_port_on_a_silent_uplink_pays_its_owed_ras_with_its_own_and_stops_soliciting() {
    let mut h = resumed_d1();
    assert!(h.proxying(D1), "resumed at once");
    // No router answers: after `ra_wait` the relay's own P-bit RAs go out on both ports,
    // paying D1's debt and enabling D2.
    h.advance(Duration::from_secs(20));
    let own_p_bit_ras = |h: &mut Harness, p: PortId| {
        h.take(p)
            .iter()
            .filter(|s| {
                matches!(s.nd().message, NdMessage::RouterAdvert(ra)
                    if ra.flags.proxy() && ra.router_lifetime == 0)
            })
            .count()
    };
    assert_eq!(own_p_bit_ras(&mut h, D1), 2, "owed RAs, the relay's own");
    assert_eq!(own_p_bit_ras(&mut h, D2), 2, "RFC 4389 §6 enabling");
    assert!(h.proxying(D1) && h.proxying(D2));
    h.take(UP);
    // Nothing owed, nothing waiting: no more RS toward the silent uplink.
    h.advance(Duration::from_secs(30));
    assert!(!h.take(UP).iter().any(Sent::is_rs), "still soliciting");
}
