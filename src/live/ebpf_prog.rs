//! What the two in-kernel programs (`kernel_answer.rs`, `kernel_relay.rs`) share: the
//! named offsets of `__sk_buff` and of an ND frame with one link-layer address option,
//! the blocks both build from the typed assembler (`ebpf_asm.rs`) — the frame checks,
//! the map lookup, the checksum, the relay rewrite — their maps (keyed by ingress port
//! and target) with what the daemon put in them, their ingress hooks (tcx or tc,
//! `tc.rs`), and their set-up errors.
//!
//! Each block's doc gives the C it stands for; in that C, `f` is the frame
//! (`skb->data`), `e` the map entry found, and every failed check is
//! `return TCX_NEXT;` (on to the next program and the stack, frame untouched).

use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of};
use std::net::Ipv6Addr;
use std::ops::{Deref, DerefMut};
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::ebpf_asm::*;
use super::ebpf_maps::{HANDLED_RING, Handled, MapValue, off};
use super::sys::ebpf::{self, BpfMap, EbpfInsn, LoadError, SkBuff};
use super::tc::{self, AttachError, Ingress};
use zerocopy::{FromBytes, IntoBytes};

// The `struct __sk_buff` fields the programs read.
pub(super) const SKB_PKT_TYPE: i16 = off(offset_of!(SkBuff, pkt_type));
const SKB_VLAN_PRESENT: i16 = off(offset_of!(SkBuff, vlan_present));
pub(super) const SKB_IFINDEX: i16 = off(offset_of!(SkBuff, ifindex));
const SKB_DATA: i16 = off(offset_of!(SkBuff, data));
const SKB_DATA_END: i16 = off(offset_of!(SkBuff, data_end));
const SKB_TSTAMP: i16 = off(offset_of!(SkBuff, tstamp));

/// `skb->pkt_type` (linux/if_packet.h): to this host's MAC.
pub(super) const PACKET_HOST: i32 = 0;
/// To another host's MAC (seen in promiscuous mode).
pub(super) const PACKET_OTHERHOST: i32 = 3;
/// The tcx verdict "on to the next program, then the stack".
const TCX_NEXT: i32 = -1;

// Frame offsets of an ND message with one link-layer address option: Ethernet, the IPv6
// header (RFC 8200 §3), ICMPv6 (RFC 4443 §2.1), the NS or NA (RFC 4861 §4.3, §4.4), the
// option (§4.6.1).
pub(super) const ETH_DST_OFF: i16 = 0;
pub(super) const ETH_SRC_OFF: i16 = 6;
const ETH_TYPE_OFF: i16 = 12;
const IPV6_OFF: i16 = 14;
pub(super) const IPV6_VER_TC_FLOW_OFF: i16 = IPV6_OFF;
const IPV6_PAYLOAD_LEN_OFF: i16 = IPV6_OFF + 4;
const IPV6_NEXT_HDR_OFF: i16 = IPV6_OFF + 6;
const IPV6_HOP_LIMIT_OFF: i16 = IPV6_OFF + 7;
pub(super) const IPV6_SRC_OFF: i16 = IPV6_OFF + 8;
pub(super) const IPV6_DST_OFF: i16 = IPV6_OFF + 24;
const ICMP6_OFF: i16 = IPV6_OFF + 40;
pub(super) const ICMP6_TYPE_OFF: i16 = ICMP6_OFF;
pub(super) const ICMP6_CODE_OFF: i16 = ICMP6_OFF + 1;
const ICMP6_CSUM_OFF: i16 = ICMP6_OFF + 2;
/// The NA's R, S, O flags byte and reserved bytes; the NS's reserved bytes.
pub(super) const ND_FLAGS_OFF: i16 = ICMP6_OFF + 4;
pub(super) const ND_TARGET_OFF: i16 = ICMP6_OFF + 8;
pub(super) const ND_OPT_OFF: i16 = ICMP6_OFF + 24;
const ND_OPT_LEN_OFF: i16 = ND_OPT_OFF + 1;
pub(super) const ND_OPT_LLADDR_OFF: i16 = ND_OPT_OFF + 2;
/// The whole frame: the option is 8 bytes.
const ND_FRAME_LEN: i32 = ND_OPT_OFF as i32 + 8;
/// The ICMPv6 message's length: the IPv6 payload.
const ND_MSG_LEN: i32 = ND_FRAME_LEN - ICMP6_OFF as i32;

