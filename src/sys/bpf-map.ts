/** bpf(2) map commands: create, the element hot path, batches. */
import { Errno, SysArgumentError, SysError } from './errors.js';
import { AttrWriter, FixedAttr, type OutputSlab, writeAddress, writeU64 } from './ffi.js';
import { BpfCommand, type BpfCommandName, BPF_ATTR, BPF_OBJ_NAME_LEN, NONE_TOLERATED, bpfCall, UpdateFlags } from './bpf.js';

export interface MapCreateAttr {
  readonly mapType: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags?: number;
  readonly innerMapFd?: number;
  readonly numaNode?: number;
  /** Up to 15 bytes are kept; the kernel accepts [A-Za-z0-9_.] only. */
  readonly mapName?: string;
  readonly mapIfindex?: number;
  readonly btfFd?: number;
  readonly btfKeyTypeId?: number;
  readonly btfValueTypeId?: number;
  readonly btfVmlinuxValueTypeId?: number;
  readonly mapExtra?: bigint;
}

export function encodeMapCreate(a: MapCreateAttr): AttrWriter {
  const L = BPF_ATTR.mapCreate;
  const w = new AttrWriter(L.size)
    .u32(L.map_type, a.mapType)
    .u32(L.key_size, a.keySize)
    .u32(L.value_size, a.valueSize)
    .u32(L.max_entries, a.maxEntries)
    .u32(L.map_flags, a.mapFlags ?? 0)
    .u32(L.inner_map_fd, a.innerMapFd ?? 0)
    .u32(L.numa_node, a.numaNode ?? 0)
    .u32(L.map_ifindex, a.mapIfindex ?? 0)
    .u32(L.btf_fd, a.btfFd ?? 0)
    .u32(L.btf_key_type_id, a.btfKeyTypeId ?? 0)
    .u32(L.btf_value_type_id, a.btfValueTypeId ?? 0)
    .u32(L.btf_vmlinux_value_type_id, a.btfVmlinuxValueTypeId ?? 0)
    .u64(L.map_extra, a.mapExtra ?? 0n);
  if (a.mapName !== undefined) w.chars(L.map_name, BPF_OBJ_NAME_LEN, a.mapName);
  return w;
}

/** BPF_MAP_CREATE → map fd. */
export function mapCreate(a: MapCreateAttr): number {
  return bpfCall('MAP_CREATE', encodeMapCreate(a), NONE_TOLERATED, a.mapName);
}

/**
 * The element commands are the hot path: one bpf(2) call per map element, where the cost of building the attr is
 * of the order of the system call itself. So they share one preallocated attr whose every field is written on each
 * call (no zeroing), take their addresses from a small identity cache (map handles reuse their scratch buffers), and
 * skip the generic writer. The key and value buffers are live arguments for the whole synchronous call, so nothing
 * needs pinning.
 */
const ELEM = BPF_ATTR.mapElem;
const elemAttr = new FixedAttr(ELEM.size);
const elemView = elemAttr.view;
/** One element command; returns the raw result (≥ 0, or -errno). */
function elemCall(cmd: number, mapFd: number, key: Uint8Array | null, value: Uint8Array | null, flags: number): number {
  elemView.setUint32(ELEM.map_fd, mapFd, true);
  elemView.setUint32(ELEM.map_fd + 4, 0, true);
  writeAddress(elemView, ELEM.key, key);
  writeAddress(elemView, ELEM.value, value);
  elemView.setUint32(ELEM.flags, flags >>> 0, true);
  elemView.setUint32(ELEM.flags + 4, 0, true);
  return elemAttr.bpf(cmd);
}

function elemResult(ret: number, cmd: BpfCommandName, mapFd: number, absentIsFalse: boolean): boolean {
  if (ret >= 0) return true;
  if (absentIsFalse && ret === -Errno.ENOENT) return false;
  throw new SysError({ syscall: 'bpf', command: `BPF_${cmd}`, errno: -ret, detail: `map fd ${mapFd}` });
}

