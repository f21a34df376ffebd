//! Userspace forwarding and Redirects.

use super::*;
use crate::DropReason;
use crate::engine::DataPlane;
use crate::engine::data::MAX_HELD;
use crate::wire::{NdOption, icmp_type};

fn userspace() -> EngineConfig {
    let mut c = config();
    c.data_plane = DataPlane::Userspace;
    c
}

#[test]
fn unicast_is_forwarded_by_binding_with_only_l2_rewritten() {
    let mut h = Harness::ready(userspace());
    h.bind_guest(10, D1);
    assert!(h.routes.is_empty(), "no kernel routes in userspace mode");
    let f = data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 100);
    h.inject(UP, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    let d = out[0].data();
    assert_eq!((d.eth_src, d.eth_dst), (D1_MAC, gmac(10)));
    assert_eq!(d.hop_limit, 64, "hop limit untouched");
    assert_eq!(&out[0].frame[14..], &f[14..], "IPv6 packet byte for byte");
    assert!(h.sent.is_empty());
    assert_eq!(h.count("forwarded_data"), 1);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Forwarded {
            from: UP,
            to: D1,
            ..
        }
    )));
}

#[test]
fn never_out_the_ingress_port() {
    let mut h = Harness::ready(userspace());
    h.bind_guest(10, D1);
    h.bind_guest(11, D1);
    h.inject(D1, &data(gmac(11), D1_MAC, addr(11), addr(10), 10));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("drop_ingress_port"), 1);
}

#[test]
fn oversize_packets_get_a_packet_too_big_and_are_dropped() {
    let mut cfg = userspace();
    cfg.ports[1].mtu = 1280;
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    let f = data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 1300);
    h.inject(UP, &f);
    assert!(h.take(D1).is_empty());
    let ptb = h.take(UP);
    assert_eq!(ptb.len(), 1);
    let d = ptb[0].data();
    assert_eq!(
        (d.eth_src, d.eth_dst, d.dst_addr),
        (UP_MAC, ROUTER_MAC, addr(0x500))
    );
    let icmp = &d.packet[40..];
    assert_eq!(icmp[0], icmp_type::PACKET_TOO_BIG);
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1280
    );
    assert_eq!(h.count("drop_mtu_exceeded"), 1);
    assert_eq!(h.count("ptb_sent"), 1);
    // 1240 bytes of payload + 40 of header fit exactly.
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 1240));
    assert_eq!(h.take(D1).len(), 1);
}

#[test]
fn unknown_destination_is_resolved_and_its_packet_held_until_bound() {
    let mut h = Harness::ready(userspace());
    let first = data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 10);
    h.inject(UP, &first);
    assert_eq!(h.count("held_data"), 1);
    assert_eq!(h.count("drop_no_binding"), 0, "held, not dropped");
    assert_eq!(h.engine.held_count(), 1);
    for p in [D1, D2] {
        let out = h.take(p);
        assert_eq!(out.len(), 1, "relay-originated NS on {p:?}");
        let ns = out[0].nd();
        assert_eq!(
            ns.message,
            NdMessage::NeighborSolicit {
                target_addr: addr(10)
            }
        );
        assert_eq!((ns.src_addr, ns.slla), (port_ll(p), Some(port_mac(p))));
        assert_eq!(ns.dst_addr, solicited_node(addr(10)));
    }
    assert!(h.sent.is_empty(), "not back out the ingress port");
    // Resolution is paced like relayed NS; a newer packet replaces the held one
    // (RFC 4861 §7.2.2), which counts as a drop.
    let second = data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 20);
    h.inject(UP, &second);
    assert!(h.sent.is_empty());
    assert_eq!(h.engine.held_count(), 1);
    assert_eq!(h.count("drop_no_binding"), 1);
    // The guest answers the relay: the answer is consumed and the held packet flows.
    let f = probe_answer(10, D1);
    h.inject(D1, &f);
    let out = h.take(D1);
    assert_eq!(out.len(), 1, "only the held packet, the NA is consumed");
    let d = out[0].data();
    assert_eq!((d.eth_src, d.eth_dst), (D1_MAC, gmac(10)));
    assert_eq!(
        &out[0].frame[14..],
        &second[14..],
        "the newest, byte for byte"
    );
    assert!(h.sent.is_empty());
    assert_eq!(h.engine.held_count(), 0);
    assert_eq!(h.count("forwarded_data"), 1);
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 10));
    assert_eq!(h.take(D1).len(), 1);
    assert_eq!(h.count("drop_resolution_failed"), 0);
}

