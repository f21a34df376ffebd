//! The simulated host stacks on their own (no relay): SLAAC, DAD with retransmits,
//! RS retransmits, address resolution and NUD, as RFC 4861/4862 describe them.

use std::path::Path;

use ndprelay::sim::{self, RunOptions, Verdict};

fn run(text: &str) -> (Verdict, String) {
    let scenario = sim::scenario::parse(text, Path::new("inline.ron")).expect("valid scenario");
    let mut out = Vec::new();
    let verdict = sim::run_scenario(&scenario, Path::new("."), &RunOptions::default(), &mut out)
        .expect("runs");
    (verdict, String::from_utf8(out).expect("UTF-8"))
}

fn outcome(v: &Verdict, i: usize) -> (bool, &str) {
    (v.outcomes[i].passed, v.outcomes[i].evidence.as_str())
}

const LAN: &str = r#"
Scenario(
    name: "flat",
    seed: 7,
    duration: "2m",
    segments: ["lan"],
    hosts: [
        (name: "rtr", segment: "lan", mac: "02:00:00:00:00:01",
         role: Router(prefixes: ["2001:db8:1::/64"], addresses: ["2001:db8:1::1"], ra_interval: "60s")),
        (name: "pc", segment: "lan", mac: "02:00:00:00:00:02", role: Slaac),
        (name: "srv", segment: "lan", mac: "02:00:00:00:00:03", role: Static(addresses: ["2001:db8:1::10"])),
        (name: "dup", segment: "lan", mac: "02:00:00:00:00:04", up: false,
         role: Static(addresses: ["2001:db8:1::10"])),
    ],
    events: [
        (at: "10s", do: Ping(from: "rtr", to: "pc")),
        (at: "10s", do: Ping(from: "pc", to: "srv")),
        (at: "20s", do: Join(host: "dup")),
        (at: "30s", do: Ping(from: "pc", to: "2001:db8:1::99")),
    ],
    expect: [
        Reachable(from: "rtr", to: "pc"),
        Reachable(from: "pc", to: "srv"),
        Unreachable(from: "pc", to: "2001:db8:1::99"),
        AddressConfigured(host: "pc", address: "2001:db8:1::ff:fe00:2"),
        DadFailed(host: "dup", address: "2001:db8:1::10"),
        DadOk(host: "srv"),
        AddressConfigured(host: "dup", address: "2001:db8:1::10"),
    ],
)
"#;

#[test]
fn slaac_dad_and_ping_on_one_link() {
    let (v, text) = run(LAN);
    for i in 0..6 {
        assert!(v.outcomes[i].passed, "{:?}\n{text}", v.outcomes[i]);
    }
    // The duplicate never gets the address: the last expectation must fail.
    assert!(!outcome(&v, 6).0, "{text}");
    assert!(!v.passed);
    // The SLAAC address is the /64 plus the modified EUI-64 of the MAC.
    assert!(text.contains("forms 2001:db8:1::ff:fe00:2 from 2001:db8:1::/64"));
    // Resolution of an absent address: three multicast NS, then failure.
    assert_eq!(
        text.matches("NS who-has 2001:db8:1::99").count(),
        3,
        "{text}"
    );
    assert!(text.contains("address resolution failed for 2001:db8:1::99"));
    // The owner defends with an NA to all-nodes, without S.
    assert!(
        text.contains("srv > ff02::1: NA 2001:db8:1::10 [O]"),
        "{text}"
    );
}

#[test]
fn rs_is_retransmitted_three_times_without_a_router() {
    let (v, text) = run(r#"Scenario(name: "rs", duration: "1m", segments: ["lan"],
        hosts: [(name: "pc", segment: "lan", mac: "02:00:00:00:00:02", role: Slaac)],
        expect: [MaxFrames(segment: "lan", kind: RS, max: 3), MaxFrames(segment: "lan", kind: RS, max: 2),
                 NoAddress(host: "pc", prefix: "2000::/3")])"#);
    assert!(outcome(&v, 0).0, "{text}");
    assert!(!outcome(&v, 1).0, "exactly three RS: {text}");
    assert!(outcome(&v, 2).0);
    // RTR_SOLICITATION_INTERVAL apart.
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains(": RS"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 3);
    assert!((times[1] - times[0] - 4.0).abs() < 1e-6 && (times[2] - times[1] - 4.0).abs() < 1e-6);
}

