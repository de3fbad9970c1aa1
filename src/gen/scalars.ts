/**
 * Shapes of scalar values (integers, floats, byte arrays): how the generated code reads, writes and types them.
 * Composite shapes (structs, unions, arrays, enums) are built from these in types.ts.
 */
import type { BtfInt } from '../btf/index.js';

/** How a value of some type is read, written and typed; `off` is a JS expression for its byte offset in `v`. */
export interface Shape {
  readonly ts: string;
  /** Bytes the value occupies (what a union compares to pick the member it writes). */
  readonly size: number;
  read(off: string, depth: number): string;
  write(off: string, x: string, depth: number): string;
  /** Composites: the generated decode/encode functions, which a codec can use as they are. */
  readonly functions?: { readonly decode: string; readonly encode: string };
}

export function syntheticInt(size: number, signed: boolean): BtfInt {
  return { kind: 'int', id: 0, name: '', size, signed, char: false, bool: false, bitOffset: 0, bits: size * 8 };
}

export function intShape(t: BtfInt, le: boolean, what: string): Shape {
  if (t.bitOffset !== 0 || t.bits !== t.size * 8) {
    // An int carrying its own bit range outside a struct: read it as a bitfield of its storage.
    const big = t.bits > 32;
    return {
      ts: big ? 'bigint' : 'number',
      size: t.size,
      read: (off) => `${big ? 'getBitsBig' : 'getBits'}(v, ${off}, ${t.bitOffset}, ${t.bits}, ${t.signed}, ${le})`,
      write: (off, x) => `${big ? 'setBitsBig' : 'setBits'}(v, ${off}, ${t.bitOffset}, ${t.bits}, ${t.signed}, ${le}, ${x}, ${JSON.stringify(what)});`,
    };
  }
  if (t.bool && t.size === 1) {
    return { ts: 'boolean', size: 1, read: (off) => `v.getUint8(${off}) !== 0`, write: (off, x) => `v.setUint8(${off}, ${x} ? 1 : 0);` };
  }
  if (t.size === 16) {
    return {
      ts: 'bigint',
      size: 16,
      read: (off) => `getInt128(v, ${off}, ${t.signed}, ${le})`,
      write: (off, x) => `setInt128(v, ${off}, checkBigInt(${x}, 128, ${t.signed}, ${JSON.stringify(what)}), ${le});`,
    };
  }
  if (t.size !== 1 && t.size !== 2 && t.size !== 4 && t.size !== 8) return bytesShape(t.size, what);
  const wide = t.size === 8;
  return {
    ts: wide ? 'bigint' : 'number',
    size: t.size,
    read: (off) => readInt(t.size, t.signed, le)(off, wide),
    write: (off, x) => writeInt(t.size, t.signed, le, off, x, wide, what),
  };
}

/** An expression reading a 1/2/4/8-byte integer; `asBigint` says which JS type the caller wants. */
export function readInt(size: number, signed: boolean, le: boolean): (off: string, asBigint: boolean) => string {
  return (off, asBigint) => {
    const bits = size * 8;
    if (size === 8) {
      const expr = `v.get${signed ? 'BigInt64' : 'BigUint64'}(${off}, ${le})`;
      return asBigint ? expr : `Number(${expr})`;
    }
    const expr = size === 1 ? `v.get${signed ? 'Int8' : 'Uint8'}(${off})` : `v.get${signed ? 'Int' : 'Uint'}${bits}(${off}, ${le})`;
    return asBigint ? `BigInt(${expr})` : expr;
  };
}

/** A statement writing a 1/2/4/8-byte integer from `x` (a bigint when `isBigint`), range-checked. */
export function writeInt(size: number, signed: boolean, le: boolean, off: string, x: string, isBigint: boolean, what: string): string {
  const bits = size * 8;
  if (size === 8) {
    const value = isBigint ? `checkBigInt(${x}, 64, ${signed}, ${JSON.stringify(what)})` : `BigInt(checkInt(${x}, ${signed ? '-Number.MAX_SAFE_INTEGER' : '0'}, Number.MAX_SAFE_INTEGER, ${JSON.stringify(what)}))`;
    return `v.set${signed ? 'BigInt64' : 'BigUint64'}(${off}, ${value}, ${le});`;
  }
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const n = isBigint ? `Number(checkBigInt(${x}, ${bits}, ${signed}, ${JSON.stringify(what)}))` : `checkInt(${x}, ${min}, ${max}, ${JSON.stringify(what)})`;
  return size === 1 ? `v.set${signed ? 'Int8' : 'Uint8'}(${off}, ${n});` : `v.set${signed ? 'Int' : 'Uint'}${bits}(${off}, ${n}, ${le});`;
}

export function floatShape(size: number, le: boolean, what: string): Shape {
  if (size !== 4 && size !== 8) return bytesShape(size, what);
  const bits = size * 8;
  return {
    ts: 'number',
    size,
    read: (off) => `v.getFloat${bits}(${off}, ${le})`,
    write: (off, x) => `v.setFloat${bits}(${off}, checkNumber(${x}, ${JSON.stringify(what)}), ${le});`,
  };
}

export function bytesShape(size: number, what: string): Shape {
  return { ts: 'Uint8Array', size, read: (off) => `getBytes(v, ${off}, ${size})`, write: (off, x) => `setBytes(v, ${off}, ${size}, ${x}, ${JSON.stringify(what)});` };
}

/** Keys, values and variables without BTF: unsigned numbers for 1/2/4 bytes, bigint for 8, bytes otherwise. */
export function sizedShape(size: number, le: boolean): Shape {
  if (size === 1 || size === 2 || size === 4 || size === 8) return intShape(syntheticInt(size, false), le, `${size}-byte value`);
  return bytesShape(size, `${size}-byte value`);
}
