//! The scenario file: RON types, parsing, and validation with file:line:column errors.
//!
//! Syntax and type errors come from `ron` with their span. Errors that only show up once
//! the whole file is read (a reference to an unknown segment, a duplicate MAC) are
//! located by finding the offending quoted string in the source text, so every error
//! names a line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv6Addr;
use std::path::Path;
use std::str::FromStr;

use ipnet::Ipv6Net;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::SimError;
use super::production::ProductionConfig;
use crate::config::Config;
use crate::time::Duration;
use crate::wire::Mac;

/// A whole scenario: topology, relays, timeline and expectations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the verdict.
    pub name: String,
    /// The story the scenario tells.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (host jitter, attacker targets, engine RNG).
    #[serde(default)]
    pub seed: u64,
    /// Virtual time the scenario runs for.
    pub duration: TimeSpec,
    /// Segment (link) names.
    pub segments: Vec<String>,
    /// Links without link layer (a tun VPN, WireGuard, PPP): a relay lists one in its
    /// `downstream` as the daemon would, and serves it from the routes listed here (the
    /// relay host's main table). No host attaches to one; the far end answers every echo
    /// request for an address its routes cover.
    #[serde(default)]
    pub routed_segments: Vec<RoutedSegmentSpec>,
    /// Simulated hosts.
    pub hosts: Vec<HostSpec>,
    /// Relays (usually one).
    #[serde(default)]
    pub relays: Vec<RelaySpec>,
    /// Timeline of events.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One entry of [`Scenario::routed_segments`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutedSegmentSpec {
    /// Its name (an interface name in relay configs; not one of `segments`).
    pub name: String,
    /// Routes through it at start, as `ip -6 route add PREFIX dev NAME` would add them.
    #[serde(default)]
    pub routes: Vec<Ipv6Net>,
}

impl Scenario {
    /// Whether `name` is one of the routed segments.
    pub fn is_routed_segment(&self, name: &str) -> bool {
        self.routed_segments.iter().any(|r| r.name == name)
    }
}

/// A span of virtual time, written `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"10us"` or a
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TimeSpec(pub Duration);

impl FromStr for TimeSpec {
    type Err = String;
    /// Parses one or more `<number><unit>` parts, summed: `"1.5s"`, `"9m10s"`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("bad time {s:?}: expected e.g. \"500ms\", \"1.5s\", \"2m\", \"9m10s\"");
        if s.is_empty() {
            return Err(bad());
        }
        let mut rest = s;
        let mut micros = 0.0f64;
        while !rest.is_empty() {
            let split = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (num, tail) = rest.split_at(split);
            let value: f64 = num.parse().map_err(|_| bad())?;
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = match unit.trim() {
                "us" => 1.0,
                "ms" => 1e3,
                "" | "s" => 1e6,
                "m" | "min" => 60e6,
                "h" => 3600e6,
                other => {
                    return Err(format!(
                        "bad time unit {other:?} in {s:?}: use us, ms, s, m or h"
                    ));
                }
            };
            micros += value * scale;
            rest = tail;
        }
        if !micros.is_finite() || micros > 1e15 {
            return Err(format!("time {s:?} is out of range"));
        }
        Ok(Self(Duration::from_micros(micros.round() as u64)))
    }
}