/*
 * Buffer sizes: the kernel reads key_size bytes from `key` and writes value_size bytes (per-CPU maps:
 * roundup(value_size, 8) × possible CPUs) into `value`. It cannot know our buffers' lengths, so callers must pass
 * buffers at least that large; the map layer owns those sizes.
 */

/** BPF_MAP_LOOKUP_ELEM into `value`; false when the key is absent. */
export function mapLookupElem(mapFd: number, key: Uint8Array, value: Uint8Array, flags = 0): boolean {
  return elemResult(elemCall(BpfCommand.MAP_LOOKUP_ELEM, mapFd, key, value, flags), 'MAP_LOOKUP_ELEM', mapFd, true);
}

/**
 * One map's BPF_MAP_LOOKUP_ELEM, prepared once: its own attr with the map fd and the key's address written at
 * construction, the key itself in the attr block's tail. A lookup writes the key in place and, at most, the value's
 * address: the least JavaScript that can run around the system call (MapHandle's get/getInto/has).
 * The caller owns the fd's lifetime: it checks the map is still open before each call.
 */
export class MapLookup {
  /** Where the key goes before each lookup (keySize bytes). */
  readonly key: Buffer;
  readonly #attr: FixedAttr;
  readonly #view: DataView;
  readonly #mapFd: number;
  readonly #valueBytes: number;
  /** Offset in the block of the value's own slot (has(): lookups whose value is not kept). */
  readonly #valueOffset: number;
  #keyAddressWritten = false;

  constructor(mapFd: number, keySize: number, valueBytes: number) {
    const keyRoom = (keySize + 7) & ~7;
    this.#attr = new FixedAttr(ELEM.size, keyRoom + valueBytes);
    this.#view = this.#attr.view;
    this.key = this.#attr.bytes.subarray(ELEM.size, ELEM.size + keySize);
    this.#valueOffset = ELEM.size + keyRoom;
    this.#mapFd = mapFd;
    this.#valueBytes = valueBytes;
    this.#view.setUint32(ELEM.map_fd, mapFd, true);
  }

  /** A u32 key, written in place (host order). */
  setKeyU32(key: number): void {
    this.#view.setUint32(ELEM.size, key, true);
  }

