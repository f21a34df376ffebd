//! The kernel settings ndprelay relies on: which ones, how to check them, the exact
//! command that fixes each, and fixing them when the config allows it.
//!
//! - `net.ipv6.conf.all.forwarding=1` when the kernel forwards data over our /128 routes;
//! - `net.ipv6.conf.<port>.proxy_ndp=0` on every port: with it on, the kernel answers NS
//!   from its proxy table as well, and two answerers confuse every cache;
//! - `net.ipv6.conf.<uplink>.accept_ra` not 1 when forwarding: a router ignores RAs
//!   with `accept_ra=1`, so the host would silently lose its default route; 2 keeps it.
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
        write!(
            f,
            "{} is {}, ndprelay needs {} ({}); fix: {}",
            self.req.key,
            self.current,
            self.req.fix,
            self.req.why,
            self.command()
        )
    }
}

/// What ndprelay needs for these ports.
pub fn requirements(
    uplink: &str,
    downstream: &[&str],
    kernel_forwarding: bool,
) -> Vec<Requirement> {
    let mut out = Vec::new();
    if kernel_forwarding {
        out.push(Requirement {
            key: Key::conf("all", "forwarding"),
            accept: vec![1],
            fix: 1,
            why: "the kernel forwards guest traffic over the relay's /128 routes",
        });
        out.push(Requirement {
            key: Key::conf(uplink, "accept_ra"),
            accept: vec![0, 2],
            fix: 2,
            why: "with forwarding on, accept_ra=1 makes the host ignore the uplink's RAs",
        });
    }
    for port in std::iter::once(uplink).chain(downstream.iter().copied()) {
        out.push(Requirement {
            key: Key::conf(port, "proxy_ndp"),
            accept: vec![0],
            fix: 0,
            why: "the relay answers for this port itself; the kernel's proxy would answer too",
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

    #[test]
    fn all_good_means_no_problem() {
        let reqs = requirements("eth0", &["br0"], true);
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
        let reqs = requirements("eth0", &["br0", "vlan.10"], true);
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
        let mut reqs = requirements("eth0", &["br0"], true);
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
        let reqs = requirements("eth0", &["br0"], false);
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
