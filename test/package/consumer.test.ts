import { spawnSync, type SpawnSyncReturns } from 'node:child_process'; // spawns npm, node and tsc with argument arrays: no shell
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli } from '../helpers/cli.js';
import { kernelTest, PROJECT_ROOT } from '../helpers/kernel.js';

/**
 * The package as users get it: `npm pack` (of the built dist/, which `npm test` builds first), installed into a fresh
 * project with no network — its dependencies are packed from this project's node_modules and installed beside it.
 */
const work = mkdtempSync(join(tmpdir(), 'bpf-load-consumer-'));
const app = join(work, 'app');

function run(cmd: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.error !== undefined) throw r.error;
  return r;
}

function packOurs(): string {
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], PROJECT_ROOT);
  expect(r.status, r.stderr).toBe(0);
  return join(work, (JSON.parse(r.stdout) as Array<{ filename: string }>)[0]!.filename);
}

/**
 * A dependency as installed here, tarred the way npm tarballs are (`package/…`). Not `npm pack`: that would apply the
 * package's `files` list, which for koffi leaves out the prebuilt native modules its registry tarball carries.
 */
function tarInstalled(name: string): string {
  const out = join(work, `${name.replace('/', '-')}.tgz`);
  const r = run('tar', ['czf', out, '-C', join(PROJECT_ROOT, 'node_modules', name), '--transform', 's,^\\.,package,', '.'], PROJECT_ROOT);
  expect(r.status, r.stderr).toBe(0);
  return out;
}

let tarballFiles: string[] = [];

beforeAll(() => {
  requireBuiltCli();
  const ours = run('npm', ['pack', '--ignore-scripts', '--json', '--dry-run'], PROJECT_ROOT);
  tarballFiles = (JSON.parse(ours.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  const tarballs = [packOurs(), ...['koffi', `@koromix/koffi-${process.platform}-${process.arch}`, '@types/node', 'undici-types'].map(tarInstalled)];
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  const install = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', ...tarballs], app);
  expect(install.status, install.stderr).toBe(0);
}, 180_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package in a consumer project', () => {
  it('holds what a user needs and no more: LICENSE, README, dist without source maps, the bundled CLI, samples without test twins', () => {
    expect(tarballFiles).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts',
      'dist/compat/index.js', 'dist/bin/bpf-load.cjs', 'c-samples/sockex1_kern.o', 'c-samples/sockex1_kern.c']));
    // The CLI ships once, as the bundle its bin names; tsc's dist/cli is what the bundle was made from.
    expect(tarballFiles.filter((f) => f.endsWith('.map') || f.endsWith('.eb.o') || f.startsWith('src/') || f.startsWith('test/') ||
      f.startsWith('dist/cli/'))).toEqual([]);
    expect(readdirSync(join(app, 'node_modules', 'bpf-load'))).toContain('LICENSE');
  });

  it('the bin npm linked runs from the installed package: --version, --dump of a packaged sample, a usage error', () => {
    const bin = join(app, 'node_modules', '.bin', 'bpf-load');
    const version = run(bin, ['--version'], app);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^bpf-load \d+\.\d+\.\d+\n$/);
    const dump = run(bin, ['--dump', join(app, 'node_modules', 'bpf-load', 'c-samples', 'sockex1_kern.o')], app);
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('bpf_prog1');
    const usage = run(bin, ['--no-such-flag'], app);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/^bpf-load: .*--no-such-flag/);
  });

  it('ESM import, with the samples found through the package (import.meta.resolve)', () => {
    writeFileSync(join(app, 'esm.mjs'), `
import { readFileSync } from 'node:fs';
import { parseObject } from 'bpf-load';
import { mapFd } from 'bpf-load/compat';
const url = new URL('../c-samples/sockex1_kern.o', import.meta.resolve('bpf-load'));
const spec = parseObject(readFileSync(url), { name: 'sockex1_kern.o' });
console.log(JSON.stringify({ programs: spec.programs.map((p) => p.name), maps: spec.maps.map((m) => m.name), compat: Array.isArray(mapFd) }));
`);
    const r = run(process.execPath, ['esm.mjs'], app);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ programs: ['bpf_prog1'], maps: ['my_map'], compat: true });
  });

  it('CommonJS require (Node ≥ 20.19 requires ESM without a flag)', () => {
    writeFileSync(join(app, 'cjs.cjs'), `
const { join, dirname } = require('node:path');
const { readFileSync } = require('node:fs');
const { parseObject, describeObject } = require('bpf-load');
const compat = require('bpf-load/compat');
const file = join(dirname(require.resolve('bpf-load/package.json')), 'c-samples', 'sockex3_kern.o');
const dump = describeObject(parseObject(readFileSync(file)));
console.log(JSON.stringify({ maps: dump.maps.map((m) => m.name), loadBpfFile: typeof compat.loadBpfFile }));
`);
    const r = run(process.execPath, ['cjs.cjs'], app);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ maps: ['jmp_table', 'slot_hits'], loadBpfFile: 'function' });
  });

  it('type-checks under tsc --strict --module nodenext, `using` included, with only the package\'s own dependencies', () => {
    writeFileSync(join(app, 'typed.ts'), `
import { openObject, parseObject, VerifierError, listPrograms, type BpfObjectSpec, type KernelProgram, type MapHandle } from 'bpf-load';
import { loadBpfFile, progFd } from 'bpf-load/compat';

export function inspect(bytes: Uint8Array): string[] {
  const spec: BpfObjectSpec = parseObject(bytes);
  return spec.programs.map((p) => p.name);
}

export function load(): bigint | undefined {
  using obj = openObject(new URL('../c-samples/sockex1_kern.o', import.meta.resolve('bpf-load')));
  const counts: MapHandle = obj.map('my_map');
  return counts.get(6)?.readBigInt64LE(0);
}

export function failed(e: unknown): string | undefined {
  return e instanceof VerifierError ? e.log : undefined;
}

export const kernel: () => KernelProgram[] = listPrograms;
export const legacy = (): number => (loadBpfFile('x.o') === 0 ? progFd[0] ?? -1 : -1);
`);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    expect(existsSync(tsc)).toBe(true);
    const r = run(process.execPath, [tsc, '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'es2022,esnext.disposable', '--noEmit', 'typed.ts'], app);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  }, 120_000);

  kernelTest('the installed package loads and closes a sample against the kernel (ESM, as the README example)', () => {
    writeFileSync(join(app, 'load.mjs'), `
import { openObject } from 'bpf-load';
const obj = openObject(new URL('../c-samples/sockex1_kern.o', import.meta.resolve('bpf-load')));
try {
  console.log(JSON.stringify({ id: obj.programs[0].id, value: obj.map('my_map').get(6)?.readBigInt64LE(0) >= 0n }));
} finally {
  obj.close();
}
`);
    const r = run(process.execPath, ['load.mjs'], app);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ id: expect.any(Number), value: true });
  });
});
