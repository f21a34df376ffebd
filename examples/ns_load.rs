//! NS load generator for `scripts/bench-ns.sh` (run inside the bench's `isp` namespace).
//!
//! ```text
//! ns_load IFACE SRC latency COUNT TARGET...       one NS at a time, 1 s timeout each,
//!                                                 cycling through the targets
//! ns_load IFACE SRC latency-warm COUNT TARGET...  the same after one unmeasured pass
//!                                                 over the targets (fast-path bench)
//! ns_load IFACE SRC rate RATE SECS TARGET...      NS round-robin over known targets
//! ns_load IFACE SRC scan RATE SECS PREFIX TARGET  random targets in PREFIX/64 at RATE,
//!                                                 TARGET probed every 500 ms meanwhile
//! ```
//!
//! Every NS is multicast to the target's solicited-node group with an SLLA, from SRC,
//! like a router resolving a neighbour. Prints one JSON object.
//!
//! Latency is reported twice: `median_ms`/`p99_ms` end at the moment this program's
//! receiver thread has the NA (what an asking process sees, its own wake-up included);
//! `wire_median_ms`/`wire_p99_ms` end at the kernel's receive timestamp of the NA
//! (`SIOCGSTAMPNS`), which is what the asking host's kernel sees. Both start just
//! before the NS is handed to the kernel.
//!
//! `rate` counts an NS as answered when an NA for its target arrives before the next NS
//! for that target (at most one answer per NS, however many NAs came).

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use ndprelay::live::sys::{PacketSocket, SockFilter, if_nametoindex, poll_readable};
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
    // Switches receive timestamps on for this socket.
    let _ = sock.last_rx_time();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if !poll_readable(sock.raw(), 50).unwrap_or(false) {
                continue;
            }
            while let Ok((n, _)) = sock.recv(&mut buf) {
                if let Ok(Parsed::Nd(p)) = parse_frame(&buf[..n]) {
                    if let NdMessage::NeighborAdvert { target_addr, .. } = p.message {
                        let at = Instant::now();
                        let wire = sock.last_rx_time().ok();
                        g.lock().push(Arrival {
                            target: target_addr,
                            at,
                            wire,
                        });
                    }
                }
            }
        }
    });
    got
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
            let target: Ipv6Addr = args[7].parse()?;
            let start = Instant::now();
            let probes: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
            let (p2, stop2, s2) = (
                Arc::clone(&probes),
                Arc::new(AtomicBool::new(false)),
                Arc::clone(&g.sock),
            );
            let probe_frame = g.ns(target);
            let st = Arc::clone(&stop2);
            let prober = std::thread::spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    p2.lock().push(Instant::now());
                    let _ = s2.send(&probe_frame);
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
            let mut sent = 0u64;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let base = u128::from(prefix) & !((1u128 << 64) - 1);
            while start.elapsed() < Duration::from_secs(secs) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let t = Ipv6Addr::from(base | u128::from(x));
                    let _ = g.sock.send(&g.ns(t));
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            stop2.store(true, Ordering::Relaxed);
            let _ = prober.join();
            std::thread::sleep(Duration::from_secs(1));
            let nas: Vec<Instant> = got
                .lock()
                .iter()
                .filter(|a| a.target == target)
                .map(|a| a.at)
                .collect();
            let probes = probes.lock().clone();
            // A probe counts as resolved when an NA for the guest arrives before the next probe.
            let mut lat = Vec::new();
            let mut when = Vec::new();
            for (i, &p) in probes.iter().enumerate() {
                let next = probes
                    .get(i + 1)
                    .copied()
                    .unwrap_or(p + Duration::from_millis(500));
                if let Some(&at) = nas.iter().find(|&&at| at >= p && at < next) {
                    let ms = at.duration_since(p).as_secs_f64() * 1e3;
                    lat.push(ms);
                    when.push((p.duration_since(start).as_secs_f64(), ms));
                }
            }
            let resolved = lat.len();
            lat.sort_by(f64::total_cmp);
            // The three slowest probes, [seconds into the scan, ms]: where the tail comes from.
            when.sort_by(|a, b| b.1.total_cmp(&a.1));
            let slowest: Vec<String> = when
                .iter()
                .take(3)
                .map(|(t, ms)| format!("[{t:.2},{ms:.3}]"))
                .collect();
            let others = got.lock().iter().filter(|a| a.target != target).count();
            format!(
                r#"{{"mode":"scan","scan_per_s":{rate},"scan_sent":{sent},"scan_answered":{others},"guest_probes":{},"guest_resolved":{resolved},"guest_median_ms":{:.3},"guest_p99_ms":{:.3},"guest_slowest":[{}]}}"#,
                probes.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                slowest.join(",")
            )
        }
        m => bail!("unknown mode {m}"),
    };
    stop.store(true, Ordering::Relaxed);
    println!("{out}");
    Ok(())
}
