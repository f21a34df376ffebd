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

use super::ebpf_prog::*;
use super::sys::ebpf::EbpfInsn;
use crate::wire::Mac;

const KEY: &str = "fast_path_in_kernel";
/// Key: ingress ifindex (native order), then the target address.
const KEY_SIZE: usize = 20;
/// Value: the MAC to answer with, two bytes of padding, the expiry in `CLOCK_MONOTONIC`
/// nanoseconds (native order).
const VALUE_SIZE: usize = 16;

/// The loaded program, its map and one tcx link per port it answers on.
#[derive(Debug)]
pub struct KernelAnswers {
    map: TargetMap<KEY_SIZE>,
    links: TcxLinks,
}

impl KernelAnswers {
    /// Creates a map for `max_entries` (port, guest) pairs and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let map = TargetMap::create(KEY, VALUE_SIZE, max_entries)?;
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
        let expiry = expiry_ns(valid_for);
        let mut value = [0u8; VALUE_SIZE];
        value[..6].copy_from_slice(&mac.0);
        value[8..].copy_from_slice(&expiry.to_ne_bytes());
        self.map
            .insert(ifindex_target_key(ifindex, target), &value, expiry)
    }

    /// Stops answering for `target` on every port.
    pub fn forget(&mut self, target: Ipv6Addr) {
        self.map.remove_target(target);
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
/// Offset of the expiry in the map value.
const EXPIRY_AT: i16 = 8;

/// The program; `map_fd` is the map of [`KernelAnswers`].
fn program(map_fd: i32) -> Vec<EbpfInsn> {
    let mut a = Asm::new();
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.pass_if(JEQ_K, R0, 0, PACKET_OTHERHOST);
    a.nd_frame(135, 1);
    a.specified_unicast_source();
    a.ifindex_target_key(KEY_AT);
    a.live_entry(map_fd, KEY_AT, EXPIRY_AT);
    a.valid_checksum();
    // The NA: to the asker's SLLA from our MAC, from the target, S=1 O=0 R=0, with our
    // MAC as Target Link-Layer Address (what the engine's fast path sends).
    a.copy_mac(PKT, 0, PKT, OPTION + 2);
    a.copy_mac(PKT, 6, ENTRY, 0);
    a.store_imm(4, PKT, IP6, 0x60);
    a.copy(PKT, IP6_DST, PKT, IP6_SRC, 8);
    a.copy(PKT, IP6_DST + 8, PKT, IP6_SRC + 8, 8);
    a.copy(PKT, IP6_SRC, PKT, TARGET, 8);
    a.copy(PKT, IP6_SRC + 8, PKT, TARGET + 8, 8);
    a.store_imm(4, PKT, ICMP, 136); // type, code, checksum 0
    a.store_imm(4, PKT, ICMP + 4, 0x40); // flags: Solicited
    a.store_imm(2, PKT, OPTION, 0x0102); // Target Link-Layer Address, length 1
    a.copy_mac(PKT, OPTION + 2, ENTRY, 0);
    a.write_checksum();
    a.ins(LDX_W, R1, CTX, SKB_IFINDEX, 0);
    a.redirect();
    a.finish()
}
