import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { listMaps, listPrograms } from '../../src/load/inspect.js';
import { kernelObjectName } from '../../src/load/kernel-facts.js';
import { loadObject, VerifierError } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { mutator } from '../../bench/fuzz/mutator.mjs';
import { bpffsTempDir, eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';

/**
 * The load path, fuzzed against the real kernel: sample objects with boundary and small values written into their
 * instructions, relocation entries and map definitions, then parsed and loaded. Every case must end in a loaded
 * object (closed at once) or a one-line BpfLoadError, every VerifierError must carry the kernel's log, and afterwards
 * nothing of ours may remain: no fd, no pin, no program or map in the kernel.
 */
const SEED = 0x10ad_2026;
const CASES = 1_500;
const SEED_FILES = ['sockex1_kern.o', 'sockex1_modern_kern.o', 'sockex3_kern.o', 'xdp1_kern.o', 'countmap_kern.o', 'globals_kern.o', 'map_in_map_kern.o'];

describe('load-path fuzzing against the kernel (fixed budget)', () => {
  kernelTest(`${CASES} mutated loads: a loaded object or a typed one-line error; nothing left behind`, async () => {
    const seeds = SEED_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(SAMPLES_DIR, name))) }));
    // What our objects are called in the kernel, to find any of them left over among everyone else's.
    const ourNames = new Set<string>();
    for (const s of seeds) {
      const spec = parseObject(s.bytes, { name: s.name });
      for (const p of spec.programs) ourNames.add(kernelObjectName(p.name));
      for (const m of spec.maps) ourNames.add(kernelObjectName(m.name));
    }
    const lastProgram = listPrograms().reduce((max, p) => Math.max(max, p.id), 0);
    const lastMap = listMaps().reduce((max, m) => Math.max(max, m.id), 0);
    const pinRoot = bpffsTempDir('bpf-load-fuzz-');
    const fds = openFdCount();
    const make = mutator(seeds, SEED, { groups: ['instruction', 'relocation', 'map definition'] });
    const findings: string[] = [];
    const outcomes = { loaded: 0, parseError: 0, loadError: 0, verifier: 0 };
    try {
      for (let index = 0; index < CASES && findings.length < 5; index++) {
        const c = make(index);
        const label = `case ${index} (${c.source}: ${c.mutations.join('; ')})`;
        let spec;
        try {
          spec = parseObject(c.bytes, { name: c.source });
        } catch (e) {
          if (!(e instanceof BpfLoadError)) findings.push(`${label}: parse threw ${String(e)}`);
          outcomes.parseError++;
          continue;
        }
        try {
          loadObject(spec, { pinRoot }).close();
          outcomes.loaded++;
        } catch (e) {
          if (!(e instanceof BpfLoadError)) findings.push(`${label}: load threw ${e instanceof Error ? e.stack : String(e)}`);
          else if (/[\n\r]/.test(e.message)) findings.push(`${label}: message is not one line: ${JSON.stringify(e.message)}`);
          else if (e instanceof VerifierError && e.log.trim() === '') findings.push(`${label}: VerifierError without a log: ${e.message}`);
          if (e instanceof VerifierError || (e instanceof BpfLoadError && e.cause instanceof VerifierError)) outcomes.verifier++;
          else outcomes.loadError++;
        }
      }
      expect(findings).toEqual([]);
      // Every outcome occurs, so the mutations reach the loader and the verifier.
      expect(outcomes.loaded).toBeGreaterThan(0);
      expect(outcomes.loadError).toBeGreaterThan(0);
      expect(outcomes.verifier).toBeGreaterThan(0);
      expect(openFdCount()).toBe(fds);
      expect(readdirSync(pinRoot)).toEqual([]);
      // The kernel frees programs and maps asynchronously once their last fd is closed.
      const ours = () => [
        ...listPrograms().filter((p) => p.id > lastProgram && ourNames.has(p.name)).map((p) => `program ${p.id} ${p.name}`),
        ...listMaps().filter((m) => m.id > lastMap && ourNames.has(m.name)).map((m) => `map ${m.id} ${m.name}`),
      ];
      eventually(() => ours().length === 0, 10_000);
      expect(ours()).toEqual([]);
    } finally {
      rmSync(pinRoot, { recursive: true, force: true });
    }
  }, 300_000);
});
