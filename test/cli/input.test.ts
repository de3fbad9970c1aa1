import { spawnSync } from 'node:child_process'; // mkfifo: the FIFO under test; no shell
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileError, MAX_USER_FILE_SIZE, readUserFile } from '../../src/base/file.js';
import { ELF_HEADER_CHECK, ElfError } from '../../src/elf/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'bpf-load-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file of `size` zero bytes: no disk or memory spent on it. */
function sparseFile(name: string, size: number): string {
  const path = join(dir, name);
  closeSync(openSync(path, 'w'));
  truncateSync(path, size);
  return path;
}

function fifo(name: string): string {
  const path = join(dir, name);
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
  return path;
}

describe('the CLI accepts regular object files only, and says so at once', () => {
  // A FIFO used to block forever and /dev/zero to grow memory without bound: the timeout is a hang guard.
  const cases: Array<[string, () => string, RegExp]> = [
    ['/dev/zero', () => '/dev/zero', /^bpf-load: \/dev\/zero: not a regular file \(a character device\)/],
    ['a FIFO', () => fifo('pipe.o'), /pipe\.o: not a regular file \(a FIFO\)/],
    ['a 2 GB file', () => sparseFile('big.o', 2 ** 31), /big\.o: 2147483648 bytes; an object file may be at most 1073741824 bytes/],
    ['a 900 MB file that is not ELF', () => sparseFile('zeros.o', 900 * 2 ** 20), /zeros\.o: not an ELF file \(bad magic\)/],
  ];
  for (const [what, make, message] of cases) {
    for (const mode of ['--dump', 'load'] as const) {
      it(`${what} (${mode})`, () => {
        const path = make();
        try {
          const r = runCli(mode === '--dump' ? ['--dump', path] : ['--count', '0', '--no-attach', path], { timeout: 20_000 });
          expect(r.error, 'the CLI must not hang').toBeUndefined();
          expect([r.status, r.stdout]).toEqual([1, '']);
          expect(r.stderr).toMatch(message);
          expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
        } finally {
          if (path !== '/dev/zero') rmSync(path);
        }
      }, 30_000);
    }
  }
});

describe('readUserFile', () => {
  it('checks the head before reading the rest, and refuses a header that promises more than the file holds', () => {
    const path = join(dir, 'short.o');
    const header = Buffer.alloc(64);
    header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    header.writeUInt16LE(1, 16);
    header.writeUInt16LE(247, 18);
    header.writeBigUInt64LE(4096n, 40); // section headers at 4096, in a 64-byte file
    header.writeUInt16LE(64, 58);
    header.writeUInt16LE(3, 60);
    writeFileSync(path, header);
    expect(() => readUserFile(path, { head: ELF_HEADER_CHECK })).toThrow(ElfError);
    expect(() => readUserFile(path, { head: ELF_HEADER_CHECK })).toThrow(/short\.o: offset 0x1000: section header table \(3 entries\) \(192 bytes\) extends past the end of the file \(64 bytes\)/);
  });

  it('reads a regular file whole; a size cap and the file-system errors are FileErrors', () => {
    const path = join(dir, 'some.bin');
    writeFileSync(path, Buffer.from('hello'));
    expect(Buffer.from(readUserFile(path)).toString()).toBe('hello');
    expect(() => readUserFile(path, { maxSize: 4 })).toThrow(/some\.bin: 5 bytes; an object file may be at most 4 bytes/);
    expect(() => readUserFile(join(dir, 'nope'))).toThrow(FileError);
    expect(() => readUserFile(dir)).toThrow(/is a directory/);
    expect(MAX_USER_FILE_SIZE).toBe(2 ** 30);
  });
});
