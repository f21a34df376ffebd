//! Simulated hosts: a compact IPv6 stack per host, built on `crate::wire`.
//!
//! Heads up: read RFC 4861 §6.3.7 (RS), §7.2 (address resolution), §7.3 (NUD) and
//! RFC 4862 §5.4 (DAD) first. Each host is sans-IO like the engine: `handle_frame`,
//! `handle_timeout`, `poll_timeout`, and the frames it wants to send are drained from
//! `tx`. What a host does is its [`Role`]: router, SLAAC host, static host, responder for
//! a whole prefix, or an attacker replaying scripted frames.
//!
//! Not modelled: MLD (segments deliver every multicast frame; hosts filter by group),
//! privacy addresses, DHCPv6, forwarding between links.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::scenario::{HostSpec, Role};
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::wire::{
    self, Mac, NaFlags, NdMessage, NdOption, OptionRepr, Parsed, PrefixInfo, RaFlags, RouterAdvert,
};

/// RetransTimer default (RFC 4861 §10).
const RETRANS: Duration = Duration::from_secs(1);
/// MAX_MULTICAST_SOLICIT / MAX_UNICAST_SOLICIT.
const MAX_SOLICIT: u8 = 3;
/// DELAY_FIRST_PROBE_TIME.
const DELAY_FIRST_PROBE: Duration = Duration::from_secs(5);
/// REACHABLE_TIME default.
const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// MAX_RTR_SOLICITATION_DELAY; also the random DAD start delay (RFC 4862 §5.4.2).
const MAX_RS_DELAY: Duration = Duration::from_secs(1);
/// RTR_SOLICITATION_INTERVAL.
const RS_INTERVAL: Duration = Duration::from_secs(4);
/// MAX_RTR_SOLICITATIONS.
const MAX_RS: u8 = 3;
/// MAX_RA_DELAY_TIME.
const MAX_RA_DELAY: Duration = Duration::from_millis(500);
/// MIN_DELAY_BETWEEN_RAS.
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// MAX_INITIAL_RTR_ADVERT_INTERVAL / MAX_INITIAL_RTR_ADVERTISEMENTS.
const INITIAL_RA_INTERVAL: Duration = Duration::from_secs(16);
const INITIAL_RAS: u8 = 3;
/// Packets queued per unresolved neighbor (Linux `unres_qlen` is larger; 3 is enough).
const QUEUE_PER_NEIGHBOR: usize = 3;
/// How long a ping waits for replies after its last request.
const PING_WAIT: Duration = Duration::from_secs(2);
const PING_INTERVAL: Duration = Duration::from_secs(1);

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Lifecycle of one address (RFC 4862 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// DAD running: `sent` probes so far, next step at `next`.
    Tentative {
        /// Probes sent.
        sent: u8,
        /// Next probe (or the end of DAD).
        next: Instant,
    },
    /// DAD passed.
    Preferred,
    /// DAD failed: someone else owns it.
    Duplicate,
}

/// One address of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Its state.
    pub state: AddrState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NState {
    Incomplete { probes: u8, next: Instant },
    Reachable { until: Instant },
    Stale,
    Delay { until: Instant },
    Probe { probes: u8, next: Instant },
}

#[derive(Debug, Clone)]
struct Neighbor {
    mac: Option<Mac>,
    state: NState,
    /// Frames waiting for resolution; their Ethernet destination is patched on success.
    queue: Vec<Vec<u8>>,
}

/// One ping started by a `Ping` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRecord {
    /// Target as written in the event.
    pub label: String,
    /// Address pinged, if one could be chosen.
    pub dst: Option<Ipv6Addr>,
    /// Identifier.
    pub ident: u16,
    /// Requests to send.
    pub count: u16,
    /// Requests sent.
    pub sent: u16,
    /// Replies received.
    pub received: u16,
    next_send: Option<Instant>,
    deadline: Instant,
    /// Finished (all sent and the wait is over).
    pub done: bool,
}

#[derive(Debug, Clone, Default)]
struct RouterState {
    next_unsolicited: Option<Instant>,
    initial_left: u8,
    pending_answer: Option<Instant>,
    last_multicast: Option<Instant>,
}

/// A simulated host.
#[derive(Debug)]
pub struct Host {
    /// Name from the scenario.
    pub name: String,
    /// Its MAC.
    pub mac: Mac,
    /// What it does.
    pub role: Role,
    /// Segment index it is attached to.
    pub segment: usize,
    /// Attached and running.
    pub up: bool,
    /// Its addresses, link-local first.
    pub addrs: Vec<HostAddr>,
    /// Every address whose DAD failed.
    pub dad_failures: Vec<Ipv6Addr>,
    /// Pings, in the order they were started.
    pub pings: Vec<PingRecord>,
    /// Frames to transmit.
    pub tx: Vec<Vec<u8>>,
    /// Things worth a timeline line.
    pub notes: Vec<String>,
    dad_transmits: u8,
    neighbors: BTreeMap<Ipv6Addr, Neighbor>,
    routers: BTreeMap<Ipv6Addr, Instant>,
    onlink: BTreeMap<Ipv6Net, Instant>,
    reachable: Duration,
    rs: Option<(u8, Instant)>,
    router: RouterState,
    attack_next: Option<Instant>,
    attack_left: u32,
    attack_index: u32,
    rng: Rng,
}