impl<'de> Deserialize<'de> for TimeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TimeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time such as \"500ms\", \"1.5s\", \"2m\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TimeSpec, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TimeSpec, E> {
                Ok(TimeSpec(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TimeSpec, E> {
                u64::try_from(v)
                    .map(|v| TimeSpec(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a time cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TimeSpec, E> {
                format!("{v}s").parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A MAC written `"02:00:00:00:00:01"`, keeping its text to locate errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacSpec {
    /// The address.
    pub mac: Mac,
    /// As written.
    pub text: String,
}

impl<'de> Deserialize<'de> for MacSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mac: Mac = text.parse().map_err(de::Error::custom)?;
        if mac.is_multicast() {
            return Err(de::Error::custom(format!(
                "{text} is a group (multicast) MAC; a host needs a unicast MAC (first byte even)"
            )));
        }
        Ok(Self { mac, text })
    }
}

/// One simulated host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Unique name.
    pub name: String,
    /// Segment it starts on.
    pub segment: String,
    /// Its MAC (unique in the scenario).
    pub mac: MacSpec,
    /// What it does.
    pub role: Role,
    /// Attached at start (`false`: waits for a `Join` event).
    #[serde(default = "yes")]
    pub up: bool,
    /// DupAddrDetectTransmits (RFC 4862 §5.1); 0 disables DAD.
    #[serde(default = "one")]
    pub dad_transmits: u8,
}

fn yes() -> bool {
    true
}
fn one() -> u8 {
    1
}
fn three() -> u16 {
    3
}

/// What a host does.
#[derive(Debug, Clone, Deserialize)]
pub enum Role {
    /// A router owning prefixes on its link: periodic RAs with PIOs, answers RS and NS,
    /// echoes.
    Router {
        /// Prefixes advertised (on-link, autonomous).
        prefixes: Vec<Ipv6Net>,
        /// Its global address(es).
        #[serde(default)]
        addresses: Vec<Ipv6Addr>,
        /// Interval between unsolicited RAs (jittered down by up to 25 %).
        #[serde(default = "ra_interval")]
        ra_interval: TimeSpec,
        /// Router Lifetime advertised, seconds.
        #[serde(default = "router_lifetime")]
        router_lifetime: u16,
        /// `false`: a statically configured router that sends no RA at all, periodic
        /// or in answer to an RS (many hosting uplinks).
        #[serde(default = "yes")]
        send_ras: bool,
        /// Off-link prefixes it routes to ("the internet"): echo requests to any
        /// address in them are answered as if the far end replied.
        #[serde(default)]
        routes: Vec<Ipv6Net>,
        /// Creates a STALE neighbour entry from an NA with a target link-layer address
        /// when it has none (RFC 9131; Linux `accept_untracked_na`), so it learns hosts
        /// from unsolicited NAs.
        #[serde(default)]
        accept_untracked_na: bool,
    },
    /// A host that configures addresses from RAs (RFC 4862).
    Slaac,
    /// A host with configured addresses (each a /64, on-link; DAD still runs); learns
    /// routers from RAs.
    Static {
        /// Its global addresses.
        addresses: Vec<Ipv6Addr>,
    },
    /// One server answering for every address of a prefix (the prefix64 story).
    PrefixResponder {
        /// The prefix it answers for.
        prefix: Ipv6Net,
        /// Its own address (source of what it sends; DAD runs for it).
        address: Ipv6Addr,
        /// Addresses of the prefix it leaves alone (the router's, typically).
        #[serde(default)]
        exclude: Vec<Ipv6Addr>,
    },
    /// Attacker: NS to random targets of a prefix (THC `flood_solicitate6`).
    NsFlood {
        /// Targets are drawn from this prefix.
        prefix: Ipv6Net,
        /// NS per second.
        rate: u32,
        /// How many in total.
        count: u32,
        /// When it starts.
        #[serde(default)]
        start: TimeSpec,
        /// Use a random source address from the prefix for each NS.
        #[serde(default = "yes")]
        random_source: bool,
    },
    /// Attacker: periodic RAs for a prefix it does not own.
    RogueRa {
        /// Prefix advertised.
        prefix: Ipv6Net,
        /// Interval.
        #[serde(default = "rogue_interval")]
        interval: TimeSpec,
        /// When it starts.
        #[serde(default)]
        start: TimeSpec,
    },
    /// Attacker: cycles through malformed ND frames (NDP reference §5).
    Malformed {
        /// Interval between frames.
        #[serde(default = "rogue_interval")]
        interval: TimeSpec,
        /// How many frames.
        #[serde(default = "ten")]
        count: u32,
        /// When it starts.
        #[serde(default)]
        start: TimeSpec,
    },
}

fn ten() -> u32 {
    10
}
fn ra_interval() -> TimeSpec {
    TimeSpec(Duration::from_secs(200))
}
fn rogue_interval() -> TimeSpec {
    TimeSpec(Duration::from_secs(5))
}
fn router_lifetime() -> u16 {
    1800
}

impl Role {
    /// Short name for the timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Router { .. } => "router",
            Self::Slaac => "slaac",
            Self::Static { .. } => "static",
            Self::PrefixResponder { .. } => "prefix-responder",
            Self::NsFlood { .. } => "ns-flood",
            Self::RogueRa { .. } => "rogue-ra",
            Self::Malformed { .. } => "malformed",
        }
    }
}

/// One relay instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySpec {
    /// Name, for events and expectations.
    #[serde(default = "relay_name")]
    pub name: String,
    /// Port MACs by segment; unlisted ports get `02:52:00:RR:00:PP`.
    #[serde(default)]
    pub macs: BTreeMap<String, MacSpec>,
    /// Its configuration, in the daemon's schema.
    pub config: ConfigText,
    /// Decide /128 routes as the daemon does with kernel forwarding (`InstallRoute`,
    /// `RemoveRoute`, shown in the timeline and checked by `Route`/`NoRoute`) instead of
    /// forwarding data itself. The lab has no kernel, so no data crosses such a relay:
    /// its stories are about neighbour discovery and routes, not pings through it.
    #[serde(default)]
    pub kernel_routes: bool,
    /// Routes an earlier run of the relay left, as `(address, segment)`: the relay
    /// starts as a restarted daemon does, handing them to the engine to re-verify
    /// (needs `kernel_routes: true`).
    #[serde(default)]
    pub leftover_routes: Vec<(Ipv6Addr, String)>,
}

