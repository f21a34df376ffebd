//! Command line: `run`, `check`, `status`, `replay`, `explain` and the top-level
//! `--scenario`.
//!
//! Argument structs only (clap derive) plus the small pure helpers `main.rs` needs to
//! turn them into output: log level, the `check` summary, exit codes. No I/O here.

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{Config, format_duration, interface_name_problem};
use crate::engine::{DataPlane, PrefixMode, RaSource};
pub use crate::replay::Input;
use crate::wire::Mac;

pub mod instance;

/// Exit status: the config (or another input) is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: usage error (clap's own) or a feature not built into this binary yet.
pub const EXIT_UNSUPPORTED: u8 = 2;

const ABOUT: &str = "Userspace IPv6 NDP relay (RFC 4389 bridge-like ND proxy)";

const LONG_ABOUT: &str = "\
Userspace IPv6 NDP relay (RFC 4389 bridge-like ND proxy).

ndprelay sits between an uplink, where an ISP's /64 is on-link, and downstream segments
(guest bridges, a LAN). It relays NS, NA, RS, RA and Redirect across the segments with
the link-layer addresses rewritten to its own MACs, learns which address lives behind
which port, and installs host routes (or forwards itself) so data flows.

The same engine runs live (`run`), in a simulated lab (`--scenario`) and on captures
(`replay`).";

const EXAMPLES: &str = "\
Examples:
  Validate a config and print what it means:
    ndprelay check -c /etc/ndprelay.ron

  Run the relay in the foreground, logging to stderr (-v for debug, -vv for trace):
    ndprelay run -c /etc/ndprelay.ron -v

  Ask the running daemon for its bindings and counters:
    ndprelay status --json

  Ask it why one address is (not) reachable, and what to do next:
    ndprelay explain 2001:db8:1::10

  Replay captures taken on each port and explain one address:
    ndprelay replay -c lab.ron --input eth0=uplink.pcapng --input br0=guests.pcapng \\
        --explain 2001:db8:1::10

  Simulate a lab topology, writing a pcapng per segment and a diagram:
    ndprelay --scenario scenarios/home.ron --pcap-dir out/ --diagram out/home.svg

  Try the production config in that lab before deploying it:
    ndprelay --scenario scenarios/home.ron --config /etc/ndprelay.ron --rename eth0=wan,br0=lan

Logging: RUST_LOG (e.g. RUST_LOG=ndprelay=debug) overrides -v/-q, which override the
config's `log` key; the default is info.

Exit status: 0 success; 1 invalid config or input, or a runtime failure; 2 usage error,
or a feature this build does not include yet.

Config reference: examples/ndprelay.ron lists every key with its default.";

/// `ndprelay`: the whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "ndprelay",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    arg_required_else_help = true,
    subcommand_negates_reqs = true,
    propagate_version = true
)]
pub struct Cli {
    /// Verbosity and quiet flags, valid before or after the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The top-level lab form `ndprelay --scenario FILE ...`.
    #[command(flatten)]
    pub scenario: Option<ScenarioArgs>,

    /// A subcommand (`run`, `check`, `status`, `replay`, `explain`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the user asked for, once clap has checked the arguments.
#[derive(Debug)]
pub enum Invocation<'a> {
    /// `ndprelay --scenario FILE ...`
    Scenario(&'a ScenarioArgs),
    /// A subcommand.
    Command(&'a Command),
}

impl Cli {
    /// The one thing to do; a usage error (exit 2 via [`clap::Error::exit`]) when both
    /// `--scenario` and a subcommand, or neither, were given.
    pub fn invocation(&self) -> Result<Invocation<'_>, clap::Error> {
        let usage = |msg: &str| {
            use clap::CommandFactory as _;
            clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, msg)
                .format(&mut Self::command())
        };
        match (&self.command, &self.scenario) {
            (Some(c), None) => Ok(Invocation::Command(c)),
            (None, Some(s)) => Ok(Invocation::Scenario(s)),
            (Some(_), Some(_)) => Err(usage(
                "--scenario and its flags are a form of their own and cannot be combined with a subcommand\n",
            )),
            (None, None) => Err(usage("give a subcommand or --scenario FILE (see --help)\n")),
        }
    }
}

