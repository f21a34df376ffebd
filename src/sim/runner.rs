//! The runner: a virtual clock that jumps to the earliest deadline of the event queue,
//! the hosts and the engines, and moves frames between them over the segments.
//!
//! One step: deliver every queued item due now (frames in flight, scenario events),
//! then run every host and engine timer due now. Each engine is driven by the
//! documented convention: after every `handle_*`, drain `poll_action` until `None`.
//! Ties are broken by insertion order, so a run is a pure function of the scenario and
//! the seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt;
use std::net::Ipv6Addr;
use std::path::Path;

use super::SimError;
use super::host::Host;
use super::link::{FrameInfo, Segment, classify};
use super::output::Timeline;
use super::scenario::{Action as ScenarioAction, RelaySpec, Scenario, port_segments};
use crate::config::{Config, ResolvedPort};
use crate::engine::{
    Action, DataPlane, Engine, EngineConfig, Event, EventNames, LinkEvent, PortId, RouteUpdate,
};
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::wire::Mac;

/// Time a frame takes across a segment.
const LATENCY: Duration = Duration::from_micros(50);
/// Frames after which a run is cut short (a storm the relay failed to stop).
const MAX_FRAMES: u64 = 2_000_000;
/// Steps at one instant after which a run is cut short (a timer that never advances).
const MAX_STEPS_PER_INSTANT: u32 = 100_000;

/// The MAC of relay `relay`'s port `port` when the scenario gives none.
pub(crate) fn auto_relay_mac(relay: usize, port: usize) -> Mac {
    Mac([0x02, 0x52, 0, relay as u8, 0, port as u8])
}

/// Bytes from hex text (whitespace, `:` and `-` ignored); `None` if not whole bytes.
pub(crate) fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':' && *b != b'-')
        .collect();
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Who put a frame on a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A simulated host.
    Host(usize),
    /// A relay port.
    Relay(usize, PortId),
    /// An `Inject` event.
    Injector,
    /// A real TAP device attached to the segment.
    Tap(usize),
}

/// One relay port.
#[derive(Debug, Clone)]
pub struct RelayPort {
    /// Segment index.
    pub segment: usize,
    /// Carrier.
    pub up: bool,
    /// MAC.
    pub mac: Mac,
}

/// A relay: the real engine on simulated ports.
#[derive(Debug)]
pub struct RelayNode {
    /// Name.
    pub name: String,
    /// The engine.
    pub engine: Engine,
    /// Ports in `PortId` order.
    pub ports: Vec<RelayPort>,
    bound: BTreeMap<Ipv6Addr, PortId>,
    /// Most bindings held at once (from binding events).
    pub peak_bindings: usize,
    /// The /128 routes the relay holds (with `kernel_routes`): those it installed and
    /// those an earlier run left, until removed.
    pub routes: BTreeMap<Ipv6Addr, PortId>,
}

/// One ND frame for the diagram: who sent it where, and who took it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When it was sent.
    pub at: Instant,
    /// Segment.
    pub segment: usize,
    /// Sender.
    pub from: Endpoint,
    /// Endpoints whose stack accepted it.
    pub to: Vec<Endpoint>,
    /// Short label (`NS`, `NA`, ...).
    pub label: String,
    /// IPv6 source and destination with the label: equal keys from one sender to the
    /// same receivers are repeats of one exchange (the diagram folds them).
    pub key: String,
}

#[derive(Debug)]
enum Item {
    Deliver {
        segment: usize,
        from: Endpoint,
        frame: Vec<u8>,
        exchange: Option<usize>,
    },
    Scenario(usize),
    Inject {
        segment: usize,
        frame: Vec<u8>,
    },
}

/// Everything in a run.
pub struct World<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Virtual now.
    pub now: Instant,
    /// End of the run.
    pub end: Instant,
    /// Segments.
    pub segments: Vec<Segment>,
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Each host's `poll_timeout`, refreshed whenever the runner touched the host (in
    /// `flush_host`): a router with a thousand neighbours is not rescanned every step.
    host_deadlines: Vec<Option<Instant>>,
    /// Every address each host ever held (for "sent by host" matching).
    pub host_addrs: Vec<BTreeSet<Ipv6Addr>>,
    /// Relays.
    pub relays: Vec<RelayNode>,
    /// The timeline being written.
    pub timeline: Timeline,
    /// ND exchanges, when the diagram is wanted.
    pub exchanges: Option<Vec<Exchange>>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// Frames put on all segments.
    pub total_frames: u64,
    /// TAP devices attached to segments.
    #[cfg(feature = "tap")]
    pub taps: Vec<super::tap::TapPort>,
    #[cfg(feature = "tap")]
    wall_start: Option<std::time::Instant>,
    seed: u64,
    base_dir: &'a Path,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: HashMap<u64, Item>,
    next_seq: u64,
    mac_names: BTreeMap<Mac, String>,
    /// The routes through each routed segment now (the relay hosts' main tables).
    routed_routes: BTreeMap<String, BTreeSet<ipnet::Ipv6Net>>,
}

