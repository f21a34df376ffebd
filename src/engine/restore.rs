//! State carried across a restart (`state_file`): what the driver saves for the next run
//! ([`Engine::export_state`], when [`Engine::state_stamp`] says it changed) and what the
//! next run hands back ([`Engine::restore_state`]).
//!
//! Saved are the confirmed downstream bindings (address, port, MAC) and, per port,
//! whether it proxied, when it last sent a P-bit RA, and the RFC 4389 §4.1.3.3 loop
//! state (disable hold, quarantined senders). A restored binding is a guess from an
//! earlier run, never a confirmation: it comes back STALE, with its route (so the kernel
//! keeps forwarding to its guest), under the same table, port and MAC limits as any
//! learned binding, and is re-verified at once with unicast probes (`RESTORE_SPREAD`,
//! then `max_probes` probes a RetransTimer apart): a guest that answers keeps binding
//! and route, one that does not loses both. It yields at once to a binding of the same
//! address confirmed on another port, and never replaces one that exists.
//!
//! A downstream port that proxied when the state was saved resumes proxying at once,
//! without first sending two P-bit RAs (RFC 4389 §6), if the earlier run's last P-bit
//! RA there is younger than `proxy_disable_hold` and the port's MAC is the same: every
//! other proxy on that segment that heard it is still in its own §4.1.3.3 hold (or, like
//! this relay, still ignores that MAC), so the earlier run's §6 announcement still
//! stands for this one. The port still owes its two P-bit RAs and sends them as
//! soon as it has an RA to relay (an RS goes upstream at once). Loop state comes back
//! too, shortened by the state's age: a proxy heard before the restart stays shut out.

use std::net::Ipv6Addr;

use super::timer::PortTimer;
use super::{Action, Binding, BindingState, Counter, DataPlane, Engine, Event, Instant, PortId};
use crate::time::Duration;
use crate::wire::Mac;

/// Restored bindings are probed within this time of the restore, spread so that a
/// large table does not probe in one burst.
const RESTORE_SPREAD: Duration = Duration::from_secs(1);

/// One confirmed binding, as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedBinding {
    /// The guest's address.
    pub addr: Ipv6Addr,
    /// Its port (a downstream port).
    pub port: PortId,
    /// Its MAC.
    pub mac: Mac,
}

/// One port's loop-prevention state, as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPort {
    /// The port.
    pub port: PortId,
    /// Its MAC: the sender of its P-bit RAs, which other relays quarantine by MAC.
    pub mac: Mac,
    /// It proxied (enabled by two P-bit RAs, or without RA relaying).
    pub proxying: bool,
    /// How long before the save it last sent a P-bit RA, if it ever did.
    pub last_ra_ago: Option<Duration>,
    /// What was left of its RFC 4389 §4.1.3.3 disable hold, if it was disabled.
    pub disabled_for: Option<Duration>,
    /// Senders quarantined there (they sent a P-bit RA) and for how much longer.
    pub quarantined: Vec<(Mac, Duration)>,
}

/// Everything a state file holds, in the engine's terms (ports by [`PortId`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedState {
    /// Ports.
    pub ports: Vec<SavedPort>,
    /// Confirmed downstream bindings, sorted by address, at most `max_bindings`.
    pub bindings: Vec<SavedBinding>,
}

/// What [`Engine::restore_state`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Bindings restored (STALE, routed, being re-verified).
    pub restored: usize,
    /// Bindings not restored (see the `bindings_restore_refused` counter).
    pub refused: usize,
    /// Downstream ports that resumed proxying at once.
    pub resumed: Vec<PortId>,
}

/// Changes when what [`Engine::export_state`] returns may have changed (apart from the
/// ages in it): a driver saves when the stamp differs from the one it saved at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateStamp {
    table: u64,
    confirms: u64,
    proxying: u64,
    disabled: u64,
}

fn since(now: Instant, then: Instant) -> Duration {
    now.saturating_since(then)
}

fn minus(d: Duration, age: Duration) -> Option<Duration> {
    d.total_micros()
        .checked_sub(age.total_micros())
        .filter(|&left| left > 0)
        .map(Duration::from_micros)
}

impl Engine {
    /// The stamp of the state [`Engine::export_state`] would return now.
    pub fn state_stamp(&self) -> StateStamp {
        let mut stamp = StateStamp {
            table: self.cache.changes(),
            confirms: self.first_confirms,
            ..StateStamp::default()
        };
        for p in self.port_ids() {
            if self.forwarding(p) {
                stamp.proxying |= 1 << p.0;
            }
            if self.port(p).disabled_until.is_some() {
                stamp.disabled |= 1 << p.0;
            }
        }
        stamp
    }

    /// The state to save for the next run: confirmed (or restored, not yet re-verified)
    /// downstream bindings, sorted by address and at most `max_bindings`, and each port's
    /// loop-prevention state.
    pub fn export_state(&self, now: Instant) -> SavedState {
        let now = self.now.max(now);
        let mut bindings: Vec<SavedBinding> = self
            .cache
            .iter()
            .filter(|(_, b)| {
                (b.confirmed_at.is_some() || b.restored) && !self.port(b.port).is_upstream()
            })
            .map(|(addr, b)| SavedBinding {
                addr: *addr,
                port: b.port,
                mac: b.mac,
            })
            .collect();
        bindings.sort_unstable_by_key(|b| u128::from(b.addr));
        bindings.truncate(self.cfg.tunables.max_bindings);
        let ports = self
            .port_ids()
            .map(|id| {
                let p = self.port(id);
                let last_ra_ago = p.last_ra_sent.map(|t| since(now, t)).or_else(|| {
                    p.saved_ra
                        .map(|(restored_at, ago)| ago + since(now, restored_at))
                });
                SavedPort {
                    port: id,
                    mac: p.cfg.mac,
                    proxying: self.forwarding(id),
                    last_ra_ago,
                    disabled_for: p.disabled_until.map(|t| since(t, now)),
                    quarantined: p
                        .quarantine
                        .iter()
                        .filter(|(_, until)| *until > now)
                        .map(|&(mac, until)| (mac, since(until, now)))
                        .collect(),
                }
            })
            .collect();
        SavedState { ports, bindings }
    }