/// Flags every form accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// More log output: -v debug, -vv trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors in the log (RUST_LOG overrides).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl GlobalArgs {
    /// The log level: `-q`/`-v` if given, else the config's `log`, else info.
    /// (`RUST_LOG` is applied on top by the logger.)
    pub fn log_level(&self, config: Option<log::LevelFilter>) -> log::LevelFilter {
        match (self.quiet, self.verbose) {
            (true, _) => log::LevelFilter::Error,
            (false, 0) => config.unwrap_or(log::LevelFilter::Info),
            (false, 1) => log::LevelFilter::Debug,
            (false, _) => log::LevelFilter::Trace,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay on real interfaces, in the foreground.
    ///
    /// Logs go to stderr, so a systemd unit runs it as is.
    #[command(
        after_long_help = "Example:\n  ndprelay run -c /etc/ndprelay.ron --dump /var/tmp/ndprelay"
    )]
    Run(RunArgs),

    /// Validate a config file and summarise what it means.
    ///
    /// Prints `OK: FILE` and a summary (exit status 0), or every error with its
    /// file:line:column and a hint (exit status 1). Interfaces are not looked up, so
    /// this runs anywhere, without root.
    #[command(after_long_help = "Example:\n  ndprelay check -c /etc/ndprelay.ron")]
    Check(CheckArgs),

    /// Show the running daemon's ports, bindings and counters.
    #[command(
        after_long_help = "Examples:\n  ndprelay status\n  ndprelay status --control-socket /run/ndprelay-lab.sock --json\n  ndprelay status --prometheus"
    )]
    Status(StatusArgs),

    /// Explain what the running daemon knows about one address, and what to do next.
    ///
    /// Says in plain words whether ADDR is in a proxied prefix (which one, from which
    /// config key), which port it is bound to with which MAC and in which state since
    /// when, whether its /128 route is installed and whether the kernel's FIB agrees,
    /// whether its ports proxy (if not: why, and until when), the last decisions the
    /// relay made about frames for it (with times), the uplink's last Neighbor
    /// Solicitation for it, and the one thing to do next when something is wrong (a
    /// sysctl, a missing RA, an RA that disabled a port, a rate limit, a route missing
    /// from the FIB), with the command. `replay --explain ADDR` ends with the same
    /// block for a capture.
    #[command(after_long_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),

    /// Replay pcap/pcapng captures through the engine and show its decisions.
    ///
    /// Captures taken on the real ports are fed offline to the same engine, with their
    /// timestamps as time; the listing shows, packet by packet, what the relay decided
    /// and why, and `--output` keeps the frames it would have sent.
    #[command(after_long_help = "Examples:\n  \
        ndprelay replay -c lab.ron --input eth0=uplink.pcapng --input br0=guests.pcapng\n  \
        ndprelay replay -c lab.ron --input both-ports.pcapng --json --output sent.pcapng\n  \
        ndprelay replay -c lab.ron --input eth0=up.pcap --explain 2001:db8:1::10")]
    Replay(ReplayArgs),

    /// Write the manual pages or a shell completion script.
    ///
    /// The Debian package installs both; from a source build, e.g.
    /// `ndprelay generate man /usr/local/share/man/man8` (then move ndprelay.ron.5 to
    /// man5) and `ndprelay generate completion bash > /etc/bash_completion.d/ndprelay`.
    #[command(after_long_help = "Examples:\n  \
        ndprelay generate man target/man\n  \
        ndprelay generate completion zsh > _ndprelay")]
    Generate(GenerateArgs),
}

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  ndprelay explain 2001:db8:1::10
  ndprelay explain 2001:db8:1::10 --json | jq .verdict
  ndprelay explain fe80::1 --control-socket /run/ndprelay-lab.sock

Verdicts (`verdict` in --json): healthy, not_proxied (outside every proxied prefix),
unknown (no guest on a downstream port answered for it), problem (`next_step` says
what to do and `command` how).

Exit status: 0 with an answer, whatever the verdict; 1 when no daemon answers.";

