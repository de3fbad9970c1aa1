/**
 * The BPF ring buffer's consumer protocol (kernel/bpf/ringbuf.c), over memory handed in: the kernel's mmap in real
 * use, plain ArrayBuffers in tests.
 *
 * Layout of a ring buffer map fd's mmap: page 0 holds consumer_pos (the only page user space may write); page 1
 * producer_pos; then the data area of `size` bytes (a power of two), mapped twice in a row by the kernel so a record
 * that runs past the end reads contiguously from the second copy. Each record starts 8-byte aligned with an 8-byte
 * header: u32 length with BUSY (bit 31: still being written) and DISCARD (bit 30: skip it) flags, u32 page offset.
 *
 * Memory ordering. The kernel publishes with smp_store_release(producer_pos) and clears BUSY with
 * smp_store_release(header); it reads consumer_pos with smp_load_acquire. We read producer_pos with Atomics.load and
 * write consumer_pos with Atomics.store, once per pass over the ring (as a batch, not per record). Those are
 * sequentially consistent in JavaScript: V8 compiles them on arm64 to LDAR/STLR (the instructions the kernel's
 * acquire/release use there) and on x86-64 to a plain MOV for the load and XCHG for the store (a full barrier,
 * stronger than the release needed). So our reads of every record complete before the store that lets the kernel
 * reuse their space. Record headers need acquire loads too. On x86-64 every load is an acquire (TSO), and V8 keeps
 * typed-array loads in program order (they are effects), so headers are read with plain loads there: Atomics.load
 * is a call into a V8 builtin (~20 ns, more than the rest of a record's handling). Elsewhere (arm64) headers are
 * read with Atomics.load (LDAR). The 64-bit positions are read and written as single 64-bit accesses
 * (BigUint64Array), never as torn halves.
 *
 * The batch walk is a module function that gets everything as arguments and does nothing after its loop but return
 * (HOT_LOOP_RULE in record-view.ts says why).
 */
import { BpfLoadError } from '../base/errors.js';
import { NEVER_STOPPED, RecordBatch, RecordView, type StopFlag } from './record-view.js';

export const RINGBUF_BUSY_BIT = 0x8000_0000;
export const RINGBUF_DISCARD_BIT = 0x4000_0000;
export const RINGBUF_HEADER_SIZE = 8;
/** Where a plain load is not an acquire, headers are read with Atomics.load (see the comment above). */
const PLAIN_LOADS_ACQUIRE = process.arch === 'x64';

export class RingBufferError extends BpfLoadError {
  override name = 'RingBufferError';
}

/** Memory of one ring buffer: the consumer page, and the producer page followed by the twice-mapped data area. */
export interface RingBufferMemory {
  readonly consumer: ArrayBuffer;
  readonly producer: ArrayBuffer;
  /** Offset of the data area in `producer` (the page size). */
  readonly dataOffset: number;
  /** Bytes of data area (max_entries): a power of two. */
  readonly size: number;
}

/** Records a batch holds before its arrays first grow (a pass over a 256 KiB ring of 64-byte records: 3,641). */
const FIRST_BATCH_CAPACITY = 4096;

/** Reads records out of one ring buffer. Not thread-safe across readers: one consumer per ring, as in the kernel. */
export class RingBufferConsumer {
  readonly name: string;
  readonly size: number;
  readonly #consumerPos: BigUint64Array;
  readonly #producerPos: BigUint64Array;
  readonly #words: Int32Array;
  readonly #data: Uint8Array;
  readonly #acquireHeaders: boolean;
  /** The one view consume() hands out, pointing at each record in turn. */
  readonly #view: RecordView;
  /** The one batch consumeBatch() hands out; consumeCopies() walks the headers into it too. */
  readonly #batch: RecordBatch;

  constructor(name: string, memory: RingBufferMemory, acquireHeaders = !PLAIN_LOADS_ACQUIRE) {
    const { size, dataOffset } = memory;
    if (!(size > 0) || (size & (size - 1)) !== 0 || size % RINGBUF_HEADER_SIZE !== 0) {
      throw new RingBufferError(`ring buffer ${name}: data size ${size} is not a power of two`);
    }
    if (memory.producer.byteLength < dataOffset + 2 * size || memory.consumer.byteLength < 8) {
      throw new RingBufferError(`ring buffer ${name}: mapping of ${memory.producer.byteLength} B cannot hold a ${size} B ring mapped twice after ${dataOffset} B`);
    }
    this.name = name;
    this.size = size;
    this.#consumerPos = new BigUint64Array(memory.consumer, 0, 1);
    this.#producerPos = new BigUint64Array(memory.producer, 0, 1);
    this.#words = new Int32Array(memory.producer, dataOffset, (2 * size) / 4);
    this.#data = new Uint8Array(memory.producer, dataOffset, 2 * size);
    this.#acquireHeaders = acquireHeaders;
    this.#view = new RecordView(name, this.#data);
    // A ring holds at most size / 8 records (an empty record takes its 8-byte header).
    this.#batch = new RecordBatch(name, null, this.#data, Math.min(FIRST_BATCH_CAPACITY, size / RINGBUF_HEADER_SIZE));
  }

