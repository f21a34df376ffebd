//! Frames shared by the hostile-input tests and the replay tests: a three-port relay
//! (uplink, br0, br1) with a router on the uplink and a guest on br0, and the malformed
//! frames of NDP-REFERENCE §5 with the drop reason each must get.
#![allow(dead_code, unreachable_pub)]

use std::net::Ipv6Addr;

use ndprelay::engine::{DataPlane, EngineConfig, PortConfig, PortId, Role};
use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, RaFlags, RouterAdvert, emit_ipv6, emit_nd,
    icmpv6_checksum, solicited_node,
};

pub const UPLINK: PortId = PortId(0);
pub const BR0: PortId = PortId(1);
pub const BR1: PortId = PortId(2);
pub const UPLINK_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
pub const BR0_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
pub const BR1_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x03]);
pub const ROUTER_MAC: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
pub const GUEST_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);
pub const OTHER_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x20]);

/// IPv6 header offsets inside an untagged Ethernet frame.
pub const HOP_LIMIT: usize = 14 + 7;
pub const PAYLOAD_LEN: usize = 14 + 4;
pub const ICMP: usize = 14 + 40;

pub fn router_ll() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}
pub fn router_global() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
pub fn guest() -> Ipv6Addr {
    "2001:db8:1::10".parse().unwrap()
}
pub fn guest_ll() -> Ipv6Addr {
    GUEST_MAC.link_local()
}
pub fn all_nodes() -> Ipv6Addr {
    "ff02::1".parse().unwrap()
}

pub fn ns(
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    opts: &[OptionRepr],
) -> Vec<u8> {
    let eth_dst = if dst.is_multicast() {
        Mac::ipv6_multicast(dst)
    } else {
        UPLINK_MAC
    };
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        opts,
    )
}

pub fn ns_from_router(target: Ipv6Addr) -> Vec<u8> {
    ns(
        ROUTER_MAC,
        router_ll(),
        solicited_node(target),
        target,
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    )
}

/// An NS from the guest on br0 resolving the router: the valid twin of most tests.
pub fn ns_from_guest() -> Vec<u8> {
    ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    )
}

pub fn na(
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    flags: NaFlags,
    target: Ipv6Addr,
    tlla: Mac,
) -> Vec<u8> {
    let eth_dst = if dst.is_multicast() {
        Mac::ipv6_multicast(dst)
    } else {
        BR0_MAC
    };
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborAdvert {
            flags,
            target_addr: target,
        },
        &[OptionRepr::TargetLla(tlla)],
    )
}

pub fn na_from_guest(solicited: bool) -> Vec<u8> {
    let flags = if solicited {
        NaFlags::SOLICITED | NaFlags::OVERRIDE
    } else {
        NaFlags::OVERRIDE
    };
    let dst = if solicited { router_ll() } else { all_nodes() };
    na(GUEST_MAC, guest(), dst, flags, guest(), GUEST_MAC)
}

pub fn ra(eth_src: Mac, src: Ipv6Addr, flags: u8, opts: &[OptionRepr]) -> Vec<u8> {
    let ra = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags::from_bits_retain(flags),
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
    };
    emit_nd(
        eth_src,
        Mac::ipv6_multicast(all_nodes()),
        src,
        all_nodes(),
        &NdMessage::RouterAdvert(ra),
        opts,
    )
}

pub fn uplink_ra(extra: &[OptionRepr]) -> Vec<u8> {
    let mut opts = vec![OptionRepr::SourceLla(ROUTER_MAC)];
    opts.extend_from_slice(extra);
    ra(ROUTER_MAC, router_ll(), 0, &opts)
}

pub fn src_of(frame: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap())
}
pub fn dst_of(frame: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap())
}

