//! NS load generator for `scripts/bench-ns.sh` (run inside the bench's `isp` namespace).
//!
//! ```text
//! ns_load IFACE SRC latency COUNT TARGET...       one NS at a time, 1 s timeout each,
//!                                                 cycling through the targets
//! ns_load IFACE SRC latency-warm COUNT TARGET...  the same after one unmeasured pass
//!                                                 over the targets (fast-path bench)
//! ns_load IFACE SRC rate RATE SECS TARGET...      NS round-robin over known targets
//! ns_load IFACE SRC scan RATE SECS PREFIX KNOWN... random targets in PREFIX/64 at RATE,
//!                                                 meanwhile one KNOWN guest probed every
//!                                                 10 ms, round-robin
//! ```
//!
//! Every NS is multicast to the target's solicited-node group with an SLLA, from SRC,
//! like a router resolving a neighbour. Prints one JSON object.
//!
//! Latency is reported twice: `median_ms`/`p99_ms` end at the moment this program's
//! receiver thread has the NA (what an asking process sees, its own wake-up included);
//! `wire_median_ms`/`wire_p99_ms` end at the kernel's receive timestamp of the NA
//! (`SCM_TIMESTAMPNS`), which is what the asking host's kernel sees. Both start just
//! before the NS is handed to the kernel.
//!
//! `rate` and the probes of `scan` count an NS as answered when an NA for its target
//! arrives before the next NS for that target (at most one answer per NS, however many
//! NAs came).

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use ndprelay::live::sys::{PacketSocket, RecvBatch, SockFilter, if_nametoindex, poll_readable};
use ndprelay::rng::Rng;
use ndprelay::wire::{Mac, NdMessage, OptionRepr, Parsed, emit_nd, parse_frame, solicited_node};
use parking_lot::Mutex;

struct Gen {
    sock: Arc<PacketSocket>,
    mac: Mac,
    src: Ipv6Addr,
}

impl Gen {
    fn ns(&self, target: Ipv6Addr) -> Vec<u8> {
        let dst = solicited_node(target);
        emit_nd(
            self.mac,
            Mac::ipv6_multicast(dst),
            self.src,
            dst,
            &NdMessage::NeighborSolicit {
                target_addr: target,
            },
            &[OptionRepr::SourceLla(self.mac)],
        )
    }
}

/// An NA as the receiver saw it: its target, when the receiver had it, and the
/// kernel's receive timestamp.
#[derive(Clone, Copy)]
struct Arrival {
    target: Ipv6Addr,
    at: Instant,
    wire: Option<SystemTime>,
}

/// One NS of a latency pass: when it left, when the first NA for its target came back.
struct Sample {
    sent: Instant,
    sent_wall: SystemTime,
    answered: Option<Arrival>,
}

impl Sample {
    fn latency_ms(&self) -> Option<f64> {
        Some(self.answered?.at.duration_since(self.sent).as_secs_f64() * 1e3)
    }

