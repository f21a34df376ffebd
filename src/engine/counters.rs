//! Counters for every decision: one slot per [`DropReason`] (`drop_<name>`) and one per
//! [`Counter`]. Plain arrays indexed by enum, so counting costs nothing per frame.

use crate::DropReason;

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// A non-drop counter; `name()` is what `Engine::counter` takes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Counter {
            /// Every counter, in declaration order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)+];

            /// The counter's name, e.g. `relayed_ns`.
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)+ }
            }
        }
    };
}

counters! {
    /// Every frame handed to `handle_frame`.
    RxFrames => "rx_frames",
    /// Valid ND messages received.
    RxNd => "rx_nd",
    /// IPv6 non-ND packets received.
    RxData => "rx_data",
    /// Frames that are not untagged IPv6 (ignored).
    RxNotIpv6 => "rx_not_ipv6",
    /// NS copies sent (relayed, DAD included).
    RelayedNs => "relayed_ns",
    /// DAD NS copies sent.
    RelayedDad => "relayed_dad",
    /// NA copies sent.
    RelayedNa => "relayed_na",
    /// RS copies sent upstream.
    RelayedRs => "relayed_rs",
    /// RA copies sent downstream.
    RelayedRa => "relayed_ra",
    /// Redirect copies sent.
    RelayedRedirect => "relayed_redirect",
    /// NS answered by the engine (static prefix, fast path, own link-local).
    AnsweredNs => "answered_ns",
    /// NS answered for an address routed through a routed port (DAD included).
    AnsweredRouted => "answered_routed",
    /// Routes for routed ports refused because the table was full.
    RoutedRoutesRefused => "routed_routes_refused",
    /// NS the kernel answered (in-kernel fast path), left unanswered by the engine.
    AnsweredByKernel => "answered_by_kernel",
    /// NS for bound targets the kernel relayed (`relay_in_kernel`), left untransmitted by
    /// the engine.
    RelayedNsByKernel => "relayed_ns_by_kernel",
    /// Solicited NAs the kernel relayed (`relay_in_kernel`), left untransmitted by the
    /// engine.
    RelayedNaByKernel => "relayed_na_by_kernel",
    /// NS the relay originated (probes, resolution for data).
    SentNs => "sent_ns",
    /// RS the relay originated to get an RA for enabling ports.
    SentRs => "sent_rs",
    /// The relay's own P-bit RAs (router lifetime 0, no prefixes), sent on downstream
    /// ports while no router's RA is known.
    SentOwnRa => "sent_own_ra",
    /// Unsolicited NAs the relay originated after a MAC change.
    SentNa => "sent_na",
    /// Unsolicited NAs announcing a guest address on the uplink (`announce`).
    AnnouncedNa => "announced_na",
    /// Announcements refused by their port's budget (`announce_rate`); the binding's
    /// next confirmation tries again.
    AnnounceRateLimited => "announce_rate_limited",
    /// NAs addressed to the relay itself (answers to its probes), consumed.
    ConsumedNa => "consumed_na",
    /// NAs for a target with no binding that the relay did not solicit on their port:
    /// nothing learned from them (RFC 4861 §7.2.5).
    UnsolicitedNaIgnored => "unsolicited_na_ignored",
    /// An NS for one of the relay's own link-locals, left to the host's kernel.
    LeftToHost => "left_to_host",
    /// Bindings created.
    BindingsLearned => "bindings_learned",
    /// Bindings confirmed (became REACHABLE).
    BindingsConfirmed => "bindings_confirmed",
    /// Bindings removed (expired, failed probes, port removed).
    BindingsRemoved => "bindings_removed",
    /// A second port claimed a bound address; the old port is being probed.
    BindingConflict => "binding_conflict",
    /// A binding moved to another port after the old one failed its probes.
    BindingsMoved => "bindings_moved",
    /// Learning refused because the binding table is full of confirmed entries.
    LearnTableFull => "learn_table_full",
    /// A new binding refused: its MAC or port holds its whole share of the table, all
    /// of it confirmed (the sender can only hurt itself).
    LearnQuota => "learn_quota",
    /// Unconfirmed bindings evicted to make room.
    BindingsEvicted => "bindings_evicted",
    /// Pending solicitations evicted to make room.
    PendingEvicted => "pending_evicted",
    /// Targets that never answered and went into the negative cache.
    PendingFailed => "pending_failed",
    /// `InstallRoute` actions.
    RoutesInstalled => "routes_installed",
    /// `RemoveRoute` actions.
    RoutesRemoved => "routes_removed",
    /// Routes an earlier run left, kept at start while their guests re-verify.
    RoutesReconciledKept => "routes_reconciled_kept",
    /// Routes an earlier run left that a confirmed binding on their port took over.
    RoutesReconciledVerified => "routes_reconciled_verified",
    /// Routes an earlier run left, removed: not re-verified within the grace period,
    /// their port lost, not routed by the config, or refused.
    RoutesReconciledRemoved => "routes_reconciled_removed",
    /// Routes an earlier run left beyond `max_bindings` (removed at once), or on a port
    /// the engine does not have.
    RoutesReconciledRefused => "routes_reconciled_refused",
    /// Bindings restored from an earlier run's state file (routed, then re-verified).
    BindingsRestored => "bindings_restored",
    /// Saved bindings not restored: their port is gone or down, the address is no
    /// longer proxied or already bound, or its port's or MAC's share is full.
    BindingsRestoreRefused => "bindings_restore_refused",
    /// Restored bindings whose guest answered a probe (kept, with their routes).
    BindingsReverified => "bindings_reverified",
    /// Restored bindings whose guest did not answer (removed, with their routes).
    BindingsRestoreFailed => "bindings_restore_failed",
    /// Unicast data frames forwarded (userspace data plane).
    ForwardedData => "forwarded_data",
    /// Unicast data frames held while their destination was resolved (userspace).
    HeldData => "held_data",
    /// Multicast data copies forwarded (userspace data plane).
    ForwardedMulticast => "forwarded_multicast",
    /// ICMPv6 Packet Too Big messages sent.
    PtbSent => "ptb_sent",
    /// Data frames not for the relay (other MAC, relay's own address, data plane off).
    IgnoredData => "ignored_data",
    /// RS received on the uplink (for the router, not for us).
    IgnoredRs => "ignored_rs",
    /// Upstream RAs with the P bit relayed anyway (cascade mode, `honour_proxy_bit` off).
    RaPBitIgnored => "ra_p_bit_ignored",
    /// Senders quarantined on a port after an RA with the P bit (or held there again by
    /// a new one): their frames are dropped there for `proxy_disable_hold`.
    QuarantinedSenders => "quarantined_senders",
    /// Packet Too Big messages not sent because their budget was spent (RFC 4443 §2.4(f)).
    PtbRateLimited => "ptb_rate_limited",
    /// Times a port's proxying was disabled by the RFC 4389 loop rules.
    PortsDisabled => "ports_disabled",
    /// Link down events (and MTU below 1280).
    LinkDown => "link_down",
    /// Link up events.
    LinkUp => "link_up",
    /// MAC changes.
    MacChanged => "mac_changed",
    /// Config reloads applied.
    Reloads => "reloads",
}

