import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../base/cursor.js';
import { BpfLoadError, withContext } from '../base/errors.js';
import { HELPER_NAMES, helperCallText, INSN_SLOT_SIZE } from '../base/uapi.js';
import { parseBtf, type Btf } from '../btf/index.js';
import { CallSrc } from '../base/uapi.js';
import { decodeInsns, formatInsn, insnSlots, isCall, isLdImm64 } from '../insn/index.js';
import {
  btfGetFdById, btfRawData, Errno, Fd, linkGetFdById, linkGetNextId, linkInfo, mapGetFdById, mapGetNextId, mapInfo,
  objGet, possibleCpuCount, progGetFdById, progGetNextId, progInfo, progInstructions, SysError,
  type LinkInfo, type MapInfo, type ProgInfo,
} from '../sys/index.js';
import { MapHandle } from './map-handle.js';
import type { MapSpec } from '../object/index.js';

/** A program, map or link asked for by id or pinned path that cannot be opened or read. */
export class InspectError extends BpfLoadError {
  override name = 'InspectError';
}

/** `12` (an id) or a path to a pin in bpffs. */
export type KernelObjectRef = number | string;

type Kind = 'program' | 'map' | 'link';

/**
 * Every id of one kind, each opened, read and closed. Objects freed between "next id" and "open" (ENOENT) are
 * skipped: the kernel's list moves under us.
 */
function eachObject<T>(kind: Kind, next: (id: number) => number | undefined, open: (id: number) => number, read: (fd: number) => T): T[] {
  const out: T[] = [];
  for (let id = next(0); id !== undefined; id = next(id)) {
    let fd: number;
    try {
      fd = open(id);
    } catch (e) {
      if (e instanceof SysError && e.errno === Errno.ENOENT) continue;
      throw e;
    }
    out.push(Fd.with(fd, `${kind} id ${id}`, (owned) => read(owned.value)));
  }
  return out;
}

/** Opens an id or pinned path of `kind`; the message says which and why when it cannot. */
function openRef(kind: Kind, ref: KernelObjectRef, byId: (id: number) => number): Fd {
  const what = typeof ref === 'number' ? `${kind} id ${ref}` : ref;
  try {
    return new Fd(typeof ref === 'number' ? byId(ref) : objGet(ref), `${kind} ${what}`);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const cause = e.errno === Errno.ENOENT ? (typeof ref === 'number' ? `no such ${kind}` : 'no such pin') : e.message;
    throw new InspectError(withContext([what], cause), { cause: e });
  }
}

/** Reads with `read`, checking that the pin held the kind asked for (a pinned map is not a program). */
function readRef<T extends { readonly typeName: string }>(kind: Kind, ref: KernelObjectRef, fd: Fd, read: (fd: number) => T): T {
  try {
    return read(fd.value);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    throw new InspectError(withContext([typeof ref === 'number' ? `${kind} id ${ref}` : ref], `not a ${kind}: ${e.message}`), { cause: e });
  }
}

export interface KernelProgram extends ProgInfo {
  /** Wall-clock load time (the kernel records ns since boot). */
  readonly loadedAt: Date;
  /** Where BPF links attach it (`xdp lo`, `cgroup /sys/fs/cgroup ingress` …); attachments without links do not show. */
  readonly attachedAt: readonly string[];
}

export interface KernelLink extends LinkInfo {
  /** Where it attaches, for people: `lo`, `/sys/fs/cgroup/x (cgroup_inet_ingress)`, `sys_enter` … */
  readonly target: string;
}

/** Every BPF program in the kernel (ids ascending), with where links attach it. Needs root (CAP_SYS_ADMIN). */
export function listPrograms(): KernelProgram[] {
  const boot = bootTimeMs();
  const links = listLinks();
  return eachObject('program', progGetNextId, progGetFdById, (fd) => {
    const info = progInfo(fd);
    return {
      ...info,
      loadedAt: new Date(boot + Number(info.loadTime / 1_000_000n)),
      attachedAt: links.filter((l) => l.progId === info.id).map((l) => `${l.typeName} ${l.target}`.trim()),
    };
  });
}

