//! The live driver: the engine on real interfaces.
//!
//! Threads (DESIGN.md, "live driver"; `docs/live-driver.md` follows one NS through
//! them):
//!
//! 1. one capture thread per port reads its `AF_PACKET` socket (classic BPF filter for
//!    ICMPv6 ND, all-multicast; `ports/`) and hands each read's frames to the engine
//!    itself, under the relay's lock (`relay.rs`), whose executor applies what the
//!    engine asks for (`executor.rs`);
//! 2. the daemon thread (the caller of [`run`]) runs the engine's timers under the same
//!    lock and takes link events, signals, reloads, status requests and the route
//!    changes the engine asked for (`daemon.rs`, `routes.rs`);
//! 3. a netlink thread follows links and IPv6 addresses (up/down, delete and re-create,
//!    MAC, MTU, link-local) and the main table's IPv6 routes, from which routed ports
//!    (tun, WireGuard, PPP: no link layer, no capture) are served (`route_feed.rs`);
//! 4. a signal thread turns SIGHUP into a reload and SIGTERM/SIGINT into a clean stop;
//! 5. a control thread answers `ndprelay status` on a Unix socket (it asks the daemon
//!    thread for the snapshot and renders the JSON itself);
//! 6. with `metrics_listen`, a metrics thread answers Prometheus' `GET /metrics` the
//!    same way, through the same snapshot source (`metrics.rs`).
//!
//! With `fast_path_in_kernel` (by default with `fast_path`, when CAP_BPF is there at
//! start), an eBPF program on the uplink answers NS for freshly confirmed guests before
//! any of these threads wakes (`kernel_answer.rs`); with `relay_in_kernel` (by default,
//! when CAP_BPF is there at start), one on every port relays NS to bound guests and
//! their NAs back to the solicitor the engine passed the NS on for (`kernel_relay.rs`).
//!
//! Start-up either completes or undoes what it did: a missing interface, a config error,
//! a missing capability or a wrong sysctl stops it with one message naming the fix.

mod bpf;
pub mod control;
mod counters;
mod daemon;
mod droplog;
pub mod dump;
mod ebpf_asm;
pub(crate) mod ebpf_maps;
mod ebpf_prog;
#[cfg(test)]
mod ebpf_test_run;
mod executor;
mod explain;
mod guard;
pub(crate) mod kernel_answer;
pub(crate) mod kernel_relay;
pub mod metrics;
pub mod netlink;
mod nfnetlink;
mod notify;
mod ports;
mod privileges;
mod programs;
mod relay;
mod route_feed;
mod routes;
mod setup;
mod state;
pub mod sys;
pub mod sysctl;
mod tc;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::engine::Role;

pub use daemon::ROUTE_PROTOCOL;
pub use explain::explain;

/// What `ndprelay run` passes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The RON config file.
    pub config: PathBuf,
    /// Overrides the config's `control_socket`.
    pub control_socket: Option<PathBuf>,
    /// Overrides the config's `dump_dir`: rotating pcapng of every frame received and sent.
    pub dump_dir: Option<PathBuf>,
    /// Overrides the config's `state_file`.
    pub state_file: Option<PathBuf>,
}

/// Why the daemon could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is missing or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Configured interfaces do not exist or cannot be ports (every one, in config
    /// order).
    #[error("cannot start: {}", join(.0, "; "))]
    Interfaces(Vec<InterfaceProblem>),
    /// Sysctls are wrong, and the config does not allow fixing them or fixing failed.
    #[error(transparent)]
    Sysctl(#[from] sysctl::SysctlError),
    /// Needed capabilities are missing.
    #[error("missing capabilities {}: {how}", .missing.join(", "))]
    Capability {
        /// The missing capabilities (`CAP_NET_RAW`, ...).
        missing: Vec<String>,
        /// How to grant them.
        how: &'static str,
    },
    /// `fast_path_in_kernel` or `relay_in_kernel` could not be set up.
    #[error(transparent)]
    KernelProgram(#[from] ebpf_prog::SetupError),
    /// A reload asks for an in-kernel program (this config key) that was not loaded at
    /// start.
    #[error(
        "{0}: true needs its eBPF program, which is loaded at start only (CAP_BPF is \
         dropped after it): restart ndprelay (systemctl restart ndprelay) to turn it on"
    )]
    KernelProgramNotLoaded(&'static str),
    /// The engine refused the resolved config.
    #[error("the relay refused the configuration: {0}")]
    Engine(#[from] crate::engine::EngineConfigError),
    /// Control socket problems (bind at start, connect for `status`).
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// The `metrics_listen` socket could not be bound at start.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// An rtnetlink request failed (links, addresses, routes, link events).
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    /// The capture socket of a port whose link is up could not be opened at start.
    #[error(
        "cannot open the capture socket on {iface} (it needs CAP_NET_RAW and the \
         interface: check `ip link show {iface}`)"
    )]
    Capture {
        /// The port's interface.
        iface: String,
        /// Why the kernel refused.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}

/// Why a configured interface cannot be a port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceProblem {
    /// No interface of that name exists.
    #[error(
        "{} {name:?} does not exist (check `ip link show {name}`, create it, or fix {config})",
        role_name(*role)
    )]
    Missing {
        /// Uplink or downstream.
        role: Role,
        /// The configured name.
        name: String,
        /// The config file that names it.
        config: String,
    },
    /// It is not Ethernet (no link-layer address to rewrite).
    #[error(
        "{} {name:?} is not an Ethernet interface (ARPHRD type {hw_type}); the uplink needs \
         link-layer addresses, and a device without them (tun, WireGuard, PPP) can only be \
         a downstream port, served from the routing table",
        role_name(*role)
    )]
    NotEthernet {
        /// Uplink or downstream.
        role: Role,
        /// The configured name.
        name: String,
        /// Its ARPHRD type.
        hw_type: u16,
    },
}

