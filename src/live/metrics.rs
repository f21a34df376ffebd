//! Prometheus metrics: the one renderer that turns a status document into the Prometheus
//! text format (0.0.4), used by `ndprelay status --prometheus` and by the `/metrics`
//! endpoint `metrics_listen` opens.
//!
//! The endpoint gets its documents from the same [`StatusSource`] as the control
//! socket: a scrape never reaches into the engine another way, and however often
//! Prometheus and `status` ask together, the engine thread takes at most one snapshot
//! per reuse window. Its socket is bound at start, before capabilities drop (a port
//! below 1024 needs no capability the daemon keeps); the HTTP server and its threads
//! start on the metrics thread after that thread dropped every capability.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::control::{LinkState, NeighborState, StatusDoc, StatusSource};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a counter of the status document is exported: the family it belongs to, with
/// one label, and the family's help.
struct Family {
    name: &'static str,
    help: &'static str,
    label: &'static str,
}

/// Counters whose names are members of one family; the others are exported each under
/// its own name (`ndprelay_<name>_total`, `live_` dropped).
fn family_of(counter: &str) -> Option<(Family, &str)> {
    let f = |name, help, label| Family { name, help, label };
    if let Some(reason) = counter.strip_prefix("drop_") {
        let fam = f(
            "ndprelay_dropped_frames_total",
            "Frames dropped, by reason (malformed, policy, state, budget)",
            "reason",
        );
        return Some((fam, reason));
    }
    let (fam, value) = match counter {
        "relayed_ns" | "relayed_na" | "relayed_rs" | "relayed_ra" | "relayed_redirect" => (
            f(
                "ndprelay_relayed_total",
                "ND messages relayed by the engine, by message (copies sent; NS includes DAD)",
                "message",
            ),
            &counter["relayed_".len()..],
        ),
        "answered_by_kernel" | "relayed_ns_by_kernel" | "relayed_na_by_kernel" => (
            f(
                "ndprelay_in_kernel_total",
                "NS answered and NS/NA relayed by the in-kernel programs, as the engine saw them",
                "action",
            ),
            match counter {
                "answered_by_kernel" => "answered_ns",
                "relayed_ns_by_kernel" => "relayed_ns",
                _ => "relayed_na",
            },
        ),
        "sent_ns" | "sent_rs" | "sent_own_ra" | "sent_na" | "announced_na" | "ptb_sent" => (
            f(
                "ndprelay_sent_total",
                "Messages the relay originated, by message",
                "message",
            ),
            match counter {
                "announced_na" => "announce_na",
                "ptb_sent" => "packet_too_big",
                c => &c["sent_".len()..],
            },
        ),
        "announce_rate_limited" | "ptb_rate_limited" => (
            f(
                "ndprelay_rate_limited_total",
                "Messages the relay did not send because their rate limiter refused them \
                 (refused frames are in ndprelay_dropped_frames_total{reason=\"rate_limited\"})",
                "limiter",
            ),
            match counter {
                "announce_rate_limited" => "announce",
                _ => "packet_too_big",
            },
        ),
        "bindings_learned"
        | "bindings_confirmed"
        | "bindings_removed"
        | "bindings_moved"
        | "bindings_evicted"
        | "bindings_restored"
        | "bindings_restore_refused"
        | "bindings_reverified"
        | "bindings_restore_failed"
        | "binding_conflict" => (
            f(
                "ndprelay_binding_events_total",
                "Changes of the binding table, by event",
                "event",
            ),
            counter.strip_prefix("bindings_").unwrap_or("conflict"),
        ),
        "learn_table_full" | "learn_quota" => (
            f(
                "ndprelay_learn_refused_total",
                "New bindings refused, by reason",
                "reason",
            ),
            &counter["learn_".len()..],
        ),
        "pending_evicted" | "pending_failed" => (
            f(
                "ndprelay_pending_total",
                "Pending solicitations evicted for room or failed (never answered)",
                "event",
            ),
            &counter["pending_".len()..],
        ),
        "routes_installed" | "routes_removed" | "live_route_errors" => (
            f(
                "ndprelay_route_changes_total",
                "/128 routes installed and removed for bindings, and route changes that failed",
                "result",
            ),
            match counter {
                "routes_installed" => "installed",
                "routes_removed" => "removed",
                _ => "failed",
            },
        ),
        "routes_reconciled_kept"
        | "routes_reconciled_verified"
        | "routes_reconciled_removed"
        | "routes_reconciled_refused" => (
            f(
                "ndprelay_leftover_routes_total",
                "Routes an earlier run left, by what became of them",
                "fate",
            ),
            &counter["routes_reconciled_".len()..],
        ),
        "forwarded_data" | "held_data" | "forwarded_multicast" | "ignored_data" => (
            f(
                "ndprelay_data_frames_total",
                "Data frames of the userspace data plane, by result",
                "result",
            ),
            match counter {
                "forwarded_data" => "forwarded",
                "held_data" => "held",
                "forwarded_multicast" => "forwarded_multicast",
                _ => "ignored",
            },
        ),
        "link_up" | "link_down" | "mac_changed" => (
            f(
                "ndprelay_link_changes_total",
                "Port link changes the engine saw, by change",
                "change",
            ),
            match counter {
                "link_up" => "up",
                "link_down" => "down",
                _ => "mac_changed",
            },
        ),
        "live_rx_errors" | "live_tx_errors" => (
            f(
                "ndprelay_socket_errors_total",
                "Packet socket errors, by direction",
                "direction",
            ),
            &counter["live_".len().."live_".len() + 2],
        ),
        _ => return None,
    };
    Some((fam, value))
}

