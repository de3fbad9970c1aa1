/**
 * Text built as UTF-8 bytes in one growing buffer: what large listings are written into instead of a string per
 * line (each string is an allocation, and every chunk of them would be encoded once more on its way to the stream).
 * Numbers are written as digits straight into the bytes; constant words are precomputed byte arrays (`asciiBytes`).
 *
 * The writing methods do not check room: a caller reserves what it is about to write (`reserve`) once per line or
 * instruction, which keeps the per-byte path free of checks. `text()` reserves for itself (its length is unbounded).
 */
export class TextBytes {
  bytes: Buffer;
  pos = 0;

  constructor(capacity: number) {
    this.bytes = Buffer.allocUnsafe(capacity);
  }

  /** Makes room for `count` more bytes, moving what was written into a larger buffer when needed. */
  reserve(count: number): void {
    if (this.pos + count <= this.bytes.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.pos + count));
    larger.set(this.bytes.subarray(0, this.pos));
    this.bytes = larger;
  }

  /**
   * Hands over what was written (a view the caller may keep: writing continues into a fresh buffer of `capacity`).
   */
  take(capacity: number): Buffer {
    const written = this.bytes.subarray(0, this.pos);
    this.bytes = Buffer.allocUnsafe(capacity);
    this.pos = 0;
    return written;
  }

  /** The bytes from `start` on as a string; they are ASCII (latin1 decodes them one to one). */
  asciiSince(start: number): string {
    return this.bytes.toString('latin1', start, this.pos);
  }

  byte(b: number): void {
    this.bytes[this.pos++] = b;
  }

  /** A precomputed ASCII word (see asciiBytes); short, so a loop beats TypedArray#set's call. */
  put(word: Uint8Array): void {
    const out = this.bytes;
    let pos = this.pos;
    for (let i = 0; i < word.length; i++) out[pos++] = word[i]!;
    this.pos = pos;
  }

  /** Any string, as UTF-8 (ASCII byte by byte; the rest through Buffer#write). Reserves its own room. */
  text(s: string): void {
    this.reserve(s.length * 3);
    const out = this.bytes;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = pos + out.write(s.slice(i), pos, 'utf8');
        return;
      }
      out[pos++] = c;
    }
    this.pos = pos;
  }

  /** `count` spaces (nothing when count ≤ 0). */
  spaces(count: number): void {
    for (let i = 0; i < count; i++) this.bytes[this.pos++] = SPACE;
  }

  /** A non-negative integer in decimal. */
  decimal(n: number): void {
    const digits = decimalDigits(n);
    const out = this.bytes;
    let at = this.pos + digits;
    this.pos = at;
    do {
      const next = Math.floor(n / 10);
      out[--at] = DIGIT_0 + (n - next * 10);
      n = next;
    } while (n > 0);
  }

  /** An integer 0 .. 2^32-1 in lowercase hex digits, no prefix, at least `minDigits` wide (zero-padded). */
  hexDigits(n: number, minDigits = 1): void {
    let digits = 1;
    for (let x = n >>> 4; x !== 0; x >>>= 4) digits++;
    if (digits < minDigits) digits = minDigits;
    const out = this.bytes;
    let at = this.pos + digits;
    this.pos = at;
    for (let i = 0; i < digits; i++) {
      out[--at] = HEX_DIGITS[n & 0xf]!;
      n >>>= 4;
    }
  }
}

const SPACE = 0x20;
const DIGIT_0 = 0x30;
const HEX_DIGITS = asciiBytes('0123456789abcdef');

/** Digits of a non-negative integer in decimal. */
export function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** An ASCII string's bytes, computed once for writing with TextBytes#put. */
export function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
