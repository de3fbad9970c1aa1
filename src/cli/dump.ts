import { once } from 'node:events';
import { annotationAround, describeObject, type ObjectDump } from '../object/describe.js';
import type { BpfObjectSpec, FunctionSpec, RelocationSpec } from '../object/spec.js';
import { CallSrc, helperCallText, INSN_SLOT_SIZE } from '../base/uapi.js';
import { insnSizeAt, MAX_INSN_TEXT, Opcode, writeInsnText, writeRawHex } from '../insn/index.js';
import { printable } from '../base/printable.js';
import { asciiBytes, decimalDigits, TextBytes } from '../base/text-bytes.js';
import { table, tableLine } from './table.js';
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
 * The listing comes in chunks of about this many bytes: one write(2) per chunk instead of one per line, and never the
 * whole listing in memory (a 187k-instruction object is ~10 MB of text).
 */
const CHUNK_BYTES = 1 << 16;
/** Room for one listing line beyond a full chunk, so a chunk rarely has to grow (long names still make it grow). */
const CHUNK_CAPACITY = CHUNK_BYTES + 4096;

const RELOCATION_HEADER = ['section', 'insn', 'program', 'symbol', 'kind', 'target'] as const;

/**
 * Human-readable --dump, streamed: header, sections, maps, programs, relocations, then the annotated disassembly of
 * one function at a time. Written as UTF-8 bytes straight from the instruction bytes and the relocation records (no
 * object or string per instruction or table row); a generator of chunks, so the writer sets the pace. Each chunk is
 * the caller's to keep.
 */
export function* dumpChunks(spec: BpfObjectSpec, options: { helpers?: boolean; raw?: boolean } = {}): Generator<Uint8Array, void, undefined> {
  const out = new TextBytes(CHUNK_CAPACITY);
  out.text(renderSummary(describeObject(spec, { disassembly: false, relocations: false })));
  const relocations = spec.relocations;
  out.text(`\nRelocations (${relocations.length}):\n`);
  if (relocations.length > 0) {
    const rows = new RelocationTable(relocations);
    rows.writeHeader(out);
    for (let next = 0; next < relocations.length;) {
      next = rows.writeRows(out, relocations, next);
      if (out.pos >= CHUNK_BYTES) yield out.take(CHUNK_CAPACITY);
    }
  }
  const names = new NameBytes();
  for (const fn of [...spec.programs, ...spec.subprograms]) {
    out.text(`\nDisassembly of ${printable(fn.name)} (section ${printable(fn.section)}):\n`);
    yield* disassembly(out, fn, options, names);
  }
  if (out.pos > 0) yield out.take(0);
}

const INDEX_COLON = asciiBytes(': ');
const ANNOTATION_SEPARATOR = asciiBytes('  ; ');

/**
 * One function's lines, `  <slot>: [raw bytes  ]<text>`, in llvm-objdump's syntax by default; on request bpftool's
 * helper names, and the bytes as llvm-objdump shows them (spaced, all of a ld_imm64's 16 on its line). A relocated
 * instruction shows what it refers to (annotatedText's rules, applied to the bytes). Yields each full chunk.
 */
function* disassembly(out: TextBytes, fn: FunctionSpec, options: { helpers?: boolean; raw?: boolean }, names: NameBytes): Generator<Uint8Array, void, undefined> {
  const lines = new FunctionLines(fn, options, names);
  // The loop over instructions lives in a plain method, called once per chunk: V8 optimizes a long-running loop
  // while it runs (on-stack replacement) in a method, not inside a generator, and a dump runs cold only once.
  while (lines.write(out)) yield out.take(CHUNK_CAPACITY);
}

class FunctionLines {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly littleEndian: boolean;
  private readonly relocs = new Map<number, RelocationSpec>();
  private readonly names: NameBytes;
  private readonly helpers: boolean;
  private readonly indexWidth: number;
  /** Width of the raw-bytes column, -1 without one. */
  private readonly rawWidth: number;
  private pos = 0;
  private slot: number;

  constructor(fn: FunctionSpec, options: { helpers?: boolean; raw?: boolean }, names: NameBytes) {
    this.names = names;
    const bytes = fn.bytes;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.littleEndian = fn.littleEndian;
    for (const r of fn.relocations) this.relocs.set(r.insn, r);
    this.helpers = options.helpers === true;
    this.slot = fn.offset / INSN_SLOT_SIZE;
    // The index column is as wide as the last index, the raw column as the widest entry: one walk over the opcodes.
    let lastSlot = this.slot;
    let widestEntry = 0;
    for (let pos = 0, slot = this.slot; pos < bytes.length;) {
      const size = insnSizeAt(bytes, pos);
      lastSlot = slot;
      if (size > widestEntry) widestEntry = size;
      slot += Math.ceil(size / INSN_SLOT_SIZE);
      pos += size;
    }
    this.indexWidth = decimalDigits(lastSlot);
    this.rawWidth = options.raw === true && widestEntry > 0 ? 3 * widestEntry - 1 : -1;
  }

