//! The relay: a sans-IO state machine (RFC 4389 bridge-like ND proxy).
//!
//! Heads up: read RFC 4861 §7 and RFC 4389 §4 first, then `NDP-REFERENCE.md`.
//!
//! The [`Engine`] never reads a clock, opens a socket, spawns a thread or draws
//! unseeded randomness. Its methods come in families:
//!
//! - inputs: [`Engine::handle_frame`], [`Engine::handle_timeout`],
//!   [`Engine::handle_link_event`], each taking `now`, which never goes backwards;
//! - commands: [`Engine::reload`], [`Engine::adopt_routes`] (routes an earlier run left),
//!   [`Engine::restore_state`] (bindings an earlier run saved), [`Engine::assume_running`]
//!   (replay's steady state);
//! - getters: [`Engine::counter`], [`Engine::snapshot`], [`Engine::export_state`],
//!   [`Engine::address_facts`] (what `explain` says about one address);
//! - outputs: [`Engine::poll_action`] and [`Engine::poll_timeout`].
//!
//! After every input (and after [`Engine::new`] and [`Engine::reload`]) the driver
//! drains `poll_action` until it returns `None`, then reads `poll_timeout` once and arms
//! one timer for it; when it fires it calls [`Engine::handle_timeout`]. A deadline may
//! already have passed: the driver then calls `handle_timeout` at once. Waking early is
//! harmless.
//!
//! Files: `ns.rs`, `na.rs`, `ra.rs` (RS and RA), `redirect.rs` and `data.rs` each hold
//! the `impl Engine` for one message; `port.rs` link events and the RFC 4389 enabling
//! and disabling of ports; `reload.rs` config swaps; `bindings.rs` the binding life
//! cycle (learning, NUD, moves, routes) over the table in `cache.rs`; `pending.rs` the
//! pending solicitations; `leftover.rs` the routes an earlier run left (re-verified,
//! taken over or removed after a grace period); `restore.rs` the state saved for the
//! next run and restored from the last one; `announce.rs` the unsolicited NAs that
//! announce guests on the uplink; `timer.rs` deadlines; `bucket.rs` token buckets;
//! `counters.rs` counters; `event.rs` the wording of [`Event`]s every
//! driver prints; `history.rs` the bounded per-address decision history `explain`
//! shows; `tests/` the behaviour tests.
//!
//! Policies decided here (NDP reference §1.3):
//! - NS are relayed, never answered from the cache (RFC 4389 §4.1.3.1), except by the
//!   opt-in fast path ([`EngineConfig::fast_path`]) and `PrefixMode::Static` rules, and
//!   never for DAD. NAs the relay originates as solicited proxy answers carry O=0
//!   (RFC 4861 §7.2.8); relayed NAs keep the owner's R/S/O.
//! - Link-local targets (reference checklist 19): with [`RaSource::KeepRouter`] guests
//!   see the router's link-local as their default router, so NS/NA for the link-locals
//!   of routers seen on the uplink are relayed; with [`RaSource::Relay`] guests use the
//!   relay's own link-local and no link-local target is proxied.
//! - A downstream port proxies only after two P-bit RAs went out on it (RFC 4389 §6);
//!   without RA relaying (`ra_relay: false`) ports proxy as soon as they are up.

pub mod config;

mod announce;
mod bindings;
mod bucket;
mod cache;
mod counters;
mod data;
mod event;
mod history;
mod kernel;
mod latency;
mod leftover;
mod na;
mod ns;
mod pending;
mod port;
mod ra;
mod redirect;
mod reload;
mod restore;
mod routed;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;

pub use config::{
    DataPlane, EngineConfig, MAX_PORTS, PortConfig, PrefixMode, PrefixRule, RaSource, Role,
    Tunables,
};
pub use counters::Counter;
pub use event::{EventDisplay, EventFields, EventNames};
pub use history::{
    AddressFacts, BindingFacts, Decision, HISTORY_ADDRS, HISTORY_DEPTH, History, UplinkNs,
};
pub use kernel::KernelWord;
pub use latency::{NS_NA_BOUNDS_MICROS, NsNaHistogram};
pub use leftover::{LeftoverFate, ROUTE_GRACE};
pub use restore::{RestoreReport, SavedBinding, SavedPort, SavedState, StateStamp};
pub use routed::{MAX_ROUTED_ROUTES, RouteUpdate, RoutedInfo};

use crate::rng::Rng;
use bucket::TokenBucket;
use cache::{Binding, BindingCache};
use counters::Counters;
use leftover::Leftovers;
use pending::PendingTable;
use timer::{GlobalTimer, PortTimer, TimerTable};

use crate::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::{
    ETH_HEADER_LEN, IPV6_HEADER_LEN, LlaRewrite, Mac, NdMessage, NdPacket, OptionRepr, Parsed,
    Rewrite, emit_nd, parse_frame, rewrite, solicited_node,
};

/// How many times the unknown-target NS budget bound targets get: a relayed NS for a
/// bound target goes to one port only, so it amplifies nothing and may be generous.
const KNOWN_NS_FACTOR: u32 = 100;

