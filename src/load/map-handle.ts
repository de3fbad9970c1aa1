import { BpfLoadError } from '../base/errors.js';
import { mapTypeTraits } from '../base/map-types.js';
import { mapTypeName, type MapTypeName } from '../base/uapi.js';
import type { Btf } from '../btf/index.js';
import type { MapSpec } from '../object/index.js';
import {
  batchUnsupported, Errno, Fd, mapDeleteElem, mapGetNextKey, mapInfo, mapLookupBatch, MapLookup, mapUpdateElem, mmapShared,
  OutputSlab, pageSize, Prot, SysError, UpdateFlags, type Mapping,
} from '../sys/index.js';

/** A key or value: raw bytes, or a number encoded little-endian (host order) in the map's key/value size. */
export type MapBytes = Uint8Array | number | bigint;

export class MapHandleError extends BpfLoadError {
  override name = 'MapHandleError';
}

/**
 * A created map. Keys and values are Buffers (or numbers, encoded to the map's sizes). For per-CPU maps a value is
 * the kernel's layout: one slot of roundup(valueSize, 8) bytes per possible CPU; `perCpuValues` splits it.
 */
export class MapHandle {
  readonly spec: MapSpec;
  readonly name: string;
  /** The map's fd: owned (closed by close()), or a borrowed view of one a fixup hook supplied. */
  readonly #fd: Fd;
  readonly type: MapTypeName | `unknown(${number})`;
  readonly keySize: number;
  readonly valueSize: number;
  readonly perCpu: boolean;
  /** Bytes of one value as user space reads it (per-CPU maps: stride × CPUs). */
  readonly valueBytes: number;
  /** Per-CPU maps: bytes per CPU (valueSize rounded up to 8). */
  readonly cpuStride: number;
  readonly cpus: number;
  private batchWorks = true;
  /** Reused for number keys: a map call costs about as much as allocating a buffer. */
  private readonly scratchKey: Buffer;

  /** The object's BTF, for decoding keys and values when the spec names their types. */
  readonly btf: Btf | undefined;

  #id: number | undefined;
  /** Global data maps created BPF_F_MMAPABLE: their one value, mapped into this process (see mapValues()). */
  #mapping: Mapping | undefined;
  #mappedValue: Buffer | undefined;
  #prepared: MapLookup | undefined;

  constructor(init: { spec: MapSpec; fd: Fd; cpus: number; btf?: Btf | undefined }) {
    this.btf = init.btf;
    this.spec = init.spec;
    this.name = init.spec.name;
    this.#fd = init.fd;
    this.type = mapTypeName(init.spec.type) as MapHandle['type'];
    this.keySize = init.spec.keySize;
    // Map-in-map and prog-array values are written as fds but read back as ids: both 4 bytes.
    this.valueSize = init.spec.valueSize;
    this.perCpu = mapTypeTraits(init.spec.type).perCpu;
    this.cpus = init.cpus;
    this.cpuStride = this.perCpu ? Math.ceil(this.valueSize / 8) * 8 : this.valueSize;
    this.valueBytes = this.perCpu ? this.cpuStride * this.cpus : this.valueSize;
    this.scratchKey = Buffer.alloc(this.keySize);
  }

  /** The descriptor number, for one call (throws once the handle is closed). */
  get fd(): number {
    return this.#fd.value;
  }

  /** True when the fd belongs to someone else (a fixup hook's map): close() then leaves it open. */
  get borrowed(): boolean {
    return !this.#fd.owned;
  }

  private get closed(): boolean {
    return this.#fd.closed;
  }