/// `ndprelay explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The IPv6 address to explain, e.g. 2001:db8:1::10.
    #[arg(value_name = "ADDR")]
    pub addr: Ipv6Addr,

    /// Which daemon.
    #[command(flatten)]
    pub daemon: DaemonArgs,

    /// Machine-readable output: one JSON document (`version` 1).
    #[arg(long)]
    pub json: bool,
}

/// `ndprelay run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Config file (RON), e.g. /etc/ndprelay.ron.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Control socket for `ndprelay status` (overrides the config's `control_socket`).
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Write a pcapng per port of what it received and sent into DIR (overrides
    /// the config's `dump_dir`).
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,

    /// Save bindings and loop state to FILE for the next start, and restore them from it
    /// (overrides the config's `state_file`).
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Log lines as text or as one JSON object per line (overrides the config's
    /// `log_format`).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
}

/// `ndprelay check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Config file (RON) to validate.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Which running daemon a client command asks: `-n NAME`, `--control-socket`, or the
/// `control_socket` of `-c FILE`, else the default socket.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Control socket of the daemon [default: the config's `control_socket`, else
    /// /run/ndprelay.sock].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Read the control socket path from this config file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The instance NAME of ndprelay@NAME.service: its control socket
    /// /run/ndprelay/NAME.sock.
    #[arg(short, long, value_name = "NAME", conflicts_with_all = ["control_socket", "config"])]
    pub name: Option<instance::InstanceName>,
}

/// `ndprelay status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Which daemon.
    #[command(flatten)]
    pub daemon: DaemonArgs,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,

    /// The Prometheus text format, as `metrics_listen` serves it (for node_exporter's
    /// textfile collector).
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
}

/// `ndprelay generate`: what the package installs besides the binary.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[command(subcommand)]
    pub what: Generate,
}

/// `ndprelay generate man|completion`.
#[derive(Debug, Clone, Subcommand)]
pub enum Generate {
    /// Write ndprelay.8, one ndprelay-COMMAND.8 per subcommand and ndprelay.ron.5 into DIR.
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL to stdout.
    Completion {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: crate::manual::Shell,
    },
}

/// `ndprelay replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Config file (RON) describing the ports and policy the captures are replayed against.
    #[arg(short, long, value_name = "CONFIG")]
    pub config: PathBuf,

    /// A capture: PORT=FILE for a capture taken on one configured interface, or just
    /// FILE for a pcapng whose interface names are the ports. Repeatable.
    #[arg(short, long = "input", value_name = "PORT=FILE", required = true)]
    pub inputs: Vec<Input>,

    /// The relay's MAC on PORT, e.g. br0=02:00:00:00:00:01. Repeatable. Ports without
    /// one are inferred from the captures (or get a placeholder, said so).
    #[arg(long = "mac", value_name = "PORT=MAC")]
    pub macs: Vec<PortMac>,

    /// Machine-readable output: one JSON object per line.
    #[arg(long)]
    pub json: bool,

    /// Write every frame the relay would have sent to FILE (pcapng, one interface per
    /// port).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Show only what concerns this address.
    #[arg(long, value_name = "ADDR")]
    pub explain: Option<Ipv6Addr>,

    /// A /128 route an earlier run left, e.g. 2001:db8:1::10=br0: the engine starts as
    /// a restarted daemon that found it, and the listing shows its re-verification.
    /// Repeatable.
    #[arg(long = "leftover-route", value_name = "ADDR=PORT")]
    pub leftover_routes: Vec<LeftoverRoute>,

    /// Start the relay from zero, as the daemon does: RS upstream, and each downstream
    /// port proxies only after two P-bit RAs (a router's, or the relay's own after
    /// `timers.ra_wait`). Default: ports proxy from the first frame, as in a relay that
    /// has been running (most captures hold no RA).
    #[arg(long)]
    pub cold_start: bool,
}

/// `--leftover-route ADDR=PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverRoute {
    /// The route's address.
    pub addr: Ipv6Addr,
    /// The configured interface it points to.
    pub port: String,
}

impl FromStr for LeftoverRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, port) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not ADDR=PORT, e.g. 2001:db8:1::10=br0"))?;
        let addr = addr.parse().map_err(|_| {
            format!("`{addr}` is not an IPv6 address; expected e.g. 2001:db8:1::10=br0")
        })?;
        if let Some(problem) = interface_name_problem(port) {
            return Err(format!("{problem}; expected ADDR=PORT"));
        }
        Ok(Self {
            addr,
            port: port.to_owned(),
        })
    }
}

