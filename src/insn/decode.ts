import { ByteReader } from '../base/cursor.js';
import { InsnError } from './errors.js';
import type { Insn } from './insn.js';
import { INSN_SLOT_SIZE, Opcode } from './opcodes.js';

const LD_IMM64_SIZE = 2 * INSN_SLOT_SIZE;

/** ByteReader's error for checked reads; decodeInsns makes none (see below), so this only satisfies its contract. */
function outOfBounds(what: string, offset: number, size: number, limit: number): Error {
  return new InsnError(Math.floor(offset / INSN_SLOT_SIZE), `${what}: ${size} bytes at offset ${offset} exceed ${limit}`);
}

/**
 * Decodes a section's bytes into instructions. Never throws: a trailing partial slot, or a ld_imm64 whose second
 * slot is missing, becomes one entry with `truncated` set (holding the raw bytes); any other 8 bytes decode to
 * fields, whether or not they form a valid instruction (the formatter says `<unknown …>` for those).
 *
 * Byte order follows the object: off and imm are read in it, and the register byte holds dst in the low nibble
 * (little-endian) or in the high nibble (big-endian).
 */
export function decodeInsns(bytes: Uint8Array, littleEndian: boolean): Insn[] {
  // ByteReader windows the view to exactly `bytes`; the loop guards prove every read below is in bounds, so the
  // view is read directly: per-read checks would dominate the cost on large objects.
  const view = new ByteReader(bytes, littleEndian, outOfBounds).view;
  const end = bytes.byteLength;
  const out: Insn[] = [];
  let pos = 0;
  while (pos + INSN_SLOT_SIZE <= end) {
    const opcode = bytes[pos]!;
    const regs = bytes[pos + 1]!;
    const dst = littleEndian ? regs & 0x0f : regs >> 4;
    const src = littleEndian ? regs >> 4 : regs & 0x0f;
    const off = view.getInt16(pos + 2, littleEndian);
    const imm = view.getInt32(pos + 4, littleEndian);
    if (opcode !== Opcode.LD_IMM64) {
      out.push({ opcode, dst, src, off, imm });
      pos += INSN_SLOT_SIZE;
      continue;
    }
    if (pos + LD_IMM64_SIZE > end) {
      out.push({ opcode, dst, src, off, imm, truncated: bytes.subarray(pos, end) });
      return out;
    }
    const high = view.getUint32(pos + 12, littleEndian);
    const imm64 = (BigInt(high) << 32n) | BigInt(imm >>> 0);
    // Packed independently of byte order, so re-encoding reproduces the bytes as they were.
    const reserved = view.getUint32(pos + 8, false);
    out.push(reserved === 0 ? { opcode, dst, src, off, imm, imm64 } : { opcode, dst, src, off, imm, imm64, imm64Reserved: reserved });
    pos += LD_IMM64_SIZE;
  }
  if (pos < end) out.push({ opcode: 0, dst: 0, src: 0, off: 0, imm: 0, truncated: bytes.subarray(pos, end) });
  return out;
}

/** decodeInsns(bytes, either byte order).length, without decoding: ld_imm64 is one entry over two slots. */
export function countInsns(bytes: Uint8Array): number {
  const end = bytes.byteLength;
  let count = 0;
  let pos = 0;
  while (pos + INSN_SLOT_SIZE <= end) {
    count++;
    if (bytes[pos] !== Opcode.LD_IMM64) {
      pos += INSN_SLOT_SIZE;
    } else if (pos + LD_IMM64_SIZE > end) {
      return count;
    } else {
      pos += LD_IMM64_SIZE;
    }
  }
  return pos < end ? count + 1 : count;
}

/** Bytes an entry encodes to. */
function encodedSize(insn: Insn): number {
  if (insn.truncated !== undefined) return insn.truncated.byteLength;
  return insn.opcode === Opcode.LD_IMM64 ? LD_IMM64_SIZE : INSN_SLOT_SIZE;
}

function checkField(index: number, name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InsnError(index, `${name} ${value} is outside ${min}..${max}`);
  }
}

/**
 * Encodes instructions in the given byte order; the inverse of decodeInsns, byte for byte (truncated entries are
 * written back as their raw bytes). Throws InsnError naming the entry when a field does not fit its width.
 * imm accepts its signed or unsigned 32-bit spelling, off its signed or unsigned 16-bit one.
 */
export function encodeInsns(insns: readonly Insn[], littleEndian: boolean): Uint8Array {
  let total = 0;
  for (const insn of insns) total += encodedSize(insn);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    if (insn.truncated !== undefined) {
      out.set(insn.truncated, pos);
      pos += insn.truncated.byteLength;
      continue;
    }
    checkField(i, 'opcode', insn.opcode, 0, 0xff);
    checkField(i, 'dst', insn.dst, 0, 15);
    checkField(i, 'src', insn.src, 0, 15);
    checkField(i, 'off', insn.off, -0x8000, 0xffff);
    checkField(i, 'imm', insn.imm, -0x8000_0000, 0xffff_ffff);
    out[pos] = insn.opcode;
    out[pos + 1] = littleEndian ? (insn.src << 4) | insn.dst : (insn.dst << 4) | insn.src;
    view.setUint16(pos + 2, insn.off & 0xffff, littleEndian);
    if (insn.opcode !== Opcode.LD_IMM64) {
      view.setUint32(pos + 4, insn.imm >>> 0, littleEndian);
      pos += INSN_SLOT_SIZE;
      continue;
    }
    let value: bigint;
    if (insn.imm64 === undefined) {
      value = BigInt(insn.imm >>> 0);
    } else {
      if (insn.imm64 < -(1n << 63n) || insn.imm64 >= 1n << 64n) {
        throw new InsnError(i, `imm64 ${insn.imm64} does not fit in 64 bits`);
      }
      value = BigInt.asUintN(64, insn.imm64);
      // A copy that changed imm but not imm64 (or the reverse) is a caller bug; guessing which one was meant would
      // load the wrong map or address.
      if ((insn.imm >>> 0) !== Number(value & 0xffff_ffffn)) {
        throw new InsnError(i, `ld_imm64 imm ${insn.imm} disagrees with the low half of imm64 0x${value.toString(16)} (use withImm64)`);
      }
    }
    view.setUint32(pos + 4, Number(value & 0xffff_ffffn), littleEndian);
    const reserved = insn.imm64Reserved ?? 0;
    checkField(i, 'imm64Reserved', reserved, 0, 0xffff_ffff);
    view.setUint32(pos + 8, reserved, false);
    view.setUint32(pos + 12, Number(value >> 32n), littleEndian);
    pos += LD_IMM64_SIZE;
  }
  return out;
}
