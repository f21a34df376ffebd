//! pcap replay end to end: captures written here are replayed through the engine and the
//! listing, the summary and the emitted capture are checked.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;

use common::*;
use ndprelay::engine::{EngineConfig, PortId};
use ndprelay::replay::{Input, ReplayOptions, Source, replay};
use ndprelay::wire::{NdMessage, Parsed, parse_frame};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndprelay-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config() -> EngineConfig {
    three_port_config()
}

/// Writes a classic pcap with frames at the given offsets (seconds) from a fixed epoch.
fn write_pcap(path: &Path, frames: &[(f64, Vec<u8>)], datalink: DataLink) {
    let header = PcapHeader {
        datalink,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (t, f) in frames {
        let ts = StdDuration::from_secs(1_700_000_000) + StdDuration::from_secs_f64(*t);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
}

fn input(port: &str, path: &Path) -> Input {
    Input {
        port: Some(port.into()),
        path: path.to_owned(),
    }
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn malformed_corpus_drops_each_frame_with_its_reason() {
    let dir = tmpdir("malformed");
    let corpus = malformed_corpus();
    let mut per_port: HashMap<PortId, Vec<(f64, Vec<u8>)>> = HashMap::new();
    let mut expected: HashMap<(PortId, u64), &str> = HashMap::new();
    for (i, case) in corpus.iter().enumerate() {
        let frames = per_port.entry(case.port).or_default();
        frames.push((i as f64 * 0.01, case.frame.clone()));
        expected.insert((case.port, frames.len() as u64), case.reason);
    }
    let names = ["uplink", "br0", "br1"];
    let mut inputs = Vec::new();
    let mut file_port = HashMap::new();
    for (port, frames) in &per_port {
        let path = dir.join(format!("{}.pcap", names[port.index()]));
        write_pcap(&path, frames, DataLink::ETHERNET);
        file_port.insert(path.display().to_string(), *port);
        inputs.push(input(names[port.index()], &path));
    }
    let mut out = Vec::new();
    let summary = replay(
        config(),
        &inputs,
        &ReplayOptions {
            json: true,
            ..Default::default()
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(summary.frames_in, corpus.len() as u64);
    let mut checked = 0;
    for line in json_lines(&out) {
        let (Some(file), Some(frame)) = (line["file"].as_str(), line["frame"].as_u64()) else {
            continue;
        };
        // Timer lines (retransmits, RAs) belong to no input frame.
        let Some(&port) = file_port.get(file) else {
            continue;
        };
        let reason = expected[&(port, frame)];
        let decisions: Vec<&str> = line["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert!(
            decisions.contains(&format!("dropped on {}: {reason}", names[port.index()]).as_str()),
            "{file} frame {frame}: expected drop {reason}, got {decisions:?}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        corpus.len(),
        "every malformed frame has a listing line"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A router solicits the guest, the guest answers: the relay relays both ways and binds.
fn resolution_captures(dir: &Path) -> Vec<Input> {
    let uplink = dir.join("uplink.pcap");
    let br0 = dir.join("br0.pcap");
    write_pcap(
        &uplink,
        &[(0.0, uplink_ra(&[])), (8.0, ns_from_router(guest()))],
        DataLink::ETHERNET,
    );
    write_pcap(&br0, &[(8.001, na_from_guest(true))], DataLink::ETHERNET);
    vec![input("uplink", &uplink), input("br0", &br0)]
}

#[test]
fn replay_explains_relay_decisions_and_writes_what_it_sent() {
    let dir = tmpdir("decisions");
    let inputs = resolution_captures(&dir);
    let output = dir.join("out.pcapng");
    let mut out = Vec::new();
    let opts = ReplayOptions {
        output: Some(output.clone()),
        keep_emitted: true,
        ..Default::default()
    };
    let summary = replay(config(), &inputs, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("NS who-has 2001:db8:1::10"),
        "decode missing:\n{text}"
    );
    assert!(
        text.contains("relayed to br0"),
        "NS relay decision missing:\n{text}"
    );
    assert!(
        text.contains("binding 2001:db8:1::10 on br0"),
        "binding decision missing:\n{text}"
    );
    assert!(
        text.contains("bindings:") && text.contains("counters:"),
        "summary missing:\n{text}"
    );

    // The NA went back to the uplink with the relay's MAC as TLLA.
    let to_uplink = &summary.emitted["uplink"];
    let na = to_uplink
        .iter()
        .filter_map(|f| match parse_frame(f) {
            Ok(Parsed::Nd(p)) if matches!(p.message, NdMessage::NeighborAdvert { .. }) => {
                Some(p.tlla)
            }
            _ => None,
        })
        .next();
    assert_eq!(
        na,
        Some(Some(UPLINK_MAC)),
        "relayed NA must carry the uplink MAC"
    );

    // The output capture holds exactly what the engine emitted, on the right interfaces.
    let mut source = Source::open(&output, 0, None).unwrap();
    let ids: HashMap<String, PortId> = [("uplink", 0u16), ("br0", 1), ("br1", 2)]
        .iter()
        .map(|(n, i)| (n.to_string(), PortId(*i)))
        .collect();
    let mut read = 0;
    let mut warnings = Vec::new();
    while let Some(f) = source.next_frame(&ids, &mut warnings).unwrap() {
        assert!(
            f.timestamp >= StdDuration::from_secs(1_700_000_000),
            "timestamps keep the capture's epoch"
        );
        read += 1;
    }
    assert_eq!(read, summary.frames_out);
    assert!(warnings.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tshark_decodes_every_emitted_frame_with_a_good_checksum() {
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tshark is required under CI=true"
        );
        eprintln!("SKIPPED: tshark not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = tmpdir("tshark");
    let inputs = resolution_captures(&dir);
    let output = dir.join("out.pcapng");
    let opts = ReplayOptions {
        output: Some(output.clone()),
        ..Default::default()
    };
    let summary = replay(config(), &inputs, &opts, &mut Vec::new()).unwrap();
    assert!(summary.frames_out > 0);
    let res = Command::new("tshark")
        .args([
            "-r",
            output.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "icmpv6.type",
        ])
        .args(["-e", "icmpv6.checksum.status"])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let rows = String::from_utf8(res.stdout).unwrap();
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(
        rows.len() as u64,
        summary.frames_out,
        "tshark must read every frame:\n{rows:?}"
    );
    for row in rows {
        let cols: Vec<&str> = row.split('\t').collect();
        assert!(
            ["uplink", "br0", "br1"].contains(&cols[0]),
            "interface name lost: {row}"
        );
        assert!(
            cols[1]
                .parse::<u8>()
                .is_ok_and(|t| (133..=137).contains(&t)),
            "not ND: {row}"
        );
        assert_eq!(cols[2], "1", "checksum not good per tshark: {row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explain_narrows_the_listing_to_one_address() {
    let dir = tmpdir("explain");
    let inputs = resolution_captures(&dir);
    let mut out = Vec::new();
    let opts = ReplayOptions {
        explain: Some(guest()),
        ..Default::default()
    };
    replay(config(), &inputs, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("start: steady state"), "{text}");
    // The listing after the header line that says how the engine started.
    let listing: Vec<&str> = text.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert!(!listing.is_empty());
    assert!(
        listing.iter().all(|l| l.contains("2001:db8:1::10")),
        "unrelated lines shown:\n{text}"
    );
    assert!(
        !text.contains("RA from fe80::1"),
        "the router's RA is not about the guest:\n{text}"
    );
    // It ends with the explanation `ndprelay explain` gives live, FIB aside.
    let block = text
        .split_once("\nexplain 2001:db8:1::10, at the end of the captures:\n")
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no explanation block:\n{text}"));
    assert!(
        block.starts_with("2001:db8:1::10 is bound on br0"),
        "{block}"
    );
    for want in [
        "prefix:     in 2001:db8:1::/64 (relay, from the config's `prefixes`)",
        "2001:db8:1::10/128 dev br0 proto 199 installed by the relay; FIB not checked in replay",
        "route 2001:db8:1::10/128 via br0 installed",
        "NS 2001:db8:1::10 from uplink relayed to br0,br1",
        "next step:  none needed",
    ] {
        assert!(block.contains(want), "{want:?} missing:\n{block}");
    }
    // The same as the last JSON line.
    let mut out = Vec::new();
    let opts = ReplayOptions {
        explain: Some(guest()),
        json: true,
        ..Default::default()
    };
    replay(config(), &inputs, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let e = &last["explain"];
    assert_eq!(e["verdict"], "healthy", "{e}");
    assert_eq!(e["binding"]["port"], "br0");
    assert_eq!(e["route"]["fib"]["state"], "not_checked");
    assert!(
        e["decisions"].as_array().is_some_and(|d| !d.is_empty()),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_reported_with_file_and_frame_and_the_rest_still_replays() {
    let dir = tmpdir("bad");
    let good = dir.join("uplink.pcap");
    write_pcap(
        &good,
        &[(0.0, uplink_ra(&[])), (1.0, ns_from_router(guest()))],
        DataLink::ETHERNET,
    );
    // Cut the second record of the br0 file in half.
    let cut = dir.join("br0.pcap");
    write_pcap(
        &cut,
        &[(0.5, na_from_guest(false)), (1.5, na_from_guest(false))],
        DataLink::ETHERNET,
    );
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let raw = dir.join("br1.pcap");
    write_pcap(&raw, &[(0.0, vec![0x60; 40])], DataLink::RAW);
    let inputs = vec![
        input("uplink", &good),
        input("br0", &cut),
        input("br1", &raw),
    ];
    let mut out = Vec::new();
    let summary = replay(config(), &inputs, &ReplayOptions::default(), &mut out).unwrap();
    assert_eq!(
        summary.frames_in, 3,
        "frames before the damage are still replayed"
    );
    let problems = summary.problems.join("\n");
    assert!(
        problems.contains("br0.pcap: frame 2"),
        "corrupt record not located:\n{problems}"
    );
    assert!(
        problems.contains("br1.pcap") && problems.contains("not Ethernet"),
        "link type not reported:\n{problems}"
    );

    let unknown = vec![input("eth9", &good)];
    let err = replay(
        config(),
        &unknown,
        &ReplayOptions::default(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("\"eth9\" is not in the config"),
        "{err}"
    );

    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"hello world").unwrap();
    let err = replay(
        config(),
        &[input("uplink", &junk)],
        &ReplayOptions::default(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not a pcap or pcapng file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn leftover_routes_show_their_probes_takeover_and_removal_as_timer_lines() {
    // A restarted relay's captures: the router's RA at 0 s (br0 is enabled by the
    // second P-bit RA at 3 s), the guest's answer to the relay's probe at 3.5 s, and
    // one more RA at 40 s, past the 30 s grace period.
    let dir = tmpdir("leftover");
    let uplink = dir.join("uplink.pcap");
    let br0 = dir.join("br0.pcap");
    write_pcap(
        &uplink,
        &[(0.0, uplink_ra(&[])), (40.0, uplink_ra(&[]))],
        DataLink::ETHERNET,
    );
    let solicited = ndprelay::wire::NaFlags::SOLICITED | ndprelay::wire::NaFlags::OVERRIDE;
    let answer = na(
        GUEST_MAC,
        guest(),
        BR0_MAC.link_local(),
        solicited,
        guest(),
        GUEST_MAC,
    );
    write_pcap(&br0, &[(3.5, answer)], DataLink::ETHERNET);
    let gone: std::net::Ipv6Addr = "2001:db8:1::99".parse().unwrap();
    let opts = ReplayOptions {
        leftover_routes: vec![(guest(), "br0".into()), (gone, "br0".into())],
        // A restart: br0 enables from zero, so its probes wait for the second RA.
        cold_start: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    let summary = replay(
        config(),
        &[input("uplink", &uplink), input("br0", &br0)],
        &opts,
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let line_with = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
    };
    // Adopted at the start, before any frame.
    let start = line_with("route 2001:db8:1::99/128 via br0 of an earlier run kept until 30.000 s");
    assert!(start.trim_start().starts_with("0.000000"), "{start}");
    assert!(start.contains("timer"), "{start}");
    // The probes are engine-originated frames on a timer line once br0 is enabled.
    let probe = line_with("sent on br0: NS who-has 2001:db8:1::99");
    assert!(
        probe.trim_start().starts_with("3.000000") && probe.contains("timer"),
        "{probe}"
    );
    assert!(
        probe.contains("sent on br0: NS who-has 2001:db8:1::10"),
        "{probe}"
    );
    // The guest's answer takes its route over: one install, no removal.
    let answered = line_with("of an earlier run re-verified; kept");
    assert!(
        answered.contains("route 2001:db8:1::10/128 via br0 installed"),
        "{answered}"
    );
    // (Its binding's own NUD later fails, the capture having no more answers, and
    // removes it then; within the grace period nothing removes it.)
    let before_grace = lines
        .iter()
        .take_while(|l| !l.trim_start().starts_with("30."));
    for l in before_grace {
        assert!(
            !l.contains("route 2001:db8:1::10/128 via br0 removed"),
            "{text}"
        );
    }
    // The other one goes at the grace deadline, on its own timer line.
    let removed = line_with("route 2001:db8:1::99/128 via br0 of an earlier run did not re-verify");
    assert!(removed.trim_start().starts_with("30.000000"), "{removed}");
    assert!(
        removed.contains("route 2001:db8:1::99/128 via br0 removed"),
        "{removed}"
    );
    let counter = |name: &str| {
        summary
            .counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    };
    assert_eq!(counter("routes_reconciled_kept"), 2);
    assert_eq!(counter("routes_reconciled_verified"), 1);
    assert_eq!(counter("routes_reconciled_removed"), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_leftover_route_on_an_unknown_port_is_refused_with_the_ports() {
    let dir = tmpdir("leftover-port");
    let uplink = dir.join("uplink.pcap");
    write_pcap(&uplink, &[(0.0, uplink_ra(&[]))], DataLink::ETHERNET);
    let opts = ReplayOptions {
        leftover_routes: vec![(guest(), "eth9".into())],
        ..Default::default()
    };
    let err = replay(
        config(),
        &[input("uplink", &uplink)],
        &opts,
        &mut Vec::new(),
    )
    .expect_err("eth9 is not a port");
    let msg = err.to_string();
    assert!(
        msg.contains("eth9") && msg.contains("uplink, br0, br1"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A short capture holds no RA (routers send one every few minutes): a router resolves
/// the guest at 0 s (the capture's start) and again at 11 s.
fn captures_without_ra(dir: &Path) -> Vec<Input> {
    let uplink = dir.join("uplink.pcap");
    let br0 = dir.join("br0.pcap");
    write_pcap(
        &uplink,
        &[
            (0.0, ns_from_router(guest())),
            (11.0, ns_from_router(guest())),
        ],
        DataLink::ETHERNET,
    );
    write_pcap(
        &br0,
        &[(0.001, na_from_guest(true)), (11.001, na_from_guest(true))],
        DataLink::ETHERNET,
    );
    vec![input("uplink", &uplink), input("br0", &br0)]
}

#[test]
fn a_capture_without_ra_is_relayed_from_the_steady_state() {
    let dir = tmpdir("no-ra-steady");
    let inputs = captures_without_ra(&dir);
    let mut out = Vec::new();
    let summary = replay(config(), &inputs, &ReplayOptions::default(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("start: steady state"),
        "{text}"
    );
    assert!(!text.contains("port_disabled"), "{text}");
    let first = text
        .lines()
        .find(|l| l.trim_start().starts_with("0.000000 uplink"))
        .unwrap();
    assert!(first.contains("relayed to br0,br1"), "{text}");
    let answer = text
        .lines()
        .find(|l| l.trim_start().starts_with("0.001000"))
        .unwrap();
    assert!(answer.contains("relayed to uplink"), "{text}");
    let count = |name: &str| {
        summary
            .counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    };
    assert_eq!(
        count("sent_own_ra"),
        0,
        "a running relay sent its RAs long ago"
    );
    assert_eq!(count("sent_rs"), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cold_start_replays_the_wait_and_the_relays_own_ras() {
    let dir = tmpdir("no-ra-cold");
    let inputs = captures_without_ra(&dir);
    let mut out = Vec::new();
    let opts = ReplayOptions {
        cold_start: true,
        ..Default::default()
    };
    replay(config(), &inputs, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("start: cold (--cold-start)"), "{text}");
    let at = |t: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(t))
            .unwrap_or_else(|| panic!("no line at {t}:\n{text}"))
    };
    assert!(
        at("0.000000 uplink").contains("dropped on uplink: port_disabled"),
        "{text}"
    );
    assert!(
        at("0.001000").contains("dropped on br0: port_disabled"),
        "{text}"
    );
    // No RA by 5 s: the relay's own P-bit RAs at 5 s and 8 s enable br0 and br1.
    assert!(
        at("5.000000").contains("no router advertisement on uplink within 5s"),
        "{text}"
    );
    assert!(at("5.000000").contains("sent on br0: RA"), "{text}");
    assert!(at("8.000000").contains("port br0 proxying"), "{text}");
    assert!(at("11.000000").contains("relayed to br0,br1"), "{text}");
    assert!(at("11.001000").contains("relayed to uplink"), "{text}");

    let mut out = Vec::new();
    let opts = ReplayOptions {
        cold_start: true,
        json: true,
        ..Default::default()
    };
    replay(config(), &inputs, &opts, &mut out).unwrap();
    assert_eq!(json_lines(&out)[0], serde_json::json!({ "start": "cold" }));
    let mut out = Vec::new();
    let opts = ReplayOptions {
        json: true,
        ..Default::default()
    };
    replay(config(), &inputs, &opts, &mut out).unwrap();
    assert_eq!(
        json_lines(&out)[0],
        serde_json::json!({ "start": "steady" })
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
