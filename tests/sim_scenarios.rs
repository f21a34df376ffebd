//! Every shipped scenario runs through `ndprelay::sim::run` and passes; runs are
//! deterministic for a seed; a failing expectation fails the verdict.

use std::path::{Path, PathBuf};

use ndprelay::sim::{self, RunOptions, Verdict};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn run_file(name: &str, opts: &RunOptions) -> (Verdict, String) {
    let mut out = Vec::new();
    let verdict = sim::run(&scenarios_dir().join(name), opts, &mut out)
        .unwrap_or_else(|e| panic!("{name} did not run: {e}"));
    (
        verdict,
        String::from_utf8(out).expect("the timeline is UTF-8"),
    )
}

/// Runs scenario `name` with `from` replaced by `to` in its text (which must contain it).
fn run_edited(name: &str, from: &str, to: &str) -> (Verdict, String) {
    let path = scenarios_dir().join(name);
    let text = std::fs::read_to_string(&path).expect("readable");
    assert!(text.contains(from), "{name} lacks {from:?}");
    let scenario =
        sim::scenario::parse(&text.replace(from, to), &path).expect("still a valid scenario");
    let mut out = Vec::new();
    let verdict = sim::run_scenario(
        &scenario,
        &scenarios_dir(),
        &RunOptions::default(),
        &mut out,
    )
    .expect("runs");
    (verdict, String::from_utf8(out).expect("UTF-8"))
}

fn assert_passes(name: &str) {
    let (verdict, text) = run_file(name, &RunOptions::default());
    assert!(
        verdict.passed,
        "{name} failed:\n{}",
        text.lines()
            .filter(|l| l.starts_with("FAIL") || l.starts_with("=="))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!verdict.outcomes.is_empty(), "{name} checks nothing");
}

#[test]
fn home_passes() {
    assert_passes("home.ron");
}

#[test]
fn xen_dom0_passes() {
    assert_passes("xen-dom0.ron");
}

#[test]
fn hetzner_proxy_vm_passes() {
    assert_passes("hetzner-proxy-vm.ron");
}

#[test]
fn prefix64_passes() {
    assert_passes("prefix64.ron");
}

#[test]
fn dad_conflict_passes() {
    assert_passes("dad-conflict.ron");
}

#[test]
fn host_moves_passes() {
    assert_passes("host-moves.ron");
}

#[test]
fn two_relays_loop_passes() {
    assert_passes("two-relays-loop.ron");
}

#[test]
fn ns_scan_flood_passes() {
    assert_passes("ns-scan-flood.ron");
}

#[test]
fn rogue_ra_passes() {
    assert_passes("rogue-ra.ron");
}

#[test]
fn restart_leftover_routes_passes() {
    assert_passes("restart-leftover-routes.ron");
}

#[test]
fn a_leftover_route_nobody_confirms_is_removed_and_one_confirmed_is_kept() {
    // Without the guest, both routes of the earlier run go at the grace deadline, and
    // the expectations that domu-web keeps its route must fail.
    let path = scenarios_dir().join("restart-leftover-routes.ron");
    let text = std::fs::read_to_string(&path).expect("readable");
    let text = text.replace(
        r#"role: Static(addresses: ["2001:db8:42::80"])),"#,
        r#"up: false, role: Static(addresses: ["2001:db8:42::80"])),"#,
    );
    let scenario = sim::scenario::parse(&text, &path).expect("still a valid scenario");
    let mut out = Vec::new();
    let verdict = sim::run_scenario(
        &scenario,
        &scenarios_dir(),
        &RunOptions::default(),
        &mut out,
    )
    .expect("runs");
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(!verdict.passed);
    assert!(
        text.contains(
            "route 2001:db8:42::80/128 via br0 of an earlier run did not re-verify; removed"
        ),
        "{text}"
    );
    assert!(
        text.contains("FAIL  dom0 routes domu-web via br0"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  dom0 routes_reconciled_removed == 1"),
        "{text}"
    );
}

#[test]
fn silent_router_enables_the_guest_port_with_own_p_bit_ras() {
    assert_passes("silent-router.ron");
    let (_, text) = run_file("silent-router.ron", &RunOptions::default());
    let at = |t: &str, needle: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(t) && l.contains(needle))
    };
    // The wait, the warning once, the own RAs paced 3 s apart, then proxying.
    assert!(
        at(
            "5.000000",
            "proxy-vm: no router advertisement on eth0 within 5s"
        ),
        "{text}"
    );
    assert_eq!(text.matches("no router advertisement").count(), 1, "{text}");
    for t in ["5.000000", "8.000000"] {
        assert!(
            at(
                t,
                "proxy-vm/eth1 > ff02::1: RA from fe80::52:ff:fe00:1 lifetime 0s P slla"
            ),
            "own RA at {t}:\n{text}"
        );
    }
    assert!(at("8.000000", "proxy-vm: port eth1 proxying"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("RA from") && l.contains("prefix")),
        "no prefix in any RA: {text}"
    );
}

