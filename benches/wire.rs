//! Per-frame cost of parse + validate, and of building a relayed copy.
//!
//! Target (issue 2): at least 2 million frames/s per core for parse + validate.

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndprelay::wire::{
    LlaRewrite, Mac, NaFlags, NdMessage, OptionRepr, Parsed, PrefixInfo, RaFlags, Rewrite,
    RouterAdvert, emit_nd, parse_frame, rewrite, solicited_node,
};

const ROUTER: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const RELAY: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let router_ll: Ipv6Addr = "fe80::1".parse().expect("literal");
    let target: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("literal");
    let ns = emit_nd(
        ROUTER,
        Mac::ipv6_multicast(solicited_node(target)),
        router_ll,
        solicited_node(target),
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &[OptionRepr::SourceLla(ROUTER)],
    );
    let na = emit_nd(
        RELAY,
        ROUTER,
        target,
        router_ll,
        &NdMessage::NeighborAdvert {
            flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target_addr: target,
        },
        &[OptionRepr::TargetLla(RELAY)],
    );
    let ra = emit_nd(
        ROUTER,
        Mac::ipv6_multicast(all_nodes),
        router_ll,
        all_nodes,
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::empty(),
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[
            OptionRepr::SourceLla(ROUTER),
            OptionRepr::Mtu(1500),
            OptionRepr::PrefixInfo(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: "2001:db8:1::".parse().expect("literal"),
            }),
        ],
    );
    vec![("ns", ns), ("na", na), ("ra", ra)]
}

fn parse_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_validate");
    group.throughput(Throughput::Elements(1));
    for (name, frame) in frames() {
        assert!(
            matches!(parse_frame(&frame), Ok(Parsed::Nd(_))),
            "{name} must be valid"
        );
        group.bench_function(name, |b| b.iter(|| parse_frame(black_box(&frame)).is_ok()));
    }
    group.finish();
}

fn rewrite_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_rewrite");
    group.throughput(Throughput::Elements(1));
    let rw = Rewrite {
        eth_src: RELAY,
        eth_dst: Mac::BROADCAST,
        src_addr: None,
        dst_addr: None,
        slla: LlaRewrite::Replace(RELAY),
        tlla: LlaRewrite::Replace(RELAY),
        set_proxy_flag: true,
        clear_pio_on_link: false,
        max_mtu: Some(1500),
    };
    let mut out = Vec::with_capacity(256);
    for (name, frame) in frames() {
        group.bench_function(name, |b| {
            b.iter(|| {
                if let Ok(Parsed::Nd(p)) = parse_frame(black_box(&frame)) {
                    rewrite(&p, &rw, &mut out);
                }
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_validate, rewrite_copy);
criterion_main!(benches);
