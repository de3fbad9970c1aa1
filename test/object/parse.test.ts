import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ElfError, SectionType, SymbolType } from '../../src/elf/index.js';
import { matchSection, ObjectError, parseObject, type BpfObjectSpec } from '../../src/object/index.js';
import { buildElf, insnBytes, relEntries } from '../helpers/elf-builder.js';
import { corpusFiles, SAMPLES_DIR } from '../helpers/kernel.js';

const sample = (name: string) => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });

describe('section-name matcher', () => {
  const cases: Array<[string, string | undefined, string | undefined, number | undefined]> = [
    // name, prog type, attach type, tail-call slot
    ['socket1', 'socket_filter', undefined, undefined],
    ['socket', 'socket_filter', undefined, undefined],
    ['socket/3', 'socket_filter', undefined, 3],
    ['xdp_pass', 'xdp', 'xdp', undefined],
    ['xdp1', 'xdp', 'xdp', undefined],
    ['xdp/devmap', 'xdp', 'xdp_devmap', undefined],
    ['xdp.frags', 'xdp', 'xdp', undefined],
    ['kprobe/do_nanosleep', 'kprobe', undefined, undefined],
    ['kprobe/7', 'kprobe', undefined, 7],
    ['kretprobe/do_nanosleep', 'kprobe', undefined, undefined],
    ['tracepoint/sched/sched_switch', 'tracepoint', undefined, undefined],
    ['tp/syscalls/sys_enter_getpid', 'tracepoint', undefined, undefined],
    ['raw_tracepoint/sys_enter', 'raw_tracepoint', undefined, undefined],
    ['raw_tp/sys_enter', 'raw_tracepoint', undefined, undefined],
    ['perf_event', 'perf_event', undefined, undefined],
    ['cgroup/skb', 'cgroup_skb', 'cgroup_inet_ingress', undefined],
    ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress', undefined],
    ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create', undefined],
    ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect', undefined],
    ['sockops', 'sock_ops', 'cgroup_sock_ops', undefined],
    ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser', undefined],
    ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict', undefined],
    ['sk_skb/2', 'sk_skb', undefined, 2],
    ['sk_msg', 'sk_msg', 'sk_msg_verdict', undefined],
    ['sk_msg/4', 'sk_msg', 'sk_msg_verdict', 4],
    ['tc', 'sched_cls', undefined, undefined],
    ['classifier', 'sched_cls', undefined, undefined],
    ['action', 'sched_act', undefined, undefined],
    ['lwt_in', 'lwt_in', undefined, undefined],
    ['fentry/tcp_connect', 'tracing', 'trace_fentry', undefined],
    ['fexit/tcp_close', 'tracing', 'trace_fexit', undefined],
    ['lsm/file_open', 'lsm', 'lsm_mac', undefined],
    ['tp_btf/task_newtask', 'tracing', 'trace_raw_tp', undefined],
    ['sk_lookup', 'sk_lookup', 'sk_lookup', undefined],
    ['flow_dissector', 'flow_dissector', 'flow_dissector', undefined],
    ['iter/task', 'tracing', 'trace_iter', undefined],
    ['freplace/subprog', 'ext', undefined, undefined],
    ['.text', undefined, undefined, undefined],
    ['my_custom_section', undefined, undefined, undefined],
    ['fentry/', undefined, undefined, undefined],
  ];
  for (const [name, type, attach, slot] of cases) {
    it(`${name} → ${type ?? 'unknown'}`, () => {
      const m = matchSection(name);
      expect(m?.def.progType).toBe(type);
      expect(m?.def.attachType ?? m?.def.expectedAttachType).toBe(attach);
      expect(m?.tailCallSlot).toBe(slot);
    });
  }
  it('gives the attach target after the prefix', () => {
    expect(matchSection('tracepoint/sched/sched_switch')?.target).toBe('sched/sched_switch');
    expect(matchSection('kprobe/do_nanosleep')?.target).toBe('do_nanosleep');
    expect(matchSection('socket1')?.target).toBe('');
    expect(matchSection('xdp_pass')?.target).toBe('');
    expect(matchSection('socket/3')?.target).toBe('3');
  });
});