/** Every BPF map in the kernel (ids ascending). */
export function listMaps(): MapInfo[] {
  return eachObject('map', mapGetNextId, (id) => mapGetFdById(id), mapInfo);
}

/** Every BPF link in the kernel (ids ascending), with its target described. */
export function listLinks(): KernelLink[] {
  const names = new InterfaceNames();
  return eachObject('link', linkGetNextId, linkGetFdById, (fd) => {
    const info = linkInfo(fd);
    return { ...info, target: linkTarget(info, names) };
  });
}

function linkTarget(l: LinkInfo, names: InterfaceNames): string {
  const attach = l.attachTypeName === undefined ? '' : ` (${l.attachTypeName})`;
  if (l.tpName !== undefined) return l.tpName;
  if (l.ifindex !== undefined) return names.of(l.ifindex);
  if (l.cgroupId !== undefined) return `${cgroupPath(l.cgroupId) ?? `cgroup id ${l.cgroupId}`}${attach}`;
  if (l.netnsIno !== undefined) return `netns ${l.netnsIno}${attach}`;
  if (l.targetBtfId !== undefined) return `btf id ${l.targetBtfId}${l.targetObjId ? ` of object ${l.targetObjId}` : ''}${attach}`;
  return '';
}

/** ifindex → name through sysfs (read once, on first use). */
class InterfaceNames {
  #byIndex: Map<number, string> | undefined;
  of(ifindex: number): string {
    this.#byIndex ??= new Map(safeReaddir('/sys/class/net').flatMap((name) => {
      try {
        return [[Number(readFileSync(join('/sys/class/net', name, 'ifindex'), 'utf8')), name] as const];
      } catch {
        return [];
      }
    }));
    return this.#byIndex.get(ifindex) ?? `ifindex ${ifindex}`;
  }
}

/** On cgroup v2 a cgroup's id is its directory's inode number: find the directory (breadth-first, bounded). */
function cgroupPath(id: bigint): string | undefined {
  const root = '/sys/fs/cgroup';
  const queue = [root];
  for (let visited = 0; queue.length > 0 && visited < 10_000; visited++) {
    const dir = queue.shift()!;
    try {
      if (statSync(dir, { bigint: true }).ino === id) return dir;
    } catch {
      continue;
    }
    for (const entry of safeReaddir(dir, true)) queue.push(join(dir, entry));
  }
  return undefined;
}

function safeReaddir(dir: string, directoriesOnly = false): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => !directoriesOnly || d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/** CLOCK_REALTIME at boot, in ms: now minus /proc/uptime (10 ms resolution, enough for "loaded at"). */
function bootTimeMs(): number {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return Date.now() - uptime * 1000;
}

// ---------------------------------------------------------------------------------------------------------------
// One program's instructions

export interface XlatedInsn {
  /** Slot index, as the kernel numbers the translated program. */
  readonly index: number;
  readonly raw: string;
  readonly text: string;
  /** The source line BTF line info puts at this instruction (`; text @ file:line` in bpftool). */
  readonly source?: { readonly file: string; readonly line: number; readonly text: string };
}

export interface ProgramDump {
  readonly info: KernelProgram;
  readonly maps: readonly MapInfo[];
  readonly insns: readonly XlatedInsn[];
}

/** The facts a translated program's disassembly needs from the kernel, passed in so it disassembles without one. */
export interface XlatedContext {
  /** Map names by id (ld_imm64 of a map holds its id after translation). */
  readonly mapNames: ReadonlyMap<number, string>;
  /** Kernel symbol at __bpf_call_base + imm (a helper call's imm after translation), when known. */
  readonly symbolAt?: (imm: number) => string | undefined;
  /** The program's BTF, for its line info. */
  readonly btf?: Btf;
  /** struct bpf_line_info records. */
  readonly lineInfo?: Uint8Array;
  readonly lineInfoRecSize?: number;
}

