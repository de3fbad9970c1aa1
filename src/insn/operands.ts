/**
 * Operand text of llvm-objdump's BPF syntax, written as bytes: registers, LLVM's signed hex, jump targets, memory
 * addresses, and the raw-bytes column. The pieces format.ts's per-opcode formatters are made of.
 */
import { asciiBytes, type TextBytes } from '../base/text-bytes.js';
import { InsnSize, MAX_LLVM_REG, insnSize } from './opcodes.js';

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** The hex-bytes column as llvm-objdump prints it: "b7 01 00 00 00 00 00 00". */
export function formatRawHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += i === 0 ? HEX_BYTE[bytes[i]!]! : ' ' + HEX_BYTE[bytes[i]!]!;
  return s;
}

/** formatRawHex written into `out` (3 bytes per input byte, less one). */
export function writeRawHex(out: TextBytes, bytes: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    if (i !== start) out.byte(SPACE);
    out.hexDigits(bytes[i]!, 2);
  }
}

export const SPACE = 0x20;
export const CHAR_R = 0x72;
export const CHAR_W = 0x77;
const CHAR_PLUS = 0x2b;
const PREFIX_HEX = asciiBytes('0x');
const PREFIX_NEG_HEX = asciiBytes('-0x');

/** `r7`, `w11`: registers are 0..11 here (see reg()). */
export function writeReg(out: TextBytes, prefix: number, n: number): void {
  out.byte(prefix);
  if (n >= 10) {
    out.byte(0x31);
    out.byte(0x30 + n - 10);
  } else {
    out.byte(0x30 + n);
  }
}

/** LLVM's formatHex of a signed value: `0x1f`, `-0x8` (|value| < 2^32). */
export function writeHex(out: TextBytes, value: number): void {
  if (value < 0) {
    out.put(PREFIX_NEG_HEX);
    out.hexDigits(-value);
  } else {
    out.put(PREFIX_HEX);
    out.hexDigits(value);
  }
}

/** formatHex of a 64-bit value given as unsigned halves, read as signed. */
export function writeHex64(out: TextBytes, hi: number, lo: number): void {
  if (hi >= 0x8000_0000) {
    // Two's complement negation of the pair.
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    out.put(PREFIX_NEG_HEX);
  } else {
    out.put(PREFIX_HEX);
  }
  if (hi === 0) {
    out.hexDigits(lo);
  } else {
    out.hexDigits(hi);
    out.hexDigits(lo, 8);
  }
}

/** A jump offset: explicit sign, `+0x3` / `-0x3`. */
export function writeTarget(out: TextBytes, offset: number): void {
  if (offset >= 0) out.byte(CHAR_PLUS);
  writeHex(out, offset);
}

const PLUS = asciiBytes(' + ');
const MINUS = asciiBytes(' - ');

/** `r1 + 0x8` / `r10 - 0x8`: the address inside `*(u64 *)(…)` and the atomic builtins' first argument. */
export function writeAddress(out: TextBytes, base: number, off: number): void {
  writeReg(out, CHAR_R, base);
  if (off < 0) {
    out.put(MINUS);
    writeHex(out, -off);
  } else {
    out.put(PLUS);
    writeHex(out, off);
  }
}

/** LLVM decodes registers r0..r11 only; a larger number in a field the instruction uses makes it unknown. */
export function reg(n: number): boolean {
  return n >= 0 && n <= MAX_LLVM_REG;
}

const SIZE_NAMES: Record<number, string> = {
  [InsnSize.W]: '32', [InsnSize.H]: '16', [InsnSize.B]: '8', [InsnSize.DW]: '64',
};

export function sizeName(opcode: number): string {
  return SIZE_NAMES[insnSize(opcode)]!;
}

/**
 * Writes one instruction's text from its fields, or returns false (having written nothing) when LLVM would not
 * decode it. `hi`/`lo` are a ld_imm64's 64-bit immediate as two unsigned halves (unused by other opcodes).
 * Text goes straight into bytes: a 187k-instruction listing makes no string per instruction.
 */
export type Formatter = (out: TextBytes, dst: number, src: number, off: number, imm: number, hi: number, lo: number) => boolean;

/** Words several formatters share. */
export const ASSIGN = asciiBytes(' = ');
export const COMMA = asciiBytes(', ');
export const CLOSE = asciiBytes(')');
