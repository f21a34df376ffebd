//! The config file as serde reads it, before validation: strings stay strings so that
//! every bad prefix or duration can be reported with its position, not just the first.

use serde::Deserialize;

/// Top level of the file. Defaults live here and in [`super::Config`]'s docs and
/// `examples/ndprelay.ron`; keep the three in step (a test checks the example).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "ndprelay")]
pub(crate) struct RawConfig {
    pub uplink: String,
    pub downstream: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub static_prefixes: Vec<String>,
    #[serde(default = "yes")]
    pub ra_relay: bool,
    /// `Option` so an explicit value that the `forwarding` mode ignores can be warned about.
    #[serde(default)]
    pub install_routes: Option<bool>,
    #[serde(default)]
    pub forwarding: Forwarding,
    #[serde(default)]
    pub ra_source: RaSourceKey,
    #[serde(default)]
    pub fast_path: Option<String>,
    /// `Option`: not set means "when the daemon can" (see [`super::InKernel`]).
    #[serde(default)]
    pub fast_path_in_kernel: Option<bool>,
    /// `Option`: not set means "when the daemon can" (see [`super::InKernel`]).
    #[serde(default)]
    pub relay_in_kernel: Option<bool>,
    #[serde(default)]
    pub in_kernel_attach: InKernelAttach,
    #[serde(default = "yes")]
    pub honour_proxy_bit: bool,
    #[serde(default)]
    pub disable_on_rogue_ra: bool,
    #[serde(default = "yes")]
    pub announce: bool,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub timers: RawTimers,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub control_socket: Option<String>,
    #[serde(default)]
    pub fix_sysctls: bool,
    #[serde(default)]
    pub dump_dir: Option<String>,
    #[serde(default)]
    pub state_file: Option<String>,
    #[serde(default)]
    pub log: Option<LogLevel>,
    #[serde(default)]
    pub log_format: LogFormat,
    pub metrics_listen: Option<String>,
}

/// `timers: (...)`: durations as text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "timers")]
pub(crate) struct RawTimers {
    #[serde(default)]
    pub retrans_timer: Option<String>,
    #[serde(default)]
    pub reachable_time: Option<String>,
    #[serde(default)]
    pub delay_first_probe: Option<String>,
    #[serde(default)]
    pub stale_lifetime: Option<String>,
    #[serde(default)]
    pub negative_cache: Option<String>,
    #[serde(default)]
    pub ra_min_interval: Option<String>,
    #[serde(default)]
    pub proxy_disable_hold: Option<String>,
    #[serde(default)]
    pub ra_wait: Option<String>,
    #[serde(default)]
    pub own_ra_interval: Option<String>,
}

/// `limits: (...)`: counts, read wide so range errors get our own message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "limits")]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub max_probes: Option<u64>,
    #[serde(default)]
    pub max_bindings: Option<u64>,
    #[serde(default)]
    pub max_bindings_per_port: Option<u64>,
    #[serde(default)]
    pub max_bindings_per_mac: Option<u64>,
    #[serde(default)]
    pub max_pending: Option<u64>,
    #[serde(default)]
    pub max_pending_per_port: Option<u64>,
    #[serde(default)]
    pub ns_rate: Option<u64>,
    #[serde(default)]
    pub ns_burst: Option<u64>,
    #[serde(default)]
    pub ns_rate_per_port: Option<u64>,
    #[serde(default)]
    pub ns_burst_per_port: Option<u64>,
    #[serde(default)]
    pub rs_rate: Option<u64>,
}

fn yes() -> bool {
    true
}

/// `forwarding:` who moves unicast data between segments.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Forwarding {
    /// The kernel forwards; ndprelay installs /128 routes if `install_routes` (default).
    #[default]
    Kernel,
    /// ndprelay forwards frames itself (RFC 4389 §4.1 bridge-like); no routes.
    Userspace,
    /// Nobody: ND relay only, no routes (someone else routes, or tests).
    Off,
}

/// `in_kernel_attach:` how `ndprelay run` hooks its eBPF programs into a port's ingress.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum InKernelAttach {
    /// tcx where the kernel has it (Linux 6.6+), otherwise a tc filter.
    #[default]
    Auto,
    /// tcx only: without it the programs are not attached.
    Tcx,
    /// A `bpf` filter on the port's `clsact` qdisc (Linux 5.10+), even where tcx exists.
    Tc,
}

/// `ra_source:` source address of relayed RAs (NDP reference §1.3).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RaSourceKey {
    /// Keep the router's link-local (pure RFC 4389).
    #[default]
    Router,
    /// The egress port's link-local (odhcpd, ChromiumOS); PIO L is cleared.
    Relay,
}

/// `log:` default log level when neither `RUST_LOG` nor `-v`/`-q` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(missing_docs)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `log_format:` how `ndprelay run` writes its log lines on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message`, for people (journald adds its own time too).
    #[default]
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `message`, and an event's
    /// fields), for journald/Loki/Elastic pipelines.
    Json,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => Self::Off,
            LogLevel::Error => Self::Error,
            LogLevel::Warn => Self::Warn,
            LogLevel::Info => Self::Info,
            LogLevel::Debug => Self::Debug,
            LogLevel::Trace => Self::Trace,
        }
    }
}
