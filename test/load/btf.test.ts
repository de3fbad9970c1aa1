import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect } from 'vitest';
import { loadObject, LoadError, type LoadedObject } from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec } from '../../src/object/index.js';
import { closeFd, mapCreate, mapInfo, mapLookupElem, objPin } from '../../src/sys/index.js';
import { MapFlags } from '../../src/base/uapi.js';
import { openObject } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { programExists } from '../helpers/leftovers.js';
import { bpffsTempDir, corpusFiles, eventually, isExecutable, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';

const sample = (name: string): BpfObjectSpec => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });


/** A fresh directory on bpffs for pins, removed (with everything pinned in it) by the returned cleanup. */
function pinRoot(): { dir: string; cleanup: () => void } {
  const dir = bpffsTempDir('bpf-load-test-');
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reasons a corpus program may legitimately stay unloaded on this kernel: the kernel's refusal, or a named gap. */
const ACCEPTED_SKIP = /verifier rejected it|refused although this process has CAP_SYS_ADMIN|not supported yet|names no known program type/;

describe('BTF objects against the kernel', () => {
  const corpus = corpusFiles('cilium', (n) => /^loader-clang-\d+-el\.elf$/.test(n) || n === 'bpf_bpfel.o' || n === 'bpf_x86_bpfel.o');

  kernelTest('corpus loader-*-el and examples/* load; every program left out names why', () => {
    if (corpus === undefined) return;
    expect(corpus.length).toBeGreaterThan(10);
    const pins = pinRoot();
    const before = openFdCount();
    try {
      for (const path of corpus) {
        const spec = parseObject(readFileSync(path), { name: path });
        const o = loadObject(spec, { onProgramError: 'skip', pinRoot: pins.dir });
        try {
          expect(o.programs.length + o.skipped.length, path).toBe(spec.programs.length);
          for (const s of o.skipped) expect(s.reason, `${path}: ${s.spec.name}`).toMatch(ACCEPTED_SKIP);
          if (basename(path).startsWith('loader-')) {
            expect(o.programs.map((p) => p.name).sort(), path).toEqual(['anon_const', 'data_sections', 'no_relocation', 'xdp_prog']);
            expect(o.map('btf_outer_map').spec.innerDefinition?.typeName).toBe('hash');
          }
        } finally {
          o.close();
        }
      }
    } finally {
      pins.cleanup();
    }
    expect(openFdCount()).toBe(before);
  }, 60_000);

  kernelTest('btf_map_init: the prog array and the map of maps are filled as declared', () => {
    const path = corpusFiles('cilium', (n) => n === 'btf_map_init-el.elf')?.[0];
    if (path === undefined) return;
    const o = loadObject(parseObject(readFileSync(path), { name: path }));
    try {
      expect(o.map('prog_array_init').get(1)!.readUInt32LE(0)).toBe(o.program('tail_1').id);
      expect(o.map('prog_array_init').get(0)).toBeUndefined();
      expect(o.map('outer_map_init').get(1)!.readUInt32LE(0)).toBe(o.map('inner_map').id);
    } finally {
      o.close();
    }
  });

  kernelTest('pinning by name: created and pinned, reused by the next load, an incompatible pin is refused', () => {
    const path = corpusFiles('cilium', (n) => n === 'bpf_bpfel.o' && true)?.find((p) => p.includes('kprobepin'));
    if (path === undefined) return;
    const spec = parseObject(readFileSync(path), { name: path });
    const pins = pinRoot();
    try {
      const first = loadObject(spec, { pinRoot: pins.dir });
      const firstId = first.map('kprobe_map').id;
      first.map('kprobe_map').set(0, 42n);
      first.close();
      expect(existsSync(join(pins.dir, 'kprobe_map'))).toBe(true);
      const second = loadObject(spec, { pinRoot: pins.dir });
      try {
        expect(second.map('kprobe_map').id).toBe(firstId);
        expect(second.map('kprobe_map').get(0)!.readBigUInt64LE(0)).toBe(42n);
      } finally {
        second.close();
      }
      rmSync(join(pins.dir, 'kprobe_map'));
      const odd = mapCreate({ mapType: 2, keySize: 4, valueSize: 4, maxEntries: 1 });
      try {
        objPin(odd, join(pins.dir, 'kprobe_map'));
      } finally {
        closeFd(odd);
      }
      expect(() => loadObject(spec, { pinRoot: pins.dir })).toThrow(/kprobe_map: pinned at .*: the pinned map is incompatible: value_size is 4, the object wants 8/);
    } finally {
      pins.cleanup();
    }
  });

  kernelTest('globals: kernel tags equal those bpftool gets for the same object', () => {
    const bpftool = ['/usr/sbin/bpftool', '/usr/bin/bpftool'].find(isExecutable);
    if (bpftool === undefined) throw new Error('bpftool is required (.ci/run installs it)');
    const pins = pinRoot();
    let ours: LoadedObject | undefined;
    try {
      const dir = join(pins.dir, 'progs');
      const r = spawnSync(bpftool, ['prog', 'loadall', join(SAMPLES_DIR, 'globals_kern.o'), dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const theirs = new Map<string, string>();
      for (const name of readdirSync(dir)) {
        const show = spawnSync(bpftool, ['-j', 'prog', 'show', 'pinned', join(dir, name)], { encoding: 'utf8' });
        const info = JSON.parse(show.stdout) as { name: string; tag: string };
        theirs.set(info.name, info.tag);
      }
      ours = loadObject(sample('globals_kern.o'));
      expect(ours.programs.length).toBe(2);
      for (const p of ours.programs) expect(p.tag, p.name).toBe(theirs.get(p.name.slice(0, 15)));
    } finally {
      ours?.close();
      pins.cleanup();
    }
  });

  kernelTest('BTF reaches the kernel: maps carry key/value type ids, programs carry func info', () => {
    const o = loadObject(sample('sockex1_modern_kern.o'));
    try {
      const m = o.map('my_map');
      expect(m.spec.source).toBe('btf');
      expect(m.btf?.typeName(m.spec.btfKeyTypeId!)).toBe('u32');
      expect(o.programs[0]!.info.btfId).toBeGreaterThan(0);
      expect(o.programs[0]!.info.nrFuncInfo).toBe(1);
    } finally {
      o.close();
    }
  });

  kernelTest('CO-RE: every manyprogs program is relocated against the running kernel\'s BTF and loads', () => {
    const path = corpusFiles('cilium', (n) => n === 'manyprogs-el.elf')?.[0];
    if (path === undefined) return;
    const spec = parseObject(readFileSync(path), { name: path });
    const o = loadObject(spec);
    try {
      expect(o.programs).toHaveLength(30);
      expect(spec.btfExt!.coreRelos.size).toBeGreaterThan(0);
    } finally {
      o.close();
    }
  });

  kernelTest('CO-RE: an access the kernel lacks is named, not loaded half-right', () => {
    const path = corpusFiles('cilium', (n) => n === 'errors-el.elf')?.[0];
    if (path === undefined) return;
    const spec = parseObject(readFileSync(path), { name: 'errors-el.elf' });
    const o = loadObject(spec, { onProgramError: 'skip' });
    try {
      const reasons = new Map(o.skipped.map((x) => [x.spec.name, x.reason]));
      expect(reasons.get('poisoned_single')).toMatch(/^errors-el\.elf: program poisoned_single \(section socket\): .*nonexist/);
      expect(reasons.get('poisoned_double')).toMatch(/nonexist_enum/);
    } finally {
      o.close();
    }
  });

  kernelTest('an object that needs what we do not support yet fails with a reason, leaking nothing', () => {
    const path = corpusFiles('cilium', (n) => n === 'fwd_decl-el.elf')?.[0];
    if (path === undefined) return;
    const before = openFdCount();
    expect(() => loadObject(parseObject(readFileSync(path), { name: path }))).toThrow(LoadError);
    expect(() => loadObject(parseObject(readFileSync(path), { name: path }))).toThrow(/symbol fwd is not defined in this object/);
    expect(openFdCount()).toBe(before);
  });
});

describe('global variables through the library', () => {
  kernelTest('the library reads a .bss counter that a tracepoint program increments', () => {
    using obj = openObject(join(SAMPLES_DIR, 'globals_kern.o'));
    obj.attach('count_getpid');
    const hits = obj.variable('hits');
    const start = Number(hits.get());
    // Each fresh node process calls getpid while starting.
    for (let i = 0; i < 5; i++) spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 });
    expect(Number(hits.get())).toBeGreaterThanOrEqual(start + 5);
    hits.set(0n);
    expect(hits.get()).toBe(0);
    expect(obj.variable('data_var').get()).toBe(7);
    expect(() => obj.variable('threshold').set(1)).toThrow(/frozen after load/);
    expect(() => obj.variable('nope')).toThrow(/no global variable named nope/);
  });

  kernelTest('.rodata is set before load through globals; unknown names are refused', () => {
    using obj = openObject(join(SAMPLES_DIR, 'globals_kern.o'), { globals: { threshold: 9, data_var: 11 } });
    expect(obj.variable('threshold').get()).toBe(9);
    expect(obj.variable('data_var').get()).toBe(11);
    expect(() => openObject(join(SAMPLES_DIR, 'globals_kern.o'), { globals: { thresold: 1 } })).toThrow(/globals: no variable named thresold/);
  });
});

describe('global variables in memory (BPF_F_MMAPABLE)', () => {
  kernelTest('.data and .bss are mapped read-write, .rodata read-only; memory and bpf(2) see the same bytes', () => {
    using obj = openObject(join(SAMPLES_DIR, 'globals_kern.o'));
    const key = Buffer.alloc(4);
    const viaSyscall = (mapName: string) => {
      const map = obj.map(mapName);
      const value = Buffer.alloc(map.valueSize);
      expect(mapLookupElem(map.fd, key, value)).toBe(true);
      return value;
    };
    for (const name of ['.bss', '.data', '.rodata']) {
      const map = obj.map(name);
      expect(mapInfo(map.fd).mapFlags & MapFlags.MMAPABLE, name).toBe(MapFlags.MMAPABLE);
      expect(map.mappedValue(), name).toBeDefined();
    }
    const hits = obj.variable('hits');
    const dataVar = obj.variable('data_var');
    // Written through memory, read by the kernel's bpf(2) lookup.
    hits.set(0x1234_5678_9abc);
    expect(viaSyscall('.bss').readBigUInt64LE(hits.spec.offset)).toBe(0x1234_5678_9abcn);
    // Written by bpf(2), read through memory.
    const data = viaSyscall('.data');
    data.writeInt32LE(-42, dataVar.spec.offset);
    obj.map('.data').set(0, data);
    expect(dataVar.get()).toBe(-42);
    expect(dataVar.bytes()).toEqual(data.subarray(dataVar.spec.offset, dataVar.spec.offset + 4));
    // The fast integer path answers exactly what the BTF decoder does, at the number/decimal-string boundary too.
    const btf = obj.spec.btf!;
    for (const v of [0n, 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 64n) - 1n]) {
      hits.set(v);
      expect(hits.get(), String(v)).toEqual(btf.formatValue(hits.spec.btfTypeId!, viaSyscall('.bss').subarray(hits.spec.offset, hits.spec.offset + 8)));
    }
    for (const v of [-1, -0x8000_0000, 0x7fff_ffff, 0xffff_ffff]) {
      dataVar.set(v);
      expect(dataVar.get(), String(v)).toEqual(btf.formatValue(dataVar.spec.btfTypeId!, viaSyscall('.data').subarray(dataVar.spec.offset, dataVar.spec.offset + 4)));
    }
    expect(() => dataVar.set(0x1_0000_0000)).toThrow(/does not fit 4 bytes/);
    expect(obj.variable('threshold').get()).toBe(3);
    expect(() => obj.variable('threshold').set(1)).toThrow(/frozen after load/);
  });

  kernelTest('a variable of a closed object says so instead of touching unmapped memory', () => {
    const obj = openObject(join(SAMPLES_DIR, 'globals_kern.o'));
    const hits = obj.variable('hits');
    expect(hits.get()).toBe(0);
    obj.close();
    expect(() => hits.get()).toThrow(/map \.bss is closed/);
    expect(() => hits.set(1)).toThrow(/map \.bss is closed/);
  });
});

