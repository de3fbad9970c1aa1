/**
 * Instruction text exactly as llvm-objdump (LLVM 19, default features) prints it for BPF.
 *
 * LLVM's disassembler matches bit patterns from BPFInstrInfo.td: each instruction fixes some fields and ignores the
 * rest (an ALU immediate form ignores src, a register form ignores imm, `call` ignores everything but imm…).
 * The tables below encode, per opcode, which fields must hold which values; anything else prints as
 * `<unknown: bytes>` where llvm-objdump prints `<unknown>`. The agreement test in test/insn compares every
 * instruction of real objects against llvm-objdump.
 */
import { asciiBytes, TextBytes } from '../base/text-bytes.js';
import {
  ASSIGN, CHAR_R, CHAR_W, CLOSE, COMMA, SPACE, formatRawHex, reg, writeHex, writeRawHex, writeReg, writeTarget,
  type Formatter,
} from './operands.js';
import { ldFormatter, ldxFormatter, stFormatter, stxFormatter } from './format-memory.js';
import type { Insn } from './insn.js';
import { ldImm64Value } from './insn.js';
import { encodeInsns } from './decode.js';
import { InsnError } from './errors.js';
import {
  AluOp, INSN_SLOT_SIZE, InsnClass, InsnSource, JmpOp, Opcode, insnClass, insnOp, insnSource,
} from './opcodes.js';

// ---- ALU / ALU64 ---------------------------------------------------------------------------------------------------

/** Operators of the plain two-operand ALU ops; their off must be 0. DIV and MOD also have a signed form (off 1). */
const ALU_OPERATORS: Record<number, string> = {
  [AluOp.ADD]: '+=', [AluOp.SUB]: '-=', [AluOp.MUL]: '*=', [AluOp.DIV]: '/=', [AluOp.OR]: '|=', [AluOp.AND]: '&=',
  [AluOp.LSH]: '<<=', [AluOp.RSH]: '>>=', [AluOp.MOD]: '%=', [AluOp.XOR]: '^=', [AluOp.ARSH]: 's>>=',
};
const SIGNED_ALU_OPERATORS: Record<number, string> = { [AluOp.DIV]: 's/=', [AluOp.MOD]: 's%=' };

const ASSIGN_NEG = asciiBytes(' = -');
const SIGN_EXTEND = [8, 16].map((bits) => asciiBytes(` = (s${bits})`));
const SIGN_EXTEND_32 = asciiBytes(' = (s32)');
const ADDR_SPACE_CAST = asciiBytes(' = addr_space_cast(');

function aluFormatter(opcode: number): Formatter | undefined {
  const is64 = insnClass(opcode) === InsnClass.ALU64;
  const r = is64 ? CHAR_R : CHAR_W;
  const byReg = insnSource(opcode) === InsnSource.X;
  const op = insnOp(opcode);
  const operator = ALU_OPERATORS[op];
  if (operator !== undefined) {
    const plain = asciiBytes(` ${operator} `);
    const signedOperator = SIGNED_ALU_OPERATORS[op];
    const signed = signedOperator === undefined ? undefined : asciiBytes(` ${signedOperator} `);
    const pick = (off: number) => (off === 0 ? plain : off === 1 ? signed : undefined);
    return byReg
      ? (out, dst, src, off) => {
          const o = pick(off);
          if (o === undefined || !reg(dst) || !reg(src)) return false;
          writeReg(out, r, dst);
          out.put(o);
          writeReg(out, r, src);
          return true;
        }
      : (out, dst, _src, off, imm) => {
          const o = pick(off);
          if (o === undefined || !reg(dst)) return false;
          writeReg(out, r, dst);
          out.put(o);
          writeHex(out, imm);
          return true;
        };
  }
  switch (op) {
    case AluOp.NEG:
      return byReg ? undefined : (out, dst) => {
        if (!reg(dst)) return false;
        writeReg(out, r, dst);
        out.put(ASSIGN_NEG);
        writeReg(out, r, dst);
        return true;
      };
    case AluOp.MOV:
      if (!byReg) {
        return (out, dst, _src, off, imm) => {
          if (off !== 0 || !reg(dst)) return false;
          writeReg(out, r, dst);
          out.put(ASSIGN);
          writeHex(out, imm);
          return true;
        };
      }
      return movRegisterFormatter(is64);
    case AluOp.END: {
      // ALU: to-LE (K) / to-BE (X); ALU64 K: unconditional bswap (cpu v4). The register is always printed as rN.
      const name = is64 ? (byReg ? undefined : 'bswap') : byReg ? 'be' : 'le';
      if (name === undefined) return undefined;
      const prefix = asciiBytes(` = ${name}`);
      return (out, dst, _src, _off, imm) => {
        if ((imm !== 16 && imm !== 32 && imm !== 64) || !reg(dst)) return false;
        writeReg(out, CHAR_R, dst);
        out.put(prefix);
        out.decimal(imm);
        out.byte(SPACE);
        writeReg(out, CHAR_R, dst);
        return true;
      };
    }
    default:
      return undefined;
  }
}

