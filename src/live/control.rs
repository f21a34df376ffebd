//! The control socket: a Unix stream socket (mode 0600) on which the daemon answers
//! `status` with one JSON document, and the client side that renders it as text.
//!
//! The control thread asks the daemon's engine thread for a [`Published`] snapshot when
//! a request comes (not every interval: taking one keeps the engine thread from the
//! frames waiting for it) and turns it into JSON itself.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use serde_json::{Value, json};

use super::sys;
use crate::engine::{BindingState, Role, Snapshot};

/// How long a status document is served again before the engine thread is asked for a
/// new snapshot.
const STATUS_REUSE: StdDuration = StdDuration::from_millis(100);

/// Driver facts `status` shows next to the engine's snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverPort {
    /// Current ifindex, `None` while the interface does not exist.
    pub ifindex: Option<i32>,
    /// Link MTU.
    pub mtu: u32,
    /// How the in-kernel programs hook into its ingress (`tcx`, `tc`), if they run there.
    pub in_kernel_hook: Option<&'static str>,
}

/// What the engine thread hands the control thread for a status request.
#[derive(Debug, Clone)]
pub struct Published {
    /// The engine's snapshot.
    pub snapshot: Snapshot,
    /// Per port, in `PortId` order.
    pub ports: Vec<DriverPort>,
    /// Driver counters (queue overflows, send errors, route errors...).
    pub counters: Vec<(String, u64)>,
    /// Bound addresses whose /128 route someone else installed (left alone).
    pub route_conflicts: Vec<Ipv6Addr>,
    /// Seconds since start.
    pub uptime_secs: u64,
}

fn state_name(s: BindingState) -> &'static str {
    match s {
        BindingState::Incomplete => "incomplete",
        BindingState::Stale => "stale",
        BindingState::Delay => "delay",
        BindingState::Probe => "probe",
        BindingState::Reachable => "reachable",
    }
}

/// The JSON document `status --json` prints (and the socket carries).
pub fn to_json(p: &Published) -> Value {
    let s = &p.snapshot;
    let ports: Vec<Value> = s
        .ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let d = p.ports.get(i).cloned().unwrap_or_default();
            let loop_prevention = match port.disabled_until {
                Some(t) => json!({
                    "state": "disabled",
                    "remaining_secs": t.saturating_since(s.now).total_micros() / 1_000_000,
                }),
                None if port.proxying => json!({ "state": "proxying" }),
                None => json!({ "state": "enabling" }),
            };
            let quarantined: Vec<Value> = port
                .quarantined
                .iter()
                .map(|(mac, until)| {
                    json!({
                        "mac": mac.to_string(),
                        "remaining_secs": until.saturating_since(s.now).total_micros() / 1_000_000,
                    })
                })
                .collect();
            json!({
                "name": port.name,
                "role": match port.role { Role::Upstream => "upstream", Role::Downstream => "downstream" },
                "state": if d.ifindex.is_none() { "missing" } else if port.up { "up" } else { "down" },
                "ifindex": d.ifindex,
                "mac": port.mac.to_string(),
                "mtu": d.mtu,
                "in_kernel_hook": d.in_kernel_hook,
                "proxying": port.proxying,
                "loop_prevention": loop_prevention,
                "quarantined": quarantined,
            })
        })
        .collect();
    let bindings: Vec<Value> = s
        .bindings
        .iter()
        .map(|b| {
            let conflict = p.route_conflicts.contains(&b.addr);
            json!({
                "address": b.addr.to_string(),
                "port": s.ports.get(b.port.index()).map_or("?", |p| p.name.as_str()),
                "mac": b.mac.to_string(),
                "state": state_name(b.state),
                "age_secs": b.confirmed_at.map(|t| s.now.saturating_since(t).total_micros() / 1_000_000),
                "route": b.routed && !conflict,
                "route_conflict": conflict,
            })
        })
        .collect();
    let mut counters = serde_json::Map::new();
    for (k, v) in s.counters.iter().chain(p.counters.iter()) {
        counters.insert(k.clone(), json!(v));
    }
    json!({
        "version": 1,
        "uptime_secs": p.uptime_secs,
        "ports": ports,
        "bindings": bindings,
        "counters": counters,
    })
}

