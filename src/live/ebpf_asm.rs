//! A small typed eBPF assembler for the in-kernel programs: registers, labels and helpers
//! are types, each instruction is a method named after its `linux/filter.h` macro
//! (`ldx_w` is `BPF_LDX_MEM(BPF_W, ...)`, `jeq_imm` is `BPF_JMP_IMM(BPF_JEQ, ...)`), and
//! jumps go to labels, forward or back, resolved when the program is finished. It knows
//! nothing of frames: `ebpf_prog.rs` builds the ND checks from it.
//!
//! Operands are in `linux/filter.h` order: destination first, for stores the memory
//! operand (base register and offset) first.

use std::os::fd::RawFd;

use super::sys::ebpf::EbpfInsn;

/// A register. `R0` takes helper results and the program's verdict, `R1`..`R5` helper
/// arguments (clobbered by every call), `R6`..`R9` survive calls, `R10` is the
/// read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reg(u8);

pub(super) const R0: Reg = Reg(0);
pub(super) const R1: Reg = Reg(1);
pub(super) const R2: Reg = Reg(2);
pub(super) const R3: Reg = Reg(3);
pub(super) const R4: Reg = Reg(4);
pub(super) const R5: Reg = Reg(5);
pub(super) const R6: Reg = Reg(6);
pub(super) const R7: Reg = Reg(7);
pub(super) const R8: Reg = Reg(8);
pub(super) const R9: Reg = Reg(9);
/// The frame pointer: the 512-byte stack lies below it.
pub(super) const FP: Reg = Reg(10);

/// A kernel helper (`enum bpf_func_id`, linux/bpf.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Helper {
    /// `void *bpf_map_lookup_elem(map, const void *key)`.
    MapLookupElem = 1,
    /// `u64 bpf_ktime_get_ns(void)`: `CLOCK_MONOTONIC`.
    KtimeGetNs = 5,
    /// `long bpf_redirect(u32 ifindex, u64 flags)`: `TC_ACT_REDIRECT`.
    Redirect = 23,
    /// `s64 bpf_csum_diff(__be32 *from, u32 from_size, __be32 *to, u32 to_size, __wsum
    /// seed)`.
    CsumDiff = 28,
}

/// A jump target, bound to an instruction with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Label(usize);

// Instruction classes, sizes, sources and operations (linux/bpf_common.h, linux/bpf.h).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_STX: u8 = 0x03;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_H: u8 = 0x08;
const BPF_B: u8 = 0x10;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_OR: u8 = 0x40;
const BPF_AND: u8 = 0x50;
const BPF_LSH: u8 = 0x60;
const BPF_RSH: u8 = 0x70;
const BPF_XOR: u8 = 0xa0;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JGT: u8 = 0x20;
const BPF_JGE: u8 = 0x30;
const BPF_JNE: u8 = 0x50;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
/// `src_reg` of a `BPF_LD_IMM64` whose immediate is a map's descriptor.
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// A program being assembled.
#[derive(Debug, Default)]
pub(super) struct Asm {
    code: Vec<EbpfInsn>,
    /// Where each label is bound.
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of each jump to resolve.
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn insn(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.code.push(EbpfInsn {
            code,
            regs: src.0 << 4 | dst.0,
            off,
            imm,
        });
    }

    /// A new label, to bind once.
    pub(super) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// `label:` — the next instruction.
    pub(super) fn bind(&mut self, label: Label) {
        debug_assert!(self.labels[label.0].is_none(), "label bound twice");
        self.labels[label.0] = Some(self.code.len());
    }

    // ALU64.

