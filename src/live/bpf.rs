//! The classic BPF program that decides which frames a capture socket hands to the relay.
//!
//! It runs on an `ETH_P_ALL` packet socket, so offsets count from the Ethernet header.
//! It keeps IPv6 frames carrying ICMPv6 Neighbor Discovery (types 133–137), also when
//! the ICMPv6 header sits behind extension headers or in a first fragment, so that the
//! engine sees them and drops them by reason (`ext_hdr_nd`, `frag_nd`) instead of the
//! kernel hiding them; so is a first fragment whose chain ends before its ICMPv6 header
//! (the rest is in later fragments: `frag_nd`, NDP reference #31). A non-first fragment
//! is not kept: without reassembly nothing tells whether it is ND, and ND is never
//! reassembled (RFC 6980 §5), so the engine could only ignore it. The header chain is
//! walked by unrolling: cBPF has no backward jumps. A chain deeper than
//! [`MAX_EXT_HEADERS`] is passed on for the engine to judge.
//! VLAN-tagged frames pass (their tag is in metadata, see `sys::RecvBatch`) and are
//! dropped by the engine (`vlan_tagged`), which counts them.
//! Frames the host sends (`PACKET_OUTGOING`) and frames for other hosts
//! (`PACKET_OTHERHOST`, seen when a port is promiscuous) are dropped here: the relay
//! relays what arrives on a segment, not what the host itself says on it.

use super::sys::SockFilter;

/// Extension headers walked before the filter gives up and passes the frame.
pub const MAX_EXT_HEADERS: usize = 8;

// Opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_B_IND: u16 = 0x50;
const LD_H_IND: u16 = 0x48;
const LD_W_LEN: u16 = 0x80;
const LD_IMM: u16 = 0x00;
const LDX_IMM: u16 = 0x01;
const ST: u16 = 0x02;
const LD_MEM: u16 = 0x60;
const ALU_ADD_K: u16 = 0x04;
const ALU_SUB_K: u16 = 0x14;
const ALU_AND_K: u16 = 0x54;
const ALU_ADD_X: u16 = 0x0c;
const ALU_LSH_K: u16 = 0x64;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JGT_X: u16 = 0x2d;
const RET_K: u16 = 0x06;

const SKF_AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;
/// Scratch memory of the filter: the next header while a length is checked, and
/// whether a Fragment header was passed.
const NEXT_HEADER: u32 = 0;
const FIRST_FRAGMENT: u32 = 1;
const ACCEPT: u32 = 0x0004_0000;

/// A jump target while assembling.
#[derive(Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

struct Asm {
    code: Vec<(u16, Target, Target, u32)>,
    labels: Labels,
}

/// Forward jump labels for this module's classic BPF assembler.
#[derive(Default)]
pub(super) struct Labels(Vec<Option<usize>>);

impl Labels {
    pub(super) fn new_label(&mut self) -> usize {
        self.0.push(None);
        self.0.len() - 1
    }
    pub(super) fn bind(&mut self, label: usize, at: usize) {
        self.0[label] = Some(at);
    }
    /// Instructions a jump at `pc` skips to reach `label`. Every label is bound before
    /// its program is finished (the builders bind each one they create) and lies
    /// forward of its jumps.
    pub(super) fn offset(&self, label: usize, pc: usize) -> usize {
        self.0[label].expect("label bound") - pc - 1
    }
}

