/**
 * The compiler as the oracle: a C file with known initialisers, bitfields, CO-RE accesses and line structure is built
 * for both byte orders; what we parse and decode must match what the source says.
 */
import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBtf, parseBtfExt, withDatasecFixups, type Btf, type BtfExt } from '../../src/btf/index.js';
import { readElf, SymbolType, type ElfFile } from '../../src/elf/index.js';
import { oracleTool } from '../helpers/kernel.js';

const CLANG = oracleTool('clang', ['/usr/bin/clang-19', '/usr/bin/clang-20', '/usr/bin/clang-18', '/usr/bin/clang'], 'apt-get install clang-19');

const SOURCE = `typedef unsigned long long u64;
enum color { RED, GREEN = 5, BLUE = -3 };
enum wide_enum { SMALL = 1, HUGE = 0x1ffffffffULL };

struct point { short x, y; };

struct bits {
	unsigned int a : 3;
	int b : 5;
	unsigned int c : 12;
	enum color col : 4;
	unsigned long long wide : 40;
	char name[12];
	_Bool flag;
	signed char sc;
	short s;
	u64 big;
	int *ptr;
	union { int i; unsigned int u; };
	struct point pt;
	int arr[3];
};

struct bits global_bits = {
	.a = 5, .b = -7, .c = 3000, .col = BLUE, .wide = 0xabcdef1234ULL, .name = "hello", .flag = 1,
	.sc = -100, .s = -2, .big = 0xfedcba9876543210ULL, .ptr = 0, .i = -42, .pt = { 3, -4 }, .arr = { 1, -2, 3 },
};
enum wide_enum wide_value = HUGE;
double ratio = 2.5;
volatile const int answer = 42;

struct target { int first; int second; } __attribute__((preserve_access_index));

static __attribute__((noinline)) int helper(struct target *t)
{
	return t->second;
}

__attribute__((section("xdp"), used)) int prog(struct target *t)
{
	int r = helper(t);
	if (__builtin_preserve_field_info(t->first, 2))
		r += global_bits.a;
	return r + answer;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
`;

interface Built { elf: ElfFile; btf: Btf; ext: BtfExt; source: string }

const dir = CLANG === undefined ? undefined : mkdtempSync(join(tmpdir(), 'btf-clang-'));
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const built = new Map<boolean, Built>();
function build(le: boolean): Built {
  const cached = built.get(le);
  if (cached !== undefined) return cached;
  const src = join(dir!, 'prog.c');
  writeFileSync(src, SOURCE);
  const out = join(dir!, le ? 'prog.el.o' : 'prog.eb.o');
  const res = spawnSync(CLANG!, ['-target', le ? 'bpfel' : 'bpfeb', '-O2', '-g', '-c', src, '-o', out], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`clang failed: ${res.stderr}`);
  const elf = readElf(readFileSync(out), { file: out });
  const btf = parseBtf(elf.section('.BTF')!.data, le, { file: out });
  const ext = parseBtfExt(elf.section('.BTF.ext')!.data, le, btf);
  const b = { elf, btf, ext, source: src };
  built.set(le, b);
  return b;
}

function fixed(b: Built): Btf {
  const sections = new Map(b.elf.sections.map((s) => [s.name, s.size]));
  return withDatasecFixups(b.btf, sections, (sec, name) =>
    b.elf.symbols.find((s) => s.name === name && b.elf.sections[s.shndx]?.name === sec && s.type === SymbolType.OBJECT)?.value);
}

