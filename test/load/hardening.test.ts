import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { loadObject, LoadError } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { btfMaps } from '../../bench/crafted.mjs';
import { bpffsTempDir, kernelTest, openFdCount } from '../helpers/kernel.js';
import { oneLineError, reproTest } from '../helpers/repro.js';

describe('repro inputs at load: typed errors before anything is allocated or created', () => {
  reproTest('bss-4GiB.o', 'a 4 GiB .bss is a LoadError naming the section; no map is created', (path) => {
    const before = openFdCount();
    const e = oneLineError(() => loadObject(parseObject(readFileSync(path), { name: 'bss-4GiB.o' })), LoadError);
    expect(e.message).toBe('bss-4GiB.o: map .bss: value_size 4294967312 does not fit the kernel\'s 32 bits');
    expect(openFdCount()).toBe(before);
  }, { needsKernel: true });

  reproTest('kconfig-min.o', 'a .kconfig extern of 4 GiB is a LoadError naming the extern', (path) => {
    const before = openFdCount();
    const e = oneLineError(() => loadObject(parseObject(readFileSync(path), { name: 'kconfig-min.o' })), LoadError);
    expect(e.message).toMatch(/^kconfig-min\.o: extern CONFIG_\w+ \(\.kconfig\): the \.kconfig area grows to \d+ bytes; a map value holds at most 4294967295$/);
    expect(openFdCount()).toBe(before);
  }, { needsKernel: true });
});

describe('a failed load unpins what it pinned, and only that', () => {
  const spec = parseObject(btfMaps(2, { pinByName: true, prefix: `w10pin_${process.pid}_` }), { name: 'pins.o' });
  const [first, second] = spec.maps.map((m) => m.name) as [string, string];
  /** Map creation of the second map fails (an unknown map type), after the first was created and pinned. */
  const breakSecond = { fixupMap: (f: { name: string; def: { type: number } }) => { if (f.name === second) f.def.type = 9999; } };

  kernelTest('pins this load made are removed; pins that were there before stay', () => {
    const dir = bpffsTempDir('bpf-load-w10-');
    try {
      const before = openFdCount();
      expect(() => loadObject(spec, { pinRoot: dir, ...breakSecond })).toThrow(new RegExp(`map ${second}: .*EINVAL`));
      expect(readdirSync(dir)).toEqual([]);
      expect(openFdCount()).toBe(before);

      // Now both pinned by a load that worked; a failing load reuses them and must leave them.
      loadObject(spec, { pinRoot: dir }).close();
      expect(readdirSync(dir).sort()).toEqual([first, second].sort());
      expect(() => loadObject(spec, { pinRoot: dir, ...breakSecond })).toThrow(/the pinned map is incompatible: type is 2, the object wants 9999/);
      expect(readdirSync(dir).sort()).toEqual([first, second].sort());

      // Only the second pinned before: the first is this load's to remove, the second stays.
      rmSync(join(dir, first));
      expect(() => loadObject(spec, { pinRoot: dir, ...breakSecond })).toThrow(/incompatible/);
      expect([existsSync(join(dir, first)), existsSync(join(dir, second))]).toEqual([false, true]);
      expect(openFdCount()).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
