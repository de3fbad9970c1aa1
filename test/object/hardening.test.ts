import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printable } from '../../src/base/printable.js';
import { parseBtf } from '../../src/btf/index.js';
import { readElf } from '../../src/elf/index.js';
import { ObjectError, parseObject } from '../../src/object/index.js';
import { btfMaps, dataSections, legacyMapRelocs, programSections } from '../../bench/crafted.mjs';
import { buildElf } from '../helpers/elf-builder.js';
import { SAMPLES_DIR } from '../helpers/kernel.js';
import { oneLineError, reproTest } from '../helpers/repro.js';

describe('repro inputs: typed one-line errors or a spec', () => {
  reproTest('bss-4GiB.o', 'a 4 GiB NOBITS .bss is described by its size, nothing allocated', (path) => {
    const before = process.memoryUsage().arrayBuffers;
    const spec = parseObject(readFileSync(path), { name: 'bss-4GiB.o' });
    const bss = spec.maps.find((m) => m.section === '.bss')!;
    expect([bss.valueSize, bss.contents]).toEqual([4294967312, undefined]);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });

  reproTest('self-map-in-map.o', 'a values[] that points at its own definition is an ObjectError', (path) => {
    const e = oneLineError(() => parseObject(readFileSync(path), { name: 'self-map-in-map.o' }));
    expect(e).toBeInstanceOf(ObjectError);
    expect(e.message).toMatch(/^self-map-in-map\.o: section \.maps: symbol outer\.values: field values: .*multi-level map-in-map/);
  });

  reproTest('deep-ptr-chain.o', 'a 30,000-deep pointer chain parses; its name is a BtfError, its label a placeholder', (path) => {
    const spec = parseObject(readFileSync(path), { name: 'deep-ptr-chain.o' });
    const btf = spec.btf!;
    const pointers = btf.types.filter((t) => t.kind === 'ptr');
    expect(pointers.length).toBeGreaterThan(29_000);
    // The head of the longest chain: the pointer no other pointer points at, with the most pointers below it.
    const depth = (id: number) => {
      let n = 0;
      for (let t = btf.type(id); t.kind === 'ptr'; t = btf.type(t.type)) n++;
      return n;
    };
    const targets = new Set(pointers.map((t) => (t.kind === 'ptr' ? t.type : 0)));
    const deepest = pointers.filter((t) => !targets.has(t.id)).reduce((a, t) => (depth(t.id) > depth(a.id) ? t : a)).id;
    expect(depth(deepest)).toBeGreaterThan(29_000);
    const e = oneLineError(() => btf.typeName(deepest));
    expect(e.message).toMatch(/nests deeper than/);
    expect(btf.typeLabel(deepest)).toBe(`[${deepest}]`);
  });

  reproTest('kconfig-min.o', 'parses (the oversized extern is for the loader to refuse)', (path) => {
    const spec = parseObject(readFileSync(path), { name: 'kconfig-min.o' });
    expect(spec.relocations.some((r) => r.kind === 'extern')).toBe(true);
  });
});

describe('parsing never writes into its input', () => {
  const samples = readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).map((f) => join(SAMPLES_DIR, f));

  it.each(['Buffer', 'Uint8Array'] as const)('%s input is unchanged (DATASEC fixups patch a copy)', (kind) => {
    let fixedUp = 0;
    for (const path of samples) {
      const file = readFileSync(path);
      const input = kind === 'Buffer' ? Buffer.from(file) : new Uint8Array(file);
      const spec = parseObject(input, { name: path });
      expect(Buffer.compare(input, file), path).toBe(0);
      const section = readElf(file).section('.BTF');
      if (section === undefined || spec.btf === undefined) continue;
      // The file's BTF has a zero DATASEC size that the spec's BTF fixed: bytes were patched, in a copy.
      const fileBtf = parseBtf(section.data, spec.littleEndian);
      if (fileBtf.types.some((t) => t.kind === 'datasec' && t.size === 0 && spec.btf!.type(t.id).kind === 'datasec' &&
        (spec.btf!.type(t.id) as typeof t).size > 0)) fixedUp++;
    }
    expect(fixedUp, 'some samples need DATASEC fixups, so the copy is exercised').toBeGreaterThan(0);
  });
});

describe('names from the file stay one printable line', () => {
  it('printable escapes controls, keeps text and backslashes, and is idempotent', () => {
    expect(printable('socket1')).toBe('socket1');
    expect(printable('a\nb\r\tc\x1b[31m\x7f\u0085\u2028')).toBe('a\\nb\\r\\tc\\x1b[31m\\x7f\\x85\\u2028');
    expect(printable(printable('x\ny'))).toBe('x\\ny');
    expect(printable('dir\\name')).toBe('dir\\name');
  });

  it('a section name with a newline and an escape sequence is escaped in the error', () => {
    const bytes = buildElf({ sections: [{ name: 'maps/evil\n\x1b[2J', type: 1, data: new Uint8Array(20) }] });
    const e = oneLineError(() => parseObject(bytes, { name: 't.o' }));
    expect(e.message).toBe('t.o: section maps/evil\\n\\x1b[2J: 20 bytes of map definitions but no map symbols');
  });

  it('a relocation against a symbol whose name holds control characters names it escaped', () => {
    const code = new Uint8Array(16);
    code[0] = 0x85; // call, relocated against a data symbol: invalid
    const bytes = buildElf({
      sections: [
        { name: 'socket', type: 1, flags: 0x6, data: code },
        { name: '.relsocket', type: 9, data: relEntry(0, 1), link: 3, info: 1, entsize: 16 },
      ],
      symbols: [{ name: 'evil\nname\x07', shndx: 0xfff1, type: 1 }],
    });
    const e = oneLineError(() => parseObject(bytes, { name: 't.o' }));
    expect(e.message).toContain('symbol evil\\nname\\x07');
  });
});

function relEntry(offset: number, symbol: number): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(offset), true);
  v.setBigUint64(8, (BigInt(symbol) << 32n) | 1n, true);
  return out;
}

describe('crafted shapes parse (their parse time is a benchmark row in bench/run.mjs)', () => {
  it('125k allocated .data.N sections (extended numbering): 125k data maps, no stack overflow', () => {
    const spec = parseObject(dataSections(125_000), { name: 'data.o' });
    expect([spec.maps.length, spec.maps.at(-1)!.name, spec.maps.at(-1)!.index]).toEqual([125_000, '.data.124999', 124_999]);
  }, 120_000);

  // The quadratic shapes, at a size that shows they come out right; their time is measured at 20k by the bench.
  it('program sections × symbols, legacy maps × relocations, BTF map variables × symbols', () => {
    const programs = parseObject(programSections(2_000));
    expect([programs.programs.length, programs.programs.at(-1)!.name]).toEqual([2_000, 'prog_1999']);
    const legacy = parseObject(legacyMapRelocs(2_000));
    expect(legacy.relocations.map((r) => r.target)).toEqual(legacy.maps.map((m) => m.name));
    expect(legacy.maps.at(-1)!.name).toBe('map_1999');
    const btf = parseObject(btfMaps(2_000));
    expect(btf.maps.map((m) => [m.name, m.offset, m.typeName, m.keySize, m.valueSize]).at(-1)).toEqual(['map_1999', 1999 * 32, 'array', 4, 4]);
  }, 60_000);
});
