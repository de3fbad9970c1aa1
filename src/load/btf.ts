import { FUNC_INFO_SIZE, LINE_INFO_SIZE } from '../btf/index.js';
import type { BpfObjectSpec, ProgramSpec, SubprogramSpec } from '../object/index.js';
import { btfLoad, SysError } from '../sys/index.js';


/**
 * Sends the object's BTF to the kernel. When the kernel rejects it the object still loads without BTF (maps without
 * key/value types, programs without func/line info) and `warn` says so in one line, as libbpf does.
 */
export function loadObjectBtf(spec: BpfObjectSpec, warn: (message: string) => void): number | undefined {
  if (spec.btfProblem !== undefined) warn(`ignoring the object's BTF: ${spec.btfProblem}`);
  if (spec.btf === undefined) return undefined;
  try {
    return btfLoad({ btf: spec.btf.raw });
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const log = Buffer.alloc(1 << 16);
    let reason = e.message;
    try {
      btfLoad({ btf: spec.btf.raw, logBuf: log, logLevel: 1 });
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
  const funcs: Array<[number, number]> = [];
  const lines: Array<[number, number, number, number]> = [];
  for (const { fn, start } of layout) {
    const end = fn.offset + fn.bytes.byteLength;
    const within = (insnOff: number) => insnOff >= fn.offset && insnOff < end;
    const toIndex = (insnOff: number) => start + (insnOff - fn.offset) / 8;
    const f = (ext.funcInfo.get(fn.section) ?? []).filter((r) => within(r.insnOff));
    if (f.length !== 1 || f[0]!.insnOff !== fn.offset) return undefined;
    funcs.push([toIndex(f[0]!.insnOff), f[0]!.typeId]);
    for (const l of ext.lineInfo.get(fn.section) ?? []) {
      if (within(l.insnOff)) lines.push([toIndex(l.insnOff), l.fileNameOff, l.lineOff, (l.lineNumber << 10) | (l.column & 0x3ff)]);
    }
  }
  lines.sort((a, b) => a[0] - b[0]);
  const funcInfo = Buffer.alloc(funcs.length * FUNC_INFO_SIZE);
  funcs.forEach(([off, type], i) => {
    funcInfo.writeUInt32LE(off, i * FUNC_INFO_SIZE);
    funcInfo.writeUInt32LE(type, i * FUNC_INFO_SIZE + 4);
  });
  const lineInfo = Buffer.alloc(lines.length * LINE_INFO_SIZE);
  lines.forEach((l, i) => l.forEach((v, j) => lineInfo.writeUInt32LE(v >>> 0, i * LINE_INFO_SIZE + j * 4)));
  return { funcInfo, lineInfo };
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