fn known_ns_bucket(t: &Tunables, now: Instant) -> bucket::TokenBucket {
    bucket::TokenBucket::new(
        t.ns_rate.saturating_mul(KNOWN_NS_FACTOR),
        t.ns_burst.saturating_mul(KNOWN_NS_FACTOR),
        now,
    )
}

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
    /// Have the kernel answer NS for `target` arriving on `port` with `mac` until `until`
    /// (the in-kernel fast path, [`EngineConfig::fast_path_in_kernel`]); replaces an
    /// earlier entry for the pair. The engine leaves those NS unanswered meanwhile.
    KernelAnswer {
        /// Ingress port of the NS (an upstream port).
        port: PortId,
        /// The guest's address.
        target: Ipv6Addr,
        /// The port's own MAC, the Target Link-Layer Address of the answer.
        mac: Mac,
        /// When the binding's fast-path window ends.
        until: Instant,
    },
    /// Have the kernel relay NS for `target` arriving on `from` to the guest bound on `to`
    /// ([`EngineConfig::relay_in_kernel`], relay mode): to `guest_mac` from `mac` with
    /// `mac` as SLLA, until `until`. Replaces an earlier entry for (`from`, `target`).
    KernelRelayNs {
        /// Ingress port of the NS.
        from: PortId,
        /// The guest's address.
        target: Ipv6Addr,
        /// Port the guest is bound on.
        to: PortId,
        /// That port's MAC.
        mac: Mac,
        /// The guest's MAC.
        guest_mac: Mac,
        /// When the entry ends.
        until: Instant,
    },
    /// Stop the kernel answering and relaying NS for `target`, on every port.
    KernelForget {
        /// The guest's address.
        target: Ipv6Addr,
    },
    /// Have the kernel relay a bound guest's solicited NA ([`EngineConfig::relay_in_kernel`]):
    /// an NA for `target` arriving on `from`, to our MAC, from `guest_mac` (its Ethernet
    /// source and Target Link-Layer Address), addressed to `solicitor`, goes out `to` to
    /// `solicitor_mac` from `mac` with `mac` as TLLA, until `until`. Replaces an earlier
    /// entry for (`from`, `target`, `solicitor`). The driver must carry it out before
    /// the actions after it (they include the NS the guest answers).
    KernelRelayNa {
        /// Port the guest is bound on.
        from: PortId,
        /// The guest's address.
        target: Ipv6Addr,
        /// Who asked: the NA's IPv6 destination.
        solicitor: Ipv6Addr,
        /// The guest's MAC.
        guest_mac: Mac,
        /// Port the solicitor asked on.
        to: PortId,
        /// That port's MAC.
        mac: Mac,
        /// The solicitor's MAC.
        solicitor_mac: Mac,
        /// When the entry ends.
        until: Instant,
    },
    /// Stop the kernel relaying NAs, every entry (NS entries go with `KernelForget`).
    KernelForgetRelays,
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
    /// An NS left to the kernel, which answered it (in-kernel fast path).
    AnsweredByKernel {
        /// Port the NS came in on and the kernel answered on.
        port: PortId,
        /// Target answered for.
        target: Ipv6Addr,
    },
    /// An NS or NA the kernel relayed (`relay_in_kernel`), left untransmitted by the
    /// engine.
    RelayedByKernel {
        /// Port it came in on.
        from: PortId,
        /// Port the kernel sent it out of.
        to: PortId,
        /// `NS` or `NA`.
        message: &'static str,
        /// Its target.
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
    /// A sender sent an RA with the P bit on a port: its frames are dropped there until
    /// `until` (each such RA renews it).
    Quarantined {
        /// The port.
        port: PortId,
        /// The sender's MAC.
        mac: Mac,
        /// When the quarantine ends unless renewed.
        until: Instant,
    },
    /// A route an earlier run left ([`Engine::adopt_routes`]) was kept, taken over or
    /// removed. Queued even without `emit_events` (the daemon logs it).
    LeftoverRoute {
        /// The guest address.
        addr: Ipv6Addr,
        /// The port the route points to.
        port: PortId,
        /// What became of it.
        fate: LeftoverFate,
    },
    /// No router's RA came on the uplink within `ra_wait` of a downstream port starting
    /// to enable (RS sent): the relay enables its downstream ports with its own P-bit RAs
    /// (router lifetime 0, no prefixes). Queued even without `emit_events`, once per run
    /// (the daemon logs it as a warning).
    NoRouterRa {
        /// The uplink, where no RA was heard.
        uplink: PortId,
        /// How long the relay waited.
        waited: Duration,
    },
    /// A router's RA arrived after [`Event::NoRouterRa`]: it is relayed from now on and
    /// the relay's own RAs stop. Queued even without `emit_events`.
    RouterRaAfterAll {
        /// The uplink.
        uplink: PortId,
        /// The router's address (the RA's source).
        router: Ipv6Addr,
    },
    /// A guest's address was announced on the uplink with an unsolicited NA.
    Announced {
        /// The uplink, where the NA went out.
        port: PortId,
        /// The guest's address.
        target: Ipv6Addr,
        /// The port its binding is on.
        bound_on: PortId,
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
    /// Being resolved; no link-layer address confirmed yet. The engine never stores
    /// it: a target being resolved lives only in the bounded pending table, so targets
    /// that never answer create no binding.
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
    /// Restored from an earlier run's saved state and not yet re-verified.
    pub restored: bool,
}

/// Why a port proxies or does not (RFC 4389 §4.1.3.3 and §6, link state), as `status`
/// shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    /// The port proxies.
    Proxying,
    /// Carrier down.
    LinkDown,
    /// The link MTU is below the IPv6 minimum of 1280: the port counts as down.
    MtuTooSmall {
        /// The MTU.
        mtu: u32,
    },
    /// Disabled by the RFC 4389 §4.1.3.3 loop rules (an RA heard on a downstream port,
    /// with `disable_on_rogue_ra`) until `until`.
    Disabled {
        /// When the port may enable again (each new such RA extends it).
        until: Instant,
        /// The last RA that disabled it: its IPv6 source and Ethernet source.
        by: Option<(Ipv6Addr, Mac)>,
    },
    /// Waiting for a router's RA on the uplink (RS sent) to relay as the two P-bit RAs
    /// RFC 4389 §6 asks for before the port proxies.
    WaitingForRa {
        /// Since when.
        since: Instant,
        /// When the relay sends its own P-bit RAs instead if no RA came by then.
        own_ras_at: Option<Instant>,
    },
    /// Sending the two P-bit RAs (RFC 4389 §6) before proxying.
    SendingRas {
        /// The relay's own RAs (no router RA known), or relayed copies of a router's.
        own: bool,
        /// How many went out so far (of 2).
        sent: u8,
    },
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
    /// Senders quarantined on the port (they sent an RA with the P bit) and until when.
    pub quarantined: Vec<(Mac, Instant)>,
    /// Why it proxies or not.
    pub state: ProxyState,
    /// A routed port ([`PortConfig::routed`]): served from the routing table.
    pub routed: bool,
    /// Frames the engine received, dropped and sent on the port.
    pub frames: PortFrames,
}