describe('c-samples', () => {
  it('sockex1: socket1 program, my_map, and the relocation by name', () => {
    const spec = sample('sockex1_kern.o');
    expect(spec.license).toBe('GPL');
    expect(spec.programs.map((p) => [p.section, p.name, p.type])).toEqual([['socket1', 'bpf_prog1', 'socket_filter']]);
    expect(spec.maps.map((m) => [m.name, m.typeName, m.keySize, m.valueSize, m.maxEntries])).toEqual([['my_map', 'array', 4, 8, 256]]);
    expect(spec.relocations).toHaveLength(1);
    expect(spec.relocations[0]).toMatchObject({ section: 'socket1', program: 'bpf_prog1', symbol: 'my_map', kind: 'map', target: 'my_map' });
    expect(spec.programs[0]!.relocations).toEqual(spec.relocations);
  });

  it('sockex3: tail-call slots from socket/N sections', () => {
    const spec = sample('sockex3_kern.o');
    expect(spec.programs.map((p) => [p.section, p.tailCallSlot])).toEqual([
      ['socket', undefined], ['socket/0', 0], ['socket/1', 1], ['socket/2', 2],
    ]);
    expect(spec.maps.find((m) => m.typeName === 'prog_array')?.name).toBe('jmp_table');
  });

  it('map-in-map: inner_map_idx names the inner template by index in offset order', () => {
    const spec = sample('map_in_map_kern.o');
    const outer = spec.maps.find((m) => m.typeName === 'array_of_maps' || m.typeName === 'hash_of_maps')!;
    expect(outer.innerMap).toBe(spec.maps[outer.innerMapIndex!]!.name);
    expect(spec.maps.map((m) => m.index)).toEqual(spec.maps.map((_, i) => i));
    const offsets = spec.maps.map((m) => m.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  it('version section is read as a 4-byte number', () => {
    expect(sample('trace_hello_kern.o').kernVersion).toBeGreaterThan(0);
  });

  it('every c-samples object parses, and each big-endian twin gives the same spec', () => {
    const objects = readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o'));
    expect(objects.length).toBeGreaterThan(10);
    for (const f of objects) {
      const spec = sample(f);
      expect(spec.programs.length, f).toBeGreaterThan(0);
      if (f.endsWith('.eb.o')) {
        const le = f.replace(/\.eb\.o$/, '.o');
        expect(normalise(spec), f).toEqual(normalise(sample(le)));
      }
    }
  });
});

/** A spec without what legitimately differs between byte-order twins. */
function normalise(spec: BpfObjectSpec) {
  return {
    license: spec.license, kernVersion: spec.kernVersion,
    sections: spec.sections.map(({ name, type, size, role }) => ({ name, type, size, role })),
    maps: spec.maps.map(({ definition: _d, contents: _c, ...m }) => m),
    programs: spec.programs.map(({ bytes, littleEndian: _l, ...p }) => ({ ...p, size: bytes.byteLength })),
    subprograms: spec.subprograms.map(({ bytes, littleEndian: _l, ...p }) => ({ ...p, size: bytes.byteLength })),
    relocations: spec.relocations,
  };
}

/**
 * What must agree between corpus twins. clang emits slightly different code per byte order (instruction counts and
 * therefore offsets differ), so sizes and instruction indices are left out.
 */
function semantic(spec: BpfObjectSpec) {
  return {
    license: spec.license, kernVersion: spec.kernVersion,
    sections: spec.sections.map(({ name, role }) => ({ name, role })),
    maps: spec.maps.map(({ definition: _d, contents: _c, ...m }) => m),
    programs: spec.programs.map(({ name, section, type, attachType, attach, attachTarget, tailCallSlot }) =>
      ({ name, section, type, attachType, attach, attachTarget, tailCallSlot })),
    subprograms: spec.subprograms.map((s) => s.name),
    relocations: spec.relocations.map(({ program, symbol, kind, target }) => `${program} ${symbol} ${kind} ${target}`).sort(),
  };
}

describe('cilium corpus', () => {
  const files = corpusFiles('cilium', (n) => n.endsWith('.o') || n.endsWith('.elf'));
  it.runIf(files !== undefined)('every object parses; invalid_* fail with a typed error; el/eb twins agree', () => {
    for (const path of files!) {
      const name = basename(path);
      const parse = () => parseObject(readFileSync(path), { name: path });
      if (name.startsWith('invalid_map') || name.startsWith('invalid_btf_map_init')) {
        expect(parse, path).toThrow(ObjectError);
        continue;
      }
      const spec = parse();
      const twin = path.replace(/-eb\.elf$/, '-el.elf').replace(/bpfeb\.o$/, 'bpfel.o');
      if (twin !== path) expect(semantic(spec), path).toEqual(semantic(parseObject(readFileSync(twin), { name: twin })));
    }
  });

  it.runIf(files !== undefined)('names the static map and the unknown trailing field', () => {
    const dir = files!.find((f) => f.endsWith('invalid_map_static-el.elf'))!;
    expect(() => parseObject(readFileSync(dir), { name: 'invalid_map_static-el.elf' }))
      .toThrow('invalid_map_static-el.elf: section maps: symbol hash_map: map is static');
    const bad = files!.find((f) => f.endsWith('invalid_map-el.elf'))!;
    expect(() => parseObject(readFileSync(bad), { name: 'invalid_map-el.elf' }))
      .toThrow(/symbol invalid_map: definition is 24 bytes and holds a non-zero value at offset 20/);
  });

  it.runIf(files !== undefined)('BTF maps: definitions, inline inner maps, static slots; bytes in .maps are refused', () => {
    const loader = parseObject(readFileSync(files!.find((f) => f.endsWith('loader-clang-22-el.elf'))!));
    const btfMaps = loader.maps.filter((m) => m.source === 'btf');
    expect(btfMaps.map((m) => [m.name, m.typeName, m.keySize, m.valueSize, m.maxEntries, m.pinning])).toEqual([
      ['hash_map', 'hash', 4, 8, 1, 'none'], ['hash_map2', 'hash', 4, 8, 2, 'none'], ['btf_pin', 'hash', 4, 8, 1, 'by_name'],
      ['btf_outer_map', 'array_of_maps', 4, 4, 1, 'none'], ['btf_outer_map_anon', 'array_of_maps', 4, 4, 1, 'none'],
      ['perf_event_array', 'perf_event_array', 0, 16, 4096, 'none'], ['btf_typedef_map', 'array', 4, 8, 1, 'none'],
      ['btf_decl_map', 'array', 4, 8, 1, 'none'],
    ]);
    expect(loader.maps.find((m) => m.name === 'btf_outer_map')!.innerDefinition).toMatchObject({ typeName: 'hash', keySize: 4, valueSize: 4 });
    const init = parseObject(readFileSync(files!.find((f) => f.endsWith('btf_map_init-el.elf'))!));
    expect(init.maps.find((m) => m.name === 'prog_array_init')!.initialSlots).toEqual([{ key: 1, target: 'tail_1' }]);
    expect(init.maps.find((m) => m.name === 'outer_map_init')!.initialSlots).toEqual([{ key: 1, target: 'inner_map' }]);
    const bad = files!.find((f) => f.endsWith('invalid_btf_map_init-el.elf'))!;
    expect(() => parseObject(readFileSync(bad), { name: 'invalid_btf_map_init-el.elf' }))
      .toThrow(/^invalid_btf_map_init-el\.elf: section \.maps: symbol hash_map: non-zero byte at offset \d+ of the definition/);
  });

  it.runIf(files !== undefined)('loader objects: programs, subprograms, maps and relocation kinds', () => {
    const path = files!.find((f) => f.endsWith('loader_nobtf-el.elf'))!;
    const spec = parseObject(readFileSync(path));
    expect(spec.maps.filter((m) => m.source === 'legacy').map((m) => m.name)).toEqual(['hash_map', 'hash_map2', 'perf_event_array']);
    const data = spec.maps.filter((m) => m.source === 'data');
    expect(data.map((m) => m.name)).toEqual(['.bss', '.data', '.rodata', '.rodata.test', '.data.test', '.rodata.cst32']);
    // .bss is described by its size: no bytes are allocated for it at parse time (the kernel zero-fills the map).
    const bss = data.find((m) => m.name === '.bss')!;
    expect([bss.contents, bss.valueSize > 0]).toEqual([undefined, true]);
    expect(data.filter((m) => m.readOnly).map((m) => m.name)).toEqual(['.rodata', '.rodata.test', '.rodata.cst32']);
    expect(spec.subprograms.map((s) => s.name).sort()).toEqual(['global_fn', 'global_fn2']);
    const kinds = new Set(spec.relocations.map((r) => r.kind));
    expect([...kinds].sort()).toEqual(['call', 'data', 'extern', 'map']);
    expect(spec.relocations.find((r) => r.kind === 'extern')?.target).toBe('MY_CONST');
  });
});

describe('legacy map layouts and bad definitions (hand-built)', () => {
  const defs = (words: number[], size: number) => {
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    words.forEach((w, i) => v.setUint32(i * 4, w, true));
    return out;
  };
  const object = (mapsData: Uint8Array, symbols: Array<{ name: string; value: number; bind?: number; size?: number }>, code?: Uint8Array, rel?: Uint8Array) =>
    buildElf({
      sections: [
        { name: 'maps', type: SectionType.PROGBITS, flags: 3, data: mapsData },
        { name: 'socket', type: SectionType.PROGBITS, flags: 6, data: code ?? insnBytes([[0x18, 0x01, 0, 0], [0, 0, 0, 0], [0xb7, 0, 0, 0], [0x95, 0, 0, 0]]) },
        ...(rel === undefined ? [] : [{ name: '.relsocket', type: SectionType.REL, data: rel, link: 4, info: 2, entsize: 16 }]),
      ],
      symbols: [
        ...symbols.map((s) => ({ name: s.name, value: s.value, size: s.size ?? 0, type: SymbolType.NOTYPE, shndx: 1, bind: s.bind ?? 1 })),
        { name: 'prog', type: SymbolType.FUNC, shndx: 2, size: 0 },
      ],
    });

  it('20-byte definitions with size-0 NOTYPE symbols (old objects), sorted by offset', () => {
    const data = new Uint8Array(40);
    data.set(defs([1, 4, 8, 16, 0], 20), 0);
    data.set(defs([2, 4, 4, 4, 0], 20), 20);
    const spec = parseObject(object(data, [{ name: 'second', value: 20 }, { name: 'first', value: 0 }]));
    expect(spec.maps.map((m) => [m.name, m.typeName, m.maxEntries, m.index])).toEqual([['first', 'hash', 16, 0], ['second', 'array', 4, 1]]);
    expect(spec.programs[0]!.name).toBe('prog');
  });

  it('28-byte bpf_load layout with inner_map_idx and numa_node', () => {
    const data = new Uint8Array(56);
    data.set(defs([2, 4, 4, 1, 0, 0, 0], 28), 0);
    data.set(defs([12, 4, 4, 8, 4, 0, 1], 28), 28);
    const spec = parseObject(object(data, [{ name: 'inner', value: 0 }, { name: 'outer', value: 28 }]));
    expect(spec.maps[1]).toMatchObject({ name: 'outer', typeName: 'array_of_maps', innerMapIndex: 0, innerMap: 'inner', numaNode: 1, flags: 4 });
  });

  it('36-byte iproute2 layout with pinning; 280-byte gobpf layout', () => {
    const ip = parseObject(object(defs([1, 4, 8, 2, 0, 7, 2, 0, 0], 36), [{ name: 'm', value: 0 }]));
    expect(ip.maps[0]).toMatchObject({ definitionSize: 36, pinning: 'global_ns' });
    const go = new Uint8Array(280);
    go.set(defs([1, 4, 8, 2, 0, 1], 24));
    go.set(new TextEncoder().encode('myns'), 24);
    expect(parseObject(object(go, [{ name: 'g', value: 0 }])).maps[0]).toMatchObject({ definitionSize: 280, pinning: 'object_ns' });
  });

  it('rejects: non-zero unknown bytes, static maps, bad inner index, maps section without symbols', () => {
    expect(() => parseObject(object(defs([1, 4, 8, 2, 0, 9], 24), [{ name: 'm', value: 0 }]), { name: 'a.o' }))
      .toThrow('a.o: section maps: symbol m: definition is 24 bytes and holds a non-zero value at offset 20');
    expect(() => parseObject(object(defs([1, 4, 8, 2, 0], 20), [{ name: 'm', value: 0, bind: 0 }]), { name: 'a.o' }))
      .toThrow(/symbol m: map is static/);
    expect(() => parseObject(object(defs([12, 4, 4, 1, 0, 5, 0], 28), [{ name: 'o', value: 0 }])))
      .toThrow(/inner_map_idx 5 does not name another map/);
    expect(() => parseObject(object(defs([1, 4, 8, 2, 0], 20), []))).toThrow(/no map symbols/);
  });

  it('relocations: resolved to the map by name; a non-ld_imm64 target is an error naming insn and opcode', () => {
    const data = defs([2, 4, 8, 256, 0], 20);
    const good = parseObject(object(data, [{ name: 'my_map', value: 0, size: 20 }], undefined, relEntries([[0, 1, 1]])));
    expect(good.relocations[0]).toMatchObject({ insn: 0, kind: 'map', target: 'my_map', program: 'prog' });
    // Relocation against insn 2 (b7 = mov): bpf_load.c's "invalid relo for insn[2].code 0xb7".
    expect(() => parseObject(object(data, [{ name: 'my_map', value: 0, size: 20 }], undefined, relEntries([[16, 1, 1]])), { name: 'x.o' }))
      .toThrow('x.o: section socket: insn 2: symbol my_map: invalid relocation for insn[2].code 0xb7: map references must be ld_imm64 instructions');
    expect(() => parseObject(object(data, [{ name: 'my_map', value: 0, size: 20 }], undefined, relEntries([[3, 1, 1]]))))
      .toThrow(/not at an instruction/);
  });

  it('version must be 4 bytes', () => {
    const bytes = buildElf({ sections: [{ name: 'version', type: SectionType.PROGBITS, flags: 3, data: new Uint8Array(3) }] });
    expect(() => parseObject(bytes, { name: 'v.o' })).toThrow('v.o: section version: invalid size of version section: 3 bytes, expected 4');
  });

  it('malformed input is always an ElfError or ObjectError', () => {
    const base = readFileSync(join(SAMPLES_DIR, 'sockex1_kern.o'));
    for (let i = 0; i < base.byteLength; i += 3) {
      const b = Uint8Array.from(base);
      b[i] = b[i]! ^ 0xff;
      try {
        parseObject(b);
      } catch (e) {
        if (!(e instanceof ElfError) && !(e instanceof ObjectError)) throw new Error(`flip at ${i}: ${String(e)}`);
      }
    }
  });
});
