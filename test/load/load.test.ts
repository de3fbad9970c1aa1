import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { progTypeName } from '../../src/base/uapi.js';
import {
  loadObject, LoadError, MapHandleError, relocateProgram, runningKernelVersion, VerifierError, type LoadedObject,
} from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec } from '../../src/object/index.js';
import { closeFd, mapCreate, progGetFdById, progInfo, SysError } from '../../src/sys/index.js';
import { programExists } from '../helpers/leftovers.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { expectedTag } from '../helpers/tags.js';


const spec = (name: string): BpfObjectSpec => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });
/**
 * Samples every kernel loads whole: not the big-endian twins, not the one the verifier must reject, and not
 * btf_targets (kernels without BPF trampolines refuse its fentry/fexit programs; test/attach/btf-targets covers it).
 */
const loadable = () => readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o') && !f.includes('.eb.') && !f.startsWith('bad_verifier') && !f.startsWith('btf_targets') &&
  // These need the user's help (--type, --max-entries) or hold a program the verifier must refuse: test/load/lineages.
  !f.startsWith('iproute2_') && !f.startsWith('fixups_') && !f.startsWith('partial_') && !f.startsWith('loader_policy_') &&
  !f.startsWith('tc_modern_'));

/** Runs `fn` with a loaded object and proves nothing leaked: fds back to where they were, programs gone from the kernel. */
function withLoaded(name: string, fn: (o: LoadedObject) => void, options: Parameters<typeof loadObject>[1] = {}): void {
  const before = openFdCount();
  const o = loadObject(spec(name), options);
  const ids = o.programs.map((p) => p.id);
  try {
    fn(o);
  } finally {
    o.close();
  }
  expect(openFdCount()).toBe(before);
  for (const id of ids) expect(eventually(() => !programExists(id)), `program ${id} still exists`).toBe(true);
}