/// What a native-order 16-bit load of the big-endian `v` on the wire gives, and what a
/// 16-bit store must hold to put it there.
pub(super) const fn wire16(v: u16) -> i32 {
    u16::from_ne_bytes(v.to_be_bytes()) as i32
}

/// What a native-order 32-bit store must hold to put the big-endian `v` on the wire (the
/// low 32 bits of the register are stored).
pub(super) const fn wire32(v: u32) -> i32 {
    u32::from_ne_bytes(v.to_be_bytes()) as i32
}

const ETH_P_IPV6_BE: i32 = wire16(0x86dd);
const IPPROTO_ICMPV6: i32 = 58;
pub(super) const ICMPV6_NS: i32 = 135;
pub(super) const ICMPV6_NA: i32 = 136;
pub(super) const ND_OPT_SLLA: i32 = 1;
pub(super) const ND_OPT_TLLA: i32 = 2;

// Registers the blocks agree on; R6..R9 survive helper calls.
/// `struct __sk_buff *skb`.
pub(super) const CTX: Reg = R6;
/// `f`: `skb->data`, once [`NdProg::nd_header`] checked the frame's length.
pub(super) const PKT: Reg = R7;
/// `skb->data_end`.
const PKT_END: Reg = R8;
/// `e`: the map entry [`NdProg::live_entry`] found.
pub(super) const ENTRY: Reg = R9;

/// Stack slot of the checksum's pseudo-header tail; each program's map key lies below.
const PSEUDO_AT: i16 = -8;

/// A program on an ND frame: the typed assembler, and the exit every failed check jumps
/// to (`return TCX_NEXT;`).
pub(super) struct NdProg {
    asm: Asm,
    /// `return TCX_NEXT;`
    pub(super) pass: Label,
}

impl Deref for NdProg {
    type Target = Asm;
    fn deref(&self) -> &Asm {
        &self.asm
    }
}

impl DerefMut for NdProg {
    fn deref_mut(&mut self) -> &mut Asm {
        &mut self.asm
    }
}

impl NdProg {
    /// `int prog(struct __sk_buff *skb)`: keeps `skb` in `CTX`.
    pub(super) fn new() -> Self {
        let mut asm = Asm::new();
        let pass = asm.label();
        asm.mov_reg(CTX, R1);
        Self { asm, pass }
    }

    /// Loads the frame and passes unless it is an IPv6 ND message of `icmp_type`, code 0,
    /// hop limit 255, 32 bytes long with one option of `option_type` and length 1.
    pub(super) fn nd_frame(&mut self, icmp_type: i32, option_type: i32) {
        let pass = self.pass;
        self.nd_header();
        // if (f->icmp6_type != icmp_type || f->icmp6_code != 0) return TCX_NEXT;
        self.ldx_b(R2, PKT, ICMP6_TYPE_OFF);
        self.jne_imm(R2, icmp_type, pass);
        self.ldx_b(R2, PKT, ICMP6_CODE_OFF);
        self.jne_imm(R2, 0, pass);
        self.nd_option(option_type);
    }

