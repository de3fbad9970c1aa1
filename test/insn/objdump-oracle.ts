/**
 * llvm-objdump as an oracle for the instruction formatter: runs `llvm-objdump -d` on an object, parses its listing
 * per section and compares every instruction line with what decodeInsns + formatInsn produce for the same bytes.
 */
import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElf, SectionFlags, SectionType } from '../../src/elf/index.js';
import { decodeInsns, formatInsn, formatRawHex, insnSlots, MAX_INSN_TEXT, writeInsnText, type Insn } from '../../src/insn/index.js';
import { TextBytes } from '../../src/base/text-bytes.js';

export interface ListingLine {
  /** Symbol header (`0000000000000018 <global_fn>:`): decoding restarts at this byte address. */
  readonly symbolAt?: number;
  /** `...`: llvm-objdump skipped a run of zero bytes. */
  readonly skip?: true;
  readonly bytes?: Uint8Array;
  readonly text?: string;
}

export interface ListingSection {
  readonly name: string;
  readonly lines: ListingLine[];
}

const SECTION_HEADER = 'Disassembly of section ';

/** Parses `llvm-objdump -d` output (hundreds of thousands of lines for the sweep: plain string scanning). */
export function parseListing(output: string): ListingSection[] {
  const sections: ListingSection[] = [];
  let current: ListingSection | undefined;
  let pos = 0;
  while (pos < output.length) {
    let eol = output.indexOf('\n', pos);
    if (eol < 0) eol = output.length;
    const line = output.slice(pos, eol);
    pos = eol + 1;
    if (line.startsWith(SECTION_HEADER) && line.endsWith(':')) {
      current = { name: line.slice(SECTION_HEADER.length, -1), lines: [] };
      sections.push(current);
      continue;
    }
    if (current === undefined || line.trim() === '') continue;
    const tab1 = line.indexOf(':\t');
    if (tab1 < 0) {
      if (line.trim() === '...') {
        current.lines.push({ skip: true });
        continue;
      }
      const symbol = /^([0-9a-f]{16}) <.*>:$/.exec(line);
      if (symbol === null) throw new Error(`unparsed llvm-objdump line in section ${current.name}: ${JSON.stringify(line)}`);
      current.lines.push({ symbolAt: Number.parseInt(symbol[1]!, 16) });
      continue;
    }
    const tab2 = line.indexOf('\t', tab1 + 2);
    if (!/^\s*\d+$/.test(line.slice(0, tab1)) || tab2 < 0) {
      throw new Error(`unparsed llvm-objdump line in section ${current.name}: ${JSON.stringify(line)}`);
    }
    const hex = line.slice(tab1 + 2, tab2);
    const bytes = new Uint8Array((hex.length + 1) / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 3, i * 3 + 2), 16);
    current.lines.push({ bytes, text: line.slice(tab2 + 1) });
  }
  return sections;
}

/**
 * Whitespace runs become one space (objdump separates `ld_pseudo` from its operands with a tab); objdump's trailing
 * `<label>` annotation of jump targets is dropped.
 */
export function normaliseText(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/ <[^<>]*>$/, '');
}

/** objdump says `<unknown>` where we say `<unknown: bytes>` (or `<truncated: bytes>` for an incomplete tail). */
function textsAgree(ours: string, theirs: string): boolean {
  if (ours === theirs) return true;
  const normal = normaliseText(theirs);
  if (normal === '<unknown>') return ours.startsWith('<unknown: ') || ours.startsWith('<truncated: ');
  return normaliseText(ours) === normal;
}

function byteLength(insn: Insn): number {
  return insn.truncated?.byteLength ?? insnSlots(insn) * 8;
}

function sameBytes(data: Uint8Array, at: number, bytes: Uint8Array): boolean {
  if (at + bytes.length > data.length) return false;
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false;
  return true;
}

/** llvm-objdump's countSkippableZeroBytes: a run of at least 8 zero bytes, skipped in multiples of 4. */
function skippableZeroBytes(bytes: Uint8Array, from: number, end: number): number {
  let n = 0;
  while (from + n < end && bytes[from + n] === 0) n++;
  return n < 8 ? 0 : n & ~3;
}

export interface SectionAgreement {
  compared: number;
  matched: number;
  /** One line per disagreement: where, our text, objdump's text. */
  mismatches: string[];
}

/**
 * Compares one section's listing with our decoding of `data`. Every objdump instruction line must start where one
 * of our entries starts, cover the same bytes and have the same text; every entry objdump did not print must lie in
 * a run of zero bytes it skipped.
 */
