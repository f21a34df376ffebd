//! `--tap SEGMENT=IFNAME`: refused cleanly without the `tap` feature; with it (and
//! CAP_NET_ADMIN), a real kernel on the TAP device joins the lab segment.

use std::path::Path;

use ndprelay::sim::{self, RunOptions, SimError};

const LAB: &str = r#"Scenario(name: "tap", seed: 1, duration: "6s", segments: ["lan"],
  hosts: [(name: "rtr", segment: "lan", mac: "02:00:00:00:00:01",
           role: Router(prefixes: ["2001:db8:1::/64"], addresses: ["2001:db8:1::1"], ra_interval: "2s"))])"#;

fn run_with_tap(tap: (&str, &str)) -> Result<String, SimError> {
    let scenario = sim::scenario::parse(LAB, Path::new("tap.ron")).expect("valid scenario");
    let opts = RunOptions {
        taps: vec![(tap.0.to_owned(), tap.1.to_owned())],
        ..RunOptions::default()
    };
    let mut out = Vec::new();
    sim::run_scenario(&scenario, Path::new("."), &opts, &mut out)?;
    Ok(String::from_utf8(out).expect("UTF-8"))
}

#[test]
fn tap_on_an_unknown_segment_is_refused_before_running() {
    let err = run_with_tap(("wan", "simtap9")).expect_err("no such segment");
    assert!(
        matches!(err, SimError::TapSegment(ref s) if s == "wan"),
        "{err}"
    );
}

#[cfg(not(feature = "tap"))]
#[test]
fn tap_without_the_feature_is_refused() {
    let err = run_with_tap(("lan", "simtap9")).expect_err("built without TAP support");
    assert!(matches!(err, SimError::TapUnsupported { .. }), "{err}");
    assert!(err.to_string().contains("feature `tap`"));
}

/// The kernel's side of the TAP: a MAC fixed here, so its SLAAC (EUI-64) address is known
/// to the scenario, which pings it from the simulated ISP router.
#[cfg(feature = "tap")]
const KERNEL_MAC: &str = "02:00:00:00:02:99";
#[cfg(feature = "tap")]
const KERNEL_ADDR: &str = "2001:db8:1::ff:fe00:299";

/// The upstream segment holds the simulated ISP router; the relay relays onto `lan`,
/// which is the TAP device; a real Linux kernel in a network namespace sits on it.
#[cfg(feature = "tap")]
const RELAYED_LAB: &str = r#"Scenario(name: "tap-netns", seed: 7, duration: "16s", segments: ["wan", "lan"],
  hosts: [(name: "isp", segment: "wan", mac: "02:00:00:00:01:01",
           role: Router(prefixes: ["2001:db8:1::/64"], addresses: ["2001:db8:1::1"], ra_interval: "2s"))],
  relays: [(name: "relay", config: (uplink: "wan", downstream: ["lan"], prefixes: ["2001:db8:1::/64"], ra_relay: true))],
  events: [(at: "11s", do: Ping(from: "isp", to: "2001:db8:1::ff:fe00:299", count: 3))],
  expect: [
    Reachable(from: "isp", to: "2001:db8:1::ff:fe00:299"),
    Binding(address: "2001:db8:1::ff:fe00:299", port: "lan"),
    Counter(name: "relayed_ra", op: ">=", value: 2),
    Counter(name: "forwarded_data", op: ">=", value: 6),
  ])"#;

/// Runs `cmd`, bounded by `timeout` (killed past it); returns (success, stdout+stderr).
#[cfg(feature = "tap")]
fn run_cmd(args: &[&str], timeout: std::time::Duration) -> (bool, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (status.is_some_and(|s| s.success()), text)
}

/// A network namespace deleted on drop, whatever happened (panics included).
#[cfg(feature = "tap")]
struct Netns(String);

#[cfg(feature = "tap")]
impl Netns {
    fn create(name: String) -> Self {
        let (ok, out) = run_cmd(&["ip", "netns", "add", &name], SHORT);
        assert!(ok, "ip netns add {name}: {out}");
        Self(name)
    }

    /// Runs a command inside the namespace.
    fn exec(&self, args: &[&str], timeout: std::time::Duration) -> (bool, String) {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        run_cmd(&all, timeout)
    }

    fn must(&self, args: &[&str]) {
        let (ok, out) = self.exec(args, SHORT);
        assert!(ok, "{args:?} in {}: {out}", self.0);
    }
}

#[cfg(feature = "tap")]
impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the TAP device moved into it.
        let _ = run_cmd(&["ip", "netns", "del", &self.0], SHORT);
    }
}

#[cfg(feature = "tap")]
const SHORT: std::time::Duration = std::time::Duration::from_secs(5);

