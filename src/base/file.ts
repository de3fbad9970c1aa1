import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
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

/** Generous for any BPF object (the largest in the wild are a few MB), and far below what would exhaust memory. */
export const MAX_USER_FILE_SIZE = 1 << 30;

export interface ReadUserFileOptions {
  /** Upper bound on the file's size (default MAX_USER_FILE_SIZE). */
  maxSize?: number;
  /**
   * Checks the first `headSize` bytes (fewer when the file is shorter) before the rest is read, so a file of the
   * wrong kind fails at once, however large it is. Throws to refuse the file.
   */
  head?: { readonly size: number; readonly check: (head: Uint8Array, fileSize: number, path: string) => void };
}

/**
 * Reads a whole file the user named, turning file-system errors into a one-line FileError. Only regular files: a
 * FIFO would block, /dev/zero never ends. Opened non-blocking so that even opening a FIFO cannot hang.
 */
export function readUserFile(path: string, options: ReadUserFileOptions = {}): Uint8Array {
  // BpfLoadError escapes the message, so a path with control characters still prints as one line.
  const shown = path;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw fileSystemError(shown, e);
  }
  try {
    let stats: Stats;
    try {
      stats = fstatSync(fd);
    } catch (e) {
      throw fileSystemError(shown, e);
    }
    if (stats.isDirectory()) throw new FileError(shown, REASONS['EISDIR']!);
    if (!stats.isFile()) throw new FileError(shown, `not a regular file (${fileKind(stats)}); an object file is needed`);
    const maxSize = options.maxSize ?? MAX_USER_FILE_SIZE;
    if (stats.size > maxSize) throw new FileError(shown, `${stats.size} bytes; an object file may be at most ${maxSize} bytes`);
    // The head first, into a small buffer: a file of the wrong kind is refused before the big allocation.
    const head = Buffer.alloc(Math.min(options.head?.size ?? 0, stats.size));
    let filled = readFully(fd, head, 0, head.byteLength, shown);
    options.head?.check(head.subarray(0, filled), stats.size, path);
    const bytes = Buffer.alloc(stats.size);
    bytes.set(head.subarray(0, filled));
    filled += readFully(fd, bytes, filled, stats.size - filled, shown);
    // A file that shrank while we read it: only what was read.
    return filled === stats.size ? bytes : bytes.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

/** Opens a file the user named for reading (for files too large to read whole); errors as readUserFile's. */
export function openUserFile(path: string): number {
  try {
    if (statSync(path).isDirectory()) throw new FileError(path, REASONS['EISDIR']!);
    return openSync(path, 'r');
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw fileSystemError(path, e);
  }
}

/** Reads up to `length` bytes into bytes[offset…]; fewer only at the end of the file. */
function readFully(fd: number, bytes: Uint8Array, offset: number, length: number, shown: string): number {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = readSync(fd, bytes, offset + done, length - done, null);
    } catch (e) {
      throw fileSystemError(shown, e);
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** A failed file system call on a file the user named, as one FileError line (`action`: what failed, for unknown codes). */
export function fileSystemError(shown: string, e: unknown, action: 'read' | 'write' = 'read'): FileError {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return new FileError(shown, REASONS[code] ?? `cannot ${action} (${code || String(e)})`);
}

function fileKind(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a file';
}
