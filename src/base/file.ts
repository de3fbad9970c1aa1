import { openSync, readFileSync, statSync } from 'node:fs';
import { BpfLoadError } from './errors.js';

/** A file the user named could not be read. */
export class FileError extends BpfLoadError {
  override name = 'FileError';
  readonly path: string;
  constructor(path: string, cause: string) {
    super(`${path}: ${cause}`);
    this.path = path;
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not an object file',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

/** Reads a whole file the user named, turning file-system errors into a one-line FileError. */
export function readUserFile(path: string): Uint8Array {
  return userFile(path, () => readFileSync(path));
}

/** Opens a file the user named for reading (for files too large to read whole); errors as readUserFile's. */
export function openUserFile(path: string): number {
  return userFile(path, () => openSync(path, 'r'));
}

function userFile<T>(path: string, open: () => T): T {
  try {
    if (statSync(path).isDirectory()) throw new FileError(path, REASONS['EISDIR']!);
    return open();
  } catch (e) {
    if (e instanceof FileError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new FileError(path, REASONS[code] ?? `cannot read (${code || String(e)})`);
  }
}
