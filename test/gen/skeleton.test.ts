import { spawnSync } from 'node:child_process'; // bpftool as the oracle, and fresh node processes to make getpid() calls: argument arrays, no shell
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { LoadedObject } from '../../src/load/index.js';
import type { PerCpuMap, ReadonlyVariable, TypedMap, TypedVariable } from '../../src/gen/runtime.js';
import { generateTypes } from '../../src/gen/generate.js';
import { parseObject } from '../../src/object/index.js';
import { eventually, kernelTest, noLeaks, SAMPLES_DIR } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';
import { ConsumerDir } from './support.js';

interface FlowKey { addr: number; port: number; proto: number; pad: number }
/** What the generated skel_kern.ts declares (the type-check test holds the generated types to it). */
interface Skel {
  readonly object: LoadedObject;
  readonly maps: { readonly flows: TypedMap<FlowKey, Record<string, unknown>>; readonly per_cpu_packets: PerCpuMap<number, bigint> };
  readonly globals: {
    readonly hits: TypedVariable<bigint>; readonly bump: TypedVariable<number>; readonly last_color: TypedVariable<string | number>;
    readonly seed_key: TypedVariable<FlowKey>; readonly echo_key: TypedVariable<FlowKey>;
    readonly snap_len: ReadonlyVariable<number>; readonly banner: ReadonlyVariable<string>;
  };
  attach(name: string): unknown;
  close(): void;
}
interface SkelModule { open(options?: { rodata?: { snap_len?: number; banner?: string }; programs?: string[] }): Skel }

const OBJECT = join(SAMPLES_DIR, 'skel_kern.o');

/** Every field of struct kinds set to something other than zero, at the edges of its type where it matters. */
const VALUE = {
  packets: 123_456_789_012_345n, delta: -42n, small: -1234, byte: 200, flag: true, name: 'bpf-load', raw: Uint8Array.of(1, 2, 3, 4),
  corners: [{ x: -1, y: 2 }, { x: 3, y: -4 }], addr: { word: 0x0a000001 }, anon_wide: 0x1122334455667788n,
  color: 'COLOR_BLUE', wide: 'WIDE_HUGE', low: 5, mid: 1000, high: 300_000, negative: -9, ratio: 0.5, average: Math.PI,
  opaque: 0n, callback: 0xffff_8880_0000_0000n, cursor: 0x10n, user_data: 0n, seen: 7, fixed: 8, counter: 4_000_000_000,
};
/** The same, read back: unions show every member's view of their bytes. */
const DECODED = {
  ...VALUE, addr: { word: 0x0a000001, octets: Uint8Array.of(1, 0, 0, 10) }, anon_narrow: 0x55667788,
};
/** The same through the run-time BTF decoder's conventions (numbers beyond 2^53 as strings, pointers in hex). */
const FORMATTED = {
  ...VALUE, packets: 123_456_789_012_345, delta: -42, raw: [1, 2, 3, 4], addr: { word: 0x0a000001, octets: [1, 0, 0, 10] },
  anon_wide: '1234605616436508552', anon_narrow: 0x55667788, opaque: '0x0', callback: '0xffff888000000000', cursor: '0x10', user_data: '0x0',
};
const KEY: FlowKey = { addr: 0x7f000001, port: 8080, proto: 6, pad: 0 };
const ECHO: FlowKey = { addr: 0x7f000002, port: 9090, proto: 17, pad: 0 };

