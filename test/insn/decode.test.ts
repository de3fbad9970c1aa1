import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { readElf, SectionFlags } from '../../src/elf/index.js';
import {
  AluOp, AtomicOp, countInsns, decodeInsns, encodeInsns, formatRawHex, InsnClass, InsnError, InsnMode, InsnSize, InsnSource, insnClass, insnMode,
  insnOp, insnSize, insnSlots, insnSource, isCall, isKfuncCall, isLdImm64, isPseudoCall, JmpOp, ldImm64Value, Opcode,
  sizeBytes, slotOffsets, totalSlots, withImm64, type Insn,
} from '../../src/insn/index.js';
import { corpusFiles, SAMPLES_DIR } from '../helpers/kernel.js';

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).filter(Boolean), (b) => Number.parseInt(b, 16));

describe('decodeInsns', () => {
  it('reads dst from the low nibble in little-endian and from the high nibble in big-endian', () => {
    // r1 = *(u64 *)(r10 - 8)
    expect(decodeInsns(hex('79 a1 f8 ff 00 00 00 00'), true)).toEqual([{ opcode: 0x79, dst: 1, src: 10, off: -8, imm: 0 }]);
    expect(decodeInsns(hex('79 1a ff f8 00 00 00 00'), false)).toEqual([{ opcode: 0x79, dst: 1, src: 10, off: -8, imm: 0 }]);
  });

  it('reads off as int16 and imm as int32 in the object byte order', () => {
    expect(decodeInsns(hex('b7 01 00 80 ff ff ff 7f'), true)).toEqual([{ opcode: 0xb7, dst: 1, src: 0, off: -0x8000, imm: 0x7fff_ffff }]);
    expect(decodeInsns(hex('b7 10 80 00 80 00 00 00'), false)).toEqual([{ opcode: 0xb7, dst: 1, src: 0, off: -0x8000, imm: -0x8000_0000 }]);
  });

  it('decodes a ld_imm64 as one two-slot entry with the full immediate', () => {
    const le = decodeInsns(hex('18 21 00 00 f0 de bc 9a 00 00 00 00 78 56 34 12  95 00 00 00 00 00 00 00'), true);
    expect(le).toEqual([
      { opcode: 0x18, dst: 1, src: 2, off: 0, imm: 0x9abcdef0 | 0, imm64: 0x123456789abcdef0n },
      { opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ]);
    expect(isLdImm64(le[0]!)).toBe(true);
    expect(insnSlots(le[0]!)).toBe(2);
    expect(slotOffsets(le)).toEqual(Uint32Array.of(0, 2));
    expect(totalSlots(le)).toBe(3);
    const be = decodeInsns(hex('18 12 00 00 9a bc de f0 00 00 00 00 12 34 56 78'), false);
    expect(be).toEqual([le[0]]);
    expect(decodeInsns(hex('18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff'), true)[0]!.imm64).toBe(0xffff_ffff_ffff_ffffn);
  });

  it('keeps non-zero reserved bytes of a ld_imm64 second slot so encoding is byte-exact', () => {
    const bytes = hex('18 01 00 00 05 00 00 00 aa bb cc dd 07 00 00 00');
    const [insn] = decodeInsns(bytes, true);
    expect(insn).toEqual({ opcode: 0x18, dst: 1, src: 0, off: 0, imm: 5, imm64: 0x7_0000_0005n, imm64Reserved: 0xaabbccdd });
    expect(encodeInsns([insn!], true)).toEqual(bytes);
    expect(encodeInsns(decodeInsns(bytes, false), false)).toEqual(bytes);
  });

  it('countInsns counts the entries decodeInsns makes, truncated ones included', () => {
    for (const bytes of [
      '', '95 00 00 00 00 00 00 00', '95 00 00 00 00 00 00 00 b7 01 00', '18 01 00 00 2a 00 00 00',
      '18 01 00 00 2a 00 00 00 00 00 00 00', '18 01 00 00 2a 00 00 00 00 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00',
      'b7 01 00 00 00 00 00 00 18 01 00 00 2a 00 00 00 00 00 00 00 00 00 00 00 18',
    ]) {
      expect(countInsns(hex(bytes)), bytes).toBe(decodeInsns(hex(bytes), true).length);
      expect(countInsns(hex(bytes)), bytes).toBe(decodeInsns(hex(bytes), false).length);
    }
  });

  it('turns a trailing partial slot into a truncated entry', () => {
    const insns = decodeInsns(hex('95 00 00 00 00 00 00 00 b7 01 00'), true);
    expect(insns).toHaveLength(2);
    expect(insns[1]).toEqual({ opcode: 0, dst: 0, src: 0, off: 0, imm: 0, truncated: hex('b7 01 00') });
    expect(insnSlots(insns[1]!)).toBe(1);
  });

  it('turns a ld_imm64 without its second slot into a truncated entry holding the first slot\'s fields', () => {
    for (const tail of ['', '00 00 00 00']) {
      const bytes = hex(`18 01 00 00 2a 00 00 00 ${tail}`);
      const [insn, ...rest] = decodeInsns(bytes, true);
      expect(rest).toEqual([]);
      expect(insn).toEqual({ opcode: 0x18, dst: 1, src: 0, off: 0, imm: 42, truncated: bytes });
      expect(isLdImm64(insn!)).toBe(false);
      expect(insnSlots(insn!)).toBe(Math.ceil(bytes.length / 8));
    }
  });

  it('returns views into the input, not copies', () => {
    const bytes = hex('95 00 00 00 00 00 00 00 01 02 03');
    const truncated = decodeInsns(bytes, true)[1]!.truncated!;
    expect(truncated.buffer).toBe(bytes.buffer);
    expect(truncated.byteOffset).toBe(8);
  });

  it('decodes a subarray of a larger buffer from its own start', () => {
    const whole = hex('ff ff ff 95 00 00 00 00 00 00 00 ff');
    expect(decodeInsns(whole.subarray(3, 11), true)).toEqual([{ opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 }]);
  });

  it('never throws on garbage and always re-encodes it byte for byte', () => {
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    for (let round = 0; round < 2000; round++) {
      const bytes = new Uint8Array(next() % 70);
      // Bias towards 0x18 so partial and complete ld_imm64s at every position are common.
      for (let i = 0; i < bytes.length; i++) bytes[i] = next() % 4 === 0 ? 0x18 : next() & 0xff;
      for (const littleEndian of [true, false]) {
        const insns = decodeInsns(bytes, littleEndian);
        // Compared as hex text: deep equality of thousands of typed arrays is slow and diffs no better.
        expect(formatRawHex(encodeInsns(insns, littleEndian))).toBe(formatRawHex(bytes));
        expect(totalSlots(insns)).toBe(Math.ceil(bytes.length / 8));
      }
    }
    expect(decodeInsns(new Uint8Array(0), true)).toEqual([]);
  });
});

describe('encodeInsns', () => {
  it('writes both byte orders', () => {
    const insns: Insn[] = [
      { opcode: 0x79, dst: 1, src: 10, off: -8, imm: 0 },
      { opcode: 0x18, dst: 1, src: 1, off: 0, imm: 3, imm64: 3n },
      { opcode: 0xb7, dst: 0, src: 0, off: 0, imm: -1 },
    ];
    expect(encodeInsns(insns, true)).toEqual(hex('79 a1 f8 ff 00 00 00 00 18 11 00 00 03 00 00 00 00 00 00 00 00 00 00 00 b7 00 00 00 ff ff ff ff'));
    expect(encodeInsns(insns, false)).toEqual(hex('79 1a ff f8 00 00 00 00 18 11 00 00 00 00 00 03 00 00 00 00 00 00 00 00 b7 00 00 00 ff ff ff ff'));
  });

  it('accepts the unsigned spelling of imm and off', () => {
    expect(encodeInsns([{ opcode: 0xb7, dst: 0, src: 0, off: 0xfff8, imm: 0xffff_ffff }], true)).toEqual(hex('b7 00 f8 ff ff ff ff ff'));
  });

  it('encodes a ld_imm64 without imm64 from imm, zero-extended', () => {
    expect(encodeInsns([{ opcode: 0x18, dst: 2, src: 0, off: 0, imm: -1 }], true)).toEqual(hex('18 02 00 00 ff ff ff ff 00 00 00 00 00 00 00 00'));
  });

  it('rejects fields that do not fit, naming the entry', () => {
    const ok: Insn = { opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
    const cases: Array<[Insn, string]> = [
      [{ ...ok, dst: 16 }, 'insn 1: dst 16 is outside 0..15'],
      [{ ...ok, src: -1 }, 'insn 1: src -1 is outside 0..15'],
      [{ ...ok, off: 0x10000 }, 'insn 1: off 65536 is outside -32768..65535'],
      [{ ...ok, imm: 2 ** 32 }, 'insn 1: imm 4294967296 is outside -2147483648..4294967295'],
      [{ ...ok, imm: 1.5 }, 'insn 1: imm 1.5 is outside -2147483648..4294967295'],
      [{ ...ok, opcode: 256 }, 'insn 1: opcode 256 is outside 0..255'],
      [{ opcode: 0x18, dst: 1, src: 0, off: 0, imm: 0, imm64: 1n << 64n }, 'insn 1: imm64 18446744073709551616 does not fit in 64 bits'],
    ];
    for (const [bad, message] of cases) {
      let error: unknown;
      try {
        encodeInsns([ok, bad], true);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InsnError);
      expect(error).toBeInstanceOf(BpfLoadError);
      expect((error as InsnError).message).toBe(message);
      expect((error as InsnError).index).toBe(1);
    }
  });

  it('refuses a ld_imm64 whose imm and imm64 disagree instead of guessing', () => {
    const [insn] = decodeInsns(hex('18 01 00 00 05 00 00 00 00 00 00 00 00 00 00 00'), true);
    expect(() => encodeInsns([{ ...insn!, imm: 7 }], true)).toThrow(/insn 0: ld_imm64 imm 7 disagrees with the low half of imm64 0x5/);
  });

  it('round-trips every executable section of the samples and the corpus', () => {
    const files = [
      ...readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).map((f) => join(SAMPLES_DIR, f)),
      ...(corpusFiles('cilium', (n) => n.endsWith('.o') || n.endsWith('.elf')) ?? []),
    ];
    let sections = 0;
    for (const path of files) {
      const elf = readElf(new Uint8Array(readFileSync(path)), { file: path });
      for (const section of elf.sections) {
        if ((section.flags & SectionFlags.EXECINSTR) === 0 || section.data.byteLength === 0) continue;
        const insns = decodeInsns(section.data, elf.littleEndian);
        expect(insns.every((i) => i.truncated === undefined), `${path} ${section.name}`).toBe(true);
        expect(countInsns(section.data), `${path} ${section.name}`).toBe(insns.length);
        expect(formatRawHex(encodeInsns(insns, elf.littleEndian)), `${path} ${section.name}`).toBe(formatRawHex(section.data));
        sections++;
      }
    }
    expect(sections).toBeGreaterThan(0);
  });
});

describe('instruction helpers', () => {
  it('withImm64 rewrites the immediate of a copy and keeps imm consistent', () => {
    const [original] = decodeInsns(hex('18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), true);
    const rewritten = withImm64(original!, 7n, 1);
    expect(rewritten).toEqual({ opcode: 0x18, dst: 1, src: 1, off: 0, imm: 7, imm64: 7n });
    expect(original!.imm64).toBe(0n);
    expect(encodeInsns([rewritten], true)).toEqual(hex('18 11 00 00 07 00 00 00 00 00 00 00 00 00 00 00'));
    const negative = withImm64(original!, -2n);
    expect(negative).toMatchObject({ src: 0, imm: -2, imm64: 0xffff_ffff_ffff_fffen });
    expect(ldImm64Value(negative)).toBe(0xffff_ffff_ffff_fffen);
    expect(ldImm64Value({ opcode: 0x18, dst: 0, src: 0, off: 0, imm: -1 })).toBe(0xffff_ffffn);
    expect(encodeInsns([negative], false)).toEqual(hex('18 10 00 00 ff ff ff fe 00 00 00 00 ff ff ff ff'));
  });

  it('classifies calls by src', () => {
    const call = (src: number): Insn => ({ opcode: 0x85, dst: 0, src, off: 0, imm: -1 });
    expect([isCall(call(0)), isPseudoCall(call(0)), isKfuncCall(call(0))]).toEqual([true, false, false]);
    expect([isCall(call(1)), isPseudoCall(call(1)), isKfuncCall(call(1))]).toEqual([true, true, false]);
    expect([isCall(call(2)), isPseudoCall(call(2)), isKfuncCall(call(2))]).toEqual([true, false, true]);
    expect(isCall({ opcode: 0x8d, dst: 1, src: 0, off: 0, imm: 0 })).toBe(false);
    expect(isCall({ ...call(1), truncated: Uint8Array.of(0x85) })).toBe(false);
  });

  it('splits opcodes into their fields', () => {
    expect(insnClass(0xdb)).toBe(InsnClass.STX);
    expect(insnSize(0xdb)).toBe(InsnSize.DW);
    expect(insnMode(0xdb)).toBe(InsnMode.ATOMIC);
    expect(insnClass(0xcd)).toBe(InsnClass.JMP);
    expect(insnSource(0xcd)).toBe(InsnSource.X);
    expect(insnOp(0xcd)).toBe(JmpOp.JSLT);
    expect(insnOp(0xbc)).toBe(AluOp.MOV);
    expect(insnClass(0xbc)).toBe(InsnClass.ALU);
    expect([InsnSize.B, InsnSize.H, InsnSize.W, InsnSize.DW].map(sizeBytes)).toEqual([1, 2, 4, 8]);
  });

  it('names the kernel opcodes by their uapi values', () => {
    expect(Opcode).toEqual({
      LD_IMM64: 0x18, CALL: 0x85, CALLX: 0x8d, EXIT: 0x95, JA: 0x05, GOTOL: 0x06, MAY_GOTO: 0xe5, MOV64_IMM: 0xb7,
      MOV64_REG: 0xbf,
    });
    expect(AtomicOp).toEqual({ ADD: 0x00, OR: 0x40, AND: 0x50, XOR: 0xa0, FETCH: 0x01, XCHG: 0xe1, CMPXCHG: 0xf1 });
  });
});
