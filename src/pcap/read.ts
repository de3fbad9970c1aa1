/**
 * Strict pcap and pcapng readers over bytes (no files, no kernel). Both byte orders, microsecond and nanosecond
 * pcap, pcapng with several sections and interfaces (if_tsresol honoured). Truncation and corruption are
 * CaptureErrors naming the file, the packet or block, and the byte offset.
 */
import { ByteReader } from '../base/cursor.js';
import { BpfLoadError, withContext } from '../base/errors.js';

export class CaptureError extends BpfLoadError {
  override name = 'CaptureError';
  readonly offset: number | undefined;
  constructor(file: string | undefined, where: string | undefined, offset: number | undefined, cause: string) {
    super(withContext([file, where, offset === undefined ? undefined : `offset ${offset}`], cause));
    this.offset = offset;
  }
}

export interface CapturedPacket {
  /** 1-based position in the capture, as tcpdump and Wireshark number packets. */
  readonly index: number;
  /** Seconds since the epoch, and the fraction in nanoseconds. */
  readonly seconds: number;
  readonly nanos: number;
  /** The captured bytes (a view into the capture, not a copy). */
  readonly data: Uint8Array;
  /** The packet's length on the wire (≥ data.length when the capture cut it). */
  readonly length: number;
  /** DLT_* of the interface it was captured on. */
  readonly linkType: number;
}

export type CaptureFormat = 'pcap' | 'pcapng';

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER = 0x1a2b3c4d;
/** libpcap refuses records larger than this (MAXIMUM_SNAPLEN), whatever the header's snaplen says. */
const MAX_RECORD = 262144;

export function captureFormat(bytes: Uint8Array, file?: string): CaptureFormat {
  if (bytes.byteLength < 4) throw new CaptureError(file, undefined, 0, `${bytes.byteLength} bytes is too short for a capture file`);
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (magic === PCAPNG_SHB) return 'pcapng';
  for (const m of [PCAP_MAGIC_US, PCAP_MAGIC_NS]) {
    if (magic === m || magic === byteSwap32(m)) return 'pcap';
  }
  throw new CaptureError(file, undefined, 0, `not a pcap or pcapng file (magic 0x${magic.toString(16).padStart(8, '0')})`);
}

function byteSwap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function outOfBounds(file: string | undefined) {
  return (what: string, offset: number, size: number, limit: number): Error =>
    new CaptureError(file, what, offset, `truncated: ${size} bytes needed, the file has ${Math.max(0, limit - offset)} left`);
}

export interface CaptureHeader {
  readonly format: CaptureFormat;
  /** The first interface's link type (pcap: the only one). */
  readonly linkType: number;
  readonly snaplen: number;
}

/** The global header (pcap) or the first interface (pcapng): what a filter must be compiled for. */
export function readCaptureHeader(bytes: Uint8Array, file?: string): CaptureHeader {
  const format = captureFormat(bytes, file);
  if (format === 'pcap') {
    const h = pcapHeader(bytes, file);
    return { format, linkType: h.linkType, snaplen: h.snaplen };
  }
  for (const p of readPcapng(bytes, file, true)) return { format, linkType: p.linkType, snaplen: 0 };
  throw new CaptureError(file, undefined, undefined, 'pcapng file without an interface description block');
}

/** Every packet of a pcap or pcapng capture, in order. */
export function readCapture(bytes: Uint8Array, file?: string): Iterable<CapturedPacket> {
  return captureFormat(bytes, file) === 'pcap' ? readPcap(bytes, file) : readPcapng(bytes, file, false);
}

function pcapHeader(bytes: Uint8Array, file: string | undefined) {
  const le = new ByteReader(bytes, true, outOfBounds(file));
  const magic = le.u32(0, 'pcap header');
  const littleEndian = magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS;
  const r = new ByteReader(bytes, littleEndian, outOfBounds(file));
  const nanosecond = r.u32(0) === PCAP_MAGIC_NS;
  r.check('pcap header', 0, 24);
  const major = r.u16(4);
  if (major !== 2) throw new CaptureError(file, 'pcap header', 4, `version ${major}.${r.u16(6)}, only 2.x exists`);
  const snaplen = r.u32(16);
  // The upper bits carry FCS information (pcap spec, LinkType and additional information).
  const linkType = r.u32(20) & 0x0fffffff;
  return { r, nanosecond, snaplen, linkType };
}

function* readPcap(bytes: Uint8Array, file: string | undefined): Generator<CapturedPacket> {
  const c = new CaptureCursor(bytes, file);
  while (c.next()) yield { index: c.index, seconds: c.seconds, nanos: c.nanos, data: c.data(), length: c.length, linkType: c.linkType };
}

