/**
 * What generated skeletons (`bpf-load gen`) run on: typed map and variable handles around generated codecs, the
 * skeleton base class, and the few primitives codecs share (range checks, C strings, bitfields). The codecs
 * themselves — one decode/encode pair per BTF type, offsets and byte order baked in — are generated code.
 */
import { fileURLToPath } from 'node:url';
import { BpfLoadError, withContext } from '../base/errors.js';
import { readUserFile } from '../base/file.js';
import type { AttachAllOptions, AttachOptions, AttachResult, Link } from '../attach/index.js';
import { BpfObject } from '../attach/object.js';
import { LoadError, loadObject, type LoadedObject, type LoadedProgram, type LoadOptions, type MapHandle } from '../load/index.js';
import { parseObject } from '../object/index.js';

/** A value's layout in bytes: decode reads `size` bytes at `offset`, encode writes them (the caller zeroes first). */
export interface Codec<T> {
  readonly size: number;
  decode(view: DataView, offset: number): T;
  encode(view: DataView, offset: number, value: T): void;
}

/** A value that does not fit its C type, a skeleton that does not match its object, a write to a constant. */
export class SkeletonError extends BpfLoadError {
  override name = 'SkeletonError';
}

/** Where a skeleton's object comes from: a file next to the generated module, or the bytes embedded in it. */
export type SkeletonSource =
  | { readonly file: string; readonly from: string }
  | { readonly base64: string; readonly name: string };

/** Reads, parses and loads the object a skeleton describes. */
export function loadSkeletonObject(source: SkeletonSource, options: LoadOptions = {}): LoadedObject {
  if ('file' in source) {
    const path = fileURLToPath(new URL(source.file, source.from));
    return loadObject(parseObject(readUserFile(path), { name: path }), options);
  }
  return loadObject(parseObject(Buffer.from(source.base64, 'base64'), { name: source.name }), options);
}

/** Builds a skeleton over its freshly loaded object, closing the object when that fails (a stale skeleton). */
export function openSkeleton<S>(object: LoadedObject, build: (object: LoadedObject) => S): S {
  try {
    return build(object);
  } catch (e) {
    object.close();
    throw e;
  }
}

/**
 * A skeleton's `maps` or `globals`: every handle built now (a skeleton that does not match its object fails at
 * open()), except those whose map was not loaded — open({ programs }) loads only the maps its programs use —, which
 * throw the loader's error when used instead.
 */
export function loadedFields<T extends object>(makers: { readonly [K in keyof T]: () => T[K] }): T {
  const out = {} as T;
  for (const key of Object.keys(makers) as Array<keyof T & string>) {
    try {
      Object.defineProperty(out, key, { value: makers[key](), enumerable: true });
    } catch (e) {
      if (!(e instanceof LoadError)) throw e;
      Object.defineProperty(out, key, { enumerable: true, get: () => { throw e; } });
    }
  }
  return out;
}

/** `.rodata` constants given to open(), encoded through their codecs into LoadOptions.globals. */
export function encodeGlobals(values: Readonly<Record<string, unknown>>, codecs: Readonly<Record<string, Codec<unknown>>>): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const codec = codecs[name];
    if (codec === undefined) throw new SkeletonError(`rodata: no constant named ${name} (constants: ${Object.keys(codecs).join(', ') || 'none'})`);
    out[name] = encodeValue(codec, value, `rodata ${name}`);
  }
  return out;
}

function encodeValue<T>(codec: Codec<T>, value: T, what: string): Uint8Array {
  const bytes = new Uint8Array(codec.size);
  try {
    codec.encode(new DataView(bytes.buffer), 0, value);
  } catch (e) {
    throw withWhat(e, what);
  }
  return bytes;
}

/**
 * Context for an encoding failure. A TypeError there means a value of the wrong shape from untyped code (an object
 * missing a nested struct): still the caller's mistake, so it becomes a SkeletonError too.
 */
