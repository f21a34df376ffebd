//! pcap replay: captures taken on the real ports, fed offline to the same engine.
//!
//! Each input frame becomes one line: time, port, a one-line decode and what the engine
//! decided (relayed to …, answered, learned, dropped on PORT: reason). Capture timestamps are the
//! engine's time, so timers (retransmits, RA pacing, expiry) fire as they did live; what
//! they send is listed as `timer` lines. Frames the engine emits can be written to a
//! pcapng with one interface per port. With `--explain ADDR` the listing keeps only the
//! lines about ADDR and ends with the explanation `ndprelay explain` gives live
//! (`crate::explain`).

mod describe;
mod input;
mod macs;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

pub use describe::describe;
use describe::describe_parsed;
pub use input::{CapturedFrame, InputError, Source};
pub use macs::{MacEvidence, MacSource, placeholder};

use crate::engine::{Action, Engine, EngineConfig, EngineConfigError, PortId};
use crate::pcapng::{PcapNgError, PcapNgFile};
use crate::time::Instant;
use crate::wire::{NdMessage, Parsed, parse_frame};

/// One capture to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The port every frame of the file belongs to; `None` for a pcapng whose interface
    /// names are the port names.
    pub port: Option<String>,
    /// The capture file.
    pub path: PathBuf,
}

impl std::str::FromStr for Input {
    type Err = String;
    /// `PORT=FILE` or `FILE` (a pcapng naming its interfaces).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some(("", _)) => Err(format!("{s:?}: the port name before '=' is empty")),
            Some((port, path)) => Ok(Self {
                port: Some(port.to_owned()),
                path: path.into(),
            }),
            None => Ok(Self {
                port: None,
                path: s.into(),
            }),
        }
    }
}

/// How to report.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Write every emitted frame here (pcapng, one interface per port).
    pub output: Option<PathBuf>,
    /// Only show what concerns this address.
    pub explain: Option<Ipv6Addr>,
    /// Keep every emitted frame in [`ReplaySummary::emitted`] (for tests and callers
    /// that inspect them; the command line streams them to `output` instead).
    pub keep_emitted: bool,
    /// Routes an earlier run left, as `(address, port name)`: the engine starts as a
    /// restarted daemon does ([`Engine::adopt_routes`]), so the listing shows their
    /// re-verification probes and removals.
    pub leftover_routes: Vec<(Ipv6Addr, String)>,
    /// Start from zero, as the daemon does (RS upstream, two P-bit RAs on each
    /// downstream port before it proxies). Off: the steady state of a relay that has
    /// been running, ports proxying from the first frame ([`Engine::assume_running`]),
    /// since most captures begin long after the relay started and hold no RA.
    pub cold_start: bool,
}

/// What a replay saw, for the caller and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Frames read from the inputs.
    pub frames_in: u64,
    /// Frames the engine emitted.
    pub frames_out: u64,
    /// Emitted frames per port name, with [`ReplayOptions::keep_emitted`].
    pub emitted: BTreeMap<String, Vec<Vec<u8>>>,
    /// Input problems (corrupt files, unknown interfaces), in order.
    pub problems: Vec<String>,
    /// Non-zero counters at the end.
    pub counters: Vec<(String, u64)>,
}

