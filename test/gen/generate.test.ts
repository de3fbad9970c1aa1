import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BtfKind, type BtfKindName } from '../../src/btf/index.js';
import { generateSkeleton, generateTypes } from '../../src/gen/generate.js';
import { parseObject } from '../../src/object/index.js';
import { corpusFiles, SAMPLES_DIR } from '../helpers/kernel.js';
import { ConsumerDir } from './support.js';

const sample = (name: string) => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name: `c-samples/${name}` });
const OBJECTS = readdirSync(SAMPLES_DIR).filter((n) => n.endsWith('.o')).sort();
/** cilium/ebpf's test objects (when ../shared/corpus is present) that parse: objects from another toolchain. */
const CORPUS = (corpusFiles('cilium', (n) => n.endsWith('.elf') || n.endsWith('.o')) ?? []).flatMap((path) => {
  try {
    return [{ path, spec: parseObject(readFileSync(path), { name: path }) }];
  } catch {
    return []; // the corpus holds deliberately broken objects; the parser's own tests cover those
  }
});

/** What the wrong uses below must be refused for; each line is one mistake tsc has to catch. */
const MISUSE = `import { open, type FlowKey, type Kinds, type SkelKern } from './skel_kern.js';
import type { RingbufKern } from './ringbuf_kern.js';
import type { PerfbufKern } from './perfbuf_kern.js';
import type { TestRunKern } from './test_run_kern.js';

export function wrongUses(skel: SkelKern): unknown[] {
  const key: FlowKey = { addr: 0x7f000001, port: 80, proto: 6, pad: 0 };
  return [
    // @ts-expect-error a flows key is a FlowKey, not a number
    skel.maps.flows.get(1),
    // @ts-expect-error FlowKey.port is a number
    skel.maps.flows.get({ addr: 1, port: '80', proto: 6, pad: 0 }),
    // @ts-expect-error FlowKey has no field "prot"
    skel.maps.flows.delete({ addr: 1, port: 80, prot: 6, pad: 0 }),
    // @ts-expect-error a per-CPU value is one bigint per CPU
    skel.maps.per_cpu_packets.set(0, 5n),
    // @ts-expect-error hits is a __u64: a bigint
    skel.globals.hits.set(1),
    // @ts-expect-error .rodata constants cannot be written after load
    skel.globals.snap_len.set(1),
    // @ts-expect-error no program of that name
    skel.attach('on_getppid'),
    // @ts-expect-error snap_len is a number
    open({ rodata: { snap_len: '64' } }),
    // @ts-expect-error not a value of enum color
    ((): Kinds['color'] => 'COLOR_PURPLE')(),
    // @ts-expect-error packets is a bigint, and a read may miss (undefined)
    ((): number => skel.maps.flows.get(key)?.packets)(),
    // Right uses, for contrast:
    skel.maps.flows.get(key)?.packets,
    skel.maps.per_cpu_packets.get(0)?.reduce((a, b) => a + b, 0n),
    skel.globals.last_color.set('COLOR_BLUE'),
    skel.attach('on_getpid'),
  ];
}

export async function wrongProgramAndEventUses(ring: RingbufKern, xdp: TestRunKern, perf: PerfbufKern): Promise<unknown[]> {
  const reader = ring.maps.events.read();
  for await (const r of reader) {
    // @ts-expect-error struct event has no field "pidd"
    void r.value.pidd;
    // @ts-expect-error count is a __u64: a bigint
    const count: number = r.value.count;
    // @ts-expect-error a ring buffer record has no CPU
    const cpu: number = r.cpu;
    void [count, cpu];
  }
  await perf.maps.packets.read().listen((e) => {
    // @ts-expect-error a perf buffer also yields drops: narrow on kind before reading the value
    void e.value.len;
    if (e.kind === 'record') void (e.value.len + e.value.protocol + e.cpu);
  });
  const swapped = xdp.programs.xdp_swap.testRun({ data: new Uint8Array(64) });
  return [
    // @ts-expect-error no program of that name
    xdp.programs.xdp_swapp,
    // @ts-expect-error a tracepoint program cannot be test-run
    ring.programs.on_getpid.testRun(),
    // @ts-expect-error XDP programs attach to an interface: no cgroup option
    xdp.programs.xdp_swap.attach({ cgroup: '/sys/fs/cgroup' }),
    // @ts-expect-error an XDP action is not a tc action
    ((): 'TC_ACT_OK' | number => swapped.action)(),
    // @ts-expect-error records of an untyped ring buffer are not decoded: it is a plain MapHandle
    xdp.maps.ring.read(),
    // Right uses, for contrast:
    ((): 'XDP_TX' | 'XDP_PASS' | 'XDP_DROP' | 'XDP_ABORTED' | 'XDP_REDIRECT' | number => swapped.action)(),
    xdp.programs.xdp_swap.attach({ iface: 'lo', xdpMode: 'skb' }),
    ring.programs.on_getpid.attach(),
    ring.programs.on_getpid.handle.id,
    perf.programs.packet_lengths.testRun({ data: new Uint8Array(64) }).retval,
  ];
}
`;