impl Asm {
    fn new() -> Self {
        Self {
            code: Vec::new(),
            labels: Labels::default(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.new_label()
    }
    fn bind(&mut self, l: usize) {
        self.labels.bind(l, self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, Target::Next, Target::Next, k));
    }
    fn jmp(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.code.push((code, jt, jf, k));
    }
    /// Goes to `have` if the frame holds `bytes` bytes from offset X on, else to
    /// `missing`; A is lost. A load past the frame's end would end the program with a
    /// drop instead.
    fn need(&mut self, bytes: u32, have: Target, missing: Target) {
        self.op(LD_W_LEN, 0);
        if bytes > 1 {
            // len - (bytes - 1) > X; frames reaching here are longer than 54 bytes.
            self.op(ALU_SUB_K, bytes - 1);
        }
        self.jmp(JGT_X, 0, have, missing);
    }
    fn finish(self) -> Vec<SockFilter> {
        let resolve = |pc: usize, t: Target| -> u8 {
            match t {
                Target::Next => 0,
                Target::Label(l) => {
                    u8::try_from(self.labels.offset(l, pc)).expect("jump within 255 instructions")
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(pc, &(code, jt, jf, k))| SockFilter {
                code,
                jt: resolve(pc, jt),
                jf: resolve(pc, jf),
                k,
            })
            .collect()
    }
}

/// Extension headers (len + 1) * 8 bytes long: Hop-by-Hop, Routing, Destination
/// Options, Mobility, HIP, Shim6.
const LEN8_HEADERS: [u8; 6] = [0, 43, 60, 135, 139, 140];

/// Builds the capture filter (see the module documentation).
pub fn nd_filter() -> Vec<SockFilter> {
    use Target::{Label as L, Next};
    let mut a = Asm::new();
    // cBPF jumps reach 255 instructions ahead at most, so each exit sits close to the
    // jumps that use it.
    let drop = a.label();
    let walk = a.label();
    // M[FIRST_FRAGMENT]: whether the chain so far had a (first) Fragment header. Set
    // before any jump: the kernel's check of scratch memory follows the instructions in
    // order, also past a return (`check_load_and_stores`).
    a.op(LD_IMM, 0);
    a.op(ST, FIRST_FRAGMENT);
    a.op(LD_W_ABS, SKF_AD_PKTTYPE);
    a.jmp(JEQ_K, 4, L(drop), Next); // PACKET_OUTGOING
    a.jmp(JEQ_K, 3, L(drop), Next); // PACKET_OTHERHOST
    a.op(LD_H_ABS, 12);
    a.jmp(JEQ_K, 0x86dd, Next, L(drop));
    a.op(LD_B_ABS, 14 + 6); // Next Header of the fixed header
    a.op(LDX_IMM, 14 + 40); // X = offset of the header it names
    a.jmp(JEQ_K, 0xffff_ffff, L(walk), L(walk)); // unconditional
    a.bind(drop);
    a.op(RET_K, 0);
    a.bind(walk);
    for _ in 0..MAX_EXT_HEADERS {
        // A = next header type, X = its offset.
        let have = a.label();
        let not_icmp = a.label();
        let fragment = a.label();
        let first = a.label();
        let len8 = a.label();
        let ah = a.label();
        let missing = a.label();
        let next = a.label();
        let local_drop = a.label();
        let local_accept = a.label();
        a.op(ST, NEXT_HEADER);
        a.need(1, L(have), L(missing));
        a.bind(have);
        a.op(LD_MEM, NEXT_HEADER);
        a.jmp(JEQ_K, 58, Next, L(not_icmp));
        a.op(LD_B_IND, 0); // ICMPv6 type
        a.jmp(JGE_K, 133, Next, L(local_drop));
        a.jmp(JGT_K, 137, L(local_drop), L(local_accept));
        a.bind(not_icmp);
        a.jmp(JEQ_K, 44, L(fragment), Next);
        for t in LEN8_HEADERS {
            a.jmp(JEQ_K, u32::from(t), L(len8), Next);
        }
        // AH: (len+2)*4. Anything else (TCP, UDP, No Next Header, ...) is not ND.
        a.jmp(JEQ_K, 51, L(ah), L(local_drop));
        a.bind(fragment);
        a.need(8, Next, L(missing));
        // A non-first fragment (offset not 0) has no upper-layer header to classify,
        // and ND in fragments is never reassembled (RFC 6980 §5): not captured. A first
        // fragment is walked on, so that ND in it reaches the engine (`frag_nd`).
        a.op(LD_H_IND, 2);
        a.op(ALU_AND_K, 0xfff8);
        a.jmp(JEQ_K, 0, L(first), L(local_drop));
        a.bind(first);
        a.op(LD_IMM, 1);
        a.op(ST, FIRST_FRAGMENT);
        a.op(LD_B_IND, 0);
        a.op(ST, NEXT_HEADER);
        a.op(TXA, 0);
        a.op(ALU_ADD_K, 8);
        a.op(TAX, 0);
        a.op(LD_MEM, NEXT_HEADER);
        a.jmp(JEQ_K, 0xffff_ffff, L(next), L(next)); // unconditional
        a.bind(ah);
        a.need(2, Next, L(missing));
        a.op(LD_B_IND, 0);
        a.op(ST, NEXT_HEADER);
        a.op(LD_B_IND, 1);
        a.op(ALU_ADD_K, 2);
        a.op(ALU_LSH_K, 2);
        a.op(ALU_ADD_X, 0);
        a.op(TAX, 0);
        a.op(LD_MEM, NEXT_HEADER);
        a.jmp(JEQ_K, 0xffff_ffff, L(next), L(next));
        a.bind(len8);
        a.need(2, Next, L(missing));
        a.op(LD_B_IND, 0);
        a.op(ST, NEXT_HEADER);
        a.op(LD_B_IND, 1);
        a.op(ALU_ADD_K, 1);
        a.op(ALU_LSH_K, 3);
        a.op(ALU_ADD_X, 0);
        a.op(TAX, 0);
        a.op(LD_MEM, NEXT_HEADER);
        a.jmp(JEQ_K, 0xffff_ffff, L(next), L(next));
        // The chain runs past the frame. In a first fragment the rest is in later
        // fragments (an RA whose first fragment lacks its ICMPv6 header): the engine
        // drops it as `frag_nd`. Otherwise it is a broken packet, not ND.
        a.bind(missing);
        a.op(LD_MEM, FIRST_FRAGMENT);
        a.jmp(JEQ_K, 1, L(local_accept), L(local_drop));
        a.bind(local_drop);
        a.op(RET_K, 0);
        a.bind(local_accept);
        a.op(RET_K, ACCEPT);
        a.bind(next);
    }
    // Deeper than we walk: let the engine count it (`ext_hdr_nd` or not ND at all).
    a.op(RET_K, ACCEPT);
    a.finish()
}

/// The filter for the userspace data plane: every IPv6 frame that arrived from the
/// segment (not sent by the host, not for another host); the engine forwards data.
pub fn ipv6_filter() -> Vec<SockFilter> {
    use Target::{Label as L, Next};
    let mut a = Asm::new();
    let drop = a.label();
    a.op(LD_W_ABS, SKF_AD_PKTTYPE);
    a.jmp(JEQ_K, 4, L(drop), Next);
    a.jmp(JEQ_K, 3, L(drop), Next);
    a.op(LD_H_ABS, 12);
    a.jmp(JEQ_K, 0x86dd, Next, L(drop));
    a.op(RET_K, ACCEPT);
    a.bind(drop);
    a.op(RET_K, 0);
    a.finish()
}

/// A program that passes nothing: the transmit-and-membership socket of the `libpcap`
/// backend, whose frames libpcap reads instead.
#[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
pub fn drop_all() -> Vec<SockFilter> {
    vec![SockFilter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    }]
}

/// [`nd_filter`] in libpcap's language, for the `libpcap` backend: ND right behind the
/// fixed header; a first fragment holding ND, ending before its ICMPv6 header, or
/// followed by more headers (the engine drops ND in fragments by reason, RFC 6980),
/// never a non-first one right behind the fixed header; ND behind one (len + 1) * 8
/// header or one AH ((len + 2) * 4 bytes), where
/// MLD and everything else do not pass; and chains of two extension headers or more,
/// for the engine to judge. libpcap's `protochain` would walk the whole chain, but its
/// loop is a program the kernel refuses (EINVAL), and libpcap then filters in
/// userspace: every frame of the port would be copied up. Direction (incoming only) is
/// set on the handle.
#[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
pub fn nd_pcap_expr() -> String {
    // `ip6[AT]` names a (len + 1) * 8 header.
    let len8 = |at: u8| {
        let tests: Vec<String> = LEN8_HEADERS
            .iter()
            .map(|t| format!("ip6[{at}] == {t}"))
            .collect();
        format!("({})", tests.join(" or "))
    };
    let (len8_first, len8_second) = (len8(6), len8(40));
    [
        "(ip6[6] == 58 and ip6[40] >= 133 and ip6[40] <= 137)".to_owned(),
        // A first fragment (offset 0): ND in it, its ICMPv6 header cut off, or more
        // headers after it; non-first fragments do not pass.
        format!(
            "(ip6[6] == 44 and (ip6[42:2] & 0xfff8) == 0 \
             and ((ip6[40] == 58 and (len <= 62 or (ip6[48] >= 133 and ip6[48] <= 137))) \
             or {len8_second} or ip6[40] == 51 or ip6[40] == 44))"
        ),
        format!(
            "({len8_first} and ip6[40] == 58 \
             and ip6[48 + ip6[41] * 8] >= 133 and ip6[48 + ip6[41] * 8] <= 137)"
        ),
        "(ip6[6] == 51 and ip6[40] == 58 \
         and ip6[48 + ip6[41] * 4] >= 133 and ip6[48 + ip6[41] * 4] <= 137)"
            .to_owned(),
        format!(
            "(({len8_first} or ip6[6] == 51) \
             and ({len8_second} or ip6[40] == 44 or ip6[40] == 51))"
        ),
    ]
    .join(" or ")
}

/// [`ipv6_filter`] in libpcap's language.
#[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
pub const IPV6_PCAP_EXPR: &str = "ip6";

/// A classic BPF interpreter for the instructions [`nd_filter`] uses, so tests can run
/// the exact program against sample frames. Returns the accepted length (0 = drop), or
/// `None` on an out-of-bounds load (the kernel drops such frames too).
#[cfg(test)]
pub(crate) fn run(program: &[SockFilter], frame: &[u8], pkttype: u8) -> Option<u32> {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [None::<u32>; 16]);
    let mut pc = 0usize;
    let byte = |off: u32| frame.get(off as usize).copied().map(u32::from);
    loop {
        let i = program.get(pc)?;
        pc += 1;
        match i.code {
            LD_W_ABS if i.k == SKF_AD_PKTTYPE => a = u32::from(pkttype),
            LD_H_ABS => a = byte(i.k)? << 8 | byte(i.k + 1)?,
            LD_B_ABS => a = byte(i.k)?,
            LD_B_IND => a = byte(x.wrapping_add(i.k))?,
            LD_H_IND => {
                let at = x.wrapping_add(i.k);
                a = byte(at)? << 8 | byte(at.wrapping_add(1))?;
            }
            LD_W_LEN => a = u32::try_from(frame.len()).ok()?,
            LD_IMM => a = i.k,
            LDX_IMM => x = i.k,
            // The kernel refuses a program that reads scratch memory before writing
            // it (`check_load_and_stores`): so does this interpreter.
            ST => mem[i.k as usize] = Some(a),
            LD_MEM => a = mem[i.k as usize]?,
            ALU_ADD_K => a = a.wrapping_add(i.k),
            ALU_SUB_K => a = a.wrapping_sub(i.k),
            ALU_AND_K => a &= i.k,
            ALU_ADD_X => a = a.wrapping_add(x),
            ALU_LSH_K => a <<= i.k,
            TAX => x = a,
            TXA => a = x,
            JEQ_K | JGT_K | JGE_K | JGT_X => {
                let c = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    JGT_X => a > x,
                    _ => a >= i.k,
                };
                pc += usize::from(if c { i.jt } else { i.jf });
            }
            RET_K => return Some(i.k),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::live::sys::pkttype;

    /// Ethernet + IPv6 header with `next` as Next Header, followed by `rest`.
    fn frame(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        let plen = rest.len() as u16;
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&plen.to_be_bytes());
        f.extend_from_slice(&[next, 255]);
        f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(rest);
        f
    }

    fn icmp(t: u8) -> Vec<u8> {
        let mut v = vec![t, 0, 0, 0];
        v.extend_from_slice(&[0; 20]);
        v
    }

    fn accepts(f: &[u8], pt: u8) -> bool {
        run(&nd_filter(), f, pt).is_some_and(|n| n > 0)
    }

    /// The kernel's check that scratch memory is written before it is read
    /// (`check_load_and_stores` in net/core/filter.c): it walks the instructions in
    /// order, a jump passing what is valid to its targets, anything else (a return
    /// too) to the next instruction.
    fn memory_written_before_read(p: &[SockFilter]) -> bool {
        let mut masks = vec![u16::MAX; p.len()];
        let mut valid = 0u16;
        for (pc, i) in p.iter().enumerate() {
            valid &= masks[pc];
            match i.code {
                ST => valid |= 1 << i.k,
                LD_MEM if valid & (1 << i.k) == 0 => return false,
                JEQ_K | JGT_K | JGE_K | JGT_X => {
                    masks[pc + 1 + usize::from(i.jt)] &= valid;
                    masks[pc + 1 + usize::from(i.jf)] &= valid;
                    valid = u16::MAX;
                }
                _ => {}
            }
        }
        true
    }

    #[test]
    fn program_fits_the_kernel_limits() {
        for p in [nd_filter(), ipv6_filter(), drop_all()] {
            assert!(p.len() < 4096, "{} instructions", p.len());
            // Every jump lands inside the program.
            for (pc, i) in p.iter().enumerate() {
                assert!(pc + 1 + usize::from(i.jt.max(i.jf)) < p.len() || i.code == RET_K);
            }
            assert!(memory_written_before_read(&p));
        }
    }

    /// Frames from a segment and whether the relay must see them: the kernel program and
    /// the libpcap expression both give these verdicts.
    fn samples() -> Vec<(String, Vec<u8>, bool)> {
        let mut v = Vec::new();
        for t in 133..=137 {
            v.push((format!("ICMPv6 type {t}"), frame(58, &icmp(t)), true));
        }
        for t in [1u8, 2, 128, 129, 130, 131, 132, 138, 143, 255] {
            v.push((format!("ICMPv6 type {t}"), frame(58, &icmp(t)), false));
        }
        let mut v4 = frame(58, &icmp(135));
        v4[12] = 0x08;
        v4[13] = 0x00;
        v.push(("IPv4".into(), v4, false));
        v.push(("TCP".into(), frame(6, &[0; 20]), false));
        v.push(("UDP".into(), frame(17, &[0; 8]), false));
        v.push(("No Next Header".into(), frame(59, &[]), false));

        let mut rest = vec![58, 0, 1, 4, 0, 0, 0, 0];
        rest.extend(icmp(135));
        v.push((
            "Destination Options (8 bytes), NS".into(),
            frame(60, &rest),
            true,
        ));
        let mut rest = vec![43, 1];
        rest.extend_from_slice(&[0; 14]);
        rest.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 0]);
        rest.extend(icmp(134));
        v.push((
            "Hop-by-Hop (16 bytes), Routing, RA".into(),
            frame(0, &rest),
            true,
        ));
        let mut rest = vec![58, 4];
        rest.extend_from_slice(&[0; 22]);
        rest.extend(icmp(136));
        v.push(("AH (len 4: 24 bytes), NA".into(), frame(51, &rest), true));
        let mut rest = vec![58, 0, 5, 2, 0, 0, 1, 0];
        rest.extend(icmp(143));
        v.push(("Hop-by-Hop, MLD report".into(), frame(0, &rest), false));

