//! The daemon thread: start-up, then a short loop over what is not a frame — the
//! engine's timers, link and address changes, signals (reload, stop), `status`
//! requests, the route changes the engine asked for and the `state_file` — and a clean
//! stop that removes what the relay installed (with a `state_file`, the routes stay for
//! the next start, which restores their bindings). Frames never pass through here: each
//! port's thread hands them to the relay itself (`relay.rs`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use crossbeam_channel::{Receiver, Sender};

use super::control::{ControlSocket, DriverPort, Published, StatusSource};
use super::counters::DriverCounters;
use super::droplog::DropLog;
use super::executor::{ExecPort, Executor, RouteChange, RouteRequest};
use super::guard::Guard;
use super::metrics::MetricsListener;
use super::netlink::{Addr, Link, LinkUpdate, Monitor, Netlink, Route, RouteEvents};
use super::notify::ServiceManager;
use super::ports::{CaptureFilter, Port, PortIo};
use super::programs::{KernelPrograms, ProgramPort};
use super::relay::{Clock, Relay};
use super::route_feed::{FeedContext, RouteFeed};
use super::routes::{RoutePort, Routes};
use super::setup::{engine_config, ensure_sysctls, filter_for, resolve_ports};
use super::state;
use super::tc;
use super::{Chain, Error, RunOptions, privileges};
use crate::config::Config;
use crate::engine::{DataPlane, Engine, LinkEvent, PortId, PrefixRule, RouteUpdate, StateStamp};
use crate::wire::is_link_local;

/// Protocol number on the routes ndprelay installs (rtnetlink `RTPROT_*` space; 199 is
/// unassigned). A restart finds its own routes by it; routes with any other protocol
/// are never touched.
pub const ROUTE_PROTOCOL: u8 = crate::explain::ROUTE_PROTOCOL;

/// How often the daemon thread looks at the drop counters (the rate-limited log) and
/// the dump's rotation when no engine timer wakes it sooner.
const HOUSEKEEPING_EVERY: StdDuration = StdDuration::from_millis(250);
/// How often the service manager's status line is brought up to date.
const SERVICE_STATUS_EVERY: StdDuration = StdDuration::from_secs(1);
/// How long a status request waits for the daemon thread (a reload may be under way).
const STATUS_WAIT: StdDuration = StdDuration::from_secs(3);
/// The state file is written at most this often (after a change)...
const STATE_MIN_GAP: StdDuration = StdDuration::from_secs(1);
/// ... and at least this often while nothing changes, so the age of the last P-bit RA
/// it holds stays close to the truth if the relay is killed (`engine/restore.rs`).
const STATE_REFRESH: StdDuration = StdDuration::from_secs(300);
/// After a failed write, the next attempt waits this long.
const STATE_RETRY: StdDuration = StdDuration::from_secs(60);
/// Work for the daemon thread besides frames, on an unbounded channel so it is never
/// stuck behind a flood.
pub(super) enum Control {
    Link(LinkUpdate),
    Signal(i32),
    /// `ndprelay status` asks for a snapshot, taken when asked rather than every
    /// interval: it holds the engine's lock for a time that grows with the table.
    Status(Sender<Published>),
    /// `ndprelay explain ADDR` asks what the relay knows about an address.
    Explain(Ipv6Addr, Sender<crate::explain::Explanation>),
}

/// The `state_file` and when it was last written.
struct StateFile {
    path: PathBuf,
    /// The engine's stamp at the last write (`None`: never written by this run).
    saved: Option<StateStamp>,
    last_attempt: StdInstant,
    /// The last write failed (said once at WARN until one succeeds).
    failing: bool,
}

/// What the daemon thread waits on.
struct Inputs {
    control: Receiver<Control>,
    routes: Receiver<RouteRequest>,
    wake: Receiver<()>,
}

