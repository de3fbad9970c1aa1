/**
 * formatInsn on hand-built instructions of every class. Expected texts are llvm-objdump-19's output for the same
 * bytes (collected by assembling them and running `llvm-objdump-19 -d`); objdump-sweep.test.ts re-checks the whole
 * opcode space against the installed objdump.
 */
import { describe, expect, it } from 'vitest';
import { decodeInsns, encodeInsns, formatInsn, formatRawHex, insnSizeAt, MAX_INSN_TEXT, writeInsnText, type Insn } from '../../src/insn/index.js';
import { TextBytes } from '../../src/base/text-bytes.js';

type Row = [fields: [opcode: number, dst: number, src: number, off: number, imm: number, high?: number], text: string];

function insn([opcode, dst, src, off, imm, high]: Row[0]): Insn {
  if (high === undefined) return { opcode, dst, src, off, imm };
  return { opcode, dst, src, off, imm, imm64: (BigInt(high >>> 0) << 32n) | BigInt(imm >>> 0) };
}

const KNOWN: Row[] = [
  [[7, 1, 0, 0, 5], "r1 += 0x5"],
  [[7, 1, 0, 0, -1], "r1 += -0x1"],
  [[4, 1, 0, 0, -0x80000000], "w1 += -0x80000000"],
  [[0xf, 1, 2, 0, 0], "r1 += r2"],
  [[0xc, 1, 2, 0, 0], "w1 += w2"],
  [[0x1f, 3, 4, 0, 0], "r3 -= r4"],
  [[0x27, 1, 0, 0, 7], "r1 *= 0x7"],
  [[0x3f, 1, 2, 0, 0], "r1 /= r2"],
  [[0x3f, 1, 2, 1, 0], "r1 s/= r2"],
  [[0x37, 1, 0, 1, -3], "r1 s/= -0x3"],
  [[0x34, 1, 0, 1, 3], "w1 s/= 0x3"],
  [[0x9f, 1, 2, 1, 0], "r1 s%= r2"],
  [[0x97, 1, 0, 1, 7], "r1 s%= 0x7"],
  [[0x9c, 1, 2, 0, 0], "w1 %= w2"],
  [[0x47, 1, 0, 0, 0xff], "r1 |= 0xff"],
  [[0x57, 1, 0, 0, 0xff], "r1 &= 0xff"],
  [[0x67, 1, 0, 0, 0x20], "r1 <<= 0x20"],
  [[0x77, 1, 0, 0, 0x20], "r1 >>= 0x20"],
  [[0xa7, 1, 0, 0, 1], "r1 ^= 0x1"],
  [[0xc7, 1, 0, 0, 0x20], "r1 s>>= 0x20"],
  [[0xcc, 1, 2, 0, 0], "w1 s>>= w2"],
  [[0x87, 1, 0, 0, 0], "r1 = -r1"],
  [[0x84, 1, 0, 0, 0], "w1 = -w1"],
  [[0xb7, 1, 0, 0, -1], "r1 = -0x1"],
  [[0xb4, 1, 0, 0, 0x7fffffff], "w1 = 0x7fffffff"],
  [[0xbf, 1, 2, 0, 0], "r1 = r2"],
  [[0xbc, 1, 2, 0, 0], "w1 = w2"],
  [[0xbf, 1, 2, 8, 0], "r1 = (s8)r2"],
  [[0xbf, 1, 2, 0x10, 0], "r1 = (s16)r2"],
  [[0xbf, 1, 2, 0x20, 0], "r1 = (s32)r2"],
  [[0xbc, 1, 2, 8, 0], "w1 = (s8)w2"],
  [[0xbc, 1, 2, 0x10, 0], "w1 = (s16)w2"],
  [[0xbf, 1, 2, 1, 0x10000], "r1 = addr_space_cast(r2, 0x1, 0x0)"],
  [[0xd7, 1, 0, 0, 0x10], "r1 = bswap16 r1"],
  [[0xd7, 1, 0, 0, 0x20], "r1 = bswap32 r1"],
  [[0xd7, 1, 0, 0, 0x40], "r1 = bswap64 r1"],
  [[0xdc, 1, 0, 0, 0x10], "r1 = be16 r1"],
  [[0xdc, 1, 0, 0, 0x20], "r1 = be32 r1"],
  [[0xdc, 1, 0, 0, 0x40], "r1 = be64 r1"],
  [[0xd4, 1, 0, 0, 0x10], "r1 = le16 r1"],
  [[0xd4, 1, 0, 0, 0x20], "r1 = le32 r1"],
  [[0xd4, 1, 0, 0, 0x40], "r1 = le64 r1"],
  [[0xbf, 0xb, 0xa, 0, 0], "r11 = r10"],
  [[5, 0, 0, 3, 0], "goto +0x3"],
  [[5, 0, 0, -3, 0], "goto -0x3"],
  [[6, 0, 0, 0, 0x186a0], "gotol +0x186a0"],
  [[6, 0, 0, 0, -5], "gotol -0x5"],
  [[0x15, 1, 0, 2, 0], "if r1 == 0x0 goto +0x2"],
  [[0x1d, 1, 2, -3, 0], "if r1 == r2 goto -0x3"],
  [[0x2d, 1, 2, -3, 0], "if r1 > r2 goto -0x3"],
  [[0x2e, 1, 2, -3, 0], "if w1 > w2 goto -0x3"],
  [[0x35, 1, 0, 4, -8], "if r1 >= -0x8 goto +0x4"],
  [[0x45, 1, 0, 1, 8], "if r1 & 0x8 goto +0x1"],
  [[0x4e, 1, 2, 1, 0], "if w1 & w2 goto +0x1"],
  [[0x55, 1, 0, 1, 0], "if r1 != 0x0 goto +0x1"],
  [[0x65, 1, 0, 1, -1], "if r1 s> -0x1 goto +0x1"],
  [[0x6e, 1, 2, 1, 0], "if w1 s> w2 goto +0x1"],
  [[0x75, 1, 0, 1, 0], "if r1 s>= 0x0 goto +0x1"],
  [[0xa5, 1, 0, 1, 0xa], "if r1 < 0xa goto +0x1"],
  [[0xad, 1, 2, 1, 0], "if r1 < r2 goto +0x1"],
  [[0xb6, 1, 0, 1, 0xa], "if w1 <= 0xa goto +0x1"],
  [[0xbd, 1, 2, 1, 0], "if r1 <= r2 goto +0x1"],
  [[0xc6, 1, 0, 2, 5], "if w1 s< 0x5 goto +0x2"],
  [[0xcd, 1, 2, 1, 0], "if r1 s< r2 goto +0x1"],
  [[0xd5, 1, 0, 1, 0], "if r1 s<= 0x0 goto +0x1"],
  [[0xde, 1, 2, 1, 0], "if w1 s<= w2 goto +0x1"],
  [[0x85, 0, 0, 0, 5], "call 0x5"],
  [[0x85, 0, 1, 0, -1], "call -0x1"],
  [[0x85, 0, 2, 0, 0x3039], "call 0x3039"],
  [[0x8d, 2, 0, 0, 0], "callx r2"],
  [[0x95, 0, 0, 0, 0], "exit"],
  [[0xe5, 0, 0, 3, 0], "may_goto +0x3"],
  [[0x30, 0, 0, 0, 0x17], "r0 = *(u8 *)skb[0x17]"],
  [[0x28, 0, 0, 0, 0xc], "r0 = *(u16 *)skb[0xc]"],
  [[0x20, 0, 0, 0, -4], "r0 = *(u32 *)skb[-0x4]"],
  [[0x50, 0, 1, 0, 0], "r0 = *(u8 *)skb[r1]"],
  [[0x48, 0, 1, 0, 0], "r0 = *(u16 *)skb[r1]"],
  [[0x40, 0, 7, 0, 0], "r0 = *(u32 *)skb[r7]"],
  [[0x61, 1, 2, 0, 0], "r1 = *(u32 *)(r2 + 0x0)"],
  [[0x69, 1, 2, 2, 0], "r1 = *(u16 *)(r2 + 0x2)"],
  [[0x71, 1, 2, -1, 0], "r1 = *(u8 *)(r2 - 0x1)"],
  [[0x79, 1, 0xa, -8, 0], "r1 = *(u64 *)(r10 - 0x8)"],
  [[0x81, 1, 2, 0, 0], "r1 = *(s32 *)(r2 + 0x0)"],
  [[0x89, 1, 2, 4, 0], "r1 = *(s16 *)(r2 + 0x4)"],
  [[0x91, 1, 2, 0, 0], "r1 = *(s8 *)(r2 + 0x0)"],
  [[0x62, 0xa, 0, -8, 5], "*(u32 *)(r10 - 0x8) = 0x5"],
  [[0x6a, 0xa, 0, -2, -1], "*(u16 *)(r10 - 0x2) = -0x1"],
  [[0x72, 1, 0, 3, 0xff], "*(u8 *)(r1 + 0x3) = 0xff"],
  [[0x7a, 0xa, 0, -0x10, 0], "*(u64 *)(r10 - 0x10) = 0x0"],
  [[0x63, 0xa, 1, -4, 0], "*(u32 *)(r10 - 0x4) = r1"],
  [[0x6b, 0xa, 1, -6, 0], "*(u16 *)(r10 - 0x6) = r1"],
  [[0x73, 0xa, 1, -7, 0], "*(u8 *)(r10 - 0x7) = r1"],
  [[0x7b, 0xa, 1, -8, 0], "*(u64 *)(r10 - 0x8) = r1"],
  [[0x79, 1, 0xa, -0x8000, 0], "r1 = *(u64 *)(r10 - 0x8000)"],
  [[0x79, 1, 0xa, 0x7fff, 0], "r1 = *(u64 *)(r10 + 0x7fff)"],
  [[0xc3, 1, 2, 0, 0], "lock *(u32 *)(r1 + 0x0) += r2"],
  [[0xdb, 1, 2, 0, 0], "lock *(u64 *)(r1 + 0x0) += r2"],
  [[0xdb, 1, 2, 8, 0x40], "lock *(u64 *)(r1 + 0x8) |= r2"],
  [[0xdb, 1, 2, 0, 0x50], "lock *(u64 *)(r1 + 0x0) &= r2"],
  [[0xdb, 1, 2, 0, 0xa0], "lock *(u64 *)(r1 + 0x0) ^= r2"],
  [[0xdb, 1, 2, 0, 1], "r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)"],
  [[0xdb, 1, 2, -8, 0x41], "r2 = atomic_fetch_or((u64 *)(r1 - 0x8), r2)"],
  [[0xdb, 1, 2, 0, 0x51], "r2 = atomic_fetch_and((u64 *)(r1 + 0x0), r2)"],
  [[0xdb, 1, 2, 0, 0xa1], "r2 = atomic_fetch_xor((u64 *)(r1 + 0x0), r2)"],
  [[0xdb, 1, 2, 0, 0xe1], "r2 = xchg_64(r1 + 0x0, r2)"],
  [[0xdb, 1, 2, 0, 0xf1], "r0 = cmpxchg_64(r1 + 0x0, r0, r2)"],
  [[0x18, 1, 0, 0, 0, 0], "r1 = 0x0 ll"],
  [[0x18, 1, 0, 0, -1, -1], "r1 = -0x1 ll"],
  [[0x18, 1, 0, 0, -1, 0], "r1 = 0xffffffff ll"],
  [[0x18, 2, 0, 0, -0x65432110, 0x12345678], "r2 = 0x123456789abcdef0 ll"],
  [[0x18, 1, 0, 0, 0, -0x80000000], "r1 = -0x8000000000000000 ll"],
  [[0x18, 1, 1, 0, 3, 0], "ld_pseudo\tr1, 0x1, 0x3"],
  [[0x18, 1, 2, 0, -1, 0], "ld_pseudo\tr1, 0x2, 0xffffffff"],
  [[0x18, 1, 4, 0, 0, 0], "ld_pseudo\tr1, 0x4, 0x0"],
  [[0x18, 1, 5, 0, 7, 0], "ld_pseudo\tr1, 0x5, 0x7"],
  [[0x18, 1, 6, 0, 1, 0], "ld_pseudo\tr1, 0x6, 0x1"],
];

