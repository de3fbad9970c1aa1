import { describe, expect, it } from 'vitest';
import { BtfError, BtfKind, parseBtf, parseBtfExt, type Btf } from '../../src/btf/index.js';
import { BtfBuilder, buildBtfExt } from './btf-builder.js';
import { catchError } from './support.js';

/** A small BTF touching most kinds, so truncations and bit flips land in every kind of record. */
function sample(): BtfBuilder {
  const b = new BtfBuilder();
  const int = b.int('int', 4, { signed: true });
  const chr = b.int('char', 1, { signed: true });
  const arr = b.array(chr, int, 8);
  const ptr = b.ptr(int);
  const st = b.struct('s', 16, [
    { name: 'a', type: int, bitOffset: 0 }, { name: 'bits', type: int, bitOffset: 32, bitfieldSize: 3 },
    { name: 'name', type: arr, bitOffset: 64 },
  ], true);
  const en = b.enum('e', 4, [['A', 1], ['B', 2]]);
  b.enum64('e64', 8, [['BIG', 1n << 40n]]);
  const td = b.typedef('s_t', st);
  b.const(td);
  const proto = b.funcProto(int, [['p', ptr], ['e', en]]);
  b.func('f', proto);
  const v = b.var('g', int);
  b.datasec('.data', 4, [[v, 0, 4]]);
  b.declTag('t', st, 0);
  b.typeTag('tt', ptr);
  b.fwd('fw');
  b.float('float', 4);
  return b;
}

const both = [true, false] as const;

/** Header field offsets. */
const H = { magic: 0, version: 2, flags: 3, hdrLen: 4, typeOff: 8, typeLen: 12, strOff: 16, strLen: 20 } as const;

function patch32(bytes: Uint8Array, offset: number, value: number, le: boolean): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(offset, value >>> 0, le);
  return copy;
}

function expectBtfError(fn: () => unknown, pattern?: RegExp): BtfError {
  const err = catchError(fn);
  if (!(err instanceof BtfError)) throw new Error(`expected a BtfError, got ${err.name}: ${err.message}`, { cause: err });
  if (pattern !== undefined) expect(err.message).toMatch(pattern);
  return err;
}

/** Every helper on every type either answers or throws BtfError: the contract for any BTF that parsed. */
function exerciseHelpers(btf: Btf): void {
  for (let id = 0; id < btf.types.length; id++) {
    for (const op of [
      () => btf.resolve(id),
      () => btf.typeName(id),
      () => btf.formatValue(id, new Uint8Array(Math.min(btf.sizeof(id), 1 << 16))),
      () => btf.formatValue(id, new Uint8Array(Math.min(btf.sizeof(id), 1 << 16)).fill(0xa5)),
    ]) {
      try {
        op();
      } catch (e) {
        if (!(e instanceof BtfError)) throw new Error(`type [${id}]: ${String(e)}`, { cause: e });
      }
    }
  }
}