/// Per port: frames handed to the engine from it, dropped of those (the drop counters
/// say why), and frames the engine sent on it (relayed and its own). Kept across a
/// reload for the ports it keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFrames {
    /// Frames received.
    pub received: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames sent.
    pub sent: u64,
}

/// The few figures a service manager shows in one line (`systemctl status`), cheap
/// enough to take every second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Ethernet downstream ports (routed ones have nothing to proxy on).
    pub downstream: usize,
    /// Downstream ports proxying now.
    pub proxying: usize,
    /// Learned addresses, in any state.
    pub bindings: usize,
    /// Those confirmed in this run (restored ones count once re-verified).
    pub confirmed: usize,
}

/// Everything `status` shows, copied out of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was taken.
    pub now: Instant,
    /// Ports in `PortId` order.
    pub ports: Vec<PortInfo>,
    /// Bindings, sorted by address (from [`Engine::snapshot_unsorted`]: in table order
    /// until [`Snapshot::sort_bindings`]).
    pub bindings: Vec<BindingInfo>,
    /// Counters as (name, value), non-zero and zero alike, stable order.
    pub counters: Vec<(String, u64)>,
    /// Routes through routed ports, by prefix ([`Engine::routed_routes`]).
    pub routed: Vec<RoutedInfo>,
    /// Time from relaying an NS to relaying its answer.
    pub ns_na: NsNaHistogram,
}

impl Snapshot {
    /// Sorts the bindings by address.
    pub fn sort_bindings(&mut self) {
        // Addresses are unique, and comparing them as integers is cheaper than byte by byte.
        self.bindings.sort_unstable_by_key(|b| u128::from(b.addr));
    }
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
    /// More than [`MAX_PORTS`] ports.
    #[error("at most {MAX_PORTS} ports are supported, found {0}")]
    TooManyPorts(usize),
    /// The uplink is marked routed: it must have a link layer.
    #[error("the uplink {0} cannot be a routed port: it needs a link layer")]
    RoutedUplink(String),
    /// A table size, probe count or timer that must not be zero is zero.
    #[error("tunable {0} must not be zero")]
    ZeroLimit(&'static str),
}

/// Smallest MTU an IPv6 link may have (RFC 8200 §5); below it a port counts as down.
const MIN_MTU: u32 = 1280;
/// Most routers remembered on the uplink (latest RA per router, bounded).
const MAX_ROUTERS: usize = 16;
/// Most senders quarantined per port; a new one replaces the one that ends first.
const MAX_QUARANTINED: usize = 16;
/// Packet Too Big messages per second, and their burst (RFC 4443 §2.4(f)).
const PTB_RATE: u32 = 10;
/// `ff02::1`, all nodes.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `ff02::2`, all routers.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Run-time state of one port.
#[derive(Debug, Clone)]
struct PortState {
    cfg: PortConfig,
    /// Carrier as last reported (ports start up).
    carrier: bool,
    /// RFC 4389 §4.1.3.3 hold: no proxying until the `ProxyHold` timer clears it.
    disabled_until: Option<Instant>,
    /// The RA that started or last extended the hold: IPv6 and Ethernet source.
    disabled_by: Option<(Ipv6Addr, Mac)>,
    /// Since when the port waits for a router's RA to enable it (none known yet).
    waiting_since: Option<Instant>,
    /// No router's RA is known: the port is enabled (and kept announced) with the
    /// relay's own P-bit RAs.
    own_ras: bool,
    /// P-bit RAs sent since the port was (re-)enabled; it proxies from the second on.
    ras_sent: u8,
    /// Earliest time of the next multicast RA (pacing).
    ra_next: Instant,
    /// An RA waits for `ra_next` (latest wins).
    ra_pending: bool,
    /// Senders that sent an RA with the P bit here, and until when their frames are
    /// dropped (bounded by `MAX_QUARANTINED`; expired entries are ignored, then reused).
    quarantine: Vec<(Mac, Instant)>,
    /// This port's budget for the floods its frames cause (`Tunables::ns_rate_per_port`,
    /// the uplink's `Tunables::ns_rate`).
    flood_bucket: TokenBucket,
    /// This port's budget for announcing its guests on the uplink
    /// (`Tunables::announce_rate`).
    announce_bucket: TokenBucket,
    /// Rounds of re-verification NS sent for the routes an earlier run left here.
    leftover_rounds: u8,
    /// P-bit RAs still owed by a port that resumed proxying from an earlier run's
    /// saved state (`restore.rs`): sent as soon as an RA to relay exists.
    ras_owed: u8,
    /// When this run last sent a P-bit RA on the port.
    last_ra_sent: Option<Instant>,
    /// What the saved state said about the earlier run's last P-bit RA here: when it was
    /// restored, and how long before that the RA went out.
    saved_ra: Option<(Instant, Duration)>,
    /// Frames received, dropped and sent here.
    frames: PortFrames,
}

impl PortState {
    fn new(cfg: PortConfig, t: &Tunables, now: Instant) -> Self {
        Self {
            flood_bucket: flood_bucket(&cfg, t, now),
            announce_bucket: TokenBucket::new(t.announce_rate, t.announce_burst, now),
            cfg,
            carrier: true,
            disabled_until: None,
            disabled_by: None,
            waiting_since: None,
            own_ras: false,
            ras_sent: 0,
            ra_next: Instant::ZERO,
            ra_pending: false,
            quarantine: Vec::new(),
            leftover_rounds: 0,
            ras_owed: 0,
            last_ra_sent: None,
            saved_ra: None,
            frames: PortFrames::default(),
        }
    }