/// Why a replay could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The engine refused the configuration.
    #[error("config: {0}")]
    Config(#[from] EngineConfigError),
    /// An input names a port the config does not have.
    #[error("input {path}: port {port:?} is not in the config (ports: {ports})")]
    UnknownPort {
        /// The input file.
        path: PathBuf,
        /// The port named.
        port: String,
        /// The configured ports.
        ports: String,
    },
    /// A leftover route names a port the config does not have.
    #[error("leftover route {addr} on {port:?}: not a port in the config (ports: {ports})")]
    LeftoverPort {
        /// The route's address.
        addr: Ipv6Addr,
        /// The port named.
        port: String,
        /// The configured ports.
        ports: String,
    },
    /// No input could be opened.
    #[error("no input could be read:\n  {0}")]
    NoInput(String),
    /// Writing the output capture failed.
    #[error(transparent)]
    Capture(#[from] PcapNgError),
    /// Writing the listing failed.
    #[error("writing {what}: {source}")]
    Output {
        /// What was being written.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Replays `inputs` through an engine built from `config`, writing the listing to `out`.
pub fn replay(
    mut config: EngineConfig,
    inputs: &[Input],
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> Result<ReplaySummary, ReplayError> {
    config.emit_events = true;
    let names: Vec<String> = config.ports.iter().map(|p| p.name.clone()).collect();
    let ports: HashMap<String, PortId> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), port_id(i)))
        .collect();
    let mut summary = ReplaySummary::default();
    let mut sources = Vec::new();
    let mut problems: Vec<InputError> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let port = match &input.port {
            None => None,
            Some(name) => Some(*ports.get(name).ok_or_else(|| ReplayError::UnknownPort {
                path: input.path.clone(),
                port: name.clone(),
                ports: names.join(", "),
            })?),
        };
        match Source::open(&input.path, i, port) {
            Ok(s) => sources.push(s),
            Err(e) => problems.push(e),
        }
    }
    if sources.is_empty() {
        let all: Vec<_> = problems.iter().map(ToString::to_string).collect();
        return Err(ReplayError::NoInput(if all.is_empty() {
            "no inputs given".into()
        } else {
            all.join("\n  ")
        }));
    }
    let out_err = |source| ReplayError::Output {
        what: "the listing".into(),
        source,
    };
    let mut writer = match &opts.output {
        Some(path) => {
            let interfaces: Vec<_> = config
                .ports
                .iter()
                .map(|p| (p.name.clone(), Some(p.mac)))
                .collect();
            Some(PcapNgFile::create(path, &interfaces)?)
        }
        None => None,
    };

    // Merge the sources by timestamp: a heap of each source's next frame.
    // Merge the sources by timestamp: each source's next frame, the earliest goes first
    // (ties to the earlier input). Inputs are few, so a scan beats a heap.
    let mut heads: Vec<Option<CapturedFrame>> = sources
        .iter_mut()
        .map(|source| next_of(source, &ports, &mut problems))
        .collect();
    let origin = earliest(&heads)
        .and_then(|i| heads[i].as_ref())
        .map_or(StdDuration::ZERO, |f| f.timestamp);
    let mut leftover = Vec::new();
    for (addr, port) in &opts.leftover_routes {
        let id = ports.get(port).ok_or_else(|| ReplayError::LeftoverPort {
            addr: *addr,
            port: port.clone(),
            ports: names.join(", "),
        })?;
        leftover.push((*addr, *id));
    }
    let mut engine = Engine::new(config, Instant::ZERO)?;
    if !opts.cold_start {
        engine.assume_running(Instant::ZERO);
    }
    if !leftover.is_empty() {
        engine.adopt_routes(Instant::ZERO, &leftover);
    }
    let mut now = Instant::ZERO;
    let paths: Vec<String> = inputs
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    let json = |s: &String| {
        let mut v = Vec::new();
        push_json_str(&mut v, s.as_bytes());
        v
    };
    let mut ctx = Context {
        names: &names,
        paths_json: paths.iter().map(json).collect(),
        names_json: names.iter().map(json).collect(),
        opts,
        origin,
        writer: writer.as_mut(),
    };
    let mut line = Line::default();
    write_start(opts, out).map_err(out_err)?;
    report_problems(&mut problems, &mut summary, opts, out).map_err(out_err)?;
    // What the engine decided before the first frame (routes adopted above): listed
    // like a timer line, never dropped.
    line.start_timer(now);
    ctx.drain(&mut engine, now, &mut line, &mut summary)?;
    ctx.emit(&mut line, out).map_err(out_err)?;
    while let Some(i) = earliest(&heads) {
        let next = next_of(&mut sources[i], &ports, &mut problems);
        let Some(frame) = std::mem::replace(&mut heads[i], next) else {
            break; // `earliest` only names a source with a frame
        };
        let ts = frame.timestamp;
        let at = Instant::from_micros(
            u64::try_from(ts.saturating_sub(origin).as_micros()).unwrap_or(u64::MAX),
        );
        // Captures may step back slightly between files; the engine's time never does.
        let at = at.max(now);
        while let Some(deadline) = engine.poll_timeout() {
            if deadline > at {
                break;
            }
            now = deadline.max(now);
            engine.handle_timeout(now);
            line.start_timer(now);
            ctx.drain(&mut engine, now, &mut line, &mut summary)?;
            ctx.emit(&mut line, out).map_err(out_err)?;
        }
        now = at;
        summary.frames_in += 1;
        line.start_frame(now, &frame, opts.explain.is_some());
        engine.handle_frame(now, frame.port, &frame.data);
        ctx.drain(&mut engine, now, &mut line, &mut summary)?;
        ctx.emit(&mut line, out).map_err(out_err)?;
        sources[i].recycle(frame.data);
        if !problems.is_empty() {
            report_problems(&mut problems, &mut summary, opts, out).map_err(out_err)?;
        }
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    let snapshot = engine.snapshot(now);
    summary.counters = snapshot
        .counters
        .iter()
        .filter(|(_, v)| *v > 0)
        .cloned()
        .collect();
    if !opts.json {
        writeln!(
            out,
            "\n{} frames in, {} frames out",
            summary.frames_in, summary.frames_out
        )
        .map_err(out_err)?;
        writeln!(out, "counters:").map_err(out_err)?;
        for (name, value) in &summary.counters {
            writeln!(out, "  {name:<28} {value}").map_err(out_err)?;
        }
        writeln!(out, "bindings:").map_err(out_err)?;
        if snapshot.bindings.is_empty() {
            writeln!(out, "  (none)").map_err(out_err)?;
        }
        for b in &snapshot.bindings {
            let name = names.get(b.port.index()).map_or("?", String::as_str);
            let routed = if b.routed { " routed" } else { "" };
            writeln!(
                out,
                "  {:<40} {:<8} {} {:?}{routed}",
                b.addr, name, b.mac, b.state
            )
            .map_err(out_err)?;
        }
    } else {
        let counters: serde_json::Map<String, serde_json::Value> = summary
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        let bindings: Vec<_> = snapshot
            .bindings
            .iter()
            .map(|b| {
                serde_json::json!({
                    "addr": b.addr.to_string(),
                    "port": names.get(b.port.index()),
                    "mac": b.mac.to_string(),
                    "state": format!("{:?}", b.state),
                    "routed": b.routed,
                })
            })
            .collect();
        let s = serde_json::json!({"summary": {"frames_in": summary.frames_in, "frames_out": summary.frames_out,
            "counters": counters, "bindings": bindings}});
        writeln!(out, "{s}").map_err(out_err)?;
    }
    if let Some(addr) = opts.explain {
        write_explanation(&engine, now, addr, opts.json, out).map_err(out_err)?;
    }
    Ok(summary)
}

/// `--explain ADDR`: after the listing, what the engine knows about the address at the
/// end of the captures, worded as `ndprelay explain` words it live (no FIB here).
fn write_explanation(
    engine: &Engine,
    now: Instant,
    addr: Ipv6Addr,
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let e = crate::explain::build(
        &engine.address_facts(now, addr),
        &crate::explain::DriverFacts::replay(),
    );
    if json {
        writeln!(out, "{}", serde_json::json!({ "explain": e }))
    } else {
        write!(
            out,
            "\nexplain {addr}, at the end of the captures:\n{}",
            crate::explain::render_text(&e)
        )
    }
}

/// The listing's first line: how the engine started.
fn write_start(opts: &ReplayOptions, out: &mut dyn Write) -> std::io::Result<()> {
    match (opts.json, opts.cold_start) {
        (true, cold) => writeln!(
            out,
            "{}",
            serde_json::json!({ "start": if cold { "cold" } else { "steady" } })
        ),
        (false, true) => writeln!(
            out,
            "start: cold (--cold-start): RS upstream, downstream ports proxy after two \
             P-bit RAs, as when the daemon starts"
        ),
        (false, false) => writeln!(
            out,
            "start: steady state: ports proxying from the first frame, as in a relay \
             that has been running (--cold-start replays a start from zero)"
        ),
    }
}

fn port_id(index: usize) -> PortId {
    PortId(u16::try_from(index).unwrap_or(u16::MAX))
}

/// The next frame of `source`; a problem ends it.
fn next_of(
    source: &mut Source,
    ports: &HashMap<String, PortId>,
    problems: &mut Vec<InputError>,
) -> Option<CapturedFrame> {
    source.next_frame(ports, problems).unwrap_or_else(|e| {
        problems.push(e);
        None
    })
}

/// The source whose next frame is earliest (the first such on a tie).
fn earliest(heads: &[Option<CapturedFrame>]) -> Option<usize> {
    heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((h.as_ref()?.timestamp, i)))
        .min()
        .map(|(_, i)| i)
}

