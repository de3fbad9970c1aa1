import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ensureBpffs } from '../../src/load/index.js';
import { Fd, type OpenFdRecord } from '../../src/sys/index.js';

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
  gatedTest('kernel', name, fn, kernelUnavailableReason(), REQUIRE ? 'BPF_LOAD_REQUIRE_KERNEL=1' : undefined, timeout);
}

/**
 * Runs the test when `reason` is undefined; otherwise fails it when `requiredBy` names what requires it, else skips
 * it with the reason printed. One rule for every precondition (kernel, corpus).
 */
function gatedTest(
  what: string, name: string, fn: () => unknown | Promise<unknown>, reason: string | undefined, requiredBy: string | undefined,
  timeout?: number,
): void {
  if (reason === undefined) {
    it(name, fn, timeout);
  } else if (requiredBy !== undefined) {
    it(name, () => {
      throw new Error(`${requiredBy} requires the ${what}, but ${reason}`);
    });
  } else {
    console.warn(`skipping ${what} test "${name}": ${reason}`);
    it.skip(name, fn); // not required here: the reason is printed just above
  }
}

/**
 * Corpus and oracle-tool tests must run in CI and under BPF_LOAD_REQUIRE_KERNEL=1: an absent corpus or tool is then a
 * failure, not a skip.
 */
const CORPUS_REQUIRED = REQUIRE || process.env['CI'] !== undefined;

/**
 * The path of a system tool tests compare against (tcpdump, bpftool, clang, llvm-*), found among `candidates`. Absent,
 * it is a failure in CI and under BPF_LOAD_REQUIRE_KERNEL=1 (`.ci/run` installs every one), elsewhere undefined with
 * the reason printed, so the tests that need it skip visibly.
 */
export function oracleTool(name: string, candidates: readonly string[], install: string): string | undefined {
  const found = candidates.find(isExecutable);
  if (found === undefined) oracleUnavailable(`${name} is not installed (${install})`);
  return found;
}

/** An oracle the tests cannot use here: a failure in CI and under BPF_LOAD_REQUIRE_KERNEL=1, else a printed skip reason. */
export function oracleUnavailable(reason: string): void {
  if (CORPUS_REQUIRED) throw new Error(`CI or BPF_LOAD_REQUIRE_KERNEL=1 requires the oracle tools, but ${reason}`);
  console.warn(`${reason}: the tests that compare with it are skipped`);
}

/** Why the corpus tests cannot run here, or undefined when ../shared/corpus is present. */
export function corpusUnavailableReason(): string | undefined {
  return existsSync(CORPUS_DIR) ? undefined : `it is absent (${CORPUS_DIR})`;
}

/**
 * A test that reads ../shared/corpus. Skips (printing the reason) when the corpus is absent; in CI or under
 * BPF_LOAD_REQUIRE_KERNEL=1 the absence is a failure. Inside, a missing file is a failure too (`missingCorpusFile`):
 * the body never returns early and passes without checking.
 */
export function corpusTest(name: string, fn: () => unknown | Promise<unknown>, timeout?: number): void {
  gatedTest('corpus', name, fn, corpusUnavailableReason(), CORPUS_REQUIRED ? 'CI or BPF_LOAD_REQUIRE_KERNEL=1' : undefined, timeout);
}

/** A corpus test that also needs the kernel: both conditions, each skipping or failing as its helper says. */
export function corpusKernelTest(name: string, fn: () => unknown | Promise<unknown>, timeout?: number): void {
  if (corpusUnavailableReason() !== undefined) corpusTest(name, fn, timeout);
  else kernelTest(name, fn, timeout);
}

/** The error for a corpus file a corpus test expected and did not find (the corpus is there, the file is not). */
export function missingCorpusFile(what = 'a corpus file'): Error {
  return new Error(`${what} is missing from ${CORPUS_DIR}`);
}

/**
 * Corpus objects (../shared/corpus), or undefined with a printed reason when the corpus is absent (for tests that
 * add the corpus to the samples). In CI or under BPF_LOAD_REQUIRE_KERNEL=1 an absent corpus throws instead.
 */
export function corpusFiles(sub: string, filter: (name: string) => boolean = () => true): string[] | undefined {
  const dir = join(CORPUS_DIR, sub);
  if (!existsSync(dir)) {
    if (CORPUS_REQUIRED) throw new Error(`corpus required (CI or BPF_LOAD_REQUIRE_KERNEL=1) but ${dir} is absent`);
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

/** Path of an llvm-objdump that knows BPF (the newest installed), through `oracleTool`. */
export function findLlvmObjdump(): string | undefined {
  const versions = [22, 21, 20, 19, 18, 17, 16, 15, 14].map((v) => `/usr/bin/llvm-objdump-${v}`);
  return oracleTool('llvm-objdump', [...versions, '/usr/bin/llvm-objdump'], 'apt-get install llvm-19');
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

/**
 * Runs `body` and proves that it closed every fd it opened: each `Fd` it made is named with where it was made
 * (tracking is on for the call), and /proc/self/fd catches descriptors that never became an `Fd`.
 */
export function noLeaks(body: () => void): void {
  const before = openFdCount();
  const wasTracking = Fd.tracking;
  Fd.track(true);
  const openBefore = new Set(Fd.openFds());
  let leaked: OpenFdRecord[];
  try {
    body();
  } finally {
    leaked = Fd.openFds().filter((r) => !openBefore.has(r));
    if (!wasTracking) Fd.track(false);
  }
  if (leaked.length > 0) {
    const where = (stack: string) => stack.split('\n').filter((l) => !l.includes('node_modules')).slice(0, 3).map((l) => l.trim()).join(' < ');
    throw new Error(`${leaked.length} fd(s) left open: ${leaked.map((r) => `${r.what} (fd ${r.fd}) made at ${where(r.createdAt)}`).join('; ')}`);
  }
  expect(openFdCount()).toBe(before);
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
