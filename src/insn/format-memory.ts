/**
 * llvm-objdump's text of the load and store classes (LD, LDX, ST, STX with its atomics), written as bytes; see
 * format.ts for the rules every formatter follows.
 */
import { asciiBytes } from '../base/text-bytes.js';
import {
  ASSIGN, CHAR_R, CLOSE, COMMA, reg, sizeName, writeAddress, writeHex, writeHex64, writeReg, type Formatter,
} from './operands.js';
import { AtomicOp, InsnMode, InsnSize, Opcode, insnMode, insnSize } from './opcodes.js';

// ---- loads and stores ----------------------------------------------------------------------------------------------

const LL = asciiBytes(' ll');
const LD_PSEUDO = asciiBytes('ld_pseudo\tr');
const R0_LOAD = asciiBytes('r0 = *(');
const SKB_OPEN = asciiBytes(' *)skb[');
const SKB_CLOSE = asciiBytes(']');
const DEREF_OPEN = asciiBytes('*(');
const LOAD_OPEN = asciiBytes(' = *(');
const DEREF_MIDDLE = asciiBytes(' *)(');
const STORE_CLOSE = asciiBytes(') = ');

export function ldFormatter(opcode: number): Formatter | undefined {
  if (opcode === Opcode.LD_IMM64) {
    return (out, dst, src, off, imm, hi, lo) => {
      if (off !== 0 || !reg(dst)) return false;
      // src 0 is a plain constant; any BPF_PSEUDO_* kind prints as LLVM's ld_pseudo with the low 32 bits unsigned.
      if (src === 0) {
        writeReg(out, CHAR_R, dst);
        out.put(ASSIGN);
        writeHex64(out, hi, lo);
        out.put(LL);
      } else {
        out.put(LD_PSEUDO);
        out.decimal(dst);
        out.put(COMMA);
        writeHex(out, src);
        out.put(COMMA);
        writeHex(out, imm >>> 0);
      }
      return true;
    };
  }
  const size = insnSize(opcode);
  if (size === InsnSize.DW) return undefined;
  const width = asciiBytes(`u${sizeName(opcode)}`);
  switch (insnMode(opcode)) {
    case InsnMode.ABS: return (out, _dst, _src, _off, imm) => {
      out.put(R0_LOAD);
      out.put(width);
      out.put(SKB_OPEN);
      writeHex(out, imm);
      out.put(SKB_CLOSE);
      return true;
    };
    case InsnMode.IND: return (out, _dst, src) => {
      if (!reg(src)) return false;
      out.put(R0_LOAD);
      out.put(width);
      out.put(SKB_OPEN);
      writeReg(out, CHAR_R, src);
      out.put(SKB_CLOSE);
      return true;
    };
    default: return undefined;
  }
}

export function ldxFormatter(opcode: number): Formatter | undefined {
  const mode = insnMode(opcode);
  let width: Uint8Array;
  if (mode === InsnMode.MEM) width = asciiBytes(`u${sizeName(opcode)}`);
  else if (mode === InsnMode.MEMSX && insnSize(opcode) !== InsnSize.DW) width = asciiBytes(`s${sizeName(opcode)}`);
  else return undefined;
  return (out, dst, src, off) => {
    if (!reg(dst) || !reg(src)) return false;
    writeReg(out, CHAR_R, dst);
    out.put(LOAD_OPEN);
    out.put(width);
    out.put(DEREF_MIDDLE);
    writeAddress(out, src, off);
    out.put(CLOSE);
    return true;
  };
}

export function stFormatter(opcode: number): Formatter | undefined {
  if (insnMode(opcode) !== InsnMode.MEM) return undefined;
  const width = asciiBytes(`u${sizeName(opcode)}`);
  return (out, dst, _src, off, imm) => {
    if (!reg(dst)) return false;
    out.put(DEREF_OPEN);
    out.put(width);
    out.put(DEREF_MIDDLE);
    writeAddress(out, dst, off);
    out.put(STORE_CLOSE);
    writeHex(out, imm);
    return true;
  };
}

