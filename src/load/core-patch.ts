/** CO-RE patching: writing a resolved relocation into its instruction, or poisoning it. */
import {
  AluOp, decodeInsns, encodeInsns, InsnClass, insnClass, insnMode, insnOp, insnSize, InsnSize, insnSource, InsnSource,
  Opcode, sizeBytes, withImm64, INSN_SLOT_SIZE as SLOT, type Insn,
} from '../insn/index.js';
import { problem } from './core-spec.js';

/**
 * The helper id a poisoned instruction calls: no such helper exists, so the verifier rejects the program with
 * "invalid func unknown#195896080" if (and only if) the poisoned code is reachable. libbpf's "bad relo".
 */
export const CORE_POISON_HELPER = 0xbad2310;

const S16_MAX = 0x7fff;

/** A relocation decided: what the instruction should hold now, or why it must be poisoned. */
export interface Resolution {
  readonly origVal: bigint;
  readonly newVal: bigint;
  readonly validate: boolean;
  /** Set: the instruction is replaced by a call to CORE_POISON_HELPER. */
  readonly poison: string | undefined;
  /** Set: a load/store of this field would need a width change that does not preserve the value. */
  readonly badResize: string | undefined;
  readonly origSize: number;
  readonly newSize: number;
  readonly targetTypeId: number | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Patching

export interface PatchOutcome {
  readonly poisoned: string | undefined;
  readonly memSize: { readonly from: number; readonly to: number } | undefined;
}

const POISON_INSN: Insn = { opcode: Opcode.CALL, dst: 0, src: 0, off: 0, imm: CORE_POISON_HELPER };

function readInsn(insns: Uint8Array, at: number, littleEndian: boolean): Insn {
  const bytes = insns.subarray(at * SLOT, Math.min(insns.byteLength, (at + 2) * SLOT));
  return decodeInsns(bytes, littleEndian)[0]!;
}

function writeInsns(insns: Uint8Array, at: number, littleEndian: boolean, entries: readonly Insn[]): void {
  insns.set(encodeInsns(entries, littleEndian), at * SLOT);
}

/** `imm` as the 64-bit value the kernel sees (sign-extended), or its zero-extended spelling when that is what was meant. */
function immMatches(imm: number, expected: bigint): boolean {
  return BigInt.asUintN(64, BigInt(imm)) === expected || BigInt(imm >>> 0) === expected;
}

/** The 32-bit immediate spelling of a 64-bit value, when it has one. */
function toImm32(v: bigint): number | undefined {
  if (v < 1n << 32n) return Number(BigInt.asIntN(32, v));
  const signed = BigInt.asIntN(64, v);
  return signed < 0n && signed >= -(1n << 31n) ? Number(signed) : undefined;
}

function poison(insns: Uint8Array, at: number, littleEndian: boolean, insn: Insn, reason: string): PatchOutcome {
  // Both halves of a ld_imm64, so the verifier does not stop at "unknown opcode 00" before reaching the call.
  const isWide = insn.opcode === Opcode.LD_IMM64 && insn.truncated === undefined;
  writeInsns(insns, at, littleEndian, isWide ? [POISON_INSN, POISON_INSN] : [POISON_INSN]);
  return { poisoned: reason, memSize: undefined };
}

/** libbpf's bpf_core_patch_insn: check the compiler's value, then write the target's. */
export function patchInstruction(insns: Uint8Array, at: number, littleEndian: boolean, r: Resolution): PatchOutcome {
  const insn = readInsn(insns, at, littleEndian);
  if (insn.truncated !== undefined) throw problem('the instruction is truncated');
  if (r.poison !== undefined) return poison(insns, at, littleEndian, insn, r.poison);
  const got = (what: string, v: number | bigint) =>
    problem(`the instruction's ${what} is ${v}, but the local type says ${r.origVal} (the object and its BTF disagree)`);

  switch (insnClass(insn.opcode)) {
    case InsnClass.ALU: case InsnClass.ALU64: {
      if (insnSource(insn.opcode) !== InsnSource.K) throw problem('ALU instruction with a register operand has no immediate to relocate');
      if (insnOp(insn.opcode) === AluOp.END) throw problem('a byte swap has no immediate to relocate');
      if (r.validate && !immMatches(insn.imm, r.origVal)) throw got('immediate', insn.imm);
      const imm = toImm32(r.newVal);
      if (imm === undefined) throw problem(`value ${r.newVal} does not fit the instruction's 32-bit immediate`);
      writeInsns(insns, at, littleEndian, [{ ...insn, imm }]);
      return { poisoned: undefined, memSize: undefined };
    }
    case InsnClass.LDX: case InsnClass.ST: case InsnClass.STX: {
      if (r.validate && BigInt.asUintN(64, BigInt(insn.off)) !== r.origVal) throw got('offset', insn.off);
      if (r.newVal > BigInt(S16_MAX)) throw problem(`offset ${r.newVal} does not fit the instruction's 16-bit offset`);
      if (r.badResize !== undefined) return poison(insns, at, littleEndian, insn, r.badResize);
      let opcode = insn.opcode;
      let memSize: PatchOutcome['memSize'];
      if (r.newSize !== r.origSize) {
        const width = sizeBytes(insnSize(insn.opcode));
        if (width !== r.origSize) throw problem(`the instruction accesses ${width} bytes, but the local field is ${r.origSize}`);
        const size = ({ 1: InsnSize.B, 2: InsnSize.H, 4: InsnSize.W, 8: InsnSize.DW } as Record<number, number>)[r.newSize];
        if (size === undefined) throw problem(`the target field is ${r.newSize} bytes, which no load or store can access`);
        opcode = insnMode(insn.opcode) | size | insnClass(insn.opcode);
        memSize = { from: r.origSize, to: r.newSize };
      }
      writeInsns(insns, at, littleEndian, [{ ...insn, opcode, off: Number(r.newVal) }]);
      return { poisoned: undefined, memSize };
    }
    case InsnClass.LD: {
      if (insn.opcode !== Opcode.LD_IMM64 || insn.src !== 0 || insn.off !== 0 || insn.imm64Reserved !== undefined) {
        throw problem(`only a plain ld_imm64 can be relocated (opcode 0x${insn.opcode.toString(16)}, src ${insn.src}, off ${insn.off})`);
      }
      if (r.validate && insn.imm64 !== r.origVal) throw got('64-bit immediate', insn.imm64 ?? 0n);
      writeInsns(insns, at, littleEndian, [withImm64(insn, r.newVal)]);
      return { poisoned: undefined, memSize: undefined };
    }
    default:
      throw problem(`a jump (opcode 0x${insn.opcode.toString(16)}) cannot be relocated`);
  }
}
