/** Facts about the running kernel the loader needs by default: version, object-name rules, /proc readers. */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { LoadError } from './errors.js';

export function readKallsyms(): string {
  try {
    return readFileSync('/proc/kallsyms', 'utf8');
  } catch (e) {
    throw new LoadError(`/proc/kallsyms: ${(e as NodeJS.ErrnoException).code ?? String(e)}: needed for untyped ksyms`);
  }
}

/** The running kernel's config, as libbpf finds it; undefined when this kernel exposes none. */
export function readKernelConfig(): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    // Not built with CONFIG_IKCONFIG_PROC (or unreadable): try the distribution's copy.
  }
  try {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Kernel object names: at most 15 characters of [A-Za-z0-9_.]; anything else becomes '_'. */
export function kernelObjectName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
}

/** LINUX_VERSION_CODE of the running kernel: "6.18.44-…" → 0x0612ff (sublevel capped at 255 as the kernel does). */
export function runningKernelVersion(text: string = release()): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (m === null) return 0;
  return (Number(m[1]) << 16) | (Number(m[2]) << 8) | Math.min(Number(m[3] ?? 0), 255);
}