const POINTERS = new Set(['opaque', 'callback', 'cursor', 'user_data']);

/** A decoded struct kinds in the run-time BTF decoder's conventions: integers beyond 2^53 as strings, pointers in hex, bytes as arrays. */
function asFormatted(value: unknown, key = ''): unknown {
  if (typeof value === 'bigint') {
    if (POINTERS.has(key)) return `0x${value.toString(16)}`;
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map((v) => asFormatted(v));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asFormatted(v, k)]));
  return value;
}

describe('bpf-load gen: generated modules', () => {
  let consumer: ConsumerDir;
  let compiled: { ok: boolean; output: string };
  beforeAll(() => {
    consumer = new ConsumerDir();
    for (const name of OBJECTS) consumer.write(`${name.replace(/\.o$/, '').replace(/\./g, '_')}.ts`, generateTypes(sample(name)));
    CORPUS.forEach(({ spec }, i) => consumer.write(`corpus_${i}.ts`, generateTypes(spec)));
    consumer.write('misuse.ts', MISUSE);
    compiled = consumer.compile();
  }, 120_000);
  afterAll(() => consumer.remove());

  it(`type-check under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess for all ${OBJECTS.length} c-samples objects (and ${CORPUS.length} corpus objects), and refuse wrong keys, values, names`, () => {
    expect(OBJECTS.length).toBeGreaterThan(40);
    // Every @ts-expect-error line must fail to compile, or tsc reports the directive as unused.
    expect(compiled.output).toBe('');
    expect(compiled.ok).toBe(true);
  });

  it('generated codecs decode what the run-time BTF decoder decodes, both byte orders, and re-encode it', async () => {
    interface Codec { decode(view: DataView, offset: number): Record<string, unknown>; encode(view: DataView, offset: number, value: unknown): void }
    for (const name of ['skel_kern.o', 'skel_kern.eb.o']) {
      const spec = sample(name);
      const kindsId = spec.maps.find((m) => m.name === 'flows')!.btfValueTypeId!;
      const { kindsCodec, eventCodec } = await consumer.import<{ kindsCodec: Codec; eventCodec: Codec }>(`${name.replace(/\.o$/, '').replace(/\./g, '_')}.ts`);
      // A ring buffer record as the program fills it.
      const record = new Uint8Array(24);
      const rv = new DataView(record.buffer);
      rv.setUint32(0, 4242, !name.includes('.eb.'));
      rv.setUint32(4, 4, !name.includes('.eb.'));
      record.set(Buffer.from('node'), 8);
      expect(eventCodec.decode(rv, 0)).toEqual({ pid: 4242, color: 'COLOR_BLUE', comm: 'node' });
      expect(eventCodec.decode(rv, 0)).toEqual(spec.btf!.formatValue(spec.btf!.findByName('struct', 'event')!.id, record));
      let seed = 0x2545f491;
      const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
      for (let round = 0; round < 200; round++) {
        const bytes = Uint8Array.from({ length: 160 }, random);
        // name: printable text then NULs, so that the BTF decoder shows a string too.
        const text = Array.from({ length: round % 17 }, () => 0x61 + (random() % 26));
        bytes.fill(0, 20, 36).set(text.slice(0, 16), 20);
        const view = new DataView(bytes.buffer);
        const decoded = kindsCodec.decode(view, 0);
        expect(asFormatted(decoded), `${name} round ${round}`).toEqual(spec.btf!.formatValue(kindsId, bytes));
        const again = new Uint8Array(160);
        kindsCodec.encode(new DataView(again.buffer), 0, decoded);
        expect(kindsCodec.decode(new DataView(again.buffer), 0)).toEqual(decoded);
      }
    }
  });

  it('is deterministic: the same object gives byte-identical output', () => {
    for (const name of OBJECTS) expect(generateTypes(sample(name))).toBe(generateTypes(sample(name)));
  });

  it('builds its types from every BTF kind the parser knows (skel_kern.o)', () => {
    const known = Object.keys(BtfKind).map((k) => (k === 'UNKN' ? 'void' : k.toLowerCase()) as BtfKindName);
    const { btfKinds } = generateSkeleton(sample('skel_kern.o'));
    expect([...known].filter((k) => !btfKinds.has(k))).toEqual([]);
    expect(known).toHaveLength(20);
  });

  it('maps C types to TypeScript as the issue lays out', () => {
    const code = generateTypes(sample('skel_kern.o'));
    const kinds = code.slice(code.indexOf('export interface Kinds {'));
    const field = (name: string) => new RegExp(`^  ${name}\\??: (.*);$`, 'm').exec(kinds)?.[1];
    expect(field('packets')).toBe('bigint'); // 64-bit
    expect(field('small')).toBe('number'); // 16-bit signed
    expect(field('flag')).toBe('boolean');
    expect(field('name')).toBe('string'); // char[16]
    expect(field('raw')).toBe('Uint8Array'); // __u8[4]
    expect(field('corners')).toBe('Point[]');
    expect(field('addr')).toBe('KindsAddr'); // a named union member
    expect(code).toMatch(/^  anon_wide\?: bigint;$/m); // anonymous union: flattened, members optional
    expect(field('color')).toBe('Color | number');
    expect(field('wide')).toBe('Wide | bigint'); // ENUM64
    expect(code).toContain('export type Color = "COLOR_RED" | "COLOR_GREEN" | "COLOR_BLUE";');
    expect(code).toContain('WIDE_HUGE: 4294967296n,');
    expect(field('mid')).toBe('number'); // bitfield
    expect(code).toContain('/** `unsigned int mid : 10`, bits 707..716 */');
    expect(field('ratio')).toBe('number'); // float
    expect(code).toContain('/** `struct opaque *opaque`, byte 112 */'); // pointer to a FWD
    expect(code).toContain('/** `int (*)(void *) callback`, byte 120 */'); // FUNC_PROTO
    expect(code).toContain('/** `counter_t counter`, byte 152; decl_tag "counter" */');
    expect(code).toContain('readonly per_cpu_packets: PerCpuMap<number, bigint>;');
    expect(code).toContain('readonly snap_len: ReadonlyVariable<number>;');
    expect(code).toContain('export type ProgramName = "on_getpid" | "count_packets";');
    expect(code).toMatch(/^\/\/ Generated by `bpf-load gen` from skel_kern\.o/);
    expect(code).toMatch(/^\/\/ little-endian object; BTF \d+ types, \d+ bytes, sha256 [0-9a-f]{16}\.$/m);
  });

  it('types ring buffer records: struct event by convention, or the type --event-type names; a wrong name is an error', () => {
    const code = generateTypes(sample('skel_kern.o'));
    expect(code).toContain('/** `events`: ringbuf, 4096 entries; records are `struct event`, decoded by eventCodec: `.read()` yields them. */');
    expect(code).toContain('readonly events: RingBuffer<Event>;');
    expect(code).toMatch(/^export interface Event \{\n {2}\/\*\* `__u32 pid`, byte 0 \*\/\n {2}pid: number;$/m);
    expect(code).toContain('export const eventCodec: Codec<Event> = { size: 24, decode: decodeEvent, encode: encodeEvent };');
    const named = generateTypes(sample('skel_kern.o'), { eventTypes: { events: 'flow_key' } });
    expect(named).toContain('records are `struct flow_key`, decoded by flowKeyCodec: `.read()` yields them.');
    expect(named).toContain('readonly events: RingBuffer<FlowKey>;');
    expect(() => generateTypes(sample('skel_kern.o'), { eventTypes: { flows: 'event' } }))
      .toThrow('skel_kern.o: event type for flows: no ring buffer or perf event array of that name (it has events)');
    expect(() => generateTypes(sample('skel_kern.o'), { eventTypes: { events: 'nope' } }))
      .toThrow('skel_kern.o: map events: event type nope: no struct, union or typedef of that name in the BTF');
  });

  it('types legacy maps without BTF by size: number for 1/2/4 bytes, bigint for 8, bytes otherwise', () => {
    const code = generateTypes(sample('sockex1_kern.o'));
    expect(code).toContain('readonly my_map: TypedMap<number, bigint>;');
    expect(code).toMatch(/^\/\/ little-endian object; no BTF: keys, values and globals typed by size\.$/m);
    const sockmap = generateTypes(sample('sockmap_kern.o'));
    expect(sockmap).toContain('readonly sock_map: MapHandle;'); // holds sockets: not typed
  });

  it('embeds the object when asked, base64 in the module', () => {
    const bytes = readFileSync(join(SAMPLES_DIR, 'globals_kern.o'));
    const code = generateTypes(parseObject(bytes, { name: 'globals_kern.o' }), { embed: bytes });
    const base64 = /base64: \[\n([\s\S]*?)\n {2}\]\.join/.exec(code)![1]!.split('\n').map((l) => l.trim().slice(1, -2)).join('');
    expect(Buffer.from(base64, 'base64').equals(bytes)).toBe(true);
    expect(code).not.toContain('import.meta.url');
  });
});