    /// Restores what an earlier run saved `age` ago (`None` when the driver cannot tell,
    /// e.g. the wall clock went back): loop state first (shortened by `age`; kept whole
    /// when the age is unknown), then ports resume proxying where the module doc allows,
    /// then bindings, each STALE with its route and probed within `RESTORE_SPREAD`.
    /// Call it at start, after the ports' link state is known and before
    /// [`Engine::adopt_routes`] (a route a restored binding owns is then its own, not a
    /// leftover). Ports and bindings the engine does not have are skipped.
    pub fn restore_state(
        &mut self,
        now: Instant,
        saved: &SavedState,
        age: Option<Duration>,
    ) -> RestoreReport {
        let now = self.advance(now);
        let mut report = RestoreReport::default();
        for sp in saved.ports.iter().take(self.ports.len()) {
            self.restore_port(now, sp, age, &mut report);
        }
        let max = self.cfg.tunables.max_bindings;
        for sb in saved.bindings.iter().take(max) {
            if self.restore_binding(now, sb) {
                report.restored += 1;
                self.counters.bump(Counter::BindingsRestored);
            } else {
                report.refused += 1;
                self.counters.bump(Counter::BindingsRestoreRefused);
            }
        }
        let skipped = saved.bindings.len().saturating_sub(max);
        report.refused += skipped;
        self.counters
            .add(Counter::BindingsRestoreRefused, skipped as u64);
        report
    }

    fn restore_port(
        &mut self,
        now: Instant,
        sp: &SavedPort,
        age: Option<Duration>,
        report: &mut RestoreReport,
    ) {
        let id = sp.port;
        if id.index() >= self.ports.len() {
            return;
        }
        let left = |d: Duration| match age {
            Some(age) => minus(d, age),
            None => Some(d),
        };
        for &(mac, d) in &sp.quarantined {
            if let Some(d) = left(d) {
                self.port_mut(id).quarantine(mac, now, now + d);
            }
        }
        let upstream = self.port(id).is_upstream();
        if let Some(d) = sp.disabled_for.and_then(left)
            && !upstream
        {
            let until = now + d;
            let p = self.port_mut(id);
            p.disabled_until = Some(until);
            p.ras_sent = 0;
            p.ra_pending = false;
            self.timers.set_port(id, PortTimer::RaPace, None);
            self.timers.set_port(id, PortTimer::ProxyHold, Some(until));
            return;
        }
        let hold = self.cfg.tunables.proxy_disable_hold;
        let announced_within_hold = match (age, sp.last_ra_ago) {
            (Some(age), Some(ago)) => (age + ago) < hold,
            _ => false,
        };
        if let (Some(age), Some(ago)) = (age, sp.last_ra_ago) {
            self.port_mut(id).saved_ra = Some((now, age + ago));
        }
        if upstream
            || !sp.proxying
            || sp.mac != self.port(id).cfg.mac
            || !self.cfg.ra_relay
            || !announced_within_hold
            || !self.port(id).usable()
            || self.forwarding(id)
        {
            return;
        }
        let p = self.port_mut(id);
        p.ras_sent = 2;
        p.ras_owed = 2;
        report.resumed.push(id);
        self.emit(|| Event::PortProxying {
            port: id,
            enabled: true,
        });
        self.leftover_port_enabled(now, id);
        // Ask the uplink for an RA at once so the owed P-bit RAs go out soon.
        self.want_ra(now);
    }

    /// Restores one binding; whether it was.
    fn restore_binding(&mut self, now: Instant, sb: &SavedBinding) -> bool {
        let addr = sb.addr;
        let Some(p) = self.ports.get(sb.port.index()) else {
            return false;
        };
        if p.is_upstream()
            || !p.live()
            || self.cache.get(&addr).is_some()
            || sb.mac.is_multicast()
            || self.is_our_mac(sb.mac)
            || !self.cfg.prefixes.iter().any(|r| r.prefix.contains(&addr))
        {
            return false;
        }
        let spread = Duration::from_micros(self.rng.below(RESTORE_SPREAD.total_micros()) + 1);
        let mut b = Binding::new(sb.port, sb.mac, BindingState::Stale, now + spread);
        b.restored = true;
        b.since = now;
        let (port, mac) = (sb.port, sb.mac);
        match self.cache.insert(addr, b) {
            Err(_) => return false,
            Ok(Some((old, old_port))) => {
                // Only an unconfirmed, unrouted binding ever makes room.
                self.counters.bump(Counter::BindingsEvicted);
                self.emit(|| Event::Unbound {
                    addr: old,
                    port: old_port,
                });
            }
            Ok(None) => {}
        }
        self.emit(|| Event::Binding {
            addr,
            port,
            mac,
            state: BindingState::Stale,
        });
        if self.cfg.data_plane == DataPlane::KernelRoutes {
            // The route the earlier run left (or a new one) stays while the guest
            // re-verifies: the kernel keeps forwarding to it meanwhile.
            self.leftover_take_over(addr, port);
            if let Some(b) = self.cache.get_mut(&addr) {
                b.routed = true;
            }
            self.counters.bump(Counter::RoutesInstalled);
            self.actions.push_back(Action::InstallRoute { addr, port });
        }
        true
    }
}
