//! Fuzzes the engine with arbitrary sequences of frames, timer ticks and link events on a
//! three-port relay. Nothing may panic, time only moves forward, and the binding table
//! stays within its configured bound.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ndprelay::engine::{
    DataPlane, Engine, EngineConfig, LinkEvent, PortConfig, PortId, Role,
};
use ndprelay::time::{Duration, Instant};
use ndprelay::wire::Mac;

#[derive(Arbitrary, Debug)]
enum Op {
    Frame { port: u8, advance_ms: u16, bytes: Vec<u8> },
    Timeout { advance_ms: u16 },
    Link { port: u8, up: bool },
    MacChange { port: u8, last: u8 },
}

fn port(name: &str, role: Role, last: u8) -> PortConfig {
    let mac = Mac([0x02, 0, 0, 0, 0, last]);
    PortConfig { name: name.into(), role, mac, link_local: mac.link_local(), mtu: 1500 }
}

fuzz_target!(|ops: Vec<Op>| {
    let ports = vec![
        port("uplink", Role::Upstream, 1),
        port("br0", Role::Downstream, 2),
        port("br1", Role::Downstream, 3),
    ];
    let prefix = "2001:db8:1::/64".parse().expect("literal prefix");
    let mut config = EngineConfig::new(ports, vec![prefix]);
    config.data_plane = DataPlane::Userspace;
    config.emit_events = true;
    config.tunables.max_bindings = 64;
    config.tunables.max_pending = 32;
    config.tunables.max_pending_per_port = 16;
    let max_bindings = config.tunables.max_bindings;
    let mut now = Instant::ZERO;
    let mut engine = Engine::new(config, now).expect("valid fuzz config");
    for op in ops {
        match op {
            Op::Frame { port, advance_ms, bytes } => {
                now += Duration::from_millis(advance_ms.into());
                engine.handle_frame(now, PortId(u16::from(port % 3)), &bytes);
            }
            Op::Timeout { advance_ms } => {
                now += Duration::from_millis(advance_ms.into());
                engine.handle_timeout(now);
            }
            Op::Link { port, up } => {
                let event = if up { LinkEvent::Up } else { LinkEvent::Down };
                engine.handle_link_event(now, PortId(u16::from(port % 3)), event);
            }
            Op::MacChange { port, last } => {
                let mac = Mac([0x02, 0, 0, 0, 1, last]);
                engine.handle_link_event(now, PortId(u16::from(port % 3)), LinkEvent::MacChanged(mac));
            }
        }
        while engine.poll_action().is_some() {}
        if let Some(deadline) = engine.poll_timeout() {
            assert!(deadline >= Instant::ZERO);
        }
        assert!(engine.snapshot(now).bindings.len() <= max_bindings);
    }
});
