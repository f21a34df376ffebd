//! What the engine is told at start and on reload: ports, prefix rules, policies, limits.
//!
//! This is the engine's own view, already validated and with interfaces resolved to MACs
//! and link-locals; `crate::config` turns the user's RON file into it.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::EngineConfigError;
use crate::time::Duration;
use crate::wire::Mac;

/// Most ports an engine handles (port sets are kept as 64-bit masks).
pub const MAX_PORTS: usize = 64;

/// Upstream (RFC 4389 "upstream", the uplink) or downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one port facing the router that owns the prefix on-link.
    Upstream,
    /// A port facing hosts (guests, LAN).
    Downstream,
}

/// One relay port as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Interface name, for logs and status.
    pub name: String,
    /// Upstream or downstream.
    pub role: Role,
    /// The port's MAC: written into every relayed L2 header and LLA option.
    pub mac: Mac,
    /// The port's link-local address (source of frames the relay originates).
    pub link_local: Ipv6Addr,
    /// Link MTU.
    pub mtu: u32,
    /// A downstream port without a link layer (tun, WireGuard, PPP): no frames go or
    /// come there; addresses the kernel routes through it are answered from the routes
    /// the driver feeds ([`super::Engine::handle_route`]). `mac` is unused then.
    pub routed: bool,
}

impl PortConfig {
    /// An Ethernet port with MTU 1500 and the EUI-64 link-local of `mac`: what tests,
    /// benchmarks and the fuzzer build their relays from.
    pub fn ethernet(name: &str, role: Role, mac: Mac) -> Self {
        Self {
            name: name.into(),
            role,
            mac,
            link_local: mac.link_local(),
            mtu: 1500,
            routed: false,
        }
    }
}

/// How a prefix is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixMode {
    /// Relay NS to downstream ports and relay the owner's NA back (RFC 4389).
    Relay,
    /// Answer for every address in the prefix at once (ndppd `static`, prefix64 story).
    Static,
}

/// A prefix the relay proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRule {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// Relay or static.
    pub mode: PrefixMode,
}

/// Who forwards unicast data between segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPlane {
    /// The kernel, over /128 routes the engine asks for (`InstallRoute`/`RemoveRoute`).
    KernelRoutes,
    /// The engine forwards unicast IPv6 frames itself (RFC 4389 §4.1 bridge-like).
    Userspace,
    /// Nobody: ND only (tests, replay).
    None,
}

/// Source address of relayed RAs (NDP reference §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaSource {
    /// Keep the router's link-local (pure RFC 4389); router link-local targets are proxied.
    KeepRouter,
    /// Use the egress port's link-local; clears PIO L; link-local targets never proxied.
    Relay,
}

