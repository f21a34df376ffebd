//! What the relay knows about one address, in plain words: `ndprelay explain ADDR`
//! against the running daemon and the block at the end of `replay --explain ADDR` are
//! both built here, from the engine's [`AddressFacts`] and what the driver adds (the
//! kernel's FIB, sysctls), into one typed [`Explanation`] (`--json`) that
//! [`render_text`] words the same way for both. It names the one thing to do next when
//! something is wrong.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};

use crate::engine::{
    AddressFacts, BindingState, DataPlane, PortId, PortInfo, PrefixMode, ProxyState, Role,
};
use crate::time::{Duration, Instant};

/// The `proto` number of the relay's /128 routes (`ip -6 route ... proto 199`).
pub const ROUTE_PROTOCOL: u8 = 199;

/// Format version of [`Explanation`].
pub const VERSION: u32 = 1;

/// How recent a rate-limiter refusal must be to be the thing to look at.
const RATE_LIMIT_RECENT: Duration = Duration::from_secs(60);

/// What the driver found in the kernel's FIB for the address (`ip -6 route get fibmatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibLookup {
    /// Not looked up, and why (replay has no kernel).
    NotChecked(String),
    /// The lookup failed.
    Failed(String),
    /// The /128 route the kernel holds for it, if any (a shorter prefix counts as none).
    Found(Option<FibRoute>),
}

/// A /128 route in the kernel's FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibRoute {
    /// Its output interface's name (or `ifindex N`).
    pub dev: String,
    /// Its `rtm_protocol`.
    pub protocol: u8,
}

/// A host setting that is wrong now, with its fix (the daemon reads its sysctls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProblem {
    /// What is wrong, in words.
    pub problem: String,
    /// The command that fixes it.
    pub command: String,
}

/// The verdict in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Proxied, bound (or answered statically or through a routed port) and routed.
    Healthy,
    /// Not in a proxied prefix: the relay never answers for it.
    NotProxied,
    /// In a proxied prefix, but no guest is bound to it.
    Unknown,
    /// Something stops it from being reached; `next_step` says what to do.
    Problem,
}

/// `explain --json`: everything the relay knows about one address (`version` 1). Fields
/// are in alphabetical order, as in the status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The address.
    pub address: Ipv6Addr,
    /// Its binding, if any.
    pub binding: Option<BindingPart>,
    /// The engine's last decisions about it, oldest first (a bounded history).
    pub decisions: Vec<DecisionPart>,
    /// Whether it falls in a proxied prefix, and which.
    pub prefix: PrefixPart,
    /// The ports that matter for it: the uplink, and its binding's port (or, unbound,
    /// every downstream port).
    pub ports: Vec<PortPart>,
    /// Its /128 route: what the relay asked for and what the kernel holds.
    pub route: RoutePart,
    /// The verdict in one line.
    pub summary: String,
    /// The uplink's last NS for it.
    pub uplink_ns: Option<UplinkNsPart>,
    /// The one thing to do next, when something is wrong (or worth knowing).
    pub next_step: Option<NextStep>,
    /// The verdict in one word.
    pub verdict: Verdict,
    /// Format version.
    pub version: u32,
}

/// [`Explanation::prefix`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixPart {
    /// The relay answers for it.
    pub proxied: bool,
    /// The configured prefix it falls in.
    pub prefix: Option<String>,
    /// `relay` (NS relayed to the guests), `static` (answered for the whole prefix),
    /// `routed` (answered while the main table routes it through a routed port) or
    /// `router_link_local` (a router's link-local, relayed as such).
    pub mode: Option<String>,
    /// Where that comes from: the config key, or the route.
    pub source: Option<String>,
}

/// [`Explanation::binding`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingPart {
    /// Seconds since its last confirmation (a solicited NA), if ever confirmed.
    pub confirmed_secs_ago: Option<f64>,
    /// Its MAC.
    pub mac: String,
    /// Its port.
    pub port: String,
    /// Its MAC is quarantined on the port (it sent a P-bit RA) for this many seconds.
    pub quarantined_secs: Option<f64>,
    /// Restored from the state file and not yet re-verified.
    pub restored: bool,
    /// Seconds it has been in `state`.
    pub since_secs: f64,
    /// RFC 4861 state: `REACHABLE`, `STALE`, `DELAY`, `PROBE`.
    pub state: String,
}

