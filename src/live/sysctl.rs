//! The kernel settings ndprelay relies on: which ones, how to check them, the exact
//! command that fixes each, and fixing them when the config allows it.
//!
//! - `net.ipv6.conf.all.forwarding=1` when the kernel forwards data over our /128 routes;
//! - `net.ipv6.conf.<port>.proxy_ndp=0` on every port: with it on, the kernel answers NS
//!   from its proxy table as well, and two answerers confuse every cache;
//! - `net.ipv6.conf.<uplink>.accept_ra` not 1 when forwarding: a router ignores RAs
//!   with `accept_ra=1`, so a host that configures the uplink from them would silently
//!   lose its default route; 2 keeps it. Start-up refuses only when the host depends on
//!   the uplink's RAs now (an RA-learned default route or an autoconfigured address on
//!   it, [`UplinkRas`]); a statically configured uplink gets a warning with the same fix.
//! - the same for every other interface the host configures from RAs now (a route
//!   learned from an RA, `proto ra`, or an autoconfigured address on it), when
//!   `all.forwarding` is about to go from 0 to 1: a SLAAC management NIC would keep its
//!   default route only until the route's lifetime ran out ([`ra_dependents`]).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One sysctl, named by its components (an interface name may contain dots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(Vec<String>);

impl Key {
    fn conf(iface: &str, leaf: &str) -> Self {
        Self(
            ["net", "ipv6", "conf", iface, leaf]
                .map(String::from)
                .to_vec(),
        )
    }

    /// The file under `/proc/sys`.
    pub fn path(&self) -> PathBuf {
        let mut p = PathBuf::from("/proc/sys");
        p.extend(&self.0);
        p
    }
}

impl fmt::Display for Key {
    /// sysctl(8) spelling: dots between components, dots inside a component as `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|c| c.replace('.', "/")).collect();
        f.write_str(&parts.join("."))
    }
}

/// One setting ndprelay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Which sysctl.
    pub key: Key,
    /// Values that are fine.
    pub accept: Vec<u32>,
    /// The value a fix writes.
    pub fix: u32,
    /// Why ndprelay needs it.
    pub why: &'static str,
    /// Not met, it is reported with its fix but does not stop the start: nothing on the
    /// host breaks without it now.
    pub warn_only: bool,
}

/// A requirement the running kernel does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The requirement.
    pub req: Requirement,
    /// What the kernel has now (or why it could not be read).
    pub current: String,
}

impl Problem {
    /// The exact command that fixes it.
    pub fn command(&self) -> String {
        format!("sysctl -w {}={}", self.req.key, self.req.fix)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wants = if self.req.warn_only {
            "recommended"
        } else {
            "ndprelay needs"
        };
        write!(
            f,
            "{} is {}, {wants} {} ({}); fix: {}",
            self.req.key,
            self.current,
            self.req.fix,
            self.req.why,
            self.command()
        )
    }
}

/// What the host's own configuration of the uplink takes from the uplink's RAs now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UplinkRas {
    /// A default route via the uplink learned from an RA (main table, `proto ra`).
    pub ra_default_route: bool,
    /// Autoconfigured addresses on the uplink: not link-local, with a lifetime
    /// (`dynamic` in `ip addr`: SLAAC, privacy addresses).
    pub autoconf_addrs: usize,
}

impl UplinkRas {
    /// Whether the host loses something once it ignores the uplink's RAs.
    pub fn depended_on(&self) -> bool {
        self.ra_default_route || self.autoconf_addrs > 0
    }
}

/// The uplink's `accept_ra` requirement with forwarding on: `accept_ra=1` ignores RAs
/// then, which breaks the host only if it lives on them now (`ras`); otherwise the
/// same fix is only recommended.
pub fn uplink_accept_ra(uplink: &str, ras: UplinkRas) -> Requirement {
    let (why, warn_only) = if ras.depended_on() {
        (
            "with forwarding on, accept_ra=1 makes the host ignore the uplink's RAs, and the \
             default route or address it learned from them ends with its lifetime",
            false,
        )
    } else {
        (
            "with forwarding on, accept_ra=1 makes the host ignore the uplink's RAs; no \
             default route or address on it comes from one now, so the relay starts, but \
             the host will not configure the uplink from RAs",
            true,
        )
    };
    Requirement {
        key: Key::conf(uplink, "accept_ra"),
        accept: vec![0, 2],
        fix: 2,
        why,
        warn_only,
    }
}