/// Recomputes the ICMPv6 checksum after a test edits a frame (no extension headers).
pub fn fix_csum(frame: &mut [u8]) {
    let len = usize::from(u16::from_be_bytes([
        frame[PAYLOAD_LEN],
        frame[PAYLOAD_LEN + 1],
    ]));
    let end = (ICMP + len).min(frame.len());
    frame[ICMP + 2] = 0;
    frame[ICMP + 3] = 0;
    let csum = icmpv6_checksum(src_of(frame), dst_of(frame), &frame[ICMP..end]);
    frame[ICMP + 2..ICMP + 4].copy_from_slice(&csum.to_be_bytes());
}

pub fn set_payload_len(frame: &mut Vec<u8>, len: usize) {
    frame.resize(ICMP + len, 0);
    frame[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&(len as u16).to_be_bytes());
}

pub fn redirect(src: Ipv6Addr, target: Ipv6Addr, dest: Ipv6Addr) -> Vec<u8> {
    emit_nd(
        ROUTER_MAC,
        GUEST_MAC,
        src,
        guest(),
        &NdMessage::Redirect {
            target_addr: target,
            dest_addr: dest,
        },
        &[],
    )
}

/// Wraps the ICMPv6 part of `nd` behind `headers` (each a complete extension header whose
/// next-header byte the caller set), keeping the ND checksum valid.
pub fn behind(nd: &[u8], first_next_header: u8, headers: &[u8]) -> Vec<u8> {
    let mut payload = headers.to_vec();
    payload.extend_from_slice(&nd[ICMP..]);
    emit_ipv6(
        ROUTER_MAC,
        Mac::ipv6_multicast(dst_of(nd)),
        src_of(nd),
        dst_of(nd),
        first_next_header,
        255,
        &payload,
    )
}

/// The relay every test here runs: `uplink`, `br0`, `br1` with the MACs above, relaying
/// 2001:db8:1::/64 with kernel routes.
pub fn three_port_config() -> EngineConfig {
    let port = PortConfig::ethernet;
    let ports = vec![
        port("uplink", Role::Upstream, UPLINK_MAC),
        port("br0", Role::Downstream, BR0_MAC),
        port("br1", Role::Downstream, BR1_MAC),
    ];
    let mut config = EngineConfig::new(ports, vec!["2001:db8:1::/64".parse().unwrap()]);
    config.data_plane = DataPlane::KernelRoutes;
    config
}

/// One malformed frame: where it arrives and the counter it must move.
pub struct Malformed {
    /// Reference §5 row, e.g. `h01`.
    pub id: &'static str,
    /// Ingress port.
    pub port: PortId,
    /// The frame.
    pub frame: Vec<u8>,
    /// Expected drop reason (counter `drop_<reason>`).
    pub reason: &'static str,
}

fn case(id: &'static str, port: PortId, frame: Vec<u8>, reason: &'static str) -> Malformed {
    Malformed {
        id,
        port,
        frame,
        reason,
    }
}