/// What the kernel's FIB holds for the address, next to what the relay asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Fib {
    /// Not looked up (replay).
    NotChecked {
        /// Why.
        why: String,
    },
    /// The lookup failed.
    LookupFailed {
        /// The error.
        error: String,
    },
    /// The relay's route is there, through the binding's port.
    Agrees,
    /// No /128 for it, and none is wanted.
    NoRoute,
    /// The relay asked for a route and the kernel has none.
    Missing,
    /// A route of the relay's protocol points to another interface.
    Elsewhere {
        /// Where it points.
        dev: String,
    },
    /// A route the relay did not create decides (left alone).
    Foreign {
        /// Where it points.
        dev: String,
        /// Its protocol.
        protocol: u8,
    },
    /// A route of the relay's protocol is there although the relay routes nothing for
    /// it now.
    Unexpected {
        /// Where it points.
        dev: String,
    },
}

/// [`Explanation::route`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePart {
    /// The kernel's view.
    pub fib: Fib,
    /// The relay asked for its /128 (a confirmed guest on a downstream port).
    pub installed: bool,
    /// The port the route goes through.
    pub port: Option<String>,
}

/// One port in [`Explanation::ports`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortPart {
    /// Interface name.
    pub name: String,
    /// It proxies.
    pub proxying: bool,
    /// `upstream` or `downstream`.
    pub role: String,
    /// Seconds until that may change on its own (an RA's hold ending, own RAs going out).
    pub until_secs: Option<f64>,
    /// Why it does not proxy, in words.
    pub why_not: Option<String>,
}

/// One entry of [`Explanation::decisions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionPart {
    /// Seconds before the explanation was made.
    pub ago_secs: f64,
    /// The engine's time (replay: seconds into the captures, as the listing shows).
    pub at_secs: f64,
    /// The decision, worded as the event log and replay word it.
    pub text: String,
}

/// [`Explanation::uplink_ns`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UplinkNsPart {
    /// Seconds ago.
    pub ago_secs: f64,
    /// Its Ethernet source.
    pub mac: String,
    /// Its IPv6 source (`::` for DAD).
    pub source: Ipv6Addr,
}

/// [`Explanation::next_step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// What to do, in words.
    pub action: String,
    /// A command that does it, if there is one.
    pub command: Option<String>,
    /// What is wrong.
    pub problem: String,
}

/// The driver's part of an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFacts {
    /// The FIB lookup.
    pub fib: FibLookup,
    /// Host settings that are wrong now.
    pub host: Vec<HostProblem>,
}

impl DriverFacts {
    /// What replay says: no kernel to ask.
    pub fn replay() -> Self {
        Self {
            fib: FibLookup::NotChecked("not checked in replay".into()),
            host: Vec::new(),
        }
    }
}

fn secs(d: Duration) -> f64 {
    // Three decimals are all any reader uses.
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn ago(now: Instant, at: Instant) -> f64 {
    secs(now.saturating_since(at))
}

fn name(facts: &AddressFacts, port: PortId) -> String {
    facts
        .ports
        .get(port.index())
        .map_or_else(|| format!("port{}", port.0), |p| p.name.clone())
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Upstream => "upstream",
        Role::Downstream => "downstream",
    }
}

/// A port's proxying state in words, and when it may change on its own.
fn why_not(p: &PortInfo, now: Instant) -> (Option<String>, Option<f64>) {
    match p.state {
        ProxyState::Proxying => (None, None),
        ProxyState::LinkDown => (Some("its link is down".into()), None),
        ProxyState::MtuTooSmall { mtu } => (
            Some(format!("its MTU {mtu} is below the IPv6 minimum 1280")),
            None,
        ),
        ProxyState::Disabled { until, by } => {
            let who = by.map_or_else(
                || "an RA".to_owned(),
                |(a, m)| format!("an RA from {a} ({m})"),
            );
            (
                Some(format!(
                    "disabled by {who} heard on it (RFC 4389 §4.1.3.3, `disable_on_rogue_ra`)"
                )),
                Some(ago(until, now)),
            )
        }
        ProxyState::WaitingForRa { since, own_ras_at } => {
            let mut t = format!(
                "waiting for a router's RA on the uplink (RS sent {} s ago) to relay as \
                 the two P-bit RAs it sends before proxying",
                ago(now, since)
            );
            if own_ras_at.is_some() {
                t.push_str("; without one it sends its own");
            }
            (Some(t), own_ras_at.map(|t| ago(t, now)))
        }
        ProxyState::SendingRas { own, sent } => (
            Some(format!(
                "sending the two P-bit RAs it sends before proxying ({sent} of 2 sent, {})",
                if own {
                    "its own: no router RA known"
                } else {
                    "copies of the router's"
                }
            )),
            None,
        ),
    }
}