  /** The kernel's id for the map, asked on first use (while the map is open). */
  get id(): number {
    return (this.#id ??= mapInfo(this.fd).id);
  }

  /**
   * The value at `key` as a Buffer of its own, or undefined when absent. The kernel writes it straight into a piece
   * of a shared slab (as Buffer.allocUnsafe's pool pieces, each Buffer is a view of its own bytes).
   */
  get(key: MapBytes): Buffer | undefined {
    const lookup = this.#lookup();
    this.#writeKey(lookup, key);
    return lookup.lookupOut(valueSlab);
  }

  /** Looks `key` up into `out` (valueBytes long) without allocating; false when absent. */
  getInto(key: MapBytes, out: Uint8Array): boolean {
    if (out.length < this.valueBytes) throw new MapHandleError(`map ${this.name}: output buffer of ${out.byteLength} bytes, values need ${this.valueBytes}`);
    const lookup = this.#lookup();
    this.#writeKey(lookup, key);
    return lookup.lookupInto(out);
  }

  has(key: MapBytes): boolean {
    const lookup = this.#lookup();
    this.#writeKey(lookup, key);
    return lookup.has();
  }

  /** The prepared lookup, made on first use; throws once the map is closed (its fd number may be reused). */
  #lookup(): MapLookup {
    const fd = this.#fd.value;
    return (this.#prepared ??= new MapLookup(fd, this.keySize, this.valueBytes));
  }

  #writeKey(lookup: MapLookup, key: MapBytes): void {
    // The common case, a u32 key given as a number, written in place without going through BigInt.
    if (typeof key === 'number' && this.keySize === 4 && key >>> 0 === key) lookup.setKeyU32(key);
    else if (key instanceof Uint8Array && key.length === this.keySize) copyKey(key, lookup.key);
    else lookup.key.set(this.key(key));
  }

  /** Writes `value` (per-CPU maps: a full per-CPU buffer, or one value that every CPU gets). */
  set(key: MapBytes, value: MapBytes, flags: number = UpdateFlags.ANY): void {
    mapUpdateElem(this.fd, this.key(key), this.value(value), flags);
  }

  /** Removes `key`; false when it was absent. */
  delete(key: MapBytes): boolean {
    return mapDeleteElem(this.fd, this.key(key));
  }