impl Host {
    /// A host from its spec, detached until [`Host::start`].
    pub fn new(spec: &HostSpec, segment: usize, rng: Rng) -> Self {
        Self {
            name: spec.name.clone(),
            mac: spec.mac.mac,
            role: spec.role.clone(),
            segment,
            up: false,
            addrs: Vec::new(),
            dad_failures: Vec::new(),
            pings: Vec::new(),
            tx: Vec::new(),
            notes: Vec::new(),
            dad_transmits: spec.dad_transmits,
            neighbors: BTreeMap::new(),
            routers: BTreeMap::new(),
            onlink: BTreeMap::new(),
            reachable: REACHABLE_TIME,
            rs: None,
            router: RouterState::default(),
            attack_next: None,
            attack_left: 0,
            attack_index: 0,
            rng,
        }
    }

    fn is_router(&self) -> bool {
        matches!(self.role, Role::Router { .. })
    }

    /// A router that learns neighbours from NAs nobody asked for (RFC 9131).
    fn accepts_untracked_na(&self) -> bool {
        matches!(
            self.role,
            Role::Router {
                accept_untracked_na: true,
                ..
            }
        )
    }

    fn is_attacker(&self) -> bool {
        matches!(
            self.role,
            Role::NsFlood { .. } | Role::RogueRa { .. } | Role::Malformed { .. }
        )
    }

    /// The link-local address (modified EUI-64 of the MAC).
    pub fn link_local(&self) -> Ipv6Addr {
        self.mac.link_local()
    }

    /// Addresses that passed DAD.
    pub fn preferred(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.addrs
            .iter()
            .filter(|a| a.state == AddrState::Preferred)
            .map(|a| a.addr)
    }

    /// The first preferred global address, else the first configured global address
    /// (what a name resolves to in pings and expectations).
    pub fn primary_global(&self) -> Option<Ipv6Addr> {
        self.preferred()
            .find(|a| !wire::is_link_local(*a))
            .or_else(|| self.configured_globals().into_iter().next())
    }

    fn configured_globals(&self) -> Vec<Ipv6Addr> {
        match &self.role {
            Role::Router { addresses, .. } | Role::Static { addresses } => addresses.clone(),
            Role::PrefixResponder { address, .. } => vec![*address],
            _ => self
                .addrs
                .iter()
                .map(|a| a.addr)
                .filter(|a| !wire::is_link_local(*a))
                .collect(),
        }
    }

    /// True if `addr` is ours and usable (the responder owns its whole prefix).
    fn owns(&self, addr: Ipv6Addr) -> bool {
        if let Role::PrefixResponder {
            prefix, exclude, ..
        } = &self.role
        {
            if prefix.contains(&addr) && !exclude.contains(&addr) && !self.tentative(addr) {
                return true;
            }
        }
        self.preferred().any(|a| a == addr)
    }

    /// True if a router forwards to `addr` (one of its off-link `routes`).
    fn routes_to(&self, addr: Ipv6Addr) -> bool {
        matches!(&self.role, Role::Router { routes, .. } if routes.iter().any(|r| r.contains(&addr)))
    }

    fn tentative(&self, addr: Ipv6Addr) -> bool {
        self.addrs
            .iter()
            .any(|a| a.addr == addr && matches!(a.state, AddrState::Tentative { .. }))
    }

