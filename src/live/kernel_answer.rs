//! The in-kernel fast path (opt-in, `fast_path_in_kernel`): an eBPF program on the
//! uplink's tcx ingress hook that answers a Neighbor Solicitation for a freshly confirmed
//! guest by turning it into the Neighbor Advertisement the engine would send, without
//! waking a thread. The engine decides which targets qualify and until when
//! (`Action::KernelAnswer`); the daemon keeps them in a hash map the program reads.
//!
//! `AF_PACKET` taps run before tc ingress, so the capture thread still sees every NS:
//! the engine counts it, learns from it and relays the re-verification NS to the guest
//! as before; it only leaves the answer to the kernel while the entry is valid. The
//! program stores the receive timestamp of each NS it answered in the entry it used;
//! [`KernelAnswers::answered`] compares it with the capture's, the kernel's word on
//! whether it answered that very frame.
//!
//! The program answers only the common shape (a 32-byte NS with one Source Link-Layer
//! Address option, hop limit 255, a valid checksum, not DAD); anything else goes on to
//! the capture thread and the engine as without it.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::RawFd;
use std::time::Duration;

use std::mem::offset_of;

use super::ebpf_asm::{R0, R1};
use super::ebpf_maps::{AnswerValue, Handled, MapValue, PortTarget, off};
use super::ebpf_prog::*;
use super::sys::ebpf::EbpfInsn;
use crate::wire::Mac;

const KEY: &str = "fast_path_in_kernel";

/// The loaded program, its map and one tcx link per port it answers on.
#[derive(Debug)]
pub struct KernelAnswers {
    map: TargetMap<{ PortTarget::SIZE }, AnswerValue>,
    links: TcxLinks,
}

/// Tells whether the program answered an NS (see [`KernelAnswers::witness`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerWitness(MapWitness<{ PortTarget::SIZE }, AnswerValue>);

impl AnswerWitness {
    /// Whether the program answered the NS for `target` that arrived on `ifindex` with
    /// receive timestamp `rx_tstamp_ns` (the capture's `SCM_TIMESTAMPNS` of that frame,
    /// seconds * 10^9 + nanoseconds): the entry of key ([`PortTarget`]) `(ifindex,
    /// target)` in the answer map says so. `false` for a frame without a timestamp, for
    /// a target without an entry, and when a later NS was answered with the same entry
    /// before this call: the engine then answers again rather than nobody.
    pub fn answered(&self, ifindex: i32, target: Ipv6Addr, rx_tstamp_ns: u64) -> io::Result<bool> {
        self.0
            .took(&PortTarget::new(ifindex, target).to_bytes(), rx_tstamp_ns)
    }
}

