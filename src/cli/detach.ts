/**
 * `bpf-load detach DIR`: undoes `bpf-load FILE --pin DIR --keep-attached`. The pin directory is its own record of
 * what that run pinned (bpffs holds no plain files): links under DIR/links (detached, then unpinned), programs
 * directly under DIR and maps under DIR/maps (unpinned, so the kernel frees them once nothing else holds them). Each
 * pin is checked to be the kind of object its place says; anything else in DIR is left alone and named.
 */
import { existsSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LINKS_DIR } from '../attach/object.js';
import { openPinnedLink } from '../attach/link.js';
import { PinError } from '../load/index.js';
import { bpfObjectKind, Fd, objGet } from '../sys/index.js';
import { UsageError, type CliOptions } from './args.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

/** `bpf-load detach DIR` (usage in args.ts). */
export function runDetach(options: CliOptions): number {
  if (options.args.length !== 1) throw new UsageError(`detach expects one pin directory, got ${options.args.length}`);
  const dir = resolve(options.args[0]!);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PinError(`${dir}: no such pin directory`);
  const linksDir = join(dir, LINKS_DIR);
  const mapsDir = join(dir, 'maps');
  if (!existsSync(linksDir) && !existsSync(mapsDir)) {
    throw new PinError(`${dir}: not a bpf-load pin directory (it has neither links/ nor maps/)`);
  }

  const leftAlone: string[] = [];
  for (const path of pinsIn(linksDir)) {
    const link = openPinnedLink(path);
    const what = `${link.kind} link of ${link.program} (${link.target})`;
    link.detach();
    out(`detached  ${what}`);
  }
  for (const path of pinsIn(dir)) {
    if (unpinIf(path, 'prog')) out(`unpinned  program ${path}`);
    else leftAlone.push(path);
  }
  for (const path of pinsIn(mapsDir)) {
    if (unpinIf(path, 'map')) out(`unpinned  map ${path}`);
    else leftAlone.push(path);
  }
  for (const d of [linksDir, mapsDir, dir]) removeIfEmpty(d);
  if (leftAlone.length > 0) {
    throw new PinError(`${dir}: left alone, not pinned by bpf-load: ${leftAlone.join(', ')}`);
  }
  return 0;
}

/** The pinned objects (not directories) directly in `dir`; none when it does not exist. */
function pinsIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(dir, e.name)).sort();
}

/** Unpins `path` when it holds a BPF object of `kind`; false (and untouched) otherwise. */
function unpinIf(path: string, kind: 'prog' | 'map'): boolean {
  let fd: number;
  try {
    fd = objGet(path);
  } catch {
    return false;
  }
  if (Fd.with(fd, `pin ${path}`, (pin) => bpfObjectKind(pin.value)) !== kind) return false;
  unlinkSync(path);
  return true;
}

function removeIfEmpty(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}
