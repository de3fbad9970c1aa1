import { readFileSync, statSync } from 'node:fs';
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
  try {
    if (statSync(path).isDirectory()) throw new FileError(path, REASONS['EISDIR']!);
    return readFileSync(path);
  } catch (e) {
    if (e instanceof FileError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new FileError(path, REASONS[code] ?? `cannot read (${code || String(e)})`);
  }
}
