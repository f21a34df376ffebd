//! The command line's shape: `--help`, `--version`, usage errors, and the forms whose
//! driver is not in this build yet (exit 2 with a message naming what they need).
//! `replay` runs for real: see `cli_replay.rs`.

use std::path::Path;
use std::process::{Command, Output};

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

fn minimal() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/minimal.ron")
        .display()
        .to_string()
}

#[test]
fn help_lists_every_form_with_examples() {
    let out = ndprelay(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for needle in [
        "run",
        "check",
        "status",
        "replay",
        "explain",
        "--scenario",
        "--pcap-dir",
        "--tap",
        "--verbose",
        "--quiet",
        "Examples:",
        "ndprelay check -c /etc/ndprelay.ron",
        "RUST_LOG",
        "Exit status",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
    for sub in ["run", "check", "status", "replay", "explain"] {
        let out = ndprelay(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help: {out:?}");
        assert!(
            text(&out.stdout).contains("Example"),
            "{sub} --help has no example"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = ndprelay(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("ndprelay {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn no_arguments_or_bad_usage_exit_2() {
    let out = ndprelay(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage:"));
    assert_eq!(
        ndprelay(&["check"]).status.code(),
        Some(2),
        "-c is required"
    );
    assert_eq!(ndprelay(&["frobnicate"]).status.code(), Some(2));
    let out = ndprelay(&["--scenario", "s.ron", "check", "-c", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be combined with a subcommand"));
}

#[test]
fn run_refuses_missing_interfaces_with_the_fix_and_leaves_nothing() {
    let dir = std::env::temp_dir().join(format!("ndpr-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("ctl.sock");
    let cfg = dir.join("relay.ron");
    // Interface names no host has, so this never starts a relay on the machine running it.
    std::fs::write(
        &cfg,
        format!(
            "(uplink: \"ndpr-none0\", downstream: [\"ndpr-none1\"], prefixes: [\"2001:db8:1::/64\"], control_socket: {:?})",
            sock
        ),
    )
    .unwrap();
    let out = ndprelay(&["run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    // As root the interfaces are looked up; otherwise the capability check stops it first.
    assert!(
        stderr.contains("uplink \"ndpr-none0\" does not exist")
            && stderr.contains("downstream port \"ndpr-none1\" does not exist")
            || stderr.contains("missing capabilities") && stderr.contains("setcap"),
        "{stderr}"
    );
    assert!(!sock.exists(), "control socket left behind");
    let out = ndprelay(&["run", "-c", "/nonexistent.ron"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad config fails before the driver"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_without_a_daemon_names_the_socket() {
    let out = ndprelay(&[
        "status",
        "--json",
        "--control-socket",
        "/nonexistent/ndpr.sock",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no ndprelay answers on /nonexistent/ndpr.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("--control-socket"), "{stderr}");
}

#[test]
fn explain_without_a_daemon_names_the_socket() {
    let out = ndprelay(&[
        "explain",
        "2001:db8:1::10",
        "--control-socket",
        "/nonexistent/ndpr.sock",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no ndprelay answers on /nonexistent/ndpr.sock"),
        "{stderr}"
    );
    let out = ndprelay(&["explain", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn scenario_runs_the_lab_and_exits_by_its_verdict() {
    let home = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/home.ron");
    let out = ndprelay(&["--scenario", home, "--seed", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(seed 3)"),
        "--seed overrides the scenario's seed"
    );
    assert!(stdout.contains("expectations passed: PASS"), "{stdout}");
    // A config file is not a scenario: rejected with its position, nothing runs.
    let out = ndprelay(&["--scenario", &minimal()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stdout).is_empty(), "nothing half-runs");
    let out = ndprelay(&["--scenario", "/nonexistent/scenario.ron"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/scenario.ron"));
}