    /// Attaches the host: addresses start DAD, RS or RA timers start (a fresh link, as
    /// after boot or a move: caches and routers are forgotten).
    pub fn start(&mut self, now: Instant) {
        self.up = true;
        self.neighbors.clear();
        self.routers.clear();
        self.onlink.clear();
        self.rs = None;
        self.router = RouterState::default();
        // A SLAAC host that moves or wakes keeps its addresses (configured_globals
        // lists them) and re-runs DAD on every one, as after a link change.
        let mut addrs = vec![self.link_local()];
        for a in self.configured_globals() {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        self.addrs.clear();
        for a in addrs {
            self.add_addr(now, a);
        }
        match &self.role {
            Role::Router { send_ras, .. } => {
                self.router.initial_left = INITIAL_RAS;
                // A router that sends no RA never answers an RS either (below).
                let first = now + self.rng.duration_below(MAX_RS_DELAY);
                self.router.next_unsolicited = send_ras.then_some(first);
            }
            Role::NsFlood { start, count, .. } => {
                self.attack_left = *count;
                self.attack_next = Some(Instant::ZERO + start.0.max(now - Instant::ZERO));
            }
            Role::RogueRa { start, .. } => {
                self.attack_left = u32::MAX;
                self.attack_next = Some(Instant::ZERO + start.0.max(now - Instant::ZERO));
            }
            Role::Malformed { start, count, .. } => {
                self.attack_left = *count;
                self.attack_next = Some(Instant::ZERO + start.0.max(now - Instant::ZERO));
            }
            Role::Slaac | Role::Static { .. } | Role::PrefixResponder { .. } => {
                self.rs = Some((0, now + self.rng.duration_below(MAX_RS_DELAY)));
            }
        }
    }

    /// Detaches the host: nothing in, nothing out, timers frozen.
    pub fn stop(&mut self) {
        self.up = false;
    }

    fn add_addr(&mut self, now: Instant, addr: Ipv6Addr) {
        let state = if self.dad_transmits == 0 || self.is_attacker() {
            AddrState::Preferred
        } else {
            AddrState::Tentative {
                sent: 0,
                next: now + self.rng.duration_below(MAX_RS_DELAY),
            }
        };
        self.addrs.push(HostAddr { addr, state });
    }

    /// Starts a ping to `dst` (`None`: the target had no address to ping).
    pub fn start_ping(&mut self, now: Instant, label: &str, dst: Option<Ipv6Addr>, count: u16) {
        let ident = 0x5100 + self.pings.len() as u16;
        let deadline =
            now + Duration::from_micros(
                PING_INTERVAL.total_micros() * u64::from(count.saturating_sub(1)),
            ) + PING_WAIT;
        if dst.is_none() {
            self.notes.push(format!("ping {label}: no address to ping"));
        }
        self.pings.push(PingRecord {
            label: label.to_owned(),
            dst,
            ident,
            count,
            sent: 0,
            received: 0,
            next_send: dst.map(|_| now),
            deadline,
            done: false,
        });
    }

    /// When `handle_timeout` must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.up {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for a in &self.addrs {
            if let AddrState::Tentative { next, .. } = a.state {
                take(Some(next));
            }
        }
        for n in self.neighbors.values() {
            take(match n.state {
                NState::Incomplete { next, .. } | NState::Probe { next, .. } => Some(next),
                NState::Reachable { until } | NState::Delay { until } => Some(until),
                NState::Stale => None,
            });
        }
        for p in &self.pings {
            if !p.done {
                take(p.next_send.or(Some(p.deadline)));
            }
        }
        take(self.rs.map(|(_, t)| t));
        take(self.router.next_unsolicited);
        take(self.router.pending_answer);
        take(self.attack_next);
        t
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.up {
            return;
        }
        self.dad_timers(now);
        self.neighbor_timers(now);
        self.ping_timers(now);
        if let Some((sent, at)) = self.rs {
            if at <= now {
                if sent < MAX_RS {
                    self.send_rs();
                    self.rs = Some((sent + 1, now + RS_INTERVAL));
                } else {
                    self.rs = None;
                }
            }
        }
        self.router_timers(now);
        if self.attack_next.is_some_and(|t| t <= now) {
            self.attack(now);
        }
    }

    fn dad_timers(&mut self, now: Instant) {
        for i in 0..self.addrs.len() {
            let AddrState::Tentative { sent, next } = self.addrs[i].state else {
                continue;
            };
            if next > now {
                continue;
            }
            let addr = self.addrs[i].addr;
            if sent < self.dad_transmits {
                let sn = wire::solicited_node(addr);
                let frame = wire::emit_nd(
                    self.mac,
                    Mac::ipv6_multicast(sn),
                    Ipv6Addr::UNSPECIFIED,
                    sn,
                    &NdMessage::NeighborSolicit { target_addr: addr },
                    &[],
                );
                self.tx.push(frame);
                self.addrs[i].state = AddrState::Tentative {
                    sent: sent + 1,
                    next: now + RETRANS,
                };
            } else {
                self.addrs[i].state = AddrState::Preferred;
                self.notes.push(format!("{addr} configured (DAD ok)"));
            }
        }
    }

    fn dad_failed(&mut self, addr: Ipv6Addr, why: &str) {
        if let Some(a) = self.addrs.iter_mut().find(|a| a.addr == addr) {
            a.state = AddrState::Duplicate;
        }
        self.dad_failures.push(addr);
        self.notes.push(format!("DAD failed for {addr}: {why}"));
    }

    fn neighbor_timers(&mut self, now: Instant) {
        let due: Vec<Ipv6Addr> = self
            .neighbors
            .iter()
            .filter(|(_, n)| match n.state {
                NState::Incomplete { next, .. } | NState::Probe { next, .. } => next <= now,
                NState::Reachable { until } | NState::Delay { until } => until <= now,
                NState::Stale => false,
            })
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            let Some(n) = self.neighbors.get(&addr) else {
                continue;
            };
            match n.state {
                NState::Incomplete { probes, .. } if probes < MAX_SOLICIT => {
                    self.send_ns(addr, None);
                    self.set_state(
                        addr,
                        NState::Incomplete {
                            probes: probes + 1,
                            next: now + RETRANS,
                        },
                    );
                }
                NState::Incomplete { .. } => {
                    self.neighbors.remove(&addr);
                    self.notes
                        .push(format!("address resolution failed for {addr}"));
                }
                NState::Reachable { .. } => self.set_state(addr, NState::Stale),
                NState::Delay { .. } => {
                    let mac = n.mac;
                    self.send_ns(addr, mac);
                    self.set_state(
                        addr,
                        NState::Probe {
                            probes: 1,
                            next: now + RETRANS,
                        },
                    );
                }
                NState::Probe { probes, .. } if probes < MAX_SOLICIT => {
                    let mac = n.mac;
                    self.send_ns(addr, mac);
                    self.set_state(
                        addr,
                        NState::Probe {
                            probes: probes + 1,
                            next: now + RETRANS,
                        },
                    );
                }
                NState::Probe { .. } => {
                    self.neighbors.remove(&addr);
                    self.notes
                        .push(format!("neighbor {addr} unreachable (NUD failed)"));
                }
                NState::Stale => {}
            }
        }
    }

    fn set_state(&mut self, addr: Ipv6Addr, state: NState) {
        if let Some(n) = self.neighbors.get_mut(&addr) {
            n.state = state;
        }
    }

    fn ping_timers(&mut self, now: Instant) {
        for i in 0..self.pings.len() {
            let p = &self.pings[i];
            if p.done {
                continue;
            }
            if let (Some(at), Some(dst)) = (p.next_send, p.dst) {
                if at <= now {
                    let (ident, seq) = (p.ident, p.sent);
                    let sent = p.sent + 1;
                    let more = sent < p.count;
                    self.pings[i].sent = sent;
                    self.pings[i].next_send = more.then(|| now + PING_INTERVAL);
                    self.send_echo(now, dst, false, ident, seq, b"ndprelay-sim-ping");
                }
            } else if p.deadline <= now {
                let p = &mut self.pings[i];
                p.done = true;
                let note = format!(
                    "ping {}: {}/{} replies{}",
                    p.label,
                    p.received,
                    p.sent,
                    if p.received == 0 {
                        " (unreachable)"
                    } else {
                        ""
                    }
                );
                self.notes.push(note);
            }
        }
    }

    fn router_timers(&mut self, now: Instant) {
        let Role::Router { ra_interval, .. } = &self.role else {
            return;
        };
        let interval = ra_interval.0;
        if self.router.next_unsolicited.is_some_and(|t| t <= now) {
            if !self.owns(self.link_local()) {
                // RFC 4861 §6.2.2: no RA from a tentative link-local; wait for DAD.
                self.router.next_unsolicited = Some(now + Duration::from_millis(100));
            } else {
                self.send_ra(now);
                let gap = if self.router.initial_left > 0 {
                    self.router.initial_left -= 1;
                    interval.min(INITIAL_RA_INTERVAL)
                } else {
                    self.rng.jitter(interval, 75, 100)
                };
                self.router.next_unsolicited = Some(now + gap);
            }
        }
        if self.router.pending_answer.is_some_and(|t| t <= now) {
            self.router.pending_answer = None;
            if self.owns(self.link_local()) {
                self.send_ra(now);
            }
        }
    }

    fn send_ra(&mut self, now: Instant) {
        let Role::Router {
            prefixes,
            router_lifetime,
            ..
        } = &self.role
        else {
            return;
        };
        let mut options = vec![OptionRepr::SourceLla(self.mac), OptionRepr::Mtu(1500)];
        options.extend(prefixes.iter().map(|p| {
            OptionRepr::PrefixInfo(PrefixInfo {
                prefix_len: p.prefix_len(),
                on_link: true,
                autonomous: true,
                valid_lifetime: 2_592_000,
                preferred_lifetime: 604_800,
                prefix: p.network(),
            })
        }));
        let message = NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::empty(),
            router_lifetime: *router_lifetime,
            reachable_time: 0,
            retrans_timer: 0,
        });
        let frame = wire::emit_nd(
            self.mac,
            Mac::ipv6_multicast(ALL_NODES),
            self.link_local(),
            ALL_NODES,
            &message,
            &options,
        );
        self.tx.push(frame);
        self.router.last_multicast = Some(now);
    }

    fn send_rs(&mut self) {
        let ll = self.link_local();
        // RFC 4861 §6.3.7: the unspecified source (no SLLA) while the link-local is
        // still tentative.
        let (src, options) = if self.owns(ll) {
            (ll, vec![OptionRepr::SourceLla(self.mac)])
        } else {
            (Ipv6Addr::UNSPECIFIED, vec![])
        };
        let frame = wire::emit_nd(
            self.mac,
            Mac::ipv6_multicast(ALL_ROUTERS),
            src,
            ALL_ROUTERS,
            &NdMessage::RouterSolicit,
            &options,
        );
        self.tx.push(frame);
    }

    /// Multicast NS for resolution (`mac == None`) or unicast NS for NUD.
    fn send_ns(&mut self, target: Ipv6Addr, mac: Option<Mac>) {
        let src = self.source_for(target);
        let (dst, eth_dst) = match mac {
            Some(m) => (target, m),
            None => {
                let sn = wire::solicited_node(target);
                (sn, Mac::ipv6_multicast(sn))
            }
        };
        let frame = wire::emit_nd(
            self.mac,
            eth_dst,
            src,
            dst,
            &NdMessage::NeighborSolicit {
                target_addr: target,
            },
            &[OptionRepr::SourceLla(self.mac)],
        );
        self.tx.push(frame);
    }

    /// Source address for a packet to `dst` (RFC 6724, reduced to scope matching).
    fn source_for(&self, dst: Ipv6Addr) -> Ipv6Addr {
        if wire::is_link_local(dst) || dst.is_multicast() {
            return self.link_local();
        }
        if let Role::PrefixResponder { address, .. } = &self.role {
            return *address;
        }
        self.preferred()
            .find(|a| !wire::is_link_local(*a))
            .unwrap_or_else(|| self.link_local())
    }

    /// Next hop for `dst` (RFC 4861 §5.2), `None` without a route.
    fn next_hop(&self, now: Instant, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        if wire::is_link_local(dst) {
            return Some(dst);
        }
        let own_prefixes: Vec<Ipv6Net> = match &self.role {
            Role::Router { prefixes, .. } => prefixes.clone(),
            Role::PrefixResponder { prefix, .. } => vec![*prefix],
            // `ip addr add ADDR/64` puts the /64 on-link, RA or not.
            Role::Static { addresses } => addresses
                .iter()
                .filter_map(|a| Ipv6Net::new(*a, 64).ok().map(|n| n.trunc()))
                .collect(),
            _ => vec![],
        };
        if own_prefixes.iter().any(|p| p.contains(&dst))
            || self
                .onlink
                .iter()
                .any(|(p, until)| *until > now && p.contains(&dst))
        {
            return Some(dst);
        }
        self.routers
            .iter()
            .find(|(_, until)| **until > now)
            .map(|(r, _)| *r)
    }

    fn send_echo(
        &mut self,
        now: Instant,
        dst: Ipv6Addr,
        reply: bool,
        ident: u16,
        seq: u16,
        data: &[u8],
    ) {
        self.send_echo_from(now, self.source_for(dst), dst, reply, ident, seq, data);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_echo_from(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        reply: bool,
        ident: u16,
        seq: u16,
        data: &[u8],
    ) {
        let Some(hop) = self.next_hop(now, dst) else {
            self.notes.push(format!("no route to {dst}"));
            return;
        };
        let frame =
            wire::emit_icmpv6_echo(self.mac, Mac::BROADCAST, src, dst, reply, ident, seq, data);
        self.send_via(now, hop, frame);
    }

    /// Sends `frame` (whose Ethernet destination is a placeholder) to the neighbor `hop`,
    /// resolving it first if needed (RFC 4861 §7.2.2, §7.3.3).
    fn send_via(&mut self, now: Instant, hop: Ipv6Addr, mut frame: Vec<u8>) {
        match self.neighbors.get_mut(&hop) {
            Some(n) => match (n.state, n.mac) {
                (NState::Incomplete { .. }, _) | (_, None) => {
                    if n.queue.len() < QUEUE_PER_NEIGHBOR {
                        n.queue.push(frame);
                    }
                }
                (state, Some(mac)) => {
                    if state == NState::Stale {
                        n.state = NState::Delay {
                            until: now + DELAY_FIRST_PROBE,
                        };
                    }
                    frame[..6].copy_from_slice(&mac.0);
                    self.tx.push(frame);
                }
            },
            None => {
                self.neighbors.insert(
                    hop,
                    Neighbor {
                        mac: None,
                        state: NState::Incomplete {
                            probes: 1,
                            next: now + RETRANS,
                        },
                        queue: vec![frame],
                    },
                );
                self.send_ns(hop, None);
            }
        }
    }

    /// Learns `mac` for `addr` from an NS/RS/RA source option (RFC 4861 §7.2.3, §6.3.4).
    fn learn(&mut self, addr: Ipv6Addr, mac: Mac) {
        let n = self.neighbors.entry(addr).or_insert(Neighbor {
            mac: None,
            state: NState::Stale,
            queue: Vec::new(),
        });
        if n.mac != Some(mac) {
            n.mac = Some(mac);
            n.state = NState::Stale;
        }
        self.flush(addr);
    }

    fn flush(&mut self, addr: Ipv6Addr) {
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return;
        };
        let Some(mac) = n.mac else {
            return;
        };
        for mut frame in std::mem::take(&mut n.queue) {
            frame[..6].copy_from_slice(&mac.0);
            self.tx.push(frame);
        }
    }

    fn listens(&self, dst: Ipv6Addr) -> bool {
        if dst == ALL_NODES || (dst == ALL_ROUTERS && self.is_router()) {
            return true;
        }
        if wire::is_solicited_node(dst) {
            if matches!(self.role, Role::PrefixResponder { .. }) {
                return true;
            }
            return self
                .addrs
                .iter()
                .any(|a| a.state != AddrState::Duplicate && wire::solicited_node(a.addr) == dst);
        }
        self.owns(dst) || self.tentative(dst)
    }

    /// Receives one frame; returns true if the host's stack accepted it.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> bool {
        if !self.up || self.is_attacker() || frame.len() < 14 {
            return false;
        }
        let eth_dst = Mac(frame[..6].try_into().unwrap_or_default());
        if eth_dst != self.mac && !eth_dst.is_multicast() {
            return false;
        }
        match wire::parse_frame(frame) {
            Ok(Parsed::Nd(nd)) => {
                if !self.listens(nd.dst_addr) {
                    return false;
                }
                self.handle_nd(now, &nd);
                true
            }
            Ok(Parsed::Data(data)) => {
                if !self.owns(data.dst_addr) && !self.routes_to(data.dst_addr) {
                    return false;
                }
                self.handle_data(now, data.src_addr, data.dst_addr, data.packet);
                true
            }
            Ok(Parsed::NotIpv6) | Err(_) => false,
        }
    }

    fn handle_nd(&mut self, now: Instant, nd: &wire::NdPacket<'_>) {
        match nd.message {
            NdMessage::NeighborSolicit { target_addr } => {
                if self.tentative(target_addr) {
                    if nd.src_addr.is_unspecified() {
                        self.dad_failed(target_addr, "another node probes it (DAD NS)");
                    }
                    return;
                }
                if !self.owns(target_addr) {
                    return;
                }
                if !nd.src_addr.is_unspecified() {
                    if let Some(mac) = nd.slla {
                        self.learn(nd.src_addr, mac);
                    }
                }
                let mut flags = NaFlags::OVERRIDE;
                flags.set(NaFlags::ROUTER, self.is_router());
                flags.set(NaFlags::SOLICITED, !nd.src_addr.is_unspecified());
                let (dst, eth_dst) = if nd.src_addr.is_unspecified() {
                    (ALL_NODES, Some(Mac::ipv6_multicast(ALL_NODES)))
                } else {
                    let mac = nd
                        .slla
                        .or_else(|| self.neighbors.get(&nd.src_addr).and_then(|n| n.mac));
                    (nd.src_addr, mac)
                };
                let frame = wire::emit_nd(
                    self.mac,
                    eth_dst.unwrap_or(Mac::BROADCAST),
                    target_addr,
                    dst,
                    &NdMessage::NeighborAdvert { flags, target_addr },
                    &[OptionRepr::TargetLla(self.mac)],
                );
                if eth_dst.is_some() {
                    self.tx.push(frame);
                } else {
                    // Unicast NS without SLLA: resolve the solicitor first (§7.2.4).
                    self.send_via(now, nd.src_addr, frame);
                }
            }
            NdMessage::NeighborAdvert { flags, target_addr } => {
                if self.tentative(target_addr) {
                    self.dad_failed(target_addr, "a neighbor advertises it");
                    return;
                }
                if self.owns(target_addr) {
                    self.notes
                        .push(format!("{target_addr} is advertised by {:?} too", nd.tlla));
                    return;
                }
                self.handle_na(now, target_addr, flags, nd.tlla);
            }
            NdMessage::RouterSolicit => {
                if !self.is_router() {
                    return;
                }
                if let (false, Some(mac)) = (nd.src_addr.is_unspecified(), nd.slla) {
                    self.learn(nd.src_addr, mac);
                }
                let silent = matches!(
                    self.role,
                    Role::Router {
                        send_ras: false,
                        ..
                    }
                );
                if self.router.pending_answer.is_none() && !silent {
                    let mut at = now + self.rng.duration_below(MAX_RA_DELAY);
                    if let Some(last) = self.router.last_multicast {
                        at = at.max(last + MIN_DELAY_BETWEEN_RAS);
                    }
                    self.router.pending_answer = Some(at);
                }
            }
            NdMessage::RouterAdvert(ra) => {
                if self.is_router() {
                    return;
                }
                self.handle_ra(now, nd, ra);
            }
            NdMessage::Redirect { .. } => {}
        }
    }

    /// RFC 4861 §7.2.5: NA processing for a neighbor cache entry.
    fn handle_na(&mut self, now: Instant, target: Ipv6Addr, flags: NaFlags, tlla: Option<Mac>) {
        let reachable_until = now + self.reachable;
        let Some(n) = self.neighbors.get_mut(&target) else {
            if let (true, Some(mac)) = (self.accepts_untracked_na(), tlla) {
                self.learn(target, mac);
            }
            return;
        };
        match n.state {
            NState::Incomplete { .. } => {
                let Some(mac) = tlla else {
                    return;
                };
                n.mac = Some(mac);
                n.state = if flags.contains(NaFlags::SOLICITED) {
                    NState::Reachable {
                        until: reachable_until,
                    }
                } else {
                    NState::Stale
                };
                self.flush(target);
            }
            _ => {
                let differs = tlla.is_some_and(|m| Some(m) != n.mac);
                if !flags.contains(NaFlags::OVERRIDE) && differs {
                    if matches!(n.state, NState::Reachable { .. }) {
                        n.state = NState::Stale;
                    }
                    return;
                }
                if let Some(m) = tlla {
                    n.mac = Some(m);
                }
                if flags.contains(NaFlags::SOLICITED) {
                    n.state = NState::Reachable {
                        until: reachable_until,
                    };
                } else if differs {
                    n.state = NState::Stale;
                }
            }
        }
    }

    fn handle_ra(&mut self, now: Instant, nd: &wire::NdPacket<'_>, ra: RouterAdvert) {
        self.rs = None;
        if let Some(mac) = nd.slla {
            self.learn(nd.src_addr, mac);
        }
        if ra.router_lifetime == 0 {
            self.routers.remove(&nd.src_addr);
        } else {
            let fresh = !self.routers.contains_key(&nd.src_addr);
            self.routers.insert(
                nd.src_addr,
                now + Duration::from_secs(u64::from(ra.router_lifetime)),
            );
            if fresh {
                self.notes.push(format!("default router {}", nd.src_addr));
            }
        }
        if ra.reachable_time != 0 {
            let base = Duration::from_millis(u64::from(ra.reachable_time));
            self.reachable = self.rng.jitter(base, 50, 150);
        }
        let slaac = matches!(self.role, Role::Slaac);
        for opt in nd.options() {
            let NdOption::PrefixInfo(pi) = opt else {
                continue;
            };
            let Ok(net) = Ipv6Net::new(pi.prefix, pi.prefix_len) else {
                continue;
            };
            if pi.on_link && pi.valid_lifetime > 0 {
                self.onlink.insert(
                    net.trunc(),
                    now + Duration::from_secs(u64::from(pi.valid_lifetime)),
                );
            }
            // RFC 4862 §5.5.3: /64 (with a 64-bit interface identifier), A set,
            // preferred <= valid, not link-local.
            if slaac
                && pi.autonomous
                && pi.prefix_len == 64
                && pi.valid_lifetime > 0
                && pi.preferred_lifetime <= pi.valid_lifetime
                && !wire::is_link_local(pi.prefix)
            {
                let addr = slaac_addr(net.trunc(), self.link_local());
                if !self.addrs.iter().any(|a| a.addr == addr) {
                    self.notes
                        .push(format!("forms {addr} from {}", net.trunc()));
                    self.add_addr(now, addr);
                }
            }
        }
    }

    fn handle_data(&mut self, now: Instant, src: Ipv6Addr, dst: Ipv6Addr, packet: &[u8]) {
        let Some((reply, ident, seq, data)) = echo_fields(packet) else {
            return;
        };
        if reply {
            if let Some(p) = self
                .pings
                .iter_mut()
                .find(|p| p.ident == ident && !p.done && seq < p.sent)
            {
                p.received += 1;
            }
        } else {
            let data = data.to_vec();
            self.send_echo_from(now, dst, src, true, ident, seq, &data);
        }
    }

    fn attack(&mut self, now: Instant) {
        if self.attack_left == 0 {
            self.attack_next = None;
            return;
        }
        self.attack_left -= 1;
        self.attack_index += 1;
        let ll = self.link_local();
        match self.role.clone() {
            Role::NsFlood {
                prefix,
                rate,
                random_source,
                ..
            } => {
                let target = random_in(prefix, &mut self.rng);
                let src = if random_source {
                    random_in(prefix, &mut self.rng)
                } else {
                    ll
                };
                let sn = wire::solicited_node(target);
                let frame = wire::emit_nd(
                    self.mac,
                    Mac::ipv6_multicast(sn),
                    src,
                    sn,
                    &NdMessage::NeighborSolicit {
                        target_addr: target,
                    },
                    &[OptionRepr::SourceLla(self.mac)],
                );
                self.tx.push(frame);
                let gap = 1_000_000 / u64::from(rate.max(1));
                self.attack_next = Some(now + Duration::from_micros(gap.max(1)));
            }
            Role::RogueRa {
                prefix, interval, ..
            } => {
                let message = NdMessage::RouterAdvert(RouterAdvert {
                    cur_hop_limit: 64,
                    flags: RaFlags::empty(),
                    router_lifetime: 1800,
                    reachable_time: 0,
                    retrans_timer: 0,
                });
                let options = [
                    OptionRepr::SourceLla(self.mac),
                    OptionRepr::PrefixInfo(PrefixInfo {
                        prefix_len: prefix.prefix_len(),
                        on_link: true,
                        autonomous: true,
                        valid_lifetime: 2_592_000,
                        preferred_lifetime: 604_800,
                        prefix: prefix.network(),
                    }),
                ];
                let frame = wire::emit_nd(
                    self.mac,
                    Mac::ipv6_multicast(ALL_NODES),
                    ll,
                    ALL_NODES,
                    &message,
                    &options,
                );
                self.tx.push(frame);
                self.attack_next = Some(now + interval.0);
            }
            Role::Malformed { interval, .. } => {
                let frame = malformed_frame(self.attack_index, self.mac, ll);
                self.tx.push(frame);
                self.attack_next = Some(now + interval.0);
            }
            _ => self.attack_next = None,
        }
    }
}

