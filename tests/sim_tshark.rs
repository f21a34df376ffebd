//! `--pcap-dir`: the pcapng files the simulator writes open in tshark, frame for frame:
//! every frame is read, each file's one interface is named after its segment, every
//! ICMPv6 checksum (ND and echo) verifies, and each file holds exactly the frames the
//! simulator counted on that segment.
//!
//! Needs `tshark` (scripts/test.sh installs it). Without it the test prints SKIPPED,
//! except under `CI=true`, where a test that cannot run fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndprelay::sim::{self, RunOptions};

fn tshark_available() -> bool {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tshark is missing and CI=true: this test may not be skipped (apt-get install tshark)"
        );
        eprintln!("SKIPPED: tshark not installed");
    }
    found
}

/// One line of `tshark -T fields`: interface name, ICMPv6 type, checksum status.
struct Row {
    interface: String,
    icmp_type: Option<u8>,
    checksum_status: Option<u8>,
}

fn tshark_rows(file: &Path) -> Vec<Row> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args(["-e", "frame.interface_name"])
        .args(["-e", "icmpv6.type"])
        .args(["-e", "icmpv6.checksum.status"])
        .output()
        .expect("tshark runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tshark failed on {}: {stderr}",
        file.display()
    );
    // tshark reports a cut-short or malformed file on stderr ("appears to have been cut
    // short", "isn't a capture file"...); the only expected line is the root warning.
    for line in stderr.lines() {
        assert!(
            line.trim().is_empty() || line.starts_with("Running as user"),
            "tshark complained about {}: {line}",
            file.display()
        );
    }
    // ICMPv6 errors quote the offending packet, so a field may hold two values.
    let first = |s: &str| s.split(',').next().and_then(|v| v.parse::<u8>().ok());
    String::from_utf8(out.stdout)
        .expect("tshark prints UTF-8")
        .lines()
        .map(|line| {
            let mut f = line.split('\t');
            Row {
                interface: f.next().unwrap_or("").to_owned(),
                icmp_type: f.next().and_then(first),
                checksum_status: f.next().and_then(first),
            }
        })
        .collect()
}

fn check_scenario(name: &str) {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "ndprelay-tshark-{}-{}",
        std::process::id(),
        name.trim_end_matches(".ron")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = RunOptions {
        pcap_dir: Some(dir.clone()),
        ..RunOptions::default()
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let verdict = sim::run(&path, &opts, &mut Vec::new()).expect("the scenario runs");
    assert!(verdict.passed, "{name} failed its own expectations");
    assert!(!verdict.segment_frames.is_empty());
    for (segment, frames) in &verdict.segment_frames {
        let file = dir.join(format!("{segment}.pcapng"));
        let rows = tshark_rows(&file);
        assert_eq!(
            rows.len() as u64,
            *frames,
            "{name}: {segment}.pcapng holds {} frames, the simulator counted {frames}",
            rows.len()
        );
        let mut nd = 0;
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(&r.interface, segment, "{name}: frame {} interface", i + 1);
            let Some(t) = r.icmp_type else {
                continue;
            };
            // 1 = good; ND (133..=137) and echo alike are built with real checksums.
            assert_eq!(
                r.checksum_status,
                Some(1),
                "{name}: {segment} frame {} (ICMPv6 type {t}) checksum not good",
                i + 1
            );
            if (133..=137).contains(&t) {
                nd += 1;
            }
        }
        assert!(nd > 0, "{name}: no ND frame on {segment}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn home_pcapng_files_open_in_tshark_frame_for_frame() {
    if tshark_available() {
        check_scenario("home.ron");
    }
}

#[test]
fn xen_dom0_pcapng_files_open_in_tshark_frame_for_frame() {
    if tshark_available() {
        check_scenario("xen-dom0.ron");
    }
}