  /** Looks the key up into `out` (at least valueBytes long); false when absent. */
  lookupInto(out: Uint8Array): boolean {
    writeAddress(this.#view, ELEM.value, out);
    return this.#call();
  }

  /** Looks the key up straight into a new piece of `slab`: the value as a Buffer of its own, or undefined when absent. */
  lookupOut(slab: OutputSlab): Buffer | undefined {
    writeU64(this.#view, ELEM.value, slab.reserve(this.#valueBytes));
    return this.#call() ? slab.take(this.#valueBytes) : undefined;
  }

  /** Whether the key is present (the value lands in a slot of this lookup's own). */
  has(): boolean {
    writeU64(this.#view, ELEM.value, this.#attr.address + this.#valueOffset);
    return this.#call();
  }

  #call(): boolean {
    if (!this.#keyAddressWritten) {
      writeU64(this.#view, ELEM.key, this.#attr.address + ELEM.size);
      this.#keyAddressWritten = true;
    }
    const ret = this.#attr.bpf(BpfCommand.MAP_LOOKUP_ELEM);
    return ret === 0 || elemResult(ret, 'MAP_LOOKUP_ELEM', this.#mapFd, true);
  }
}

/** BPF_MAP_UPDATE_ELEM; `flags` is one of UpdateFlags (BPF_ANY by default). */
export function mapUpdateElem(mapFd: number, key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.ANY): void {
  elemResult(elemCall(BpfCommand.MAP_UPDATE_ELEM, mapFd, key, value, flags), 'MAP_UPDATE_ELEM', mapFd, false);
}

/** BPF_MAP_DELETE_ELEM; false when the key was absent. */
export function mapDeleteElem(mapFd: number, key: Uint8Array): boolean {
  return elemResult(elemCall(BpfCommand.MAP_DELETE_ELEM, mapFd, key, null, 0), 'MAP_DELETE_ELEM', mapFd, true);
}

/** BPF_MAP_GET_NEXT_KEY: `key` null asks for the first key. Writes `nextKey`; false when there is none. */
export function mapGetNextKey(mapFd: number, key: Uint8Array | null, nextKey: Uint8Array): boolean {
  return elemResult(elemCall(BpfCommand.MAP_GET_NEXT_KEY, mapFd, key, nextKey, 0), 'MAP_GET_NEXT_KEY', mapFd, true);
}

/** BPF_MAP_FREEZE: no more writes from user space. */
export function mapFreeze(mapFd: number): void {
  const L = BPF_ATTR.mapElem;
  bpfCall('MAP_FREEZE', new AttrWriter(L.size).u32(L.map_fd, mapFd));
}

export interface MapLookupBatchRequest {
  readonly mapFd: number;
  /** Opaque position from the previous call's outBatch; null starts at the beginning. */
  readonly inBatch: Uint8Array | null;
  /** Receives the position to continue from: max(key_size, 4) bytes (hash maps store a u32 bucket index). */
  readonly outBatch: Uint8Array;
  readonly keys: Uint8Array;
  readonly values: Uint8Array;
  readonly keySize: number;
  /** Bytes per element in `values` (per-CPU maps: roundup(value_size, 8) × possible CPUs). */
  readonly valueStride: number;
  readonly elemFlags?: number;
  readonly flags?: number;
}

export interface MapLookupBatchResult {
  /** Elements written to keys/values. */
  readonly count: number;
  /** The kernel reported ENOENT: the map has no elements after these. */
  readonly done: boolean;
}

/**
 * BPF_MAP_LOOKUP_BATCH: as many elements as fit in keys/values. Throws SysError for anything but the end of the map;
 * see batchUnsupported() for the errors that mean "iterate with get_next_key instead".
 */
export function mapLookupBatch(req: MapLookupBatchRequest): MapLookupBatchResult {
  const count = Math.min(Math.floor(req.keys.byteLength / req.keySize), Math.floor(req.values.byteLength / req.valueStride));
  if (!(count > 0)) {
    throw new SysArgumentError(
      `BPF_MAP_LOOKUP_BATCH: keys (${req.keys.byteLength} B) and values (${req.values.byteLength} B) must hold at least one ` +
        `element of ${req.keySize} + ${req.valueStride} B`,
    );
  }
  if (req.outBatch.byteLength < Math.max(req.keySize, 4)) {
    throw new SysArgumentError(`BPF_MAP_LOOKUP_BATCH: out_batch needs ${Math.max(req.keySize, 4)} B, got ${req.outBatch.byteLength}`);
  }
  const L = BPF_ATTR.mapBatch;
  const w = new AttrWriter(L.size)
    .pointer(L.in_batch, req.inBatch)
    .pointer(L.out_batch, req.outBatch)
    .pointer(L.keys, req.keys)
    .pointer(L.values, req.values)
    .u32(L.count, count)
    .u32(L.map_fd, req.mapFd)
    .u64(L.elem_flags, req.elemFlags ?? 0)
    .u64(L.flags, req.flags ?? 0);
  const ret = bpfCall('MAP_LOOKUP_BATCH', w, [Errno.ENOENT]);
  // The kernel writes back how many elements it copied, also together with ENOENT on the last batch.
  return { count: w.readU32(L.count), done: ret === -Errno.ENOENT };
}

/** True for the errors with which kernels without batch support for a map type reject BPF_MAP_LOOKUP_BATCH. */
export function batchUnsupported(err: unknown): boolean {
  return err instanceof SysError &&
    (err.errno === Errno.EINVAL || err.errno === Errno.ENOTSUPP || err.errno === Errno.EOPNOTSUPP);
}