    /// Loads the frame and passes unless it is an untagged IPv6 packet with 32 bytes of
    /// ICMPv6 payload (Next Header 58, no extension header) and hop limit 255.
    ///
    /// ```c
    /// if (skb->vlan_present) return TCX_NEXT;
    /// f = skb->data;
    /// if (f + ND_FRAME_LEN > skb->data_end) return TCX_NEXT;
    /// if (f->eth_type != htons(ETH_P_IPV6)) return TCX_NEXT;
    /// if (f->ip6_plen != htons(32) || f->ip6_nxt != IPPROTO_ICMPV6
    ///     || f->ip6_hlim != 255 || (f->ip6_vfc & 0xf0) != 0x60) return TCX_NEXT;
    /// ```
    pub(super) fn nd_header(&mut self) {
        let pass = self.pass;
        // A tagged frame's tag is in metadata and its data looks untagged: it belongs
        // to a VLAN no port serves, and goes on to the capture, which drops it by reason
        // (`drop_vlan_tagged`).
        self.ldx_w(R2, CTX, SKB_VLAN_PRESENT);
        self.jne_imm(R2, 0, pass);
        self.ldx_w(PKT, CTX, SKB_DATA);
        self.ldx_w(PKT_END, CTX, SKB_DATA_END);
        self.mov_reg(R2, PKT);
        self.add_imm(R2, ND_FRAME_LEN);
        self.jgt_reg(R2, PKT_END, pass);
        self.ldx_h(R2, PKT, ETH_TYPE_OFF);
        self.jne_imm(R2, ETH_P_IPV6_BE, pass);
        self.ldx_h(R2, PKT, IPV6_PAYLOAD_LEN_OFF);
        self.jne_imm(R2, wire16(ND_MSG_LEN as u16), pass);
        self.ldx_b(R2, PKT, IPV6_NEXT_HDR_OFF);
        self.jne_imm(R2, IPPROTO_ICMPV6, pass);
        self.ldx_b(R2, PKT, IPV6_HOP_LIMIT_OFF);
        self.jne_imm(R2, 255, pass);
        self.ldx_b(R2, PKT, IPV6_VER_TC_FLOW_OFF);
        self.and_imm(R2, 0xf0);
        self.jne_imm(R2, 0x60, pass);
    }

    /// Passes unless the message's one option is of `option_type`, length 1.
    ///
    /// ```c
    /// if (f->opt_type != option_type || f->opt_len != 1) return TCX_NEXT;
    /// ```
    pub(super) fn nd_option(&mut self, option_type: i32) {
        let pass = self.pass;
        self.ldx_b(R2, PKT, ND_OPT_OFF);
        self.jne_imm(R2, option_type, pass);
        self.ldx_b(R2, PKT, ND_OPT_LEN_OFF);
        self.jne_imm(R2, 1, pass);
    }

    /// Passes on the unspecified source (DAD, which the engine relays) and on a
    /// multicast one (invalid, RFC 4861 §7.1.1; the engine drops it).
    ///
    /// ```c
    /// if ((f->ip6_src.s6_addr64[0] | f->ip6_src.s6_addr64[1]) == 0) return TCX_NEXT;
    /// if (f->ip6_src.s6_addr[0] == 0xff) return TCX_NEXT;
    /// ```
    pub(super) fn specified_unicast_source(&mut self) {
        let pass = self.pass;
        self.ldx_dw(R2, PKT, IPV6_SRC_OFF);
        self.ldx_dw(R3, PKT, IPV6_SRC_OFF + 8);
        self.or_reg(R2, R3);
        self.jeq_imm(R2, 0, pass);
        self.ldx_b(R2, PKT, IPV6_SRC_OFF);
        self.jeq_imm(R2, 0xff, pass);
    }

    /// Stores a [`PortTarget`](super::ebpf_maps::PortTarget) key at `key_at` on the
    /// stack.
    ///
    /// ```c
    /// struct port_target key = { .ifindex = skb->ifindex, .target = f->nd_target };
    /// ```
    pub(super) fn port_target_key(&mut self, key_at: i16) {
        use super::ebpf_maps::PortTarget;
        let ifindex_at = key_at + off(offset_of!(PortTarget, ifindex));
        let target_at = key_at + off(offset_of!(PortTarget, target));
        self.ldx_w(R2, CTX, SKB_IFINDEX);
        self.stx_w(FP, ifindex_at, R2);
        self.copy_addr(FP, target_at, PKT, ND_TARGET_OFF);
    }

    /// Copies an IPv6 address (4 x 4 bytes: the stack slot may be 4-byte aligned only).
    pub(super) fn copy_addr(&mut self, dst: Reg, doff: i16, src: Reg, soff: i16) {
        for i in 0..4 {
            self.ldx_w(R2, src, soff + 4 * i);
            self.stx_w(dst, doff + 4 * i, R2);
        }
    }