/// A relay configuration written inline in the scenario: the daemon's config
/// ([`crate::config::Config`], the same schema as `ndprelay run -c FILE`), with segment
/// names as interface names. It is kept as text and read by the daemon's own parser;
/// `parsed` is filled in by validation.
#[derive(Debug, Clone)]
pub struct ConfigText {
    /// The RON text of the value.
    pub text: String,
    /// The parsed config (always `Some` once the scenario validated).
    pub parsed: Option<Box<Config>>,
}

impl ConfigText {
    /// The parsed config. Validation fills it in, so it is present in every scenario
    /// `parse` returns; `None` only for a hand-built, unvalidated scenario.
    pub fn get(&self) -> Option<&Config> {
        self.parsed.as_deref()
    }
}

impl<'de> Deserialize<'de> for ConfigText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<ron::value::RawValue>::deserialize(d)?;
        Ok(Self {
            text: raw.get_ron().to_owned(),
            parsed: None,
        })
    }
}

fn relay_name() -> String {
    "relay".to_owned()
}

/// An event at a point of the timeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When.
    pub at: TimeSpec,
    /// What.
    #[serde(rename = "do")]
    pub action: Action,
}

/// What happens at an event.
#[derive(Debug, Clone, Deserialize)]
pub enum Action {
    /// ICMPv6 echo from a host to a host name or address.
    Ping {
        /// Sender host.
        from: String,
        /// Host name (its first global address) or an IPv6 address.
        to: String,
        /// Echo requests sent, one per `interval`.
        #[serde(default = "three")]
        count: u16,
    },
    /// Move a host to another segment (it re-runs DAD and sends an RS).
    Move {
        /// Host.
        host: String,
        /// New segment.
        to: String,
    },
    /// Carrier down on a relay port.
    LinkDown {
        /// Segment of the port.
        port: String,
        /// Relay name (default: the only relay).
        #[serde(default)]
        relay: Option<String>,
    },
    /// Carrier up on a relay port.
    LinkUp {
        /// Segment of the port.
        port: String,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
    /// A host attaches (again) and starts its stack.
    Join {
        /// Host.
        host: String,
    },
    /// A host detaches.
    Leave {
        /// Host.
        host: String,
    },
    /// Raw frames appear on a segment.
    Inject {
        /// Segment.
        segment: String,
        /// Frame as hex (spaces, colons and newlines allowed).
        #[serde(default)]
        hex: Option<String>,
        /// A pcap or pcapng file (relative to the scenario), frames keep their spacing.
        #[serde(default)]
        pcap: Option<String>,
    },
    /// A route through a routed segment appears in the relay host's main table.
    AddRoute {
        /// The routed segment.
        segment: String,
        /// The route's destination.
        route: Ipv6Net,
    },
    /// A route through a routed segment is deleted.
    DelRoute {
        /// The routed segment.
        segment: String,
        /// The route's destination.
        route: Ipv6Net,
    },
    /// Reload the relay with a new config.
    SetConfig {
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
        /// The new config.
        config: ConfigText,
    },
}

/// Kinds of frames, for `NoFrame` and `MaxFrames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum FrameKind {
    /// Router Solicitation.
    RS,
    /// Router Advertisement.
    RA,
    /// Neighbor Solicitation (DAD included).
    NS,
    /// Neighbor Advertisement.
    NA,
    /// Redirect.
    Redirect,
    /// ICMPv6 echo request.
    EchoRequest,
    /// ICMPv6 echo reply.
    EchoReply,
    /// Other IPv6.
    Data,
    /// Not IPv6.
    NotIpv6,
    /// Rejected by the wire validator.
    Invalid,
}

/// A comparison for counter expectations: `"=="`, `"!="`, `"<"`, `"<="`, `">"`, `">="`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// ==
    Eq,
    /// !=
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
}

impl Cmp {
    /// Applies the comparison.
    pub fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        })
    }
}

impl<'de> Deserialize<'de> for Cmp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "==" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            _ => {
                return Err(de::Error::custom(format!(
                    "bad comparison {s:?}: use \"==\", \"!=\", \"<\", \"<=\", \">\" or \">=\""
                )));
            }
        })
    }
}