const PSEUDO_MAP_FD = 1;
const PSEUDO_MAP_VALUE = 2;

/**
 * Disassembles the kernel's translated instructions: map references by name, helper calls by name (`call
 * bpf_map_lookup_elem#1`, or the kernel function the verifier put there), source lines from line info. Pure.
 */
export function disassembleXlated(xlated: Uint8Array, context: XlatedContext): XlatedInsn[] {
  const sources = lineSources(context);
  const out: XlatedInsn[] = [];
  let slot = 0;
  for (const insn of decodeInsns(xlated, true)) {
    const slots = insn.truncated === undefined ? insnSlots(insn) : 1;
    let text = formatInsn(insn);
    if (isLdImm64(insn) && (insn.src === PSEUDO_MAP_FD || insn.src === PSEUDO_MAP_VALUE)) {
      const id = insn.imm >>> 0;
      const name = context.mapNames.get(id) ?? `id:${id}`;
      const offset = Number((insn.imm64 ?? 0n) >> 32n);
      text = `r${insn.dst} = map[${name}]${insn.src === PSEUDO_MAP_VALUE ? `+${offset}` : ''} ll`;
    } else if (isCall(insn) && insn.src === CallSrc.HELPER) {
      text = `call ${helperCallName(insn.imm, context.symbolAt)}`;
    }
    const source = sources.get(slot);
    const raw = toHex(xlated.subarray(slot * INSN_SLOT_SIZE, (slot + slots) * INSN_SLOT_SIZE));
    out.push(source === undefined ? { index: slot, raw, text } : { index: slot, raw, text, source });
    slot += slots;
  }
  return out;
}

/**
 * A helper call's name. Before translation (and for tail calls, which the kernel dumps that way) the imm is the
 * helper id; after, it is the address of the kernel function relative to __bpf_call_base, which kallsyms names.
 */
export function helperCallName(imm: number, symbolAt?: (imm: number) => string | undefined): string {
  const byId = helperCallText(imm);
  if (byId !== undefined) return byId;
  const symbol = symbolAt?.(imm);
  if (symbol === undefined) return `${imm}`;
  const id = HELPER_NAMES.indexOf(symbol.replace(/^bpf_/, ''));
  return id > 0 ? `${symbol}#${id}` : symbol;
}

function lineSources(context: XlatedContext): Map<number, NonNullable<XlatedInsn['source']>> {
  const out = new Map<number, NonNullable<XlatedInsn['source']>>();
  const { btf, lineInfo, lineInfoRecSize } = context;
  if (btf === undefined || lineInfo === undefined || lineInfoRecSize === undefined || lineInfoRecSize < 16) return out;
  const view = new DataView(lineInfo.buffer, lineInfo.byteOffset, lineInfo.byteLength);
  for (let at = 0; at + lineInfoRecSize <= lineInfo.byteLength; at += lineInfoRecSize) {
    const insnOff = view.getUint32(at, true);
    const fileOff = view.getUint32(at + 4, true);
    const lineOff = view.getUint32(at + 8, true);
    const lineCol = view.getUint32(at + 12, true);
    if (!btf.hasString(fileOff) || !btf.hasString(lineOff)) continue;
    const text = btf.string(lineOff).trim();
    if (text === '') continue;
    out.set(insnOff, { file: btf.string(fileOff).split('/').at(-1)!, line: lineCol >>> 10, text });
  }
  return out;
}

