import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ElfError, readElf, SectionType, SymbolType } from '../../src/elf/index.js';
import { buildElf, insnBytes, relEntries } from '../helpers/elf-builder.js';
import { corpusFiles, oracleTool, SAMPLES_DIR } from '../helpers/kernel.js';

const READOBJ = oracleTool('llvm-readobj', ['/usr/bin/llvm-readobj-19', '/usr/bin/llvm-readobj'], 'apt-get install llvm-19');

function objects(): string[] {
  const samples = readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).map((f) => join(SAMPLES_DIR, f));
  return [...samples, ...(corpusFiles('cilium', (n) => n.endsWith('.o') || n.endsWith('.elf')) ?? [])];
}

/** A small valid object: one program section with a relocation against a map symbol. */
function sampleObject(littleEndian = true): Uint8Array {
  return buildElf({
    littleEndian,
    sections: [
      { name: 'socket1', type: SectionType.PROGBITS, flags: 6, data: insnBytes([[0x18, 0x01, 0, 0], [0, 0, 0, 0], [0x95, 0, 0, 0]], littleEndian) },
      { name: '.relsocket1', type: SectionType.REL, data: relEntries([[0, 3, 1]], littleEndian), link: 4, info: 1, entsize: 16 },
      { name: 'maps', type: SectionType.PROGBITS, flags: 3, data: new Uint8Array(20) },
    ],
    symbols: [
      { name: 'bpf_prog1', type: SymbolType.FUNC, shndx: 1, size: 24 },
      { name: 'other', type: SymbolType.NOTYPE, shndx: 1, bind: 0 },
      { name: 'my_map', type: SymbolType.OBJECT, shndx: 3, size: 20 },
    ],
  });
}

describe('readElf on hand-built objects', () => {
  for (const le of [true, false]) {
    it(`reads sections, symbols and relocations (${le ? 'little' : 'big'} endian)`, () => {
      const elf = readElf(sampleObject(le), { file: 'x.o' });
      expect(elf.littleEndian).toBe(le);
      expect(elf.sections.map((s) => s.name)).toEqual(['', 'socket1', '.relsocket1', 'maps', '.symtab', '.strtab', '.shstrtab']);
      expect(elf.symbols.map((s) => s.name)).toEqual(['', 'bpf_prog1', 'other', 'my_map']);
      const rel = elf.section('.relsocket1')!;
      expect(elf.relocations(rel)).toEqual([{ offset: 0, type: 1, symbol: 3 }]);
      const prog = elf.section('socket1')!;
      expect(prog.data.byteLength).toBe(24);
      // A view into the input, not a copy.
      expect(prog.data.buffer).toBe(elf.section('maps')!.data.buffer);
    });
  }

  it('gives NOBITS sections their size but no data', () => {
    const elf = readElf(buildElf({ sections: [{ name: '.bss', type: SectionType.NOBITS, flags: 3, size: 4096 }] }));
    const bss = elf.section('.bss')!;
    expect(bss.size).toBe(4096);
    expect(bss.data.byteLength).toBe(0);
  });

  it('accepts EM_NONE objects (old compilers)', () => {
    expect(readElf(buildElf({ machine: 0, sections: [] })).machine).toBe(0);
  });
});

