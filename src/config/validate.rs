//! From text to [`Config`]: `ron` errors mapped to [`ConfigError`]s with hints, then every
//! semantic check, all errors collected and sorted by position.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use ron::error::{Error as RonError, SpannedError};

use super::duration::{DURATION_HINT, parse_duration};
use super::error::{ConfigError, ConfigWarning, Location};
use super::locate::{Pos, SourceMap, skip_whitespace};
use super::raw::{Forwarding, RaSourceKey, RawConfig};
use super::{Config, DEFAULT_CONTROL_SOCKET, InKernel};
use crate::engine::{PrefixMode, PrefixRule, RaSource, Tunables};
use crate::time::Duration;

/// The `ron` options every config is read with: `implicit_some` so optional keys are
/// written `fast_path: "2s"` rather than `fast_path: Some("2s")` (both work).
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Linux IFNAMSIZ minus the terminating NUL.
const IFNAME_MAX: usize = 15;

/// Why `name` cannot be a Linux interface name (kernel `dev_valid_name`), or `None`.
pub fn interface_name_problem(name: &str) -> Option<String> {
    Some(if name.is_empty() {
        "empty interface name".to_owned()
    } else if name.len() > IFNAME_MAX {
        format!(
            "interface name `{name}` is {} bytes; Linux allows at most {IFNAME_MAX}",
            name.len()
        )
    } else if name == "." || name == ".." {
        format!("`{name}` is not an interface name")
    } else if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        format!("interface name `{name}` contains {c:?}")
    } else {
        return None;
    })
}

/// RFC 4861 §6.2.1 MAX_REACHABLE_TIME.
const MAX_REACHABLE_TIME: Duration = Duration::from_secs(3600);

pub(super) fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let map = SourceMap::scan(text);
    let raw: RawConfig = ron_options()
        .from_str(text)
        .map_err(|e| from_ron(&e, text, file, &map))?;
    let mut v = Validator {
        file: file.into(),
        map: &map,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(Config {
            warnings: v.warnings,
            ..config
        })
    } else {
        // File order; errors without a place (defaults) last.
        v.errors.sort_by_key(|e| {
            e.location().and_then(|l| l.pos).unwrap_or(Pos {
                line: u32::MAX,
                col: 0,
            })
        });
        Err(ConfigError::from_list(v.errors))
    }
}

/// Maps a `ron` error to ours, naming the key via the source map where the parser can't.
fn from_ron(e: &SpannedError, text: &str, file: &str, map: &SourceMap) -> ConfigError {
    let pos = skip_whitespace(
        text,
        Pos {
            line: u32::try_from(e.span.start.line).unwrap_or(u32::MAX),
            col: u32::try_from(e.span.start.col).unwrap_or(u32::MAX),
        },
    );
    let at = Location {
        file: file.into(),
        pos: Some(pos),
    };
    let path = map.path_at(pos).map(str::to_owned);
    match &e.code {
        RonError::NoSuchStructField {
            expected,
            found,
            outer,
        } => ConfigError::UnknownKey {
            at,
            key: found.clone(),
            section: section(outer.as_deref()),
            hint: unknown_key_hint(found, expected),
        },
        RonError::MissingStructField { field, outer } => ConfigError::MissingKey {
            at,
            key: (*field).to_owned(),
            section: section(outer.as_deref()),
            hint: shape_hint(field)
                .map(|s| format!("add `{field}: ...`: {s}"))
                .unwrap_or_else(|| format!("add `{field}`")),
        },
        RonError::DuplicateStructField { field, outer } => ConfigError::DuplicateKey {
            at,
            key: (*field).to_owned(),
            section: section(outer.as_deref()),
        },
        RonError::NoSuchEnumVariant {
            expected, found, ..
        } => ConfigError::UnknownVariant {
            at,
            found: found.clone(),
            hint: one_of_hint(found, expected),
            path,
        },
        code => {
            let hint = path
                .as_deref()
                .and_then(shape_hint)
                .map(|s| format!("expected {s}"))
                .unwrap_or_else(|| syntax_hint(code).to_owned());
            ConfigError::Syntax {
                at,
                message: lowercase_first(&code.to_string()),
                path,
                hint,
            }
        }
    }
}

/// `ron` capitalises its messages; ours follow the `file:line:col: message` convention.
fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn section(outer: Option<&str>) -> String {
    match outer {
        Some(s @ ("timers" | "limits")) => s.to_owned(),
        _ => String::new(),
    }
}

