//! `ndprelay` binary: parses the command line and dispatches to the library; wiring only.
//!
//! Each form has one small function here (`run_daemon`, `check`, `status`, `explain`,
//! `run_replay`, `run_scenario`, `generate`) so a driver is connected by replacing one body.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;

use ndprelay::cli::{
    self, CheckArgs, Cli, Command, EXIT_INVALID, ExplainArgs, GlobalArgs, Invocation, PortMac,
    ReplayArgs, RunArgs, ScenarioArgs, StatusArgs,
};
use ndprelay::config::{Config, DEFAULT_CONTROL_SOCKET, LogFormat, ResolvedPort};
use ndprelay::engine::Role;
use ndprelay::live::netlink::consts::ARPHRD_ETHER;
use ndprelay::replay::{self, ReplayOptions};

/// Captures carry no MTU; Ethernet's is what the ports almost always had.
const REPLAY_MTU: u32 = 1500;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let invocation = cli.invocation().unwrap_or_else(|e| e.exit());
    // `run` starts logging once its config (which may set the level) is read.
    let logging = || init_logging(&cli.global, None, LogFormat::Text);
    let result = match invocation {
        Invocation::Command(Command::Run(args)) => run_daemon(&cli.global, args),
        Invocation::Command(Command::Check(args)) => {
            logging();
            check(args)
        }
        Invocation::Command(Command::Status(args)) => {
            logging();
            status(args)
        }
        Invocation::Command(Command::Explain(args)) => {
            logging();
            explain(args)
        }
        Invocation::Command(Command::Replay(args)) => {
            logging();
            run_replay(args)
        }
        Invocation::Command(Command::Generate(args)) => generate(args),
        Invocation::Scenario(args) => {
            logging();
            run_scenario(args)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("ndprelay: error: {e:#}");
        ExitCode::from(EXIT_INVALID)
    })
}

/// stderr logging: `-v`/`-q`, else the config's `log`, else info; `RUST_LOG` wins.
fn init_logging(global: &GlobalArgs, config: Option<log::LevelFilter>, format: LogFormat) {
    ndprelay::logging::init(global.log_level(config), format);
}

/// Loads a config, printing its warnings, or printing every error (exit 1).
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    let config = load_quietly(path)?;
    for warning in &config.warnings {
        eprintln!("{warning}");
    }
    Ok(config)
}

