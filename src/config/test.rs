//! Config parsing and validation tests: the minimal config, every default, and each
//! error with its line:column.

use std::net::Ipv6Addr;

use super::*;
use crate::engine::PrefixMode;

const MINIMAL: &str = include_str!("../../examples/minimal.ron");
const ANNOTATED: &str = include_str!("../../examples/ndprelay.ron");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_with_path(text, "t.ron")
}

/// Every error as (line, col, display), in order; panics (test failure) if it parsed.
fn errors(text: &str) -> Vec<(u32, u32, String)> {
    match parse(text) {
        Ok(c) => panic!("expected errors, parsed {c:?}"),
        Err(e) => e
            .errors()
            .into_iter()
            .map(|e| {
                let pos = e.location().and_then(|l| l.pos);
                (
                    pos.map_or(0, |p| p.line),
                    pos.map_or(0, |p| p.col),
                    e.to_string(),
                )
            })
            .collect(),
    }
}

/// The single error of `text`, asserting its position and that its text has `needle`.
#[track_caller]
fn one_error(text: &str, line: u32, col: u32, needle: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let (l, c, msg) = &errs[0];
    assert_eq!((*l, *c), (line, col), "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    assert!(msg.contains("\n  hint: "), "{msg:?} has no hint");
    msg.clone()
}

/// A valid config with `extra` spliced in before the closing parenthesis (line 5 on).
fn with(extra: &str) -> String {
    format!(
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8:1::/64\"],\n{extra}\n)\n"
    )
}

#[test]
fn minimal_config_is_accepted_as_written() {
    assert_eq!(
        MINIMAL,
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8:1::/64\"],\n    ra_relay: true,\n    install_routes: true,\n    control_socket: \"/run/ndprelay.sock\",\n)\n",
        "examples/minimal.ron must stay the DESIGN.md minimal config"
    );
    let c = parse(MINIMAL).expect("minimal config parses");
    assert_eq!(c.uplink, "eth0");
    assert_eq!(c.downstream, ["br0"]);
    assert_eq!(
        c.prefixes,
        [PrefixRule {
            prefix: "2001:db8:1::/64".parse().expect("literal"),
            mode: PrefixMode::Relay
        }]
    );
    assert!(c.ra_relay);
    assert!(c.install_routes);
    assert_eq!(c.data_plane(), DataPlane::KernelRoutes);
    assert_eq!(c.control_socket, PathBuf::from("/run/ndprelay.sock"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn every_omitted_key_gets_its_documented_default() {
    let c = parse("(uplink: \"eth0\", downstream: [\"br0\"], prefixes: [\"2001:db8:1::/64\"])")
        .expect("parses");
    assert!(c.ra_relay);
    assert_eq!(c.forwarding, Forwarding::Kernel);
    assert!(c.install_routes);
    assert_eq!(c.data_plane(), DataPlane::KernelRoutes);
    assert_eq!(c.ra_source, RaSource::KeepRouter);
    assert_eq!(c.fast_path, None);
    assert!(c.honour_proxy_bit);
    assert!(!c.disable_on_rogue_ra);
    assert!(c.announce);
    assert_eq!(c.seed, None);
    assert_eq!(c.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
    assert!(!c.fix_sysctls);
    assert_eq!(c.dump_dir, None);
    assert_eq!(c.state_file, None);
    assert_eq!(c.log, None);
    let t = &c.tunables;
    assert_eq!(t.retrans_timer, Duration::from_secs(1));
    assert_eq!(t.reachable_time, Duration::from_secs(30));
    assert_eq!(t.delay_first_probe, Duration::from_secs(5));
    assert_eq!(t.stale_lifetime, Duration::from_secs(600));
    assert_eq!(t.negative_cache, Duration::from_secs(3));
    assert_eq!(t.ra_min_interval, Duration::from_secs(3));
    assert_eq!(t.proxy_disable_hold, Duration::from_secs(3600));
    assert_eq!(*t, Tunables::default());
}

#[test]
fn own_ra_interval_stays_within_the_proxy_disable_hold() {
    let c = parse(&with(r#"    timers: (proxy_disable_hold: "5min"),"#)).expect("parses");
    assert_eq!(
        c.tunables.own_ra_interval,
        Duration::from_secs(150),
        "left unset, it follows a short hold"
    );
    one_error(
        &with(r#"    timers: (proxy_disable_hold: "5min", own_ra_interval: "5min"),"#),
        5,
        59,
        "own_ra_interval must be above zero and shorter than proxy_disable_hold",
    );
    one_error(
        &with(r#"    timers: (own_ra_interval: "0s"),"#),
        5,
        31,
        "timers.own_ra_interval must be longer than 0",
    );
}

#[test]
fn annotated_example_spells_out_exactly_the_defaults() {
    let annotated = parse(ANNOTATED).expect("annotated example parses");
    let minimal = parse(MINIMAL).expect("minimal parses");
    assert_eq!(annotated, minimal);
}

/// The valid keys of a section, as serde itself lists them in an unknown-key error.
fn schema_keys(section: &str) -> Vec<String> {
    let text = match section {
        "" => with("    zzz: 1,"),
        s => with(&format!("    {s}: (zzz: 1),")),
    };
    match parse(&text) {
        Err(ConfigError::UnknownKey { hint, .. }) => hint
            .rsplit("valid keys: ")
            .next()
            .unwrap_or_default()
            .split(", ")
            .map(|k| {
                if section.is_empty() {
                    k.to_owned()
                } else {
                    format!("{section}.{k}")
                }
            })
            .collect(),
        other => panic!("expected an unknown key error, got {other:?}"),
    }
}

#[test]
fn annotated_example_lists_every_key() {
    let map = locate::SourceMap::scan(ANNOTATED);
    let present: Vec<&str> = map.paths().collect();
    let mut keys = schema_keys("");
    keys.extend(schema_keys("timers"));
    keys.extend(schema_keys("limits"));
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys {
        assert!(
            present.contains(&key.as_str()),
            "examples/ndprelay.ron lacks `{key}`"
        );
    }
}

/// The manual `ndprelay.ron(5)` is rendered from the example's comments: every key the
/// parser accepts has one there, and nothing documented is a key the parser refuses.
#[test]
fn every_key_is_documented_for_the_manual() {
    let reference = super::reference::reference();
    let mut keys = schema_keys("");
    keys.extend(schema_keys("timers"));
    keys.extend(schema_keys("limits"));
    for key in &keys {
        let doc = reference.keys().find(|k| &k.path == key);
        let doc = doc.unwrap_or_else(|| panic!("examples/ndprelay.ron: no entry for `{key}`"));
        assert!(
            doc.doc.iter().any(|l| !l.trim().is_empty()),
            "examples/ndprelay.ron: `{key}` has no comment above it (the manual page shows it)"
        );
        assert!(!doc.value.is_empty(), "`{key}` has no value in the example");
    }
    for documented in reference.keys() {
        let section = ["timers", "limits"].contains(&documented.path.as_str());
        assert!(
            section || keys.contains(&documented.path),
            "examples/ndprelay.ron documents `{}`, which the parser does not accept",
            documented.path
        );
    }
    assert!(reference.sections.len() >= 5, "{:?}", reference.sections);
}

#[test]
fn every_key_can_be_set() {
    let c = parse(&with(
        r#"    static_prefixes: ["2001:db8:2::/64", "2001:db8:3::/112"],
    ra_relay: false,
    forwarding: Kernel,
    install_routes: false,
    ra_source: Relay,
    fast_path: "2s",
    honour_proxy_bit: false,
    disable_on_rogue_ra: true,
    announce: false,
    seed: 42,
    timers: (retrans_timer: "250ms", reachable_time: "1min", delay_first_probe: "2s",
             stale_lifetime: "1h", negative_cache: "1s", ra_min_interval: "500ms",
             proxy_disable_hold: "5min", ra_wait: "2s", own_ra_interval: "4min"),
    limits: (max_probes: 5, max_bindings: 10, max_pending: 8, max_pending_per_port: 4,
             ns_rate: 7, ns_burst: 9, rs_rate: 2),
    control_socket: "/tmp/x.sock",
    fix_sysctls: true,
    dump_dir: "/var/tmp/dumps",
    state_file: "/var/lib/ndprelay/state",
    log: Debug,"#,
    ))
    .expect("parses");
    let modes: Vec<_> = c
        .prefixes
        .iter()
        .map(|r| (r.prefix.to_string(), r.mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("2001:db8:1::/64".to_owned(), PrefixMode::Relay),
            ("2001:db8:2::/64".to_owned(), PrefixMode::Static),
            ("2001:db8:3::/112".to_owned(), PrefixMode::Static),
        ]
    );
    assert!(!c.ra_relay);
    assert_eq!(c.data_plane(), DataPlane::None);
    assert_eq!(c.ra_source, RaSource::Relay);
    assert_eq!(c.fast_path, Some(Duration::from_secs(2)));
    assert!(!c.honour_proxy_bit);
    assert!(c.disable_on_rogue_ra);
    assert!(!c.announce);
    assert_eq!(c.seed, Some(42));
    let t = &c.tunables;
    assert_eq!(
        (
            t.retrans_timer,
            t.reachable_time,
            t.delay_first_probe,
            t.stale_lifetime
        ),
        (
            Duration::from_millis(250),
            Duration::from_secs(60),
            Duration::from_secs(2),
            Duration::from_secs(3600)
        )
    );
    assert_eq!(
        (t.negative_cache, t.ra_min_interval, t.proxy_disable_hold),
        (
            Duration::from_secs(1),
            Duration::from_millis(500),
            Duration::from_secs(300)
        )
    );
    assert_eq!(
        (t.ra_wait, t.own_ra_interval),
        (Duration::from_secs(2), Duration::from_secs(240))
    );
    assert_eq!(
        (
            t.max_probes,
            t.max_bindings,
            t.max_pending,
            t.max_pending_per_port
        ),
        (5, 10, 8, 4)
    );
    assert_eq!((t.ns_rate, t.ns_burst, t.rs_rate), (7, 9, 2));
    assert_eq!(c.control_socket, PathBuf::from("/tmp/x.sock"));
    assert!(c.fix_sysctls);
    assert_eq!(c.dump_dir, Some(PathBuf::from("/var/tmp/dumps")));
    assert_eq!(c.state_file, Some(PathBuf::from("/var/lib/ndprelay/state")));
    assert_eq!(c.log, Some(log::LevelFilter::Debug));
    // The /112 is legal but unusual: one warning, at its value.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].path, "static_prefixes[1]");
    assert_eq!(c.warnings[0].at.pos, Some(Pos { line: 5, col: 42 }));
}

#[test]
fn explicit_some_is_accepted_too() {
    let c = parse(&with(
        "    fast_path: Some(\"1s\"), seed: Some(7), log: Some(Warn),",
    ))
    .expect("parses");
    assert_eq!(c.fast_path, Some(Duration::from_secs(1)));
    assert_eq!(c.seed, Some(7));
    assert_eq!(c.log, Some(log::LevelFilter::Warn));
}

#[test]
fn forwarding_modes_map_to_data_planes() {
    let plane = |extra: &str| parse(&with(extra)).map(|c| c.data_plane()).expect("parses");
    assert_eq!(plane(""), DataPlane::KernelRoutes);
    assert_eq!(plane("install_routes: false,"), DataPlane::None);
    assert_eq!(plane("forwarding: Userspace,"), DataPlane::Userspace);
    assert_eq!(plane("forwarding: Off,"), DataPlane::None);
    let c = parse(&with(
        "    forwarding: Userspace,\n    install_routes: true,",
    ))
    .expect("parses");
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].at.pos, Some(Pos { line: 6, col: 5 }));
    assert!(
        c.warnings[0]
            .to_string()
            .contains("ignored with forwarding: Userspace")
    );
}

// ---- syntax and schema errors (reported by ron, first one only) ----

#[test]
fn syntax_error_points_at_the_problem() {
    let msg = one_error(
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"]\n    prefixes: [],\n)",
        4,
        5,
        "expected comma",
    );
    assert!(msg.starts_with("t.ron:4:5: "), "{msg}");
    one_error("(\n    uplink: \"eth0\",\n", 3, 1, "end of RON");
    let msg = one_error("// nothing yet\n", 2, 1, "expected opening `(`");
    assert!(msg.contains("start from examples/minimal.ron"), "{msg}");
}

#[test]
fn unknown_key_suggests_the_nearest_and_lists_valid_keys() {
    let msg = one_error(
        &with("    instal_routes: true,"),
        5,
        5,
        "unknown key `instal_routes`",
    );
    assert!(msg.contains("did you mean `install_routes`?"), "{msg}");
    assert!(msg.contains("valid keys: uplink, downstream,"), "{msg}");
    let msg = one_error(
        &with("    timers: (retrans: \"1s\"),"),
        5,
        14,
        "in `timers`",
    );
    assert!(msg.contains("did you mean `retrans_timer`?"), "{msg}");
    one_error(
        &with("    limits: (max_bindigns: 5),"),
        5,
        14,
        "did you mean `max_bindings`?",
    );
}

#[test]
fn unknown_interface_role_explains_uplink_and_downstream() {
    let msg = one_error(&with("    lan: [\"br1\"],"), 5, 5, "unknown key `lan`");
    assert!(msg.contains("interfaces are given by role"), "{msg}");
    assert!(msg.contains("did you mean `downstream`?"), "{msg}");
    let msg = one_error(
        "(\n    upstream: \"eth0\",\n    downstream: [\"br0\"],\n)",
        2,
        5,
        "unknown key `upstream`",
    );
    assert!(msg.contains("did you mean `uplink`?"), "{msg}");
}

#[test]
fn missing_and_duplicate_keys_are_named() {
    let msg = one_error(
        "(\n    uplink: \"eth0\",\n)",
        3,
        1,
        "missing key `downstream`",
    );
    assert!(msg.contains("downstream: [\"br0\""), "{msg}");
    one_error(
        "(\n    uplink: \"eth0\",\n    uplink: \"eth1\",\n    downstream: [\"br0\"],\n)",
        3,
        5,
        "key `uplink` given twice",
    );
}

#[test]
fn wrong_types_name_the_key_and_its_shape() {
    let msg = one_error(
        "(\n    uplink: [\"eth0\"],\n    downstream: [\"br0\"],\n)",
        2,
        13,
        "(uplink)",
    );
    assert!(msg.contains("one interface name in quotes"), "{msg}");
    let msg = one_error(
        &with("    timers: (retrans_timer: 1),"),
        5,
        29,
        "(timers.retrans_timer)",
    );
    assert!(msg.contains("a duration in quotes"), "{msg}");
    one_error(&with("    ra_relay: \"yes\","), 5, 15, "true or false");
    one_error(
        &with("    limits: (max_probes: -1),"),
        5,
        27,
        "(limits.max_probes)",
    );
}

#[test]
fn unknown_enum_value_suggests_the_nearest() {
    let msg = one_error(
        &with("    forwarding: Kernal,"),
        5,
        17,
        "unknown value `Kernal` (forwarding)",
    );
    assert!(
        msg.contains("did you mean `Kernel`? valid values: Kernel, Userspace, Off"),
        "{msg}"
    );
    one_error(
        &with("    ra_source: Routr,"),
        5,
        16,
        "did you mean `Router`?",
    );
}

// ---- semantic errors (all reported, each at its value) ----

#[test]
fn bad_interface_names_point_at_the_value() {
    let errs = errors(
        "(\n    uplink: \"\",\n    downstream: [\"br0\", \"a very long name\", \"br0\", \"x/y\"],\n    prefixes: [\"2001:db8::/64\"],\n)",
    );
    let got: Vec<_> = errs
        .iter()
        .map(|(l, c, m)| (*l, *c, m.lines().next().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            (2, 13, "t.ron:2:13: empty interface name (uplink)".to_owned()),
            (3, 25, "t.ron:3:25: interface name `a very long name` is 16 bytes; Linux allows at most 15 (downstream[1])".to_owned()),
            (3, 45, "t.ron:3:45: interface `br0` is listed twice (also downstream[0]) (downstream[2])".to_owned()),
            (3, 52, "t.ron:3:52: interface name `x/y` contains '/' (downstream[3])".to_owned()),
        ]
    );
}

#[test]
fn uplink_listed_as_downstream_is_an_error() {
    one_error(
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\", \"eth0\"],\n    prefixes: [\"2001:db8::/64\"],\n)",
        3,
        25,
        "`eth0` is the uplink and cannot also be downstream (downstream[1])",
    );
}

#[test]
fn empty_downstream_is_an_error() {
    one_error(
        "(\n    uplink: \"eth0\",\n    downstream: [],\n    prefixes: [\"2001:db8::/64\"],\n)",
        3,
        17,
        "no downstream interface (downstream)",
    );
}

#[test]
fn overlapping_prefixes_name_both() {
    let msg = one_error(
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8::/48\",\n               \"2001:db8:0:1::/64\"],\n)",
        5,
        16,
        "prefix 2001:db8:0:1::/64 overlaps 2001:db8::/48 (prefixes[1] vs prefixes[0])",
    );
    assert!(msg.starts_with("t.ron:5:16: "), "{msg}");
    one_error(
        &with("    static_prefixes: [\"2001:db8:1::/64\"],"),
        5,
        23,
        "(static_prefixes[0] vs prefixes[0])",
    );
}

#[test]
fn bad_prefixes_each_get_a_specific_message() {
    let cases = [
        ("10.0.0.0/8", "is an IPv4 prefix"),
        ("2001:db8::1", "has no prefix length"),
        ("2001:db8::/129", "is not an IPv6 prefix"),
        ("banana", "is not an IPv6 prefix"),
        ("2001:db8::1/64", "has host bits set"),
        ("fe80::/64", "is not global unicast"),
        ("ff02::/16", "is not global unicast"),
        ("::/0", "would proxy every IPv6 address"),
    ];
    for (text, needle) in cases {
        let cfg = format!(
            "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"{text}\"],\n)"
        );
        one_error(&cfg, 4, 16, needle);
    }
    let msg = one_error(
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8::1/64\"],\n)",
        4,
        16,
        "host bits",
    );
    assert!(msg.contains("did you mean \"2001:db8::/64\"?"), "{msg}");
}

#[test]
fn no_prefix_at_all_is_an_error() {
    let errs = errors("(uplink: \"eth0\", downstream: [\"br0\"])");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].2.starts_with("t.ron: missing key `prefixes`"),
        "{errs:?}"
    );
}

#[test]
fn long_prefix_is_a_warning_not_an_error() {
    let c = parse("(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixes: [\"2001:db8::/120\"],\n)")
        .expect("parses");
    assert_eq!(c.warnings.len(), 1);
    let w = c.warnings[0].to_string();
    assert!(
        w.starts_with(
            "t.ron:4:16: warning: prefix 2001:db8::/120 is longer than /64 (prefixes[0])"
        ),
        "{w}"
    );
}

#[test]
fn bad_durations_point_at_the_value() {
    let errs = errors(&with(
        "    timers: (\n        retrans_timer: \"5\",\n        reachable_time: \"2h\",\n        negative_cache: \"0s\",\n        ra_min_interval: \"3m\",\n    ),\n    fast_path: \"1 fortnight\",",
    ));
    let got: Vec<_> = errs
        .iter()
        .map(|(l, c, m)| (*l, *c, m.lines().next().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            (6, 24, "t.ron:6:24: bad duration \"5\": number 5 has no unit (timers.retrans_timer)".to_owned()),
            (7, 25, "t.ron:7:25: reachable_time is longer than 1h (timers.reachable_time)".to_owned()),
            (8, 25, "t.ron:8:25: timers.negative_cache must be longer than 0 (timers.negative_cache)".to_owned()),
            (9, 26, "t.ron:9:26: bad duration \"3m\": unit `m` is ambiguous (minutes or milliseconds?) (timers.ra_min_interval)".to_owned()),
            (11, 16, "t.ron:11:16: bad duration \"1 fortnight\": unknown unit `fortnight` (fast_path)".to_owned()),
        ]
    );
    assert!(
        errs[0].2.contains("hint: write a number and a unit"),
        "{}",
        errs[0].2
    );
}

#[test]
fn fast_path_must_stay_within_reachable_time() {
    one_error(
        &with("    fast_path: \"1min\","),
        5,
        16,
        "longer than timers.reachable_time (30s)",
    );
    one_error(
        &with("    fast_path: \"0ms\","),
        5,
        16,
        "fast_path must be longer than 0",
    );
}

#[test]
fn fast_path_in_kernel_needs_the_fast_path() {
    one_error(
        &with("    fast_path_in_kernel: true,"),
        5,
        26,
        "fast_path_in_kernel is set but fast_path is not",
    );
    let c = parse(&with("    fast_path: \"2s\", fast_path_in_kernel: true,")).unwrap();
    assert_eq!(c.fast_path_in_kernel, InKernel::Always);
    assert!(c.needs_bpf());
    // Not set, it is no reason to refuse a start without CAP_BPF or without fast_path.
    let c = parse(&with("    fast_path: \"2s\",")).unwrap();
    assert_eq!(c.fast_path_in_kernel, InKernel::WhenPossible);
    assert!(!c.needs_bpf());
    let c = parse(&with("    fast_path_in_kernel: false,")).unwrap();
    assert_eq!(c.fast_path_in_kernel, InKernel::Never);
}

#[test]
fn relay_in_kernel_is_a_flag_on_its_own_and_when_possible_unless_set() {
    let c = parse(&with("    relay_in_kernel: true,")).unwrap();
    assert_eq!(c.relay_in_kernel, InKernel::Always);
    assert_eq!(c.fast_path_in_kernel, InKernel::WhenPossible);
    assert!(c.fast_path.is_none());
    assert!(c.needs_bpf());
    let c = parse(&with("    relay_in_kernel: false,")).unwrap();
    assert_eq!(c.relay_in_kernel, InKernel::Never);
    let c = parse(&with("")).unwrap();
    assert_eq!(c.relay_in_kernel, InKernel::WhenPossible);
    // Not set, it is no reason to refuse a start without CAP_BPF.
    assert!(!c.needs_bpf());
    let e = errors(&with("    relay_in_kernel: 1,"));
    assert_eq!((e[0].0, e[0].1), (5, 22), "{e:?}");
    assert!(e[0].2.contains("true, false, or None"), "{e:?}");
}

#[test]
fn in_kernel_attach_is_auto_unless_set() {
    assert_eq!(
        parse(&with("")).unwrap().in_kernel_attach,
        InKernelAttach::Auto
    );
    let c = parse(&with("    in_kernel_attach: Tc,")).unwrap();
    assert_eq!(c.in_kernel_attach, InKernelAttach::Tc);
    let c = parse(&with("    in_kernel_attach: Tcx,")).unwrap();
    assert_eq!(c.in_kernel_attach, InKernelAttach::Tcx);
    let e = errors(&with("    in_kernel_attach: clsact,"));
    assert!(e[0].2.contains("valid values: Auto, Tcx, Tc"), "{e:?}");
    let e = errors(&with("    in_kernel_attach: 1,"));
    assert!(e[0].2.contains("one of Auto, Tcx, Tc (no quotes)"), "{e:?}");
}

#[test]
fn limits_are_range_checked() {
    one_error(
        &with("    limits: (max_probes: 0),"),
        5,
        26,
        "limits.max_probes is 0; it must be between 1 and 255",
    );
    one_error(
        &with("    limits: (max_probes: 256),"),
        5,
        26,
        "between 1 and 255",
    );
    one_error(
        &with("    limits: (ns_rate: 5000000000),"),
        5,
        23,
        "between 1 and 4294967295",
    );
    one_error(
        &with("    limits: (max_pending: 10),"),
        5,
        27,
        "max_pending_per_port (512) exceeds max_pending (10)",
    );
    one_error(
        &with("    limits: (max_pending: 10, max_pending_per_port: 11),"),
        5,
        53,
        "(limits.max_pending_per_port)",
    );
}

#[test]
fn empty_paths_are_errors_and_relative_socket_is_a_warning() {
    one_error(
        &with("    control_socket: \"\","),
        5,
        21,
        "control_socket is empty",
    );
    one_error(&with("    dump_dir: \"\","), 5, 15, "dump_dir is empty");
    one_error(
        &with("    state_file: \"ndprelay.state\","),
        5,
        17,
        "state_file \"ndprelay.state\" is not an absolute path",
    );
    let c = parse(&with("    control_socket: \"ndprelay.sock\",")).expect("parses");
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].message.contains("relative"));
}

#[test]
fn all_semantic_errors_are_reported_in_file_order() {
    let errs = errors(
        "(\n    uplink: \"eth 0\",\n    downstream: [\"eth 0\"],\n    prefixes: [\"10.0.0.0/8\"],\n    timers: (retrans_timer: \"x\"),\n)",
    );
    let lines: Vec<u32> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{errs:#?}");
    let whole =
        parse("(\n    uplink: \"\",\n    downstream: [],\n    prefixes: [\"x\"],\n)").unwrap_err();
    assert_eq!(
        whole.to_string().matches("\n  hint: ").count(),
        3,
        "{whole}"
    );
}

#[test]
fn load_names_a_missing_file_and_suggests_the_example() {
    let err = Config::load("/nonexistent/ndprelay.ron").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("/nonexistent/ndprelay.ron: cannot read config"),
        "{msg}"
    );
    assert!(msg.contains("examples/ndprelay.ron"), "{msg}");
    assert!(msg.contains("ndprelay check -c"), "{msg}");
}

fn resolved(name: &str, last: u8) -> ResolvedPort {
    ResolvedPort {
        name: name.to_owned(),
        mac: Mac([2, 0, 0, 0, 0, last]),
        link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(last)),
        mtu: 1500,
        routed: false,
    }
}

#[test]
fn engine_config_orders_ports_uplink_first_and_copies_policy() {
    let c = parse(&with("    downstream: [\"br1\"],").replace("downstream: [\"br0\"],\n", ""))
        .expect("parses");
    assert_eq!(c.downstream, ["br1"]);
    let c = parse(
        "(uplink: \"eth0\", downstream: [\"br0\", \"br1\"], prefixes: [\"2001:db8:1::/64\"], seed: 9, fast_path: \"2s\", forwarding: Userspace)",
    )
    .expect("parses");
    // Resolution order differs from config order on purpose; extras are ignored.
    let ports = [
        resolved("br1", 3),
        resolved("lo", 9),
        resolved("eth0", 1),
        resolved("br0", 2),
    ];
    let e = c.engine_config(&ports).expect("all resolved");
    let names: Vec<_> = e
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.role, p.mac.0[5]))
        .collect();
    assert_eq!(
        names,
        [
            ("eth0", Role::Upstream, 1),
            ("br0", Role::Downstream, 2),
            ("br1", Role::Downstream, 3)
        ]
    );
    assert_eq!(
        e.ports[1].link_local,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)
    );
    assert_eq!(e.data_plane, DataPlane::Userspace);
    assert_eq!(e.seed, 9);
    assert_eq!(e.fast_path, Some(Duration::from_secs(2)));
    assert!(!e.emit_events);
    assert!(e.announce, "announce defaults to on in the config file");
    let off = parse(
        "(uplink: \"eth0\", downstream: [\"br0\", \"br1\"], prefixes: [\"2001:db8:1::/64\"], announce: false)",
    )
    .expect("parses");
    assert!(!off.engine_config(&ports).expect("all resolved").announce);
    assert_eq!(e.prefixes, c.prefixes);
    assert_eq!(e.tunables, c.tunables);
}