pub(super) struct Daemon {
    config: Config,
    relay: Arc<Relay>,
    ports: Vec<Port>,
    /// Links, addresses and sysctls (routes have their own socket in `routes`).
    rtnl: Netlink,
    routes: Routes,
    filter: CaptureFilter,
    counters: Arc<DriverCounters>,
    started: StdInstant,
    guard: Option<Guard>,
    next_generation: u64,
    seed: u64,
    last_drop_check: StdInstant,
    drop_log: DropLog,
    /// The main table's routes told to the engine (routed ports).
    feed: RouteFeed,
    /// The monitor's subscription to route changes, on only while a port is routed.
    route_events: RouteEvents,
    stop: bool,
    state: Option<StateFile>,
    service: ServiceManager,
    /// When the service manager's status line was last brought up to date.
    last_service_status: StdInstant,
}

fn port_id(i: usize) -> PortId {
    // The engine bounds the port count far below u16::MAX.
    PortId(u16::try_from(i).unwrap_or(u16::MAX))
}

fn exec_ports(ports: &[Port]) -> Vec<ExecPort> {
    ports
        .iter()
        .map(|p| ExecPort {
            name: p.name.clone(),
            mac: p.mac,
            ifindex: p.ifindex,
            io: p.io.as_ref().map(|io| (io.generation, io.transmitter())),
        })
        .collect()
}

fn program_ports(ports: &[Port]) -> Vec<ProgramPort<'_>> {
    ports
        .iter()
        .map(|p| ProgramPort {
            name: &p.name,
            role: p.role,
            // Nothing to relay or answer in the kernel where no frame arrives.
            ifindex: p.ifindex.filter(|_| !p.routed),
        })
        .collect()
}

impl Daemon {
    /// Tells the executor the ports as they are now (after any change of facts or I/O).
    fn sync_exec(&self) {
        let ports = exec_ports(&self.ports);
        self.relay.with(|s, _| s.exec.ports = ports);
    }

    fn open_capture(&mut self, i: usize) {
        if let Err(e) = self.try_open_capture(i) {
            log::error!("{}: cannot open capture socket: {e}", self.ports[i].name);
        }
    }

    /// Opens port `i`'s capture if its interface exists.
    fn try_open_capture(&mut self, i: usize) -> io::Result<()> {
        let Some(ifindex) = self.ports[i].ifindex.filter(|_| !self.ports[i].routed) else {
            return Ok(());
        };
        self.next_generation += 1;
        // The old socket's thread stops before the new one starts (and never under the
        // relay's lock, which it may be waiting for).
        drop(self.ports[i].io.take());
        let sink: Arc<Relay> = Arc::clone(&self.relay);
        let opened = PortIo::open(
            &self.ports[i].name,
            ifindex,
            i,
            self.next_generation,
            &self.filter,
            sink,
            Arc::clone(&self.counters),
        );
        let result = opened.map(|io| self.ports[i].io = Some(io));
        self.sync_exec();
        result
    }

    fn sync_kernel_programs(&self) -> Vec<super::ebpf_prog::SetupError> {
        let ports = program_ports(&self.ports);
        self.relay.with(|s, _| s.exec.programs.sync(&ports))
    }

    fn resync_kernel_programs(&self) {
        for e in self.sync_kernel_programs() {
            log::error!("{e}");
        }
    }

    fn apply_route(&mut self, change: &RouteChange) {
        let (RouteChange::Install { port, .. } | RouteChange::Remove { port, .. }) = *change;
        let p = self.ports.get(port.index()).map(|p| RoutePort {
            name: &p.name,
            ifindex: p.ifindex,
        });
        self.routes.apply(change, p);
    }

    /// Hands the routes an earlier run left on our ports to the engine (restart).
    fn adopt_leftover_routes(&mut self) -> Result<(), Error> {
        let ports: Vec<RoutePort<'_>> = self
            .ports
            .iter()
            .map(|p| RoutePort {
                name: &p.name,
                ifindex: p.ifindex,
            })
            .collect();
        let adopt: Vec<(Ipv6Addr, PortId)> = self
            .routes
            .reconcile(&ports)?
            .into_iter()
            .map(|(addr, i)| (addr, port_id(i)))
            .collect();
        let kept = self.relay.with(|s, now| {
            s.engine.adopt_routes(now, &adopt);
            s.engine.leftover_routes().len()
        });
        if kept > 0 {
            log::info!(
                "{kept} routes of an earlier run kept for {}s while their guests re-verify",
                crate::engine::ROUTE_GRACE.total_micros() / 1_000_000
            );
        }
        Ok(())
    }