/// The SLAAC address: the /64 prefix plus the link-local's interface identifier.
fn slaac_addr(prefix: Ipv6Net, link_local: Ipv6Addr) -> Ipv6Addr {
    let p = prefix.network().octets();
    let l = link_local.octets();
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(&p[..8]);
    o[8..].copy_from_slice(&l[8..]);
    Ipv6Addr::from(o)
}

fn random_in(prefix: Ipv6Net, rng: &mut Rng) -> Ipv6Addr {
    let host_bits = 128 - u32::from(prefix.prefix_len());
    let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    Ipv6Addr::from((u128::from(prefix.network()) & !mask) | (r & mask))
}

/// Echo fields of an IPv6 packet: (is reply, identifier, sequence, data).
pub fn echo_fields(packet: &[u8]) -> Option<(bool, u16, u16, &[u8])> {
    use etherparse::{Icmpv6Slice, Icmpv6Type, IpNumber, Ipv6Slice};
    let ip = Ipv6Slice::from_slice(packet).ok()?;
    if ip.payload().ip_number != IpNumber::IPV6_ICMP {
        return None;
    }
    let icmp = Icmpv6Slice::from_slice(ip.payload().payload).ok()?;
    match icmp.icmp_type() {
        Icmpv6Type::EchoRequest(h) => Some((false, h.id, h.seq, icmp.payload())),
        Icmpv6Type::EchoReply(h) => Some((true, h.id, h.seq, icmp.payload())),
        _ => None,
    }
}