function withWhat(e: unknown, what: string): unknown {
  if (e instanceof BpfLoadError) return new SkeletonError(withContext([what], e.message), { cause: e });
  if (e instanceof TypeError) return new SkeletonError(withContext([what], `does not match the generated type (${e.message})`), { cause: e });
  return e;
}

/**
 * The loaded object behind a generated skeleton: programs by name, attach, close. Its BpfObject owns the links, so
 * close() detaches them before closing the fds.
 */
export class Skeleton<ProgramName extends string> implements Disposable {
  readonly object: LoadedObject;
  readonly bpf: BpfObject;
  constructor(object: LoadedObject) {
    this.object = object;
    this.bpf = new BpfObject(object);
  }
  program(name: ProgramName): LoadedProgram {
    return this.object.program(name);
  }
  /** Attaches one program where its section says; closing the skeleton detaches it. */
  attach(name: ProgramName, options: AttachOptions = {}): Link {
    return this.bpf.attach(name, options);
  }
  /** Attaches every program it can; reports attached, skipped and failed ones. */
  attachAll(options: AttachAllOptions = {}): AttachResult[] {
    return this.bpf.attachAll(options);
  }
  close(): void {
    this.bpf.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A map with typed keys and values: every call encodes into, or decodes from, buffers reused across calls, so a
 * lookup costs the syscall plus the generated decode.
 */
export class TypedMap<K, V> {
  readonly handle: MapHandle;
  protected readonly keyCodec: Codec<K>;
  protected readonly valueCodec: Codec<V>;
  private readonly keyBytes: Buffer;
  private readonly keyView: DataView;
  protected readonly valueBytes: Buffer;
  protected readonly valueView: DataView;

  constructor(handle: MapHandle, keyCodec: Codec<K>, valueCodec: Codec<V>) {
    if (keyCodec.size !== handle.keySize || valueCodec.size !== handle.valueSize) {
      throw new SkeletonError(withContext([`map ${handle.name}`],
        `the skeleton was generated for ${keyCodec.size}-byte keys and ${valueCodec.size}-byte values, the object has ${handle.keySize} and ${handle.valueSize}: regenerate it (bpf-load gen)`));
    }
    this.handle = handle;
    this.keyCodec = keyCodec;
    this.valueCodec = valueCodec;
    this.keyBytes = Buffer.alloc(handle.keySize);
    this.keyView = viewOf(this.keyBytes);
    this.valueBytes = Buffer.alloc(handle.valueBytes);
    this.valueView = viewOf(this.valueBytes);
  }

  get name(): string {
    return this.handle.name;
  }

  get(key: K): V | undefined {
    if (!this.handle.getInto(this.encodeKey(key), this.valueBytes)) return undefined;
    return this.decodeValue(this.valueView, 0);
  }

  has(key: K): boolean {
    return this.handle.has(this.encodeKey(key));
  }

  set(key: K, value: V, flags?: number): void {
    const k = this.encodeKey(key);
    this.handle.set(k, this.encodeValue(value), flags);
  }

  delete(key: K): boolean {
    return this.handle.delete(this.encodeKey(key));
  }

  *keys(): Generator<K> {
    for (const key of this.handle.keys()) yield this.keyCodec.decode(viewOf(key), 0);
  }

  *entries(): Generator<[K, V]> {
    for (const [key, value] of this.handle.entries()) yield [this.keyCodec.decode(viewOf(key), 0), this.decodeValue(viewOf(value), 0)];
  }

  /** Every entry, read in batches (BPF_MAP_LOOKUP_BATCH where the kernel has it) and decoded straight from them. */
  readAll(chunk = 16384): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    const keySize = this.handle.keySize;
    const stride = this.handle.valueBytes;
    for (const b of this.handle.batches(chunk)) {
      const keys = viewOf(b.keys);
      const values = viewOf(b.values);
      for (let i = 0; i < b.count; i++) out.push([this.keyCodec.decode(keys, i * keySize), this.decodeValue(values, i * stride)]);
    }
    return out;
  }

  protected decodeValue(view: DataView, offset: number): V {
    return this.valueCodec.decode(view, offset);
  }

  protected encodeValue(value: V): Buffer {
    this.valueBytes.fill(0);
    try {
      this.valueCodec.encode(this.valueView, 0, value);
    } catch (e) {
      throw withWhat(e, `map ${this.handle.name}: value`);
    }
    return this.valueBytes;
  }

  private encodeKey(key: K): Buffer {
    this.keyBytes.fill(0);
    try {
      this.keyCodec.encode(this.keyView, 0, key);
    } catch (e) {
      throw withWhat(e, `map ${this.handle.name}: key`);
    }
    return this.keyBytes;
  }
}

/** A per-CPU map: a value is one V per possible CPU (the kernel's layout: each in a slot rounded up to 8 bytes). */
export class PerCpuMap<K, V> extends TypedMap<K, V[]> {
  constructor(handle: MapHandle, keyCodec: Codec<K>, valueCodec: Codec<V>) {
    super(handle, keyCodec, perCpuCodec(valueCodec, handle.cpus, handle.cpuStride));
  }
  /** Writes `value` for every CPU. */
  setAll(key: K, value: V, flags?: number): void {
    this.set(key, Array.from({ length: this.handle.cpus }, () => value), flags);
  }
}

function perCpuCodec<V>(codec: Codec<V>, cpus: number, stride: number): Codec<V[]> {
  return {
    // The single-value size, which TypedMap compares with the map's value size.
    size: codec.size,
    decode(view, offset) {
      const out = new Array<V>(cpus);
      for (let cpu = 0; cpu < cpus; cpu++) out[cpu] = codec.decode(view, offset + cpu * stride);
      return out;
    },
    encode(view, offset, values) {
      if (values.length !== cpus) throw new SkeletonError(`${values.length} values for ${cpus} CPUs`);
      for (let cpu = 0; cpu < cpus; cpu++) codec.encode(view, offset + cpu * stride, values[cpu]!);
    },
  };
}

/** A constant (`.rodata`): readable after load, written only through open()'s options. */
export interface ReadonlyVariable<T> {
  readonly name: string;
  get(): T;
}

/** A global variable of `.bss`/`.data` (`.rodata`: read-only), decoded through its generated codec. */
export class TypedVariable<T> implements ReadonlyVariable<T> {
  readonly name: string;
  private readonly map: MapHandle;
  private readonly offset: number;
  private readonly codec: Codec<T>;
  private readonly readOnly: boolean;
  private readonly bytes: Buffer;
  private readonly view: DataView;

