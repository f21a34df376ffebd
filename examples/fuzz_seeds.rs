//! Writes the seed corpora of the fuzz targets: valid ND frames (all five messages, with
//! and without options) for `frame`, and short exchanges on the engine target's three-port
//! relay (RA, DAD, NS and NA, data, timers, link events) for `engine`, so the fuzzers start
//! from inputs that reach the relay logic instead of searching for them.
//!
//! `cargo run --example fuzz_seeds [-- DIR]` writes `DIR/frame/*` and `DIR/engine/*`
//! (default `fuzz/seeds`, which is committed; scripts/fuzz.sh reads it).

use std::net::Ipv6Addr;

use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, PrefixInfo, RaFlags, RouterAdvert, emit_icmpv6_echo,
    emit_nd, solicited_node,
};

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds".into());
    let dir = format!("{root}/frame");
    std::fs::create_dir_all(&dir)?;
    let router = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
    let guest = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);
    let router_ll: Ipv6Addr = "fe80::1".parse().expect("literal");
    let guest_ip: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("literal");
    let all_routers: Ipv6Addr = "ff02::2".parse().expect("literal");
    let ra = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags::OTHER,
        router_lifetime: 1800,
        reachable_time: 30_000,
        retrans_timer: 1_000,
    };
    let pio = PrefixInfo {
        prefix_len: 64,
        on_link: true,
        autonomous: true,
        valid_lifetime: 86_400,
        preferred_lifetime: 14_400,
        prefix: "2001:db8:1::".parse().expect("literal"),
    };
    let rdnss = OptionRepr::Raw(vec![
        25, 3, 0, 0, 0, 0, 0x0e, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0x53,
    ]);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "ns",
            emit_nd(
                router,
                Mac::ipv6_multicast(solicited_node(guest_ip)),
                router_ll,
                solicited_node(guest_ip),
                &NdMessage::NeighborSolicit {
                    target_addr: guest_ip,
                },
                &[OptionRepr::SourceLla(router)],
            ),
        ),
        (
            "ns-dad",
            emit_nd(
                guest,
                Mac::ipv6_multicast(solicited_node(guest_ip)),
                Ipv6Addr::UNSPECIFIED,
                solicited_node(guest_ip),
                &NdMessage::NeighborSolicit {
                    target_addr: guest_ip,
                },
                &[],
            ),
        ),
        (
            "na",
            emit_nd(
                guest,
                router,
                guest_ip,
                router_ll,
                &NdMessage::NeighborAdvert {
                    flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
                    target_addr: guest_ip,
                },
                &[OptionRepr::TargetLla(guest)],
            ),
        ),
        (
            "rs",
            emit_nd(
                guest,
                Mac::ipv6_multicast(all_routers),
                guest.link_local(),
                all_routers,
                &NdMessage::RouterSolicit,
                &[OptionRepr::SourceLla(guest)],
            ),
        ),
        (
            "ra",
            emit_nd(
                router,
                Mac::ipv6_multicast(all_nodes),
                router_ll,
                all_nodes,
                &NdMessage::RouterAdvert(ra),
                &[
                    OptionRepr::SourceLla(router),
                    OptionRepr::Mtu(1500),
                    OptionRepr::PrefixInfo(pio),
                    rdnss,
                ],
            ),
        ),
        (
            "redirect",
            emit_nd(
                router,
                guest,
                router_ll,
                guest_ip,
                &NdMessage::Redirect {
                    target_addr: "fe80::99".parse().expect("literal"),
                    dest_addr: "2001:db8:2::5".parse().expect("literal"),
                },
                &[OptionRepr::TargetLla(Mac([0x52, 0x54, 0, 0, 0, 0x99]))],
            ),
        ),
        (
            "echo",
            emit_icmpv6_echo(
                guest,
                router,
                guest_ip,
                "2001:db8:1::1".parse().expect("literal"),
                false,
                1,
                1,
                b"ping",
            ),
        ),
    ];
    for (name, frame) in &seeds {
        std::fs::write(format!("{dir}/{name}"), frame)?;
    }
    println!("wrote {} seed frames to {dir}", seeds.len());
    let frame = |name: &str| {
        let (_, bytes) = seeds.iter().find(|(n, _)| *n == name).expect("named above");
        bytes.clone()
    };
    engine_seeds(&format!("{root}/engine"), &frame)
}

