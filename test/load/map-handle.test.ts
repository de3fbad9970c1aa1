import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { loadObject, MapHandleError, type LoadedObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { mapLookupElem, SysArgumentError } from '../../src/sys/index.js';
import { kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';

/** sockex3_kern.o's slot_hits (a u32 → u64 hash) and xdp1_kern.o's rxcnt (per-CPU), closed however `fn` ends. */
function withMaps(fn: (hash: LoadedObject, perCpu: LoadedObject) => void): void {
  const before = openFdCount();
  const load = (name: string) => loadObject(parseObject(readFileSync(join(SAMPLES_DIR, name)), { name }));
  const hash = loadObject(parseObject(readFileSync(join(SAMPLES_DIR, 'sockex3_kern.o')), { name: 'sockex3_kern.o' }), {
    fixupMap: (f) => { if (f.name === 'slot_hits') f.def.maxEntries = 4096; },
  });
  try {
    const perCpu = load('xdp1_kern.o');
    try {
      fn(hash, perCpu);
    } finally {
      perCpu.close();
    }
  } finally {
    hash.close();
  }
  expect(openFdCount()).toBe(before);
}

describe('MapHandle lookups (the prepared per-map lookup)', () => {
  kernelTest('get() returns a Buffer of its own per call: later lookups leave earlier values as they were', () => {
    withMaps((o) => {
      const m = o.map('slot_hits');
      for (let k = 0; k < 3000; k++) m.set(k, BigInt(k) * 7n + 1n);
      // More values than one slab holds (16 KiB / 8 B): pieces of several slabs, each still its own.
      const values = Array.from({ length: 3000 }, (_, k) => m.get(k)!);
      expect(values.every((v, k) => v.length === 8 && v.readBigUInt64LE(0) === BigInt(k) * 7n + 1n)).toBe(true);
      expect(values.every((v) => Buffer.isBuffer(v))).toBe(true);
      values[0]!.writeBigUInt64LE(99n, 0); // writing one returned value touches no other, nor the map
      expect(values[1]!.readBigUInt64LE(0)).toBe(8n);
      expect(m.get(0)!.readBigUInt64LE(0)).toBe(1n);
      // The same answers through the bare system call, through Buffer keys, getInto and has.
      const key = Buffer.alloc(4);
      const out = Buffer.alloc(8);
      key.writeUInt32LE(2999, 0);
      expect(mapLookupElem(m.fd, key, out)).toBe(true);
      expect(out.readBigUInt64LE(0)).toBe(2999n * 7n + 1n);
      expect(m.get(key)!.readBigUInt64LE(0)).toBe(2999n * 7n + 1n);
      out.fill(0);
      expect(m.getInto(1234, out)).toBe(true);
      expect(out.readBigUInt64LE(0)).toBe(1234n * 7n + 1n);
      expect(m.has(1234)).toBe(true);
    });
  });

  kernelTest('absent keys: get() undefined, getInto() false with the output untouched, has() false; the next get() works', () => {
    withMaps((o) => {
      const m = o.map('slot_hits');
      m.set(5, 55n);
      const out = Buffer.alloc(8, 0xaa);
      expect(m.get(6)).toBeUndefined();
      expect(m.getInto(6, out)).toBe(false);
      expect(out).toEqual(Buffer.alloc(8, 0xaa));
      expect(m.has(6)).toBe(false);
      expect(m.get(5)!.readBigUInt64LE(0)).toBe(55n);
      expect(m.get(BigInt(5))!.readBigUInt64LE(0)).toBe(55n);
    });
  });

  kernelTest('per-CPU values come back whole (one slot per possible CPU) through get() and getInto()', () => {
    withMaps((_, o) => {
      const m = o.map('rxcnt');
      m.set(17, 5);
      m.set(18, 6);
      const a = m.get(17)!;
      const b = m.get(18)!;
      expect(a.length).toBe(m.valueBytes);
      expect(m.perCpuValues(a).every((p) => p.readBigUInt64LE(0) === 5n)).toBe(true);
      expect(m.perCpuValues(b).every((p) => p.readBigUInt64LE(0) === 6n)).toBe(true);
      const out = Buffer.alloc(m.valueBytes);
      expect(m.getInto(18, out)).toBe(true);
      expect(out).toEqual(b);
    });
  });

  kernelTest('bad keys, short output buffers and closed maps are typed errors naming the map', () => {
    let closedMap: ReturnType<LoadedObject['map']> | undefined;
    withMaps((o) => {
      const m = o.map('slot_hits');
      expect(() => m.get(Buffer.alloc(3))).toThrow(new MapHandleError('map slot_hits: key is 3 bytes, the map wants 4'));
      expect(() => m.get(2 ** 32)).toThrow(new MapHandleError('map slot_hits: key: 4294967296 does not fit 4 bytes'));
      expect(() => m.get(1.5)).toThrow(new MapHandleError('map slot_hits: key: 1.5 is not a whole number'));
      expect(() => m.has(Number.NaN)).toThrow(new MapHandleError('map slot_hits: key: NaN is not a whole number'));
      expect(() => m.getInto(1, Buffer.alloc(4))).toThrow(new MapHandleError('map slot_hits: output buffer of 4 bytes, values need 8'));
      closedMap = m;
    });
    expect(() => closedMap!.get(1)).toThrow(SysArgumentError);
    expect(() => closedMap!.get(1)).toThrow(/map slot_hits.*used after its fd was closed/);
  });
});
