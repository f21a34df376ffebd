//! What a run prints: the timeline (time, segment, one-line summary) and the verdict
//! table (each expectation PASS or FAIL with its evidence).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::host::AddrState;
use super::runner::World;
use super::scenario::Expect;
use crate::engine::PortId;
use crate::time::Instant;

/// Lines repeated under one key (segment, kind, sender) before the rest are summarised.
const MAX_LINES_PER_KEY: u32 = 200;

/// The timeline, built as the run goes.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The text so far.
    pub text: String,
    per_key: HashMap<String, u32>,
    suppressed: u64,
}

impl Timeline {
    /// Adds a line that is always shown.
    pub fn line(&mut self, at: Instant, segment: &str, text: &str) {
        let _ = writeln!(self.text, "{:>14}  {:<10} {text}", at.to_string(), segment);
    }

    /// Adds a line that is dropped after `MAX_LINES_PER_KEY` lines with the same key,
    /// so floods stay readable.
    pub fn frame(&mut self, at: Instant, segment: &str, text: &str, key: &str) {
        let n = {
            let n = self.per_key.entry(key.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        if n <= MAX_LINES_PER_KEY {
            self.line(at, segment, text);
            if n == MAX_LINES_PER_KEY {
                self.line(
                    at,
                    segment,
                    "  (further lines like the one above are not shown)",
                );
            }
        } else {
            self.suppressed += 1;
        }
    }

    /// Lines left out.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The expectation, in words.
    pub expectation: String,
    /// PASS?
    pub passed: bool,
    /// What was observed.
    pub evidence: String,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// True only if every expectation passed (and the run was not cut short).
    pub passed: bool,
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Per expectation, in file order.
    pub outcomes: Vec<Outcome>,
    /// Frames put on all segments.
    pub total_frames: u64,
    /// Frames put on each segment, in scenario order (what its pcapng holds).
    pub segment_frames: Vec<(String, u64)>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

/// Checks every expectation against the final state of the world.
pub fn evaluate(world: &World<'_>, seed: u64) -> Verdict {
    let outcomes: Vec<Outcome> = world
        .scenario
        .expect
        .iter()
        .map(|x| check(world, x))
        .collect();
    Verdict {
        passed: world.aborted.is_none() && outcomes.iter().all(|o| o.passed),
        scenario: world.scenario.name.clone(),
        seed,
        outcomes,
        total_frames: world.total_frames,
        segment_frames: world
            .segments
            .iter()
            .map(|s| (s.name.clone(), s.frames))
            .collect(),
        aborted: world.aborted.clone(),
    }
}

fn host<'w>(world: &'w World<'_>, name: &str) -> Option<(usize, &'w super::host::Host)> {
    world.hosts.iter().enumerate().find(|(_, h)| h.name == name)
}

fn relay(world: &World<'_>, name: Option<&str>) -> usize {
    name.and_then(|n| world.relays.iter().position(|r| r.name == n))
        .unwrap_or(0)
}

fn seg(world: &World<'_>, name: &str) -> Option<usize> {
    world.segments.iter().position(|s| s.name == name)
}

fn addr_list(h: &super::host::Host) -> String {
    if h.addrs.is_empty() {
        return "no addresses".into();
    }
    h.addrs
        .iter()
        .map(|a| {
            let st = match a.state {
                AddrState::Preferred => "",
                AddrState::Tentative { .. } => " (tentative)",
                AddrState::Duplicate => " (duplicate)",
            };
            format!("{}{st}", a.addr)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(world: &World<'_>, x: &Expect) -> Outcome {
    let (expectation, passed, evidence) = match x {
        Expect::Reachable { from, to } | Expect::Unreachable { from, to } => {
            let want = matches!(x, Expect::Reachable { .. });
            let name = format!(
                "{} {from} -> {to}",
                if want { "reachable" } else { "unreachable" }
            );
            let ping =
                host(world, from).and_then(|(_, h)| h.pings.iter().rev().find(|p| p.label == *to));
            match ping {
                None => (name, false, "the ping never ran".to_owned()),
                Some(p) => {
                    let got = p.received > 0;
                    let dst = p.dst.map_or("no address".to_owned(), |d| d.to_string());
                    (
                        name,
                        got == want,
                        format!("{}/{} echo replies from {dst}", p.received, p.sent),
                    )
                }
            }
        }
        Expect::AddressConfigured {
            host: hn,
            prefix,
            address,
        } => {
            let what = match (prefix, address) {
                (_, Some(a)) => a.to_string(),
                (Some(p), None) => format!("an address in {p}"),
                (None, None) => "a global address".to_owned(),
            };
            let name = format!("{hn} has {what}");
            match host(world, hn) {
                None => (name, false, "no such host".into()),
                Some((_, h)) => {
                    let ok = h.preferred().any(|a| {
                        !crate::wire::is_link_local(a)
                            && prefix.is_none_or(|p| p.contains(&a))
                            && address.is_none_or(|x| x == a)
                    });
                    (name, ok, addr_list(h))
                }
            }
        }
        Expect::NoAddress { host: hn, prefix } => {
            let name = format!("{hn} has no address in {prefix}");
            match host(world, hn) {
                None => (name, false, "no such host".into()),
                Some((_, h)) => {
                    let bad = h
                        .addrs
                        .iter()
                        .any(|a| a.state != AddrState::Duplicate && prefix.contains(&a.addr));
                    (name, !bad, addr_list(h))
                }
            }
        }
        Expect::DadFailed { host: hn, address } => {
            let name = match address {
                Some(a) => format!("DAD fails for {a} on {hn}"),
                None => format!("DAD fails on {hn}"),
            };
            match host(world, hn) {
                None => (name, false, "no such host".into()),
                Some((_, h)) => {
                    let ok = match address {
                        Some(a) => h.dad_failures.contains(a),
                        None => !h.dad_failures.is_empty(),
                    };
                    let ev = if h.dad_failures.is_empty() {
                        "no DAD failure".to_owned()
                    } else {
                        format!(
                            "DAD failed for {}",
                            h.dad_failures
                                .iter()
                                .map(|a| a.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    (name, ok, ev)
                }
            }
        }
        Expect::DadOk { host: hn } => {
            let name = format!("DAD succeeds on {hn}");
            match host(world, hn) {
                None => (name, false, "no such host".into()),
                Some((_, h)) => (name, h.dad_failures.is_empty(), addr_list(h)),
            }
        }
        Expect::Binding {
            address,
            port,
            relay: rn,
        } => {
            let r = relay(world, rn.as_deref());
            let name = format!("{} binds {address} on {port}", world.relays[r].name);
            let addr = world.resolve(address);
            let want = world.relays[r]
                .ports
                .iter()
                .position(|p| Some(p.segment) == seg(world, port));
            let snap = world.relays[r].engine.snapshot(world.now);
            match addr {
                None => (name, false, format!("{address} has no address")),
                Some(a) => {
                    let found: Vec<String> = snap
                        .bindings
                        .iter()
                        .filter(|b| b.addr == a)
                        .map(|b| {
                            format!(
                                "{} on {} {:?}",
                                b.addr,
                                port_name(world, r, b.port),
                                b.state
                            )
                        })
                        .collect();
                    let ok = snap
                        .bindings
                        .iter()
                        .any(|b| b.addr == a && Some(b.port.index()) == want);
                    let ev = if found.is_empty() {
                        format!("no binding for {a} ({} bindings)", snap.bindings.len())
                    } else {
                        found.join("; ")
                    };
                    (name, ok, ev)
                }
            }
        }
        Expect::Counter {
            name: cn,
            op,
            value,
            relay: rn,
        } => {
            let r = relay(world, rn.as_deref());
            let name = format!("{} {cn} {op} {value}", world.relays[r].name);
            let snap = world.relays[r].engine.snapshot(world.now);
            if snap.counters.iter().any(|(n, _)| n == cn) {
                let v = world.relays[r].engine.counter(cn);
                (name, op.holds(v, *value), format!("{cn} = {v}"))
            } else {
                // A misspelt counter reads 0 and would pass `== 0` vacuously.
                let close: Vec<&str> = snap
                    .counters
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| n.contains(cn.trim_start_matches("drop_")) || cn.contains(*n))
                    .take(5)
                    .collect();
                let hint = if close.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", close.join(", "))
                };
                (
                    name,
                    false,
                    format!("the relay has no counter {cn:?}{hint}"),
                )
            }
        }
        Expect::NoFrame {
            segment,
            kind,
            from,
        } => {
            let name = match from {
                Some(f) => format!("no {kind:?} from {f} on {segment}"),
                None => format!("no {kind:?} on {segment}"),
            };
            let s = seg(world, segment).map(|i| &world.segments[i]);
            let seen = s.and_then(|s| s.seen.get(kind));
            let n = match (seen, from) {
                (None, _) => 0,
                (Some(k), None) => k.count,
                (Some(k), Some(f)) => match host(world, f) {
                    Some((i, h)) => {
                        let by_mac = k.macs.contains(&h.mac);
                        let by_addr = world.host_addrs[i].iter().any(|a| k.srcs.contains(a));
                        u64::from(by_mac || by_addr)
                    }
                    None => 0,
                },
            };
            let ev = match (from, n) {
                (_, 0) => "none seen".to_owned(),
                (None, n) => format!("{n} seen"),
                (Some(_), _) => "seen (matched by MAC or source address)".to_owned(),
            };
            (name, n == 0, ev)
        }
        Expect::MaxFrames { segment, max, kind } => {
            let name = match kind {
                Some(k) => format!("at most {max} {k:?} frames on {segment}"),
                None => format!("at most {max} frames on {segment}"),
            };
            let n = seg(world, segment).map_or(0, |i| world.segments[i].count(*kind));
            (name, n <= *max, format!("{n} frames"))
        }
        Expect::MacNotSeen { segment, host: hn } => {
            let name = format!("{hn}'s MAC never on {segment}");
            match (host(world, hn), seg(world, segment)) {
                (Some((_, h)), Some(i)) => match world.segments[i].saw_mac(h.mac) {
                    None => (name, true, format!("{} not seen", h.mac)),
                    Some(k) => (name, false, format!("{} seen in a {k:?} frame", h.mac)),
                },
                _ => (name, false, "no such host or segment".into()),
            }
        }
        Expect::Route {
            address,
            port,
            relay: rn,
        } => {
            let r = relay(world, rn.as_deref());
            let name = format!("{} routes {address} via {port}", world.relays[r].name);
            let want = world.relays[r]
                .ports
                .iter()
                .position(|p| Some(p.segment) == seg(world, port));
            match world.resolve(address) {
                None => (name, false, format!("{address} has no address")),
                Some(a) => match world.relays[r].routes.get(&a) {
                    Some(p) => (
                        name,
                        Some(p.index()) == want,
                        format!("route {a}/128 via {}", port_name(world, r, *p)),
                    ),
                    None => (name, false, format!("no route for {a}")),
                },
            }
        }
        Expect::NoRoute { address, relay: rn } => {
            let r = relay(world, rn.as_deref());
            let name = format!("{} holds no route for {address}", world.relays[r].name);
            match world.resolve(address) {
                None => (name, true, format!("{address} has no address")),
                Some(a) => match world.relays[r].routes.get(&a) {
                    Some(p) => (
                        name,
                        false,
                        format!("route {a}/128 via {}", port_name(world, r, *p)),
                    ),
                    None => (name, true, format!("no route for {a}")),
                },
            }
        }
        Expect::MaxBindings { max, relay: rn } => {
            let r = relay(world, rn.as_deref());
            let now = world.relays[r].engine.snapshot(world.now).bindings.len();
            let peak = world.relays[r].peak_bindings.max(now) as u64;
            (
                format!("{} holds at most {max} bindings", world.relays[r].name),
                peak <= *max,
                format!("peak {peak}, {now} at the end"),
            )
        }
    };
    Outcome {
        expectation,
        passed,
        evidence,
    }
}

fn port_name(world: &World<'_>, r: usize, port: PortId) -> String {
    world.relays[r].ports.get(port.index()).map_or_else(
        || format!("port{}", port.0),
        |p| world.segments[p.segment].name.clone(),
    )
}

/// Writes the verdict table.
pub fn write_verdict(v: &Verdict, world: &World<'_>, out: &mut String) {
    let _ = writeln!(
        out,
        "\n== verdict: {} (seed {}, {} s virtual, {} frames) ==",
        v.scenario, v.seed, world.now, v.total_frames
    );
    let width = v
        .outcomes
        .iter()
        .map(|o| o.expectation.len())
        .max()
        .unwrap_or(0);
    for o in &v.outcomes {
        let _ = writeln!(
            out,
            "{}  {:<width$}  {}",
            if o.passed { "PASS" } else { "FAIL" },
            o.expectation,
            o.evidence
        );
    }
    if let Some(why) = &v.aborted {
        let _ = writeln!(out, "FAIL  run cut short: {why}");
    }
    let passed = v.outcomes.iter().filter(|o| o.passed).count();
    let _ = writeln!(
        out,
        "== {passed}/{} expectations passed: {} ==",
        v.outcomes.len(),
        if v.passed { "PASS" } else { "FAIL" }
    );
}