    /// Looks up the key at `key_at` on the stack in `map_fd` and passes unless there is
    /// an entry whose `expiry_ns` at `expiry_at` is later than now; the entry is in
    /// `ENTRY`.
    ///
    /// ```c
    /// e = bpf_map_lookup_elem(&map, &key);
    /// if (!e) return TCX_NEXT;
    /// if (bpf_ktime_get_ns() >= e->expiry_ns) return TCX_NEXT;
    /// ```
    pub(super) fn live_entry(&mut self, map_fd: RawFd, key_at: i16, expiry_at: i16) {
        let pass = self.pass;
        self.ld_map_fd(R1, map_fd);
        self.mov_reg(R2, FP);
        self.add_imm(R2, i32::from(key_at));
        self.call(Helper::MapLookupElem);
        self.jeq_imm(R0, 0, pass);
        self.mov_reg(ENTRY, R0);
        self.call(Helper::KtimeGetNs);
        self.ldx_dw(R1, ENTRY, expiry_at);
        self.jge_reg(R0, R1, pass);
    }

    /// Ones'-complement sum of the addresses and the ICMPv6 message (contiguous: 64
    /// bytes from the IPv6 source on) plus the pseudo-header's length (32) and next
    /// header (58), folded to 16 bits, in R0.
    ///
    /// ```c
    /// __be32 tail[2] = { htonl(32), htonl(IPPROTO_ICMPV6) };
    /// s64 sum = bpf_csum_diff(0, 0, &f->ip6_src, 64, 0);
    /// sum = bpf_csum_diff(0, 0, tail, 8, sum);
    /// for (int i = 0; i < 3; i++) sum = (sum & 0xffff) + (sum >> 16);
    /// ```
    fn checksum(&mut self) {
        self.store_imm32(FP, PSEUDO_AT, wire32(ND_MSG_LEN as u32));
        self.store_imm32(FP, PSEUDO_AT + 4, wire32(IPPROTO_ICMPV6 as u32));
        self.mov_imm(R1, 0);
        self.mov_imm(R2, 0);
        self.mov_reg(R3, PKT);
        self.add_imm(R3, i32::from(IPV6_SRC_OFF));
        self.mov_imm(R4, 64);
        self.mov_imm(R5, 0);
        self.call(Helper::CsumDiff);
        self.mov_imm(R1, 0);
        self.mov_imm(R2, 0);
        self.mov_reg(R3, FP);
        self.add_imm(R3, i32::from(PSEUDO_AT));
        self.mov_imm(R4, 8);
        self.mov_reg(R5, R0);
        self.call(Helper::CsumDiff);
        for _ in 0..3 {
            self.mov_reg(R1, R0);
            self.rsh_imm(R1, 16);
            self.and_imm(R0, 0xffff);
            self.add_reg(R0, R1);
        }
    }

    /// Passes unless the ICMPv6 checksum is valid.
    ///
    /// ```c
    /// if (checksum(f) != 0xffff) return TCX_NEXT;
    /// ```
    pub(super) fn valid_checksum(&mut self) {
        let pass = self.pass;
        self.checksum();
        self.jne_imm(R0, 0xffff, pass);
    }

    /// Writes the checksum of the rewritten message.
    ///
    /// ```c
    /// f->icmp6_cksum = 0;
    /// f->icmp6_cksum = ~checksum(f);
    /// ```
    pub(super) fn write_checksum(&mut self) {
        self.mov_imm(R2, 0);
        self.stx_h(PKT, ICMP6_CSUM_OFF, R2);
        self.checksum();
        self.xor_imm(R0, 0xffff);
        self.stx_h(PKT, ICMP6_CSUM_OFF, R0);
    }

    /// `*(u64 *)(dst + doff) = *(u64 *)(src + soff)`
    pub(super) fn copy64(&mut self, dst: Reg, doff: i16, src: Reg, soff: i16) {
        self.ldx_dw(R2, src, soff);
        self.stx_dw(dst, doff, R2);
    }

