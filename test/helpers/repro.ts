import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { kernelUnavailableReason, PROJECT_ROOT } from './kernel.js';

/** Inputs that once broke bpf-load (../shared/repro, see its README): read in place, never copied into the project. */
export const REPRO_DIR = resolve(PROJECT_ROOT, '..', 'shared', 'repro');

const REQUIRE = process.env['BPF_LOAD_REQUIRE_KERNEL'] === '1';

/** The error `f` throws, which must be a `type` (a BpfLoadError subclass) with a one-line message. */
export function oneLineError(f: () => unknown, type: abstract new (...args: never[]) => BpfLoadError = BpfLoadError): BpfLoadError {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected a ${type.name}`).toBeInstanceOf(type);
  const e = thrown as BpfLoadError;
  expect(e.message).not.toMatch(/[\n\r]/);
  return e;
}

/**
 * A test of one repro file, given its path. Absent (or, with `needsKernel`, without the privileges to load), it skips
 * with the reason printed — unless BPF_LOAD_REQUIRE_KERNEL=1 (CI), where that is a failure.
 */
export function reproTest(
  file: string, name: string, fn: (path: string) => unknown | Promise<unknown>, options: { needsKernel?: boolean; timeout?: number } = {},
): void {
  const path = join(REPRO_DIR, file);
  const timeout = options.timeout;
  const unprivileged = options.needsKernel === true ? kernelUnavailableReason() : undefined;
  if (unprivileged !== undefined) {
    if (REQUIRE) {
      it(`${file}: ${name}`, () => {
        throw new Error(`BPF_LOAD_REQUIRE_KERNEL=1 but the kernel is unavailable: ${unprivileged}`);
      });
    } else {
      console.warn(`skipping kernel test "${name}": ${unprivileged}`);
      it.skip(`${file}: ${name}`, () => fn(path));
    }
  } else if (existsSync(path)) {
    it(`${file}: ${name}`, () => fn(path), timeout);
  } else if (REQUIRE) {
    it(`${file}: ${name}`, () => {
      throw new Error(`${path} is missing, and BPF_LOAD_REQUIRE_KERNEL=1 runs every repro`);
    });
  } else {
    console.warn(`repro absent (${path}): "${name}" skipped`);
    it.skip(`${file}: ${name}`, () => fn(path));
  }
}