/// What a key's value looks like, for type errors and missing keys.
const METRICS_LISTEN_HINT: &str = "None, or an address and port in quotes, e.g. \"[::1]:9630\" or \"127.0.0.1:9630\" (IPv6 addresses in brackets)";

fn shape_hint(path: &str) -> Option<&'static str> {
    let key = path.split('[').next().unwrap_or(path);
    Some(match key {
        "uplink" => "one interface name in quotes, e.g. uplink: \"eth0\"",
        "downstream" => "a list of interface names, e.g. downstream: [\"br0\", \"br1\"]",
        "prefixes" | "static_prefixes" => {
            "a list of IPv6 prefixes in quotes, e.g. prefixes: [\"2001:db8:1::/64\"]"
        }
        "ra_relay"
        | "install_routes"
        | "honour_proxy_bit"
        | "disable_on_rogue_ra"
        | "announce"
        | "fix_sysctls" => "true or false",
        "fast_path_in_kernel" | "relay_in_kernel" => {
            "true, false, or None (in the kernel when possible)"
        }
        "forwarding" => "one of Kernel, Userspace, Off (no quotes)",
        "ra_source" => "one of Router, Relay (no quotes)",
        "in_kernel_attach" => "one of Auto, Tcx, Tc (no quotes)",
        "log" => "one of Off, Error, Warn, Info, Debug, Trace (no quotes)",
        "log_format" => "one of Text, Json (no quotes)",
        "fast_path" => "None, or a duration in quotes such as \"2s\"",
        "seed" => "a non-negative integer, e.g. seed: 42",
        "control_socket" | "dump_dir" => "a path in quotes, e.g. \"/run/ndprelay.sock\"",
        "state_file" => "None, or an absolute path in quotes, e.g. \"/var/lib/ndprelay/state\"",
        "metrics_listen" => METRICS_LISTEN_HINT,
        "timers" => "a section in parentheses, e.g. timers: (retrans_timer: \"1s\")",
        "limits" => "a section in parentheses, e.g. limits: (max_bindings: 4096)",
        k if k.starts_with("timers.") => {
            "a duration in quotes such as \"500ms\", \"1s\", \"60min\""
        }
        k if k.starts_with("limits.") => "a non-negative integer without quotes",
        _ => return None,
    })
}

fn syntax_hint(code: &RonError) -> &'static str {
    match code {
        RonError::ExpectedComma => {
            "a comma is missing before this point; separate entries with `key: value,`"
        }
        RonError::Eof | RonError::ExpectedStructLikeEnd | RonError::ExpectedArrayEnd => {
            "look for an unclosed `(` or `[`, or a missing comma before this point"
        }
        RonError::ExpectedStringEnd => "close the string with `\"`",
        RonError::UnclosedBlockComment => "close the comment with `*/`",
        RonError::TrailingCharacters => {
            "the file is one `( ... )` block; remove what follows its closing parenthesis"
        }
        RonError::ExpectedMapColon => "write `key: value`",
        RonError::ExpectedNamedStructLike(_) | RonError::ExpectedStructLike => {
            "a config is one `( ... )` block with at least uplink, downstream and prefixes; start from examples/minimal.ron"
        }
        _ => "compare with the annotated example examples/ndprelay.ron",
    }
}

/// Role-like words people write for interfaces, mapped to the key they meant.
const ROLE_ALIASES: &[(&str, &str)] = &[
    ("upstream", "uplink"),
    ("wan", "uplink"),
    ("uplinks", "uplink"),
    ("external", "uplink"),
    ("downlink", "downstream"),
    ("downlinks", "downstream"),
    ("downstreams", "downstream"),
    ("lan", "downstream"),
    ("internal", "downstream"),
    ("guests", "downstream"),
    ("interfaces", "downstream"),
    ("ports", "downstream"),
];

fn unknown_key_hint(found: &str, expected: &[&str]) -> String {
    let valid = expected.join(", ");
    if let Some((_, meant)) = ROLE_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(found))
        .filter(|(_, meant)| expected.contains(meant))
    {
        return format!(
            "interfaces are given by role: one `uplink: \"eth0\"` (faces the router) and `downstream: [\"br0\", ...]` (faces hosts); did you mean `{meant}`?"
        );
    }
    match nearest(found, expected) {
        Some(best) => format!("did you mean `{best}`? valid keys: {valid}"),
        None => format!("valid keys: {valid}"),
    }
}

