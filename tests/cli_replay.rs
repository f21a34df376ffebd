//! `ndprelay replay` end to end through the binary: config + capture in, one decision
//! per frame out; bad port names and missing files are errors naming them; damaged
//! captures are warnings naming file and frame while the rest replays.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ndprelay::pcapng::PcapNgFile;

fn ndprelay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndprelay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the built binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temp directory with a config for the common three-port relay, removed on drop.
struct Lab(PathBuf);

impl Lab {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ndprelay-cli-replay-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("relay.ron"),
            "(\n    uplink: \"eth0\",\n    downstream: [\"br0\", \"br1\"],\n    prefixes: [\"2001:db8:1::/64\"],\n)\n",
        )
        .expect("write config");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// A one-interface pcapng named `iface` holding `frames`, one per second.
    fn capture(&self, name: &str, iface: &str, frames: &[Vec<u8>]) -> String {
        let path = self.0.join(name);
        let mut f = PcapNgFile::create(&path, &[(iface.to_owned(), None)]).expect("create");
        for (i, frame) in frames.iter().enumerate() {
            let t = Duration::from_secs(1_700_000_000 + i as u64);
            f.write(0, t, frame).expect("write");
        }
        f.finish().expect("finish");
        path.display().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn macs() -> Vec<String> {
    let m = |port: &str, mac: ndprelay::wire::Mac| format!("--mac={port}={mac}");
    vec![
        m("eth0", common::UPLINK_MAC),
        m("br0", common::BR0_MAC),
        m("br1", common::BR1_MAC),
    ]
}

#[test]
fn replays_a_capture_and_lists_decisions() {
    let lab = Lab::new("ok");
    let cap = lab.capture(
        "up.pcapng",
        "eth0",
        // The relay proxies once it has heard the router's RA, as live.
        &[
            common::uplink_ra(&[]),
            common::ns_from_router(common::guest()),
        ],
    );
    let cfg = lab.path("relay.ron");
    let input = format!("eth0={cap}");
    let mut args = vec!["replay", "-c", &cfg, "--input", &input];
    let macs = macs();
    args.extend(macs.iter().map(String::as_str));
    let out = ndprelay(&args);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("port br0: relay MAC 02:00:00:00:00:02 (given with --mac)"),
        "{stderr}"
    );
    assert!(stdout.contains("2001:db8:1::10"), "{stdout}");
    assert!(
        stdout.contains("br0") && stdout.contains("br1"),
        "the NS goes to both downstream ports: {stdout}"
    );

    args.push("--json");
    let out = ndprelay(&args);
    assert!(out.status.success(), "{out:?}");
    for line in text(&out.stdout).lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
}

#[test]
fn a_capture_without_ra_is_relayed_unless_cold_start_is_asked_for() {
    let lab = Lab::new("no-ra");
    // NS from the router, one per second, and no RA: most short captures.
    let ns = common::ns_from_router(common::guest());
    let cap = lab.capture("up.pcapng", "eth0", &[ns.clone(), ns]);
    let cfg = lab.path("relay.ron");
    let input = format!("eth0={cap}");
    let mut args = vec!["replay", "-c", &cfg, "--input", &input];
    let macs = macs();
    args.extend(macs.iter().map(String::as_str));
    let out = ndprelay(&args);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or("")
            .starts_with("start: steady state"),
        "{stdout}"
    );
    assert!(!stdout.contains("port_disabled"), "{stdout}");
    assert_eq!(
        stdout.matches("relayed to br0,br1").count(),
        2,
        "both NS relayed: {stdout}"
    );

    args.push("--cold-start");
    let out = ndprelay(&args);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or("")
            .starts_with("start: cold"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("dropped on eth0: port_disabled").count(),
        2,
        "nothing proxies in the first seconds of a start: {stdout}"
    );
    assert!(!stdout.contains("relayed to br0"), "{stdout}");
}

#[test]
fn unknown_ports_and_missing_files_are_errors() {
    let lab = Lab::new("bad");
    let cfg = lab.path("relay.ron");
    let out = ndprelay(&["replay", "-c", &cfg, "--input", "eth0=/nonexistent.pcapng"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("/nonexistent.pcapng"), "{out:?}");

    let out = ndprelay(&[
        "replay",
        "-c",
        &cfg,
        "-i",
        "x.pcap",
        "--mac",
        "eth9=02:00:00:00:00:09",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("`eth9` is not an interface in"),
        "{out:?}"
    );

    let missing = Path::new(&lab.path("nope.ron")).display().to_string();
    let out = ndprelay(&["replay", "-c", &missing, "-i", "x.pcap"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("nope.ron: cannot read config"),
        "{out:?}"
    );
}

#[test]
fn bad_captures_are_located_and_the_rest_still_replays() {
    use pcap_file::DataLink;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    let lab = Lab::new("damaged");
    let cfg = lab.path("relay.ron");
    let good = lab.capture(
        "up.pcapng",
        "eth0",
        &[
            common::uplink_ra(&[]),
            common::ns_from_router(common::guest()),
        ],
    );
    // Two NAs, the second cut short as when tcpdump is killed mid-write.
    let cut = lab.capture(
        "br0.pcapng",
        "br0",
        &[common::na_from_guest(false), common::na_from_guest(false)],
    );
    let bytes = std::fs::read(&cut).expect("read capture");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("truncate");
    // Captured on `any`: Linux cooked headers, not Ethernet.
    let cooked = lab.path("any.pcap");
    let header = PcapHeader {
        datalink: DataLink::LINUX_SLL,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(&cooked).expect("create"), header)
        .expect("pcap header");
    w.write_packet(&PcapPacket::new(
        Duration::from_secs(1_700_000_000),
        16,
        &[0; 16],
    ))
    .expect("write");
    drop(w);
    // A pcapng whose interface is no port of the config.
    let foreign = lab.capture("wlan.pcapng", "wlan0", &[common::uplink_ra(&[])]);

    let inputs = [
        format!("eth0={good}"),
        format!("br0={cut}"),
        format!("br1={cooked}"),
        foreign.clone(),
    ];
    let mut args = vec!["replay", "-c", &cfg];
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    let macs = macs();
    args.extend(macs.iter().map(String::as_str));
    let out = ndprelay(&args);
    assert!(out.status.success(), "damaged inputs are warnings: {out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("warning: {cut}: frame 2: "))
            && stdout.contains("the rest of this file is skipped"),
        "the cut record is located by file and frame:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("warning: {cooked}: link type"))
            && stdout.contains("not Ethernet"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "warning: {foreign}: interface \"wlan0\" is not a port"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n3 frames in,"),
        "the RA and the NS on eth0 and the NA before the cut are replayed; \
         nothing of the cooked or foreign capture:\n{stdout}"
    );

    // A port the config does not have is an error before anything runs.
    let eth9 = format!("eth9={good}");
    let out = ndprelay(&["replay", "-c", &cfg, "--input", &eth9]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&good) && stderr.contains("port \"eth9\" is not in the config"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing half-runs");
}
