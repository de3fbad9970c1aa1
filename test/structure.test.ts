/**
 * The source tree keeps its shape (CONTRIBUTING): each layer imports only from layers before it, no import cycles
 * (type-only imports count), only src/sys touches koffi, no file over 500 lines, and no function over 80 lines
 * without a `// Long: <reason>` comment just above it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cyclesOf, functionsOf, importsOf, SRC, sourceFiles } from './helpers/source-shape.js';

/** The pipeline, in order (CONTRIBUTING.md); index.ts at the top sees everything. */
const LAYERS = ['base', 'elf', 'btf', 'insn', 'cbpf', 'pcap', 'object', 'sys', 'load', 'attach', 'gen', 'compat', 'cli', 'index.ts'] as const;
const MAX_FILE_LINES = 500;
const MAX_FUNCTION_LINES = 80;
/** Files over the limit while someone splits them, with why; an entry that no longer applies fails the test. */
const LONG_FILES: Readonly<Record<string, string>> = {};

const files = sourceFiles();
const layerOf = (file: string): number => {
  const layer = LAYERS.indexOf(file.split('/')[0] as (typeof LAYERS)[number]);
  if (layer < 0) throw new Error(`src/${file}: in no layer of ${LAYERS.join(', ')} (add its folder to LAYERS and CONTRIBUTING)`);
  return layer;
};
const imports = new Map(files.map((f) => [f, importsOf(f)]));

describe('source structure', () => {
  it('reads type-only imports and re-exports as edges, and finds cycles through them', () => {
    expect(importsOf('btf/fixups.ts')).toContainEqual({ target: 'btf/btf.ts', typeOnly: true });
    expect(importsOf('btf/index.ts')).toContainEqual({ target: 'btf/parse.ts', typeOnly: false });
    expect(cyclesOf(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
    expect(cyclesOf(new Map([['a', ['a']]]))).toEqual([['a']]);
    expect(cyclesOf(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('each layer imports only from itself and the layers before it (type-only imports included)', () => {
    const against: string[] = [];
    for (const [file, list] of imports) {
      for (const i of list) {
        if (!i.target.endsWith('.ts')) continue;
        if (layerOf(i.target) > layerOf(file)) against.push(`src/${file} → src/${i.target}${i.typeOnly ? ' (type-only)' : ''}`);
      }
    }
    expect(against).toEqual([]);
  });

  it('has no import cycles between files, type-only imports included', () => {
    const graph = new Map([...imports].map(([f, list]) => [f, list.filter((i) => i.target.endsWith('.ts')).map((i) => i.target)]));
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('only src/sys imports koffi', () => {
    const users = [...imports].filter(([, list]) => list.some((i) => i.target === 'koffi')).map(([f]) => f);
    expect(users.length).toBeGreaterThan(0);
    expect(users.filter((f) => !f.startsWith('sys/'))).toEqual([]);
  });

  it(`no file is over ${MAX_FILE_LINES} lines (the ones being split are listed with why)`, () => {
    const lines = (f: string) => readFileSync(join(SRC, f), 'utf8').split('\n').length;
    const over = files.filter((f) => lines(f) > MAX_FILE_LINES);
    expect(over.filter((f) => LONG_FILES[f] === undefined).map((f) => `src/${f}: ${lines(f)} lines`)).toEqual([]);
    // A listed file that is back under the limit (or gone) comes off the list.
    expect(Object.keys(LONG_FILES).filter((f) => !over.includes(f))).toEqual([]);
  });

  it(`no function is over ${MAX_FUNCTION_LINES} lines without a "// Long: <reason>" comment above it`, () => {
    const unexplained = files.flatMap(functionsOf)
      .filter((f) => f.lines > MAX_FUNCTION_LINES && !/\/\/ Long: \S/.test(f.leadingComment))
      .map((f) => `src/${f.file}:${f.line} ${f.name}: ${f.lines} lines`);
    expect(unexplained).toEqual([]);
  });
});