describe('loading c-samples into the kernel', () => {
  kernelTest('every sample loads with the expected program types; ids and tags come from the kernel', () => {
    for (const f of loadable()) {
      withLoaded(f, (o) => {
        const s = o.spec;
        expect(o.programs.map((p) => p.name), f).toEqual(s.programs.map((p) => p.name));
        for (const p of o.programs) {
          const fd = progGetFdById(p.id);
          try {
            const info = progInfo(fd);
            expect(progTypeName(info.type), `${f} ${p.name}`).toBe(p.spec.type);
            expect(info.tag).toBe(p.tag);
            expect(p.tag).toMatch(/^[0-9a-f]{16}$/);
          } finally {
            closeFd(fd);
          }
        }
        for (const m of o.maps) expect(m.id, `${f} ${m.name}`).toBeGreaterThan(0);
      });
    }
  });

  kernelTest('relocation is exact: kernel tags equal SHA-256 of the relocated instructions (map immediates zeroed)', () => {
    let checked = 0;
    for (const f of loadable()) {
      const s = spec(f);
      // Programs that call subprograms are linked by the loader; this independent computation covers the rest.
      const simple = s.programs.filter((p) => p.relocations.every((r) => r.kind === 'map' || r.kind === 'data'));
      withLoaded(f, (o) => {
        for (const p of simple) {
          expect(o.program(p.name).tag, `${f} ${p.name}`).toBe(expectedTag(s, p.name));
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(15);
  });

  kernelTest('sockex3: the prog array holds the socket/N programs at key N', () => {
    withLoaded('sockex3_kern.o', (o) => {
      const table = o.map('jmp_table');
      for (const n of [0, 1, 2]) {
        const slot = o.programs.find((p) => p.spec.tailCallSlot === n)!;
        expect(table.get(n)!.readUInt32LE(0), `slot ${n}`).toBe(slot.id);
      }
      expect(table.get(3)).toBeUndefined();
    });
  });

  kernelTest('map-in-map through inner_map_idx: the outer map accepts a map like its template and returns its id', () => {
    withLoaded('map_in_map_kern.o', (o) => {
      const outer = o.map('outer_map');
      const inner = o.map('inner_template');
      expect(outer.spec.innerMap).toBe('inner_template');
      outer.set(0, inner.fd);
      expect(outer.get(0)!.readUInt32LE(0)).toBe(inner.id);
      // A map of another shape is refused: the template really was passed to the kernel.
      const odd = mapCreate({ mapType: 2, keySize: 4, valueSize: 16, maxEntries: 1 });
      try {
        expect(() => outer.set(1, odd)).toThrow(SysError);
      } finally {
        closeFd(odd);
      }
    });
  });

  kernelTest('global data: .data/.rodata hold their initial values, .rodata is frozen, subprograms are linked', () => {
    withLoaded('globals_kern.o', (o) => {
      expect(o.map('.data').get(0)!.readInt32LE(0)).toBe(7);
      expect(o.map('.rodata').get(0)!.readInt32LE(0)).toBe(3);
      expect(() => o.map('.rodata').set(0, Buffer.alloc(o.map('.rodata').valueSize))).toThrow(SysError);
      const prog = o.program('count_getpid');
      const relocated = relocateProgram(o.spec, prog.spec, { mapFd: () => 0, dataMapFd: () => 0 });
      expect(relocated.layout.map((l) => l.fn.name)).toEqual(['count_getpid', 'add']);
      expect(prog.info.xlatedProgLen).toBeGreaterThan(prog.spec.bytes.byteLength);
    });
  });

  kernelTest('map handles: get/set/delete/has, keys/entries, batched readAll equals entries()', () => {
    withLoaded('sockex3_kern.o', (o) => {
      const m = o.map('slot_hits');
      expect(m.get(1)).toBeUndefined();
      m.set(1, 10n);
      m.set(2, 20);
      expect(m.has(1)).toBe(true);
      expect(m.get(2)!.readBigUInt64LE(0)).toBe(20n);
      expect([...m.keys()].map((k) => k.readUInt32LE(0)).sort()).toEqual([1, 2]);
      expect(m.readAll(1).map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)]).sort()).toEqual([[1, 10n], [2, 20n]]);
      expect(m.delete(1)).toBe(true);
      expect(m.delete(1)).toBe(false);
      expect(() => m.set(Buffer.alloc(3), 1)).toThrow(MapHandleError);
    });
  });

  kernelTest('batched reads survive hash buckets bigger than the chunk (ENOSPC): every entry, once', () => {
    withLoaded('sockex3_kern.o', (o) => {
      const m = o.map('slot_hits');
      expect(m.spec.maxEntries).toBe(4096);
      for (let k = 0; k < 2000; k++) m.set(k, BigInt(k) * 3n);
      const read = m.readAll(1).map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)] as const);
      expect(read).toHaveLength(2000);
      expect(new Set(read.map(([k]) => k)).size).toBe(2000);
      expect(read.every(([k, v]) => v === BigInt(k) * 3n)).toBe(true);
      const raw = m.readAllRaw(2);
      expect(raw.count).toBe(2000);
    }, { fixupMap: (f) => { if (f.name === 'slot_hits') f.def.maxEntries = 4096; } });
  });

  kernelTest('per-CPU maps: one value per possible CPU', () => {
    withLoaded('xdp1_kern.o', (o) => {
      const m = o.map('rxcnt');
      expect(m.perCpu).toBe(true);
      m.set(17, 5);
      const parts = m.perCpuValues(m.get(17)!);
      expect(parts).toHaveLength(m.cpus);
      expect(parts.every((p) => p.readBigUInt64LE(0) === 5n)).toBe(true);
    });
  });

  kernelTest('fixupMap can resize a map or hand in an existing one (bpf_load.c load_bpf_file_fixup_map)', () => {
    const existing = mapCreate({ mapType: 2, keySize: 4, valueSize: 8, maxEntries: 256, mapName: 'outside' });
    try {
      withLoaded('sockex3_kern.o', (o) => {
        expect(o.map('slot_hits').spec.maxEntries).toBe(64);
      }, { fixupMap: (m) => { if (m.name === 'slot_hits') m.def.maxEntries = 64; } });
      withLoaded('sockex1_kern.o', (o) => {
        expect(o.map('my_map').fd).toBe(existing);
        expect(o.map('my_map').borrowed).toBe(true);
      }, { fixupMap: (m) => { m.fd = existing; } });
      // The hook's fd survives the object.
      expect(() => closeFd(existing)).not.toThrow();
    } catch (e) {
      closeFd(existing);
      throw e;
    }
  });

  kernelTest('a program the verifier rejects: VerifierError with a one-line summary and the full log; nothing leaks', () => {
    const before = openFdCount();
    let error: unknown;
    try {
      loadObject(spec('bad_verifier_kern.o'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VerifierError);
    const v = error as VerifierError;
    expect(v.message).toMatch(/^bad_verifier_kern\.o: program deref_without_null_check \(section socket\): verifier rejected it: R0 invalid mem access 'map_value_or_null' \(at insn 9\) \(EACCES, \d+ more log lines\)$/);
    expect(v.message).not.toContain('\n');
    expect(v.log).toContain('invalid mem access');
    expect(v.log.split('\n').length).toBeGreaterThan(5);
    expect(openFdCount()).toBe(before);
  });

  kernelTest('with BTF line info the summary names the source line the verifier stopped at', () => {
    let error: unknown;
    try {
      loadObject(spec('bad_verifier_kern.btf.o'));
    } catch (e) {
      error = e;
    }
    const v = error as VerifierError;
    expect(v).toBeInstanceOf(VerifierError);
    const source = readFileSync(join(SAMPLES_DIR, 'bad_verifier_kern.c'), 'utf8').split('\n');
    const line = source.findIndex((l) => l.includes('*value += skb->len')) + 1;
    expect(v.source).toEqual({ file: 'bad_verifier_kern.c', line, text: source[line - 1]!.trim() });
    expect(v.message).toContain(`(at insn 9, bad_verifier_kern.c:${line}: *value += skb->len;`);
    expect(v.message).not.toMatch(/--verbose|-v\b/);
  });

  kernelTest('a failure after maps were created closes them all', () => {
    const before = openFdCount();
    expect(() => loadObject(spec('bad_verifier_kern.o'), { logLevel: 2 })).toThrow(VerifierError);
    expect(() => loadObject(parseObject(readFileSync(join(SAMPLES_DIR, 'sockex1_kern.eb.o'))))).toThrow(LoadError);
    expect(openFdCount()).toBe(before);
  });
});

describe('kernel version', () => {
  kernelTest('kern_version defaults to the running kernel', () => {
    expect(runningKernelVersion('6.18.44-fc-v782')).toBe(0x0612_2c);
    expect(runningKernelVersion('5.4.300')).toBe(0x0504ff);
    expect(runningKernelVersion()).toBeGreaterThan(0x050000);
  });
});
