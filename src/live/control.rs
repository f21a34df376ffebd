//! The control socket: a Unix stream socket (mode 0600) on which the daemon answers
//! `status` with one JSON document, and the client side that renders it as text.
//!
//! The control thread asks the daemon's engine thread for a [`Published`] snapshot when
//! a request comes (not every interval: taking one keeps the engine thread from the
//! frames waiting for it) and turns it into the typed [`StatusDoc`] itself; the client
//! reads the same type back and renders it as text or prints it as JSON. The metrics
//! thread shares the control thread's [`StatusSource`], reuse window included.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sys;
use crate::engine::{BindingState, NS_NA_BOUNDS_MICROS, NsNaHistogram, ProxyState, Role, Snapshot};
use crate::explain::Explanation;
use crate::time::Duration;
use crate::wire::Mac;

/// How long a status document is served again before the engine thread is asked for a
/// new snapshot.
const STATUS_REUSE: StdDuration = StdDuration::from_millis(100);

/// Driver facts `status` shows next to the engine's snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverPort {
    /// Current ifindex, `None` while the interface does not exist.
    pub ifindex: Option<i32>,
    /// Link MTU.
    pub mtu: u32,
    /// How the in-kernel programs hook into its ingress (`tcx`, `tc`), if they run there.
    pub in_kernel_hook: Option<&'static str>,
}

/// What the engine thread hands the control thread for a status request.
#[derive(Debug, Clone)]
pub struct Published {
    /// The engine's snapshot.
    pub snapshot: Snapshot,
    /// Per port, in `PortId` order.
    pub ports: Vec<DriverPort>,
    /// Driver counters (queue overflows, send errors, route errors...).
    pub counters: Vec<(String, u64)>,
    /// Bound addresses whose /128 route someone else installed (left alone).
    pub route_conflicts: Vec<Ipv6Addr>,
    /// Seconds since start.
    pub uptime_secs: u64,
}

/// The document `status --json` prints and the socket carries (`version` 1).
///
/// Fields are declared in alphabetical order, here and in every nested type: the
/// document's keys have always come out sorted, and keeping that order keeps the output
/// byte for byte what scripts and earlier versions saw. Counters are a sorted map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// Every learned address.
    pub bindings: Vec<BindingStatus>,
    /// The engine's counters and the driver's, by name (all of them, zeros included).
    pub counters: BTreeMap<String, u64>,
    /// Time from relaying an NS to relaying its answer (absent from older daemons).
    #[serde(default)]
    pub ns_na_time: NsNaTime,
    /// Every configured port, in config order.
    pub ports: Vec<PortStatus>,
    /// Routes of the main table through routed ports (tun, WireGuard, PPP), whose
    /// addresses the relay answers for; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routed: Vec<RoutedStatus>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Format version of this document.
    pub version: u32,
}

/// [`StatusDoc::ns_na_time`]: the engine's histogram, each bucket on its own (not
/// cumulative); `buckets` has one more entry than `bounds_us`, for longer times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsNaTime {
    /// Upper bounds (inclusive) of the buckets, in microseconds.
    pub bounds_us: Vec<u64>,
    /// Answers per bucket.
    pub buckets: Vec<u64>,
    /// Answers timed.
    pub count: u64,
    /// Sum of their times, in microseconds.
    pub sum_us: u64,
}

impl Default for NsNaTime {
    fn default() -> Self {
        Self::from(&NsNaHistogram::default())
    }
}

impl From<&NsNaHistogram> for NsNaTime {
    fn from(h: &NsNaHistogram) -> Self {
        Self {
            bounds_us: NS_NA_BOUNDS_MICROS.to_vec(),
            buckets: h.buckets.to_vec(),
            count: h.count,
            sum_us: h.sum_micros,
        }
    }
}

/// One route in [`StatusDoc::routed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedStatus {
    /// Whether an NS for the route's first address is answered now (the port is up and
    /// no more specific route through another interface takes it).
    pub answered: bool,
    /// The routed port's name.
    pub port: String,
    /// The route's destination.
    #[serde(with = "as_text")]
    pub prefix: ipnet::Ipv6Net,
}

/// One port in [`StatusDoc::ports`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    /// Frames the engine received, dropped and sent on the port (absent from older
    /// daemons).
    #[serde(default)]
    pub frames: PortFrameCounts,
    /// Current ifindex, `null` while the interface does not exist.
    pub ifindex: Option<i32>,
    /// How the in-kernel programs hook into its ingress (`tcx`, `tc`), `null` if they do
    /// not run there.
    pub in_kernel_hook: Option<String>,
    /// RFC 4389 §4.1.3.3 loop prevention on this port.
    pub loop_prevention: LoopPrevention,
    /// The relay's MAC on the port.
    #[serde(with = "as_text")]
    pub mac: Mac,
    /// Link MTU.
    pub mtu: u32,
    /// Interface name.
    pub name: String,
    /// True once the port relays (enabled and not disabled by loop prevention).
    pub proxying: bool,
    /// Senders of P-bit RAs whose frames the port ignores (THREAT-MODEL.md).
    pub quarantined: Vec<Quarantined>,
    /// Uplink or downstream.
    pub role: PortRole,
    /// Whether the interface exists and is up.
    pub state: LinkState,
}

/// [`PortStatus::frames`]: frames handed to the engine from the port, those of them
/// it dropped (the `drop_*` counters say why), and frames it sent there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFrameCounts {
    /// Frames dropped.
    pub dropped: u64,
    /// Frames received.
    pub received: u64,
    /// Frames sent (relayed and the relay's own).
    pub sent: u64,
}

/// [`PortStatus::role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// The uplink.
    Upstream,
    /// A guest-side port.
    Downstream,
}