  /** Every key, in the kernel's iteration order. */
  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      if (!mapGetNextKey(this.fd, prev, next)) return;
      yield next;
      prev = next;
    }
  }

  /** Every [key, value] pair, one lookup per key. Entries deleted while iterating are skipped. */
  *entries(): Generator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * Every [key, value] pair, read in batches of `chunk` with BPF_MAP_LOOKUP_BATCH: one syscall per chunk instead of
   * two per entry. Falls back to entries() for map types or kernels without batch support.
   */
  readAll(chunk = 4096): Array<[Buffer, Buffer]> {
    const out: Array<[Buffer, Buffer]> = [];
    for (const b of this.batches(chunk)) {
      // One copy per chunk (the batch buffers are reused); entries are views into it.
      const keys = Buffer.from(b.keys.subarray(0, b.count * this.keySize));
      const values = Buffer.from(b.values.subarray(0, b.count * this.valueBytes));
      for (let i = 0; i < b.count; i++) {
        out.push([keys.subarray(i * this.keySize, (i + 1) * this.keySize), values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes)]);
      }
    }
    return out;
  }

  /**
   * Every entry as two column buffers (`count` keys of keySize bytes, `count` values of valueBytes bytes): no object
   * per entry, for reading big maps fast.
   */
  readAllRaw(chunk = 16384): { keys: Buffer; values: Buffer; count: number } {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    let count = 0;
    // Fresh buffers per chunk, so the kernel writes straight into what we keep; one concat at the end.
    for (const b of this.batches(chunk, true)) {
      keys.push(b.keys.subarray(0, b.count * this.keySize));
      values.push(b.values.subarray(0, b.count * this.valueBytes));
      count += b.count;
    }
    return { keys: keys.length === 1 ? keys[0]! : Buffer.concat(keys), values: values.length === 1 ? values[0]! : Buffer.concat(values), count };
  }

  /**
   * The entries, a chunk at a time: views into buffers that the next chunk reuses (unless `fresh`, which gives every
   * chunk its own). BPF_MAP_LOOKUP_BATCH where the map type and kernel support it (one syscall per chunk), else
   * get_next_key + lookup per entry.
   */
  *batches(chunk = 4096, fresh = false): Generator<{ keys: Buffer; values: Buffer; count: number }> {
    let keys = Buffer.alloc(chunk * this.keySize);
    let values = Buffer.alloc(chunk * this.valueBytes);
    const renew = () => {
      if (!fresh) return;
      keys = Buffer.allocUnsafeSlow(chunk * this.keySize);
      values = Buffer.allocUnsafeSlow(chunk * this.valueBytes);
    };
    if (this.batchWorks && mapTypeTraits(this.spec.type).batchLookup) {
      const batchSize = Math.max(this.keySize, 4);
      let inBatch: Buffer | null = null;
      let first = true;
      for (;;) {
        const outBatch = Buffer.alloc(batchSize);
        let result;
        try {
          result = mapLookupBatch({ mapFd: this.fd, inBatch, outBatch, keys, values, keySize: this.keySize, valueStride: this.valueBytes });
        } catch (e) {
          // A hash bucket holding more entries than the chunk: ENOSPC. Retry from the same place with room for it.
          if (e instanceof SysError && e.errno === Errno.ENOSPC) {
            chunk *= 2;
            keys = Buffer.alloc(chunk * this.keySize);
            values = Buffer.alloc(chunk * this.valueBytes);
            continue;
          }
          // Only a first call may fall back: after that, entries were already produced.
          if (!first || !batchUnsupported(e)) throw e;
          this.batchWorks = false;
          break;
        }
        first = false;
        if (result.count > 0) {
          yield { keys, values, count: result.count };
          renew();
        }
        if (result.done) return;
        inBatch = outBatch;
      }
    }
    let count = 0;
    for (const [k, v] of this.entries()) {
      keys.set(k, count * this.keySize);
      values.set(v, count * this.valueBytes);
      if (++count === chunk) {
        yield { keys, values, count };
        renew();
        count = 0;
      }
    }
    if (count > 0) yield { keys, values, count };
  }

  /** Per-CPU maps: the value split into one Buffer per CPU (each valueSize bytes). */
  perCpuValues(value: Buffer): Buffer[] {
    if (!this.perCpu) return [value];
    const out: Buffer[] = [];
    for (let cpu = 0; cpu < this.cpus; cpu++) out.push(value.subarray(cpu * this.cpuStride, cpu * this.cpuStride + this.valueSize));
    return out;
  }

  close(): void {
    if (this.closed) return;
    // Unmapped first: the mapping would keep the map alive after its fd is closed.
    this.#mappedValue = undefined;
    this.#mapping?.unmap();
    this.#mapping = undefined;
    this.#fd.close();
  }

  /**
   * Maps the value of a single-entry BPF_F_MMAPABLE array (a global data map) into this process, read-write, or
   * read-only when the map is frozen for user space (.rodata). A kernel that refuses leaves the map as it was: reads
   * and writes then go through bpf(2). Called by the loader once the map holds its initial contents.
   */
  mapValues(): void {
    if (this.#mapping !== undefined || this.closed) return;
    const readOnly = this.spec.readOnly === true;
    const length = Math.ceil(Math.max(this.valueSize, 1) / pageSize()) * pageSize();
    try {
      this.#mapping = mmapShared(this.fd, length, readOnly ? Prot.READ : Prot.READ | Prot.WRITE, 0, `map ${this.name}`);
    } catch (e) {
      if (e instanceof SysError) return;
      throw e;
    }
    this.#mappedValue = Buffer.from(this.#mapping.buffer, 0, this.valueSize);
  }

  /**
   * The mapped value (global data maps, see mapValues()), or undefined when the map is not mapped. A live view of
   * the kernel's memory: valid only while the map is open, so it is never handed to callers who could keep it.
   */
  mappedValue(): Buffer | undefined {
    if (this.closed) throw new MapHandleError(`map ${this.name} is closed`);
    return this.#mappedValue;
  }

  private key(key: MapBytes): Uint8Array {
    // Checked inline: this runs once per lookup, and the error text is only needed on error. `length` rather than
    // `byteLength` (the same for bytes): V8 11 (Node 20) calls a builtin for byteLength, ~20 ns measured.
    if (key instanceof Uint8Array && key.length === this.keySize) {
      // A small key is copied into the scratch key, whose address the sys layer has cached: taking the address of a
      // caller's buffer (koffi.address) costs several times the copy, and callers rarely reuse one key buffer.
      if (this.keySize > SCRATCH_KEY_MAX) return key;
      this.scratchKey.set(key);
      return this.scratchKey;
    }
    if (key instanceof Uint8Array) return encode(key, this.keySize, `map ${this.name}: key`);
    // The common case, a u32 key given as a number, without going through BigInt.
    if (typeof key === 'number' && this.keySize === 4 && Number.isInteger(key) && key >= 0 && key <= 0xffffffff) {
      this.scratchKey.writeUInt32LE(key, 0);
    } else {
      this.scratchKey.set(encode(key, this.keySize, `map ${this.name}: key`));
    }
    return this.scratchKey;
  }

  private value(value: MapBytes): Uint8Array {
    if (!this.perCpu) return encode(value, this.valueSize, `map ${this.name}: value`);
    if (value instanceof Uint8Array && value.byteLength === this.valueBytes) return value;
    // One value for every CPU.
    const one = encode(value, this.valueSize, `map ${this.name}: value`);
    const all = Buffer.alloc(this.valueBytes);
    for (let cpu = 0; cpu < this.cpus; cpu++) all.set(one, cpu * this.cpuStride);
    return all;
  }
}

