/**
 * vitest globalSetup: the CLI tests run the bundled bin (dist/bin, rolldown.config.mjs), which `npm run build` makes
 * after tsc. A run that only re-ran tsc (`npx tsc -p tsconfig.build.json && npx vitest run …`) would otherwise test a
 * bundle of older code; so when any tsc output is newer than the bundle, the bundle is made again first.
 */
import { spawnSync } from 'node:child_process'; // runs rolldown with an argument array: no shell
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from './cli.js';
import { PROJECT_ROOT } from './kernel.js';

const DIST = join(PROJECT_ROOT, 'dist');
const BUNDLE_DIR = join(DIST, 'bin');

function newestModule(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== BUNDLE_DIR) newest = Math.max(newest, newestModule(path));
    } else if (entry.name.endsWith('.js')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** Whether tsc has built dist/ and the bundle is missing or older than any of its modules. */
function bundleIsStale(): boolean {
  // Nothing built at all: requireBuiltCli says what to run.
  if (!existsSync(join(DIST, 'cli', 'main.js'))) return false;
  return !existsSync(CLI) || statSync(CLI).mtimeMs < newestModule(DIST);
}

function bundle(): void {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'rolldown', 'bin', 'cli.mjs'), '-c', 'rolldown.config.mjs'],
    { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundling the CLI (rolldown -c rolldown.config.mjs) failed: ${r.stderr}${r.stdout}`);
}

/** vitest's globalSetup (not a test): bundles the CLI again when tsc's output is newer. */
export default function bundleIfStale(): void {
  if (bundleIsStale()) bundle();
}