/** Non-fetching atomic ops of a 64-bit BPF_ATOMIC (imm bits 4-7); LLVM accepts any low nibble but FETCH here. */
const ATOMIC_LOCK_OPERATORS: Record<number, Uint8Array> = {
  [AtomicOp.ADD]: asciiBytes(') += r'), [AtomicOp.OR]: asciiBytes(') |= r'), [AtomicOp.AND]: asciiBytes(') &= r'),
  [AtomicOp.XOR]: asciiBytes(') ^= r'),
};
const ATOMIC_FETCH_NAMES: Record<number, Uint8Array> = {
  [AtomicOp.ADD]: asciiBytes(' = atomic_fetch_add((u64 *)('), [AtomicOp.OR]: asciiBytes(' = atomic_fetch_or((u64 *)('),
  [AtomicOp.AND]: asciiBytes(' = atomic_fetch_and((u64 *)('), [AtomicOp.XOR]: asciiBytes(' = atomic_fetch_xor((u64 *)('),
};
const LOCK_32 = asciiBytes('lock *(u32 *)(');
const LOCK_64 = asciiBytes('lock *(u64 *)(');
const XCHG = asciiBytes(' = xchg_64(');
const CMPXCHG = asciiBytes('r0 = cmpxchg_64(');
const R0_ARGUMENT = asciiBytes(', r0, ');
const FETCH_CLOSE = asciiBytes('), ');

export function stxFormatter(opcode: number): Formatter | undefined {
  const mode = insnMode(opcode);
  const size = insnSize(opcode);
  if (mode === InsnMode.MEM) {
    const width = asciiBytes(`u${sizeName(opcode)}`);
    return (out, dst, src, off) => {
      if (!reg(dst) || !reg(src)) return false;
      out.put(DEREF_OPEN);
      out.put(width);
      out.put(DEREF_MIDDLE);
      writeAddress(out, dst, off);
      out.put(STORE_CLOSE);
      writeReg(out, CHAR_R, src);
      return true;
    };
  }
  if (mode !== InsnMode.ATOMIC) return undefined;
  if (size === InsnSize.W) {
    // Without the alu32 feature LLVM knows only the 32-bit atomic add, and ignores the low nibble and bits 8-31.
    return (out, dst, src, off, imm) => {
      if ((imm & 0xf0) !== AtomicOp.ADD || !reg(dst) || !reg(src)) return false;
      out.put(LOCK_32);
      writeAddress(out, dst, off);
      out.put(ATOMIC_LOCK_OPERATORS[AtomicOp.ADD]!);
      out.decimal(src);
      return true;
    };
  }
  if (size !== InsnSize.DW) return undefined;
  return (out, dst, src, off, imm) => {
    if (!reg(dst) || !reg(src)) return false;
    const op = imm & 0xf0; // bits 8-31 are not decoded
    const fetch = (imm & 0x0f) === AtomicOp.FETCH;
    if (op === (AtomicOp.XCHG & 0xf0)) {
      if (!fetch) return false;
      writeReg(out, CHAR_R, src);
      out.put(XCHG);
      writeAddress(out, dst, off);
      out.put(COMMA);
      writeReg(out, CHAR_R, src);
      out.put(CLOSE);
      return true;
    }
    if (op === (AtomicOp.CMPXCHG & 0xf0)) {
      if (!fetch) return false;
      out.put(CMPXCHG);
      writeAddress(out, dst, off);
      out.put(R0_ARGUMENT);
      writeReg(out, CHAR_R, src);
      out.put(CLOSE);
      return true;
    }
    if (fetch) {
      const name = ATOMIC_FETCH_NAMES[op];
      if (name === undefined) return false;
      writeReg(out, CHAR_R, src);
      out.put(name);
      writeAddress(out, dst, off);
      out.put(FETCH_CLOSE);
      writeReg(out, CHAR_R, src);
      out.put(CLOSE);
      return true;
    }
    const operator = ATOMIC_LOCK_OPERATORS[op];
    if (operator === undefined) return false;
    out.put(LOCK_64);
    writeAddress(out, dst, off);
    out.put(operator);
    out.decimal(src);
    return true;
  };
}