describe.runIf(CLANG !== undefined)('BTF from clang, both byte orders', () => {
  for (const le of [true, false]) {
    const order = le ? 'little-endian' : 'big-endian';

    it(`decodes initialised globals (bitfields, enums, strings, unions) as the source wrote them (${order})`, () => {
      const b = build(le);
      const btf = fixed(b);
      const data = btf.findByName('datasec', '.data')!;
      expect(btf.formatValue(data.id, b.elf.section('.data')!.data)).toEqual({
        global_bits: {
          a: 5, b: -7, c: 3000, col: 'BLUE', wide: 0xabcdef1234, name: 'hello', flag: true, sc: -100, s: -2,
          big: '18364758544493064720', ptr: '0x0', i: -42, u: 0xffffffd6, pt: { x: 3, y: -4 }, arr: [1, -2, 3],
        },
        wide_value: 'HUGE',
        ratio: 2.5,
      });
      const rodata = btf.findByName('datasec', '.rodata')!;
      expect(btf.formatValue(rodata.id, b.elf.section('.rodata')!.data)).toEqual({ answer: 42 });
      const license = btf.findByName('var', '_license')!;
      expect(btf.formatValue(license.type, b.elf.section('license')!.data)).toBe('GPL');
    });

    it(`names and sizes the source's types (${order})`, () => {
      const { btf } = build(le);
      const bits = btf.findByName('struct', 'bits')!;
      expect(btf.sizeof(bits.id)).toBe(bits.size);
      const member = (name: string) => bits.members.find((m) => m.name === name)!;
      expect(btf.typeName(member('name').type)).toBe('char[12]');
      expect(btf.typeName(member('ptr').type)).toBe('int *');
      expect(btf.typeName(member('big').type)).toBe('u64');
      expect(btf.typeName(btf.resolve(member('big').type))).toBe('unsigned long long');
      expect(btf.typeName(member('pt').type)).toBe('struct point');
      expect(btf.typeName(member('col').type)).toBe('enum color');
      expect([member('a').bitfieldSize, member('b').bitfieldSize, member('c').bitfieldSize, member('wide').bitfieldSize]).toEqual([3, 5, 12, 40]);
      expect(btf.findByName('enum64', 'wide_enum')?.values).toEqual([{ name: 'SMALL', value: 1n }, { name: 'HUGE', value: 0x1ffffffffn }]);
      expect(btf.findByName('enum', 'color')?.signed).toBe(true);
      const prog = btf.findByName('func', 'prog')!;
      expect(prog.linkage).toBe('global');
      expect(btf.findByName('func', 'helper')!.linkage).toBe('static');
      expect(btf.typeName(prog.id)).toBe('int prog(struct target *)');
      expect(btf.findByName('var', 'answer')!.linkage).toBe('global');
      expect(btf.typeName(btf.findByName('var', 'answer')!.type)).toBe('const volatile int');
    });

    it(`reads func_info, line_info and CO-RE relocations that match the source (${order})`, () => {
      const { btf, ext, elf, source } = build(le);
      const funcs = [...ext.funcInfo].flatMap(([sec, infos]) => infos.map((fi) => `${sec}: ${btf.type(fi.typeId).name}@${fi.insnOff}`));
      const helperSym = elf.symbols.find((s) => s.name === 'helper')!;
      expect(funcs.sort()).toEqual([`.text: helper@${helperSym.value}`, 'xdp: prog@0']);

      // Every line_info record carries the text of the source line it names.
      const lines = SOURCE.split('\n');
      let records = 0;
      for (const infos of ext.lineInfo.values()) {
        for (const li of infos) {
          expect(li.fileName).toBe(source);
          expect(li.line).toBe(lines[li.lineNumber - 1]);
          expect(li.column).toBeGreaterThan(0);
          records++;
        }
      }
      expect(records).toBeGreaterThan(4);
      // Each section's records fall inside the source lines of the function compiled into it.
      const span = (header: string) => {
        const first = lines.findIndex((l) => l.includes(header)) + 1;
        const last = lines.findIndex((l, i) => i >= first && l === '}') + 1;
        return [first, last];
      };
      for (const [sec, header] of [['xdp', 'int prog('], ['.text', 'int helper(']] as const) {
        const [first, last] = span(header);
        const numbers = ext.lineInfo.get(sec)!.map((li) => li.lineNumber);
        expect(Math.min(...numbers), sec).toBeGreaterThanOrEqual(first!);
        expect(Math.max(...numbers), sec).toBeLessThanOrEqual(last!);
      }

      const target = btf.findByName('struct', 'target')!;
      const index = (name: string) => target.members.findIndex((m) => m.name === name);
      const relos = [...ext.coreRelos].flatMap(([sec, rs]) => rs.map((r) => `${sec}: ${r.kind} ${btf.typeName(r.typeId)} ${r.access}`));
      expect(relos.sort()).toEqual([
        `.text: field_byte_offset struct target 0:${index('second')}`,
        `xdp: field_exists struct target 0:${index('first')}`,
      ].sort());
    });
  }

  it('gives the same types and the same records for both byte orders', () => {
    const el = build(true);
    const eb = build(false);
    expect(eb.btf.types).toEqual(el.btf.types);
    const records = (ext: BtfExt) => ({ funcInfo: ext.funcInfo, lineInfo: ext.lineInfo, coreRelos: ext.coreRelos });
    expect(records(eb.ext)).toEqual(records(el.ext));
  });
});
