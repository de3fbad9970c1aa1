import { spawnSync } from 'node:child_process'; // sha1sum as an independent oracle for iproute2's object namespace, argument arrays only
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attachProgram, type Link } from '../../src/attach/index.js';
import { openObject } from '../../src/index.js';
import { progTypeName } from '../../src/base/uapi.js';
import { loadObject, VerifierError, type LoadedObject } from '../../src/load/index.js';
import { describeObject } from '../../src/object/describe.js';
import { parseObject, selectPrograms, type BpfObjectSpec, type ProgramTypes } from '../../src/object/index.js';
import { closeFd, mapCreate, mapInfo, mapLookupElem, objGet, objPin, progGetFdById, progInfo } from '../../src/sys/index.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';
import { expectedTag } from '../helpers/tags.js';
import { udpToSelf } from '../helpers/traffic.js';

const BPFFS = '/sys/fs/bpf';

const spec = (name: string, programTypes?: ProgramTypes): BpfObjectSpec =>
  parseObject(readFileSync(join(SAMPLES_DIR, name)), { name, programTypes });

/** A fresh pin root of this test run on bpffs, removed afterwards with everything in it. */
function pinRoot(): { dir: string; cleanup: () => void } {
  if (!existsSync(BPFFS)) throw new Error(`${BPFFS} is missing`);
  const dir = mkdtempSync(join(BPFFS, `bpf-load-lineages-${process.pid}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

/** The ids of programs and maps a loaded object holds, to prove after close that the kernel let them go. */
function expectReleased(o: LoadedObject, fdsBefore: number, heldElsewhere: readonly string[] = []): void {
  const ids = o.programs.filter((p) => !heldElsewhere.includes(p.name)).map((p) => p.id);
  o.close();
  expect(openFdCount()).toBe(fdsBefore);
  for (const id of ids) expect(eventually(() => !programExists(id)), `program ${id} still exists`).toBe(true);
}

describe('legacy map fixups (fixups_kern.o)', () => {
  it('map-in-maps declared with value size 0 get 4, as bpf_load.c created them', () => {
    const s = spec('fixups_kern.o');
    const sizes = Object.fromEntries(s.maps.map((m) => [m.name, [m.typeName, m.valueSize, m.innerMap ?? null]]));
    expect(sizes).toEqual({
      inner_template: ['array', 8, null], array_outer: ['array_of_maps', 4, 'inner_template'],
      hash_outer: ['hash_of_maps', 4, 'inner_template'], sized_later: ['hash', 8, null],
    });
    // The file says 0: the definition bytes are untouched.
    expect(Buffer.from(s.maps[1]!.definition).readUInt32LE(8)).toBe(0);
  });

  kernelTest('max_entries 0 reaching the kernel names the map and how to set it', () => {
    const before = openFdCount();
    expect(() => loadObject(spec('fixups_kern.o'))).toThrow(
      /fixups_kern\.o: map sized_later: max_entries is 0, which the object's own loader sets at run time: set it \(CLI --max-entries sized_later=N, library fixupMap\)/);
    expect(openFdCount()).toBe(before);
  });

  kernelTest('with the fixup, every map reaches the kernel as bpf_load.c made it; the inner maps count getpid()', () => {
    const before = openFdCount();
    const o = loadObject(spec('fixups_kern.o'), { fixupMap: (m) => { if (m.name === 'sized_later') m.def.maxEntries = 16; } });
    try {
      const fromKernel = (name: string) => mapInfo(o.map(name).fd);
      expect(fromKernel('sized_later')).toMatchObject({ maxEntries: 16, valueSize: 8 });
      expect(fromKernel('array_outer')).toMatchObject({ valueSize: 4, maxEntries: 2 });
      expect(fromKernel('hash_outer')).toMatchObject({ valueSize: 4, maxEntries: 8 });
      const inner = mapCreate({ mapType: 2, keySize: 4, valueSize: 8, maxEntries: 1 });
      let link: Link | undefined;
      try {
        o.map('array_outer').set(0, u32(inner));
        o.map('hash_outer').set(7, u32(inner));
        // The caller owns a link made through attachProgram: detached below, before the object closes.
        link = attachProgram(o, o.program('count_getpid'), {});
        const child = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
        expect(child.status).toBe(0);
        // The same inner map sits in both outer maps: each getpid() adds 2 to its [0].
        const innerId = mapInfo(inner).id;
        expect(o.map('array_outer').get(0)!.readUInt32LE(0)).toBe(innerId);
        expect(o.map('hash_outer').get(7)!.readUInt32LE(0)).toBe(innerId);
        const value = Buffer.alloc(8);
        expect(mapLookupElem(inner, u32(0), value)).toBe(true);
        expect(value.readBigUInt64LE(0), 'both outer maps reached the inner map').toBeGreaterThanOrEqual(2n);
        expect(o.map('sized_later').get(child.pid!)?.readBigUInt64LE(0)).toBeGreaterThanOrEqual(1n);
      } finally {
        link?.detach();
        closeFd(inner);
      }
    } finally {
      expectReleased(o, before);
    }
  });
});

describe('iproute2 objects (iproute2_kern.o)', () => {
  it('parse: freely named sections have no type until the user gives one; `ID/KEY` sections are tail calls by map id', () => {
    const plain = spec('iproute2_kern.o');
    expect(plain.programs.map((p) => [p.section, p.type, p.tailCallMapId ?? null, p.tailCallSlot ?? null])).toEqual([
      ['ingress', 'unspecified', null, null], ['1/1', 'unspecified', 1, 1], ['egress_mark', 'unspecified', null, null],
    ]);
    const typed = spec('iproute2_kern.o', { default: 'sched_cls', sections: { egress_mark: 'tc/egress' } });
    expect(typed.programs.map((p) => [p.name, p.type, p.attach, p.expectedAttachType ?? null, p.typeSource])).toEqual([
      ['cls_ingress', 'sched_cls', 'tc', null, 'user'], ['tail_one', 'sched_cls', 'tc', null, 'user'],
      ['cls_egress', 'sched_cls', 'tc', 'tcx_egress', 'user'],
    ]);
    expect(typed.maps.map((m) => [m.name, m.section, m.pinning, m.iproute2, m.innerMap ?? null])).toEqual([
      ['jmp_table', 'maps', 'object_ns', { id: 1, innerId: 0, innerIdx: 0 }, null],
      ['counts', 'maps', 'global_ns', { id: 0, innerId: 0, innerIdx: 0 }, null],
      ['inner_counts', 'maps', 'none', { id: 2, innerId: 0, innerIdx: 1 }, null],
      ['outer', 'maps', 'none', { id: 0, innerId: 2, innerIdx: 0 }, 'inner_counts'],
      ['seen', 'maps/extra', 'none', { id: 0, innerId: 0, innerIdx: 0 }, null],
    ]);
  });

  it('parse: unknown type names and sections are the caller\'s mistake, said with the accepted names', () => {
    expect(() => spec('iproute2_kern.o', { default: 'sched_classifier' })).toThrow(
      /iproute2_kern\.o: program type: unknown program type "sched_classifier" \(known: socket_filter, sched_cls, sched_act, xdp, .*lwt_in.*\)/);
    expect(() => spec('iproute2_kern.o', { sections: { egress: 'xdp' } })).toThrow(
      'iproute2_kern.o: program type for section "egress": no such program section (sections: ingress, 1/1, egress_mark)');
  });

  kernelTest('loads as tc would: pins where iproute2 puts them, reused next time; tail call and map-in-map filled; counts lo traffic', async () => {
    const pins = pinRoot();
    const before = openFdCount();
    const file = join(SAMPLES_DIR, 'iproute2_kern.o');
    const s = spec('iproute2_kern.o', { default: 'sched_cls' });
    try {
      const o = loadObject(s, { pinRoot: pins.dir });
      let jmpTableId: number;
      let tailId: number;
      let link: Link | undefined;
      try {
        // Types and tags from the kernel; tags computed here from the file's instructions.
        for (const p of o.programs) {
          const fd = progGetFdById(p.id);
          try {
            const info = progInfo(fd);
            expect(progTypeName(info.type), p.name).toBe('sched_cls');
            expect(info.tag, p.name).toBe(expectedTag(s, p.name));
          } finally {
            closeFd(fd);
          }
        }
        // The object namespace is named by the file's SHA-1: sha1sum says which.
        const sum = spawnSync('sha1sum', [file], { encoding: 'utf8' });
        expect(sum.status, sum.stderr).toBe(0);
        const objectDir = join(pins.dir, 'tc', sum.stdout.split(' ')[0]!);
        expect(existsSync(join(objectDir, 'jmp_table'))).toBe(true);
        expect(existsSync(join(pins.dir, 'tc', 'globals', 'counts'))).toBe(true);
        expect(existsSync(join(objectDir, 'counts')) || existsSync(join(pins.dir, 'tc', 'globals', 'jmp_table'))).toBe(false);
        // tail_one sits in jmp_table (id 1) at key 1; inner_counts (id 2, inner_idx 1) in outer[1].
        expect(o.map('jmp_table').get(1)!.readUInt32LE(0)).toBe(o.program('tail_one').id);
        expect(o.map('outer').get(1)!.readUInt32LE(0)).toBe(o.map('inner_counts').id);
        expect(o.map('outer').get(0)).toBeUndefined();
        jmpTableId = o.map('jmp_table').id;
        tailId = o.program('tail_one').id;

        link = attachProgram(o, o.program('cls_ingress'), { iface: 'lo' });
        const counted = (map: string, key: number) => o.map(map).get(key)!.readBigUInt64LE(0);
        const start = [counted('counts', 0), counted('counts', 1), counted('inner_counts', 0)];
        await udpToSelf(10, 77);
        // UDP over lo: each datagram passes lo's ingress once (other traffic on lo only adds).
        expect(counted('counts', 0) - start[0]!).toBeGreaterThanOrEqual(10n);
        expect(counted('counts', 1) - start[1]!, 'the tail call ran').toBeGreaterThanOrEqual(10n);
        expect(counted('inner_counts', 0) - start[2]!, 'outer[1] is inner_counts').toBeGreaterThanOrEqual(10n);
        // 77 bytes of payload + 8 UDP + 20 IP + 14 Ethernet.
        expect(o.map('seen').get(119)!.readBigUInt64LE(0)).toBeGreaterThanOrEqual(10n);
      } finally {
        link?.detach();
        // The pinned prog array keeps tail_one alive (as with iproute2) until the pin goes.
        expectReleased(o, before, ['tail_one']);
      }
      expect(programExists(tailId)).toBe(true);

      // Pinned maps outlive the process that made them, and the next load uses them.
      const again = loadObject(s, { pinRoot: pins.dir });
      try {
        expect(again.map('jmp_table').id).toBe(jmpTableId);
        expect(again.map('counts').get(0)!.readBigUInt64LE(0)).toBeGreaterThanOrEqual(10n);
      } finally {
        again.close();
      }

      // A different map under the same global name: refused, both definitions named.
      rmSync(join(pins.dir, 'tc', 'globals', 'counts'));
      const odd = mapCreate({ mapType: 2, keySize: 4, valueSize: 4, maxEntries: 2 });
      try {
        objPin(odd, join(pins.dir, 'tc', 'globals', 'counts'));
      } finally {
        closeFd(odd);
      }
      expect(() => loadObject(s, { pinRoot: pins.dir })).toThrow(
        `iproute2_kern.o: map counts: pinned at ${pins.dir}/tc/globals/counts: the pinned map is incompatible: value_size is 4, the object wants 8 ` +
        '(pinned: type array, key_size 4, value_size 4, max_entries 2, map_flags 0; object: type array, key_size 4, value_size 8, max_entries 2, map_flags 0)');
      expect(openFdCount()).toBe(before);
      pins.cleanup();
      expect(eventually(() => !programExists(tailId)), 'tail_one outlived its pinned prog array').toBe(true);
    } finally {
      pins.cleanup();
    }
  }, 20_000);

  kernelTest('openObject takes programTypes beside the load options', () => {
    const o = openObject(join(SAMPLES_DIR, 'iproute2_kern.o'), { programTypes: { default: 'sched_cls' }, programs: ['cls_egress'] });
    try {
      expect(o.programs.map((p) => [p.name, p.type])).toEqual([['cls_egress', 'sched_cls']]);
      expect(o.maps).toEqual([]);
    } finally {
      o.close();
    }
  });

  kernelTest('without a type, the freely named sections are skipped and say how to give one', () => {
    const pins = pinRoot();
    const warnings: string[] = [];
    try {
      const o = loadObject(spec('iproute2_kern.o'), { pinRoot: pins.dir, onWarning: (m) => warnings.push(m) });
      try {
        expect(o.programs).toEqual([]);
        expect(o.skipped.map((x) => x.reason)).toEqual([
          'section ingress names no known program type (give one: CLI --type, library programTypes)',
          'section 1/1 names no known program type (give one: CLI --type, library programTypes)',
          'section egress_mark names no known program type (give one: CLI --type, library programTypes)',
        ]);
      } finally {
        o.close();
      }
    } finally {
      pins.cleanup();
    }
  });
});

describe('per-program control (partial_kern.o)', () => {
  kernelTest('programs: only good_a, the code it calls and the maps it uses', () => {
    const before = openFdCount();
    const o = loadObject(spec('partial_kern.o'), { programs: ['good_a'] });
    try {
      expect(o.programs.map((p) => p.name)).toEqual(['good_a']);
      expect(o.maps.map((m) => m.name)).toEqual(['hits']);
      expect(o.skipped).toEqual([]);
    } finally {
      expectReleased(o, before);
    }
    expect(() => loadObject(spec('partial_kern.o'), { programs: ['nope'] })).toThrow(
      'partial_kern.o: no program named nope (programs: good_a, good_b, rejected)');
  });

  it('selection follows calls into subprograms and global data to exactly the maps used', () => {
    const s = spec('globals_kern.o');
    const pick = (name: string) => [...selectPrograms(s, [name]).maps].sort();
    expect(pick('count_getpid')).toEqual(['.bss']);
    expect(pick('keep_prefix')).toEqual(['.data', '.rodata']);
    // iproute2: a tail-call section brings the prog array it goes into; a map-in-map the maps that fill it.
    const ip = spec('iproute2_kern.o', { default: 'sched_cls' });
    expect([...selectPrograms(ip, ['tail_one']).maps].sort()).toEqual(['counts', 'inner_counts', 'jmp_table', 'outer', 'seen']);
    expect([...selectPrograms(ip, ['1/1']).programs].map((p) => p.name)).toEqual(['tail_one']);
  });

  kernelTest('programs: a program calling a subprogram loads with it; its data maps only', () => {
    const o = loadObject(spec('globals_kern.o'), { programs: ['count_getpid'] });
    try {
      expect(o.programs.map((p) => p.name)).toEqual(['count_getpid']);
      expect(o.maps.map((m) => m.name)).toEqual(['.bss']);
    } finally {
      o.close();
    }
  });

  kernelTest('onProgramError skip: what the verifier accepts loads, the refusal is reported with the verifier\'s reason', () => {
    const before = openFdCount();
    const o = loadObject(spec('partial_kern.o'), { onProgramError: 'skip' });
    try {
      expect(o.programs.map((p) => p.name)).toEqual(['good_a', 'good_b']);
      expect(o.skipped.map((x) => x.spec.name)).toEqual(['rejected']);
      expect(o.skipped[0]!.error).toBeInstanceOf(VerifierError);
      expect(o.skipped[0]!.reason).toMatch(/rejected.*invalid mem access 'map_value_or_null'/);
    } finally {
      expectReleased(o, before);
    }
    expect(() => loadObject(spec('partial_kern.o'))).toThrow(VerifierError);
    expect(openFdCount()).toBe(before);
  });
});

describe('old compilers: e_machine EM_NONE', () => {
  const emNone = () => {
    const bytes = Buffer.from(readFileSync(join(SAMPLES_DIR, 'sockex1_kern.o')));
    expect(bytes.readUInt16LE(18)).toBe(247);
    bytes.writeUInt16LE(0, 18);
    return bytes;
  };

  it('parses and dumps with machine "none"', () => {
    const s = parseObject(emNone(), { name: 'em_none.o' });
    expect(s.machine).toBe(0);
    expect(describeObject(s).machine).toBe('none');
    expect(s.programs.map((p) => [p.name, p.type])).toEqual([['bpf_prog1', 'socket_filter']]);
  });

  kernelTest('loads: same program, same tag as the EM_BPF original', () => {
    const s = parseObject(emNone(), { name: 'em_none.o' });
    const o = loadObject(s);
    try {
      expect(o.program('bpf_prog1').tag).toBe(expectedTag(spec('sockex1_kern.o'), 'bpf_prog1'));
    } finally {
      o.close();
    }
  });
});

/** Where each legacy map definition starts in the file (its spec holds a view into the bytes it was parsed from). */
function definitionOffsets(bytes: Buffer): (map: string) => number {
  const s = parseObject(bytes, { name: 'x.o' });
  return (map) => s.maps.find((x) => x.name === map)!.definition.byteOffset - bytes.byteOffset;
}

describe('inspection never refuses for load-time policy', () => {
  it('an unresolved inner_id and an unknown pinning value are shown as notes instead of failing inspection', () => {
    // A copy of iproute2_kern.o whose outer map's inner_id names no map (3) and whose counts map has pinning 9.
    const bytes = Buffer.from(readFileSync(join(SAMPLES_DIR, 'iproute2_kern.o')));
    const at = definitionOffsets(bytes);
    bytes.writeUInt32LE(3, at('outer') + 28);
    bytes.writeUInt32LE(9, at('counts') + 24);
    const s = parseObject(bytes, { name: 'x.o', programTypes: { default: 'sched_cls' } });
    const dump = describeObject(s);
    expect(dump.maps.find((m) => m.name === 'outer')!.notes).toEqual(['inner_id 3 is the id of no map: loading refuses it']);
    expect(dump.maps.find((m) => m.name === 'counts')!.notes).toEqual(['pinning 9 is no convention bpf-load knows: loading creates it unpinned']);
    expect(s.maps.find((m) => m.name === 'counts')!.pinning).toBe('unknown(9)');
  });

  kernelTest('loading names both: the unknown pinning in a warning (map unpinned), the unresolved inner_id as the error', () => {
    const bytes = Buffer.from(readFileSync(join(SAMPLES_DIR, 'iproute2_kern.o')));
    const offsetOf = definitionOffsets(bytes);
    const pins = pinRoot();
    try {
      const badPin = Buffer.from(bytes);
      badPin.writeUInt32LE(9, offsetOf('counts') + 24);
      const warnings: string[] = [];
      const o = loadObject(parseObject(badPin, { name: 'x.o', programTypes: { default: 'sched_cls' } }), { pinRoot: pins.dir, onWarning: (w) => warnings.push(w) });
      try {
        expect(o.programs.map((p) => p.name)).toEqual(['cls_ingress', 'tail_one', 'cls_egress']);
        expect(warnings).toEqual(['x.o: map counts: pinning 9 is no convention bpf-load knows (0 none, 1 object namespace, 2 global namespace); the map is created unpinned']);
        expect(existsSync(join(pins.dir, 'tc', 'globals', 'counts'))).toBe(false);
      } finally {
        o.close();
      }
      const badInner = Buffer.from(bytes);
      badInner.writeUInt32LE(3, offsetOf('outer') + 28);
      expect(() => loadObject(parseObject(badInner, { name: 'x.o' }), { pinRoot: pins.dir })).toThrow(
        'x.o: map outer: a map-in-map needs an inner map to take its shape from: its inner_id 3 is the id of no map in the object');
    } finally {
      pins.cleanup();
    }
  });
});

describe('tc (iproute2 on libbpf) as the oracle for what it can load', () => {
  /** Runs a system tool (ip, tc, mount) with an argument array; its failure fails the test with its stderr. */
  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  kernelTest('tc_modern_kern.o: tc and bpf-load share the pin tc makes (tc/globals), and the kernel gives both the same tag', () => {
    // A private bpffs (TC_BPF_MNT) and a veth pair of our own: nothing shared is touched.
    const mnt = mkdtempSync(join('/tmp', `bpf-load-tc-oracle-${process.pid}-`));
    const dev = `bl9o-${process.pid % 100000}`;
    run('mount', ['-t', 'bpf', 'bpf', mnt]);
    try {
      run('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]);
      try {
        run('tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
        run('tc', ['filter', 'add', 'dev', dev, 'ingress', 'bpf', 'da', 'obj', join(SAMPLES_DIR, 'tc_modern_kern.o'), 'sec', 'ingress'], { ...process.env, TC_BPF_MNT: mnt });
        const shown = run('tc', ['filter', 'show', 'dev', dev, 'ingress']);
        const theirTag = /name count_packets tag ([0-9a-f]{16})/.exec(shown)?.[1];
        expect(theirTag, shown).toBeDefined();
        const pin = join(mnt, 'tc', 'globals', 'packets');
        expect(existsSync(pin), 'tc pins BTF maps by name under <bpffs>/tc/globals').toBe(true);
        const pinnedFd = objGet(pin);
        let pinnedId: number;
        try {
          pinnedId = mapInfo(pinnedFd).id;
        } finally {
          closeFd(pinnedFd);
        }
        const o = loadObject(spec('tc_modern_kern.o', { default: 'sched_cls' }), { pinRoot: join(mnt, 'tc', 'globals') });
        try {
          expect(o.map('packets').id, 'bpf-load reuses the map tc pinned').toBe(pinnedId);
          expect(o.program('count_packets').tag).toBe(theirTag);
          expect(progTypeName(progInfo(o.program('count_packets').fd).type)).toBe('sched_cls');
        } finally {
          o.close();
        }
      } finally {
        run('ip', ['link', 'del', dev]);
      }
    } finally {
      run('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
