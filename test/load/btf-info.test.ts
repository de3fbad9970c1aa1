import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { parseBtf, parseBtfExt, type BtfExt } from '../../src/btf/index.js';
import { programBtfInfo } from '../../src/load/btf.js';
import { relocateProgram } from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec, type ProgramSpec, type SubprogramSpec } from '../../src/object/index.js';
import { BtfBuilder, buildBtfExt } from '../btf/btf-builder.js';
import { corpusFiles, corpusTest, missingCorpusFile, SAMPLES_DIR } from '../helpers/kernel.js';

type Layout = ReadonlyArray<{ fn: ProgramSpec | SubprogramSpec; start: number }>;

/**
 * The kernel's line_info for a layout, built from the decoded records (the way the loader did before it copied them
 * from the file): each function's records in insn_off order, moved to the function's place, then sorted by index.
 */
function lineInfoFromDecoded(ext: BtfExt, layout: Layout): number[][] {
  const out: number[][] = [];
  for (const { fn, start } of layout) {
    const end = fn.offset + fn.bytes.byteLength;
    for (const l of ext.lineInfo.get(fn.section) ?? []) {
      if (l.insnOff < fn.offset || l.insnOff >= end) continue;
      out.push([start + (l.insnOff - fn.offset) / 8, l.fileNameOff, l.lineOff, ((l.lineNumber << 10) | l.column) >>> 0]);
    }
  }
  return out.map((r, i) => [r, i] as const).sort((a, b) => a[0][0]! - b[0][0]! || a[1] - b[1]).map(([r]) => r);
}

function records(bytes: Uint8Array, le: boolean): number[][] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[][] = [];
  for (let at = 0; at < bytes.byteLength; at += 16) out.push([0, 4, 8, 12].map((o) => view.getUint32(at + o, le)));
  return out;
}

/** Every program of `spec` relocated with stand-in fds (the layout is all that matters here). */
function layouts(spec: BpfObjectSpec): Layout[] {
  const out: Layout[] = [];
  for (const p of spec.programs) {
    try {
      out.push(relocateProgram(spec, p, { mapFd: () => 3, dataMapFd: () => 4, extern: () => ({ kind: 'absent', poison: 0 }) }).layout);
    } catch {
      // A program whose relocations cannot be laid out without a kernel (none in these files) adds nothing here.
    }
  }
  return out;
}

function expectSameAsDecoded(path: string): number {
  let spec: BpfObjectSpec;
  try {
    spec = parseObject(readFileSync(path), { name: path });
  } catch (e) {
    // The corpus holds objects made to be refused; they have no programs to compare.
    if (e instanceof BpfLoadError) return 0;
    throw e;
  }
  if (spec.btfExt === undefined) return 0;
  let compared = 0;
  for (const layout of layouts(spec)) {
    const info = programBtfInfo(spec, layout);
    if (info === undefined) continue;
    expect(records(info.lineInfo, spec.littleEndian), `${path}: ${layout[0]!.fn.name}`).toEqual(lineInfoFromDecoded(spec.btfExt, layout));
    compared += info.lineInfo.byteLength / 16;
  }
  return compared;
}

describe('programBtfInfo (pure: line records copied from the file)', () => {
  it('writes the same line_info as the decoded records, for every sample in both byte orders', () => {
    const objects = readdirSync(SAMPLES_DIR).filter((n) => n.endsWith('.o'));
    let compared = 0;
    for (const name of objects) compared += expectSameAsDecoded(join(SAMPLES_DIR, name));
    // Samples with subprograms (globals, fixups …) and big-endian copies are among them.
    expect(compared).toBeGreaterThan(100);
    expect(objects.some((n) => n.endsWith('.eb.o'))).toBe(true);
  });

  corpusTest('writes the same line_info as the decoded records for the cilium corpus', () => {
    const files = corpusFiles('cilium', (n) => n.endsWith('-el.elf') || n.endsWith('-eb.elf'));
    if (files === undefined) throw missingCorpusFile();
    let compared = 0;
    for (const path of files) compared += expectSameAsDecoded(path);
    expect(compared).toBeGreaterThan(1000);
  });

  it('a section whose records are out of order (or larger than 16 bytes) gives the kernel sorted 16-byte records', () => {
    for (const [le, recSize] of [[true, 16], [false, 16], [true, 20]] as const) {
      const b = new BtfBuilder();
      b.int('int', 4, { signed: true }); // 1
      b.funcProto(1, []); // 2
      b.func('main_prog', 2); // 3
      b.func('helper', 2, 0); // 4
      const sec = b.str('xdp');
      const file = b.str('/src/prog.c');
      const [l1, l2, l3, l4] = [b.str('a'), b.str('b'), b.str('c'), b.str('d')];
      const btf = parseBtf(b.build(le), le, { file: 'p.o' });
      // main_prog is [0, 16) of the section, helper [16, 32); their records interleaved out of order.
      const ext = parseBtfExt(buildBtfExt({
        funcInfo: { recSize: 8, sections: [{ nameOff: sec, records: [[0, 3], [16, 4]] }] },
        lineInfo: { recSize, sections: [{ nameOff: sec, records: [[24, file, l4, 4 << 10], [0, file, l1, 1 << 10], [16, file, l3, 3 << 10], [8, file, l2, (2 << 10) | 7]] }] },
      }, le), le, btf);
      const main = { name: 'main_prog', section: 'xdp', offset: 0, bytes: new Uint8Array(16) } as ProgramSpec;
      const helper = { name: 'helper', section: 'xdp', offset: 16, bytes: new Uint8Array(16) } as SubprogramSpec;
      const spec = { littleEndian: le, btfExt: ext } as BpfObjectSpec;
      // The helper is placed first here (start 0), the program after it: each function takes only its own records.
      const layout = [{ fn: main, start: 2 }, { fn: helper, start: 0 }];
      const info = programBtfInfo(spec, layout)!;
      expect(records(info.lineInfo, le)).toEqual([[0, file, l3, 3 << 10], [1, file, l4, 4 << 10], [2, file, l1, 1 << 10], [3, file, l2, (2 << 10) | 7]]);
      expect(records(info.lineInfo, le)).toEqual(lineInfoFromDecoded(ext, layout));
    }
  });
});
