//! The in-kernel relay (opt-in, `relay_in_kernel`): an eBPF program on each port's tcx
//! ingress hook that relays, without waking a thread,
//! - an NS for a bound guest to the guest's MAC on its port (relay mode), and
//! - the guest's solicited NA back to the solicitor the relay passed the NS on for,
//!
//! each rewritten as the engine would (Ethernet addresses, SLLA/TLLA, checksum). The
//! engine says which and until when (`Action::KernelRelayNs`, `Action::KernelRelayNa`,
//! told before it sends the frame that is answered); the daemon keeps them in two hash
//! maps the program reads.
//!
//! `AF_PACKET` taps run before tc ingress, so the capture threads still see every frame:
//! the engine learns from it and counts it (`relayed_ns_by_kernel`,
//! `relayed_na_by_kernel`); it only leaves the sending to the kernel. The program relays
//! only the common shapes (32 bytes with one link-layer option, hop limit 255, a valid
//! checksum; an NS with a specified unicast source, not to another host's MAC; an NA to
//! our MAC from the guest's bound MAC, also as its TLLA); anything else goes on to the
//! capture thread and the engine.

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use super::ebpf_prog::*;
use super::sys::ebpf::EbpfInsn;
use crate::wire::Mac;

const KEY: &str = "relay_in_kernel";

/// NS key: ingress ifindex (native order), the target.
const NS_KEY_SIZE: usize = 20;
/// NS value: our MAC on the egress port, the guest's MAC (each padded to 8 bytes), the
/// egress ifindex (native order, padded to 8), the expiry in `CLOCK_MONOTONIC`
/// nanoseconds (native order).
const NS_VALUE_SIZE: usize = 32;
const NS_OUR_MAC_AT: i16 = 0;
const NS_GUEST_MAC_AT: i16 = 8;
const NS_EGRESS_AT: i16 = 16;
const NS_EXPIRY_AT: i16 = 24;

/// NA key: ingress ifindex, the target, the solicitor (the NA's destination).
const NA_KEY_SIZE: usize = 36;
/// NA value: our MAC on the egress port, the solicitor's MAC, the guest's MAC, the egress
/// ifindex, the expiry (laid out as the NS value).
const NA_VALUE_SIZE: usize = 40;
const NA_OUR_MAC_AT: i16 = 0;
const NA_SOLICITOR_MAC_AT: i16 = 8;
const NA_GUEST_MAC_AT: i16 = 16;
const NA_EGRESS_AT: i16 = 24;
const NA_EXPIRY_AT: i16 = 32;

/// Stack slots of the map keys.
const NS_KEY_AT: i16 = -32;
const NA_KEY_AT: i16 = -48;

/// NS for `target` arriving on `from` go to `guest_mac` on `to`, from `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsPath {
    /// The NS's ingress.
    pub from: i32,
    /// The guest's address.
    pub target: Ipv6Addr,
    /// Where the guest is: the NS's egress.
    pub to: i32,
    /// Our MAC there.
    pub mac: Mac,
    /// The guest's MAC.
    pub guest_mac: Mac,
}

/// One NA path, with interface indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaPath {
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

fn put_mac(v: &mut [u8], at: i16, mac: Mac) {
    let at = at as usize;
    v[at..at + 6].copy_from_slice(&mac.0);
}

fn put(v: &mut [u8], at: i16, bytes: &[u8]) {
    let at = at as usize;
    v[at..at + bytes.len()].copy_from_slice(bytes);
}

impl NsPath {
    fn key(&self) -> [u8; NS_KEY_SIZE] {
        ifindex_target_key(self.from, self.target)
    }

    fn value(&self, expiry: u64) -> [u8; NS_VALUE_SIZE] {
        let mut v = [0u8; NS_VALUE_SIZE];
        put_mac(&mut v, NS_OUR_MAC_AT, self.mac);
        put_mac(&mut v, NS_GUEST_MAC_AT, self.guest_mac);
        put(&mut v, NS_EGRESS_AT, &self.to.to_ne_bytes());
        put(&mut v, NS_EXPIRY_AT, &expiry.to_ne_bytes());
        v
    }
}

impl NaPath {
    fn key(&self) -> [u8; NA_KEY_SIZE] {
        let mut k = [0u8; NA_KEY_SIZE];
        put(&mut k, 0, &ifindex_target_key(self.from, self.target));
        put(&mut k, 20, &self.solicitor.octets());
        k
    }

    fn value(&self, expiry: u64) -> [u8; NA_VALUE_SIZE] {
        let mut v = [0u8; NA_VALUE_SIZE];
        put_mac(&mut v, NA_OUR_MAC_AT, self.mac);
        put_mac(&mut v, NA_SOLICITOR_MAC_AT, self.solicitor_mac);
        put_mac(&mut v, NA_GUEST_MAC_AT, self.guest_mac);
        put(&mut v, NA_EGRESS_AT, &self.to.to_ne_bytes());
        put(&mut v, NA_EXPIRY_AT, &expiry.to_ne_bytes());
        v
    }
}