fn port_part(p: &PortInfo, now: Instant) -> PortPart {
    let (why_not, until_secs) = why_not(p, now);
    PortPart {
        name: p.name.clone(),
        proxying: p.proxying,
        role: role(p.role).into(),
        until_secs,
        why_not,
    }
}

fn state_name(s: BindingState) -> String {
    s.name().into()
}

/// Builds the explanation of `facts` with what the driver found; `now` is `facts.now`.
pub fn build(facts: &AddressFacts, driver: &DriverFacts) -> Explanation {
    let now = facts.now;
    let addr = facts.addr;
    let uplink = facts.uplink();
    // The prefix.
    let prefix = if let Some(rule) = facts.prefix {
        PrefixPart {
            proxied: true,
            prefix: Some(rule.prefix.to_string()),
            mode: Some(
                match rule.mode {
                    PrefixMode::Relay => "relay",
                    PrefixMode::Static => "static",
                }
                .into(),
            ),
            source: Some(
                match rule.mode {
                    PrefixMode::Relay => "the config's `prefixes`",
                    PrefixMode::Static => "the config's `static_prefixes`",
                }
                .into(),
            ),
        }
    } else if let Some(p) = facts.routed_port {
        PrefixPart {
            proxied: true,
            prefix: None,
            mode: Some("routed".into()),
            source: Some(format!(
                "the main routing table, through {}",
                name(facts, p)
            )),
        }
    } else if facts.router_link_local {
        PrefixPart {
            proxied: true,
            prefix: None,
            mode: Some("router_link_local".into()),
            source: Some("an RA from this router on the uplink (`ra_source: KeepRouter`)".into()),
        }
    } else {
        PrefixPart {
            proxied: false,
            prefix: None,
            mode: None,
            source: None,
        }
    };
    // A routed port answers from the routing table even inside a relay prefix.
    let routed = facts.routed_port.is_some();
    let static_mode = facts.prefix.is_some_and(|r| r.mode == PrefixMode::Static);

    let binding = facts.binding.as_ref().map(|b| BindingPart {
        confirmed_secs_ago: b.info.confirmed_at.map(|t| ago(now, t)),
        mac: b.info.mac.to_string(),
        port: name(facts, b.info.port),
        quarantined_secs: b.quarantined_until.map(|t| ago(t, now)),
        restored: b.info.restored,
        since_secs: ago(now, b.since),
        state: state_name(b.info.state),
    });

    // The ports that matter.
    let mut ports: Vec<PortPart> = Vec::new();
    if let Some(u) = uplink.and_then(|u| facts.ports.get(u.index())) {
        ports.push(port_part(u, now));
    }
    match (&facts.binding, facts.routed_port) {
        (_, Some(p)) => {
            if let Some(info) = facts.ports.get(p.index()) {
                ports.push(port_part(info, now));
            }
        }
        (Some(b), None) => {
            if let Some(info) = facts.ports.get(b.info.port.index())
                && info.role != Role::Upstream
            {
                ports.push(port_part(info, now));
            }
        }
        (None, None) => {
            for info in facts
                .ports
                .iter()
                .filter(|p| p.role == Role::Downstream && !p.routed)
            {
                ports.push(port_part(info, now));
            }
        }
    }

    // The route.
    let installed = facts.binding.as_ref().is_some_and(|b| b.info.routed);
    let route_port = facts
        .binding
        .as_ref()
        .filter(|b| b.info.routed)
        .map(|b| name(facts, b.info.port));
    let fib = match &driver.fib {
        FibLookup::NotChecked(why) => Fib::NotChecked { why: why.clone() },
        FibLookup::Failed(error) => Fib::LookupFailed {
            error: error.clone(),
        },
        FibLookup::Found(None) if installed => Fib::Missing,
        FibLookup::Found(None) => Fib::NoRoute,
        FibLookup::Found(Some(r)) if r.protocol != ROUTE_PROTOCOL => Fib::Foreign {
            dev: r.dev.clone(),
            protocol: r.protocol,
        },
        FibLookup::Found(Some(r)) if !installed => Fib::Unexpected { dev: r.dev.clone() },
        FibLookup::Found(Some(r)) if Some(&r.dev) != route_port.as_ref() => {
            Fib::Elsewhere { dev: r.dev.clone() }
        }
        FibLookup::Found(Some(_)) => Fib::Agrees,
    };
    let route = RoutePart {
        fib,
        installed,
        port: route_port,
    };

    let decisions = facts
        .decisions
        .iter()
        .map(|(at, d)| DecisionPart {
            ago_secs: ago(now, *at),
            at_secs: secs(Duration::from_micros(at.total_micros())),
            text: d.describe(addr, &NamesOf(facts)),
        })
        .collect();
    let uplink_ns = facts.uplink_ns.map(|ns| UplinkNsPart {
        ago_secs: ago(now, ns.at),
        mac: ns.mac.to_string(),
        source: ns.src,
    });

    let (verdict, summary, next_step) = judge(facts, driver, &prefix, &route, routed, static_mode);
    Explanation {
        address: addr,
        binding,
        decisions,
        prefix,
        ports,
        route,
        summary,
        uplink_ns,
        next_step,
        verdict,
        version: VERSION,
    }
}