/** llvm-objdump prints `<unknown>` for these; we print `<unknown: raw bytes>`. */
const UNKNOWN: Array<Row[0]> = [
  [0xff, 1, 2, 0, 0],
  [0x8c, 1, 2, 0, 0],
  [0xf, 1, 2, 5, 0],
  [0x95, 0, 0, 0, 1],
  [0xdc, 1, 0, 0, 8],
  [0xbf, 0xc, 0, 0, 0],
  [0x38, 0, 0, 0, 0],
  [0xdb, 1, 2, 0, 0xe0],
  [0xc3, 1, 2, 0, 0x41],
];

describe('formatInsn prints what llvm-objdump prints', () => {
  it.each(KNOWN)('%j → %s', (fields, text) => {
    expect(formatInsn(insn(fields))).toBe(text);
  });

  it('prints the same text for both byte orders (only the raw bytes of unknowns differ)', () => {
    for (const [fields, text] of KNOWN) {
      expect(formatInsn(insn(fields), false)).toBe(text);
    }
  });

  it('ignores the fields an instruction does not use, as llvm does', () => {
    expect(formatInsn({ opcode: 0x07, dst: 1, src: 15, off: 0, imm: 5 })).toBe('r1 += 0x5');
    expect(formatInsn({ opcode: 0x0f, dst: 1, src: 2, off: 0, imm: 77 })).toBe('r1 += r2');
    expect(formatInsn({ opcode: 0x85, dst: 3, src: 5, off: 7, imm: 3 })).toBe('call 0x3');
    expect(formatInsn({ opcode: 0x95, dst: 15, src: 15, off: -1, imm: 0 })).toBe('exit');
    expect(formatInsn({ opcode: 0x87, dst: 1, src: 15, off: -1, imm: -1 })).toBe('r1 = -r1');
    expect(formatInsn({ opcode: 0xdc, dst: 1, src: 2, off: 3, imm: 64 })).toBe('r1 = be64 r1');
    expect(formatInsn({ opcode: 0x20, dst: 15, src: 15, off: -1, imm: 5 })).toBe('r0 = *(u32 *)skb[0x5]');
    expect(formatInsn({ opcode: 0x06, dst: 15, src: 15, off: -1, imm: 5 })).toBe('gotol +0x5');
    // bits 8-31 of an atomic's imm and the low nibble of a non-fetching one are not decoded
    expect(formatInsn({ opcode: 0xdb, dst: 1, src: 2, off: 0, imm: 0xfff1 })).toBe('r0 = cmpxchg_64(r1 + 0x0, r0, r2)');
    expect(formatInsn({ opcode: 0xdb, dst: 1, src: 2, off: 0, imm: 0x42 })).toBe('lock *(u64 *)(r1 + 0x0) |= r2');
    expect(formatInsn({ opcode: 0xc3, dst: 1, src: 2, off: 0, imm: 0x7fff_0001 })).toBe('lock *(u32 *)(r1 + 0x0) += r2');
    // the second slot's high half does not show in ld_pseudo
    expect(formatInsn({ opcode: 0x18, dst: 1, src: 1, off: 0, imm: 5, imm64: (7n << 32n) | 5n })).toBe('ld_pseudo\tr1, 0x1, 0x5');
  });

  it('prints an unknown instruction with its raw bytes in the object byte order', () => {
    for (const fields of UNKNOWN) {
      const le = insn(fields);
      expect(formatInsn(le)).toBe(`<unknown: ${formatRawHex(encodeInsns([le], true))}>`);
      expect(formatInsn(le, false)).toBe(`<unknown: ${formatRawHex(encodeInsns([le], false))}>`);
    }
    expect(formatInsn({ opcode: 0xff, dst: 1, src: 2, off: 0, imm: 0 })).toBe('<unknown: ff 21 00 00 00 00 00 00>');
    expect(formatInsn({ opcode: 0xff, dst: 1, src: 2, off: 0, imm: 0 }, false)).toBe('<unknown: ff 12 00 00 00 00 00 00>');
  });

  it('treats registers above r11 in a used field, and a ld_imm64 llvm cannot decode, as unknown', () => {
    expect(formatInsn({ opcode: 0xb7, dst: 11, src: 0, off: 0, imm: -1 })).toBe('r11 = -0x1');
    expect(formatInsn({ opcode: 0xb7, dst: 12, src: 0, off: 0, imm: 0 })).toMatch(/^<unknown: b7 0c /);
    expect(formatInsn({ opcode: 0x61, dst: 1, src: 12, off: -2, imm: 5 })).toMatch(/^<unknown: /);
    expect(formatInsn({ opcode: 0x8d, dst: 12, src: 0, off: 0, imm: 5 })).toMatch(/^<unknown: /);
    // llvm-objdump: `18 21 05 00 00 00 00 00` → <unknown> (ld_imm64 needs off 0); we show both slots
    expect(formatInsn({ opcode: 0x18, dst: 1, src: 2, off: 5, imm: 0, imm64: 0x0807060500000000n }))
      .toBe('<unknown: 18 21 05 00 00 00 00 00 00 00 00 00 05 06 07 08>');
    expect(formatInsn({ opcode: 0x18, dst: 12, src: 0, off: 0, imm: 0, imm64: 0n })).toMatch(/^<unknown: 18 0c /);
  });

  it('prints an incomplete entry as truncated with its bytes', () => {
    const truncated = Uint8Array.of(0x18, 0x01, 0, 0, 1, 0, 0, 0);
    expect(formatInsn({ opcode: 0x18, dst: 1, src: 0, off: 0, imm: 1, truncated })).toBe('<truncated: 18 01 00 00 01 00 00 00>');
    expect(formatInsn({ opcode: 0, dst: 0, src: 0, off: 0, imm: 0, truncated: Uint8Array.of(0xb7, 0x01, 0x00) })).toBe('<truncated: b7 01 00>');
  });

  it('reads the unsigned spelling of off and imm the way the encoder writes it', () => {
    expect(formatInsn({ opcode: 0x7a, dst: 10, src: 0, off: 0xfff8, imm: 0xffff_ffff })).toBe('*(u64 *)(r10 - 0x8) = -0x1');
  });

  it('never throws on hand-built entries with fields out of range', () => {
    expect(formatInsn({ opcode: 0x1ff, dst: 1, src: 2, off: 0, imm: 0 })).toBe('<unknown: opcode 511 dst 1 src 2 off 0 imm 0>');
    expect(formatInsn({ opcode: 0xb7, dst: -1, src: 0, off: 0, imm: 0 })).toBe('<unknown: opcode 183 dst -1 src 0 off 0 imm 0>');
  });
});

