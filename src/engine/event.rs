//! How an [`Event`] reads. The simulator's timeline, replay's decisions and the daemon's
//! decision log all print events through [`Event::display`], so a decision is worded the
//! same wherever it is seen; each driver only says what its ports (and MACs) are called.

use std::fmt;
use std::net::Ipv6Addr;

use super::{BindingState, Event, PortId};
use crate::wire::Mac;

/// The names a driver gives the ports and MACs an event mentions.
pub trait EventNames {
    /// Writes the name of `port` (its interface, or its segment in the simulator).
    fn port(&self, f: &mut fmt::Formatter<'_>, port: PortId) -> fmt::Result;

    /// Writes `mac` as the driver shows it (by default `02:00:00:00:00:01`).
    fn mac(&self, f: &mut fmt::Formatter<'_>, mac: Mac) -> fmt::Result {
        fmt::Display::fmt(&mac, f)
    }
}

/// Ports named by index (the config's port order); a port beyond the list is `port<N>`.
impl<S: AsRef<str>> EventNames for [S] {
    fn port(&self, f: &mut fmt::Formatter<'_>, port: PortId) -> fmt::Result {
        match self.get(port.index()) {
            Some(name) => f.write_str(name.as_ref()),
            None => write!(f, "port{}", port.0),
        }
    }
}

/// A port's name as `names` gives it, for wordings built around a `&str`.
struct PortName<'a, N: ?Sized>(&'a N, PortId);

impl<N: EventNames + ?Sized> fmt::Display for PortName<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.port(f, self.1)
    }
}

/// A duration as people write it: `5s`, `1500ms`.
struct Short(crate::time::Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.total_micros();
        match us {
            _ if us % 1_000_000 == 0 => write!(f, "{}s", us / 1_000_000),
            _ if us % 1_000 == 0 => write!(f, "{}ms", us / 1_000),
            _ => write!(f, "{us}us"),
        }
    }
}

/// An [`Event`] with the names to print it by (from [`Event::display`]).
#[derive(Debug)]
pub struct EventDisplay<'a, N: ?Sized> {
    event: &'a Event,
    names: &'a N,
}

impl Event {
    /// The event as one line of text, ports (and MACs) named by `names`.
    pub fn display<'a, N: EventNames + ?Sized>(&'a self, names: &'a N) -> EventDisplay<'a, N> {
        EventDisplay { event: self, names }
    }

    /// The address the event is about, if any (replay's `--explain` filters on it).
    pub const fn address(&self) -> Option<Ipv6Addr> {
        match *self {
            Self::Relayed { addr, .. }
            | Self::Binding { addr, .. }
            | Self::Unbound { addr, .. }
            | Self::LeftoverRoute { addr, .. } => Some(addr),
            Self::Answered { target, .. }
            | Self::AnsweredByKernel { target, .. }
            | Self::RelayedByKernel { target, .. }
            | Self::Announced { target, .. } => Some(target),
            Self::Forwarded { dst, .. } => Some(dst),
            Self::RouterRaAfterAll { router, .. } => Some(router),
            Self::Dropped { .. }
            | Self::PortProxying { .. }
            | Self::Quarantined { .. }
            | Self::NoRouterRa { .. } => None,
        }
    }
}

