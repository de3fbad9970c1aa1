import { INSN_SLOT_SIZE } from '../base/uapi.js';
import { FUNC_INFO_SIZE, LINE_INFO_SIZE } from '../btf/index.js';
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
 * line_info records are copied as they lie in the file (only insn_off is rewritten): no record is decoded.
 * Undefined when some function has no func_info record (the kernel wants one per function, or none at all).
 */
export function programBtfInfo(spec: BpfObjectSpec, layout: ReadonlyArray<{ fn: ProgramSpec | SubprogramSpec; start: number }>): ProgramBtfInfo | undefined {
  const ext = spec.btfExt;
  if (ext === undefined) return undefined;
  const le = spec.littleEndian;
  const funcInfo = new Uint8Array(layout.length * FUNC_INFO_SIZE);
  const funcView = new DataView(funcInfo.buffer);
  const slices: Array<{ block: RecordBlock; first: number; last: number; fn: ProgramSpec | SubprogramSpec; start: number }> = [];
  let lineCount = 0;
  for (const [i, { fn, start }] of layout.entries()) {
    const end = fn.offset + fn.bytes.byteLength;
    const f = recordsWithin(ext.funcInfo.get(fn.section) ?? [], fn.offset, end);
    if (f.length !== 1 || f[0]!.insnOff !== fn.offset) return undefined;
    funcView.setUint32(i * FUNC_INFO_SIZE, start, le);
    funcView.setUint32(i * FUNC_INFO_SIZE + 4, f[0]!.typeId, le);
    const bytes = ext.lineInfoBytes.get(fn.section);
    if (bytes === undefined) continue;
    const block = recordBlock(bytes, ext.lineInfoRecSize, le);
    const [first, last] = recordsIn(block, fn.offset, end);
    if (first === last) continue;
    slices.push({ block, first, last, fn, start });
    lineCount += last - first;
  }
  // Written in layout order: each function's records are sorted by offset and functions are laid out one after
  // another, so the kernel's order (by instruction) holds unless a section lists its records out of order.
  const lineInfo = new Uint8Array(lineCount * LINE_INFO_SIZE);
  const lineView = new DataView(lineInfo.buffer);
  let p = 0;
  let previous = -1;
  let sorted = true;
  for (const { block, first, last, fn, start } of slices) {
    const end = p + (last - first) * LINE_INFO_SIZE;
    if (block.order === undefined && block.recSize === LINE_INFO_SIZE) {
      // The kernel's own layout, in order: one copy of the function's records, then insn_off rewritten in place.
      lineInfo.set(block.bytes.subarray(first * LINE_INFO_SIZE, last * LINE_INFO_SIZE), p);
    } else {
      for (let k = first, q = p; k < last; k++, q += LINE_INFO_SIZE) {
        // Larger or out-of-order records: word by word (insn_off, file_name_off, line_off, line_col).
        const at = recordAt(block, k);
        for (let w = 0; w < LINE_INFO_SIZE; w += 4) lineView.setUint32(q + w, block.view.getUint32(at + w, le), le);
      }
    }
    for (; p < end; p += LINE_INFO_SIZE) {
      const index = start + (lineView.getUint32(p, le) - fn.offset) / INSN_SLOT_SIZE;
      if (index < previous) sorted = false;
      previous = index;
      lineView.setUint32(p, index, le);
    }
  }
  return { funcInfo, lineInfo: sorted ? lineInfo : sortRecords(lineInfo, LINE_INFO_SIZE, le) };
}

/** Fixed-size records sorted by their first u32 (the instruction index), stable. */
function sortRecords(bytes: Uint8Array, size: number, le: boolean): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const order = Array.from({ length: bytes.byteLength / size }, (_, i) => i);
  order.sort((a, b) => view.getUint32(a * size, le) - view.getUint32(b * size, le) || a - b);
  const out = new Uint8Array(bytes.byteLength);
  order.forEach((from, to) => out.set(bytes.subarray(from * size, from * size + size), to * size));
  return out;
}

/**
 * One section's line_info records in the file, `recSize` bytes each with insn_off first, addressed in insn_off order:
 * file order, which compilers keep, or (`order`) a stable sort of their indices. The parser has checked every record,
 * so reads go straight to the view.
 */
interface RecordBlock {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly recSize: number;
  readonly count: number;
  readonly littleEndian: boolean;
  readonly order: readonly number[] | undefined;
}

/** Blocks by their bytes: a section's block serves every program of the section (its order checked once). */
const recordBlocks = new WeakMap<Uint8Array, RecordBlock>();

function recordBlock(bytes: Uint8Array, recSize: number, littleEndian: boolean): RecordBlock {
  const known = recordBlocks.get(bytes);
  if (known !== undefined) return known;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / recSize;
  const fileOff = (i: number) => view.getUint32(i * recSize, littleEndian);
  let sorted = true;
  for (let i = 1; i < count && sorted; i++) sorted = fileOff(i - 1) <= fileOff(i);
  let order: number[] | undefined;
  if (!sorted) {
    order = Array.from({ length: count }, (_, i) => i);
    order.sort((a, b) => fileOff(a) - fileOff(b) || a - b);
  }
  const block: RecordBlock = { bytes, view, recSize, count, littleEndian, order };
  recordBlocks.set(bytes, block);
  return block;
}

/** Byte offset of the k-th record in insn_off order. */
function recordAt(block: RecordBlock, k: number): number {
  return (block.order === undefined ? k : block.order[k]!) * block.recSize;
}

/** [first, last): the records of `block` with insn_off in [from, to). */
function recordsIn(block: RecordBlock, from: number, to: number): [number, number] {
  const lowerBound = (offset: number, lo: number): number => {
    let hi = block.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (block.view.getUint32(recordAt(block, mid), block.littleEndian) < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const first = lowerBound(from, 0);
  return [first, lowerBound(to, first)];
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