  /** Writes lines until the chunk is full (then true: more may follow) or the function ends (false). */
  write(out: TextBytes): boolean {
    const { bytes, view, littleEndian, indexWidth, rawWidth } = this;
    const reserve = 8 + indexWidth + rawWidth + MAX_INSN_TEXT;
    let pos = this.pos;
    let slot = this.slot;
    while (pos < bytes.length && out.pos < CHUNK_BYTES) {
      out.reserve(reserve);
      out.spaces(2 + indexWidth - decimalDigits(slot));
      out.decimal(slot);
      out.put(INDEX_COLON);
      const size = insnSizeAt(bytes, pos);
      if (rawWidth >= 0) {
        writeRawHex(out, bytes, pos, pos + size);
        out.spaces(rawWidth - (3 * size - 1) + 2);
      }
      const helper = this.helpers && size === INSN_SLOT_SIZE && bytes[pos] === Opcode.CALL && callSrc(bytes[pos + 1]!, littleEndian) === CallSrc.HELPER
        ? helperCallText(view.getInt32(pos + 4, littleEndian))
        : undefined;
      if (helper !== undefined) {
        out.text(`call ${helper}`);
      } else {
        const start = out.pos;
        writeInsnText(out, bytes, view, pos, littleEndian);
        const reloc = this.relocs.get(slot);
        if (reloc !== undefined) annotateWritten(out, start, reloc, this.names);
      }
      out.byte(NEWLINE);
      slot += Math.ceil(size / INSN_SLOT_SIZE);
      pos += size;
    }
    this.pos = pos;
    this.slot = slot;
    return out.pos >= CHUNK_BYTES;
  }
}

const NEWLINE = 0x0a;
const TAB = 0x09;
const LL_SUFFIX = asciiBytes(' ll');
const CALL_PREFIX = asciiBytes('call');

/** The src register field of a call's register byte (its place depends on the byte order, as in decodeInsns). */
function callSrc(regs: number, littleEndian: boolean): number {
  return littleEndian ? regs >> 4 : regs & 0x0f;
}

/**
 * annotatedText() on the instruction text just written at `start`: `rN = <annotation> ll` for a ld_imm64 constant,
 * the annotation alone for a call it names, else `<text>  ; <annotation>`; the whole then passes printable() as
 * annotatedText's caller does, which changes only the text's tab (ld_pseudo's) and the target's name (escaped once
 * per name, see NameBytes).
 */
function annotateWritten(out: TextBytes, start: number, reloc: RelocationSpec, names: NameBytes): void {
  for (let i = start; i < out.pos; i++) {
    if (out.bytes[i] === TAB) {
      const text = printable(out.asciiSince(start));
      out.pos = start;
      out.text(text);
      break;
    }
  }
  const b = out.bytes; // text() may have moved the bytes
  const [before, after] = annotationAround(reloc);
  const registerEnd = ldConstantRegisterEnd(b, start, out.pos);
  if (registerEnd >= 0) {
    out.pos = registerEnd + 3; // keep `rN = `
    writeAnnotation(out, before, names.of(reloc.target), after);
    out.reserve(LL_SUFFIX.length);
    out.put(LL_SUFFIX);
  } else if (annotationIsCall(reloc, before) && startsWith(b, start, out.pos, CALL_PREFIX)) {
    out.pos = start;
    writeAnnotation(out, before, names.of(reloc.target), after);
  } else {
    out.reserve(ANNOTATION_SEPARATOR.length);
    out.put(ANNOTATION_SEPARATOR);
    writeAnnotation(out, before, names.of(reloc.target), after);
  }
  out.reserve(1); // the line's newline: the instruction's reserve did not count the annotation
}

/** annotate(reloc) starts with `call ` (a 'call' relocation, or a target named so after an empty prefix). */
function annotationIsCall(reloc: RelocationSpec, before: string): boolean {
  return (before === '' ? reloc.target : before).startsWith('call ');
}

function writeAnnotation(out: TextBytes, before: string, name: Uint8Array, after: string): void {
  out.text(before);
  out.reserve(name.length);
  out.put(name);
  out.text(after);
}

/** Names from the file as the listing shows them (printable, UTF-8), each escaped and encoded once. */
class NameBytes {
  private readonly known = new Map<string, Uint8Array>();

