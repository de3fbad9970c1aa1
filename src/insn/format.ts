/**
 * Instruction text exactly as llvm-objdump (LLVM 19, default features) prints it for BPF.
 *
 * LLVM's disassembler matches bit patterns from BPFInstrInfo.td: each instruction fixes some fields and ignores the
 * rest (an ALU immediate form ignores src, a register form ignores imm, `call` ignores everything but imm…).
 * The tables below encode, per opcode, which fields must hold which values; anything else prints as
 * `<unknown: bytes>` where llvm-objdump prints `<unknown>`. The agreement test in test/insn compares every
 * instruction of real objects against llvm-objdump.
 */
import type { Insn } from './insn.js';
import { ldImm64Value } from './insn.js';
import { encodeInsns } from './decode.js';
import { InsnError } from './errors.js';
import {
  AluOp, AtomicOp, InsnClass, InsnMode, InsnSize, InsnSource, JmpOp, MAX_LLVM_REG, Opcode, insnClass, insnMode,
  insnOp, insnSize, insnSource,
} from './opcodes.js';

type Formatter = (insn: Insn) => string | undefined;

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** The hex-bytes column as llvm-objdump prints it: "b7 01 00 00 00 00 00 00". */
export function formatRawHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += i === 0 ? HEX_BYTE[bytes[i]!]! : ' ' + HEX_BYTE[bytes[i]!]!;
  return s;
}

/** LLVM's formatHex of a signed value: `0x1f`, `-0x8`. */
function hex(value: number): string {
  return value < 0 ? '-0x' + (-value).toString(16) : '0x' + value.toString(16);
}

function hex64(value: bigint): string {
  const signed = BigInt.asIntN(64, value);
  return signed < 0n ? '-0x' + (-signed).toString(16) : '0x' + signed.toString(16);
}

/** A jump offset: explicit sign, `+0x3` / `-0x3`. */
function target(offset: number): string {
  return offset < 0 ? hex(offset) : '+' + hex(offset);
}

/** `r1 + 0x8` / `r10 - 0x8`: the address inside `*(u64 *)(…)` and the atomic builtins' first argument. */
function address(base: number, off: number): string {
  return off < 0 ? `r${base} - ${hex(-off)}` : `r${base} + ${hex(off)}`;
}

/** LLVM decodes registers r0..r11 only; a larger number in a field the instruction uses makes it unknown. */
function reg(n: number): boolean {
  return n >= 0 && n <= MAX_LLVM_REG;
}

const SIZE_NAMES: Record<number, string> = {
  [InsnSize.W]: '32', [InsnSize.H]: '16', [InsnSize.B]: '8', [InsnSize.DW]: '64',
};

function sizeName(opcode: number): string {
  return SIZE_NAMES[insnSize(opcode)]!;
}

// ---- ALU / ALU64 ---------------------------------------------------------------------------------------------------

/** Operators of the plain two-operand ALU ops; their off must be 0. DIV and MOD also have a signed form (off 1). */
const ALU_OPERATORS: Record<number, string> = {
  [AluOp.ADD]: '+=', [AluOp.SUB]: '-=', [AluOp.MUL]: '*=', [AluOp.DIV]: '/=', [AluOp.OR]: '|=', [AluOp.AND]: '&=',
  [AluOp.LSH]: '<<=', [AluOp.RSH]: '>>=', [AluOp.MOD]: '%=', [AluOp.XOR]: '^=', [AluOp.ARSH]: 's>>=',
};
const SIGNED_ALU_OPERATORS: Record<number, string> = { [AluOp.DIV]: 's/=', [AluOp.MOD]: 's%=' };

