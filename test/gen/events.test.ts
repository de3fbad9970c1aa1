import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LostEvent } from '../../src/load/index.js';
import type { Codec } from '../../src/gen/runtime.js';
import type { BpfObject } from '../../src/attach/object.js';
import { SkeletonError } from '../../src/gen/runtime.js';
import { RingBuffer, type PerfBuffer, type RingRecord, type TypedRecord } from '../../src/gen/runtime-events.js';
import type { Program, TestRunnable, XdpRunResult } from '../../src/gen/runtime-programs.js';
import { generateTypes } from '../../src/gen/generate.js';
import { parseObject } from '../../src/object/index.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';
import { udpToSelf } from '../helpers/traffic.js';
import { ConsumerDir } from './support.js';

/** glibc ≥ 2.25 no longer caches getpid(): every call is a system call, so it fires sys_enter_getpid. */
const getpid = koffi.load('libc.so.6').func('int getpid(void)') as () => number;

interface RingEvent { pid: number; tid: number; count: bigint; comm: string }
interface PacketEvent { len: number; protocol: number }
/** What the generated modules declare (tsc holds the generated types to these in generate.test.ts's misuse file). */
interface Skeleton<M, P> { readonly maps: M; readonly programs: P; readonly object: { close(): void; programs: ReadonlyArray<{ id: number }> }; close(): void }
interface Attach { attach(options?: Record<string, unknown>): unknown }
interface RingbufModule {
  open(): Skeleton<{ events: RingBuffer<RingEvent>; calls: { get(pid: number): bigint | undefined } }, { on_getpid: Program & Attach }>;
  eventCodec: Codec<RingEvent>;
}
interface PerfbufModule { open(): Skeleton<{ packets: PerfBuffer<PacketEvent> }, { packet_lengths: Program & Attach }> }
interface TestRunModule { open(): Skeleton<Record<string, unknown>, { xdp_swap: Program & TestRunnable<XdpRunResult> }> }

const objectPath = (consumer: ConsumerDir, name: string) => relative(join(consumer.dir, 'out'), join(SAMPLES_DIR, name));
const sample = (name: string) => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });

describe('generated skeletons: typed event readers and program handles against the kernel', () => {
  let consumer: ConsumerDir;
  let ringbuf: RingbufModule;
  let perfbuf: PerfbufModule;
  let testRun: TestRunModule;
  beforeAll(async () => {
    consumer = new ConsumerDir();
    for (const name of ['ringbuf_kern', 'perfbuf_kern', 'test_run_kern']) {
      consumer.write(`${name}.ts`, generateTypes(sample(`${name}.o`), { objectPath: objectPath(consumer, `${name}.o`) }));
    }
    const compiled = consumer.compile();
    expect(compiled.output).toBe('');
    ringbuf = await consumer.import<RingbufModule>('ringbuf_kern.ts');
    perfbuf = await consumer.import<PerfbufModule>('perfbuf_kern.ts');
    testRun = await consumer.import<TestRunModule>('test_run_kern.ts');
  }, 120_000);
  afterAll(() => consumer.remove());

  kernelTest('ring buffer: N getpid() calls → N records decoded by the generated codec, our pid, counters 1..N; then the callback form', async () => {
    const fds = openFdCount();
    const skel = ringbuf.open();
    const ids = skel.object.programs.map((p) => p.id);
    try {
      const events = skel.maps.events;
      expect(events.codec).toBe(ringbuf.eventCodec); // the generated codec, not the BTF walker
      expect(events.recordType).toBe('struct event');
      skel.programs.on_getpid.attach();
      const reader = events.read();
      const N = 20;
      for (let i = 0; i < N; i++) getpid();
      const mine: Array<RingRecord<RingEvent>> = [];
      // Other processes call getpid too: take ours until N arrived, bounded by a timeout.
      const timeout = setTimeout(() => void reader.close(), 5000);
      for await (const r of reader) {
        if (r.value.pid === process.pid) mine.push(r);
        if (mine.length === N) break;
      }
      clearTimeout(timeout);
      expect(mine).toHaveLength(N);
      // count is a __u64: the generated codec gives a bigint (the BTF walker would give a number).
      expect(mine.map((r) => r.value.count)).toEqual(Array.from({ length: N }, (_, i) => BigInt(i + 1)));
      expect(mine.every((r) => r.kind === 'record' && r.cpu === null && r.map === 'events' && r.value.tid === process.pid)).toBe(true);
      expect(typeof mine[0]!.value.comm).toBe('string');
      // The raw bytes are there too, and the codec reads the same record from them.
      const first = mine[0]!;
      expect(first.data.byteLength).toBe(32);
      expect(ringbuf.eventCodec.decode(new DataView(first.data.buffer, first.data.byteOffset, first.data.byteLength), 0)).toEqual(first.value);
      expect(first.data.readUInt32LE(0)).toBe(process.pid);
      await reader.close();
      expect(reader.closed).toBe(true);

      // The callback form, stopped by an AbortSignal once N more records of ours arrived.
      const stop = new AbortController();
      const more: bigint[] = [];
      const listener = events.read({ signal: stop.signal });
      const done = listener.listen((r) => {
        if (r.value.pid !== process.pid) return;
        more.push(r.value.count);
        if (more.length === N) stop.abort();
      });
      for (let i = 0; i < N; i++) getpid();
      const timeout2 = setTimeout(() => stop.abort(), 5000);
      await done;
      clearTimeout(timeout2);
      expect(more).toEqual(Array.from({ length: N }, (_, i) => BigInt(N + i + 1)));
      expect(listener.closed).toBe(true);
      expect(skel.maps.calls.get(process.pid)).toBe(BigInt(2 * N));
    } finally {
      skel.close();
    }
    expect(eventually(() => ids.every((id) => !programExists(id)))).toBe(true);
    expect(eventually(() => openFdCount() <= fds)).toBe(true);
  });

  kernelTest('perf buffer: N UDP datagrams over lo → N records of struct event with the frame length and protocol 17', async () => {
    const skel = perfbuf.open();
    try {
      skel.programs.packet_lengths.attach({ iface: 'lo' });
      const stop = new AbortController();
      const reader = skel.maps.packets.read({ signal: stop.signal });
      const N = 6;
      // An unusual datagram size tells ours from colleagues' traffic on lo.
      const size = 900 + (process.pid % 300);
      const frameLength = 14 + 20 + 8 + size;
      await udpToSelf(N, size);
      const ours: Array<TypedRecord<PacketEvent, number>> = [];
      const lost: LostEvent[] = [];
      const timeout = setTimeout(() => stop.abort(), 5000);
      for await (const e of reader) {
        if (e.kind === 'lost') lost.push(e);
        else if (e.value.len === frameLength) ours.push(e);
        if (ours.length === N) break;
      }
      clearTimeout(timeout);
      expect(lost).toEqual([]);
      expect(ours.map((e) => e.value)).toEqual(Array.from({ length: N }, () => ({ len: frameLength, protocol: 17 })));
      expect(ours.every((e) => typeof e.cpu === 'number' && e.map === 'packets' && e.data.readUInt32LE(0) === frameLength)).toBe(true);
      stop.abort();
      expect(reader.closed).toBe(true);
    } finally {
      skel.close();
    }
  });

  kernelTest('xdp_swap through its typed handle: the action by name and the rewritten bytes', () => {
    const skel = testRun.open();
    try {
      const swap = skel.programs.xdp_swap;
      const dst = Buffer.from('020000000001', 'hex');
      const src = Buffer.from('020000000002', 'hex');
      const payload = Buffer.alloc(46, 0xab);
      const ipv4 = Buffer.concat([dst, src, Buffer.from('0800', 'hex'), payload]);
      const tx = swap.testRun({ data: ipv4 });
      expect(tx.action).toBe('XDP_TX');
      expect(tx.retval).toBe(3);
      expect(tx.data).toEqual(Buffer.concat([src, dst, Buffer.from('0800', 'hex'), payload]));
      const arp = Buffer.concat([dst, src, Buffer.from('0806', 'hex'), payload]);
      const pass = swap.testRun({ data: arp, repeat: 10 });
      expect(pass.action).toBe('XDP_PASS');
      expect(pass.data).toEqual(arp);
      expect(swap.handle.type).toBe('xdp');
      expect(swap.name).toBe('xdp_swap');
    } finally {
      skel.close();
    }
  });

  it('a record shorter than its type is a SkeletonError naming the map and saying what to do (no kernel: a fake object)', () => {
    const fake = { map: (name: string) => ({ name }) } as unknown as BpfObject;
    const codec: Codec<{ pid: number }> = { size: 8, decode: (v, o) => ({ pid: v.getUint32(o, true) }), encode: () => {} };
    const ring = new RingBuffer(fake, 'events', codec, 'struct event');
    expect(ring.decode(Buffer.from([7, 0, 0, 0, 0, 0, 0, 0, 0xff]))).toEqual({ pid: 7 });
    expect(() => ring.decode(Buffer.alloc(4))).toThrow(SkeletonError);
    expect(() => ring.decode(Buffer.alloc(4))).toThrow('map events: a 4-byte record is shorter than struct event (8 bytes): regenerate the skeleton, or name the record type (bpf-load gen --event-type events=TYPE)');
  });
});
