//! The lab simulator: segments, simulated hosts and the real engine in virtual time.
//!
//! `ndprelay --scenario FILE.ron` runs a whole topology in one process: segments are
//! in-memory hubs ([`link`]), hosts are small IPv6 stacks ([`host`]), and each relay is
//! the real [`crate::engine::Engine`] with the userspace data plane. The [`runner`]
//! jumps a virtual clock to the earliest deadline of the event queue, the hosts and the
//! engines, so ten virtual minutes take milliseconds, and every random choice comes
//! from the scenario seed, so a run is reproducible bit for bit.
//!
//! The run loop, in order:
//!
//! 1. parse and validate the scenario ([`scenario`]); any error stops here with
//!    file:line:column and a hint, before anything runs;
//! 2. build segments, hosts and relays; start the hosts that are up at time zero;
//! 3. repeat: take the earliest deadline; deliver due frames and scenario events; run
//!    due host and engine timers; drain each engine's actions onto the segments;
//! 4. check the expectations against the final state; print the timeline, then the
//!    verdict table ([`output`]); write pcapng files (with [`crate::pcapng`]) and the ladder
//!    diagram ([`diagram`]) if asked.
//!
//! **The relay** inside the simulation is the real engine with a real config: the
//! scenario's `config: (...)` is the daemon's [`crate::config::Config`] (the schema of
//! `ndprelay run -c FILE`, read by the same parser; its errors point into the scenario
//! file), with segment names as interface names. Ports are resolved to the scenario's
//! MACs (or `02:52:00:RR:00:PP`) and EUI-64 link-locals; the data plane is always
//! userspace (there is no kernel to route), events are on for the timeline, and the
//! engine's seed is derived from the scenario seed.
//!
//! **Host stack decision.** The hosts are a compact stack written here on
//! `crate::wire` (every frame built and parsed by it), not smoltcp. smoltcp 0.12 (the
//! version in reach here) has no Duplicate Address Detection and no NUD state machine
//! (its neighbor cache only expires entries); 0.14 added SLAAC (smoltcp PR #1039) but
//! forms addresses without DAD, needs Rust 1.91 (this crate's MSRV is 1.85) and would
//! bring a second ND codec — while the scenarios are about exactly DAD, NUD and RS/RA
//! across the relay. The hosts implement RFC 4861 (RS with retransmits, RA processing
//! with default routers and on-link prefixes, routers answering RS with paced RAs,
//! address resolution with queueing and retransmits, NUD REACHABLE/STALE/DELAY/PROBE,
//! NA processing per §7.2.5) and RFC 4862 (DAD with a random start delay and
//! `dad_transmits` probes, SLAAC from /64 PIOs with modified EUI-64). Not modelled:
//! MLD, privacy addresses, DHCPv6, address lifetimes expiring, routing between links.
//!
//! **Determinism.** Hosts, attackers and engines draw from generators seeded from the
//! scenario seed (`--seed` overrides it); ties in the event queue are broken by
//! insertion order; maps iterate in key order. Same scenario and seed, same output,
//! byte for byte. Virtual time jumps from deadline to deadline, so a long scenario
//! runs in far less than its virtual length (`scripts/bench-sim.sh`, `BENCHMARKS.md`).
//!
pub mod diagram;
pub mod host;
pub mod link;
pub mod output;
pub mod production;
pub mod runner;
pub mod scenario;
#[cfg(feature = "tap")]
pub mod tap;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use output::{Outcome, Verdict};
pub use scenario::Scenario;

/// Options of `ndprelay --scenario`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Writes `DIR/<segment>.pcapng` for every segment.
    pub pcap_dir: Option<PathBuf>,
    /// Writes the ladder diagram (SVG) here.
    pub diagram: Option<PathBuf>,
    /// Attaches segments to real TAP devices: (segment, interface).
    pub taps: Vec<(String, String)>,
    /// Runs a relay with the daemon's config file (`--config`, `--rename`, `--relay`).
    pub config: Option<production::ProductionConfig>,
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file is wrong; nothing ran.
    #[error("{path}:{line}:{col}: {msg}\n  hint: {hint}")]
    Scenario {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        msg: String,
        /// How to fix it.
        hint: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A capture file could not be read or written.
    #[error("{}: {message}", path.display())]
    Capture {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The engine refused a relay's config.
    #[error("relay {relay:?}: {message}")]
    Relay {
        /// Relay name.
        relay: String,
        /// The engine's reason.
        message: String,
    },
    /// Writing a pcapng file failed.
    #[error(transparent)]
    Pcap(#[from] crate::pcapng::PcapNgError),
    /// Writing the timeline or verdict failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    /// `--tap` was given to a build without the `tap` cargo feature.
    #[error(
        "--tap {segment}={ifname}: this ndprelay was built without TAP support (cargo feature `tap`)"
    )]
    TapUnsupported {
        /// Segment.
        segment: String,
        /// Interface.
        ifname: String,
    },
    /// A TAP device could not be opened.
    #[error("--tap ...={ifname}: {message}")]
    Tap {
        /// Interface.
        ifname: String,
        /// Why.
        message: String,
    },
    /// `--tap` names a segment the scenario does not have.
    #[error("--tap {0}=...: the scenario has no segment {0:?}")]
    TapSegment(String),
    /// `--config FILE` could not be read, parsed or fitted onto the scenario.
    #[error("{0}")]
    ProductionConfig(String),
}

