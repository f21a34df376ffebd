//! The one place the live driver applies the engine's [`Action`]s: frames go to the
//! ports' transmitters (after the engine's lock is released, answers before floods),
//! entries to the in-kernel programs, routes to the route owner (`routes.rs`, on the
//! thread that keeps CAP_NET_ADMIN), events to the log; and every frame received and
//! sent to the dump.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::dump::{self, Dump};
use super::ports::Transmitter;
use super::programs::{KernelPrograms, KernelWitness};
use crate::engine::{Action, Engine, Event, LeftoverFate, PortId};
use crate::time::Instant;
use crate::wire::Mac;

/// A route change for the route owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteChange {
    Install { addr: Ipv6Addr, port: PortId },
    Remove { addr: Ipv6Addr, port: PortId },
}

/// A route change and how the route owner says it is done.
#[derive(Debug)]
pub(super) struct RouteRequest {
    pub(super) change: RouteChange,
    pub(super) done: Sender<()>,
}

/// How long frames wait for the route changes the same work asked for: longer than a
/// netlink round trip on a loaded host, short enough that a stuck route owner only
/// delays them.
const ROUTE_WAIT: Duration = Duration::from_millis(200);

/// A port as the executor needs it.
#[derive(Debug, Clone)]
pub(super) struct ExecPort {
    pub(super) name: String,
    pub(super) mac: Mac,
    pub(super) ifindex: Option<i32>,
    /// Its socket's generation and transmitter while it is open.
    pub(super) io: Option<(u64, Transmitter)>,
}

/// Frames to send once the engine's lock is released, and the route changes they wait
/// for: an NA that makes the uplink send data to a guest must not leave before the
/// guest's route exists, or the host forwards that data back out the uplink.
#[derive(Default)]
pub(super) struct Outgoing {
    routes: Vec<Receiver<()>>,
    /// Answers and relays, in the engine's order.
    urgent: Vec<(Transmitter, Vec<u8>)>,
    /// Floods (an NS for an unknown target to every port), after the answers: a scan
    /// must not delay a known guest (RFC 6583 §7).
    floods: Vec<(Transmitter, Vec<u8>)>,
}

impl Outgoing {
    /// Sends everything, answers first, once the route changes are done. The route
    /// owner's own thread does not wait (for itself): it applies them next.
    pub(super) fn send(self, wait_for_routes: bool) {
        for done in self.routes.iter().filter(|_| wait_for_routes) {
            // Timed out or the owner gone: the frames go anyway.
            let _ = done.recv_timeout(ROUTE_WAIT);
        }
        for (tx, frame) in self.urgent.iter().chain(&self.floods) {
            tx.send(frame);
        }
    }
}

/// Applies actions; lives with the engine, under its lock.
pub(super) struct Executor {
    pub(super) ports: Vec<ExecPort>,
    pub(super) programs: KernelPrograms,
    /// `--dump DIR`: every frame received and sent, per port.
    pub(super) dump: Option<(PathBuf, Dump)>,
    routes: Sender<RouteRequest>,
}

impl Executor {
    pub(super) fn new(
        ports: Vec<ExecPort>,
        programs: KernelPrograms,
        routes: Sender<RouteRequest>,
    ) -> Self {
        Self {
            ports,
            programs,
            dump: None,
            routes,
        }
    }

    /// Whether frames of `generation` from port `port` come from its open socket (not
    /// one closed since: port deleted, moved by a reload).
    pub(super) fn current(&self, port: usize, generation: u64) -> bool {
        self.ports
            .get(port)
            .and_then(|p| p.io.as_ref())
            .is_some_and(|(g, _)| *g == generation)
    }

    /// What the capture threads need to ask the programs about their frames.
    pub(super) fn witness(&self) -> KernelWitness {
        self.programs
            .witness(self.ports.iter().map(|p| p.ifindex).collect())
    }

