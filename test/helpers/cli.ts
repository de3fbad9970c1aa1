import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './kernel.js';

/**
 * The package's `bin` — the bundle `npm run build` makes (rolldown.config.mjs) — so tests run exactly what users run.
 * npm test builds it first; test/helpers/bundle.ts makes it again when tsc's output is newer.
 */
export const CLI = join(PROJECT_ROOT, (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['bpf-load']!);

export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it first)`);
}

export function runCli(args: readonly string[], options: { timeout?: number } = {}): SpawnSyncReturns<string> {
  requireBuiltCli();
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: PROJECT_ROOT, timeout: options.timeout ?? 30_000 });
}

/** A running CLI whose stdout is collected line by line. */
export class CliProcess {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child;
  private waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];

  constructor(args: readonly string[]) {
    requireBuiltCli();
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk; });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first line (already seen or future) that passes `test`; rejects after `timeoutMs`. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`)), timeoutMs);
      this.waiters.push({ test, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
