import { describe, expect, it } from 'vitest';
import { BtfError, parseBtf, parseBtfExt, withDatasecFixups, type Btf } from '../../src/btf/index.js';
import { BpfLoadError } from '../../src/base/errors.js';
import { BtfBuilder, buildBtfExt } from './btf-builder.js';
import { catchError } from './support.js';

/** One of every kind, with ids fixed by construction order (asserted below). */
function kitchenSink(): BtfBuilder {
  const b = new BtfBuilder();
  b.int('int', 4, { signed: true }); // 1
  b.int('unsigned int', 4); // 2
  b.int('char', 1, { signed: true }); // 3
  b.int('_Bool', 1, { bool: true }); // 4
  b.ptr(1); // 5
  b.array(3, 2, 16); // 6
  b.struct('foo', 32, [
    { name: 'a', type: 1, bitOffset: 0 },
    { name: 'b', type: 2, bitOffset: 32, bitfieldSize: 3 },
    { name: 'c', type: 1, bitOffset: 35, bitfieldSize: 5 },
    { name: 'col', type: 9, bitOffset: 64 },
    { name: 'name', type: 6, bitOffset: 96 },
    { name: 'flag', type: 4, bitOffset: 224 },
    { name: 'mode', type: 9, bitOffset: 232, bitfieldSize: 2 },
  ], true); // 7
  b.union('u', 4, [{ name: 'x', type: 1, bitOffset: 0 }, { name: 'y', type: 2, bitOffset: 0 }]); // 8
  b.enum('color', 4, [['RED', 0], ['GREEN', 1], ['BLUE', -1]], true); // 9
  b.enum64('big', 8, [['HUGE', 1n << 63n], ['SMALL', 7n]]); // 10
  b.fwd('later', true); // 11
  b.typedef('u32', 2); // 12
  b.volatile(12); // 13
  b.const(13); // 14
  b.restrict(5); // 15
  b.funcProto(1, [['ctx', 5], ['n', 12]]); // 16
  b.func('prog', 16, 1); // 17
  b.var('counter', 12, 1); // 18
  b.datasec('.data', 8, [[18, 4, 4]]); // 19
  b.float('double', 8); // 20
  b.declTag('tag', 7, 1); // 21
  b.typeTag('user', 1); // 22
  b.funcProto(0, [['fmt', 5], ['', 0]]); // 23
  b.ptr(6); // 24: char (*)[16]
  b.array(5, 2, 4); // 25: int *[4]
  b.ptr(16); // 26: int (*)(int *, u32)
  b.const(5); // 27: int *const
  b.ptr(14); // 28: const volatile u32 *
  b.int('unsigned long', 8); // 29
  b.array(1, 2, 3); // 30: int[3]
  b.int('__int128', 16, { signed: true }); // 31
  b.struct('outer', 8, [
    { name: '', type: 33, bitOffset: 0 },
    { name: 'tail', type: 1, bitOffset: 32 },
  ]); // 32
  b.union('', 4, [{ name: 'inner_i', type: 1, bitOffset: 0 }, { name: 'inner_u', type: 2, bitOffset: 0 }]); // 33
  return b;
}

