/** pcap writers: a whole capture at once (tests, benchmarks), or streamed record by record (saving matches). */

export interface PacketToWrite {
  readonly seconds: number;
  readonly nanos: number;
  readonly data: Uint8Array;
  /** Wire length; defaults to data.length. */
  readonly length?: number;
}

export interface PcapWriteOptions {
  /** LINKTYPE_* (default 1, Ethernet). */
  readonly linkType?: number;
  /** The snapshot length the header states (default 262144, tcpdump's). */
  readonly snaplen?: number;
  /** Nanosecond timestamps (the 0xa1b23c4d magic); microseconds otherwise, as tcpdump -w writes. */
  readonly nanosecond?: boolean;
}

const FILE_HEADER = 24;
const RECORD_HEADER = 16;

function writeFileHeader(view: DataView, options: PcapWriteOptions): void {
  view.setUint32(0, options.nanosecond === true ? 0xa1b23c4d : 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(8, 0, true); // thiszone
  view.setUint32(12, 0, true); // sigfigs
  view.setUint32(16, options.snaplen ?? 262144, true);
  view.setUint32(20, options.linkType ?? 1, true);
}

/** A classic pcap file (little-endian) holding `packets`. */
export function writePcap(packets: Iterable<PacketToWrite>, options: PcapWriteOptions = {}): Buffer {
  const list = [...packets];
  let size = FILE_HEADER;
  for (const p of list) size += RECORD_HEADER + p.data.byteLength;
  const out = Buffer.alloc(size);
  const writer = new PcapStreamWriter(() => {}, options, out);
  for (const p of list) writer.write(p.seconds, p.nanos, p.data, 0, p.data.byteLength, p.length ?? p.data.byteLength);
  return out;
}

/**
 * A pcap file written record by record into one buffer that is handed to `sink` whenever it fills (and by flush()):
 * no allocation per packet, so saving the matches of a million-packet capture costs a copy each. The header is
 * written first, at construction. Pure: the sink decides where bytes go.
 */
export class PcapStreamWriter {
  readonly #sink: (bytes: Uint8Array) => void;
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  readonly #nanosecond: boolean;
  #used: number;

  constructor(sink: (bytes: Uint8Array) => void, options: PcapWriteOptions = {}, buffer: Uint8Array = new Uint8Array(1 << 20)) {
    this.#sink = sink;
    this.#buffer = buffer;
    this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    this.#nanosecond = options.nanosecond === true;
    writeFileHeader(this.#view, options);
    this.#used = FILE_HEADER;
  }

  /** One record: `captured` bytes at `offset` of `bytes`, a packet of `length` bytes on the wire. */
  write(seconds: number, nanos: number, bytes: Uint8Array, offset: number, captured: number, length: number): void {
    if (this.#used + RECORD_HEADER + captured > this.#buffer.byteLength) {
      this.flush();
      if (RECORD_HEADER + captured > this.#buffer.byteLength) {
        // A record larger than the buffer (at most libpcap's 256 KiB): handed over in two pieces.
        const header = new Uint8Array(RECORD_HEADER);
        this.#recordHeader(new DataView(header.buffer), 0, seconds, nanos, captured, length);
        this.#sink(header);
        this.#sink(bytes.subarray(offset, offset + captured));
        return;
      }
    }
    this.#recordHeader(this.#view, this.#used, seconds, nanos, captured, length);
    this.#buffer.set(bytes.subarray(offset, offset + captured), this.#used + RECORD_HEADER);
    this.#used += RECORD_HEADER + captured;
  }

  #recordHeader(view: DataView, at: number, seconds: number, nanos: number, captured: number, length: number): void {
    view.setUint32(at, seconds, true);
    view.setUint32(at + 4, this.#nanosecond ? nanos : Math.floor(nanos / 1000), true);
    view.setUint32(at + 8, captured, true);
    view.setUint32(at + 12, length, true);
  }

  /** Hands what is buffered to the sink. */
  flush(): void {
    if (this.#used === 0) return;
    this.#sink(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }
}