/// An event's fields by name, for structured logs (`log_format: Json`).
pub type EventFields = Vec<(&'static str, String)>;

impl Event {
    /// The event's kind and fields as text, ports named by `names`: what a machine
    /// reading the log filters on (`event`, `port`, `address`, `reason`, ...). The
    /// wording for people stays [`Event::display`].
    pub fn fields<N: EventNames + ?Sized>(&self, names: &N) -> EventFields {
        let port = |p: PortId| PortName(names, p).to_string();
        let mut f: EventFields = Vec::with_capacity(5);
        match self {
            Self::Dropped { port: p, reason } => {
                f.push(("event", "dropped".into()));
                f.push(("port", port(*p)));
                f.push(("reason", reason.name().into()));
            }
            Self::Relayed {
                from,
                to,
                message,
                addr,
            } => {
                f.push(("event", "relayed".into()));
                f.push(("message", (*message).into()));
                f.push(("address", addr.to_string()));
                f.push(("from", port(*from)));
                let to: Vec<String> = to.iter().map(|p| port(*p)).collect();
                f.push(("to", to.join(",")));
            }
            Self::Answered { port: p, target } => {
                f.push(("event", "answered".into()));
                f.push(("port", port(*p)));
                f.push(("address", target.to_string()));
            }
            Self::AnsweredByKernel { port: p, target } => {
                f.push(("event", "answered_by_kernel".into()));
                f.push(("port", port(*p)));
                f.push(("address", target.to_string()));
            }
            Self::RelayedByKernel {
                from,
                to,
                message,
                target,
            } => {
                f.push(("event", "relayed_by_kernel".into()));
                f.push(("message", (*message).into()));
                f.push(("address", target.to_string()));
                f.push(("from", port(*from)));
                f.push(("to", port(*to)));
            }
            Self::Binding {
                addr,
                port: p,
                mac,
                state,
            } => {
                f.push(("event", "binding".into()));
                f.push(("address", addr.to_string()));
                f.push(("port", port(*p)));
                f.push(("mac", mac.to_string()));
                f.push(("state", state.name().into()));
            }
            Self::Unbound { addr, port: p } => {
                f.push(("event", "unbound".into()));
                f.push(("address", addr.to_string()));
                f.push(("port", port(*p)));
            }
            Self::PortProxying { port: p, enabled } => {
                f.push(("event", "port_proxying".into()));
                f.push(("port", port(*p)));
                f.push(("enabled", enabled.to_string()));
            }
            Self::Quarantined { port: p, mac, .. } => {
                f.push(("event", "quarantined".into()));
                f.push(("port", port(*p)));
                f.push(("mac", mac.to_string()));
            }
            Self::LeftoverRoute { addr, port: p, .. } => {
                f.push(("event", "leftover_route".into()));
                f.push(("address", addr.to_string()));
                f.push(("port", port(*p)));
            }
            Self::NoRouterRa { uplink, .. } => {
                f.push(("event", "no_router_ra".into()));
                f.push(("port", port(*uplink)));
            }
            Self::RouterRaAfterAll { uplink, router } => {
                f.push(("event", "router_ra_after_all".into()));
                f.push(("port", port(*uplink)));
                f.push(("address", router.to_string()));
            }
            Self::Announced {
                port: p,
                target,
                bound_on,
            } => {
                f.push(("event", "announced".into()));
                f.push(("port", port(*p)));
                f.push(("address", target.to_string()));
                f.push(("bound_on", port(*bound_on)));
            }
            Self::Forwarded { from, to, dst } => {
                f.push(("event", "forwarded".into()));
                f.push(("address", dst.to_string()));
                f.push(("from", port(*from)));
                f.push(("to", port(*to)));
            }
        }
        f
    }
}

impl BindingState {
    /// The RFC 4861 §7.3.2 name of the state (`REACHABLE`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Incomplete => "INCOMPLETE",
            Self::Stale => "STALE",
            Self::Delay => "DELAY",
            Self::Probe => "PROBE",
            Self::Reachable => "REACHABLE",
        }
    }
}