/** A small key is copied byte by byte: TypedArray#set is a call into a V8 builtin (22 ns against 10 for 4 bytes, measured). */
function copyKey(key: Uint8Array, to: Uint8Array): void {
  if (key.length > 16) {
    to.set(key);
    return;
  }
  for (let i = 0; i < key.length; i++) to[i] = key[i]!;
}

/** Where get() has the kernel write the values it returns (see OutputSlab). */
const valueSlab = new OutputSlab();

/** Keys up to this size are copied into the handle's scratch key before a call (see MapHandle.key). */
const SCRATCH_KEY_MAX = 64;

/** Bytes of exactly `size`; numbers are written little-endian (the host order of every BPF-capable Node platform). */
export function encode(v: MapBytes, size: number, what: string): Uint8Array {
  if (v instanceof Uint8Array) {
    if (v.byteLength !== size) throw new MapHandleError(`${what} is ${v.byteLength} bytes, the map wants ${size}`);
    return v;
  }
  if (typeof v === 'number' && !Number.isInteger(v)) throw new MapHandleError(`${what}: ${v} is not a whole number`);
  const big = BigInt(v);
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new MapHandleError(`${what}: a number needs a 1, 2, 4 or 8-byte field, not ${size}`);
  const bits = BigInt(size * 8);
  if (big < -(1n << (bits - 1n)) || big >= 1n << bits) throw new MapHandleError(`${what}: ${v} does not fit ${size} bytes`);
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt.asUintN(64, big) & ((1n << bits) - 1n), 0);
  return size === 8 ? out : out.subarray(0, size);
}

/** A 1/2/4/8-byte little-endian field as a number (bigint beyond 2^53); undefined for other sizes. */
export function decodeUnsigned(bytes: Uint8Array): number | bigint | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes.byteLength) {
    case 1: return view.getUint8(0);
    case 2: return view.getUint16(0, true);
    case 4: return view.getUint32(0, true);
    case 8: {
      const v = view.getBigUint64(0, true);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    default: return undefined;
  }
}