function aluFormatter(opcode: number): Formatter | undefined {
  const is64 = insnClass(opcode) === InsnClass.ALU64;
  const r = is64 ? 'r' : 'w';
  const byReg = insnSource(opcode) === InsnSource.X;
  const op = insnOp(opcode);
  const operator = ALU_OPERATORS[op];
  if (operator !== undefined) {
    const signed = SIGNED_ALU_OPERATORS[op];
    const pick = (off: number) => (off === 0 ? operator : off === 1 ? signed : undefined);
    return byReg
      ? (i) => {
          const o = pick(i.off);
          return o !== undefined && reg(i.dst) && reg(i.src) ? `${r}${i.dst} ${o} ${r}${i.src}` : undefined;
        }
      : (i) => {
          const o = pick(i.off);
          return o !== undefined && reg(i.dst) ? `${r}${i.dst} ${o} ${hex(i.imm)}` : undefined;
        };
  }
  switch (op) {
    case AluOp.NEG:
      return byReg ? undefined : (i) => (reg(i.dst) ? `${r}${i.dst} = -${r}${i.dst}` : undefined);
    case AluOp.MOV:
      if (!byReg) return (i) => (i.off === 0 && reg(i.dst) ? `${r}${i.dst} = ${hex(i.imm)}` : undefined);
      return (i) => {
        if (!reg(i.dst) || !reg(i.src)) return undefined;
        switch (i.off) {
          case 0: return `${r}${i.dst} = ${r}${i.src}`;
          case 8: case 16: return `${r}${i.dst} = (s${i.off})${r}${i.src}`;
          case 32: return is64 ? `r${i.dst} = (s32)r${i.src}` : undefined;
          // Arena pointer cast: imm holds the destination address space in its high 16 bits, the source in its low.
          case 1: return is64 ? `r${i.dst} = addr_space_cast(r${i.src}, ${hex(i.imm >>> 16)}, ${hex(i.imm & 0xffff)})` : undefined;
          default: return undefined;
        }
      };
    case AluOp.END: {
      // ALU: to-LE (K) / to-BE (X); ALU64 K: unconditional bswap (cpu v4). The register is always printed as rN.
      const name = is64 ? (byReg ? undefined : 'bswap') : byReg ? 'be' : 'le';
      if (name === undefined) return undefined;
      return (i) => ((i.imm === 16 || i.imm === 32 || i.imm === 64) && reg(i.dst) ? `r${i.dst} = ${name}${i.imm} r${i.dst}` : undefined);
    }
    default:
      return undefined;
  }
}

// ---- JMP / JMP32 ---------------------------------------------------------------------------------------------------

const JMP_OPERATORS: Record<number, string> = {
  [JmpOp.JEQ]: '==', [JmpOp.JGT]: '>', [JmpOp.JGE]: '>=', [JmpOp.JSET]: '&', [JmpOp.JNE]: '!=', [JmpOp.JSGT]: 's>',
  [JmpOp.JSGE]: 's>=', [JmpOp.JLT]: '<', [JmpOp.JLE]: '<=', [JmpOp.JSLT]: 's<', [JmpOp.JSLE]: 's<=',
};

function jmpFormatter(opcode: number): Formatter | undefined {
  const is64 = insnClass(opcode) === InsnClass.JMP;
  const r = is64 ? 'r' : 'w';
  const byReg = insnSource(opcode) === InsnSource.X;
  const op = insnOp(opcode);
  const operator = JMP_OPERATORS[op];
  if (operator !== undefined) {
    return byReg
      ? (i) => (reg(i.dst) && reg(i.src) ? `if ${r}${i.dst} ${operator} ${r}${i.src} goto ${target(i.off)}` : undefined)
      : (i) => (reg(i.dst) ? `if ${r}${i.dst} ${operator} ${hex(i.imm)} goto ${target(i.off)}` : undefined);
  }
  if (byReg) {
    return opcode === Opcode.CALLX ? (i) => (reg(i.dst) ? `callx r${i.dst}` : undefined) : undefined;
  }
  switch (opcode) {
    case Opcode.JA: return (i) => `goto ${target(i.off)}`;
    case Opcode.GOTOL: return (i) => `gotol ${target(i.imm)}`;
    // Helper, bpf-to-bpf (src 1) and kfunc (src 2) calls all print the raw imm.
    case Opcode.CALL: return (i) => `call ${hex(i.imm)}`;
    case Opcode.EXIT: return (i) => (i.imm === 0 ? 'exit' : undefined);
    case Opcode.MAY_GOTO: return (i) => `may_goto ${target(i.off)}`;
    default: return undefined;
  }
}

// ---- loads and stores ----------------------------------------------------------------------------------------------

function ldFormatter(opcode: number): Formatter | undefined {
  if (opcode === Opcode.LD_IMM64) {
    return (i) => {
      if (i.off !== 0 || !reg(i.dst)) return undefined;
      // src 0 is a plain constant; any BPF_PSEUDO_* kind prints as LLVM's ld_pseudo with the low 32 bits unsigned.
      return i.src === 0 ? `r${i.dst} = ${hex64(ldImm64Value(i))} ll` : `ld_pseudo\tr${i.dst}, ${hex(i.src)}, ${hex(i.imm >>> 0)}`;
    };
  }
  const size = insnSize(opcode);
  if (size === InsnSize.DW) return undefined;
  const width = `u${sizeName(opcode)}`;
  switch (insnMode(opcode)) {
    case InsnMode.ABS: return (i) => `r0 = *(${width} *)skb[${hex(i.imm)}]`;
    case InsnMode.IND: return (i) => (reg(i.src) ? `r0 = *(${width} *)skb[r${i.src}]` : undefined);
    default: return undefined;
  }
}