/** MOV with a register source: a plain move, a sign extension (off 8/16/32), or an arena cast (off 1). */
function movRegisterFormatter(is64: boolean): Formatter {
  const r = is64 ? CHAR_R : CHAR_W;
  return (out, dst, src, off, imm) => {
    if (!reg(dst) || !reg(src)) return false;
    switch (off) {
      case 0:
        writeReg(out, r, dst);
        out.put(ASSIGN);
        writeReg(out, r, src);
        return true;
      case 8: case 16:
        writeReg(out, r, dst);
        out.put(SIGN_EXTEND[off === 8 ? 0 : 1]!);
        writeReg(out, r, src);
        return true;
      case 32:
        if (!is64) return false;
        writeReg(out, CHAR_R, dst);
        out.put(SIGN_EXTEND_32);
        writeReg(out, CHAR_R, src);
        return true;
      case 1:
        // Arena pointer cast: imm holds the destination address space in its high 16 bits, the source in its low.
        if (!is64) return false;
        writeReg(out, CHAR_R, dst);
        out.put(ADDR_SPACE_CAST);
        writeReg(out, CHAR_R, src);
        out.put(COMMA);
        writeHex(out, imm >>> 16);
        out.put(COMMA);
        writeHex(out, imm & 0xffff);
        out.put(CLOSE);
        return true;
      default:
        return false;
    }
  };
}

// ---- JMP / JMP32 ---------------------------------------------------------------------------------------------------

const JMP_OPERATORS: Record<number, string> = {
  [JmpOp.JEQ]: '==', [JmpOp.JGT]: '>', [JmpOp.JGE]: '>=', [JmpOp.JSET]: '&', [JmpOp.JNE]: '!=', [JmpOp.JSGT]: 's>',
  [JmpOp.JSGE]: 's>=', [JmpOp.JLT]: '<', [JmpOp.JLE]: '<=', [JmpOp.JSLT]: 's<', [JmpOp.JSLE]: 's<=',
};

const IF = asciiBytes('if ');
const GOTO = asciiBytes(' goto ');
const CALLX = asciiBytes('callx ');
const JA = asciiBytes('goto ');
const GOTOL = asciiBytes('gotol ');
const CALL = asciiBytes('call ');
const EXIT = asciiBytes('exit');
const MAY_GOTO = asciiBytes('may_goto ');

function jmpFormatter(opcode: number): Formatter | undefined {
  const is64 = insnClass(opcode) === InsnClass.JMP;
  const r = is64 ? CHAR_R : CHAR_W;
  const byReg = insnSource(opcode) === InsnSource.X;
  const op = insnOp(opcode);
  const operator = JMP_OPERATORS[op];
  if (operator !== undefined) {
    const middle = asciiBytes(` ${operator} `);
    return byReg
      ? (out, dst, src, off) => {
          if (!reg(dst) || !reg(src)) return false;
          out.put(IF);
          writeReg(out, r, dst);
          out.put(middle);
          writeReg(out, r, src);
          out.put(GOTO);
          writeTarget(out, off);
          return true;
        }
      : (out, dst, _src, off, imm) => {
          if (!reg(dst)) return false;
          out.put(IF);
          writeReg(out, r, dst);
          out.put(middle);
          writeHex(out, imm);
          out.put(GOTO);
          writeTarget(out, off);
          return true;
        };
  }
  if (byReg) {
    if (opcode !== Opcode.CALLX) return undefined;
    return (out, dst) => {
      if (!reg(dst)) return false;
      out.put(CALLX);
      writeReg(out, CHAR_R, dst);
      return true;
    };
  }
  switch (opcode) {
    case Opcode.JA: return (out, _dst, _src, off) => {
      out.put(JA);
      writeTarget(out, off);
      return true;
    };
    case Opcode.GOTOL: return (out, _dst, _src, _off, imm) => {
      out.put(GOTOL);
      writeTarget(out, imm);
      return true;
    };
    // Helper, bpf-to-bpf (src 1) and kfunc (src 2) calls all print the raw imm.
    case Opcode.CALL: return (out, _dst, _src, _off, imm) => {
      out.put(CALL);
      writeHex(out, imm);
      return true;
    };
    case Opcode.EXIT: return (out, _dst, _src, _off, imm) => {
      if (imm !== 0) return false;
      out.put(EXIT);
      return true;
    };
    case Opcode.MAY_GOTO: return (out, _dst, _src, off) => {
      out.put(MAY_GOTO);
      writeTarget(out, off);
      return true;
    };
    default: return undefined;
  }
}

const FORMATTERS: ReadonlyArray<Formatter | undefined> = Array.from({ length: 256 }, (_, opcode) => {
  switch (insnClass(opcode)) {
    case InsnClass.LD: return ldFormatter(opcode);
    case InsnClass.LDX: return ldxFormatter(opcode);
    case InsnClass.ST: return stFormatter(opcode);
    case InsnClass.STX: return stxFormatter(opcode);
    case InsnClass.ALU: case InsnClass.ALU64: return aluFormatter(opcode);
    default: return jmpFormatter(opcode);
  }
});

