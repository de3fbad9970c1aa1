/**
 * The reader side of one CPU's perf ring (include/uapi/linux/perf_event.h, struct perf_event_mmap_page), over
 * memory handed in: the kernel's mmap of a PERF_COUNT_SW_BPF_OUTPUT event in real use, ArrayBuffers in tests.
 *
 * The first page is the control page; records follow at data_offset for data_size bytes (a power of two). The
 * kernel advances data_head; we read records up to it and then advance data_tail, which frees the space. Records are
 * 8-byte aligned (sizes are multiples of 8: raw samples are padded) and start with struct perf_event_header
 * { u32 type; u16 misc; u16 size }; the header never straddles the end of the ring but the record body may. Unlike
 * a BPF ring buffer, the kernel maps a perf ring once, so the memory handed in must continue past the data area with
 * PERF_RING_SPARE writable bytes (events.ts maps an anonymous area right after the ring): the part of a record that
 * wrapped to the start of the ring is copied there, and every record then reads contiguously from where it starts,
 * as views and batches need.
 *
 * Memory ordering (perf_event.h asks for smp_rmb() after reading data_head and smp_mb() before writing data_tail):
 * data_head is read with Atomics.load and data_tail written with Atomics.store, once per pass. V8 emits LDAR/STLR for
 * them on arm64 (acquire: record reads cannot move before the head read; release: they complete before the tail
 * store) and MOV / XCHG on x86-64, where loads are acquires by TSO and XCHG is a full barrier. The kernel writes a
 * record completely before it moves data_head past it, so the records themselves are read with plain loads, through
 * typed arrays in the host's byte order (the kernel's).
 *
 * The batch walk is a module function that gets everything as arguments and does nothing after its loop but return
 * (HOT_LOOP_RULE in record-view.ts says why).
 */
import { BpfLoadError } from '../base/errors.js';
import { PERF_EVENT_MMAP_PAGE } from '../sys/index.js';
import { NEVER_STOPPED, RecordBatch, RecordView, type StopFlag } from './record-view.js';

/** enum perf_event_type values a BPF output event produces. */
export const PerfRecordType = { LOST: 2, SAMPLE: 9 } as const;
/** Writable bytes the memory must have after the data area: a perf record's size is a u16, so a wrapped part is smaller. */
export const PERF_RING_SPARE = 0x1_0000;
const HEADER_SIZE = 8;
/** A sample's u32 raw size follows the header (PERF_SAMPLE_RAW is the only sample field a BPF output event has). */
const SAMPLE_DATA = HEADER_SIZE + 4;
/** struct { header; u64 id; u64 lost; }: the lost count's two 32-bit words. */
const LOST_SIZE = HEADER_SIZE + 16;
const HEAD = PERF_EVENT_MMAP_PAGE.data_head / 8;
const TAIL = PERF_EVENT_MMAP_PAGE.data_tail / 8;
const FIRST_BATCH_CAPACITY = 4096;

export class PerfBufferError extends BpfLoadError {
  override name = 'PerfBufferError';
}

/** One CPU's perf ring. */
export class PerfRing {
  readonly name: string;
  readonly cpu: number;
  readonly #control: BigUint64Array;
  /** The data area and the spare area after it, as bytes and as 32-bit words. */
  readonly #bytes: Uint8Array;
  readonly #words: Uint32Array;
  readonly #size: number;
  /** The one view consume() hands out. */
  readonly #view: RecordView;
  /** The one batch consumeBatch() hands out; consume() walks the records into it too. */
  readonly #batch: RecordBatch;
  /** The PERF_RECORD_LOST counts the last walk met, reported once the walk's end is known (see consumeBatch). */
  readonly #lostCounts: number[] = [];

  /** `memory`: the control page, the data area (2^n pages), then PERF_RING_SPARE bytes we may write. */
  constructor(name: string, cpu: number, memory: ArrayBuffer) {
    this.name = name;
    this.cpu = cpu;
    this.#control = new BigUint64Array(memory, 0, PERF_EVENT_MMAP_PAGE.size / 8);
    const offset = Number(this.#control[PERF_EVENT_MMAP_PAGE.data_offset / 8]);
    const size = Number(this.#control[PERF_EVENT_MMAP_PAGE.data_size / 8]);
    if (size === 0 || (size & (size - 1)) !== 0 || offset % 8 !== 0 || offset + size + PERF_RING_SPARE > memory.byteLength) {
      throw new PerfBufferError(`perf buffer ${name}: cpu ${cpu}: data area of ${size} B at ${offset} and ${PERF_RING_SPARE} B after it do not fit a ${memory.byteLength} B mapping`);
    }
    this.#size = size;
    this.#bytes = new Uint8Array(memory, offset, size + PERF_RING_SPARE);
    this.#words = new Uint32Array(memory, offset, (size + PERF_RING_SPARE) / 4);
    this.#view = new RecordView(name, this.#bytes, cpu);
    this.#batch = new RecordBatch(name, cpu, this.#bytes, Math.min(FIRST_BATCH_CAPACITY, size / HEADER_SIZE));
  }

  /** For the record at stream position `position`, whose size is impossible: corrupt memory, stop. */
  #corrupt(position: number, head: number): PerfBufferError {
    const recordSize = this.#words[((position % this.#size) >>> 2) + 1]! >>> 16;
    return new PerfBufferError(`perf buffer ${this.name}: cpu ${this.cpu}: record at ${position} has size ${recordSize} (${head - position} B written)`);
  }

  /**
   * Walks the records from `tail` up to `head` (see walkPerfRecords): each sample's place into the batch, each
   * PERF_RECORD_LOST's count into #lostCounts. Returns the records' end.
   */
  #walk(tail: number, head: number): number {
    const batch = this.#batch;
    batch.count = 0;
    this.#lostCounts.length = 0;
    const size = this.#size;
    const end = walkPerfRecords(this.#words, this.#bytes, batch, batch.offsets, batch.lengths, this.#lostCounts,
      tail % size, tail, head, size, size - 1);
    if (end < 0) throw this.#corrupt(-1 - end, head); // walkPerfRecords' -1 - position
    return end;
  }