    /// Copies a MAC (4 + 2 bytes).
    pub(super) fn copy_mac(&mut self, dst: Reg, doff: i16, src: Reg, soff: i16) {
        self.ldx_w(R2, src, soff);
        self.stx_w(dst, doff, R2);
        self.ldx_h(R2, src, soff + 4);
        self.stx_h(dst, doff + 4, R2);
    }

    /// Passes unless the MACs at `a + aoff` and `b + boff` are equal.
    ///
    /// ```c
    /// if (memcmp(a + aoff, b + boff, 6)) return TCX_NEXT;
    /// ```
    pub(super) fn same_mac(&mut self, a: Reg, aoff: i16, b: Reg, boff: i16) {
        let pass = self.pass;
        self.ldx_w(R2, a, aoff);
        self.ldx_w(R3, b, boff);
        self.jne_reg(R2, R3, pass);
        self.ldx_h(R2, a, aoff + 4);
        self.ldx_h(R3, b, boff + 4);
        self.jne_reg(R2, R3, pass);
    }

    /// `*(u32 *)(dst + off) = imm` (through R2).
    pub(super) fn store_imm32(&mut self, dst: Reg, off: i16, imm: i32) {
        self.mov_imm(R2, imm);
        self.stx_w(dst, off, R2);
    }

    /// `*(u16 *)(dst + off) = imm` (through R2).
    pub(super) fn store_imm16(&mut self, dst: Reg, off: i16, imm: i32) {
        self.mov_imm(R2, imm);
        self.stx_h(dst, off, R2);
    }

    /// Rewrites the frame as the engine's relay does (Ethernet destination from the
    /// entry's `dst_mac_at`, Ethernet source and the one link-layer option from its
    /// `our_mac_at`, a new checksum; the IPv6 header and the message as they came),
    /// marks the entry's `handled_at`, and redirects it out of the interface whose
    /// index is at the entry's `egress_at`.
    ///
    /// ```c
    /// memcpy(f->eth_dst, e->dst_mac, 6);
    /// memcpy(f->eth_src, e->our_mac, 6);
    /// memcpy(f->opt_lladdr, e->our_mac, 6);
    /// write_checksum(f);
    /// mark_handled(e);
    /// return bpf_redirect(e->egress, 0);
    /// ```
    pub(super) fn relay_rewrite(
        &mut self,
        dst_mac_at: i16,
        our_mac_at: i16,
        egress_at: i16,
        handled_at: i16,
    ) {
        self.copy_mac(PKT, ETH_DST_OFF, ENTRY, dst_mac_at);
        self.copy_mac(PKT, ETH_SRC_OFF, ENTRY, our_mac_at);
        self.copy_mac(PKT, ND_OPT_LLADDR_OFF, ENTRY, our_mac_at);
        self.write_checksum();
        self.mark_handled(handled_at);
        self.ldx_w(R1, ENTRY, egress_at);
        self.redirect();
    }

    /// Stores the frame's receive timestamp in the entry's [`Handled`] ring at
    /// `handled_at`: the program's word that it handled this frame with this entry.
    /// Two CPUs storing at once may share a slot: a stamp lost that way makes the engine
    /// do that frame's work again, never skip it.
    ///
    /// ```c
    /// __u32 i = e->handled.next & (HANDLED_RING - 1);
    /// e->handled.tstamp[i] = skb->tstamp;
    /// e->handled.next = i + 1;
    /// ```
    pub(super) fn mark_handled(&mut self, handled_at: i16) {
        const _: () = assert!(HANDLED_RING.is_power_of_two());
        let next_at = handled_at + off(offset_of!(Handled, next));
        let ring_at = handled_at + off(offset_of!(Handled, tstamp));
        self.ldx_w(R3, ENTRY, next_at);
        self.and_imm(R3, HANDLED_RING as i32 - 1);
        self.mov_reg(R4, R3);
        self.lsh_imm(R4, 3);
        self.mov_reg(R5, ENTRY);
        self.add_reg(R5, R4);
        self.ldx_dw(R2, CTX, SKB_TSTAMP);
        self.stx_dw(R5, ring_at, R2);
        self.add_imm(R3, 1);
        self.stx_w(ENTRY, next_at, R3);
    }