/// An expectation, checked when the scenario ends.
#[derive(Debug, Clone, Deserialize)]
pub enum Expect {
    /// The last `Ping` from `from` to `to` got at least one reply.
    Reachable {
        /// Sender.
        from: String,
        /// Target as in the `Ping` event.
        to: String,
    },
    /// The last `Ping` from `from` to `to` got no reply.
    Unreachable {
        /// Sender.
        from: String,
        /// Target.
        to: String,
    },
    /// The host holds a preferred (DAD-complete) address, in `prefix` or equal to
    /// `address` if given, else any global one.
    AddressConfigured {
        /// Host.
        host: String,
        /// Prefix the address must be in.
        #[serde(default)]
        prefix: Option<Ipv6Net>,
        /// Exact address.
        #[serde(default)]
        address: Option<Ipv6Addr>,
    },
    /// The host holds no address (tentative or preferred) in `prefix`.
    NoAddress {
        /// Host.
        host: String,
        /// Prefix.
        prefix: Ipv6Net,
    },
    /// DAD failed on the host (for `address` if given).
    DadFailed {
        /// Host.
        host: String,
        /// Address.
        #[serde(default)]
        address: Option<Ipv6Addr>,
    },
    /// DAD failed nowhere on this host.
    DadOk {
        /// Host.
        host: String,
    },
    /// The relay holds a binding for `address` (host name or address) on `port`.
    Binding {
        /// Host name (its first global address) or an address.
        address: String,
        /// Segment of the port.
        port: String,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
    /// A relay counter compared with a value.
    Counter {
        /// Counter name (`relayed_ns`, `drop_rogue_ra`, ...).
        name: String,
        /// Comparison.
        op: Cmp,
        /// Value.
        value: u64,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
    /// No frame of this kind was seen on the segment (optionally: sent by this host,
    /// matched by MAC, link-layer option or IPv6 source).
    NoFrame {
        /// Segment.
        segment: String,
        /// Kind.
        kind: FrameKind,
        /// Only frames originated by this host.
        #[serde(default)]
        from: Option<String>,
    },
    /// At most `max` frames (of `kind`, if given) were seen on the segment.
    MaxFrames {
        /// Segment.
        segment: String,
        /// Bound.
        max: u64,
        /// Kind.
        #[serde(default)]
        kind: Option<FrameKind>,
    },
    /// The host's MAC never appeared on the segment (L2 source or ND link-layer option).
    MacNotSeen {
        /// Segment.
        segment: String,
        /// Host.
        host: String,
    },
    /// The relay holds a /128 route for `address` (host name or address) via `port`
    /// at the end (a relay with `kernel_routes: true`).
    Route {
        /// Host name (its first global address) or an address.
        address: String,
        /// Segment of the port.
        port: String,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
    /// The relay holds no route for `address` at the end.
    NoRoute {
        /// Host name (its first global address) or an address.
        address: String,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
    /// The relay never held more than `max` bindings at once.
    MaxBindings {
        /// Bound.
        max: u64,
        /// Relay name.
        #[serde(default)]
        relay: Option<String>,
    },
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, SimError> {
    load_with(path, None).map(|(scenario, _)| scenario)
}

/// Like [`load`], with one relay's config replaced by the daemon's config file
/// (`--config`); also returns the note saying so.
pub fn load_with(
    path: &Path,
    production: Option<&ProductionConfig>,
) -> Result<(Scenario, Option<String>), SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_with(&text, path, production)
}

/// Parses and validates scenario text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, SimError> {
    parse_with(text, path, None).map(|(scenario, _)| scenario)
}

fn parse_with(
    text: &str,
    path: &Path,
    production: Option<&ProductionConfig>,
) -> Result<(Scenario, Option<String>), SimError> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut scenario: Scenario = options.from_str(text).map_err(|e| {
        let msg = e.code.to_string();
        let hint = hint_for(&e.code);
        SimError::Scenario {
            path: path.display().to_string(),
            line: e.span.start.line,
            col: e.span.start.col,
            msg,
            hint,
        }
    })?;
    let note = production
        .map(|p| p.substitute(&mut scenario))
        .transpose()?;
    Validator { text, path }.check(&mut scenario)?;
    Ok((scenario, note))
}

fn hint_for(code: &ron::Error) -> String {
    use ron::Error as E;
    match code {
        E::NoSuchEnumVariant {
            expected, outer, ..
        } => {
            let what = outer.as_deref().unwrap_or("this value");
            format!("{what} must be one of: {}", expected.join(", "))
        }
        E::NoSuchStructField { expected, .. } => {
            format!("allowed fields here: {}", expected.join(", "))
        }
        E::MissingStructField { field, .. } => format!("add `{field}: ...`"),
        E::DuplicateStructField { field, .. } => format!("remove the second `{field}`"),
        E::Message(m) if m.contains("time") => {
            "times are strings like \"250ms\", \"1.5s\", \"2m\"".to_owned()
        }
        E::Message(m) if m.contains("MAC") => {
            "MACs are six hex pairs, e.g. \"02:00:00:00:00:01\"".to_owned()
        }
        _ => "see scenarios/home.ron for an annotated example".to_owned(),
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    /// Line and column (1-based) of the `nth` occurrence of `"needle"` in the source.
    fn locate(&self, needle: &str, nth: usize) -> (usize, usize) {
        let quoted = format!("\"{needle}\"");
        let offset = self
            .text
            .match_indices(&quoted)
            .nth(nth)
            .or_else(|| self.text.match_indices(&quoted).next())
            .map_or(0, |(i, _)| i);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err(&self, needle: &str, nth: usize, msg: String, hint: String) -> SimError {
        let (line, col) = self.locate(needle, nth);
        SimError::Scenario {
            path: self.path.display().to_string(),
            line,
            col,
            msg,
            hint,
        }
    }

    /// Parses every inline relay config, mapping error positions into the scenario.
    fn parse_configs(&self, s: &mut Scenario) -> Result<(), SimError> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut texts: Vec<&mut ConfigText> = Vec::new();
        for r in &mut s.relays {
            texts.push(&mut r.config);
        }
        for e in &mut s.events {
            if let Action::SetConfig { config, .. } = &mut e.action {
                texts.push(config);
            }
        }
        // A config from `--config` is already parsed, from its own file.
        for c in texts.into_iter().filter(|c| c.parsed.is_none()) {
            let nth = seen.entry(c.text.clone()).or_insert(0);
            let offset = self
                .text
                .match_indices(c.text.as_str())
                .nth(*nth)
                .map_or(0, |(i, _)| i);
            *nth += 1;
            match parse_relay_config(&c.text) {
                Ok(parsed) => c.parsed = Some(Box::new(parsed)),
                Err((line, col, msg, hint)) => {
                    let before = &self.text[..offset];
                    let base_line = before.matches('\n').count() + 1;
                    let base_col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    return Err(SimError::Scenario {
                        path: self.path.display().to_string(),
                        line: base_line + line - 1,
                        col: if line == 1 { base_col + col - 1 } else { col },
                        msg: format!("relay config: {msg}"),
                        hint,
                    });
                }
            }
        }
        Ok(())
    }

    fn check(&self, s: &mut Scenario) -> Result<(), SimError> {
        self.parse_configs(s)?;
        let s = &*s;
        let segments: BTreeSet<&str> = s.segments.iter().map(String::as_str).collect();
        let seg_list = || s.segments.join(", ");
        for (i, seg) in s.segments.iter().enumerate() {
            if s.segments[..i].contains(seg) {
                return Err(self.err(
                    seg,
                    1,
                    format!("duplicate segment {seg:?}"),
                    "segment names must be unique".into(),
                ));
            }
        }
        for (i, r) in s.routed_segments.iter().enumerate() {
            let twice = s.routed_segments[..i].iter().any(|o| o.name == r.name);
            if twice || segments.contains(r.name.as_str()) {
                return Err(self.err(
                    &r.name,
                    1,
                    format!("segment {:?} is declared twice", r.name),
                    "a routed segment is listed in routed_segments only".into(),
                ));
            }
        }
        let need_segment = |name: &str, what: &str| -> Result<(), SimError> {
            if segments.contains(name) {
                Ok(())
            } else {
                Err(self.err(
                    name,
                    0,
                    format!("unknown segment {name:?} in {what}"),
                    format!("declared segments: {}", seg_list()),
                ))
            }
        };
        if s.duration.0 == Duration::ZERO {
            return Err(self.err(
                "duration",
                0,
                "duration must be above zero".into(),
                "e.g. duration: \"10m\"".into(),
            ));
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut macs: BTreeMap<Mac, &str> = BTreeMap::new();
        for h in &s.hosts {
            if !names.insert(&h.name) {
                return Err(self.err(
                    &h.name,
                    1,
                    format!("duplicate host name {:?}", h.name),
                    "host names must be unique".into(),
                ));
            }
            need_segment(&h.segment, &format!("host {:?}", h.name))?;
            if let Some(other) = macs.insert(h.mac.mac, &h.name) {
                return Err(self.err(
                    &h.mac.text,
                    1,
                    format!(
                        "duplicate MAC {} on hosts {other:?} and {:?}",
                        h.mac.mac, h.name
                    ),
                    "every host needs its own MAC".into(),
                ));
            }
            if let Role::Router { prefixes, .. } = &h.role {
                if prefixes.is_empty() {
                    return Err(self.err(
                        &h.name,
                        0,
                        format!("router {:?} advertises no prefix", h.name),
                        "add prefixes: [\"2001:db8:1::/64\"]".into(),
                    ));
                }
            }
        }
        let host_names = || {
            s.hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let need_host = |name: &str, what: &str| -> Result<(), SimError> {
            if names.contains(name) {
                Ok(())
            } else {
                Err(self.err(
                    name,
                    0,
                    format!("unknown host {name:?} in {what}"),
                    format!("declared hosts: {}", host_names()),
                ))
            }
        };
        let need_target = |name: &str, what: &str| -> Result<(), SimError> {
            if name.parse::<Ipv6Addr>().is_ok() {
                Ok(())
            } else {
                need_host(name, what)
            }
        };
        let mut relay_names = BTreeSet::new();
        for (ri, r) in s.relays.iter().enumerate() {
            if !relay_names.insert(r.name.as_str()) {
                return Err(self.err(
                    &r.name,
                    1,
                    format!("duplicate relay name {:?}", r.name),
                    "give each relay its own name".into(),
                ));
            }
            let Some(config) = r.config.get() else {
                continue;
            };
            self.check_relay_config(config, &need_segment, s)?;
            for (addr, seg) in &r.leftover_routes {
                if !r.kernel_routes {
                    return Err(self.err(
                        &addr.to_string(),
                        0,
                        format!(
                            "relay {:?} has leftover_routes without kernel routes",
                            r.name
                        ),
                        "add kernel_routes: true to the relay: only a relay that installs \
                         routes can find its own after a restart"
                            .into(),
                    ));
                }
                if !port_segments(config).any(|p| p == seg) {
                    return Err(self.err(
                        seg,
                        0,
                        format!(
                            "leftover route {addr} of relay {:?} is on {seg:?}, not one of its ports",
                            r.name
                        ),
                        format!(
                            "its ports: {}",
                            port_segments(config).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            for (seg, mac) in &r.macs {
                need_segment(seg, &format!("relay {:?} macs", r.name))?;
                if let Some(other) = macs.insert(mac.mac, &r.name) {
                    return Err(self.err(
                        &mac.text,
                        1,
                        format!(
                            "duplicate MAC {} on {other:?} and relay {:?}",
                            mac.mac, r.name
                        ),
                        "every host and relay port needs its own MAC".into(),
                    ));
                }
            }
            for (pi, seg) in port_segments(config).enumerate() {
                if !r.macs.contains_key(seg) {
                    let mac = super::runner::auto_relay_mac(ri, pi);
                    if let Some(other) = macs.insert(mac, &r.name) {
                        return Err(self.err(
                            other,
                            0,
                            format!("host {other:?} uses MAC {mac}, reserved for relay ports"),
                            "02:52:00:xx:00:xx is reserved for relay ports".into(),
                        ));
                    }
                }
            }
        }
        let need_relay = |name: &Option<String>, what: &str| -> Result<(), SimError> {
            match name {
                Some(n) if !relay_names.contains(n.as_str()) => Err(self.err(
                    n,
                    0,
                    format!("unknown relay {n:?} in {what}"),
                    format!(
                        "declared relays: {}",
                        relay_names.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                )),
                None if s.relays.len() != 1 => Err(self.err(
                    what,
                    0,
                    format!(
                        "{what} must name its relay: the scenario has {}",
                        s.relays.len()
                    ),
                    "add relay: \"NAME\"".into(),
                )),
                _ => Ok(()),
            }
        };
        let mut last = Duration::ZERO;
        for (i, e) in s.events.iter().enumerate() {
            let what = format!("event {} ({})", i + 1, action_name(&e.action));
            if e.at.0 > s.duration.0 {
                return Err(self.err(
                    action_name(&e.action),
                    0,
                    format!(
                        "{what} at {} is after the end of the scenario ({})",
                        e.at.0, s.duration.0
                    ),
                    "make duration longer or the event earlier".into(),
                ));
            }
            if e.at.0 < last {
                return Err(self.err(
                    action_name(&e.action),
                    0,
                    format!("{what} at {} goes back in time (previous {last})", e.at.0),
                    "list events in time order".into(),
                ));
            }
            last = e.at.0;
            match &e.action {
                Action::Ping { from, to, count } => {
                    need_host(from, &what)?;
                    need_target(to, &what)?;
                    if *count == 0 {
                        return Err(self.err(
                            from,
                            0,
                            format!("{what} sends no echo"),
                            "count must be at least 1".into(),
                        ));
                    }
                }
                Action::Move { host, to } => {
                    need_host(host, &what)?;
                    need_segment(to, &what)?;
                }
                Action::LinkDown { port, relay } | Action::LinkUp { port, relay } => {
                    if !s.is_routed_segment(port) {
                        need_segment(port, &what)?;
                    }
                    need_relay(relay, "LinkDown/LinkUp")?;
                }
                Action::Join { host } | Action::Leave { host } => need_host(host, &what)?,
                Action::AddRoute { segment, .. } | Action::DelRoute { segment, .. } => {
                    if !s.is_routed_segment(segment) {
                        return Err(self.err(
                            segment,
                            0,
                            format!("{what}: {segment:?} is not a routed segment"),
                            "declare it in routed_segments: [(name: \"wg0\", routes: [...])]"
                                .into(),
                        ));
                    }
                }
                Action::Inject { segment, hex, pcap } => {
                    need_segment(segment, &what)?;
                    if hex.is_some() == pcap.is_some() {
                        return Err(self.err(
                            segment,
                            0,
                            format!("{what} needs exactly one of hex or pcap"),
                            "hex: \"3333...\" or pcap: \"frames.pcap\"".into(),
                        ));
                    }
                    if let Some(file) = pcap {
                        // Read it now: a missing capture must not stop a run halfway.
                        let base = self.path.parent().unwrap_or(Path::new("."));
                        if let Err(e) = super::runner::read_capture(&base.join(file)) {
                            return Err(self.err(
                                file,
                                0,
                                format!("{what}: {e}"),
                                "pcap paths are relative to the scenario file".into(),
                            ));
                        }
                    }
                    if let Some(h) = hex {
                        if super::runner::parse_hex(h).is_none() {
                            return Err(self.err(
                                h,
                                0,
                                format!("{what}: hex frame is not an even number of hex digits"),
                                "write bytes as hex pairs, spaces and colons allowed".into(),
                            ));
                        }
                    }
                }
                Action::SetConfig { relay, config } => {
                    need_relay(relay, "SetConfig")?;
                    if let Some(c) = config.get() {
                        self.check_relay_config(c, &need_segment, s)?;
                    }
                }
            }
        }
        for (i, x) in s.expect.iter().enumerate() {
            let what = format!("expectation {}", i + 1);
            match x {
                Expect::Reachable { from, to } | Expect::Unreachable { from, to } => {
                    need_host(from, &what)?;
                    need_target(to, &what)?;
                    let pinged = s.events.iter().any(|e| {
                        matches!(&e.action, Action::Ping { from: f, to: t, .. } if f == from && t == to)
                    });
                    if !pinged {
                        return Err(self.err(
                            from,
                            0,
                            format!("{what} checks a ping {from} -> {to} that no event sends"),
                            format!("add (at: \"..\", do: Ping(from: {from:?}, to: {to:?}))"),
                        ));
                    }
                }
                Expect::AddressConfigured { host, .. }
                | Expect::NoAddress { host, .. }
                | Expect::DadFailed { host, .. }
                | Expect::DadOk { host } => need_host(host, &what)?,
                Expect::Binding {
                    address,
                    port,
                    relay,
                } => {
                    need_target(address, &what)?;
                    need_segment(port, &what)?;
                    need_relay(relay, "Binding")?;
                }
                Expect::Route {
                    address,
                    port,
                    relay,
                } => {
                    need_target(address, &what)?;
                    need_segment(port, &what)?;
                    need_relay(relay, "Route")?;
                }
                Expect::NoRoute { address, relay } => {
                    need_target(address, &what)?;
                    need_relay(relay, "NoRoute")?;
                }
                Expect::Counter { relay, .. } => need_relay(relay, "Counter")?,
                Expect::MaxBindings { relay, .. } => need_relay(relay, "MaxBindings")?,
                Expect::NoFrame { segment, from, .. } => {
                    need_segment(segment, &what)?;
                    if let Some(f) = from {
                        need_host(f, &what)?;
                    }
                }
                Expect::MaxFrames { segment, .. } => need_segment(segment, &what)?,
                Expect::MacNotSeen { segment, host } => {
                    need_segment(segment, &what)?;
                    need_host(host, &what)?;
                }
            }
        }
        Ok(())
    }

    fn check_relay_config(
        &self,
        c: &Config,
        need_segment: &dyn Fn(&str, &str) -> Result<(), SimError>,
        s: &Scenario,
    ) -> Result<(), SimError> {
        need_segment(&c.uplink, "relay uplink")?;
        for d in &c.downstream {
            if !s.is_routed_segment(d) {
                need_segment(d, "relay downstream")?;
            }
            if *d == c.uplink || c.downstream.iter().filter(|x| *x == d).count() > 1 {
                return Err(self.err(
                    d,
                    1,
                    format!("segment {d:?} appears twice among the relay's ports"),
                    "a relay has one port per segment".into(),
                ));
            }
        }
        if c.downstream.is_empty() {
            return Err(self.err(
                &c.uplink,
                0,
                "the relay has no downstream port".into(),
                "add downstream: [\"lan\"]".into(),
            ));
        }
        Ok(())
    }
}

/// Parses a relay config's text with the daemon's parser: (line, column, message,
/// hint) of the first error on failure, positions relative to the text.
fn parse_relay_config(text: &str) -> Result<Config, (usize, usize, String, String)> {
    Config::from_str_with_path(text, "relay-config").map_err(|e| {
        let first = e.errors().into_iter().find(|x| x.location().is_some());
        let (line, col) = first
            .and_then(|x| x.location())
            .and_then(|l| Some((l.line()? as usize, l.col()? as usize)))
            .unwrap_or((1, 1));
        let shown = first.map_or_else(|| e.to_string(), |x| x.to_string());
        let prefix = first
            .and_then(|x| x.location())
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        let shown = shown.strip_prefix(&prefix).unwrap_or(&shown);
        let (msg, hint) = shown
            .split_once("\n  hint: ")
            .unwrap_or((shown, "see `ndprelay check --help` for the config keys"));
        (line, col, msg.to_owned(), hint.to_owned())
    })
}

/// Port segment names of a relay config: the uplink first, then the downstream ports
/// (the engine's `PortId` order).
pub fn port_segments(c: &Config) -> impl Iterator<Item = &str> {
    c.ports().map(|(name, _)| name)
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Ping { .. } => "Ping",
        Action::Move { .. } => "Move",
        Action::LinkDown { .. } => "LinkDown",
        Action::LinkUp { .. } => "LinkUp",
        Action::Join { .. } => "Join",
        Action::Leave { .. } => "Leave",
        Action::Inject { .. } => "Inject",
        Action::SetConfig { .. } => "SetConfig",
        Action::AddRoute { .. } => "AddRoute",
        Action::DelRoute { .. } => "DelRoute",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const GOOD: &str = r#"
Scenario(
    name: "t",
    seed: 1,
    duration: "1m",
    segments: ["wan", "lan"],
    hosts: [
        (name: "isp", segment: "wan", mac: "02:00:00:00:00:01",
         role: Router(prefixes: ["2001:db8:1::/64"], addresses: ["2001:db8:1::1"])),
        (name: "pc", segment: "lan", mac: "02:00:00:00:00:02", role: Slaac),
    ],
    relays: [(config: (uplink: "wan", downstream: ["lan"], prefixes: ["2001:db8:1::/64"]))],
    events: [(at: "10s", do: Ping(from: "isp", to: "pc"))],
    expect: [Reachable(from: "isp", to: "pc")],
)
"#;

    fn err_of(text: &str) -> (usize, usize, String, String) {
        match parse(text, Path::new("x.ron")) {
            Err(SimError::Scenario {
                line,
                col,
                msg,
                hint,
                ..
            }) => (line, col, msg, hint),
            other => panic!("expected a scenario error, got {other:?}"),
        }
    }

    #[test]
    fn good_scenario_parses() {
        let s = parse(GOOD, Path::new("x.ron")).expect("valid");
        assert_eq!(s.hosts.len(), 2);
        assert_eq!(s.duration.0, Duration::from_secs(60));
        assert_eq!(s.events[0].at.0, Duration::from_secs(10));
    }

    #[test]
    fn times_parse_with_units() {
        let t = |s: &str| s.parse::<TimeSpec>().map(|t| t.0.total_micros());
        assert_eq!(t("250ms"), Ok(250_000));
        assert_eq!(t("1.5s"), Ok(1_500_000));
        assert_eq!(t("2m"), Ok(120_000_000));
        assert_eq!(t("10us"), Ok(10));
        assert_eq!(t("9m10s"), Ok(550_000_000));
        assert!(t("5 parsecs").is_err());
        assert!(t("-1s").is_err());
    }

    #[test]
    fn unknown_segment_points_at_the_reference() {
        let text = GOOD.replace(
            r#"(name: "pc", segment: "lan""#,
            r#"(name: "pc", segment: "lna""#,
        );
        let (line, col, msg, hint) = err_of(&text);
        assert_eq!(line, 10);
        assert_eq!(col, 31);
        assert!(msg.contains("unknown segment \"lna\""), "{msg}");
        assert!(hint.contains("wan, lan"), "{hint}");
    }

    #[test]
    fn duplicate_mac_points_at_the_second_use() {
        let text = GOOD.replace("02:00:00:00:00:02", "02:00:00:00:00:01");
        let (line, _, msg, _) = err_of(&text);
        assert_eq!(line, 10);
        assert!(msg.contains("duplicate MAC"), "{msg}");
    }

    #[test]
    fn bad_time_and_unknown_role_come_from_ron_with_position() {
        let (line, _, msg, hint) = err_of(&GOOD.replace("\"10s\"", "\"10 fortnights\""));
        assert_eq!(line, 13);
        assert!(msg.contains("time unit"), "{msg}");
        assert!(hint.contains("250ms"), "{hint}");
        let (line, _, msg, hint) = err_of(&GOOD.replace("role: Slaac", "role: Dhcp"));
        assert_eq!(line, 10);
        assert!(msg.contains("Dhcp"), "{msg}");
        assert!(hint.contains("Slaac"), "{hint}");
    }

    #[test]
    fn relay_config_errors_point_into_the_scenario() {
        let (line, col, msg, _) = err_of(&GOOD.replace("ra_relay", "x").replace(
            "prefixes: [\"2001:db8:1::/64\"]))]",
            "prefixes: [\"2001:db8:1::/64\"], bogus: 1))]",
        ));
        assert_eq!(line, 12);
        assert!(col > 60, "column {col} should be inside the relay config");
        assert!(msg.starts_with("relay config:"), "{msg}");
    }

    #[test]
    fn event_after_the_end_is_rejected() {
        let (_, _, msg, _) = err_of(&GOOD.replace("\"10s\"", "\"2m\""));
        assert!(msg.contains("after the end"), "{msg}");
    }

    #[test]
    fn expectation_without_its_ping_is_rejected() {
        let (_, _, msg, hint) = err_of(&GOOD.replace(
            "Reachable(from: \"isp\", to: \"pc\")",
            "Reachable(from: \"pc\", to: \"isp\")",
        ));
        assert!(msg.contains("no event sends"), "{msg}");
        assert!(hint.contains("Ping"), "{hint}");
    }
}