    fn release(&mut self, mac: Mac) {
        self.quarantine.retain(|(m, _)| *m != mac);
    }

    fn quarantined(&self, mac: Mac, now: Instant) -> bool {
        self.quarantine
            .iter()
            .any(|&(m, until)| m == mac && until > now)
    }

    /// Quarantines `mac` until `until`; returns whether it was not quarantined before.
    fn quarantine(&mut self, mac: Mac, now: Instant, until: Instant) -> bool {
        let fresh = !self.quarantined(mac, now);
        if let Some(e) = self.quarantine.iter_mut().find(|(m, _)| *m == mac) {
            e.1 = until;
        } else if self.quarantine.len() < MAX_QUARANTINED {
            self.quarantine.push((mac, until));
        } else if let Some(e) = self.quarantine.iter_mut().min_by_key(|(_, u)| *u) {
            *e = (mac, until);
        }
        fresh
    }

    /// Carrier up and an MTU IPv6 can use (the fault table: below 1280 = down).
    fn live(&self) -> bool {
        self.carrier && self.cfg.mtu >= MIN_MTU
    }

    /// Live, not held off by the loop rules, and with a link layer to send on (a
    /// routed port never carries frames).
    fn usable(&self) -> bool {
        self.live() && self.disabled_until.is_none() && !self.cfg.routed
    }

    fn is_upstream(&self) -> bool {
        self.cfg.role == Role::Upstream
    }
}

/// The flood budget of a port with this config: the uplink's is the global `ns_rate`,
/// each downstream port has its own.
fn flood_bucket(cfg: &PortConfig, t: &Tunables, now: Instant) -> TokenBucket {
    match cfg.role {
        Role::Upstream => TokenBucket::new(t.ns_rate, t.ns_burst, now),
        Role::Downstream => TokenBucket::new(t.ns_rate_per_port, t.ns_burst_per_port, now),
    }
}

/// A router seen on the uplink (RA source).
#[derive(Debug, Clone, Copy)]
struct Router {
    mac: Mac,
    last_seen: Instant,
    lifetime: u16,
}

/// The relay state machine. See the module documentation for the calling convention.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    ports: Vec<PortState>,
    upstream: PortId,
    cache: BindingCache,
    pending: PendingTable,
    /// Userspace data waiting for its destination to be resolved (bounded).
    held: data::HeldData,
    routers: HashMap<Ipv6Addr, Router>,
    /// The latest multicast RA from the uplink, as received (each relayed copy is built
    /// from it, never from a previous copy).
    last_ra: Option<Vec<u8>>,
    /// No router's RA came within `ra_wait` (and none since): ports are enabled with
    /// the relay's own RAs, and one coming back up need not wait again.
    no_router_ra: bool,
    timers: TimerTable,
    /// Routes an earlier run left, waiting for their guests to re-verify.
    leftovers: Leftovers,
    /// The main table's routes the driver fed, for routed ports.
    routed: routed::RouteTable,
    rng: Rng,
    counters: Counters,
    /// Time from relaying an NS to relaying its answer.
    ns_na: NsNaHistogram,
    /// NS for bound targets: served before unknown ones and never starved by a scan
    /// (RFC 6583 §7), yet bounded, at `KNOWN_NS_FACTOR` times the unknown-target budget.
    known_ns_bucket: TokenBucket,
    rs_bucket: TokenBucket,
    ptb_bucket: TokenBucket,
    actions: VecDeque<Action>,
    /// Transmissions of floods, drained after `actions`.
    floods: VecDeque<Action>,
    now: Instant,
    /// What the in-kernel programs say they did with the frame being handled.
    kernel_word: KernelWord,
    /// Bindings confirmed for the first time (or re-verified after a restore): with the
    /// table's changes, what tells a driver the saved state is out of date.
    first_confirms: u64,
    /// The last decisions about each address, for `explain` (bounded).
    history: History,
    /// The address the frame being handled is about (NS/NA target, Redirect or data
    /// destination): its drops are recorded under it.
    frame_addr: Option<Ipv6Addr>,
}