#[test]
fn engine_config_reports_every_unresolved_interface() {
    let c = parse(
        "(uplink: \"eth0\", downstream: [\"br0\", \"br1\"], prefixes: [\"2001:db8:1::/64\"])",
    )
    .expect("parses");
    let err = c.engine_config(&[resolved("br0", 2)]).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.errors().len(), 2, "{msg}");
    assert!(
        msg.contains("interface `eth0` (uplink) was not found"),
        "{msg}"
    );
    assert!(
        msg.contains("interface `br1` (downstream[1]) was not found"),
        "{msg}"
    );
    assert_eq!(c.engine_config(&[]).unwrap_err().errors().len(), 3);
}

#[test]
fn hostile_text_never_panics() {
    for text in [
        "",
        "(",
        ")",
        "(((((",
        "\u{0}",
        "(uplink: \"\u{1F600}\")",
        "#![enable(",
        "[1,2,3]",
    ] {
        assert!(parse(text).is_err());
    }
    assert_eq!(validate::edit_distance_for_test("kitten", "sitting"), 3);
}

#[test]
fn embedded_config_positions_are_shifted_into_the_outer_file() {
    // As if the config started at line 10, column 13 of a scenario file.
    let origin = Pos { line: 10, col: 13 };
    let text = "(uplink: \"\", downstream: [\"br0\"],\n    prefixes: [\"2001:db8::/120\", \"x\"])";
    let err = Config::from_str_at(text, "lab.ron", origin).unwrap_err();
    let msgs: Vec<String> = err.errors().iter().map(|e| e.to_string()).collect();
    assert!(
        msgs[0].starts_with("lab.ron:10:22: empty interface name (uplink)"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with("lab.ron:11:34: \"x\" is not an IPv6 prefix"),
        "{msgs:?}"
    );
    let c = Config::from_str_at(
        &text.replace("\"\",", "\"wan\",").replace(", \"x\"", ""),
        "lab.ron",
        origin,
    )
    .expect("parses");
    assert_eq!(c.warnings[0].at.pos, Some(Pos { line: 11, col: 16 }));
    let err = Config::from_str_at("(uplink: 1)", "lab.ron", origin).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("lab.ron:10:22: expected string"),
        "{err}"
    );
}

