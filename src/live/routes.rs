//! The /128 host routes of the kernel data plane, owned by the daemon thread (the one
//! that keeps CAP_NET_ADMIN): installed and removed as the engine asks (through the
//! executor's [`RouteChange`]s), never touching a route ndprelay did not create, found
//! again after a restart by their protocol number (and handed to the engine, which
//! re-verifies them: `engine/leftover.rs`), and all removed on a clean stop.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

use super::counters::DriverCounters;
use super::executor::RouteChange;
use super::netlink::{Install, Netlink};
use super::{Error, ROUTE_PROTOCOL};

/// A port as routes need it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoutePort<'a> {
    pub(super) name: &'a str,
    pub(super) ifindex: Option<i32>,
}

/// The routes ndprelay installed and those it left alone.
pub(super) struct Routes {
    rtnl: Netlink,
    counters: Arc<DriverCounters>,
    /// Routes we own: those we installed and those of an earlier run handed to the
    /// engine at start: address → ifindex.
    ours: HashMap<Ipv6Addr, i32>,
    /// Bound addresses whose /128 someone else installed: left alone, shown in `status`.
    conflicts: HashSet<Ipv6Addr>,
}

impl Routes {
    pub(super) fn new(rtnl: Netlink, counters: Arc<DriverCounters>) -> Self {
        Self {
            rtnl,
            counters,
            ours: HashMap::new(),
            conflicts: HashSet::new(),
        }
    }

    /// Addresses whose route someone else installed.
    pub(super) fn conflicts(&self) -> Vec<Ipv6Addr> {
        self.conflicts.iter().copied().collect()
    }

    /// Applies what the engine asked for on `port`.
    pub(super) fn apply(&mut self, change: &RouteChange, port: Option<RoutePort<'_>>) {
        match *change {
            RouteChange::Install { addr, .. } => {
                if let Some(p) = port {
                    self.install(addr, p);
                }
            }
            RouteChange::Remove { addr, .. } => self.remove(addr, port),
        }
    }

    fn install(&mut self, addr: Ipv6Addr, p: RoutePort<'_>) {
        let Some(ifindex) = p.ifindex else {
            return;
        };
        match self.rtnl.install_host_route(addr, ifindex, ROUTE_PROTOCOL) {
            Ok(Install::Foreign(r)) => {
                // Said once per conflict: the engine may ask again for the same binding.
                if self.conflicts.insert(addr) {
                    DriverCounters::bump(&self.counters.route_conflicts);
                    let what = r.map_or_else(
                        || "a route".to_owned(),
                        |r| {
                            format!(
                                "a route (ifindex {}, proto {}, table {})",
                                r.oif, r.protocol, r.table
                            )
                        },
                    );
                    log::warn!(
                        "route {addr}/128 dev {} not installed: {what} for {addr} that ndprelay \
                         did not create exists and is left alone; remove it (`ip -6 route del \
                         {addr}/128`) if the guest behind {} should be reached through the relay",
                        p.name,
                        p.name
                    );
                }
            }
            Ok(Install::Done) => {
                self.conflicts.remove(&addr);
                log::info!("route {addr}/128 dev {} installed", p.name);
                if let Some(old) = self.ours.insert(addr, ifindex) {
                    if old != ifindex {
                        let _ = self.rtnl.delete_route(addr, old, ROUTE_PROTOCOL);
                    }
                }
            }
            Err(e) => {
                DriverCounters::bump(&self.counters.route_errors);
                log::warn!("cannot install route {addr}/128 dev {}: {e:#}", p.name);
            }
        }
    }

    fn remove(&mut self, addr: Ipv6Addr, port: Option<RoutePort<'_>>) {
        let asked = port.and_then(|p| p.ifindex);
        if let (Some(asked), Some(&held)) = (asked, self.ours.get(&addr))
            && asked != held
        {
            // The address was routed elsewhere since (a restored binding on another
            // port than the earlier run's route): installing that route deleted this one.
            return;
        }
        let ours = self.ours.remove(&addr);
        if self.conflicts.remove(&addr) && ours.is_none() {
            log::info!("route {addr}/128 left in place: ndprelay did not create it");
            return;
        }
        // Deleting names our protocol, so the kernel never removes someone else's.
        let Some(ifindex) = ours.or_else(|| port.and_then(|p| p.ifindex)) else {
            return;
        };
        match self.rtnl.delete_route(addr, ifindex, ROUTE_PROTOCOL) {
            Ok(()) => log::info!("route {addr}/128 removed"),
            Err(e) => {
                DriverCounters::bump(&self.counters.route_errors);
                log::warn!("cannot remove route {addr}/128: {e:#}");
            }
        }
    }

    /// A port's device is gone: the kernel flushed the routes through it.
    pub(super) fn device_gone(&mut self, ifindex: i32) {
        self.ours.retain(|_, ix| *ix != ifindex);
    }

    /// Start-up reconciliation (NDP reference §5, restart): /128 routes with our
    /// protocol on one of our ports are returned for the engine, which keeps those it
    /// routes while their guests re-verify and removes the rest; routes on other
    /// interfaces, or wider than /128, are orphans, removed here.
    pub(super) fn reconcile(
        &mut self,
        ports: &[RoutePort<'_>],
    ) -> Result<Vec<(Ipv6Addr, usize)>, Error> {
        let found = self.rtnl.routes_with_protocol(ROUTE_PROTOCOL)?;
        let mut adopt = Vec::new();
        for r in found {
            match ports.iter().position(|p| p.ifindex == Some(r.oif)) {
                Some(i) if r.dst_len == 128 => {
                    self.ours.insert(r.dst, r.oif);
                    adopt.push((r.dst, i));
                }
                _ => {
                    DriverCounters::bump(&self.counters.routes_orphaned);
                    log::info!(
                        "removing orphaned route {}/{} (ifindex {})",
                        r.dst,
                        r.dst_len,
                        r.oif
                    );
                    let _ = self.rtnl.delete_route(r.dst, r.oif, ROUTE_PROTOCOL);
                }
            }
        }
        Ok(adopt)
    }

    /// Removes every route ndprelay owns (also those of an earlier run not yet
    /// verified): a clean stop.
    pub(super) fn remove_all(&mut self) {
        let routes: Vec<(Ipv6Addr, i32)> = self.ours.drain().collect();
        for (addr, ifindex) in routes {
            if let Err(e) = self.rtnl.delete_route(addr, ifindex, ROUTE_PROTOCOL) {
                log::warn!("cannot remove route {addr}/128: {e:#}");
            }
        }
    }
}
