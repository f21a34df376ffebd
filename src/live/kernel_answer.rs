//! The in-kernel fast path (opt-in, `fast_path_in_kernel`): an eBPF program on the
//! uplink's tcx ingress hook that answers a Neighbor Solicitation for a freshly confirmed
//! guest by turning it into the Neighbor Advertisement the engine would send, without
//! waking a thread. The engine decides which targets qualify and until when
//! (`Action::KernelAnswer`); the daemon keeps them in a hash map the program reads.
//!
//! `AF_PACKET` taps run before tc ingress, so the capture thread still sees every NS:
//! the engine counts it, learns from it and relays the re-verification NS to the guest
//! as before; it only leaves the answer to the kernel while the entry is valid.
//!
//! The program answers only the common shape (a 32-byte NS with one Source Link-Layer
//! Address option, hop limit 255, a valid checksum, not DAD); anything else goes on to
//! the capture thread and the engine as without it.

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use std::mem::offset_of;

use super::ebpf_maps::{AnswerValue, MapValue, PortTarget, off};
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
            handled_tstamp: 0,
        };
        self.map
            .insert(PortTarget::new(ifindex, target).to_bytes(), &value)
    }

    /// Whether the program answered the NS for `target` that arrived on `ifindex` with
    /// receive timestamp `rx_tstamp_ns` (the capture's `SCM_TIMESTAMPNS` of that frame,
    /// seconds * 10^9 + nanoseconds): the entry of key ([`PortTarget`]) `(ifindex,
    /// target)` in the answer map says so. `false` for a frame without a timestamp, for
    /// a target without an entry, and when a later NS was answered with the same entry
    /// before this call: the engine then answers again rather than nobody.
    #[allow(
        dead_code,
        reason = "the capture path asks it once it reads SCM_TIMESTAMPNS (issue 15)"
    )]
    pub fn answered(&self, ifindex: i32, target: Ipv6Addr, rx_tstamp_ns: u64) -> io::Result<bool> {
        self.map
            .handled(&PortTarget::new(ifindex, target).to_bytes(), rx_tstamp_ns)
    }

    /// Stops answering for `target` on every port.
    pub fn forget(&mut self, target: Ipv6Addr) {
        self.map.remove_target(target);
    }

    /// The `handled_tstamp` of the entry for `target` on `ifindex`, if there is one.
    #[cfg(test)]
    pub(super) fn handled_tstamp(&self, ifindex: i32, target: Ipv6Addr) -> Option<u64> {
        self.map
            .handled_tstamp(&PortTarget::new(ifindex, target).to_bytes())
            .expect("map lookup")
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
fn program(map_fd: i32) -> Vec<EbpfInsn> {
    let mut a = Asm::new();
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.pass_if(JEQ_K, R0, 0, PACKET_OTHERHOST);
    a.nd_frame(135, 1);
    a.specified_unicast_source();
    a.ifindex_target_key(KEY_AT);
    a.live_entry(map_fd, KEY_AT, off(AnswerValue::EXPIRY_AT));
    a.valid_checksum();
    // The NA: to the asker's SLLA from our MAC, from the target, S=1 O=0 R=0, with our
    // MAC as Target Link-Layer Address (what the engine's fast path sends).
    a.copy_mac(PKT, 0, PKT, OPTION + 2);
    let mac_at = off(offset_of!(AnswerValue, mac));
    a.copy_mac(PKT, 6, ENTRY, mac_at);
    a.store_imm(4, PKT, IP6, 0x60);
    a.copy(PKT, IP6_DST, PKT, IP6_SRC, 8);
    a.copy(PKT, IP6_DST + 8, PKT, IP6_SRC + 8, 8);
    a.copy(PKT, IP6_SRC, PKT, TARGET, 8);
    a.copy(PKT, IP6_SRC + 8, PKT, TARGET + 8, 8);
    a.store_imm(4, PKT, ICMP, 136); // type, code, checksum 0
    a.store_imm(4, PKT, ICMP + 4, 0x40); // flags: Solicited
    a.store_imm(2, PKT, OPTION, 0x0102); // Target Link-Layer Address, length 1
    a.copy_mac(PKT, OPTION + 2, ENTRY, mac_at);
    a.write_checksum();
    a.mark_handled(off(AnswerValue::HANDLED_AT));
    a.ins(LDX_W, R1, CTX, SKB_IFINDEX, 0);
    a.redirect();
    a.finish()
}
