/**
 * Records handed out without a copy: where one lies in memory the reader owns (a ring buffer's mapping, a perf
 * ring's mapping, or the scratch buffer a perf record that wraps the ring is reassembled in).
 *
 * libbpf's callbacks get a pointer valid only during the callback; this is the JavaScript form of that contract.
 * One RecordView per buffer is reused for every record, so handing a record out allocates nothing — and so the
 * object, `bytes` and `view` must not be kept: after the callback returns, the next record overwrites the fields and
 * the kernel may overwrite the bytes. `copy()` makes a Buffer that can be kept.
 */
export class RecordView {
  /** The map the record came through. */
  readonly map: string;
  /** Memory holding the record; it starts at `offset` (not at 0). */
  bytes: Uint8Array;
  /** A DataView over the same memory as `bytes`, with the same indexing: `view.getUint32(offset + 4, true)`. */
  view: DataView;
  /** Index of the record's first byte in `bytes`/`view`. */
  offset = 0;
  /** Bytes in the record (perf records: the raw sample as the kernel padded it to 8-byte alignment). */
  length = 0;
  /** The CPU whose perf ring carried the record; null for ring buffers (one ring for all CPUs). */
  cpu: number | null = null;

  constructor(map: string, bytes: Uint8Array) {
    this.map = map;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The record's bytes as a Buffer of its own, safe to keep after the callback. */
  copy(): Buffer {
    return Buffer.from(this.bytes.subarray(this.offset, this.offset + this.length));
  }

  /** The record as a Uint8Array of exactly its bytes: valid, like the view itself, only during the callback. */
  subarray(): Uint8Array {
    return this.bytes.subarray(this.offset, this.offset + this.length);
  }
}
