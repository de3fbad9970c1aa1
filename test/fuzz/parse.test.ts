import { describe, expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { dumpChunks } from '../../src/cli/dump.js';
import { describeObject } from '../../src/object/describe.js';
import { parseObject } from '../../src/object/index.js';
import { judgeCase, mutator } from '../../bench/fuzz/mutator.mjs';
import { fuzzSeeds } from './seeds.js';

/**
 * The parser fuzz target (parse, then what --dump does: describe and render) at a fixed budget (CI): `npm run fuzz` runs the same target for as long as asked. Every case
 * must give a spec or a one-line BpfLoadError, leave its input unchanged, and finish within the bound (a hang or a
 * quadratic blow-up, not a benchmark: ordinary cases take a millisecond or two).
 */
const SEED = 0x0b9f_2026;
const CASES = 20_000;
const CASE_BOUND_MS = 2_000;

describe('parser fuzzing (fixed budget)', () => {
  it(`${CASES} mutated objects: a spec xor a typed one-line error, input unchanged, each within ${CASE_BOUND_MS} ms`, () => {
    const seeds = fuzzSeeds();
    const make = mutator(seeds, SEED);
    const findings: string[] = [];
    const outcomes = { spec: 0, error: 0 };
    for (let index = 0; index < CASES && findings.length < 5; index++) {
      const c = make(index);
      const j = judgeCase(c.bytes, {
        parse: (bytes) => parseObject(bytes, { name: c.source }),
        use: (spec) => {
          describeObject(spec);
          let text = 0;
          for (const chunk of dumpChunks(spec)) text += chunk.length;
          return text;
        },
        isTypedError: (e) => e instanceof BpfLoadError,
      });
      outcomes[j.outcome]++;
      const problem = j.problem ?? (j.ms > CASE_BOUND_MS ? `took ${j.ms.toFixed(0)} ms` : undefined);
      // Seed and index regenerate the case: `npm run fuzz -- --seed S --from I --cases 1`.
      if (problem !== undefined) findings.push(`case ${index} (seed ${SEED}, ${c.source}: ${c.mutations.join('; ')}): ${problem}\n${j.stack ?? ''}`);
    }
    expect(findings).toEqual([]);
    // Both outcomes occur, so the mutations reach past the first check and the target can fail either way.
    expect(outcomes.spec).toBeGreaterThan(CASES / 20);
    expect(outcomes.error).toBeGreaterThan(CASES / 20);
  }, 180_000);
});