#[test]
fn announce_passes() {
    assert_passes("announce.ron");
}

#[test]
fn without_announcements_the_router_has_to_solicit_the_guest() {
    let (verdict, _) = run_edited("announce.ron", "announce: true", "announce: false");
    let mut failed: Vec<_> = verdict
        .outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.expectation.as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["no NS from isp on lan3", "relay announced_na >= 2"],
        "the router reaches vm1 either way, but only by soliciting it"
    );
}

#[test]
fn routed_vpn_passes() {
    assert_passes("routed-vpn.ron");
}

#[test]
fn without_routes_through_the_vpn_link_nothing_behind_it_is_answered() {
    let (verdict, text) = run_edited(
        "routed-vpn.ron",
        r#"routes: ["2001:db8:1::100/128", "2001:db8:1::1:0/112"]"#,
        "routes: []",
    );
    assert!(!verdict.passed);
    for line in [
        "FAIL  reachable isp -> 2001:db8:1::100",
        "FAIL  reachable isp -> 2001:db8:1::1:42",
        "FAIL  reachable laptop -> 2001:db8:1::100",
        "PASS  reachable isp -> 2001:db8:1::101",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
}

#[test]
fn a_routed_segment_takes_no_host_and_only_it_takes_routes() {
    let path = scenarios_dir().join("routed-vpn.ron");
    let text = std::fs::read_to_string(&path).expect("readable");
    let host_on_vpn = text.replace(
        r#"(name: "laptop", segment: "lan""#,
        r#"(name: "laptop", segment: "wg0""#,
    );
    let e = sim::scenario::parse(&host_on_vpn, &path).expect_err("refused");
    assert!(e.to_string().contains(r#"unknown segment "wg0""#), "{e}");
    let route_on_lan = text.replace(r#"DelRoute(segment: "wg0""#, r#"DelRoute(segment: "lan""#);
    let e = sim::scenario::parse(&route_on_lan, &path).expect_err("refused");
    assert!(
        e.to_string().contains(r#""lan" is not a routed segment"#),
        "{e}"
    );
    let twice = text.replace(
        r#"segments: ["wan", "lan"]"#,
        r#"segments: ["wan", "lan", "wg0"]"#,
    );
    let e = sim::scenario::parse(&twice, &path).expect_err("refused");
    assert!(e.to_string().contains("declared twice"), "{e}");
}

#[test]
fn every_shipped_scenario_has_a_test() {
    let tested = [
        "home.ron",
        "xen-dom0.ron",
        "hetzner-proxy-vm.ron",
        "prefix64.ron",
        "dad-conflict.ron",
        "host-moves.ron",
        "two-relays-loop.ron",
        "ns-scan-flood.ron",
        "rogue-ra.ron",
        "restart-leftover-routes.ron",
        "silent-router.ron",
        "announce.ron",
        "routed-vpn.ron",
    ];
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/ exists") {
        let name = entry.expect("readable entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".ron") {
            assert!(tested.contains(&name.as_ref()), "{name} has no test here");
        }
    }
}

#[test]
fn every_scenario_is_deterministic() {
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/ exists") {
        let name = entry.expect("readable entry").file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".ron") {
            continue;
        }
        let (_, first) = run_file(&name, &RunOptions::default());
        let (_, second) = run_file(&name, &RunOptions::default());
        assert!(first == second, "{name}: two runs with one seed differ");
    }
}

#[test]
fn same_seed_gives_the_same_timeline() {
    let (a, ta) = run_file("home.ron", &RunOptions::default());
    let (b, tb) = run_file("home.ron", &RunOptions::default());
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    // And the seed matters: another one moves DAD and RS timing.
    let other = RunOptions {
        seed: Some(4242),
        ..RunOptions::default()
    };
    let (c, tc) = run_file("home.ron", &other);
    assert_eq!(c.seed, 4242);
    assert_ne!(ta, tc);
}

#[test]
fn a_failing_expectation_fails_the_verdict() {
    // The server is reachable in home.ron, so claiming the opposite must FAIL.
    let (verdict, text) = run_edited(
        "home.ron",
        "Reachable(from: \"isp\", to: \"server\"),",
        "Unreachable(from: \"isp\", to: \"server\"),",
    );
    assert!(!verdict.passed);
    let failed: Vec<_> = verdict.outcomes.iter().filter(|o| !o.passed).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].expectation.contains("unreachable isp -> server"));
    assert!(failed[0].evidence.contains("echo replies"));
    assert!(text.contains("FAIL  unreachable isp -> server"), "{text}");
}