impl Engine {
    /// Creates an engine; `now` is the time origin of its timers.
    ///
    /// Every port starts up; downstream ports start enabling (RFC 4389 §6), which needs
    /// an RA, so an RS upstream is due at once (`poll_timeout` returns `now`).
    pub fn new(config: EngineConfig, now: Instant) -> Result<Self, EngineConfigError> {
        config.validate()?;
        let t = &config.tunables;
        let upstream = config
            .ports
            .iter()
            .position(|p| p.role == Role::Upstream)
            // validate() checked there is exactly one upstream port.
            .expect("validated: one upstream port");
        let mut engine = Self {
            ports: config
                .ports
                .iter()
                .map(|p| PortState::new(p.clone(), t, now))
                .collect(),
            // validate() bounds the port count to MAX_PORTS (64), which fits in u16.
            upstream: PortId(upstream as u16),
            cache: BindingCache::new(t.binding_limits()),
            pending: PendingTable::new(t.max_pending, t.max_pending_per_port),
            held: data::HeldData::default(),
            routers: HashMap::new(),
            last_ra: None,
            no_router_ra: false,
            timers: TimerTable::new(config.ports.len()),
            leftovers: Leftovers::default(),
            routed: routed::RouteTable::default(),
            rng: Rng::new(config.seed),
            counters: Counters::default(),
            ns_na: NsNaHistogram::default(),
            known_ns_bucket: known_ns_bucket(t, now),
            rs_bucket: TokenBucket::new(t.rs_rate, 1, now),
            ptb_bucket: TokenBucket::new(PTB_RATE, PTB_RATE, now),
            actions: VecDeque::new(),
            floods: VecDeque::new(),
            now,
            kernel_word: KernelWord::NOTHING,
            first_confirms: 0,
            history: History::default(),
            frame_addr: None,
            cfg: config,
        };
        for i in 0..engine.ports.len() {
            let p = PortId(i as u16);
            if !engine.port(p).is_upstream() {
                engine.start_enabling(now, p);
            }
        }
        Ok(engine)
    }

    /// Feeds one received Ethernet frame from `port`.
    pub fn handle_frame(&mut self, now: Instant, port: PortId, frame: &[u8]) {
        self.handle_frame_with(now, port, frame, KernelWord::NOTHING);
    }

    /// [`Engine::handle_frame`] for a driver with in-kernel programs: `word` is what
    /// they report they did with this very frame (see [`KernelWord`]).
    pub fn handle_frame_with(
        &mut self,
        now: Instant,
        port: PortId,
        frame: &[u8],
        word: KernelWord,
    ) {
        let now = self.advance(now);
        self.kernel_word = word;
        self.receive(now, port, frame);
        self.kernel_word = KernelWord::NOTHING;
        self.frame_addr = None;
        if self.held.take_ready() {
            // The frame bound a destination that held data waits for.
            self.flush_held(now);
        }
    }