interface Interface {
  readonly linkType: number;
  readonly snaplen: number;
  /** Timestamp units per second. */
  readonly unitsPerSecond: bigint;
}

const BLOCK = { IDB: 1, PB: 2, SPB: 3, EPB: 6 } as const;

function* readPcapng(bytes: Uint8Array, file: string | undefined, interfacesOnly: boolean): Generator<CapturedPacket> {
  let r = new ByteReader(bytes, true, outOfBounds(file));
  let interfaces: Interface[] = [];
  let offset = 0;
  let index = 1;
  for (let block = 1; offset < bytes.byteLength; block++) {
    const where = `block ${block}`;
    if (offset + 12 > bytes.byteLength) throw new CaptureError(file, where, offset, `truncated block header (${bytes.byteLength - offset} bytes left)`);
    let type = r.u32(offset);
    if (type === PCAPNG_SHB) {
      // A section header decides the byte order of everything up to the next one.
      const order = r.u32(offset + 8);
      if (order !== PCAPNG_BYTE_ORDER && order !== byteSwap32(PCAPNG_BYTE_ORDER)) {
        throw new CaptureError(file, where, offset + 8, `section header byte-order magic 0x${order.toString(16)} is neither 0x1a2b3c4d nor its swap`);
      }
      r = new ByteReader(bytes, order === PCAPNG_BYTE_ORDER, outOfBounds(file));
      type = r.u32(offset);
      interfaces = [];
    } else if (block === 1) {
      throw new CaptureError(file, where, offset, 'a pcapng file must start with a section header block');
    }
    const total = r.u32(offset + 4);
    if (total < 12 || total % 4 !== 0) throw new CaptureError(file, where, offset + 4, `block length ${total} is not a multiple of 4 of at least 12`);
    if (offset + total > bytes.byteLength) throw new CaptureError(file, where, offset, `truncated: the block says ${total} bytes, ${bytes.byteLength - offset} are left`);
    if (r.u32(offset + total - 4) !== total) {
      throw new CaptureError(file, where, offset + total - 4, `trailing block length ${r.u32(offset + total - 4)} differs from the leading ${total}`);
    }
    const body = offset + 8;
    const bodyEnd = offset + total - 4;
    const need = (size: number) => {
      if (body + size > bodyEnd) throw new CaptureError(file, where, body, `block of type ${type} too short: ${size} bytes of fields, ${bodyEnd - body} in the block`);
    };
    if (type === PCAPNG_SHB) {
      need(16);
      const major = r.u16(body + 4);
      if (major !== 1) throw new CaptureError(file, where, body + 4, `pcapng version ${major}.${r.u16(body + 6)}, only 1.x exists`);
    } else if (type === BLOCK.IDB) {
      need(8);
      interfaces.push({ linkType: r.u16(body), snaplen: r.u32(body + 4), unitsPerSecond: tsResolution(r, body + 8, bodyEnd, file, where) });
      if (interfacesOnly) {
        yield { index: 0, seconds: 0, nanos: 0, data: new Uint8Array(0), length: 0, linkType: interfaces[0]!.linkType };
        return;
      }
    } else if (type === BLOCK.EPB || type === BLOCK.PB) {
      need(20);
      const ifaceId = type === BLOCK.EPB ? r.u32(body) : r.u16(body);
      const iface = interfaces[ifaceId];
      if (iface === undefined) throw new CaptureError(file, where, body, `packet on interface ${ifaceId}, but the section describes ${interfaces.length}`);
      const captured = r.u32(body + 12);
      const length = r.u32(body + 16);
      if (body + 20 + captured > bodyEnd) {
        throw new CaptureError(file, `packet ${index} (${where})`, body + 12, `captured length ${captured} overruns the block (${bodyEnd - body - 20} bytes)`);
      }
      const { seconds, nanos } = timestamp(r.u32(body + 4), r.u32(body + 8), iface.unitsPerSecond);
      if (!interfacesOnly) yield { index, seconds, nanos, data: bytes.subarray(body + 20, body + 20 + captured), length: Math.max(length, captured), linkType: iface.linkType };
      index++;
    } else if (type === BLOCK.SPB) {
      need(4);
      const iface = interfaces[0];
      if (iface === undefined) throw new CaptureError(file, where, body, 'simple packet block before any interface description');
      const length = r.u32(body);
      const captured = Math.min(length, iface.snaplen === 0 ? length : iface.snaplen, bodyEnd - body - 4);
      if (!interfacesOnly) yield { index, seconds: 0, nanos: 0, data: bytes.subarray(body + 4, body + 4 + captured), length, linkType: iface.linkType };
      index++;
    }
    // Name resolution, statistics, decryption secrets, custom blocks: nothing a filter looks at.
    offset += total;
  }
}