  constructor(object: LoadedObject, section: string, name: string, codec: Codec<T>) {
    const spec = object.spec.variables.find((v) => v.section === section && v.name === name);
    if (spec === undefined || spec.size !== codec.size) {
      throw new SkeletonError(withContext([object.spec.file, `${section} ${name}`],
        spec === undefined ? 'no such variable in the object: regenerate the skeleton (bpf-load gen)'
          : `the skeleton was generated for ${codec.size} bytes, the object has ${spec.size}: regenerate it (bpf-load gen)`));
    }
    this.name = name;
    this.map = object.map(section);
    this.offset = spec.offset;
    this.codec = codec;
    this.readOnly = spec.readOnly;
    this.bytes = Buffer.alloc(this.map.valueBytes);
    this.view = viewOf(this.bytes);
  }

  get(): T {
    this.load();
    return this.codec.decode(this.view, this.offset);
  }

  /** Writes the variable, keeping the rest of its section as the kernel holds it now. */
  set(value: T): void {
    if (this.readOnly) throw new SkeletonError(`variable ${this.name}: read-only after load; set it with open({ rodata })`);
    this.load();
    this.bytes.fill(0, this.offset, this.offset + this.codec.size);
    try {
      this.codec.encode(this.view, this.offset, value);
    } catch (e) {
      throw withWhat(e, `variable ${this.name}`);
    }
    this.map.set(0, this.bytes);
  }