#[test]
fn held_packets_are_dropped_when_resolution_fails() {
    let mut h = Harness::ready(userspace());
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 10));
    assert_eq!(h.engine.held_count(), 1);
    // Nobody answers: retrans_timer 1 s × 3 probes, then the resolution fails.
    h.advance(Duration::from_millis(2900));
    assert_eq!(h.engine.held_count(), 1, "still within the resolution");
    h.advance(Duration::from_millis(200));
    assert_eq!(h.engine.held_count(), 0);
    assert_eq!(h.count("drop_resolution_failed"), 1);
    assert!(
        h.events.iter().any(|e| matches!(
            e,
            Event::Dropped {
                port: UP,
                reason: DropReason::ResolutionFailed
            }
        )),
        "dropped on its ingress port"
    );
    // Within the negative cache a new packet is not held at all.
    h.clear();
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 10));
    assert_eq!(h.engine.held_count(), 0);
    assert_eq!(h.count("drop_no_binding"), 1);
    assert_eq!(h.count("held_data"), 1);
    // A late answer forwards nothing: the packet is gone.
    h.inject(D1, &probe_answer(10, D1));
    assert!(h.take(D1).is_empty());
}

#[test]
fn the_hold_is_bounded_and_the_oldest_gives_way() {
    let mut h = Harness::ready(userspace());
    let extra = 6u16;
    for i in 0..MAX_HELD as u16 + extra {
        h.inject(
            UP,
            &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(100 + i), 10),
        );
    }
    assert_eq!(h.engine.held_count(), MAX_HELD);
    assert_eq!(h.count("held_data"), MAX_HELD as u64 + u64::from(extra));
    assert_eq!(h.count("drop_no_binding"), u64::from(extra));
    h.clear();
    let answer = |i: u16| {
        na(
            gmac(7),
            D1_MAC,
            addr(100 + i),
            port_ll(D1),
            SOLICITED,
            addr(100 + i),
            Some(gmac(7)),
        )
    };
    // The oldest were displaced: its answer forwards nothing.
    h.inject(D1, &answer(0));
    assert!(h.take(D1).is_empty());
    // The newest is still held and flows.
    h.inject(D1, &answer(MAX_HELD as u16 + extra - 1));
    assert_eq!(h.take(D1).len(), 1);
    assert_eq!(h.engine.held_count(), MAX_HELD - 1);
}

#[test]
fn a_held_packet_follows_a_reload_and_goes_with_its_port() {
    let mut cfg = userspace();
    let mut h = Harness::ready(cfg.clone());
    h.inject(D2, &data(gmac(20), D2_MAC, addr(20), addr(10), 10));
    assert_eq!(h.engine.held_count(), 1);
    // D2 removed: the packet it brought has no ingress any more.
    cfg.ports.truncate(2);
    h.engine.reload(h.now, cfg).unwrap();
    h.drain();
    assert_eq!(h.engine.held_count(), 0);
    assert_eq!(h.count("drop_port_disabled"), 1);
}

#[test]
fn off_link_traffic_from_guests_goes_to_the_router() {
    let mut h = Harness::ready(userspace());
    h.bind_guest(10, D1);
    let internet: Ipv6Addr = "2001:4860::8888".parse().unwrap();
    h.inject(D1, &data(gmac(10), D1_MAC, addr(10), internet, 10));
    let out = h.take(UP);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].data().eth_dst, out[0].data().eth_src),
        (ROUTER_MAC, UP_MAC)
    );
    // From the uplink an off-link destination has nowhere to go.
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), internet, 10));
    assert!(h.sent.is_empty());
    // Once the router's lifetime (1800 s in `ready`) has run out, nor from guests.
    h.advance(Duration::from_secs(1800));
    h.clear();
    h.inject(D1, &data(gmac(10), D1_MAC, addr(10), internet, 10));
    assert!(h.take(UP).is_empty());
}