/// Loads a config, printing every error (exit 1); its warnings are the caller's.
fn load_quietly(path: &std::path::Path) -> Result<Config, ExitCode> {
    match Config::load(path) {
        Ok(config) => Ok(config),
        Err(e) => {
            eprintln!("{e}");
            let n = e.errors().len();
            eprintln!(
                "{}: {n} error{}; see examples/ndprelay.ron for every key",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    Ok(match load(&args.config) {
        Ok(config) => {
            // Best effort: `check` also runs where the interfaces are not (yet) there.
            let links = ndprelay::live::netlink::Netlink::route()
                .and_then(|mut n| n.links())
                .ok();
            let found = |name: &str| match &links {
                None => cli::Found::Unknown,
                Some(links) => match links.iter().find(|l| l.name == name) {
                    None => cli::Found::Missing,
                    Some(l) if l.is_routed() => cli::Found::Routed,
                    Some(l) if l.hw_type == ARPHRD_ETHER && l.mac.is_some() => cli::Found::Ethernet,
                    Some(l) => cli::Found::Other(l.hw_type),
                },
            };
            print!("{}", cli::check_summary(&config, found));
            print!("{}", ndprelay::live::check_host(&config));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

/// `ndprelay run`: validates the config, then runs the live driver in the foreground.
fn run_daemon(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = match load_quietly(&args.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    init_logging(
        global,
        config.log,
        args.log_format.unwrap_or(config.log_format),
    );
    // Through the logger, so that with `log_format: Json` they are JSON lines too.
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    let control_socket = args
        .control_socket
        .as_ref()
        .unwrap_or(&config.control_socket);
    let dump_dir = args.dump.as_ref().or(config.dump_dir.as_ref());
    log::debug!(
        "config {} ok; control socket {}, dumps {:?}",
        config.source,
        control_socket.display(),
        dump_dir
    );
    ndprelay::live::run(&ndprelay::live::RunOptions {
        config: args.config.clone(),
        control_socket: args.control_socket.clone(),
        dump_dir: args.dump.clone(),
        state_file: args.state_file.clone(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `ndprelay status`: asks the running daemon over its control socket.
fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let socket = match control_socket(&args.daemon) {
        Ok(socket) => socket,
        Err(code) => return Ok(code),
    };
    let result = if args.prometheus {
        ndprelay::live::status_prometheus(&socket, &mut std::io::stdout().lock())
    } else {
        ndprelay::live::status(&socket, args.json, &mut std::io::stdout().lock())
    };
    if result.is_err() && args.daemon.name.is_none() {
        instances_hint();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// After a failed `status` without `-n`: names the template unit's instances whose
/// sockets are in /run/ndprelay, as the operator probably meant one of them.
fn instances_hint() {
    let Ok(dir) = std::fs::read_dir(cli::instance::INSTANCE_SOCKET_DIR) else {
        return;
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".sock").map(str::to_owned))
        .take(32)
        .collect();
    names.sort();
    if !names.is_empty() {
        eprintln!(
            "ndprelay: instances of ndprelay@.service answer in {}: {} (ndprelay status -n NAME)",
            cli::instance::INSTANCE_SOCKET_DIR,
            names.join(", ")
        );
    }
}

/// `ndprelay generate`: the manual pages or a completion script, for the package.
fn generate(args: &cli::GenerateArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    match &args.what {
        cli::Generate::Man { dir } => {
            for path in ndprelay::manual::write_pages(dir).map_err(|e| {
                anyhow::anyhow!("writing the manual pages to {}: {e}", dir.display())
            })? {
                println!("{}", path.display());
            }
        }
        cli::Generate::Completion { shell } => {
            std::io::stdout().write_all(&ndprelay::manual::completion(*shell))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ndprelay explain`: asks the running daemon about one address.
fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let socket = match control_socket(&args.daemon) {
        Ok(socket) => socket,
        Err(code) => return Ok(code),
    };
    let result =
        ndprelay::live::explain(&socket, args.addr, args.json, &mut std::io::stdout().lock());
    if result.is_err() && args.daemon.name.is_none() {
        instances_hint();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The control socket a client command talks to: `-n NAME` (instance NAME of
/// ndprelay@.service; clap refuses it with the others), `--control-socket`, the
/// config's `control_socket`, else the default.
fn control_socket(daemon: &cli::DaemonArgs) -> Result<std::path::PathBuf, ExitCode> {
    let socket = match (&daemon.name, &daemon.control_socket, &daemon.config) {
        (Some(name), _, _) => cli::instance::control_socket(name),
        (None, Some(path), _) => path.clone(),
        (None, None, Some(config)) => load(config)?.control_socket,
        (None, None, None) => DEFAULT_CONTROL_SOCKET.into(),
    };
    log::debug!("control socket {}", socket.display());
    Ok(socket)
}

/// `ndprelay replay`: the config's ports with MACs given (`--mac`) or inferred from the
/// captures, then the replay driver writes its listing to stdout.
fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let ports: Vec<(String, Role)> = config
        .ports()
        .map(|(name, role)| (name.to_owned(), role))
        .collect();
    let known = || {
        ports
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut given = HashMap::new();
    for PortMac { port, mac } in &args.macs {
        anyhow::ensure!(
            ports.iter().any(|(n, _)| n == port),
            "--mac {port}={mac}: `{port}` is not an interface in {} (it has: {})",
            config.source,
            known()
        );
        given.insert(port.clone(), *mac);
    }
    let macs = replay::resolve_macs(&ports, &args.inputs, &given);
    let mut resolved = Vec::new();
    for ((name, _), (mac, source)) in ports.iter().zip(macs) {
        eprintln!("port {name}: relay MAC {mac} ({})", source.describe());
        resolved.push(ResolvedPort {
            name: name.clone(),
            mac,
            link_local: mac.link_local(),
            mtu: REPLAY_MTU,
            routed: false,
        });
    }
    let engine = config.engine_config(&resolved)?;
    let opts = ReplayOptions {
        json: args.json,
        output: args.output.clone(),
        explain: args.explain,
        keep_emitted: false,
        leftover_routes: args
            .leftover_routes
            .iter()
            .map(|r| (r.addr, r.port.clone()))
            .collect(),
        cold_start: args.cold_start,
    };
    // One write per 64 KiB, not per line: replay lists a million frames a second.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    replay::replay(engine, &args.inputs, &opts, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `ndprelay --scenario FILE`: the lab, perhaps with the daemon's config (`--config`).
fn run_scenario(args: &ScenarioArgs) -> anyhow::Result<ExitCode> {
    let opts = ndprelay::sim::RunOptions {
        seed: args.seed,
        pcap_dir: args.pcap_dir.clone(),
        diagram: args.diagram.clone(),
        taps: args
            .tap
            .iter()
            .map(|t| (t.segment.clone(), t.ifname.clone()))
            .collect(),
        config: args
            .config
            .as_ref()
            .map(|path| ndprelay::sim::production::ProductionConfig {
                path: path.clone(),
                renames: args
                    .rename
                    .iter()
                    .map(|r| (r.interface.clone(), r.segment.clone()))
                    .collect(),
                relay: args.relay.clone(),
            }),
    };
    let verdict = ndprelay::sim::run(&args.scenario, &opts, &mut std::io::stdout().lock())?;
    Ok(if verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