/// Ports named as the facts name them, for [`crate::engine::Decision::describe`].
struct NamesOf<'a>(&'a AddressFacts);

impl crate::engine::EventNames for NamesOf<'_> {
    fn port(&self, f: &mut std::fmt::Formatter<'_>, port: PortId) -> std::fmt::Result {
        f.write_str(&name(self.0, port))
    }
}

fn step(problem: String, action: String, command: Option<String>) -> Option<NextStep> {
    Some(NextStep {
        action,
        command,
        problem,
    })
}

/// The port that stops proxying for the address, and why: the uplink first.
fn blocked_port<'a>(facts: &'a AddressFacts, wanted: &[PortId]) -> Option<&'a PortInfo> {
    let uplink = facts.uplink();
    uplink
        .into_iter()
        .chain(wanted.iter().copied())
        .filter_map(|p| facts.ports.get(p.index()))
        .find(|p| !p.proxying && !p.routed)
}

fn port_step(p: &PortInfo, facts: &AddressFacts) -> Option<NextStep> {
    let now = facts.now;
    let uplink = facts
        .uplink()
        .map_or_else(|| "the uplink".into(), |u| name(facts, u));
    let (why, _) = why_not(p, now);
    let problem = format!("{} does not proxy: {}", p.name, why.unwrap_or_default());
    match p.state {
        ProxyState::Proxying => None,
        ProxyState::LinkDown => step(
            problem,
            format!("bring {} up (or check its cable or peer)", p.name),
            Some(format!("ip link set {} up", p.name)),
        ),
        ProxyState::MtuTooSmall { .. } => step(
            problem,
            format!("give {} an MTU of at least 1280", p.name),
            Some(format!("ip link set {} mtu 1500", p.name)),
        ),
        ProxyState::Disabled { until, by } => {
            let from = by.map_or_else(|| "a host".into(), |(a, m)| format!("{a} ({m})"));
            step(
                problem,
                format!(
                    "a router or another proxy sends RAs on {}: stop the RAs from {from}; the \
                     port proxies again by itself in {} s unless another one comes (or set \
                     `disable_on_rogue_ra: false`: such RAs are then dropped, and a sender \
                     of P-bit RAs quarantined)",
                    p.name,
                    ago(until, now)
                ),
                None,
            )
        }
        ProxyState::WaitingForRa { own_ras_at, .. } => step(
            problem,
            match own_ras_at {
                Some(t) => format!(
                    "no router RA came on {uplink} yet: the relay sends its own P-bit RAs \
                     in {} s and proxies about 3 s later; if the uplink's router should send \
                     RAs, check it",
                    ago(t, now)
                ),
                None => format!(
                    "no router RA came on {uplink} yet: make its router send RAs, or wait \
                     for the relay's own"
                ),
            },
            Some(format!("rdisc6 {uplink}")),
        ),
        ProxyState::SendingRas { .. } => step(
            problem,
            format!(
                "wait: {} proxies once its second P-bit RA is out (a few seconds)",
                p.name
            ),
            None,
        ),
    }
}

