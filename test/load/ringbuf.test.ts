import { describe, expect, it } from 'vitest';
import {
  PERF_RING_SPARE, PerfBufferError, PerfRecordType, PerfRing, RecordBatch, RecordView, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RingBufferConsumer, RingBufferError, ringBufferSize,
} from '../../src/load/index.js';
import { PERF_EVENT_MMAP_PAGE } from '../../src/sys/index.js';

const PAGE = 4096;

/**
 * A fake kernel ring buffer: the consumer page, and the producer page followed by the data area "mapped twice" —
 * every byte written at offset o is also written at o + size, as the kernel's double mapping makes it appear.
 */
class FakeRing {
  readonly consumer = new ArrayBuffer(PAGE);
  readonly producer: ArrayBuffer;
  readonly size: number;
  producerPos = 0;
  readonly #data: Uint8Array;

  constructor(size: number, start = 0) {
    this.size = size;
    this.producer = new ArrayBuffer(PAGE + 2 * size);
    this.#data = new Uint8Array(this.producer, PAGE);
    this.producerPos = start;
    new BigUint64Array(this.consumer)[0] = BigInt(start);
    new BigUint64Array(this.producer)[0] = BigInt(start);
  }

  get consumerPos(): number {
    return Number(new BigUint64Array(this.consumer)[0]);
  }

  #write(offset: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.byteLength; i++) {
      const o = (offset + i) % this.size;
      this.#data[o] = bytes[i]!;
      this.#data[o + this.size] = bytes[i]!;
    }
  }

  /** Appends a record (header + payload, padded to 8) and publishes it unless `flags` says BUSY. */
  push(payload: Uint8Array, flags = 0): number {
    const at = this.producerPos;
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, (payload.byteLength | flags) >>> 0, true);
    this.#write(at % this.size, header);
    this.#write((at + 8) % this.size, payload);
    this.producerPos += (payload.byteLength + 8 + 7) & ~7;
    new BigUint64Array(this.producer)[0] = BigInt(this.producerPos);
    return at;
  }

  /** Clears BUSY on the record at `position` (the kernel's submit). */
  commit(position: number, length: number): void {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, length, true);
    this.#write(position % this.size, header);
  }

  consumerFor(acquireHeaders?: boolean): RingBufferConsumer {
    return new RingBufferConsumer('fake', { consumer: this.consumer, producer: this.producer, dataOffset: PAGE, size: this.size }, acquireHeaders);
  }
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);

