import { INSN_SLOT_SIZE } from '../base/uapi.js';
import { FUNC_INFO_SIZE, LINE_INFO_SIZE, type BtfLineInfo } from '../btf/index.js';
import type { BpfObjectSpec, ProgramSpec, SubprogramSpec } from '../object/index.js';
import { btfLoad, Fd, SysError } from '../sys/index.js';


/**
 * Sends the object's BTF to the kernel. When the kernel rejects it the object still loads without BTF (maps without
 * key/value types, programs without func/line info) and `warn` says so in one line, as libbpf does.
 */
export function loadObjectBtf(spec: BpfObjectSpec, warn: (message: string) => void): Fd | undefined {
  if (spec.btfProblem !== undefined) warn(`ignoring the object's BTF: ${spec.btfProblem}`);
  if (spec.btf === undefined) return undefined;
  try {
    return new Fd(btfLoad({ btf: spec.btf.raw }), `${spec.file}: BTF`);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const log = Buffer.alloc(1 << 16);
    let reason = e.message;
    try {
      // Asked again only for the log; should it pass this time, the fd is not wanted.
      new Fd(btfLoad({ btf: spec.btf.raw, logBuf: log, logLevel: 1 }), `${spec.file}: BTF (log)`).close();
    } catch {
      const text = log.subarray(0, Math.max(0, log.indexOf(0))).toString('utf8').trim().split('\n').at(-1);
      if (text !== undefined && text !== '') reason = `${e.code}: ${text}`;
    }
    warn(`the kernel rejected the object's BTF (${reason}); loading without it`);
    return undefined;
  }
}

export interface ProgramBtfInfo {
  readonly funcInfo: Uint8Array;
  readonly lineInfo: Uint8Array;
}

/**
 * func_info and line_info for a program as the loader laid it out (the program, then each appended subprogram):
 * records of each function's section are taken from .BTF.ext and their offsets moved to the function's place.
 * Undefined when some function has no func_info record (the kernel wants one per function, or none at all).
 */
export function programBtfInfo(spec: BpfObjectSpec, layout: ReadonlyArray<{ fn: ProgramSpec | SubprogramSpec; start: number }>): ProgramBtfInfo | undefined {
  const ext = spec.btfExt;
  if (ext === undefined) return undefined;
  const funcInfo = Buffer.alloc(layout.length * FUNC_INFO_SIZE);
  const lineSlices: Array<{ records: readonly BtfLineInfo[]; fn: ProgramSpec | SubprogramSpec; start: number }> = [];
  let lineCount = 0;
  for (const [i, { fn, start }] of layout.entries()) {
    const end = fn.offset + fn.bytes.byteLength;
    const f = recordsWithin(ext.funcInfo.get(fn.section) ?? [], fn.offset, end);
    if (f.length !== 1 || f[0]!.insnOff !== fn.offset) return undefined;
    funcInfo.writeUInt32LE(start, i * FUNC_INFO_SIZE);
    funcInfo.writeUInt32LE(f[0]!.typeId, i * FUNC_INFO_SIZE + 4);
    const records = recordsWithin(ext.lineInfo.get(fn.section) ?? [], fn.offset, end);
    lineSlices.push({ records, fn, start });
    lineCount += records.length;
  }
  // Written in layout order: each function's records are sorted by offset and functions are laid out one after
  // another, so the kernel's order (by instruction) holds unless a section lists its records out of order.
  const lineInfo = Buffer.alloc(lineCount * LINE_INFO_SIZE);
  let p = 0;
  let previous = -1;
  let sorted = true;
  for (const { records, fn, start } of lineSlices) {
    for (const l of records) {
      const index = start + (l.insnOff - fn.offset) / INSN_SLOT_SIZE;
      if (index < previous) sorted = false;
      previous = index;
      lineInfo.writeUInt32LE(index, p);
      lineInfo.writeUInt32LE(l.fileNameOff, p + 4);
      lineInfo.writeUInt32LE(l.lineOff, p + 8);
      lineInfo.writeUInt32LE(((l.lineNumber << 10) | (l.column & 0x3ff)) >>> 0, p + 12);
      p += LINE_INFO_SIZE;
    }
  }
  return { funcInfo, lineInfo: sorted ? lineInfo : sortRecords(lineInfo, LINE_INFO_SIZE) };
}

/** Fixed-size records sorted by their first u32 (the instruction index), stable. */
function sortRecords(bytes: Buffer, size: number): Buffer {
  const order = Array.from({ length: bytes.byteLength / size }, (_, i) => i);
  order.sort((a, b) => bytes.readUInt32LE(a * size) - bytes.readUInt32LE(b * size) || a - b);
  const out = Buffer.alloc(bytes.byteLength);
  order.forEach((from, to) => bytes.copy(out, to * size, from * size, from * size + size));
  return out;
}

/** Which record lists are sorted by insnOff (compilers write them so): those are searched, not scanned. */
const sortedByOffset = new WeakMap<readonly { insnOff: number }[], boolean>();

/** The records of `list` with insnOff in [from, to), in list order. */
function recordsWithin<T extends { insnOff: number }>(list: readonly T[], from: number, to: number): readonly T[] {
  let sorted = sortedByOffset.get(list);
  if (sorted === undefined) {
    sorted = list.every((r, i) => i === 0 || list[i - 1]!.insnOff <= r.insnOff);
    sortedByOffset.set(list, sorted);
  }
  if (!sorted) return list.filter((r) => r.insnOff >= from && r.insnOff < to);
  const first = lowerBound(list, from);
  return list.slice(first, lowerBound(list, to, first));
}

/** The first index at or after `lo` whose insnOff is ≥ `offset` (list sorted by insnOff). */
function lowerBound(list: readonly { insnOff: number }[], offset: number, lo = 0): number {
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.insnOff < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** CO-RE relocation records inside the program's functions (the loader applies them only when there are some). */
export function coreRelocationCount(spec: BpfObjectSpec, layout: ReadonlyArray<{ fn: ProgramSpec | SubprogramSpec }>): number {
  const ext = spec.btfExt;
  if (ext === undefined) return 0;
  let n = 0;
  for (const { fn } of layout) {
    for (const r of ext.coreRelos.get(fn.section) ?? []) if (r.insnOff >= fn.offset && r.insnOff < fn.offset + fn.bytes.byteLength) n++;
  }
  return n;
}
