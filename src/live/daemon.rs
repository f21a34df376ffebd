//! The daemon state and the engine thread: ports with their capture sockets, the
//! engine, the route table the relay installed, the kernel guard, and the start/stop
//! sequences.
//!
//! The daemon belongs to the engine thread (see `engine_thread.rs`); other threads
//! reach it over channels: frames from the capture threads, link events, signals and
//! status requests as [`Control`] messages.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use crossbeam_channel::Sender;

use super::capture::{Capture, CaptureFilter, Frames, Inbox, TX_LOG};
use super::control::{ControlSocket, DriverPort, Published};
use super::droplog::DropLog;
use super::dump::{self, Dump};
use super::ebpf_prog::SetupError;
use super::engine_thread::{self, FRAME_QUEUE, Outbox};
use super::guard::Guard;
use super::kernel_answer::KernelAnswers;
use super::kernel_relay::{KernelRelays, NaPath, NsPath};
use super::netlink::consts::{IFA_F_PERMANENT, RTPROT_RA};
use super::netlink::{Addr, Install, Link, LinkUpdate, Monitor, Netlink};
use super::tc;
use super::{Chain, Error, InterfaceProblem, RunOptions, bpf, privileges, sysctl};
use crate::config::{Config, InKernel, ResolvedPort};
use crate::engine::{
    Action, DataPlane, Engine, EngineConfig, Event, LeftoverFate, LinkEvent, PortId, Role,
};
use crate::time::{Duration, Instant};
use crate::wire::{Mac, is_link_local};

/// `rtm_protocol` of the /128 routes ndprelay installs (`ip -6 route show proto 199`).
/// A restart finds its own routes by it; routes with any other protocol are never touched.
pub const ROUTE_PROTOCOL: u8 = 199;

/// How often the engine thread looks at the drop counters (the rate-limited log) and the
/// dump's rotation when no engine timer wakes it sooner.
const HOUSEKEEPING_EVERY: StdDuration = StdDuration::from_millis(250);
/// How long a status request waits for the engine thread (a reload may be under way).
const STATUS_WAIT: StdDuration = StdDuration::from_secs(3);
/// Monotonic clock at the edge: engine time is microseconds since start.
#[derive(Debug, Clone, Copy)]
struct Clock(StdInstant);

impl Clock {
    fn now(self) -> Instant {
        Instant::ZERO + Duration::from(self.0.elapsed())
    }
}

/// Work for the engine thread besides frames, on an unbounded channel so it is never
/// stuck behind a flood.
pub(super) enum Control {
    Link(LinkUpdate),
    Signal(i32),
    /// `ndprelay status` asks for a snapshot, taken when asked rather than every
    /// interval: it keeps the engine thread about 100 µs per 2000 bindings (criterion
    /// bench `engine/snapshot_2000_bindings`), longer with a large table, and a known
    /// guest's NS arriving meanwhile waits that long.
    Status(Sender<Published>),
}

/// Counters the driver keeps next to the engine's.
#[derive(Debug, Default)]
pub(super) struct DriverCounters {
    pub(super) rx_kernel_drops: AtomicU64,
    pub(super) rx_errors: AtomicU64,
    pub(super) tx_errors: AtomicU64,
    route_errors: AtomicU64,
    route_conflicts: AtomicU64,
    routes_orphaned: AtomicU64,
    link_events: AtomicU64,
    netlink_resyncs: AtomicU64,
}

impl DriverCounters {
    fn list(&self) -> Vec<(String, u64)> {
        let l = |n: &str, v: &AtomicU64| (n.to_owned(), v.load(Ordering::Relaxed));
        vec![
            l("live_rx_kernel_drops", &self.rx_kernel_drops),
            l("live_rx_errors", &self.rx_errors),
            l("live_tx_errors", &self.tx_errors),
            l("live_route_errors", &self.route_errors),
            l("live_route_conflicts", &self.route_conflicts),
            l("live_routes_orphaned", &self.routes_orphaned),
            l("live_link_events", &self.link_events),
            l("live_netlink_resyncs", &self.netlink_resyncs),
        ]
    }
}

/// One configured port as the driver sees it.
struct Port {
    name: String,
    role: Role,
    ifindex: Option<i32>,
    mac: Mac,
    mtu: u32,
    link_local: Ipv6Addr,
    running: bool,
    generation: u64,
    capture: Option<Capture>,
}

fn resolve_link_local(addrs: &[Addr], ifindex: i32, mac: Mac) -> Ipv6Addr {
    addrs
        .iter()
        .filter(|a| a.index == ifindex && is_link_local(a.addr))
        .max_by_key(|a| a.is_usable())
        .map_or_else(|| mac.link_local(), |a| a.addr)
}

