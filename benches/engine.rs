//! Engine throughput: an upstream NS for a bound target, relayed to its port.
//!
//! Target (issue 2): at least 1 million NS/s through the engine on one core. Each
//! iteration advances virtual time by 1 ms, so per-target pacing (one relayed NS per
//! RetransTimer) is part of what is measured, as it would be live.
//!
//! Also the cost of [`Engine::snapshot`] with 2000 bindings (what `ndprelay status`
//! reads): the live daemon's engine thread takes it while frames wait for it.

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndprelay::engine::{Action, Engine, EngineConfig, PortConfig, PortId, Role};
use ndprelay::time::{Duration, Instant};
use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, RaFlags, RouterAdvert, emit_nd, solicited_node,
};

const UPLINK_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const BR0_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const ROUTER: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const GUEST: Mac = Mac([0x52, 0x54, 0x00, 0x00, 0x00, 0x10]);

fn drain(engine: &mut Engine) -> usize {
    let mut sent = 0;
    while let Some(action) = engine.poll_action() {
        if matches!(action, Action::Transmit { .. }) {
            sent += 1;
        }
    }
    sent
}

fn bound_relay() -> (Engine, Instant, Vec<u8>) {
    let port = PortConfig::ethernet;
    let ports = vec![
        port("uplink", Role::Upstream, UPLINK_MAC),
        port("br0", Role::Downstream, BR0_MAC),
    ];
    let config = EngineConfig::new(ports, vec!["2001:db8:1::/64".parse().expect("literal")]);
    let mut now = Instant::ZERO;
    let mut engine = Engine::new(config, now).expect("valid config");
    let router_ll: Ipv6Addr = "fe80::1".parse().expect("literal");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("literal");
    let target: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
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
        &[OptionRepr::SourceLla(ROUTER)],
    );
    engine.handle_frame(now, PortId(0), &ra);
    drain(&mut engine);
    // Let the downstream port send its two P-bit RAs and start proxying.
    for _ in 0..10 {
        now += Duration::from_secs(1);
        engine.handle_timeout(now);
        drain(&mut engine);
    }
    bind(&mut engine, now, target);
    (engine, now, router_ns(target))
}

/// The router's NS for `target`, multicast with its SLLA.
fn router_ns(target: Ipv6Addr) -> Vec<u8> {
    emit_nd(
        ROUTER,
        Mac::ipv6_multicast(solicited_node(target)),
        "fe80::1".parse().expect("literal"),
        solicited_node(target),
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &[OptionRepr::SourceLla(ROUTER)],
    )
}

/// The guest's solicited NA for `target`, to the router through the relay.
fn guest_na(target: Ipv6Addr) -> Vec<u8> {
    guest_na_from(GUEST, target)
}

/// The answer of the guest with MAC `guest`.
fn guest_na_from(guest: Mac, target: Ipv6Addr) -> Vec<u8> {
    emit_nd(
        guest,
        BR0_MAC,
        target,
        "fe80::1".parse().expect("literal"),
        &NdMessage::NeighborAdvert {
            flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target_addr: target,
        },
        &[OptionRepr::TargetLla(guest)],
    )
}

/// Binds `target` on br0 as it happens live: the router asks, the guest answers.
fn bind(engine: &mut Engine, now: Instant, target: Ipv6Addr) {
    bind_guest(engine, now, GUEST, target);
}

/// [`bind`] for the guest with MAC `guest`.
fn bind_guest(engine: &mut Engine, now: Instant, guest: Mac, target: Ipv6Addr) {
    engine.handle_frame(now, PortId(0), &router_ns(target));
    drain(engine);
    engine.handle_frame(now, PortId(1), &guest_na_from(guest, target));
    drain(engine);
}

