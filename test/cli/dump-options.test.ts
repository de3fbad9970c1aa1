import { spawnSync } from 'node:child_process'; // spawns llvm-objdump (the oracle) with argument arrays: no shell
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HELPER_NAMES } from '../../src/base/uapi.js';
import { runCli } from '../helpers/cli.js';
import { findLlvmObjdump, PROJECT_ROOT } from '../helpers/kernel.js';

const UAPI = '/usr/include/linux/bpf.h';

describe('--dump disassembly options', () => {
  it('by default llvm-objdump\'s text; --helpers names helper calls as bpftool does; nothing else changes', () => {
    const plain = runCli(['--dump', 'c-samples/sockex3_kern.o']);
    const named = runCli(['--dump', '--helpers', 'c-samples/sockex3_kern.o']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(named.status, named.stderr).toBe(0);
    expect(plain.stdout).toMatch(/: call 0x1\n/);
    expect(plain.stdout).not.toContain('bpf_map_lookup_elem');
    const plainLines = plain.stdout.split('\n');
    const namedLines = named.stdout.split('\n');
    expect(namedLines).toHaveLength(plainLines.length);
    const changed = namedLines.flatMap((l, i) => (l === plainLines[i] ? [] : [[plainLines[i]!.replace(/^.*: /, ''), l.replace(/^.*: /, '')]]));
    expect(changed.length).toBeGreaterThan(0);
    for (const [before, after] of changed) {
      const id = Number(/^call (0x[0-9a-f]+)$/.exec(before!)![1]);
      expect(after).toBe(`call bpf_${HELPER_NAMES[id]}#${id}`);
    }
    expect(namedLines).toContain(namedLines.find((l) => l.endsWith('call bpf_tail_call#12')));
  });

  it('--raw shows each instruction\'s bytes, the same as llvm-objdump\'s', () => {
    const objdump = findLlvmObjdump();
    if (objdump === undefined) throw new Error('llvm-objdump (llvm-19) is the oracle of --raw: apt-get install llvm-19');
    const r = runCli(['--dump', '--raw', 'c-samples/sockex1_kern.o']);
    expect(r.status, r.stderr).toBe(0);
    const ours = new Map([...r.stdout.matchAll(/^\s+(\d+): ((?:[0-9a-f]{2} )+) /gm)].map((m) => [Number(m[1]), m[2]!.trim()]));
    const theirs = spawnSync(objdump, ['-d', 'c-samples/sockex1_kern.o'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).stdout;
    const expected = [...theirs.matchAll(/^\s+(\d+):\t([0-9a-f ]+?) ?\t/gm)].map((m) => [Number(m[1]), m[2]!.trim()] as const);
    expect(expected.length).toBeGreaterThan(10);
    expect([...ours.entries()]).toEqual(expected);
  });

  it('the options are --dump\'s: anywhere else a usage error naming them', () => {
    const r = runCli(['--helpers', 'c-samples/sockex1_kern.o']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bpf-load: --helpers does not apply to loading a FILE \(only to --dump\)\n/);
  });

  it('the helper table is the uapi\'s enum bpf_func_id, in order', () => {
    if (!existsSync(UAPI)) throw new Error(`${UAPI} (linux-libc-dev) is the oracle of the helper table`);
    const header = readFileSync(UAPI, 'utf8');
    const mapper = header.slice(header.indexOf('#define ___BPF_FUNC_MAPPER') >= 0 ? header.indexOf('#define ___BPF_FUNC_MAPPER') : header.indexOf('#define __BPF_FUNC_MAPPER'));
    const names = [...mapper.slice(0, mapper.indexOf('\n\n')).matchAll(/FN\((\w+)(?:, \d+)?/g)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(200);
    expect(HELPER_NAMES.slice(0, names.length)).toEqual(names);
  });
});
