import { spawnSync } from 'node:child_process'; // spawns ping (an oracle of traffic) with an argument array: no shell
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { describe, expect } from 'vitest';
import { openObject, type BufferEvent, type EventRecord } from '../../src/index.js';
import { EventError, loadObject, openRingBuffer, type LoadOptions, type RecordBatch, type RecordView } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { mapInfo } from '../../src/sys/index.js';
import { isExecutable, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { onOneCpu, threadId } from '../helpers/cpu.js';

/** glibc ≥ 2.25 no longer caches getpid(): every call is a system call, so it fires sys_enter_getpid. */
const getpid = koffi.load('libc.so.6').func('int getpid(void)') as () => number;

const sample = (file: string) => join(SAMPLES_DIR, file);
const load = (file: string, options: LoadOptions = {}) => loadObject(parseObject(readFileSync(sample(file)), { name: file }), options);

/** A 64-byte frame whose bytes are `seed`, `seed+1`, … (the producers copy its first 56 bytes into each record). */
const frame = (seed: number) => Buffer.from(Array.from({ length: 64 }, (_, i) => (seed + i) & 0xff));
const record = (r: BufferEvent) => r as EventRecord;
const seqOf = (r: BufferEvent) => record(r).data.readBigUInt64LE(0);

/** A tiny ring buffer: the map definition's 256 KiB cut to one page. */
const tinyRing: LoadOptions = {
  fixupMap: (m) => {
    if (m.name === 'ring') m.def.maxEntries = 4096;
  },
};

function rssKb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}
/** Mappings of BPF maps and perf events in this process (a leaked ring or perf mmap shows up here). */
const kernelMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /anon_inode:(bpf-map|\[perf_event\])/.test(l)).length;
const mapsLines = () => readFileSync('/proc/self/maps', 'utf8').split('\n').length;

