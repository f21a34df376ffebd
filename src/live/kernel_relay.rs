//! The in-kernel NA relay (opt-in, `relay_in_kernel`): an eBPF program on each port's tcx
//! ingress hook that relays a bound guest's solicited Neighbor Advertisement to the
//! solicitor the engine passed the NS on for, rewritten as the engine would (Ethernet
//! addresses, Target Link-Layer Address, checksum), without waking a thread. The engine
//! says which (port, target, solicitor) and where to (`Action::KernelRelayNa`) before it
//! sends the NS; the daemon keeps those in a hash map the program reads.
//!
//! `AF_PACKET` taps run before tc ingress, so the capture thread still sees every NA: the
//! engine learns from it and counts it (`relayed_by_kernel`); it only leaves the sending
//! to the kernel. The program relays only the common shape (a 32-byte NA to our MAC with
//! one TLLA option equal to its Ethernet source, the guest's bound MAC, hop limit 255,
//! a valid checksum); anything else goes on to the capture thread and the engine.

use std::collections::HashMap;
use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use super::ebpf_prog::*;
use super::sys::ebpf::{BpfMap, EbpfInsn};
use crate::wire::Mac;

const KEY: &str = "relay_in_kernel";
/// Key: ingress ifindex (native order), the target, the solicitor (the NA's destination).
const KEY_SIZE: usize = 36;
/// Value: our MAC on the egress port, the solicitor's MAC, the guest's MAC (each padded
/// to 8 bytes), the egress ifindex (native order, padded to 8), the expiry in
/// `CLOCK_MONOTONIC` nanoseconds (native order).
const VALUE_SIZE: usize = 40;
const OUR_MAC_AT: i16 = 0;
const SOLICITOR_MAC_AT: i16 = 8;
const GUEST_MAC_AT: i16 = 16;
const EGRESS_AT: i16 = 24;
const EXPIRY_AT: i16 = 32;
/// Stack slot of the map key.
const KEY_AT: i16 = -48;

/// One NA path, with interface indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPath {
    /// Where the guest is: the NA's ingress.
    pub from: i32,
    /// The NA's target.
    pub target: Ipv6Addr,
    /// The NA's destination.
    pub solicitor: Ipv6Addr,
    /// The guest's MAC (Ethernet source and TLLA of its NA).
    pub guest_mac: Mac,
    /// Where the solicitor is: the NA's egress.
    pub to: i32,
    /// Our MAC there.
    pub mac: Mac,
    /// The solicitor's MAC.
    pub solicitor_mac: Mac,
}

impl RelayPath {
    fn key(&self) -> [u8; KEY_SIZE] {
        let mut k = [0u8; KEY_SIZE];
        k[..4].copy_from_slice(&self.from.to_ne_bytes());
        k[4..20].copy_from_slice(&self.target.octets());
        k[20..].copy_from_slice(&self.solicitor.octets());
        k
    }

    fn value(&self, expiry: u64) -> [u8; VALUE_SIZE] {
        let mut v = [0u8; VALUE_SIZE];
        for (at, mac) in [
            (OUR_MAC_AT, self.mac),
            (SOLICITOR_MAC_AT, self.solicitor_mac),
            (GUEST_MAC_AT, self.guest_mac),
        ] {
            let at = at as usize;
            v[at..at + 6].copy_from_slice(&mac.0);
        }
        let at = EGRESS_AT as usize;
        v[at..at + 4].copy_from_slice(&self.to.to_ne_bytes());
        v[EXPIRY_AT as usize..].copy_from_slice(&expiry.to_ne_bytes());
        v
    }
}

/// The loaded program, its map and one tcx link per port.
#[derive(Debug)]
pub struct KernelRelays {
    map: BpfMap,
    links: TcxLinks,
    /// What the map holds: key → expiry, so expired entries can make room.
    entries: HashMap<[u8; KEY_SIZE], u64>,
    capacity: u32,
}