describe('malformed .BTF', () => {
  for (const le of both) {
    const good = sample().build(le);

    it(`rejects every truncation with BtfError (${le ? 'LE' : 'BE'})`, () => {
      expect(parseBtf(good, le).types.length).toBe(sample().count + 1);
      for (let n = 0; n < good.byteLength; n++) expectBtfError(() => parseBtf(good.subarray(0, n), le, { file: 't.o' }));
    });

    it(`handles a type section cut at every 4-byte boundary (${le ? 'LE' : 'BE'})`, () => {
      const typeLen = new DataView(good.buffer).getUint32(H.typeLen, le);
      let parsedSome = 0;
      for (let n = 0; n < typeLen; n += 4) {
        const cut = patch32(good, H.typeLen, n, le);
        try {
          const btf = parseBtf(cut, le);
          parsedSome++;
          expect(btf.types.length).toBeLessThan(sample().count + 1);
        } catch (e) {
          if (!(e instanceof BtfError)) throw e;
        }
      }
      // Cuts at record boundaries before any forward reference still parse: the loop really exercised both outcomes.
      expect(parsedSome).toBeGreaterThan(0);
    });

    it(`handles a string table cut at every length (${le ? 'LE' : 'BE'})`, () => {
      const strLen = new DataView(good.buffer).getUint32(H.strLen, le);
      for (let n = 0; n < strLen; n++) {
        expectBtfError(() => parseBtf(patch32(good, H.strLen, n, le), le), /string table|outside the string table/);
      }
    });

    it(`rejects bad header fields (${le ? 'LE' : 'BE'})`, () => {
      const bad = good.slice();
      bad[0] = 0x12;
      expectBtfError(() => parseBtf(bad, le, { file: 'm.o' }), /^m\.o: \.BTF: offset 0x0: bad magic/);
      const v2 = good.slice();
      v2[H.version] = 2;
      expectBtfError(() => parseBtf(v2, le), /unsupported version 2/);
      const fl = good.slice();
      fl[H.flags] = 1;
      expectBtfError(() => parseBtf(fl, le), /header flags/);
      expectBtfError(() => parseBtf(patch32(good, H.hdrLen, 16, le), le), /hdr_len 16 is shorter/);
      expectBtfError(() => parseBtf(patch32(good, H.hdrLen, 1 << 30, le), le), /extends past the end/);
      expectBtfError(() => parseBtf(patch32(good, H.typeOff, 2, le), le), /not 4-byte aligned/);
      expectBtfError(() => parseBtf(patch32(good, H.typeLen, 0xfffffffc, le), le), /type section .* extends past/);
      expectBtfError(() => parseBtf(patch32(good, H.strOff, 0xffffff00, le), le), /string section .* extends past/);
      expectBtfError(() => parseBtf(patch32(good, H.strOff, 4, le), le), /overlaps the string section/);
    });
  }

  it('accepts a longer header only when the extra bytes are zero', () => {
    const b = sample().build(true);
    const longer = new Uint8Array(b.byteLength + 8);
    longer.set(b.subarray(0, 24));
    longer.set(b.subarray(24), 32);
    new DataView(longer.buffer).setUint32(H.hdrLen, 32, true);
    expect(parseBtf(longer, true).types).toEqual(parseBtf(b, true).types);
    longer[28] = 1;
    expectBtfError(() => parseBtf(longer, true), /offset 0x1c: unknown non-zero header field/);
  });

  it('rejects type references out of range, naming the type and offset', () => {
    const cases: Array<[string, (b: BtfBuilder) => void, RegExp]> = [
      ['ptr', (b) => b.ptr(99), /type \[2\]: type refers to type \[99\]/],
      ['array element', (b) => b.array(99, 1, 2), /element type refers to type \[99\]/],
      ['array index', (b) => b.array(1, 99, 2), /index type refers to type \[99\]/],
      ['member', (b) => b.struct('s', 4, [{ name: 'm', type: 42, bitOffset: 0 }]), /member 0 \(m\) type refers to type \[42\]/],
      ['typedef', (b) => b.typedef('t', 3), /type refers to type \[3\]/],
      ['param', (b) => b.funcProto(1, [['x', 77]]), /param 0 type refers to type \[77\]/],
      ['return', (b) => b.funcProto(55, []), /return type refers to type \[55\]/],
      ['datasec', (b) => b.datasec('.data', 4, [[9, 0, 4]]), /entry 0 type refers to type \[9\]/],
      ['var', (b) => b.var('v', 0x7fffffff), /refers to type \[2147483647\]/],
    ];
    for (const [what, add, pattern] of cases) {
      const b = new BtfBuilder();
      b.int('int', 4, { signed: true });
      add(b);
      const err = expectBtfError(() => parseBtf(b.build(), true, { file: `${what}.o` }), pattern);
      expect(err.typeId).toBe(2);
      expect(err.offset).toBe(24 + 16);
      expect(err.file).toBe(`${what}.o`);
    }
  });

  it('rejects structural impossibilities', () => {
    const cases: Array<[(b: BtfBuilder) => void, RegExp]> = [
      [(b) => b.raw(BtfKind.UNKN, 0, 0, false, 0), /unknown kind 0/],
      [(b) => b.raw(20, 0, 0, false, 0), /unknown kind 20/],
      [(b) => b.raw(BtfKind.PTR, 0, 3, false, 1), /ptr with vlen 3/],
      [(b) => b.raw(BtfKind.INT, 0, 0, false, 3, [24]), /int size 3/],
      [(b) => b.raw(BtfKind.INT, 0, 0, false, 4, [(8 << 24) | 32]), /int encoding 8/],
      [(b) => b.raw(BtfKind.INT, 0, 0, false, 4, [33]), /int bits 33/],
      [(b) => b.raw(BtfKind.INT, 0, 0, false, 4, [(1 << 16) | 32]), /int bits 32 at offset 1/],
      [(b) => b.raw(BtfKind.FUNC, b.str('f'), 3, false, 1), /func linkage 3/],
      [(b) => b.func('f', 1), /func refers to \[1\] \(int\), not a func_proto/],
      [(b) => b.raw(BtfKind.VAR, b.str('v'), 0, false, 1, [7]), /var linkage 7/],
      [(b) => b.raw(BtfKind.VAR, 0, 0, false, 1, [0]), /var without a name/],
      [(b) => b.raw(BtfKind.TYPEDEF, 0, 0, false, 1), /typedef without a name/],
      [(b) => b.raw(BtfKind.ENUM, 0, 0, false, 3), /enum size 3/],
      [(b) => b.raw(BtfKind.FLOAT, b.str('f'), 0, false, 5), /float size 5/],
      [(b) => b.declTag('t', 1, 0), /component_idx 0 on \[1\] \(int\)/],
      [(b) => b.declTag('t', 1, -2), /component_idx -2/],
      [(b) => b.funcProto(1, [['', 0], ['x', 1]]), /param 0 has type void/],
      [(b) => b.datasec('.data', 4, [[1, 0, 4]]), /entry 0 refers to \[1\] \(int\), not a var or func/],
      [(b) => b.array(0, 1, 4), /array of void/],
      [(b) => b.struct('s', 4, [{ name: 'm', type: 0, bitOffset: 0 }]), /member 0 \(m\) has type void/],
    ];
    for (const [add, pattern] of cases) {
      const b = new BtfBuilder();
      b.int('int', 4, { signed: true });
      add(b);
      expectBtfError(() => parseBtf(b.build(), true), pattern);
    }
  });

  it('rejects reserved info bits', () => {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true });
    const bytes = b.build();
    const info = new DataView(bytes.buffer).getUint32(24 + 4, true);
    for (const bit of [16, 23, 29, 30]) {
      expectBtfError(() => parseBtf(patch32(bytes, 24 + 4, info | (1 << bit), true), true), /reserved bits/);
    }
  });

  it('rejects string offsets outside the string table', () => {
    const name = new BtfBuilder();
    name.raw(BtfKind.INT, 5000, 0, false, 4, [32]);
    expectBtfError(() => parseBtf(name.build(), true), /type \[1\]: name offset 5000 is outside the string table/);
    const member = new BtfBuilder();
    member.int('int', 4);
    member.raw(BtfKind.STRUCT, 0, 1, false, 4, [0xffffffff, 1, 0]);
    expectBtfError(() => parseBtf(member.build(), true), /type \[2\]: member 0 name offset 4294967295/);
    const value = new BtfBuilder();
    value.raw(BtfKind.ENUM, 0, 1, false, 4, [999, 1]);
    expectBtfError(() => parseBtf(value.build(), true), /enum value 0 name offset 999/);
    const table = sample().build(true);
    const btf = parseBtf(table, true);
    expect(() => btf.string(btf.header.strLen)).toThrow(BtfError);
    expect(btf.string(0)).toBe('');
  });

  it('rejects a huge vlen that runs past the type section', () => {
    for (const kind of [BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FUNC_PROTO, BtfKind.DATASEC]) {
      const b = new BtfBuilder();
      b.raw(kind, b.str('x'), 0xffff, false, 4, [0, 0, 0]);
      expectBtfError(() => parseBtf(b.build(), true), /extends past the end of the type section/);
    }
  });
});