/// What ndprelay needs for these ports; `uplink_ras`: what the host takes from the
/// uplink's RAs now.
pub fn requirements(
    uplink: &str,
    downstream: &[&str],
    kernel_forwarding: bool,
    uplink_ras: UplinkRas,
) -> Vec<Requirement> {
    let mut out = Vec::new();
    if kernel_forwarding {
        out.push(Requirement {
            key: Key::conf("all", "forwarding"),
            accept: vec![1],
            fix: 1,
            why: "the kernel forwards guest traffic over the relay's /128 routes",
            warn_only: false,
        });
        out.push(uplink_accept_ra(uplink, uplink_ras));
    }
    for port in std::iter::once(uplink).chain(downstream.iter().copied()) {
        out.push(Requirement {
            key: Key::conf(port, "proxy_ndp"),
            accept: vec![0],
            fix: 0,
            why: "the relay answers for this port itself; the kernel's proxy would answer too",
            warn_only: false,
        });
    }
    out
}

/// What the host learned on one interface from Router Advertisements, found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaUse<'a> {
    /// The interface.
    pub iface: &'a str,
    /// Routes on it learned from RAs (`proto ra`: the default route, on-link prefixes).
    pub ra_routes: usize,
    /// Addresses on it with a lifetime (SLAAC, privacy, DHCPv6: `dynamic` in `ip addr`).
    pub dynamic_addrs: usize,
}

/// For `all.forwarding` about to go from 0 to 1: each interface whose host relies on
/// RAs now needs `accept_ra` 0 (it does not) or 2 (go on accepting them while
/// forwarding), since with forwarding on `accept_ra=1` means ignoring them.
pub fn ra_dependents(uses: &[RaUse<'_>]) -> Vec<Requirement> {
    uses.iter()
        .filter(|u| u.ra_routes > 0 || u.dynamic_addrs > 0)
        .map(|u| Requirement {
            key: Key::conf(u.iface, "accept_ra"),
            accept: vec![0, 2],
            fix: 2,
            why: "the host configures this interface from RAs (a route or address learned \
                  from one); once forwarding is on, accept_ra=1 ignores them and it loses \
                  its default route when the route's lifetime ends",
            warn_only: false,
        })
        .collect()
}

/// `all.forwarding` itself, whose fix must come after every `accept_ra` one.
fn is_forwarding(key: &Key) -> bool {
    *key == Key::conf("all", "forwarding")
}

/// The order fixes are applied in: `all.forwarding` last, so no interface that relies on
/// RAs spends a moment with forwarding on and `accept_ra=1`.
pub fn fix_order(problems: &mut [Problem]) {
    problems.sort_by_key(|p| is_forwarding(&p.req.key));
}

/// Whether `all.forwarding` is 1 now (so nothing about to flip it).
pub fn forwarding_on(mut read: impl FnMut(&Key) -> io::Result<String>) -> bool {
    read(&Key::conf("all", "forwarding")).is_ok_and(|v| v.trim() == "1")
}

/// Reads each requirement through `read` and returns the ones not met.
pub fn check(
    reqs: &[Requirement],
    mut read: impl FnMut(&Key) -> io::Result<String>,
) -> Vec<Problem> {
    reqs.iter()
        .filter_map(|req| match read(&req.key) {
            Ok(s) => match s.trim().parse::<u32>() {
                Ok(v) if req.accept.contains(&v) => None,
                Ok(v) => Some(Problem {
                    req: req.clone(),
                    current: v.to_string(),
                }),
                Err(_) => Some(Problem {
                    req: req.clone(),
                    current: format!("unreadable ({:?})", s.trim()),
                }),
            },
            Err(e) => Some(Problem {
                req: req.clone(),
                current: format!("unreadable ({e})"),
            }),
        })
        .collect()
}

/// What start-up does about the problems found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Problems that stop the start (`fix_sysctls` off).
    pub refuse: Vec<Problem>,
    /// Problems `fix_sysctls` fixes, in the order to apply them ([`fix_order`]).
    pub fix: Vec<Problem>,
    /// Problems only reported (with their fix): the start goes on.
    pub warn: Vec<Problem>,
}

