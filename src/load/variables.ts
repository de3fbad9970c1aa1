import { BpfLoadError, withContext } from '../base/errors.js';
import type { Btf, BtfValue } from '../btf/index.js';
import type { BpfObjectSpec, MapSpec, VariableSpec } from '../object/index.js';
import { encode, type MapBytes, type MapHandle } from './map-handle.js';

export class VariableError extends BpfLoadError {
  override name = 'VariableError';
}

/**
 * A global variable of a loaded object: a window onto its data map's single value. `.rodata` is frozen after load
 * (the verifier relies on it), so it can only be set before, through LoadOptions.globals.
 *
 * Where the kernel maps global data into user space (BPF_F_MMAPABLE, Linux ≥ 5.5) reads and writes are plain memory
 * accesses, as libbpf's skeletons do; elsewhere each is a bpf(2) call.
 */
export class VariableHandle {
  readonly spec: VariableSpec;
  readonly name: string;
  private readonly map: MapHandle;
  /** Plain 1/2/4/8-byte integers (most counters and flags) are read and written without the BTF walk. */
  private readonly plainInt: { readonly size: 1 | 2 | 4 | 8; readonly signed: boolean } | undefined;

  constructor(spec: VariableSpec, map: MapHandle) {
    this.spec = spec;
    this.name = spec.name;
    this.map = map;
    this.plainInt = plainIntType(map.btf, spec);
  }

  /** The variable's bytes as the kernel holds them now (a copy). */
  bytes(): Buffer {
    const mapped = this.map.mappedValue();
    if (mapped !== undefined) return Buffer.from(mapped.subarray(this.spec.offset, this.spec.offset + this.spec.size));
    const value = this.map.get(0);
    if (value === undefined) throw new VariableError(`variable ${this.name}: its map ${this.map.name} has no value`);
    return value.subarray(this.spec.offset, this.spec.offset + this.spec.size);
  }

  /** Decoded through BTF when the object describes the variable (structs as objects, enums by name …). */
  get(): BtfValue {
    const mapped = this.map.mappedValue();
    if (mapped !== undefined && this.plainInt !== undefined) return readPlainInt(mapped, this.spec.offset, this.plainInt);
    // The mapped memory is decoded in place: formatValue copies what it returns.
    const bytes = mapped === undefined ? this.bytes() : mapped.subarray(this.spec.offset, this.spec.offset + this.spec.size);
    if (this.spec.btfTypeId !== undefined && this.map.btf !== undefined) return this.map.btf.formatValue(this.spec.btfTypeId, bytes);
    const v = bytes.byteLength === 8 ? bytes.readBigUInt64LE(0) : undefined;
    if (v !== undefined) return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    return bytes.byteLength === 4 ? bytes.readUInt32LE(0) : bytes.byteLength === 2 ? bytes.readUInt16LE(0) : bytes.byteLength === 1 ? bytes[0]! : bytes.toString('hex');
  }

  /** Writes the variable (the rest of its section is kept). Refused for .rodata, which is frozen after load. */
  set(value: MapBytes): void {
    if (this.spec.readOnly) {
      throw new VariableError(`variable ${this.name}: ${this.spec.section} is frozen after load; set it before with LoadOptions.globals`);
    }
    const mapped = this.map.mappedValue();
    if (mapped !== undefined) {
      if (typeof value === 'number' && writePlainNumber(mapped, this.spec.offset, this.spec.size, value)) return;
      mapped.set(encode(value, this.spec.size, `variable ${this.name}`), this.spec.offset);
      return;
    }
    const whole = this.map.get(0) ?? Buffer.alloc(this.map.valueSize);
    whole.set(encode(value, this.spec.size, `variable ${this.name}`), this.spec.offset);
    this.map.set(0, whole);
  }
}

/** The variable's type when it is an integer that fills 1, 2, 4 or 8 bytes (no bitfield, not bool), else undefined. */
function plainIntType(btf: Btf | undefined, spec: VariableSpec): { size: 1 | 2 | 4 | 8; signed: boolean } | undefined {
  if (btf === undefined || spec.btfTypeId === undefined || !btf.littleEndian) return undefined;
  let t;
  try {
    t = btf.type(btf.resolve(spec.btfTypeId));
  } catch {
    return undefined;
  }
  if (t.kind !== 'int' || t.bool || t.bitOffset !== 0 || t.bits !== t.size * 8 || t.size !== spec.size) return undefined;
  return t.size === 1 || t.size === 2 || t.size === 4 || t.size === 8 ? { size: t.size, signed: t.signed } : undefined;
}

