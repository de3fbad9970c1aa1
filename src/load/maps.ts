/** Map creation: definitions (after fixups and kernel defaults) → kernel maps, pinned by name when asked, data maps filled. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withContext } from '../base/errors.js';
import { isMapInMap, mapTypeTraits } from '../base/map-types.js';
import { MapFlags, mapTypeName, mapTypeValue } from '../base/uapi.js';
import type { BpfObjectSpec, MapSpec } from '../object/index.js';
import {
  Errno, Fd, mapCreate, mapFreeze, mapInfo, mapUpdateElem, objGet, objPin, pageSize, possibleCpuCount, SysError,
} from '../sys/index.js';
import { LoadError, withLoadContext } from './errors.js';
import type { ExternResolution } from './externs.js';
import { kernelObjectName } from './kernel-facts.js';
import { MapHandle, type MapBytes } from './map-handle.js';
import { ringBufferSize } from './ringbuf.js';
import { dataContentsWithGlobals } from './variables.js';
import { ensureBpffs } from './bpffs.js';

/** A map definition as bpf_load.c's fixup_map callback saw it: edit it, or set `fd` to use an existing map. */
export interface MapFixup {
  readonly name: string;
  readonly index: number;
  readonly spec: MapSpec;
  def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; numaNode: number; innerMapIndex: number | undefined };
  /** An existing map to use instead of creating one. The loader does not close it. */
  fd: number | undefined;
}

/** The load options map creation reads (see LoadOptions). */
export interface MapLoadOptions {
  /** bpf_load.c's load_bpf_file_fixup_map: called for every map, in index order, before it is created. */
  fixupMap?: (map: MapFixup, index: number) => void;
  /** Where pinned maps live (default /sys/fs/bpf): by name at `<root>/<map>`, iproute2's under `<root>/tc/`. */
  pinRoot?: string;
  /** Initial values of global variables by name, written before their maps are created (the way to set .rodata). */
  globals?: Readonly<Record<string, MapBytes>>;
}

/**
 * Creates the object's maps; `only` (map names) limits it to the maps some programs need (LoadOptions.programs).
 * `pinsMade` collects the paths this call pins (maps pinned by name that were not pinned before).
 */
// Long: the fixup hook and the recursive `create` below (inner maps first) share the fixups and what was created.
export function createMaps(
  spec: BpfObjectSpec, options: MapLoadOptions, out: MapHandle[], btfFd: number | undefined, warn: (m: string) => void,
  only?: ReadonlySet<string>, pinsMade: string[] = [],
): void {
  const cpus = possibleCpuCount();
  const fixups = spec.maps.map((m): MapFixup => ({
    name: m.name, index: m.index, spec: m, fd: undefined,
    def: kernelDefaults({ type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, numaNode: m.numaNode, innerMapIndex: m.innerMapIndex }, cpus),
  }));
  for (const f of fixups) options.fixupMap?.(f, f.index);

  const created = new Map<number, MapHandle>();
  const creating = new Set<number>();
  // Long: inner map, pin reuse, creation with its MMAPABLE and BTF fallbacks, pinning and the first fill, in the order the kernel needs them.
  const create = (f: MapFixup): MapHandle => {
    const done = created.get(f.index);
    if (done !== undefined) return done;
    const where = [spec.file, `map ${f.name}`];
    if (creating.has(f.index)) throw new LoadError(withContext(where, 'inner map references form a cycle'));
    creating.add(f.index);
    let innerMapFd: number | undefined;
    let innerTemplateFd: Fd | undefined;
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
        throw withLoadContext(e, [...where, 'inner map template']);
      }
      innerMapFd = innerTemplateFd.value;
    }
    if (isMapInMap(f.def.type) && innerMapFd === undefined && f.fd === undefined) {
      const ref = f.spec.iproute2 !== undefined && f.spec.iproute2.innerId !== 0 ? `: its inner_id ${f.spec.iproute2.innerId} is the id of no map in the object` : '';
      throw new LoadError(withContext(where, `a map-in-map needs an inner map to take its shape from${ref}`));
    }
    let handle: MapHandle;
    const pinPath = mapPinPath(spec, f.spec, options.pinRoot ?? DEFAULT_PIN_ROOT, warn);
    const pinned = pinPath === undefined ? undefined : openPinnedMap(pinPath, f, where);
    if (f.fd !== undefined || pinned !== undefined) {
      const fd = f.fd !== undefined ? Fd.borrow(f.fd, `map ${f.name}`) : pinned!;
      innerTemplateFd?.closeQuietly();
      handle = new MapHandle({ spec: specWith(f), fd, cpus, btf: spec.btf });
      out.push(handle);
    } else {
      let fd: Fd;
      let mmapable = false;
      try {
        // Definitions the kernel defaults rewrote describe records, not map entries: their BTF types do not apply.
        const noBtf = f.def.keySize !== f.spec.keySize || f.def.valueSize !== f.spec.valueSize;
        const btf = noBtf || btfFd === undefined || (f.spec.btfKeyTypeId === undefined && f.spec.btfValueTypeId === undefined)
          ? undefined : { fd: btfFd, key: f.spec.btfKeyTypeId ?? 0, value: f.spec.btfValueTypeId ?? 0 };
        const def = { ...f.def, mapExtra: f.spec.mapExtra ?? 0n };
        if (isGlobalData(f)) {
          // As libbpf does: BPF_F_MMAPABLE so user space reads and writes the variables as memory; kernels without
          // it (before 5.5) refuse the flag with EINVAL and get the map without it (variables then use syscalls).
          try {
            fd = createKernelMap({ ...def, flags: def.flags | MapFlags.MMAPABLE }, innerMapFd, btf, kernelObjectName(f.name), warn);
            mmapable = true;
          } catch (e) {
            if (!(e instanceof SysError) || e.errno !== Errno.EINVAL) throw e;
            fd = createKernelMap(def, innerMapFd, btf, kernelObjectName(f.name), warn);
          }
        } else {
          fd = createKernelMap(def, innerMapFd, btf, kernelObjectName(f.name), warn);
        }
      } catch (e) {
        if (f.def.maxEntries === 0 && e instanceof SysError && e.errno === Errno.EINVAL) {
          throw new LoadError(withContext(where, `max_entries is 0, which the object's own loader sets at run time: set it (CLI --max-entries ${f.name}=N, library fixupMap)`), { cause: e });
        }
        throw withLoadContext(e, where);
      } finally {
        innerTemplateFd?.closeQuietly();
      }
      if (pinPath !== undefined) {
        try {
          ensureBpffs(dirname(pinPath));
          mkdirSync(dirname(pinPath), { recursive: true });
          objPin(fd.value, pinPath);
          pinsMade.push(pinPath);
        } catch (e) {
          fd.closeQuietly();
          throw withLoadContext(e, [...where, `pin at ${pinPath}`]);
        }
      }
      handle = new MapHandle({ spec: specWith(f), fd, cpus, btf: spec.btf });
      out.push(handle);
      try {
        fillDataMap(handle, dataContentsWithGlobals(spec, handle.spec, options.globals ?? {}));
      } catch (e) {
        throw withLoadContext(e, where);
      }
      // After the fill (and .rodata's freeze): .rodata is mapped read-only, as the kernel then requires.
      if (mmapable) handle.mapValues();
    }
    created.set(f.index, handle);
    return handle;
  };
  for (const f of fixups) if (only === undefined || only.has(f.name)) create(f);
  // Keep index order for users (inner maps may have been created early).
  out.sort((a, b) => a.spec.index - b.spec.index);
}

