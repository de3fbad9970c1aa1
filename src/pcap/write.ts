/** A pcap writer: for tests and benchmarks that need captures of known content, and for saving matches. */

export interface PacketToWrite {
  readonly seconds: number;
  readonly nanos: number;
  readonly data: Uint8Array;
  /** Wire length; defaults to data.length. */
  readonly length?: number;
}

/** A classic pcap file (little-endian; nanosecond magic when `nanosecond`). */
export function writePcap(packets: Iterable<PacketToWrite>, options: { linkType?: number; snaplen?: number; nanosecond?: boolean } = {}): Buffer {
  const list = [...packets];
  let size = 24;
  for (const p of list) size += 16 + p.data.byteLength;
  const out = Buffer.alloc(size);
  out.writeUInt32LE(options.nanosecond === true ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeUInt32LE(options.snaplen ?? 262144, 16);
  out.writeUInt32LE(options.linkType ?? 1, 20);
  let o = 24;
  for (const p of list) {
    out.writeUInt32LE(p.seconds, o);
    out.writeUInt32LE(options.nanosecond === true ? p.nanos : Math.floor(p.nanos / 1000), o + 4);
    out.writeUInt32LE(p.data.byteLength, o + 8);
    out.writeUInt32LE(p.length ?? p.data.byteLength, o + 12);
    out.set(p.data, o + 16);
    o += 16 + p.data.byteLength;
  }
  return out;
}