/// The `n`th frame of the malformed-frame script (NDP reference §5 rows 1, 2, 3, 7,
/// 11, 13): valid NS frames built with `crate::wire`, then broken one field at a time.
fn malformed_frame(n: u32, mac: Mac, src: Ipv6Addr) -> Vec<u8> {
    let target = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xbad, n as u16);
    let sn = wire::solicited_node(target);
    let build = |options: &[OptionRepr]| {
        wire::emit_nd(
            mac,
            Mac::ipv6_multicast(sn),
            src,
            sn,
            &NdMessage::NeighborSolicit {
                target_addr: target,
            },
            options,
        )
    };
    // 86 bytes: Ethernet 14, IPv6 40, NS 24, SLLA 8 — every offset below is inside it.
    let mut f = build(&[OptionRepr::SourceLla(mac)]);
    // Offsets: IPv6 Hop Limit at 14+7, ICMPv6 at 54 (code 55, csum 56..58), target
    // 62..78, SLLA option type 78 and length 79.
    let fix_checksum = |f: &mut Vec<u8>| {
        f[56] = 0;
        f[57] = 0;
        let c = wire::icmpv6_checksum(src, sn, &f[54..]);
        f[56..58].copy_from_slice(&c.to_be_bytes());
    };
    match n % 6 {
        0 => f[21] = 254,
        1 => {
            f[55] = 1;
            fix_checksum(&mut f);
        }
        2 => f[57] ^= 0xff,
        3 => {
            // Multicast target ff02::1.
            f[62..78].copy_from_slice(&ALL_NODES.octets());
            fix_checksum(&mut f);
        }
        4 => {
            // SLLA option with length 0.
            f[79] = 0;
            fix_checksum(&mut f);
        }
        _ => {
            // A stray byte after the options: Payload Length + 1.
            f.push(0);
            let plen = u16::from_be_bytes([f[18], f[19]]) + 1;
            f[18..20].copy_from_slice(&plen.to_be_bytes());
            fix_checksum(&mut f);
        }
    }
    f
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn slaac_address_uses_the_eui64_interface_id() {
        let mac = Mac([0x02, 0, 0, 0, 0, 0x10]);
        let p: Ipv6Net = "2001:db8:1::/64".parse().expect("valid prefix");
        assert_eq!(
            slaac_addr(p, mac.link_local()),
            "2001:db8:1::ff:fe00:10".parse::<Ipv6Addr>().expect("valid")
        );
    }

    #[test]
    fn random_addresses_stay_inside_the_prefix() {
        let mut rng = Rng::for_stream(3, 0);
        let p: Ipv6Net = "2001:db8:1::/64".parse().expect("valid prefix");
        let a = random_in(p, &mut rng);
        let b = random_in(p, &mut rng);
        assert!(p.contains(&a) && p.contains(&b));
        assert_ne!(a, b);
    }
}