const fn role_name(role: Role) -> &'static str {
    match role {
        Role::Upstream => "uplink",
        Role::Downstream => "downstream port",
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// An error followed by its sources, `: `-separated: how `main` prints an error (anyhow's
/// `{:#}`), for log lines of errors the daemon survives.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// Runs the relay in the foreground until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions) -> Result<(), Error> {
    daemon::run(opts)
}

/// What `ndprelay check` says about this host's kernel settings for `config` (what
/// `run` would refuse, fix or warn about); never fails: what cannot be checked is said.
pub fn check_host(config: &crate::config::Config) -> String {
    setup::host_report(config)
}

/// Asks the daemon on `socket` for its status and prints it (text, or JSON with `json`).
pub fn status(socket: &Path, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    let doc = control::request_status(socket)?;
    let text = if json {
        // Serialising a Value we just parsed cannot fail.
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        control::render_text(&doc)
    };
    out.write_all(text.as_bytes())
        .map_err(Error::io("writing status"))
}

/// `ndprelay status --prometheus`: asks the daemon on `socket` for its status and
/// writes it to `out` in the Prometheus text format, the same text `/metrics` serves
/// (for node_exporter's textfile collector).
pub fn status_prometheus(socket: &Path, out: &mut dyn Write) -> Result<(), Error> {
    let doc = control::request_status(socket)?;
    out.write_all(metrics::render_prometheus(&doc).as_bytes())
        .map_err(Error::io("writing status"))
}

#[cfg(test)]
mod error_test {
    use std::error::Error as _;

    use super::*;

    fn eperm() -> io::Error {
        io::Error::from_raw_os_error(libc::EPERM)
    }

    #[test]
    fn io_errors_keep_their_cause_as_the_source() {
        let e = Error::io("reading links")(eperm());
        assert_eq!(e.to_string(), "reading links", "the cause is not repeated");
        let source = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(source.and_then(io::Error::raw_os_error), Some(libc::EPERM));
        assert_eq!(Chain(&e).to_string(), format!("reading links: {}", eperm()));
    }

    #[test]
    fn a_capture_that_cannot_open_names_the_port_the_fix_and_the_cause() {
        let e = Error::Capture {
            iface: "br0".into(),
            source: eperm(),
        };
        let text = Chain(&e).to_string();
        assert!(
            text.starts_with("cannot open the capture socket on br0"),
            "{text}"
        );
        assert!(text.contains("ip link show br0"), "{text}");
        assert!(text.ends_with(&eperm().to_string()), "{text}");
    }

    #[test]
    fn a_sysctl_that_cannot_be_fixed_names_the_command_and_chains_the_cause() {
        let reqs = sysctl::requirements("eth0", &["br0"], true, sysctl::UplinkRas::default());
        let problem = sysctl::Problem {
            req: reqs[0].clone(),
            current: "0".into(),
        };
        let command = problem.command();
        let e = Error::from(sysctl::SysctlError::CannotFix {
            problem,
            source: eperm(),
        });
        assert!(
            e.to_string().contains(&format!("run `{command}` by hand")),
            "{e}"
        );
        assert!(
            e.source().is_some(),
            "transparent keeps the io::Error as the source"
        );
        assert!(Chain(&e).to_string().ends_with(&eperm().to_string()));
    }

    #[test]
    fn every_interface_problem_is_in_the_one_message() {
        let e = Error::Interfaces(vec![
            InterfaceProblem::Missing {
                role: Role::Upstream,
                name: "eth9".into(),
                config: "relay.ron".into(),
            },
            InterfaceProblem::NotEthernet {
                role: Role::Downstream,
                name: "wg0".into(),
                hw_type: 65534,
            },
        ]);
        assert_eq!(
            e.to_string(),
            "cannot start: uplink \"eth9\" does not exist (check `ip link show eth9`, create \
             it, or fix relay.ron); downstream port \"wg0\" is not an Ethernet interface \
             (ARPHRD type 65534); the uplink needs link-layer addresses, and a device \
             without them (tun, WireGuard, PPP) can only be a downstream port, served from \
             the routing table"
        );
    }
}