#[test]
fn log_format_is_text_unless_set() {
    use super::LogFormat;
    assert_eq!(parse(&with("")).unwrap().log_format, LogFormat::Text);
    let c = parse(&with("    log_format: Json,")).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    let e = errors(&with("    log_format: Yaml,"));
    assert!(e[0].2.contains("valid values: Text, Json"), "{e:?}");
    let e = errors(&with("    log_format: \"json\","));
    assert!(e[0].2.contains("one of Text, Json (no quotes)"), "{e:?}");
    // The line and column point at the value.
    assert_eq!(e[0].0, 5, "{e:?}");
}

#[test]
fn metrics_listen_is_off_by_default_and_an_address_and_port() {
    assert_eq!(parse(&with("")).unwrap().metrics_listen, None);
    let c = parse(&with("    metrics_listen: \"[::1]:9630\",")).expect("parses");
    assert_eq!(c.metrics_listen, Some("[::1]:9630".parse().unwrap()));
    let c = parse(&with("    metrics_listen: \"127.0.0.1:9630\",")).expect("parses");
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9630".parse().unwrap()));
    assert_eq!(
        parse(&with("    metrics_listen: None,"))
            .unwrap()
            .metrics_listen,
        None
    );
    let msg = one_error(
        &with("    metrics_listen: \"::1:9630\","),
        5,
        21,
        "metrics_listen \"::1:9630\" is not an address and port",
    );
    assert!(
        msg.contains("[::1]:9630"),
        "the hint shows the brackets: {msg}"
    );
    one_error(
        &with("    metrics_listen: \"[::1]:0\","),
        5,
        21,
        "has port 0",
    );
    one_error(&with("    metrics_listen: 9630,"), 5, 21, "metrics_listen");
}
