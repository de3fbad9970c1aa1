import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The package as users import it: its own name resolves through package.json "exports" to the built dist/ (npm test
// builds first), so a name missing from the explicit export list fails here.
const api = await import('bpf-load') as Record<string, unknown>;
const compat = await import('bpf-load/compat') as Record<string, unknown>;

/** Every class in src/ that extends BpfLoadError (directly or through another error class). */
function errorClassesInSource(): string[] {
  const names: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/^export class (\w+) extends (\w+Error)\b/gm)) names.push(m[1]!);
      }
    }
  };
  walk(new URL('../src', import.meta.url).pathname);
  return names;
}

describe('public API', () => {
  it('exports every documented name of the library', () => {
    const documented = [
      'openObject', 'BpfObject', 'parseObject', 'loadObject', 'loadObjectAsync', 'LoadedObject', 'MapHandle', 'VariableHandle', 'attachProgram',
      'attachAll', 'pinObject', 'readElf', 'parseBtf', 'describeObject', 'decodeInsns', 'formatInsn', 'matchSection',
      'SECTION_DEFS', 'readTracePipe', 'mapTypeTraits', 'ATTACHABLE_KINDS', 'MAP_TYPE_NAMES', 'PROG_TYPE_NAMES',
      'EventReader', 'openRingBuffer', 'openPerfBuffer', 'openEvents', 'testRunProgram', 'testRunProgramInto', 'attachUprobe', 'readExecutable',
    ];
    expect(documented.filter((name) => api[name] === undefined)).toEqual([]);
  });

  it('exports the bpf_load.c facade', () => {
    const documented = [
      'loadBpfFile', 'closeBpfFile', 'bpfLogBuf', 'progFd', 'mapFd', 'mapData', 'eventFd', 'readTracePipe', 'openRawSock',
      'attachSocketFilter', 'bpfMapLookupElem', 'bpfMapUpdateElem', 'bpfMapDeleteElem', 'bpfMapGetNextKey',
    ];
    expect(documented.filter((name) => compat[name] === undefined)).toEqual([]);
  });

  it('exports every error class, each a BpfLoadError', () => {
    const classes = errorClassesInSource();
    expect(classes.length).toBeGreaterThan(15);
    const base = api['BpfLoadError'] as abstract new (...args: never[]) => unknown;
    for (const name of classes) {
      const cls = api[name] as { prototype: unknown } | undefined;
      expect(cls, `${name} is not exported from bpf-load`).toBeTypeOf('function');
      expect(cls!.prototype instanceof base, `${name} does not extend BpfLoadError`).toBe(true);
    }
  });

  it('does not export internal tables', () => {
    for (const name of ['MAP_TYPE_TRAITS', 'PseudoSrc', 'CallSrc', 'UNLISTABLE_MAP_TYPES', 'BPF_ATTR']) expect(api[name]).toBeUndefined();
  });
});