describe('ring buffer consumer protocol (fake memory)', () => {
  it('hands out records in order, 8-byte aligned, and stores the consumer position', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(5, 1));
    ring.push(bytes(16, 2));
    const got: number[][] = [];
    expect(ring.consumerFor().consume((r) => got.push([...r.subarray()]))).toBe(2);
    expect(got).toEqual([[...bytes(5, 1)], [...bytes(16, 2)]]);
    expect(ring.consumerPos).toBe(16 + 24);
  });

  it('records that wrap the end of the ring arrive intact (the data area is mapped twice)', () => {
    const ring = new FakeRing(PAGE);
    const consumer = ring.consumerFor();
    const seen: Uint8Array[] = [];
    // 72-byte records (64 + header) do not divide 4096: every ~57th record straddles the end.
    for (let round = 0; round < 300; round++) {
      ring.push(bytes(64, round));
      consumer.consume((r) => seen.push(Uint8Array.from(r.subarray())));
    }
    expect(seen).toHaveLength(300);
    seen.forEach((r, i) => expect(r).toEqual(bytes(64, i)));
    expect(ring.consumerPos).toBe(300 * 72);
  });

  it('headers read with plain loads (x86-64) and with Atomics.load (arm64) give the same records', () => {
    for (const acquire of [false, true]) {
      const ring = new FakeRing(PAGE, 2 ** 32 - 200);
      const consumer = ring.consumerFor(acquire);
      const seen: number[][] = [];
      for (let round = 0; round < 120; round++) {
        ring.push(bytes(20 + (round % 50), round));
        if (round % 3 === 2) consumer.consume((r) => seen.push([...r.subarray()]));
      }
      expect(seen).toEqual(Array.from({ length: 120 }, (_, i) => [...bytes(20 + (i % 50), i)]));
      expect(ring.consumerPos).toBe(ring.producerPos);
    }
  });

  it('one RecordView, reused: no object per record; copy() outlives it; the position is stored once per pass', () => {
    const ring = new FakeRing(PAGE);
    for (let i = 0; i < 10; i++) ring.push(bytes(16, i));
    const consumer = ring.consumerFor();
    const views = new Set<RecordView>();
    const copies: Buffer[] = [];
    const positionsSeen = new Set<number>();
    consumer.consume((v) => {
      views.add(v);
      copies.push(v.copy());
      expect(v.cpu).toBeNull();
      expect(v.map).toBe('fake');
      expect(v.view.getUint8(v.offset)).toBe(v.bytes[v.offset]);
      positionsSeen.add(ring.consumerPos);
    });
    expect(views.size).toBe(1);
    expect(positionsSeen).toEqual(new Set([0])); // not stored record by record
    expect(ring.consumerPos).toBe(10 * 24);
    // The ring is overwritten by the next records; the copies are not.
    for (let batch = 0; batch < 2; batch++) {
      for (let i = 0; i < 150; i++) ring.push(bytes(16, 100 + i));
      consumer.consume(() => {});
    }
    expect(copies.map((c) => c[0])).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it('stops at a record still being written (BUSY) and resumes after the commit', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(8, 1));
    const busy = ring.push(bytes(8, 2), RINGBUF_BUSY_BIT);
    ring.push(bytes(8, 3));
    const consumer = ring.consumerFor();
    const got: number[] = [];
    expect(consumer.consume((r) => got.push(r.bytes[r.offset]!))).toBe(1);
    expect(ring.consumerPos).toBe(16);
    ring.commit(busy, 8);
    expect(consumer.consume((r) => got.push(r.bytes[r.offset]!))).toBe(2);
    expect(got).toEqual([1, 2, 3]);
  });

  it('skips discarded records but consumes their space', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(8, 1), RINGBUF_DISCARD_BIT);
    ring.push(bytes(8, 2));
    const got: number[] = [];
    expect(ring.consumerFor().consume((r) => got.push(r.bytes[r.offset]!))).toBe(1);
    expect(got).toEqual([2]);
    expect(ring.consumerPos).toBe(32);
  });

  it('positions beyond 2^32 map to the right offsets', () => {
    const start = 2 ** 32 * 3 - 40; // a few records before a 32-bit boundary, offset 4056 in a 4096 ring
    const ring = new FakeRing(PAGE, start);
    for (let i = 0; i < 4; i++) ring.push(bytes(24, 10 + i));
    const got: Uint8Array[] = [];
    expect(ring.consumerFor().consume((r) => got.push(Uint8Array.from(r.subarray())))).toBe(4);
    got.forEach((r, i) => expect(r).toEqual(bytes(24, 10 + i)));
    expect(ring.consumerPos).toBe(start + 4 * 32);
  });

  it('a throwing callback loses only its own record', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(8, 1));
    ring.push(bytes(8, 2));
    const consumer = ring.consumerFor();
    expect(() => consumer.consume(() => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(ring.consumerPos).toBe(16);
    const got: number[] = [];
    consumer.consume((r) => got.push(r.bytes[r.offset]!));
    expect(got).toEqual([2]);
  });

  it('views: a callback throwing on a record that wraps, after a discarded one, past 2^32, consumes just that record', () => {
    // Starts 40 B before the end of the ring, 2^32 · 3 in: the third record runs over the end.
    const start = 2 ** 32 * 3 + PAGE - 40;
    const ring = new FakeRing(PAGE, start);
    ring.push(bytes(8, 1));
    ring.push(bytes(8, 2), RINGBUF_DISCARD_BIT);
    const third = ring.push(bytes(20, 3));
    ring.push(bytes(8, 4));
    const consumer = ring.consumerFor();
    const got: number[][] = [];
    expect(() => consumer.consume((r) => {
      got.push([...r.subarray()]);
      if (got.length === 2) throw new Error('boom');
    })).toThrow('boom');
    expect(got).toEqual([[...bytes(8, 1)], [...bytes(20, 3)]]);
    expect(ring.consumerPos).toBe(third + 32);
    expect(consumer.consume((r) => got.push([...r.subarray()]))).toBe(1);
    expect(got[2]).toEqual([...bytes(8, 4)]);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('max limits the records handed out', () => {
    const ring = new FakeRing(PAGE);
    for (let i = 0; i < 5; i++) ring.push(bytes(8, i));
    const consumer = ring.consumerFor();
    expect(consumer.consume(() => {}, 2)).toBe(2);
    expect(consumer.pending()).toBe(3 * 16);
    expect(consumer.consume(() => {})).toBe(3);
  });

  it('a corrupt length is a typed error naming the ring and position, not an endless loop', () => {
    const ring = new FakeRing(PAGE);
    const at = ring.push(bytes(8, 1));
    ring.commit(at, 1 << 20);
    expect(() => ring.consumerFor().consume(() => {})).toThrow(RingBufferError);
    expect(() => ring.consumerFor().consume(() => {})).toThrow(/ring buffer fake: record at position 0 claims 1048576 B/);
  });

  it('a corrupt length met by the batch walk (batches, copies) names its position past 2^31 and 2^32; nothing is handed out', () => {
    for (const start of [2 ** 31 + PAGE - 16, 2 ** 32 * 5 + PAGE - 16]) {
      const ring = new FakeRing(PAGE, start);
      ring.push(bytes(8, 1));
      const bad = ring.push(bytes(8, 2));
      ring.commit(bad, 1 << 20);
      const consumer = ring.consumerFor();
      const message = new RegExp(`ring buffer fake: record at position ${bad} claims 1048576 B in a 4096 B ring`);
      const got: unknown[] = [];
      expect(() => consumer.consumeBatch((b) => got.push(b.count))).toThrow(message);
      expect(() => consumer.consumeCopies((r) => got.push(r))).toThrow(message);
      expect(got).toEqual([]);
      expect(ring.consumerPos).toBe(start);
    }
  });

  it('refuses sizes that are not a power of two, and mappings too small', () => {
    const ring = new FakeRing(PAGE);
    expect(() => new RingBufferConsumer('x', { consumer: ring.consumer, producer: ring.producer, dataOffset: PAGE, size: 3000 })).toThrow(/not a power of two/);
    expect(() => new RingBufferConsumer('x', { consumer: ring.consumer, producer: ring.producer, dataOffset: PAGE, size: 2 * PAGE })).toThrow(/cannot hold/);
  });

  it('sizes follow libbpf: a power-of-two multiple of the page size, rounded up', () => {
    expect(ringBufferSize(1, PAGE)).toBe(PAGE);
    expect(ringBufferSize(PAGE, PAGE)).toBe(PAGE);
    expect(ringBufferSize(PAGE + 1, PAGE)).toBe(2 * PAGE);
    expect(ringBufferSize(3 * PAGE, PAGE)).toBe(4 * PAGE);
    expect(ringBufferSize(64 * 1024, PAGE)).toBe(64 * 1024);
    expect(ringBufferSize(0, PAGE)).toBe(0);
  });
});

