//! `ndprelay check` end to end: the shipped examples pass, broken configs print every
//! error with file:line:column and a hint and exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ndprelay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndprelay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the built binary runs")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file in a fresh temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, body: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ndprelay-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ndprelay.ron");
        std::fs::write(&path, body).expect("write config");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn minimal_config_checks_ok_with_a_summary() {
    let path = example("minimal.ron");
    let out = ndprelay(&["check", "-c", &path]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with(&format!("OK: {path}\n")), "{stdout}");
    for needle in [
        "uplink:      eth0",
        "downstream:  br0",
        "prefixes:    2001:db8:1::/64 (relay)",
        "data plane:  kernel forwarding, /128 routes",
        "RA relay:    on",
        "control:     /run/ndprelay.sock",
    ] {
        assert!(stdout.contains(needle), "{stdout:?} lacks {needle:?}");
    }
    assert_eq!(text(&out.stderr), "", "no warnings expected");
}

#[test]
fn annotated_example_checks_ok() {
    let path = example("ndprelay.ron");
    let out = ndprelay(&["check", "--config", &path]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).starts_with(&format!("OK: {path}\n")));
}

#[test]
fn broken_config_prints_every_error_and_exits_1() {
    let cfg = TempConfig::new(
        "broken",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\", \"eth0\"],\n    prefixes: [\"2001:db8::/48\", \"2001:db8:0:1::/64\"],\n    timers: (retrans_timer: \"1m\"),\n)\n",
    );
    let out = ndprelay(&["check", "-c", cfg.path()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), "", "no OK on failure");
    let stderr = text(&out.stderr);
    let p = cfg.path();
    for needle in [
        format!(
            "{p}:3:25: `eth0` is the uplink and cannot also be downstream (downstream[1])\n  hint: "
        ),
        format!(
            "{p}:4:33: prefix 2001:db8:0:1::/64 overlaps 2001:db8::/48 (prefixes[1] vs prefixes[0])\n  hint: "
        ),
        format!("{p}:5:29: bad duration \"1m\": unit `m` is ambiguous"),
        format!("{p}: 3 errors"),
    ] {
        assert!(stderr.contains(&needle), "{stderr}\nlacks {needle:?}");
    }
}

#[test]
fn syntax_error_and_unknown_key_exit_1_with_position_and_hint() {
    let cfg = TempConfig::new(
        "syntax",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"]\n    prefixes: [\"2001:db8::/64\"],\n)\n",
    );
    let out = ndprelay(&["check", "-c", cfg.path()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:4:5: expected comma", cfg.path())),
        "{stderr}"
    );
    assert!(stderr.contains("\n  hint: "), "{stderr}");

    let cfg = TempConfig::new(
        "unknown",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8::/64\"],\n    ra_rely: true,\n)\n",
    );
    let out = ndprelay(&["check", "-c", cfg.path()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:5:5: unknown key `ra_rely`", cfg.path())),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `ra_relay`?"), "{stderr}");
}

#[test]
fn warnings_are_printed_but_check_passes() {
    let cfg = TempConfig::new(
        "warn",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8::/120\"],\n)\n",
    );
    let out = ndprelay(&["check", "-c", cfg.path()]);
    assert!(out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:4:16: warning: prefix 2001:db8::/120 is longer than /64",
            cfg.path()
        )),
        "{stderr}"
    );
}

#[test]
fn missing_file_names_the_path_and_the_example() {
    let out = ndprelay(&["check", "-c", "/nonexistent/ndprelay.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("/nonexistent/ndprelay.ron: cannot read config"),
        "{stderr}"
    );
    assert!(stderr.contains("examples/ndprelay.ron"), "{stderr}");
    assert!(stderr.contains("ndprelay check -c"), "{stderr}");
}