/// Builds the engine config of relay `index` from its config, the way the daemon does
/// (`Config::engine_config`), with the simulated ports resolved: MACs from the scenario
/// or `02:52:00:RR:00:PP`, EUI-64 link-locals, MTU 1500. The simulator uses the
/// userspace data plane (no kernel) unless the relay asks for `kernel_routes`, emits
/// events for the timeline and takes the scenario's seed. A port on one of the
/// scenario's routed segments is a routed port.
pub fn engine_config(
    index: usize,
    spec: &RelaySpec,
    config: &Config,
    seed: u64,
    scenario: &Scenario,
) -> Result<EngineConfig, SimError> {
    let resolved: Vec<ResolvedPort> = port_segments(config)
        .enumerate()
        .map(|(pi, seg)| {
            let mac = spec
                .macs
                .get(seg)
                .map_or_else(|| auto_relay_mac(index, pi), |m| m.mac);
            ResolvedPort {
                name: seg.to_owned(),
                mac,
                link_local: mac.link_local(),
                mtu: 1500,
                routed: scenario.is_routed_segment(seg),
            }
        })
        .collect();
    let mut ec = config
        .engine_config(&resolved)
        .map_err(|e| SimError::Relay {
            relay: spec.name.clone(),
            message: e.to_string(),
        })?;
    ec.data_plane = if spec.kernel_routes {
        DataPlane::KernelRoutes
    } else {
        DataPlane::Userspace
    };
    ec.emit_events = true;
    // No kernel in the lab: the relay answers for its own link-locals itself.
    ec.answer_own_link_local = true;
    ec.seed = seed ^ (index as u64).wrapping_mul(0x1000_0000_01b3);
    Ok(ec)
}