describe('BTF in what users see', () => {
  kernelTest('--dump shows BTF map types, global variables and subprograms', () => {
    const modern = runCli(['--dump', 'c-samples/sockex1_modern_kern.o']);
    expect(modern.status, modern.stderr).toBe(0);
    expect(modern.stdout).toMatch(/my_map\s+array\s+4 \(u32\)\s+8 \(long\)\s+256/);
    const globals = JSON.parse(runCli(['--dump', '--json', 'c-samples/globals_kern.o']).stdout);
    expect(globals.variables.map((v: { name: string; type: string }) => [v.name, v.type]).sort()).toEqual([['data_var', 'int'], ['hits', '__u64'], ['threshold', 'const volatile int']]);
    expect(globals.subprograms.map((s: { name: string }) => s.name)).toEqual(['add']);
  });

  kernelTest('the live view decodes global data through BTF', () => {
    const r = runCli(['c-samples/globals_kern.o', '--count', '1', '--interval', '0.2', '--json', '--no-attach']);
    expect(r.status, r.stderr).toBe(0);
    const round = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(round.maps['.data']).toEqual([{ key: 0, value: { data_var: 7 } }]);
    expect(round.maps['.rodata']).toEqual([{ key: 0, value: { threshold: 3 } }]);
    expect(round.maps['.bss']).toEqual([]);
  });

  kernelTest('closing leaves no program behind', () => {
    const o = loadObject(sample('globals_kern.o'));
    const ids = o.programs.map((p) => p.id);
    o.close();
    for (const id of ids) expect(eventually(() => !programExists(id))).toBe(true);
  });
});