    /// Restores what the `state_file` holds (start-up, before the leftover routes are
    /// adopted, so a restored binding's route is its own). A file that cannot be used is
    /// reported and ignored.
    fn restore_state(&mut self) {
        let Some(sf) = &self.state else {
            return;
        };
        let path = sf.path.display().to_string();
        let loaded = match state::load(&self.config, &sf.path) {
            Ok(Some(l)) => l,
            Ok(None) => {
                return log::info!("no state file {path} yet: starting without saved bindings");
            }
            Err(e) => {
                return log::warn!(
                    "state file {path} ignored: {e}; starting without saved bindings (the \
                     next save replaces it)"
                );
            }
        };
        let report = self
            .relay
            .with(|s, now| s.engine.restore_state(now, &loaded.state, loaded.age));
        let age = loaded.age.map_or_else(
            || "at an unknown time (the clock went back)".to_owned(),
            |a| format!("{:.1} s ago", a.as_secs_f64()),
        );
        let refused = report.refused + loaded.skipped;
        log::info!(
            "restored {} bindings from {path} (saved {age}){}: routed at once, each kept \
             only if its guest answers a probe",
            report.restored,
            if refused > 0 {
                format!(
                    "; {refused} not restored (port gone or down, address not proxied, or over a limit)"
                )
            } else {
                String::new()
            }
        );
        if !report.resumed.is_empty() {
            let names: Vec<&str> = report
                .resumed
                .iter()
                .filter_map(|p| self.ports.get(p.index()).map(|p| p.name.as_str()))
                .collect();
            log::info!(
                "proxying resumed at once on {}: the earlier run's P-bit RAs there are \
                 younger than proxy_disable_hold (RFC 4389 §6); two more follow as soon \
                 as the router's RA is relayed",
                names.join(", ")
            );
        }
    }

    /// Writes the state file if the engine's state changed (at most once per
    /// `STATE_MIN_GAP`) or `STATE_REFRESH` passed, or now with `force` (stop). The
    /// export is taken under the lock; encoding and writing happen outside it.
    fn save_state(&mut self, force: bool) {
        let Some(sf) = &self.state else {
            return;
        };
        let since = sf.last_attempt.elapsed();
        let gap = if sf.failing {
            STATE_RETRY
        } else {
            STATE_MIN_GAP
        };
        if !force && since < gap {
            return;
        }
        let (stamp, saved) = {
            let s = self.relay.lock();
            let stamp = s.engine.state_stamp();
            if !force && sf.saved == Some(stamp) && since < STATE_REFRESH {
                return;
            }
            (stamp, s.engine.export_state(self.relay.clock.now()))
        };
        let text = state::encode(&self.config, &saved, std::time::SystemTime::now());
        let Some(sf) = &mut self.state else {
            return;
        };
        sf.last_attempt = StdInstant::now();
        match state::save(&sf.path, &text) {
            Ok(()) => {
                if sf.failing {
                    log::info!("state file {} written again", sf.path.display());
                }
                log::debug!(
                    "state file {} written: {} bindings",
                    sf.path.display(),
                    saved.bindings.len()
                );
                sf.saved = Some(stamp);
                sf.failing = false;
            }
            Err(e) => {
                DriverCounters::bump(&self.counters.state_write_errors);
                if !sf.failing {
                    let dir = sf.path.parent().unwrap_or(Path::new("/")).display();
                    log::warn!(
                        "cannot write state file {}: {e}; a restart will start without \
                         saved bindings. Make {dir} writable for the daemon (the systemd \
                         unit's StateDirectory=ndprelay does); retrying every {} s",
                        sf.path.display(),
                        STATE_RETRY.as_secs()
                    );
                }
                sf.failing = true;
            }
        }
    }

