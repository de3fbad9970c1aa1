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
 * data_head is read with Atomics.load and data_tail written with Atomics.store. V8 emits LDAR/STLR for them on arm64
 * (acquire: record reads cannot move before the head read; release: they complete before the tail store) and MOV /
 * XCHG on x86-64, where loads are acquires by TSO and XCHG is a full barrier.
 */
import { BpfLoadError } from '../base/errors.js';
import { PERF_EVENT_MMAP_PAGE } from '../sys/index.js';

/** enum perf_event_type values a BPF output event produces. */
export const PerfRecordType = { LOST: 2, SAMPLE: 9 } as const;
const HEADER_SIZE = 8;

export class PerfBufferError extends BpfLoadError {
  override name = 'PerfBufferError';
}

export interface PerfRecordHandler {
  /** A PERF_RECORD_SAMPLE's raw data (as the kernel padded it to keep records 8-byte aligned), valid during the call. */
  sample(data: Uint8Array): void;
  /** A PERF_RECORD_LOST: this many records did not fit in the ring. */
  lost(count: number): void;
}

/** One CPU's perf ring. */
export class PerfRing {
  readonly name: string;
  readonly cpu: number;
  readonly #control: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #size: number;
  #scratch = new Uint8Array(256);

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
    this.#view = new DataView(memory, offset, size);
  }

  /** Hands out every record up to data_head, then stores data_tail. Returns the number of samples. */
  consume(handler: PerfRecordHandler): number {
    const C = PERF_EVENT_MMAP_PAGE;
    const head = Number(Atomics.load(this.#control, C.data_head / 8));
    let tail = Number(this.#control[C.data_tail / 8]); // only we write it
    let samples = 0;
    try {
      while (tail < head) {
        const offset = tail % this.#size;
        const type = this.#view.getUint32(offset, true);
        const size = this.#view.getUint16(offset + 6, true);
        if (size < HEADER_SIZE || size > head - tail) {
          throw new PerfBufferError(`perf buffer ${this.name}: cpu ${this.cpu}: record at ${tail} has size ${size} (${head - tail} B written)`);
        }
        const record = offset + size <= this.#size ? this.#data.subarray(offset, offset + size) : this.#wrapped(offset, size);
        tail += size;
        if (type === PerfRecordType.SAMPLE && size >= HEADER_SIZE + 4) {
          const rawSize = record[8]! | (record[9]! << 8) | (record[10]! << 16) | (record[11]! << 24);
          samples++;
          handler.sample(record.subarray(12, 12 + Math.min(rawSize >>> 0, size - 12)));
        } else if (type === PerfRecordType.LOST && size >= HEADER_SIZE + 16) {
          const lost = new DataView(record.buffer, record.byteOffset, record.byteLength).getBigUint64(16, true);
          handler.lost(Number(lost));
        }
      }
    } finally {
      Atomics.store(this.#control, C.data_tail / 8, BigInt(tail));
    }
    return samples;
  }

  /** A record that runs past the end of the ring, copied together into the scratch buffer. */
  #wrapped(offset: number, size: number): Uint8Array {
    if (this.#scratch.byteLength < size) this.#scratch = new Uint8Array(Math.max(size, this.#scratch.byteLength * 2));
    const first = this.#size - offset;
    this.#scratch.set(this.#data.subarray(offset), 0);
    this.#scratch.set(this.#data.subarray(0, size - first), first);
    return this.#scratch.subarray(0, size);
  }
}