const EXPECTED_TYPES = [
  { kind: 'void', id: 0, name: '' },
  { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
  { kind: 'int', id: 2, name: 'unsigned int', size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 },
  { kind: 'int', id: 3, name: 'char', size: 1, signed: true, char: false, bool: false, bitOffset: 0, bits: 8 },
  { kind: 'int', id: 4, name: '_Bool', size: 1, signed: false, char: false, bool: true, bitOffset: 0, bits: 8 },
  { kind: 'ptr', id: 5, name: '', type: 1 },
  { kind: 'array', id: 6, name: '', type: 3, indexType: 2, nelems: 16 },
  {
    kind: 'struct', id: 7, name: 'foo', size: 32, members: [
      { name: 'a', type: 1, bitOffset: 0, bitfieldSize: 0 },
      { name: 'b', type: 2, bitOffset: 32, bitfieldSize: 3 },
      { name: 'c', type: 1, bitOffset: 35, bitfieldSize: 5 },
      { name: 'col', type: 9, bitOffset: 64, bitfieldSize: 0 },
      { name: 'name', type: 6, bitOffset: 96, bitfieldSize: 0 },
      { name: 'flag', type: 4, bitOffset: 224, bitfieldSize: 0 },
      { name: 'mode', type: 9, bitOffset: 232, bitfieldSize: 2 },
    ],
  },
  {
    kind: 'union', id: 8, name: 'u', size: 4, members: [
      { name: 'x', type: 1, bitOffset: 0, bitfieldSize: 0 }, { name: 'y', type: 2, bitOffset: 0, bitfieldSize: 0 },
    ],
  },
  { kind: 'enum', id: 9, name: 'color', size: 4, signed: true, values: [{ name: 'RED', value: 0 }, { name: 'GREEN', value: 1 }, { name: 'BLUE', value: -1 }] },
  { kind: 'enum64', id: 10, name: 'big', size: 8, signed: false, values: [{ name: 'HUGE', value: 1n << 63n }, { name: 'SMALL', value: 7n }] },
  { kind: 'fwd', id: 11, name: 'later', fwdKind: 'union' },
  { kind: 'typedef', id: 12, name: 'u32', type: 2 },
  { kind: 'volatile', id: 13, name: '', type: 12 },
  { kind: 'const', id: 14, name: '', type: 13 },
  { kind: 'restrict', id: 15, name: '', type: 5 },
  { kind: 'func_proto', id: 16, name: '', returnType: 1, params: [{ name: 'ctx', type: 5 }, { name: 'n', type: 12 }], variadic: false },
  { kind: 'func', id: 17, name: 'prog', type: 16, linkage: 'global' },
  { kind: 'var', id: 18, name: 'counter', type: 12, linkage: 'global' },
  { kind: 'datasec', id: 19, name: '.data', size: 8, vars: [{ type: 18, offset: 4, size: 4 }] },
  { kind: 'float', id: 20, name: 'double', size: 8 },
  { kind: 'decl_tag', id: 21, name: 'tag', type: 7, componentIdx: 1, attribute: false },
  { kind: 'type_tag', id: 22, name: 'user', type: 1, attribute: false },
  { kind: 'func_proto', id: 23, name: '', returnType: 0, params: [{ name: 'fmt', type: 5 }], variadic: true },
];

const both = [true, false] as const;
const order = (le: boolean) => (le ? 'little-endian' : 'big-endian');

describe('parseBtf on a hand-built BTF with every kind', () => {
  for (const le of both) {
    it(`parses every kind (${order(le)})`, () => {
      const bytes = kitchenSink().build(le);
      const btf = parseBtf(bytes, le, { file: 'sink.o' });
      expect(btf.types.slice(0, EXPECTED_TYPES.length)).toEqual(EXPECTED_TYPES);
      expect(btf.types.length).toBe(34);
      expect(btf.raw).toBe(bytes);
      expect(btf.header).toMatchObject({ magic: 0xeb9f, version: 1, hdrLen: 24, typeOff: 0 });
      expect(Object.isFrozen(btf.types)).toBe(true);
      expect(Object.isFrozen(btf.types[7])).toBe(true);
    });
  }

  it('gives identical types for both byte orders', () => {
    const el = parseBtf(kitchenSink().build(true), true);
    const eb = parseBtf(kitchenSink().build(false), false);
    expect(eb.types).toEqual(el.types);
    expect(Buffer.from(eb.raw).equals(Buffer.from(el.raw))).toBe(false);
  });

  it('says when the BTF is in the other byte order', () => {
    const err = catchError(() => parseBtf(kitchenSink().build(false), true, { file: 'x.o' }));
    expect(err).toBeInstanceOf(BtfError);
    expect(err.message).toBe('x.o: .BTF: offset 0x0: magic 0x9feb: BTF is in the other byte order than the object');
  });
});

describe('Btf helpers', () => {
  const btf = parseBtf(kitchenSink().build(true), true, { file: 'sink.o' });

  it('type(id) checks the range', () => {
    expect(btf.type(7).name).toBe('foo');
    for (const bad of [34, -1, 1.5, Number.NaN]) {
      const err = catchError(() => btf.type(bad));
      expect(err).toBeInstanceOf(BtfError);
      expect(err).toBeInstanceOf(BpfLoadError);
      expect((err as BtfError).typeId).toBe(bad);
      expect((err as BtfError).file).toBe('sink.o');
    }
  });

  it('resolve skips typedefs, qualifiers and type tags only', () => {
    expect(btf.resolve(14)).toBe(2);
    expect(btf.resolve(22)).toBe(1);
    expect(btf.resolve(15)).toBe(5);
    expect(btf.resolve(5)).toBe(5);
    expect(btf.resolve(18)).toBe(18);
  });

  it('sizeof follows the kinds', () => {
    const sizes: Array<[number, number]> = [
      [1, 4], [3, 1], [5, 8], [6, 16], [7, 32], [8, 4], [9, 4], [10, 8], [12, 4], [14, 4], [15, 8], [18, 4], [19, 8],
      [20, 8], [22, 4], [25, 32], [30, 12], [31, 16],
    ];
    for (const [id, size] of sizes) expect([id, btf.sizeof(id)]).toEqual([id, size]);
    for (const id of [0, 11, 16, 17, 21]) expect(() => btf.sizeof(id)).toThrow(BtfError);
  });

  it('typeName renders C', () => {
    const names: Array<[number, string]> = [
      [0, 'void'], [1, 'int'], [2, 'unsigned int'], [5, 'int *'], [6, 'char[16]'], [7, 'struct foo'], [8, 'union u'],
      [9, 'enum color'], [10, 'enum big'], [11, 'union later'], [12, 'u32'], [13, 'volatile u32'],
      [14, 'const volatile u32'], [15, 'int *restrict'], [16, 'int (int *, u32)'], [17, 'int prog(int *, u32)'],
      [18, 'u32 counter'], [19, 'SEC(".data")'], [20, 'double'], [22, '__attribute__((btf_type_tag("user"))) int'],
      [23, 'void (int *, ...)'], [24, 'char (*)[16]'], [25, 'int *[4]'], [26, 'int (*)(int *, u32)'],
      [27, 'int *const'], [28, 'const volatile u32 *'], [33, 'union (anon)'],
    ];
    for (const [id, name] of names) expect([id, btf.typeName(id)]).toEqual([id, name]);
  });

  it('findByName finds by kind and name', () => {
    expect(btf.findByName('struct', 'foo')?.id).toBe(7);
    expect(btf.findByName('struct', 'foo')?.members).toHaveLength(7);
    expect(btf.findByName('union', 'foo')).toBeUndefined();
    expect(btf.findByName('typedef', 'u32')?.type).toBe(2);
    expect(btf.findByName('int', 'nope')).toBeUndefined();
  });
});

/** struct foo's bytes in the given order: bitfield b/c share byte 4, mode sits in the low/high bits of byte 29. */
function fooBytes(le: boolean, v: { a: number; b: number; c: number; col: number; name: string; flag: number; mode: number }): Uint8Array {
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  view.setInt32(0, v.a, le);
  const c5 = v.c & 0x1f;
  // b: bits 32..34, c: bits 35..39. Little-endian numbers bits from the LSB of the byte, big-endian from the MSB.
  out[4] = le ? v.b | (c5 << 3) : (v.b << 5) | c5;
  view.setInt32(8, v.col, le);
  out.set(Buffer.from(v.name), 12);
  out[28] = v.flag;
  out[29] = le ? v.mode & 3 : (v.mode & 3) << 6;
  return out;
}

describe('formatValue', () => {
  for (const le of both) {
    const btf = parseBtf(kitchenSink().build(le), le);
    it(`decodes a struct with bitfields, an enum, a char array and a bool (${order(le)})`, () => {
      const bytes = fooBytes(le, { a: -5, b: 5, c: -3, col: 1, name: 'hi', flag: 1, mode: -1 });
      expect(btf.formatValue(7, bytes, le)).toEqual({ a: -5, b: 5, c: -3, col: 'GREEN', name: 'hi', flag: true, mode: 'BLUE' });
      const other = fooBytes(le, { a: 0x7fffffff, b: 7, c: 15, col: 42, name: 'x', flag: 0, mode: 0 });
      expect(btf.formatValue(7, other, le)).toEqual({ a: 0x7fffffff, b: 7, c: 15, col: 42, name: 'x', flag: false, mode: 'RED' });
    });

    it(`decodes scalars, pointers, arrays, unions and sections (${order(le)})`, () => {
      const u64 = (v: bigint) => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, v, le);
        return b;
      };
      expect(btf.formatValue(29, u64(0xffffffffffffffffn), le)).toBe('18446744073709551615');
      expect(btf.formatValue(29, u64(2n ** 53n - 1n), le)).toBe(Number.MAX_SAFE_INTEGER);
      expect(btf.formatValue(5, u64(0xffff8880deadbeefn), le)).toBe('0xffff8880deadbeef');
      expect(btf.formatValue(10, u64(1n << 63n), le)).toBe('HUGE');
      expect(btf.formatValue(10, u64(8n), le)).toBe(8);
      const f = new Uint8Array(8);
      new DataView(f.buffer).setFloat64(0, 1.5, le);
      expect(btf.formatValue(20, f, le)).toBe(1.5);
      const ints = new Uint8Array(12);
      [1, -2, 3].forEach((v, i) => new DataView(ints.buffer).setInt32(i * 4, v, le));
      expect(btf.formatValue(30, ints, le)).toEqual([1, -2, 3]);
      const word = new Uint8Array(4);
      new DataView(word.buffer).setInt32(0, -1, le);
      expect(btf.formatValue(8, word, le)).toEqual({ x: -1, y: 0xffffffff });
      expect(btf.formatValue(14, word, le)).toBe(0xffffffff);
      // Anonymous union members are flattened into the enclosing struct, as C names them.
      const outer = new Uint8Array(8);
      new DataView(outer.buffer).setInt32(0, -2, le);
      new DataView(outer.buffer).setInt32(4, 9, le);
      expect(btf.formatValue(32, outer, le)).toEqual({ inner_i: -2, inner_u: 0xfffffffe, tail: 9 });
      const sec = new Uint8Array(8);
      new DataView(sec.buffer).setUint32(4, 77, le);
      expect(btf.formatValue(19, sec, le)).toEqual({ counter: 77 });
      const i128 = new Uint8Array(16).fill(0xff);
      expect(btf.formatValue(31, i128, le)).toBe(-1);
    });
  }

  const btf = parseBtf(kitchenSink().build(true), true);
  it('shows a non-printable char array as numbers', () => {
    const bytes = new Uint8Array(16);
    bytes.set([0x41, 0x01, 0x42]);
    expect(btf.formatValue(6, bytes)).toEqual([0x41, 1, 0x42, ...new Array<number>(13).fill(0)]);
    const junkAfterNul = new Uint8Array(16);
    junkAfterNul.set([0x41, 0, 0x42]);
    expect(btf.formatValue(6, junkAfterNul)).toEqual([0x41, 0, 0x42, ...new Array<number>(13).fill(0)]);
    expect(btf.formatValue(6, new Uint8Array(16).fill(0x61))).toBe('a'.repeat(16));
  });

  it('rejects a value of the wrong size and types without values', () => {
    expect(() => btf.formatValue(7, new Uint8Array(31))).toThrow(/value is 31 bytes, but struct foo is 32 bytes/);
    expect(() => btf.formatValue(7, new Uint8Array(33))).toThrow(BtfError);
    for (const id of [0, 11, 16, 17]) expect(() => btf.formatValue(id, new Uint8Array(0))).toThrow(BtfError);
  });

  it('keeps a member called __proto__ as a plain key', () => {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true });
    b.struct('evil', 4, [{ name: '__proto__', type: 1, bitOffset: 0 }]);
    const v = parseBtf(b.build(), true).formatValue(2, new Uint8Array([7, 0, 0, 0])) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toBe(7);
  });
});