/// Every input of reference §5 whose expected outcome is a drop, with its reason. Rows
/// that are relayed (#6, #10, #16, #17), need state (#20, #21) or are clamped (#28) are
/// tested on their own in `hostile_inputs.rs`.
pub fn malformed_corpus() -> Vec<Malformed> {
    let mut v = Vec::new();
    let mut f = ns_from_guest();
    f[HOP_LIMIT] = 254;
    v.push(case("h01", BR0, f, "hop_limit"));
    let mut f = ns_from_guest();
    f[ICMP + 1] = 1;
    fix_csum(&mut f);
    v.push(case("h02", BR0, f, "bad_code"));
    let mut f = ns_from_guest();
    f[ICMP + 2] ^= 0x55;
    v.push(case("h03", BR0, f, "bad_csum"));
    let mut f = ns_from_guest();
    f[ICMP + 2] = 0;
    f[ICMP + 3] = 0;
    v.push(case("h03", BR0, f, "bad_csum"));
    let mut f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[],
    );
    set_payload_len(&mut f, 23);
    fix_csum(&mut f);
    v.push(case("h04", BR0, f, "too_short"));
    let mut f = ns_from_guest();
    f.truncate(80);
    f[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&200u16.to_be_bytes());
    v.push(case("h05", BR0, f, "truncated"));
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(all_nodes()),
        all_nodes(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    v.push(case("h07", BR0, f, "mcast_target"));
    let f = ns(
        GUEST_MAC,
        Ipv6Addr::UNSPECIFIED,
        router_global(),
        guest(),
        &[],
    );
    v.push(case("h08", BR0, f, "dad_bad_dst"));
    let f = ns(
        GUEST_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(guest()),
        guest(),
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    v.push(case("h09", BR0, f, "dad_slla"));
    let mut f = ns_from_guest();
    f[ICMP + 24 + 1] = 0;
    fix_csum(&mut f);
    v.push(case("h11", BR0, f, "opt_len0"));
    let mut f = ns_from_guest();
    f[ICMP + 24 + 1] = 2;
    fix_csum(&mut f);
    v.push(case("h12", BR0, f, "opt_overrun"));
    let mut f = ns_from_guest();
    set_payload_len(&mut f, 24 + 8 + 1);
    fix_csum(&mut f);
    v.push(case("h13", BR0, f, "opt_trailing"));
    let two_units = OptionRepr::Raw(vec![
        1, 2, 0x52, 0x54, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[two_units],
    );
    v.push(case("h14", BR0, f, "bad_lla_len"));
    let f = ns(
        GUEST_MAC,
        guest(),
        solicited_node(router_global()),
        router_global(),
        &[
            OptionRepr::SourceLla(GUEST_MAC),
            OptionRepr::SourceLla(OTHER_MAC),
        ],
    );
    v.push(case("h15", BR0, f, "dup_lla"));
    let solicited = NaFlags::SOLICITED | NaFlags::OVERRIDE;
    let unsolicited = NaFlags::OVERRIDE;
    v.push(case(
        "h18",
        BR0,
        na(
            GUEST_MAC,
            guest(),
            all_nodes(),
            solicited,
            guest(),
            GUEST_MAC,
        ),
        "mcast_solicited",
    ));
    v.push(case(
        "h19",
        BR0,
        na(
            GUEST_MAC,
            guest(),
            all_nodes(),
            unsolicited,
            all_nodes(),
            GUEST_MAC,
        ),
        "mcast_target",
    ));
    v.push(case(
        "h22",
        BR0,
        na(
            GUEST_MAC,
            guest(),
            all_nodes(),
            unsolicited,
            guest(),
            BR1_MAC,
        ),
        "loop_suspect",
    ));
    v.push(case(
        "h22",
        BR0,
        na(
            UPLINK_MAC,
            guest(),
            all_nodes(),
            unsolicited,
            guest(),
            GUEST_MAC,
        ),
        "loop_suspect",
    ));
    let f = ra(
        ROUTER_MAC,
        router_global(),
        0,
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    v.push(case("h23", UPLINK, f, "ra_src_not_ll"));
    let mut f = ra(ROUTER_MAC, router_ll(), 0, &[]);
    set_payload_len(&mut f, 15);
    fix_csum(&mut f);
    v.push(case("h24", UPLINK, f, "too_short"));
    let f = ra(
        GUEST_MAC,
        guest_ll(),
        0,
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    v.push(case("h25", BR0, f, "rogue_ra"));
    let f = ra(
        ROUTER_MAC,
        router_ll(),
        RaFlags::PROXY.bits(),
        &[OptionRepr::SourceLla(ROUTER_MAC)],
    );
    v.push(case("h26", UPLINK, f, "ra_p_bit"));
    let rdnss = OptionRepr::Raw(vec![
        25, 2, 0, 0, 0, 0, 0x0e, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
    ]);
    v.push(case(
        "h27",
        UPLINK,
        ra(
            ROUTER_MAC,
            router_ll(),
            0,
            &[OptionRepr::SourceLla(ROUTER_MAC), rdnss],
        ),
        "bad_opt_len",
    ));
    let mut rio = vec![24, 2, 128, 0, 0, 0, 0x0e, 0x10];
    rio.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
    let f = ra(
        ROUTER_MAC,
        router_ll(),
        0,
        &[OptionRepr::SourceLla(ROUTER_MAC), OptionRepr::Raw(rio)],
    );
    v.push(case("h27", UPLINK, f, "bad_opt_len"));
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let rs = emit_nd(
        GUEST_MAC,
        Mac::ipv6_multicast(all_routers),
        Ipv6Addr::UNSPECIFIED,
        all_routers,
        &NdMessage::RouterSolicit,
        &[OptionRepr::SourceLla(GUEST_MAC)],
    );
    v.push(case("h29", BR0, rs, "dad_slla"));
    let dest: Ipv6Addr = "2001:db8:2::5".parse().unwrap();
    let target: Ipv6Addr = "fe80::99".parse().unwrap();
    v.push(case(
        "h30",
        UPLINK,
        redirect(router_global(), target, dest),
        "redirect_src_not_ll",
    ));
    let mut short = redirect(router_ll(), target, dest);
    set_payload_len(&mut short, 39);
    fix_csum(&mut short);
    v.push(case("h30", UPLINK, short, "too_short"));
    v.push(case(
        "h30",
        UPLINK,
        redirect(router_ll(), target, all_nodes()),
        "redirect_mcast_dst",
    ));
    v.push(case(
        "h30",
        UPLINK,
        redirect(router_ll(), router_global(), dest),
        "redirect_bad_target",
    ));
    v.push(case(
        "h30",
        BR0,
        redirect(guest_ll(), target, dest),
        "redirect_from_downstream",
    ));
    let nd = ns_from_guest();
    v.push(case(
        "h31",
        BR0,
        behind(&nd, 44, &[58, 0, 0, 0, 0, 0, 0, 1]),
        "frag_nd",
    ));
    let ra_frame = uplink_ra(&[]);
    let mut first = vec![58, 0, 0, 1, 0, 0, 0, 2];
    first.extend_from_slice(&ra_frame[ICMP..ICMP + 4]);
    let f = emit_ipv6(
        ROUTER_MAC,
        Mac::ipv6_multicast(all_nodes()),
        router_ll(),
        all_nodes(),
        44,
        255,
        &first,
    );
    v.push(case("h31", UPLINK, f, "frag_nd"));
    v.push(case(
        "h32",
        BR0,
        behind(&nd, 60, &[58, 0, 1, 4, 0, 0, 0, 0]),
        "ext_hdr_nd",
    ));
    let mut chain = Vec::new();
    for i in 0..40 {
        let next = if i == 39 { 58 } else { 60 };
        chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    v.push(case("h32", BR0, behind(&nd, 60, &chain), "ext_hdr_nd"));
    v.push(case(
        "h32",
        BR0,
        behind(&nd, 60, &[253, 0, 1, 4, 0, 0, 0, 0]),
        "ext_hdr_nd",
    ));
    // Issue 14 item 4: ND from a VLAN (tag put back into the frame, as libpcap and the
    // AF_PACKET capture hand it over). No port serves a VLAN.
    v.push(case(
        "vlan",
        BR0,
        vlan_tagged(&nd, 0x8100, 7),
        "vlan_tagged",
    ));
    v.push(case(
        "vlan",
        UPLINK,
        vlan_tagged(&uplink_ra(&[]), 0x88a8, 100),
        "vlan_tagged",
    ));
    v.push(case(
        "vlan",
        UPLINK,
        vlan_tagged(&ns_from_router(guest()), 0x8100, 0),
        "vlan_tagged",
    ));
    v
}

/// `frame` with an 802.1Q/802.1ad tag (`tpid`, VLAN `vid`) after its MAC addresses.
pub fn vlan_tagged(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}
