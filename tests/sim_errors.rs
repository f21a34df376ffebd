//! Bad scenarios are rejected before anything runs, with file:line:column and a hint.

use std::path::Path;

use ndprelay::sim::{self, RunOptions, SimError};

const BASE: &str = r#"Scenario(
    name: "bad",
    duration: "1m",
    segments: ["wan", "lan"],
    hosts: [
        (name: "r", segment: "wan", mac: "02:00:00:00:00:01",
         role: Router(prefixes: ["2001:db8:1::/64"])),
        (name: "a", segment: "lan", mac: "02:00:00:00:00:02", role: Slaac),
    ],
    relays: [(config: (uplink: "wan", downstream: ["lan"], prefixes: ["2001:db8:1::/64"]))],
    events: [(at: "10s", do: Ping(from: "r", to: "a"))],
    expect: [Reachable(from: "r", to: "a")],
)
"#;

/// Writes the scenario to a file and runs it; it must fail before producing output.
fn reject(text: &str, name: &str) -> (usize, usize, String) {
    let path = std::env::temp_dir().join(format!("ndprelay-bad-{}-{name}.ron", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    let mut out = Vec::new();
    let err = sim::run(&path, &RunOptions::default(), &mut out).expect_err("must be rejected");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.is_empty(),
        "nothing may half-run: {}",
        String::from_utf8_lossy(&out)
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(&path.display().to_string()),
        "error names the file: {shown}"
    );
    assert!(shown.contains("hint:"), "error has a hint: {shown}");
    match err {
        SimError::Scenario { line, col, msg, .. } => (line, col, msg),
        other => panic!("expected a scenario error, got {other}"),
    }
}

#[test]
fn unknown_segment() {
    let (line, col, msg) = reject(
        &BASE.replace(r#"segment: "lan""#, r#"segment: "lna""#),
        "segment",
    );
    assert_eq!((line, col), (8, 30));
    assert!(msg.contains("unknown segment \"lna\""), "{msg}");
}

#[test]
fn duplicate_mac() {
    let (line, _, msg) = reject(
        &BASE.replace("02:00:00:00:00:02", "02:00:00:00:00:01"),
        "mac",
    );
    assert_eq!(line, 8);
    assert!(msg.contains("duplicate MAC"), "{msg}");
}

#[test]
fn bad_time() {
    let (line, _, msg) = reject(&BASE.replace(r#""10s""#, r#""10 parsecs""#), "time");
    assert_eq!(line, 11);
    assert!(msg.contains("time"), "{msg}");
}

#[test]
fn unknown_role() {
    let (line, _, msg) = reject(&BASE.replace("role: Slaac", "role: Dhcpv6"), "role");
    assert_eq!(line, 8);
    assert!(msg.contains("Dhcpv6"), "{msg}");
}

#[test]
fn unknown_host_in_an_event() {
    let (line, _, msg) = reject(
        &BASE.replace(r#"Ping(from: "r", to: "a")"#, r#"Ping(from: "r", to: "b")"#),
        "host",
    );
    assert_eq!(line, 11);
    assert!(msg.contains("unknown host \"b\""), "{msg}");
}

#[test]
fn bad_relay_config_points_inside_it() {
    let (line, col, msg) = reject(
        &BASE.replace(
            "prefixes: [\"2001:db8:1::/64\"]))]",
            "prefixes: [\"2001:db8:1::/64\"], colour: 1))]",
        ),
        "config",
    );
    assert_eq!(line, 10);
    assert!(col > 70, "column {col} is inside the config");
    assert!(msg.contains("colour"), "{msg}");
}

#[test]
fn syntax_error() {
    let (line, _, _) = reject(
        &BASE.replace("duration: \"1m\",", "duration: \"1m\" oops,"),
        "syntax",
    );
    assert_eq!(line, 3);
}

#[test]
fn missing_file_is_an_io_error() {
    let err = sim::run(
        Path::new("/nonexistent/x.ron"),
        &RunOptions::default(),
        &mut Vec::new(),
    )
    .expect_err("no such file");
    assert!(matches!(err, SimError::Io { .. }), "{err}");
}

#[test]
fn missing_pcap_for_an_inject_event() {
    let (line, col, msg) = reject(
        &BASE.replace(
            r#"events: [(at: "10s", do: Ping(from: "r", to: "a"))],"#,
            r#"events: [(at: "10s", do: Ping(from: "r", to: "a")),
             (at: "20s", do: Inject(segment: "lan", pcap: "no-such-capture.pcapng"))],"#,
        ),
        "pcap",
    );
    assert_eq!((line, col), (12, 59));
    assert!(msg.contains("no-such-capture.pcapng"), "{msg}");
}

#[test]
fn leftover_routes_need_kernel_routes_and_one_of_the_relays_ports() {
    let relay = r#"relays: [(config: (uplink: "wan", downstream: ["lan"], prefixes: ["2001:db8:1::/64"]))],"#;
    let without = relay.replace(
        "))],",
        r#"), leftover_routes: [("2001:db8:1::5", "lan")])],"#,
    );
    let (line, _, msg) = reject(&BASE.replace(relay, &without), "leftover-kernel");
    assert!(
        msg.contains("leftover_routes without kernel routes"),
        "{msg}"
    );
    assert_eq!(line, 10, "{msg}");
    let elsewhere = relay.replace(
        "))],",
        r#"), kernel_routes: true, leftover_routes: [("2001:db8:1::5", "dmz")])],"#,
    );
    let (_, _, msg) = reject(&BASE.replace(relay, &elsewhere), "leftover-port");
    assert!(msg.contains("not one of its ports"), "{msg}");
}