    fn link_event(&mut self, i: usize, ev: LinkEvent) {
        log::info!("{}: {ev:?}", self.ports[i].name);
        DriverCounters::bump(&self.counters.link_events);
        self.relay
            .with(|s, now| s.engine.handle_link_event(now, port_id(i), ev));
    }

    fn on_new_link(&mut self, l: &Link) {
        let by_index = self.ports.iter().position(|p| p.ifindex == Some(l.index));
        let i = match by_index {
            Some(i) if self.ports[i].name == l.name => i,
            // Renamed away from the configured name: as good as deleted.
            Some(i) => return self.on_del_link(i),
            None => match self.ports.iter().position(|p| p.name == l.name) {
                Some(i) => return self.on_recreated(i, l),
                None => return,
            },
        };
        if let Some(mac) = l.mac.filter(|&m| m != self.ports[i].mac) {
            self.ports[i].mac = mac;
            self.sync_exec();
            self.link_event(i, LinkEvent::MacChanged(mac));
        }
        if l.mtu != 0 && l.mtu != self.ports[i].mtu {
            self.ports[i].mtu = l.mtu;
            self.link_event(i, LinkEvent::MtuChanged(l.mtu));
        }
        let running = l.is_running();
        if running != self.ports[i].running {
            self.ports[i].running = running;
            let ev = if running {
                LinkEvent::Up
            } else {
                LinkEvent::Down
            };
            self.link_event(i, ev);
            if self.ports[i].routed {
                // Going down flushes its routes: one dump, whatever was announced.
                self.resync_routes();
            }
        }
    }