describe('withDatasecFixups', () => {
  function objectLike(le: boolean): Btf {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true }); // 1
    b.var('first', 1); // 2
    b.var('second', 1); // 3
    b.datasec('.data', 0, [[3, 0, 4], [2, 0, 4]]); // 4: clang's zeros, in declaration order
    b.var('cfg', 1, 2); // 5
    b.datasec('.kconfig', 0, [[5, 0, 4]]); // 6
    b.datasec('.rodata', 12, [[2, 8, 4], [3, 0, 4]]); // 7: already laid out (static linker), but unsorted
    return parseBtf(b.build(le), le, { file: 'obj.o' });
  }
  const symbols: Record<string, number> = { 'first': 4, 'second': 0 };

  for (const le of both) {
    it(`fills zero sizes and offsets, sorts entries and patches the raw bytes (${order(le)})`, () => {
      const btf = objectLike(le);
      const before = Buffer.from(btf.raw);
      const fixed = withDatasecFixups(btf, new Map([['.data', 8], ['.rodata', 12]]), (sec, name) =>
        sec === '.data' ? symbols[name] : undefined);
      expect(fixed.type(4)).toEqual({ kind: 'datasec', id: 4, name: '.data', size: 8, vars: [{ type: 3, offset: 0, size: 4 }, { type: 2, offset: 4, size: 4 }] });
      expect(fixed.type(6)).toEqual(btf.type(6));
      expect(fixed.type(7)).toEqual({ kind: 'datasec', id: 7, name: '.rodata', size: 12, vars: [{ type: 3, offset: 0, size: 4 }, { type: 2, offset: 8, size: 4 }] });
      // The new raw bytes parse to the new types; the input is untouched.
      expect(parseBtf(fixed.raw, le).types).toEqual(fixed.types);
      expect(Buffer.from(btf.raw).equals(before)).toBe(true);
      expect(fixed.raw.byteLength).toBe(btf.raw.byteLength);
      expect(fixed.file).toBe('obj.o');
    });
  }

  it('fails when a section or a symbol is missing, or a variable does not fit', () => {
    const btf = objectLike(true);
    expect(() => withDatasecFixups(btf, new Map([['.rodata', 12]]), () => 0)).toThrow(/datasec .data has size 0 and the object has no non-empty section/);
    expect(() => withDatasecFixups(btf, new Map([['.data', 8], ['.rodata', 12]]), (_s, n) => (n === 'first' ? 0 : undefined)))
      .toThrow(/obj.o: .BTF: offset 0x[0-9a-f]+: type \[4\]: datasec .data: no symbol for variable second/);
    expect(() => withDatasecFixups(btf, new Map([['.data', 8], ['.rodata', 12]]), () => 6)).toThrow(/lies outside the 8-byte section/);
  });
});