/// [`PortStatus::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// The link is up.
    Up,
    /// The link exists and is down.
    Down,
    /// No interface of that name exists (yet).
    Missing,
}

/// [`PortStatus::loop_prevention`]: `{"state": ...}`, plus `remaining_secs` while
/// disabled and `why` while not proxying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopPrevention {
    /// Seconds until a disabled port may proxy again (only while `state` is `disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_secs: Option<u64>,
    /// Where the port stands.
    pub state: LoopState,
    /// Why the port does not proxy (absent while it does), as the engine says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<NotProxying>,
}

/// [`LoopPrevention::why`]: `{"reason": "waiting_for_ra", ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotProxying {
    /// Carrier down.
    LinkDown,
    /// The MTU is below 1280, the IPv6 minimum.
    MtuTooSmall {
        /// The MTU.
        mtu: u32,
    },
    /// Disabled by an RA heard on the port (RFC 4389 §4.1.3.3, `disable_on_rogue_ra`);
    /// `remaining_secs` says for how long.
    Disabled {
        /// The RA's sender, if known.
        by: Option<RaSender>,
    },
    /// Waiting for a router's RA on the uplink (RS sent), to relay as the two P-bit RAs
    /// RFC 4389 §6 wants before proxying.
    WaitingForRa {
        /// Seconds waited so far.
        for_secs: u64,
        /// Seconds until the relay sends its own P-bit RAs instead, if it will.
        own_ras_in_secs: Option<u64>,
    },
    /// Sending the two P-bit RAs RFC 4389 §6 wants before proxying.
    SendingRas {
        /// The relay's own RAs (no router RA known) or copies of a router's.
        own: bool,
        /// How many of the two went out.
        sent: u8,
    },
}

/// [`NotProxying::Disabled::by`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaSender {
    /// The RA's IPv6 source.
    pub address: Ipv6Addr,
    /// Its Ethernet source.
    #[serde(with = "as_text")]
    pub mac: Mac,
}

impl NotProxying {
    /// What the engine says about a port, relative to `now`; `None` while it proxies.
    fn new(state: ProxyState, now: crate::time::Instant) -> Option<Self> {
        Some(match state {
            ProxyState::Proxying => return None,
            ProxyState::LinkDown => Self::LinkDown,
            ProxyState::MtuTooSmall { mtu } => Self::MtuTooSmall { mtu },
            ProxyState::Disabled { by, .. } => Self::Disabled {
                by: by.map(|(address, mac)| RaSender { address, mac }),
            },
            ProxyState::WaitingForRa { since, own_ras_at } => Self::WaitingForRa {
                for_secs: whole_secs(now.saturating_since(since)),
                own_ras_in_secs: own_ras_at.map(|t| whole_secs(t.saturating_since(now))),
            },
            ProxyState::SendingRas { own, sent } => Self::SendingRas { own, sent },
        })
    }

    /// The reason in words, for the text table.
    fn describe(&self) -> String {
        match *self {
            Self::LinkDown => "link down".into(),
            Self::MtuTooSmall { mtu } => format!("MTU {mtu} below 1280"),
            Self::Disabled { by: Some(by) } => format!("by an RA from {} ({})", by.address, by.mac),
            Self::Disabled { by: None } => "by an RA".into(),
            Self::WaitingForRa {
                for_secs,
                own_ras_in_secs,
            } => {
                let mut t = format!("waiting for a router RA for {}", secs(Some(for_secs)));
                if let Some(s) = own_ras_in_secs {
                    t.push_str(&format!(", own P-bit RAs in {}", secs(Some(s))));
                }
                t
            }
            Self::SendingRas { own: true, sent } => {
                format!("sending own P-bit RAs ({sent} of 2)")
            }
            Self::SendingRas { own: false, sent } => {
                format!("relaying P-bit RAs ({sent} of 2)")
            }
        }
    }
}

/// [`LoopPrevention::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopState {
    /// Relaying.
    Proxying,
    /// Not relaying yet.
    Enabling,
    /// Disabled after another relay's P-bit RA (RFC 4389 §4.1.3.3).
    Disabled,
    /// A routed port (no link layer): nothing is relayed there, its addresses are
    /// answered from the routing table.
    Routed,
}

/// One entry of [`PortStatus::quarantined`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The ignored sender.
    #[serde(with = "as_text")]
    pub mac: Mac,
    /// Seconds until its frames are accepted again.
    pub remaining_secs: u64,
}

/// One learned address in [`StatusDoc::bindings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingStatus {
    /// The guest's address.
    pub address: Ipv6Addr,
    /// Seconds since it was last confirmed reachable, `null` if never.
    pub age_secs: Option<u64>,
    /// Its MAC.
    #[serde(with = "as_text")]
    pub mac: Mac,
    /// The name of the port it lives behind (`?` if that port is gone).
    pub port: String,
    /// True when the relay's /128 route for it is installed.
    pub route: bool,
    /// True when someone else's /128 route for it exists (left alone).
    pub route_conflict: bool,
    /// True while it is restored from an earlier run's `state_file` and its guest has
    /// not yet answered a probe (shown as `stale/restored` and so on in the text).
    #[serde(default)]
    pub restored: bool,
    /// RFC 4861 §7.3.2 neighbor cache state.
    pub state: NeighborState,
}

/// [`BindingStatus::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighborState {
    /// Being resolved.
    Incomplete,
    /// Known, not recently confirmed.
    Stale,
    /// Waiting before probing.
    Delay,
    /// Being probed.
    Probe,
    /// Recently confirmed.
    Reachable,
}

impl From<BindingState> for NeighborState {
    fn from(s: BindingState) -> Self {
        match s {
            BindingState::Incomplete => Self::Incomplete,
            BindingState::Stale => Self::Stale,
            BindingState::Delay => Self::Delay,
            BindingState::Probe => Self::Probe,
            BindingState::Reachable => Self::Reachable,
        }
    }
}