impl<N: EventNames + ?Sized> fmt::Display for EventDisplay<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.names;
        match self.event {
            Event::Dropped { port, reason } => {
                f.write_str("dropped on ")?;
                n.port(f, *port)?;
                write!(f, ": {reason}")
            }
            Event::Relayed {
                from,
                to,
                message,
                addr,
            } => {
                write!(f, "{message} {addr} from ")?;
                n.port(f, *from)?;
                f.write_str(" relayed to ")?;
                for (i, p) in to.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    n.port(f, *p)?;
                }
                Ok(())
            }
            Event::Answered { port, target } => {
                write!(f, "answered for {target} on ")?;
                n.port(f, *port)
            }
            Event::AnsweredByKernel { port, target } => {
                write!(f, "left to the kernel, which answered for {target} on ")?;
                n.port(f, *port)
            }
            Event::RelayedByKernel {
                from,
                to,
                message,
                target,
            } => {
                write!(
                    f,
                    "left to the kernel, which relayed the {message} for {target} from "
                )?;
                n.port(f, *from)?;
                f.write_str(" to ")?;
                n.port(f, *to)
            }
            Event::Binding {
                addr,
                port,
                mac,
                state,
            } => {
                write!(f, "binding {addr} on ")?;
                n.port(f, *port)?;
                f.write_str(" (")?;
                n.mac(f, *mac)?;
                write!(f, ") {}", state.name())
            }
            Event::Unbound { addr, port } => {
                write!(f, "binding {addr} on ")?;
                n.port(f, *port)?;
                f.write_str(" removed")
            }
            Event::PortProxying { port, enabled } => {
                f.write_str("port ")?;
                n.port(f, *port)?;
                f.write_str(if *enabled {
                    " proxying"
                } else {
                    " not proxying"
                })
            }
            Event::Quarantined { port, mac, .. } => {
                f.write_str("sender ")?;
                n.mac(f, *mac)?;
                f.write_str(" quarantined on ")?;
                n.port(f, *port)?;
                f.write_str(" (P-bit RA)")
            }
            Event::LeftoverRoute { addr, port, fate } => {
                let port = PortName(n, *port).to_string();
                f.write_str(&fate.describe(*addr, &port))
            }
            Event::NoRouterRa { uplink, waited } => {
                f.write_str("no router advertisement on ")?;
                n.port(f, *uplink)?;
                write!(
                    f,
                    " within {} (RS sent): downstream ports are enabled with the \
                     relay's own P-bit RAs (router lifetime 0, no prefixes), so guests \
                     get no prefix and no default route from the relay and need static \
                     addresses and routes; for SLAAC, have a router (radvd, or the \
                     provider's) send RAs with the prefix on ",
                    Short(*waited)
                )?;
                n.port(f, *uplink)
            }
            Event::RouterRaAfterAll { uplink, router } => {
                write!(f, "router advertisement from {router} on ")?;
                n.port(f, *uplink)?;
                f.write_str(": relaying it, the relay's own RAs stop")
            }
            Event::Announced {
                port,
                target,
                bound_on,
            } => {
                write!(f, "announced {target} (bound on ")?;
                n.port(f, *bound_on)?;
                f.write_str(") on ")?;
                n.port(f, *port)
            }
            Event::Forwarded { from, to, dst } => {
                write!(f, "data to {dst} from ")?;
                n.port(f, *from)?;
                f.write_str(" forwarded to ")?;
                n.port(f, *to)
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::DropReason;
    use crate::time::Instant;

    const NAMES: [&str; 2] = ["eth0", "br0"];

    fn text(e: &Event) -> String {
        e.display(&NAMES[..]).to_string()
    }

    #[test]
    fn every_event_reads_with_its_ports_named() {
        let a: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 0x10]);
        let (up, down) = (PortId(0), PortId(1));
        let cases = [
            (
                Event::Dropped {
                    port: down,
                    reason: DropReason::HopLimit,
                },
                "dropped on br0: hop_limit",
            ),
            (
                Event::Relayed {
                    from: up,
                    to: vec![down, PortId(5)],
                    message: "NS",
                    addr: a,
                },
                "NS 2001:db8::10 from eth0 relayed to br0,port5",
            ),
            (
                Event::Answered {
                    port: up,
                    target: a,
                },
                "answered for 2001:db8::10 on eth0",
            ),
            (
                Event::AnsweredByKernel {
                    port: up,
                    target: a,
                },
                "left to the kernel, which answered for 2001:db8::10 on eth0",
            ),
            (
                Event::RelayedByKernel {
                    from: down,
                    to: up,
                    message: "NA",
                    target: a,
                },
                "left to the kernel, which relayed the NA for 2001:db8::10 from br0 to eth0",
            ),
            (
                Event::Binding {
                    addr: a,
                    port: down,
                    mac,
                    state: BindingState::Reachable,
                },
                "binding 2001:db8::10 on br0 (02:00:00:00:00:10) REACHABLE",
            ),
            (
                Event::Unbound {
                    addr: a,
                    port: down,
                },
                "binding 2001:db8::10 on br0 removed",
            ),
            (
                Event::PortProxying {
                    port: down,
                    enabled: false,
                },
                "port br0 not proxying",
            ),
            (
                Event::Quarantined {
                    port: up,
                    mac,
                    until: Instant::ZERO,
                },
                "sender 02:00:00:00:00:10 quarantined on eth0 (P-bit RA)",
            ),
            (
                Event::Announced {
                    port: up,
                    target: a,
                    bound_on: down,
                },
                "announced 2001:db8::10 (bound on br0) on eth0",
            ),
            (
                Event::Forwarded {
                    from: down,
                    to: up,
                    dst: a,
                },
                "data to 2001:db8::10 from br0 forwarded to eth0",
            ),
            (
                Event::NoRouterRa {
                    uplink: up,
                    waited: crate::time::Duration::from_secs(5),
                },
                "no router advertisement on eth0 within 5s (RS sent): downstream ports \
                 are enabled with the relay's own P-bit RAs (router lifetime 0, no \
                 prefixes), so guests get no prefix and no default route from the relay \
                 and need static addresses and routes; for SLAAC, have a router (radvd, \
                 or the provider's) send RAs with the prefix on eth0",
            ),
            (
                Event::RouterRaAfterAll {
                    uplink: up,
                    router: a,
                },
                "router advertisement from 2001:db8::10 on eth0: relaying it, the relay's \
                 own RAs stop",
            ),
        ];
        for (event, want) in cases {
            assert_eq!(text(&event), want);
            let about = event.address();
            assert_eq!(about.is_some(), want.contains("2001:db8::10"), "{want}");
        }
    }

    #[test]
    fn a_driver_can_name_macs() {
        struct Hosts;
        impl EventNames for Hosts {
            fn port(&self, f: &mut fmt::Formatter<'_>, port: PortId) -> fmt::Result {
                write!(f, "seg{}", port.0)
            }
            fn mac(&self, f: &mut fmt::Formatter<'_>, _: Mac) -> fmt::Result {
                f.write_str("laptop")
            }
        }
        let e = Event::Binding {
            addr: "2001:db8::1".parse().unwrap(),
            port: PortId(2),
            mac: Mac([2, 0, 0, 0, 0, 1]),
            state: BindingState::Stale,
        };
        assert_eq!(
            e.display(&Hosts).to_string(),
            "binding 2001:db8::1 on seg2 (laptop) STALE"
        );
    }
}
