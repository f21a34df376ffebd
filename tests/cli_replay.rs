//! `ndprelay replay` end to end through the binary: config + capture in, one decision
//! per frame out; bad port names and missing files are errors naming them.

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