impl<'a> World<'a> {
    /// Sets up segments, hosts and relays at time zero.
    pub fn new(
        scenario: &'a Scenario,
        seed: u64,
        capture: bool,
        diagram: bool,
        base_dir: &'a Path,
    ) -> Result<Self, SimError> {
        // Routed segments come after the others: no frame is ever put on them.
        let names: Vec<&str> = scenario
            .segments
            .iter()
            .map(String::as_str)
            .chain(scenario.routed_segments.iter().map(|r| r.name.as_str()))
            .collect();
        let seg_index: BTreeMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let segments = names.iter().map(|s| Segment::new(s, capture)).collect();
        let mut mac_names = BTreeMap::new();
        let hosts: Vec<Host> = scenario
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                mac_names.insert(h.mac.mac, h.name.clone());
                // Validation guarantees the segment exists.
                let seg = seg_index.get(h.segment.as_str()).copied().unwrap_or(0);
                Host::new(h, seg, Rng::for_stream(seed, i as u64 + 1))
            })
            .collect();
        let mut relays = Vec::new();
        for (ri, spec) in scenario.relays.iter().enumerate() {
            let relay_config = spec.config.get().ok_or_else(|| SimError::Relay {
                relay: spec.name.clone(),
                message: "config not validated".into(),
            })?;
            let config = engine_config(ri, spec, relay_config, seed, scenario)?;
            let ports: Vec<RelayPort> = config
                .ports
                .iter()
                .map(|p| RelayPort {
                    segment: seg_index.get(p.name.as_str()).copied().unwrap_or(0),
                    up: true,
                    mac: p.mac,
                })
                .collect();
            for p in &config.ports {
                mac_names.insert(p.mac, format!("{}/{}", spec.name, p.name));
            }
            let names: Vec<String> = config.ports.iter().map(|p| p.name.clone()).collect();
            let mut engine = Engine::new(config, Instant::ZERO).map_err(|e| SimError::Relay {
                relay: spec.name.clone(),
                message: e.to_string(),
            })?;
            // A restarted relay: the routes its earlier run left, as the daemon finds
            // them (validation checked each names one of the relay's ports).
            let leftover: Vec<(Ipv6Addr, PortId)> = spec
                .leftover_routes
                .iter()
                .filter_map(|(addr, seg)| {
                    let i = names.iter().position(|n| n == seg)?;
                    Some((*addr, PortId(u16::try_from(i).ok()?)))
                })
                .collect();
            let routes = leftover.iter().copied().collect();
            if !leftover.is_empty() {
                engine.adopt_routes(Instant::ZERO, &leftover);
            }
            relays.push(RelayNode {
                name: spec.name.clone(),
                engine,
                ports,
                bound: BTreeMap::new(),
                peak_bindings: 0,
                routes,
            });
        }
        let end = Instant::ZERO + scenario.duration.0;
        let mut world = Self {
            scenario,
            now: Instant::ZERO,
            end,
            segments,
            host_addrs: vec![BTreeSet::new(); hosts.len()],
            host_deadlines: vec![None; hosts.len()],
            hosts,
            relays,
            timeline: Timeline::default(),
            exchanges: diagram.then(Vec::new),
            aborted: None,
            total_frames: 0,
            #[cfg(feature = "tap")]
            taps: Vec::new(),
            #[cfg(feature = "tap")]
            wall_start: None,
            seed,
            base_dir,
            heap: BinaryHeap::new(),
            items: HashMap::new(),
            next_seq: 0,
            mac_names,
            routed_routes: scenario
                .routed_segments
                .iter()
                .map(|r| (r.name.clone(), r.routes.iter().copied().collect()))
                .collect(),
        };
        for r in 0..world.relays.len() {
            world.feed_routes(r);
        }
        for (i, e) in scenario.events.iter().enumerate() {
            world.schedule(Instant::ZERO + e.at.0, Item::Scenario(i));
        }
        Ok(world)
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Name of a MAC for the timeline.
    pub fn mac_name(&self, mac: Mac) -> String {
        self.mac_names
            .get(&mac)
            .cloned()
            .unwrap_or_else(|| mac.to_string())
    }

    /// Name of an endpoint.
    pub fn endpoint_name(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Host(i) => self.hosts[i].name.clone(),
            Endpoint::Relay(r, p) => format!("{}/{}", self.relays[r].name, self.port_name(r, p)),
            Endpoint::Injector => "inject".to_owned(),
            Endpoint::Tap(i) => self.tap_name(i),
        }
    }

    #[cfg(feature = "tap")]
    fn tap_name(&self, i: usize) -> String {
        self.taps
            .get(i)
            .map_or_else(|| format!("tap{i}"), |t| format!("tap:{}", t.name))
    }

    #[cfg(not(feature = "tap"))]
    fn tap_name(&self, i: usize) -> String {
        format!("tap{i}")
    }

    /// With TAP devices attached: waits (on the wall clock) until virtual time `t`,
    /// putting frames from the devices on their segments as they come. Returns false if
    /// frames arrived (the caller recomputes the next deadline).
    #[cfg(feature = "tap")]
    fn pace(&mut self, t: Instant) -> bool {
        if self.taps.is_empty() {
            return true;
        }
        let start = *self.wall_start.get_or_insert_with(std::time::Instant::now);
        loop {
            let wall = Instant::ZERO + Duration::from(start.elapsed());
            let mut arrived = Vec::new();
            for (i, tap) in self.taps.iter().enumerate() {
                for frame in tap.recv_all() {
                    arrived.push((i, tap.segment, frame));
                }
            }
            if !arrived.is_empty() {
                self.now = self.now.max(wall.min(t));
                for (i, seg, frame) in arrived {
                    self.transmit(seg, Endpoint::Tap(i), frame);
                }
                return false;
            }
            if wall >= t {
                return true;
            }
            let left = std::time::Duration::from(t - wall);
            std::thread::sleep(left.min(std::time::Duration::from_millis(1)));
        }
    }

    #[cfg(not(feature = "tap"))]
    fn pace(&mut self, _t: Instant) -> bool {
        true
    }

    fn schedule(&mut self, at: Instant, item: Item) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.items.insert(seq, item);
        self.heap.push(Reverse((at, seq)));
    }

    /// True if TAP devices are attached (real time, not virtual).
    fn tapped(&self) -> bool {
        #[cfg(feature = "tap")]
        return !self.taps.is_empty();
        #[cfg(not(feature = "tap"))]
        false
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut t = self.heap.peek().map(|Reverse((t, _))| *t);
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for d in &self.host_deadlines {
            take(*d);
        }
        for r in &self.relays {
            take(r.engine.poll_timeout());
        }
        t
    }

    /// Runs the scenario to its end (or until a storm or stuck timer cuts it short).
    pub fn run(&mut self) -> Result<(), SimError> {
        for r in 0..self.relays.len() {
            self.drain(r);
        }
        for i in 0..self.hosts.len() {
            if self.scenario.hosts[i].up {
                self.hosts[i].start(Instant::ZERO);
                self.note_host(i, format!("joins as {}", self.hosts[i].role.name()));
                self.flush_host(i);
            }
        }
        let mut steps_here = 0u32;
        while let Some(t) = self.next_deadline().or(self.tapped().then_some(self.end)) {
            if t > self.end {
                if self.tapped() && self.now < self.end {
                    // Nothing simulated is due; keep listening to the devices.
                    self.pace(self.end);
                }
                break;
            }
            if !self.pace(t) {
                continue;
            }
            if t <= self.now {
                steps_here += 1;
                if steps_here > MAX_STEPS_PER_INSTANT {
                    self.aborted = Some(format!("timers stuck at {}", self.now));
                    break;
                }
            } else {
                steps_here = 0;
                self.now = t;
            }
            self.step()?;
            if self.total_frames > MAX_FRAMES {
                self.aborted = Some(format!(
                    "more than {MAX_FRAMES} frames by {}: storm",
                    self.now
                ));
                break;
            }
        }
        if self.aborted.is_none() {
            self.now = self.end;
        }
        if let Some(why) = self.aborted.clone() {
            self.timeline
                .line(self.now, "-", &format!("run cut short: {why}"));
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), SimError> {
        let now = self.now;
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(item) = self.items.remove(&seq) {
                self.process(item)?;
            }
        }
        for i in 0..self.hosts.len() {
            if self.host_deadlines[i].is_some_and(|t| t <= now) {
                self.hosts[i].handle_timeout(now);
                self.flush_host(i);
            }
        }
        for r in 0..self.relays.len() {
            if self.relays[r]
                .engine
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.relays[r].engine.handle_timeout(now);
                self.drain(r);
            }
        }
        Ok(())
    }

    fn process(&mut self, item: Item) -> Result<(), SimError> {
        match item {
            Item::Deliver {
                segment,
                from,
                frame,
                exchange,
            } => self.deliver(segment, from, &frame, exchange),
            Item::Inject { segment, frame } => self.transmit(segment, Endpoint::Injector, frame),
            Item::Scenario(i) => self.scenario_event(i)?,
        }
        Ok(())
    }

    fn deliver(&mut self, segment: usize, from: Endpoint, frame: &[u8], exchange: Option<usize>) {
        let now = self.now;
        let mut accepted = Vec::new();
        for i in 0..self.hosts.len() {
            let h = &mut self.hosts[i];
            if h.segment != segment || !h.up || from == Endpoint::Host(i) {
                continue;
            }
            if h.handle_frame(now, frame) {
                accepted.push(Endpoint::Host(i));
            }
            self.flush_host(i);
        }
        for r in 0..self.relays.len() {
            for p in 0..self.relays[r].ports.len() {
                let port = &self.relays[r].ports[p];
                let id = PortId(p as u16);
                if port.segment != segment || !port.up || from == Endpoint::Relay(r, id) {
                    continue;
                }
                if self.forward_into_routed(r, p, frame) {
                    accepted.push(Endpoint::Relay(r, id));
                    continue;
                }
                self.relays[r].engine.handle_frame(now, id, frame);
                accepted.push(Endpoint::Relay(r, id));
                self.drain(r);
            }
        }
        #[cfg(feature = "tap")]
        for (i, tap) in self.taps.iter().enumerate() {
            if tap.segment == segment && from != Endpoint::Tap(i) {
                tap.send(frame);
                accepted.push(Endpoint::Tap(i));
            }
        }
        if let (Some(x), Some(list)) = (exchange, &mut self.exchanges) {
            if let Some(e) = list.get_mut(x) {
                e.to = accepted;
            }
        }
    }

    /// Puts a frame on a segment: recorded now, delivered after the latency.
    fn transmit(&mut self, segment: usize, from: Endpoint, frame: Vec<u8>) {
        let info = classify(&frame);
        self.total_frames += 1;
        self.segments[segment].record(self.now, &frame, &info);
        let summary = self.summary(from, &info);
        let key = format!("{segment}/{:?}/{:?}", info.kind, from);
        self.timeline
            .frame(self.now, &self.segments[segment].name, &summary, &key);
        let exchange = match &mut self.exchanges {
            Some(list) if info.is_nd || info.kind == super::scenario::FrameKind::Invalid => {
                list.push(Exchange {
                    at: self.now,
                    segment,
                    from,
                    to: Vec::new(),
                    label: short_label(&info),
                    key: format!("{:?} > {:?} {}", info.src, info.dst, info.what),
                });
                Some(list.len() - 1)
            }
            _ => None,
        };
        self.schedule(
            self.now + LATENCY,
            Item::Deliver {
                segment,
                from,
                frame,
                exchange,
            },
        );
    }

    fn summary(&self, from: Endpoint, info: &FrameInfo) -> String {
        let to = if info.eth_dst.is_multicast() {
            match info.dst {
                Some(d) => d.to_string(),
                None => info.eth_dst.to_string(),
            }
        } else {
            self.mac_name(info.eth_dst)
        };
        format!("{} > {}: {}", self.endpoint_name(from), to, info.what)
    }

    /// Takes a host's output after the runner touched it; refreshes its deadline.
    fn flush_host(&mut self, i: usize) {
        self.host_deadlines[i] = self.hosts[i].poll_timeout();
        let frames = std::mem::take(&mut self.hosts[i].tx);
        let notes = std::mem::take(&mut self.hosts[i].notes);
        for n in notes {
            self.note_host(i, n);
        }
        for a in &self.hosts[i].addrs {
            self.host_addrs[i].insert(a.addr);
        }
        if !self.hosts[i].up {
            return;
        }
        let seg = self.hosts[i].segment;
        for f in frames {
            self.transmit(seg, Endpoint::Host(i), f);
        }
    }

    fn note_host(&mut self, i: usize, note: String) {
        let seg = &self.segments[self.hosts[i].segment].name;
        let text = format!("* {}: {note}", self.hosts[i].name);
        self.timeline.line(self.now, seg, &text);
    }

    /// Drains relay `r`'s actions (the engine's calling convention).
    fn drain(&mut self, r: usize) {
        let mut actions = Vec::new();
        while let Some(a) = self.relays[r].engine.poll_action() {
            actions.push(a);
        }
        for a in actions {
            match a {
                Action::Transmit { port, frame } => {
                    let Some(p) = self.relays[r].ports.get(port.index()) else {
                        continue;
                    };
                    if p.up {
                        let seg = p.segment;
                        self.transmit(seg, Endpoint::Relay(r, port), frame);
                    }
                }
                Action::InstallRoute { addr, port } => {
                    self.relays[r].routes.insert(addr, port);
                    let text = format!("route {addr} via {}", self.port_name(r, port));
                    self.relay_line(r, &text, "route");
                }
                Action::RemoveRoute { addr, port } => {
                    if self.relays[r].routes.get(&addr) == Some(&port) {
                        self.relays[r].routes.remove(&addr);
                    }
                    let text = format!("route {addr} via {} removed", self.port_name(r, port));
                    self.relay_line(r, &text, "route");
                }
                // The lab has no kernel to answer: a scenario that asks for the
                // in-kernel fast path shows what the relay would tell it.
                Action::KernelAnswer { port, target, .. } => {
                    let text =
                        format!("kernel answers for {target} on {}", self.port_name(r, port));
                    self.relay_line(r, &text, "kernel");
                }
                Action::KernelForget { target } => {
                    let text = format!("kernel stops answering for {target}");
                    self.relay_line(r, &text, "kernel");
                }
                Action::KernelRelayNs {
                    from, target, to, ..
                } => {
                    let text = format!(
                        "kernel relays NS for {target} from {} to {}",
                        self.port_name(r, from),
                        self.port_name(r, to)
                    );
                    self.relay_line(r, &text, "kernel");
                }
                Action::KernelRelayNa {
                    from,
                    target,
                    solicitor,
                    to,
                    ..
                } => {
                    let text = format!(
                        "kernel relays NAs for {target} from {} to {solicitor} on {}",
                        self.port_name(r, from),
                        self.port_name(r, to)
                    );
                    self.relay_line(r, &text, "kernel");
                }
                Action::KernelForgetRelays => {
                    self.relay_line(r, "kernel stops relaying NAs", "kernel");
                }
                Action::Event(e) => self.relay_event(r, e),
            }
        }
    }

    /// Tells relay `r` every route through its routed segments (at start, after a
    /// reload), as the daemon's start-up dump does.
    fn feed_routes(&mut self, r: usize) {
        let routes: Vec<(usize, ipnet::Ipv6Net)> = self
            .routed_routes
            .iter()
            .filter_map(|(name, t)| Some((self.seg_index(name)?, t)))
            .flat_map(|(seg, t)| t.iter().map(move |&n| (seg, n)))
            .collect();
        for (seg, route) in routes {
            self.route_update(r, Some(seg), route, true);
        }
    }

    /// A route through `seg` appears or goes in relay `r`'s host (if it has a port
    /// there), as `RTM_NEWROUTE`/`RTM_DELROUTE` would tell the daemon.
    fn route_update(
        &mut self,
        r: usize,
        seg: Option<usize>,
        prefix: ipnet::Ipv6Net,
        present: bool,
    ) {
        let Some(p) = self.relays[r]
            .ports
            .iter()
            .position(|p| Some(p.segment) == seg)
        else {
            return;
        };
        let port = PortId(p as u16);
        let verb = if present { "added" } else { "deleted" };
        let text = format!(
            "main table: {prefix} dev {} {verb}",
            self.port_name(r, port)
        );
        self.relay_line(r, &text, "route");
        let update = RouteUpdate {
            prefix,
            port: Some(port),
            present,
        };
        self.relays[r].engine.handle_route(self.now, update);
        self.drain(r);
    }

    /// What the relay host's kernel does with a data frame for an address routed into a
    /// routed segment: it forwards it there, and the far end answers an echo request
    /// (back out the ingress port to the frame's sender, hop limit one less). Returns
    /// whether the frame was taken.
    fn forward_into_routed(&mut self, r: usize, p: usize, frame: &[u8]) -> bool {
        let Ok(crate::wire::Parsed::Data(d)) = crate::wire::parse_frame(frame) else {
            return false;
        };
        let ingress = &self.relays[r].ports[p];
        if d.eth_dst != ingress.mac || d.dst_addr.is_multicast() {
            return false;
        }
        let Some(via) = self.relays[r].engine.routed_port(d.dst_addr) else {
            return false;
        };
        let mac = ingress.mac;
        let seg = ingress.segment;
        let via = self.port_name(r, via);
        let Some((false, ident, seq, data)) = super::host::echo_fields(d.packet) else {
            let text = format!("forwards data for {} into {via}", d.dst_addr);
            self.relay_line(r, &text, "routed");
            return true;
        };
        let text = format!(
            "forwards echo for {} into {via}; the far end answers",
            d.dst_addr
        );
        self.relay_line(r, &text, "routed");
        let mut reply = crate::wire::emit_icmpv6_echo(
            mac, d.eth_src, d.dst_addr, d.src_addr, true, ident, seq, data,
        );
        // The far end's hop limit 64, less the relay's hop.
        if let Some(h) = reply.get_mut(crate::wire::ETH_HEADER_LEN + 7) {
            *h = 63;
        }
        self.transmit(seg, Endpoint::Relay(r, PortId(p as u16)), reply);
        true
    }

    fn port_name(&self, r: usize, port: PortId) -> String {
        self.relays[r].ports.get(port.index()).map_or_else(
            || format!("port{}", port.0),
            |p| self.segments[p.segment].name.clone(),
        )
    }

    fn relay_line(&mut self, r: usize, text: &str, key: &str) {
        let text = format!("{}: {text}", self.relays[r].name);
        let key = format!("relay{r}/{key}");
        self.timeline.frame(self.now, "relay", &text, &key);
    }

    fn relay_event(&mut self, r: usize, e: Event) {
        let node = &mut self.relays[r];
        match e {
            Event::Binding { addr, port, .. } => {
                node.bound.insert(addr, port);
                node.peak_bindings = node.peak_bindings.max(node.bound.len());
            }
            Event::Unbound { addr, .. } => {
                node.bound.remove(&addr);
            }
            _ => {}
        }
        let key = match &e {
            Event::Dropped { port, reason } => format!("drop/{port:?}/{reason}"),
            Event::Relayed { from, message, .. } => format!("relay/{message}/{from:?}"),
            Event::Answered { port, .. } => format!("answer/{port:?}"),
            Event::AnsweredByKernel { port, .. } => format!("kernel-answer/{port:?}"),
            Event::RelayedByKernel { from, .. } => format!("kernel-relay/{from:?}"),
            Event::Binding { port, .. } => format!("binding/{port:?}"),
            Event::Unbound { port, .. } => format!("unbind/{port:?}"),
            Event::PortProxying { port, .. } => format!("proxying/{port:?}"),
            Event::Quarantined { port, .. } => format!("quarantine/{port:?}"),
            Event::LeftoverRoute { port, .. } => format!("leftover/{port:?}"),
            Event::Forwarded { from, to, .. } => format!("fwd/{from:?}/{to:?}"),
            Event::NoRouterRa { .. } => "no-router-ra".to_owned(),
            Event::RouterRaAfterAll { .. } => "router-ra-after-all".to_owned(),
            Event::Announced { bound_on, .. } => format!("announce/{bound_on:?}"),
        };
        let text = e.display(&RelayNames { world: self, r }).to_string();
        self.relay_line(r, &text, &key);
    }

    /// Ports of relay `r` under `config`: a port on a segment the relay already had
    /// keeps its carrier state; new ports start up. Names the new ports' MACs.
    fn relay_ports(&mut self, r: usize, config: &EngineConfig) -> Vec<RelayPort> {
        let mut ports = Vec::new();
        for p in &config.ports {
            let segment = self.seg_index(&p.name).unwrap_or(0);
            let up = self.relays[r]
                .ports
                .iter()
                .find(|old| old.segment == segment)
                .is_none_or(|old| old.up);
            self.mac_names
                .insert(p.mac, format!("{}/{}", self.relays[r].name, p.name));
            ports.push(RelayPort {
                segment,
                up,
                mac: p.mac,
            });
        }
        ports
    }

    fn host_index(&self, name: &str) -> Option<usize> {
        self.scenario.hosts.iter().position(|h| h.name == name)
    }

    fn relay_index(&self, name: Option<&str>) -> usize {
        name.and_then(|n| self.relays.iter().position(|r| r.name == n))
            .unwrap_or(0)
    }

    fn seg_index(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
    }

    /// Resolves a ping or binding target: an address, or a host's primary global address.
    pub fn resolve(&self, target: &str) -> Option<Ipv6Addr> {
        target
            .parse()
            .ok()
            .or_else(|| self.hosts[self.host_index(target)?].primary_global())
    }

    fn scenario_event(&mut self, i: usize) -> Result<(), SimError> {
        let scenario = self.scenario;
        let now = self.now;
        match &scenario.events[i].action {
            ScenarioAction::Ping { from, to, count } => {
                let dst = self.resolve(to);
                if let Some(h) = self.host_index(from) {
                    let label = match dst {
                        Some(d) if d.to_string() != *to => format!("{to} ({d})"),
                        _ => to.clone(),
                    };
                    self.note_host(h, format!("ping {label}, {count} requests"));
                    self.hosts[h].start_ping(now, to, dst, *count);
                    self.flush_host(h);
                }
            }
            ScenarioAction::Move { host, to } => {
                if let (Some(h), Some(seg)) = (self.host_index(host), self.seg_index(to)) {
                    let old = self.segments[self.hosts[h].segment].name.clone();
                    self.hosts[h].segment = seg;
                    self.note_host(h, format!("moves from {old} to {to}"));
                    if self.hosts[h].up {
                        self.hosts[h].start(now);
                    }
                    self.flush_host(h);
                }
            }
            ScenarioAction::LinkDown { port, relay } | ScenarioAction::LinkUp { port, relay } => {
                let up = matches!(scenario.events[i].action, ScenarioAction::LinkUp { .. });
                let r = self.relay_index(relay.as_deref());
                let seg = self.seg_index(port);
                if let Some(p) = self.relays[r]
                    .ports
                    .iter()
                    .position(|p| Some(p.segment) == seg)
                {
                    self.relays[r].ports[p].up = up;
                    self.relay_line(
                        r,
                        &format!("link {} on {port}", if up { "up" } else { "down" }),
                        "link",
                    );
                    let ev = if up { LinkEvent::Up } else { LinkEvent::Down };
                    self.relays[r]
                        .engine
                        .handle_link_event(now, PortId(p as u16), ev);
                    self.drain(r);
                } else {
                    self.relay_line(
                        r,
                        &format!("has no port on {port}; link event ignored"),
                        "link",
                    );
                }
            }
            ScenarioAction::AddRoute { segment, route }
            | ScenarioAction::DelRoute { segment, route } => {
                let present = matches!(scenario.events[i].action, ScenarioAction::AddRoute { .. });
                let table = self.routed_routes.entry(segment.clone()).or_default();
                if present {
                    table.insert(*route);
                } else {
                    table.remove(route);
                }
                let seg = self.seg_index(segment);
                for r in 0..self.relays.len() {
                    self.route_update(r, seg, *route, present);
                }
            }
            ScenarioAction::Join { host } => {
                if let Some(h) = self.host_index(host) {
                    self.hosts[h].start(now);
                    self.note_host(h, format!("joins as {}", self.hosts[h].role.name()));
                    self.flush_host(h);
                }
            }
            ScenarioAction::Leave { host } => {
                if let Some(h) = self.host_index(host) {
                    self.hosts[h].stop();
                    self.host_deadlines[h] = None;
                    self.note_host(h, "leaves".to_owned());
                }
            }
            ScenarioAction::Inject { segment, hex, pcap } => {
                let Some(seg) = self.seg_index(segment) else {
                    return Ok(());
                };
                if let Some(frame) = hex.as_deref().and_then(parse_hex) {
                    self.transmit(seg, Endpoint::Injector, frame);
                }
                if let Some(file) = pcap {
                    for (offset, frame) in read_capture(&self.base_dir.join(file))? {
                        self.schedule(
                            now + offset,
                            Item::Inject {
                                segment: seg,
                                frame,
                            },
                        );
                    }
                }
            }
            ScenarioAction::SetConfig { relay, config } => {
                let r = self.relay_index(relay.as_deref());
                let spec = &scenario.relays[r];
                let result = match config.get() {
                    Some(c) => match engine_config(r, spec, c, self.seed, scenario) {
                        Ok(ec) => {
                            let ports = self.relay_ports(r, &ec);
                            let done = self.relays[r].engine.reload(now, ec);
                            done.map(|()| self.relays[r].ports = ports)
                                .map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    },
                    None => Err("config not validated".to_owned()),
                };
                if result.is_ok() {
                    // A port may have become a routed one.
                    self.feed_routes(r);
                }
                match result {
                    Ok(()) => self.relay_line(r, "config reloaded", "reload"),
                    Err(e) => self.relay_line(r, &format!("config reload refused: {e}"), "reload"),
                }
                self.drain(r);
            }
        }
        Ok(())
    }
}