    /// `dst = imm`
    pub(super) fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, R0, 0, imm);
    }
    /// `dst = src`
    pub(super) fn mov_reg(&mut self, dst: Reg, src: Reg) {
        self.insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
    }
    /// `dst += imm`
    pub(super) fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, R0, 0, imm);
    }
    /// `dst += src`
    pub(super) fn add_reg(&mut self, dst: Reg, src: Reg) {
        self.insn(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0);
    }
    /// `dst &= imm`
    pub(super) fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_AND | BPF_K, dst, R0, 0, imm);
    }
    /// `dst |= src`
    pub(super) fn or_reg(&mut self, dst: Reg, src: Reg) {
        self.insn(BPF_ALU64 | BPF_OR | BPF_X, dst, src, 0, 0);
    }
    /// `dst <<= imm`
    pub(super) fn lsh_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_LSH | BPF_K, dst, R0, 0, imm);
    }
    /// `dst >>= imm`
    pub(super) fn rsh_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, R0, 0, imm);
    }
    /// `dst ^= imm`
    pub(super) fn xor_imm(&mut self, dst: Reg, imm: i32) {
        self.insn(BPF_ALU64 | BPF_XOR | BPF_K, dst, R0, 0, imm);
    }

    // Memory: native-order loads and stores of 1, 2, 4 or 8 bytes.

    /// `dst = *(u8 *)(src + off)`
    pub(super) fn ldx_b(&mut self, dst: Reg, src: Reg, off: i16) {
        self.insn(BPF_LDX | BPF_MEM | BPF_B, dst, src, off, 0);
    }
    /// `dst = *(u16 *)(src + off)`
    pub(super) fn ldx_h(&mut self, dst: Reg, src: Reg, off: i16) {
        self.insn(BPF_LDX | BPF_MEM | BPF_H, dst, src, off, 0);
    }
    /// `dst = *(u32 *)(src + off)`
    pub(super) fn ldx_w(&mut self, dst: Reg, src: Reg, off: i16) {
        self.insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
    }
    /// `dst = *(u64 *)(src + off)`
    pub(super) fn ldx_dw(&mut self, dst: Reg, src: Reg, off: i16) {
        self.insn(BPF_LDX | BPF_MEM | BPF_DW, dst, src, off, 0);
    }
    /// `*(u16 *)(dst + off) = src`
    pub(super) fn stx_h(&mut self, dst: Reg, off: i16, src: Reg) {
        self.insn(BPF_STX | BPF_MEM | BPF_H, dst, src, off, 0);
    }
    /// `*(u32 *)(dst + off) = src`
    pub(super) fn stx_w(&mut self, dst: Reg, off: i16, src: Reg) {
        self.insn(BPF_STX | BPF_MEM | BPF_W, dst, src, off, 0);
    }
    /// `*(u64 *)(dst + off) = src`
    pub(super) fn stx_dw(&mut self, dst: Reg, off: i16, src: Reg) {
        self.insn(BPF_STX | BPF_MEM | BPF_DW, dst, src, off, 0);
    }
    /// `dst = &map` (`BPF_LD_MAP_FD`, two instruction slots).
    pub(super) fn ld_map_fd(&mut self, dst: Reg, map_fd: RawFd) {
        self.insn(
            BPF_LD | BPF_IMM | BPF_DW,
            dst,
            Reg(BPF_PSEUDO_MAP_FD),
            0,
            map_fd,
        );
        self.insn(0, R0, R0, 0, 0);
    }

    // Jumps.

    fn jump(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.insn(code, dst, src, 0, imm);
    }
    /// `if (dst == imm) goto to`
    pub(super) fn jeq_imm(&mut self, dst: Reg, imm: i32, to: Label) {
        self.jump(BPF_JMP | BPF_JEQ | BPF_K, dst, R0, imm, to);
    }
    /// `if (dst != imm) goto to`
    pub(super) fn jne_imm(&mut self, dst: Reg, imm: i32, to: Label) {
        self.jump(BPF_JMP | BPF_JNE | BPF_K, dst, R0, imm, to);
    }
    /// `if (dst != src) goto to`
    pub(super) fn jne_reg(&mut self, dst: Reg, src: Reg, to: Label) {
        self.jump(BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, to);
    }
    /// `if (dst >= src) goto to` (unsigned)
    pub(super) fn jge_reg(&mut self, dst: Reg, src: Reg, to: Label) {
        self.jump(BPF_JMP | BPF_JGE | BPF_X, dst, src, 0, to);
    }
    /// `if (dst > src) goto to` (unsigned)
    pub(super) fn jgt_reg(&mut self, dst: Reg, src: Reg, to: Label) {
        self.jump(BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, to);
    }
    /// `r0 = helper(r1, ..., r5)`; R1..R5 are lost.
    pub(super) fn call(&mut self, helper: Helper) {
        self.insn(BPF_JMP | BPF_CALL, R0, R0, 0, helper as i32);
    }
    /// `return r0`
    pub(super) fn exit(&mut self) {
        self.insn(BPF_JMP | BPF_EXIT, R0, R0, 0, 0);
    }

    /// The program, every jump resolved. The programs are built from constants, so an
    /// unbound label or a jump beyond `i16` is a bug in their builder, caught by the
    /// unit tests that assemble each one.
    pub(super) fn finish(mut self) -> Vec<EbpfInsn> {
        for &(at, Label(l)) in &self.fixups {
            let to = self.labels[l].expect("every label is bound before finish");
            // Offsets count from the instruction after the jump.
            let off = to as i64 - at as i64 - 1;
            self.code[at].off = i16::try_from(off).expect("jump within i16");
        }
        self.code
    }
}