impl KernelRelays {
    /// Creates a map for `max_entries` paths and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let capacity = max_entries.max(1);
        let map = BpfMap::create(KEY_SIZE as u32, VALUE_SIZE as u32, capacity)
            .map_err(TcxLinks::map_error(KEY))?;
        let links = TcxLinks::load(KEY, &program(map.raw()), "ndprelay_na")?;
        Ok(Self {
            map,
            links,
            entries: HashMap::new(),
            capacity,
        })
    }

    /// The paths the map has room for.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Runs on exactly `ports` (name, ifindex); entries from indexes no longer listed go.
    pub fn sync(&mut self, ports: &[(&str, i32)]) -> Vec<SetupError> {
        let (gone, errors) = self.links.sync(ports);
        if !gone.is_empty() {
            let map = &self.map;
            self.entries.retain(|k, _| {
                let from = i32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
                let keep = !gone.contains(&from);
                if !keep {
                    remove_entry(map, k);
                }
                keep
            });
        }
        errors
    }

    /// Relays NAs along `path` for `valid_for` from now. A full map first drops its
    /// expired entries.
    pub fn relay(&mut self, path: &RelayPath, valid_for: Duration) -> io::Result<()> {
        if !self.links.attached(path.from) {
            return Err(io::Error::other("the program is not attached to the port"));
        }
        let key = path.key();
        let full = self.entries.len() >= self.capacity as usize;
        if full && !self.entries.contains_key(&key) {
            let now = expiry_ns(Duration::ZERO);
            let map = &self.map;
            self.entries.retain(|k, expiry| {
                let live = *expiry > now;
                if !live {
                    remove_entry(map, k);
                }
                live
            });
            if self.entries.len() >= self.capacity as usize {
                return Err(io::Error::other("the map is full"));
            }
        }
        let expiry = expiry_ns(valid_for);
        self.map.insert(&key, &path.value(expiry))?;
        self.entries.insert(key, expiry);
        Ok(())
    }

    /// Stops every relaying.
    pub fn forget_all(&mut self) {
        for k in std::mem::take(&mut self.entries).keys() {
            remove_entry(&self.map, k);
        }
    }
}

fn remove_entry(map: &BpfMap, key: &[u8; KEY_SIZE]) {
    if let Err(e) = map.remove(key) {
        log::warn!("{KEY}: cannot remove an entry from the map: {e}");
    }
}

/// The program; `map_fd` is the map of [`KernelRelays`].
fn program(map_fd: i32) -> Vec<EbpfInsn> {
    let mut a = Asm::new();
    // To our MAC: a solicited answer to the NS we relayed (whose SLLA was ours).
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.pass_if(JNE_K, R0, 0, PACKET_HOST);
    a.nd_frame(136, 2);
    // Multicast destinations (announcements, DAD defences) go everywhere: the engine's.
    a.ins(LDX_B, R2, PKT, IP6_DST, 0);
    a.pass_if(JEQ_K, R2, 0, 0xff);
    // Key: ifindex, target, destination.
    a.ins(LDX_W, R2, CTX, SKB_IFINDEX, 0);
    a.ins(STX_W, FP, R2, KEY_AT, 0);
    for i in 0..4 {
        a.copy(FP, KEY_AT + 4 + 4 * i, PKT, TARGET + 4 * i, 4);
        a.copy(FP, KEY_AT + 20 + 4 * i, PKT, IP6_DST + 4 * i, 4);
    }
    a.live_entry(map_fd, KEY_AT, EXPIRY_AT);
    // From the bound guest only: its Ethernet source and its TLLA.
    a.same_mac(PKT, 6, ENTRY, GUEST_MAC_AT);
    a.same_mac(PKT, OPTION + 2, ENTRY, GUEST_MAC_AT);
    a.valid_checksum();
    // To the solicitor from our MAC, with our MAC as TLLA; R/S/O and the IPv6 header as
    // the guest sent them (what the engine's relay sends).
    a.copy_mac(PKT, 0, ENTRY, SOLICITOR_MAC_AT);
    a.copy_mac(PKT, 6, ENTRY, OUR_MAC_AT);
    a.copy_mac(PKT, OPTION + 2, ENTRY, OUR_MAC_AT);
    a.write_checksum();
    a.ins(LDX_W, R1, ENTRY, EGRESS_AT, 0);
    a.redirect_and_finish()
}
