//! The RON configuration file: schema, defaults, validation with line:column.
//!
//! [`Config::from_str_with_path`] reads the text with `ron` (serde, `deny_unknown_fields`),
//! then validates every value, collecting all problems. Each points at the offending
//! value's `file:line:column` (found by a second, position-recording scan of the text)
//! and carries a hint. The file only knows interface *names*; [`Config::engine_config`]
//! combines it with the MACs, link-locals and MTUs a driver resolved ([`ResolvedPort`])
//! into an [`EngineConfig`]. Every key, its default and why, is in
//! `examples/ndprelay.ron`.

mod duration;
mod error;
mod locate;
mod raw;
pub mod reference;
mod validate;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv6Net;

use crate::engine::{DataPlane, EngineConfig, PortConfig, PrefixRule, RaSource, Role, Tunables};
use crate::time::Duration;
use crate::wire::Mac;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ConfigWarning, Location};
pub use locate::Pos;
pub use raw::{Forwarding, InKernelAttach, LogFormat, LogLevel};
pub use validate::interface_name_problem;

/// Where `ndprelay run` and `ndprelay status` meet when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/ndprelay.sock";

/// A validated configuration. Field docs give each key's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, as given (for messages).
    pub source: String,
    /// `uplink` (required): the one interface facing the router that owns the prefix.
    pub uplink: String,
    /// `downstream` (required, non-empty): interfaces facing hosts, in order.
    pub downstream: Vec<String>,
    /// `prefixes` (Relay) then `static_prefixes` (Static), in file order; non-overlapping.
    pub prefixes: Vec<PrefixRule>,
    /// `ra_relay` (true): relay RS upstream and RAs downstream.
    pub ra_relay: bool,
    /// `forwarding` (`Kernel`): who forwards unicast data.
    pub forwarding: Forwarding,
    /// `install_routes` (true): with `Kernel`, install /128 routes for confirmed bindings.
    pub install_routes: bool,
    /// `ra_source` (`Router`): source address of relayed RAs.
    pub ra_source: RaSource,
    /// `fast_path` (None): answer from a binding confirmed within this window.
    pub fast_path: Option<Duration>,
    /// `fast_path_in_kernel` (not set: [`InKernel::WhenPossible`]): whether `ndprelay
    /// run` answers those NS with an eBPF program on the uplink instead of the engine
    /// thread (only with `fast_path`).
    pub fast_path_in_kernel: InKernel,
    /// `relay_in_kernel` (not set: [`InKernel::WhenPossible`]): whether `ndprelay
    /// run` relays NS for bound guests and their solicited NAs with an eBPF program on
    /// the ports instead of the relay's threads.
    pub relay_in_kernel: InKernel,
    /// `in_kernel_attach` (`Auto`): how those programs hook into a port's ingress (tcx,
    /// or a tc `clsact` filter on kernels without it).
    pub in_kernel_attach: InKernelAttach,
    /// `honour_proxy_bit` (true): obey an incoming RA P bit (RFC 4389 §4.1.3.3).
    pub honour_proxy_bit: bool,
    /// `disable_on_rogue_ra` (false): disable a downstream port after an RA on it.
    pub disable_on_rogue_ra: bool,
    /// `announce` (true): an unsolicited NA on the uplink for each guest address when
    /// its binding is first confirmed (after a move, after a restart too).
    pub announce: bool,
    /// `seed` (None): engine RNG seed; `None` lets the driver choose (see [`Self::engine_config`]).
    pub seed: Option<u64>,
    /// `timers` and `limits` sections (RFC 4861 defaults, see [`Tunables`]).
    pub tunables: Tunables,
    /// `control_socket` ([`DEFAULT_CONTROL_SOCKET`]).
    pub control_socket: PathBuf,
    /// `fix_sysctls` (false): let the daemon set the sysctls it needs instead of refusing.
    pub fix_sysctls: bool,
    /// `dump_dir` (None): where the daemon writes pcapng dumps of its ports.
    pub dump_dir: Option<PathBuf>,
    /// `state_file` (None): where the daemon saves its confirmed bindings and loop state
    /// for the next start, which restores them; with it a clean stop keeps the routes.
    pub state_file: Option<PathBuf>,
    /// `log` (None = info): log level unless `RUST_LOG` or `-v`/`-q` say otherwise.
    pub log: Option<log::LevelFilter>,
    /// `log_format` (`Text`): plain lines, or one JSON object per line.
    pub log_format: LogFormat,
    /// `metrics_listen` (None): where the daemon serves Prometheus metrics
    /// (`GET /metrics`), e.g. `[::1]:9630`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Legal but suspicious settings, to print (never fatal).
    pub warnings: Vec<ConfigWarning>,
}

/// `relay_in_kernel`, `fast_path_in_kernel`: whether `ndprelay run` leaves that work to
/// an eBPF program (the lab and replay have no kernel: the engine does it, unless
/// `Always`, whose in-kernel handling they model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InKernel {
    /// Not set: an eBPF program when the daemon can set one up at start (CAP_BPF at
    /// start, Linux 5.10 (tcx or a tc filter, see
    /// [`InKernelAttach`]), no frame dump), otherwise the relay's threads; the log says
    /// which and why.
    #[default]
    WhenPossible,
    /// `true`: the eBPF program, or the start fails.
    Always,
    /// `false`: the relay's threads.
    Never,
}

