//! What the engine hands to the driver's in-kernel programs, and when it counts on them:
//! the fast path's answers (`fast_path_in_kernel`, [`Action::KernelAnswer`]) and, with
//! `relay_in_kernel`, the relaying of NS to a bound guest ([`Action::KernelRelayNs`])
//! and of its solicited NA back to the solicitor ([`Action::KernelRelayNa`]).
//!
//! A driver's packet tap sees every frame before its program does, so the engine still
//! processes each one; it only leaves the transmission to the kernel when it is sure
//! the kernel made it. Where it cannot be sure (the first and last `KERNEL_MARGIN` of
//! an entry) both may send: a duplicate, never a lost frame.

use std::net::Ipv6Addr;

use super::ns::pending_lifetime;
use super::pending::MAX_SOLICITORS;
use super::{Action, BindingState, Counter, Engine, Event, Instant, PortId};
use crate::time::Duration;
use crate::wire::{Mac, NdPacket};

/// How close to its telling and to its end the engine does not count on a kernel entry.
const KERNEL_MARGIN: Duration = Duration::from_millis(10);

/// When the engine counts on an entry it told the kernel: from `trusted_from` until
/// `KERNEL_MARGIN` before `until`, when the kernel stops using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelWindow {
    /// The driver fills the kernel's table right after processing the frame that made
    /// the engine tell it; a frame that reached the program just before may be
    /// processed by the engine just after.
    trusted_from: Instant,
    until: Instant,
}

impl KernelWindow {
    /// The window of an entry to tell the kernel at `now`, to hold until `until`, or
    /// `None` when `earlier` (the same path's entry, if any) still holds and needs no
    /// renewal yet: one is due when it would end later and `earlier` has at most `ahead`
    /// left. A renewal replaces the entry in place, so while `earlier` holds the
    /// kernel's table has no gap and the trust carries over; after its end frames
    /// passed the program untouched, and the new entry gets its margin like a first one.
    fn tell(earlier: Option<Self>, now: Instant, until: Instant, ahead: Duration) -> Option<Self> {
        match earlier {
            Some(e) if now < e.until => {
                (until > e.until && e.until <= now + ahead).then_some(Self {
                    trusted_from: e.trusted_from,
                    until,
                })
            }
            _ => Some(Self {
                trusted_from: now + KERNEL_MARGIN,
                until,
            }),
        }
    }

    /// Whether the engine counts on the entry at `now`. The kernel saw the frame before
    /// the engine's `now` was taken, so an entry valid now was valid then; the margins
    /// cover the filling of the table and the conversion between the clocks.
    fn counts_at(self, now: Instant) -> bool {
        self.trusted_from <= now && now + KERNEL_MARGIN < self.until
    }
}

/// The only ICMPv6 length the in-kernel programs take: a 24-byte NS or NA with one
/// 8-byte link-layer address option.
const KERNEL_ND_LEN: usize = 32;

/// Whether an NS has the one shape both in-kernel programs handle (the answer and the
/// relay): [`KERNEL_ND_LEN`] bytes, the option being a Source Link-Layer Address.
fn ns_shape_for_kernel(pkt: &NdPacket<'_>) -> bool {
    pkt.icmp.len() == KERNEL_ND_LEN && pkt.slla.is_some()
}

/// Something the kernel was told to do for a binding (`path`), and when the engine
/// counts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelEntry<P> {
    pub(crate) path: P,
    pub(crate) window: KernelWindow,
}

/// The kernel relays NS for the binding arriving on `from` to `guest_mac` on `to` (the
/// binding's port and MAC when told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NsRelayPath {
    pub(crate) from: PortId,
    pub(crate) to: PortId,
    pub(crate) guest_mac: Mac,
}

/// The kernel relays the binding's NAs to one solicitor: an NA arriving on `from` from
/// `guest_mac` (Ethernet source and TLLA) to `solicitor` goes out `to` to
/// `solicitor_mac`, with the TLLA rewritten to `to`'s MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NaRelayPath {
    pub(crate) solicitor: Ipv6Addr,
    pub(crate) from: PortId,
    pub(crate) guest_mac: Mac,
    pub(crate) to: PortId,
    pub(crate) solicitor_mac: Mac,
}

impl Engine {
    /// Whether the kernel answered this NS itself (in-kernel fast path): it was told to
    /// answer for the pair, the engine counts on the entry now, and the NS has the one
    /// shape it answers (32 bytes with a Source Link-Layer Address option; hop limit,
    /// checksum and a specified source are checked on both sides).
    pub(super) fn kernel_answered(
        &self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
    ) -> bool {
        self.cfg.fast_path_in_kernel
            && ns_shape_for_kernel(pkt)
            && self.cache.get(&target).is_some_and(|b| {
                b.kernel_answers
                    .is_some_and(|k| k.path == port && k.window.counts_at(now))
            })
    }