    /// Records a frame received on (or sent to) `port` at `now`; write failures pause
    /// the dump (see dump.rs), never the relay.
    pub(super) fn dump(&mut self, port: usize, now: Instant, frame: &[u8]) {
        if let Some((_, d)) = &mut self.dump {
            let ports = self.ports.iter().map(|p| (p.name.as_str(), p.mac));
            d.write(ports, port, now, frame);
        }
    }

    /// (Re)opens the dump in `dir` with the current port list (interface ids are port
    /// indexes).
    pub(super) fn open_dump(&mut self, dir: PathBuf, now: Instant) {
        let ports = self.ports.iter().map(|p| (p.name.as_str(), p.mac));
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

    /// Applies every action the engine has queued, frames into `out` (floods last).
    pub(super) fn drain(&mut self, engine: &mut Engine, now: Instant, out: &mut Outgoing) {
        self.drain_urgent(engine, now, out);
        while let Some(action) = engine.poll_action() {
            self.apply(engine, now, action, &mut out.floods, &mut out.routes);
        }
    }

    /// Applies the actions queued before the engine's floods (see
    /// [`Engine::poll_action_before_floods`]): what a batch's later frames must not
    /// wait behind.
    pub(super) fn drain_urgent(&mut self, engine: &mut Engine, now: Instant, out: &mut Outgoing) {
        while let Some(action) = engine.poll_action_before_floods() {
            self.apply(engine, now, action, &mut out.urgent, &mut out.routes);
        }
    }

    fn apply(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        action: Action,
        frames: &mut Vec<(Transmitter, Vec<u8>)>,
        routes: &mut Vec<Receiver<()>>,
    ) {
        match action {
            Action::Transmit { port, frame } => {
                self.dump(port.index(), now, &frame);
                let Some((_, tx)) = self.ports.get(port.index()).and_then(|p| p.io.as_ref()) else {
                    return;
                };
                frames.push((tx.clone(), frame));
            }
            Action::InstallRoute { addr, port } => {
                self.route(RouteChange::Install { addr, port }, routes);
            }
            Action::RemoveRoute { addr, port } => {
                self.route(RouteChange::Remove { addr, port }, routes);
            }
            Action::Event(e @ Event::LeftoverRoute { fate, .. }) => {
                // Those kept are summed up in one line when they are adopted.
                let level = match fate {
                    LeftoverFate::Kept { .. } => log::Level::Debug,
                    _ => log::Level::Info,
                };
                crate::logging::event(level, module_path!(), &e, &self.port_names()[..]);
            }
            Action::Event(e @ Event::NoRouterRa { .. }) => {
                // Once per run: the first thing a user of a static uplink needs to read.
                crate::logging::event(log::Level::Warn, module_path!(), &e, &self.port_names()[..]);
            }
            Action::Event(e @ Event::RouterRaAfterAll { .. }) => {
                crate::logging::event(log::Level::Info, module_path!(), &e, &self.port_names()[..]);
            }
            Action::Event(e) => {
                if log::log_enabled!(target: "ndprelay::decision", log::Level::Debug) {
                    let names = self.port_names();
                    crate::logging::event(log::Level::Debug, "ndprelay::decision", &e, &names[..]);
                }
            }
            kernel => {
                let ports = &self.ports;
                let ifindex = |p: PortId| ports.get(p.index()).and_then(|p| p.ifindex);
                self.programs.apply(engine, now, kernel, ifindex);
            }
        }
    }

    /// Port names by port index, for the shared event wording.
    fn port_names(&self) -> Vec<&str> {
        self.ports.iter().map(|p| p.name.as_str()).collect()
    }

    fn route(&self, change: RouteChange, routes: &mut Vec<Receiver<()>>) {
        let (done, waiting) = crossbeam_channel::bounded(1);
        if self.routes.send(RouteRequest { change, done }).is_ok() {
            routes.push(waiting);
        }
    }
}