/// The lowercase names the document uses, for the text tables.
macro_rules! lowercase_names {
    ($($ty:ty { $($variant:ident => $name:literal),* $(,)? })*) => {$(
        impl $ty {
            /// The name the document carries.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
    )*};
}

lowercase_names! {
    PortRole { Upstream => "upstream", Downstream => "downstream" }
    LinkState { Up => "up", Down => "down", Missing => "missing" }
    LoopState {
        Proxying => "proxying",
        Enabling => "enabling",
        Disabled => "disabled",
        Routed => "routed",
    }
    NeighborState {
        Incomplete => "incomplete",
        Stale => "stale",
        Delay => "delay",
        Probe => "probe",
        Reachable => "reachable",
    }
}

/// Serde as the value's `Display`/`FromStr` text (MACs as `02:00:00:00:00:01`).
mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

fn whole_secs(d: Duration) -> u64 {
    d.total_micros() / 1_000_000
}

impl StatusDoc {
    /// The document for a snapshot and the driver's facts.
    pub fn new(p: &Published) -> Self {
        let s = &p.snapshot;
        let ports = s
            .ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let d = p.ports.get(i).cloned().unwrap_or_default();
                let why = NotProxying::new(port.state, s.now);
                let loop_prevention = match port.disabled_until {
                    _ if port.routed => LoopPrevention {
                        remaining_secs: None,
                        state: LoopState::Routed,
                        why: None,
                    },
                    Some(t) => LoopPrevention {
                        remaining_secs: Some(whole_secs(t.saturating_since(s.now))),
                        state: LoopState::Disabled,
                        why,
                    },
                    None => LoopPrevention {
                        remaining_secs: None,
                        state: if port.proxying {
                            LoopState::Proxying
                        } else {
                            LoopState::Enabling
                        },
                        why,
                    },
                };
                PortStatus {
                    frames: PortFrameCounts {
                        dropped: port.frames.dropped,
                        received: port.frames.received,
                        sent: port.frames.sent,
                    },
                    ifindex: d.ifindex,
                    in_kernel_hook: d.in_kernel_hook.map(str::to_owned),
                    loop_prevention,
                    mac: port.mac,
                    mtu: d.mtu,
                    name: port.name.clone(),
                    proxying: port.proxying,
                    quarantined: port
                        .quarantined
                        .iter()
                        .map(|&(mac, until)| Quarantined {
                            mac,
                            remaining_secs: whole_secs(until.saturating_since(s.now)),
                        })
                        .collect(),
                    role: match port.role {
                        Role::Upstream => PortRole::Upstream,
                        Role::Downstream => PortRole::Downstream,
                    },
                    state: if d.ifindex.is_none() {
                        LinkState::Missing
                    } else if port.up {
                        LinkState::Up
                    } else {
                        LinkState::Down
                    },
                }
            })
            .collect();
        let bindings = s
            .bindings
            .iter()
            .map(|b| {
                let conflict = p.route_conflicts.contains(&b.addr);
                BindingStatus {
                    address: b.addr,
                    age_secs: b
                        .confirmed_at
                        .map(|t| whole_secs(s.now.saturating_since(t))),
                    mac: b.mac,
                    port: s
                        .ports
                        .get(b.port.index())
                        .map_or("?", |p| p.name.as_str())
                        .to_owned(),
                    route: b.routed && !conflict,
                    route_conflict: conflict,
                    restored: b.restored,
                    state: b.state.into(),
                }
            })
            .collect();
        let routed = s
            .routed
            .iter()
            .map(|r| RoutedStatus {
                answered: r.answered,
                port: s
                    .ports
                    .get(r.port.index())
                    .map_or("?", |p| p.name.as_str())
                    .to_owned(),
                prefix: r.prefix,
            })
            .collect();
        Self {
            bindings,
            counters: s.counters.iter().chain(&p.counters).cloned().collect(),
            ns_na_time: NsNaTime::from(&s.ns_na),
            ports,
            routed,
            uptime_secs: p.uptime_secs,
            version: 1,
        }
    }

    /// Every bound address (tests, tools).
    pub fn binding_addresses(&self) -> Vec<Ipv6Addr> {
        self.bindings.iter().map(|b| b.address).collect()
    }
}

