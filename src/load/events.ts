/**
 * Records out of the kernel: ring buffers (BPF_MAP_TYPE_RINGBUF) and perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY
 * with one PERF_COUNT_SW_BPF_OUTPUT event per CPU), read through one epoll set.
 *
 * Waiting: epoll_wait runs on the libuv thread pool through koffi's asynchronous call, so the event loop is never
 * blocked and nothing polls. (A worker thread would do the same job with a second V8 isolate, ~10 MB and a message
 * per batch; bench/ measures both.) One EventReader holds one wait, i.e. one pool thread, whatever number of buffers
 * it reads: read several buffers through one reader (`openEvents`).
 *
 * Records are handed out as copies by default (readReady, listen, the async iterator: Buffers the caller keeps, in
 * event objects, decoded when a type is known). Ring buffer records are copied a batch at a time (one memcpy per
 * batch, each record a view of it). The view path (readReadyViews, listenViews) is libbpf's contract instead: one
 * reused RecordView pointing into the ring, valid only during the callback, nothing allocated per record. It is
 * several times faster (bench row j measures both); a view kept past its callback reads whatever the kernel wrote
 * there later, and one kept past close() points into unmapped memory, which crashes the process rather than throws.
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import type { Btf, BtfValue } from '../btf/index.js';
import {
  EpollSet, Fd, mapDeleteElem, mapUpdateElem, mmapShared, mmapSharedWithSpare, onlineCpus, pageSize, PerfSample, PerfSwConfig, PerfType,
  perfEventDisable, perfEventEnable, perfEventOpen, Prot, type Mapping,
} from '../sys/index.js';
import type { MapHandle } from './map-handle.js';
import { PERF_RING_SPARE, PerfRing } from './perfbuf.js';
import type { RecordBatch, RecordView, StopFlag } from './record-view.js';
import { RingBufferConsumer } from './ringbuf.js';

export class EventError extends BpfLoadError {
  override name = 'EventError';
}

/** One record: `cpu` is the CPU whose perf ring carried it, null for ring buffers (one ring for all CPUs). */
export interface EventRecord {
  readonly kind: 'record';
  /** The map the record came through. */
  readonly map: string;
  readonly cpu: number | null;
  readonly data: Buffer;
  /** The record decoded through the object's BTF (see EventOptions.type). */
  readonly value?: BtfValue;
}

/** Records the kernel dropped because a perf ring was full (PERF_RECORD_LOST). */
export interface LostEvent {
  readonly kind: 'lost';
  readonly map: string;
  readonly cpu: number;
  readonly lost: number;
}

export type BufferEvent = EventRecord | LostEvent;

export interface EventOptions {
  /**
   * Decode records through the object's BTF as this type (a struct, union or typedef name). Default: a struct named
   * `event` when the object's BTF has one (the libbpf-tools convention); `false`: never decode.
   */
  readonly type?: string | false;
  /** Per map name, a type that overrides `type` for that map's records. */
  readonly types?: Readonly<Record<string, string>>;
  /** Stops the reader (as close() does). */
  readonly signal?: AbortSignal;
  /** Perf buffers: data pages per CPU ring, a power of two (default 8, as bpftool and perf use). */
  readonly pagesPerCpu?: number;
  /** Perf buffers: called for each PERF_RECORD_LOST (the iterator also yields them as `kind: 'lost'`). */
  readonly onLost?: (lost: LostEvent) => void;
}

type Emit = (event: BufferEvent) => void;
/** Receives each record as a view valid only during the call (see RecordView). */
export type RecordViewHandler = (record: RecordView) => void;
/** Receives the records ready in one ring, valid only during the call (see RecordBatch). */
export type RecordBatchHandler = (batch: RecordBatch) => void;

/** One map's worth of rings, drained on demand. */
interface EventSource {
  readonly name: string;
  readonly fds: readonly number[];
  /** Records as copies in event objects (decoded when a type is known), drops as events. */
  drain(emit: Emit, stop: StopFlag): number;
  /** Records as views, drops to EventOptions.onLost. */
  drainViews(onRecord: RecordViewHandler, stop: StopFlag): number;
  /** Records as one batch per ring, drops to EventOptions.onLost. */
  drainBatches(onBatch: RecordBatchHandler, stop: StopFlag): number;
  close(): void;
}

/**
 * Reads one or more ring/perf buffers: as an async iterable (`for await (const e of reader)`) or with a callback
 * (`await reader.listen(cb)`). close() (or the AbortSignal) stops either promptly and releases every fd, mapping
 * and perf event; the pool thread lets go of the epoll set within microseconds (the returned promise says when).
 */
