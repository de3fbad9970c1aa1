import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { loadObject, loadObjectAsync, VerifierError, type LoadedObject } from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec } from '../../src/object/index.js';
import { kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';

const spec = (name: string): BpfObjectSpec => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });

/** What a load produced, comparable between the two loaders: programs in order with their kernel tags, and skips. */
function summary(o: LoadedObject) {
  return {
    programs: o.programs.map((p) => [p.name, p.tag]),
    maps: o.maps.map((m) => m.name),
    skipped: o.skipped.map((s) => [s.spec.name, s.reason]),
  };
}

async function failureOf(load: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await load();
  } catch (e) {
    return e;
  }
  throw new Error('the load did not fail');
}

describe('loadObjectAsync: several programs in the verifier at once', () => {
  kernelTest('gives what loadObject gives: the same programs in the same order, the same tags, maps and skips', async () => {
    for (const name of ['all_kinds_kern.o', 'globals_kern.o', 'sockex3_kern.o', 'partial_kern.o']) {
      const s = spec(name);
      const warnings: string[][] = [[], []];
      const sync = loadObject(s, { onProgramError: 'skip', onWarning: (m) => warnings[0]!.push(m) });
      const before = openFdCount();
      const parallel = await loadObjectAsync(s, { onProgramError: 'skip', onWarning: (m) => warnings[1]!.push(m) });
      try {
        expect(parallel.programs.length, name).toBeGreaterThan(1);
        expect(summary(parallel), name).toEqual(summary(sync));
        expect(warnings[1], name).toEqual(warnings[0]);
      } finally {
        parallel.close();
        sync.close();
      }
      expect(openFdCount()).toBeLessThan(before);
    }
  });

  kernelTest('a refused program throws the VerifierError loadObject throws, and nothing is left open', async () => {
    const s = spec('partial_kern.o');
    const before = openFdCount();
    const sync = await failureOf(() => loadObject(s));
    const parallel = await failureOf(() => loadObjectAsync(s));
    expect(parallel).toBeInstanceOf(VerifierError);
    expect((parallel as VerifierError).message).toBe((sync as VerifierError).message);
    expect((parallel as VerifierError).log).toContain('invalid mem access');
    expect(openFdCount()).toBe(before);
  });

  kernelTest('a refusal while later programs are still in the verifier waits for them and closes what they made', async () => {
    const s = spec('partial_kern.o');
    // The refused program first: the good ones are loaded behind it, and are in flight when its failure is seen.
    const reordered: BpfObjectSpec = { ...s, programs: [s.programs.find((p) => p.name === 'rejected')!, ...s.programs.filter((p) => p.name !== 'rejected')] };
    const before = openFdCount();
    const error = await failureOf(() => loadObjectAsync(reordered));
    expect(error).toBeInstanceOf(VerifierError);
    expect((error as VerifierError).message).toMatch(/^partial_kern\.o: program rejected \(section [^)]+\): verifier rejected it: /);
    // good_a and good_b were in the verifier (or loaded) when the refusal was seen: their fds were closed too.
    expect(openFdCount()).toBe(before);
  });
});