  of(name: string): Uint8Array {
    let bytes = this.known.get(name);
    if (bytes === undefined) {
      bytes = Buffer.from(printable(name), 'utf8');
      this.known.set(name, bytes);
    }
    return bytes;
  }
}

/** annotatedText's /^(r\d+) = .* ll$/ on bytes: the end of `rN` when the text is such a line, else -1. */
function ldConstantRegisterEnd(b: Uint8Array, start: number, end: number): number {
  if (b[start] !== 0x72) return -1;
  let i = start + 1;
  while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  if (i === start + 1 || end - i < 6) return -1;
  if (b[i] !== 0x20 || b[i + 1] !== 0x3d || b[i + 2] !== 0x20) return -1;
  return startsWith(b, end - LL_SUFFIX.length, end, LL_SUFFIX) ? i : -1;
}

function startsWith(b: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[start + i] !== prefix[i]) return false;
  return true;
}

/**
 * The relocation table, one row written at a time, as tableLines() lays it out: columns as wide as their widest
 * cell (names escaped by printable), two spaces between, trailing blanks trimmed. Names repeat across thousands of
 * rows, so each is escaped once.
 */
class RelocationTable {
  private readonly widths: number[] = RELOCATION_HEADER.map((h) => h.length);
  /** printable(name), or null when it is not all ASCII: such rows go through tableLines' own string code. */
  private readonly names = new Map<string, string | null>();

  constructor(relocations: readonly RelocationSpec[]) {
    const w = this.widths;
    for (const r of relocations) {
      w[0] = Math.max(w[0]!, this.cell(r.section).length);
      w[1] = Math.max(w[1]!, decimalDigits(r.insn));
      w[2] = Math.max(w[2]!, this.cell(r.program || '-').length);
      w[3] = Math.max(w[3]!, this.cell(r.symbol).length);
      w[4] = Math.max(w[4]!, this.cell(r.kind).length);
      w[5] = Math.max(w[5]!, this.cell(r.target).length);
    }
  }

  writeHeader(out: TextBytes): void {
    out.text(`${this.slowLine(RELOCATION_HEADER)}\n`);
  }

  /** Rows from `first` on until the chunk is full; returns the next row (a method's loop: see disassembly()). */
  writeRows(out: TextBytes, relocations: readonly RelocationSpec[], first: number): number {
    let i = first;
    while (i < relocations.length && out.pos < CHUNK_BYTES) this.writeRow(out, relocations[i++]!);
    return i;
  }

  private writeRow(out: TextBytes, r: RelocationSpec): void {
    const section = this.name(r.section);
    const program = this.name(r.program || '-');
    const symbol = this.name(r.symbol);
    const kind = this.name(r.kind);
    const target = this.name(r.target);
    if (section === null || program === null || symbol === null || kind === null || target === null) {
      out.text(`${this.slowLine([r.section, String(r.insn), r.program || '-', r.symbol, r.kind, r.target])}\n`);
      return;
    }
    const w = this.widths;
    out.reserve(2 + w[0]! + w[1]! + w[2]! + w[3]! + w[4]! + w[5]! + 2 * 5 + 1);
    const lineStart = out.pos;
    out.spaces(2);
    this.ascii(out, section, w[0]!);
    out.decimal(r.insn);
    out.spaces(w[1]! - decimalDigits(r.insn) + 2);
    this.ascii(out, program, w[2]!);
    this.ascii(out, symbol, w[3]!);
    this.ascii(out, kind, w[4]!);
    this.ascii(out, target, 0); // the last column's padding would be trimmed
    // trimEnd(): only spaces can trail here (printable escapes every other ASCII blank), never the indent.
    while (out.pos > lineStart + 2 && out.bytes[out.pos - 1] === 0x20) out.pos--;
    out.byte(NEWLINE);
  }

  /** An ASCII cell padded to `width`, then the two spaces between columns (trimmed at the line's end). */
  private ascii(out: TextBytes, text: string, width: number): void {
    const b = out.bytes;
    let pos = out.pos;
    for (let i = 0; i < text.length; i++) b[pos++] = text.charCodeAt(i);
    out.pos = pos;
    out.spaces(width - text.length + 2);
  }

  private name(text: string): string | null {
    let known = this.names.get(text);
    if (known === undefined) {
      const escaped = printable(text);
      known = /^[\x00-\x7f]*$/.test(escaped) ? escaped : null;
      this.names.set(text, known);
    }
    return known;
  }

  private cell(text: string): string {
    return this.name(text) ?? printable(text);
  }

  private slowLine(cells: readonly string[]): string {
    return tableLine(cells, this.widths);
  }
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