function ldxFormatter(opcode: number): Formatter | undefined {
  const mode = insnMode(opcode);
  let width: string;
  if (mode === InsnMode.MEM) width = `u${sizeName(opcode)}`;
  else if (mode === InsnMode.MEMSX && insnSize(opcode) !== InsnSize.DW) width = `s${sizeName(opcode)}`;
  else return undefined;
  return (i) => (reg(i.dst) && reg(i.src) ? `r${i.dst} = *(${width} *)(${address(i.src, i.off)})` : undefined);
}

function stFormatter(opcode: number): Formatter | undefined {
  if (insnMode(opcode) !== InsnMode.MEM) return undefined;
  const width = `u${sizeName(opcode)}`;
  return (i) => (reg(i.dst) ? `*(${width} *)(${address(i.dst, i.off)}) = ${hex(i.imm)}` : undefined);
}

/** Non-fetching atomic ops of a 64-bit BPF_ATOMIC (imm bits 4-7); LLVM accepts any low nibble but FETCH here. */
const ATOMIC_LOCK_OPERATORS: Record<number, string> = {
  [AtomicOp.ADD]: '+', [AtomicOp.OR]: '|', [AtomicOp.AND]: '&', [AtomicOp.XOR]: '^',
};
const ATOMIC_FETCH_NAMES: Record<number, string> = {
  [AtomicOp.ADD]: 'add', [AtomicOp.OR]: 'or', [AtomicOp.AND]: 'and', [AtomicOp.XOR]: 'xor',
};

function stxFormatter(opcode: number): Formatter | undefined {
  const mode = insnMode(opcode);
  const size = insnSize(opcode);
  if (mode === InsnMode.MEM) {
    const width = `u${sizeName(opcode)}`;
    return (i) => (reg(i.dst) && reg(i.src) ? `*(${width} *)(${address(i.dst, i.off)}) = r${i.src}` : undefined);
  }
  if (mode !== InsnMode.ATOMIC) return undefined;
  if (size === InsnSize.W) {
    // Without the alu32 feature LLVM knows only the 32-bit atomic add, and ignores the low nibble and bits 8-31.
    return (i) => ((i.imm & 0xf0) === AtomicOp.ADD && reg(i.dst) && reg(i.src) ? `lock *(u32 *)(${address(i.dst, i.off)}) += r${i.src}` : undefined);
  }
  if (size !== InsnSize.DW) return undefined;
  return (i) => {
    if (!reg(i.dst) || !reg(i.src)) return undefined;
    const op = i.imm & 0xf0; // bits 8-31 are not decoded
    const fetch = (i.imm & 0x0f) === AtomicOp.FETCH;
    const addr = address(i.dst, i.off);
    if (op === (AtomicOp.XCHG & 0xf0)) return fetch ? `r${i.src} = xchg_64(${addr}, r${i.src})` : undefined;
    if (op === (AtomicOp.CMPXCHG & 0xf0)) return fetch ? `r0 = cmpxchg_64(${addr}, r0, r${i.src})` : undefined;
    if (fetch) {
      const name = ATOMIC_FETCH_NAMES[op];
      return name === undefined ? undefined : `r${i.src} = atomic_fetch_${name}((u64 *)(${addr}), r${i.src})`;
    }
    const operator = ATOMIC_LOCK_OPERATORS[op];
    return operator === undefined ? undefined : `lock *(u64 *)(${addr}) ${operator}= r${i.src}`;
  };
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

/**
 * The instruction text llvm-objdump prints (`r1 = *(u64 *)(r10 - 0x8)`, `if w1 s< 0x5 goto +0x2`, `r1 = 0x0 ll`).
 * Jump targets are the raw relative offsets, without objdump's `<label>` annotation. An instruction LLVM does not
 * decode prints as `<unknown: bytes>` and an incomplete one as `<truncated: bytes>`; the bytes are in the object's
 * byte order (`littleEndian`, which matters for nothing else).
 */
export function formatInsn(insn: Insn, littleEndian = true): string {
  if (insn.truncated !== undefined) return `<truncated: ${formatRawHex(insn.truncated)}>`;
  // The encoder accepts the unsigned spelling of off and imm; print what those bits mean, as for decoded entries.
  const signed = insn.off > 0x7fff || insn.imm > 0x7fff_ffff ? { ...insn, off: (insn.off << 16) >> 16, imm: insn.imm | 0 } : insn;
  const text = FORMATTERS[signed.opcode]?.(signed);
  if (text !== undefined) return text;
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