const TWO_32 = 0x1_0000_0000;
/** Largest high word whose value hi·2^32 + lo stays a safe integer (formatValue's number/decimal-string boundary). */
const SAFE_HIGH = 0x1f_ffff;

/** What formatValue returns for a plain little-endian integer: a number, or a decimal string beyond 2^53. */
function readPlainInt(bytes: Buffer, offset: number, t: { size: 1 | 2 | 4 | 8; signed: boolean }): BtfValue {
  switch (t.size) {
    case 1: return t.signed ? bytes.readInt8(offset) : bytes[offset]!;
    case 2: return t.signed ? bytes.readInt16LE(offset) : bytes.readUInt16LE(offset);
    case 4: return t.signed ? loadU32(bytes, offset) | 0 : loadU32(bytes, offset);
    case 8: {
      const lo = loadU32(bytes, offset);
      const hi = t.signed ? loadU32(bytes, offset + 4) | 0 : loadU32(bytes, offset + 4);
      if (hi <= SAFE_HIGH && hi >= -SAFE_HIGH) return hi * TWO_32 + lo;
      return (t.signed ? bytes.readBigInt64LE(offset) : bytes.readBigUInt64LE(offset)).toString();
    }
  }
}

// Byte loads and stores: Buffer#readUInt32LE/writeUInt32LE check their arguments on every call (~27 ns each on
// Node 20 against ~8 ns for four indexed accesses), which was most of a variable's get()/set().
function loadU32(bytes: Buffer, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

function storeU32(bytes: Buffer, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
  bytes[offset + 2] = value >>> 16;
  bytes[offset + 3] = value >>> 24;
}

/**
 * Writes a safe integer that fits `size` bytes (the range encode() accepts) little-endian, without a BigInt; false
 * (nothing written) for anything else, which encode() then handles or refuses with its message.
 */
function writePlainNumber(bytes: Buffer, offset: number, size: number, value: number): boolean {
  if (!Number.isSafeInteger(value)) return false;
  switch (size) {
    case 1: if (value < -0x80 || value > 0xff) return false; bytes[offset] = value & 0xff; return true;
    case 2: if (value < -0x8000 || value > 0xffff) return false; bytes.writeUInt16LE(value & 0xffff, offset); return true;
    case 4: if (value < -0x8000_0000 || value > 0xffff_ffff) return false; storeU32(bytes, offset, value >>> 0); return true;
    case 8:
      storeU32(bytes, offset, value >>> 0);
      storeU32(bytes, offset + 4, Math.floor(value / TWO_32) >>> 0);
      return true;
    default: return false;
  }
}

/**
 * Initial contents of data maps with LoadOptions.globals applied: values by variable name, written over the
 * section's bytes before the map is created (the only way to set .rodata).
 */
export function dataContentsWithGlobals(spec: BpfObjectSpec, map: MapSpec, globals: Readonly<Record<string, MapBytes>>): Uint8Array | undefined {
  if (map.source !== 'data') return undefined;
  let contents: Uint8Array | undefined;
  for (const v of spec.variables) {
    if (v.section !== map.section || !Object.hasOwn(globals, v.name)) continue;
    // .bss has no contents in the spec (the kernel zero-fills it): the buffer exists only once a global is set.
    contents ??= map.contents === undefined ? new Uint8Array(map.valueSize) : Uint8Array.from(map.contents);
    contents.set(encode(globals[v.name]!, v.size, `global ${v.name}`), v.offset);
  }
  return contents ?? map.contents;
}

/** Names in LoadOptions.globals that match no variable: a typo must not pass silently. */
export function unknownGlobals(spec: BpfObjectSpec, globals: Readonly<Record<string, MapBytes>>): string[] {
  const known = new Set(spec.variables.map((v) => v.name));
  return Object.keys(globals).filter((n) => !known.has(n));
}

export function variableNotFound(spec: BpfObjectSpec, name: string): VariableError {
  return new VariableError(withContext([spec.file], `no global variable named ${name} (variables: ${spec.variables.map((v) => v.name).join(', ') || 'none'})`));
}