/// What a driver learned about one configured interface (netlink live, scenario in the lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPort {
    /// Interface name as in the config.
    pub name: String,
    /// Its MAC.
    pub mac: Mac,
    /// Its link-local address.
    pub link_local: Ipv6Addr,
    /// Its MTU.
    pub mtu: u32,
    /// It has no link layer (tun, WireGuard, PPP): served from the routing table.
    pub routed: bool,
}

impl Config {
    /// Whether an in-kernel program is required (`fast_path_in_kernel`,
    /// `relay_in_kernel: true`): the daemon then needs CAP_BPF to start.
    pub fn needs_bpf(&self) -> bool {
        self.fast_path_in_kernel == InKernel::Always || self.relay_in_kernel == InKernel::Always
    }

    /// Reads and validates `path`. A missing file is a [`ConfigError::Read`] naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str_with_path(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in messages.
    pub fn from_str_with_path(text: &str, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        validate::parse(text, &path.as_ref().display().to_string())
    }

    /// Like [`Self::from_str_with_path`] for a config embedded in a larger file (a relay
    /// inside a scenario): `origin` is where `text` starts in `path`, and every reported
    /// position is shifted to be a position in `path`.
    pub fn from_str_at(
        text: &str,
        path: impl AsRef<Path>,
        origin: Pos,
    ) -> Result<Self, ConfigError> {
        let mut shift = |loc: &mut Location| {
            if let Some(p) = &mut loc.pos {
                if p.line == 1 {
                    p.col = p.col.saturating_add(origin.col.saturating_sub(1));
                }
                p.line = p.line.saturating_add(origin.line.saturating_sub(1));
            }
        };
        match Self::from_str_with_path(text, path) {
            Ok(mut config) => {
                config.warnings.iter_mut().for_each(|w| shift(&mut w.at));
                Ok(config)
            }
            Err(mut e) => {
                e.for_each_location(&mut shift);
                Err(e)
            }
        }
    }

    /// Who forwards data, from `forwarding` and `install_routes`:
    /// `Kernel` + routes → [`DataPlane::KernelRoutes`]; `Kernel` without routes or `Off`
    /// → [`DataPlane::None`] (ND relay only); `Userspace` → [`DataPlane::Userspace`].
    pub fn data_plane(&self) -> DataPlane {
        match self.forwarding {
            Forwarding::Kernel if self.install_routes => DataPlane::KernelRoutes,
            Forwarding::Kernel | Forwarding::Off => DataPlane::None,
            Forwarding::Userspace => DataPlane::Userspace,
        }
    }

    /// Interface names with their roles: the uplink first, then downstream in file order.
    /// This is also the [`crate::engine::PortId`] order of [`Self::engine_config`].
    pub fn ports(&self) -> impl Iterator<Item = (&str, Role)> {
        std::iter::once((self.uplink.as_str(), Role::Upstream)).chain(
            self.downstream
                .iter()
                .map(|name| (name.as_str(), Role::Downstream)),
        )
    }

    /// The engine's config: ports in [`Self::ports`] order with the resolved MAC,
    /// link-local and MTU. `emit_events` is false (replay and the simulator set it);
    /// `answer_own_link_local` is false: on a real host the kernel answers for the
    /// ports' own addresses (the simulator, which has no kernel, sets it);
    /// `seed` is the configured one or 0 — the live daemon should put a random seed
    /// when [`Self::seed`] is `None`. Names missing from `resolved` are errors; extra
    /// entries are ignored.
    pub fn engine_config(&self, resolved: &[ResolvedPort]) -> Result<EngineConfig, ConfigError> {
        let mut ports = Vec::new();
        let mut missing = Vec::new();
        for (i, (name, role)) in self.ports().enumerate() {
            match resolved.iter().find(|p| p.name == name) {
                Some(p) => ports.push(PortConfig {
                    name: p.name.clone(),
                    role,
                    mac: p.mac,
                    link_local: p.link_local,
                    mtu: p.mtu,
                    routed: p.routed && role == Role::Downstream,
                }),
                None => missing.push(ConfigError::UnresolvedInterface {
                    name: name.to_owned(),
                    role: match role {
                        Role::Upstream => "uplink".to_owned(),
                        Role::Downstream => format!("downstream[{}]", i - 1),
                    },
                }),
            }
        }
        if !missing.is_empty() {
            return Err(ConfigError::from_list(missing));
        }
        Ok(EngineConfig {
            ports,
            prefixes: self.prefixes.clone(),
            ra_relay: self.ra_relay,
            data_plane: self.data_plane(),
            ra_source: self.ra_source,
            fast_path: self.fast_path,
            fast_path_in_kernel: self.fast_path_in_kernel == InKernel::Always,
            relay_in_kernel: self.relay_in_kernel == InKernel::Always,
            honour_proxy_bit: self.honour_proxy_bit,
            disable_on_rogue_ra: self.disable_on_rogue_ra,
            announce: self.announce,
            emit_events: false,
            answer_own_link_local: false,
            seed: self.seed.unwrap_or(0),
            tunables: self.tunables.clone(),
        })
    }

    /// Prefixes of one mode, for summaries.
    pub fn prefixes_of(&self, mode: crate::engine::PrefixMode) -> impl Iterator<Item = Ipv6Net> {
        self.prefixes
            .iter()
            .filter(move |r| r.mode == mode)
            .map(|r| r.prefix)
    }
}

#[cfg(test)]
mod test;