/// Asserts what the verifier will check first: every jump lands inside `code`, a
/// `BPF_LD_IMM64` is followed by its second slot, and the last instruction is an exit.
#[cfg(test)]
pub(super) fn assert_well_formed(code: &[EbpfInsn]) {
    let n = code.len() as i64;
    assert_eq!(code.last().map(|i| i.code), Some(BPF_JMP | BPF_EXIT));
    for (at, i) in code.iter().enumerate() {
        let class = i.code & 0x07;
        if class == BPF_JMP && i.code != BPF_JMP | BPF_CALL && i.code != BPF_JMP | BPF_EXIT {
            let to = at as i64 + 1 + i64::from(i.off);
            assert!((0..n).contains(&to), "jump at {at} to {to} of {n}");
        }
        if i.code == BPF_LD | BPF_IMM | BPF_DW {
            assert_eq!(
                code.get(at + 1).map(|i| i.code),
                Some(0),
                "LD_IMM64 at {at}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, regs: u8, off: i16, imm: i32) -> EbpfInsn {
        EbpfInsn {
            code,
            regs,
            off,
            imm,
        }
    }

    #[test]
    fn instructions_encode_as_linux_filter_h_does() {
        let mut a = Asm::new();
        a.mov_imm(R0, -1); // BPF_MOV64_IMM(BPF_REG_0, -1)
        a.mov_reg(R6, R1); // BPF_MOV64_REG(BPF_REG_6, BPF_REG_1)
        a.ldx_w(R2, R6, 76); // BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_6, 76)
        a.ldx_dw(R2, R7, 22);
        a.ldx_h(R2, R7, 12);
        a.ldx_b(R2, R7, 14);
        a.stx_dw(R9, 16, R2); // BPF_STX_MEM(BPF_DW, BPF_REG_9, BPF_REG_2, 16)
        a.stx_w(FP, -32, R2);
        a.stx_h(R7, 56, R0);
        a.add_imm(R2, 86);
        a.add_reg(R0, R1);
        a.and_imm(R2, 0xf0);
        a.or_reg(R2, R3);
        a.rsh_imm(R1, 16);
        a.lsh_imm(R3, 3);
        a.xor_imm(R0, 0xffff);
        a.ld_map_fd(R1, 5); // BPF_LD_MAP_FD(BPF_REG_1, 5)
        a.call(Helper::CsumDiff);
        a.exit();
        assert_eq!(
            a.finish(),
            [
                insn(0xb7, 0x00, 0, -1),
                insn(0xbf, 0x16, 0, 0),
                insn(0x61, 0x62, 76, 0),
                insn(0x79, 0x72, 22, 0),
                insn(0x69, 0x72, 12, 0),
                insn(0x71, 0x72, 14, 0),
                insn(0x7b, 0x29, 16, 0),
                insn(0x63, 0x2a, -32, 0),
                insn(0x6b, 0x07, 56, 0),
                insn(0x07, 0x02, 0, 86),
                insn(0x0f, 0x10, 0, 0),
                insn(0x57, 0x02, 0, 0xf0),
                insn(0x4f, 0x32, 0, 0),
                insn(0x77, 0x01, 0, 16),
                insn(0x67, 0x03, 0, 3),
                insn(0xa7, 0x00, 0, 0xffff),
                insn(0x18, 0x11, 0, 5),
                insn(0x00, 0x00, 0, 0),
                insn(0x85, 0x00, 0, 28),
                insn(0x95, 0x00, 0, 0),
            ]
        );
    }

    #[test]
    fn jumps_count_from_the_next_instruction_forward_and_back() {
        let mut a = Asm::new();
        let (top, end) = (a.label(), a.label());
        a.bind(top);
        a.jeq_imm(R2, 1, end); // 0: skips 1, 2 -> 3
        a.jne_reg(R2, R3, top); // 1: back to 0
        a.jgt_reg(R2, R8, end); // 2: -> 3
        a.bind(end);
        a.jge_reg(R0, R1, end); // 3: to itself
        a.jne_imm(R2, 7, top); // 4: back to 0
        let code = a.finish();
        let offs: Vec<i16> = code.iter().map(|i| i.off).collect();
        assert_eq!(offs, [2, -2, 0, -1, -5]);
        assert_eq!(code[0].code, 0x15);
        assert_eq!(code[1].code, 0x5d);
        assert_eq!(code[2].code, 0x2d);
        assert_eq!(code[3].code, 0x3d);
        assert_eq!(code[4].code, 0x55);
    }
}
