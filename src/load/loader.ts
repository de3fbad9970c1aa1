import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { endianness, release } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BpfLoadError, withContext } from '../base/errors.js';
import { attachTypeValue, MapFlags, mapTypeValue, progTypeValue, type MapTypeName } from '../base/uapi.js';
import type { Btf } from '../btf/index.js';
import { sanitizeExternsForKernel } from '../btf/sanitize.js';
import type { BpfObjectSpec, MapSpec, ProgramSpec } from '../object/index.js';
import {
  closeFd, Errno, mapCreate, mapFreeze, mapInfo, mapUpdateElem, objGet, objPin, possibleCpuCount, progInfo, progLoad, SysError,
  type ProgInfo,
} from '../sys/index.js';
import { coreRelocationCount, loadObjectBtf, programBtfInfo } from './btf.js';
import { applyCoreRelocations, CORE_POISON_HELPER } from './core.js';
import { LoadError, VerifierError } from './errors.js';
import { resolveExterns, type ExternResolution } from './externs.js';
import { attachBtfId, runningKernelBtf } from './kernel-btf.js';
import { MapHandle, type MapBytes } from './map-handle.js';
import { dataContentsWithGlobals, unknownGlobals, variableNotFound, VariableHandle } from './variables.js';
import { ensureBpffs } from './pin.js';
import { RelocationError, relocateProgram, type RelocatedProgram } from './relocate.js';


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
  /** Non-fatal notes: programs skipped, tail-call slots without a prog array, BTF the kernel refused, … */
  onWarning?: (message: string) => void;
  /** Where maps with pinning "by name" are pinned and looked up (default /sys/fs/bpf). */
  pinRoot?: string;
  /** Initial values of global variables by name, written before their maps are created (the way to set .rodata). */
  globals?: Readonly<Record<string, MapBytes>>;
  /** The kernel's BTF, for programs that attach to a kernel function by BTF id (default: /sys/kernel/btf/vmlinux). */
  kernelBtf?: () => Btf;
  /** Text of /proc/kallsyms, for untyped ksyms (default: read when an object needs it). */
  kallsyms?: () => string;
  /** Text of the kernel's .config for .kconfig externs (default: /proc/config.gz, else /boot/config-<release>). */
  kernelConfig?: () => string | undefined;
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

/**
 * A loaded program. Its id, tag and info are asked of the kernel on first use (libbpf does not ask at load time
 * either): read them while the object is open.
 */
class KernelProgram implements LoadedProgram {
  readonly spec: ProgramSpec;
  readonly name: string;
  readonly section: string;
  readonly type: string;
  readonly fd: number;
  readonly insns: Uint8Array;
  #info: ProgInfo | undefined;

  constructor(spec: ProgramSpec, fd: number, insns: Uint8Array) {
    this.spec = spec;
    this.name = spec.name;
    this.section = spec.section;
    this.type = spec.type;
    this.fd = fd;
    this.insns = insns;
  }

