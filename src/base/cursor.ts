/**
 * A bounds-checked reader over a window of bytes. Every read checks offset + size against the window before touching
 * the DataView, so a malformed file produces the caller's typed error instead of a RangeError or garbage.
 *
 * The DataView is built with the Uint8Array's byteOffset *and* byteLength: Node Buffers are often slices of a larger
 * pool, and a DataView over `bytes.buffer` alone would read neighbouring memory.
 */
export type OutOfBounds = (what: string, offset: number, size: number, limit: number) => Error;

export class ByteReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly littleEndian: boolean;
  private readonly fail: OutOfBounds;
  /** The same bytes as a Buffer, made on the first cstring(): its latin1 decoder. */
  private text: Buffer | undefined;

  constructor(bytes: Uint8Array, littleEndian: boolean, fail: OutOfBounds) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.littleEndian = littleEndian;
    this.fail = fail;
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  /** Throws unless [offset, offset+size) lies inside the window. Safe against negative and non-integer inputs. */
  check(what: string, offset: number, size: number): void {
    // NaN fails every comparison; anything beyond the window (including > 2^53) fails the last one.
    if (!(offset >= 0 && size >= 0 && offset + size <= this.bytes.byteLength) || offset % 1 !== 0 || size % 1 !== 0) {
      throw this.fail(what, offset, size, this.bytes.byteLength);
    }
  }

  u8(offset: number, what = 'u8'): number {
    this.check(what, offset, 1);
    return this.view.getUint8(offset);
  }
  u16(offset: number, what = 'u16'): number {
    this.check(what, offset, 2);
    return this.view.getUint16(offset, this.littleEndian);
  }
  u32(offset: number, what = 'u32'): number {
    this.check(what, offset, 4);
    return this.view.getUint32(offset, this.littleEndian);
  }
  i32(offset: number, what = 'i32'): number {
    this.check(what, offset, 4);
    return this.view.getInt32(offset, this.littleEndian);
  }
  u64(offset: number, what = 'u64'): bigint {
    this.check(what, offset, 8);
    return this.view.getBigUint64(offset, this.littleEndian);
  }
  /** A 64-bit field that must fit a JS number (file offsets, sizes): larger values are out of bounds by definition. */
  u64n(offset: number, what = 'u64'): number {
    this.check(what, offset, 8);
    // Two 32-bit halves: no BigInt on the hot path of every header and symbol.
    const lo = this.view.getUint32(this.littleEndian ? offset : offset + 4, this.littleEndian);
    const hi = this.view.getUint32(this.littleEndian ? offset + 4 : offset, this.littleEndian);
    if (hi > 0x1fffff) throw this.fail(what, offset, 8, this.bytes.byteLength);
    return hi * 0x1_0000_0000 + lo;
  }

  /** A view (not a copy) of [offset, offset+size). */
  sub(offset: number, size: number, what = 'range'): Uint8Array {
    this.check(what, offset, size);
    return this.bytes.subarray(offset, offset + size);
  }

  /** NUL-terminated string starting at offset; the terminator must lie inside the window. */
  cstring(offset: number, what = 'string'): string {
    this.check(what, offset, 1);
    const end = this.bytes.indexOf(0, offset);
    if (end < 0) throw this.fail(`${what} (no NUL terminator)`, offset, this.bytes.byteLength - offset + 1, this.bytes.byteLength);
    for (let i = offset; i < end; i++) {
      if (this.bytes[i]! >= 0x80) return decoder.decode(this.bytes.subarray(offset, end));
    }
    // ASCII (every name, in practice): Buffer's latin1 decoder makes one flat string straight from the bytes, with no
    // view allocated — and a flat string is the cheapest to hash when names become map keys.
    this.text ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    return this.text.toString('latin1', offset, end);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Section and symbol names are bytes; decode as UTF-8 (ASCII in practice) without throwing. */
export function decodeName(bytes: Uint8Array): string {
  // ASCII fast path: TextDecoder costs far more than the handful of bytes a name has.
  if (bytes.byteLength <= 64) {
    let s = '';
    for (let i = 0; i < bytes.byteLength; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return decoder.decode(bytes);
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decoder.decode(bytes);
}

/** Lower-case hex of bytes, no separators. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}
