/**
 * The formatter against llvm-objdump on real objects: every instruction of every executable section of our
 * c-samples and of the cilium corpus (both byte orders) must print exactly as llvm-objdump prints it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusFiles, findLlvmObjdump, SAMPLES_DIR } from '../helpers/kernel.js';
import { compareObject } from './objdump-oracle.js';

const OBJDUMP = findLlvmObjdump();
if (OBJDUMP === undefined) console.warn('llvm-objdump not installed: formatter agreement with llvm-objdump skipped');

function sampleObjects(): string[] {
  // c-samples is being populated by `make`; whatever objects are there are compared.
  return readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).sort().map((f) => join(SAMPLES_DIR, f));
}

const corpus = corpusFiles('cilium', (n) => n.endsWith('.o') || n.endsWith('.elf')) ?? [];
const totals = { objects: 0, compared: 0, matched: 0 };

describe.runIf(OBJDUMP !== undefined)('formatInsn agrees with llvm-objdump -d', () => {
  afterAll(() => {
    console.log(`objdump agreement: ${totals.objects} objects, ${totals.matched}/${totals.compared} instructions matched`);
  });

  const files = [...sampleObjects(), ...corpus];
  it('has objects to compare', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const path of files) {
    const label = path.startsWith(SAMPLES_DIR) ? `c-samples/${basename(path)}` : path.slice(path.indexOf('cilium/'));
    it(label, () => {
      const result = compareObject(OBJDUMP!, path, readFileSync(path), label);
      totals.objects++;
      totals.compared += result.compared;
      totals.matched += result.matched;
      expect(result.mismatches.slice(0, 20)).toEqual([]);
      expect(result.matched).toBe(result.compared);
    });
  }
});
