/**
 * The streamed --dump text (dumpChunks: written as bytes straight from the instruction bytes and relocation records)
 * against the same listing built the plain way from describeObject()'s data: formatInsn per instruction,
 * annotatedText, tableLines. Real objects, every option, and crafted functions for the annotation rules' corners.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dumpChunks } from '../../src/cli/dump.js';
import { tableLines } from '../../src/cli/table.js';
import { printable } from '../../src/base/printable.js';
import { annotatedText, describeObject } from '../../src/object/describe.js';
import { parseObject } from '../../src/object/index.js';
import type { BpfObjectSpec, ProgramSpec, RelocationSpec } from '../../src/object/spec.js';
import { PROJECT_ROOT } from '../helpers/kernel.js';

type Options = { helpers?: boolean; raw?: boolean };

/** The relocation table and the disassembly as the listing shows them, built from strings. */
function expectedListing(spec: BpfObjectSpec, options: Options): string {
  const d = describeObject(spec);
  let text = `\nRelocations (${d.relocations.length}):\n`;
  if (d.relocations.length > 0) {
    const rows = d.relocations.map((r) => [r.section, String(r.insn), r.program || '-', r.symbol, r.kind, r.target]);
    for (const line of tableLines(['section', 'insn', 'program', 'symbol', 'kind', 'target'], rows.length, (i) => rows[i]!)) text += `${line}\n`;
  }
  for (const fn of [...d.programs, ...d.subprograms]) {
    text += `\nDisassembly of ${printable(fn.name)} (section ${printable(fn.section)}):\n`;
    const width = String(fn.insns.at(-1)?.index ?? 0).length;
    const raws = fn.insns.map((i) => i.raw.replace(/(..)(?!$)/g, '$1 '));
    const rawWidth = Math.max(0, ...raws.map((r) => r.length));
    fn.insns.forEach((insn, i) => {
      const shown = options.helpers === true && insn.helper !== undefined ? `call ${insn.helper}`
        : insn.annotation === undefined ? insn.text : printable(annotatedText(insn));
      text += `  ${String(insn.index).padStart(width)}: ${options.raw === true ? `${raws[i]!.padEnd(rawWidth)}  ` : ''}${shown}\n`;
    });
  }
  return text;
}

function streamed(spec: BpfObjectSpec, options: Options): string {
  const text = Buffer.concat([...dumpChunks(spec, options)]).toString('utf8');
  return text.slice(text.indexOf('\nRelocations ('));
}

function objects(): string[] {
  const dirs = [join(PROJECT_ROOT, 'c-samples'), join(PROJECT_ROOT, '../shared/corpus/cilium')];
  return dirs.flatMap((dir) => {
    try {
      return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.o')).map((f) => join(dir, f));
    } catch {
      return [];
    }
  });
}

const OPTIONS: Options[] = [{}, { raw: true }, { helpers: true }, { raw: true, helpers: true }];

describe('dumpChunks writes what the string-built listing says', () => {
  it('for every sample and corpus object, with each option', () => {
    let compared = 0;
    for (const path of objects()) {
      let spec: BpfObjectSpec;
      try {
        spec = parseObject(readFileSync(path), { name: path });
      } catch {
        continue; // objects the parser refuses have no listing
      }
      for (const options of OPTIONS) expect(streamed(spec, options), `${path} ${JSON.stringify(options)}`).toBe(expectedListing(spec, options));
      compared++;
    }
    expect(compared).toBeGreaterThan(20);
  });

  it('applies the annotation rules to odd instructions and names', () => {
    const base = parseObject(readFileSync(join(PROJECT_ROOT, 'c-samples/sockex1_kern.o')), { name: 'sockex1_kern.o' });
    const program = base.programs[0]!;
    // ld_pseudo (src 1: its text holds a tab), call, ld_imm64 constant, exit, a callx, an unknown opcode, a ld_imm64
    // cut short at the end: each with a relocation whose target needs escaping or looks like a call.
    const bytes = Uint8Array.from([
      0x18, 0x11, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0x85, 0x00, 0, 0, 1, 0, 0, 0,
      0x18, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
      0x95, 0, 0, 0, 0, 0, 0, 0,
      0x8d, 0x03, 0, 0, 0, 0, 0, 0,
      0xff, 0x21, 0, 0, 0, 0, 0, 0,
      0x85, 0x00, 0, 0, 7, 0, 0, 0,
      0x18, 0x01, 0, 0, 1, 0, 0, 0,
    ]);
    const reloc = (insn: number, kind: RelocationSpec['kind'], target: string, targetOffset = 0): RelocationSpec => ({
      section: program.section, sectionIndex: program.sectionIndex, insn, program: program.name, symbol: `sym\t${insn}`, kind, target,
      targetOffset, relocType: 1, weak: false,
    });
    const relocations = [
      reloc(0, 'map', 'ma\u001bp'), reloc(2, 'data', 'call x', 0x10), reloc(3, 'data', '.r\u00e9data', 0x8), reloc(5, 'extern', 'e\u2028'),
      reloc(6, 'call', 'callee'), reloc(7, 'func_addr', 'f'), reloc(8, 'data', 'call y'), reloc(9, 'map', 'm\u00a0'),
    ];
    const crafted: ProgramSpec = { ...program, offset: 0, bytes, relocations };
    const spec: BpfObjectSpec = { ...base, programs: [crafted], subprograms: [], relocations };
    for (const options of OPTIONS) expect(streamed(spec, options), JSON.stringify(options)).toBe(expectedListing(spec, options));
    // The corners are there: the tab escaped, the names escaped, a data target that looks like a call taking the
    // call's place, a trailing no-break space kept by neither table nor listing.
    const text = streamed(spec, {});
    expect(text).toContain('ld_pseudo\\tr1, 0x1, 0x5  ; map[ma\\x1bp]');
    expect(text).toContain('  2: call x+0x10\n');
    expect(text).toContain('r2 = .r\u00e9data+0x8 ll');
    expect(text).toContain('exit  ; extern[e\\u2028]');
  });
});