    /// Redirects the frame out of the interface whose index is in R1 and ends the
    /// program.
    ///
    /// ```c
    /// return bpf_redirect(ifindex, 0);
    /// ```
    pub(super) fn redirect(&mut self) {
        self.mov_imm(R2, 0);
        self.call(Helper::Redirect);
        self.exit();
    }

    /// Binds the pass-on exit and returns the program.
    ///
    /// ```c
    /// pass: return TCX_NEXT;
    /// ```
    pub(super) fn finish(mut self) -> Vec<EbpfInsn> {
        let pass = self.pass;
        self.bind(pass);
        self.mov_imm(R0, TCX_NEXT);
        self.exit();
        self.asm.finish()
    }
}

/// Reads the [`Handled`] rings the program wrote into a [`TargetMap`]'s entries: shared
/// with the capture threads, which ask about their frames before taking the engine's
/// lock (a lookup is a syscall, and a flood of frames shaped like the programs' would
/// otherwise hold the lock for one per frame).
#[derive(Debug)]
pub(super) struct MapWitness<const K: usize, V> {
    map: Arc<BpfMap>,
    value: PhantomData<V>,
}

// Not derived: `V` (a value type) need not be `Clone`.
impl<const K: usize, V> Clone for MapWitness<K, V> {
    fn clone(&self) -> Self {
        Self {
            map: Arc::clone(&self.map),
            value: PhantomData,
        }
    }
}

impl<const K: usize, V> PartialEq for MapWitness<K, V> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.map, &other.map)
    }
}

impl<const K: usize, V: MapValue> MapWitness<K, V> {
    /// The [`Handled`] ring of `key`'s entry, if there is one.
    pub(super) fn handled(&self, key: &[u8; K]) -> io::Result<Option<Handled>> {
        // On the stack: a lookup per frame should not allocate.
        let mut value = [0u8; MAX_VALUE];
        let value = value
            .get_mut(..V::SIZE)
            .ok_or_else(|| io::Error::other("map value larger than MAX_VALUE"))?;
        if !self.map.lookup(key, value)? {
            return Ok(None);
        }
        let ring = &value[V::HANDLED_AT..V::HANDLED_AT + size_of::<Handled>()];
        Ok(Handled::read_from_bytes(ring).ok())
    }

    /// Whether the program answered or relayed the frame received at `rx_tstamp_ns`
    /// (`skb->tstamp`, as `SCM_TIMESTAMPNS` reports it: seconds * 10^9 + nanoseconds)
    /// with `key`'s entry: the entry's ring holds that timestamp. A frame without a
    /// timestamp (0) is never the program's; more than [`HANDLED_RING`] later frames
    /// handled with the same entry, or the entry removed since, make this `false`
    /// although the program acted: the answer errs towards the engine doing the work
    /// again, never towards nobody doing it.
    pub(super) fn took(&self, key: &[u8; K], rx_tstamp_ns: u64) -> io::Result<bool> {
        if rx_tstamp_ns == 0 {
            return Ok(false);
        }
        Ok(self.handled(key)?.is_some_and(|h| h.contains(rx_tstamp_ns)))
    }
}

/// Room for the largest map value on the stack.
const MAX_VALUE: usize = 128;

/// A hash map the programs read, whose `K`-byte keys start with a
/// [`PortTarget`](super::ebpf_maps::PortTarget), with
/// values `V`, and what the daemon put in it (by target, each key with its expiry):
/// entries are found by port or target, and expired ones make room in a full map.
#[derive(Debug)]
pub(super) struct TargetMap<const K: usize, V> {
    /// The config key that asked for the map, for log lines.
    config_key: &'static str,
    map: Arc<BpfMap>,
    entries: HashMap<Ipv6Addr, Vec<([u8; K], u64)>>,
    len: usize,
    capacity: u32,
    /// No entry expires before this: a full map is not searched for expired entries
    /// again before then.
    earliest: u64,
    value: PhantomData<V>,
}