describe('parseBtfExt on hand-built input', () => {
  function build(le: boolean, recSizes = { func: 8, line: 16, core: 16 }): { btf: Btf; ext: Uint8Array } {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true }); // 1
    b.funcProto(1, []); // 2
    b.func('main_prog', 2); // 3
    b.func('helper', 2, 0); // 4
    b.struct('s', 8, [{ name: 'x', type: 1, bitOffset: 0 }, { name: 'y', type: 1, bitOffset: 32 }]); // 5
    const sec = b.str('xdp');
    const text = b.str('.text');
    const file = b.str('/src/prog.c');
    const line1 = b.str('int main_prog(void) {');
    const line2 = b.str('  return s->y;');
    const access = b.str('0:1');
    const ext = buildBtfExt({
      funcInfo: { recSize: recSizes.func, sections: [{ nameOff: sec, records: [[0, 3]] }, { nameOff: text, records: [[0, 4]] }] },
      lineInfo: {
        recSize: recSizes.line,
        sections: [{ nameOff: sec, records: [[0, file, line1, (3 << 10) | 5], [16, file, line2, (4 << 10) | 12]] }],
      },
      coreRelo: { recSize: recSizes.core, sections: [{ nameOff: sec, records: [[8, 5, access, 0]] }] },
    }, le);
    return { btf: parseBtf(b.build(le), le, { file: 'p.o' }), ext };
  }

  const expected = {
    funcInfo: new Map([['xdp', [{ insnOff: 0, typeId: 3 }]], ['.text', [{ insnOff: 0, typeId: 4 }]]]),
    lineInfo: new Map([['xdp', [
      { insnOff: 0, fileName: '/src/prog.c', line: 'int main_prog(void) {', lineNumber: 3, column: 5 },
      { insnOff: 16, fileName: '/src/prog.c', line: '  return s->y;', lineNumber: 4, column: 12 },
    ]]]),
    coreRelos: new Map([['xdp', [{ insnOff: 8, typeId: 5, access: '0:1', kind: 'field_byte_offset', kindValue: 0 }]]]),
  };

  for (const le of both) {
    it(`reads func_info, line_info and CO-RE relocations (${order(le)})`, () => {
      const { btf, ext } = build(le);
      const parsed = parseBtfExt(ext, le, btf);
      expect(parsed.file).toBe('p.o');
      expect(parsed.funcInfo).toEqual(expected.funcInfo);
      expect([...parsed.lineInfo.get('xdp')!].map(({ fileNameOff: _f, lineOff: _l, ...rest }) => rest)).toEqual(expected.lineInfo.get('xdp'));
      expect([...parsed.coreRelos.get('xdp')!].map(({ accessStrOff: _a, ...rest }) => rest)).toEqual(expected.coreRelos.get('xdp'));
      expect([parsed.funcInfoRecSize, parsed.lineInfoRecSize, parsed.coreReloRecSize]).toEqual([8, 16, 16]);
    });
  }

  it('skips the extra bytes of records larger than it knows', () => {
    const { btf, ext } = build(true, { func: 12, line: 24, core: 20 });
    const parsed = parseBtfExt(ext, true, btf);
    expect(parsed.funcInfo).toEqual(expected.funcInfo);
    expect(parsed.lineInfo.get('xdp')?.map((l) => l.line)).toEqual(['int main_prog(void) {', '  return s->y;']);
    expect(parsed.coreRelos.get('xdp')?.[0]?.access).toBe('0:1');
    expect(parsed.funcInfoRecSize).toBe(12);
  });

  it('rejects records smaller than it knows', () => {
    const { btf, ext } = build(true, { func: 4, line: 16, core: 16 });
    expect(() => parseBtfExt(ext, true, btf)).toThrow(/p.o: .BTF.ext: offset 0x20: func_info rec_size 4/);
    const bad = build(true, { func: 8, line: 18, core: 16 });
    expect(() => parseBtfExt(bad.ext, true, bad.btf)).toThrow(/line_info rec_size 18/);
  });
});