    fn receive(&mut self, now: Instant, port: PortId, frame: &[u8]) {
        self.counters.bump(Counter::RxFrames);
        if let Some(p) = self.ports.get_mut(port.index()) {
            p.frames.received = p.frames.received.saturating_add(1);
        }
        if port.index() >= self.ports.len() || self.port(port).cfg.routed {
            return self.drop_frame(port, DropReason::PortDisabled);
        }
        let parsed = match parse_frame(frame) {
            Ok(p) => p,
            Err(reason) => return self.drop_frame(port, reason),
        };
        match parsed {
            Parsed::NotIpv6 => self.counters.bump(Counter::RxNotIpv6),
            Parsed::Data(d) => {
                self.counters.bump(Counter::RxData);
                self.frame_addr = Some(d.dst_addr);
                if self.is_our_mac(d.eth_src) {
                    return self.drop_frame(port, DropReason::LoopSuspect);
                }
                if self.port(port).quarantined(d.eth_src, now) {
                    return self.drop_frame(port, DropReason::Quarantined);
                }
                self.process_data(now, port, &d);
            }
            Parsed::Nd(pkt) => {
                self.counters.bump(Counter::RxNd);
                self.frame_addr = match pkt.message {
                    NdMessage::NeighborSolicit { target_addr }
                    | NdMessage::NeighborAdvert { target_addr, .. } => Some(target_addr),
                    NdMessage::Redirect { dest_addr, .. } => Some(dest_addr),
                    NdMessage::RouterSolicit | NdMessage::RouterAdvert(_) => None,
                };
                // NDP reference §5 #22: our own MAC as L2 source or in an LLA option, or
                // one of our link-locals as source, means the frame went round a loop (or
                // is forged); never relay or learn it.
                if self.is_our_mac(pkt.eth_src)
                    || pkt.slla.is_some_and(|m| self.is_our_mac(m))
                    || pkt.tlla.is_some_and(|m| self.is_our_mac(m))
                    || self.our_link_local(pkt.src_addr).is_some()
                {
                    return self.drop_frame(port, DropReason::LoopSuspect);
                }
                let is_ra = matches!(pkt.message, NdMessage::RouterAdvert(_));
                if !is_ra && self.port(port).quarantined(pkt.eth_src, now) {
                    // RAs go on to `process_ra`, where a new P-bit RA renews the hold.
                    return self.drop_frame(port, DropReason::Quarantined);
                }
                match pkt.message {
                    // RAs drive the loop rules even on ports that do not proxy.
                    NdMessage::RouterAdvert(ra) => self.process_ra(now, port, &pkt, ra),
                    NdMessage::RouterSolicit => {
                        if !self.port(port).usable() {
                            return self.drop_frame(port, DropReason::PortDisabled);
                        }
                        self.process_rs(now, port, &pkt);
                    }
                    NdMessage::NeighborSolicit { target_addr } => {
                        if port == self.upstream {
                            let ns = UplinkNs {
                                at: now,
                                src: pkt.src_addr,
                                mac: pkt.eth_src,
                            };
                            self.history.uplink_ns(target_addr, ns);
                        }
                        if !self.forwarding(port) {
                            return self.drop_frame(port, DropReason::PortDisabled);
                        }
                        self.process_ns(now, port, &pkt, target_addr);
                    }
                    NdMessage::NeighborAdvert { flags, target_addr } => {
                        // A port that is up but still sending its two P-bit RAs (RFC 4389
                        // §6) forwards nothing, but answers to the relay's own
                        // re-verification probes are only learned, so they are taken.
                        let own_probe_answer =
                            self.port(port).usable() && self.our_link_local(pkt.dst_addr).is_some();
                        if !self.forwarding(port) && !own_probe_answer {
                            return self.drop_frame(port, DropReason::PortDisabled);
                        }
                        self.process_na(now, port, &pkt, flags, target_addr);
                    }
                    NdMessage::Redirect {
                        target_addr,
                        dest_addr,
                    } => {
                        // A Redirect from a guest is hostile whatever the port state;
                        // count it as such rather than as a disabled port.
                        if self.port(port).is_upstream() && !self.forwarding(port) {
                            return self.drop_frame(port, DropReason::PortDisabled);
                        }
                        self.process_redirect(now, port, &pkt, target_addr, dest_addr);
                    }
                }
            }
        }
    }