/// Finds every configured interface; all problems in one message.
fn resolve_ports(config: &Config, links: &[Link], addrs: &[Addr]) -> Result<Vec<Port>, Error> {
    let mut ports = Vec::new();
    let mut problems = Vec::new();
    for (name, role) in config.ports() {
        match links.iter().find(|l| l.name == name) {
            None => problems.push(InterfaceProblem::Missing {
                role,
                name: name.to_owned(),
                config: config.source.clone(),
            }),
            Some(l) if l.hw_type != super::netlink::consts::ARPHRD_ETHER || l.mac.is_none() => {
                problems.push(InterfaceProblem::NotEthernet {
                    role,
                    name: name.to_owned(),
                    hw_type: l.hw_type,
                });
            }
            Some(l) => {
                // Checked just above: Ethernet links carry a 6-byte address.
                let mac = l.mac.unwrap_or_default();
                ports.push(Port {
                    name: name.to_owned(),
                    role,
                    ifindex: Some(l.index),
                    mac,
                    mtu: l.mtu,
                    link_local: resolve_link_local(addrs, l.index, mac),
                    running: l.is_running(),
                    generation: 0,
                    capture: None,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(ports)
    } else {
        Err(Error::Interfaces(problems))
    }
}

fn resolved(ports: &[Port]) -> Vec<ResolvedPort> {
    ports
        .iter()
        .map(|p| ResolvedPort {
            name: p.name.clone(),
            mac: p.mac,
            link_local: p.link_local,
            mtu: p.mtu,
        })
        .collect()
}

/// The engine's config for `config` on `ports`; `answering_in_kernel`,
/// `relaying_in_kernel`: whether those in-kernel programs are in use (the config says
/// whether they are wanted).
fn engine_config(
    config: &Config,
    ports: &[Port],
    seed: u64,
    answering_in_kernel: bool,
    relaying_in_kernel: bool,
) -> Result<EngineConfig, Error> {
    let mut ec = config.engine_config(&resolved(ports))?;
    if config.seed.is_none() {
        ec.seed = seed;
    }
    ec.fast_path_in_kernel = answering_in_kernel;
    ec.relay_in_kernel = relaying_in_kernel;
    // Each decision is logged at debug level (`RUST_LOG=ndprelay=debug`), so only then
    // does the engine spend time describing them.
    ec.emit_events = log::log_enabled!(target: "ndprelay::decision", log::Level::Debug);
    Ok(ec)
}

/// Checks (and with `fix_sysctls`, fixes) the sysctls; refuses with the commands.
/// `links`, `addrs` and `rtnl` tell which interfaces the host configures from RAs.
fn ensure_sysctls(
    config: &Config,
    rtnl: &mut Netlink,
    links: &[Link],
    addrs: &[Addr],
) -> Result<(), Error> {
    let downstream: Vec<&str> = config.downstream.iter().map(String::as_str).collect();
    let forwarding = config.data_plane() == DataPlane::KernelRoutes;
    let mut reqs = sysctl::requirements(&config.uplink, &downstream, forwarding);
    if forwarding && !sysctl::forwarding_on(sysctl::read_proc) {
        let ra_routes = rtnl.routes_with_protocol(RTPROT_RA)?;
        let uses: Vec<sysctl::RaUse<'_>> = links
            .iter()
            .filter(|l| l.name != "lo")
            .map(|l| sysctl::RaUse {
                iface: &l.name,
                ra_routes: ra_routes.iter().filter(|r| r.oif == l.index).count(),
                dynamic_addrs: addrs
                    .iter()
                    .filter(|a| a.index == l.index && a.flags & IFA_F_PERMANENT == 0)
                    .count(),
            })
            .collect();
        for r in sysctl::ra_dependents(&uses) {
            if !reqs.iter().any(|q| q.key == r.key) {
                reqs.push(r);
            }
        }
    }
    let mut problems = sysctl::check(&reqs, sysctl::read_proc);
    if problems.is_empty() {
        return Ok(());
    }
    if !config.fix_sysctls {
        return Err(sysctl::SysctlError::Refused(problems).into());
    }
    sysctl::fix_order(&mut problems);
    for p in &problems {
        sysctl::write_proc(&p.req.key, p.req.fix).map_err(|source| {
            sysctl::SysctlError::CannotFix {
                problem: p.clone(),
                source,
            }
        })?;
        // A change to the host's own settings: an operator should see every one.
        log::warn!(
            "fix_sysctls: set {}={} (was {}): {}",
            p.req.key,
            p.req.fix,
            p.current,
            p.req.why
        );
    }
    Ok(())
}

fn filter_for(config: &Config) -> CaptureFilter {
    match config.data_plane() {
        DataPlane::Userspace => CaptureFilter {
            bpf: bpf::ipv6_filter(),
            pcap: bpf::IPV6_PCAP_EXPR.to_owned(),
        },
        DataPlane::KernelRoutes | DataPlane::None => CaptureFilter {
            bpf: bpf::nd_filter(),
            pcap: bpf::nd_pcap_expr(),
        },
    }
}

pub(super) struct Daemon {
    config: Config,
    clock: Clock,
    engine: Engine,
    ports: Vec<Port>,
    rtnl: Netlink,
    filter: CaptureFilter,
    /// The engine thread's frame channel, for the capture threads this daemon starts.
    frames_tx: Sender<Frames>,
    /// Frames the engine asked to send, sent by the engine thread after each step.
    outbox: Outbox,
    counters: Arc<DriverCounters>,
    /// Routes we own: those we installed and those of an earlier run handed to the
    /// engine at start: address → ifindex.
    routes: HashMap<Ipv6Addr, i32>,
    /// Bound addresses whose /128 someone else installed: left alone, shown in `status`.
    route_conflicts: HashSet<Ipv6Addr>,
    started: StdInstant,
    guard: Option<Guard>,
    /// `fast_path_in_kernel`: the eBPF program answering on the upstream ports. Loaded
    /// at start if at all (CAP_BPF is dropped after), and kept loaded when a reload
    /// turns it off, so that another can turn it on again.
    kernel_answers: Option<KernelAnswers>,
    /// Whether `kernel_answers` is in use: attached to the upstream ports, known to the
    /// engine.
    answering_in_kernel: bool,
    /// `relay_in_kernel`: the eBPF program relaying NS to bound guests and their NAs
    /// back. Loaded at start if at all (CAP_BPF is dropped after), and kept loaded when
    /// a reload turns it off, so that another can turn it on again.
    kernel_relays: Option<KernelRelays>,
    /// Whether `kernel_relays` is in use: attached to the ports, known to the engine.
    relaying_in_kernel: bool,
    /// `--dump DIR`: every frame received and sent, per port.
    dump: Option<(PathBuf, Dump)>,
    next_generation: u64,
    seed: u64,
    last_drop_check: StdInstant,
    drop_log: DropLog,
    stop: bool,
}

impl Daemon {
    fn port_id(i: usize) -> PortId {
        // The engine bounds the port count far below u16::MAX.
        PortId(u16::try_from(i).unwrap_or(u16::MAX))
    }

    fn open_capture(&mut self, i: usize) {
        if let Err(e) = self.try_open_capture(i) {
            log::error!("{}: cannot open capture socket: {e}", self.ports[i].name);
        }
    }

    /// Opens port `i`'s capture if its interface exists.
    fn try_open_capture(&mut self, i: usize) -> io::Result<()> {
        let Some(ifindex) = self.ports[i].ifindex else {
            return Ok(());
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let port = &mut self.ports[i];
        port.capture = None;
        let capture = Capture::start(
            &port.name,
            ifindex,
            &self.filter,
            Inbox::new(self.frames_tx.clone(), i, generation),
            Arc::clone(&self.counters),
        )?;
        port.generation = generation;
        port.capture = Some(capture);
        Ok(())
    }

    /// (Re)opens the dump with the current port list (interface ids are port indexes).
    fn open_dump(&mut self, dir: PathBuf) {
        let ports = self.ports.iter().map(|p| (p.name.as_str(), p.mac));
        let now = self.clock.now();
        match Dump::open(
            &dir,
            ports,
            now,
            dump::DEFAULT_FILE_BYTES,
            dump::DEFAULT_FILES,
        ) {
            Ok(d) => {
                log::info!("dumping frames to {}", dir.display());
                self.dump = Some((dir, d));
            }
            Err(e) => log::error!("cannot dump to {}: {e}", dir.display()),
        }
    }

    /// Records a frame received (as the engine takes it) or sent on port `port` at engine
    /// time `now`; write failures pause the dump (see dump.rs), never the relay.
    fn dump_frame(&mut self, port: usize, now: Instant, frame: &[u8]) {
        if let Some((_, d)) = &mut self.dump {
            let ports = self.ports.iter().map(|p| (p.name.as_str(), p.mac));
            d.write(ports, port, now, frame);
        }
    }

    pub(super) fn drain(&mut self) {
        self.drain_with(Engine::poll_action);
    }

    fn drain_with(&mut self, next: fn(&mut Engine) -> Option<Action>) {
        while let Some(action) = next(&mut self.engine) {
            match action {
                Action::Transmit { port, frame } => {
                    self.dump_frame(port.index(), self.clock.now(), &frame);
                    self.transmit(port, frame);
                }
                Action::InstallRoute { addr, port } => self.install_route(addr, port),
                Action::RemoveRoute { addr, port } => self.remove_route(addr, port),
                Action::KernelAnswer {
                    port,
                    target,
                    mac,
                    until,
                } => {
                    let ifindex = self.ifindex(port);
                    self.kernel_entry(
                        until,
                        |d, valid_for| match (&mut d.kernel_answers, ifindex) {
                            (Some(k), Some(ifindex)) => k.answer(ifindex, target, mac, valid_for),
                            _ => Err(io::Error::other("the fast path is not set up on the port")),
                        },
                        || format!("fast_path_in_kernel: cannot hand {target} to the kernel; answering it here"),
                        |e| e.kernel_answer_refused(target),
                    );
                }
                Action::KernelForget { target } => {
                    if let Some(k) = &mut self.kernel_answers {
                        k.forget(target);
                    }
                    if let Some(k) = &mut self.kernel_relays {
                        k.forget_ns(target);
                    }
                }
                Action::KernelRelayNs {
                    from,
                    target,
                    to,
                    mac,
                    guest_mac,
                    until,
                } => {
                    let path = self.ifindex(from).zip(self.ifindex(to));
                    let path = path.map(|(from, to)| NsPath {
                        from,
                        target,
                        to,
                        mac,
                        guest_mac,
                    });
                    self.kernel_entry(
                        until,
                        |d, valid_for| match (&mut d.kernel_relays, path) {
                            (Some(k), Some(path)) => k.relay_ns(&path, valid_for),
                            _ => Err(io::Error::other("the relay is not set up on the ports")),
                        },
                        || format!("relay_in_kernel: cannot hand the NS for {target} to the kernel; relaying them here"),
                        |e| e.kernel_relay_ns_refused(target),
                    );
                }
                Action::KernelRelayNa {
                    from,
                    target,
                    solicitor,
                    guest_mac,
                    to,
                    mac,
                    solicitor_mac,
                    until,
                } => {
                    let path = self.ifindex(from).zip(self.ifindex(to));
                    let path = path.map(|(from, to)| NaPath {
                        from,
                        target,
                        solicitor,
                        guest_mac,
                        to,
                        mac,
                        solicitor_mac,
                    });
                    self.kernel_entry(
                        until,
                        |d, valid_for| match (&mut d.kernel_relays, path) {
                            (Some(k), Some(path)) => k.relay_na(&path, valid_for),
                            _ => Err(io::Error::other("the relay is not set up on the ports")),
                        },
                        || format!("relay_in_kernel: cannot hand the NAs for {target} to {solicitor} to the kernel; relaying them here"),
                        |e| e.kernel_relay_refused(target, solicitor),
                    );
                }
                Action::KernelForgetRelays => {
                    if let Some(k) = &mut self.kernel_relays {
                        k.forget_all_na();
                    }
                }
                Action::Event(e @ Event::LeftoverRoute { fate, .. }) => {
                    let names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
                    // Those kept are summed up in one line by `reconcile_routes`.
                    let level = match fate {
                        LeftoverFate::Kept { .. } => log::Level::Debug,
                        _ => log::Level::Info,
                    };
                    log::log!(level, "{}", e.display(&names[..]));
                }
                Action::Event(e) => {
                    if log::log_enabled!(target: "ndprelay::decision", log::Level::Debug) {
                        let names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
                        log::debug!(target: "ndprelay::decision", "{}", e.display(&names[..]));
                    }
                }
            }
        }
    }

    fn ifindex(&self, port: PortId) -> Option<i32> {
        self.ports.get(port.index()).and_then(|p| p.ifindex)
    }

    /// Writes an entry the engine told the kernel, valid until `until`, with `write`
    /// (given how long from now that is); when that fails, logs `what` and hands the work
    /// back to the engine with `refused`.
    fn kernel_entry(
        &mut self,
        until: Instant,
        write: impl FnOnce(&mut Self, StdDuration) -> io::Result<()>,
        what: impl FnOnce() -> String,
        refused: impl FnOnce(&mut Engine),
    ) {
        let valid_for = StdDuration::from(until.saturating_since(self.clock.now()));
        if let Err(e) = write(self, valid_for) {
            TX_LOG.warn(format_args!("{} ({e})", what()));
            refused(&mut self.engine);
        }
    }

    /// Attaches the in-kernel programs to the ports present now (and detaches them from
    /// those gone): the fast path to the upstream ports, the NA relay to all.
    fn sync_kernel_programs(&mut self) -> Vec<SetupError> {
        let mut errors = Vec::new();
        // Off: detached from every port, which also empties its maps.
        if let Some(k) = &mut self.kernel_answers {
            let ports = present_ports(&self.ports, self.answering_in_kernel, true);
            errors.extend(k.sync(&ports));
        }
        if let Some(k) = &mut self.kernel_relays {
            let ports = present_ports(&self.ports, self.relaying_in_kernel, false);
            errors.extend(k.sync(&ports));
        }
        errors
    }

    fn resync_kernel_programs(&mut self) {
        for e in self.sync_kernel_programs() {
            log::error!("{e}");
        }
    }

    /// Queues a frame for the engine thread to send after this step.
    fn transmit(&mut self, port: PortId, frame: Vec<u8>) {
        let Some(p) = self.ports.get(port.index()) else {
            return;
        };
        let Some(c) = &p.capture else {
            return;
        };
        let (sock, name) = c.sender();
        self.outbox
            .push(sock, name, frame, port.index(), p.generation);
    }

    /// What the engine asked to send since the last call.
    pub(super) fn take_outbox(&mut self) -> Outbox {
        self.outbox.take(&self.counters)
    }

    /// Frames queued for sending so far.
    pub(super) fn queued_frames(&self) -> usize {
        self.outbox.len()
    }

    fn install_route(&mut self, addr: Ipv6Addr, port: PortId) {
        let Some(p) = self.ports.get(port.index()) else {
            return;
        };
        let Some(ifindex) = p.ifindex else {
            return;
        };
        match self.rtnl.install_host_route(addr, ifindex, ROUTE_PROTOCOL) {
            Ok(Install::Foreign(r)) => {
                // Said once per conflict: the engine may ask again for the same binding.
                if self.route_conflicts.insert(addr) {
                    self.counters
                        .route_conflicts
                        .fetch_add(1, Ordering::Relaxed);
                    let what = r.map_or_else(
                        || "a route".to_owned(),
                        |r| {
                            format!(
                                "a route (ifindex {}, proto {}, table {})",
                                r.oif, r.protocol, r.table
                            )
                        },
                    );
                    log::warn!(
                        "route {addr}/128 dev {} not installed: {what} for {addr} that ndprelay \
                         did not create exists and is left alone; remove it (`ip -6 route del \
                         {addr}/128`) if the guest behind {} should be reached through the relay",
                        p.name,
                        p.name
                    );
                }
            }
            Ok(Install::Done) => {
                self.route_conflicts.remove(&addr);
                log::info!("route {addr}/128 dev {} installed", p.name);
                if let Some(old) = self.routes.insert(addr, ifindex) {
                    if old != ifindex {
                        let _ = self.rtnl.delete_route(addr, old, ROUTE_PROTOCOL);
                    }
                }
            }
            Err(e) => {
                self.counters.route_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("cannot install route {addr}/128 dev {}: {e:#}", p.name);
            }
        }
    }

    fn remove_route(&mut self, addr: Ipv6Addr, port: PortId) {
        let ours = self.routes.remove(&addr);
        if self.route_conflicts.remove(&addr) && ours.is_none() {
            log::info!("route {addr}/128 left in place: ndprelay did not create it");
            return;
        }
        // Deleting names our protocol, so the kernel never removes someone else's.
        let ifindex = ours.or_else(|| self.ports.get(port.index()).and_then(|p| p.ifindex));
        let Some(ifindex) = ifindex else {
            return;
        };
        match self.rtnl.delete_route(addr, ifindex, ROUTE_PROTOCOL) {
            Ok(()) => log::info!("route {addr}/128 removed"),
            Err(e) => {
                self.counters.route_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("cannot remove route {addr}/128: {e:#}");
            }
        }
    }

    /// Start-up reconciliation (NDP reference §5, restart): /128 routes with our
    /// protocol on one of our ports go to the engine, which keeps those it routes while
    /// their guests re-verify and removes the rest (`leftover.rs` in the engine); routes
    /// on other interfaces, or wider than /128, are orphans, removed here.
    fn reconcile_routes(&mut self) -> Result<(), Error> {
        let found = self.rtnl.routes_with_protocol(ROUTE_PROTOCOL)?;
        let mut adopt = Vec::new();
        for r in found {
            let port = self.ports.iter().position(|p| p.ifindex == Some(r.oif));
            match port {
                Some(i) if r.dst_len == 128 => {
                    self.routes.insert(r.dst, r.oif);
                    adopt.push((r.dst, Self::port_id(i)));
                }
                _ => {
                    self.counters
                        .routes_orphaned
                        .fetch_add(1, Ordering::Relaxed);
                    log::info!(
                        "removing orphaned route {}/{} (ifindex {})",
                        r.dst,
                        r.dst_len,
                        r.oif
                    );
                    let _ = self.rtnl.delete_route(r.dst, r.oif, ROUTE_PROTOCOL);
                }
            }
        }
        self.engine.adopt_routes(self.clock.now(), &adopt);
        let kept = self.engine.leftover_routes().len();
        if kept > 0 {
            log::info!(
                "{kept} routes of an earlier run kept for {}s while their guests re-verify",
                crate::engine::ROUTE_GRACE.total_micros() / 1_000_000
            );
        }
        self.drain();
        Ok(())
    }

    fn link_event(&mut self, i: usize, ev: LinkEvent) {
        log::info!("{}: {ev:?}", self.ports[i].name);
        self.counters.link_events.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        self.engine.handle_link_event(now, Self::port_id(i), ev);
        self.drain();
    }

    fn on_new_link(&mut self, l: &Link) {
        let by_index = self.ports.iter().position(|p| p.ifindex == Some(l.index));
        let i = match by_index {
            Some(i) if self.ports[i].name == l.name => i,
            Some(i) => {
                // Renamed away from the configured name: as good as deleted.
                return self.on_del_link(i);
            }
            None => match self.ports.iter().position(|p| p.name == l.name) {
                Some(i) => {
                    if self.ports[i].ifindex.is_some() {
                        // Re-created under a new index while we missed the delete.
                        self.on_del_link(i);
                    }
                    let Some(mac) = l.mac else {
                        log::error!(
                            "{}: re-created without an Ethernet address; not used",
                            l.name
                        );
                        return;
                    };
                    log::info!("{}: appeared with ifindex {}", l.name, l.index);
                    self.ports[i].ifindex = Some(l.index);
                    self.open_capture(i);
                    self.refresh_guard();
                    self.resync_kernel_programs();
                    if mac != self.ports[i].mac {
                        self.ports[i].mac = mac;
                        self.ports[i].link_local = mac.link_local();
                        self.link_event(i, LinkEvent::MacChanged(mac));
                    }
                    if l.mtu != self.ports[i].mtu {
                        self.ports[i].mtu = l.mtu;
                        self.link_event(i, LinkEvent::MtuChanged(l.mtu));
                    }
                    if l.is_running() {
                        self.ports[i].running = true;
                        self.link_event(i, LinkEvent::Up);
                    }
                    return;
                }
                None => return,
            },
        };
        if let Some(mac) = l.mac {
            if mac != self.ports[i].mac {
                self.ports[i].mac = mac;
                self.link_event(i, LinkEvent::MacChanged(mac));
            }
        }
        if l.mtu != 0 && l.mtu != self.ports[i].mtu {
            self.ports[i].mtu = l.mtu;
            self.link_event(i, LinkEvent::MtuChanged(l.mtu));
        }
        let running = l.is_running();
        if running != self.ports[i].running {
            self.ports[i].running = running;
            self.link_event(
                i,
                if running {
                    LinkEvent::Up
                } else {
                    LinkEvent::Down
                },
            );
        }
    }

    fn on_del_link(&mut self, i: usize) {
        let port = &mut self.ports[i];
        log::info!(
            "{}: deleted (ifindex {:?}); waiting for it to return",
            port.name,
            port.ifindex
        );
        let old = port.ifindex.take();
        port.capture = None;
        let was_running = std::mem::replace(&mut port.running, false);
        // The kernel flushed routes through the deleted device.
        if let Some(old) = old {
            self.routes.retain(|_, ix| *ix != old);
        }
        if was_running {
            self.link_event(i, LinkEvent::Down);
        }
        self.refresh_guard();
        self.resync_kernel_programs();
    }

    fn on_addr(&mut self, a: &Addr, added: bool) {
        if !is_link_local(a.addr) || !added || !a.is_usable() {
            return;
        }
        let Some(i) = self.ports.iter().position(|p| p.ifindex == Some(a.index)) else {
            return;
        };
        if self.ports[i].link_local != a.addr {
            log::info!("{}: link-local is now {}", self.ports[i].name, a.addr);
            self.ports[i].link_local = a.addr;
            self.reload_engine();
        }
    }

    /// Pushes the current port facts into the engine as a reload (link-local changes).
    fn reload_engine(&mut self) {
        match engine_config(
            &self.config,
            &self.ports,
            self.seed,
            self.answering_in_kernel,
            self.relaying_in_kernel,
        ) {
            Ok(ec) => {
                let now = self.clock.now();
                if let Err(e) = self.engine.reload(now, ec) {
                    log::warn!("engine refused updated port facts: {e}");
                }
                self.drain();
            }
            Err(e) => log::warn!("cannot rebuild engine config: {e}"),
        }
    }

    fn resync(&mut self) {
        self.counters
            .netlink_resyncs
            .fetch_add(1, Ordering::Relaxed);
        log::warn!("netlink events were lost; re-reading links");
        let links = match self.rtnl.links() {
            Ok(l) => l,
            Err(e) => return log::error!("link dump failed: {e:#}"),
        };
        for i in 0..self.ports.len() {
            if self.ports[i].ifindex.is_some()
                && !links
                    .iter()
                    .any(|l| Some(l.index) == self.ports[i].ifindex && l.name == self.ports[i].name)
            {
                self.on_del_link(i);
            }
        }
        for l in &links {
            self.on_new_link(l);
        }
    }

    fn reload(&mut self, path: &Path) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        match self.try_reload(path) {
            Ok(()) => log::info!("configuration reloaded from {}", path.display()),
            Err(e) => log::error!(
                "reload refused, keeping the running configuration: {}",
                Chain(&e)
            ),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }

    fn try_reload(&mut self, path: &Path) -> Result<(), Error> {
        let config = Config::load(path)?;
        for w in &config.warnings {
            log::warn!("{w}");
        }
        let links = self.rtnl.links()?;
        let addrs = self.rtnl.addrs()?;
        let mut fresh = resolve_ports(&config, &links, &addrs)?;
        ensure_sysctls(&config, &mut self.rtnl, &links, &addrs)?;
        let answering_in_kernel = program_in_use(
            FAST_PATH_IN_KERNEL,
            answers_wanted(&config),
            self.kernel_answers.is_some(),
        )?;
        let relaying_in_kernel = program_in_use(
            RELAY_IN_KERNEL,
            config.relay_in_kernel,
            self.kernel_relays.is_some(),
        )?;
        let ec = engine_config(
            &config,
            &fresh,
            self.seed,
            answering_in_kernel,
            relaying_in_kernel,
        )?;
        let now = self.clock.now();
        self.engine.reload(now, ec)?;
        let entries = kernel_map_entries(&config);
        log_program_use(
            FAST_PATH_IN_KERNEL,
            (self.answering_in_kernel, answering_in_kernel),
            self.kernel_answers.as_ref().map(KernelAnswers::capacity),
            entries,
        );
        log_program_use(
            RELAY_IN_KERNEL,
            (self.relaying_in_kernel, relaying_in_kernel),
            self.kernel_relays.as_ref().map(KernelRelays::capacity),
            entries,
        );
        self.answering_in_kernel = answering_in_kernel;
        self.relaying_in_kernel = relaying_in_kernel;
        if tc::mode() != config.in_kernel_attach {
            log::info!(
                "in_kernel_attach: {:?} for ports attached from now on; those attached \
                 keep their hook until the next start",
                config.in_kernel_attach
            );
            tc::set_mode(config.in_kernel_attach);
        }
        // Ports that stay keep their capture and state; new ones get a capture below.
        // Only now: a refused reload must leave every capture where it was.
        for p in &mut fresh {
            if let Some(old) = self
                .ports
                .iter_mut()
                .find(|o| o.name == p.name && o.ifindex == p.ifindex)
            {
                p.capture = old.capture.take();
                p.generation = old.generation;
                p.running = old.running;
            }
        }
        let old_ports = std::mem::replace(&mut self.ports, fresh);
        drop(old_ports); // closes captures of removed ports
        let new_filter = filter_for(&config);
        let filter_changed = new_filter != self.filter;
        self.filter = new_filter;
        for i in 0..self.ports.len() {
            // Frames carry the port index, so a port whose index changed gets a new
            // capture; so does every port when the filter changed.
            let keep =
                !filter_changed && self.ports[i].capture.as_ref().is_some_and(|c| c.port == i);
            if !keep {
                self.open_capture(i);
            }
            if !self.ports[i].running {
                self.link_event(i, LinkEvent::Down);
            }
        }
        if config.control_socket != self.config.control_socket {
            log::warn!("control_socket changes take effect at the next start");
        }
        self.config = config;
        if let Some((dir, old)) = self.dump.take() {
            // Interface ids are port indexes: a new port list needs a new file.
            drop(old);
            self.open_dump(dir);
        }
        self.refresh_guard();
        self.resync_kernel_programs();
        self.drain();
        Ok(())
    }

    /// Ports that exist now (the guard hooks devices, so it needs them present).
    fn port_names(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter(|p| p.ifindex.is_some())
            .map(|p| p.name.clone())
            .collect()
    }

    fn refresh_guard(&mut self) {
        let names = self.port_names();
        if let Some(g) = &mut self.guard {
            g.update(&names);
        }
    }

    /// What `ndprelay status` shows, as of now, bindings not yet sorted (the control
    /// thread sorts them, so the engine thread is back at its frames sooner).
    fn published(&self) -> Published {
        Published {
            snapshot: self.engine.snapshot_unsorted(self.clock.now()),
            ports: self
                .ports
                .iter()
                .map(|p| DriverPort {
                    ifindex: p.ifindex,
                    mtu: p.mtu,
                    in_kernel_hook: p.ifindex.and_then(tc::hook_on).map(tc::Hook::name),
                })
                .collect(),
            counters: self.counters.list(),
            route_conflicts: self.route_conflicts.iter().copied().collect(),
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }

    /// Logs the first drop for each reason and, rate-limited, how many followed.
    fn log_drops(&mut self) {
        let (first, summary) = self
            .drop_log
            .observe(&self.engine.counters(), StdInstant::now());
        for line in first {
            log::warn!("{line}");
        }
        if let Some(line) = summary {
            log::info!("{line}");
        }
        self.last_drop_check = StdInstant::now();
    }

    pub(super) fn handle_control(&mut self, c: Control, path: &Path) {
        match c {
            Control::Link(LinkUpdate::NewLink(l)) => self.on_new_link(&l),
            Control::Link(LinkUpdate::DelLink(l)) => {
                if let Some(i) = self.ports.iter().position(|p| p.ifindex == Some(l.index)) {
                    self.on_del_link(i);
                }
            }
            Control::Link(LinkUpdate::NewAddr(a)) => self.on_addr(&a, true),
            Control::Link(LinkUpdate::DelAddr(a)) => self.on_addr(&a, false),
            Control::Link(LinkUpdate::Resync) => self.resync(),
            Control::Signal(signal_hook::consts::SIGHUP) => self.reload(path),
            Control::Signal(s) => {
                log::info!("signal {s}: stopping");
                self.stop = true;
            }
            Control::Status(reply) => {
                let _ = reply.send(self.published());
            }
        }
    }

    pub(super) fn receive(&mut self, port: usize, generation: u64, data: &[u8]) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        if p.generation != generation {
            return; // from a socket closed since (port deleted, moved by a reload)
        }
        let now = self.clock.now();
        self.dump_frame(port, now, data);
        self.engine.handle_frame(now, Self::port_id(port), data);
        // Floods wait for the end of the batch (see engine_thread.rs).
        self.drain_with(Engine::poll_action_before_floods);
    }

    /// How long the engine thread may wait for frames and control messages before
    /// timers are due.
    pub(super) fn plan_wait(&self) -> StdDuration {
        let now = self.clock.now();
        self.engine
            .poll_timeout()
            .map_or(HOUSEKEEPING_EVERY, |t| {
                StdDuration::from_micros(t.saturating_since(now).total_micros())
            })
            .min(HOUSEKEEPING_EVERY)
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop
    }

    pub(super) fn stop(&mut self) {
        self.stop = true;
    }

    /// The engine thread's turn: due timers, dump rotation, drop log.
    pub(super) fn housekeeping(&mut self) {
        let now = self.clock.now();
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
            self.drain();
        }
        if let Some((_, d)) = &mut self.dump {
            d.tick();
        }
        if self.last_drop_check.elapsed() >= HOUSEKEEPING_EVERY {
            self.log_drops();
        }
    }

    /// Removes everything the relay owns: routes (those it installed and those of an
    /// earlier run not yet verified), the kernel guard. Captures close (and drop
    /// all-multicast) when dropped.
    fn cleanup(&mut self) {
        for p in &mut self.ports {
            p.capture = None;
        }
        let routes: Vec<(Ipv6Addr, i32)> = self.routes.drain().collect();
        for (addr, ifindex) in routes {
            if let Err(e) = self.rtnl.delete_route(addr, ifindex, ROUTE_PROTOCOL) {
                log::warn!("cannot remove route {addr}/128: {e:#}");
            }
        }
        if let Some(mut g) = self.guard.take() {
            g.remove();
        }
        // Closing the links detaches the program.
        self.kernel_answers = None;
        self.kernel_relays = None;
        // Dropping the dump flushes and closes its file.
        self.dump = None;
    }
}

/// The whole life of the daemon: start, loop, clean stop.
pub(super) fn run(opts: &RunOptions) -> Result<(), Error> {
    let config = Config::load(&opts.config)?;
    for w in &config.warnings {
        log::warn!("{w}");
    }
    privileges::check(config.needs_bpf())?;
    let mut rtnl = Netlink::route()?;
    let links = rtnl.links()?;
    let addrs = rtnl.addrs()?;
    let ports = resolve_ports(&config, &links, &addrs)?;
    ensure_sysctls(&config, &mut rtnl, &links, &addrs)?;
    let seed = RandomState::new().hash_one(std::process::id());
    let clock = Clock(StdInstant::now());
    let dump_dir = opts.dump_dir.clone().or_else(|| config.dump_dir.clone());
    let entries = kernel_map_entries(&config);
    let dumping = dump_dir.is_some();
    tc::set_mode(config.in_kernel_attach);
    let kernel_answers = kernel_program_at_start(
        FAST_PATH_IN_KERNEL,
        answers_wanted(&config),
        dumping,
        || {
            load_and_attach(
                || KernelAnswers::load(entries),
                |k| k.sync(&present_ports(&ports, true, true)),
            )
        },
    )?;
    let kernel_relays =
        kernel_program_at_start(RELAY_IN_KERNEL, config.relay_in_kernel, dumping, || {
            load_and_attach(
                || KernelRelays::load(entries),
                |k| k.sync(&present_ports(&ports, true, false)),
            )
        })?;
    let answering_in_kernel = kernel_answers.is_some();
    let relaying_in_kernel = kernel_relays.is_some();
    let ec = engine_config(
        &config,
        &ports,
        seed,
        answering_in_kernel,
        relaying_in_kernel,
    )?;
    let engine = Engine::new(ec, clock.now())?;
    let socket_path = opts
        .control_socket
        .clone()
        .unwrap_or_else(|| config.control_socket.clone());
    let control_socket = ControlSocket::bind(&socket_path)?;

    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let (frames_tx, frames_rx) = crossbeam_channel::bounded(FRAME_QUEUE);
    // The monitor is subscribed before the captures open so no link change is missed.
    let monitor = Monitor::open()?;
    // Before the first thread starts (capabilities are per thread, and a thread starts
    // with its creator's), after the last step that needs more: loading the in-kernel
    // programs, whose maps and links work without CAP_BPF once they exist.
    privileges::drop_others();
    let filter = filter_for(&config);
    let mut d = Daemon {
        config,
        clock,
        engine,
        ports,
        rtnl,
        filter,
        frames_tx,
        outbox: Outbox::default(),
        counters: Arc::new(DriverCounters::default()),
        routes: HashMap::new(),
        route_conflicts: HashSet::new(),
        started: StdInstant::now(),
        guard: None,
        kernel_answers,
        answering_in_kernel,
        kernel_relays,
        relaying_in_kernel,
        dump: None,
        next_generation: 0,
        seed,
        last_drop_check: StdInstant::now(),
        drop_log: DropLog::new(StdDuration::from_secs(60)),
        stop: false,
    };
    // Before start-up sends anything (its first RS), so the dump replays from the start.
    if let Some(dir) = dump_dir {
        d.open_dump(dir);
    }
    if let Err(e) = start(&mut d) {
        d.cleanup();
        return Err(e);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let threads = spawn_helpers(monitor, &ctl_tx, control_socket, &stop)
        .map_err(Error::io("starting threads"));
    let (threads, signal_handle) = match threads {
        Ok(t) => t,
        Err(e) => {
            d.cleanup();
            return Err(e);
        }
    };
    d.log_drops();
    log::info!(
        "relaying between {} (uplink) and {}",
        d.config.uplink,
        d.config.downstream.join(", ")
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    engine_thread::run(&mut d, &frames_rx, &ctl_rx, &opts.config);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop.store(true, Ordering::Relaxed);
    signal_handle.close();
    d.cleanup();
    for t in threads {
        let _ = t.join();
    }
    log::info!("stopped; routes and filters removed");
    Ok(())
}

/// One entry per binding at most: the engine tells the kernel about a binding on one
/// upstream port at a time.
fn kernel_map_entries(config: &Config) -> u32 {
    u32::try_from(config.tunables.max_bindings)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// An in-kernel program as the config and the log name it.
#[derive(Debug, Clone, Copy)]
struct ProgramKey {
    /// Its config key.
    name: &'static str,
    /// What it takes over from the engine thread.
    what: &'static str,
}
const FAST_PATH_IN_KERNEL: ProgramKey = ProgramKey {
    name: "fast_path_in_kernel",
    what: "fast-path answers sent",
};
const RELAY_IN_KERNEL: ProgramKey = ProgramKey {
    name: "relay_in_kernel",
    what: "NS and NA for bound guests relayed",
};

/// `fast_path_in_kernel` as it applies: without `fast_path` there is nothing to answer.
fn answers_wanted(config: &Config) -> InKernel {
    if config.fast_path.is_some() {
        config.fast_path_in_kernel
    } else {
        InKernel::Never
    }
}

/// The ports a program runs on: with `on`, those present (with `upstream_only`, the
/// upstream ones), otherwise none.
fn present_ports(ports: &[Port], on: bool, upstream_only: bool) -> Vec<(&str, i32)> {
    ports
        .iter()
        .filter(|p| on && (!upstream_only || p.role == Role::Upstream))
        .filter_map(|p| Some((p.name.as_str(), p.ifindex?)))
        .collect()
}

/// An in-kernel program as its config key asks (`wanted`), loaded and attached by
/// `load`: `None` when it is off, or when it was not asked for explicitly and cannot be
/// set up here (logged with the reason). Loading needs CAP_BPF, dropped after start.
fn kernel_program_at_start<K>(
    key: ProgramKey,
    wanted: InKernel,
    dumping: bool,
    load: impl FnOnce() -> Result<K, SetupError>,
) -> Result<Option<K>, Error> {
    let ProgramKey { name, what } = key;
    let why_not = match wanted {
        InKernel::Never => return Ok(None),
        InKernel::Always => return Ok(Some(load()?)),
        InKernel::WhenPossible if dumping => "frames are being dumped (--dump, dump_dir) and \
            what the kernel sends would be missing from the files"
            .to_owned(),
        InKernel::WhenPossible if !privileges::has_bpf() => "CAP_BPF is missing at start (run \
            as root, or add CAP_BPF as packaging/ndprelay.service shows; it is dropped once \
            the program is loaded)"
            .to_owned(),
        InKernel::WhenPossible => match load() {
            Ok(k) => {
                log::info!("{name}: {what} in the kernel");
                return Ok(Some(k));
            }
            Err(e) => e.to_string(),
        },
    };
    log::info!(
        "{name}: {what} by the engine thread, not in the kernel: {why_not}; \
         `{name}: false` in the config says this is intended"
    );
    Ok(None)
}

/// Whether a reload's config puts a program to use: as `wanted`, if it was `loaded` at
/// start (the only time it can be).
fn program_in_use(key: ProgramKey, wanted: InKernel, loaded: bool) -> Result<bool, Error> {
    match wanted {
        InKernel::Never => Ok(false),
        InKernel::WhenPossible => Ok(loaded),
        InKernel::Always if loaded => Ok(true),
        InKernel::Always => Err(Error::KernelProgramNotLoaded(key.name)),
    }
}

/// Logs a reload's change of a program's use (`was`, `now`), and that its maps keep the
/// `capacity` they were loaded with when the config now asks for `entries`.
fn log_program_use(key: ProgramKey, (was, now): (bool, bool), capacity: Option<u32>, entries: u32) {
    let ProgramKey { name, what } = key;
    if was != now {
        let by = if now {
            "in the kernel"
        } else {
            "by the engine thread"
        };
        log::info!("{name}: {what} now {by}");
    }
    if let Some(c) = capacity.filter(|&c| now && c != entries) {
        log::info!("{name}: the kernel's maps keep room for {c} entries until the next start");
    }
}

/// Loads a program with `load` and attaches it with `sync` to `ports`.
fn load_and_attach<K>(
    load: impl FnOnce() -> Result<K, SetupError>,
    sync: impl FnOnce(&mut K) -> Vec<SetupError>,
) -> Result<K, SetupError> {
    let mut k = load()?;
    match sync(&mut k).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(k),
    }
}

/// The privileged part of start-up after the engine exists.
fn start(d: &mut Daemon) -> Result<(), Error> {
    d.guard = Some(
        Guard::install(&d.port_names())
            .map_err(Error::io("installing the kernel ND guard (nf_tables)"))?,
    );
    if let Some(e) = d.sync_kernel_programs().into_iter().next() {
        return Err(Error::KernelProgram(e));
    }
    for i in 0..d.ports.len() {
        if let Err(source) = d.try_open_capture(i) {
            if d.ports[i].running {
                return Err(Error::Capture {
                    iface: d.ports[i].name.clone(),
                    source,
                });
            }
            log::error!("{}: cannot open capture socket: {source}", d.ports[i].name);
        }
        if !d.ports[i].running {
            d.link_event(i, LinkEvent::Down);
        }
    }
    // With the captures open, so the engine's re-verification probes can go out.
    if d.config.data_plane() == DataPlane::KernelRoutes {
        d.reconcile_routes()?;
    }
    d.drain();
    Ok(())
}

fn spawn_helpers(
    mut monitor: Monitor,
    ctl_tx: &Sender<Control>,
    control_socket: ControlSocket,
    stop: &Arc<AtomicBool>,
) -> io::Result<(Vec<JoinHandle<()>>, signal_hook::iterator::Handle)> {
    let mut threads = Vec::new();
    let (tx, st) = (ctl_tx.clone(), Arc::clone(stop));
    threads.push(
        std::thread::Builder::new()
            .name("netlink".into())
            .spawn(move || {
                privileges::drop_all_on_this_thread();
                while !st.load(Ordering::Relaxed) {
                    match monitor.poll(250) {
                        Ok(updates) => {
                            for u in updates {
                                if tx.send(Control::Link(u)).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            log::error!("netlink monitor: {e:#}; resyncing");
                            let _ = tx.send(Control::Link(LinkUpdate::Resync));
                            std::thread::sleep(StdDuration::from_secs(1));
                        }
                    }
                }
            })?,
    );
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let handle = signals.handle();
    let tx = ctl_tx.clone();
    threads.push(
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                privileges::drop_all_on_this_thread();
                for s in signals.forever() {
                    if tx.send(Control::Signal(s)).is_err() {
                        break;
                    }
                }
            })?,
    );
    let (tx, st) = (ctl_tx.clone(), Arc::clone(stop));
    threads.push(
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                privileges::drop_all_on_this_thread();
                control_socket.serve(
                    || {
                        let (reply_tx, reply) = crossbeam_channel::bounded(1);
                        tx.send(Control::Status(reply_tx)).ok()?;
                        let mut published: Published = reply.recv_timeout(STATUS_WAIT).ok()?;
                        published.snapshot.sort_bindings();
                        Some(published)
                    },
                    &st,
                );
            })?,
    );
    Ok((threads, handle))
}

#[cfg(test)]
mod test {
    use super::*;

    fn link(index: i32, name: &str, hw_type: u16, mac: Option<Mac>) -> Link {
        Link {
            index,
            name: name.into(),
            hw_type,
            mac,
            mtu: 1500,
            flags: 0x41,
            allmulti: None,
        }
    }

    fn config(text: &str) -> Config {
        Config::from_str_with_path(text, "relay.ron").unwrap()
    }

    #[test]
    fn every_missing_or_unusable_port_is_named_in_one_message() {
        let c = config(
            r#"(uplink: "eth0", downstream: ["br0", "wg0"], prefixes: ["2001:db8:1::/64"])"#,
        );
        let links = [
            link(2, "eth0", 1, Some(Mac([2, 0, 0, 0, 0, 1]))),
            link(3, "wg0", 65534, None),
        ];
        let Err(e @ Error::Interfaces(_)) = resolve_ports(&c, &links, &[]) else {
            panic!("expected a refusal");
        };
        let msg = e.to_string();
        assert!(
            msg.contains(r#"downstream port "br0" does not exist"#),
            "{msg}"
        );
        assert!(msg.contains("ip link show br0"), "{msg}");
        assert!(
            msg.contains(r#"downstream port "wg0" is not an Ethernet interface"#),
            "{msg}"
        );
        assert!(!msg.contains("eth0"), "the good port is not blamed: {msg}");
    }

    #[test]
    fn ports_take_the_kernels_link_local_or_fall_back_to_eui64() {
        let c = config(r#"(uplink: "eth0", downstream: ["br0"], prefixes: ["2001:db8:1::/64"])"#);
        let (m0, m1) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let links = [link(2, "eth0", 1, Some(m0)), link(3, "br0", 1, Some(m1))];
        let stable: Ipv6Addr = "fe80::1234".parse().unwrap();
        let addrs = [Addr {
            index: 2,
            addr: stable,
            prefix_len: 64,
            flags: 0,
        }];
        let ports = resolve_ports(&c, &links, &addrs).unwrap();
        assert_eq!(ports[0].link_local, stable);
        assert_eq!(ports[1].link_local, m1.link_local());
        assert_eq!(ports[1].role, Role::Downstream);
        assert!(ports.iter().all(|p| p.running));
    }

    #[test]
    fn a_program_runs_on_the_present_ports_of_its_role_and_on_none_when_off() {
        let c = config(
            r#"(uplink: "eth0", downstream: ["br0", "vif1"], prefixes: ["2001:db8:1::/64"])"#,
        );
        let mac = Some(Mac([2, 0, 0, 0, 0, 1]));
        let links = [
            link(2, "eth0", 1, mac),
            link(3, "br0", 1, mac),
            link(4, "vif1", 1, mac),
        ];
        let mut ports = resolve_ports(&c, &links, &[]).unwrap();
        assert_eq!(present_ports(&ports, true, true), [("eth0", 2)]);
        assert_eq!(
            present_ports(&ports, true, false),
            [("eth0", 2), ("br0", 3), ("vif1", 4)]
        );
        // Turned off by a reload: detached everywhere, which also empties its maps.
        assert!(present_ports(&ports, false, false).is_empty());
        assert!(present_ports(&ports, false, true).is_empty());
        // A deleted port has no ifindex until it comes back.
        ports[1].ifindex = None;
        assert_eq!(
            present_ports(&ports, true, false),
            [("eth0", 2), ("vif1", 4)]
        );
    }
}