#[test]
fn multicast_data_goes_to_every_other_port_with_l2_source_rewritten() {
    let mut h = Harness::ready(userspace());
    let group: Ipv6Addr = "ff02::fb".parse().unwrap();
    h.inject(
        D1,
        &data(gmac(10), Mac::ipv6_multicast(group), addr(10), group, 20),
    );
    assert!(h.take(D1).is_empty());
    for p in [UP, D2] {
        let out = h.take(p);
        assert_eq!(out.len(), 1);
        let d = out[0].data();
        assert_eq!(
            (d.eth_src, d.eth_dst),
            (port_mac(p), Mac::ipv6_multicast(group))
        );
    }
    assert_eq!(h.count("forwarded_multicast"), 2);
}

#[test]
fn data_is_ignored_in_kernel_mode_and_when_not_for_our_mac() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.inject(UP, &data(ROUTER_MAC, UP_MAC, addr(0x500), addr(10), 10));
    assert!(h.sent.is_empty());
    let mut h = Harness::ready(userspace());
    h.bind_guest(10, D1);
    h.inject(UP, &data(ROUTER_MAC, UPHOST_MAC, addr(0x500), addr(10), 10));
    assert!(h.sent.is_empty());
    assert_eq!(h.count("ignored_data"), 1);
}

fn redirect(
    src_mac: Mac,
    src: Ipv6Addr,
    host: Ipv6Addr,
    host_l2: Mac,
    target: Ipv6Addr,
    dest: Ipv6Addr,
) -> Vec<u8> {
    emit_nd(
        src_mac,
        host_l2,
        src,
        host,
        &NdMessage::Redirect {
            target_addr: target,
            dest_addr: dest,
        },
        &[OptionRepr::TargetLla(Mac([
            0x00, 0x00, 0x5e, 0, 0x53, 0x77,
        ]))],
    )
}

#[test]
fn redirect_tlla_follows_rfc_4389_4_1_3_4() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.bind_guest(11, D1);
    h.bind_guest(20, D2);
    let r = |target, dest| redirect(ROUTER_MAC, router_ll(), addr(10), UP_MAC, target, dest);
    // Target on the host's own port: its real MAC.
    h.inject(UP, &r(addr(11), addr(11)));
    let out = h.take(D1);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].nd().tlla, out[0].nd().eth_dst),
        (Some(gmac(11)), gmac(10))
    );
    // Target on another port: the relay's MAC on the host's port.
    h.inject(UP, &r(addr(20), addr(20)));
    assert_eq!(h.take(D1)[0].nd().tlla, Some(D1_MAC));
    // Unknown target: TLLA removed, 8 bytes shorter.
    let f = r(addr(30), addr(30));
    h.inject(UP, &f);
    let out = h.take(D1);
    let pkt = out[0].nd();
    assert_eq!(pkt.tlla, None);
    assert!(!pkt.options().any(|o| matches!(o, NdOption::TargetLla(_))));
    assert_eq!(out[0].frame.len(), f.len() - 8);
    assert_eq!(h.count("relayed_redirect"), 3);
}

#[test]
fn redirects_only_from_a_router_seen_on_the_uplink() {
    let mut h = Harness::ready(config());
    h.bind_guest(10, D1);
    h.bind_guest(11, D1);
    let stranger: Ipv6Addr = "fe80::66".parse().unwrap();
    h.inject(
        UP,
        &redirect(UPHOST_MAC, stranger, addr(10), UP_MAC, addr(11), addr(11)),
    );
    assert_eq!(h.count("drop_redirect_unknown_router"), 1);
    h.inject(
        D1,
        &redirect(
            gmac(11),
            gmac(11).link_local(),
            addr(10),
            D1_MAC,
            addr(11),
            addr(11),
        ),
    );
    assert_eq!(h.count("drop_redirect_from_downstream"), 1);
    assert!(h.sent.is_empty());
}