#[test]
fn dad_sends_dad_transmits_probes_one_second_apart() {
    let (v, text) = run(r#"Scenario(name: "dad", duration: "30s", segments: ["lan"],
        hosts: [(name: "srv", segment: "lan", mac: "02:00:00:00:00:03", dad_transmits: 3,
                 role: Static(addresses: ["2001:db8:1::10"]))],
        expect: [AddressConfigured(host: "srv", address: "2001:db8:1::10")])"#);
    assert!(v.passed, "{text}");
    let probes: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("NS DAD for 2001:db8:1::10"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(probes.len(), 3, "{text}");
    assert!((probes[2] - probes[0] - 2.0).abs() < 1e-6);
    let configured: f64 = text
        .lines()
        .find(|l| l.contains("2001:db8:1::10 configured (DAD ok)"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("configured line");
    assert!((configured - probes[2] - 1.0).abs() < 1e-6);
}

#[test]
fn nud_probes_a_stale_neighbor_and_gives_up() {
    let (v, text) = run(
        r#"Scenario(name: "nud", seed: 1, duration: "2m", segments: ["lan"],
        hosts: [
            (name: "r", segment: "lan", mac: "02:00:00:00:00:01",
             role: Router(prefixes: ["2001:db8::/64"], ra_interval: "600s")),
            (name: "a", segment: "lan", mac: "02:00:00:00:00:0a", role: Static(addresses: ["2001:db8::a"])),
            (name: "b", segment: "lan", mac: "02:00:00:00:00:0b", role: Static(addresses: ["2001:db8::b"])),
        ],
        events: [
            (at: "5s", do: Ping(from: "a", to: "b")),
            (at: "10s", do: Leave(host: "b")),
            (at: "60s", do: Ping(from: "a", to: "b", count: 1)),
        ],
        expect: [Unreachable(from: "a", to: "b")])"#,
    );
    assert!(v.passed, "{text}");
    // The cached entry went STALE; the echo goes out once (DELAY), then after
    // DELAY_FIRST_PROBE_TIME three unicast probes (PROBE), then the entry is dropped.
    let probes: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("a > b: NS who-has 2001:db8::b"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .filter(|t| *t >= 60.0)
        .collect();
    assert_eq!(probes, vec![65.0, 66.0, 67.0], "{text}");
    assert!(
        text.contains("neighbor 2001:db8::b unreachable (NUD failed)"),
        "{text}"
    );
}

#[test]
fn injected_pcap_frames_keep_their_spacing() {
    use ndprelay::wire::{self, Mac, NdMessage, OptionRepr, PrefixInfo, RaFlags, RouterAdvert};
    let dir = std::env::temp_dir().join(format!("ndprelay-inject-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mac: Mac = "02:00:00:00:00:99".parse().expect("valid MAC");
    let all_nodes = "ff02::1".parse().expect("valid address");
    let ra = NdMessage::RouterAdvert(RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags::empty(),
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
    });
    let frame = wire::emit_nd(
        mac,
        Mac::ipv6_multicast(all_nodes),
        mac.link_local(),
        all_nodes,
        &ra,
        &[
            OptionRepr::SourceLla(mac),
            OptionRepr::PrefixInfo(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 3600,
                prefix: "2001:db8:77::".parse().expect("valid prefix"),
            }),
        ],
    );
    let path = dir.join("ra.pcapng");
    let mut file = ndprelay::pcapng::PcapNgFile::create(&path, &[("eth0".into(), None)])
        .expect("create pcapng");
    for s in [100u64, 101, 103] {
        file.write(0, std::time::Duration::from_secs(s), &frame)
            .expect("write frame");
    }
    file.finish().expect("flush");
    let text = format!(
        r#"Scenario(name: "inject", duration: "1m", segments: ["lan"],
        hosts: [(name: "pc", segment: "lan", mac: "02:00:00:00:00:02", role: Slaac)],
        events: [(at: "10s", do: Inject(segment: "lan", pcap: {:?}))],
        expect: [AddressConfigured(host: "pc", prefix: "2001:db8:77::/64"),
                 MaxFrames(segment: "lan", kind: RA, max: 3)])"#,
        path.display().to_string()
    );
    let (v, out) = run(&text);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(v.passed, "{out}");
    let times: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("inject > ff02::1: RA"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(times, ["10.000000", "11.000000", "13.000000"], "{out}");
}

#[test]
fn a_moved_slaac_host_re_runs_dad_once_per_address() {
    let (v, text) = run(
        r#"Scenario(name: "move", seed: 3, duration: "1m", segments: ["a", "b"],
        hosts: [
            (name: "r", segment: "a", mac: "02:00:00:00:00:01",
             role: Router(prefixes: ["2001:db8:1::/64", "2001:db8:2::/64"])),
            (name: "pc", segment: "a", mac: "02:00:00:00:00:02", role: Slaac),
        ],
        events: [(at: "20s", do: Move(host: "pc", to: "b"))],
        expect: [AddressConfigured(host: "pc", prefix: "2001:db8:1::/64"),
                 AddressConfigured(host: "pc", prefix: "2001:db8:2::/64")])"#,
    );
    assert!(v.passed, "{text}");
    for addr in [
        "2001:db8:1::ff:fe00:2",
        "2001:db8:2::ff:fe00:2",
        "fe80::ff:fe00:2",
    ] {
        let after_move = text
            .lines()
            .filter(|l| l.contains(&format!("NS DAD for {addr}")))
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .filter(|t| *t >= 20.0)
            .count();
        assert_eq!(after_move, 1, "{addr}: {text}");
    }
}
