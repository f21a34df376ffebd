//! Config reload (reference §5 fault table): an atomic swap. Ports are matched by name
//! and role; a matched port keeps its bindings, routes and RA state (MAC, MTU and
//! link-local changes apply at once, as link events would); a removed port is cleaned
//! up as if deleted; a new port starts enabling.

use super::timer::{GlobalTimer, PortTimer, TimerTable};
use super::{
    Counter, Engine, EngineConfig, EngineConfigError, Instant, PortId, PortState, TokenBucket,
};

impl Engine {
    /// Swaps in a new config atomically; unchanged ports keep their bindings and routes.
    ///
    /// On error nothing changes. `RemoveRoute` actions queued for ports that the new
    /// config no longer has name those ports by their `PortId` in the *old* config; every
    /// other action refers to the new config's `PortId`s.
    pub fn reload(&mut self, now: Instant, config: EngineConfig) -> Result<(), EngineConfigError> {
        config.validate()?;
        let now = self.advance(now);
        // Ports, their MACs, the window or the fast path itself may change: the kernel
        // answers again from the next confirmation on.
        self.forget_kernel_entries(None);
        let map: Vec<Option<PortId>> = self
            .ports
            .iter()
            .map(|old| {
                config
                    .ports
                    .iter()
                    .position(|n| n.name == old.cfg.name && n.role == old.cfg.role)
                    .map(|i| PortId(i as u16))
            })
            .collect();
        let lookup = |p: PortId| map.get(p.index()).copied().flatten();

        // Removed ports: bindings (and their routes) go, with the old PortIds.
        let mut doomed: Vec<_> = self
            .cache
            .iter()
            .filter(|(_, b)| lookup(b.port).is_none())
            .map(|(a, _)| *a)
            .collect();
        doomed.sort_unstable();
        for addr in doomed {
            self.remove_binding(addr);
        }
        self.cache.remap_ports(lookup);
        self.leftovers_remap(lookup);
        let prefixes: Vec<_> = config.prefixes.iter().map(|r| r.prefix).collect();
        self.routed.retain_map(|net, port| {
            let port = match port {
                Some(p) => Some(lookup(p)?),
                None => None,
            };
            prefixes.iter().any(|p| p.contains(&net)).then_some(port)
        });
        self.pending.retain_ports(lookup);
        for _ in 0..self.held.remap_ports(lookup) {
            self.counters.drop(crate::DropReason::PortDisabled);
        }

        // Port states and per-port timers follow their port to its new index.
        let old_ports = std::mem::take(&mut self.ports);
        let mut timers = TimerTable::new(config.ports.len());
        for t in GlobalTimer::ALL {
            timers.set_global(t, self.timers.global(t));
        }
        let mut fresh = Vec::new();
        // Kept ports whose liveness or MAC the new config changes: handled like the
        // matching link events once the swap is done.
        let mut changed = Vec::new();
        for (i, pc) in config.ports.iter().enumerate() {
            let id = PortId(i as u16);
            let old = map.iter().position(|m| *m == Some(id));
            let state = match old {
                Some(o) => {
                    for t in PortTimer::ALL {
                        timers.set_port(id, t, self.timers.port(PortId(o as u16), t));
                    }
                    let mut s = old_ports[o].clone();
                    let was_live = s.live();
                    let old_mac = s.cfg.mac;
                    s.cfg = pc.clone();
                    if flood_rates(&config.tunables) != flood_rates(&self.cfg.tunables) {
                        s.flood_bucket = super::flood_bucket(pc, &config.tunables, now);
                    }
                    let (t, old_t) = (&config.tunables, &self.cfg.tunables);
                    if (t.announce_rate, t.announce_burst)
                        != (old_t.announce_rate, old_t.announce_burst)
                    {
                        s.announce_bucket =
                            TokenBucket::new(t.announce_rate, t.announce_burst, now);
                    }
                    changed.push((id, was_live, old_mac != pc.mac));
                    s
                }
                None => {
                    fresh.push(id);
                    PortState::new(pc.clone(), &config.tunables, now)
                }
            };
            self.ports.push(state);
        }
        self.timers = timers;
        let old_upstream = self.upstream;
        // validate() checked there is exactly one upstream port.
        let up = config
            .ports
            .iter()
            .position(|p| p.role == super::Role::Upstream)
            .expect("validated: one upstream port");
        self.upstream = PortId(up as u16);
        if lookup(old_upstream) != Some(self.upstream) {
            // A different uplink: what we knew about its routers is void.
            self.routers.clear();
            self.last_ra = None;
        }

        let t = &config.tunables;
        self.cache.set_limits(t.binding_limits());
        self.pending
            .set_limits(t.max_pending, t.max_pending_per_port);
        if t.ns_rate != self.cfg.tunables.ns_rate || t.ns_burst != self.cfg.tunables.ns_burst {
            self.known_ns_bucket = super::known_ns_bucket(t, now);
        }
        if t.rs_rate != self.cfg.tunables.rs_rate {
            self.rs_bucket = TokenBucket::new(t.rs_rate, 1, now);
        }
        let ra_relay_on = config.ra_relay && !self.cfg.ra_relay;
        self.cfg = config;

        // Data plane or prefixes may have changed: bring routes in line.
        for addr in self.cache.addrs() {
            self.sync_route(addr);
        }
        self.leftovers_unwanted(None);
        for (id, was_live, new_mac) in changed {
            if new_mac {
                self.counters.bump(Counter::MacChanged);
                let mac = self.port(id).cfg.mac;
                self.announce_mac(id, mac);
            }
            match (was_live, self.port(id).live()) {
                (true, false) => self.port_dead(now, id),
                (false, true) => self.port_live(now, id),
                _ => {}
            }
        }
        for id in fresh {
            if !self.port(id).is_upstream() {
                self.start_enabling(now, id);
            }
        }
        if ra_relay_on {
            // Kept ports proxied without RAs; now RFC 4389 §6 applies to them too.
            for id in self.port_ids() {
                if !self.port(id).is_upstream() && !self.forwarding(id) {
                    self.start_enabling(now, id);
                }
            }
        }
        self.counters.bump(Counter::Reloads);
        Ok(())
    }
}

/// The rates behind the ports' flood budgets: a reload that changes none of them keeps
/// the buckets' levels.
fn flood_rates(t: &super::Tunables) -> [u32; 4] {
    [
        t.ns_rate,
        t.ns_burst,
        t.ns_rate_per_port,
        t.ns_burst_per_port,
    ]
}