/// The decision on `problems`: with `fix_sysctls` every one is fixed (a recommended
/// setting too, as before warnings existed); without, the ones that break something
/// refuse the start and the others are warnings.
pub fn plan(problems: Vec<Problem>, fix_sysctls: bool) -> Plan {
    if fix_sysctls {
        let mut fix = problems;
        fix_order(&mut fix);
        return Plan {
            fix,
            ..Plan::default()
        };
    }
    let (warn, refuse) = problems.into_iter().partition(|p| p.req.warn_only);
    Plan {
        refuse,
        fix: Vec::new(),
        warn,
    }
}

/// Reads a sysctl from `/proc/sys`.
pub fn read_proc(key: &Key) -> io::Result<String> {
    std::fs::read_to_string(key.path())
}

/// Writes a sysctl under `/proc/sys`.
pub fn write_proc(key: &Key, value: u32) -> io::Result<()> {
    std::fs::write(key.path(), format!("{value}\n"))
}

/// Why start-up (or a reload) stops on the sysctls.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Settings are wrong and `fix_sysctls` is off: every one, with its command.
    #[error("{}", refusal(.0))]
    Refused(Vec<Problem>),
    /// `fix_sysctls` is on and writing one failed.
    #[error("cannot fix {} (run `{}` by hand)", .problem.req.key, .problem.command())]
    CannotFix {
        /// The setting.
        problem: Problem,
        /// Why the write failed.
        #[source]
        source: io::Error,
    },
}

/// The one message for a refused start: every problem with its command.
pub fn refusal(problems: &[Problem]) -> String {
    let mut s = String::from("kernel settings ndprelay needs are not in place:");
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s.push_str("\nrun the commands above, or set `fix_sysctls: true` in the config to let ndprelay apply them");
    s
}

#[cfg(test)]
mod test {
    use super::*;