/// `ndprelay --scenario FILE [...]`: the simulated lab.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Run the lab scenario in FILE (RON) in virtual time and print a timeline and a
    /// verdict per expectation; no root needed.
    #[arg(long, value_name = "FILE", required = true)]
    pub scenario: PathBuf,

    /// Seed for the scenario's randomness (overrides the scenario's own seed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write one pcapng per segment into DIR (opens in Wireshark).
    #[arg(long, value_name = "DIR")]
    pub pcap_dir: Option<PathBuf>,

    /// Draw the topology to FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub diagram: Option<PathBuf>,

    /// Attach segment SEG to the real TAP device IFNAME (needs CAP_NET_ADMIN).
    /// Repeatable.
    #[arg(long, value_name = "SEG=IFNAME")]
    pub tap: Vec<TapSpec>,

    /// Run the scenario's relay with the daemon's config FILE (the one `ndprelay run -c`
    /// will use) instead of the scenario's inline config, to try a change in the lab
    /// before deploying it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// With --config: the config's interface IF is the scenario's segment SEG, e.g.
    /// `--rename eth0=wan,br0=lan`. Repeatable or comma-separated.
    #[arg(
        long,
        value_name = "IF=SEG",
        value_delimiter = ',',
        requires = "config"
    )]
    pub rename: Vec<Rename>,

    /// With --config: which relay runs it, when the scenario has several.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub relay: Option<String>,
}

/// `--rename IF=SEG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// Interface name in the config file.
    pub interface: String,
    /// Segment name in the scenario.
    pub segment: String,
}

impl FromStr for Rename {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (interface, segment) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not IF=SEG, e.g. eth0=wan"))?;
        if let Some(problem) = interface_name_problem(interface) {
            return Err(format!("{problem}; expected IF=SEG"));
        }
        if segment.is_empty() {
            return Err(format!("no segment after `{interface}=`; expected IF=SEG"));
        }
        Ok(Self {
            interface: interface.to_owned(),
            segment: segment.to_owned(),
        })
    }
}

/// `--mac PORT=MAC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMac {
    /// The configured interface.
    pub port: String,
    /// The relay's MAC on it.
    pub mac: Mac,
}

impl FromStr for PortMac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (port, mac) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not PORT=MAC, e.g. br0=02:00:00:00:00:01"))?;
        if let Some(problem) = interface_name_problem(port) {
            return Err(format!("{problem}; expected PORT=MAC"));
        }
        let mac = mac.parse().map_err(|_| {
            format!("`{mac}` is not a MAC address; expected e.g. 02:00:00:00:00:01")
        })?;
        Ok(Self {
            port: port.to_owned(),
            mac,
        })
    }
}

/// `--tap SEG=IFNAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSpec {
    /// Segment name in the scenario.
    pub segment: String,
    /// TAP device to attach it to.
    pub ifname: String,
}

impl FromStr for TapSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (segment, ifname) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not SEG=IFNAME, e.g. lan=tap0"))?;
        if segment.is_empty() {
            return Err(format!(
                "no segment before `={ifname}`; expected SEG=IFNAME"
            ));
        }
        if let Some(problem) = interface_name_problem(ifname) {
            return Err(format!("{problem}; expected SEG=IFNAME, e.g. lan=tap0"));
        }
        Ok(Self {
            segment: segment.to_owned(),
            ifname: ifname.to_owned(),
        })
    }
}

/// What `ndprelay check` prints on success: `OK: <file>` and what the config means.
/// What `check` found of a downstream interface on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// An Ethernet interface: NS and NA relayed.
    Ethernet,
    /// No link-layer addresses (tun, WireGuard, PPP): a routed port.
    Routed,
    /// Another link type (ARPHRD), which `run` refuses.
    Other(u16),
    /// No interface of that name now.
    Missing,
    /// The interfaces could not be read.
    Unknown,
}

