//! `ndprelay --scenario FILE --config CONF --rename IF=SEG`: a scenario's relay runs the
//! daemon's own config file, so what passes in the lab is what `run -c CONF` would do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ndprelay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndprelay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the built binary runs")
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ndprelay --scenario scenarios/SCENARIO --config CONFIG EXTRA...`: (exit code, stdout,
/// stderr).
fn lab(scenario: &str, config: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let scenario = repo(&format!("scenarios/{scenario}"));
    let mut args = vec!["--scenario", &scenario, "--config", config];
    args.extend_from_slice(extra);
    let out = ndprelay(&args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn minimal() -> String {
    repo("examples/minimal.ron")
}

/// A config file in a fresh temporary directory (removed with the returned guard).
struct TempConfig {
    dir: PathBuf,
    path: String,
}

impl TempConfig {
    fn new(name: &str, body: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ndprelay-prodcfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ndprelay.ron");
        std::fs::write(&path, body).unwrap();
        Self {
            path: path.display().to_string(),
            dir,
        }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_readme_config_runs_the_home_lab_once_renamed() {
    let (code, stdout, stderr) = lab("home.ron", &minimal(), &["--rename", "eth0=wan,br0=lan"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("note: relay \"homerouter\" runs ")
            && stdout.contains("minimal.ron (eth0→wan, br0→lan) instead of the scenario's config"),
        "{stdout}"
    );
    assert!(stdout.contains("expectations passed: PASS"), "{stdout}");
}

#[test]
fn the_file_is_what_runs_not_the_scenario_config() {
    // The same lab with a config that proxies another prefix: the ISP's router can no
    // longer reach the LAN, so the scenario's expectations fail.
    let other = TempConfig::new(
        "other-prefix",
        "(uplink: \"eth0\", downstream: [\"br0\"], prefixes: [\"2001:db8:2::/64\"], ra_relay: true)\n",
    );
    let renames = ["--rename", "eth0=wan", "--rename", "br0=lan"];
    let (code, stdout, _) = lab("home.ron", &other.path, &renames);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn an_interface_that_is_no_segment_names_the_rename_to_add() {
    let (code, _, stderr) = lab("home.ron", &minimal(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("interface \"eth0\" is not a segment of the scenario")
            && stderr.contains("--rename eth0=SEG (segments: wan, lan)"),
        "{stderr}"
    );
}

#[test]
fn renames_must_name_the_files_interfaces_once_each() {
    let cases: [(&str, &str); 3] = [
        ("eth9=wan", "the file has no interface \"eth9\""),
        ("eth0=wan,eth0=lan", "--rename eth0=... is given twice"),
        ("eth0=wan,br0=wan", "two interfaces become segment \"wan\""),
    ];
    for (rename, want) in cases {
        let (code, _, stderr) = lab("home.ron", &minimal(), &["--rename", rename]);
        assert_eq!(code, Some(1), "{rename}: {stderr}");
        assert!(stderr.contains(want), "{rename}: {stderr}");
    }
}

#[test]
fn config_errors_point_into_the_config_file() {
    let bad = TempConfig::new(
        "syntax",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8:1::/64\"],\n    ra_relay: maybe,\n)\n",
    );
    let (code, _, stderr) = lab("home.ron", &bad.path, &["--rename", "eth0=wan,br0=lan"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:5:15", bad.path)) && stderr.contains("ra_relay"),
        "{stderr}"
    );
    let (code, _, stderr) = lab("home.ron", "/nonexistent/ndprelay.ron", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/ndprelay.ron: cannot read config"),
        "{stderr}"
    );
}

#[test]
fn several_relays_need_relay_and_rename_needs_config() {
    let two = "two-relays-loop.ron";
    let rename = ["--rename", "eth0=wan,br0=lan"];
    let (code, _, stderr) = lab(two, &minimal(), &rename);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("choose one with --relay NAME (relays: r1, r2)"),
        "{stderr}"
    );
    let (_, stdout, stderr) = lab(two, &minimal(), &[&rename[..], &["--relay", "r2"]].concat());
    assert!(stdout.starts_with("note: relay \"r2\" runs "), "{stderr}");
    let (_, _, stderr) = lab(two, &minimal(), &[&rename[..], &["--relay", "r3"]].concat());
    assert!(
        stderr.contains("--relay r3: the scenario has no such relay"),
        "{stderr}"
    );
    let usage = ndprelay(&[
        "--scenario",
        &repo("scenarios/home.ron"),
        "--rename",
        "eth0=wan",
    ]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("--config <FILE>"));
}

#[test]
fn a_routed_segment_takes_a_renamed_vpn_interface() {
    let vpn = TempConfig::new(
        "vpn",
        "(uplink: \"eth0\", downstream: [\"br0\", \"wg-peers\"], prefixes: [\"2001:db8:1::/64\"])\n",
    );
    let (code, stdout, stderr) = lab(
        "routed-vpn.ron",
        &vpn.path,
        &["--rename", "eth0=wan,br0=lan,wg-peers=wg0"],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("(eth0→wan, br0→lan, wg-peers→wg0)"),
        "{stdout}"
    );
}
