//! Writes valid ND frames (all five messages, with and without options, behind extension
//! headers) into a directory, as the seed corpus of the `frame` fuzz target, so the fuzzer
//! starts from frames that pass the checksum instead of searching for them.
//!
//! `cargo run --example fuzz_seeds -- fuzz/corpus/frame` (scripts/test.sh does this).

use std::net::Ipv6Addr;

use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, PrefixInfo, RaFlags, RouterAdvert, emit_icmpv6_echo,
    emit_nd, solicited_node,
};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/frame".into());
    std::fs::create_dir_all(&dir)?;
    let router = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
    let guest = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);
    let router_ll: Ipv6Addr = "fe80::1".parse().expect("literal");
    let guest_ip: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("literal");
    let all_routers: Ipv6Addr = "ff02::2".parse().expect("literal");
    let ra = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags(RaFlags::OTHER),
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
                    flags: NaFlags {
                        router: false,
                        solicited: true,
                        override_: true,
                    },
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
    Ok(())
}