/// The engine target's ports (fuzz/fuzz_targets/engine.rs): uplink, br0, br1.
const UPLINK: u8 = 0;
const BR0: u8 = 1;
const BR1: u8 = 2;

fn port_mac(port: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, port + 1])
}

/// The engine input format, as decoded by `fuzz/src/lib.rs` (which this example cannot
/// depend on: the fuzz crate is a workspace of its own).
struct EngineInput(Vec<u8>);

impl EngineInput {
    fn new(config: u8) -> Self {
        Self(vec![config])
    }
    fn frame(mut self, port: u8, advance_ms: u16, frame: &[u8]) -> Self {
        let len = u16::try_from(frame.len()).expect("seed frames are short");
        self.0.push(port << 2);
        self.0.extend_from_slice(&advance_ms.to_be_bytes());
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(frame);
        self
    }
    fn timeout(mut self, advance_ms: u32) -> Self {
        self.0.push(1);
        self.0.extend_from_slice(&advance_ms.to_be_bytes());
        self
    }
    fn link(mut self, port: u8, up: bool) -> Self {
        self.0.push(2 | port << 2 | if up { 0x10 } else { 0 });
        self
    }
    fn mac_change(mut self, port: u8, last: u8) -> Self {
        self.0.extend_from_slice(&[3 | port << 2, last]);
        self
    }
}

fn engine_seeds(dir: &str, frame: &dyn Fn(&str) -> Vec<u8>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let router = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
    let guest = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);
    let router_ll: Ipv6Addr = "fe80::1".parse().expect("literal");
    let guest_ip: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
    let br0_ll = port_mac(BR0).link_local();
    // The guest's answer to the NS the relay sends on br0 (from br0's link-local).
    let na_to_relay = emit_nd(
        guest,
        port_mac(BR0),
        guest_ip,
        br0_ll,
        &NdMessage::NeighborAdvert {
            flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target_addr: guest_ip,
        },
        &[OptionRepr::TargetLla(guest)],
    );
    // The router resolving the guest, sent to the uplink's MAC as a unicast probe.
    let ns_unicast = emit_nd(
        router,
        port_mac(UPLINK),
        router_ll,
        guest_ip,
        &NdMessage::NeighborSolicit {
            target_addr: guest_ip,
        },
        &[OptionRepr::SourceLla(router)],
    );
    let ping = emit_icmpv6_echo(
        router,
        port_mac(UPLINK),
        "2001:db8:1::1".parse().expect("literal"),
        guest_ip,
        false,
        7,
        1,
        b"ping",
    );
    // The RA enables the downstream ports, then the router resolves the guest.
    let resolve = |config: u8| {
        EngineInput::new(config)
            .frame(UPLINK, 0, &frame("ra"))
            .timeout(4_000)
            .frame(BR0, 100, &frame("ns-dad"))
            .frame(UPLINK, 1_000, &frame("ns"))
            .frame(BR0, 5, &na_to_relay)
    };
    let seeds: Vec<(&str, EngineInput)> = vec![
        (
            "userspace",
            resolve(0)
                .frame(UPLINK, 10, &ping)
                .timeout(30_000)
                .frame(UPLINK, 0, &ns_unicast),
        ),
        (
            "kernel-routes",
            resolve(1)
                .timeout(45_000)
                .link(BR0, false)
                .timeout(1_000)
                .link(BR0, true),
        ),
        (
            "fast-path",
            resolve(8)
                .frame(UPLINK, 200, &ns_unicast)
                .frame(UPLINK, 1_200, &frame("ns")),
        ),
        (
            "ra-relay-rs",
            EngineInput::new(4)
                .frame(UPLINK, 0, &frame("ra"))
                .frame(BR1, 3_500, &frame("rs"))
                .frame(BR0, 10, &frame("redirect"))
                .mac_change(BR1, 0x33)
                .frame(UPLINK, 3_000, &frame("ra")),
        ),
        (
            "static",
            EngineInput::new(0x13)
                .frame(UPLINK, 0, &frame("ra"))
                .timeout(4_000)
                .frame(UPLINK, 0, &frame("ns"))
                .frame(UPLINK, 10, &frame("echo")),
        ),
    ];
    for (name, input) in &seeds {
        std::fs::write(format!("{dir}/{name}"), &input.0)?;
    }
    println!("wrote {} engine seeds to {dir}", seeds.len());
    Ok(())
}
