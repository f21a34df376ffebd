//! A model of the driver's in-kernel programs for the engine tests: it keeps the
//! entries the engine told (as a driver writes them into the programs' maps, at the
//! time it drains the action) and says, like the programs' own word, whether one of
//! them acted on a frame the kernel saw at a given time. Its shape checks are the
//! programs' (32-byte NS/NA with one link-layer address option), so the tests show the
//! engine trusting the kernel's word, not its own tables.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use super::super::{Action, KernelWord, PortId};
use crate::time::Instant;
use crate::wire::{Mac, NdMessage, Parsed, parse_frame};

/// When an entry was written and until when the program uses it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    written: Instant,
    until: Instant,
}

impl Entry {
    fn live_at(self, seen: Instant) -> bool {
        self.written <= seen && seen < self.until
    }
}

#[derive(Debug, Default)]
pub(in crate::engine) struct KernelModel {
    /// Fast-path answers: target → (uplink port, entry).
    answers: HashMap<Ipv6Addr, (PortId, Entry)>,
    /// NS relays: target → (ingress port, entry).
    ns: HashMap<Ipv6Addr, (PortId, Entry)>,
    /// NA relays: (target, solicitor) → (guest's port, guest MAC, entry).
    na: HashMap<(Ipv6Addr, Ipv6Addr), (PortId, Mac, Entry)>,
}

impl KernelModel {
    /// Writes what `action` tells the kernel, at `now`.
    pub(in crate::engine) fn apply(&mut self, now: Instant, action: &Action) {
        let entry = |until| Entry {
            written: now,
            until,
        };
        match *action {
            Action::KernelAnswer {
                port,
                target,
                until,
                ..
            } => {
                self.answers.insert(target, (port, entry(until)));
            }
            Action::KernelRelayNs {
                from,
                target,
                until,
                ..
            } => {
                self.ns.insert(target, (from, entry(until)));
            }
            Action::KernelRelayNa {
                from,
                target,
                solicitor,
                guest_mac,
                until,
                ..
            } => {
                self.na
                    .insert((target, solicitor), (from, guest_mac, entry(until)));
            }
            Action::KernelForget { target } => {
                self.answers.remove(&target);
                self.ns.remove(&target);
            }
            Action::KernelForgetRelays => self.na.clear(),
            _ => {}
        }
    }

    /// The driver could not write the fast-path entry for `target`.
    pub(in crate::engine) fn refuse_answer(&mut self, target: Ipv6Addr) {
        self.answers.remove(&target);
    }

    /// The driver could not write the NS relay entry for `target`.
    pub(in crate::engine) fn refuse_ns(&mut self, target: Ipv6Addr) {
        self.ns.remove(&target);
    }

    /// The driver could not write the NA relay entry for `target` to `solicitor`.
    pub(in crate::engine) fn refuse_relay(&mut self, target: Ipv6Addr, solicitor: Ipv6Addr) {
        self.na.remove(&(target, solicitor));
    }

    /// What the programs did with `frame`, arriving on `port`, that the kernel saw at
    /// `seen`.
    pub(in crate::engine) fn word(&self, port: PortId, frame: &[u8], seen: Instant) -> KernelWord {
        let mut word = KernelWord::NOTHING;
        let Ok(Parsed::Nd(pkt)) = parse_frame(frame) else {
            return word;
        };
        if pkt.icmp.len() != 32 {
            return word;
        }
        match pkt.message {
            NdMessage::NeighborSolicit { target_addr } if pkt.slla.is_some() => {
                let on = |e: Option<&(PortId, Entry)>| {
                    e.is_some_and(|&(p, e)| p == port && e.live_at(seen))
                };
                word.answered = on(self.answers.get(&target_addr));
                // The fast path answers instead of relaying.
                word.relayed_ns = !word.answered && on(self.ns.get(&target_addr));
            }
            NdMessage::NeighborAdvert { target_addr, .. } if pkt.tlla == Some(pkt.eth_src) => {
                word.relayed_na = self
                    .na
                    .get(&(target_addr, pkt.dst_addr))
                    .is_some_and(|&(p, mac, e)| p == port && mac == pkt.eth_src && e.live_at(seen));
            }
            _ => {}
        }
        word
    }
}