/// Help for the counters exported under their own name.
fn own_help(counter: &str) -> &'static str {
    match counter {
        "rx_frames" => "Frames received on the ports' packet sockets",
        "rx_nd" => "Valid ND messages received",
        "rx_data" => "IPv6 non-ND packets received",
        "rx_not_ipv6" => "Frames that are not untagged IPv6 (ignored)",
        "relayed_dad" => "DAD NS copies relayed (also counted as relayed NS)",
        "answered_ns" => "NS the engine answered itself (static prefix, fast path, routed)",
        "answered_routed" => "NS answered for addresses behind a routed port",
        "live_rx_kernel_drops" => "Frames the kernel dropped on the ports' packet sockets",
        _ => "ndprelay counter (see `ndprelay status --json`)",
    }
}

/// `live_rx_kernel_drops` → `ndprelay_kernel_socket_drops_total`; others
/// `ndprelay_<name>_total`, `live_` dropped.
fn own_name(counter: &str) -> String {
    if counter == "live_rx_kernel_drops" {
        return "ndprelay_kernel_socket_drops_total".into();
    }
    let base = counter.strip_prefix("live_").unwrap_or(counter);
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("ndprelay_{clean}_total")
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(n, v)| {
            let mut l = LabelPair::default();
            l.set_name((*n).to_owned());
            l.set_value((*v).to_owned());
            l
        })
        .collect()
}