/// Needs CAP_NET_ADMIN, /dev/net/tun, `ip` and `ping` (scripts/test.sh runs it in the
/// netns step): `cargo test --features tap --test sim_tap -- --ignored --test-threads=1`.
///
/// A real Linux kernel in a fresh network namespace, on the TAP-attached downstream
/// segment, autoconfigures a global address from the RA that the simulated ISP router
/// sends upstream and the relay relays, then pings the router across the relay while
/// the router pings it back. Everything is bounded by the scenario's 16 s.
#[cfg(feature = "tap")]
#[test]
#[ignore = "needs CAP_NET_ADMIN, /dev/net/tun and network namespaces"]
fn a_real_kernel_gets_slaac_through_the_relay_and_pings_the_router() {
    use std::time::{Duration, Instant};

    let pid = std::process::id();
    let ifname = format!("ndpsim{}", pid % 100_000);
    let ns = Netns::create(format!("ndpr-simtap-{pid}"));
    let sim = std::thread::spawn(move || {
        let scenario =
            sim::scenario::parse(RELAYED_LAB, Path::new("tap-netns.ron")).expect("valid scenario");
        let opts = RunOptions {
            taps: vec![("lan".to_owned(), format!("ndpsim{}", pid % 100_000))],
            ..RunOptions::default()
        };
        let mut out = Vec::new();
        let verdict = sim::run_scenario(&scenario, Path::new("."), &opts, &mut out);
        (verdict, String::from_utf8(out).expect("UTF-8"))
    });

    // The simulator creates the device; move it into the namespace and bring it up
    // with router advertisements accepted and autoconfiguration on.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !run_cmd(&["ip", "link", "show", &ifname], SHORT).0 {
        assert!(Instant::now() < deadline, "the TAP {ifname} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, out) = run_cmd(&["ip", "link", "set", &ifname, "netns", &ns.0], SHORT);
    assert!(ok, "moving {ifname} into {}: {out}", ns.0);
    for key in ["accept_ra=1", "autoconf=1", "forwarding=0"] {
        ns.must(&["sysctl", "-qw", &format!("net.ipv6.conf.{ifname}.{key}")]);
    }
    ns.must(&["ip", "link", "set", "lo", "up"]);
    ns.must(&["ip", "link", "set", &ifname, "address", KERNEL_MAC]);
    ns.must(&["ip", "link", "set", &ifname, "addrgenmode", "eui64"]);
    ns.must(&["ip", "link", "set", &ifname, "up"]);

    // SLAAC through the relay: the global address, DAD done (not tentative).
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr_line = loop {
        let (_, out) = ns.exec(
            &[
                "ip", "-6", "addr", "show", "dev", &ifname, "scope", "global",
            ],
            SHORT,
        );
        if let Some(l) = out
            .lines()
            .find(|l| l.contains(&format!("{KERNEL_ADDR}/64")) && !l.contains("tentative"))
        {
            break l.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no SLAAC address in 10 s; the kernel has:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The prefix came from the relayed RA: the kernel also took the ISP as router.
    let (_, routes) = ns.exec(&["ip", "-6", "route", "show", "default"], SHORT);
    assert!(routes.contains("via fe80::"), "no default route: {routes}");

    // Across the relay to the simulated router and back.
    let (ok, ping) = ns.exec(
        &[
            "ping",
            "-6",
            "-n",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "2",
            "2001:db8:1::1",
        ],
        Duration::from_secs(8),
    );
    assert!(ok, "the kernel cannot ping the simulated router:\n{ping}");

    let (verdict, text) = sim.join().expect("simulator thread");
    let verdict = verdict.expect("runs with the TAP attached");
    // The whole timeline, for the log of a failed run (captured otherwise).
    eprintln!("{text}");
    let relay_log: Vec<&str> = text.lines().filter(|l| l.contains("relay")).collect();
    // The kernel's own frames reached the lab segment...
    assert!(text.contains(&format!("tap:{ifname} > ")), "{text}");
    // ...the RAs it used crossed the relay from the ISP's segment...
    assert!(
        relay_log
            .iter()
            .any(|l| l.contains(": RA ") && l.ends_with("from wan relayed to lan")),
        "{}",
        relay_log.join("\n")
    );
    // ...and its echo requests were forwarded by the relay to the router.
    assert!(
        text.contains("data to 2001:db8:1::1 from lan forwarded to wan"),
        "{}",
        relay_log.join("\n")
    );
    assert!(
        verdict.passed,
        "kernel address: {addr_line}\n{}",
        text.lines()
            .filter(|l| l.starts_with("FAIL") || l.starts_with("=="))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
