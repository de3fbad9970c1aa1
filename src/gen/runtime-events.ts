/**
 * Typed event readers of generated skeletons: a ring buffer or perf event array whose record type the skeleton knows
 * yields records decoded by that type's generated codec. They sit on the library's EventReader (same waiting, same
 * close/AbortSignal); the BTF walker is switched off, so a record costs one generated decode.
 */
import { withContext } from '../base/errors.js';
import type { BpfObject } from '../attach/object.js';
import type { BufferEvent, EventOptions, EventReader, EventRecord, LostEvent, MapHandle } from '../load/index.js';
import { SkeletonError, type Codec } from './runtime.js';

/** A record decoded by the skeleton's codec; `data` is the record's bytes (perf records: with their padding). */
export interface TypedRecord<T, Cpu extends number | null = number | null> {
  readonly kind: 'record';
  readonly map: string;
  /** The CPU whose perf ring carried the record; null for ring buffers (one ring for all CPUs). */
  readonly cpu: Cpu;
  readonly value: T;
  readonly data: Buffer;
}

/** A ring buffer's records: the kernel drops nothing silently there (a full ring fails the program's reserve). */
export type RingRecord<T> = TypedRecord<T, null>;
/** A perf buffer's records, and the drops its full rings report. */
export type PerfEvent<T> = TypedRecord<T, number> | LostEvent;

/** A typed reader's options: EventOptions without the record type, which the skeleton fixes. */
export type TypedEventOptions = Omit<EventOptions, 'type' | 'types'>;

/**
 * An EventReader whose records come decoded: `for await (const r of reader)`, or `await reader.listen(cb)`;
 * close() (or `options.signal`) stops either and releases the rings. The skeleton's close() closes it too.
 */
export class TypedEventReader<E> implements AsyncIterable<E>, AsyncDisposable {
  /** The untyped reader underneath. */
  readonly reader: EventReader;
  readonly #convert: (event: BufferEvent) => E;

  constructor(reader: EventReader, convert: (event: BufferEvent) => E) {
    this.reader = reader;
    this.#convert = convert;
  }

  get closed(): boolean {
    return this.reader.closed;
  }

  /** Hands every record that is ready now to `onEvent`, without waiting. Returns how many. */
  readReady(onEvent: (event: E) => void): number {
    return this.reader.readReady((e) => onEvent(this.#convert(e)));
  }

  /** Calls `onEvent` for every record until close() or the signal; resolves then. */
  listen(onEvent: (event: E) => void): Promise<void> {
    return this.reader.listen((e) => onEvent(this.#convert(e)));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<E> {
    for await (const e of this.reader) yield this.#convert(e);
  }

  close(): Promise<void> {
    return this.reader.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.reader.close();
  }
}

/** What ring and perf buffers share: the map, its record type, and the decode of one record. */
abstract class TypedEventMap<T> {
  readonly handle: MapHandle;
  readonly codec: Codec<T>;
  /** The record's C type, as the skeleton was generated for it (`struct event`). */
  readonly recordType: string;
  protected readonly bpf: BpfObject;
  #viewed: ArrayBufferLike | undefined;
  #view: DataView | undefined;

  constructor(bpf: BpfObject, name: string, codec: Codec<T>, recordType: string) {
    this.bpf = bpf;
    this.handle = bpf.map(name);
    this.codec = codec;
    this.recordType = recordType;
  }

  get name(): string {
    return this.handle.name;
  }

  /** A record as its type: shorter than the type means the skeleton was made for another program. */
  decode(data: Uint8Array): T {
    if (data.byteLength < this.codec.size) {
      throw new SkeletonError(withContext([`map ${this.handle.name}`],
        `a ${data.byteLength}-byte record is shorter than ${this.recordType} (${this.codec.size} bytes): regenerate the skeleton, or name the record type (bpf-load gen --event-type ${this.handle.name}=TYPE)`));
    }
    // Ring buffer records of one drain are views into one copied batch: one DataView serves them all.
    if (data.buffer !== this.#viewed) {
      this.#viewed = data.buffer;
      this.#view = new DataView(data.buffer);
    }
    return this.codec.decode(this.#view!, data.byteOffset);
  }

  protected record<Cpu extends number | null>(e: EventRecord, cpu: Cpu): TypedRecord<T, Cpu> {
    return { kind: 'record', map: e.map, cpu, value: this.decode(e.data), data: e.data };
  }
}

/** A ring buffer map (BPF_MAP_TYPE_RINGBUF) with typed records. */
export class RingBuffer<T> extends TypedEventMap<T> {
  /** Opens a reader of this ring buffer's records (closed with the skeleton, or by its own close()). */
  read(options: TypedEventOptions = {}): TypedEventReader<RingRecord<T>> {
    const reader = this.bpf.ringBuffer(this.handle.name, { ...options, type: false });
    // A ring buffer reader yields records only: nothing is lost without the program seeing its reserve fail.
    return new TypedEventReader(reader, (e) => this.record(e as EventRecord, null));
  }
}

/** A perf event array read as a perf buffer (a BPF output event and ring per CPU) with typed records. */
export class PerfBuffer<T> extends TypedEventMap<T> {
  /** Opens a reader of this perf buffer's records and drops (closed with the skeleton, or by its own close()). */
  read(options: TypedEventOptions = {}): TypedEventReader<PerfEvent<T>> {
    const reader = this.bpf.perfBuffer(this.handle.name, { ...options, type: false });
    return new TypedEventReader(reader, (e) => (e.kind === 'lost' ? e : this.record(e, e.cpu!)));
  }
}