/**
 * iproute2's map-in-map filling: a map with an id (and no inner_id of its own) goes into slot inner_idx of every
 * map-in-map whose inner_id is that id; inner_idx 0xffffffff keeps it out.
 */
export function fillIpRoute2InnerSlots(spec: BpfObjectSpec, maps: readonly MapHandle[]): void {
  for (const inner of maps) {
    const ids = inner.spec.iproute2;
    if (ids === undefined || ids.id === 0 || ids.innerId !== 0 || ids.innerIdx === 0xffffffff) continue;
    for (const outer of maps) {
      if (!isMapInMap(outer.spec.type) || outer.spec.iproute2?.innerId !== ids.id) continue;
      try {
        mapUpdateElem(outer.fd, u32(ids.innerIdx), u32(inner.fd));
      } catch (e) {
        throw withLoadContext(e, [spec.file, `map ${outer.name}`, `inner_idx ${ids.innerIdx} = ${inner.name}`]);
      }
    }
  }
}

function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

const DEFAULT_PIN_ROOT = '/sys/fs/bpf';

/**
 * Where a map is pinned, if anywhere: `.maps` pinning by name at `<root>/<name>`; iproute2 (`struct bpf_elf_map`)
 * PIN_GLOBAL_NS at `<root>/tc/globals/<name>` and PIN_OBJECT_NS at `<root>/tc/<SHA-1 of the object>/<name>`, the
 * directories `tc` and `ip` use. A pinning value no convention defines leaves the map unpinned, with a warning.
 */
function mapPinPath(spec: BpfObjectSpec, map: MapSpec, root: string, warn: (m: string) => void): string | undefined {
  const where = [spec.file, `map ${map.name}`];
  if (map.pinning === 'none') return undefined;
  checkPinName(map.name, where);
  if (map.pinning.startsWith('unknown(')) {
    // The object's own loader decides where such maps live; the programs still load against an unpinned map.
    const known = map.source === 'btf' ? '0 none, 1 by name' : '0 none, 1 object namespace, 2 global namespace';
    warn(withContext(where, `pinning ${map.pinning.slice(8, -1)} is no convention bpf-load knows (${known}); the map is created unpinned`));
    return undefined;
  }
  if (map.pinning === 'by_name') return join(root, map.name);
  if (map.iproute2 === undefined) {
    warn(`map ${map.name}: gobpf pinning (${map.pinning}) is not honoured; the map is created unpinned`);
    return undefined;
  }
  return map.pinning === 'global_ns' ? join(root, 'tc', 'globals', map.name) : join(root, 'tc', spec.iproute2ObjectId!, map.name);
}