  /** For the record at stream position `position`, whose length the ring cannot hold: corrupt memory, stop. */
  #corrupt(position: number): RingBufferError {
    const length = this.#words[((position % 0x1_0000_0000) & (this.size - 1)) >>> 2]! & 0x3fff_ffff;
    return new RingBufferError(`ring buffer ${this.name}: record at position ${position} claims ${length} B in a ${this.size} B ring`);
  }

  /**
   * Walks the headers from position `consumer` up to `producer` into the batch (see walkRingHeaders). Returns the
   * position after the last record walked (discarded ones included): where the consumer position goes once the batch
   * is handed out.
   */
  #walk(consumer: number, producer: number): number {
    const batch = this.#batch;
    batch.count = 0;
    const mask = this.size - 1;
    const end = walkRingHeaders(this.#words, batch, batch.offsets, batch.lengths, this.#acquireHeaders,
      (consumer % 0x1_0000_0000) & mask, consumer, producer, mask, this.size - RINGBUF_HEADER_SIZE);
    if (end < 0) throw this.#corrupt(-1 - end); // walkRingHeaders' -1 - position
    return end;
  }

  /**
   * The position just past record `i` of the batch walked from `consumer` to `end`: the header of the next record
   * handed out (so discarded records between are consumed with it), or `end` after the last one.
   */
  #positionAfter(i: number, consumer: number, end: number): number {
    const batch = this.#batch;
    if (i + 1 >= batch.count) return end;
    // Below `size` for every record after the first, so the ring offsets give the distance unambiguously.
    const first = (consumer % 0x1_0000_0000) & (this.size - 1);
    return consumer + ((batch.offsets[i + 1]! - RINGBUF_HEADER_SIZE - first) & (this.size - 1));
  }

  /**
   * Pass after pass while records are ready: the headers from the consumer position to the producer's are walked
   * into the batch, then `handOut(consumer, end)` hands them out and stores the consumer position, returning whether
   * to go on. Stops when the ring is empty, when a record is still being written, or when `handOut` says so.
   */
  #passes(handOut: (consumer: number, end: number) => boolean): void {
    for (;;) {
      const consumer = Number(Atomics.load(this.#consumerPos, 0));
      const producer = Number(Atomics.load(this.#producerPos, 0));
      if (consumer >= producer) return;
      const end = this.#walk(consumer, producer);
      // A pass that ended before the producer position stopped at a record still being written.
      if (end === consumer || !handOut(consumer, end) || end < producer) return;
    }
  }

  /**
   * Hands every complete record that is ready now to `onBatch` in one RecordBatch (see there): the headers are
   * walked first (stopping at a record still being written, skipping discarded ones), then the batch is handed out,
   * then the consumer position is stored — after the callback returns or throws. Repeats while the producer has
   * moved on, until the ring is empty, a record is still being written, or `stop` is set. Returns the records.
   */
  consumeBatch(onBatch: (batch: RecordBatch) => void, stop: StopFlag = NEVER_STOPPED): number {
    const batch = this.#batch;
    let total = 0;
    this.#passes((_consumer, end) => {
      try {
        if (batch.count > 0) onBatch(batch);
      } finally {
        Atomics.store(this.#consumerPos, 0, BigInt(end));
      }
      total += batch.count;
      return !stop.stopped;
    });
    return total;
  }

  /**
   * Copies every complete record out in one piece and hands each out as a Buffer the caller may keep: the headers
   * are walked first, the whole run of records is copied with one memcpy (contiguous thanks to the double mapping),
   * the records are handed out as subarrays of that copy, and the consumer position is stored once after them. One
   * allocation and one position store per batch instead of per record; a record kept for long keeps its batch's
   * copy alive (Buffer.from(record) detaches it). A throwing callback, or `stop` set during one, ends the batch
   * after its own record: the position is stored just past it. Returns the number of records.
   */
  consumeCopies(onRecord: (record: Buffer) => void, stop: StopFlag = NEVER_STOPPED): number {
    const mask = this.size - 1;
    let total = 0;
    this.#passes((consumer, end) => {
      const { offsets, lengths, count } = this.#batch; // after the walk, which may have grown the arrays
      const first = (consumer % 0x1_0000_0000) & mask;
      // At most `size` bytes from an offset below `size`: inside the twice-mapped 2 × size area.
      const copy = Buffer.from(this.#data.subarray(first, first + (end - consumer)));
      const base = copy.byteOffset;
      // Ends as the index of the record whose callback threw or set `stop`, or as `count` when all were handed out.
      let i = 0;
      try {
        for (; i < count; i++) {
          // Where the record lies in the copy: its header's distance from the first one is below `size`, so the mask
          // gives it. Buffer.from(arrayBuffer, …) makes the view a third faster than Buffer#subarray (no species lookup).
          const header = (offsets[i]! - RINGBUF_HEADER_SIZE - first) & mask;
          onRecord(Buffer.from(copy.buffer, base + header + RINGBUF_HEADER_SIZE, lengths[i]!));
          if (stop.stopped) break;
        }
      } finally {
        // All handed out: the walk's end (discarded records after the last included); else just past record i.
        Atomics.store(this.#consumerPos, 0, BigInt(i === count ? end : this.#positionAfter(i, consumer, end)));
      }
      total += i === count ? count : i + 1;
      return i === count;
    });
    return total;
  }

  /** Bytes written by the kernel and not yet consumed (records in progress included). */
  pending(): number {
    return Number(Atomics.load(this.#producerPos, 0) - Atomics.load(this.#consumerPos, 0));
  }

  /**
   * Hands every complete record to `onRecord` as a RecordView pointing into the ring (the same object each time),
   * valid only during the call: nothing is copied or allocated per record. Stops at a record still being written,
   * after `max` records, or once `stop` is set (checked after each record: a reader closed from inside the
   * callback). The consumer position is stored once per pass over the ring (libbpf stores it per record; the kernel
   * only needs it before it runs out of room, and a pass ends at the producer position it started from). A throwing
   * callback loses only its own record: the position is stored just past it. Returns the number of records.
   */
  consume(onRecord: (view: RecordView) => void, max = Number.POSITIVE_INFINITY, stop: StopFlag = NEVER_STOPPED): number {
    // Locals for what the loop reads per record: V8 then keeps them in registers.
    const mask = this.size - 1;
    const limit = this.size - RINGBUF_HEADER_SIZE;
    const words = this.#words;
    const acquire = this.#acquireHeaders;
    const view = this.#view;
    let consumer = Number(Atomics.load(this.#consumerPos, 0));
    let stored = consumer;
    let count = 0;
    try {
      for (;;) {
        const producer = Number(Atomics.load(this.#producerPos, 0));
        if (consumer >= producer) return count;
        // Positions grow past 2^32: the first offset with arithmetic, then kept within the ring by the mask.
        let offset = (consumer % 0x1_0000_0000) & mask;
        while (consumer < producer) {
          const header = acquire ? Atomics.load(words, offset >>> 2) : words[offset >>> 2]!;
          if ((header & RINGBUF_BUSY_BIT) !== 0) return count;
          const length = header & 0x3fff_ffff; // without BUSY and DISCARD
          if (length > limit) throw this.#corrupt(consumer);
          const step = (length + RINGBUF_HEADER_SIZE + 7) & ~7;
          consumer += step;
          if ((header & RINGBUF_DISCARD_BIT) === 0) {
            count++;
            // The data area is mapped twice: a record that runs past the end reads on into the second copy.
            view.offset = offset + RINGBUF_HEADER_SIZE;
            view.length = length;
            onRecord(view);
            if (count >= max || stop.stopped) return count;
          }
          offset = (offset + step) & mask;
        }
        Atomics.store(this.#consumerPos, 0, BigInt(consumer));
        stored = consumer;
      }
    } finally {
      if (consumer !== stored) Atomics.store(this.#consumerPos, 0, BigInt(consumer));
    }
  }
}

/**
 * The header walk of consumeBatch/consumeCopies (HOT_LOOP_RULE: see the top of this file): from ring offset `offset`
 * (stream position `position`) up to `producer`, stopping at a record still being written (BUSY), it puts where each
 * complete record that is not discarded lies into the batch, setting batch.count as it goes. Returns the position
 * after the last record walked, or -1 - position for a record longer than `limit`.
 */
function walkRingHeaders(words: Int32Array, batch: RecordBatch, offsets: Uint32Array, lengths: Uint32Array, acquire: boolean,
  offset: number, position: number, producer: number, mask: number, limit: number): number {
  let count = 0;
  while (position < producer) {
    const header = acquire ? Atomics.load(words, offset >>> 2) : words[offset >>> 2]!;
    if (header < 0) break; // BUSY (bit 31) read as a signed word: a record still being written
    const length = header & 0x3fff_ffff; // without BUSY and DISCARD
    if (length > limit) return -1 - position;
    const step = (length + RINGBUF_HEADER_SIZE + 7) & ~7;
    if ((header & RINGBUF_DISCARD_BIT) === 0) {
      if (count === offsets.length) {
        batch.grow();
        offsets = batch.offsets;
        lengths = batch.lengths;
      }
      // The data area is mapped twice: a record that runs past the end reads on into the second copy.
      offsets[count] = offset + RINGBUF_HEADER_SIZE;
      lengths[count] = length;
      batch.count = ++count;
    }
    position += step;
    offset = (offset + step) & mask;
  }
  return position;
}

/**
 * libbpf's rule for ring buffer sizes: the kernel wants a power-of-two multiple of the page size, so anything else
 * is rounded up to the next one (a size already of that form is kept).
 */
export function ringBufferSize(requested: number, pageSize: number): number {
  if (requested === 0) return 0; // left to the kernel to refuse, naming the map
  let size = pageSize;
  while (size < requested) size *= 2;
  return size;
}