fn sample(pairs: &[(&str, &str)], kind: MetricType, value: f64) -> Metric {
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    match kind {
        MetricType::COUNTER => {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
        _ => {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    m
}

/// Families by name, so each is written once with all its samples.
#[derive(Default)]
struct Families(BTreeMap<String, MetricFamily>);

impl Families {
    fn add(&mut self, name: &str, help: &str, kind: MetricType, m: Metric) {
        let fam = self.0.entry(name.to_owned()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_owned());
            f.set_help(help.to_owned());
            f.set_field_type(kind);
            f
        });
        fam.mut_metric().push(m);
    }

    fn gauge(&mut self, name: &str, help: &str, pairs: &[(&str, &str)], v: f64) {
        self.add(
            name,
            help,
            MetricType::GAUGE,
            sample(pairs, MetricType::GAUGE, v),
        );
    }
}

const NEIGHBOR_STATES: [NeighborState; 5] = [
    NeighborState::Incomplete,
    NeighborState::Stale,
    NeighborState::Delay,
    NeighborState::Probe,
    NeighborState::Reachable,
];

/// The status document in the Prometheus text format: every counter (drops by reason,
/// relayed messages by message and so on as labelled families, the rest under their own
/// names), bindings by port and state, ports up and proxying, routes, uptime, and the
/// NS→NA histogram.
pub fn render_prometheus(doc: &StatusDoc) -> String {
    let mut f = Families::default();
    for (name, &v) in &doc.counters {
        let value = v as f64;
        match family_of(name) {
            Some((fam, label)) => f.add(
                fam.name,
                fam.help,
                MetricType::COUNTER,
                sample(&[(fam.label, label)], MetricType::COUNTER, value),
            ),
            None => f.add(
                &own_name(name),
                own_help(name),
                MetricType::COUNTER,
                sample(&[], MetricType::COUNTER, value),
            ),
        }
    }
    let mut per_port: BTreeMap<&str, [u64; 5]> = doc
        .ports
        .iter()
        .map(|p| (p.name.as_str(), [0; 5]))
        .collect();
    for b in &doc.bindings {
        let i = NEIGHBOR_STATES.iter().position(|&s| s == b.state);
        if let Some(i) = i {
            per_port.entry(b.port.as_str()).or_default()[i] += 1;
        }
    }
    for (port, counts) in &per_port {
        for (state, n) in NEIGHBOR_STATES.iter().zip(counts) {
            f.gauge(
                "ndprelay_bindings",
                "Learned addresses, by port and neighbor cache state (RFC 4861 §7.3.2)",
                &[("port", port), ("state", state.as_str())],
                *n as f64,
            );
        }
    }
    let routes = doc.bindings.iter().filter(|b| b.route).count();
    f.gauge(
        "ndprelay_routes",
        "/128 routes the relay has installed for its bindings",
        &[],
        routes as f64,
    );
    let conflicts = doc.bindings.iter().filter(|b| b.route_conflict).count();
    f.gauge(
        "ndprelay_route_conflicts",
        "Bound addresses whose /128 route someone else installed (left alone)",
        &[],
        conflicts as f64,
    );
    for p in &doc.ports {
        let pairs = [("port", p.name.as_str()), ("role", p.role.as_str())];
        f.gauge(
            "ndprelay_port_up",
            "1 while the port's interface exists and is up",
            &pairs,
            f64::from(u8::from(p.state == LinkState::Up)),
        );
        let fr = p.frames;
        for (direction, n) in [("received", fr.received), ("sent", fr.sent)] {
            f.add(
                "ndprelay_port_frames_total",
                "Frames the engine received from the port and sent on it (relayed and its own)",
                MetricType::COUNTER,
                sample(
                    &[("port", p.name.as_str()), ("direction", direction)],
                    MetricType::COUNTER,
                    n as f64,
                ),
            );
        }
        f.add(
            "ndprelay_port_dropped_frames_total",
            "Frames from the port the engine dropped (ndprelay_dropped_frames_total says why)",
            MetricType::COUNTER,
            sample(
                &[("port", p.name.as_str())],
                MetricType::COUNTER,
                fr.dropped as f64,
            ),
        );
        f.gauge(
            "ndprelay_port_proxying",
            "1 while the port relays (enabled, not disabled by loop prevention)",
            &pairs,
            f64::from(u8::from(p.proxying)),
        );
    }
    f.gauge(
        "ndprelay_ports_proxying",
        "Ports that relay now",
        &[],
        doc.ports.iter().filter(|p| p.proxying).count() as f64,
    );
    f.gauge(
        "ndprelay_ports",
        "Configured ports",
        &[],
        doc.ports.len() as f64,
    );
    f.gauge(
        "ndprelay_uptime_seconds",
        "Seconds since the daemon started",
        &[],
        doc.uptime_secs as f64,
    );
    f.gauge(
        "ndprelay_build_info",
        "The ndprelay version answering (always 1)",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    f.add(
        "ndprelay_ns_na_relay_seconds",
        "Time from the engine relaying an NS to relaying the NA that answers it back",
        MetricType::HISTOGRAM,
        histogram(doc),
    );
    let families: Vec<MetricFamily> = f.0.into_values().collect();
    let mut out = String::new();
    // Fails only on a family without samples or a bad name, which the code above
    // never makes (the tests render every counter there is).
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
        log::error!("rendering metrics: {e}");
    }
    out
}

fn histogram(doc: &StatusDoc) -> Metric {
    let t = &doc.ns_na_time;
    let mut cumulative = 0u64;
    let buckets = t
        .bounds_us
        .iter()
        .zip(&t.buckets)
        .map(|(&bound, &n)| {
            cumulative = cumulative.saturating_add(n);
            let mut b = Bucket::default();
            b.set_upper_bound(bound as f64 / 1e6);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(t.count);
    h.set_sample_sum(t.sum_us as f64 / 1e6);
    let mut m = Metric::default();
    m.set_histogram(h);
    m
}

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Could not bind the address.
    #[error(
        "cannot listen on {addr} for metrics (`metrics_listen` in the config): is another \
         program on that port, is the address on this host? (a port below 1024 needs \
         CAP_NET_BIND_SERVICE, which ndprelay does not keep)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The bound metrics socket, not yet serving.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Binds `addr` (done at start, before capabilities drop).
    pub fn bind(addr: SocketAddr) -> Result<Self, MetricsError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Self { listener, addr })
    }

    /// The bound address (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `GET /metrics` until `stop` is set, with the documents of `source`.
    pub fn serve(self, source: &StatusSource<'_>, stop: &AtomicBool) {
        let addr = self.addr;
        let server = match tiny_http::Server::from_listener(self.listener, None) {
            Ok(s) => s,
            Err(e) => return log::error!("metrics on {addr}: cannot serve: {e}"),
        };
        log::info!("metrics on http://{addr}/metrics");
        while !stop.load(Ordering::Relaxed) {
            match server.recv_timeout(StdDuration::from_millis(250)) {
                Ok(Some(request)) => {
                    let (status, ctype, body) = respond(request.method(), request.url(), source);
                    let header = |name: &str, value: &str| {
                        tiny_http::Header::from_bytes(name, value).expect("a valid header")
                    };
                    let mut reply = tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(header("Content-Type", ctype));
                    if status == 405 {
                        reply.add_header(header("Allow", "GET, HEAD"));
                    }
                    if let Err(e) = request.respond(reply) {
                        log::debug!("metrics client: {e}");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::warn!("metrics on {addr}: {e}");
                    std::thread::sleep(StdDuration::from_millis(250));
                }
            }
        }
    }
}

/// The answer to one request: status code, content type, body.
fn respond(
    method: &tiny_http::Method,
    url: &str,
    source: &StatusSource<'_>,
) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let path = url.split('?').next().unwrap_or(url);
    if path != "/metrics" {
        return (404, TEXT, "not found; metrics are at /metrics\n".into());
    }
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return (405, TEXT, "only GET\n".into());
    }
    match source.doc() {
        Some(doc) => (200, CONTENT_TYPE, render_prometheus(&doc)),
        None => (
            503,
            TEXT,
            "the daemon's engine thread did not answer in time (busy reloading or \
             stopping); try again\n"
                .into(),
        ),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::DropReason;
    use crate::engine::{Counter, NS_NA_BOUNDS_MICROS};
    use serde_json::json;

    /// Every counter the engine and the driver keep, each with a distinct value.
    fn all_counters() -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .map(|r| format!("drop_{}", r.name()))
            .chain(Counter::ALL.iter().map(|c| c.name().to_owned()))
            .chain(
                super::super::counters::DriverCounters::default()
                    .list()
                    .into_iter()
                    .map(|(n, _)| n),
            )
            .enumerate()
            .map(|(i, n)| (n, i as u64 + 1))
            .collect()
    }

    fn doc() -> StatusDoc {
        let mut buckets = vec![0u64; NS_NA_BOUNDS_MICROS.len() + 1];
        buckets[2] = 3; // 50 µs
        buckets[6] = 1; // 1 ms
        buckets[16] = 1; // above 1 s
        serde_json::from_value(json!({
            "bindings": [
                { "address": "2001:db8::10", "age_secs": 1, "mac": "02:00:00:00:00:10",
                  "port": "br0", "route": true, "route_conflict": false, "state": "reachable" },
                { "address": "2001:db8::11", "age_secs": 1, "mac": "02:00:00:00:00:11",
                  "port": "br0", "route": true, "route_conflict": false, "state": "reachable" },
                { "address": "2001:db8::12", "age_secs": null, "mac": "02:00:00:00:00:12",
                  "port": "br1", "route": false, "route_conflict": true, "state": "stale" },
            ],
            "counters": all_counters(),
            "ns_na_time": { "bounds_us": NS_NA_BOUNDS_MICROS, "buckets": buckets,
                            "count": 5, "sum_us": 2_000_190 },
            "ports": [
                { "ifindex": 2, "in_kernel_hook": null, "loop_prevention": { "state": "proxying" },
                  "mac": "02:00:00:00:00:01", "mtu": 1500, "name": "eth0", "proxying": true,
                  "quarantined": [], "role": "upstream", "state": "up" },
                { "ifindex": 3, "in_kernel_hook": null, "loop_prevention": { "state": "proxying" },
                  "mac": "02:00:00:00:00:02", "mtu": 1500, "name": "br0", "proxying": true,
                  "frames": { "dropped": 3000, "received": 1000000, "sent": 500000 },
                  "quarantined": [], "role": "downstream", "state": "up" },
                { "ifindex": null, "in_kernel_hook": null,
                  "loop_prevention": { "state": "enabling", "why": { "reason": "link_down" } },
                  "mac": "02:00:00:00:00:03", "mtu": 1500, "name": "br1", "proxying": false,
                  "quarantined": [], "role": "downstream", "state": "missing" },
            ],
            "uptime_secs": 3725,
            "version": 1,
        }))
        .unwrap()
    }

    /// The sample lines (`name{labels} value`) of the rendering.
    fn samples(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                let v = if v == "+Inf" {
                    f64::INFINITY
                } else {
                    v.parse().unwrap()
                };
                (k.to_owned(), v)
            })
            .collect()
    }

    fn value(text: &str, key: &str) -> f64 {
        let all = samples(text);
        let found: Vec<f64> = all
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{key} once in:\n{text}");
        found[0]
    }

    #[test]
    fn every_counter_is_exported_once_under_a_prometheus_name() {
        let text = render_prometheus(&doc());
        let samples = samples(&text);
        let mut keys: Vec<&str> = samples.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "no sample twice");
        // Each counter's value (all distinct) shows up as exactly one counter sample.
        let types: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_once(' ').unwrap())
            .collect();
        // The per-port frame counts aside, which are not in the counter map.
        let counter_samples: Vec<&(String, f64)> = samples
            .iter()
            .filter(|(k, _)| !k.starts_with("ndprelay_port_"))
            .filter(|(k, _)| types.get(k.split('{').next().unwrap()) == Some(&"counter"))
            .collect();
        assert_eq!(counter_samples.len(), all_counters().len(), "{text}");
        for (name, v) in all_counters() {
            let hits = counter_samples
                .iter()
                .filter(|(_, x)| *x == v as f64)
                .count();
            assert_eq!(hits, 1, "{name} = {v} once in:\n{text}");
        }
        for (family, kind) in &types {
            assert!(family.starts_with("ndprelay_"), "{family}");
            assert_eq!(
                family.ends_with("_total"),
                *kind == "counter",
                "{family} {kind}: _total on counters only"
            );
            assert!(
                family
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{family}"
            );
        }
        assert_eq!(
            types.len(),
            text.matches("# HELP ").count(),
            "help on each family"
        );
    }

    #[test]
    fn families_carry_their_members_as_labels() {
        let text = render_prometheus(&doc());
        let c = all_counters();
        let at = |name: &str| c[name] as f64;
        assert_eq!(
            value(
                &text,
                r#"ndprelay_dropped_frames_total{reason="hop_limit"}"#
            ),
            at("drop_hop_limit")
        );
        assert_eq!(
            value(&text, r#"ndprelay_relayed_total{message="ns"}"#),
            at("relayed_ns")
        );
        assert_eq!(
            value(&text, r#"ndprelay_in_kernel_total{action="answered_ns"}"#),
            at("answered_by_kernel")
        );
        assert_eq!(
            value(&text, r#"ndprelay_route_changes_total{result="failed"}"#),
            at("live_route_errors")
        );
        assert_eq!(
            value(&text, r#"ndprelay_rate_limited_total{limiter="announce"}"#),
            at("announce_rate_limited")
        );
        assert_eq!(
            value(&text, "ndprelay_kernel_socket_drops_total"),
            at("live_rx_kernel_drops")
        );
        assert_eq!(value(&text, "ndprelay_rx_frames_total"), at("rx_frames"));
        assert_eq!(value(&text, "ndprelay_uptime_seconds"), 3725.0);
        assert_eq!(value(&text, "ndprelay_ports_proxying"), 2.0);
        assert_eq!(
            value(
                &text,
                r#"ndprelay_port_proxying{port="br1",role="downstream"}"#
            ),
            0.0
        );
        assert_eq!(
            value(&text, r#"ndprelay_port_up{port="eth0",role="upstream"}"#),
            1.0
        );
        assert_eq!(value(&text, "ndprelay_routes"), 2.0);
        let port = |name: &str, dir: &str| {
            value(
                &text,
                &format!(r#"ndprelay_port_frames_total{{port="{name}",direction="{dir}"}}"#),
            )
        };
        assert_eq!(port("br0", "received"), 1e6);
        assert_eq!(port("br0", "sent"), 5e5);
        assert_eq!(
            port("eth0", "sent"),
            0.0,
            "absent from an older daemon: zero"
        );
        assert_eq!(
            value(&text, r#"ndprelay_port_dropped_frames_total{port="br0"}"#),
            3000.0
        );
        assert_eq!(value(&text, "ndprelay_route_conflicts"), 1.0);
    }

    #[test]
    fn bindings_by_port_and_state_zeros_included() {
        let text = render_prometheus(&doc());
        let b = |port: &str, state: &str| {
            value(
                &text,
                &format!(r#"ndprelay_bindings{{port="{port}",state="{state}"}}"#),
            )
        };
        assert_eq!(b("br0", "reachable"), 2.0);
        assert_eq!(b("br0", "stale"), 0.0);
        assert_eq!(b("br1", "stale"), 1.0);
        assert_eq!(b("eth0", "reachable"), 0.0);
        assert_eq!(text.matches("ndprelay_bindings{").count(), 3 * 5);
    }

    #[test]
    fn the_histogram_is_cumulative_in_seconds_with_inf() {
        let text = render_prometheus(&doc());
        let bucket = |le: &str| {
            value(
                &text,
                &format!(r#"ndprelay_ns_na_relay_seconds_bucket{{le="{le}"}}"#),
            )
        };
        assert!(
            text.contains("# TYPE ndprelay_ns_na_relay_seconds histogram\n"),
            "{text}"
        );
        assert_eq!(bucket("0.00001"), 0.0);
        assert_eq!(bucket("0.000025"), 0.0);
        assert_eq!(bucket("0.00005"), 3.0);
        assert_eq!(bucket("0.0005"), 3.0);
        assert_eq!(bucket("0.001"), 4.0);
        assert_eq!(bucket("1"), 4.0);
        assert_eq!(bucket("+Inf"), 5.0);
        assert_eq!(value(&text, "ndprelay_ns_na_relay_seconds_count"), 5.0);
        assert_eq!(value(&text, "ndprelay_ns_na_relay_seconds_sum"), 2.00019);
        let les = text.matches("ndprelay_ns_na_relay_seconds_bucket{").count();
        assert_eq!(les, NS_NA_BOUNDS_MICROS.len() + 1);
        // A document from a daemon without the histogram still renders one, empty.
        let mut old = doc();
        old.ns_na_time = Default::default();
        let text = render_prometheus(&old);
        assert_eq!(value(&text, "ndprelay_ns_na_relay_seconds_count"), 0.0);
        assert!(text.contains(r#"ndprelay_ns_na_relay_seconds_bucket{le="+Inf"} 0"#));
    }

    #[test]
    fn only_get_of_metrics_is_answered() {
        let source = StatusSource::new(|| None);
        let (code, _, body) = respond(&tiny_http::Method::Get, "/", &source);
        assert_eq!(code, 404, "{body}");
        let (code, _, _) = respond(&tiny_http::Method::Post, "/metrics", &source);
        assert_eq!(code, 405);
        let (code, _, body) = respond(&tiny_http::Method::Get, "/metrics", &source);
        assert_eq!(code, 503, "the engine thread did not answer: {body}");
    }
}