impl KernelAnswers {
    /// Creates a map for `max_entries` (port, guest) pairs and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let map = TargetMap::create(KEY, max_entries)?;
        let links = TcxLinks::load(KEY, &program(map.raw()), "ndprelay_ns")?;
        Ok(Self { map, links })
    }

    /// The (port, guest) pairs the map has room for.
    pub fn capacity(&self) -> u32 {
        self.map.capacity()
    }

    /// Answers on exactly `ports` (name, ifindex): the upstream ports present now. A
    /// port re-created under a new index gets a new link; links and entries of indexes
    /// no longer listed go.
    pub fn sync(&mut self, ports: &[(&str, i32)]) -> Vec<SetupError> {
        let (gone, errors) = self.links.sync(ports);
        self.map.remove_ingress(&gone);
        errors
    }

    /// Answers NS for `target` arriving on `ifindex` with `mac` for `valid_for` from now.
    pub fn answer(
        &mut self,
        ifindex: i32,
        target: Ipv6Addr,
        mac: Mac,
        valid_for: Duration,
    ) -> io::Result<()> {
        if !self.links.attached(ifindex) {
            return Err(io::Error::other("the program is not attached to the port"));
        }
        let value = AnswerValue {
            mac: mac.into(),
            expiry_ns: expiry_ns(valid_for),
            handled: Handled::default(),
        };
        self.map
            .insert(PortTarget::new(ifindex, target).to_bytes(), &value)
    }

    /// What the program answered, readable from any thread.
    pub fn witness(&self) -> AnswerWitness {
        AnswerWitness(self.map.witness())
    }

    /// Stops answering for `target` on every port.
    pub fn forget(&mut self, target: Ipv6Addr) {
        self.map.remove_target(target);
    }

    /// The last stamp in the ring of the entry for `target` on `ifindex`, if any.
    #[cfg(test)]
    pub(super) fn handled_tstamp(&self, ifindex: i32, target: Ipv6Addr) -> Option<u64> {
        self.map
            .handled(&PortTarget::new(ifindex, target).to_bytes())
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

/// Stack slot of the map key.
const KEY_AT: i16 = -32;

/// The program; `map_fd` is the map of [`KernelAnswers`].
fn program(map_fd: RawFd) -> Vec<EbpfInsn> {
    let mut p = NdProg::new();
    let pass = p.pass;
    // if (skb->pkt_type == PACKET_OTHERHOST) return TCX_NEXT;
    p.ldx_w(R0, CTX, SKB_PKT_TYPE);
    p.jeq_imm(R0, PACKET_OTHERHOST, pass);
    // An NS with one SLLA from a specified unicast source, for a target with a live
    // entry on this port, with a valid checksum.
    p.nd_frame(ICMPV6_NS, ND_OPT_SLLA);
    p.specified_unicast_source();
    p.port_target_key(KEY_AT);
    p.live_entry(map_fd, KEY_AT, off(AnswerValue::EXPIRY_AT));
    p.valid_checksum();

    // The NA: to the asker's SLLA from our MAC, from the target, S=1 O=0 R=0, with our
    // MAC as Target Link-Layer Address (what the engine's fast path sends).
    //
    // memcpy(f->eth_dst, f->opt_lladdr, 6);
    // memcpy(f->eth_src, e->mac, 6);
    // f->ip6_flow = htonl(0x60000000);
    // f->ip6_dst = f->ip6_src;
    // f->ip6_src = f->nd_target;
    // f->icmp6_type = ND_NEIGHBOR_ADVERT; f->icmp6_code = 0; f->icmp6_cksum = 0;
    // f->nd_na_flags_reserved = ND_NA_FLAG_SOLICITED;
    // f->opt_type = ND_OPT_TARGET_LINKADDR; f->opt_len = 1;
    // memcpy(f->opt_lladdr, e->mac, 6);
    // write_checksum(f);
    // mark_handled(e);
    // return bpf_redirect(skb->ifindex, 0);
    let mac_at = off(offset_of!(AnswerValue, mac));
    p.copy_mac(PKT, ETH_DST_OFF, PKT, ND_OPT_LLADDR_OFF);
    p.copy_mac(PKT, ETH_SRC_OFF, ENTRY, mac_at);
    p.store_imm32(PKT, IPV6_VER_TC_FLOW_OFF, wire32(0x6000_0000));
    p.copy64(PKT, IPV6_DST_OFF, PKT, IPV6_SRC_OFF);
    p.copy64(PKT, IPV6_DST_OFF + 8, PKT, IPV6_SRC_OFF + 8);
    p.copy64(PKT, IPV6_SRC_OFF, PKT, ND_TARGET_OFF);
    p.copy64(PKT, IPV6_SRC_OFF + 8, PKT, ND_TARGET_OFF + 8);
    p.store_imm32(PKT, ICMP6_TYPE_OFF, wire32((ICMPV6_NA as u32) << 24));
    p.store_imm32(PKT, ND_FLAGS_OFF, wire32(ND_NA_FLAG_SOLICITED));
    p.store_imm16(PKT, ND_OPT_OFF, wire16((ND_OPT_TLLA as u16) << 8 | 1));
    p.copy_mac(PKT, ND_OPT_LLADDR_OFF, ENTRY, mac_at);
    p.write_checksum();
    p.mark_handled(off(AnswerValue::HANDLED_AT));
    p.ldx_w(R1, CTX, SKB_IFINDEX);
    p.redirect();
    p.finish()
}

/// The NA's S flag in its flags word (RFC 4861 §4.4).
const ND_NA_FLAG_SOLICITED: u32 = 0x4000_0000;

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_assembles_with_every_jump_inside() {
        super::super::ebpf_asm::assert_well_formed(&super::program(3));
    }
}