impl<const K: usize, V: MapValue> TargetMap<K, V> {
    pub(super) fn create(config_key: &'static str, capacity: u32) -> Result<Self, SetupError> {
        let capacity = capacity.max(1);
        let map = BpfMap::create(K as u32, V::SIZE as u32, capacity).map_err(|error| {
            SetupError::Map {
                key: config_key,
                error,
            }
        })?;
        Ok(Self {
            config_key,
            map: Arc::new(map),
            entries: HashMap::new(),
            len: 0,
            capacity,
            earliest: 0,
            value: PhantomData,
        })
    }

    pub(super) fn raw(&self) -> RawFd {
        self.map.raw()
    }

    /// The entries the map has room for.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Inserts or replaces; a full map first drops its expired entries. A replaced
    /// entry keeps the ring of stamps the program wrote, so that renewing an
    /// entry does not lose the word on a frame the engine has yet to read.
    pub(super) fn insert(&mut self, key: [u8; K], value: &V) -> io::Result<()> {
        let expiry = value.expiry_ns();
        let mut bytes = value.to_bytes();
        let target = key_target(&key);
        let known = self
            .entries
            .get(&target)
            .is_some_and(|on| on.iter().any(|(k, _)| *k == key));
        if known {
            if let Some(handled) = self.handled(&key)? {
                bytes[V::HANDLED_AT..V::HANDLED_AT + size_of::<Handled>()]
                    .copy_from_slice(handled.as_bytes());
            }
        } else if self.len >= self.capacity as usize {
            let now = expiry_ns(Duration::ZERO);
            if now >= self.earliest {
                self.remove_where(|_, expiry| expiry <= now);
                self.earliest = self
                    .entries
                    .values()
                    .flatten()
                    .map(|(_, e)| *e)
                    .min()
                    .unwrap_or(0);
            }
            if self.len >= self.capacity as usize {
                return Err(io::Error::other("the map is full"));
            }
        }
        self.map.insert(&key, &bytes)?;
        let on = self.entries.entry(target).or_default();
        match on.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = expiry,
            None => {
                on.push((key, expiry));
                self.len += 1;
            }
        }
        self.earliest = self.earliest.min(expiry);
        Ok(())
    }

    /// The [`Handled`] ring of `key`'s entry, if there is one.
    pub(super) fn handled(&self, key: &[u8; K]) -> io::Result<Option<Handled>> {
        self.witness().handled(key)
    }

    /// A handle that reads what the program did, for threads that do not own the map.
    pub(super) fn witness(&self) -> MapWitness<K, V> {
        MapWitness {
            map: Arc::clone(&self.map),
            value: PhantomData,
        }
    }

    /// Removes every entry for `target`.
    pub(super) fn remove_target(&mut self, target: Ipv6Addr) {
        for (k, _) in self.entries.remove(&target).unwrap_or_default() {
            self.remove_entry(&k);
            self.len -= 1;
        }
    }

    /// Removes every entry from an ingress in `ifindexes`.
    pub(super) fn remove_ingress(&mut self, ifindexes: &[i32]) {
        if !ifindexes.is_empty() {
            self.remove_where(|k, _| ifindexes.contains(&key_ingress(k)));
        }
    }

    /// Removes every entry.
    pub(super) fn clear(&mut self) {
        self.remove_where(|_, _| true);
    }

    fn remove_where(&mut self, mut gone: impl FnMut(&[u8; K], u64) -> bool) {
        let mut removed = Vec::new();
        for on in self.entries.values_mut() {
            on.retain(|(k, expiry)| {
                let remove = gone(k, *expiry);
                if remove {
                    removed.push(*k);
                }
                !remove
            });
        }
        self.entries.retain(|_, on| !on.is_empty());
        for k in &removed {
            self.remove_entry(k);
        }
        self.len -= removed.len();
    }

    fn remove_entry(&self, key: &[u8; K]) {
        if let Err(e) = self.map.remove(key) {
            log::warn!(
                "{}: cannot remove an entry from the map: {e}",
                self.config_key
            );
        }
    }
}

