import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { withContext } from '../base/errors.js';
import { objPin } from '../sys/index.js';
import { ensureBpffs, PinError } from './bpffs.js';
import type { LoadedObject } from './loader.js';

/**
 * Pins every program at DIR/<program> and every map at DIR/maps/<map>, so they outlive the process. Returns the paths.
 * On failure the pins made so far are removed again.
 */
export function pinObject(object: LoadedObject, dir: string): string[] {
  ensureBpffs(dir);
  const root = resolve(dir);
  const mapsDir = join(root, 'maps');
  mkdirSync(mapsDir, { recursive: true });
  const pinned: string[] = [];
  const pin = (fd: number, path: string) => {
    if (existsSync(path)) throw new PinError(withContext([path], 'already exists; remove it or pin somewhere else'));
    objPin(fd, path);
    pinned.push(path);
  };
  try {
    for (const p of object.programs) pin(p.fd, join(root, p.name));
    for (const m of object.maps) pin(m.fd, join(mapsDir, m.name.replace(/\//g, '_')));
  } catch (e) {
    unpinAll(pinned);
    throw e;
  }
  return pinned;
}

/** Removes pins, best effort: used to undo a pinning that failed halfway, where the first error is the one to report. */
export function unpinAll(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      unlinkSync(path);
    } catch {
      // Already gone, or not ours to remove: nothing better to do while reporting the original failure.
    }
  }
}