    /// Runs every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        self.global_timers(now);
        while let Some((port, t)) = self.timers.take_due_port(now) {
            match t {
                PortTimer::RaPace => self.ra_pace_timer(now, port),
                PortTimer::ProxyHold => self.proxy_hold_timer(now, port),
                PortTimer::LeftoverProbe => self.leftover_probe_timer(now, port),
                PortTimer::OwnRa => self.own_ra_timer(now, port),
            }
        }
        // A port whose hold ended asks for an RA at once (the Solicit timer, due now):
        // run it in this call, so every timer due at `now` has run when it returns.
        self.global_timers(now);
        while let Some(addr) = self.cache.pop_expired(now) {
            self.binding_timer(now, addr);
        }
        while let Some(target) = self.pending.pop_expired(now) {
            self.pending_timer(now, target);
        }
        if !self.held.is_empty() {
            self.expire_held(now);
        }
    }

    fn global_timers(&mut self, now: Instant) {
        while let Some(t) = self.timers.take_due_global(now) {
            match t {
                GlobalTimer::Solicit => self.solicit_timer(now),
                GlobalTimer::RouteGrace => self.route_grace_timer(now),
            }
        }
    }

    /// The driver could not carry out a [`Action::KernelAnswer`] for `target` (no program
    /// on the port, the map refused it): the engine answers those NS itself again.
    pub fn kernel_answer_refused(&mut self, target: Ipv6Addr) {
        if let Some(b) = self.cache.get_mut(&target) {
            b.kernel_answers = None;
        }
    }

    /// The driver could not carry out a [`Action::KernelRelayNs`] for `target`: the engine
    /// relays those NS itself again.
    pub fn kernel_relay_ns_refused(&mut self, target: Ipv6Addr) {
        if let Some(b) = self.cache.get_mut(&target) {
            b.kernel_ns = None;
        }
    }

    /// The driver could not carry out a [`Action::KernelRelayNa`] for `target` and
    /// `solicitor`: the engine relays those NAs itself again.
    pub fn kernel_relay_refused(&mut self, target: Ipv6Addr, solicitor: Ipv6Addr) {
        if let Some(b) = self.cache.get_mut(&target) {
            b.kernel_relays.retain(|r| r.path.solicitor != solicitor);
        }
    }

    /// The next action to perform, or `None` when drained. Floods (an NS or NA relayed
    /// to every port because its target is not bound) come after everything else.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front().or_else(|| self.floods.pop_front());
        self.count_sent(action.as_ref());
        self.record_route(action.as_ref());
        action
    }

    /// Counts a transmission on its port as the driver takes it.
    fn count_sent(&mut self, a: Option<&Action>) {
        if let Some(Action::Transmit { port, .. }) = a
            && let Some(p) = self.ports.get_mut(port.index())
        {
            p.frames.sent = p.frames.sent.saturating_add(1);
        }
    }

    /// Like [`Engine::poll_action`], but leaves the floods queued: a driver handling a
    /// batch of frames can send the answers and relays for bound targets of the whole
    /// batch first (RFC 6583 §7: known targets before unknown ones), so a scan's floods
    /// never delay a known guest's answer.
    pub fn poll_action_before_floods(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        self.count_sent(action.as_ref());
        self.record_route(action.as_ref());
        action
    }

    /// Keeps the route actions in the decision history (`explain`), as they leave.
    fn record_route(&mut self, action: Option<&Action>) {
        match action {
            Some(&Action::InstallRoute { addr, port }) => {
                self.history
                    .record(self.now, addr, Decision::RouteInstalled { port });
            }
            Some(&Action::RemoveRoute { addr, port }) => {
                self.history
                    .record(self.now, addr, Decision::RouteRemoved { port });
            }
            _ => {}
        }
    }

    /// When `handle_timeout` must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.cache.next_deadline(),
            self.pending.next_deadline(),
            self.held.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The value of counter `name` (e.g. `drop_hop_limit`, `relayed_ns`), 0 if unknown.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.by_name(name)
    }

    /// Every counter by name, drops first: what [`Engine::snapshot`] carries, without
    /// the bindings.
    pub fn counters(&self) -> Vec<(String, u64)> {
        self.counters.list()
    }

    /// Ports, bindings (sorted by address) and counters, for `status`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut snapshot = self.snapshot_unsorted(now);
        snapshot.sort_bindings();
        snapshot
    }

    /// [`Engine::snapshot`] with the bindings in table order: the sort is three
    /// quarters of its cost, and a driver whose engine has frames waiting can
    /// leave it to another thread.
    pub fn snapshot_unsorted(&self, now: Instant) -> Snapshot {
        let ports = self.snapshot_ports(now);
        let bindings: Vec<BindingInfo> = self.cache.iter().map(|(addr, b)| b.info(*addr)).collect();
        Snapshot {
            now,
            ports,
            bindings,
            counters: self.counters.list(),
            routed: self.routed_routes(),
            ns_na: self.ns_na.clone(),
        }
    }

    /// Ports proxying and bindings confirmed, for the service manager's status line.
    pub fn summary(&self) -> Summary {
        let downstream: Vec<usize> = (0..self.ports.len())
            .filter(|&i| !self.ports[i].is_upstream() && !self.ports[i].cfg.routed)
            .collect();
        Summary {
            downstream: downstream.len(),
            proxying: downstream
                .iter()
                .filter(|&&i| self.forwarding(PortId(i as u16)))
                .count(),
            bindings: self.cache.len(),
            confirmed: self
                .cache
                .iter()
                .filter(|(_, b)| b.confirmed_at.is_some() && !b.restored)
                .count(),
        }
    }

    /// Every port as `status` shows it.
    fn snapshot_ports(&self, now: Instant) -> Vec<PortInfo> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortInfo {
                name: p.cfg.name.clone(),
                role: p.cfg.role,
                mac: p.cfg.mac,
                up: p.live(),
                proxying: self.forwarding(PortId(i as u16)),
                state: self.proxy_state(PortId(i as u16)),
                disabled_until: p.disabled_until,
                quarantined: p
                    .quarantine
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .copied()
                    .collect(),
                routed: p.cfg.routed,
                frames: p.frames,
            })
            .collect()
    }

    /// Number of bindings (for tests and status).
    pub fn binding_count(&self) -> usize {
        self.cache.len()
    }

    /// Number of pending solicitations, negative-cache entries included.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Number of data packets held while their destinations are resolved.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    // ----- shared helpers -----

    fn advance(&mut self, now: Instant) -> Instant {
        // Time never goes backwards for the engine, whatever the driver passes.
        self.now = self.now.max(now);
        self.now
    }

    fn port(&self, port: PortId) -> &PortState {
        &self.ports[port.index()]
    }

    fn port_mut(&mut self, port: PortId) -> &mut PortState {
        &mut self.ports[port.index()]
    }

    fn port_ids(&self) -> impl Iterator<Item = PortId> + use<> {
        (0..self.ports.len() as u16).map(PortId)
    }

    /// The port may carry proxied traffic: usable and, downstream, enabled by two P-bit
    /// RAs (RFC 4389 §6) unless RAs are not relayed at all.
    fn forwarding(&self, port: PortId) -> bool {
        let Some(p) = self.ports.get(port.index()) else {
            return false;
        };
        p.usable() && (p.is_upstream() || !self.cfg.ra_relay || p.ras_sent >= 2)
    }

    /// Takes a token from `port`'s flood budget (see `PortState::flood_bucket`).
    fn flood_token(&mut self, now: Instant, port: PortId) -> bool {
        self.port_mut(port).flood_bucket.take(now)
    }

    fn is_our_mac(&self, mac: Mac) -> bool {
        self.ports.iter().any(|p| p.cfg.mac == mac && !p.cfg.routed)
    }

    fn our_link_local(&self, addr: Ipv6Addr) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.cfg.link_local == addr && !p.cfg.routed)
            .map(|i| PortId(i as u16))
    }

    /// Queues `event` (with `emit_events`) and keeps what it says about an address in
    /// the decision history either way (`explain`).
    fn emit(&mut self, event: impl FnOnce() -> Event) {
        let event = event();
        self.history.record_event(self.now, &event);
        if self.cfg.emit_events {
            self.actions.push_back(Action::Event(event));
        }
    }

    fn drop_frame(&mut self, port: PortId, reason: DropReason) {
        self.counters.drop(reason);
        if let Some(p) = self.ports.get_mut(port.index()) {
            p.frames.dropped = p.frames.dropped.saturating_add(1);
        }
        if let Some(addr) = self.frame_addr {
            self.history
                .record(self.now, addr, Decision::Dropped { port, reason });
        }
        self.emit(|| Event::Dropped { port, reason });
    }

    fn relayed_event(&mut self, from: PortId, mask: u64, message: &'static str, addr: Ipv6Addr) {
        if mask != 0 {
            self.history.record(
                self.now,
                addr,
                Decision::Relayed {
                    from,
                    to: mask,
                    message,
                },
            );
        }
        if self.cfg.emit_events && mask != 0 {
            let to = (0..64u16)
                .filter(|i| mask & (1 << i) != 0)
                .map(PortId)
                .collect();
            self.actions.push_back(Action::Event(Event::Relayed {
                from,
                to,
                message,
                addr,
            }));
        }
    }

    /// Which targets the relay proxies, and how (see the module doc for link-locals).
    fn proxied(&self, target: Ipv6Addr) -> Option<PrefixMode> {
        if let Some(rule) = self
            .cfg
            .prefixes
            .iter()
            .find(|r| r.prefix.contains(&target))
        {
            return Some(rule.mode);
        }
        if crate::wire::is_link_local(target)
            && self.cfg.ra_source == RaSource::KeepRouter
            && self.routers.contains_key(&target)
        {
            return Some(PrefixMode::Relay);
        }
        None
    }

    /// L2 destination for an IPv6 destination sent out `egress`: the group MAC for
    /// multicast, the bound MAC if bound there, else the solicited-node group MAC (an
    /// unresolved unicast may leave on any port, RFC 4389 §4.2; the owner listens there).
    fn l2_dst(&self, dst: Ipv6Addr, egress: PortId) -> Mac {
        if dst.is_multicast() {
            return Mac::ipv6_multicast(dst);
        }
        match self.cache.get(&dst) {
            Some(b) if b.port == egress => b.mac,
            _ => Mac::ipv6_multicast(solicited_node(dst)),
        }
    }

    /// A relayed copy with every SLLA/TLLA set to the egress MAC (RFC 4389 §4.1.2).
    fn relay_rewrite(&self, egress: PortId, eth_dst: Mac) -> Rewrite {
        let mac = self.port(egress).cfg.mac;
        Rewrite {
            eth_src: mac,
            eth_dst,
            src_addr: None,
            dst_addr: None,
            slla: LlaRewrite::Replace(mac),
            tlla: LlaRewrite::Replace(mac),
            set_proxy_flag: false,
            clear_pio_on_link: false,
            max_mtu: None,
        }
    }

    /// Builds and queues a relayed copy; drops it (never fragments, RFC 6980) if it no
    /// longer fits the egress MTU.
    fn transmit_rewrite(
        &mut self,
        ingress: PortId,
        egress: PortId,
        pkt: &NdPacket<'_>,
        rw: &Rewrite,
    ) -> bool {
        let mut out = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + pkt.icmp.len() + 8);
        rewrite(pkt, rw, &mut out);
        if out.len().saturating_sub(ETH_HEADER_LEN) > self.port(egress).cfg.mtu as usize {
            self.drop_frame(ingress, DropReason::MtuExceeded);
            return false;
        }
        self.actions.push_back(Action::Transmit {
            port: egress,
            frame: out,
        });
        true
    }

    /// Relays `pkt` to every port in `mask` with LLAs rewritten; returns the ports sent.
    /// These are floods: their actions wait in `floods` behind everything else.
    fn relay_to_mask(&mut self, ingress: PortId, pkt: &NdPacket<'_>, mask: u64) -> u64 {
        let before = self.actions.len();
        let mut sent = 0;
        for p in self.port_ids() {
            if mask & (1 << p.0) == 0 {
                continue;
            }
            let rw = self.relay_rewrite(p, self.l2_dst(pkt.dst_addr, p));
            if self.transmit_rewrite(ingress, p, pkt, &rw) {
                sent |= 1 << p.0;
            }
        }
        let flood = self.actions.split_off(before);
        self.floods.extend(flood);
        sent
    }

    /// Ports other than `ingress` that may carry proxied traffic.
    fn other_forwarding(&self, ingress: PortId) -> u64 {
        self.port_ids()
            .filter(|&p| p != ingress && self.forwarding(p))
            .fold(0, |m, p| m | (1 << p.0))
    }

    /// Sends an ND message the relay originates (hop limit 255 by `emit_nd`).
    fn originate(
        &mut self,
        port: PortId,
        eth_dst: Mac,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        message: NdMessage,
        options: &[OptionRepr],
    ) {
        let mac = self.port(port).cfg.mac;
        let frame = emit_nd(mac, eth_dst, src, dst, &message, options);
        self.actions.push_back(Action::Transmit { port, frame });
    }

    /// ReachableTime: the base jittered uniformly over 0.5..1.5 (RFC 4861 §6.3.2).
    fn reachable_time(&mut self) -> Duration {
        let base = self.cfg.tunables.reachable_time.total_micros();
        Duration::from_micros(base / 2 + self.rng.below(base))
    }
}