/// Frames of a pcap/pcapng file with their offsets from the first frame.
pub(crate) fn read_capture(path: &Path) -> Result<Vec<(Duration, Vec<u8>)>, SimError> {
    let err = |e: crate::replay::InputError| SimError::Capture {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut source = crate::replay::Source::open(path, 0, Some(PortId(0))).map_err(err)?;
    let mut warnings = Vec::new();
    let ports = HashMap::new();
    let mut frames = Vec::new();
    let mut first = None;
    while let Some(f) = source.next_frame(&ports, &mut warnings).map_err(err)? {
        let t0 = *first.get_or_insert(f.timestamp);
        frames.push((Duration::from(f.timestamp.saturating_sub(t0)), f.data));
    }
    Ok(frames)
}

/// Relay `r`'s ports by segment name and MACs by host name, for its events.
struct RelayNames<'w, 'a> {
    world: &'w World<'a>,
    r: usize,
}

impl EventNames for RelayNames<'_, '_> {
    fn port(&self, f: &mut fmt::Formatter<'_>, port: PortId) -> fmt::Result {
        f.write_str(&self.world.port_name(self.r, port))
    }

    fn mac(&self, f: &mut fmt::Formatter<'_>, mac: Mac) -> fmt::Result {
        f.write_str(&self.world.mac_name(mac))
    }
}

fn short_label(info: &FrameInfo) -> String {
    use super::scenario::FrameKind as K;
    let kind = match info.kind {
        K::RS => "RS",
        K::RA => "RA",
        K::NS if info.src.is_some_and(|s| s.is_unspecified()) => "NS (DAD)",
        K::NS => "NS",
        K::NA => "NA",
        K::Redirect => "Redirect",
        K::Invalid => "invalid",
        _ => "data",
    };
    // The target (or source for RS/RA) in short form.
    let addr = info
        .what
        .split_whitespace()
        .find(|w| w.contains(':') && w.parse::<Ipv6Addr>().is_ok())
        .unwrap_or("");
    format!("{kind} {addr}")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hex_frames_parse_with_separators() {
        assert_eq!(
            parse_hex("33:33 00-01\n0a"),
            Some(vec![0x33, 0x33, 0, 1, 0x0a])
        );
        assert_eq!(parse_hex("333"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }
}
