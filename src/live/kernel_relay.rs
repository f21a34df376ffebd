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
//! `relayed_na_by_kernel`); it only leaves the sending to the kernel. Whether the
//! program relayed a given frame is its own word: it stores the frame's receive
//! timestamp in the entry it used, which [`KernelRelays::relayed_ns`] and
//! [`KernelRelays::relayed_na`] compare with the capture's. The program relays
//! only the common shapes (32 bytes with one link-layer option, hop limit 255, a valid
//! checksum; an NS with a specified unicast source, not to another host's MAC; an NA to
//! our MAC from the guest's bound MAC, also as its TLLA); anything else goes on to the
//! capture thread and the engine.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::RawFd;
use std::time::Duration;

use std::mem::offset_of;

use super::ebpf_asm::{FP, R0, R2, R3};
use super::ebpf_maps::{Handled, MapValue, NaKey, NaRelayValue, NsRelayValue, PortTarget, off};
use super::ebpf_prog::*;
use super::sys::ebpf::EbpfInsn;
use crate::wire::Mac;

const KEY: &str = "relay_in_kernel";

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

impl NsPath {
    fn key(&self) -> [u8; PortTarget::SIZE] {
        PortTarget::new(self.from, self.target).to_bytes()
    }

    fn value(&self, expiry_ns: u64) -> NsRelayValue {
        NsRelayValue {
            our_mac: self.mac.into(),
            guest_mac: self.guest_mac.into(),
            egress: self.to,
            pad: 0,
            expiry_ns,
            handled: Handled::default(),
        }
    }
}

impl NaPath {
    fn key(&self) -> [u8; NaKey::SIZE] {
        na_key(self.from, self.target, self.solicitor)
    }

    fn value(&self, expiry_ns: u64) -> NaRelayValue {
        NaRelayValue {
            our_mac: self.mac.into(),
            solicitor_mac: self.solicitor_mac.into(),
            guest_mac: self.guest_mac.into(),
            egress: self.to,
            pad: 0,
            expiry_ns,
            handled: Handled::default(),
        }
    }
}

fn na_key(from: i32, target: Ipv6Addr, solicitor: Ipv6Addr) -> [u8; NaKey::SIZE] {
    NaKey {
        ingress: PortTarget::new(from, target),
        solicitor: solicitor.octets(),
    }
    .to_bytes()
}

/// The loaded program, its two maps and one tcx link per port.
#[derive(Debug)]
pub struct KernelRelays {
    ns: TargetMap<{ PortTarget::SIZE }, NsRelayValue>,
    na: TargetMap<{ NaKey::SIZE }, NaRelayValue>,
    links: TcxLinks,
}

/// Tells whether the program relayed an NS or NA (see [`KernelRelays::witness`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayWitness {
    ns: MapWitness<{ PortTarget::SIZE }, NsRelayValue>,
    na: MapWitness<{ NaKey::SIZE }, NaRelayValue>,
}

impl RelayWitness {
    /// Whether the program relayed the NS for `target` that arrived on `ingress` (the
    /// solicitor's port, [`NsPath::from`]) with receive timestamp `rx_tstamp_ns` (its
    /// `SCM_TIMESTAMPNS`, seconds * 10^9 + nanoseconds): the NS map's entry of key
    /// ([`PortTarget`]) `(ingress, target)` says so. `false` as for
    /// [`AnswerWitness::answered`](super::kernel_answer::AnswerWitness::answered).
    pub fn relayed_ns(
        &self,
        ingress: i32,
        target: Ipv6Addr,
        rx_tstamp_ns: u64,
    ) -> io::Result<bool> {
        self.ns
            .took(&PortTarget::new(ingress, target).to_bytes(), rx_tstamp_ns)
    }

    /// Whether the program relayed the NA for `target` to `solicitor` (the NA's IPv6
    /// destination) that arrived on `ingress` (the guest's port, [`NaPath::from`]) with
    /// receive timestamp `rx_tstamp_ns`: the NA map's entry of key ([`NaKey`])
    /// `(ingress, target, solicitor)` says so. `false` as for
    /// [`AnswerWitness::answered`](super::kernel_answer::AnswerWitness::answered).
    pub fn relayed_na(
        &self,
        ingress: i32,
        target: Ipv6Addr,
        solicitor: Ipv6Addr,
        rx_tstamp_ns: u64,
    ) -> io::Result<bool> {
        self.na
            .took(&na_key(ingress, target, solicitor), rx_tstamp_ns)
    }
}