describe('ring buffers against the kernel', () => {
  kernelTest('N getpid() calls → exactly N records with our pid and counters 1..N, decoded as struct event', async () => {
    const obj = openObject(sample('ringbuf_kern.o'));
    try {
      obj.attachAll();
      const reader = obj.ringBuffer('events');
      const N = 25;
      for (let i = 0; i < N; i++) getpid();
      // Other processes call getpid too, and so, now and then, do other threads of this one (the counter is per
      // process): keep every record of this process, and count ours, the calls made on this thread.
      const tid = Number(threadId());
      const ofProcess: EventRecord[] = [];
      const mine = () => ofProcess.filter((e) => (e.value as { tid: number }).tid === tid);
      const keep = (e: BufferEvent) => {
        if (e.kind === 'record' && (e.value as { pid: number }).pid === process.pid) ofProcess.push(e);
      };
      // Nothing lost or duplicated: the per-process counter map says how many calls there were (the program counts,
      // then submits), and the records of this process carry the counts 1..that, each once (sorted: two threads'
      // records may be submitted in the other order).
      const calls = () => Number(obj.map('calls').get(process.pid)?.readBigUInt64LE(0));
      let total = 0;
      const timeout = setTimeout(() => void reader.close(), 5000);
      for await (const e of reader) {
        keep(e);
        total = calls();
        if (mine().length === N && ofProcess.length === total) break;
      }
      clearTimeout(timeout);
      await reader.close();
      expect(mine()).toHaveLength(N);
      expect(total).toBeGreaterThanOrEqual(N);
      expect(ofProcess.map((e) => (e.value as { count: number }).count).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(ofProcess.every((e) => e.cpu === null && e.map === 'events' && e.data.byteLength === 32)).toBe(true);
      expect(mine()[0]!.value).toMatchObject({ pid: process.pid, tid, comm: expect.any(String) });
      expect(obj.variable('dropped').get()).toBe(0);
    } finally {
      obj.close();
    }
  });

  kernelTest('records of a test-run producer: sequence numbers and payloads intact through many wraps of a one-page ring', () => {
    const obj = load('test_run_kern.o', tinyRing);
    try {
      expect(obj.map('ring').spec.maxEntries).toBe(4096);
      const reader = openRingBuffer(obj.map('ring'));
      const got: BufferEvent[] = [];
      const program = obj.program('xdp_ring');
      // 64-byte records take 72 bytes: a 4096-byte ring wraps mid-record every 57th record.
      for (let batch = 0; batch < 40; batch++) {
        program.testRun({ data: frame(batch), repeat: 50 });
        reader.readReady((e) => got.push(e));
      }
      void reader.close();
      expect(got).toHaveLength(2000);
      const wrong = got.filter((e, i) => seqOf(e) !== BigInt(i + 1) || !record(e).data.subarray(8).equals(frame(Math.floor(i / 50)).subarray(0, 56)));
      expect(wrong).toEqual([]);
      expect(obj.variable('ring_dropped').get()).toBe(0);
    } finally {
      obj.close();
    }
  });

  kernelTest('a burst into a full ring: drops are counted by the producer, nothing hangs, reading resumes', () => {
    const obj = load('test_run_kern.o', tinyRing);
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      program.testRun({ data: frame(1), repeat: 1000 });
      const first: BufferEvent[] = [];
      reader.readReady((e) => first.push(e));
      const fit = Math.floor(4096 / 72); // records that fit before the producer catches the consumer
      expect(first).toHaveLength(fit);
      expect(obj.variable('ring_dropped').get()).toBe(1000 - fit);
      program.testRun({ data: frame(2), repeat: 10 });
      const second: BufferEvent[] = [];
      reader.readReady((e) => second.push(e));
      expect(second.map(seqOf)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(fit + 1 + i)));
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('discarded records are skipped (the kernel sets DISCARD), later ones still arrive', () => {
    const obj = load('test_run_kern.o');
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      program.testRun({ data: Buffer.concat([Buffer.of(0xff), frame(0).subarray(1)]), repeat: 5 });
      program.testRun({ data: frame(3), repeat: 2 });
      const got: BufferEvent[] = [];
      reader.readReady((e) => got.push(e));
      expect(got.map(seqOf)).toEqual([6n, 7n]);
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('close() during a pending read returns within 100 ms, and the read ends', async () => {
    const obj = load('test_run_kern.o');
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const listening = reader.listen(() => {});
      await new Promise((r) => setTimeout(r, 50)); // the wait is now blocked in epoll_wait on a pool thread
      const started = performance.now();
      await reader.close();
      await listening;
      expect(performance.now() - started).toBeLessThan(100);
    } finally {
      obj.close();
    }
  });

  kernelTest('an AbortSignal stops an iterator; a record arriving while waiting wakes it', async () => {
    const obj = load('test_run_kern.o');
    try {
      const stop = new AbortController();
      const reader = openRingBuffer(obj.map('ring'), { signal: stop.signal });
      setTimeout(() => obj.program('xdp_ring').testRun({ data: frame(9), repeat: 3 }), 30);
      const got: bigint[] = [];
      for await (const e of reader) {
        got.push(seqOf(e));
        if (got.length === 3) stop.abort();
      }
      expect(got).toEqual([1n, 2n, 3n]);
      expect(reader.closed).toBe(true);
    } finally {
      obj.close();
    }
  });

  kernelTest('1,000 open/read/close cycles leave fd count, mappings and RSS flat', async () => {
    const obj = load('test_run_kern.o');
    try {
      const program = obj.program('xdp_ring');
      const cycle = async () => {
        const reader = openRingBuffer(obj.map('ring'));
        program.testRun({ data: frame(1), repeat: 1 });
        let n = 0;
        reader.readReady(() => n++);
        const pending = reader.listen(() => {});
        await reader.close();
        await pending;
        return n;
      };
      for (let i = 0; i < 50; i++) await cycle(); // warm up allocators and JIT
      const fds = openFdCount();
      const maps = mapsLines();
      const mappings = kernelMappings();
      const rss = rssKb();
      let records = 0;
      for (let i = 0; i < 1000; i++) records += await cycle();
      expect(records).toBe(1000);
      expect(openFdCount()).toBe(fds);
      expect(kernelMappings()).toBe(mappings);
      // V8 and the thread pool may map a few more pages of their own; 1,000 leaked cycles would be 2,000 lines.
      expect(mapsLines() - maps).toBeLessThan(100);
      // A leaked 256 KiB ring mapping per cycle would be 250 MB; allow GC noise.
      expect(rssKb() - rss).toBeLessThan(32 * 1024);
    } finally {
      obj.close();
    }
  }, 60_000);

  kernelTest('a ring buffer size that is not a power-of-two multiple of the page is rounded up (libbpf\'s rule) and works', () => {
    const spec = parseObject(readFileSync(sample('test_run_kern.o')), { name: 'test_run_kern.o' });
    const odd = { ...spec, maps: spec.maps.map((m) => (m.name === 'ring' ? { ...m, maxEntries: 5000 } : m)) };
    const obj = loadObject(odd);
    try {
      expect(obj.map('ring').spec.maxEntries).toBe(8192);
      expect(mapInfo(obj.map('ring').fd).maxEntries).toBe(8192); // what the kernel created
      const reader = openRingBuffer(obj.map('ring'));
      obj.program('xdp_ring').testRun({ data: frame(0), repeat: 200 });
      let n = 0;
      reader.readReady(() => n++);
      expect(n).toBe(Math.floor(8192 / 72));
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('bad input: a map that is not a ring buffer, an unknown record type', () => {
    const obj = load('ringbuf_kern.o');
    try {
      expect(() => openRingBuffer(obj.map('calls'))).toThrow(EventError);
      expect(() => openRingBuffer(obj.map('calls'))).toThrow('map calls: is a hash, not a ring buffer (ringbuf)');
      expect(() => openRingBuffer(obj.map('events'), { type: 'no_such_struct' })).toThrow(
        "map events: no struct, union or typedef named no_such_struct in the object's BTF");
    } finally {
      obj.close();
    }
  });
});

describe('perf buffers against the kernel', () => {
  kernelTest('N test runs → N samples on the CPU that ran them, payloads intact across wraps; the map slots are cleared at close', async () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      // max_entries 0 in the object: one slot per possible CPU.
      const cpus = Number(readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split('-').at(-1)) + 1;
      expect(obj.map('perf').spec.maxEntries).toBe(cpus);
      const reader = obj.perfBuffer('perf', { pagesPerCpu: 1 });
      const got: BufferEvent[] = [];
      // 80-byte records in a 4096-byte ring: records straddle the end and are reassembled.
      for (let batch = 0; batch < 30; batch++) {
        obj.program('xdp_perf').testRun({ data: frame(batch), repeat: 20 });
        reader.readReady((e) => got.push(e));
      }
      expect(got).toHaveLength(600);
      const wrong = got.filter((e, i) => e.kind !== 'record' || seqOf(e) !== BigInt(i + 1) ||
        !record(e).data.subarray(8, 64).equals(frame(Math.floor(i / 20)).subarray(0, 56)));
      expect(wrong).toEqual([]);
      await reader.close();
      // Closing took the event fds out of the map (user space cannot look slots up: deleting an empty one says so).
      for (let cpu = 0; cpu < cpus; cpu++) expect(obj.map('perf').delete(cpu)).toBe(false);
    } finally {
      obj.close();
    }
  });

  kernelTest('a burst beyond the ring: the kernel\'s PERF_RECORD_LOST reaches onLost and the iterator, reading resumes', () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      const lost: number[] = [];
      const reader = obj.perfBuffer('perf', { pagesPerCpu: 1, onLost: (l) => lost.push(l.lost) });
      const program = obj.program('xdp_perf');
      // Pinned, the burst and the single run after it sample into the same CPU's ring (see onOneCpu).
      onOneCpu((cpu) => {
        program.testRun({ data: frame(1), repeat: 1000 });
        const events: BufferEvent[] = [];
        reader.readReady((e) => events.push(e));
        const fit = events.length;
        expect(fit).toBeGreaterThan(40);
        expect(fit).toBeLessThan(1000);
        expect(events.every((e) => e.kind === 'record' && e.cpu === cpu)).toBe(true);
        expect(lost).toEqual([]);
        // The kernel writes the LOST record into the full ring once space is free again, before that ring's next
        // sample; reading resumes with that sample.
        program.testRun({ data: frame(2), repeat: 1 });
        reader.readReady((e) => events.push(e));
        expect(lost).toEqual([1000 - fit]);
        expect(events.slice(fit)).toEqual([
          { kind: 'lost', map: 'perf', cpu, lost: 1000 - fit },
          expect.objectContaining({ kind: 'record', cpu }),
        ]);
        expect(seqOf(events[fit + 1] as BufferEvent)).toBe(1001n);
      });
      void reader.close();
    } finally {
      obj.close();
    }
  });

  const ping = ['/usr/bin/ping', '/bin/ping'].find(isExecutable);
  kernelTest('N pings on lo → one record per outgoing packet with the right length (trace_output-style socket filter)', async () => {
    if (ping === undefined) throw new Error('ping is not installed (.ci/run installs iputils-ping)');
    const obj = openObject(sample('perfbuf_kern.o'));
    try {
      obj.attachAll({ iface: 'lo' });
      const reader = obj.perfBuffer('packets');
      const N = 4;
      // An unusual payload size tells our packets from colleagues' traffic on lo.
      const payload = 1000 + (process.pid % 300);
      const r = spawnSync(ping, ['-c', String(N), '-i', '0.2', '-s', String(payload), '-q', '127.0.0.1'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const frameLength = 14 + 20 + 8 + payload;
      const ours: Array<{ len: number; protocol: number }> = [];
      const deadline = setTimeout(() => void reader.close(), 3000);
      for await (const e of reader) {
        if (e.kind !== 'record') continue;
        const v = e.value as { len: number; protocol: number };
        if (v.len === frameLength) ours.push(v);
        if (ours.length === 2 * N) break;
      }
      clearTimeout(deadline);
      await reader.close();
      // Each ping is an echo request and an echo reply, both sent out through lo.
      expect(ours).toEqual(Array.from({ length: 2 * N }, () => ({ len: frameLength, protocol: 1 })));
    } finally {
      obj.close();
    }
  });

  kernelTest('100 open/read/close cycles of a perf buffer leave fds and mappings (the rings and the spare areas after them) flat', async () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      const program = obj.program('xdp_perf');
      const cycle = async () => {
        const reader = obj.perfBuffer('perf', { pagesPerCpu: 1 });
        let n = 0;
        // Two rounds of 30 × 80 B: the second runs past the end of a 4096 B ring, into the spare area.
        for (let round = 0; round < 2; round++) {
          program.testRun({ data: frame(round), repeat: 30 });
          reader.readReadyBatch((b) => {
            n += b.count;
          });
        }
        await reader.close();
        return n;
      };
      for (let i = 0; i < 20; i++) await cycle();
      const fds = openFdCount();
      const maps = mapsLines();
      let records = 0;
      for (let i = 0; i < 100; i++) records += await cycle();
      expect(records).toBe(100 * 60);
      expect(openFdCount()).toBe(fds);
      // A leaked ring and spare area per CPU and cycle would be 400+ lines.
      expect(mapsLines() - maps).toBeLessThan(100);
    } finally {
      obj.close();
    }
  }, 60_000);

  kernelTest('bad input: pagesPerCpu not a power of two; a ring buffer is not a perf event array', () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      expect(() => obj.perfBuffer('perf', { pagesPerCpu: 3 })).toThrow('map perf: pagesPerCpu must be a power of two ≥ 1, not 3');
      expect(() => obj.perfBuffer('ring')).toThrow('map ring: is a ringbuf, not a perf event array');
    } finally {
      obj.close();
    }
  });
});