describe('formatRawHex', () => {
  it('prints lower-case byte pairs separated by single spaces, as objdump\'s bytes column', () => {
    expect(formatRawHex(Uint8Array.of(0xb7, 0x01, 0, 0, 0, 0, 0, 0))).toBe('b7 01 00 00 00 00 00 00');
    expect(formatRawHex(Uint8Array.of(0xff))).toBe('ff');
    expect(formatRawHex(new Uint8Array(0))).toBe('');
  });
});

describe('writeInsnText (the listing\'s path: text straight from the bytes)', () => {
  it('writes what formatInsn says of decodeInsns\' entry, for any bytes in either byte order', () => {
    let seed = 777;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    const out = new TextBytes(MAX_INSN_TEXT);
    let entries = 0;
    let known = 0;
    for (let round = 0; round < 3000; round++) {
      const bytes = new Uint8Array(next() % 70);
      // Real opcodes with small register fields half the time (so most entries decode), plus partial ld_imm64s.
      for (let i = 0; i < bytes.length; i++) {
        const r = next();
        bytes[i] = i % 8 === 0 ? (r % 4 === 0 ? 0x18 : r & 0xff) : i % 8 === 1 && r % 2 === 0 ? r & 0xbb : next() & 0xff;
      }
      for (const littleEndian of [true, false]) {
        const view = new DataView(bytes.buffer);
        let pos = 0;
        for (const insn of decodeInsns(bytes, littleEndian)) {
          out.pos = 0;
          const size = writeInsnText(out, bytes, view, pos, littleEndian);
          const text = out.asciiSince(0);
          expect(text, `bytes ${formatRawHex(bytes)} at ${pos}`).toBe(formatInsn(insn, littleEndian));
          expect(size).toBe(insnSizeAt(bytes, pos));
          entries++;
          if (!text.startsWith('<')) known++;
          pos += size;
        }
        expect(pos).toBe(bytes.length);
      }
    }
    // The sample must exercise the formatters, not only the unknown path.
    expect(known).toBeGreaterThan(entries / 8);
  });
});
