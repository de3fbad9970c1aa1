import { spawnSync } from 'node:child_process'; // runs tsc (the TypeScript compiler) on generated modules: argument arrays, no shell
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../helpers/kernel.js';

const TSC = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * A package that depends on bpf-load as users' projects do: node_modules/bpf-load is this project (its built dist/
 * through package.json's exports), and the compiler options are the strictest the issue names.
 */
export class ConsumerDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'bpf-load-gen-'));
  /** Where compiled JS goes: out/ by default, or beside each .ts (as `tsc` with no outDir does). */
  readonly outDir: string;

  constructor(options: { emitBesideSources?: boolean } = {}) {
    this.outDir = options.emitBesideSources === true ? '.' : 'out';
    mkdirSync(join(this.dir, 'node_modules'));
    symlinkSync(PROJECT_ROOT, join(this.dir, 'node_modules', 'bpf-load'));
    writeFileSync(join(this.dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(join(this.dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'ESNext.Disposable'],
        types: ['node'], typeRoots: [join(PROJECT_ROOT, 'node_modules', '@types')],
        strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noUnusedLocals: true,
        noUnusedParameters: true, noImplicitReturns: true, verbatimModuleSyntax: true, isolatedModules: true,
        ...(this.outDir === '.' ? {} : { outDir: this.outDir }), rootDir: '.', declaration: false, skipLibCheck: true,
      },
      include: ['*.ts'],
    }, null, 2));
  }

  write(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  /** tsc over every .ts file here, emitting JS into out/; returns the diagnostics ('' when clean). */
  compile(): { ok: boolean; output: string } {
    const r = spawnSync(process.execPath, [TSC, '-p', this.dir], { encoding: 'utf8', timeout: 120_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  }

  /** The compiled module (<outDir>/<name>.js), imported. */
  async import<T>(name: string): Promise<T> {
    return (await import(pathToFileURL(this.compiled(name)).href)) as T;
  }

  /** Path of the JS that tsc emitted for `name`. */
  compiled(name: string): string {
    return join(this.dir, this.outDir, name.replace(/\.ts$/, '.js'));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