describe('reference loops', () => {
  function loops(): Btf {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true }); // 1
    b.typedef('a', 3); // 2
    b.typedef('b', 2); // 3: a -> b -> a
    b.ptr(5); // 4
    b.typedef('p', 4); // 5: ptr -> typedef -> ptr
    b.const(6); // 6: const of itself
    b.array(8, 1, 2); // 7
    b.typedef('arr', 7); // 8: array -> typedef -> array
    b.struct('self', 4, [{ name: 'me', type: 9, bitOffset: 0 }]); // 9: contains itself by value
    b.funcProto(1, [['x', 11]]); // 10
    b.ptr(10); // 11: int (*)(int (*)(...)) forever
    b.ptr(12); // 12: points at itself
    return parseBtf(b.build(), true, { file: 'loop.o' });
  }

  it('parses, and every helper throws BtfError instead of hanging', () => {
    const btf = loops();
    for (const id of [2, 3, 6]) {
      expectBtfError(() => btf.resolve(id), /reference loop/);
      expectBtfError(() => btf.sizeof(id), /loop/);
    }
    // A typedef renders as its own name, so only the qualifier loop is a loop for typeName.
    expect(btf.typeName(2)).toBe('a');
    expectBtfError(() => btf.typeName(6), /reference loop/);
    expect(btf.sizeof(4)).toBe(8);
    expect(btf.resolve(4)).toBe(4);
    // Through a typedef the name stops at the typedef's name; a pointer to itself has no name at all.
    expect(btf.typeName(4)).toBe('p *');
    expect(btf.sizeof(12)).toBe(8);
    expect(btf.resolve(12)).toBe(12);
    expectBtfError(() => btf.typeName(12), /reference loop/);
    for (const id of [7, 8]) expectBtfError(() => btf.sizeof(id), /loop/);
    expectBtfError(() => btf.formatValue(9, new Uint8Array(4)), /type contains itself/);
    expectBtfError(() => btf.typeName(11), /reference loop/);
    expect(btf.typeName(9)).toBe('struct self');
    exerciseHelpers(btf);
  });
});

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('random corruption', () => {
  for (const le of both) {
    it(`never throws anything but BtfError, and helpers on what parses do the same (${le ? 'LE' : 'BE'})`, () => {
      const good = sample().build(le);
      const rand = prng(le ? 1 : 2);
      let parsed = 0;
      for (let round = 0; round < 1500; round++) {
        const bytes = good.slice();
        const flips = 1 + Math.floor(rand() * 3);
        for (let f = 0; f < flips; f++) {
          // Past the header, where flips reach type records and strings rather than just failing the header checks.
          const at = 24 + Math.floor(rand() * (bytes.byteLength - 24));
          bytes[at] = Math.floor(rand() * 256);
        }
        let btf: Btf;
        try {
          btf = parseBtf(bytes, le);
        } catch (e) {
          if (!(e instanceof BtfError)) throw new Error(`round ${round}: ${String(e)}`, { cause: e });
          continue;
        }
        parsed++;
        exerciseHelpers(btf);
      }
      expect(parsed).toBeGreaterThan(100);
    });
  }
});