  /**
   * Hands every sample up to data_head to `onBatch` in one RecordBatch (with this ring's CPU), each
   * PERF_RECORD_LOST to `onLost` as the walk meets it (before the batch is handed out), then stores data_tail —
   * after the callback returns or throws. Returns the number of samples.
   */
  consumeBatch(onBatch: (batch: RecordBatch) => void, onLost: (count: number) => void): number {
    const head = Number(Atomics.load(this.#control, HEAD));
    const tail = Number(this.#control[TAIL]); // only we write it
    if (tail >= head) return 0;
    const end = this.#walk(tail, head);
    // The tail moves past the whole walk even when onLost or onBatch throws: a throwing callback must not leave the
    // same records (and LOST counts) to be met again on every later call.
    try {
      for (const lost of this.#lostCounts) onLost(lost);
      if (this.#batch.count > 0) onBatch(this.#batch);
    } finally {
      Atomics.store(this.#control, TAIL, BigInt(end));
    }
    return this.#batch.count;
  }

  /**
   * Hands out every record up to data_head — each sample to `onSample` as a RecordView (the same object each time,
   * valid only during the call), each PERF_RECORD_LOST to `onLost` — then stores data_tail. Stops early once `stop`
   * is set (checked after each sample: a reader closed from inside the callback); the tail then stays at the
   * record after it. Returns the number of samples.
   */
  consume(onSample: (view: RecordView) => void, onLost: (count: number) => void, stop: StopFlag = NEVER_STOPPED): number {
    const head = Number(Atomics.load(this.#control, HEAD));
    let tail = Number(this.#control[TAIL]); // only we write it
    if (tail >= head) return 0;
    // Locals for what the loop reads per record: V8 then keeps them in registers.
    const words = this.#words;
    const bytes = this.#bytes;
    const size = this.#size;
    const mask = size - 1;
    const view = this.#view;
    let offset = tail % size; // then kept within the ring by the mask
    let samples = 0;
    try {
      while (tail < head) {
        const at = offset >>> 2;
        const type = words[at]!;
        const recordSize = perfRecordAt(words, bytes, offset, tail, head, size);
        if (recordSize === 0) throw this.#corrupt(tail, head);
        tail += recordSize;
        if (type === PerfRecordType.SAMPLE && recordSize >= SAMPLE_DATA) {
          samples++;
          view.offset = offset + SAMPLE_DATA;
          view.length = Math.min(words[at + 2]!, recordSize - SAMPLE_DATA);
          onSample(view);
          if (stop.stopped) break;
        } else if (type === PerfRecordType.LOST && recordSize >= LOST_SIZE) {
          onLost(words[at + 4]! + words[at + 5]! * 0x1_0000_0000);
        }
        offset = (offset + recordSize) & mask;
      }
    } finally {
      Atomics.store(this.#control, TAIL, BigInt(tail));
    }
    return samples;
  }
}

/**
 * The size of the record at ring offset `offset` (stream position `position`, data written up to `head`), or 0 when
 * the size is impossible; a record that runs past the end of the ring is first completed in the spare area, so it
 * reads contiguously. Small enough for V8 to inline into both loops.
 */
function perfRecordAt(words: Uint32Array, bytes: Uint8Array, offset: number, position: number, head: number, size: number): number {
  const recordSize = words[(offset >>> 2) + 1]! >>> 16; // the u16 after the u16 misc (little-endian hosts)
  if (recordSize < HEADER_SIZE || recordSize > head - position || (recordSize & 7) !== 0) return 0;
  if (offset + recordSize > size) bytes.copyWithin(size, 0, offset + recordSize - size);
  return recordSize;
}

/**
 * The walk of consumeBatch (HOT_LOOP_RULE: see the top of this file): records from ring offset `offset` (stream
 * position `position`) up to `head`; each sample's place goes into the batch (batch.count set as it goes), each
 * PERF_RECORD_LOST's count into `lostCounts`. Returns the records' end, or -1 - position for an impossible size.
 */
function walkPerfRecords(words: Uint32Array, bytes: Uint8Array, batch: RecordBatch, offsets: Uint32Array, lengths: Uint32Array,
  lostCounts: number[], offset: number, position: number, head: number, size: number, mask: number): number {
  let count = 0;
  while (position < head) {
    const at = offset >>> 2;
    const type = words[at]!;
    const recordSize = perfRecordAt(words, bytes, offset, position, head, size);
    if (recordSize === 0) return -1 - position;
    if (type === PerfRecordType.SAMPLE && recordSize >= SAMPLE_DATA) {
      if (count === offsets.length) {
        batch.grow();
        offsets = batch.offsets;
        lengths = batch.lengths;
      }
      offsets[count] = offset + SAMPLE_DATA;
      lengths[count] = Math.min(words[at + 2]!, recordSize - SAMPLE_DATA);
      batch.count = ++count;
    } else if (type === PerfRecordType.LOST && recordSize >= LOST_SIZE) {
      lostCounts.push(words[at + 4]! + words[at + 5]! * 0x1_0000_0000);
    }
    position += recordSize;
    offset = (offset + recordSize) & mask;
  }
  return position;
}