/** The longest text one instruction can have (`<unknown: …>` of a ld_imm64's 16 bytes), for TextBytes#reserve. */
export const MAX_INSN_TEXT = 80;

const LD_IMM64_SIZE = 2 * INSN_SLOT_SIZE;
const UNKNOWN_OPEN = asciiBytes('<unknown: ');
const TRUNCATED_OPEN = asciiBytes('<truncated: ');
const ANGLE_CLOSE = asciiBytes('>');

/**
 * The size in bytes of the entry decodeInsns makes at `pos` (8, 16 for a ld_imm64, less for a truncated tail).
 * The one rule for walking instruction bytes without decoding them.
 */
export function insnSizeAt(bytes: Uint8Array, pos: number): number {
  const left = bytes.length - pos;
  if (left < INSN_SLOT_SIZE) return left;
  if (bytes[pos] !== Opcode.LD_IMM64) return INSN_SLOT_SIZE;
  return left < LD_IMM64_SIZE ? left : LD_IMM64_SIZE;
}

/**
 * Writes the text formatInsn gives decodeInsns' entry at byte `pos` of `bytes` (`view` over the same bytes; the
 * caller reserves MAX_INSN_TEXT), reading the fields straight from the bytes: no entry object, no string.
 * Returns the entry's size (insnSizeAt).
 */
export function writeInsnText(out: TextBytes, bytes: Uint8Array, view: DataView, pos: number, littleEndian: boolean): number {
  const size = insnSizeAt(bytes, pos);
  const opcode = bytes[pos]!;
  if (size < INSN_SLOT_SIZE || (opcode === Opcode.LD_IMM64 && size < LD_IMM64_SIZE)) {
    out.put(TRUNCATED_OPEN);
    writeRawHex(out, bytes, pos, pos + size);
    out.put(ANGLE_CLOSE);
    return size;
  }
  const regs = bytes[pos + 1]!;
  const dst = littleEndian ? regs & 0x0f : regs >> 4;
  const src = littleEndian ? regs >> 4 : regs & 0x0f;
  const off = view.getInt16(pos + 2, littleEndian);
  const imm = view.getInt32(pos + 4, littleEndian);
  const hi = size === LD_IMM64_SIZE ? view.getUint32(pos + 12, littleEndian) : 0;
  const formatter = FORMATTERS[opcode];
  if (formatter === undefined || !formatter(out, dst, src, off, imm, hi, imm >>> 0)) {
    // Decoding then encoding is byte-exact, so the bytes formatInsn shows for an unknown entry are these.
    out.put(UNKNOWN_OPEN);
    writeRawHex(out, bytes, pos, pos + size);
    out.put(ANGLE_CLOSE);
  }
  return size;
}

/** formatInsn's scratch: one instruction's text at a time. */
const scratch = new TextBytes(MAX_INSN_TEXT);

/**
 * The instruction text llvm-objdump prints (`r1 = *(u64 *)(r10 - 0x8)`, `if w1 s< 0x5 goto +0x2`, `r1 = 0x0 ll`).
 * Jump targets are the raw relative offsets, without objdump's `<label>` annotation. An instruction LLVM does not
 * decode prints as `<unknown: bytes>` and an incomplete one as `<truncated: bytes>`; the bytes are in the object's
 * byte order (`littleEndian`, which matters for nothing else).
 */
export function formatInsn(insn: Insn, littleEndian = true): string {
  if (insn.truncated !== undefined) return `<truncated: ${formatRawHex(insn.truncated)}>`;
  // The encoder accepts the unsigned spelling of off and imm; print what those bits mean, as for decoded entries.
  const unsigned = insn.off > 0x7fff || insn.imm > 0x7fff_ffff;
  const off = unsigned ? (insn.off << 16) >> 16 : insn.off;
  const imm = unsigned ? insn.imm | 0 : insn.imm;
  const formatter = FORMATTERS[insn.opcode];
  // Fields no 8 bytes decode to (hand-built entries: fractions, beyond their width) are not printed as if valid.
  if (formatter !== undefined && (off << 16) >> 16 === off && (imm | 0) === imm && Number.isInteger(insn.dst) && (insn.src & 0xff) === insn.src) {
    let hi = 0;
    let lo = imm >>> 0;
    if (insn.opcode === Opcode.LD_IMM64) {
      const value = BigInt.asUintN(64, ldImm64Value(insn));
      hi = Number(value >> 32n);
      lo = Number(value & 0xffff_ffffn);
    }
    scratch.pos = 0;
    if (formatter(scratch, insn.dst, insn.src, off, imm, hi, lo)) return scratch.asciiSince(0);
  }
  return `<unknown: ${safeRawHex(insn, littleEndian)}>`;
}

/** Raw bytes of an entry for the unknown text; fields out of range (hand-built entries) are shown as fields instead. */
function safeRawHex(insn: Insn, littleEndian: boolean): string {
  try {
    return formatRawHex(encodeInsns([insn], littleEndian));
  } catch (e) {
    if (!(e instanceof InsnError)) throw e;
    return `opcode ${insn.opcode} dst ${insn.dst} src ${insn.src} off ${insn.off} imm ${insn.imm}`;
  }
}
