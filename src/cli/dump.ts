import { once } from 'node:events';
import { annotate, annotatedText, describeObject, forEachInsn, type ObjectDump } from '../object/describe.js';
import type { BpfObjectSpec } from '../object/spec.js';
import { CallSrc, helperCallText } from '../base/uapi.js';
import { formatInsn, formatRawHex, isCall } from '../insn/index.js';
import { printable } from '../base/printable.js';
import { table, tableLines } from './table.js';
import { readUserFile } from '../base/file.js';
import { ELF_HEADER_CHECK } from '../elf/index.js';
import { parseObject } from '../object/index.js';
import { EXIT, type CliOptions } from './args.js';

/** `bpf-load --dump [--json] FILE`: the object described, streamed to stdout. */
export async function runDump(file: string, options: CliOptions): Promise<number> {
  // `bpf-load --dump x.o | head`: a closed pipe is the reader's choice, not an error. (Run mode handles it itself,
  // detaching first.)
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT.ok);
  });
  const spec = parseObject(readUserFile(file, { head: ELF_HEADER_CHECK }), { name: file, programTypes: options.programTypes });
  if (options.json) {
    process.stdout.write(`${JSON.stringify(describeObject(spec), null, 2)}\n`);
  } else {
    for (const chunk of dumpChunks(spec, { helpers: options.helpers, raw: options.raw })) {
      // Paced by the reader: a slow pipe is waited for rather than buffered, and one that closed (EPIPE, above)
      // ends the process here instead of after the whole listing was formatted.
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
    }
  }
  return EXIT.ok;
}

/**
 * The listing comes in chunks of about this many characters: one write(2) per chunk instead of one per line, and
 * never the whole listing in memory (a 187k-instruction object is ~10 MB of text).
 */
const CHUNK_CHARS = 1 << 16;

/**
 * Human-readable --dump, streamed: header, sections, maps, programs, relocations, then the annotated disassembly of
 * one function at a time, formatted straight from the instruction bytes. A generator, so the writer sets the pace.
 */
export function* dumpChunks(spec: BpfObjectSpec, options: { helpers?: boolean; raw?: boolean } = {}): Generator<string, void, undefined> {
  const d = describeObject(spec, { disassembly: false });
  let pending = renderSummary(d);
  pending += `\nRelocations (${d.relocations.length}):\n`;
  if (d.relocations.length > 0) {
    const rows = tableLines(['section', 'insn', 'program', 'symbol', 'kind', 'target'], d.relocations.length, (i) => {
      const r = d.relocations[i]!;
      return [r.section, String(r.insn), r.program || '-', r.symbol, r.kind, r.target];
    });
    for (const line of rows) {
      pending += `${line}\n`;
      if (pending.length >= CHUNK_CHARS) {
        yield pending;
        pending = '';
      }
    }
  }
  for (const fn of [...spec.programs, ...spec.subprograms]) {
    pending += `\nDisassembly of ${printable(fn.name)} (section ${printable(fn.section)}):\n`;
    // The index column is as wide as the last index, known once the function is walked: its lines wait until then.
    // llvm-objdump's syntax by default; on request bpftool's helper names, and the bytes as llvm-objdump shows them
    // (spaced, all of a ld_imm64's 16 on its line).
    const indices: number[] = [];
    const texts: string[] = [];
    const raws: string[] = [];
    forEachInsn(fn, (insn, slot, byte, size, reloc) => {
      const helper = options.helpers === true && isCall(insn) && insn.src === CallSrc.HELPER ? helperCallText(insn.imm) : undefined;
      const text = helper !== undefined ? `call ${helper}` : formatInsn(insn, fn.littleEndian);
      indices.push(slot);
      texts.push(reloc === undefined || helper !== undefined ? text : printable(annotatedText({ text, annotation: annotate(reloc) })));
      if (options.raw === true) raws.push(formatRawHex(fn.bytes.subarray(byte, byte + size)));
    });
    const width = String(indices.at(-1) ?? 0).length;
    const rawWidth = Math.max(0, ...raws.map((r) => r.length));
    for (let i = 0; i < texts.length; i++) {
      pending += `  ${String(indices[i]).padStart(width)}: ${raws.length > 0 ? `${raws[i]!.padEnd(rawWidth)}  ` : ''}${texts[i]}\n`;
      if (pending.length >= CHUNK_CHARS) {
        yield pending;
        pending = '';
      }
    }
  }
  if (pending !== '') yield pending;
}

