import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { corpusFiles, SAMPLES_DIR } from '../helpers/kernel.js';

/** The fuzzers' seeds: every committed sample object, and the shared corpus when present (skipped with a reason). */
export function fuzzSeeds(): Array<{ name: string; bytes: Uint8Array }> {
  const samples = readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).map((f) => join(SAMPLES_DIR, f));
  const corpus = corpusFiles('', (f) => f.endsWith('.o') || f.endsWith('.elf')) ?? [];
  return [...samples, ...corpus].map((path) => ({ name: basename(path), bytes: new Uint8Array(readFileSync(path)) }));
}