fn report_problems(
    problems: &mut Vec<InputError>,
    summary: &mut ReplaySummary,
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for p in problems.drain(..) {
        let text = p.to_string();
        if opts.json {
            writeln!(out, "{}", serde_json::json!({ "problem": text }))?;
        } else {
            writeln!(out, "warning: {text}")?;
        }
        summary.problems.push(text);
    }
    Ok(())
}

/// What every listing line needs besides itself.
struct Context<'a> {
    names: &'a [String],
    /// Each input's path, and each port's name, as JSON strings.
    paths_json: Vec<Vec<u8>>,
    names_json: Vec<Vec<u8>>,
    opts: &'a ReplayOptions,
    origin: StdDuration,
    writer: Option<&'a mut PcapNgFile>,
}

/// One listing line: an input frame (or a timer firing) and what came of it. The
/// buffers are reused from line to line, so listing a frame allocates nothing.
#[derive(Debug, Default)]
struct Line {
    now: Instant,
    port: Option<PortId>,
    /// Index of the input the frame came from; `None` on a timer line.
    input: Option<usize>,
    number: u64,
    decode: Vec<u8>,
    /// The decisions, one after the other; `ends` says where each one ends.
    decisions: Vec<u8>,
    ends: Vec<usize>,
    /// Addresses this line concerns, collected for `--explain` only.
    addrs: Vec<Ipv6Addr>,
    /// The line as written.
    text: Vec<u8>,
    /// Time and port columns.
    head: Vec<u8>,
}

