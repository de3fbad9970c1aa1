import { endianness, release } from 'node:os';
import { BpfLoadError, withContext } from '../base/errors.js';
import { attachTypeValue, MapFlags, mapTypeValue, progTypeValue, type MapTypeName } from '../base/uapi.js';
import type { BpfObjectSpec, MapSpec, ProgramSpec } from '../object/index.js';
import {
  closeFd, Errno, mapCreate, mapFreeze, mapInfo, mapUpdateElem, possibleCpuCount, progInfo, progLoad, SysError,
  type ProgInfo,
} from '../sys/index.js';
import { VerifierError } from './errors.js';
import { MapHandle } from './map-handle.js';
import { RelocationError, relocateProgram } from './relocate.js';

/** A step of loading failed; the message says which object, map or program, and why. */
export class LoadError extends BpfLoadError {
  override name = 'LoadError';
}

/** A map definition as bpf_load.c's fixup_map callback saw it: edit it, or set `fd` to use an existing map. */
export interface MapFixup {
  readonly name: string;
  readonly index: number;
  readonly spec: MapSpec;
  def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; numaNode: number; innerMapIndex: number | undefined };
  /** An existing map to use instead of creating one. The loader does not close it. */
  fd: number | undefined;
}

export interface LoadOptions {
  /** bpf_load.c's load_bpf_file_fixup_map: called for every map, in index order, before it is created. */
  fixupMap?: (map: MapFixup, index: number) => void;
  /** Verifier log level used when a program is rejected: 1 (default) or 2 (every instruction's state). */
  logLevel?: 1 | 2;
  /** kern_version sent with programs when the object has no `version` section (default: the running kernel's). */
  kernVersion?: number;
  /** What to do when a program cannot be loaded: 'throw' (default, as bpf_load.c) or 'skip' it and go on. */
  onProgramError?: 'throw' | 'skip';
  /** Non-fatal notes: programs skipped, tail-call slots without a prog array, … */
  onWarning?: (message: string) => void;
}

export interface LoadedProgram {
  readonly spec: ProgramSpec;
  readonly name: string;
  readonly section: string;
  readonly type: string;
  readonly fd: number;
  readonly id: number;
  readonly tag: string;
  readonly info: ProgInfo;
  /** The instructions the kernel received (after relocation). */
  readonly insns: Uint8Array;
}

export interface SkippedProgram {
  readonly spec: ProgramSpec;
  readonly reason: string;
  readonly error?: BpfLoadError;
}

/** Everything a load created. Close it (or `using` it) to release every fd; links from attach are tracked too. */
export class LoadedObject implements Disposable {
  readonly spec: BpfObjectSpec;
  readonly maps: readonly MapHandle[];
  readonly programs: readonly LoadedProgram[];
  readonly skipped: readonly SkippedProgram[];
  private readonly cleanups: Array<() => void> = [];
  private closed = false;

  constructor(spec: BpfObjectSpec, maps: MapHandle[], programs: LoadedProgram[], skipped: SkippedProgram[]) {
    this.spec = spec;
    this.maps = maps;
    this.programs = programs;
    this.skipped = skipped;
  }

  map(name: string): MapHandle {
    const m = this.maps.find((x) => x.name === name);
    if (m === undefined) throw new LoadError(withContext([this.spec.file], `no map named ${name} (maps: ${this.maps.map((x) => x.name).join(', ') || 'none'})`));
    return m;
  }

  program(name: string): LoadedProgram {
    const p = this.programs.find((x) => x.name === name || x.section === name);
    if (p === undefined) throw new LoadError(withContext([this.spec.file], `no loaded program named ${name} (programs: ${this.programs.map((x) => x.name).join(', ') || 'none'})`));
    return p;
  }

