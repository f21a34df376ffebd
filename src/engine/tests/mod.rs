//! Engine behaviour tests: a harness with a virtual clock and three fake ports (one
//! uplink, two downstream), frames built with `crate::wire::emit_nd`, and every
//! transmitted frame parsed back with `crate::wire::parse_frame` before assertions.
#![allow(clippy::unwrap_used)]

mod announce;
mod bindings;
mod data;
mod explain;
mod hostile;
mod kernel_fast_path;
mod kernel_model;
mod kernel_relay;
mod latency;
mod leftover;
mod ndp;
mod own_ra;
mod ports;
mod ra;
mod restore;
mod robust;
mod routed;

use std::net::Ipv6Addr;

use super::{Action, Engine, EngineConfig, Event, PortConfig, PortId, Role};
use crate::time::{Duration, Instant};
use crate::wire::{
    Ipv6Data, Mac, NaFlags, NdMessage, NdPacket, OptionRepr, Parsed, RaFlags, RouterAdvert,
    emit_ipv6, emit_nd, parse_frame, solicited_node,
};
use kernel_model::KernelModel;

pub(super) const UP: PortId = PortId(0);
pub(super) const D1: PortId = PortId(1);
pub(super) const D2: PortId = PortId(2);
pub(super) const UP_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
pub(super) const D1_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
pub(super) const D2_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x03]);
pub(super) const ROUTER_MAC: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
pub(super) const UPHOST_MAC: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x09]);

pub(super) fn port_mac(p: PortId) -> Mac {
    [UP_MAC, D1_MAC, D2_MAC][p.index()]
}
pub(super) fn port_ll(p: PortId) -> Ipv6Addr {
    port_mac(p).link_local()
}
pub(super) fn router_ll() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}
pub(super) fn router_global() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
/// An address in the proxied prefix.
pub(super) fn addr(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)
}
/// Guest MAC number `i`.
pub(super) fn gmac(i: u8) -> Mac {
    Mac([0x52, 0x54, 0, 0, 0, i])
}
pub(super) fn all_nodes() -> Ipv6Addr {
    "ff02::1".parse().unwrap()
}
pub(super) fn all_routers() -> Ipv6Addr {
    "ff02::2".parse().unwrap()
}

pub(super) const NO_FLAGS: NaFlags = NaFlags::empty();
pub(super) const SOLICITED: NaFlags = NaFlags::SOLICITED.union(NaFlags::OVERRIDE);
pub(super) const UNSOLICITED_O: NaFlags = NaFlags::OVERRIDE;

/// The standard test config: uplink + two downstream ports, prefix 2001:db8:1::/64,
/// kernel routes, events on, fixed seed.
pub(super) fn config() -> EngineConfig {
    let port = PortConfig::ethernet;
    let mut c = EngineConfig::new(
        vec![
            port("uplink", Role::Upstream, UP_MAC),
            port("br0", Role::Downstream, D1_MAC),
            port("br1", Role::Downstream, D2_MAC),
        ],
        vec!["2001:db8:1::/64".parse().unwrap()],
    );
    c.emit_events = true;
    c.seed = 42;
    c
}

/// A transmitted frame.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) port: PortId,
    pub(super) frame: Vec<u8>,
}

impl Sent {
    /// The frame as a validated ND message (panics if it is not one: the relay must
    /// only ever send valid ND).
    pub(super) fn nd(&self) -> NdPacket<'_> {
        match parse_frame(&self.frame) {
            Ok(Parsed::Nd(p)) => p,
            other => panic!("not a valid ND frame: {other:?}"),
        }
    }

    pub(super) fn data(&self) -> Ipv6Data<'_> {
        match parse_frame(&self.frame) {
            Ok(Parsed::Data(d)) => d,
            other => panic!("not an IPv6 data frame: {other:?}"),
        }
    }

    pub(super) fn is_ns_for(&self, target: Ipv6Addr) -> bool {
        matches!(parse_frame(&self.frame), Ok(Parsed::Nd(p))
            if p.message == NdMessage::NeighborSolicit { target_addr: target })
    }

    pub(super) fn is_na_for(&self, target: Ipv6Addr) -> bool {
        matches!(parse_frame(&self.frame), Ok(Parsed::Nd(p))
            if matches!(p.message, NdMessage::NeighborAdvert { target_addr, .. } if target_addr == target))
    }

    pub(super) fn is_ra(&self) -> bool {
        matches!(parse_frame(&self.frame), Ok(Parsed::Nd(p))
            if matches!(p.message, NdMessage::RouterAdvert(_)))
    }

    pub(super) fn is_rs(&self) -> bool {
        matches!(parse_frame(&self.frame), Ok(Parsed::Nd(p))
            if p.message == NdMessage::RouterSolicit)
    }
}