fn secs(v: &Value) -> String {
    match v.as_u64() {
        None => "-".into(),
        Some(s) if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{s}s"),
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Renders the status document for people.
pub fn render_text(doc: &Value) -> String {
    let empty = Vec::new();
    let ports = doc["ports"].as_array().unwrap_or(&empty);
    let bindings = doc["bindings"].as_array().unwrap_or(&empty);
    let mut out = format!(
        "ndprelay: up {}, {} ports, {} bindings\n\nPORTS\n",
        secs(&doc["uptime_secs"]),
        ports.len(),
        bindings.len()
    );
    let mut rows = vec![
        [
            "NAME",
            "ROLE",
            "STATE",
            "MAC",
            "MTU",
            "EBPF",
            "LOOP-PREVENTION",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in ports {
        let lp = &p["loop_prevention"];
        let mut lp = match lp["state"].as_str() {
            Some("disabled") => format!("disabled, {} left", secs(&lp["remaining_secs"])),
            Some(s) => s.to_owned(),
            None => "-".into(),
        };
        // Senders of P-bit RAs, whose frames the port ignores (THREAT-MODEL.md).
        let macs: Vec<String> = p["quarantined"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| text(q, "mac"))
            .collect();
        if !macs.is_empty() {
            lp.push_str(&format!(", ignoring {}", macs.join(" ")));
        }
        rows.push(vec![
            text(p, "name"),
            text(p, "role"),
            text(p, "state"),
            text(p, "mac"),
            text(p, "mtu"),
            text(p, "in_kernel_hook"),
            lp,
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nBINDINGS\n");
    if bindings.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut rows = vec![
            ["ADDRESS", "PORT", "MAC", "STATE", "AGE", "ROUTE"]
                .map(String::from)
                .to_vec(),
        ];
        for b in bindings {
            rows.push(vec![
                text(b, "address"),
                text(b, "port"),
                text(b, "mac"),
                text(b, "state"),
                secs(&b["age_secs"]),
                if b["route_conflict"].as_bool() == Some(true) {
                    "conflict"
                } else if b["route"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push_str("\nCOUNTERS (non-zero; --json lists all)\n");
    let mut rows = Vec::new();
    if let Some(map) = doc["counters"].as_object() {
        for (k, v) in map {
            if v.as_u64().is_some_and(|n| n > 0) {
                rows.push(vec![k.clone(), v.to_string()]);
            }
        }
    }
    if rows.is_empty() {
        out.push_str("(all zero)\n");
    } else {
        out.push_str(&table(&rows));
    }
    out
}

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another daemon answers on the path.
    #[error(
        "control socket {0} is in use by a running ndprelay; stop it or choose another `control_socket`"
    )]
    InUse(PathBuf),
    /// Could not create it.
    #[error("cannot create control socket {path}: {cause}")]
    Bind {
        /// Path.
        path: PathBuf,
        /// Cause (shown in the message, not chained, so it is printed once).
        cause: io::Error,
    },
    /// The client could not reach a daemon.
    #[error(
        "no ndprelay answers on {path}: {cause} (is `ndprelay run` running with this control socket? try --control-socket PATH)"
    )]
    Connect {
        /// Path.
        path: PathBuf,
        /// Cause (shown in the message, not chained, so it is printed once).
        cause: io::Error,
    },
    /// The daemon answered something unreadable.
    #[error("bad answer on {path}: {detail}")]
    BadAnswer {
        /// Path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// The bound control socket; removes its file when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` with mode 0600. A stale socket file (no one answering) is replaced;
    /// a live one is an error.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_owned()));
            }
            let _ = std::fs::remove_file(path);
        }
        // The socket is created with 0600 from the start: no window where others connect.
        let old = sys::umask(0o177);
        let res = UnixListener::bind(path);
        sys::umask(old);
        let listener = res.map_err(|cause| ControlError::Bind {
            path: path.to_owned(),
            cause,
        })?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    /// Serves requests until `stop` is set; `ask` fetches a snapshot (`None`: the engine
    /// thread did not answer in time). A document younger than `STATUS_REUSE` is
    /// served again instead: however often clients ask, the engine thread takes a
    /// snapshot at most that often.
    pub fn serve(&self, mut ask: impl FnMut() -> Option<Published>, stop: &AtomicBool) {
        // The snapshot, not its JSON: a JSON tree of 2000 bindings is several times
        // larger (the daemon's peak RSS was 2 MB higher when it was kept).
        let mut last: Option<(StdInstant, Published)> = None;
        while !stop.load(Ordering::Relaxed) {
            match sys::poll_readable(&self.listener, 250) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    log::warn!("control socket poll: {e}");
                    std::thread::sleep(StdDuration::from_millis(250));
                    continue;
                }
            }
            let Ok((stream, _)) = self.listener.accept() else {
                continue;
            };
            let status = || {
                let fresh = last
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() < STATUS_REUSE);
                if !fresh {
                    last = Some((StdInstant::now(), ask()?));
                }
                last.as_ref().map(|(_, p)| to_json(p))
            };
            if let Err(e) = answer(stream, status) {
                log::debug!("control client: {e}");
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(stream: UnixStream, status: impl FnOnce() -> Option<Value>) -> io::Result<()> {
    stream.set_read_timeout(Some(StdDuration::from_secs(1)))?;
    stream.set_write_timeout(Some(StdDuration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(256)).read_line(&mut line)?;
    let reply = match line.trim() {
        "status" => status().unwrap_or_else(|| {
            json!({ "error": "the daemon's engine thread did not answer in time (busy reloading or stopping); try again" })
        }),
        other => json!({ "error": format!("unknown request {other:?}") }),
    };
    // One write: serde_json writes token by token, and on an unbuffered socket every
    // token was a send (2000 bindings took ~90 ms).
    let mut doc = serde_json::to_vec(&reply)?;
    doc.push(b'\n');
    (&stream).write_all(&doc)
}

/// Asks the daemon on `path` for its status document.
pub fn request_status(path: &Path) -> Result<Value, ControlError> {
    let connect = |cause| ControlError::Connect {
        path: path.to_owned(),
        cause,
    };
    let mut stream = UnixStream::connect(path).map_err(connect)?;
    stream
        .set_read_timeout(Some(StdDuration::from_secs(5)))
        .map_err(connect)?;
    stream.write_all(b"status\n").map_err(connect)?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).map_err(connect)?;
    let doc: Value = serde_json::from_str(&buf).map_err(|e| ControlError::BadAnswer {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if let Some(err) = doc.get("error") {
        return Err(ControlError::BadAnswer {
            path: path.to_owned(),
            detail: err.to_string(),
        });
    }
    Ok(doc)
}

/// Parses an address from a status document row (tests, tools).
pub fn binding_addresses(doc: &Value) -> Vec<Ipv6Addr> {
    doc["bindings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["address"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::engine::{BindingInfo, PortId, PortInfo};
    use crate::time::{Duration, Instant};
    use crate::wire::Mac;

    fn sample() -> Published {
        let now = Instant::ZERO + Duration::from_secs(100);
        Published {
            snapshot: Snapshot {
                now,
                ports: vec![
                    PortInfo {
                        name: "eth0".into(),
                        role: Role::Upstream,
                        mac: Mac([2, 0, 0, 0, 0, 1]),
                        up: true,
                        proxying: true,
                        disabled_until: None,
                        quarantined: vec![],
                    },
                    PortInfo {
                        name: "br0".into(),
                        role: Role::Downstream,
                        mac: Mac([2, 0, 0, 0, 0, 2]),
                        up: true,
                        proxying: false,
                        disabled_until: Some(now + Duration::from_secs(125)),
                        quarantined: vec![(
                            Mac([2, 0, 0, 0, 0, 0x66]),
                            now + Duration::from_secs(60),
                        )],
                    },
                ],
                bindings: vec![BindingInfo {
                    addr: "2001:db8::10".parse().unwrap(),
                    port: PortId(1),
                    mac: Mac([2, 0, 0, 0, 0, 0x10]),
                    state: BindingState::Reachable,
                    confirmed_at: Some(Instant::ZERO + Duration::from_secs(93)),
                    routed: true,
                }],
                counters: vec![("relayed_ns".into(), 5), ("drop_hop_limit".into(), 0)],
            },
            ports: vec![
                DriverPort {
                    ifindex: Some(2),
                    mtu: 1500,
                    in_kernel_hook: Some("tc"),
                },
                DriverPort {
                    ifindex: Some(3),
                    mtu: 1500,
                    in_kernel_hook: None,
                },
            ],
            counters: vec![("tx_errors".into(), 0)],
            route_conflicts: Vec::new(),
            uptime_secs: 3725,
        }
    }

    #[test]
    fn a_route_conflict_shows_per_binding_in_json_and_text() {
        let mut p = sample();
        p.route_conflicts = vec!["2001:db8::10".parse().unwrap()];
        let doc = to_json(&p);
        assert_eq!(doc["bindings"][0]["route_conflict"], true);
        assert_eq!(doc["bindings"][0]["route"], false, "the route is not ours");
        let t = render_text(&doc);
        let row = t.lines().find(|l| l.starts_with("2001:db8::10")).unwrap();
        assert!(row.ends_with(" conflict"), "{row}");
        assert_eq!(to_json(&sample())["bindings"][0]["route_conflict"], false);
    }

    #[test]
    fn json_carries_ports_bindings_and_all_counters() {
        let doc = to_json(&sample());
        assert_eq!(doc["ports"][1]["name"], "br0");
        assert_eq!(doc["ports"][0]["in_kernel_hook"], "tc");
        assert_eq!(doc["ports"][1]["in_kernel_hook"], Value::Null);
        assert_eq!(doc["ports"][1]["loop_prevention"]["state"], "disabled");
        assert_eq!(doc["ports"][1]["loop_prevention"]["remaining_secs"], 125);
        assert_eq!(doc["ports"][0]["loop_prevention"]["state"], "proxying");
        assert_eq!(
            doc["ports"][1]["quarantined"][0]["mac"],
            "02:00:00:00:00:66"
        );
        assert_eq!(doc["ports"][1]["quarantined"][0]["remaining_secs"], 60);
        assert_eq!(
            doc["ports"][0]["quarantined"].as_array().map(Vec::len),
            Some(0)
        );
        assert_eq!(doc["bindings"][0]["port"], "br0");
        assert_eq!(doc["bindings"][0]["age_secs"], 7);
        assert_eq!(doc["bindings"][0]["route"], true);
        assert_eq!(doc["counters"]["drop_hop_limit"], 0);
        assert_eq!(doc["counters"]["tx_errors"], 0);
        assert_eq!(
            binding_addresses(&doc),
            vec!["2001:db8::10".parse::<Ipv6Addr>().unwrap()]
        );
    }

    #[test]
    fn text_shows_tables_and_only_nonzero_counters() {
        let t = render_text(&to_json(&sample()));
        assert!(
            t.starts_with("ndprelay: up 1h02m, 2 ports, 1 bindings"),
            "{t}"
        );
        assert!(
            t.contains("disabled, 2m05s left, ignoring 02:00:00:00:00:66"),
            "{t}"
        );
        let eth0: Vec<&str> = t
            .lines()
            .find(|l| l.starts_with("eth0"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(eth0[4..6], ["1500", "tc"], "{t}");
        let row = t.lines().find(|l| l.starts_with("2001:db8::10")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "2001:db8::10",
                "br0",
                "02:00:00:00:00:10",
                "reachable",
                "7s",
                "yes"
            ]
        );
        assert!(t.contains("relayed_ns"), "{t}");
        assert!(!t.contains("drop_hop_limit"), "{t}");
    }

    /// A control socket bound in a new temporary directory `name`-PID: (dir, path, socket).
    fn socket_in_temp_dir(name: &str) -> (PathBuf, PathBuf, ControlSocket) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let sock = ControlSocket::bind(&path).unwrap();
        (dir, path, sock)
    }

    #[test]
    fn socket_round_trip_with_mode_0600() {
        let (dir, path, sock) = socket_in_temp_dir("ndpr-ctl");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            ControlSocket::bind(&path),
            Err(ControlError::InUse(_))
        ));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| sock.serve(|| Some(sample()), &stop));
            let doc = request_status(&path).unwrap();
            assert_eq!(doc["bindings"][0]["address"], "2001:db8::10");
            stop.store(true, Ordering::Relaxed);
        });
        drop(sock);
        assert!(!path.exists());
        assert!(matches!(
            request_status(&path),
            Err(ControlError::Connect { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_request_gets_a_new_snapshot_unless_one_was_taken_just_before() {
        let (dir, path, sock) = socket_in_temp_dir("ndpr-ctl-ask");
        let asked = std::sync::atomic::AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                sock.serve(
                    || {
                        // The third snapshot finds the engine thread not answering.
                        let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
                        (n != 3).then(|| Published {
                            uptime_secs: n,
                            ..sample()
                        })
                    },
                    &stop,
                )
            });
            let later = || {
                std::thread::sleep(STATUS_REUSE + StdDuration::from_millis(50));
                request_status(&path)
            };
            let answers = [
                request_status(&path),
                request_status(&path),
                later(),
                later(),
                later(),
            ];
            // Stopped before asserting, so a failed assertion cannot leave it serving.
            stop.store(true, Ordering::Relaxed);
            let [first, again, second, busy, after_busy] = answers;
            let uptime = |a: Result<Value, ControlError>| a.unwrap()["uptime_secs"].clone();
            assert_eq!(uptime(first), 1);
            assert_eq!(uptime(again), 1, "asked again at once: the same snapshot");
            assert_eq!(uptime(second), 2);
            assert!(
                matches!(&busy, Err(ControlError::BadAnswer { detail, .. }) if detail.contains("did not answer")),
                "{busy:?}"
            );
            assert_eq!(uptime(after_busy), 4, "asked again after the failure");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