/// Timers and limits; defaults follow RFC 4861 constants and the NDP reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunables {
    /// RetransTimer: gap between NS retransmits for one target on one port.
    pub retrans_timer: Duration,
    /// MAX_MULTICAST_SOLICIT / MAX_UNICAST_SOLICIT probes before a target counts as failed.
    pub max_probes: u8,
    /// REACHABLE_TIME base; the engine jitters it by 0.5..1.5 with its seeded RNG.
    pub reachable_time: Duration,
    /// DELAY_FIRST_PROBE_TIME.
    pub delay_first_probe: Duration,
    /// How long a STALE binding lives without traffic before it is forgotten.
    pub stale_lifetime: Duration,
    /// How long a failed target is remembered so NS for it are not relayed again.
    pub negative_cache: Duration,
    /// MIN_DELAY_BETWEEN_RAS: one multicast RA per port per this interval.
    pub ra_min_interval: Duration,
    /// RFC 4389 §4.1.3.3 hold time after a P-bit (or downstream) RA.
    pub proxy_disable_hold: Duration,
    /// How long a downstream port waits for a router's RA (asked for by RS) before the
    /// relay enables it with its own P-bit RAs (router lifetime 0, no options but SLLA).
    pub ra_wait: Duration,
    /// While no router's RA is known, the relay repeats its own P-bit RA on each
    /// downstream port this often, so a proxy joining the segment later still sees one
    /// within its RFC 4389 §4.1.3.3 hold. Kept below `proxy_disable_hold`.
    pub own_ra_interval: Duration,
    /// Most bindings in the table.
    pub max_bindings: usize,
    /// Most bindings one port may hold (the config's default: three quarters of
    /// `max_bindings`). Kept below `max_bindings`, so no single port holds the whole
    /// table (DESIGN.md "Trust").
    pub max_bindings_per_port: usize,
    /// Most bindings one MAC may hold on its port: a guest with many addresses fills its
    /// own share, never the table.
    pub max_bindings_per_mac: usize,
    /// Most pending relayed solicitations.
    pub max_pending: usize,
    /// Most pending solicitations per port (kept below `max_pending`, RFC 6583 §7).
    pub max_pending_per_port: usize,
    /// Token bucket for the floods the uplink's frames cause (NS for unknown targets,
    /// DAD NS, multicast NA): tokens per second. NS for bound targets have their own
    /// budget, a hundred times this, so a scan never starves them.
    pub ns_rate: u32,
    /// Token bucket burst.
    pub ns_burst: u32,
    /// Each downstream port's own bucket for what its frames make the relay flood or send
    /// to the uplink (NS for unknown targets and for uplink addresses, DAD NS, multicast
    /// NA): per second. One port's flood never spends another port's or the uplink's.
    pub ns_rate_per_port: u32,
    /// Burst of `ns_rate_per_port`.
    pub ns_burst_per_port: u32,
    /// Token bucket for relaying RS upstream: per second.
    pub rs_rate: u32,
    /// Each downstream port's budget for announcing its guests' addresses on the uplink
    /// (`EngineConfig::announce`): per second. One port's guests never spend another's.
    pub announce_rate: u32,
    /// Burst of `announce_rate`.
    pub announce_burst: u32,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            retrans_timer: Duration::from_secs(1),
            max_probes: 3,
            reachable_time: Duration::from_secs(30),
            delay_first_probe: Duration::from_secs(5),
            stale_lifetime: Duration::from_secs(600),
            negative_cache: Duration::from_secs(3),
            ra_min_interval: Duration::from_secs(3),
            proxy_disable_hold: Duration::from_secs(3600),
            ra_wait: Duration::from_secs(5),
            // RFC 4861 §6.2.1 MaxRtrAdvInterval default: as often as a default router.
            own_ra_interval: Duration::from_secs(600),
            max_bindings: 4096,
            max_bindings_per_port: 3072,
            max_bindings_per_mac: 64,
            max_pending: 1024,
            max_pending_per_port: 512,
            ns_rate: 1000,
            ns_burst: 200,
            ns_rate_per_port: 100,
            ns_burst_per_port: 200,
            rs_rate: 1,
            announce_rate: 10,
            announce_burst: 50,
        }
    }
}

impl Tunables {
    /// The binding table's size and shares.
    pub(crate) fn binding_limits(&self) -> super::cache::Limits {
        super::cache::Limits {
            max: self.max_bindings,
            per_port: self.max_bindings_per_port,
            per_mac: self.max_bindings_per_mac,
        }
    }
}

/// Everything the engine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The ports; exactly one is `Upstream`.
    pub ports: Vec<PortConfig>,
    /// Prefixes proxied, non-overlapping.
    pub prefixes: Vec<PrefixRule>,
    /// Relay RS upstream and RAs downstream.
    pub ra_relay: bool,
    /// Who forwards data.
    pub data_plane: DataPlane,
    /// RA source policy.
    pub ra_source: RaSource,
    /// Opt-in fast path: answer an upstream NS from a binding confirmed within this
    /// window (still relaying one NS per RetransTimer so the binding re-verifies).
    /// `None` = never answer from the cache.
    pub fast_path: Option<Duration>,
    /// With `fast_path`: the driver answers those NS in the kernel
    /// ([`super::Action::KernelAnswer`]), and the engine leaves them unanswered.
    pub fast_path_in_kernel: bool,
    /// The driver relays NS to a bound guest (relay mode) and the guest's solicited NA in
    /// the kernel ([`super::Action::KernelRelayNs`], [`super::Action::KernelRelayNa`]),
    /// and the engine leaves those unsent.
    pub relay_in_kernel: bool,
    /// Honour an incoming P bit (RFC 4389 §4.1.3.3). `false` = cascade mode (opt-in).
    pub honour_proxy_bit: bool,
    /// Disable a downstream port for `proxy_disable_hold` after a rogue RA on it.
    pub disable_on_rogue_ra: bool,
    /// Announce guest addresses on the uplink: an unsolicited NA (O=0, to all-nodes,
    /// the uplink's MAC as TLLA) when a downstream binding is first confirmed, within
    /// each port's `announce_rate` budget (see `Engine::announce_binding`).
    pub announce: bool,
    /// Emit [`super::Event`]s describing each decision (replay, simulator timeline).
    pub emit_events: bool,
    /// Answer NS for the ports' own link-local addresses. On a real host the kernel owns
    /// those addresses and answers them itself (a second answer from the relay would be
    /// a duplicate), so the daemon and replay of its captures set this false; the
    /// simulator has no kernel and sets it true.
    pub answer_own_link_local: bool,
    /// Seed of the engine's RNG (jitter).
    pub seed: u64,
    /// Timers and limits.
    pub tunables: Tunables,
}

