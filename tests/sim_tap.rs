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

/// Needs CAP_NET_ADMIN, /dev/net/tun and `ip`: run with
/// `cargo test --features tap --test sim_tap -- --ignored`.
#[cfg(feature = "tap")]
#[test]
#[ignore = "needs CAP_NET_ADMIN and /dev/net/tun"]
fn a_real_kernel_joins_the_segment_through_the_tap() {
    let ifname = format!("ndpsim{}", std::process::id() % 10_000);
    let up = {
        let ifname = ifname.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            std::process::Command::new("ip")
                .args(["link", "set", &ifname, "up"])
                .status()
        })
    };
    let text = run_with_tap(("lan", &ifname)).expect("runs with the TAP attached");
    assert!(up.join().expect("thread").expect("ip runs").success());
    // The kernel's own DAD or RS appears on the lab segment...
    assert!(text.contains(&format!("tap:{ifname} > ")), "{text}");
    // ...and the simulated router's RAs were written to the device.
    assert!(text.contains("rtr > ff02::1: RA"), "{text}");
}
