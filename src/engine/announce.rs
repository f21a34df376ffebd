//! Announcements toward the uplink (`EngineConfig::announce`): an unsolicited NA
//! (RFC 4861 §7.2.6) for a guest's address, with the uplink's MAC, when its downstream
//! binding is confirmed for the first time in this engine's life, or for the first time
//! on a new port after a move. Routers that learn neighbours only from such NAs (RFC
//! 9131, Linux `accept_untracked_na`, some clouds) then reach the guest without asking,
//! and a cache that lost the entry gets it back. After a restart every binding is new
//! to the engine, so each is announced again when it is first confirmed, restored
//! ones included.
//!
//! Heads up: read RFC 4861 §7.2.5 to §7.2.8 first. The NA has S=0 (it goes to
//! all-nodes) and O=0: it may create an entry where there is none, or send a REACHABLE
//! one through NUD, but never overrides another node's link-layer address, so a guest
//! cannot take an address away from a host on the uplink with it (DESIGN.md "Trust").
//! Its source is the guest's address, as the relay's answers for it are (a host
//! announcing itself sends it from that address; providers drop link-local-sourced NAs,
//! NDP reference §2.3); the TLLA is the uplink's MAC.

use std::net::Ipv6Addr;

use super::{ALL_NODES, Action, BindingState, Counter, Engine, Event, Instant, NdMessage};
use crate::wire::{Mac, NaFlags, OptionRepr, emit_nd, is_link_local};

impl Engine {
    /// Announces `addr` on the uplink if its binding was just confirmed on a downstream
    /// port and has not been announced there yet. Called wherever a binding becomes
    /// REACHABLE; does nothing for the others.
    ///
    /// Only routable addresses in a configured prefix are announced, and each
    /// downstream port has its own budget (`Tunables::announce_rate`), so one port's
    /// guests never delay another's. A refused announcement is counted and the binding
    /// stays unannounced, so its next confirmation (NUD every ReachableTime) tries
    /// again; with the uplink not proxying nothing is sent and nothing counted.
    pub(super) fn announce_binding(&mut self, now: Instant, addr: Ipv6Addr) {
        if !self.cfg.announce {
            return;
        }
        let Some(b) = self.cache.get(&addr) else {
            return;
        };
        let bound_on = b.port;
        if b.announced
            || b.state != BindingState::Reachable
            || self.port(bound_on).is_upstream()
            || is_link_local(addr)
            || addr.is_multicast()
            || addr.is_unspecified()
            || !self.cfg.prefixes.iter().any(|r| r.prefix.contains(&addr))
        {
            return;
        }
        let uplink = self.upstream;
        if !self.forwarding(uplink) {
            return;
        }
        if !self.port_mut(bound_on).announce_bucket.take(now) {
            self.counters.bump(Counter::AnnounceRateLimited);
            return;
        }
        if let Some(b) = self.cache.get_mut(&addr) {
            b.announced = true;
        }
        let mac = self.port(uplink).cfg.mac;
        let frame = emit_nd(
            mac,
            Mac::ipv6_multicast(ALL_NODES),
            addr,
            ALL_NODES,
            &NdMessage::NeighborAdvert {
                flags: NaFlags::empty(),
                target_addr: addr,
            },
            &[OptionRepr::TargetLla(mac)],
        );
        // Behind everything else: the solicited answer the confirmation may be
        // relaying goes first.
        self.floods.push_back(Action::Transmit {
            port: uplink,
            frame,
        });
        self.counters.bump(Counter::AnnouncedNa);
        self.emit(|| Event::Announced {
            port: uplink,
            target: addr,
            bound_on,
        });
    }
}