/// The engine with a virtual clock and collected outputs.
pub(super) struct Harness {
    pub(super) engine: Engine,
    pub(super) now: Instant,
    pub(super) sent: Vec<Sent>,
    pub(super) routes: Vec<Action>,
    /// `KernelAnswer` and `KernelForget`.
    pub(super) kernel: Vec<Action>,
    /// The in-kernel programs as the driver filled their maps.
    pub(super) kernel_model: KernelModel,
    pub(super) events: Vec<Event>,
}

impl Harness {
    /// A fresh engine at time zero, initial actions drained.
    pub(super) fn new(cfg: EngineConfig) -> Self {
        let engine = Engine::new(cfg, Instant::ZERO).expect("valid test config");
        let mut h = Self {
            engine,
            now: Instant::ZERO,
            sent: Vec::new(),
            routes: Vec::new(),
            kernel: Vec::new(),
            kernel_model: KernelModel::default(),
            events: Vec::new(),
        };
        h.drain();
        h
    }

    /// Downstream ports enabled: an uplink RA was seen and two P-bit RAs went out on
    /// each downstream port. Outputs so far are discarded.
    pub(super) fn ready(cfg: EngineConfig) -> Self {
        let mut h = Self::new(cfg);
        h.inject(UP, &ra(RaFlags::empty(), 1800, &[]));
        h.advance(Duration::from_secs(10));
        assert!(h.proxying(D1) && h.proxying(D2), "ports must be enabled");
        h.clear();
        h
    }

    pub(super) fn clear(&mut self) {
        self.sent.clear();
        self.routes.clear();
        self.kernel.clear();
        self.events.clear();
    }

    pub(super) fn drain(&mut self) {
        while let Some(a) = self.engine.poll_action() {
            match a {
                Action::Transmit { port, frame } => self.sent.push(Sent { port, frame }),
                Action::Event(e) => self.events.push(e),
                r @ (Action::InstallRoute { .. } | Action::RemoveRoute { .. }) => {
                    self.routes.push(r)
                }
                k @ (Action::KernelAnswer { .. }
                | Action::KernelForget { .. }
                | Action::KernelRelayNs { .. }
                | Action::KernelRelayNa { .. }
                | Action::KernelForgetRelays) => {
                    self.kernel_model.apply(self.now, &k);
                    self.kernel.push(k)
                }
            }
        }
    }

    /// `frame` arrives on `port` now: the in-kernel programs see it, then the engine.
    pub(super) fn inject(&mut self, port: PortId, frame: &[u8]) {
        self.inject_seen_at(port, frame, self.now);
    }

    /// `frame` reached the kernel (and its programs) at `seen` and the engine only now,
    /// as when the driver's receive queue is backed up.
    pub(super) fn inject_seen_at(&mut self, port: PortId, frame: &[u8], seen: Instant) {
        let word = self.kernel_model.word(port, frame, seen);
        self.engine.handle_frame_with(self.now, port, frame, word);
        self.drain();
    }

    pub(super) fn link(&mut self, port: PortId, ev: super::LinkEvent) {
        self.engine.handle_link_event(self.now, port, ev);
        self.drain();
    }

    /// Moves virtual time forward by `by`, running every timer on the way the way a
    /// driver would (drain, then sleep until `poll_timeout`).
    pub(super) fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(deadline) = self.engine.poll_timeout() {
            if deadline > end {
                break;
            }
            self.now = self.now.max(deadline);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// Frames sent on `port` since the last take (removed from `sent`).
    pub(super) fn take(&mut self, port: PortId) -> Vec<Sent> {
        let (mine, rest) = self.sent.drain(..).partition(|s| s.port == port);
        self.sent = rest;
        mine
    }

    pub(super) fn count(&self, name: &str) -> u64 {
        self.engine.counter(name)
    }

    pub(super) fn proxying(&self, port: PortId) -> bool {
        self.engine.snapshot(self.now).ports[port.index()].proxying
    }

    pub(super) fn binding(&self, a: Ipv6Addr) -> Option<super::BindingInfo> {
        self.engine
            .snapshot(self.now)
            .bindings
            .into_iter()
            .find(|b| b.addr == a)
    }

    /// Binds guest `i` (address `addr(i)`, MAC `gmac(i)`) on `port` the way it happens
    /// live: the router solicits it, the relay relays, the guest answers; then one
    /// second passes.
    /// A relay with `cfg`, guest 10 bound on D1 and the router's NS for it just
    /// processed (an in-kernel path, when configured, has been told).
    pub(super) fn guest_asked_for(cfg: EngineConfig) -> Self {
        let mut h = Self::ready(cfg);
        h.bind_guest(10, D1);
        h.inject(UP, &ns_from_router(addr(10)));
        h
    }

    pub(super) fn bind_guest(&mut self, i: u8, port: PortId) {
        let a = addr(u16::from(i));
        self.inject(UP, &ns_from_router(a));
        self.inject(port, &na_to_router(gmac(i), port, a));
        let b = self.binding(a).expect("guest bound");
        assert_eq!((b.port, b.mac), (port, gmac(i)));
        assert_eq!(b.state, super::BindingState::Reachable);
        // Past the router's RetransTimer, so its next NS for the guest is not paced.
        self.advance(Duration::from_secs(1));
        self.clear();
    }
}

/// An NS with an optional SLLA; L2 destination from the IPv6 destination.
pub(super) fn ns(
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    slla: Option<Mac>,
) -> Vec<u8> {
    let opts: Vec<_> = slla.map(OptionRepr::SourceLla).into_iter().collect();
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &opts,
    )
}