/** if_tsresol (option 9): 10^-n or, with the top bit set, 2^-n seconds per unit; microseconds when absent. */
function tsResolution(r: ByteReader, start: number, end: number, file: string | undefined, where: string): bigint {
  let units = 1_000_000n;
  for (let o = start; o + 4 <= end;) {
    const code = r.u16(o);
    const length = r.u16(o + 2);
    if (code === 0) break; // opt_endofopt
    if (o + 4 + length > end) throw new CaptureError(file, where, o, `option ${code} of ${length} bytes overruns the block`);
    if (code === 9 && length >= 1) {
      const v = r.u8(o + 4);
      const exponent = BigInt(v & 0x7f);
      if (exponent > 30n && (v & 0x80) === 0) throw new CaptureError(file, where, o + 4, `if_tsresol 10^-${exponent} is finer than any clock`);
      units = (v & 0x80) !== 0 ? 1n << exponent : 10n ** exponent;
    }
    o += 4 + ((length + 3) & ~3);
  }
  return units;
}

function timestamp(high: number, low: number, unitsPerSecond: bigint): { seconds: number; nanos: number } {
  if (unitsPerSecond === 1_000_000n) {
    // The common case stays in doubles: 2^32·high + low microseconds is exact below 2^53.
    const micros = high * 0x1_0000_0000 + low;
    const seconds = Math.floor(micros / 1e6);
    return { seconds, nanos: (micros - seconds * 1e6) * 1000 };
  }
  const units = (BigInt(high) << 32n) | BigInt(low);
  const seconds = units / unitsPerSecond;
  const nanos = ((units % unitsPerSecond) * 1_000_000_000n) / unitsPerSecond;
  return { seconds: Number(seconds), nanos: Number(nanos) };
}

/** Where a streamed capture's bytes come from: fills `into` from file position `position`, returns the count (0 at the end). */
export type CaptureSource = (into: Uint8Array, position: number) => number;

const CHUNK = 1 << 22;

/**
 * Walks a capture without allocating per packet: after each `next()` that returns true, the fields describe the
 * current packet and its bytes are `bytes[dataOffset, dataOffset + captured)` — `bytes` and `view` may change
 * between packets when streaming. For filtering millions of packets; readCapture() is the convenient form. Errors
 * are those of readCapture, at the same packets and file offsets.
 */
export class CaptureCursor {
  /** The window holding the current packet (the whole capture unless streaming). */
  bytes: Uint8Array;
  /** A DataView over all of `bytes`. */
  view: DataView;
  index = 0;
  seconds = 0;
  nanos = 0;
  dataOffset = 0;
  captured = 0;
  length = 0;
  linkType = 0;
  /** The snapshot length the pcap header states (0 for pcapng, whose interfaces each state their own). */
  snaplen = 0;
  readonly #file: string | undefined;
  readonly #pcap: { littleEndian: boolean; nanosecond: boolean; limit: number } | undefined;
  readonly #packets: Iterator<CapturedPacket> | undefined;
  readonly #source: CaptureSource | undefined;
  /** File position of bytes[0], and how many bytes of the window are valid. */
  #base = 0;
  #valid: number;
  #offset = 24;