/** A loaded program's translated instructions, disassembled with the kernel's names for its maps and helpers. */
export function dumpProgram(ref: KernelObjectRef): ProgramDump {
  const fd = openRef('program', ref, progGetFdById);
  try {
    const info = readRef('program', ref, fd, progInfo);
    const code = progInstructions(fd.value);
    const maps = info.mapIds.flatMap((id) => {
      try {
        return [Fd.with(mapGetFdById(id), `map id ${id}`, (mapFd) => mapInfo(mapFd.value))];
      } catch {
        return [];
      }
    });
    const btf = info.btfId === 0 ? undefined : kernelBtf(info.btfId);
    const insns = disassembleXlated(code.xlated, {
      mapNames: new Map(maps.map((m) => [m.id, m.name])),
      symbolAt: kallsymsResolver(code.xlated),
      ...(btf === undefined ? {} : { btf, lineInfo: code.lineInfo, lineInfoRecSize: code.lineInfoRecSize }),
    });
    const boot = bootTimeMs();
    const links = listLinks().filter((l) => l.progId === info.id);
    return {
      info: { ...info, loadedAt: new Date(boot + Number(info.loadTime / 1_000_000n)), attachedAt: links.map((l) => `${l.typeName} ${l.target}`.trim()) },
      maps,
      insns,
    };
  } finally {
    fd.close();
  }
}

/** The BTF object `id` as the kernel holds it, parsed; undefined when it cannot be read. */
function kernelBtf(id: number): Btf | undefined {
  try {
    return Fd.with(btfGetFdById(id), `BTF id ${id}`, (fd) => parseBtf(btfRawData(fd.value), true, { file: `BTF id ${id}` }));
  } catch (e) {
    if (e instanceof BpfLoadError) return undefined;
    throw e;
  }
}

/**
 * Names the helper-call targets of translated instructions through /proc/kallsyms (root sees addresses). Scans the
 * file once for just the addresses needed.
 */
function kallsymsResolver(xlated: Uint8Array): (imm: number) => string | undefined {
  const imms = decodeInsns(xlated, true).filter((i) => isCall(i) && i.src === CallSrc.HELPER && !(i.imm > 0 && i.imm < HELPER_NAMES.length)).map((i) => i.imm);
  if (imms.length === 0) return () => undefined;
  let text: string;
  try {
    text = readFileSync('/proc/kallsyms', 'utf8');
  } catch {
    return () => undefined;
  }
  const base = /^([0-9a-f]+) [Tt] __bpf_call_base$/m.exec(text);
  if (base === null || /^0+$/.test(base[1]!)) return () => undefined;
  const baseAddress = BigInt(`0x${base[1]}`);
  const wanted = new Map(imms.map((imm) => [(baseAddress + BigInt(imm)).toString(16).padStart(16, '0'), imm]));
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    const imm = wanted.get(line.slice(0, 16));
    if (imm !== undefined && !names.has(imm)) names.set(imm, line.split(' ')[2]!.split('\t')[0]!);
  }
  return (imm) => names.get(imm);
}

// ---------------------------------------------------------------------------------------------------------------
// One map

/** A handle on a map the kernel holds (by id or pin), decoded through its BTF when it has one. close() it. */
export function openMap(ref: KernelObjectRef): { readonly info: MapInfo; readonly handle: MapHandle; readonly btf: Btf | undefined } {
  const fd = openRef('map', ref, (id) => mapGetFdById(id));
  try {
    const info = readRef('map', ref, fd, mapInfo);
    const btf = info.btfId === 0 ? undefined : kernelBtf(info.btfId);
    const spec: MapSpec = {
      name: info.name, index: 0, source: btf === undefined ? 'legacy' : 'btf', section: '', offset: 0, type: info.type,
      typeName: info.typeName as MapSpec['typeName'], keySize: info.keySize, valueSize: info.valueSize, maxEntries: info.maxEntries,
      flags: info.mapFlags, numaNode: 0, innerMapIndex: undefined, innerMap: undefined, pinning: 'none', definitionSize: 0,
      definition: new Uint8Array(0),
      ...(info.btfKeyTypeId === 0 ? {} : { btfKeyTypeId: info.btfKeyTypeId }),
      ...(info.btfValueTypeId === 0 ? {} : { btfValueTypeId: info.btfValueTypeId }),
    };
    const handle = new MapHandle({ spec, fd, cpus: possibleCpuCount(), ...(btf === undefined ? {} : { btf }) });
    return { info, handle, btf };
  } catch (e) {
    fd.closeQuietly();
    throw e;
  }
}