/// The counter values.
#[derive(Debug, Clone)]
pub(crate) struct Counters {
    values: [u64; Counter::ALL.len()],
    drops: [u64; DropReason::ALL.len()],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            values: [0; Counter::ALL.len()],
            drops: [0; DropReason::ALL.len()],
        }
    }
}

impl Counters {
    pub(crate) fn bump(&mut self, c: Counter) {
        self.add(c, 1);
    }

    pub(crate) fn add(&mut self, c: Counter, n: u64) {
        let v = &mut self.values[c as usize];
        *v = v.saturating_add(n);
    }

    pub(crate) fn drop(&mut self, r: DropReason) {
        let v = &mut self.drops[r as usize];
        *v = v.saturating_add(1);
    }

    /// By name: `drop_<reason>` or a [`Counter`] name; unknown names read 0.
    pub(crate) fn by_name(&self, name: &str) -> u64 {
        if let Some(reason) = name.strip_prefix("drop_") {
            return DropReason::ALL
                .iter()
                .find(|r| r.name() == reason)
                .map_or(0, |r| self.drops[*r as usize]);
        }
        Counter::ALL
            .iter()
            .find(|c| c.name() == name)
            .map_or(0, |c| self.values[*c as usize])
    }

    /// Every counter, drops first, in declaration order.
    pub(crate) fn list(&self) -> Vec<(String, u64)> {
        DropReason::ALL
            .iter()
            .map(|r| (format!("drop_{}", r.name()), self.drops[*r as usize]))
            .chain(
                Counter::ALL
                    .iter()
                    .map(|c| (c.name().to_owned(), self.values[*c as usize])),
            )
            .collect()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names_resolve_and_are_unique() {
        let mut c = Counters::default();
        c.drop(DropReason::HopLimit);
        c.drop(DropReason::HopLimit);
        c.bump(Counter::RelayedNs);
        assert_eq!(c.by_name("drop_hop_limit"), 2);
        assert_eq!(c.by_name("relayed_ns"), 1);
        assert_eq!(c.by_name("relayed_na"), 0);
        assert_eq!(c.by_name("no_such_counter"), 0);
        let list = c.list();
        assert_eq!(list.len(), DropReason::ALL.len() + Counter::ALL.len());
        let mut names: Vec<_> = list.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), list.len(), "counter names must be unique");
        // Every drop reason has its drop_ counter.
        for r in DropReason::ALL {
            assert!(list.iter().any(|(n, _)| *n == format!("drop_{}", r.name())));
        }
    }
}