fn secs(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{s}s"),
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Renders the status document for people.
pub fn render_text(doc: &StatusDoc) -> String {
    let mut out = format!(
        "ndprelay: up {}, {} ports, {} bindings\n\nPORTS\n",
        secs(Some(doc.uptime_secs)),
        doc.ports.len(),
        doc.bindings.len()
    );
    let mut rows = vec![
        [
            "NAME",
            "ROLE",
            "STATE",
            "MAC",
            "MTU",
            "EBPF",
            "LOOP-PREVENTION",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in &doc.ports {
        let lp = &p.loop_prevention;
        let mut lp = match (lp.state, lp.why) {
            (LoopState::Disabled, Some(why @ NotProxying::Disabled { .. })) => format!(
                "disabled {}, {} left",
                why.describe(),
                secs(lp.remaining_secs)
            ),
            (LoopState::Disabled, _) => format!("disabled, {} left", secs(lp.remaining_secs)),
            (state, Some(why)) => format!("{}: {}", state.as_str(), why.describe()),
            (state, None) => state.as_str().to_owned(),
        };
        // Senders of P-bit RAs, whose frames the port ignores (THREAT-MODEL.md).
        let macs: Vec<String> = p.quarantined.iter().map(|q| q.mac.to_string()).collect();
        if !macs.is_empty() {
            lp.push_str(&format!(", ignoring {}", macs.join(" ")));
        }
        rows.push(vec![
            p.name.clone(),
            p.role.as_str().to_owned(),
            p.state.as_str().to_owned(),
            if p.loop_prevention.state == LoopState::Routed {
                "-".to_owned()
            } else {
                p.mac.to_string()
            },
            p.mtu.to_string(),
            p.in_kernel_hook.as_deref().unwrap_or("-").to_owned(),
            lp,
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nBINDINGS\n");
    if doc.bindings.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut rows = vec![
            ["ADDRESS", "PORT", "MAC", "STATE", "AGE", "ROUTE"]
                .map(String::from)
                .to_vec(),
        ];
        for b in &doc.bindings {
            rows.push(vec![
                b.address.to_string(),
                b.port.clone(),
                b.mac.to_string(),
                if b.restored {
                    format!("{}/restored", b.state.as_str())
                } else {
                    b.state.as_str().to_owned()
                },
                secs(b.age_secs),
                if b.route_conflict {
                    "conflict"
                } else if b.route {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    if doc
        .ports
        .iter()
        .any(|p| p.loop_prevention.state == LoopState::Routed)
    {
        out.push_str("\nROUTED (answered from the main routing table)\n");
        if doc.routed.is_empty() {
            out.push_str("(no route through a routed port inside the prefixes)\n");
        } else {
            let mut rows = vec![["ROUTE", "PORT", "ANSWERED"].map(String::from).to_vec()];
            for r in &doc.routed {
                let answered = if r.answered { "yes" } else { "no" };
                rows.push(vec![r.prefix.to_string(), r.port.clone(), answered.into()]);
            }
            out.push_str(&table(&rows));
        }
    }
    out.push_str("\nCOUNTERS (non-zero; --json lists all)\n");
    let rows: Vec<Vec<String>> = doc
        .counters
        .iter()
        .filter(|&(_, &v)| v > 0)
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    if rows.is_empty() {
        out.push_str("(all zero)\n");
    } else {
        out.push_str(&table(&rows));
    }
    out
}

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another daemon answers on the path.
    #[error(
        "control socket {0} is in use by a running ndprelay; stop it or choose another `control_socket`"
    )]
    InUse(PathBuf),
    /// Could not create it.
    #[error(
        "cannot create control socket {} (check its directory exists and is writable, or \
         set `control_socket` in the config)",
        .path.display()
    )]
    Bind {
        /// Path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The client could not reach a daemon.
    #[error(
        "no ndprelay answers on {} (is `ndprelay run` running with this control socket? \
         try --control-socket PATH)",
        .path.display()
    )]
    Connect {
        /// Path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The daemon answered something that is not a status document.
    #[error("bad answer on {} (is the daemon the same ndprelay version?)", .path.display())]
    BadAnswer {
        /// Path.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon answered with an error of its own.
    #[error("the ndprelay on {} answered: {message}", .path.display())]
    Daemon {
        /// Path.
        path: PathBuf,
        /// Its words.
        message: String,
    },
}

/// The bound control socket; removes its file when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` with mode 0600. A stale socket file (no one answering) is replaced;
    /// a live one is an error.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_owned()));
            }
            let _ = std::fs::remove_file(path);
        }
        // The socket is created with 0600 from the start: no window where others connect.
        let old = sys::umask(0o177);
        let res = UnixListener::bind(path);
        sys::umask(old);
        let listener = res.map_err(|source| ControlError::Bind {
            path: path.to_owned(),
            source,
        })?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    /// Serves requests until `stop` is set, with the documents of `source`.
    ///
    /// `explain` answers `explain ADDR` (`ndprelay explain`): the daemon thread builds
    /// the explanation, FIB lookup included (`None`: it did not answer in time).
    pub fn serve(
        &self,
        source: &StatusSource<'_>,
        mut explain: impl FnMut(Ipv6Addr) -> Option<Explanation>,
        stop: &AtomicBool,
    ) {
        while !stop.load(Ordering::Relaxed) {
            match sys::poll_readable(&self.listener, 250) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    log::warn!("control socket poll: {e}");
                    std::thread::sleep(StdDuration::from_millis(250));
                    continue;
                }
            }
            let Ok((stream, _)) = self.listener.accept() else {
                continue;
            };
            if let Err(e) = answer(stream, || source.doc(), &mut explain) {
                log::debug!("control client: {e}");
            }
        }
    }
}

/// Where the control socket and the metrics endpoint get their documents: one way into
/// the engine thread for both. `ask` fetches a snapshot (`None`: the engine thread did
/// not answer in time); one younger than `STATUS_REUSE` is served again instead, so
/// however often clients of either ask, the engine thread takes a snapshot at most
/// that often.
pub struct StatusSource<'a> {
    state: parking_lot::Mutex<SourceState<'a>>,
}

struct SourceState<'a> {
    ask: Box<dyn FnMut() -> Option<Published> + Send + 'a>,
    // The snapshot, not its document: with thousands of bindings the document is
    // several times larger, and it is only needed while it is written out.
    last: Option<(StdInstant, std::sync::Arc<Published>)>,
}

impl std::fmt::Debug for StatusSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSource").finish_non_exhaustive()
    }
}

impl<'a> StatusSource<'a> {
    /// A source asking `ask` for snapshots.
    pub fn new(ask: impl FnMut() -> Option<Published> + Send + 'a) -> Self {
        Self {
            state: parking_lot::Mutex::new(SourceState {
                ask: Box::new(ask),
                last: None,
            }),
        }
    }