describe('readElf rejects malformed input with an ElfError that says where', () => {
  const good = sampleObject();
  const expectElfError = (bytes: Uint8Array, pattern: RegExp) => {
    let caught: unknown;
    try {
      const elf = readElf(bytes, { file: 'bad.o' });
      for (const s of elf.sections) if (s.type === SectionType.REL) elf.relocations(s);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ElfError);
    expect((caught as Error).message).toMatch(/^bad\.o: /);
    expect((caught as Error).message).toMatch(pattern);
  };
  const patched = (mutate: (v: DataView, b: Uint8Array) => void) => {
    const b = good.slice();
    mutate(new DataView(b.buffer), b);
    return b;
  };
  const shoff = Number(new DataView(good.buffer).getBigUint64(40, true));
  const sh = (i: number) => shoff + i * 64;

  it('bad magic, empty file, wrong class, wrong byte order, wrong type, wrong machine', () => {
    expectElfError(new Uint8Array(0), /bad magic/);
    expectElfError(new TextEncoder().encode('#!/bin/sh\necho hi\n'), /bad magic/);
    expectElfError(patched((_, b) => { b[4] = 1; }), /ELFCLASS64/);
    expectElfError(patched((_, b) => { b[5] = 7; }), /byte order/);
    expectElfError(patched((v) => v.setUint16(16, 2, true)), /ET_REL/);
    expectElfError(patched((v) => v.setUint16(18, 62, true)), /EM_BPF/);
  });

  it('section table out of bounds, huge section counts, bad entry size', () => {
    expectElfError(patched((v) => v.setBigUint64(40, 0xffffffffn, true)), /section header table/);
    expectElfError(patched((v) => v.setUint16(60, 0xfff0, true)), /section header table \(65520 entries\)/);
    expectElfError(patched((v) => v.setUint16(58, 40, true)), /e_shentsize/);
    expectElfError(patched((v) => v.setBigUint64(40, 0xffffffffffffffffn, true)), /e_shoff/);
  });

  it('section data past the end of the file', () => {
    expectElfError(patched((v) => v.setBigUint64(sh(1) + 32, 1n << 40n, true)), /section socket1 \(#1\).*past the end/);
  });

  it('string offsets out of range', () => {
    expectElfError(patched((v) => v.setUint32(sh(1), 100000, true)), /section #1.*section name offset 100000/);
    expectElfError(patched((v) => v.setUint16(62, 99, true)), /section name table index 99/);
  });

  it('symbol referring to a missing section, symbol index out of range, relocation past its section', () => {
    const symtab = readElf(good).section('.symtab')!;
    expectElfError(patched((v) => v.setUint16(symtab.offset + 24 + 6, 77, true)), /symbol 1 refers to section 77/);
    const rel = readElf(good).section('.relsocket1')!;
    expectElfError(patched((v) => v.setBigUint64(rel.offset + 8, (99n << 32n) | 1n, true)), /symbol 99/);
    expectElfError(patched((v) => v.setBigUint64(rel.offset, 4096n, true)), /relocation at 0x1000 lies outside socket1/);
    expectElfError(patched((v) => v.setUint32(sh(2) + 44, 55, true)), /apply to section 55/);
  });

  it('every truncation of every sample object fails cleanly (at each 1/64 of its length)', () => {
    for (const path of objects()) {
      const bytes = readFileSync(path);
      for (let i = 0; i < 64; i++) {
        const cut = Math.floor((bytes.byteLength * i) / 64);
        try {
          const elf = readElf(bytes.subarray(0, cut), { file: path });
          for (const s of elf.sections) if (s.type === SectionType.REL) elf.relocations(s);
        } catch (e) {
          if (!(e instanceof ElfError)) throw new Error(`${path} cut at ${cut}: ${String(e)}`);
        }
      }
    }
  });
});

describe.runIf(READOBJ !== undefined)('readElf agrees with llvm-readobj on every sample and corpus object', () => {
  it('sections, symbols and relocations', () => {
    const files = objects();
    expect(files.length).toBeGreaterThan(0);
    for (const path of files) {
      const res = spawnSync(READOBJ!, ['--elf-output-style=JSON', '-S', '--symbols', '-r', path], { encoding: 'utf8', maxBuffer: 1 << 26 });
      expect(res.status, res.stderr).toBe(0);
      const oracle = JSON.parse(res.stdout)[0];
      const elf = readElf(readFileSync(path), { file: path });

      const want = oracle.Sections.map(({ Section: s }: any) => ({
        index: s.Index, name: s.Name.Name, type: s.Type.Value, flags: s.Flags.Value, offset: s.Offset, size: s.Size,
        link: s.Link, info: s.Info, addralign: s.AddressAlignment, entsize: s.EntrySize,
      }));
      const got = elf.sections.map((s) => ({
        index: s.index, name: s.name, type: s.type, flags: Number(s.rawFlags), offset: s.offset, size: s.size,
        link: s.link, info: s.info, addralign: s.addralign, entsize: s.entsize,
      }));
      expect(got, path).toEqual(want);

      const wantSyms = oracle.Symbols.map(({ Symbol: s }: any) => ({
        name: s.Name.Name, value: s.Value, size: s.Size, bind: s.Binding.Value, type: s.Type.Value,
      }));
      // llvm-readobj names section symbols after their section; the raw name is empty.
      const gotSyms = elf.symbols.map((s) => ({
        name: s.type === SymbolType.SECTION ? elf.sections[s.shndx]!.name : s.name,
        value: s.value, size: s.size, bind: s.bind, type: s.type,
      }));
      expect(gotSyms, path).toEqual(wantSyms);

      const wantRel = (oracle.Relocations ?? []).map((group: any) => ({
        section: group.SectionIndex,
        relocs: group.Relocs.map(({ Relocation: r }: any) => ({ offset: r.Offset, type: r.Type.Value, symbol: r.Symbol.Value })),
      }));
      const gotRel = elf.sections
        .filter((s) => s.type === SectionType.REL || s.type === SectionType.RELA)
        .map((s) => ({ section: s.index, relocs: elf.relocations(s).map(({ offset, type, symbol }) => ({ offset, type, symbol })) }));
      expect(gotRel, path).toEqual(wantRel);
    }
  });
});

if (READOBJ === undefined) console.warn('llvm-readobj not installed: ELF oracle comparison skipped (CI installs llvm-19)');