function bpftoolDump(mapId: number): string {
  const r = spawnSync('bpftool', ['-j', 'map', 'dump', 'id', String(mapId)], { encoding: 'utf8', timeout: 10_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

const hexBytes = (text: string) => Buffer.from(JSON.parse(`[${text}]`).map((h: string) => Number(h)));

describe('generated skeletons against the kernel', () => {
  let consumer: ConsumerDir;
  let byPath: SkelModule;
  let embedded: SkelModule;
  beforeAll(async () => {
    consumer = new ConsumerDir();
    const bytes = readFileSync(OBJECT);
    const spec = parseObject(bytes, { name: OBJECT });
    // The compiled module runs from out/: the object's path is relative to it there.
    consumer.write('skel_kern.ts', generateTypes(spec, { objectPath: relative(join(consumer.dir, 'out'), OBJECT) }));
    consumer.write('skel_embed.ts', generateTypes(spec, { name: 'SkelEmbed', embed: bytes }));
    const compiled = consumer.compile();
    expect(compiled.output).toBe('');
    byPath = await consumer.import<SkelModule>('skel_kern.ts');
    embedded = await consumer.import<SkelModule>('skel_embed.ts');
  }, 120_000);
  afterAll(() => consumer.remove());

  kernelTest('a struct value written through a typed handle reads back equal: typed, through the BTF decoder, through bpftool', () => {
    const skel = byPath.open();
    try {
      const flows = skel.maps.flows;
      flows.set(KEY, VALUE);
      expect(flows.get(KEY)).toEqual(DECODED);
      expect(flows.get(ECHO)).toBeUndefined();
      expect(flows.has(KEY)).toBe(true);
      expect([...flows.keys()]).toEqual([KEY]);
      expect(flows.readAll()).toEqual([[KEY, DECODED]]);
      expect([...flows.entries()]).toEqual([[KEY, DECODED]]);

      // The run-time BTF walker over the raw bytes agrees field by field.
      const btf = skel.object.spec.btf!;
      const raw = flows.handle.readAll();
      expect(raw).toHaveLength(1);
      expect(btf.formatValue(flows.handle.spec.btfKeyTypeId!, raw[0]![0])).toEqual(KEY);
      expect(btf.formatValue(flows.handle.spec.btfValueTypeId!, raw[0]![1])).toEqual(FORMATTED);

      // bpftool reads the same bytes from the kernel (its 7.1 cannot format a float member, so bytes for the value).
      const dump = bpftoolDump(flows.handle.id);
      expect(hexBytes(/"key":\[([^\]]*)\]/.exec(dump)![1]!)).toEqual(raw[0]![0]);
      expect(hexBytes(/"value":\[([^\]]*)\]/.exec(dump)![1]!)).toEqual(raw[0]![1]);
      expect(dump).toContain('"formatted":{"key":{"addr":2130706433,"port":8080,"proto":6,"pad":0},"value":{"packets":123456789012345,"delta":-42,"small":-1234,"byte":200,"flag":true,"name":"bpf-load","raw":[1,2,3,4],"corners":[{"x":-1,"y":2},{"x":3,"y":-4}],"addr":{"word":167772161,"octets":[1,0,0,10]}');
      expect(dump).toContain('"color":"COLOR_BLUE","wide":"WIDE_HUGE"');

      expect(flows.delete(KEY)).toBe(true);
      expect(flows.delete(KEY)).toBe(false);
      expect(flows.readAll()).toEqual([]);
    } finally {
      skel.close();
    }
  });

  kernelTest('globals and .rodata round-trip; the program sees what the typed handles wrote', async () => {
    const skel = byPath.open({ rodata: { snap_len: 99, banner: 'hey' } });
    const ids: number[] = [];
    try {
      const g = skel.globals;
      expect(g.snap_len.get()).toBe(99);
      expect(g.banner.get()).toBe('hey');
      expect(g.bump.get()).toBe(1); // .data's initial value
      expect(g.last_color.get()).toBe('COLOR_GREEN');
      g.seed_key.set(KEY);
      g.echo_key.set(ECHO);
      g.bump.set(2);
      g.hits.set(0n);
      expect(g.seed_key.get()).toEqual(KEY);
      expect(g.echo_key.get()).toEqual(ECHO);
      skel.maps.flows.set(KEY, VALUE);

      // bpftool sees the globals as written.
      const bss = JSON.parse(bpftoolDump(skel.object.map('.bss').id))[0].formatted.value['.bss'];
      expect(bss[1]).toEqual({ seed_key: KEY });
      expect(bss[2]).toEqual({ echo_key: ECHO });
      const rodata = JSON.parse(bpftoolDump(skel.object.map('.rodata').id))[0].formatted.value['.rodata'];
      expect(rodata).toEqual([{ snap_len: 99 }, { banner: 'hey' }]);

      skel.attach('on_getpid');
      ids.push(...skel.object.programs.map((p) => p.id));
      // Each fresh node process calls getpid while starting; the program copies flows[seed_key] to flows[echo_key].
      for (let i = 0; i < 3; i++) spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 });
      expect(eventually(() => skel.maps.flows.get(ECHO) !== undefined)).toBe(true);
      expect(skel.maps.flows.get(ECHO)).toEqual(DECODED);
      expect(g.last_color.get()).toBe('COLOR_BLUE');
      const hits = g.hits.get();
      expect(hits).toBeGreaterThanOrEqual(6n);
      expect(hits % 2n).toBe(0n); // every run added bump = 2, which we wrote
    } finally {
      skel.close();
    }
    expect(eventually(() => ids.every((id) => !programExists(id)))).toBe(true);
  });

  kernelTest('per-CPU values are one typed value per CPU, as bpftool shows them', () => {
    const skel = embedded.open(); // the embedded module: no file read at open()
    try {
      const perCpu = skel.maps.per_cpu_packets;
      perCpu.setAll(3, 7n);
      const cpus = perCpu.handle.cpus;
      expect(perCpu.get(3)).toEqual(Array.from({ length: cpus }, () => 7n));
      perCpu.set(2, Array.from({ length: cpus }, (_, cpu) => BigInt(cpu) + 100n));
      const shown = JSON.parse(bpftoolDump(perCpu.handle.id)) as Array<{ formatted: { key: number; values: Array<{ cpu: number; value: number }> } }>;
      expect(shown.find((e) => e.formatted.key === 2)!.formatted.values.map((v) => v.value)).toEqual(Array.from({ length: cpus }, (_, cpu) => cpu + 100));
      expect(() => perCpu.set(1, [1n])).toThrow(`map per_cpu_packets: value: 1 values for ${cpus} CPUs`);
      expect(skel.globals.snap_len.get()).toBe(64);
      expect(skel.globals.banner.get()).toBe('skel');
    } finally {
      skel.close();
    }
  });

  kernelTest('a value that does not fit its C type is a SkeletonError naming map, field and type; nothing is written', () => {
    const skel = byPath.open();
    try {
      const flows = skel.maps.flows;
      expect(() => flows.set(KEY, { ...VALUE, small: 40_000 })).toThrow('map flows: value: struct kinds.small: 40000 is not an integer in [-32768, 32767]');
      expect(() => flows.set(KEY, { ...VALUE, packets: 1 })).toThrow('map flows: value: struct kinds.packets: 1 does not fit a unsigned 64-bit integer (a bigint is expected)');
      expect(() => flows.set(KEY, { ...VALUE, name: 'a name longer than sixteen bytes' })).toThrow(/struct kinds\.name: "a name longer than sixteen bytes" is longer than 16 bytes/);
      expect(() => flows.set(KEY, { ...VALUE, color: 'COLOR_PURPLE' })).toThrow('map flows: value: struct kinds.color: "COLOR_PURPLE" is not one of COLOR_RED, COLOR_GREEN, COLOR_BLUE');
      expect(() => flows.set(KEY, { ...VALUE, mid: 1024 })).toThrow('struct kinds.mid: 1024 is not an integer in [0, 1023]');
      expect(() => flows.set({ ...KEY, port: -1 }, VALUE)).toThrow('map flows: key: struct flow_key.port: -1 is not an integer in [0, 65535]');
      expect(() => flows.set(KEY, { ...VALUE, corners: undefined })).toThrow(/map flows: value: struct kinds\.corners: expected an array of 2/);
      expect(() => flows.set(KEY, { ...VALUE, addr: undefined })).toThrow(/map flows: value: does not match the generated type/);
      expect(() => skel.globals.hits.set(-1n)).toThrow('variable hits: __u64: -1n does not fit a unsigned 64-bit integer');
      expect(() => (skel.globals.snap_len as TypedVariable<number>).set(1)).toThrow('variable snap_len: read-only after load; set it with open({ rodata })');
      expect(flows.readAll()).toEqual([]);
    } finally {
      skel.close();
    }
    expect(() => byPath.open({ rodata: { snap_len: -1 } })).toThrow('rodata snap_len: __u32: -1 is not an integer in [0, 4294967295]');
  });

  kernelTest('open({ programs }) loads only what those programs use: the other maps and globals throw the loader\'s error when used, not at open()', () => {
    const skel = byPath.open({ programs: ['count_packets'] });
    try {
      expect(skel.object.programs.map((p) => p.name)).toEqual(['count_packets']);
      skel.maps.per_cpu_packets.setAll(1, 5n); // used by count_packets: loaded, typed
      expect(skel.maps.per_cpu_packets.get(1)?.every((v) => v === 5n)).toBe(true);
      expect(() => skel.maps.flows.get(KEY)).toThrow(/no map named flows/);
      expect(() => skel.globals.hits.get()).toThrow(/no map named \.bss/);
      expect(Object.keys(skel.maps)).toEqual(['flows', 'events', 'per_cpu_packets']);
    } finally {
      skel.close();
    }
  });

  kernelTest('a stale skeleton (its codec sizes no longer match the object) fails at open() and leaves nothing loaded', async () => {
    const stale = new ConsumerDir();
    try {
      const spec = parseObject(readFileSync(OBJECT), { name: OBJECT });
      // As if generated when the map named per_cpu_packets was what flows is now (other key and value sizes).
      const code = generateTypes(spec, { objectPath: relative(join(stale.dir, 'out'), OBJECT) })
        .replace('new PerCpuMap(object.map("per_cpu_packets"), u32Codec, u64Codec)', 'new PerCpuMap(object.map("flows"), u32Codec, u64Codec)');
      expect(code).toContain('new PerCpuMap(object.map("flows"), u32Codec, u64Codec)');
      stale.write('skel_kern.ts', code);
      expect(stale.compile().output).toBe('');
      const mod = await stale.import<SkelModule>('skel_kern.ts');
      // Every fd the load opened (programs, maps, BTF) is closed again: nothing stays in the kernel.
      noLeaks(() => expect(() => mod.open()).toThrow(/^map flows: the skeleton was generated for 4-byte keys and 8-byte values, the object has 8 and \d+: regenerate it \(bpf-load gen\)$/));
    } finally {
      stale.remove();
    }
  });
});