    /// A configured port's device appeared (again) under a new index.
    fn on_recreated(&mut self, i: usize, l: &Link) {
        if self.ports[i].ifindex.is_some() {
            // Re-created under a new index while we missed the delete.
            self.on_del_link(i);
        }
        let mac = if self.ports[i].routed {
            Some(self.ports[i].mac)
        } else {
            l.mac
        };
        let Some(mac) = mac else {
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
            self.sync_exec();
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
        self.resync_routes();
    }

    fn on_del_link(&mut self, i: usize) {
        let port = &mut self.ports[i];
        log::info!(
            "{}: deleted (ifindex {:?}); waiting for it to return",
            port.name,
            port.ifindex
        );
        let old = port.ifindex.take();
        drop(port.io.take());
        let was_running = std::mem::replace(&mut port.running, false);
        self.sync_exec();
        // The kernel flushed routes through the deleted device.
        if let Some(old) = old {
            self.routes.device_gone(old);
        }
        if was_running {
            self.link_event(i, LinkEvent::Down);
        }
        self.refresh_guard();
        self.resync_kernel_programs();
        // Routes through the device went with it; one dump makes sure none is served
        // after a device of the same name comes back, whatever notifications the
        // kernel sent for the flush.
        self.resync_routes();
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
        let (answering, relaying) = self
            .relay
            .with(|s, _| (s.exec.programs.answering(), s.exec.programs.relaying()));
        match engine_config(&self.config, &self.ports, self.seed, answering, relaying) {
            Ok(ec) => {
                if let Err(e) = self.relay.with(|s, now| s.engine.reload(now, ec)) {
                    log::warn!("engine refused updated port facts: {e}");
                }
            }
            Err(e) => log::warn!("cannot rebuild engine config: {e}"),
        }
    }

    fn resync(&mut self) {
        DriverCounters::bump(&self.counters.netlink_resyncs);
        log::warn!("netlink events were lost; re-reading links");
        let links = match self.rtnl.links() {
            Ok(l) => l,
            Err(e) => return log::error!("link dump failed: {e:#}"),
        };
        for i in 0..self.ports.len() {
            let present = links
                .iter()
                .any(|l| Some(l.index) == self.ports[i].ifindex && l.name == self.ports[i].name);
            if self.ports[i].ifindex.is_some() && !present {
                self.on_del_link(i);
            }
        }
        for l in &links {
            self.on_new_link(l);
        }
        self.resync_routes();
    }

    /// Runs `f` with what the route feed needs to know of the relay now.
    fn with_feed<R>(&mut self, f: impl FnOnce(&mut RouteFeed, &FeedContext<'_>) -> R) -> R {
        let prefixes: Vec<_> = self
            .config
            .prefixes
            .iter()
            .map(|r: &PrefixRule| r.prefix)
            .collect();
        let ports: Vec<_> = self.ports.iter().map(|p| p.ifindex).collect();
        let cx = FeedContext {
            prefixes: &prefixes,
            ports: &ports,
            own_protocol: ROUTE_PROTOCOL,
        };
        f(&mut self.feed, &cx)
    }

    /// Hands the engine route changes; says which addresses routed ports now serve.
    fn tell_routes(&mut self, updates: Vec<RouteUpdate>) {
        if updates.is_empty() {
            return;
        }
        for u in &updates {
            if let Some(p) = u
                .port
                .and_then(|p| self.ports.get(p.index()))
                .filter(|p| p.routed)
            {
                let verb = if u.present {
                    "answered"
                } else {
                    "no longer answered"
                };
                log::info!(
                    "{}: {} {verb} (route through a routed port)",
                    p.name,
                    u.prefix
                );
            }
        }
        self.relay.with(|s, now| {
            for u in updates {
                s.engine.handle_route(now, u);
            }
        });
        if self.feed.refused > 0 {
            log::warn!(
                "{} routes inside the prefixes not followed: more than {} (routed ports)",
                self.feed.refused,
                crate::engine::MAX_ROUTED_ROUTES
            );
            self.feed.refused = 0;
        }
    }

    fn on_route(&mut self, route: &Route, present: bool) {
        let updates = self.with_feed(|f, cx| f.apply(cx, route, present));
        self.tell_routes(updates);
    }

    /// Reads the main table again and tells the engine what changed (start, lost
    /// events, reloads).
    fn resync_routes(&mut self) {
        // Subscribed before the dump, so no change after it is missed.
        self.route_events.want(self.ports.iter().any(|p| p.routed));
        let routes = if self.route_events.joined() {
            match self.rtnl.main_routes() {
                Ok(r) => r,
                Err(e) => return log::error!("route dump failed: {e:#}"),
            }
        } else {
            Vec::new()
        };
        let updates = self.with_feed(|f, cx| f.reset(cx, &routes));
        self.tell_routes(updates);
    }

    fn reload(&mut self, path: &Path) {
        self.service.reloading();
        match self.try_reload(path) {
            Ok(()) => log::info!("configuration reloaded from {}", path.display()),
            Err(e) => log::error!(
                "reload refused, keeping the running configuration: {}",
                Chain(&e)
            ),
        }
        self.service.ready();
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
        let in_use = self
            .relay
            .with(|s, _| s.exec.programs.in_use_after(&config))?;
        let ec = engine_config(&config, &fresh, self.seed, in_use.0, in_use.1)?;
        self.relay.with(|s, now| -> Result<(), Error> {
            s.engine.reload(now, ec)?;
            s.exec.programs.set_in_use(&config, in_use);
            Ok(())
        })?;
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
                p.io = old.io.take();
                p.running = old.running;
            }
        }
        // Closes the captures of removed ports (outside the relay's lock).
        drop(std::mem::replace(&mut self.ports, fresh));
        self.sync_exec();
        let new_filter = filter_for(&config, in_use.0 || in_use.1);
        let filter_changed = new_filter != self.filter;
        self.filter = new_filter;
        for i in 0..self.ports.len() {
            // Frames carry the port index, so a port whose index changed gets a new
            // capture; so does every port when the filter changed.
            let keep = !filter_changed && self.ports[i].io.as_ref().is_some_and(|c| c.port == i);
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
        if config.metrics_listen != self.config.metrics_listen {
            log::warn!("metrics_listen changes take effect at the next start");
        }
        if config.state_file != self.config.state_file {
            log::warn!("state_file changes take effect at the next start");
        }
        self.config = config;
        self.relay.with(|s, now| {
            // Interface ids are port indexes: a new port list needs a new file.
            if let Some((dir, old)) = s.exec.dump.take() {
                drop(old);
                s.exec.open_dump(dir, now);
            }
        });
        self.refresh_guard();
        self.resync_kernel_programs();
        // Port indexes or prefixes may have changed.
        self.resync_routes();
        Ok(())
    }

    /// Ports that exist now (the guard hooks devices, so it needs them present).
    fn port_names(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter(|p| p.ifindex.is_some() && !p.routed)
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
    /// thread sorts them, so the lock is released sooner).
    fn published(&self) -> Published {
        let snapshot = self.relay.with(|s, now| s.engine.snapshot_unsorted(now));
        Published {
            snapshot,
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
            route_conflicts: self.routes.conflicts(),
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }

    /// Logs the first drop for each reason and, rate-limited, how many followed.
    fn log_drops(&mut self) {
        let counters = self.relay.lock().engine.counters();
        let (first, summary) = self.drop_log.observe(&counters, StdInstant::now());
        for line in first {
            log::warn!("{line}");
        }
        if let Some(line) = summary {
            log::info!("{line}");
        }
        self.last_drop_check = StdInstant::now();
    }

    fn handle_control(&mut self, c: Control, path: &Path) {
        match c {
            Control::Link(LinkUpdate::NewLink(l)) => self.on_new_link(&l),
            Control::Link(LinkUpdate::DelLink(l)) => {
                if let Some(i) = self.ports.iter().position(|p| p.ifindex == Some(l.index)) {
                    self.on_del_link(i);
                }
            }
            Control::Link(LinkUpdate::NewAddr(a)) => self.on_addr(&a, true),
            Control::Link(LinkUpdate::DelAddr(a)) => self.on_addr(&a, false),
            Control::Link(LinkUpdate::Route { route, present }) => self.on_route(&route, present),
            Control::Link(LinkUpdate::Resync) => self.resync(),
            Control::Signal(signal_hook::consts::SIGHUP) => self.reload(path),
            Control::Signal(s) => {
                log::info!("signal {s}: stopping");
                self.stop = true;
            }
            Control::Status(reply) => {
                let _ = reply.send(self.published());
            }
            Control::Explain(addr, reply) => {
                let _ = reply.send(self.explain(addr));
            }
        }
    }

    /// `ndprelay explain ADDR`: the engine's facts, the kernel's FIB entry for the
    /// address (looked up after the engine's lock is released) and the sysctls.
    fn explain(&mut self, addr: Ipv6Addr) -> crate::explain::Explanation {
        let facts = self.relay.with(|s, now| s.engine.address_facts(now, addr));
        let ports: Vec<(String, Option<i32>)> = self
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.ifindex))
            .collect();
        let driver = crate::explain::DriverFacts {
            fib: super::explain::fib_lookup(&mut self.rtnl, addr, &ports),
            host: super::explain::host_problems(&self.config),
        };
        crate::explain::build(&facts, &driver)
    }

    /// The daemon thread's loop, until a signal or the control channel closing stops it.
    fn serve(&mut self, inputs: &Inputs, config_path: &Path) {
        loop {
            let next = self.relay.run_timers();
            self.housekeeping();
            if self.stop {
                return;
            }
            let now = self.relay.clock.now();
            let wait = next
                .map_or(HOUSEKEEPING_EVERY, |t| {
                    StdDuration::from(t.saturating_since(now))
                })
                .min(HOUSEKEEPING_EVERY);
            crossbeam_channel::select! {
                recv(inputs.control) -> message => match message {
                    Ok(c) => self.handle_control(c, config_path),
                    Err(_) => self.stop = true,
                },
                recv(inputs.routes) -> request => {
                    // The executor holds a sender as long as the relay lives.
                    if let Ok(request) = request {
                        self.apply_route(&request.change);
                        let _ = request.done.send(());
                    }
                }
                recv(inputs.wake) -> _ => {}
                default(wait) => {}
            }
        }
    }

    /// Dump rotation, drop log.
    fn housekeeping(&mut self) {
        if let Some((_, d)) = &mut self.relay.lock().exec.dump {
            d.tick();
        }
        if self.last_drop_check.elapsed() >= HOUSEKEEPING_EVERY {
            self.log_drops();
        }
        self.save_state(false);
        if self.last_service_status.elapsed() >= SERVICE_STATUS_EVERY {
            self.update_service_status();
        }
    }

    /// The `STATUS=` line `systemctl status` shows (sent only when it changed).
    fn update_service_status(&mut self) {
        self.last_service_status = StdInstant::now();
        let summary = self.relay.lock().engine.summary();
        self.service.status(&summary);
    }

    /// Removes everything the relay owns: routes (its own and unverified leftovers;
    /// with a `state_file` they stay, for the next start to restore and re-verify), the
    /// kernel guard, the in-kernel programs. Captures close (and leave all-multicast)
    /// when dropped.
    fn cleanup(&mut self) {
        for p in &mut self.ports {
            drop(p.io.take());
        }
        self.sync_exec();
        if self.state.is_none() {
            self.routes.remove_all();
        }
        if let Some(mut g) = self.guard.take() {
            g.remove();
        }
        self.relay.with(|s, _| {
            // Closing the links detaches the programs.
            s.exec.programs = KernelPrograms::default();
            // Dropping the dump flushes and closes its file.
            s.exec.dump = None;
        });
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
    let clock = Clock::start();
    let dump_dir = opts.dump_dir.clone().or_else(|| config.dump_dir.clone());
    tc::set_mode(config.in_kernel_attach);
    let programs = KernelPrograms::at_start(&config, &program_ports(&ports), dump_dir.is_some())?;
    let ec = engine_config(
        &config,
        &ports,
        seed,
        programs.answering(),
        programs.relaying(),
    )?;
    let engine = Engine::new(ec, clock.now())?;
    let socket_path = opts
        .control_socket
        .clone()
        .unwrap_or_else(|| config.control_socket.clone());
    let control_socket = ControlSocket::bind(&socket_path)?;
    // Bound now, while a failure still stops the start with the key to fix.
    let metrics = config
        .metrics_listen
        .map(MetricsListener::bind)
        .transpose()?;
    let routes_rtnl = Netlink::route()?;
    let state_path = opts
        .state_file
        .clone()
        .or_else(|| config.state_file.clone());

    let (ctl_tx, control) = crossbeam_channel::unbounded();
    let (route_tx, route_rx) = crossbeam_channel::unbounded();
    let (wake_tx, wake) = crossbeam_channel::bounded(1);
    // The monitor is subscribed before the captures open so no link change is missed.
    let (monitor, route_events) = Monitor::open()?;
    // Before the first thread starts (capabilities are per thread, and a thread starts
    // with its creator's), after the last step that needs more: loading the in-kernel
    // programs, whose maps and links work without CAP_BPF once they exist, on Linux 6.5
    // and later and on older kernels that check it only where objects are created.
    let witness = programs.witness(Vec::new());
    let programs_in_use = witness.any();
    if programs_in_use && privileges::map_access_needs_bpf(|| witness.probe()) {
        privileges::keep_bpf_for_map_access();
        log::info!(
            "this kernel checks CAP_BPF on every map access of the in-kernel programs \
             (a kernel before 6.5 with kernel.unprivileged_bpf_disabled set): the daemon and \
             capture threads keep CAP_BPF; the other threads run without capabilities"
        );
    }
    privileges::drop_others();
    let counters = Arc::new(DriverCounters::default());
    let exec = Executor::new(exec_ports(&ports), programs, route_tx);
    let relay = Arc::new(Relay::new(engine, exec, clock, wake_tx));
    let mut d = Daemon {
        filter: filter_for(&config, programs_in_use),
        config,
        relay,
        ports,
        rtnl,
        routes: Routes::new(routes_rtnl, Arc::clone(&counters)),
        counters,
        started: StdInstant::now(),
        guard: None,
        next_generation: 0,
        seed,
        last_drop_check: StdInstant::now(),
        drop_log: DropLog::new(StdDuration::from_secs(60)),
        feed: RouteFeed::default(),
        route_events,
        stop: false,
        service: ServiceManager::default(),
        last_service_status: StdInstant::now(),
        state: state_path.map(|path| StateFile {
            path,
            saved: None,
            last_attempt: StdInstant::now(),
            failing: false,
        }),
    };
    // Before start-up sends anything (its first RS), so the dump replays from the start.
    if let Some(dir) = dump_dir {
        d.relay.with(|s, now| s.exec.open_dump(dir, now));
    }
    if let Err(e) = start(&mut d) {
        d.cleanup();
        return Err(e);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let threads = spawn_helpers(monitor, &ctl_tx, control_socket, metrics, &stop)
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
    d.service.ready();
    d.update_service_status();
    let inputs = Inputs {
        control,
        routes: route_rx,
        wake,
    };
    d.serve(&inputs, &opts.config);
    d.service.stopping();
    stop.store(true, Ordering::Relaxed);
    signal_handle.close();
    d.save_state(true);
    d.cleanup();
    for t in threads {
        let _ = t.join();
    }
    match &d.state {
        Some(sf) => log::info!(
            "stopped; filters removed, routes kept for the next start, which restores \
             their bindings from {}",
            sf.path.display()
        ),
        None => log::info!("stopped; routes and filters removed"),
    }
    Ok(())
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
    if d.ports.iter().any(|p| p.routed) && d.config.data_plane() == DataPlane::Userspace {
        log::warn!(
            "forwarding: Userspace cannot send to a routed port (no link layer): the \
             addresses behind one are answered, but their data is the kernel's to forward; \
             set forwarding: Kernel in {}",
            d.config.source
        );
    }
    for p in d.ports.iter().filter(|p| p.routed) {
        log::info!(
            "{}: no link-layer address (tun, WireGuard or PPP): a routed port, its \
             addresses answered on the uplink from the main routing table",
            p.name
        );
    }
    // The monitor is subscribed already: no route change after this dump is missed.
    d.resync_routes();
    // With the captures open, so the engine's re-verification probes can go out; the
    // saved bindings first, so the routes they own are not taken for leftovers.
    d.restore_state();
    if d.config.data_plane() == DataPlane::KernelRoutes {
        d.adopt_leftover_routes()?;
    }
    Ok(())
}

fn spawn_helpers(
    mut monitor: Monitor,
    ctl_tx: &Sender<Control>,
    control_socket: ControlSocket,
    metrics: Option<MetricsListener>,
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
    let tx = ctl_tx.clone();
    // One source for the control socket and the metrics endpoint: one way into the
    // engine thread, one reuse window.
    let source = Arc::new(StatusSource::new(move || {
        let (reply_tx, reply) = crossbeam_channel::bounded(1);
        tx.send(Control::Status(reply_tx)).ok()?;
        let mut published: Published = reply.recv_timeout(STATUS_WAIT).ok()?;
        published.snapshot.sort_bindings();
        Some(published)
    }));
    let (src, st) = (Arc::clone(&source), Arc::clone(stop));
    let explain_tx = ctl_tx.clone();
    threads.push(
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                privileges::drop_all_on_this_thread();
                control_socket.serve(
                    &src,
                    |addr| {
                        let (reply_tx, reply) = crossbeam_channel::bounded(1);
                        explain_tx.send(Control::Explain(addr, reply_tx)).ok()?;
                        reply.recv_timeout(STATUS_WAIT).ok()
                    },
                    &st,
                );
            })?,
    );
    if let Some(metrics) = metrics {
        let st = Arc::clone(stop);
        threads.push(
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || {
                    // Before the HTTP server starts its own threads, which inherit this.
                    privileges::drop_all_on_this_thread();
                    metrics.serve(&source, &st);
                })?,
        );
    }
    Ok((threads, handle))
}