describe('malformed .BTF.ext', () => {
  function base(le: boolean): { btf: Btf; sec: number; file: number } {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true }); // 1
    b.funcProto(1, []); // 2
    b.func('f', 2); // 3
    const sec = b.str('xdp');
    const file = b.str('f.c');
    return { btf: parseBtf(b.build(le), le, { file: 'e.o' }), sec, file };
  }
  function ext(le: boolean, over: { func?: number[][]; line?: number[][]; core?: number[][]; secName?: number } = {}): { btf: Btf; bytes: Uint8Array } {
    const { btf, sec, file } = base(le);
    const name = over.secName ?? sec;
    const bytes = buildBtfExt({
      funcInfo: { recSize: 8, sections: [{ nameOff: name, records: over.func ?? [[0, 3]] }] },
      lineInfo: { recSize: 16, sections: [{ nameOff: name, records: over.line ?? [[0, file, 0, 1 << 10]] }] },
      coreRelo: { recSize: 16, sections: [{ nameOff: name, records: over.core ?? [[0, 1, 0, 9]] }] },
    }, le);
    return { btf, bytes };
  }

  for (const le of both) {
    it(`rejects every truncation (${le ? 'LE' : 'BE'})`, () => {
      const { btf, bytes } = ext(le);
      expect(parseBtfExt(bytes, le, btf).coreRelos.get('xdp')?.[0]?.kind).toBe('type_size');
      for (let n = 0; n < bytes.byteLength; n++) expectBtfError(() => parseBtfExt(bytes.subarray(0, n), le, btf));
    });

    it(`survives random corruption (${le ? 'LE' : 'BE'})`, () => {
      const { btf, bytes: good } = ext(le);
      const rand = prng(le ? 3 : 4);
      for (let round = 0; round < 1500; round++) {
        const bytes = good.slice();
        bytes[Math.floor(rand() * bytes.byteLength)] = Math.floor(rand() * 256);
        try {
          parseBtfExt(bytes, le, btf);
        } catch (e) {
          if (!(e instanceof BtfError)) throw new Error(`round ${round}: ${String(e)}`, { cause: e });
        }
      }
    });
  }

  it('rejects bad records and references, naming .BTF.ext and the offset', () => {
    const le = true;
    const cases: Array<[Parameters<typeof ext>[1], RegExp]> = [
      [{ func: [[0, 99]] }, /e\.o: \.BTF\.ext: offset 0x[0-9a-f]+: type \[99\]: func_info refers to type \[99\]/],
      [{ func: [[0, 1]] }, /type \[1\]: func_info refers to a int, not a func/],
      [{ func: [[4, 3]] }, /insn_off 4 is not a multiple of 8/],
      [{ line: [[0, 4000, 0, 0]] }, /line_info file name offset 4000 is outside the BTF string table/],
      [{ line: [[0, 0, 4001, 0]] }, /line_info line offset 4001/],
      [{ core: [[0, 1, 0, 13]] }, /unknown CO-RE relocation kind 13/],
      [{ core: [[0, 50, 0, 0]] }, /CO-RE relocation refers to type \[50\]/],
      [{ core: [[0, 1, 7777, 0]] }, /CO-RE access string offset 7777/],
      [{ secName: 12345 }, /func_info section name offset 12345/],
      [{ func: [] }, /func_info for section xdp: zero records/],
    ];
    for (const [over, pattern] of cases) {
      const { btf, bytes } = ext(le, over);
      expectBtfError(() => parseBtfExt(bytes, le, btf), pattern);
    }
  });

  it('rejects bad headers, misaligned tables, duplicate sections and records past the table', () => {
    const { btf, bytes } = ext(true);
    const magic = bytes.slice();
    magic[0] = 0;
    expectBtfError(() => parseBtfExt(magic, true, btf), /offset 0x0: bad magic/);
    expectBtfError(() => parseBtfExt(patch32(bytes, 4, 8, true), true, btf), /hdr_len 8 is shorter/);
    expectBtfError(() => parseBtfExt(patch32(bytes, 8, 2, true), true, btf), /func_info offset 2 is not 4-byte aligned/);
    expectBtfError(() => parseBtfExt(patch32(bytes, 12, 0x10000, true), true, btf), /func_info .* extends past the end/);
    // func_info's one section claims 1000 records.
    expectBtfError(() => parseBtfExt(patch32(bytes, 32 + 8, 1000, true), true, btf), /1000 records of 8 bytes extend past/);
    const { sec, file } = base(true);
    const dup = buildBtfExt({
      lineInfo: { recSize: 16, sections: [{ nameOff: sec, records: [[0, file, 0, 0]] }, { nameOff: sec, records: [[8, file, 0, 0]] }] },
    });
    expectBtfError(() => parseBtfExt(dup, true, btf), /line_info for section xdp appears twice/);
  });

  it('reads the oldest header, which has no CO-RE fields', () => {
    const { btf, bytes } = ext(true);
    const old = patch32(bytes, 4, 24, true);
    // The data now starts 8 bytes earlier: shift every table offset to match.
    const shifted = new Uint8Array(bytes.byteLength - 8);
    shifted.set(old.subarray(0, 24));
    shifted.set(old.subarray(32), 24);
    const view = new DataView(shifted.buffer);
    const parsed = parseBtfExt(shifted, true, btf);
    expect(parsed.header.coreReloLen).toBe(0);
    expect(parsed.coreRelos.size).toBe(0);
    expect(parsed.funcInfo.get('xdp')).toEqual([{ insnOff: 0, typeId: 3 }]);
    expect(view.getUint32(12, true)).toBe(parsed.header.funcInfoLen);
  });
});
