//! Fuzzes the engine with sequences of frames, timer ticks, link events and MAC changes on
//! a three-port relay whose options come from the input's first byte (input format in
//! `fuzz/src/lib.rs`). Nothing may panic, time only moves forward, a timer wake-up leaves
//! no timer due within a few `handle_timeout` calls, every frame sent is one the parser
//! accepts on a real port and none goes to a routed port, routes stay inside the prefix,
//! and the binding table and the routes stay within the configured bound.
#![no_main]

use std::collections::HashSet;

use ipnet::Ipv6Net;
use libfuzzer_sys::fuzz_target;
use ndprelay::engine::{
    Action, DataPlane, Engine, EngineConfig, LinkEvent, PortConfig, PortId, PrefixMode, RaSource,
    Role, RouteUpdate,
};
use ndprelay::time::{Duration, Instant};
use ndprelay::wire::{Mac, parse_frame};
use ndprelay_fuzz::{Op, decode, with_fixed_checksum};

const PORTS: u8 = 3;
/// Deadlines an on-time timeout op fires one by one before firing the rest late.
const ON_TIME_WAKEUPS: usize = 32;
/// `handle_timeout` calls a wake-up may take to leave no timer due.
const MAX_CALLS_PER_WAKEUP: usize = 4;

/// What a driver does when its timer fires: `handle_timeout`, again while
/// `poll_timeout` says a timer is due. A timer one handler arms for `now` (a port's
/// proxy hold ending asks for an RS at once) takes one more call; a timer that stays
/// due call after call would make the driver spin.
fn wake_up(engine: &mut Engine, now: Instant) {
    for _ in 0..MAX_CALLS_PER_WAKEUP {
        engine.handle_timeout(now);
        if engine.poll_timeout().is_none_or(|deadline| deadline > now) {
            return;
        }
    }
    panic!("a timer stays due at {now:?} after {MAX_CALLS_PER_WAKEUP} handle_timeout calls");
}

fn port(name: &str, role: Role, last: u8) -> PortConfig {
    PortConfig::ethernet(name, role, Mac([0x02, 0, 0, 0, 0, last]))
}

/// The relay the input's first byte describes: each bit turns one option away from the
/// defaults, so the fuzzer explores every data plane and RA policy.
fn config(bits: u8, prefix: Ipv6Net) -> EngineConfig {
    let ports = vec![
        port("uplink", Role::Upstream, 1),
        port("br0", Role::Downstream, 2),
        port("br1", Role::Downstream, 3),
    ];
    let mut config = EngineConfig::new(ports, vec![prefix]);
    config.data_plane = match bits & 3 {
        0 => DataPlane::Userspace,
        1 => DataPlane::KernelRoutes,
        _ => DataPlane::None,
    };
    if bits & 4 != 0 {
        config.ra_source = RaSource::Relay;
    }
    if bits & 8 != 0 {
        config.fast_path = Some(Duration::from_secs(10));
        config.fast_path_in_kernel = bits & 0x10 != 0;
    }
    config.relay_in_kernel = bits & 0x20 != 0;
    config.honour_proxy_bit = bits & 0x40 == 0;
    // Announcing, as the config file's default, except in cascade mode.
    config.announce = bits & 0x40 == 0;
    config.disable_on_rogue_ra = bits & 0x80 != 0;
    if bits & 0x1b == 0x12 {
        // Another combination nothing else needs (fast_path_in_kernel without a fast
        // path): br1 is a routed port (a tun or WireGuard link).
        config.ports[2].routed = true;
    }
    if bits & 0x13 == 0x13 {
        // A combination no other bit needs: static mode, where the relay answers alone.
        config.prefixes[0].mode = PrefixMode::Static;
    }
    config.emit_events = true;
    config.tunables.max_bindings = 64;
    config.tunables.max_pending = 32;
    config.tunables.max_pending_per_port = 16;
    config
}

fuzz_target!(|data: &[u8]| {
    let prefix: Ipv6Net = "2001:db8:1::/64".parse().expect("literal prefix");
    let (bits, ops) = decode(data);
    let config = config(bits, prefix);
    let max_bindings = config.tunables.max_bindings;
    let routed: Vec<bool> = config.ports.iter().map(|p| p.routed).collect();
    let mut now = Instant::ZERO;
    // A combination the config check refuses is not a finding.
    let Ok(mut engine) = Engine::new(config, now) else {
        return;
    };
    let mut routes = HashSet::new();
    for op in ops {
        match op {
            Op::Frame {
                port,
                advance_ms,
                fix_checksum,
                bytes,
            } => {
                now += Duration::from_millis(advance_ms.into());
                let port = PortId(u16::from(port % PORTS));
                match with_fixed_checksum(bytes).filter(|_| fix_checksum) {
                    Some(fixed) => engine.handle_frame(now, port, &fixed),
                    None => engine.handle_frame(now, port, bytes),
                }
            }
            Op::Timeout {
                advance_ms,
                on_time,
            } => {
                let target = now + Duration::from_millis(advance_ms.into());
                if on_time {
                    // A punctual driver: each deadline at its own time, in order (a
                    // bounded number, then the rest late, so a long advance stays fast).
                    for _ in 0..ON_TIME_WAKEUPS {
                        match engine.poll_timeout() {
                            Some(deadline) if deadline <= target => {
                                now = now.max(deadline);
                                wake_up(&mut engine, now);
                            }
                            _ => break,
                        }
                    }
                }
                now = target;
                wake_up(&mut engine, now);
            }
            Op::Link { port, up } => {
                let event = if up { LinkEvent::Up } else { LinkEvent::Down };
                engine.handle_link_event(now, PortId(u16::from(port % PORTS)), event);
            }
            Op::Route {
                port,
                len,
                last,
                present,
            } => {
                let addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(last));
                let update = RouteUpdate {
                    prefix: Ipv6Net::new(addr, len % 129).expect("length at most 128"),
                    port: (port < PORTS).then_some(PortId(u16::from(port))),
                    present,
                };
                engine.handle_route(now, update);
            }
            Op::MacChange { port, last } => {
                let mac = Mac([0x02, 0, 0, 0, 1, last]);
                engine.handle_link_event(
                    now,
                    PortId(u16::from(port % PORTS)),
                    LinkEvent::MacChanged(mac),
                );
            }
        }
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Transmit { port, frame } => {
                    assert!(port.index() < usize::from(PORTS), "transmit on {port:?}");
                    assert!(
                        !routed[port.index()],
                        "a frame sent on routed port {port:?}"
                    );
                    assert!(
                        parse_frame(&frame).is_ok(),
                        "the relay sent a frame it rejects: {frame:02x?}"
                    );
                }
                Action::InstallRoute { addr, .. } => {
                    assert!(prefix.contains(&addr), "route for {addr} outside {prefix}");
                    routes.insert(addr);
                    assert!(routes.len() <= max_bindings, "{} routes", routes.len());
                }
                Action::RemoveRoute { addr, .. } => {
                    routes.remove(&addr);
                }
                _ => {}
            }
        }
    }
    assert!(engine.snapshot_unsorted(now).bindings.len() <= max_bindings);
});
