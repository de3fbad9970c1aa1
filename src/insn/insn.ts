import { CallSrc } from '../base/uapi.js';
import { INSN_SLOT_SIZE, Opcode } from './opcodes.js';

/**
 * One BPF instruction. A ld_imm64 (opcode 0x18) is ONE entry covering two 8-byte slots: `imm64` is its full
 * immediate (low half from the first slot's imm, high half from the second slot's imm) and `imm` stays the first
 * slot's imm, so code that only looks at `imm` sees what the kernel's first slot holds.
 */
export interface Insn {
  /** 8 bits: class | size/source | mode/operation (see opcodes.ts). */
  readonly opcode: number;
  /** Destination register, 0..15 (the ISA uses 0..10). */
  readonly dst: number;
  /** Source register, 0..15; for ld_imm64 the BPF_PSEUDO_* kind, for calls CallSrc.*. */
  readonly src: number;
  /** Signed 16-bit offset. */
  readonly off: number;
  /** Signed 32-bit immediate (the encoder also accepts its unsigned spelling). */
  readonly imm: number;
  /** ld_imm64 only: the 64-bit immediate, unsigned (0 .. 2^64-1). */
  readonly imm64?: bigint;
  /**
   * ld_imm64 only, and only when non-zero: bytes 8..11 (the second slot's opcode, registers and offset), which the
   * ISA requires to be zero. Kept, packed as (b8<<24 | b9<<16 | b10<<8 | b11), so encoding stays byte-exact.
   */
  readonly imm64Reserved?: number;
  /**
   * Set on an entry that is not a whole instruction: a trailing partial slot, or a ld_imm64 whose second slot is
   * missing. Holds the raw bytes; the numeric fields come from the first slot when it is complete, else are zero.
   */
  readonly truncated?: Uint8Array;
}

/** A whole ld_imm64 (two slots). */
export function isLdImm64(insn: Insn): boolean {
  return insn.opcode === Opcode.LD_IMM64 && insn.truncated === undefined;
}

/** `call imm` (helper, bpf-to-bpf or kfunc call; not callx). */
export function isCall(insn: Insn): boolean {
  return insn.opcode === Opcode.CALL && insn.truncated === undefined;
}

/** bpf-to-bpf call: `call` with src == BPF_PSEUDO_CALL, imm the relative slot offset minus one. */
export function isPseudoCall(insn: Insn): boolean {
  return isCall(insn) && insn.src === CallSrc.PSEUDO_CALL;
}

/** Kfunc call: `call` with src == BPF_PSEUDO_KFUNC_CALL. */
export function isKfuncCall(insn: Insn): boolean {
  return isCall(insn) && insn.src === CallSrc.KFUNC_CALL;
}

/** Number of 8-byte slots the entry occupies: 2 for a ld_imm64, 1 otherwise (a partial tail rounds up). */
export function insnSlots(insn: Insn): number {
  if (insn.truncated !== undefined) return Math.ceil(insn.truncated.byteLength / INSN_SLOT_SIZE);
  return insn.opcode === Opcode.LD_IMM64 ? 2 : 1;
}

/** Slot index (byte offset / 8) of each entry: relocations and jumps address slots, arrays address entries. */
export function slotOffsets(insns: readonly Insn[]): Uint32Array {
  const out = new Uint32Array(insns.length);
  let slot = 0;
  for (let i = 0; i < insns.length; i++) {
    out[i] = slot;
    slot += insnSlots(insns[i]!);
  }
  return out;
}

/** Total slots of an instruction sequence (section size / 8). */
export function totalSlots(insns: readonly Insn[]): number {
  let slots = 0;
  for (const insn of insns) slots += insnSlots(insn);
  return slots;
}

/** The 64-bit immediate of a ld_imm64, unsigned; without `imm64`, the first slot's imm zero-extended. */
export function ldImm64Value(insn: Insn): bigint {
  return insn.imm64 ?? BigInt(insn.imm >>> 0);
}

/**
 * A copy of a ld_imm64 with a new immediate (and optionally a new src, e.g. BPF_PSEUDO_MAP_FD), keeping `imm`
 * consistent with `imm64`. Accepts signed or unsigned 64-bit values.
 */
export function withImm64(insn: Insn, value: bigint, src: number = insn.src): Insn {
  const imm64 = BigInt.asUintN(64, value);
  return { ...insn, src, imm: Number(BigInt.asIntN(32, imm64)), imm64 };
}