impl Line {
    fn clear(&mut self, now: Instant) {
        self.now = now;
        self.port = None;
        self.input = None;
        self.number = 0;
        self.decode.clear();
        self.decisions.clear();
        self.ends.clear();
        self.addrs.clear();
    }

    fn start_frame(&mut self, now: Instant, frame: &CapturedFrame, explain: bool) {
        self.clear(now);
        self.port = Some(frame.port);
        self.input = Some(frame.input);
        self.number = frame.number;
        let parsed = parse_frame(&frame.data);
        describe_parsed(&mut self.decode, frame.data.len(), &parsed);
        if explain {
            addresses(&parsed, &mut self.addrs);
        }
    }

    fn start_timer(&mut self, now: Instant) {
        self.clear(now);
        self.decode.extend_from_slice(b"timer");
    }

    /// Ends the decision written into `self.decisions` since the last one.
    fn decided(&mut self) {
        self.ends.push(self.decisions.len());
    }

    fn decisions(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let d = &self.decisions[start..end];
            start = end;
            d
        })
    }
}

/// Appends `s` as a JSON string. Listing text rarely needs escaping, and checking
/// that is much cheaper than escaping byte by byte.
fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    // No early exit, so the check compiles to vector code.
    let plain = !s.iter().fold(false, |special, &b| {
        special | !(0x20..0x80).contains(&b) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    } else {
        // Serialising a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(s));
    }
}

/// Width of the decode column in the text listing.
const DECODE_WIDTH: usize = 64;
/// Width of the port column in the text listing.
const PORT_WIDTH: usize = 8;