  get info(): ProgInfo {
    return (this.#info ??= progInfo(this.fd));
  }
  get id(): number {
    return this.info.id;
  }
  get tag(): string {
    return this.info.tag;
  }
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

  /** A global variable (.data, .bss; .rodata read-only), typed through BTF when the object has it. */
  variable(name: string): VariableHandle {
    const v = this.spec.variables.find((x) => x.name === name);
    if (v === undefined) throw variableNotFound(this.spec, name);
    return new VariableHandle(v, this.map(v.section));
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

  /** Undoes attachments, then closes every program and map fd, trying all of them; then throws the first failure. Safe to call twice. */
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
  /** Pins this load made (by-name maps not pinned before): a failed load removes them again, as libbpf does. */
  const pinsMade: string[] = [];
  const warn = options.onWarning ?? (() => {});
  const unknown = unknownGlobals(spec, options.globals ?? {});
  if (unknown.length > 0) throw new LoadError(withContext([spec.file], `globals: no variable named ${unknown.join(', ')} (variables: ${spec.variables.map((v) => v.name).join(', ') || 'none'})`));
  const structOps = spec.sections.filter((x) => x.role === 'struct_ops').map((x) => x.name);
  if (structOps.length > 0) warn(`${structOps.join(', ')}: struct_ops maps are not supported yet; not created`);
  const externs = resolveExterns(spec, {
    kernelBtf: options.kernelBtf ?? runningKernelBtf,
    kallsyms: options.kallsyms ?? readKallsyms,
    kconfig: options.kernelConfig ?? readKernelConfig,
    kernelVersion: runningKernelVersion(),
  });
  // The kernel refuses extern linkage in BTF: it gets the sanitized copy; maps and variables keep the object's.
  const btfFd = loadObjectBtf(spec.btf === undefined ? spec
    : { ...spec, btf: sanitizeExternsForKernel(spec.btf, externs.kconfig?.offsets, externs.kconfig?.contents.byteLength) }, warn);
  try {
    createMaps(spec, options, maps, btfFd, warn, pinsMade);
    createKconfigMap(spec, externs, maps, btfFd, warn);
    const kernVersion = spec.kernVersion ?? options.kernVersion ?? runningKernelVersion();
    for (const program of spec.programs) {
      if (program.type === 'unspecified') {
        const reason = `section ${program.section} names no known program type`;
        skipped.push({ spec: program, reason });
        warn(`skipping ${program.name}: ${reason}`);
        continue;
      }
      try {
        programs.push(loadProgram(spec, program, maps, kernVersion, options.logLevel ?? 1, btfFd, options.kernelBtf ?? runningKernelBtf, externs));
      } catch (e) {
        if (options.onProgramError !== 'skip' || !(e instanceof BpfLoadError)) throw e;
        skipped.push({ spec: program, reason: e.message, error: e });
        warn(`skipping ${program.name}: ${e.message}`);
      }
    }
    fillTailCalls(spec, maps, programs, warn);
    fillInitialSlots(spec, maps, programs);
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
    for (const path of pinsMade) {
      try {
        unlinkSync(path);
      } catch {
        // Someone removed it already; the original error is the one to report.
      }
    }
    throw e;
  } finally {
    // Maps and programs hold their own references to the BTF object.
    if (btfFd !== undefined) closeQuietly(btfFd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // Best effort during cleanup.
  }
}

function createMaps(
  spec: BpfObjectSpec, options: LoadOptions, out: MapHandle[], btfFd: number | undefined, warn: (m: string) => void, pinsMade: string[],
): void {
  const cpus = possibleCpuCount();
  const fixups = spec.maps.map((m): MapFixup => ({
    name: m.name, index: m.index, spec: m, fd: undefined,
    def: kernelDefaults({ type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, numaNode: m.numaNode, innerMapIndex: m.innerMapIndex }, cpus),
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
    let innerTemplateFd: number | undefined;
    const innerIndex = f.def.innerMapIndex;
    if (innerIndex !== undefined && isMapInMap(f.def.type)) {
      const inner = fixups[innerIndex];
      if (inner === undefined) throw new LoadError(withContext(where, `inner map index ${innerIndex} is out of range`));
      innerMapFd = create(inner).fd;
    } else if (f.spec.innerDefinition !== undefined) {
      // BTF map-in-map: the inner definition is only a template for the kernel; it is closed once the outer exists.
      const d = f.spec.innerDefinition;
      try {
        innerTemplateFd = createKernelMap({ ...d, numaNode: d.numaNode }, undefined, undefined, kernelObjectName(d.name), warn);
      } catch (e) {
        throw wrap(e, [...where, 'inner map template']);
      }
      innerMapFd = innerTemplateFd;
    }
    let handle: MapHandle;
    const pinPath = f.spec.pinning === 'none' || f.spec.source === 'legacy' ? undefined : pinByNamePath(options.pinRoot ?? '/sys/fs/bpf', f.name, where);
    const pinned = pinPath === undefined ? undefined : openPinnedMap(pinPath, f, where);
    if (f.fd !== undefined || pinned !== undefined) {
      const fd = (f.fd ?? pinned)!;
      if (innerTemplateFd !== undefined) closeQuietly(innerTemplateFd);
      handle = new MapHandle({ spec: specWith(f), fd, cpus, owned: f.fd === undefined, btf: spec.btf });
      out.push(handle);
    } else {
      let fd: number;
      try {
        // Definitions the kernel defaults rewrote describe records, not map entries: their BTF types do not apply.
        const noBtf = f.def.keySize !== f.spec.keySize || f.def.valueSize !== f.spec.valueSize;
        const btf = noBtf || btfFd === undefined || (f.spec.btfKeyTypeId === undefined && f.spec.btfValueTypeId === undefined)
          ? undefined : { fd: btfFd, key: f.spec.btfKeyTypeId ?? 0, value: f.spec.btfValueTypeId ?? 0 };
        fd = createKernelMap({ ...f.def, mapExtra: f.spec.mapExtra ?? 0n }, innerMapFd, btf, kernelObjectName(f.name), warn);
      } catch (e) {
        throw wrap(e, where);
      } finally {
        if (innerTemplateFd !== undefined) closeQuietly(innerTemplateFd);
      }
      if (pinPath !== undefined) {
        try {
          ensureBpffs(dirname(pinPath));
          mkdirSync(dirname(pinPath), { recursive: true });
          objPin(fd, pinPath);
          pinsMade.push(pinPath);
        } catch (e) {
          closeQuietly(fd);
          throw wrap(e, [...where, `pin by name at ${pinPath}`]);
        }
      }
      handle = new MapHandle({ spec: specWith(f), fd, cpus, owned: true, btf: spec.btf });
      out.push(handle);
      try {
        fillDataMap(handle, dataContentsWithGlobals(spec, handle.spec, options.globals ?? {}));
      } catch (e) {
        throw wrap(e, where);
      }
    }
    created.set(f.index, handle);
    return handle;
  };
  for (const f of fixups) create(f);
  // Keep index order for users (inner maps may have been created early).
  out.sort((a, b) => a.spec.index - b.spec.index);
}

/** `root/<name>` for a map pinned by name; the name comes from the file, so it must stay one entry inside root. */
function pinByNamePath(root: string, name: string, where: ReadonlyArray<string | undefined>): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new LoadError(withContext([...where, 'pin by name'], 'the map name is not a file name (empty, "." or "..", or holds "/")'));
  }
  return join(root, name);
}

/**
 * What the kernel wants where definitions leave things to the loader (libbpf's and cilium/ebpf's rules): perf event
 * arrays hold 4-byte fds, one per CPU by default; ring buffers have no keys or values. A value type declared for
 * either only documents the records sent through it.
 */
function kernelDefaults(def: MapFixup['def'], cpus: number): MapFixup['def'] {
  if (def.type === mapTypeValue('perf_event_array')) {
    return { ...def, keySize: 4, valueSize: 4, maxEntries: def.maxEntries || cpus };
  }
  if (def.type === mapTypeValue('ringbuf') || def.type === mapTypeValue('user_ringbuf')) return { ...def, keySize: 0, valueSize: 0 };
  return def;
}

/**
 * BPF_MAP_CREATE. With BTF key/value types when given; a kernel that refuses them for this map (some map types take
 * none) gets the map without them, as libbpf does.
 */
function createKernelMap(
  def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; numaNode: number; mapExtra?: bigint },
  innerMapFd: number | undefined, btf: { fd: number; key: number; value: number } | undefined, mapName: string,
  warn: (m: string) => void,
): number {
  const attr = {
    mapType: def.type, keySize: def.keySize, valueSize: def.valueSize, maxEntries: def.maxEntries, mapFlags: def.flags,
    ...(innerMapFd === undefined ? {} : { innerMapFd }),
    // numa_node is only read with BPF_F_NUMA_NODE; bpf_load.c passed it the same way.
    ...((def.flags & MapFlags.NUMA_NODE) !== 0 ? { numaNode: def.numaNode } : {}),
    ...(def.mapExtra === undefined || def.mapExtra === 0n ? {} : { mapExtra: def.mapExtra }),
    mapName,
  };
  // bpf_attr's fields are 32 bits: a larger size (a 4 GiB .bss) would be silently truncated into a different map.
  for (const [field, value] of [['key_size', def.keySize], ['value_size', def.valueSize], ['max_entries', def.maxEntries], ['map_flags', def.flags]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new LoadError(`${field} ${value} does not fit the kernel's 32 bits`);
    }
  }
  if (btf === undefined) return mapCreate(attr);
  try {
    return mapCreate({ ...attr, btfFd: btf.fd, btfKeyTypeId: btf.key, btfValueTypeId: btf.value });
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const fd = mapCreate(attr);
    warn(`map ${mapName}: the kernel refused its BTF key/value types (${e.code}); created without them`);
    return fd;
  }
}

/**
 * Pinning by name: a map already pinned at `path` is reused when it matches the definition; one that differs is an
 * error naming the field. Undefined when nothing is pinned there yet.
 */
function openPinnedMap(path: string, f: MapFixup, where: ReadonlyArray<string | undefined>): number | undefined {
  if (!existsSync(path)) return undefined;
  let fd: number;
  try {
    fd = objGet(path);
  } catch (e) {
    throw wrap(e, [...where, `pinned at ${path}`]);
  }
  const info = mapInfo(fd);
  const fields: Array<[string, number, number]> = [
    ['type', info.type, f.def.type], ['key_size', info.keySize, f.def.keySize], ['value_size', info.valueSize, f.def.valueSize],
    ['max_entries', info.maxEntries, f.def.maxEntries], ['map_flags', info.mapFlags, f.def.flags],
  ];
  const diff = fields.find(([, have, want]) => have !== want);
  if (diff !== undefined) {
    closeQuietly(fd);
    throw new LoadError(withContext([...where, `pinned at ${path}`], `the pinned map is incompatible: ${diff[0]} is ${diff[1]}, the object wants ${diff[2]}`));
  }
  return fd;
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
function fillDataMap(handle: MapHandle, contents: Uint8Array | undefined): void {
  if (contents !== undefined) handle.set(0, contents);
  if (handle.spec.readOnly === true) mapFreeze(handle.fd);
}

/**
 * libbpf's `.kconfig` map: a one-entry array read-only to programs and frozen, holding the values of the object's
 * .kconfig externs (kernel version, config options) at the offsets the extern resolution laid out.
 */
function createKconfigMap(spec: BpfObjectSpec, externs: ExternResolution, out: MapHandle[], btfFd: number | undefined, warn: (m: string) => void): void {
  if (externs.kconfig === undefined) return;
  const contents = externs.kconfig.contents;
  const datasec = spec.btf?.findByName('datasec', '.kconfig')?.id;
  const mapSpec: MapSpec = {
    name: '.kconfig', index: spec.maps.length, source: 'data', section: '.kconfig', offset: 0,
    type: mapTypeValue('array'), typeName: 'array', keySize: 4, valueSize: contents.byteLength, maxEntries: 1,
    flags: MapFlags.RDONLY_PROG, numaNode: 0, innerMapIndex: undefined, innerMap: undefined, pinning: 'none',
    definitionSize: 0, definition: new Uint8Array(0), contents, readOnly: true,
    ...(datasec === undefined ? {} : { btfValueTypeId: datasec }),
  };
  const btf = btfFd === undefined || datasec === undefined ? undefined : { fd: btfFd, key: 0, value: datasec };
  let fd: number;
  try {
    fd = createKernelMap(mapSpec, undefined, btf, kernelObjectName(mapSpec.name), warn);
  } catch (e) {
    throw wrap(e, [spec.file, 'map .kconfig']);
  }
  const handle = new MapHandle({ spec: mapSpec, fd, cpus: possibleCpuCount(), owned: true, btf: spec.btf });
  out.push(handle);
  try {
    fillDataMap(handle, contents);
  } catch (e) {
    throw wrap(e, [spec.file, 'map .kconfig']);
  }
}

function readKallsyms(): string {
  try {
    return readFileSync('/proc/kallsyms', 'utf8');
  } catch (e) {
    throw new LoadError(`/proc/kallsyms: ${(e as NodeJS.ErrnoException).code ?? String(e)}: needed for untyped ksyms`);
  }
}

/** The running kernel's config, as libbpf finds it; undefined when this kernel exposes none. */
function readKernelConfig(): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    // Not built with CONFIG_IKCONFIG_PROC (or unreadable): try the distribution's copy.
  }
  try {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Program types the kernel verifies against a function or type of its own BTF (attach_btf_id in vmlinux). */
const NEEDS_KERNEL_TARGET: ReadonlySet<string> = new Set(['tracing', 'lsm']);
/** Program types verified against another BPF program (freplace) or a struct_ops type: not resolved yet. */
const NEEDS_PROGRAM_TARGET: ReadonlySet<string> = new Set(['ext', 'struct_ops']);

const BPF_F_SLEEPABLE = 1 << 4;

function loadProgram(
  spec: BpfObjectSpec, program: ProgramSpec, maps: readonly MapHandle[], kernVersion: number, logLevel: 1 | 2, btfFd: number | undefined,
  kernelBtf: () => Btf, externs: ExternResolution,
): LoadedProgram {
  const where = [spec.file, `program ${program.name} (section ${program.section})`];
  const byName = new Map(maps.map((m) => [m.name, m]));
  let relocated: RelocatedProgram;
  try {
    relocated = relocateProgram(spec, program, {
      mapFd: (name) => byName.get(name)?.fd,
      dataMapFd: (section) => maps.find((m) => m.spec.source === 'data' && m.spec.section === section)?.fd,
      extern: (name) => externs.targets.get(name),
    });
  } catch (e) {
    if (e instanceof RelocationError) throw new LoadError(withContext(where, e.message), { cause: e });
    throw e;
  }
  if (NEEDS_PROGRAM_TARGET.has(program.type)) {
    throw new LoadError(withContext(where, `${program.type} programs are verified against another program or a struct_ops type (${program.section}); that is not supported yet`));
  }
  const targetBtfId = NEEDS_KERNEL_TARGET.has(program.type) ? attachBtfId(program, kernelBtf(), spec.file) : undefined;
  // CO-RE: field offsets, sizes, type ids and enum values rewritten for the running kernel's BTF.
  const core = coreRelocationCount(spec, relocated.layout) > 0
    ? applyCoreRelocations(spec, relocated.layout, relocated.insns, kernelBtf())
    : undefined;
  const insns = relocated.insns;
  const btfInfo = btfFd === undefined ? undefined : programBtfInfo(spec, relocated.layout);
  const attr = {
    progType: progTypeValue(program.type as Exclude<ProgramSpec['type'], 'unspecified'>),
    insns,
    license: spec.license,
    kernVersion,
    progName: kernelObjectName(program.name),
    ...(program.expectedAttachType === undefined ? {} : { expectedAttachType: attachTypeValue(program.expectedAttachType) }),
    ...(targetBtfId === undefined ? {} : { attachBtfId: targetBtfId }),
    ...(program.sleepable ? { progFlags: BPF_F_SLEEPABLE } : {}),
    ...(btfInfo === undefined ? {} : {
      progBtfFd: btfFd!, funcInfoRecSize: 8, funcInfo: btfInfo.funcInfo, lineInfoRecSize: 16, lineInfo: btfInfo.lineInfo,
    }),
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
        const verifierError = new VerifierError({ file: spec.file, program: program.name, section: program.section, cause: e, log, truncated: e.errno === Errno.ENOSPC });
        // A poisoned CO-RE relocation that the verifier reached: say which access the kernel lacks.
        if (core !== undefined && core.poisoned.length > 0 && log.includes(`unknown#${CORE_POISON_HELPER}`)) {
          throw new LoadError(withContext(where, core.poisoned.map((p) => p.message).join('; ')), { cause: verifierError });
        }
        throw verifierError;
      }
    }
  }
  return new KernelProgram(program, fd, insns);
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

/** Static initial contents of BTF prog arrays and map-of-maps (`__array(values, …) = { [1] = &prog }`). */
function fillInitialSlots(spec: BpfObjectSpec, maps: readonly MapHandle[], programs: readonly LoadedProgram[]): void {
  for (const m of maps) {
    for (const slot of m.spec.initialSlots ?? []) {
      const where = [spec.file, `map ${m.name}`, `values[${slot.key}] = ${slot.target}`];
      const fd = m.type === 'prog_array'
        ? programs.find((p) => p.name === slot.target)?.fd
        : maps.find((x) => x.name === slot.target)?.fd;
      if (fd === undefined) throw new LoadError(withContext(where, `${slot.target} was not loaded`));
      try {
        mapUpdateElem(m.fd, u32(slot.key), u32(fd));
      } catch (e) {
        throw wrap(e, where);
      }
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