    fn reader(vals: &[(&str, &str)]) -> impl FnMut(&Key) -> io::Result<String> {
        let vals: Vec<(String, String)> = vals
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &Key| {
            vals.iter()
                .find(|(n, _)| *n == k.to_string())
                .map(|(_, v)| v.clone())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    const RA_DEFAULT: UplinkRas = UplinkRas {
        ra_default_route: true,
        autoconf_addrs: 0,
    };

    /// A host with forwarding on and `accept_ra=1` on the uplink, nothing else wrong.
    fn accept_ra_1() -> impl FnMut(&Key) -> io::Result<String> {
        reader(&[
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.eth0.accept_ra", "1"),
            ("net.ipv6.conf.eth0.proxy_ndp", "0"),
            ("net.ipv6.conf.br0.proxy_ndp", "0"),
        ])
    }

    fn plan_for(ras: UplinkRas, fix_sysctls: bool) -> Plan {
        let reqs = requirements("eth0", &["br0"], true, ras);
        plan(check(&reqs, accept_ra_1()), fix_sysctls)
    }

    #[test]
    fn accept_ra_1_on_a_static_uplink_is_a_warning_with_the_fix() {
        let p = plan_for(UplinkRas::default(), false);
        assert_eq!((p.refuse.len(), p.fix.len()), (0, 0), "{p:?}");
        assert_eq!(p.warn.len(), 1, "{p:?}");
        let w = p.warn[0].to_string();
        assert!(
            w.starts_with("net.ipv6.conf.eth0.accept_ra is 1, recommended 2"),
            "{w}"
        );
        assert!(
            w.ends_with("fix: sysctl -w net.ipv6.conf.eth0.accept_ra=2"),
            "{w}"
        );
        assert!(w.contains("the relay starts"), "{w}");
    }

    #[test]
    fn accept_ra_1_refuses_when_the_uplinks_default_route_came_from_an_ra() {
        let p = plan_for(RA_DEFAULT, false);
        assert_eq!((p.warn.len(), p.fix.len()), (0, 0), "{p:?}");
        assert_eq!(p.refuse.len(), 1, "{p:?}");
        assert_eq!(
            p.refuse[0].command(),
            "sysctl -w net.ipv6.conf.eth0.accept_ra=2"
        );
        let msg = refusal(&p.refuse);
        assert!(
            msg.contains("net.ipv6.conf.eth0.accept_ra is 1, ndprelay needs 2"),
            "{msg}"
        );
        assert!(msg.contains("default route or address"), "{msg}");
    }

    #[test]
    fn accept_ra_1_refuses_when_the_uplink_has_an_autoconfigured_address() {
        let slaac = UplinkRas {
            ra_default_route: false,
            autoconf_addrs: 1,
        };
        let p = plan_for(slaac, false);
        assert_eq!(p.refuse.len(), 1, "{p:?}");
        assert!(p.warn.is_empty(), "{p:?}");
        assert!(slaac.depended_on() && !UplinkRas::default().depended_on());
    }

    #[test]
    fn fix_sysctls_fixes_accept_ra_whether_it_refuses_or_warns() {
        for ras in [UplinkRas::default(), RA_DEFAULT] {
            let p = plan_for(ras, true);
            assert!(p.refuse.is_empty() && p.warn.is_empty(), "{p:?}");
            let cmds: Vec<String> = p.fix.iter().map(Problem::command).collect();
            assert_eq!(cmds, vec!["sysctl -w net.ipv6.conf.eth0.accept_ra=2"]);
        }
    }

    #[test]
    fn a_warning_never_hides_a_refusal_and_fixes_keep_forwarding_last() {
        let reqs = requirements("eth0", &["br0"], true, UplinkRas::default());
        let problems = check(
            &reqs,
            reader(&[
                ("net.ipv6.conf.all.forwarding", "0"),
                ("net.ipv6.conf.eth0.accept_ra", "1"),
                ("net.ipv6.conf.eth0.proxy_ndp", "0"),
                ("net.ipv6.conf.br0.proxy_ndp", "1"),
            ]),
        );
        let p = plan(problems.clone(), false);
        let keys = |v: &[Problem]| v.iter().map(|p| p.req.key.to_string()).collect::<Vec<_>>();
        assert_eq!(
            keys(&p.refuse),
            [
                "net.ipv6.conf.all.forwarding",
                "net.ipv6.conf.br0.proxy_ndp"
            ]
        );
        assert_eq!(keys(&p.warn), ["net.ipv6.conf.eth0.accept_ra"]);
        let p = plan(problems, true);
        assert_eq!(
            keys(&p.fix),
            [
                "net.ipv6.conf.eth0.accept_ra",
                "net.ipv6.conf.br0.proxy_ndp",
                "net.ipv6.conf.all.forwarding"
            ]
        );
    }

    #[test]
    fn all_good_means_no_problem() {
        let reqs = requirements("eth0", &["br0"], true, UplinkRas::default());
        let p = check(
            &reqs,
            reader(&[
                ("net.ipv6.conf.all.forwarding", "1\n"),
                ("net.ipv6.conf.eth0.accept_ra", "2\n"),
                ("net.ipv6.conf.eth0.proxy_ndp", "0\n"),
                ("net.ipv6.conf.br0.proxy_ndp", "0\n"),
            ]),
        );
        assert_eq!(p, vec![]);
    }

    #[test]
    fn each_problem_names_the_exact_command() {
        let reqs = requirements("eth0", &["br0", "vlan.10"], true, RA_DEFAULT);
        let p = check(
            &reqs,
            reader(&[
                ("net.ipv6.conf.all.forwarding", "0"),
                ("net.ipv6.conf.eth0.accept_ra", "1"),
                ("net.ipv6.conf.eth0.proxy_ndp", "0"),
                ("net.ipv6.conf.br0.proxy_ndp", "1"),
                ("net.ipv6.conf.vlan/10.proxy_ndp", "0"),
            ]),
        );
        let cmds: Vec<String> = p.iter().map(Problem::command).collect();
        assert_eq!(
            cmds,
            vec![
                "sysctl -w net.ipv6.conf.all.forwarding=1",
                "sysctl -w net.ipv6.conf.eth0.accept_ra=2",
                "sysctl -w net.ipv6.conf.br0.proxy_ndp=0",
            ]
        );
        let msg = refusal(&p);
        assert!(
            msg.contains("net.ipv6.conf.br0.proxy_ndp is 1, ndprelay needs 0"),
            "{msg}"
        );
        assert!(msg.contains("fix_sysctls"), "{msg}");
    }

    #[test]
    fn interfaces_living_on_ras_get_accept_ra_2_before_forwarding_goes_on() {
        let uses = [
            RaUse {
                iface: "mgmt0",
                ra_routes: 1,
                dynamic_addrs: 0,
            },
            RaUse {
                iface: "mgmt1",
                ra_routes: 0,
                dynamic_addrs: 2,
            },
            RaUse {
                iface: "static0",
                ra_routes: 0,
                dynamic_addrs: 0,
            },
            RaUse {
                iface: "off0",
                ra_routes: 1,
                dynamic_addrs: 1,
            },
        ];
        let mut reqs = requirements("eth0", &["br0"], true, UplinkRas::default());
        reqs.extend(ra_dependents(&uses));
        let mut p = check(
            &reqs,
            reader(&[
                ("net.ipv6.conf.all.forwarding", "0"),
                ("net.ipv6.conf.eth0.accept_ra", "2"),
                ("net.ipv6.conf.eth0.proxy_ndp", "0"),
                ("net.ipv6.conf.br0.proxy_ndp", "0"),
                ("net.ipv6.conf.mgmt0.accept_ra", "1"),
                ("net.ipv6.conf.mgmt1.accept_ra", "1"),
                ("net.ipv6.conf.off0.accept_ra", "0"),
            ]),
        );
        fix_order(&mut p);
        let cmds: Vec<String> = p.iter().map(Problem::command).collect();
        assert_eq!(
            cmds,
            vec![
                "sysctl -w net.ipv6.conf.mgmt0.accept_ra=2",
                "sysctl -w net.ipv6.conf.mgmt1.accept_ra=2",
                "sysctl -w net.ipv6.conf.all.forwarding=1",
            ]
        );
        assert!(
            p[0].to_string()
                .contains("configures this interface from RAs")
        );
        assert!(!forwarding_on(reader(&[(
            "net.ipv6.conf.all.forwarding",
            "0\n"
        )])));
        assert!(forwarding_on(reader(&[(
            "net.ipv6.conf.all.forwarding",
            "1\n"
        )])));
    }

    #[test]
    fn dotted_interface_names_map_to_proc_paths() {
        let k = Key::conf("vlan.10", "proxy_ndp");
        assert_eq!(
            k.path(),
            PathBuf::from("/proc/sys/net/ipv6/conf/vlan.10/proxy_ndp")
        );
        assert_eq!(k.to_string(), "net.ipv6.conf.vlan/10.proxy_ndp");
    }

    #[test]
    fn without_kernel_forwarding_only_proxy_ndp_matters() {
        let reqs = requirements("eth0", &["br0"], false, RA_DEFAULT);
        let keys: Vec<String> = reqs.iter().map(|r| r.key.to_string()).collect();
        assert_eq!(
            keys,
            vec![
                "net.ipv6.conf.eth0.proxy_ndp",
                "net.ipv6.conf.br0.proxy_ndp"
            ]
        );
        let p = check(&reqs, reader(&[("net.ipv6.conf.eth0.proxy_ndp", "0")]));
        assert_eq!(p.len(), 1);
        assert!(p[0].current.starts_with("unreadable"));
    }
}