impl Context<'_> {
    fn name(&self, port: PortId) -> &str {
        self.names.get(port.index()).map_or("?", String::as_str)
    }

    fn emit(&self, line: &mut Line, out: &mut dyn Write) -> std::io::Result<()> {
        if line.port.is_none() && line.ends.is_empty() {
            return Ok(());
        }
        if let Some(addr) = self.opts.explain
            && !line.addrs.contains(&addr)
        {
            return Ok(());
        }
        let port = line.port.map_or("-", |p| self.name(p));
        let mut text = std::mem::take(&mut line.text);
        text.clear();
        let micros = line.now.total_micros();
        let mut head = std::mem::take(&mut line.head);
        head.clear();
        let width = if self.opts.json { 0 } else { 7 };
        text::push_u64_width(&mut head, micros / 1_000_000, width, false);
        head.push(b'.');
        text::push_u64_width(&mut head, micros % 1_000_000, 6, true);
        if self.opts.json {
            text.extend_from_slice(b"{\"t\":\"");
            text.extend_from_slice(&head);
            text.extend_from_slice(b"\",\"port\":");
            match line.port.and_then(|p| self.names_json.get(p.index())) {
                Some(name) => text.extend_from_slice(name),
                None => push_json_str(&mut text, port.as_bytes()),
            }
            text.extend_from_slice(b",\"file\":");
            match line.input.and_then(|i| self.paths_json.get(i)) {
                Some(path) => text.extend_from_slice(path),
                None => text.extend_from_slice(b"\"\""),
            }
            text.extend_from_slice(b",\"frame\":");
            text::push_u64(&mut text, line.number);
            text.extend_from_slice(b",\"decode\":");
            push_json_str(&mut text, &line.decode);
            text.extend_from_slice(b",\"decisions\":[");
            for (i, d) in line.decisions().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                push_json_str(&mut text, d);
            }
            text.extend_from_slice(b"]}");
        } else {
            head.push(b' ');
            head.extend_from_slice(port.as_bytes());
            let pad = PORT_WIDTH.saturating_sub(port.chars().count());
            head.resize(head.len() + pad + 1, b' ');
            text.extend_from_slice(&head);
            text.extend_from_slice(&line.decode);
            let width = if line.decode.is_ascii() {
                line.decode.len()
            } else {
                String::from_utf8_lossy(&line.decode).chars().count()
            };
            let pad = DECODE_WIDTH.saturating_sub(width);
            text.resize(text.len() + pad, b' ');
            text.extend_from_slice(b" -> ");
            if line.ends.is_empty() {
                text.extend_from_slice(b"no action");
            }
            for (i, d) in line.decisions().enumerate() {
                if i > 0 {
                    text.extend_from_slice(b"; ");
                }
                text.extend_from_slice(d);
            }
        }
        text.push(b'\n');
        let result = out.write_all(&text);
        line.text = text;
        line.head = head;
        result
    }

    fn drain(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        line: &mut Line,
        summary: &mut ReplaySummary,
    ) -> Result<(), ReplayError> {
        let explain = self.opts.explain.is_some();
        while let Some(action) = engine.poll_action() {
            // Writing into a Vec cannot fail.
            let d = &mut line.decisions;
            match action {
                Action::Transmit { port, frame } => {
                    summary.frames_out += 1;
                    if line.port.is_none() {
                        let _ = write!(d, "sent on {}: ", self.name(port));
                        let parsed = parse_frame(&frame);
                        describe_parsed(d, frame.len(), &parsed);
                        line.decided();
                        if explain {
                            addresses(&parsed, &mut line.addrs);
                        }
                    }
                    if let Some(w) = self.writer.as_deref_mut() {
                        w.write(
                            u32::from(port.0),
                            self.origin + StdDuration::from_micros(now.total_micros()),
                            &frame,
                        )?;
                    }
                    if self.opts.keep_emitted {
                        let name = self.name(port);
                        match summary.emitted.get_mut(name) {
                            Some(frames) => frames.push(frame),
                            None => {
                                summary.emitted.insert(name.to_owned(), vec![frame]);
                            }
                        }
                    }
                }
                Action::InstallRoute { addr, port } => {
                    let _ = write!(d, "route {addr}/128 via {} installed", self.name(port));
                    line.decided();
                    line.addrs.push(addr);
                }
                Action::RemoveRoute { addr, port } => {
                    let _ = write!(d, "route {addr}/128 via {} removed", self.name(port));
                    line.decided();
                    line.addrs.push(addr);
                }
                Action::KernelAnswer {
                    port,
                    target,
                    until,
                    ..
                } => {
                    let _ = write!(
                        d,
                        "kernel answers NS for {target} on {} until {:.3} s",
                        self.name(port),
                        until.as_secs_f64()
                    );
                    line.decided();
                    line.addrs.push(target);
                }
                Action::KernelForget { target } => {
                    let _ = write!(d, "kernel stops answering for {target}");
                    line.decided();
                    line.addrs.push(target);
                }
                Action::KernelRelayNs {
                    from,
                    target,
                    to,
                    until,
                    ..
                } => {
                    let _ = write!(
                        d,
                        "kernel relays NS for {target} from {} to {} until {:.3} s",
                        self.name(from),
                        self.name(to),
                        until.as_secs_f64()
                    );
                    line.decided();
                    line.addrs.push(target);
                }
                Action::KernelRelayNa {
                    from,
                    target,
                    solicitor,
                    to,
                    until,
                    ..
                } => {
                    let _ = write!(
                        d,
                        "kernel relays NAs for {target} from {} to {solicitor} on {} until {:.3} s",
                        self.name(from),
                        self.name(to),
                        until.as_secs_f64()
                    );
                    line.decided();
                    line.addrs.push(target);
                }
                Action::KernelForgetRelays => {
                    let _ = write!(d, "kernel stops relaying NAs");
                    line.decided();
                }
                Action::Event(event) => {
                    let _ = write!(d, "{}", event.display(self.names));
                    line.addrs.extend(event.address());
                    line.decided();
                }
            }
        }
        Ok(())
    }
}