        let mut rest = vec![58, 0, 0, 1, 0, 0, 0, 1];
        rest.extend(icmp(135));
        // RFC 6980: the engine drops ND in fragments by reason, so it must see them.
        v.push(("first fragment of an NS".into(), frame(44, &rest), true));
        let mut rest = vec![58, 0, 0, 0, 0, 0, 0, 1];
        rest.extend(icmp(134));
        v.push(("atomic fragment of an RA".into(), frame(44, &rest), true));
        let mut rest = vec![60, 0, 0, 1, 0, 0, 0, 1, 58, 0, 1, 4, 0, 0, 0, 0];
        rest.extend(icmp(136));
        v.push((
            "first fragment, Destination Options, NA".into(),
            frame(44, &rest),
            true,
        ));
        // NDP reference #31: the ICMPv6 header is in the second fragment.
        let rest = [60, 0, 0, 1, 0, 0, 0, 1, 58, 0, 1, 4, 0, 0, 0, 0];
        v.push((
            "first fragment ending before its ICMPv6 header".into(),
            frame(44, &rest),
            true,
        ));
        let rest = [58, 0, 0, 1, 0, 0, 0, 1];
        v.push((
            "first fragment ending after its Fragment header".into(),
            frame(44, &rest),
            true,
        ));
        let mut rest = vec![58, 0, 0, 1, 0, 0, 0, 1];
        rest.extend(icmp(128));
        v.push(("first fragment of an echo".into(), frame(44, &rest), false));
        // Offset 8 (bytes), more fragments: its payload looks like an NS, which it is not.
        let mut rest = vec![58, 0, 0, 0x41, 0, 0, 0, 1];
        rest.extend(icmp(135));
        v.push((
            "non-first fragment of ICMPv6".into(),
            frame(44, &rest),
            false,
        ));
        let mut rest = vec![58, 0, 0xff, 0xf8, 0, 0, 0, 1];
        rest.extend(icmp(134));
        v.push(("last fragment of ICMPv6".into(), frame(44, &rest), false));
        let rest = [17, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        v.push(("first fragment of UDP".into(), frame(44, &rest), false));
        // Without a Fragment header, a chain cut short is a broken packet, not ND.
        let rest = [58, 0, 1, 4, 0, 0, 0, 0];
        v.push((
            "Destination Options naming ICMPv6, then nothing".into(),
            frame(60, &rest),
            false,
        ));

        let mut rest = Vec::new();
        for _ in 0..40 {
            rest.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        rest.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
        rest.extend(icmp(135));
        v.push(("41 Destination Options, NS".into(), frame(60, &rest), true));
        v
    }

    #[test]
    fn nd_passes_also_behind_extension_headers_and_the_rest_does_not() {
        for (what, f, want) in samples() {
            assert_eq!(accepts(&f, pkttype::HOST), want, "{what}");
            assert_eq!(accepts(&f, pkttype::MULTICAST), want, "{what}, multicast");
        }
    }

    #[test]
    fn userspace_filter_takes_ipv6_data_from_the_segment_only() {
        let p = ipv6_filter();
        let tcp = frame(6, &[0; 20]);
        assert!(run(&p, &tcp, pkttype::HOST).is_some_and(|n| n > 0));
        assert_eq!(run(&p, &tcp, pkttype::OUTGOING), Some(0));
        let mut v4 = tcp.clone();
        v4[12] = 0x08;
        v4[13] = 0;
        assert_eq!(run(&p, &v4, pkttype::HOST), Some(0));
    }

    #[test]
    fn outgoing_and_other_host_frames_are_dropped() {
        let f = frame(58, &icmp(135));
        assert!(!accepts(&f, pkttype::OUTGOING));
        assert!(!accepts(&f, pkttype::OTHERHOST));
        assert!(accepts(&f, pkttype::BROADCAST));
    }

    #[test]
    fn truncated_chains_are_dropped() {
        // Chain that runs past the frame end: load out of bounds, dropped.
        let f = frame(60, &[60, 200]);
        assert!(!accepts(&f, pkttype::HOST));
    }

    /// `expr` as libpcap compiles it for an Ethernet port.
    #[cfg(feature = "libpcap")]
    fn compile_for_ethernet(expr: &str) -> pcap::BpfProgram {
        pcap::Capture::dead(pcap::Linktype::ETHERNET)
            .expect("libpcap dead handle")
            .compile(expr, true)
            .expect("expression compiles")
    }

    /// The instructions libpcap hands the kernel (its `Display` is "code jt jf k").
    #[cfg(feature = "libpcap")]
    fn instructions(program: &pcap::BpfProgram) -> Vec<SockFilter> {
        program
            .get_instructions()
            .iter()
            .map(|i| {
                let f: Vec<u32> = i
                    .to_string()
                    .split(' ')
                    .map(|n| n.parse().unwrap())
                    .collect();
                let narrow = |n: u32| u8::try_from(n).unwrap();
                SockFilter {
                    code: u16::try_from(f[0]).unwrap(),
                    jt: narrow(f[1]),
                    jf: narrow(f[2]),
                    k: f[3],
                }
            })
            .collect()
    }

    #[test]
    #[cfg(feature = "libpcap")]
    fn the_kernel_takes_the_libpcap_expression() {
        // Any socket takes a classic filter, and the kernel checks it on attach.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let attach = |expr: &str| {
            crate::live::sys::attach_filter(&sock, &instructions(&compile_for_ethernet(expr)))
        };
        attach(&nd_pcap_expr()).expect("the kernel accepts nd_pcap_expr()");
        // The expression this one replaced: refused, and libpcap fell back to filtering
        // in userspace ("Warning: Kernel filter failed: Invalid argument").
        let refused = attach("(icmp6 and ip6[40] >= 133) or (ip6 protochain 58 and not icmp6)");
        assert_eq!(refused.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    #[cfg(feature = "libpcap")]
    fn the_libpcap_expression_gives_the_kernel_programs_verdicts() {
        let program = compile_for_ethernet(&nd_pcap_expr());
        for (what, f, want) in samples() {
            assert_eq!(program.filter(&f), want, "{what}");
        }
    }
}