fn key_ingress(key: &[u8]) -> i32 {
    i32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

fn key_target(key: &[u8]) -> Ipv6Addr {
    let mut t = [0u8; 16];
    t.copy_from_slice(&key[4..20]);
    Ipv6Addr::from(t)
}

/// The `bpf_ktime_get_ns()` value `valid_for` from now.
pub(super) fn expiry_ns(valid_for: Duration) -> u64 {
    let left = u64::try_from(valid_for.as_nanos()).unwrap_or(u64::MAX);
    ebpf::monotonic_ns().saturating_add(left)
}

/// Why an in-kernel program could not be set up; each names the way out. `key` is the
/// config key that asked for it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The map could not be created.
    #[error(
        "{key}: creating the eBPF map: {error} (it needs CAP_BPF and the bpf system call: \
         run as root, or see packaging/ndprelay.service for the capability and \
         SystemCallFilter lines to add; or remove {key})"
    )]
    Map {
        /// The config key.
        key: &'static str,
        /// The errno.
        error: io::Error,
    },
    /// The kernel refused the program.
    #[error(
        "{key}: loading the eBPF program: {error} (it needs CAP_BPF and CAP_NET_ADMIN; or \
         remove {key})"
    )]
    Load {
        /// The config key.
        key: &'static str,
        /// What the verifier said.
        error: LoadError,
    },
    /// The program could not be attached.
    #[error("{key}: attaching to {name}: {error} (or remove {key})")]
    Attach {
        /// The config key.
        key: &'static str,
        /// The port.
        name: String,
        /// What failed.
        error: AttachError,
    },
}

/// A loaded program and its ingress hook (tcx or tc, `tc.rs`) on each port it runs on.
#[derive(Debug)]
pub(super) struct TcxLinks {
    key: &'static str,
    prog: OwnedFd,
    /// The program's name, which also names its tc filters.
    name: String,
    links: Vec<(i32, Ingress)>,
}

impl TcxLinks {
    /// Loads `insns` as a `sched_cls` program called `name`, for config key `key`.
    pub(super) fn load(
        key: &'static str,
        insns: &[EbpfInsn],
        name: &str,
    ) -> Result<Self, SetupError> {
        let prog =
            ebpf::load_sched_cls(insns, name).map_err(|error| SetupError::Load { key, error })?;
        Ok(Self {
            key,
            prog,
            name: name.to_owned(),
            links: Vec::new(),
        })
    }

    /// Runs on exactly `ports` (name, ifindex): a port re-created under a new index gets
    /// a new link. Returns the indexes it no longer runs on, and what failed.
    pub(super) fn sync(&mut self, ports: &[(&str, i32)]) -> (Vec<i32>, Vec<SetupError>) {
        let gone: Vec<i32> = self
            .links
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !ports.iter().any(|(_, p)| p == i))
            .collect();
        self.links.retain(|(i, _)| !gone.contains(i));
        let mut errors = Vec::new();
        for &(name, ifindex) in ports {
            if self.attached(ifindex) {
                continue;
            }
            match Ingress::attach(&self.prog, ifindex, name, &self.name, tc::mode()) {
                Ok(link) => {
                    log::info!("{}: attached to {name} with {}", self.key, link.hook());
                    self.links.push((ifindex, link));
                }
                Err(error) => errors.push(SetupError::Attach {
                    key: self.key,
                    name: name.to_owned(),
                    error,
                }),
            }
        }
        (gone, errors)
    }

    /// Whether the program runs on `ifindex`.
    pub(super) fn attached(&self, ifindex: i32) -> bool {
        self.links.iter().any(|(i, _)| *i == ifindex)
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN` (see
    /// [`ebpf::test_run`]), whether or not it is attached anywhere.
    #[cfg(test)]
    pub(super) fn test_run(
        &self,
        frame: &[u8],
        ctx: Option<&ebpf::SkBuff>,
    ) -> io::Result<ebpf::TestRun> {
        ebpf::test_run(&self.prog, frame, ctx)
    }
}
