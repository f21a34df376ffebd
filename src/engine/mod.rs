//! The relay: a sans-IO state machine (RFC 4389 bridge-like ND proxy).
//!
//! Heads up: read RFC 4861 §7 and RFC 4389 §4 first, then `NDP-REFERENCE.md`.
//!
//! The [`Engine`] never reads a clock, opens a socket, spawns a thread or draws
//! unseeded randomness. Its methods come in families:
//!
//! - inputs: [`Engine::handle_frame`], [`Engine::handle_timeout`],
//!   [`Engine::handle_link_event`], each taking `now`, which never goes backwards;
//! - commands: [`Engine::reload`];
//! - getters: [`Engine::counters`], [`Engine::snapshot`];
//! - outputs: [`Engine::poll_action`] and [`Engine::poll_timeout`].
//!
//! After every input the driver drains `poll_action` until it returns `None`, then
//! reads `poll_timeout` once and arms one timer for it.

pub mod config;

use std::net::Ipv6Addr;

pub use config::{
    DataPlane, EngineConfig, PortConfig, PrefixMode, PrefixRule, RaSource, Role, Tunables,
};

use crate::DropReason;
use crate::time::Instant;
use crate::wire::Mac;

/// Index of a port in [`EngineConfig::ports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl PortId {
    /// As an index into the port list.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Something the driver must do. Actions are data; the engine never performs I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Send this Ethernet frame on this port.
    Transmit {
        /// Egress port.
        port: PortId,
        /// The complete frame.
        frame: Vec<u8>,
    },
    /// Install (replace) a /128 route for `addr` via `port` (kernel data plane).
    InstallRoute {
        /// Guest address.
        addr: Ipv6Addr,
        /// Port the guest is bound on.
        port: PortId,
    },
    /// Remove the /128 route for `addr` via `port`.
    RemoveRoute {
        /// Guest address.
        addr: Ipv6Addr,
        /// Port the route pointed to.
        port: PortId,
    },
    /// A decision worth telling a person (only with `emit_events`).
    Event(Event),
}

/// A decision, for timelines, replay explanations and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A frame was dropped.
    Dropped {
        /// Ingress port.
        port: PortId,
        /// Why.
        reason: DropReason,
    },
    /// An ND message was relayed to these ports.
    Relayed {
        /// Ingress port.
        from: PortId,
        /// Egress ports.
        to: Vec<PortId>,
        /// Message name (`NS`, `NA`, ...).
        message: &'static str,
        /// NS/NA target, Redirect destination, or the IPv6 source for RS/RA.
        addr: Ipv6Addr,
    },
    /// The engine answered by itself (static prefix or fast path).
    Answered {
        /// Port the answer went out on.
        port: PortId,
        /// Target answered for.
        target: Ipv6Addr,
    },
    /// A binding was created or changed state.
    Binding {
        /// The address.
        addr: Ipv6Addr,
        /// Its port.
        port: PortId,
        /// Its MAC.
        mac: Mac,
        /// New state.
        state: BindingState,
    },
    /// A binding was removed (expired, failed, port gone).
    Unbound {
        /// The address.
        addr: Ipv6Addr,
        /// The port it was on.
        port: PortId,
    },
    /// A port started or stopped proxying (RFC 4389 §4.1.3.3, §6; link state).
    PortProxying {
        /// The port.
        port: PortId,
        /// Whether it now proxies.
        enabled: bool,
    },
    /// A unicast data frame was forwarded (userspace data plane).
    Forwarded {
        /// Ingress.
        from: PortId,
        /// Egress.
        to: PortId,
        /// IPv6 destination.
        dst: Ipv6Addr,
    },
}

/// Reachability state of a binding (RFC 4861 §7.3.2 states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingState {
    /// Being resolved; no link-layer address confirmed yet.
    Incomplete,
    /// Learned but not confirmed.
    Stale,
    /// Used while stale; a probe follows after the delay.
    Delay,
    /// Being probed with unicast NS.
    Probe,
    /// Confirmed by a solicited NA recently.
    Reachable,
}

/// A link event from the driver (netlink, simulator, replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// Carrier up.
    Up,
    /// Carrier down.
    Down,
    /// The port's MAC changed.
    MacChanged(Mac),
    /// The port's MTU changed.
    MtuChanged(u32),
}

/// One binding, as shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingInfo {
    /// Address.
    pub addr: Ipv6Addr,
    /// Port it lives behind.
    pub port: PortId,
    /// Its MAC.
    pub mac: Mac,
    /// State.
    pub state: BindingState,
    /// Last time it was confirmed, if ever.
    pub confirmed_at: Option<Instant>,
    /// Whether a route is installed for it.
    pub routed: bool,
}

/// One port, as shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Current MAC.
    pub mac: Mac,
    /// Carrier up.
    pub up: bool,
    /// Whether the port currently proxies.
    pub proxying: bool,
    /// Proxying disabled until this time (RFC 4389 loop rules), if so.
    pub disabled_until: Option<Instant>,
}

/// Everything `status` shows, copied out of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was taken.
    pub now: Instant,
    /// Ports in `PortId` order.
    pub ports: Vec<PortInfo>,
    /// Bindings, sorted by address.
    pub bindings: Vec<BindingInfo>,
    /// Counters as (name, value), non-zero and zero alike, stable order.
    pub counters: Vec<(String, u64)>,
}

/// Why an [`EngineConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineConfigError {
    /// Not exactly one upstream port.
    #[error("exactly one upstream port is required, found {0}")]
    UpstreamCount(usize),
    /// No downstream port.
    #[error("at least one downstream port is required")]
    NoDownstream,
    /// Two ports share a MAC.
    #[error("ports {0} and {1} share the MAC {2}")]
    DuplicateMac(String, String, Mac),
    /// Prefix rules overlap.
    #[error("prefixes {0} and {1} overlap")]
    OverlappingPrefixes(String, String),
}

/// The relay state machine. See the module documentation for the calling convention.
#[derive(Debug)]
pub struct Engine {
    _todo: (),
}

impl Engine {
    /// Creates an engine; `now` is the time origin of its timers.
    pub fn new(config: EngineConfig, now: Instant) -> Result<Self, EngineConfigError> {
        let _ = (config, now);
        todo!("engine::Engine::new")
    }

    /// Feeds one received Ethernet frame from `port`.
    pub fn handle_frame(&mut self, now: Instant, port: PortId, frame: &[u8]) {
        let _ = (now, port, frame);
        todo!("engine::Engine::handle_frame")
    }

    /// Runs every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("engine::Engine::handle_timeout")
    }

    /// Reports a link change on `port`.
    pub fn handle_link_event(&mut self, now: Instant, port: PortId, event: LinkEvent) {
        let _ = (now, port, event);
        todo!("engine::Engine::handle_link_event")
    }

    /// Swaps in a new config atomically; unchanged ports keep their bindings and routes.
    pub fn reload(&mut self, now: Instant, config: EngineConfig) -> Result<(), EngineConfigError> {
        let _ = (now, config);
        todo!("engine::Engine::reload")
    }

    /// The next action to perform, or `None` when drained.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!("engine::Engine::poll_action")
    }

    /// When `handle_timeout` must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("engine::Engine::poll_timeout")
    }

    /// The value of counter `name` (e.g. `drop_hop_limit`, `relayed_ns`), 0 if unknown.
    pub fn counter(&self, name: &str) -> u64 {
        let _ = name;
        todo!("engine::Engine::counter")
    }

    /// Ports, bindings and counters, for `status`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let _ = now;
        todo!("engine::Engine::snapshot")
    }
}