describe('records as views (readReadyViews, listenViews) against the kernel', () => {
  kernelTest('ring buffer: the same records as the copies, through many wraps of a one-page ring, from one reused view', () => {
    const obj = load('test_run_kern.o', tinyRing);
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      const seqs: bigint[] = [];
      const wrong: number[] = [];
      const views = new Set<RecordView>();
      for (let batch = 0; batch < 40; batch++) {
        program.testRun({ data: frame(batch), repeat: 50 });
        const n = reader.readReadyViews((v) => {
          views.add(v);
          expect(v.length).toBe(64);
          expect(v.cpu).toBeNull();
          seqs.push(v.view.getBigUint64(v.offset, true));
          // The payload read in place, in the ring's memory (records that wrap read on into its second mapping).
          if (!Buffer.from(v.bytes.buffer, v.bytes.byteOffset + v.offset + 8, 56).equals(frame(batch).subarray(0, 56))) wrong.push(seqs.length);
        });
        expect(n).toBe(50);
      }
      void reader.close();
      expect(seqs).toEqual(Array.from({ length: 2000 }, (_, i) => BigInt(i + 1)));
      expect(wrong).toEqual([]);
      expect(views.size).toBe(1);
    } finally {
      obj.close();
    }
  });

  kernelTest('perf buffer: samples as views carry their CPU; records that wrap come reassembled; drops reach onLost', () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      const lost: number[] = [];
      const reader = obj.perfBuffer('perf', { pagesPerCpu: 1, onLost: (l) => lost.push(l.lost) });
      const program = obj.program('xdp_perf');
      const kept: Buffer[] = [];
      const cpus = new Set<number | null>();
      for (let batch = 0; batch < 30; batch++) {
        program.testRun({ data: frame(batch), repeat: 20 });
        reader.readReadyViews((v) => {
          cpus.add(v.cpu);
          kept.push(v.copy());
        });
      }
      expect(kept.map((d) => d.readBigUInt64LE(0))).toEqual(Array.from({ length: 600 }, (_, i) => BigInt(i + 1)));
      expect(kept.filter((d, i) => !d.subarray(8, 64).equals(frame(Math.floor(i / 20)).subarray(0, 56)))).toEqual([]);
      expect([...cpus].every((c) => typeof c === 'number')).toBe(true);
      // A burst beyond the one-page ring: the drop is reported to onLost (views have no event objects), once the
      // burst's ring has room again and takes a sample (test runs sample on the CPU the thread is on).
      onOneCpu((cpu) => {
        program.testRun({ data: frame(1), repeat: 1000 });
        let fit = 0;
        reader.readReadyViews((v) => {
          expect(v.cpu).toBe(cpu);
          fit++;
        });
        expect(lost).toEqual([]);
        program.testRun({ data: frame(2), repeat: 1 });
        const after: (number | null)[] = [];
        reader.readReadyViews((v) => after.push(v.cpu));
        expect(after).toEqual([cpu]);
        expect(lost).toEqual([1000 - fit]);
      });
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('a for-await loop that breaks loses nothing: the rest of its pass comes first from the next loop or readReady', async () => {
    const obj = load('test_run_kern.o');
    try {
      const reader = openRingBuffer(obj.map('ring'));
      obj.program('xdp_ring').testRun({ data: frame(0), repeat: 10 });
      const seen: bigint[] = [];
      for await (const e of reader) {
        seen.push(seqOf(e));
        if (seen.length === 3) break;
      }
      for await (const e of reader) {
        seen.push(seqOf(e));
        if (seen.length === 5) break;
      }
      expect(reader.readReady((e) => seen.push(seqOf(e)))).toBe(5);
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i + 1)));
      await reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('listenViews delivers until close(); close() from inside a view callback stops at that record', async () => {
    const obj = load('test_run_kern.o');
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      program.testRun({ data: frame(0), repeat: 10 });
      const seen: bigint[] = [];
      await reader.listenViews((v) => {
        seen.push(v.view.getBigUint64(v.offset, true));
        if (seen.length === 4) void reader.close();
      });
      expect(seen).toEqual([1n, 2n, 3n, 4n]);
      expect(reader.closed).toBe(true);
      expect(reader.readReadyViews(() => {})).toBe(0);
    } finally {
      obj.close();
    }
  });
});