/// The loaded program, its two maps and one tcx link per port.
#[derive(Debug)]
pub struct KernelRelays {
    ns: TargetMap<NS_KEY_SIZE>,
    na: TargetMap<NA_KEY_SIZE>,
    links: TcxLinks,
}

impl KernelRelays {
    /// Creates two maps for `max_entries` paths each and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let ns = TargetMap::create(KEY, NS_VALUE_SIZE, max_entries)?;
        let na = TargetMap::create(KEY, NA_VALUE_SIZE, max_entries)?;
        let links = TcxLinks::load(KEY, &program(ns.raw(), na.raw()), "ndprelay_rel")?;
        Ok(Self { ns, na, links })
    }

    /// The paths each map has room for.
    pub fn capacity(&self) -> u32 {
        self.ns.capacity()
    }

    /// Runs on exactly `ports` (name, ifindex); entries from indexes no longer listed go.
    pub fn sync(&mut self, ports: &[(&str, i32)]) -> Vec<SetupError> {
        let (gone, errors) = self.links.sync(ports);
        self.ns.remove_ingress(&gone);
        self.na.remove_ingress(&gone);
        errors
    }

    fn check_attached(&self, ifindex: i32) -> io::Result<()> {
        if self.links.attached(ifindex) {
            Ok(())
        } else {
            Err(io::Error::other("the program is not attached to the port"))
        }
    }

    /// Relays NS along `path` for `valid_for` from now.
    pub fn relay_ns(&mut self, path: &NsPath, valid_for: Duration) -> io::Result<()> {
        self.check_attached(path.from)?;
        let expiry = expiry_ns(valid_for);
        self.ns.insert(path.key(), &path.value(expiry), expiry)
    }

    /// Relays NAs along `path` for `valid_for` from now.
    pub fn relay_na(&mut self, path: &NaPath, valid_for: Duration) -> io::Result<()> {
        self.check_attached(path.from)?;
        let expiry = expiry_ns(valid_for);
        self.na.insert(path.key(), &path.value(expiry), expiry)
    }

    /// Stops relaying NS for `target`, from every port.
    pub fn forget_ns(&mut self, target: Ipv6Addr) {
        self.ns.remove_target(target);
    }

    /// Stops every NA relaying.
    pub fn forget_all_na(&mut self) {
        self.na.clear();
    }

    /// Runs the program once on `frame` (`BPF_PROG_TEST_RUN`), without attaching it.
    #[cfg(test)]
    pub(super) fn test_run(
        &self,
        frame: &[u8],
        ctx: Option<&super::sys::ebpf::SkBuff>,
    ) -> io::Result<super::sys::ebpf::TestRun> {
        self.links.test_run(frame, ctx)
    }
}

/// The program; `ns_map` and `na_map` are the maps of [`KernelRelays`].
fn program(ns_map: i32, na_map: i32) -> Vec<EbpfInsn> {
    let mut a = Asm::new();
    let na = a.label();
    a.nd_header();
    a.ins(LDX_H, R2, PKT, ICMP, 0);
    a.jump(JEQ_K, R2, 0, 136, na);
    a.pass_if(JNE_K, R2, 0, 135);

    // NS: to a group or to us, with an SLLA, from a specified unicast source.
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.pass_if(JEQ_K, R0, 0, PACKET_OTHERHOST);
    a.nd_option(1);
    a.specified_unicast_source();
    a.ifindex_target_key(NS_KEY_AT);
    a.live_entry(ns_map, NS_KEY_AT, NS_EXPIRY_AT);
    a.valid_checksum();
    // To the guest's MAC from ours, with our MAC as SLLA (what the engine's relay sends
    // to a REACHABLE guest).
    a.relay_rewrite(NS_GUEST_MAC_AT, NS_OUR_MAC_AT, NS_EGRESS_AT);

    // NA: to our MAC (a solicited answer to the NS we relayed, whose SLLA was ours), to
    // a unicast destination (announcements and DAD defences go everywhere: the engine's).
    a.bind(na);
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.pass_if(JNE_K, R0, 0, PACKET_HOST);
    a.nd_option(2);
    a.ins(LDX_B, R2, PKT, IP6_DST, 0);
    a.pass_if(JEQ_K, R2, 0, 0xff);
    a.ifindex_target_key(NA_KEY_AT);
    for i in 0..4 {
        a.copy(FP, NA_KEY_AT + 20 + 4 * i, PKT, IP6_DST + 4 * i, 4);
    }
    a.live_entry(na_map, NA_KEY_AT, NA_EXPIRY_AT);
    // From the bound guest only: its Ethernet source and its TLLA.
    a.same_mac(PKT, 6, ENTRY, NA_GUEST_MAC_AT);
    a.same_mac(PKT, OPTION + 2, ENTRY, NA_GUEST_MAC_AT);
    a.valid_checksum();
    // To the solicitor from our MAC, with our MAC as TLLA; R/S/O as the guest set them.
    a.relay_rewrite(NA_SOLICITOR_MAC_AT, NA_OUR_MAC_AT, NA_EGRESS_AT);
    a.finish()
}