impl EngineConfig {
    /// A config with the given ports and prefixes (relay mode) and defaults elsewhere.
    pub fn new(ports: Vec<PortConfig>, prefixes: Vec<Ipv6Net>) -> Self {
        Self {
            ports,
            prefixes: prefixes
                .into_iter()
                .map(|prefix| PrefixRule {
                    prefix,
                    mode: PrefixMode::Relay,
                })
                .collect(),
            ra_relay: true,
            data_plane: DataPlane::KernelRoutes,
            ra_source: RaSource::KeepRouter,
            fast_path: None,
            fast_path_in_kernel: false,
            relay_in_kernel: false,
            honour_proxy_bit: true,
            disable_on_rogue_ra: false,
            // A bare engine sends nothing nobody asked for; the config file's default
            // (`crate::config`) is on.
            announce: false,
            emit_events: false,
            answer_own_link_local: true,
            seed: 0,
            tunables: Tunables::default(),
        }
    }
}

impl EngineConfig {
    /// Checks the invariants the engine relies on: exactly one upstream port, at least
    /// one downstream port, at most [`MAX_PORTS`] ports, distinct MACs, non-overlapping
    /// prefixes and non-zero table limits.
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        let upstream = self
            .ports
            .iter()
            .filter(|p| p.role == Role::Upstream)
            .count();
        if upstream != 1 {
            return Err(EngineConfigError::UpstreamCount(upstream));
        }
        if self.ports.len() < 2 {
            return Err(EngineConfigError::NoDownstream);
        }
        if self.ports.len() > MAX_PORTS {
            return Err(EngineConfigError::TooManyPorts(self.ports.len()));
        }
        for (i, a) in self.ports.iter().enumerate() {
            if a.routed && a.role == Role::Upstream {
                return Err(EngineConfigError::RoutedUplink(a.name.clone()));
            }
            for b in &self.ports[i + 1..] {
                if a.mac == b.mac && !a.routed && !b.routed {
                    return Err(EngineConfigError::DuplicateMac(
                        a.name.clone(),
                        b.name.clone(),
                        a.mac,
                    ));
                }
            }
        }
        for (i, a) in self.prefixes.iter().enumerate() {
            for b in &self.prefixes[i + 1..] {
                if a.prefix.contains(&b.prefix.network()) || b.prefix.contains(&a.prefix.network())
                {
                    return Err(EngineConfigError::OverlappingPrefixes(
                        a.prefix.to_string(),
                        b.prefix.to_string(),
                    ));
                }
            }
        }
        let t = &self.tunables;
        let zero = [
            ("max_bindings", t.max_bindings == 0),
            ("max_bindings_per_mac", t.max_bindings_per_mac == 0),
            ("max_bindings_per_port", t.max_bindings_per_port == 0),
            ("max_pending", t.max_pending == 0),
            ("max_pending_per_port", t.max_pending_per_port == 0),
            ("max_probes", t.max_probes == 0),
            ("retrans_timer", t.retrans_timer == Duration::ZERO),
            ("reachable_time", t.reachable_time == Duration::ZERO),
            ("own_ra_interval", t.own_ra_interval == Duration::ZERO),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, bad)| *bad) {
            return Err(EngineConfigError::ZeroLimit(name));
        }
        Ok(())
    }
}