  /** Registers something to undo at close(), run in reverse order before fds are closed (links, sockets …). */
  onClose(cleanup: () => void): void {
    if (this.closed) {
      cleanup();
      return;
    }
    this.cleanups.push(cleanup);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Undoes attachments, then closes every program and map fd. Safe to call twice. Throws the first failure last. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const c of this.cleanups.reverse()) attempt(c);
    for (const p of this.programs) attempt(() => closeFd(p.fd));
    for (const m of this.maps) attempt(() => m.close());
    if (errors.length > 0) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Spec → kernel objects: maps created in index order (inner maps before the maps that hold them), fds written into a
 * copy of each program's instructions, programs loaded (with the verifier log fetched only on failure), tail-call
 * slots stored in the prog array. Any failure closes everything created so far before throwing.
 */
export function loadObject(spec: BpfObjectSpec, options: LoadOptions = {}): LoadedObject {
  const hostLittle = endianness() === 'LE';
  if (spec.littleEndian !== hostLittle) {
    throw new LoadError(withContext([spec.file],
      `object is ${spec.littleEndian ? 'little' : 'big'}-endian (bpf${spec.littleEndian ? 'el' : 'eb'}) but this machine runs ${hostLittle ? 'little' : 'big'}-endian BPF; rebuild it with -target bpf`));
  }
  const maps: MapHandle[] = [];
  const programs: LoadedProgram[] = [];
  const skipped: SkippedProgram[] = [];
  const warn = options.onWarning ?? (() => {});
  try {
    createMaps(spec, options, maps);
    const kernVersion = spec.kernVersion ?? options.kernVersion ?? runningKernelVersion();
    for (const program of spec.programs) {
      if (program.type === 'unspecified') {
        const reason = `section ${program.section} names no known program type`;
        skipped.push({ spec: program, reason });
        warn(`skipping ${program.name}: ${reason}`);
        continue;
      }
      try {
        programs.push(loadProgram(spec, program, maps, kernVersion, options.logLevel ?? 1));
      } catch (e) {
        if (options.onProgramError !== 'skip' || !(e instanceof BpfLoadError)) throw e;
        skipped.push({ spec: program, reason: e.message, error: e });
        warn(`skipping ${program.name}: ${e.message}`);
      }
    }
    fillTailCalls(spec, maps, programs, warn);
    return new LoadedObject(spec, maps, programs, skipped);
  } catch (e) {
    for (const p of programs) closeQuietly(p.fd);
    for (const m of maps) {
      try {
        m.close();
      } catch {
        // Already failing: the original error is the one to report.
      }
    }
    throw e;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // Best effort during cleanup.
  }
}

function createMaps(spec: BpfObjectSpec, options: LoadOptions, out: MapHandle[]): void {
  const cpus = possibleCpuCount();
  const fixups = spec.maps.map((m): MapFixup => ({
    name: m.name, index: m.index, spec: m, fd: undefined,
    def: { type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, numaNode: m.numaNode, innerMapIndex: m.innerMapIndex },
  }));
  for (const f of fixups) options.fixupMap?.(f, f.index);

  const created = new Map<number, MapHandle>();
  const creating = new Set<number>();
  const create = (f: MapFixup): MapHandle => {
    const done = created.get(f.index);
    if (done !== undefined) return done;
    const where = [spec.file, `map ${f.name}`];
    if (creating.has(f.index)) throw new LoadError(withContext(where, 'inner map references form a cycle'));
    creating.add(f.index);
    let innerMapFd: number | undefined;
    const innerIndex = f.def.innerMapIndex;
    if (innerIndex !== undefined && isMapInMap(f.def.type)) {
      const inner = fixups[innerIndex];
      if (inner === undefined) throw new LoadError(withContext(where, `inner map index ${innerIndex} is out of range`));
      innerMapFd = create(inner).fd;
    }
    let handle: MapHandle;
    if (f.fd !== undefined) {
      handle = new MapHandle({ spec: specWith(f), fd: f.fd, id: mapInfo(f.fd).id, cpus, owned: false });
    } else {
      let fd: number;
      try {
        fd = mapCreate({
          mapType: f.def.type, keySize: f.def.keySize, valueSize: f.def.valueSize, maxEntries: f.def.maxEntries,
          mapFlags: f.def.flags, ...(innerMapFd === undefined ? {} : { innerMapFd }),
          // numa_node is only read with BPF_F_NUMA_NODE; bpf_load.c passed it the same way.
          ...((f.def.flags & MapFlags.NUMA_NODE) !== 0 ? { numaNode: f.def.numaNode } : {}),
          mapName: kernelObjectName(f.name),
        });
      } catch (e) {
        throw wrap(e, where);
      }
      let id: number;
      try {
        id = mapInfo(fd).id;
      } catch (e) {
        closeQuietly(fd);
        throw wrap(e, where);
      }
      handle = new MapHandle({ spec: specWith(f), fd, id, cpus, owned: true });
      out.push(handle);
      try {
        fillDataMap(handle);
      } catch (e) {
        throw wrap(e, where);
      }
    }
    if (f.fd !== undefined) out.push(handle);
    created.set(f.index, handle);
    return handle;
  };
  for (const f of fixups) create(f);
  // Keep index order for users (inner maps may have been created early).
  out.sort((a, b) => a.spec.index - b.spec.index);
}

function specWith(f: MapFixup): MapSpec {
  const d = f.def;
  const s = f.spec;
  if (d.type === s.type && d.keySize === s.keySize && d.valueSize === s.valueSize && d.maxEntries === s.maxEntries &&
    d.flags === s.flags && d.numaNode === s.numaNode && d.innerMapIndex === s.innerMapIndex) return s;
  return { ...s, type: d.type, keySize: d.keySize, valueSize: d.valueSize, maxEntries: d.maxEntries, flags: d.flags, numaNode: d.numaNode, innerMapIndex: d.innerMapIndex };
}

function isMapInMap(type: number): boolean {
  return type === mapTypeValue('array_of_maps') || type === mapTypeValue('hash_of_maps');
}

/** Global data maps start with the section's bytes; .rodata is then frozen so the verifier can trust it. */
function fillDataMap(handle: MapHandle): void {
  const contents = handle.spec.contents;
  if (contents === undefined) return;
  handle.set(0, contents);
  if (handle.spec.readOnly === true) mapFreeze(handle.fd);
}

function loadProgram(spec: BpfObjectSpec, program: ProgramSpec, maps: readonly MapHandle[], kernVersion: number, logLevel: 1 | 2): LoadedProgram {
  const where = [spec.file, `program ${program.name} (section ${program.section})`];
  const byName = new Map(maps.map((m) => [m.name, m]));
  let insns: Uint8Array;
  try {
    insns = relocateProgram(spec, program, {
      mapFd: (name) => byName.get(name)?.fd,
      dataMapFd: (section) => maps.find((m) => m.spec.source === 'data' && m.spec.section === section)?.fd,
    }).insns;
  } catch (e) {
    if (e instanceof RelocationError) throw new LoadError(withContext(where, e.message), { cause: e });
    throw e;
  }
  const attr = {
    progType: progTypeValue(program.type as Exclude<ProgramSpec['type'], 'unspecified'>),
    insns,
    license: spec.license,
    kernVersion,
    progName: kernelObjectName(program.name),
    ...(program.expectedAttachType === undefined ? {} : { expectedAttachType: attachTypeValue(program.expectedAttachType) }),
  };
  let fd: number;
  try {
    fd = progLoad(attr);
  } catch (first) {
    if (!(first instanceof SysError)) throw first;
    // Load again with a log to learn why; grow the buffer while the kernel says it did not fit.
    let size = 1 << 18;
    for (;;) {
      const logBuf = Buffer.alloc(size);
      try {
        fd = progLoad({ ...attr, logLevel, logBuf });
        break; // Passed with a log (the first failure was transient): use it.
      } catch (e) {
        if (!(e instanceof SysError)) throw e;
        const log = logBuf.subarray(0, Math.max(0, logBuf.indexOf(0))).toString('utf8');
        if (e.errno === Errno.ENOSPC && size < 1 << 28) {
          size *= 4;
          continue;
        }
        if (log.trim() === '' && e.errno !== Errno.EACCES && e.errno !== Errno.EINVAL) throw wrap(e, where);
        throw new VerifierError({ file: spec.file, program: program.name, section: program.section, cause: e, log, truncated: e.errno === Errno.ENOSPC });
      }
    }
  }
  try {
    const info = progInfo(fd);
    return { spec: program, name: program.name, section: program.section, type: program.type, fd, id: info.id, tag: info.tag, info, insns };
  } catch (e) {
    closeQuietly(fd);
    throw wrap(e, where);
  }
}

/**
 * bpf_load.c: a program from a `<prefix>/<N>` section goes into the prog array at key N. It used the last prog array
 * it created; so do we, and say so when there are several.
 */
function fillTailCalls(spec: BpfObjectSpec, maps: readonly MapHandle[], programs: readonly LoadedProgram[], warn: (m: string) => void): void {
  const slotted = programs.filter((p) => p.spec.tailCallSlot !== undefined);
  if (slotted.length === 0) return;
  const arrays = maps.filter((m) => m.type === ('prog_array' satisfies MapTypeName));
  const target = arrays.at(-1);
  if (target === undefined) {
    warn(`${slotted.map((p) => p.section).join(', ')}: tail-call slot sections but no prog array map to put them in`);
    return;
  }
  if (arrays.length > 1) warn(`several prog arrays; tail-call slots go into the last one, ${target.name} (as bpf_load.c did)`);
  for (const p of slotted) {
    try {
      mapUpdateElem(target.fd, u32(p.spec.tailCallSlot!), u32(p.fd));
    } catch (e) {
      throw wrap(e, [spec.file, `program ${p.name}`, `tail-call slot ${p.spec.tailCallSlot} of ${target.name}`]);
    }
  }
}

function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function wrap(e: unknown, where: ReadonlyArray<string | undefined>): unknown {
  if (e instanceof BpfLoadError) return new LoadError(withContext(where, e.message), { cause: e });
  return e;
}

/** Kernel object names: at most 15 characters of [A-Za-z0-9_.]; anything else becomes '_'. */
export function kernelObjectName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
}

/** LINUX_VERSION_CODE of the running kernel: "6.18.44-…" → 0x0612ff (sublevel capped at 255 as the kernel does). */
export function runningKernelVersion(text: string = release()): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (m === null) return 0;
  return (Number(m[1]) << 16) | (Number(m[2]) << 8) | Math.min(Number(m[3] ?? 0), 255);
}