fn judge(
    facts: &AddressFacts,
    driver: &DriverFacts,
    prefix: &PrefixPart,
    route: &RoutePart,
    routed: bool,
    static_mode: bool,
) -> (Verdict, String, Option<NextStep>) {
    let addr = facts.addr;
    let now = facts.now;
    if !prefix.proxied {
        return (
            Verdict::NotProxied,
            format!("{addr} is not in a proxied prefix: the relay never answers for it"),
            step(
                format!("{addr} is in none of the config's `prefixes`"),
                "if it should be reached through the relay, add its prefix to `prefixes` \
                 and reload"
                    .into(),
                Some("systemctl reload ndprelay".into()),
            ),
        );
    }
    if let Some(h) = driver.host.first() {
        return (
            Verdict::Problem,
            format!("{addr}: a host setting is wrong: {}", h.problem),
            step(
                h.problem.clone(),
                "fix the sysctl".into(),
                Some(h.command.clone()),
            ),
        );
    }
    let wanted: Vec<PortId> = match (&facts.binding, facts.routed_port) {
        (_, Some(_)) => Vec::new(),
        (Some(b), None) => vec![b.info.port],
        (None, None) => facts
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == Role::Downstream && !p.routed)
            .map(|(i, _)| PortId(i as u16))
            .collect(),
    };
    if let Some(p) = blocked_port(facts, &wanted) {
        let s = port_step(p, facts);
        let why = s.as_ref().map_or_else(String::new, |s| s.problem.clone());
        return (Verdict::Problem, format!("{addr}: {why}"), s);
    }
    if let Some(b) = &facts.binding
        && let Some(until) = b.quarantined_until
    {
        let port = name(facts, b.info.port);
        return (
            Verdict::Problem,
            format!(
                "{addr}: its MAC {} is quarantined on {port}: it sent an RA with the P bit",
                b.info.mac
            ),
            step(
                format!(
                    "frames from {} on {port} are ignored for {} s more (each P-bit RA it \
                     sends renews that)",
                    b.info.mac,
                    ago(until, now)
                ),
                format!(
                    "stop the P-bit RAs from {} (a second relay or a proxy on that host)",
                    b.info.mac
                ),
                None,
            ),
        );
    }
    if let Some(at) = facts.rate_limited_at
        && now.saturating_since(at) <= RATE_LIMIT_RECENT
    {
        return (
            Verdict::Problem,
            format!(
                "{addr}: the rate limiter refused a frame for it {} s ago",
                ago(now, at)
            ),
            step(
                "a flood of NS or NA is using up the rate budget (`limits.ns_rate`, \
                 `limits.ns_rate_per_port`)"
                    .into(),
                "find the flood's source (`drop_rate_limited` in `ndprelay status`, \
                 tcpdump on the ports); raise the limits only if the traffic is legitimate"
                    .into(),
                Some("ndprelay status".into()),
            ),
        );
    }
    if routed {
        let p = facts
            .routed_port
            .map(|p| name(facts, p))
            .unwrap_or_default();
        return (
            Verdict::Healthy,
            format!("{addr} is answered for on the uplink: the main table routes it through {p}"),
            None,
        );
    }
    if static_mode && facts.binding.is_none() {
        return (
            Verdict::Healthy,
            format!("{addr} is in a static prefix: the relay answers for every address in it"),
            None,
        );
    }
    let Some(b) = &facts.binding else {
        let removed = facts
            .decisions
            .iter()
            .rev()
            .find(|(_, d)| matches!(d, crate::engine::Decision::Unbound { .. }));
        let mut summary =
            format!("{addr} is unknown: no guest on a downstream port has answered for it");
        if let Some((at, _)) = removed {
            let _ = write!(
                summary,
                " since its binding was removed {} s ago",
                ago(now, *at)
            );
        }
        return (
            Verdict::Unknown,
            summary,
            step(
                "the relay relays NS for it to the downstream ports and learns it from the \
                 guest's answer; none came"
                    .into(),
                "check that a guest holds the address on a downstream port (`ip -6 addr` on \
                 the guest) and answers NS; a ping from the uplink's router makes the relay ask"
                    .into(),
                Some(format!("ndisc6 {addr} {}", uplink_name(facts))),
            ),
        );
    };
    let port = name(facts, b.info.port);
    if facts.data_plane == DataPlane::KernelRoutes {
        let add = format!("ip -6 route replace {addr}/128 dev {port} proto {ROUTE_PROTOCOL}");
        match &route.fib {
            Fib::Missing => {
                return (
                    Verdict::Problem,
                    format!(
                        "{addr}: the relay installed its route via {port}, but the kernel's \
                         FIB has none (removed behind the relay's back?)"
                    ),
                    step(
                        "the kernel cannot forward to the guest; the relay does not watch its \
                         routes, so while the guest stays bound it does not install this one \
                         again"
                            .into(),
                        "put the route back as the relay had it (the relay still removes it \
                         when the guest goes)"
                            .into(),
                        Some(add),
                    ),
                );
            }
            Fib::Elsewhere { dev } => {
                return (
                    Verdict::Problem,
                    format!(
                        "{addr}: the relay's route should go via {port}, the kernel's points \
                         to {dev}"
                    ),
                    step(
                        format!("the kernel forwards to {dev}, the guest is behind {port}"),
                        "point the route at the guest's port".into(),
                        Some(add),
                    ),
                );
            }
            Fib::Foreign { dev, protocol } => {
                return (
                    Verdict::Problem,
                    format!(
                        "{addr}: a /128 the relay did not create (proto {protocol}, dev {dev}) \
                         decides; the relay leaves it alone"
                    ),
                    step(
                        format!("the route someone else installed goes to {dev}"),
                        format!(
                            "remove it if the guest behind {port} should be reached through \
                             the relay"
                        ),
                        Some(format!("ip -6 route del {addr}/128 proto {protocol}")),
                    ),
                );
            }
            Fib::Unexpected { dev } if b.info.state == BindingState::Reachable => {
                return (
                    Verdict::Problem,
                    format!(
                        "{addr}: a route of the relay's protocol via {dev} is there, though \
                         the relay did not install one"
                    ),
                    step(
                        "a route of an earlier run or installed by hand with proto 199".into(),
                        "remove it; the relay installs its own at the next confirmation".into(),
                        Some(format!("ip -6 route del {addr}/128 proto {ROUTE_PROTOCOL}")),
                    ),
                );
            }
            _ => {}
        }
    }
    if b.info.confirmed_at.is_none() {
        return (
            Verdict::Problem,
            format!(
                "{addr}: bound on {port} ({}) but not confirmed yet, so not routed",
                b.info.state.name()
            ),
            step(
                "the relay routes a guest once it answers a solicitation for its address".into(),
                "wait for the next NS from the uplink, or make one (a ping from the router); \
                 if the guest never answers, check it is up"
                    .into(),
                Some(format!("ndisc6 {addr} {}", uplink_name(facts))),
            ),
        );
    }
    let routed_words = match (&route.fib, facts.data_plane) {
        (_, DataPlane::Userspace) => "forwarded by the relay itself",
        (Fib::Agrees, _) => "routed (the kernel's FIB agrees)",
        (Fib::NotChecked { .. }, _) if b.info.routed => "routed",
        _ if b.info.routed => "routed (FIB not confirmed)",
        _ => "not routed",
    };
    (
        Verdict::Healthy,
        format!(
            "{addr} is bound on {port} ({}, {}), {routed_words}, and its ports proxy",
            b.info.mac,
            b.info.state.name()
        ),
        None,
    )
}

