//! What start-up and reloads find out before the relay runs: the configured ports
//! resolved to interfaces (all problems in one message), the sysctls checked (and with
//! `fix_sysctls` fixed), the engine's config and the capture filter for the data plane.

use std::net::Ipv6Addr;

use super::netlink::consts::{ARPHRD_ETHER, IFA_F_PERMANENT, RTPROT_RA};
use super::netlink::{Addr, Link, Netlink, Route};
use super::ports::{CaptureFilter, Port};
use super::sysctl::UplinkRas;
use super::{Error, InterfaceProblem, bpf, sysctl};
use crate::config::{Config, ResolvedPort};
use crate::engine::{DataPlane, EngineConfig, Role};
use crate::wire::{Mac, is_link_local};

/// The kernel's main routing table.
const RT_TABLE_MAIN: u32 = 254;

fn resolve_link_local(addrs: &[Addr], ifindex: i32, mac: Mac) -> Ipv6Addr {
    addrs
        .iter()
        .filter(|a| a.index == ifindex && is_link_local(a.addr))
        .max_by_key(|a| a.is_usable())
        .map_or_else(|| mac.link_local(), |a| a.addr)
}

/// Finds every configured interface; all problems in one message. A downstream
/// interface without link-layer addresses becomes a routed port.
pub(super) fn resolve_ports(
    config: &Config,
    links: &[Link],
    addrs: &[Addr],
) -> Result<Vec<Port>, Error> {
    let mut ports = Vec::new();
    let mut problems = Vec::new();
    for (name, role) in config.ports() {
        match links.iter().find(|l| l.name == name) {
            None => problems.push(InterfaceProblem::Missing {
                role,
                name: name.to_owned(),
                config: config.source.clone(),
            }),
            Some(l) if role == Role::Downstream && l.is_routed() => {
                // No MAC to write anywhere: the engine never sends on the port.
                ports.push(Port {
                    name: name.to_owned(),
                    role,
                    ifindex: Some(l.index),
                    mac: Mac::default(),
                    mtu: l.mtu,
                    link_local: resolve_link_local(addrs, l.index, Mac::default()),
                    running: l.is_running(),
                    routed: true,
                    io: None,
                });
            }
            Some(l) if l.hw_type != ARPHRD_ETHER || l.mac.is_none() => {
                problems.push(InterfaceProblem::NotEthernet {
                    role,
                    name: name.to_owned(),
                    hw_type: l.hw_type,
                });
            }
            Some(l) => {
                // Checked just above: Ethernet links carry a 6-byte address.
                let mac = l.mac.unwrap_or_default();
                ports.push(Port {
                    name: name.to_owned(),
                    role,
                    ifindex: Some(l.index),
                    mac,
                    mtu: l.mtu,
                    link_local: resolve_link_local(addrs, l.index, mac),
                    running: l.is_running(),
                    routed: false,
                    io: None,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(ports)
    } else {
        Err(Error::Interfaces(problems))
    }
}

fn resolved(ports: &[Port]) -> Vec<ResolvedPort> {
    ports
        .iter()
        .map(|p| ResolvedPort {
            name: p.name.clone(),
            mac: p.mac,
            link_local: p.link_local,
            mtu: p.mtu,
            routed: p.routed,
        })
        .collect()
}

/// The engine's config for `config` on `ports`; `answering_in_kernel`,
/// `relaying_in_kernel`: whether those in-kernel programs are in use (the config says
/// whether they are wanted).
pub(super) fn engine_config(
    config: &Config,
    ports: &[Port],
    seed: u64,
    answering_in_kernel: bool,
    relaying_in_kernel: bool,
) -> Result<EngineConfig, Error> {
    let mut ec = config.engine_config(&resolved(ports))?;
    if config.seed.is_none() {
        ec.seed = seed;
    }
    ec.fast_path_in_kernel = answering_in_kernel;
    ec.relay_in_kernel = relaying_in_kernel;
    // Each decision is logged at debug level (`RUST_LOG=ndprelay=debug`), so only then
    // does the engine spend time describing them.
    ec.emit_events = log::log_enabled!(target: "ndprelay::decision", log::Level::Debug);
    Ok(ec)
}

/// What the host takes from the uplink's RAs now: an RA-learned default route via it
/// in the main table (`ra_routes` are the host's `proto ra` routes) and addresses on it
/// that are neither permanent nor link-local (SLAAC, privacy).
pub(super) fn uplink_ras(uplink: Option<&Link>, ra_routes: &[Route], addrs: &[Addr]) -> UplinkRas {
    let Some(up) = uplink else {
        return UplinkRas::default();
    };
    UplinkRas {
        ra_default_route: ra_routes
            .iter()
            .any(|r| r.oif == up.index && r.dst_len == 0 && r.table == RT_TABLE_MAIN),
        autoconf_addrs: addrs
            .iter()
            .filter(|a| {
                a.index == up.index && a.flags & IFA_F_PERMANENT == 0 && !is_link_local(a.addr)
            })
            .count(),
    }
}

/// The sysctls checked against what `config` needs, and what start-up does about each
/// problem. `links`, `addrs` and `rtnl` tell which interfaces the host configures from
/// RAs.
pub(super) fn sysctl_plan(
    config: &Config,
    rtnl: &mut Netlink,
    links: &[Link],
    addrs: &[Addr],
) -> Result<sysctl::Plan, Error> {
    let downstream: Vec<&str> = config.downstream.iter().map(String::as_str).collect();
    let forwarding = config.data_plane() == DataPlane::KernelRoutes;
    let ra_routes = if forwarding {
        rtnl.routes_with_protocol(RTPROT_RA)?
    } else {
        Vec::new()
    };
    let uplink = links.iter().find(|l| l.name == config.uplink);
    let ras = uplink_ras(uplink, &ra_routes, addrs);
    let mut reqs = sysctl::requirements(&config.uplink, &downstream, forwarding, ras);
    if forwarding && !sysctl::forwarding_on(sysctl::read_proc) {
        let uses: Vec<sysctl::RaUse<'_>> = links
            .iter()
            .filter(|l| l.name != "lo")
            .map(|l| sysctl::RaUse {
                iface: &l.name,
                ra_routes: ra_routes.iter().filter(|r| r.oif == l.index).count(),
                dynamic_addrs: addrs
                    .iter()
                    .filter(|a| a.index == l.index && a.flags & IFA_F_PERMANENT == 0)
                    .count(),
            })
            .collect();
        for r in sysctl::ra_dependents(&uses) {
            if !reqs.iter().any(|q| q.key == r.key) {
                reqs.push(r);
            }
        }
    }
    let problems = sysctl::check(&reqs, sysctl::read_proc);
    Ok(sysctl::plan(problems, config.fix_sysctls))
}

/// Checks (and with `fix_sysctls`, fixes) the sysctls; refuses with the commands, or
/// warns with them where nothing breaks now.
pub(super) fn ensure_sysctls(
    config: &Config,
    rtnl: &mut Netlink,
    links: &[Link],
    addrs: &[Addr],
) -> Result<(), Error> {
    let plan = sysctl_plan(config, rtnl, links, addrs)?;
    for p in &plan.warn {
        log::warn!("{p}");
    }
    if !plan.refuse.is_empty() {
        return Err(sysctl::SysctlError::Refused(plan.refuse).into());
    }
    for p in &plan.fix {
        sysctl::write_proc(&p.req.key, p.req.fix).map_err(|source| {
            sysctl::SysctlError::CannotFix {
                problem: p.clone(),
                source,
            }
        })?;
        // A change to the host's own settings: an operator should see every one.
        log::warn!(
            "fix_sysctls: set {}={} (was {}): {}",
            p.req.key,
            p.req.fix,
            p.current,
            p.req.why
        );
    }
    Ok(())
}

/// What `ndprelay check` says about this host's kernel settings for `config`: what
/// `run` would refuse, fix or warn about, the same words it would use.
pub(super) fn host_report(config: &Config) -> String {
    let report = || -> Result<String, Error> {
        let mut rtnl = Netlink::route()?;
        let links = rtnl.links()?;
        let missing: Vec<&str> = config
            .ports()
            .map(|(name, _)| name)
            .filter(|name| !links.iter().any(|l| l.name == *name))
            .collect();
        if !missing.is_empty() {
            return Ok(format!(
                "host:        {} not on this host, kernel settings not checked\n",
                missing.join(", ")
            ));
        }
        let addrs = rtnl.addrs()?;
        Ok(render_plan(&sysctl_plan(
            config, &mut rtnl, &links, &addrs,
        )?))
    };
    report().unwrap_or_else(|e| {
        format!(
            "host:        kernel settings not checked ({})\n",
            super::Chain(&e)
        )
    })
}

fn render_plan(plan: &sysctl::Plan) -> String {
    let mut out = String::new();
    let mut section = |title: &str, problems: &[sysctl::Problem]| {
        if !problems.is_empty() {
            out.push_str(&format!("host:        {title}\n"));
            for p in problems {
                out.push_str(&format!("  {p}\n"));
            }
        }
    };
    section(
        "`ndprelay run` would refuse to start (run the commands, or set `fix_sysctls: true`):",
        &plan.refuse,
    );
    section("`ndprelay run` will set (fix_sysctls):", &plan.fix);
    section(
        "warning (`ndprelay run` starts, and logs this):",
        &plan.warn,
    );
    if out.is_empty() {
        out.push_str("host:        kernel settings in place\n");
    }
    out
}

/// What the captures pass for `config`, and whether they need receive times (when an
/// in-kernel program is in use).
pub(super) fn filter_for(config: &Config, programs_in_use: bool) -> CaptureFilter {
    let (bpf, pcap) = match config.data_plane() {
        DataPlane::Userspace => (bpf::ipv6_filter(), bpf::IPV6_PCAP_EXPR.to_owned()),
        DataPlane::KernelRoutes | DataPlane::None => (bpf::nd_filter(), bpf::nd_pcap_expr()),
    };
    CaptureFilter {
        bpf,
        pcap,
        timestamps: programs_in_use,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::live::netlink::consts::{ARPHRD_NONE, ARPHRD_PPP};

    fn link(index: i32, name: &str, hw_type: u16, mac: Option<Mac>) -> Link {
        Link {
            index,
            name: name.into(),
            hw_type,
            mac,
            mtu: 1500,
            flags: 0x41,
            allmulti: None,
        }
    }

    fn config(text: &str) -> Config {
        Config::from_str_with_path(text, "relay.ron").unwrap()
    }

    #[test]
    fn every_missing_or_unusable_port_is_named_in_one_message() {
        let c = config(
            r#"(uplink: "wg0", downstream: ["br0", "sit0"], prefixes: ["2001:db8:1::/64"])"#,
        );
        let links = [
            link(3, "wg0", 65534, None),
            link(4, "sit0", 776, Some(Mac([0, 0, 0, 0, 0, 0]))),
        ];
        let Err(e @ Error::Interfaces(_)) = resolve_ports(&c, &links, &[]) else {
            panic!("expected a refusal");
        };
        let msg = e.to_string();
        assert!(
            msg.contains(r#"downstream port "br0" does not exist"#),
            "{msg}"
        );
        assert!(msg.contains("ip link show br0"), "{msg}");
        assert!(
            msg.contains(r#"uplink "wg0" is not an Ethernet interface"#),
            "a routed uplink is refused: {msg}"
        );
        assert!(
            msg.contains(r#"downstream port "sit0" is not an Ethernet interface"#),
            "{msg}"
        );
    }

    #[test]
    fn a_downstream_link_without_link_layer_is_a_routed_port() {
        let c = config(
            r#"(uplink: "eth0", downstream: ["br0", "tun0", "wg0", "ppp0"], prefixes: ["2001:db8:1::/64"])"#,
        );
        let links = [
            link(2, "eth0", 1, Some(Mac([2, 0, 0, 0, 0, 1]))),
            link(3, "br0", 1, Some(Mac([2, 0, 0, 0, 0, 2]))),
            link(4, "tun0", ARPHRD_NONE, None),
            link(5, "wg0", ARPHRD_NONE, None),
            link(6, "ppp0", ARPHRD_PPP, None),
        ];
        let ports = resolve_ports(&c, &links, &[]).unwrap();
        let routed: Vec<bool> = ports.iter().map(|p| p.routed).collect();
        assert_eq!(routed, [false, false, true, true, true]);
        let ec = engine_config(&c, &ports, 1, false, false).unwrap();
        assert!(ec.ports[2].routed && ec.ports[4].routed && !ec.ports[1].routed);
        crate::engine::Engine::new(ec, crate::time::Instant::ZERO)
            .expect("routed ports share no MAC with anyone");
    }

    fn addr(index: i32, a: &str, flags: u32) -> Addr {
        Addr {
            index,
            addr: a.parse().unwrap(),
            prefix_len: 64,
            flags,
        }
    }

    fn ra_route(oif: i32, dst_len: u8, table: u32) -> Route {
        Route {
            dst: Ipv6Addr::UNSPECIFIED,
            dst_len,
            oif,
            table,
            protocol: RTPROT_RA,
            priority: 1024,
            unicast: true,
        }
    }

    #[test]
    fn uplink_ras_counts_only_the_uplinks_ra_default_route_and_autoconf_addresses() {
        let up = link(2, "eth0", 1, Some(Mac([2, 0, 0, 0, 0, 1])));
        // Link-local and static addresses, an RA on-link prefix route, an RA default
        // route on another interface and one in another table: nothing taken from RAs.
        let addrs = [
            addr(2, "fe80::1", 0),
            addr(2, "2001:db8:1::5", IFA_F_PERMANENT),
            addr(3, "2001:db8:9::5", 0),
        ];
        let routes = [
            ra_route(2, 64, 254),
            ra_route(3, 0, 254),
            ra_route(2, 0, 100),
        ];
        assert_eq!(uplink_ras(Some(&up), &routes, &addrs), UplinkRas::default());
        assert_eq!(
            uplink_ras(None, &[ra_route(2, 0, 254)], &[]),
            UplinkRas::default()
        );

        let ras = uplink_ras(Some(&up), &[ra_route(2, 0, 254)], &addrs);
        assert!(ras.ra_default_route && ras.autoconf_addrs == 0);
        let slaac = [addr(2, "2001:db8:1::a:b:c:d", 0)];
        let ras = uplink_ras(Some(&up), &routes, &slaac);
        assert_eq!((ras.ra_default_route, ras.autoconf_addrs), (false, 1));
    }

    #[test]
    fn the_host_report_says_what_run_would_do() {
        let problem = |warn_only: bool| sysctl::Problem {
            req: sysctl::uplink_accept_ra(
                "eth0",
                UplinkRas {
                    ra_default_route: !warn_only,
                    autoconf_addrs: 0,
                },
            ),
            current: "1".into(),
        };
        let warn = render_plan(&sysctl::plan(vec![problem(true)], false));
        assert!(warn.starts_with("host:        warning"), "{warn}");
        assert!(
            warn.contains("fix: sysctl -w net.ipv6.conf.eth0.accept_ra=2"),
            "{warn}"
        );
        let refuse = render_plan(&sysctl::plan(vec![problem(false)], false));
        assert!(refuse.contains("would refuse to start"), "{refuse}");
        assert!(
            refuse.contains("fix: sysctl -w net.ipv6.conf.eth0.accept_ra=2"),
            "{refuse}"
        );
        let fix = render_plan(&sysctl::plan(vec![problem(false)], true));
        assert!(fix.contains("will set (fix_sysctls)"), "{fix}");
        assert_eq!(
            render_plan(&sysctl::Plan::default()),
            "host:        kernel settings in place\n"
        );
    }

    #[test]
    fn ports_take_the_kernels_link_local_or_fall_back_to_eui64() {
        let c = config(r#"(uplink: "eth0", downstream: ["br0"], prefixes: ["2001:db8:1::/64"])"#);
        let (m0, m1) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let links = [link(2, "eth0", 1, Some(m0)), link(3, "br0", 1, Some(m1))];
        let stable: Ipv6Addr = "fe80::1234".parse().unwrap();
        let addrs = [Addr {
            index: 2,
            addr: stable,
            prefix_len: 64,
            flags: 0,
        }];
        let ports = resolve_ports(&c, &links, &addrs).unwrap();
        assert_eq!(ports[0].link_local, stable);
        assert_eq!(ports[1].link_local, m1.link_local());
        assert_eq!(ports[1].role, Role::Downstream);
        assert!(ports.iter().all(|p| p.running));
    }
}