/**
 * What the kernel wants where definitions leave things to the loader (libbpf's and cilium/ebpf's rules): perf event
 * arrays hold 4-byte fds, one per CPU by default; ring buffers have no keys or values. A value type declared for
 * either only documents the records sent through it.
 */
function kernelDefaults(def: MapFixup['def'], cpus: number): MapFixup['def'] {
  const sizes = mapTypeTraits(def.type).kernelSizes;
  if (sizes === undefined) return def;
  // libbpf's rules: a perf event array of 0 slots gets one per possible CPU; a ring buffer size is rounded up to a
  // power-of-two multiple of the page size.
  const maxEntries = def.type === mapTypeValue('perf_event_array') ? def.maxEntries || cpus
    : def.type === mapTypeValue('ringbuf') || def.type === mapTypeValue('user_ringbuf') ? ringBufferSize(def.maxEntries, pageSize())
    : def.maxEntries;
  return { ...def, ...sizes, maxEntries };
}

/**
 * BPF_MAP_CREATE. With BTF key/value types when given; a kernel that refuses them for this map (some map types take
 * none) gets the map without them, as libbpf does.
 */
/** A map name from the file becomes a pin path: it must stay one entry inside the pin directory. */
function checkPinName(name: string, where: ReadonlyArray<string | undefined>): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new LoadError(withContext([...where, 'pin'], 'the map name is not a file name (empty, "." or "..", or holds "/")'));
  }
}

function createKernelMap(
  def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; numaNode: number; mapExtra?: bigint },
  innerMapFd: number | undefined, btf: { fd: number; key: number; value: number } | undefined, mapName: string,
  warn: (m: string) => void,
): Fd {
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
  const what = `map ${mapName}`;
  if (btf === undefined) return new Fd(mapCreate(attr), what);
  try {
    return new Fd(mapCreate({ ...attr, btfFd: btf.fd, btfKeyTypeId: btf.key, btfValueTypeId: btf.value }), what);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const fd = new Fd(mapCreate(attr), what);
    warn(`${what}: the kernel refused its BTF key/value types (${e.code}); created without them`);
    return fd;
  }
}

/**
 * Pinning by name: a map already pinned at `path` is reused when it matches the definition; one that differs is an
 * error naming the field. Undefined when nothing is pinned there yet.
 */
function openPinnedMap(path: string, f: MapFixup, where: ReadonlyArray<string | undefined>): Fd | undefined {
  if (!existsSync(path)) return undefined;
  let fd: Fd;
  try {
    fd = new Fd(objGet(path), `map ${f.name} pinned at ${path}`);
  } catch (e) {
    throw withLoadContext(e, [...where, `pinned at ${path}`]);
  }
  let info;
  try {
    info = mapInfo(fd.value);
  } catch (e) {
    fd.closeQuietly();
    throw withLoadContext(e, [...where, `pinned at ${path}`]);
  }
  const fields: Array<[string, number, number]> = [
    ['type', info.type, f.def.type], ['key_size', info.keySize, f.def.keySize], ['value_size', info.valueSize, f.def.valueSize],
    ['max_entries', info.maxEntries, f.def.maxEntries], ['map_flags', info.mapFlags, f.def.flags],
  ];
  const diff = fields.find(([, have, want]) => have !== want);
  if (diff !== undefined) {
    fd.closeQuietly();
    const describe = (pick: (field: [string, number, number]) => number) =>
      fields.map((field) => `${field[0]} ${field[0] === 'type' ? mapTypeName(pick(field)) : pick(field)}`).join(', ');
    throw new LoadError(withContext([...where, `pinned at ${path}`],
      `the pinned map is incompatible: ${diff[0]} is ${diff[1]}, the object wants ${diff[2]} (pinned: ${describe((x) => x[1])}; object: ${describe((x) => x[2])})`));
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

/** A .data/.rodata/.bss map as the object defines it: one array value holding the section. */
function isGlobalData(f: MapFixup): boolean {
  return f.spec.source === 'data' && f.def.type === mapTypeValue('array') && f.def.maxEntries === 1;
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
export function createKconfigMap(spec: BpfObjectSpec, externs: ExternResolution, out: MapHandle[], btfFd: number | undefined, warn: (m: string) => void): void {
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
  let fd: Fd;
  try {
    fd = createKernelMap(mapSpec, undefined, btf, kernelObjectName(mapSpec.name), warn);
  } catch (e) {
    throw withLoadContext(e, [spec.file, 'map .kconfig']);
  }
  const handle = new MapHandle({ spec: mapSpec, fd, cpus: possibleCpuCount(), btf: spec.btf });
  out.push(handle);
  try {
    fillDataMap(handle, contents);
  } catch (e) {
    throw withLoadContext(e, [spec.file, 'map .kconfig']);
  }
}