fn uplink_name(facts: &AddressFacts) -> String {
    facts
        .uplink()
        .map_or_else(|| "eth0".into(), |u| name(facts, u))
}

fn secs_text(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The explanation as text: a verdict line, then one line per fact, the decisions, and
/// the next step.
pub fn render_text(e: &Explanation) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}", e.summary);
    let p = &e.prefix;
    let prefix = match (p.proxied, &p.prefix, &p.mode, &p.source) {
        (false, ..) => "not in any proxied prefix".to_owned(),
        (true, Some(pfx), Some(mode), Some(src)) => format!("in {pfx} ({mode}, from {src})"),
        (true, None, Some(mode), Some(src)) => format!("proxied ({mode}, from {src})"),
        (true, ..) => "proxied".to_owned(),
    };
    let _ = writeln!(t, "  prefix:     {prefix}");
    match &e.binding {
        Some(b) => {
            let _ = write!(
                t,
                "  binding:    on {} ({}), {} for {}",
                b.port,
                b.mac,
                b.state,
                secs_text(b.since_secs)
            );
            match b.confirmed_secs_ago {
                Some(c) => {
                    let _ = write!(t, ", last confirmed {} ago", secs_text(c));
                }
                None => t.push_str(", never confirmed"),
            }
            if b.restored {
                t.push_str(", restored from the state file (not re-verified yet)");
            }
            if let Some(q) = b.quarantined_secs {
                let _ = write!(t, ", its MAC quarantined for {} more", secs_text(q));
            }
            t.push('\n');
        }
        None => t.push_str("  binding:    none\n"),
    }
    let r = &e.route;
    let fib = match &r.fib {
        Fib::NotChecked { why } => format!("FIB {why}"),
        Fib::LookupFailed { error } => format!("FIB lookup failed: {error}"),
        Fib::Agrees => "the kernel's FIB agrees".into(),
        Fib::NoRoute => "the kernel's FIB has no /128 for it".into(),
        Fib::Missing => "the kernel's FIB DISAGREES: it has no such route".into(),
        Fib::Elsewhere { dev } => format!("the kernel's FIB DISAGREES: its route goes to {dev}"),
        Fib::Foreign { dev, protocol } => {
            format!("the kernel's FIB holds someone else's route (proto {protocol}, dev {dev})")
        }
        Fib::Unexpected { dev } => {
            format!("the kernel's FIB holds a proto {ROUTE_PROTOCOL} route via {dev}")
        }
    };
    let route = match (&r.port, r.installed) {
        (Some(port), true) => format!(
            "{}/128 dev {port} proto {ROUTE_PROTOCOL} installed by the relay; {fib}",
            e.address
        ),
        _ => format!("none installed by the relay; {fib}"),
    };
    let _ = writeln!(t, "  route:      {route}");
    for p in &e.ports {
        let state = match (&p.why_not, p.until_secs) {
            (None, _) => "proxying".to_owned(),
            (Some(w), Some(u)) => format!("NOT proxying: {w} (for {} more)", secs_text(u)),
            (Some(w), None) => format!("NOT proxying: {w}"),
        };
        let _ = writeln!(t, "  port:       {} ({}) {state}", p.name, p.role);
    }
    match &e.uplink_ns {
        Some(ns) => {
            let _ = writeln!(
                t,
                "  uplink NS:  last from {} ({}) {} ago",
                ns.source,
                ns.mac,
                secs_text(ns.ago_secs)
            );
        }
        None => t.push_str("  uplink NS:  none seen lately\n"),
    }
    if e.decisions.is_empty() {
        t.push_str("  decisions:  none remembered\n");
    } else {
        t.push_str("  decisions (oldest first):\n");
        for d in &e.decisions {
            let _ = writeln!(
                t,
                "    {:>9} ago (t={:.3})  {}",
                secs_text(d.ago_secs),
                d.at_secs,
                d.text
            );
        }
    }
    match &e.next_step {
        Some(n) => {
            let _ = writeln!(t, "  problem:    {}", n.problem);
            let _ = writeln!(t, "  next step:  {}", n.action);
            if let Some(c) = &n.command {
                let _ = writeln!(t, "  run:        {c}");
            }
        }
        None => t.push_str("  next step:  none needed\n"),
    }
    t
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fib_states_and_verdicts_have_stable_json_names() {
        let j = |f: &Fib| serde_json::to_value(f).unwrap();
        assert_eq!(j(&Fib::Agrees), serde_json::json!({"state": "agrees"}));
        assert_eq!(j(&Fib::Missing), serde_json::json!({"state": "missing"}));
        assert_eq!(
            j(&Fib::Foreign {
                dev: "br0".into(),
                protocol: 4
            }),
            serde_json::json!({"state": "foreign", "dev": "br0", "protocol": 4})
        );
        assert_eq!(
            serde_json::to_value(Verdict::NotProxied).unwrap(),
            serde_json::json!("not_proxied")
        );
    }

    #[test]
    fn seconds_read_short() {
        assert_eq!(secs_text(0.04), "0.0 s");
        assert_eq!(secs_text(12.34), "12.3 s");
        assert_eq!(secs_text(3600.0), "3600 s");
        assert_eq!(secs(Duration::from_micros(1_234_567)), 1.235);
    }
}