  /**
   * Over a whole capture in memory, or streamed from `source` in 4 MiB windows (pcap only: pcapng is read whole,
   * its blocks refer to interfaces described earlier). The first window must hold the file header.
   */
  constructor(bytes: Uint8Array, file?: string, source?: CaptureSource) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#valid = bytes.byteLength;
    this.#file = file;
    if (captureFormat(bytes, file) === 'pcap') {
      const h = pcapHeader(bytes, file);
      this.#pcap = { littleEndian: h.r.littleEndian, nanosecond: h.nanosecond, limit: Math.max(h.snaplen, MAX_RECORD) };
      this.linkType = h.linkType;
      this.snaplen = h.snaplen;
      this.#source = source;
    } else {
      this.linkType = readCaptureHeader(bytes, file).linkType;
      this.#packets = readPcapng(bytes, file, false)[Symbol.iterator]();
    }
  }

  /** Streams a pcap capture through `source`; reads a pcapng one whole. */
  static stream(source: CaptureSource, file?: string, windowSize = CHUNK): CaptureCursor {
    const first = new Uint8Array(Math.max(windowSize, 24));
    let filled = 0;
    for (let got = source(first, 0); got > 0; got = filled < first.byteLength ? source(first.subarray(filled), filled) : 0) filled += got;
    const window = first.subarray(0, filled);
    if (captureFormat(window, file) === 'pcap') return new CaptureCursor(window, file, source);
    const chunks: Uint8Array[] = [window];
    let total = filled;
    for (let got = filled; got > 0;) {
      const chunk = new Uint8Array(CHUNK);
      got = source(chunk, total);
      total += got;
      chunks.push(chunk.subarray(0, got));
    }
    return new CaptureCursor(Buffer.concat(chunks), file);
  }

  /** Makes [offset, offset + size) of the file lie in the window when the source has it; returns the window offset. */
  #ensure(offset: number, size: number): number {
    const local = offset - this.#base;
    if (this.#source === undefined || local + size <= this.#valid) return local;
    // Keep what is left of the window, read on behind it (growing the window for a record larger than it).
    const keep = this.#valid - local;
    const next = size > this.bytes.byteLength ? new Uint8Array(size) : this.bytes;
    if (next === this.bytes) next.copyWithin(0, local, this.#valid);
    else next.set(this.bytes.subarray(local, this.#valid), 0);
    let filled = keep;
    while (filled < next.byteLength) {
      const got = this.#source(next.subarray(filled), offset + filled);
      if (got <= 0) break;
      filled += got;
    }
    this.bytes = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.#base = offset;
    this.#valid = filled;
    return 0;
  }

  /** Bytes of the file known to exist from `offset` on (the window's end stands for the file's when not streaming). */
  #available(offset: number): number {
    return this.#base + this.#valid - offset;
  }

  next(): boolean {
    if (this.#pcap === undefined) {
      const step = this.#packets!.next();
      if (step.done === true) return false;
      const p = step.value;
      this.index = p.index;
      this.seconds = p.seconds;
      this.nanos = p.nanos;
      this.dataOffset = p.data.byteOffset - this.bytes.byteOffset;
      this.captured = p.data.byteLength;
      this.length = p.length;
      this.linkType = p.linkType;
      return true;
    }
    const { littleEndian: le, nanosecond, limit } = this.#pcap;
    const offset = this.#offset;
    // The common case, a whole sane record inside the window, reads its fields once; anything else (the window's
    // end, a bad record) goes the checking way below.
    const local = offset - this.#base;
    if (local + 16 <= this.#valid) {
      const view = this.view;
      const captured = view.getUint32(local + 8, le);
      const fraction = view.getUint32(local + 4, le);
      if (local + 16 + captured <= this.#valid && captured <= limit && fraction < (nanosecond ? 1e9 : 1e6)) {
        this.#take(local, fraction, captured);
        return true;
      }
    }
    let at = this.#ensure(offset, 16);
    if (this.#available(offset) <= 0) return false;
    const index = this.index + 1;
    const file = this.#file;
    if (this.#available(offset) < 16) throw new CaptureError(file, `packet ${index}`, offset, `truncated record header (${this.#available(offset)} of 16 bytes)`);
    const fraction = this.view.getUint32(at + 4, le);
    const captured = this.view.getUint32(at + 8, le);
    if (captured > limit) throw new CaptureError(file, `packet ${index}`, offset, `captured length ${captured} exceeds the snapshot length ${limit}`);
    at = this.#ensure(offset, 16 + captured);
    if (this.#available(offset) < 16 + captured) {
      throw new CaptureError(file, `packet ${index}`, offset, `truncated: ${captured} bytes of packet data, ${this.#available(offset) - 16} left in the file`);
    }
    if (fraction >= (nanosecond ? 1e9 : 1e6)) throw new CaptureError(file, `packet ${index}`, offset, `timestamp fraction ${fraction} is not below one second`);
    this.#take(at, fraction, captured);
    return true;
  }

  /** Makes the checked record at window offset `at` the current packet. */
  #take(at: number, fraction: number, captured: number): void {
    const { littleEndian: le, nanosecond } = this.#pcap!;
    const length = this.view.getUint32(at + 12, le);
    this.index++;
    this.seconds = this.view.getUint32(at, le);
    this.nanos = nanosecond ? fraction : fraction * 1000;
    this.dataOffset = at + 16;
    this.captured = captured;
    this.length = length > captured ? length : captured;
    this.#offset += 16 + captured;
  }

  /** The current packet's bytes (a view). */
  data(): Uint8Array {
    return this.bytes.subarray(this.dataOffset, this.dataOffset + this.captured);
  }
}
