import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { withContext } from '../base/errors.js';
import { objPin } from '../sys/index.js';
import { ensureBpffs, PinError } from './bpffs.js';
import type { LoadedObject } from './loader.js';

/** Pins every program at DIR/<program> and every map at DIR/maps/<map>, so they outlive the process. Returns the paths. */
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
  for (const p of object.programs) pin(p.fd, join(root, p.name));
  for (const m of object.maps) pin(m.fd, join(mapsDir, m.name.replace(/\//g, '_')));
  return pinned;
}