/// The router's multicast NS for `target` from its link-local.
pub(super) fn ns_from_router(target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    ns(
        ROUTER_MAC,
        Mac::ipv6_multicast(group),
        router_ll(),
        group,
        target,
        Some(ROUTER_MAC),
    )
}

/// DAD NS for `target` from `eth_src`.
pub(super) fn dad(eth_src: Mac, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    ns(
        eth_src,
        Mac::ipv6_multicast(group),
        Ipv6Addr::UNSPECIFIED,
        group,
        target,
        None,
    )
}

pub(super) fn na(
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    flags: NaFlags,
    target: Ipv6Addr,
    tlla: Option<Mac>,
) -> Vec<u8> {
    let opts: Vec<_> = tlla.map(OptionRepr::TargetLla).into_iter().collect();
    emit_nd(
        eth_src,
        eth_dst,
        src,
        dst,
        &NdMessage::NeighborAdvert {
            flags,
            target_addr: target,
        },
        &opts,
    )
}

/// An NA from `mac` for its own `target` to all nodes, with `mac` as TLLA (unsolicited
/// announcements, or O=0 answers when `flags` say so).
pub(super) fn na_to_all_nodes(mac: Mac, flags: NaFlags, target: Ipv6Addr) -> Vec<u8> {
    na(
        mac,
        Mac::ipv6_multicast(all_nodes()),
        target,
        all_nodes(),
        flags,
        target,
        Some(mac),
    )
}

/// A guest's solicited NA to the router (sent to the relay's MAC on `port`, which the
/// relayed NS carried as SLLA).
pub(super) fn na_to_router(mac: Mac, port: PortId, target: Ipv6Addr) -> Vec<u8> {
    na(
        mac,
        port_mac(port),
        target,
        router_ll(),
        SOLICITED,
        target,
        Some(mac),
    )
}

/// Guest `i`'s solicited answer to the relay's own probe on `port` (to the port's
/// link-local), as a real host sends it.
pub(super) fn probe_answer(i: u8, port: PortId) -> Vec<u8> {
    na(
        gmac(i),
        port_mac(port),
        addr(u16::from(i)),
        port_ll(port),
        SOLICITED,
        addr(u16::from(i)),
        Some(gmac(i)),
    )
}

/// A router RA to ff02::1 from `fe80::1` with SLLA and the given options.
pub(super) fn ra(flags: RaFlags, lifetime: u16, extra: &[OptionRepr]) -> Vec<u8> {
    let mut opts = vec![OptionRepr::SourceLla(ROUTER_MAC)];
    opts.extend_from_slice(extra);
    emit_nd(
        ROUTER_MAC,
        Mac::ipv6_multicast(all_nodes()),
        router_ll(),
        all_nodes(),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags,
            router_lifetime: lifetime,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &opts,
    )
}

/// A P-clear RA from guest `gmac(i)` (a rogue router on a downstream port).
pub(super) fn rogue_ra(i: u8) -> Vec<u8> {
    emit_nd(
        gmac(i),
        Mac::ipv6_multicast(all_nodes()),
        gmac(i).link_local(),
        all_nodes(),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::empty(),
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(gmac(i))],
    )
}

/// A UDP-ish IPv6 data frame of `len` payload bytes with hop limit 64.
pub(super) fn data(
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    len: usize,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    emit_ipv6(eth_src, eth_dst, src, dst, 17, 64, &payload)
}

#[test]
fn harness_sanity_frames_round_trip() {
    let f = ns_from_router(addr(5));
    let s = Sent { port: UP, frame: f };
    assert!(s.is_ns_for(addr(5)));
    assert_eq!(s.nd().slla, Some(ROUTER_MAC));
}
