import { decodeName } from '../base/cursor.js';
import type { BtfInt, BtfMember, BtfType, BtfTypeLookup, BtfValue } from './types.js';

/**
 * Nesting limit for values. A finite type cannot contain itself by value (that is caught separately, exactly), so this
 * only stops absurdly deep but acyclic chains (arrays of arrays of ...) before they exhaust the JS stack.
 */
const MAX_DEPTH = 512;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// Long: one recursive walk over every BTF kind, sharing the cycle guard and depth limit it closes over.
export function formatBtfValue(btf: BtfTypeLookup, rootId: number, bytes: Uint8Array, littleEndian: boolean): BtfValue {
  const size = btf.sizeof(rootId);
  if (bytes.byteLength !== size) {
    throw btf.error({ typeId: rootId }, `value is ${bytes.byteLength} bytes, but ${btf.typeLabel(rootId)} is ${size} bytes`);
  }
  const onPath = new Set<number>();

  const fail = (id: number, cause: string) => btf.error({ typeId: rootId }, `formatting [${id}]: ${cause}`);

  /** `data` starts at the value; its length is at least the value's size (checked by `slice`). */
  const format = (id: number, data: Uint8Array, depth: number): BtfValue => {
    if (depth > MAX_DEPTH) throw fail(id, `nested more than ${MAX_DEPTH} levels deep`);
    const resolvedId = btf.resolve(id);
    if (onPath.has(resolvedId)) throw fail(resolvedId, 'type contains itself');
    const t = btf.type(resolvedId);
    onPath.add(resolvedId);
    try {
      return formatResolved(t, data, depth);
    } finally {
      onPath.delete(resolvedId);
    }
  };

  const slice = (id: number, data: Uint8Array, offset: number, length: number, what: string): Uint8Array => {
    if (offset + length > data.byteLength) {
      throw fail(id, `${what} [${offset}, +${length}) lies outside the ${data.byteLength}-byte value`);
    }
    return data.subarray(offset, offset + length);
  };

  const formatResolved = (t: BtfType, data: Uint8Array, depth: number): BtfValue => {
    switch (t.kind) {
      case 'int': {
        const raw = readBits(slice(t.id, data, 0, t.size, 'int'), t.bitOffset, t.bits, littleEndian);
        return intValue(t, raw, t.bits);
      }
      case 'enum': case 'enum64': {
        const raw = readUnsigned(slice(t.id, data, 0, t.size, t.kind), littleEndian);
        return enumValue(t, t.signed ? BigInt.asIntN(t.size * 8, raw) : raw);
      }
      case 'ptr':
        return `0x${readUnsigned(slice(t.id, data, 0, 8, 'pointer'), littleEndian).toString(16)}`;
      case 'float':
        return floatValue(slice(t.id, data, 0, t.size, 'float'), littleEndian);
      case 'array': {
        const elemSize = btf.sizeof(t.type);
        if (isCharType(btf, t.type)) {
          const text = printableString(slice(t.id, data, 0, t.nelems, 'char array'));
          if (text !== undefined) return text;
        }
        // Zero-sized elements carry no bytes to show; iterating nelems of them would only burn time.
        if (elemSize === 0) return [];
        slice(t.id, data, 0, elemSize * t.nelems, 'array');
        const out: BtfValue[] = [];
        for (let i = 0; i < t.nelems; i++) out.push(format(t.type, data.subarray(i * elemSize), depth + 1));
        return out;
      }
      case 'struct': case 'union': {
        const body = slice(t.id, data, 0, t.size, t.kind);
        const out: Record<string, BtfValue> = {};
        for (const m of t.members) {
          const value = formatMember(t.id, m, body, depth);
          if (m.name !== '') {
            setKey(out, m.name, value);
          } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
            // An anonymous struct/union member's fields belong to the enclosing struct, as in C.
            for (const [k, v] of Object.entries(value)) setKey(out, k, v);
          }
        }
        return out;
      }
      case 'datasec': {
        const body = slice(t.id, data, 0, t.size, 'datasec');
        const out: Record<string, BtfValue> = {};
        for (const v of t.vars) {
          const target = btf.type(v.type);
          if (target.kind !== 'var') continue;
          setKey(out, target.name, format(target.type, slice(t.id, body, v.offset, v.size, `variable ${target.name}`), depth + 1));
        }
        return out;
      }
      case 'var':
        return format(t.type, data, depth + 1);
      case 'void': case 'fwd': case 'func': case 'func_proto': case 'decl_tag':
      case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag':
        throw fail(t.id, `cannot format a value of kind ${t.kind}`);
    }
  };

  const formatMember = (structId: number, m: BtfMember, body: Uint8Array, depth: number): BtfValue => {
    const memberType = btf.type(btf.resolve(m.type));
    const intBits = memberType.kind === 'int' && (memberType.bitOffset !== 0 || memberType.bits !== memberType.size * 8);
    if (m.bitfieldSize === 0 && m.bitOffset % 8 === 0 && !intBits) {
      return format(m.type, body.subarray(m.bitOffset / 8), depth + 1);
    }
    // Bitfield: either kind_flag's explicit width, or (old encoding) an int whose bits/offset describe it.
    if (memberType.kind !== 'int' && memberType.kind !== 'enum' && memberType.kind !== 'enum64') {
      throw fail(structId, `bitfield member ${m.name || '(anon)'} has type ${memberType.kind}`);
    }
    const width = m.bitfieldSize !== 0 ? m.bitfieldSize : memberType.kind === 'int' ? memberType.bits : memberType.size * 8;
    const start = m.bitOffset + (memberType.kind === 'int' && m.bitfieldSize === 0 ? memberType.bitOffset : 0);
    if (width > 128) throw fail(structId, `bitfield member ${m.name || '(anon)'} is ${width} bits wide`);
    const firstByte = Math.floor(start / 8);
    const lastByte = Math.floor((start + width - 1) / 8);
    const window = slice(structId, body, firstByte, lastByte - firstByte + 1, `bitfield ${m.name || '(anon)'}`);
    const raw = readBits(window, start % 8, width, littleEndian);
    if (memberType.kind === 'int') return intValue(memberType, raw, width);
    return enumValue(memberType, memberType.signed ? BigInt.asIntN(width, raw) : raw);
  };

  return format(rootId, bytes, 0);
}