#[test]
fn pcap_dir_and_diagram_are_written() {
    let dir = std::env::temp_dir().join(format!("ndprelay-sim-{}", std::process::id()));
    let svg = dir.join("home.svg");
    let opts = RunOptions {
        pcap_dir: Some(dir.join("pcap")),
        diagram: Some(svg.clone()),
        ..RunOptions::default()
    };
    let (verdict, _) = run_file("home.ron", &opts);
    assert!(verdict.total_frames > 0);
    for seg in ["wan", "lan"] {
        let bytes = std::fs::read(dir.join("pcap").join(format!("{seg}.pcapng")))
            .expect("one pcapng per segment");
        assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "pcapng magic");
    }
    let svg_text = std::fs::read_to_string(&svg).expect("diagram written");
    assert!(svg_text.starts_with("<svg"));
    assert!(svg_text.contains("laptop1") && svg_text.contains("homerouter/wan"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_counter_fails_instead_of_reading_zero() {
    let path = scenarios_dir().join("home.ron");
    let text = std::fs::read_to_string(&path).expect("home.ron is readable");
    let text = text.replace(
        r#"Counter(name: "relayed_ra", op: ">=", value: 1),"#,
        r#"Counter(name: "relayed_rx", op: "==", value: 0),"#,
    );
    let scenario = sim::scenario::parse(&text, &path).expect("still a valid scenario");
    let verdict = sim::run_scenario(
        &scenario,
        &scenarios_dir(),
        &RunOptions::default(),
        &mut Vec::new(),
    )
    .expect("runs");
    let o = verdict
        .outcomes
        .iter()
        .find(|o| o.expectation.contains("relayed_rx"))
        .expect("the counter expectation is reported");
    assert!(!o.passed && o.evidence.contains("no counter"), "{o:?}");
}

#[test]
fn home_loses_no_echo_on_a_relay_cache_miss() {
    // At 9m the relay's binding for laptop2 is gone (it left and rejoined): the first
    // echo from the ISP waits in the engine's hold while the relay resolves laptop2.
    let (verdict, _) = run_file("home.ron", &RunOptions::default());
    let pings: Vec<_> = verdict
        .outcomes
        .iter()
        .filter(|o| o.expectation.starts_with("reachable "))
        .collect();
    assert!(pings.len() >= 6);
    for o in pings {
        assert!(o.evidence.starts_with("3/3 "), "{o:?}");
    }
}