    /// Tells the kernel to answer for `target` on `port` until the binding's window
    /// ends, unless it was told exactly that already.
    pub(super) fn tell_kernel(
        &mut self,
        now: Instant,
        port: PortId,
        target: Ipv6Addr,
        confirmed_at: Option<Instant>,
    ) {
        let (Some(fast_window), Some(confirmed)) = (self.cfg.fast_path, confirmed_at) else {
            return;
        };
        if !self.cfg.fast_path_in_kernel {
            return;
        }
        let until = confirmed + fast_window;
        let mac = self.port(port).cfg.mac;
        let Some(b) = self.cache.get_mut(&target) else {
            return;
        };
        // Told again whenever a later confirmation moves the end (an entry never has
        // more than the window left, so any later end is due).
        let earlier = b
            .kernel_answers
            .filter(|k| k.path == port)
            .map(|k| k.window);
        let Some(window) = KernelWindow::tell(earlier, now, until, fast_window) else {
            return;
        };
        b.kernel_answers = Some(KernelEntry { path: port, window });
        self.actions.push_back(Action::KernelAnswer {
            port,
            target,
            mac,
            until,
        });
    }

    /// Whether the kernel relayed this NS to the bound guest itself: it was told to for
    /// this ingress and the binding's present port and MAC, within the margins, and the
    /// NS has the one shape the program relays (32 bytes with an SLLA, to a group or to
    /// the port's own MAC; a specified unicast source, hop limit and checksum are
    /// checked on both sides).
    pub(super) fn kernel_relayed_ns(
        &self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
    ) -> bool {
        self.cfg.relay_in_kernel
            && ns_shape_for_kernel(pkt)
            && (pkt.eth_dst.is_multicast() || pkt.eth_dst == self.port(port).cfg.mac)
            && self.cache.get(&target).is_some_and(|b| {
                let path = NsRelayPath {
                    from: port,
                    to: b.port,
                    guest_mac: b.mac,
                };
                b.kernel_ns
                    .is_some_and(|k| k.path == path && k.window.counts_at(now))
            })
    }

    /// An NS from `ingress` for `target` was just sent (or left to the kernel) to the
    /// guest's own MAC on `egress`: in relay mode with `relay_in_kernel`, tells the kernel
    /// to send the next ones the same way for as long as the engine would — while the
    /// binding stays REACHABLE and within a RetransTimer of the first such NS since the
    /// last confirmation (see `Engine::ns_to_bound_mac`); renewed in place when less
    /// than half a RetransTimer is left. Not with the fast path, which answers those NS
    /// and passes only one per RetransTimer on.
    pub(super) fn tell_kernel_ns(
        &mut self,
        now: Instant,
        ingress: PortId,
        target: Ipv6Addr,
        egress: PortId,
    ) {
        // NS toward the uplink stay with the engine, under the asking port's budget: a
        // guest's flood must never reach the provider's router at line rate.
        if !self.cfg.relay_in_kernel || self.cfg.fast_path.is_some() || egress == self.upstream {
            return;
        }
        let retrans = self.cfg.tunables.retrans_timer;
        let mac = self.port(egress).cfg.mac;
        let Some(b) = self.cache.get_mut(&target) else {
            return;
        };
        let Some(first) = b.unicast_ns_since else {
            return;
        };
        if b.state != BindingState::Reachable || b.port != egress {
            return;
        }
        let until = (first + retrans).min(b.expires_at);
        if until <= now + KERNEL_MARGIN + KERNEL_MARGIN {
            return;
        }
        let path = NsRelayPath {
            from: ingress,
            to: egress,
            guest_mac: b.mac,
        };
        let earlier = b.kernel_ns.filter(|k| k.path == path).map(|k| k.window);
        let half = Duration::from_micros(retrans.total_micros() / 2);
        let Some(window) = KernelWindow::tell(earlier, now, until, half) else {
            return;
        };
        b.kernel_ns = Some(KernelEntry { path, window });
        self.actions.push_back(Action::KernelRelayNs {
            from: ingress,
            target,
            to: egress,
            mac,
            guest_mac: path.guest_mac,
            until,
        });
    }

