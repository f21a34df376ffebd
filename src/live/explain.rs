//! `ndprelay explain ADDR` in the live driver: what the daemon thread adds to the
//! engine's facts about one address (the kernel's FIB entry for it, the sysctls it needs
//! now), and the client that asks the daemon and prints the answer. The wording is
//! `crate::explain`'s, shared with `replay --explain`.

use std::io::Write;
use std::net::Ipv6Addr;
use std::path::Path;

use super::netlink::Netlink;
use super::sysctl::{self, UplinkRas};
use super::{Error, control};
use crate::config::Config;
use crate::engine::DataPlane;
use crate::explain::{FibLookup, FibRoute, HostProblem, render_text};

/// The kernel's /128 for `addr` (`ip -6 route get fibmatch`), its device named from
/// `ports` (name, ifindex) or as `ifindex N`.
pub(super) fn fib_lookup(
    rtnl: &mut Netlink,
    addr: Ipv6Addr,
    ports: &[(String, Option<i32>)],
) -> FibLookup {
    match rtnl.host_route(addr) {
        Ok(None) => FibLookup::Found(None),
        Ok(Some(r)) => {
            let dev = ports
                .iter()
                .find(|(_, ix)| *ix == Some(r.oif))
                .map_or_else(|| format!("ifindex {}", r.oif), |(n, _)| n.clone());
            FibLookup::Found(Some(FibRoute {
                dev,
                protocol: r.protocol,
            }))
        }
        Err(e) => FibLookup::Failed(format!("{e:#}")),
    }
}

/// The sysctls the relay needs that are wrong now (forwarding, `proxy_ndp` on its
/// ports): someone changed them after the start checked them.
pub(super) fn host_problems(config: &Config) -> Vec<HostProblem> {
    let downstream: Vec<&str> = config.downstream.iter().map(String::as_str).collect();
    let forwarding = config.data_plane() == DataPlane::KernelRoutes;
    let reqs: Vec<_> = sysctl::requirements(
        &config.uplink,
        &downstream,
        forwarding,
        UplinkRas::default(),
    )
    .into_iter()
    // accept_ra depends on what the host took from RAs at start; start-up said it.
    .filter(|r| !r.warn_only)
    .collect();
    sysctl::check(&reqs, sysctl::read_proc)
        .into_iter()
        .map(|p| HostProblem {
            problem: format!(
                "{} is {}, ndprelay needs {} ({})",
                p.req.key, p.current, p.req.fix, p.req.why
            ),
            command: p.command(),
        })
        .collect()
}

/// `ndprelay explain`: asks the daemon on `socket` about `addr` and prints the answer.
pub fn explain(
    socket: &Path,
    addr: Ipv6Addr,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let e = control::request_explain(socket, addr)?;
    let text = if json {
        // Serialising a document we just read cannot fail.
        serde_json::to_string_pretty(&e).unwrap_or_default() + "\n"
    } else {
        render_text(&e)
    };
    out.write_all(text.as_bytes())
        .map_err(Error::io("writing the explanation"))
}