/** Everything before the relocations, ending with a newline. */
function renderSummary(d: ObjectDump): string {
  const out: string[] = [];
  out.push(`${d.file ?? '<bytes>'}: ELF64 ${d.byteOrder}-endian relocatable, machine ${d.machine}`);
  out.push(`license: ${d.license === '' ? '(none)' : JSON.stringify(d.license)}` +
    (d.kernVersion === null ? '' : `   version: ${formatKernelVersion(d.kernVersion)}`));

  out.push('', 'Sections:');
  out.push(table(['#', 'name', 'type', 'size', 'flags', 'role'],
    d.sections.map((s) => [String(s.index), s.name, s.type, String(s.size), s.flags, s.role])));

  out.push('', `Maps (${d.maps.length}):`);
  if (d.maps.length > 0) {
    const typed = (size: number, type: string | null) => (type === null ? String(size) : `${size} (${type})`);
    out.push(table(['#', 'name', 'type', 'key', 'value', 'max', 'flags', 'inner', 'pinning', 'source'],
      d.maps.map((m) => [String(m.index), m.name, m.type, typed(m.keySize, m.keyType), typed(m.valueSize, m.valueType), String(m.maxEntries),
        `0x${m.flags.toString(16)}`, m.innerMap ?? '-', m.pinning, `${m.source} (${m.section})`])));
  }
  if (d.variables.length > 0) {
    out.push('', `Global variables (${d.variables.length}):`);
    out.push(table(['section', 'offset', 'size', 'name', 'type'],
      d.variables.map((v) => [v.section, String(v.offset), String(v.size), v.name, v.type ?? '-'])));
  }

  out.push('', `Programs (${d.programs.length}):`);
  if (d.programs.length > 0) {
    out.push(table(['section', 'name', 'type', 'attach type', 'attach', 'insns', 'tail call'],
      d.programs.map((p) => [p.section, p.name, p.typeSource === 'user' ? `${p.type} (--type)` : p.type, p.attachType ?? '-',
        p.attach === 'none' ? '-' : `${p.attach} ${p.attachTarget}`.trim(), String(p.insnCount),
        p.tailCallSlot === null ? '-' : p.tailCallMapId === null ? `slot ${p.tailCallSlot}` : `map id ${p.tailCallMapId} slot ${p.tailCallSlot}`])));
  }
  const notes = [...d.maps.flatMap((m) => m.notes.map((n) => `map ${m.name}: ${n}`)), ...d.programs.flatMap((p) => p.notes.map((n) => `program ${p.name}: ${n}`))];
  if (notes.length > 0) {
    out.push('', `Load notes (${notes.length}):`);
    for (const n of notes) out.push(`  ${n}`);
  }
  if (d.subprograms.length > 0) {
    out.push('', `Subprograms (${d.subprograms.length}):`);
    out.push(table(['section', 'name', 'linkage', 'insns'],
      d.subprograms.map((s) => [s.section, s.name, s.global ? 'global' : 'static', String(s.insnCount)])));
  }
  return `${out.join('\n')}\n`;
}

/** 0x060c00 → "6.12.0 (0x060c00)": the `version` section holds LINUX_VERSION_CODE. */
function formatKernelVersion(v: number): string {
  return `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff} (0x${v.toString(16).padStart(6, '0')})`;
}