  private load(): void {
    if (!this.map.getInto(0, this.bytes)) throw new SkeletonError(`variable ${this.name}: its map ${this.map.name} has no value`);
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- primitives the generated codecs call (by then offsets, widths and byte order are constants) ----

/** `x` when it is an integer in [min, max]; otherwise a SkeletonError naming the field and its C type. */
export function checkInt(x: number, min: number, max: number, what: string): number {
  if (typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max) return x;
  throw new SkeletonError(`${what}: ${describe(x)} is not an integer in [${min}, ${max}]`);
}

/** `x` when it is a bigint that fits `bits` bits (signed or not). */
export function checkBigInt(x: bigint, bits: number, signed: boolean, what: string): bigint {
  if (typeof x === 'bigint' && (signed ? BigInt.asIntN(bits, x) : BigInt.asUintN(bits, x)) === x) return x;
  throw new SkeletonError(`${what}: ${describe(x)} does not fit a ${signed ? 'signed' : 'unsigned'} ${bits}-bit integer${typeof x === 'bigint' ? '' : ' (a bigint is expected)'}`);
}

/** An enum given by name or by value, as its value. */
export function enumValue(table: Readonly<Record<string, number>>, x: string | number, what: string): number;
export function enumValue(table: Readonly<Record<string, bigint>>, x: string | bigint, what: string): bigint;
export function enumValue(table: Readonly<Record<string, number | bigint>>, x: string | number | bigint, what: string): number | bigint {
  if (typeof x !== 'string') return x;
  if (Object.hasOwn(table, x)) return table[x]!;
  throw new SkeletonError(`${what}: ${JSON.stringify(x)} is not one of ${Object.keys(table).join(', ')}`);
}

export function checkNumber(x: number, what: string): number {
  if (typeof x === 'number') return x;
  throw new SkeletonError(`${what}: ${describe(x)} is not a number`);
}

export function checkArray<T>(x: readonly T[], length: number, what: string): readonly T[] {
  if (Array.isArray(x) && x.length === length) return x;
  throw new SkeletonError(`${what}: expected an array of ${length}, got ${Array.isArray(x) ? `${x.length} elements` : describe(x)}`);
}

function describe(x: unknown): string {
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'string') return JSON.stringify(x);
  return String(x);
}

/** A 128-bit integer (two 64-bit halves in the object's byte order). */
export function getInt128(v: DataView, o: number, signed: boolean, le: boolean): bigint {
  const lo = v.getBigUint64(le ? o : o + 8, le);
  const hi = v.getBigUint64(le ? o + 8 : o, le);
  const u = (hi << 64n) | lo;
  return signed ? BigInt.asIntN(128, u) : u;
}

export function setInt128(v: DataView, o: number, x: bigint, le: boolean): void {
  const u = BigInt.asUintN(128, x);
  v.setBigUint64(le ? o : o + 8, u & 0xffff_ffff_ffff_ffffn, le);
  v.setBigUint64(le ? o + 8 : o, u >> 64n, le);
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** A `char[n]`: the text up to the first NUL (UTF-8). */
export function getCString(v: DataView, o: number, n: number): string {
  let end = 0;
  let ascii = true;
  while (end < n) {
    const c = v.getUint8(o + end);
    if (c === 0) break;
    if (c > 0x7f) ascii = false;
    end++;
  }
  const bytes = new Uint8Array(v.buffer, v.byteOffset + o, end);
  return ascii ? String.fromCharCode.apply(null, bytes as unknown as number[]) : utf8.decode(bytes);
}

/** Writes a `char[n]`: UTF-8, NUL-padded; text of exactly n bytes is kept without a terminator, as C allows. */
export function setCString(v: DataView, o: number, n: number, x: string, what: string): void {
  if (typeof x !== 'string') throw new SkeletonError(`${what}: ${describe(x)} is not a string`);
  const target = new Uint8Array(v.buffer, v.byteOffset + o, n);
  const { read, written } = utf8Encoder.encodeInto(x, target);
  if (read !== x.length) throw new SkeletonError(`${what}: ${JSON.stringify(x)} is longer than ${n} bytes`);
  target.fill(0, written);
}

/** A byte array (`__u8[n]`), copied out. */
export function getBytes(v: DataView, o: number, n: number): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset + o, v.byteOffset + o + n));
}