export class EventReader implements AsyncIterable<BufferEvent>, AsyncDisposable {
  readonly #sources: readonly EventSource[];
  readonly #epoll: EpollSet;
  readonly #onAbort: (() => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  /** Set by close(); the consumers check it after each callback, so a close() from inside one stops there. */
  readonly #stop = { stopped: false };
  #draining = false;
  #released = false;
  #closing: Promise<void> | undefined;
  #active = false;
  /**
   * Records taken out of the rings (their space released) but not yet handed out: the async iterator reads a pass at
   * a time and yields one record at a time, so a loop that breaks leaves the rest of its pass here; the next
   * iteration, readReady() or listen() hands them out first, so nothing is lost.
   */
  readonly #carried: BufferEvent[] = [];
  #carriedHead = 0;

  /** Takes ownership of `sources`: they are closed with the reader, also when this constructor fails. */
  constructor(sources: readonly EventSource[], signal?: AbortSignal) {
    this.#sources = sources;
    try {
      this.#epoll = new EpollSet(Math.max(8, sources.reduce((n, s) => n + s.fds.length, 0)));
      sources.forEach((s, i) => s.fds.forEach((fd) => this.#epoll.add(fd, i)));
    } catch (e) {
      for (const s of sources) s.close();
      throw e;
    }
    this.#signal = signal;
    if (signal !== undefined) {
      this.#onAbort = () => void this.close();
      if (signal.aborted) void this.close();
      else signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  get closed(): boolean {
    return this.#stop.stopped;
  }

  /** Hands every record that is ready now to `onEvent` (copies), without waiting. Returns how many. */
  readReady(onEvent: Emit): number {
    let count = 0;
    while (this.#carriedHead < this.#carried.length && !this.#stop.stopped) {
      onEvent(this.#takeCarried());
      count++;
    }
    return count + this.#drain((source) => source.drain(onEvent, this.#stop));
  }

  #takeCarried(): BufferEvent {
    const e = this.#carried[this.#carriedHead++]!;
    if (this.#carriedHead === this.#carried.length) this.#carried.length = this.#carriedHead = 0;
    return e;
  }

  /**
   * Hands every record that is ready now to `onRecord` as a RecordView, without waiting and without copying: the
   * view (one object, reused) points into the ring and is valid only until `onRecord` returns — `copy()` makes a
   * Buffer to keep. Records are not decoded; perf buffer drops go to EventOptions.onLost. Returns how many records.
   */
  readReadyViews(onRecord: RecordViewHandler): number {
    return this.#drain((source) => source.drainViews(onRecord, this.#stop));
  }

  /**
   * Hands the records that are ready now to `onBatch`, one RecordBatch per ring (a ring buffer, or one CPU's perf
   * ring), without waiting and without copying: the batch gives the ring's bytes and typed arrays of each record's
   * offset and length, valid only until `onBatch` returns, and the ring's space is released after that. The loop
   * over the records is then yours, in plain JavaScript. Records are not decoded; perf buffer drops go to
   * EventOptions.onLost. Returns how many records.
   */
  readReadyBatch(onBatch: RecordBatchHandler): number {
    return this.#drain((source) => source.drainBatches(onBatch, this.#stop));
  }

  #drain(drainSource: (source: EventSource) => number): number {
    if (this.#stop.stopped) return 0;
    let count = 0;
    this.#draining = true;
    try {
      for (const source of this.#sources) {
        count += drainSource(source);
        if (this.#stop.stopped) break;
      }
    } finally {
      this.#draining = false;
      if (this.#stop.stopped) this.#release();
    }
    return count;
  }

  /** Calls `onEvent` for every record (copies) until close() or the signal; resolves then. */
  listen(onEvent: Emit): Promise<void> {
    return this.#loop(() => this.readReady(onEvent));
  }

  /** Calls `onRecord` for every record as a view valid only during the call (see readReadyViews) until close(). */
  listenViews(onRecord: RecordViewHandler): Promise<void> {
    return this.#loop(() => this.readReadyViews(onRecord));
  }

  /** Calls `onBatch` with the records of each ring as they arrive (see readReadyBatch) until close(). */
  listenBatches(onBatch: RecordBatchHandler): Promise<void> {
    return this.#loop(() => this.readReadyBatch(onBatch));
  }

  async #loop(readReady: () => void): Promise<void> {
    this.#claim();
    try {
      while (!this.#stop.stopped) {
        readReady();
        if (!this.#stop.stopped) await this.#epoll.wait(-1);
      }
    } finally {
      this.#active = false;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<BufferEvent> {
    this.#claim();
    try {
      while (!this.#stop.stopped) {
        if (this.#carriedHead === this.#carried.length) {
          this.#drain((source) => source.drain((e) => this.#carried.push(e), this.#stop));
          if (this.#carried.length === 0) {
            if (!this.#stop.stopped) await this.#epoll.wait(-1);
            continue;
          }
        }
        yield this.#takeCarried();
      }
    } finally {
      this.#active = false;
    }
  }

  /** One consumer at a time: two loops on one reader would wait on the same epoll set twice. */
  #claim(): void {
    if (this.#active) throw new EventError(`event reader (${this.#sources.map((s) => s.name).join(', ')}): already being read`);
    this.#active = true;
  }

  /** Stops reading and releases everything. Safe to call twice, and from inside a callback. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#stop.stopped = true;
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
    if (!this.#draining) this.#release();
    this.#closing = this.#epoll.close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    const errors: unknown[] = [];
    for (const s of this.#sources) {
      try {
        s.close();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** A decoder for records, following EventOptions.type. */
function recordDecoder(map: MapHandle, type: string | false | undefined): ((data: Uint8Array) => BtfValue | undefined) | undefined {
  if (type === false) return undefined;
  const btf: Btf | undefined = map.btf;
  const found = btf === undefined ? undefined
    : type === undefined ? btf.findByName('struct', 'event')
    : btf.findByName('struct', type) ?? btf.findByName('union', type) ?? btf.findByName('typedef', type);
  if (found === undefined) {
    if (type === undefined) return undefined;
    throw new EventError(withContext([`map ${map.name}`], btf === undefined
      ? `cannot decode records as ${type}: the object has no BTF`
      : `no struct, union or typedef named ${type} in the object's BTF`));
  }
  const size = btf!.sizeof(found.id);
  // Perf records carry alignment padding: decode the type's bytes when the record holds them.
  return (data) => (data.byteLength >= size ? btf!.formatValue(found.id, data.subarray(0, size)) : undefined);
}

function ringSource(map: MapHandle, options: EventOptions): EventSource {
  if (map.type !== 'ringbuf') throw notA(map, 'ring buffer (ringbuf)');
  const decode = recordDecoder(map, typeFor(map, options));
  const page = pageSize();
  const size = map.spec.maxEntries;
  const what = `ring buffer ${map.name}`;
  const consumerPage = mmapShared(map.fd, page, Prot.READ | Prot.WRITE, 0, what);
  let producer: Mapping;
  try {
    producer = mmapShared(map.fd, page + 2 * size, Prot.READ, page, what);
  } catch (e) {
    consumerPage.unmap();
    throw wrap(e, map);
  }
  let consumer: RingBufferConsumer;
  try {
    consumer = new RingBufferConsumer(map.name, { consumer: consumerPage.buffer, producer: producer.buffer, dataOffset: page, size });
  } catch (e) {
    consumerPage.unmap();
    producer.unmap();
    throw e;
  }
  const name = map.name;
  return {
    name,
    fds: [map.fd],
    drain: (emit, stop) => consumer.consumeCopies((data) => {
      const value = decode?.(data);
      emit(value === undefined ? { kind: 'record', map: name, cpu: null, data } : { kind: 'record', map: name, cpu: null, data, value });
    }, stop),
    drainViews: (onRecord, stop) => consumer.consume(onRecord, Number.POSITIVE_INFINITY, stop),
    drainBatches: (onBatch, stop) => consumer.consumeBatch(onBatch, stop),
    close() {
      producer.unmap();
      consumerPage.unmap();
    },
  };
}

const DEFAULT_PAGES_PER_CPU = 8;

interface CpuRing {
  readonly cpu: number;
  readonly fd: Fd;
  mapping?: Mapping;
  ring?: PerfRing;
  /** Drops seen in view mode, reported to EventOptions.onLost. */
  onLost?: (lost: number) => void;
}

// Long: per-CPU ring setup, its undo (closeAll) and the drain share the rings array; split, a partial setup could not be undone in one place.
function perfSource(map: MapHandle, options: EventOptions): EventSource {
  if (map.type !== 'perf_event_array') throw notA(map, 'perf event array');
  const pages = options.pagesPerCpu ?? DEFAULT_PAGES_PER_CPU;
  if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0) {
    throw new EventError(withContext([`map ${map.name}`], `pagesPerCpu must be a power of two ≥ 1, not ${pages}`));
  }
  const decode = recordDecoder(map, typeFor(map, options));
  const page = pageSize();
  const rings: CpuRing[] = [];
  const key = Buffer.alloc(4);
  const value = Buffer.alloc(4);
  const closeAll = () => {
    const errors: unknown[] = [];
    for (const r of rings.splice(0)) {
      for (const step of [
        () => {
          key.writeUInt32LE(r.cpu, 0);
          mapDeleteElem(map.fd, key);
        },
        () => perfEventDisable(r.fd.value),
        () => r.mapping?.unmap(),
        () => r.fd.close(),
      ]) {
        try {
          step();
        } catch (e) {
          errors.push(e);
        }
      }
    }
    if (errors.length > 0) throw errors[0];
  };
  try {
    // A CPU beyond max_entries has no slot to write its event into; libbpf skips those too.
    for (const cpu of onlineCpus().filter((c) => c < map.spec.maxEntries)) {
      const what = `perf buffer ${map.name} cpu ${cpu}`;
      const fd = new Fd(perfEventOpen({
        type: PerfType.SOFTWARE, config: PerfSwConfig.BPF_OUTPUT, sampleType: PerfSample.RAW, samplePeriod: 1, wakeupEvents: 1,
      }, -1, cpu), what);
      const r: CpuRing = { cpu, fd };
      rings.push(r);
      r.mapping = mmapSharedWithSpare(fd.value, (pages + 1) * page, Prot.READ | Prot.WRITE, PERF_RING_SPARE, what);
      r.ring = new PerfRing(map.name, cpu, r.mapping.buffer);
      r.onLost = (lost) => options.onLost?.({ kind: 'lost', map: map.name, cpu, lost });
      key.writeUInt32LE(cpu, 0);
      value.writeUInt32LE(fd.value, 0);
      mapUpdateElem(map.fd, key, value);
      perfEventEnable(fd.value);
    }
  } catch (e) {
    try {
      closeAll();
    } catch {
      // The first failure is the one to report.
    }
    throw wrap(e, map);
  }
  const name = map.name;
  return {
    name,
    fds: rings.map((r) => r.fd.value),
    drain(emit, stop) {
      let count = 0;
      for (const r of rings) {
        const cpu = r.cpu;
        count += r.ring!.consume((view) => {
          const data = view.copy();
          const value = decode?.(data);
          emit(value === undefined ? { kind: 'record', map: name, cpu, data } : { kind: 'record', map: name, cpu, data, value });
        }, (lost) => {
          const event: LostEvent = { kind: 'lost', map: name, cpu, lost };
          options.onLost?.(event);
          emit(event);
        }, stop);
        if (stop.stopped) break;
      }
      return count;
    },
    drainViews(onRecord, stop) {
      let count = 0;
      for (const r of rings) {
        count += r.ring!.consume(onRecord, r.onLost!, stop);
        if (stop.stopped) break;
      }
      return count;
    },
    drainBatches(onBatch, stop) {
      let count = 0;
      for (const r of rings) {
        count += r.ring!.consumeBatch(onBatch, r.onLost!);
        if (stop.stopped) break;
      }
      return count;
    },
    close: closeAll,
  };
}

function typeFor(map: MapHandle, options: EventOptions): string | false | undefined {
  return Object.hasOwn(options.types ?? {}, map.name) ? options.types![map.name] : options.type;
}

function notA(map: MapHandle, what: string): EventError {
  return new EventError(withContext([`map ${map.name}`], `is a ${map.type}, not a ${what}`));
}

function wrap(e: unknown, map: MapHandle): unknown {
  return e instanceof BpfLoadError && !(e instanceof EventError) ? new EventError(withContext([`map ${map.name}`], e.message), { cause: e }) : e;
}

/** True for the map types whose records an EventReader reads. */
export function isEventMap(map: MapHandle): boolean {
  return map.type === 'ringbuf' || map.type === 'perf_event_array';
}

/** A reader over one ring buffer map. */
export function openRingBuffer(map: MapHandle, options: EventOptions = {}): EventReader {
  return new EventReader([ringSource(map, options)], options.signal);
}

/** A reader over one perf event array: a BPF output event and ring per online CPU, written into the map. */
export function openPerfBuffer(map: MapHandle, options: EventOptions = {}): EventReader {
  return new EventReader([perfSource(map, options)], options.signal);
}

/** One reader (one epoll set, one waiting thread) over several ring buffers and perf event arrays. */
export function openEvents(maps: readonly MapHandle[], options: EventOptions = {}): EventReader {
  const unknown = Object.keys(options.types ?? {}).filter((name) => !maps.some((m) => m.name === name));
  if (unknown.length > 0) {
    throw new EventError(`record types given for ${unknown.join(', ')}: not among the maps read (${maps.map((m) => m.name).join(', ') || 'none'})`);
  }
  const sources: EventSource[] = [];
  try {
    for (const m of maps) {
      if (m.type === 'ringbuf') sources.push(ringSource(m, options));
      else if (m.type === 'perf_event_array') sources.push(perfSource(m, options));
      else throw notA(m, 'ring buffer or perf event array');
    }
  } catch (e) {
    for (const s of sources) s.close();
    throw e;
  }
  return new EventReader(sources, options.signal);
}
