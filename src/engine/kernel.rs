//! What the engine hands to the driver's in-kernel programs, and what it learns back
//! from them: the fast path's answers (`fast_path_in_kernel`, [`Action::KernelAnswer`])
//! and, with `relay_in_kernel`, the relaying of NS to a bound guest
//! ([`Action::KernelRelayNs`]) and of its solicited NA back to the solicitor
//! ([`Action::KernelRelayNa`]).
//!
//! A driver's packet tap sees every frame before its program does, so the engine still
//! processes each one. Whether the program acted on that very frame is the program's
//! word, not the engine's guess: the driver asks the program's maps (see
//! [`KernelWord`]) and hands the answer in with the frame
//! ([`Engine::handle_frame_with`]). The engine leaves a frame to the kernel only when
//! the kernel says it took it *and* the engine had told the kernel that path; anything
//! else it handles itself. The worst case is a duplicate, never a lost frame, however
//! far behind the driver's receive queue is.

use std::net::Ipv6Addr;

use super::ns::pending_lifetime;
use super::pending::MAX_SOLICITORS;
use super::{Action, BindingState, Counter, Engine, Event, Instant, PortId};
use crate::time::Duration;
use crate::wire::{Mac, NdPacket};

/// Shorter kernel entries are not worth a map write: the engine handles the few frames
/// such an entry could take.
const MIN_KERNEL_ENTRY: Duration = Duration::from_millis(20);

/// What the driver's in-kernel programs report they did with the frame being handled:
/// each flag is set only when a program stored this frame's receive time in the entry
/// it used (the driver compares it with the time its own socket reports). Drivers
/// without in-kernel programs (the simulator, replay) pass [`KernelWord::NOTHING`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelWord {
    /// The fast-path program answered this NS.
    pub answered: bool,
    /// The relay program relayed this NS to the bound guest.
    pub relayed_ns: bool,
    /// The relay program relayed this NA to its solicitor.
    pub relayed_na: bool,
}

impl KernelWord {
    /// No program acted on the frame.
    pub const NOTHING: Self = Self {
        answered: false,
        relayed_ns: false,
        relayed_na: false,
    };
}

/// When an entry told to the kernel stops being used by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelWindow {
    pub(crate) until: Instant,
}

impl KernelWindow {
    /// The window of an entry to tell the kernel at `now`, to hold until `until`, or
    /// `None` when `earlier` (the same path's entry, if any) still holds and needs no
    /// renewal yet: one is due when it would end later and `earlier` has at most `ahead`
    /// left. A renewal replaces the entry in place, so the kernel's table has no gap.
    fn tell(earlier: Option<Self>, now: Instant, until: Instant, ahead: Duration) -> Option<Self> {
        match earlier {
            Some(e) if now < e.until => {
                (until > e.until && e.until <= now + ahead).then_some(Self { until })
            }
            _ => Some(Self { until }),
        }
    }
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
    /// Whether the kernel answered this NS itself (in-kernel fast path): the program
    /// says it answered this frame, and the engine had told it to answer for the pair.
    pub(super) fn kernel_answered(&self, port: PortId, target: Ipv6Addr) -> bool {
        self.cfg.fast_path_in_kernel
            && self.kernel_word.answered
            && self
                .cache
                .get(&target)
                .is_some_and(|b| b.kernel_answers.is_some_and(|k| k.path == port))
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

    /// Whether the kernel relayed this NS to the bound guest itself: the program says
    /// it relayed this frame, and the engine had told it to for this ingress and the
    /// binding's present port and MAC.
    pub(super) fn kernel_relayed_ns(&self, port: PortId, target: Ipv6Addr) -> bool {
        self.cfg.relay_in_kernel
            && self.kernel_word.relayed_ns
            && self.cache.get(&target).is_some_and(|b| {
                let path = NsRelayPath {
                    from: port,
                    to: b.port,
                    guest_mac: b.mac,
                };
                b.kernel_ns.is_some_and(|k| k.path == path)
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
        if until <= now + MIN_KERNEL_ENTRY {
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

    /// Whether the kernel relayed this NA itself: the program says it relayed this
    /// frame, and the engine had told it to for this path (the port and MAC it came
    /// from, the solicitor and where the engine would send it now).
    pub(super) fn kernel_relayed(
        &self,
        port: PortId,
        pkt: &NdPacket<'_>,
        target: Ipv6Addr,
        egress: PortId,
        eth_dst: Mac,
    ) -> bool {
        self.cfg.relay_in_kernel
            && self.kernel_word.relayed_na
            && self.cache.get(&target).is_some_and(|b| {
                let path = NaRelayPath {
                    solicitor: pkt.dst_addr,
                    from: port,
                    guest_mac: pkt.eth_src,
                    to: egress,
                    solicitor_mac: eth_dst,
                };
                b.kernel_relays.iter().any(|r| r.path == path)
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
