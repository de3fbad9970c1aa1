import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { ensureBpffs } from '../../src/load/index.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SAMPLES_DIR = join(PROJECT_ROOT, 'c-samples');
export const CORPUS_DIR = resolve(PROJECT_ROOT, '..', 'shared', 'corpus');

/** Why kernel tests cannot run here, or undefined when they can (root, or CAP_SYS_ADMIN+CAP_BPF in the effective set). */
export function kernelUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const status = readFileSync('/proc/self/status', 'utf8');
  const capEff = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1];
  if (capEff === undefined) return 'cannot read CapEff from /proc/self/status';
  const caps = BigInt(`0x${capEff}`);
  const CAP_SYS_ADMIN = 21n;
  const CAP_BPF = 39n;
  const has = (c: bigint) => ((caps >> c) & 1n) === 1n;
  if (!has(CAP_SYS_ADMIN) && !has(CAP_BPF)) return `not privileged (CapEff=${capEff}): run as root to exercise the kernel`;
  return undefined;
}

const REQUIRE = process.env['BPF_LOAD_REQUIRE_KERNEL'] === '1';

/**
 * A test that needs the real kernel. Skips (printing the reason) when unprivileged; under BPF_LOAD_REQUIRE_KERNEL=1
 * the same situation is a failure, so CI can never pass by skipping.
 */
export function kernelTest(name: string, fn: () => unknown | Promise<unknown>, timeout?: number): void {
  const reason = kernelUnavailableReason();
  if (reason === undefined) {
    it(name, fn, timeout);
  } else if (REQUIRE) {
    it(name, () => {
      throw new Error(`BPF_LOAD_REQUIRE_KERNEL=1 but the kernel is unavailable: ${reason}`);
    });
  } else {
    console.warn(`skipping kernel test "${name}": ${reason}`);
    it.skip(name, fn); // unprivileged and not required: the reason is printed just above
  }
}

/** Corpus objects (../shared/corpus), or undefined with a printed reason when the corpus is absent. */
export function corpusFiles(sub: string, filter: (name: string) => boolean = () => true): string[] | undefined {
  const dir = join(CORPUS_DIR, sub);
  if (!existsSync(dir)) {
    console.warn(`corpus absent (${dir}): corpus tests skipped`);
    return undefined;
  }
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (filter(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** Path of an llvm-objdump that knows BPF (the newest installed), or undefined. */
export function findLlvmObjdump(): string | undefined {
  for (const v of [22, 21, 20, 19, 18, 17, 16, 15, 14]) {
    const p = `/usr/bin/llvm-objdump-${v}`;
    if (isExecutable(p)) return p;
  }
  return isExecutable('/usr/bin/llvm-objdump') ? '/usr/bin/llvm-objdump' : undefined;
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Number of open fds of this process: tests compare before/after to prove nothing leaked. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Sleeps synchronously (tests only): for polling kernel state that changes asynchronously. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Polls `done` until it holds or `timeoutMs` passes. The kernel frees programs and maps after deferred work (RCU,
 * workqueues: a prog array releases its programs only when the map itself is freed), so "gone" is eventually true.
 */
export function eventually(done: () => boolean, timeoutMs = 3000): boolean {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() > until) return false;
    sleepSync(20);
  }
}

/**
 * A fresh directory on bpffs (under /sys/fs/bpf, mounted first when a fresh machine has nothing there — as the loader
 * itself does), named `prefix` + random. The caller removes it.
 */
export function bpffsTempDir(prefix: string): string {
  ensureBpffs('/sys/fs/bpf');
  return mkdtempSync(join('/sys/fs/bpf', prefix));
}