function setKey(out: Record<string, BtfValue>, key: string, value: BtfValue): void {
  // defineProperty so that a member called `__proto__` is a plain key, not a prototype change.
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/** All bytes as one unsigned integer in the given byte order. */
function readUnsigned(bytes: Uint8Array, littleEndian: boolean): bigint {
  let v = 0n;
  for (let i = 0; i < bytes.byteLength; i++) {
    v = (v << 8n) | BigInt(bytes[littleEndian ? bytes.byteLength - 1 - i : i]!);
  }
  return v;
}

/**
 * `width` bits starting `bitOffset` bits into `bytes`. Bit numbering follows the byte order, as compilers lay out
 * bitfields: little-endian counts from the least significant bit of the first byte, big-endian from the most
 * significant bit of the first byte.
 */
function readBits(bytes: Uint8Array, bitOffset: number, width: number, littleEndian: boolean): bigint {
  const all = readUnsigned(bytes, littleEndian);
  const total = BigInt(bytes.byteLength * 8);
  const shift = littleEndian ? BigInt(bitOffset) : total - BigInt(bitOffset) - BigInt(width);
  return (all >> shift) & ((1n << BigInt(width)) - 1n);
}

function intValue(t: BtfInt, raw: bigint, width: number): BtfValue {
  if (t.bool) return raw !== 0n;
  return jsonInteger(t.signed ? BigInt.asIntN(width, raw) : raw);
}

function enumValue(t: { values: ReadonlyArray<{ name: string; value: number | bigint }> }, value: bigint): BtfValue {
  for (const v of t.values) {
    if (BigInt(v.value) === value) return v.name;
  }
  return jsonInteger(value);
}

function jsonInteger(v: bigint): number | string {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
}

function floatValue(bytes: Uint8Array, littleEndian: boolean): BtfValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let v: number;
  if (bytes.byteLength === 4) v = view.getFloat32(0, littleEndian);
  else if (bytes.byteLength === 8) v = view.getFloat64(0, littleEndian);
  // half, x87 extended and quad precision have no JS number: show the bits.
  else return `0x${readUnsigned(bytes, littleEndian).toString(16)}`;
  return Number.isFinite(v) ? v : String(v);
}

/** Plain `char` (any qualifiers/typedefs) or an int marked BTF_INT_CHAR: arrays of these are text. */
function isCharType(btf: BtfTypeLookup, id: number): boolean {
  const t = btf.type(btf.resolve(id));
  return t.kind === 'int' && t.size === 1 && !t.bool && (t.char || t.name === 'char');
}

/** The text up to the first NUL when everything before it is printable ASCII and everything after it is NUL. */
function printableString(bytes: Uint8Array): string | undefined {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.byteLength;
  for (let i = 0; i < end; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c > 0x7e) return undefined;
  }
  for (let i = end; i < bytes.byteLength; i++) if (bytes[i] !== 0) return undefined;
  return decodeName(bytes.subarray(0, end));
}