impl KernelRelays {
    /// Creates two maps for `max_entries` paths each and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let ns = TargetMap::create(KEY, max_entries)?;
        let na = TargetMap::create(KEY, max_entries)?;
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
        self.ns
            .insert(path.key(), &path.value(expiry_ns(valid_for)))
    }

    /// Relays NAs along `path` for `valid_for` from now.
    pub fn relay_na(&mut self, path: &NaPath, valid_for: Duration) -> io::Result<()> {
        self.check_attached(path.from)?;
        self.na
            .insert(path.key(), &path.value(expiry_ns(valid_for)))
    }

    /// What the program relayed, readable from any thread.
    pub fn witness(&self) -> RelayWitness {
        RelayWitness {
            ns: self.ns.witness(),
            na: self.na.witness(),
        }
    }

    /// Stops relaying NS for `target`, from every port.
    pub fn forget_ns(&mut self, target: Ipv6Addr) {
        self.ns.remove_target(target);
    }

    /// Stops every NA relaying.
    pub fn forget_all_na(&mut self) {
        self.na.clear();
    }

    /// The last stamp in the ring of the NS entry for `target` on `ingress`, if any.
    #[cfg(test)]
    pub(super) fn ns_handled_tstamp(&self, ingress: i32, target: Ipv6Addr) -> Option<u64> {
        self.ns
            .handled(&PortTarget::new(ingress, target).to_bytes())
            .expect("map lookup")
            .and_then(|h| h.last())
    }

    /// The last stamp in the ring of the NA entry for `target` and `solicitor` on `ingress`.
    #[cfg(test)]
    pub(super) fn na_handled_tstamp(
        &self,
        ingress: i32,
        target: Ipv6Addr,
        solicitor: Ipv6Addr,
    ) -> Option<u64> {
        self.na
            .handled(&na_key(ingress, target, solicitor))
            .expect("map lookup")
            .and_then(|h| h.last())
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
fn program(ns_map: RawFd, na_map: RawFd) -> Vec<EbpfInsn> {
    let mut p = NdProg::new();
    let pass = p.pass;
    let na = p.label();
    // if (f->icmp6_code != 0) return TCX_NEXT;
    // if (f->icmp6_type == ND_NEIGHBOR_ADVERT) goto na;
    // if (f->icmp6_type != ND_NEIGHBOR_SOLICIT) return TCX_NEXT;
    p.nd_header();
    p.ldx_b(R2, PKT, ICMP6_TYPE_OFF);
    p.ldx_b(R3, PKT, ICMP6_CODE_OFF);
    p.jne_imm(R3, 0, pass);
    p.jeq_imm(R2, ICMPV6_NA, na);
    p.jne_imm(R2, ICMPV6_NS, pass);

    // NS: to a group or to us, with an SLLA, from a specified unicast source, for a
    // target with a live entry on this port, with a valid checksum.
    // if (skb->pkt_type == PACKET_OTHERHOST) return TCX_NEXT;
    p.ldx_w(R0, CTX, SKB_PKT_TYPE);
    p.jeq_imm(R0, PACKET_OTHERHOST, pass);
    p.nd_option(ND_OPT_SLLA);
    p.specified_unicast_source();
    p.port_target_key(NS_KEY_AT);
    p.live_entry(ns_map, NS_KEY_AT, off(NsRelayValue::EXPIRY_AT));
    p.valid_checksum();
    // To the guest's MAC from ours, with our MAC as SLLA (what the engine's relay sends
    // to a REACHABLE guest).
    p.relay_rewrite(
        off(offset_of!(NsRelayValue, guest_mac)),
        off(offset_of!(NsRelayValue, our_mac)),
        off(offset_of!(NsRelayValue, egress)),
        off(NsRelayValue::HANDLED_AT),
    );

    // NA: to our MAC (a solicited answer to the NS we relayed, whose SLLA was ours), to
    // a unicast destination (announcements and DAD defences go everywhere: the engine's).
    // na:
    // if (skb->pkt_type != PACKET_HOST) return TCX_NEXT;
    // if (f->ip6_dst.s6_addr[0] == 0xff) return TCX_NEXT;
    // struct na_key key = { { skb->ifindex, f->nd_target }, f->ip6_dst };
    p.bind(na);
    p.ldx_w(R0, CTX, SKB_PKT_TYPE);
    p.jne_imm(R0, PACKET_HOST, pass);
    p.nd_option(ND_OPT_TLLA);
    p.ldx_b(R2, PKT, IPV6_DST_OFF);
    p.jeq_imm(R2, 0xff, pass);
    p.port_target_key(NA_KEY_AT + off(offset_of!(NaKey, ingress)));
    p.copy_addr(
        FP,
        NA_KEY_AT + off(offset_of!(NaKey, solicitor)),
        PKT,
        IPV6_DST_OFF,
    );
    p.live_entry(na_map, NA_KEY_AT, off(NaRelayValue::EXPIRY_AT));
    // From the bound guest only: its Ethernet source and its TLLA.
    // if (memcmp(f->eth_src, e->guest_mac, 6) || memcmp(f->opt_lladdr, e->guest_mac, 6))
    //     return TCX_NEXT;
    let guest_mac_at = off(offset_of!(NaRelayValue, guest_mac));
    p.same_mac(PKT, ETH_SRC_OFF, ENTRY, guest_mac_at);
    p.same_mac(PKT, ND_OPT_LLADDR_OFF, ENTRY, guest_mac_at);
    p.valid_checksum();
    // To the solicitor from our MAC, with our MAC as TLLA; R/S/O as the guest set them.
    p.relay_rewrite(
        off(offset_of!(NaRelayValue, solicitor_mac)),
        off(offset_of!(NaRelayValue, our_mac)),
        off(offset_of!(NaRelayValue, egress)),
        off(NaRelayValue::HANDLED_AT),
    );
    p.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_assembles_with_every_jump_inside() {
        super::super::ebpf_asm::assert_well_formed(&super::program(3, 4));
    }
}