export function setBytes(v: DataView, o: number, n: number, x: Uint8Array, what: string): void {
  if (!(x instanceof Uint8Array) || x.byteLength !== n) {
    throw new SkeletonError(`${what}: expected ${n} bytes, got ${x instanceof Uint8Array ? x.byteLength : describe(x)}`);
  }
  new Uint8Array(v.buffer, v.byteOffset + o, n).set(x);
}

/**
 * The bytes a bitfield occupies, as one unsigned number (≤ 5 bytes for ≤ 32-bit fields: exact in a double) and the
 * shift of the field inside it. Bit numbering follows the byte order, as compilers lay bitfields out.
 */
function bitWindow(v: DataView, o: number, start: number, width: number, le: boolean): { all: number; shift: number; first: number; n: number } {
  const first = Math.floor(start / 8);
  const n = Math.floor((start + width - 1) / 8) - first + 1;
  let all = 0;
  for (let i = 0; i < n; i++) all = all * 256 + v.getUint8(o + first + (le ? n - 1 - i : i));
  return { all, shift: le ? start % 8 : n * 8 - (start % 8) - width, first, n };
}

/** A bitfield of ≤ 32 bits starting `start` bits into the value at `o`. */
export function getBits(v: DataView, o: number, start: number, width: number, signed: boolean, le: boolean): number {
  const { all, shift } = bitWindow(v, o, start, width, le);
  const value = Math.floor(all / 2 ** shift) % 2 ** width;
  return signed && value >= 2 ** (width - 1) ? value - 2 ** width : value;
}

export function setBits(v: DataView, o: number, start: number, width: number, signed: boolean, le: boolean, x: number, what: string): void {
  checkInt(x, signed ? -(2 ** (width - 1)) : 0, signed ? 2 ** (width - 1) - 1 : 2 ** width - 1, what);
  const { all, shift, first, n } = bitWindow(v, o, start, width, le);
  const old = Math.floor(all / 2 ** shift) % 2 ** width;
  let next = all - old * 2 ** shift + (x < 0 ? x + 2 ** width : x) * 2 ** shift;
  for (let i = 0; i < n; i++) {
    v.setUint8(o + first + (le ? i : n - 1 - i), next % 256);
    next = Math.floor(next / 256);
  }
}

/** A bitfield wider than 32 bits, as a bigint. */
export function getBitsBig(v: DataView, o: number, start: number, width: number, signed: boolean, le: boolean): bigint {
  const first = Math.floor(start / 8);
  const n = Math.floor((start + width - 1) / 8) - first + 1;
  let all = 0n;
  for (let i = 0; i < n; i++) all = (all << 8n) | BigInt(v.getUint8(o + first + (le ? n - 1 - i : i)));
  const shift = BigInt(le ? start % 8 : n * 8 - (start % 8) - width);
  const value = BigInt.asUintN(width, all >> shift);
  return signed ? BigInt.asIntN(width, value) : value;
}

export function setBitsBig(v: DataView, o: number, start: number, width: number, signed: boolean, le: boolean, x: bigint, what: string): void {
  checkBigInt(x, width, signed, what);
  const first = Math.floor(start / 8);
  const n = Math.floor((start + width - 1) / 8) - first + 1;
  let all = 0n;
  for (let i = 0; i < n; i++) all = (all << 8n) | BigInt(v.getUint8(o + first + (le ? n - 1 - i : i)));
  const shift = BigInt(le ? start % 8 : n * 8 - (start % 8) - width);
  const mask = ((1n << BigInt(width)) - 1n) << shift;
  all = (all & ~mask) | ((BigInt.asUintN(width, x) << shift) & mask);
  for (let i = 0; i < n; i++) {
    v.setUint8(o + first + (le ? i : n - 1 - i), Number(all & 0xffn));
    all >>= 8n;
  }
}