/// NS from 1024 different uplink hosts for the bound guest, one per millisecond of
/// virtual time, so each asker comes back after its RetransTimer and every NS is relayed
/// (the expensive path). The guest's answer is fed back every 1000 NS to keep the
/// binding confirmed, and timers run when due, as a driver would.
fn upstream_ns_bound_target(c: &mut Criterion) {
    let (mut engine, mut now, _) = bound_relay();
    let target: Ipv6Addr = "2001:db8:1::10".parse().expect("literal");
    let asks: Vec<Vec<u8>> = (0..1024u16)
        .map(|i| {
            let asker = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, i);
            let mac = Mac([0x00, 0x00, 0x5e, 0x00, (i >> 8) as u8, i as u8]);
            emit_nd(
                mac,
                Mac::ipv6_multicast(solicited_node(target)),
                asker,
                solicited_node(target),
                &NdMessage::NeighborSolicit {
                    target_addr: target,
                },
                &[OptionRepr::SourceLla(mac)],
            )
        })
        .collect();
    let refresh = guest_na(target);
    let mut i = 0usize;
    let (mut asked, mut relayed) = (0u64, 0u64);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("upstream_ns_bound_target", |b| {
        b.iter(|| {
            now += Duration::from_millis(1);
            i = (i + 1) % asks.len();
            if engine.poll_timeout().is_some_and(|t| t <= now) {
                engine.handle_timeout(now);
                drain(&mut engine);
            }
            engine.handle_frame(now, PortId(0), black_box(&asks[i]));
            let sent = drain(&mut engine);
            asked += 1;
            relayed += sent as u64;
            if i % 1000 == 0 {
                engine.handle_frame(now, PortId(1), &refresh);
                drain(&mut engine);
            }
            sent
        })
    });
    group.finish();
    // Printed so BENCHMARKS.md can say what share of the measured NS were really relayed.
    println!("engine/upstream_ns_bound_target: {relayed} frames sent for {asked} NS");
}

/// A scan from the uplink: NS for a new random target in the prefix every 10 µs of
/// virtual time (a 100k NS/s scan, most refused by the uplink's rate budget), the case
/// where the decision history (`explain`) evicts an address for every frame.
fn upstream_ns_scan(c: &mut Criterion) {
    let (mut engine, mut now, _) = bound_relay();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let asks: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let target = Ipv6Addr::from((0x2001_0db8_0001_0000_u128 << 64) | u128::from(x));
            emit_nd(
                ROUTER,
                Mac::ipv6_multicast(solicited_node(target)),
                "fe80::1".parse().expect("literal"),
                solicited_node(target),
                &NdMessage::NeighborSolicit {
                    target_addr: target,
                },
                &[OptionRepr::SourceLla(ROUTER)],
            )
        })
        .collect();
    let mut i = 0usize;
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("upstream_ns_scan", |b| {
        b.iter(|| {
            now += Duration::from_micros(10);
            i = (i + 1) % asks.len();
            if engine.poll_timeout().is_some_and(|t| t <= now) {
                engine.handle_timeout(now);
                drain(&mut engine);
            }
            engine.handle_frame(now, PortId(0), black_box(&asks[i]));
            drain(&mut engine)
        })
    });
    group.finish();
}

/// `Engine::snapshot` with 2000 confirmed bindings, as in `scripts/bench-ns.sh`.
fn snapshot_2000_bindings(c: &mut Criterion) {
    let (mut engine, mut now, _) = bound_relay();
    // 2000 guests, one address each (one MAC may hold only `max_bindings_per_mac`), 10 ms
    // apart (the router's NS are rate-limited).
    for i in 0..2000u16 {
        now += Duration::from_millis(10);
        engine.handle_timeout(now);
        drain(&mut engine);
        let [hi, lo] = i.to_be_bytes();
        bind_guest(
            &mut engine,
            now,
            Mac([0x02, 0x00, 0x00, 0x01, hi, lo]),
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 1, 0, i),
        );
    }
    assert!(
        engine.snapshot(now).bindings.len() > 2000,
        "the bindings were not learned"
    );
    let mut group = c.benchmark_group("engine");
    group.bench_function("snapshot_2000_bindings", |b| {
        b.iter(|| black_box(engine.snapshot(now)));
    });
    // What the live daemon's engine thread takes; the control thread sorts it.
    group.bench_function("snapshot_unsorted_2000_bindings", |b| {
        b.iter(|| black_box(engine.snapshot_unsorted(now)));
    });
    group.finish();
}

criterion_group!(
    benches,
    upstream_ns_bound_target,
    upstream_ns_scan,
    snapshot_2000_bindings
);
criterion_main!(benches);
