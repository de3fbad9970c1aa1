import { spawnSync } from 'node:child_process'; // runs make (the Makefile builds the probe target) with an argument array: no shell
import { join } from 'node:path';
import { isExecutable, PROJECT_ROOT } from './kernel.js';

/** c-samples/uprobe_target: a host program, built (not committed) by `make uprobe-target`. */
export const UPROBE_TARGET = join(PROJECT_ROOT, 'c-samples', 'uprobe_target');

/** Builds the probe target when needed; throws with make's output when it cannot (no C compiler: .ci/run installs gcc). */
export function buildUprobeTarget(): string {
  const r = spawnSync('make', ['-s', '-C', PROJECT_ROOT, 'uprobe-target'], { encoding: 'utf8' });
  if (r.status !== 0 || !isExecutable(UPROBE_TARGET)) throw new Error(`make uprobe-target failed (${r.status}): ${r.stderr}${r.error?.message ?? ''}`);
  return UPROBE_TARGET;
}

/** Runs the target: `n` calls of target_add(i, 1). */
export function runUprobeTarget(n: number): { pid: number; sum: number } {
  const r = spawnSync(UPROBE_TARGET, [String(n)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`uprobe_target exited ${r.status}: ${r.stderr}`);
  return { pid: r.pid ?? -1, sum: Number(r.stdout.trim()) };
}