/// How a downstream port of each kind is served, for `check`.
fn served(found: Found, data_plane: DataPlane) -> String {
    const EITHER: &str = "relayed if it is Ethernet; answered from the main routing table \
                          if it has no link-layer address (tun, WireGuard, PPP)";
    match found {
        Found::Ethernet => "Ethernet: NS, NA and RAs relayed (RFC 4389)".to_owned(),
        Found::Routed if data_plane == DataPlane::Userspace => {
            "routed: answered from the main routing table, but forwarding: Userspace cannot \
             send to it (use forwarding: Kernel)"
                .to_owned()
        }
        Found::Routed => "routed: answered from the main routing table".to_owned(),
        Found::Other(t) => format!("not Ethernet (ARPHRD type {t}): `ndprelay run` refuses it"),
        Found::Missing => format!("not present now: {EITHER}"),
        Found::Unknown => format!("interfaces not readable here: {EITHER}"),
    }
}

/// `ndprelay check`'s summary of `config`; `found` says what each downstream interface
/// is on this host.
pub fn check_summary(config: &Config, found: impl Fn(&str) -> Found) -> String {
    let mut out = format!("OK: {}\n", config.source);
    let list = |mode| {
        config
            .prefixes_of(mode)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let relay = list(PrefixMode::Relay);
    let fixed = list(PrefixMode::Static);
    let data_plane = match config.data_plane() {
        DataPlane::KernelRoutes => "kernel forwarding, /128 routes installed by ndprelay",
        DataPlane::Userspace => "userspace forwarding by ndprelay",
        DataPlane::None => match config.forwarding {
            crate::config::Forwarding::Kernel => {
                "kernel forwarding, routes managed elsewhere (install_routes: false)"
            }
            _ => "none (ND relay only)",
        },
    };
    let ra = match (config.ra_relay, config.ra_source) {
        (false, _) => "off".to_owned(),
        (true, RaSource::KeepRouter) => "on, source: router's link-local".to_owned(),
        (true, RaSource::Relay) => "on, source: relay's link-local (PIO L cleared)".to_owned(),
    };
    let fast_path = config.fast_path.map_or("off".to_owned(), |d| {
        format!("bindings confirmed within {}", format_duration(d))
    });
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  uplink:      {}", config.uplink);
    let _ = writeln!(out, "  downstream:  {}", config.downstream.join(", "));
    for d in &config.downstream {
        let name = format!("{d}:");
        let how = served(found(d), config.data_plane());
        let _ = writeln!(out, "    {name:<11}{how}");
    }
    if !relay.is_empty() {
        let _ = writeln!(out, "  prefixes:    {relay} (relay)");
    }
    if !fixed.is_empty() {
        let _ = writeln!(out, "  static:      {fixed} (answered for every address)");
    }
    let _ = writeln!(out, "  data plane:  {data_plane}");
    let _ = writeln!(out, "  RA relay:    {ra}");
    let _ = writeln!(out, "  fast path:   {fast_path}");
    let announce = if config.announce {
        "on, each guest's address to the uplink when first confirmed (unsolicited NA)"
    } else {
        "off"
    };
    let _ = writeln!(out, "  announce:    {announce}");
    let _ = writeln!(out, "  control:     {}", config.control_socket.display());
    out
}

#[cfg(test)]
mod test {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ndprelay").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn explain_takes_an_address_and_the_status_flags() {
        let cli = parse(&[
            "explain",
            "2001:db8:1::10",
            "--json",
            "--control-socket",
            "/tmp/s",
        ])
        .expect("parses");
        let Some(Command::Explain(e)) = &cli.command else {
            panic!("not explain: {cli:?}")
        };
        assert_eq!(e.addr, "2001:db8:1::10".parse::<Ipv6Addr>().unwrap());
        assert!(e.json);
        assert_eq!(e.daemon.control_socket, Some(PathBuf::from("/tmp/s")));
        let cli = parse(&["explain", "-c", "/etc/n.ron", "fe80::1"]).expect("parses");
        let Some(Command::Explain(e)) = &cli.command else {
            panic!("not explain: {cli:?}")
        };
        assert_eq!(e.daemon.config, Some(PathBuf::from("/etc/n.ron")));
        assert!(!e.json && e.daemon.control_socket.is_none());
        for bad in [
            &["explain"][..],
            &["explain", "10.0.0.1"],
            &["explain", "2001:db8::/64"],
            &["explain", "2001:db8::1", "2001:db8::2"],
        ] {
            let err = parse(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        let help = Cli::command()
            .find_subcommand_mut("explain")
            .expect("explain")
            .render_long_help()
            .to_string();
        assert!(
            help.contains("ndprelay explain 2001:db8:1::10 --json"),
            "{help}"
        );
        assert!(help.contains("the kernel's FIB agrees"), "{help}");
    }

    #[test]
    fn subcommands_parse_with_their_flags() {
        let cli = parse(&[
            "run",
            "-c",
            "/etc/n.ron",
            "--control-socket",
            "/tmp/s",
            "--dump",
            "d",
            "--state-file",
            "/var/lib/ndprelay/state",
        ])
        .expect("parses");
        let Some(Command::Run(run)) = &cli.command else {
            panic!("not run: {cli:?}")
        };
        assert_eq!(run.config, PathBuf::from("/etc/n.ron"));
        assert_eq!(run.control_socket, Some(PathBuf::from("/tmp/s")));
        assert_eq!(run.dump, Some(PathBuf::from("d")));
        assert_eq!(
            run.state_file,
            Some(PathBuf::from("/var/lib/ndprelay/state"))
        );

        let cli = parse(&[
            "replay",
            "-c",
            "c.ron",
            "--input",
            "eth0=a.pcap",
            "-i",
            "b.pcapng",
            "--json",
            "--explain",
            "2001:db8::1",
            "--mac",
            "eth0=02:00:00:00:00:01",
            "--leftover-route",
            "2001:db8::10=br0",
            "--cold-start",
        ])
        .expect("parses");
        let Ok(Invocation::Command(Command::Replay(r))) = cli.invocation() else {
            panic!("not replay: {cli:?}")
        };
        assert_eq!(
            r.inputs,
            [
                Input {
                    port: Some("eth0".into()),
                    path: "a.pcap".into()
                },
                Input {
                    port: None,
                    path: "b.pcapng".into()
                }
            ]
        );
        assert_eq!(
            r.macs,
            [PortMac {
                port: "eth0".into(),
                mac: Mac([2, 0, 0, 0, 0, 1])
            }]
        );
        assert!(r.json);
        assert_eq!(r.explain, Some("2001:db8::1".parse().expect("literal")));
        assert!(r.cold_start);
        assert_eq!(
            r.leftover_routes,
            [LeftoverRoute {
                addr: "2001:db8::10".parse().expect("literal"),
                port: "br0".into()
            }]
        );
        for bad in ["2001:db8::10", "br0=2001:db8::10", "2001:db8::10="] {
            let err = parse(&["replay", "-c", "c", "-i", "x", "--leftover-route", bad]);
            assert!(err.is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn scenario_is_a_top_level_form() {
        let cli = parse(&[
            "--scenario",
            "s.ron",
            "--seed",
            "7",
            "--tap",
            "lan=tap0",
            "--tap",
            "wan=tap1",
            "-vv",
        ])
        .expect("parses");
        let Ok(Invocation::Scenario(s)) = cli.invocation() else {
            panic!("not a scenario: {cli:?}")
        };
        assert_eq!(s.scenario, PathBuf::from("s.ron"));
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.tap.len(), 2);
        assert_eq!(s.tap[1].ifname, "tap1");
        assert_eq!(cli.global.log_level(None), log::LevelFilter::Trace);
        // Scenario flags need --scenario, and do not mix with subcommands.
        assert!(parse(&["--seed", "7"]).is_err());
        let both = parse(&["--scenario", "s.ron", "check", "-c", "x"]);
        assert!(both.is_err() || both.is_ok_and(|cli| cli.invocation().is_err()));
    }

    #[test]
    fn bad_specs_are_usage_errors() {
        assert!(parse(&["--scenario", "s", "--tap", "lan"]).is_err());
        assert!(parse(&["--scenario", "s", "--tap", "lan=a/b"]).is_err());
        assert!(parse(&["replay", "-c", "c", "--input", "=x.pcap"]).is_err());
        assert!(
            parse(&["replay", "-c", "c"]).is_err(),
            "--input is required"
        );
        assert!(parse(&["replay", "-c", "c", "-i", "x", "--explain", "10.0.0.1"]).is_err());
        assert!(parse(&["replay", "-c", "c", "-i", "x", "--mac", "br0"]).is_err());
        assert!(parse(&["replay", "-c", "c", "-i", "x", "--mac", "br0=02:00"]).is_err());
    }

    #[test]
    fn verbosity_flags_choose_the_level() {
        let level = |args: &[&str], config| parse(args).expect("parses").global.log_level(config);
        assert_eq!(level(&["check", "-c", "x"], None), log::LevelFilter::Info);
        assert_eq!(
            level(&["check", "-c", "x"], Some(log::LevelFilter::Warn)),
            log::LevelFilter::Warn
        );
        assert_eq!(
            level(&["-v", "check", "-c", "x"], None),
            log::LevelFilter::Debug
        );
        assert_eq!(
            level(&["check", "-c", "x", "-q"], None),
            log::LevelFilter::Error
        );
        assert!(parse(&["check", "-c", "x", "-q", "-v"]).is_err());
    }

    #[test]
    fn check_summary_says_what_the_config_means() {
        let c = Config::from_str_with_path(
            "(uplink: \"eth0\", downstream: [\"br0\", \"br1\"], prefixes: [\"2001:db8:1::/64\"], static_prefixes: [\"2001:db8:64::/96\"], forwarding: Userspace, fast_path: \"2s\", ra_source: Relay)",
            "x.ron",
        )
        .expect("parses");
        let s = check_summary(&c, |name| match name {
            "br0" => Found::Ethernet,
            _ => Found::Missing,
        });
        assert!(s.starts_with("OK: x.ron\n"), "{s}");
        for needle in [
            "uplink:      eth0\n",
            "downstream:  br0, br1\n",
            "prefixes:    2001:db8:1::/64 (relay)\n",
            "static:      2001:db8:64::/96",
            "data plane:  userspace forwarding",
            "RA relay:    on, source: relay's link-local",
            "fast path:   bindings confirmed within 2s",
            "announce:    on, each guest's address to the uplink",
            "control:     /run/ndprelay.sock",
            "    br0:       Ethernet: NS, NA and RAs relayed (RFC 4389)\n",
            "    br1:       not present now: relayed if it is Ethernet; answered from the main \
             routing table if it has no link-layer address (tun, WireGuard, PPP)\n",
        ] {
            assert!(s.contains(needle), "{s:?} lacks {needle:?}");
        }
        let off = Config::from_str_with_path(
            "(uplink: \"eth0\", downstream: [\"br0\"], prefixes: [\"2001:db8:1::/64\"], announce: false)",
            "x.ron",
        )
        .expect("parses");
        assert!(check_summary(&off, |_| Found::Unknown).contains("announce:    off\n"));
    }

    #[test]
    fn check_says_how_a_routed_port_is_served() {
        let c = Config::from_str_with_path(
            "(uplink: \"eth0\", downstream: [\"wg0\", \"sit1\"], prefixes: [\"2001:db8:1::/64\"])",
            "x.ron",
        )
        .expect("parses");
        let found = |name: &str| match name {
            "wg0" => Found::Routed,
            _ => Found::Other(776),
        };
        let s = check_summary(&c, found);
        assert!(
            s.contains("    wg0:       routed: answered from the main routing table\n"),
            "{s}"
        );
        assert!(
            s.contains("sit1:      not Ethernet (ARPHRD type 776)"),
            "{s}"
        );
        let c = Config::from_str_with_path(
            "(uplink: \"eth0\", downstream: [\"wg0\"], prefixes: [\"2001:db8:1::/64\"], forwarding: Userspace)",
            "x.ron",
        )
        .expect("parses");
        assert!(check_summary(&c, found).contains("(use forwarding: Kernel)"));
    }

    #[test]
    fn status_prometheus_conflicts_with_json() {
        let cli = parse(&["status", "--prometheus"]).expect("parses");
        let Ok(Invocation::Command(Command::Status(s))) = cli.invocation() else {
            panic!("not status: {cli:?}")
        };
        assert!(s.prometheus && !s.json);
        let err = parse(&["status", "--prometheus", "--json"]).expect_err("conflict");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