    fn wire_latency_ms(&self) -> Option<f64> {
        let wire = self.answered?.wire?;
        Some(wire.duration_since(self.sent_wall).ok()?.as_secs_f64() * 1e3)
    }
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

impl Gen {
    /// `count` NS one at a time, cycling through `targets`, each waiting up to 1 s for
    /// its NA, 20 ms apart.
    fn solicit_each(
        &self,
        got: &Arrivals,
        count: usize,
        targets: &[Ipv6Addr],
    ) -> anyhow::Result<Vec<Sample>> {
        let mut out = Vec::with_capacity(count);
        for &target in targets.iter().cycle().take(count) {
            got.lock().clear();
            let frame = self.ns(target);
            let (sent, sent_wall) = (Instant::now(), SystemTime::now());
            self.sock.send(&frame)?;
            let answered = loop {
                if let Some(&a) = got.lock().iter().find(|a| a.target == target) {
                    break Some(a);
                }
                if sent.elapsed() > Duration::from_secs(1) {
                    break None;
                }
                std::thread::sleep(Duration::from_micros(100));
            };
            out.push(Sample {
                sent,
                sent_wall,
                answered,
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(out)
    }
}

/// Collects (target, arrival) of every NA until stopped.
fn receiver(sock: Arc<PacketSocket>, stop: Arc<AtomicBool>) -> Arrivals {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut batch = RecvBatch::new(64, 2048);
        while !stop.load(Ordering::Relaxed) {
            if !poll_readable(&sock, 50).unwrap_or(false) {
                continue;
            }
            while sock.recv_batch_now(&mut batch).is_ok() {
                let at = Instant::now();
                for r in batch.received() {
                    if let Ok(Parsed::Nd(p)) = parse_frame(r.frame) {
                        if let NdMessage::NeighborAdvert { target_addr, .. } = p.message {
                            // 0: the kernel gave no timestamp.
                            let wire = (r.rx_time_ns != 0).then(|| {
                                SystemTime::UNIX_EPOCH + Duration::from_nanos(r.rx_time_ns)
                            });
                            g.lock().push(Arrival {
                                target: target_addr,
                                at,
                                wire,
                            });
                        }
                    }
                }
            }
        }
    });
    got
}

/// How often the scan probes a known guest: 100 probes a second, so that a 10 s scan
/// has 1000 of them, enough to tell 99.9 % answered from less.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// One probe of the scan: which known guest, and when it left.
struct Probe {
    target: Ipv6Addr,
    sent: Instant,
    sent_wall: SystemTime,
}

/// Probes the known guests round-robin every [`PROBE_EVERY`], on a fixed schedule from
/// `start`, until stopped.
fn probe_known(
    sock: &PacketSocket,
    frames: &[(Ipv6Addr, Vec<u8>)],
    start: Instant,
    stop: &AtomicBool,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    for (i, (target, frame)) in frames.iter().cycle().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = start + PROBE_EVERY * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (sent, sent_wall) = (Instant::now(), SystemTime::now());
        let _ = sock.send(frame);
        probes.push(Probe {
            target: *target,
            sent,
            sent_wall,
        });
    }
    probes
}

/// Each probe with the first NA for its target that arrived before the next probe for
/// that target (`known` targets, probed round-robin; the last probe of a target gets as
/// long as the others).
fn answer_probes(probes: &[Probe], nas: &[Arrival], known: usize) -> Vec<Sample> {
    let round = PROBE_EVERY * known as u32;
    probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let until = probes
                .get(i + known)
                .map_or(p.sent + round, |next| next.sent);
            Sample {
                sent: p.sent,
                sent_wall: p.sent_wall,
                answered: nas
                    .iter()
                    .find(|a| a.target == p.target && a.at >= p.sent && a.at < until)
                    .copied(),
            }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        bail!("usage: see the doc comment of examples/ns_load.rs");
    }
    let iface = &args[1];
    let src: Ipv6Addr = args[2].parse().context("SRC")?;
    let ifindex = if_nametoindex(iface).context("no such interface")?;
    let mac: Mac = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))?
        .trim()
        .parse()?;
    let accept_all = [SockFilter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 0x0004_0000,
    }];
    let sock = Arc::new(PacketSocket::open(ifindex, &accept_all)?.0);
    let stop = Arc::new(AtomicBool::new(false));
    let got = receiver(Arc::clone(&sock), Arc::clone(&stop));
    let g = Gen { sock, mac, src };
    let out = match args[3].as_str() {
        mode @ ("latency" | "latency-warm") => {
            let count: usize = args[4].parse()?;
            let targets: Vec<Ipv6Addr> = args[5..]
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()?;
            // latency-warm: one unmeasured pass over the targets first, so a relay has a
            // binding confirmed by each guest's own NA; the measured pass then starts at
            // once and reports how old the oldest of those NAs was when its target was
            // asked again (the fast path answers only within its window).
            let warm = if mode == "latency-warm" {
                Some(g.solicit_each(&got, count.min(targets.len()), &targets)?)
            } else {
                None
            };
            let timed = g.solicit_each(&got, count, &targets)?;
            let mut lat: Vec<f64> = timed.iter().filter_map(Sample::latency_ms).collect();
            let lost = count - lat.len();
            lat.sort_by(f64::total_cmp);
            let mut wire: Vec<f64> = timed.iter().filter_map(Sample::wire_latency_ms).collect();
            wire.sort_by(f64::total_cmp);
            let warm_fields = warm.map_or_else(String::new, |w| {
                let warm_lost = w.iter().filter(|s| s.answered.is_none()).count();
                // The measured pass cycles through the same targets in the same order.
                let max_age = timed
                    .iter()
                    .zip(w.iter().cycle())
                    .filter_map(|(t, w)| Some(t.sent.duration_since(w.answered?.at)))
                    .max()
                    .unwrap_or_default();
                format!(
                    r#","warm_lost":{warm_lost},"max_confirm_age_ms":{:.0}"#,
                    max_age.as_secs_f64() * 1e3
                )
            });
            format!(
                r#"{{"mode":"{mode}","sent":{count},"lost":{lost},"median_ms":{:.3},"p99_ms":{:.3},"wire_median_ms":{:.3},"wire_p99_ms":{:.3}{warm_fields}}}"#,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&wire, 0.5),
                percentile(&wire, 0.99)
            )
        }
        "rate" => {
            let rate: u64 = args[4].parse()?;
            let secs: u64 = args[5].parse()?;
            let targets: Vec<Ipv6Addr> = args[6..]
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()?;
            let frames: Vec<Vec<u8>> = targets.iter().map(|&t| g.ns(t)).collect();
            // Send times per target, to match each NA to the NS it answers.
            let mut sends: Vec<Vec<Instant>> = vec![Vec::new(); targets.len()];
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < Duration::from_secs(secs) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    let i = (sent % frames.len() as u64) as usize;
                    sends[i].push(Instant::now());
                    let _ = g.sock.send(&frames[i]);
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            std::thread::sleep(Duration::from_secs(1));
            let index: std::collections::HashMap<Ipv6Addr, usize> =
                targets.iter().enumerate().map(|(i, &t)| (t, i)).collect();
            let mut arrivals: Vec<Vec<Instant>> = vec![Vec::new(); targets.len()];
            let nas = got.lock().clone();
            for a in &nas {
                if let Some(&i) = index.get(&a.target) {
                    arrivals[i].push(a.at);
                }
            }
            let mut answered = 0u64;
            for (times, nas) in sends.iter().zip(&arrivals) {
                for (k, &t) in times.iter().enumerate() {
                    let next = times
                        .get(k + 1)
                        .copied()
                        .unwrap_or(t + Duration::from_secs(1));
                    if nas.iter().any(|&at| at >= t && at < next) {
                        answered += 1;
                    }
                }
            }
            format!(
                r#"{{"mode":"rate","offered_per_s":{rate},"sent":{sent},"answered":{answered},"answered_per_s":{:.0},"na_frames":{}}}"#,
                answered as f64 / secs as f64,
                nas.len()
            )
        }
        "scan" => {
            let rate: u64 = args[4].parse()?;
            let secs: u64 = args[5].parse()?;
            let prefix: Ipv6Addr = args[6].parse()?;
            let known: Vec<Ipv6Addr> = args[7..]
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()?;
            if known.is_empty() {
                bail!("scan: no known guest to probe");
            }
            let start = Instant::now();
            let stop_probes = Arc::new(AtomicBool::new(false));
            let prober = {
                let (stop, sock) = (Arc::clone(&stop_probes), Arc::clone(&g.sock));
                let frames: Vec<(Ipv6Addr, Vec<u8>)> =
                    known.iter().map(|&t| (t, g.ns(t))).collect();
                std::thread::spawn(move || probe_known(&sock, &frames, start, &stop))
            };
            let mut sent = 0u64;
            // Fixed seed: each run scans the same random targets.
            let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
            let base = u128::from(prefix) & !((1u128 << 64) - 1);
            while start.elapsed() < Duration::from_secs(secs) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    let t = Ipv6Addr::from(base | u128::from(rng.next_u64()));
                    let _ = g.sock.send(&g.ns(t));
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            stop_probes.store(true, Ordering::Relaxed);
            let probes = prober.join().expect("prober panicked");
            std::thread::sleep(Duration::from_secs(1));
            let nas = got.lock().clone();
            let samples = answer_probes(&probes, &nas, known.len());
            let mut lat: Vec<f64> = samples.iter().filter_map(Sample::latency_ms).collect();
            let resolved = lat.len();
            lat.sort_by(f64::total_cmp);
            let mut wire: Vec<(f64, f64)> = samples
                .iter()
                .filter_map(|s| {
                    Some((
                        s.sent.duration_since(start).as_secs_f64(),
                        s.wire_latency_ms()?,
                    ))
                })
                .collect();
            wire.sort_by(|a, b| a.1.total_cmp(&b.1));
            // The three slowest probes at the wire, [seconds into the scan, ms]: where the
            // tail comes from.
            let slowest: Vec<String> = wire
                .iter()
                .rev()
                .take(3)
                .map(|(t, ms)| format!("[{t:.2},{ms:.3}]"))
                .collect();
            let wire: Vec<f64> = wire.into_iter().map(|(_, ms)| ms).collect();
            let over_1ms = wire.iter().filter(|&&ms| ms > 1.0).count();
            let others = nas.iter().filter(|a| !known.contains(&a.target)).count();
            format!(
                r#"{{"mode":"scan","scan_per_s":{rate},"scan_sent":{sent},"scan_answered":{others},"guest_probes":{},"guest_resolved":{resolved},"guest_median_ms":{:.3},"guest_p99_ms":{:.3},"guest_wire_median_ms":{:.3},"guest_wire_p99_ms":{:.3},"guest_wire_over_1ms":{over_1ms},"guest_slowest":[{}]}}"#,
                samples.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&wire, 0.5),
                percentile(&wire, 0.99),
                slowest.join(",")
            )
        }
        m => bail!("unknown mode {m}"),
    };
    stop.store(true, Ordering::Relaxed);
    println!("{out}");
    Ok(())
}
