/**
 * The reader side of one CPU's perf ring (include/uapi/linux/perf_event.h, struct perf_event_mmap_page), over
 * memory handed in: the kernel's mmap of a PERF_COUNT_SW_BPF_OUTPUT event in real use, ArrayBuffers in tests.
 *
 * The first page is the control page; records follow at data_offset for data_size bytes (a power of two). The
 * kernel advances data_head; we read records up to it and then advance data_tail, which frees the space. Records are
 * 8-byte aligned and start with struct perf_event_header { u32 type; u16 misc; u16 size }; the header never
 * straddles the end of the ring but the record body may, so such a record is reassembled into a scratch buffer.
 *
 * Memory ordering (perf_event.h asks for smp_rmb() after reading data_head and smp_mb() before writing data_tail):
 * data_head is read with Atomics.load and data_tail written with Atomics.store, once per consume(). V8 emits
 * LDAR/STLR for them on arm64 (acquire: record reads cannot move before the head read; release: they complete
 * before the tail store) and MOV / XCHG on x86-64, where loads are acquires by TSO and XCHG is a full barrier. The
 * kernel writes a record completely before it moves data_head past it, so the records themselves are read with
 * plain loads.
 */
import { BpfLoadError } from '../base/errors.js';
import { PERF_EVENT_MMAP_PAGE } from '../sys/index.js';
import { RecordView } from './record-view.js';

/** enum perf_event_type values a BPF output event produces. */
export const PerfRecordType = { LOST: 2, SAMPLE: 9 } as const;
const HEADER_SIZE = 8;
/** A sample's u32 raw size follows the header (PERF_SAMPLE_RAW is the only sample field a BPF output event has). */
const SAMPLE_DATA = HEADER_SIZE + 4;
const HEAD = PERF_EVENT_MMAP_PAGE.data_head / 8;
const TAIL = PERF_EVENT_MMAP_PAGE.data_tail / 8;

export class PerfBufferError extends BpfLoadError {
  override name = 'PerfBufferError';
}

/** One CPU's perf ring. */
export class PerfRing {
  readonly name: string;
  readonly cpu: number;
  readonly #control: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #dataView: DataView;
  readonly #size: number;
  #scratch = new Uint8Array(256);
  #scratchView = new DataView(this.#scratch.buffer);
  /** The one view consume() hands out. */
  readonly #view: RecordView;

  /** `memory` is the whole mapping: the control page then 2^n data pages. */
  constructor(name: string, cpu: number, memory: ArrayBuffer, pageSize: number) {
    this.name = name;
    this.cpu = cpu;
    this.#control = new BigUint64Array(memory, 0, PERF_EVENT_MMAP_PAGE.size / 8);
    // Kernels before 4.1 leave data_offset/data_size zero: the data then starts at the second page.
    const offset = Number(this.#control[PERF_EVENT_MMAP_PAGE.data_offset / 8]) || pageSize;
    const size = Number(this.#control[PERF_EVENT_MMAP_PAGE.data_size / 8]) || memory.byteLength - pageSize;
    if ((size & (size - 1)) !== 0 || offset + size > memory.byteLength) {
      throw new PerfBufferError(`perf buffer ${name}: cpu ${cpu}: data area of ${size} B at ${offset} does not fit a ${memory.byteLength} B mapping`);
    }
    this.#size = size;
    this.#data = new Uint8Array(memory, offset, size);
    this.#dataView = new DataView(memory, offset, size);
    this.#view = new RecordView(name, this.#data);
    this.#view.cpu = cpu;
  }

  /**
   * Hands out every record up to data_head — each sample to `onSample` as a RecordView (the same object each time,
   * valid only during the call: it points into the ring, or into a scratch buffer for a record that wraps), each
   * PERF_RECORD_LOST to `onLost` — then stores data_tail. Returns the number of samples.
   */
  consume(onSample: (view: RecordView) => void, onLost: (count: number) => void): number {
    const head = Number(Atomics.load(this.#control, HEAD));
    let tail = Number(this.#control[TAIL]); // only we write it
    if (tail >= head) return 0;
    const mask = this.#size - 1;
    const view = this.#view;
    let offset = tail % this.#size; // then kept within the ring by the mask
    let samples = 0;
    try {
      while (tail < head) {
        const type = this.#dataView.getUint32(offset, true);
        const size = this.#dataView.getUint16(offset + 6, true);
        if (size < HEADER_SIZE || size > head - tail) {
          throw new PerfBufferError(`perf buffer ${this.name}: cpu ${this.cpu}: record at ${tail} has size ${size} (${head - tail} B written)`);
        }
        let bytes = this.#data;
        let dv = this.#dataView;
        let start = offset;
        if (offset + size > this.#size) {
          this.#reassemble(offset, size);
          bytes = this.#scratch;
          dv = this.#scratchView;
          start = 0;
        }
        tail += size;
        offset = (offset + size) & mask;
        if (type === PerfRecordType.SAMPLE && size >= SAMPLE_DATA) {
          samples++;
          view.bytes = bytes;
          view.view = dv;
          view.offset = start + SAMPLE_DATA;
          view.length = Math.min(dv.getUint32(start + HEADER_SIZE, true), size - SAMPLE_DATA);
          onSample(view);
        } else if (type === PerfRecordType.LOST && size >= HEADER_SIZE + 16) {
          onLost(Number(dv.getBigUint64(start + 16, true)));
        }
      }
    } finally {
      Atomics.store(this.#control, TAIL, BigInt(tail));
    }
    return samples;
  }

  /** A record that runs past the end of the ring, copied together into the scratch buffer. */
  #reassemble(offset: number, size: number): void {
    if (this.#scratch.byteLength < size) {
      this.#scratch = new Uint8Array(Math.max(size, this.#scratch.byteLength * 2));
      this.#scratchView = new DataView(this.#scratch.buffer);
    }
    const first = this.#size - offset;
    this.#scratch.set(this.#data.subarray(offset), 0);
    this.#scratch.set(this.#data.subarray(0, size - first), first);
  }
}