    /// An NS from `ingress` for `target` is about to be relayed to `egress`, where the
    /// target is bound to `guest_mac`: with `relay_in_kernel`, tells the kernel to relay
    /// the guest's answer to this solicitor (before the NS leaves, so the answer finds
    /// the entry). The entry lives as long as a pending solicitation and is renewed in
    /// place while the solicitor keeps asking, at most once per half of that.
    pub(super) fn tell_kernel_relay(
        &mut self,
        now: Instant,
        ingress: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        egress: PortId,
        guest_mac: Mac,
    ) {
        if !self.cfg.relay_in_kernel || pkt.src_addr.is_unspecified() {
            return;
        }
        let t = &self.cfg.tunables;
        let lifetime = pending_lifetime(t.retrans_timer, t.max_probes);
        let mac = self.port(ingress).cfg.mac;
        let Some(b) = self.cache.get_mut(&target) else {
            return;
        };
        let path = NaRelayPath {
            solicitor: pkt.src_addr,
            from: egress,
            guest_mac,
            to: ingress,
            solicitor_mac: pkt.slla.unwrap_or(pkt.eth_src),
        };
        let slot = b
            .kernel_relays
            .iter()
            .position(|r| r.path.solicitor == path.solicitor);
        let earlier = slot
            .map(|i| b.kernel_relays[i])
            .filter(|r| r.path == path)
            .map(|r| r.window);
        let half = Duration::from_micros(lifetime.total_micros() / 2);
        let Some(window) = KernelWindow::tell(earlier, now, now + lifetime, half) else {
            return;
        };
        let entry = KernelEntry { path, window };
        match slot {
            Some(i) => b.kernel_relays[i] = entry,
            None if b.kernel_relays.len() < MAX_SOLICITORS => b.kernel_relays.push(entry),
            None => {
                // The entry ending first makes room; the kernel keeps it until its end,
                // when the engine sends a copy of what the kernel relays too.
                let (i, _) = b
                    .kernel_relays
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, r)| r.window.until)
                    .unwrap_or((0, &entry));
                b.kernel_relays[i] = entry;
            }
        }
        self.actions.push_back(Action::KernelRelayNa {
            from: egress,
            target,
            solicitor: path.solicitor,
            guest_mac,
            to: ingress,
            mac,
            solicitor_mac: path.solicitor_mac,
            until: window.until,
        });
    }

    /// Whether the kernel relayed this NA itself: it was told to for this path (the
    /// port and MAC it came from, the solicitor and where the engine would send it now)
    /// within the margins, and the NA has the one shape the program relays (32 bytes,
    /// to the port's own MAC, with a Target Link-Layer Address equal to its Ethernet
    /// source).
    pub(super) fn kernel_relayed(
        &self,
        now: Instant,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        egress: PortId,
        eth_dst: Mac,
    ) -> bool {
        self.cfg.relay_in_kernel
            && pkt.icmp.len() == KERNEL_ND_LEN
            && pkt.tlla == Some(pkt.eth_src)
            && pkt.eth_dst == self.port(port).cfg.mac
            && self.cache.get(&target).is_some_and(|b| {
                let path = NaRelayPath {
                    solicitor: pkt.dst_addr,
                    from: port,
                    guest_mac: pkt.eth_src,
                    to: egress,
                    solicitor_mac: eth_dst,
                };
                b.kernel_relays
                    .iter()
                    .any(|r| r.path == path && r.window.counts_at(now))
            })
    }

    /// Counts an NS or NA the kernel relayed.
    pub(super) fn relayed_by_kernel(
        &mut self,
        from: PortId,
        to: PortId,
        message: &'static str,
        target: Ipv6Addr,
    ) {
        self.counters.bump(if message == "NS" {
            Counter::RelayedNsByKernel
        } else {
            Counter::RelayedNaByKernel
        });
        self.emit(|| Event::RelayedByKernel {
            from,
            to,
            message,
            target,
        });
    }

    /// Stops the kernel answering and relaying NS for the bindings on `port` and for
    /// those it does so on `port` (link changes, a disabled port); `None`: for all
    /// (reload). Also stops every NA relaying the kernel was told: those events are
    /// rare, and an NA entry names two ports and the MACs of both.
    pub(super) fn forget_kernel_entries(&mut self, port: Option<PortId>) {
        let told: Vec<Ipv6Addr> = self
            .cache
            .iter()
            .filter(|(_, b)| {
                let on = |p: PortId, q: PortId| port.is_none_or(|x| x == p || x == q);
                b.kernel_answers.is_some_and(|k| on(k.path, b.port))
                    || b.kernel_ns.is_some_and(|k| on(k.path.from, k.path.to))
            })
            .map(|(addr, _)| *addr)
            .collect();
        for target in told {
            self.forget_kernel_target(target);
        }
        if self.cache.clear_kernel_relays() {
            self.actions.push_back(Action::KernelForgetRelays);
        }
    }

    /// Stops the kernel answering and relaying NS for `addr`, if it was told to.
    pub(super) fn forget_kernel_target(&mut self, addr: Ipv6Addr) {
        if let Some(b) = self.cache.get_mut(&addr)
            && (b.kernel_answers.take().is_some() | b.kernel_ns.take().is_some())
        {
            self.actions
                .push_back(Action::KernelForget { target: addr });
        }
    }
}
