import { BpfLoadError } from '../base/errors.js';

/**
 * Records handed out without a copy: where one lies in memory the reader owns (a ring buffer's mapping, or a perf
 * ring's mapping and the spare area after it where a record that wraps the ring is completed).
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
  readonly bytes: Uint8Array;
  /** A DataView over the same memory as `bytes`, with the same indexing: `view.getUint32(offset + 4, true)`. */
  readonly view: DataView;
  /** Index of the record's first byte in `bytes`/`view`. */
  offset = 0;
  /** Bytes in the record (perf records: the raw sample as the kernel padded it to 8-byte alignment). */
  length = 0;
  /** The CPU whose perf ring carried the record; null for ring buffers (one ring for all CPUs). */
  readonly cpu: number | null;

  constructor(map: string, bytes: Uint8Array, cpu: number | null = null) {
    this.map = map;
    this.bytes = bytes;
    this.cpu = cpu;
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

/**
 * The records of one ring that are ready now, handed out together: `bytes` is the ring's memory and record `i`
 * (0 ≤ i < count) is `bytes[offsets[i]]` … `bytes[offsets[i] + lengths[i] - 1]`, contiguous even when it wraps the
 * end of the ring (a ring buffer's data area is mapped twice; a perf ring keeps a spare area after its data into
 * which the wrapped part of a record is copied). Nothing is copied or allocated per record: the loop over the
 * arrays is plain JavaScript, as libbpf's callback is plain C.
 *
 * Valid only during the callback it is handed to: the consumer position is stored after the callback returns (or
 * throws: the batch counts as consumed either way), and from then on the kernel may overwrite the bytes. One batch
 * object per ring is reused, so neither it nor its arrays may be kept; copy what must outlive the call.
 */
export class RecordBatch {
  /** The map the records came through. */
  readonly map: string;
  /** The CPU whose perf ring carried the records; null for ring buffers (one ring for all CPUs). */
  readonly cpu: number | null;
  /** The ring's memory: records start at `offsets[i]` (never at 0). */
  readonly bytes: Uint8Array;
  /** A DataView over the same memory as `bytes`, with the same indexing: `view.getUint32(offsets[i] + 4, true)`. */
  readonly view: DataView;
  /** Where each record starts in `bytes`; only the first `count` entries belong to this batch. */
  offsets: Uint32Array;
  /** Each record's length in bytes (perf records: the raw sample as the kernel padded it to 8-byte alignment). */
  lengths: Uint32Array;
  /** Records in this batch. */
  count = 0;

  constructor(map: string, cpu: number | null, bytes: Uint8Array, capacity: number) {
    this.map = map;
    this.cpu = cpu;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
  }

  /** Room for one more record: the arrays double when full (the consumers call this before each append). */
  grow(): void {
    const offsets = new Uint32Array(this.offsets.length * 2);
    const lengths = new Uint32Array(this.lengths.length * 2);
    offsets.set(this.offsets);
    lengths.set(this.lengths);
    this.offsets = offsets;
    this.lengths = lengths;
  }

  /** Record `i`'s bytes as a Buffer of its own, safe to keep after the callback. */
  copy(i: number): Buffer {
    if (!(i >= 0 && i < this.count)) throw new BpfLoadError(`${this.map}: record ${i} is not in this batch of ${this.count}`);
    return Buffer.from(this.bytes.subarray(this.offsets[i]!, this.offsets[i]! + this.lengths[i]!));
  }
}

/** Set by a reader's close(): the consumers check it after each callback, so closing from inside one stops there. */
export interface StopFlag {
  readonly stopped: boolean;
}

/** For consumers read on their own, outside a reader. */
export const NEVER_STOPPED: StopFlag = { stopped: false };

/**
 * HOT_LOOP_RULE. The batch walks (walkRingHeaders, walkPerfRecords) are module functions that get everything they use
 * as arguments and do nothing after the loop but return. Why: V8 gives a function its feedback vector only once it
 * has run a while, so on the first call, whose loop runs thousands of times, the code before the loop records
 * nothing, and the loop is compiled on the stack (OSR) before the code after it has ever run. As methods, the walks
 * then failed both ways: the whole-function compile was thrown away at its first line (`this.#batch`, unrecorded),
 * so every later call entered the OSR code, which was thrown away at the store after the loop (`batch.count = …`,
 * unrecorded when it was compiled) — once per call: 39 of 40 calls in bench row (j) as it then was (node
 * --trace-deopt). The same functions written this way compile once and stay. The view loops (consume) are left as
 * methods: they never deoptimized per call, and measured a fifth faster that way than as functions of twelve
 * arguments.
 */