/// Source, destination and target addresses of a parsed frame.
fn addresses(parsed: &Result<Parsed<'_>, crate::DropReason>, v: &mut Vec<Ipv6Addr>) {
    match parsed {
        Ok(Parsed::Nd(p)) => {
            v.extend([p.src_addr, p.dst_addr]);
            match p.message {
                NdMessage::NeighborSolicit { target_addr }
                | NdMessage::NeighborAdvert { target_addr, .. } => {
                    v.push(target_addr);
                }
                NdMessage::Redirect {
                    target_addr,
                    dest_addr,
                } => v.extend([target_addr, dest_addr]),
                NdMessage::RouterSolicit | NdMessage::RouterAdvert(_) => {}
            }
        }
        Ok(Parsed::Data(d)) => v.extend([d.src_addr, d.dst_addr]),
        _ => {}
    }
}

/// Frames per input looked at when inferring MACs; the relay's own RAs and NS show up
/// long before this.
const MAC_SCAN_FRAMES: usize = 20_000;

/// The relay's MAC on each port, in `ports` order: given, inferred from the inputs, or a
/// placeholder, with where it came from (replay prints this).
pub fn resolve_macs(
    ports: &[(String, crate::engine::Role)],
    inputs: &[Input],
    given: &HashMap<String, crate::wire::Mac>,
) -> Vec<(crate::wire::Mac, MacSource)> {
    let ids: HashMap<String, PortId> = ports
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), port_id(i)))
        .collect();
    let mut evidence = MacEvidence::default();
    if ports.iter().any(|(n, _)| !given.contains_key(n)) {
        for (i, input) in inputs.iter().enumerate() {
            let port = input.port.as_ref().and_then(|p| ids.get(p).copied());
            if input.port.is_some() && port.is_none() {
                continue;
            }
            let Ok(mut source) = Source::open(&input.path, i, port) else {
                continue;
            };
            let mut ignored = Vec::new();
            for _ in 0..MAC_SCAN_FRAMES {
                match source.next_frame(&ids, &mut ignored) {
                    Ok(Some(f)) => evidence.observe(f.port, &f.data),
                    _ => break,
                }
            }
            // A dump of `ndprelay run --dump` says the MAC of each port outright.
            for (port, mac) in source.interface_macs() {
                evidence.declared(port, mac);
            }
        }
    }
    ports
        .iter()
        .enumerate()
        .map(|(i, (name, role))| match given.get(name) {
            Some(mac) => (*mac, MacSource::Given),
            None => evidence
                .infer(port_id(i), *role)
                .unwrap_or((placeholder(i), MacSource::Placeholder)),
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "NS who-has 2001:db8::1 from fe80::1",
            "port \"br0\"",
            "C:\\captures\\up.pcap",
            "tab\there, newline\n, bell\u{7}",
            "non-ASCII: grüße",
            "\u{7f} delete",
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s.as_bytes());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