describe('ring buffer batch copies (consumeCopies, what EventReader uses)', () => {
  it('copies that survive the ring being overwritten, through wraps, BUSY and DISCARD', () => {
    const ring = new FakeRing(PAGE);
    const consumer = ring.consumerFor();
    const kept: Buffer[] = [];
    for (let round = 0; round < 200; round++) {
      ring.push(bytes(64, round));
      if (round % 9 === 0) ring.push(bytes(16, 99), RINGBUF_DISCARD_BIT);
      if (round % 5 === 4) consumer.consumeCopies((r) => kept.push(r));
    }
    consumer.consumeCopies((r) => kept.push(r));
    expect(kept).toHaveLength(200);
    // 200 × 72 B went through a 4096 B ring: the ring has been overwritten many times, the copies are intact.
    expect(kept.filter((r, i) => !r.equals(Buffer.from(bytes(64, i))))).toEqual([]);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('stops at BUSY; a throwing callback loses only its own record; positions past 2^32', () => {
    const ring = new FakeRing(PAGE, 2 ** 32 * 2 - 24);
    ring.push(bytes(8, 1));
    ring.push(bytes(8, 2));
    const busy = ring.push(bytes(8, 3), RINGBUF_BUSY_BIT);
    const consumer = ring.consumerFor();
    const got: number[] = [];
    expect(() => consumer.consumeCopies((r) => {
      got.push(r[0]!);
      throw new Error('boom');
    })).toThrow('boom');
    expect(got).toEqual([1]);
    expect(ring.consumerPos).toBe(2 ** 32 * 2 - 24 + 16);
    expect(consumer.consumeCopies((r) => got.push(r[0]!))).toBe(1);
    ring.commit(busy, 8);
    expect(consumer.consumeCopies((r) => got.push(r[0]!))).toBe(1);
    expect(got).toEqual([1, 2, 3]);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('more records in one batch than its first scratch space holds', () => {
    const ring = new FakeRing(PAGE * 4);
    for (let i = 0; i < 1000; i++) ring.push(bytes(8, i));
    const got: number[] = [];
    expect(ring.consumerFor().consumeCopies((r) => got.push(r[0]!))).toBe(1000);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  });
});

/** A fake perf ring: control page, then `pages` data pages, then the spare area the reader completes wrapped records in. */
class FakePerf {
  readonly memory: ArrayBuffer;
  readonly size: number;
  head = 0;
  readonly #data: Uint8Array;
  readonly #control: BigUint64Array;

  constructor(pages: number, start = 0) {
    this.size = pages * PAGE;
    this.memory = new ArrayBuffer(PAGE + this.size + PERF_RING_SPARE);
    this.#data = new Uint8Array(this.memory, PAGE);
    this.#control = new BigUint64Array(this.memory, 0, PERF_EVENT_MMAP_PAGE.size / 8);
    this.#control[PERF_EVENT_MMAP_PAGE.data_offset / 8] = BigInt(PAGE);
    this.#control[PERF_EVENT_MMAP_PAGE.data_size / 8] = BigInt(this.size);
    this.head = start;
    this.#control[PERF_EVENT_MMAP_PAGE.data_head / 8] = BigInt(start);
    this.#control[PERF_EVENT_MMAP_PAGE.data_tail / 8] = BigInt(start);
  }

  get tail(): number {
    return Number(this.#control[PERF_EVENT_MMAP_PAGE.data_tail / 8]);
  }

  #append(record: Uint8Array): void {
    for (let i = 0; i < record.byteLength; i++) this.#data[(this.head + i) % this.size] = record[i]!;
    this.head += record.byteLength;
    this.#control[PERF_EVENT_MMAP_PAGE.data_head / 8] = BigInt(this.head);
  }

  sample(raw: Uint8Array): void {
    const size = (8 + 4 + raw.byteLength + 7) & ~7;
    const r = new Uint8Array(size);
    const v = new DataView(r.buffer);
    v.setUint32(0, PerfRecordType.SAMPLE, true);
    v.setUint16(6, size, true);
    v.setUint32(8, size - 12, true);
    r.set(raw, 12);
    this.#append(r);
  }

  lost(count: number): void {
    const r = new Uint8Array(24);
    const v = new DataView(r.buffer);
    v.setUint32(0, PerfRecordType.LOST, true);
    v.setUint16(6, 24, true);
    v.setBigUint64(16, BigInt(count), true);
    this.#append(r);
  }
}

describe('perf ring reader (fake memory)', () => {
  it('reassembles samples that wrap, reports lost counts, and writes data_tail after reading', () => {
    const perf = new FakePerf(1);
    const ring = new PerfRing('fake', 0, perf.memory);
    const samples: Uint8Array[] = [];
    const lost: number[] = [];
    const onSample = (v: RecordView) => {
      expect(v.cpu).toBe(0);
      samples.push(Uint8Array.from(v.subarray()));
    };
    const onLost = (n: number) => lost.push(n);
    // 64-byte payloads make 80-byte records: 4096 is not a multiple, so records straddle the end.
    for (let i = 0; i < 200; i++) {
      perf.sample(bytes(68, i));
      if (i % 7 === 6) ring.consume(onSample, onLost);
    }
    perf.lost(42);
    ring.consume(onSample, onLost);
    expect(samples).toHaveLength(200);
    samples.forEach((s, i) => expect(s).toEqual(bytes(68, i)));
    expect(lost).toEqual([42]);
    expect(perf.tail).toBe(perf.head);
  });

  it('batches: samples that wrap are completed in the spare area, contiguous; drops to onLost; data_tail after the callback', () => {
    const perf = new FakePerf(1);
    const ring = new PerfRing('fake', 2, perf.memory);
    const samples: number[][] = [];
    const lost: number[] = [];
    let wrapped = 0;
    for (let i = 0; i < 200; i++) {
      perf.sample(bytes(68, i));
      if (i === 100) perf.lost(7);
      if (i % 9 === 8) {
        const tail = perf.tail;
        ring.consumeBatch((b) => {
          expect(b.cpu).toBe(2);
          expect(perf.tail).toBe(tail); // the space is not released while the callback reads
          for (let k = 0; k < b.count; k++) {
            if (b.offsets[k]! + b.lengths[k]! > PAGE) wrapped++;
            samples.push([...b.bytes.subarray(b.offsets[k]!, b.offsets[k]! + b.lengths[k]!)]);
          }
        }, (n) => lost.push(n));
        expect(perf.tail).toBe(perf.head);
      }
    }
    ring.consumeBatch((b) => {
      for (let k = 0; k < b.count; k++) samples.push([...b.bytes.subarray(b.offsets[k]!, b.offsets[k]! + b.lengths[k]!)]);
    }, (n) => lost.push(n));
    expect(samples).toEqual(Array.from({ length: 200 }, (_, i) => [...bytes(68, i)]));
    expect(wrapped).toBeGreaterThan(0); // 200 × 80 B through 4096 B: some records ran past the end
    expect(lost).toEqual([7]);
    expect(perf.tail).toBe(perf.head);
  });

  it('batches: an onLost that throws still consumes the walk, so the drop and its samples are not met again', () => {
    const perf = new FakePerf(1);
    perf.sample(bytes(4, 1));
    perf.lost(5);
    perf.sample(bytes(4, 2));
    const ring = new PerfRing('fake', 0, perf.memory);
    expect(() => ring.consumeBatch(() => expect.unreachable(), () => {
      throw new Error('onLost failed');
    })).toThrow('onLost failed');
    expect(perf.tail).toBe(perf.head);
    perf.sample(bytes(4, 3));
    const got: number[] = [];
    const lost: number[] = [];
    expect(ring.consumeBatch((b) => got.push(b.bytes[b.offsets[0]!]!), (n) => lost.push(n))).toBe(1);
    expect(got).toEqual([3]);
    expect(lost).toEqual([]);
  });

  it('views: a stop set in the callback leaves data_tail just past that sample', () => {
    const perf = new FakePerf(1);
    for (let i = 0; i < 5; i++) perf.sample(bytes(4, i));
    const ring = new PerfRing('fake', 0, perf.memory);
    const stop = { stopped: false };
    const got: number[] = [];
    expect(ring.consume((v) => {
      got.push(v.bytes[v.offset]!);
      if (got.length === 3) stop.stopped = true;
    }, () => {}, stop)).toBe(3);
    expect(perf.tail).toBe(3 * 16);
    expect(ring.consume((v) => got.push(v.bytes[v.offset]!), () => {})).toBe(2);
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('views: a throwing sample callback or onLost consumes just its own record', () => {
    const perf = new FakePerf(1);
    perf.sample(bytes(4, 0));
    perf.sample(bytes(4, 1));
    perf.lost(7);
    perf.sample(bytes(4, 2));
    const ring = new PerfRing('fake', 0, perf.memory);
    const got: number[] = [];
    expect(() => ring.consume((v) => {
      got.push(v.bytes[v.offset]!);
      if (got.length === 2) throw new Error('sample');
    }, () => {})).toThrow('sample');
    expect(perf.tail).toBe(2 * 16);
    expect(() => ring.consume((v) => got.push(v.bytes[v.offset]!), (n) => {
      throw new Error(`lost ${n}`);
    })).toThrow('lost 7');
    expect(perf.tail).toBe(2 * 16 + 24);
    expect(ring.consume((v) => got.push(v.bytes[v.offset]!), () => {})).toBe(1);
    expect(got).toEqual([0, 1, 2]);
    expect(perf.tail).toBe(perf.head);
  });

  it('memory without the spare area after the data is refused, naming the ring', () => {
    const perf = new FakePerf(1);
    expect(() => new PerfRing('fake', 1, perf.memory.slice(0, PAGE + PAGE))).toThrow(PerfBufferError);
    expect(() => new PerfRing('fake', 1, perf.memory.slice(0, PAGE + PAGE))).toThrow(/perf buffer fake: cpu 1: data area of 4096 B at 4096 and 65536 B after it do not fit a 8192 B mapping/);
  });

  it('a record size that cannot be right is a typed error, with the tail kept at the last good record', () => {
    const perf = new FakePerf(1);
    perf.sample(bytes(4, 1));
    const good = perf.head;
    perf.sample(bytes(4, 2));
    new DataView(perf.memory, PAGE + good).setUint16(6, 0, true);
    const ring = new PerfRing('fake', 3, perf.memory);
    expect(() => ring.consume(() => {}, () => {})).toThrow(/perf buffer fake: cpu 3: record at 16 has size 0/);
    expect(perf.tail).toBe(good);
  });

  it('batches: an impossible size met by the walk is a typed error naming its position past 2^32; nothing handed out, the tail kept', () => {
    // The first record starts 8 B before the end of the ring: its body wraps, the bad one starts the next lap.
    const start = 2 ** 32 * 3 + PAGE - 8;
    const perf = new FakePerf(1, start);
    perf.sample(bytes(4, 1));
    const bad = perf.head;
    perf.sample(bytes(4, 2));
    new DataView(perf.memory, PAGE + (bad % PAGE)).setUint16(6, 12, true);
    const ring = new PerfRing('fake', 2, perf.memory);
    const got: number[] = [];
    expect(() => ring.consumeBatch((b) => got.push(b.count), () => {})).toThrow(new RegExp(`perf buffer fake: cpu 2: record at ${bad} has size 12 \\(16 B written\\)`));
    expect(got).toEqual([]);
    expect(perf.tail).toBe(start);
  });
});

describe('ring buffer batches (consumeBatch, fake memory)', () => {
  const recordsOf = (b: RecordBatch) => Array.from({ length: b.count }, (_, i) => [...b.bytes.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)]);

  it('every ready record in one batch, contiguous through wraps; the position is stored after the callback', () => {
    const ring = new FakeRing(PAGE);
    const consumer = ring.consumerFor();
    const seen: number[][] = [];
    let pushed = 0;
    for (let round = 0; round < 40; round++) {
      // 72-byte records and a varying count: batches start and end all over the ring, and records straddle its end.
      for (let i = 0; i < 1 + (round % 7); i++) ring.push(bytes(64, pushed++));
      const before = ring.consumerPos;
      const n = consumer.consumeBatch((b) => {
        expect(b.cpu).toBeNull();
        expect(b.map).toBe('fake');
        expect(ring.consumerPos).toBe(before); // not released while the callback reads
        for (let i = 0; i < b.count; i++) {
          expect(b.offsets[i]! % 8).toBe(0);
          expect(b.offsets[i]! + b.lengths[i]!).toBeLessThanOrEqual(2 * PAGE);
          expect(b.view.getUint8(b.offsets[i]!)).toBe(b.bytes[b.offsets[i]!]);
        }
        seen.push(...recordsOf(b));
      });
      expect(n).toBe(1 + (round % 7));
      expect(ring.consumerPos).toBe(ring.producerPos);
    }
    expect(seen).toEqual(Array.from({ length: pushed }, (_, i) => [...bytes(64, i)]));
  });

  it('stops at BUSY, skips DISCARD, resumes after the commit; a batch of discarded records only is not handed out', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(8, 1));
    ring.push(bytes(8, 2), RINGBUF_DISCARD_BIT);
    ring.push(bytes(16, 3));
    const busy = ring.push(bytes(8, 4), RINGBUF_BUSY_BIT);
    ring.push(bytes(8, 5));
    const consumer = ring.consumerFor();
    const got: number[][] = [];
    expect(consumer.consumeBatch((b) => got.push(...recordsOf(b)))).toBe(2);
    expect(got).toEqual([[...bytes(8, 1)], [...bytes(16, 3)]]);
    expect(ring.consumerPos).toBe(16 + 16 + 24);
    expect(consumer.consumeBatch(() => expect.unreachable())).toBe(0);
    ring.commit(busy, 8);
    expect(consumer.consumeBatch((b) => got.push(...recordsOf(b)))).toBe(2);
    expect(got.slice(2)).toEqual([[...bytes(8, 4)], [...bytes(8, 5)]]);
    ring.push(bytes(8, 6), RINGBUF_DISCARD_BIT);
    let calls = 0;
    expect(consumer.consumeBatch(() => calls++)).toBe(0);
    expect(calls).toBe(0);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('a throwing callback consumes its batch; positions past 2^32; more records than the first arrays hold', () => {
    const ring = new FakeRing(PAGE * 32, 2 ** 32 * 5 - 64);
    for (let i = 0; i < 5000; i++) ring.push(bytes(4, i)); // 16 B each, across the 2^32 boundary
    const consumer = ring.consumerFor();
    expect(() => consumer.consumeBatch(() => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(ring.consumerPos).toBe(ring.producerPos);
    for (let i = 0; i < 6000; i++) ring.push(bytes(0, 0)); // empty records: 8 B each, 6000 > the 4096 first held
    const lengths: number[] = [];
    expect(consumer.consumeBatch((b) => lengths.push(...b.lengths.subarray(0, b.count)))).toBe(6000);
    expect(lengths).toEqual(Array.from({ length: 6000 }, () => 0));
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('copy(i) keeps a record past the callback; an index outside the batch is a typed error', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(12, 7));
    const consumer = ring.consumerFor();
    let kept: Buffer | undefined;
    consumer.consumeBatch((b) => {
      kept = b.copy(0);
      expect(() => b.copy(1)).toThrow('fake: record 1 is not in this batch of 1');
    });
    for (let i = 0; i < 100; i++) ring.push(bytes(56, 200));
    consumer.consumeBatch(() => {});
    expect([...kept!]).toEqual([...bytes(12, 7)]);
  });
});

describe('stopping a consumer from inside its callback (the reader\'s close())', () => {
  it('views: the position is stored just past the record whose callback set the flag', () => {
    const ring = new FakeRing(PAGE);
    for (let i = 0; i < 6; i++) ring.push(bytes(8, i));
    const stop = { stopped: false };
    const got: number[] = [];
    const n = ring.consumerFor().consume((v) => {
      got.push(v.bytes[v.offset]!);
      if (got.length === 2) stop.stopped = true;
    }, Number.POSITIVE_INFINITY, stop);
    expect(n).toBe(2);
    expect(got).toEqual([0, 1]);
    expect(ring.consumerPos).toBe(32);
  });

  it('copies: the same; discarded records between it and the next one are consumed with it', () => {
    const ring = new FakeRing(PAGE);
    ring.push(bytes(8, 1));
    ring.push(bytes(8, 2));
    ring.push(bytes(8, 9), RINGBUF_DISCARD_BIT);
    ring.push(bytes(8, 3));
    const consumer = ring.consumerFor();
    const stop = { stopped: false };
    const got: number[] = [];
    expect(consumer.consumeCopies((r) => {
      got.push(r[0]!);
      if (r[0] === 2) stop.stopped = true;
    }, stop)).toBe(2);
    expect(ring.consumerPos).toBe(48);
    expect(consumer.consumeCopies((r) => got.push(r[0]!))).toBe(1);
    expect(got).toEqual([1, 2, 3]);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });
});