fn one_of_hint(found: &str, expected: &[&str]) -> String {
    let valid = expected.join(", ");
    match nearest(found, expected) {
        Some(best) => format!("did you mean `{best}`? valid values: {valid}"),
        None => format!("valid values: {valid}"),
    }
}

/// The closest candidate by edit distance (case-insensitive), if close enough to be a typo.
fn nearest<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let found = found.to_ascii_lowercase();
    let typo = candidates
        .iter()
        .map(|c| (edit_distance(&found, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    // Else an abbreviation: `retrans` for `retrans_timer`.
    typo.or_else(|| {
        candidates
            .iter()
            .find(|c| found.len() >= 3 && c.to_ascii_lowercase().starts_with(&found))
            .copied()
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur.push(subst.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

struct Validator<'a> {
    file: Arc<str>,
    map: &'a SourceMap,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Validator<'_> {
    fn at(&self, pos: Option<Pos>) -> Location {
        Location {
            file: Arc::clone(&self.file),
            pos,
        }
    }

    fn invalid(&mut self, path: &str, message: String, hint: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            at: self.at(self.map.value(path)),
            message,
            path: path.to_owned(),
            hint: hint.into(),
        });
    }

    fn warn(&mut self, path: &str, message: String, hint: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            at: self.at(self.map.key(path)),
            message,
            path: path.to_owned(),
            hint: hint.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        self.interfaces(&raw.uplink, &raw.downstream);
        let prefixes = self.prefixes(&raw.prefixes, &raw.static_prefixes);
        let tunables = self.tunables(&raw);
        let fast_path = raw.fast_path.as_deref().and_then(|text| {
            let d = self.duration("fast_path", text)?;
            if d > tunables.reachable_time {
                self.invalid(
                    "fast_path",
                    format!(
                        "fast_path {text} is longer than timers.reachable_time ({})",
                        super::format_duration(tunables.reachable_time)
                    ),
                    "answer only from bindings confirmed very recently (NDP reference §1.3); a few seconds at most",
                );
            }
            Some(d)
        });
        if raw.fast_path_in_kernel == Some(true) && fast_path.is_none() {
            self.invalid(
                "fast_path_in_kernel",
                "fast_path_in_kernel is set but fast_path is not".to_owned(),
                "set fast_path too, e.g. fast_path: \"2s\", or remove fast_path_in_kernel",
            );
        }
        let install_routes = match (raw.forwarding, raw.install_routes) {
            (Forwarding::Kernel, r) => r.unwrap_or(true),
            (mode, Some(_)) => {
                self.warn(
                    "install_routes",
                    format!("install_routes is ignored with forwarding: {mode:?}"),
                    "install_routes only applies to forwarding: Kernel; remove it",
                );
                false
            }
            (_, None) => false,
        };
        let control_socket = match raw.control_socket {
            None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
            Some(s) => {
                self.path_value("control_socket", &s);
                if !s.is_empty() && !s.starts_with('/') {
                    self.warn(
                        "control_socket",
                        format!("control_socket \"{s}\" is relative to the working directory"),
                        "`ndprelay status` must find the same path; prefer an absolute one such as /run/ndprelay.sock",
                    );
                }
                PathBuf::from(s)
            }
        };
        let dump_dir = raw.dump_dir.map(|d| {
            self.path_value("dump_dir", &d);
            PathBuf::from(d)
        });
        let state_file = raw.state_file.map(|f| {
            self.path_value("state_file", &f);
            if !f.is_empty() && !f.starts_with('/') {
                self.invalid(
                    "state_file",
                    format!("state_file \"{f}\" is not an absolute path"),
                    "give an absolute path, e.g. \"/var/lib/ndprelay/state\" (the shipped \
                     systemd unit creates /var/lib/ndprelay with StateDirectory=ndprelay)",
                );
            }
            PathBuf::from(f)
        });
        let metrics_listen = raw.metrics_listen.and_then(|a| self.metrics_listen(&a));
        Config {
            source: self.file.to_string(),
            uplink: raw.uplink,
            downstream: raw.downstream,
            prefixes,
            ra_relay: raw.ra_relay,
            forwarding: raw.forwarding,
            install_routes,
            ra_source: match raw.ra_source {
                RaSourceKey::Router => RaSource::KeepRouter,
                RaSourceKey::Relay => RaSource::Relay,
            },
            fast_path,
            fast_path_in_kernel: in_kernel(raw.fast_path_in_kernel),
            relay_in_kernel: in_kernel(raw.relay_in_kernel),
            in_kernel_attach: raw.in_kernel_attach,
            honour_proxy_bit: raw.honour_proxy_bit,
            disable_on_rogue_ra: raw.disable_on_rogue_ra,
            announce: raw.announce,
            seed: raw.seed,
            tunables,
            control_socket,
            fix_sysctls: raw.fix_sysctls,
            dump_dir,
            state_file,
            log: raw.log.map(Into::into),
            log_format: raw.log_format,
            metrics_listen,
            warnings: Vec::new(),
        }
    }

    /// `metrics_listen`: an address and a port (not 0: Prometheus needs to know it).
    fn metrics_listen(&mut self, text: &str) -> Option<std::net::SocketAddr> {
        match text.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => Some(a),
            Ok(_) => {
                self.invalid(
                    "metrics_listen",
                    format!("metrics_listen \"{text}\" has port 0"),
                    "give the port Prometheus scrapes, e.g. \"[::1]:9630\"",
                );
                None
            }
            Err(_) => {
                self.invalid(
                    "metrics_listen",
                    format!("metrics_listen \"{text}\" is not an address and port"),
                    METRICS_LISTEN_HINT,
                );
                None
            }
        }
    }

    fn path_value(&mut self, path: &str, value: &str) {
        if value.is_empty() {
            self.invalid(
                path,
                format!("{path} is empty"),
                "give a path, or remove the key to use the default",
            );
        }
    }

    fn interfaces(&mut self, uplink: &str, downstream: &[String]) {
        self.ifname("uplink", uplink);
        if downstream.is_empty() {
            self.invalid(
                "downstream",
                "no downstream interface".to_owned(),
                "list at least one interface facing hosts, e.g. downstream: [\"br0\"]",
            );
        }
        for (i, name) in downstream.iter().enumerate() {
            let path = format!("downstream[{i}]");
            if !self.ifname(&path, name) {
                continue;
            }
            if name == uplink {
                self.invalid(
                    &path,
                    format!("`{name}` is the uplink and cannot also be downstream"),
                    "the uplink faces the router, downstream ports face hosts; remove it from downstream",
                );
            } else if let Some(first) = downstream[..i].iter().position(|n| n == name) {
                self.invalid(
                    &path,
                    format!("interface `{name}` is listed twice (also downstream[{first}])"),
                    "list each downstream interface once",
                );
            }
        }
    }

    /// Linux `dev_valid_name` rules; returns whether the name is valid.
    fn ifname(&mut self, path: &str, name: &str) -> bool {
        match interface_name_problem(name) {
            None => true,
            Some(problem) => {
                self.invalid(
                    path,
                    problem,
                    "use the name `ip link` shows, e.g. \"eth0\" or \"br0\" (no '/', ':' or spaces, at most 15 bytes)",
                );
                false
            }
        }
    }

    fn prefixes(&mut self, relay: &[String], fixed: &[String]) -> Vec<PrefixRule> {
        let mut rules: Vec<(String, PrefixRule)> = Vec::new();
        let all = relay
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("prefixes[{i}]"), t, PrefixMode::Relay))
            .chain(
                fixed
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("static_prefixes[{i}]"), t, PrefixMode::Static)),
            );
        for (path, text, mode) in all {
            let Some(prefix) = self.prefix(&path, text) else {
                continue;
            };
            if let Some((other_path, other)) = rules
                .iter()
                .find(|(_, r)| r.prefix.contains(&prefix) || prefix.contains(&r.prefix))
            {
                self.errors.push(ConfigError::PrefixOverlap {
                    at: self.at(self.map.value(&path)),
                    prefix,
                    path: path.clone(),
                    other: other.prefix,
                    other_path: other_path.clone(),
                });
                continue;
            }
            rules.push((path, PrefixRule { prefix, mode }));
        }
        if relay.is_empty() && fixed.is_empty() {
            self.errors.push(ConfigError::MissingKey {
                at: self.at(None),
                key: "prefixes".to_owned(),
                section: String::new(),
                hint: "list the on-link prefix the uplink router serves, e.g. prefixes: [\"2001:db8:1::/64\"]; without one nothing is proxied".to_owned(),
            });
        }
        rules.into_iter().map(|(_, r)| r).collect()
    }

    fn prefix(&mut self, path: &str, text: &str) -> Option<Ipv6Net> {
        let example = "write an IPv6 prefix such as \"2001:db8:1::/64\"";
        let net = match text.trim().parse::<Ipv6Net>() {
            Ok(net) => net,
            Err(_) => {
                let (message, hint) = if text.parse::<Ipv4Net>().is_ok()
                    || text.parse::<std::net::Ipv4Addr>().is_ok()
                {
                    (
                        format!("\"{text}\" is an IPv4 prefix"),
                        "ndprelay proxies IPv6 Neighbor Discovery only; IPv4 (ARP) is out of scope"
                            .to_owned(),
                    )
                } else if let Ok(addr) = text.trim().parse::<Ipv6Addr>() {
                    (
                        format!("\"{text}\" has no prefix length"),
                        format!("add the length, e.g. \"{addr}/64\""),
                    )
                } else {
                    (
                        format!("\"{text}\" is not an IPv6 prefix"),
                        example.to_owned(),
                    )
                };
                self.invalid(path, message, hint);
                return None;
            }
        };
        if net.addr() != net.network() {
            self.invalid(
                path,
                format!("prefix {net} has host bits set"),
                format!("did you mean \"{}\"?", net.trunc()),
            );
            return None;
        }
        let special: &[(&str, &str)] = &[
            (
                "fe80::/10",
                "link-local addresses are never proxied by a prefix rule (see ra_source)",
            ),
            (
                "ff00::/8",
                "multicast is not a prefix the relay can answer for",
            ),
            ("::/128", "the unspecified address is not a prefix"),
            ("::1/128", "loopback is not a prefix"),
        ];
        for (range, why) in special {
            // The table holds valid literals.
            let range: Ipv6Net = range.parse().expect("valid literal");
            if range.contains(&net) || (net.prefix_len() > 0 && net.contains(&range)) {
                self.invalid(path, format!("prefix {net} is not global unicast"), *why);
                return None;
            }
        }
        if net.prefix_len() == 0 {
            self.invalid(
                path,
                format!("prefix {net} would proxy every IPv6 address"),
                "list only the prefix the uplink router treats as on-link, e.g. the ISP's /64",
            );
            return None;
        }
        if net.prefix_len() > 64 {
            self.warnings.push(ConfigWarning {
                at: self.at(self.map.value(path)),
                message: format!("prefix {net} is longer than /64"),
                path: path.to_owned(),
                hint:
                    "SLAAC hosts need a /64; a longer prefix only suits statically numbered hosts"
                        .to_owned(),
            });
        }
        Some(net)
    }

    fn duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) if d == Duration::ZERO => {
                let hint = if path == "fast_path" {
                    "remove fast_path (or write fast_path: None) to turn the fast path off"
                } else {
                    "give a positive duration, or remove the key for the default"
                };
                self.invalid(path, format!("{path} must be longer than 0"), hint);
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.invalid(path, format!("bad duration \"{text}\": {e}"), DURATION_HINT);
                None
            }
        }
    }

    fn tunables(&mut self, raw: &RawConfig) -> Tunables {
        let mut t = Tunables::default();
        let timers = &raw.timers;
        for (key, text, slot) in [
            ("retrans_timer", &timers.retrans_timer, &mut t.retrans_timer),
            (
                "reachable_time",
                &timers.reachable_time,
                &mut t.reachable_time,
            ),
            (
                "delay_first_probe",
                &timers.delay_first_probe,
                &mut t.delay_first_probe,
            ),
            (
                "stale_lifetime",
                &timers.stale_lifetime,
                &mut t.stale_lifetime,
            ),
            (
                "negative_cache",
                &timers.negative_cache,
                &mut t.negative_cache,
            ),
            (
                "ra_min_interval",
                &timers.ra_min_interval,
                &mut t.ra_min_interval,
            ),
            (
                "proxy_disable_hold",
                &timers.proxy_disable_hold,
                &mut t.proxy_disable_hold,
            ),
            ("ra_wait", &timers.ra_wait, &mut t.ra_wait),
            (
                "own_ra_interval",
                &timers.own_ra_interval,
                &mut t.own_ra_interval,
            ),
        ] {
            if let Some(d) = text
                .as_deref()
                .and_then(|text| self.duration(&format!("timers.{key}"), text))
            {
                *slot = d;
            }
        }
        if timers.own_ra_interval.is_none() && t.own_ra_interval >= t.proxy_disable_hold {
            // A lab's short hold: repeat within it, as the default does within 60min.
            t.own_ra_interval = Duration::from_micros(t.proxy_disable_hold.total_micros() / 2);
        }
        if t.own_ra_interval == Duration::ZERO || t.own_ra_interval >= t.proxy_disable_hold {
            self.invalid(
                "timers.own_ra_interval",
                "own_ra_interval must be above zero and shorter than proxy_disable_hold".to_owned(),
                "other proxies on a segment must hear the relay's P-bit RA again before their \
                 RFC 4389 §4.1.3.3 hold ends, or they start proxying there too (a loop); \
                 the default is 10min",
            );
        }
        if t.reachable_time > MAX_REACHABLE_TIME {
            self.invalid(
                "timers.reachable_time",
                "reachable_time is longer than 1h".to_owned(),
                "RFC 4861 §6.2.1 caps ReachableTime at MAX_REACHABLE_TIME (3,600,000 ms)",
            );
        }

        let l = &raw.limits;
        if let Some(n) = self.count("limits.max_probes", l.max_probes, u64::from(u8::MAX)) {
            t.max_probes = u8::try_from(n).unwrap_or(u8::MAX);
        }
        let usize_max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        for (key, value, slot) in [
            ("max_bindings", l.max_bindings, &mut t.max_bindings),
            (
                "max_bindings_per_mac",
                l.max_bindings_per_mac,
                &mut t.max_bindings_per_mac,
            ),
            ("max_pending", l.max_pending, &mut t.max_pending),
            (
                "max_pending_per_port",
                l.max_pending_per_port,
                &mut t.max_pending_per_port,
            ),
        ] {
            if let Some(n) = self.count(&format!("limits.{key}"), value, usize_max) {
                *slot = usize::try_from(n).unwrap_or(usize::MAX);
            }
        }
        for (key, value, slot) in [
            ("ns_rate", l.ns_rate, &mut t.ns_rate),
            ("ns_burst", l.ns_burst, &mut t.ns_burst),
            (
                "ns_rate_per_port",
                l.ns_rate_per_port,
                &mut t.ns_rate_per_port,
            ),
            (
                "ns_burst_per_port",
                l.ns_burst_per_port,
                &mut t.ns_burst_per_port,
            ),
            ("rs_rate", l.rs_rate, &mut t.rs_rate),
        ] {
            if let Some(n) = self.count(&format!("limits.{key}"), value, u64::from(u32::MAX)) {
                *slot = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        if let Some(n) = self.count(
            "limits.max_bindings_per_port",
            l.max_bindings_per_port,
            usize_max,
        ) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n >= t.max_bindings {
                self.invalid(
                    "limits.max_bindings_per_port",
                    format!(
                        "max_bindings_per_port ({n}) must be below max_bindings ({})",
                        t.max_bindings
                    ),
                    "no single port may hold the whole binding table (a guest could fill it); remove the key for three quarters of max_bindings",
                );
            } else {
                t.max_bindings_per_port = n;
            }
        } else {
            t.max_bindings_per_port = t.max_bindings - t.max_bindings / 4;
        }
        if t.max_pending_per_port > t.max_pending {
            let path = if l.max_pending_per_port.is_some() {
                "limits.max_pending_per_port"
            } else {
                "limits.max_pending"
            };
            self.invalid(
                path,
                format!(
                    "max_pending_per_port ({}) exceeds max_pending ({})",
                    t.max_pending_per_port, t.max_pending
                ),
                "one port must not be able to take every pending slot (RFC 6583 §7); keep max_pending_per_port below max_pending",
            );
        }
        t
    }

    /// A count in `1..=max`, or `None` (default kept) when absent or invalid.
    fn count(&mut self, path: &str, value: Option<u64>, max: u64) -> Option<u64> {
        let n = value?;
        if n == 0 || n > max {
            self.invalid(
                path,
                format!("{path} is {n}; it must be between 1 and {max}"),
                "remove the key to use the default (see examples/ndprelay.ron)",
            );
            return None;
        }
        Some(n)
    }
}

/// `relay_in_kernel`, `fast_path_in_kernel`: not set, `true`, `false`.
fn in_kernel(raw: Option<bool>) -> InKernel {
    match raw {
        None => InKernel::WhenPossible,
        Some(true) => InKernel::Always,
        Some(false) => InKernel::Never,
    }
}

#[cfg(test)]
pub(super) fn edit_distance_for_test(a: &str, b: &str) -> usize {
    edit_distance(a, b)
}
