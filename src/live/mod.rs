//! The live driver: the engine on real interfaces.
//!
//! Threads (DESIGN.md, "live driver"):
//!
//! 1. one capture thread per port reads an `AF_PACKET` socket (classic BPF filter for
//!    ICMPv6 ND, all-multicast) and hands each read's frames to the engine thread over a
//!    bounded crossbeam channel (`capture.rs`);
//! 2. the engine thread (the caller of [`run`]) owns the daemon and the engine: it takes
//!    those frames, the engine's timers, link events, signals, reloads and status
//!    requests, transmits at layer 2, applies /128 routes over rtnetlink, and reads the
//!    answer to what it relayed on the egress port itself (`engine_thread.rs`);
//! 3. a netlink thread follows links and IPv6 addresses (up/down, delete and re-create,
//!    MAC, MTU, link-local);
//! 4. a signal thread turns SIGHUP into a reload and SIGTERM/SIGINT into a clean stop;
//! 5. a control thread answers `ndprelay status` on a Unix socket (it asks the engine
//!    thread for the snapshot and renders the JSON itself).
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
mod capture;
pub mod control;
mod daemon;
mod droplog;
pub mod dump;
mod ebpf_asm;
pub(crate) mod ebpf_maps;
mod ebpf_prog;
#[cfg(test)]
mod ebpf_test_run;
mod engine_thread;
mod guard;
pub(crate) mod kernel_answer;
pub(crate) mod kernel_relay;
pub mod netlink;
mod nfnetlink;
#[cfg(feature = "libpcap")]
mod pcap_capture;
mod privileges;
pub mod sys;
pub mod sysctl;
mod tc;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use daemon::ROUTE_PROTOCOL;

/// What `ndprelay run` passes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The RON config file.
    pub config: PathBuf,
    /// Overrides the config's `control_socket`.
    pub control_socket: Option<PathBuf>,
    /// Overrides the config's `dump_dir`: rotating pcapng of every frame received and sent.
    pub dump_dir: Option<PathBuf>,
}

/// Why the daemon could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is missing or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Configured interfaces do not exist.
    #[error("{0}")]
    Interfaces(String),
    /// Sysctls are wrong and the config does not allow fixing them.
    #[error("{0}")]
    Sysctl(String),
    /// A needed capability is missing.
    #[error("{0}")]
    Capability(String),
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
    /// An rtnetlink request failed (links, addresses, routes, link events).
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    /// A system call failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause (shown in the message, not chained, so it is printed once).
        cause: io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |cause| Self::Io { what, cause }
    }
}

/// Runs the relay in the foreground until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions) -> Result<(), Error> {
    daemon::run(opts)
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