/// Runs the scenario at `path`, writing the timeline and verdict table to `out`.
///
/// Returns the verdict (`passed` is true only if every expectation passed); scenario
/// errors are returned before anything runs.
pub fn run(path: &Path, opts: &RunOptions, out: &mut dyn Write) -> Result<Verdict, SimError> {
    let (scenario, note) = scenario::load_with(path, opts.config.as_ref())?;
    if let Some(note) = note {
        writeln!(out, "note: {note}").map_err(SimError::Output)?;
    }
    run_scenario(
        &scenario,
        path.parent().unwrap_or(Path::new(".")),
        opts,
        out,
    )
}

/// Runs an already loaded scenario; relative paths in it resolve against `base_dir`.
pub fn run_scenario(
    scenario: &Scenario,
    base_dir: &Path,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Result<Verdict, SimError> {
    for (segment, _) in &opts.taps {
        if !scenario.segments.contains(segment) {
            return Err(SimError::TapSegment(segment.clone()));
        }
    }
    let seed = opts.seed.unwrap_or(scenario.seed);
    let mut world = runner::World::new(
        scenario,
        seed,
        opts.pcap_dir.is_some(),
        opts.diagram.is_some(),
        base_dir,
    )?;
    attach_taps(&mut world, &opts.taps)?;
    world.run()?;
    let verdict = output::evaluate(&world, seed);
    let mut text = format!(
        "== scenario {} (seed {seed}) ==\n{}\n",
        scenario.name,
        scenario.description.trim()
    );
    text.push_str(&format!("{:>14}  {:<10} {}\n", "time", "segment", "event"));
    text.push_str(&world.timeline.text);
    if world.timeline.suppressed() > 0 {
        text.push_str(&format!(
            "({} repetitive timeline lines not shown)\n",
            world.timeline.suppressed()
        ));
    }
    output::write_verdict(&verdict, &world, &mut text);
    out.write_all(text.as_bytes()).map_err(SimError::Output)?;
    if let Some(dir) = &opts.pcap_dir {
        write_pcaps(dir, &world.segments)?;
    }
    if let Some(file) = &opts.diagram {
        std::fs::write(file, diagram::render(&world)).map_err(|source| SimError::Io {
            path: file.clone(),
            source,
        })?;
    }
    Ok(verdict)
}

#[cfg(feature = "tap")]
fn attach_taps(world: &mut runner::World<'_>, taps: &[(String, String)]) -> Result<(), SimError> {
    for (segment, ifname) in taps {
        let seg = world
            .segments
            .iter()
            .position(|s| s.name == *segment)
            .ok_or_else(|| SimError::TapSegment(segment.clone()))?;
        world.taps.push(tap::TapPort::open(seg, ifname)?);
    }
    Ok(())
}

#[cfg(not(feature = "tap"))]
fn attach_taps(_world: &mut runner::World<'_>, taps: &[(String, String)]) -> Result<(), SimError> {
    match taps.first() {
        Some((segment, ifname)) => Err(SimError::TapUnsupported {
            segment: segment.clone(),
            ifname: ifname.clone(),
        }),
        None => Ok(()),
    }
}

/// Writes `DIR/<segment>.pcapng` for every segment, one interface named after it.
fn write_pcaps(dir: &Path, segments: &[link::Segment]) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for seg in segments {
        let Some(frames) = &seg.capture else {
            continue;
        };
        let path = dir.join(format!("{}.pcapng", seg.name));
        let mut file = crate::pcapng::PcapNgFile::create(&path, &[(seg.name.clone(), None)])?;
        for (at, frame) in frames {
            file.write(
                0,
                std::time::Duration::from_micros(at.total_micros()),
                frame,
            )?;
        }
        file.finish()?;
    }
    Ok(())
}