describe('records in batches (readReadyBatch, listenBatches) against the kernel', () => {
  /** Each record of a batch as a Buffer, and where it lay. */
  const recordsOf = (b: RecordBatch) => Array.from({ length: b.count }, (_, i) => Buffer.from(b.bytes.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)));

  kernelTest('ring buffer: every record in order through many wraps of a one-page ring; discarded ones skipped', () => {
    const obj = load('test_run_kern.o', tinyRing);
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      const got: Buffer[] = [];
      const batches = new Set<RecordBatch>();
      let wrapped = 0;
      for (let round = 0; round < 40; round++) {
        program.testRun({ data: frame(round), repeat: 50 });
        // A discarded record (frames starting 0xff) between rounds: its space is consumed, it is never handed out.
        program.testRun({ data: Buffer.concat([Buffer.of(0xff), frame(0).subarray(1)]), repeat: 1 });
        const n = reader.readReadyBatch((b) => {
          batches.add(b);
          expect(b.cpu).toBeNull();
          expect(b.map).toBe('ring');
          for (let i = 0; i < b.count; i++) if (b.offsets[i]! + b.lengths[i]! > 4096) wrapped++;
          got.push(...recordsOf(b));
        });
        expect(n).toBe(50);
      }
      void reader.close();
      expect(batches.size).toBe(1);
      expect(wrapped).toBeGreaterThan(0); // records that ran past the end, read on in the second mapping
      // Sequence numbers count every run, discarded ones included: 51 per round, the last of each discarded.
      const wrong = got.filter((r, i) => r.byteLength !== 64 || r.readBigUInt64LE(0) !== BigInt(Math.floor(i / 50) * 51 + (i % 50) + 1) ||
        !r.subarray(8).equals(frame(Math.floor(i / 50)).subarray(0, 56)));
      expect(got).toHaveLength(2000);
      expect(wrong).toEqual([]);
      expect(obj.variable('ring_dropped').get()).toBe(0);
    } finally {
      obj.close();
    }
  });

  kernelTest('ring buffer: the space is released after the callback (a burst produced inside it does not fit), then reading resumes', () => {
    const obj = load('test_run_kern.o', tinyRing);
    try {
      const reader = openRingBuffer(obj.map('ring'));
      const program = obj.program('xdp_ring');
      const fit = Math.floor(4096 / 72);
      program.testRun({ data: frame(1), repeat: fit });
      let inside = 0;
      expect(reader.readReadyBatch((b) => {
        inside = b.count;
        // The ring is still full from the kernel's side while the batch is read: these are all dropped.
        program.testRun({ data: frame(2), repeat: 10 });
      })).toBe(fit);
      expect(inside).toBe(fit);
      expect(obj.variable('ring_dropped').get()).toBe(10);
      program.testRun({ data: frame(3), repeat: 5 });
      const after: bigint[] = [];
      reader.readReadyBatch((b) => after.push(...recordsOf(b).map((r) => r.readBigUInt64LE(0))));
      expect(after).toEqual([fit + 1, fit + 2, fit + 3, fit + 4, fit + 5].map(BigInt));
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('perf buffer: one batch per CPU ring carrying its CPU; records that wrap read contiguously; drops reach onLost', () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      const lost: number[] = [];
      const reader = obj.perfBuffer('perf', { pagesPerCpu: 1, onLost: (l) => lost.push(l.lost) });
      const program = obj.program('xdp_perf');
      const got: Buffer[] = [];
      let wrapped = 0;
      for (let round = 0; round < 30; round++) {
        program.testRun({ data: frame(round), repeat: 20 });
        reader.readReadyBatch((b) => {
          expect(typeof b.cpu).toBe('number');
          for (let i = 0; i < b.count; i++) if (b.offsets[i]! + b.lengths[i]! > 4096) wrapped++;
          got.push(...recordsOf(b));
        });
      }
      // 80-byte records in a 4096-byte ring: some run past its end and come completed in the spare area after it.
      expect(wrapped).toBeGreaterThan(0);
      expect(got.map((d) => d.readBigUInt64LE(0))).toEqual(Array.from({ length: 600 }, (_, i) => BigInt(i + 1)));
      expect(got.filter((d, i) => !d.subarray(8, 64).equals(frame(Math.floor(i / 20)).subarray(0, 56)))).toEqual([]);
      onOneCpu((cpu) => {
        program.testRun({ data: frame(1), repeat: 1000 });
        let fit = 0;
        reader.readReadyBatch((b) => {
          expect(b.cpu).toBe(cpu);
          fit += b.count;
        });
        expect(fit).toBeGreaterThan(40);
        expect(lost).toEqual([]);
        program.testRun({ data: frame(2), repeat: 1 });
        const after: Array<number | null> = [];
        reader.readReadyBatch((b) => after.push(b.cpu));
        expect(after).toEqual([cpu]);
        expect(lost).toEqual([1000 - fit]);
      });
      void reader.close();
    } finally {
      obj.close();
    }
  });

  kernelTest('listenBatches delivers until close(); close() from inside the callback stops after that batch', async () => {
    const obj = openObject(sample('test_run_kern.o'));
    try {
      const reader = obj.events();
      obj.program('xdp_ring').testRun({ data: frame(0), repeat: 7 });
      obj.program('xdp_perf').testRun({ data: frame(0), repeat: 3 });
      const maps: string[] = [];
      await reader.listenBatches((b) => {
        maps.push(`${b.map}:${b.count}`);
        void reader.close();
      });
      // The ring buffer is read first (the object's map order); the perf buffer's batch is never handed out.
      expect(maps).toEqual(['ring:7']);
      expect(reader.closed).toBe(true);
      expect(reader.readReadyBatch(() => {})).toBe(0);
    } finally {
      obj.close();
    }
  });
});

describe('several buffers through one reader', () => {
  kernelTest('a ring buffer and a perf buffer read together; closing the object closes the reader', async () => {
    const obj = openObject(sample('test_run_kern.o'));
    const fds = openFdCount();
    const reader = obj.events();
    obj.program('xdp_ring').testRun({ data: frame(1), repeat: 3 });
    obj.program('xdp_perf').testRun({ data: frame(1), repeat: 2 });
    const got: string[] = [];
    reader.readReady((e) => got.push(`${e.map}:${seqOf(e)}`));
    expect(got.sort()).toEqual(['perf:1', 'perf:2', 'ring:1', 'ring:2', 'ring:3']);
    obj.close();
    expect(reader.closed).toBe(true);
    await reader.close();
    expect(openFdCount()).toBeLessThan(fds);
  });
});