export function compareSection(data: Uint8Array, littleEndian: boolean, lines: readonly ListingLine[], where: string): SectionAgreement {
  const insns = decodeInsns(data, littleEndian);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const fromBytes = new TextBytes(MAX_INSN_TEXT);
  const byOffset = new Map<number, Insn>();
  let offset = 0;
  for (const insn of insns) {
    byOffset.set(offset, insn);
    offset += byteLength(insn);
  }
  const result: SectionAgreement = { compared: 0, matched: 0, mismatches: [] };
  const covered = new Set<number>();
  const symbolStarts = lines.flatMap((l) => (l.symbolAt === undefined ? [] : [l.symbolAt])).sort((a, b) => a - b);
  let cursor = 0;
  for (const line of lines) {
    if (line.symbolAt !== undefined) {
      cursor = line.symbolAt;
      continue;
    }
    if (line.skip === true) {
      const end = symbolStarts.find((s) => s > cursor) ?? data.byteLength;
      const n = skippableZeroBytes(data, cursor, end);
      if (n === 0) result.mismatches.push(`${where}: byte ${cursor}: objdump skipped bytes that are not a zero run`);
      for (const [at] of byOffset) if (at >= cursor && at < cursor + n) covered.add(at);
      cursor += n;
      continue;
    }
    const bytes = line.bytes!;
    const theirs = line.text!;
    const start = cursor;
    const at = () => `${where}: insn ${Math.floor(start / 8)} (byte ${start})`;
    if (!sameBytes(data, cursor, bytes)) {
      result.mismatches.push(`${at()}: objdump's bytes ${formatRawHex(bytes)} are not the section's`);
      cursor += bytes.length;
      continue;
    }
    // Bytes objdump prints one at a time belong to an incomplete tail: our truncated entry containing them.
    const ourStart = bytes.length < 8 ? [...byOffset.keys()].filter((o) => o <= cursor).pop() ?? -1 : cursor;
    const insn = byOffset.get(ourStart);
    cursor += bytes.length;
    if (insn === undefined || (bytes.length < 8 && insn.truncated === undefined)) {
      result.mismatches.push(`${at()}: objdump decodes "${theirs}" where we have no instruction starting`);
      continue;
    }
    if (bytes.length < 8 && covered.has(ourStart)) continue; // the rest of a tail already compared
    covered.add(ourStart);
    result.compared++;
    const ours = formatInsn(insn, littleEndian);
    const ourLength = byteLength(insn);
    // The listing's path (text written straight from the bytes) must say exactly what formatInsn says.
    fromBytes.pos = 0;
    const bytesSize = writeInsnText(fromBytes, data, view, ourStart, littleEndian);
    const bytesText = fromBytes.asciiSince(0);
    if (bytesText !== ours || bytesSize !== ourLength) {
      result.mismatches.push(`${at()}: from the bytes "${bytesText}" (${bytesSize} bytes), formatInsn "${ours}" (${ourLength} bytes)`);
    } else if (bytes.length >= 8 && ourLength !== bytes.length) {
      result.mismatches.push(`${at()}: we decode ${ourLength} bytes ("${ours}"), objdump ${bytes.length} ("${theirs}")`);
    } else if (!textsAgree(ours, theirs)) {
      result.mismatches.push(`${at()}: ours "${ours}", objdump "${theirs}"`);
    } else {
      result.matched++;
    }
  }
  for (const [at] of byOffset) {
    if (!covered.has(at)) result.mismatches.push(`${where}: byte ${at}: objdump printed nothing for our instruction`);
  }
  return result;
}

/** `objdump -d path`'s output. Goes through a file: a pipe makes a 40 MB listing several times slower to collect. */
function runObjdump(objdump: string, path: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bpf-load-objdump-'));
  try {
    const listingPath = join(dir, 'listing.txt');
    const fd = openSync(listingPath, 'w');
    let run;
    try {
      run = spawnSync(objdump, ['-d', path], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
    } finally {
      closeSync(fd);
    }
    if (run.status !== 0) throw new Error(`${objdump} -d ${path} failed (${run.status ?? run.signal}): ${run.stderr}`);
    return readFileSync(listingPath, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs objdump on `path` and compares every executable section. */
export function compareObject(objdump: string, path: string, bytes: Uint8Array, label: string): SectionAgreement {
  const listing = parseListing(runObjdump(objdump, path));
  const elf = readElf(bytes, { file: label });
  const total: SectionAgreement = { compared: 0, matched: 0, mismatches: [] };
  let next = 0;
  for (const section of elf.sections) {
    if ((section.flags & SectionFlags.EXECINSTR) === 0 || section.type === SectionType.NOBITS) continue;
    const block = listing[next];
    if (block === undefined || block.name !== section.name) {
      // objdump lists empty executable sections too, but tolerate it not doing so for ones with nothing to compare.
      if (section.size === 0) continue;
      total.mismatches.push(`${label}: section ${section.name} (#${section.index}): objdump lists ${block?.name ?? 'nothing'} here`);
      continue;
    }
    next++;
    const r = compareSection(section.data, elf.littleEndian, block.lines, `${label}: section ${section.name}`);
    total.compared += r.compared;
    total.matched += r.matched;
    total.mismatches.push(...r.mismatches);
  }
  for (const extra of listing.slice(next)) total.mismatches.push(`${label}: objdump lists section ${extra.name} we did not compare`);
  return total;
}
