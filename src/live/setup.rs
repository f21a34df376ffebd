//! What start-up and reloads find out before the relay runs: the configured ports
//! resolved to interfaces (all problems in one message), the sysctls checked (and with
//! `fix_sysctls` fixed), the engine's config and the capture filter for the data plane.

use std::net::Ipv6Addr;

use super::netlink::consts::{ARPHRD_ETHER, IFA_F_PERMANENT, RTPROT_RA};
use super::netlink::{Addr, Link, Netlink};
use super::ports::{CaptureFilter, Port};
use super::{Error, InterfaceProblem, bpf, sysctl};
use crate::config::{Config, ResolvedPort};
use crate::engine::{DataPlane, EngineConfig, Role};
use crate::wire::{Mac, is_link_local};

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

/// Checks (and with `fix_sysctls`, fixes) the sysctls; refuses with the commands.
/// `links`, `addrs` and `rtnl` tell which interfaces the host configures from RAs.
pub(super) fn ensure_sysctls(
    config: &Config,
    rtnl: &mut Netlink,
    links: &[Link],
    addrs: &[Addr],
) -> Result<(), Error> {
    let downstream: Vec<&str> = config.downstream.iter().map(String::as_str).collect();
    let forwarding = config.data_plane() == DataPlane::KernelRoutes;
    let mut reqs = sysctl::requirements(&config.uplink, &downstream, forwarding);
    if forwarding && !sysctl::forwarding_on(sysctl::read_proc) {
        let ra_routes = rtnl.routes_with_protocol(RTPROT_RA)?;
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
    let mut problems = sysctl::check(&reqs, sysctl::read_proc);
    if problems.is_empty() {
        return Ok(());
    }
    if !config.fix_sysctls {
        return Err(sysctl::SysctlError::Refused(problems).into());
    }
    sysctl::fix_order(&mut problems);
    for p in &problems {
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