    /// The current document, `None` if the engine thread did not answer in time.
    pub fn doc(&self) -> Option<StatusDoc> {
        let published = {
            let mut st = self.state.lock();
            let fresh = st
                .last
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < STATUS_REUSE);
            if !fresh {
                let p = (st.ask)()?;
                st.last = Some((StdInstant::now(), std::sync::Arc::new(p)));
            }
            st.last.as_ref().map(|(_, p)| std::sync::Arc::clone(p))?
        };
        // Built outside the lock: the other thread need not wait for it.
        Some(StatusDoc::new(&published))
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The daemon's answer when it has no status document to give.
#[derive(Debug, Serialize)]
struct ErrorReply {
    error: String,
}

fn answer(
    stream: UnixStream,
    status: impl FnOnce() -> Option<StatusDoc>,
    explain: &mut dyn FnMut(Ipv6Addr) -> Option<Explanation>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(StdDuration::from_secs(1)))?;
    stream.set_write_timeout(Some(StdDuration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(256)).read_line(&mut line)?;
    let error = |error: String| serde_json::to_vec(&ErrorReply { error });
    // One write: serde_json writes token by token, and on an unbuffered socket every
    // token would be a send.
    let mut doc = match line.trim() {
        "status" => match status() {
            Some(doc) => serde_json::to_vec(&doc),
            None => error(
                "the daemon's engine thread did not answer in time (busy reloading or \
                 stopping); try again"
                    .into(),
            ),
        },
        other => match explain_request(other) {
            Some(Ok(addr)) => match explain(addr) {
                Some(e) => serde_json::to_vec(&e),
                None => error(
                    "the daemon's engine thread did not answer in time (busy reloading or \
                     stopping); try again"
                        .into(),
                ),
            },
            Some(Err(bad)) => error(format!("explain: {bad:?} is not an IPv6 address")),
            None => error(format!("unknown request {other:?}")),
        },
    }?;
    doc.push(b'\n');
    (&stream).write_all(&doc)
}

/// `explain ADDR`: `Some(Ok(addr))`, `Some(Err(word))` for a bad address, `None` for
/// another request.
fn explain_request(line: &str) -> Option<Result<Ipv6Addr, &str>> {
    let rest = line.strip_prefix("explain ")?.trim();
    Some(rest.parse().map_err(|_| rest))
}

/// Asks the daemon on `path` to explain `addr` (`ndprelay explain`).
pub fn request_explain(path: &Path, addr: Ipv6Addr) -> Result<Explanation, ControlError> {
    let bad = |source| ControlError::BadAnswer {
        path: path.to_owned(),
        source,
    };
    let doc = request(path, &format!("explain {addr}\n"))?;
    Explanation::deserialize(&doc).map_err(bad)
}

/// Sends `line` to the daemon on `path` and reads its JSON answer; an `{"error": ...}`
/// answer is the daemon's words.
fn request(path: &Path, line: &str) -> Result<Value, ControlError> {
    let connect = |source| ControlError::Connect {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(connect)?;
    stream
        .set_read_timeout(Some(StdDuration::from_secs(5)))
        .map_err(connect)?;
    stream.write_all(line.as_bytes()).map_err(connect)?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).map_err(connect)?;
    let bad = |source| ControlError::BadAnswer {
        path: path.to_owned(),
        source,
    };
    // Read as a tree first: an `{"error": ...}` answer is reported as the daemon's
    // words, not as a document missing its fields.
    let doc: Value = serde_json::from_str(&buf).map_err(bad)?;
    if let Some(err) = doc.get("error") {
        return Err(ControlError::Daemon {
            path: path.to_owned(),
            message: err.as_str().map_or_else(|| err.to_string(), str::to_owned),
        });
    }
    Ok(doc)
}

/// Asks the daemon on `path` for its status document.
pub fn request_status(path: &Path) -> Result<StatusDoc, ControlError> {
    let bad = |source| ControlError::BadAnswer {
        path: path.to_owned(),
        source,
    };
    let doc = request(path, "status\n")?;
    StatusDoc::deserialize(&doc).map_err(bad)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::engine::{BindingInfo, PortId, PortInfo};
    use crate::time::{Duration, Instant};
    use serde_json::json;

    /// The document as the JSON tree scripts read.
    fn json(p: &Published) -> Value {
        serde_json::to_value(StatusDoc::new(p)).unwrap()
    }

    fn sample() -> Published {
        let now = Instant::ZERO + Duration::from_secs(100);
        Published {
            snapshot: Snapshot {
                now,
                ports: vec![
                    PortInfo {
                        name: "eth0".into(),
                        role: Role::Upstream,
                        mac: Mac([2, 0, 0, 0, 0, 1]),
                        up: true,
                        proxying: true,
                        disabled_until: None,
                        quarantined: vec![],
                        state: ProxyState::Proxying,
                        routed: false,
                        frames: Default::default(),
                    },
                    PortInfo {
                        name: "br0".into(),
                        role: Role::Downstream,
                        mac: Mac([2, 0, 0, 0, 0, 2]),
                        up: true,
                        proxying: false,
                        disabled_until: Some(now + Duration::from_secs(125)),
                        quarantined: vec![(
                            Mac([2, 0, 0, 0, 0, 0x66]),
                            now + Duration::from_secs(60),
                        )],
                        state: ProxyState::Disabled {
                            until: now + Duration::from_secs(125),
                            by: Some(("fe80::66".parse().unwrap(), Mac([2, 0, 0, 0, 0, 0x66]))),
                        },
                        routed: false,
                        frames: crate::engine::PortFrames {
                            received: 9,
                            dropped: 2,
                            sent: 4,
                        },
                    },
                ],
                bindings: vec![BindingInfo {
                    addr: "2001:db8::10".parse().unwrap(),
                    port: PortId(1),
                    mac: Mac([2, 0, 0, 0, 0, 0x10]),
                    state: BindingState::Reachable,
                    confirmed_at: Some(Instant::ZERO + Duration::from_secs(93)),
                    routed: true,
                    restored: false,
                }],
                counters: vec![("relayed_ns".into(), 5), ("drop_hop_limit".into(), 0)],
                routed: vec![],
                ns_na: Default::default(),
            },
            ports: vec![
                DriverPort {
                    ifindex: Some(2),
                    mtu: 1500,
                    in_kernel_hook: Some("tc"),
                },
                DriverPort {
                    ifindex: Some(3),
                    mtu: 1500,
                    in_kernel_hook: None,
                },
            ],
            counters: vec![("tx_errors".into(), 0)],
            route_conflicts: Vec::new(),
            uptime_secs: 3725,
        }
    }

    /// Variations of the sample covering every shape a field can take.
    fn variants() -> Vec<Published> {
        let base = sample();
        let mut v = vec![base.clone()];
        let mut p = base.clone();
        p.ports[0].ifindex = None;
        p.snapshot.ports[1].up = false;
        p.snapshot.ports[1].disabled_until = None;
        p.snapshot.ports[1].state = ProxyState::LinkDown;
        p.snapshot.bindings[0].confirmed_at = None;
        p.snapshot.bindings[0].state = BindingState::Probe;
        p.snapshot.bindings[0].restored = true;
        p.snapshot.bindings[0].port = PortId(7);
        p.route_conflicts = vec!["2001:db8::10".parse().unwrap()];
        p.counters.push(("relayed_ns".into(), 9));
        v.push(p);
        let mut p = base;
        p.snapshot.bindings.clear();
        p.snapshot.counters.clear();
        p.counters.clear();
        p.uptime_secs = 59;
        v.push(p);
        v
    }

    #[test]
    fn a_serialized_doc_reads_back_the_same() {
        for p in variants() {
            let doc = StatusDoc::new(&p);
            for text in [
                serde_json::to_string(&doc).unwrap(),
                serde_json::to_string_pretty(&doc).unwrap(),
            ] {
                let back: StatusDoc = serde_json::from_str(&text).unwrap();
                assert_eq!(back, doc, "{text}");
            }
        }
    }

    #[test]
    fn every_field_shape_shows_in_json_and_text() {
        let p = &variants()[1];
        let doc = json(p);
        assert_eq!(doc["ports"][0]["ifindex"], Value::Null);
        assert_eq!(doc["ports"][0]["state"], "missing");
        assert_eq!(doc["ports"][1]["state"], "down");
        assert_eq!(
            doc["ports"][1]["loop_prevention"],
            json!({ "state": "enabling", "why": { "reason": "link_down" } }),
            "no remaining_secs unless disabled"
        );
        assert_eq!(doc["bindings"][0]["age_secs"], Value::Null);
        assert_eq!(doc["bindings"][0]["state"], "probe");
        assert_eq!(doc["bindings"][0]["restored"], true);
        assert_eq!(doc["bindings"][0]["port"], "?");
        assert_eq!(doc["counters"]["relayed_ns"], 9, "the driver's count wins");
        let t = render_text(&StatusDoc::new(p));
        assert!(
            t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "br0",
                    "downstream",
                    "down",
                    "02:00:00:00:00:02",
                    "1500",
                    "-",
                    "enabling:",
                    "link",
                    "down,",
                    "ignoring",
                    "02:00:00:00:00:66"
                ]),
            "{t}"
        );
        let row = t.lines().find(|l| l.starts_with("2001:db8::10")).unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [
                "2001:db8::10",
                "?",
                "02:00:00:00:00:10",
                "probe/restored",
                "-",
                "conflict"
            ]
        );
        let quiet = render_text(&StatusDoc::new(&variants()[2]));
        assert!(
            quiet.starts_with("ndprelay: up 59s, 2 ports, 0 bindings"),
            "{quiet}"
        );
        assert!(
            quiet.contains("BINDINGS\n(none)\n") && quiet.ends_with("(all zero)\n"),
            "{quiet}"
        );
    }

    /// The loop-prevention cell of br0 when the engine says `state`.
    fn why_cell(state: ProxyState) -> (Value, String) {
        let mut p = sample();
        p.snapshot.ports[1].disabled_until = None;
        p.snapshot.ports[1].quarantined.clear();
        p.snapshot.ports[1].state = state;
        p.snapshot.ports[1].proxying = state == ProxyState::Proxying;
        let doc = StatusDoc::new(&p);
        let text = render_text(&doc);
        let row = text.lines().find(|l| l.starts_with("br0")).unwrap();
        // Name, role, state, MAC, MTU and hook come first, then the cell.
        let cell = row.split_whitespace().skip(6).collect::<Vec<_>>().join(" ");
        (json(&p)["ports"][1]["loop_prevention"].clone(), cell)
    }

    #[test]
    fn status_says_why_a_port_does_not_proxy() {
        let now = sample().snapshot.now;
        let secs = |n: u64| now + Duration::from_secs(n);
        let back = |n: u64| Instant::ZERO + Duration::from_secs(100 - n);
        let cases = [
            (
                ProxyState::WaitingForRa {
                    since: back(3),
                    own_ras_at: Some(secs(2)),
                },
                json!({ "state": "enabling", "why": { "reason": "waiting_for_ra", "for_secs": 3, "own_ras_in_secs": 2 } }),
                "enabling: waiting for a router RA for 3s, own P-bit RAs in 2s",
            ),
            (
                ProxyState::WaitingForRa {
                    since: back(75),
                    own_ras_at: None,
                },
                json!({ "state": "enabling", "why": { "reason": "waiting_for_ra", "for_secs": 75, "own_ras_in_secs": null } }),
                "enabling: waiting for a router RA for 1m15s",
            ),
            (
                ProxyState::SendingRas { own: true, sent: 1 },
                json!({ "state": "enabling", "why": { "reason": "sending_ras", "own": true, "sent": 1 } }),
                "enabling: sending own P-bit RAs (1 of 2)",
            ),
            (
                ProxyState::SendingRas {
                    own: false,
                    sent: 0,
                },
                json!({ "state": "enabling", "why": { "reason": "sending_ras", "own": false, "sent": 0 } }),
                "enabling: relaying P-bit RAs (0 of 2)",
            ),
            (
                ProxyState::LinkDown,
                json!({ "state": "enabling", "why": { "reason": "link_down" } }),
                "enabling: link down",
            ),
            (
                ProxyState::MtuTooSmall { mtu: 1200 },
                json!({ "state": "enabling", "why": { "reason": "mtu_too_small", "mtu": 1200 } }),
                "enabling: MTU 1200 below 1280",
            ),
        ];
        for (state, want_json, want_text) in cases {
            let mut p = sample();
            p.snapshot.ports[1].state = state;
            let (doc, cell) = why_cell(state);
            assert_eq!(doc, want_json, "{state:?}");
            assert_eq!(cell, want_text, "{state:?}");
            let back: StatusDoc =
                serde_json::from_str(&serde_json::to_string(&StatusDoc::new(&p)).unwrap()).unwrap();
            assert_eq!(back, StatusDoc::new(&p), "{state:?} reads back");
        }
        let (doc, cell) = why_cell(ProxyState::Proxying);
        assert_eq!(doc, json!({ "state": "proxying" }));
        assert_eq!(cell, "proxying");
    }

    #[test]
    fn routed_ports_and_their_routes_show_in_json_and_text() {
        assert_eq!(
            json(&sample()).get("routed"),
            None,
            "absent without routed ports"
        );
        assert!(!render_text(&StatusDoc::new(&sample())).contains("ROUTED"));
        let mut p = sample();
        p.snapshot.ports[1].name = "tun0".into();
        p.snapshot.ports[1].routed = true;
        p.snapshot.ports[1].quarantined.clear();
        let empty = render_text(&StatusDoc::new(&p));
        assert!(
            empty.contains("ROUTED (answered from the main routing table)\n(no route"),
            "{empty}"
        );
        p.snapshot.routed = vec![crate::engine::RoutedInfo {
            prefix: "2001:db8:1::100/128".parse().unwrap(),
            port: PortId(1),
            answered: true,
        }];
        let doc = json(&p);
        assert_eq!(
            doc["ports"][1]["loop_prevention"],
            json!({ "state": "routed" })
        );
        assert_eq!(
            doc["routed"],
            json!([{ "answered": true, "port": "tun0", "prefix": "2001:db8:1::100/128" }])
        );
        let back: StatusDoc = serde_json::from_value(doc).unwrap();
        assert_eq!(back, StatusDoc::new(&p));
        let t = render_text(&StatusDoc::new(&p));
        let row = t
            .lines()
            .find(|l| l.starts_with("2001:db8:1::100/128"))
            .unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["2001:db8:1::100/128", "tun0", "yes"]
        );
        let port = t.lines().find(|l| l.starts_with("tun0")).unwrap();
        assert_eq!(
            port.split_whitespace().collect::<Vec<_>>(),
            ["tun0", "downstream", "up", "-", "1500", "-", "routed"],
            "a routed port has no MAC to show"
        );
    }

    #[test]
    fn a_route_conflict_shows_per_binding_in_json_and_text() {
        let mut p = sample();
        p.route_conflicts = vec!["2001:db8::10".parse().unwrap()];
        let doc = json(&p);
        assert_eq!(doc["bindings"][0]["route_conflict"], true);
        assert_eq!(doc["bindings"][0]["route"], false, "the route is not ours");
        let t = render_text(&StatusDoc::new(&p));
        let row = t.lines().find(|l| l.starts_with("2001:db8::10")).unwrap();
        assert!(row.ends_with(" conflict"), "{row}");
        assert_eq!(json(&sample())["bindings"][0]["route_conflict"], false);
    }

    #[test]
    fn json_carries_ports_bindings_and_all_counters() {
        let doc = json(&sample());
        assert_eq!(doc["ports"][1]["name"], "br0");
        assert_eq!(doc["ports"][0]["in_kernel_hook"], "tc");
        assert_eq!(doc["ports"][1]["in_kernel_hook"], Value::Null);
        assert_eq!(doc["ports"][1]["loop_prevention"]["state"], "disabled");
        assert_eq!(doc["ports"][1]["loop_prevention"]["remaining_secs"], 125);
        assert_eq!(doc["ports"][0]["loop_prevention"]["state"], "proxying");
        assert_eq!(doc["ports"][0]["loop_prevention"].get("why"), None);
        assert_eq!(
            doc["ports"][1]["loop_prevention"]["why"],
            json!({ "reason": "disabled", "by": { "address": "fe80::66", "mac": "02:00:00:00:00:66" } })
        );
        assert_eq!(
            doc["ports"][1]["quarantined"][0]["mac"],
            "02:00:00:00:00:66"
        );
        assert_eq!(doc["ports"][1]["quarantined"][0]["remaining_secs"], 60);
        assert_eq!(
            doc["ports"][0]["quarantined"].as_array().map(Vec::len),
            Some(0)
        );
        assert_eq!(doc["bindings"][0]["port"], "br0");
        assert_eq!(doc["bindings"][0]["age_secs"], 7);
        assert_eq!(doc["bindings"][0]["route"], true);
        assert_eq!(doc["counters"]["drop_hop_limit"], 0);
        assert_eq!(doc["counters"]["tx_errors"], 0);
        assert_eq!(
            StatusDoc::new(&sample()).binding_addresses(),
            vec!["2001:db8::10".parse::<Ipv6Addr>().unwrap()]
        );
    }

    #[test]
    fn text_shows_tables_and_only_nonzero_counters() {
        let t = render_text(&StatusDoc::new(&sample()));
        assert!(
            t.starts_with("ndprelay: up 1h02m, 2 ports, 1 bindings"),
            "{t}"
        );
        assert!(
            t.contains(
                "disabled by an RA from fe80::66 (02:00:00:00:00:66), 2m05s left, \
                 ignoring 02:00:00:00:00:66"
            ),
            "{t}"
        );
        let eth0: Vec<&str> = t
            .lines()
            .find(|l| l.starts_with("eth0"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(eth0[4..6], ["1500", "tc"], "{t}");
        let row = t.lines().find(|l| l.starts_with("2001:db8::10")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "2001:db8::10",
                "br0",
                "02:00:00:00:00:10",
                "reachable",
                "7s",
                "yes"
            ]
        );
        assert!(t.contains("relayed_ns"), "{t}");
        assert!(!t.contains("drop_hop_limit"), "{t}");
    }

    /// A control socket bound in a new temporary directory `name`-PID: (dir, path, socket).
    fn socket_in_temp_dir(name: &str) -> (PathBuf, PathBuf, ControlSocket) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let sock = ControlSocket::bind(&path).unwrap();
        (dir, path, sock)
    }

    #[test]
    fn socket_round_trip_with_mode_0600() {
        let (dir, path, sock) = socket_in_temp_dir("ndpr-ctl");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            ControlSocket::bind(&path),
            Err(ControlError::InUse(_))
        ));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| sock.serve(&StatusSource::new(|| Some(sample())), |_| None, &stop));
            let doc = request_status(&path).unwrap();
            assert_eq!(doc, StatusDoc::new(&sample()), "the document crosses whole");
            stop.store(true, Ordering::Relaxed);
        });
        drop(sock);
        assert!(!path.exists());
        let gone = request_status(&path).unwrap_err();
        assert!(matches!(gone, ControlError::Connect { .. }), "{gone:?}");
        let cause = std::error::Error::source(&gone).and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(
            cause.map(io::Error::kind),
            Some(io::ErrorKind::NotFound),
            "the connect error is the source"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_request_gets_a_new_snapshot_unless_one_was_taken_just_before() {
        let (dir, path, sock) = socket_in_temp_dir("ndpr-ctl-ask");
        let asked = std::sync::atomic::AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                sock.serve(
                    &StatusSource::new(|| {
                        // The third snapshot finds the engine thread not answering.
                        let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
                        (n != 3).then(|| Published {
                            uptime_secs: n,
                            ..sample()
                        })
                    }),
                    |_| None,
                    &stop,
                )
            });
            let later = || {
                std::thread::sleep(STATUS_REUSE + StdDuration::from_millis(50));
                request_status(&path)
            };
            let answers = [
                request_status(&path),
                request_status(&path),
                later(),
                later(),
                later(),
            ];
            // Stopped before asserting, so a failed assertion cannot leave it serving.
            stop.store(true, Ordering::Relaxed);
            let [first, again, second, busy, after_busy] = answers;
            let uptime = |a: Result<StatusDoc, ControlError>| a.unwrap().uptime_secs;
            assert_eq!(uptime(first), 1);
            assert_eq!(uptime(again), 1, "asked again at once: the same snapshot");
            assert_eq!(uptime(second), 2);
            assert!(
                matches!(&busy, Err(ControlError::Daemon { message, .. }) if message.contains("did not answer")),
                "{busy:?}"
            );
            assert_eq!(uptime(after_busy), 4, "asked again after the failure");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An explanation of `addr` from a fresh engine (uplink eth0, br0, 2001:db8::/64).
    fn explanation(addr: Ipv6Addr) -> Explanation {
        use crate::engine::{Engine, EngineConfig, PortConfig};
        let port =
            |name: &str, role, last| PortConfig::ethernet(name, role, Mac([2, 0, 0, 0, 0, last]));
        let cfg = EngineConfig::new(
            vec![
                port("eth0", Role::Upstream, 1),
                port("br0", Role::Downstream, 2),
            ],
            vec!["2001:db8::/64".parse().unwrap()],
        );
        let engine = Engine::new(cfg, Instant::ZERO).unwrap();
        let facts = engine.address_facts(Instant::from_micros(1_000_000), addr);
        crate::explain::build(&facts, &crate::explain::DriverFacts::replay())
    }

    #[test]
    fn explain_requests_cross_the_socket_and_bad_ones_get_the_daemons_words() {
        let (dir, path, sock) = socket_in_temp_dir("ndpr-ctl-explain");
        let stop = AtomicBool::new(false);
        let asked = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                sock.serve(
                    &StatusSource::new(|| Some(sample())),
                    |addr| {
                        asked.lock().unwrap().push(addr);
                        (addr != "2001:db8::99".parse::<Ipv6Addr>().unwrap())
                            .then(|| explanation(addr))
                    },
                    &stop,
                )
            });
            let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
            let e = request_explain(&path, a).unwrap();
            assert_eq!(e, explanation(a), "the explanation crosses whole");
            let late = request_explain(&path, "2001:db8::99".parse().unwrap()).unwrap_err();
            assert!(
                late.to_string().contains("did not answer in time"),
                "{late}"
            );
            // A bad address never reaches the engine thread.
            let bad = request(&path, "explain 2001:db8::zz\n").unwrap_err();
            assert!(
                bad.to_string()
                    .contains("\"2001:db8::zz\" is not an IPv6 address"),
                "{bad}"
            );
            let other = request(&path, "frobnicate\n").unwrap_err();
            assert!(other.to_string().contains("unknown request"), "{other}");
            // Status still answers on the same socket.
            assert_eq!(request_status(&path).unwrap(), StatusDoc::new(&sample()));
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(asked.lock().unwrap().len(), 2);
        drop(sock);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
