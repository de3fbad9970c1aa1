import { spawnSync } from 'node:child_process'; // runs llvm-readobj/llvm-nm as oracles with argument arrays: no shell
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ElfError } from '../../src/elf/index.js';
import { fileOffsetOf, functionFileOffset, readExecutable } from '../../src/elf/executable.js';
import { resolveBinary } from '../../src/attach/uprobe.js';
import { oracleTool, SAMPLES_DIR } from '../helpers/kernel.js';
import { buildUprobeTarget } from '../helpers/uprobe-target.js';

const READOBJ = oracleTool('llvm-readobj', ['/usr/bin/llvm-readobj-19', '/usr/bin/llvm-readobj'], 'apt-get install llvm-19');
const NM = oracleTool('llvm-nm', ['/usr/bin/llvm-nm-19', '/usr/bin/llvm-nm'], 'apt-get install llvm-19');

interface OracleSegment { offset: number; vaddr: number; filesz: number }

function oracleLoads(path: string): OracleSegment[] {
  const r = spawnSync(READOBJ!, ['-l', '--elf-output-style=JSON', path], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const doc = JSON.parse(r.stdout) as Array<{ ProgramHeaders: Array<{ ProgramHeader: { Type: { Value: number }; Offset: number; VirtualAddress: number; FileSize: number } }> }>;
  return doc[0]!.ProgramHeaders.map((p) => p.ProgramHeader).filter((p) => p.Type.Value === 1)
    .map((p) => ({ offset: p.Offset, vaddr: p.VirtualAddress, filesz: p.FileSize }));
}

/** Defined function symbols (T/t, i for ifuncs) as llvm-nm lists them: `name address`. Weak symbols (W) are left out: nm does not say whether they are functions. */
function oracleFunctions(path: string, dynamic: boolean): string[] {
  const r = spawnSync(NM!, [...(dynamic ? ['-D'] : []), '--defined-only', path], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^([0-9a-f]+) ([Tti]) (\S+)$/.exec(line);
    if (m !== null && Number.parseInt(m[1]!, 16) !== 0) out.push(`${m[3]!.replace(/@.*$/, '')} ${Number.parseInt(m[1]!, 16)}`);
  }
  return out;
}

describe('reading executables and shared libraries (ET_EXEC / ET_DYN)', () => {
  let target = '';
  beforeAll(() => {
    target = buildUprobeTarget();
  });

  const oracleMissing = READOBJ === undefined || NM === undefined;
  if (oracleMissing) console.warn('llvm-readobj/llvm-nm missing: executable reader oracle tests skipped (.ci/run installs llvm-19)');

  it.skipIf(oracleMissing)('PT_LOAD segments and function symbols agree with llvm-readobj and llvm-nm: our target, bash, libc', () => {
    for (const path of [target, '/bin/bash', resolveBinary('libc.so.6')]) {
      const elf = readExecutable(readFileSync(path), { file: path });
      expect(elf.segments.map((s) => ({ offset: s.offset, vaddr: s.vaddr, filesz: s.filesz })), path).toEqual(oracleLoads(path));
      let compared = 0;
      for (const table of ['.symtab', '.dynsym'] as const) {
        // Pairs, not a map: libc has several versions of one name (glob64@GLIBC_2.2.5, glob64@@GLIBC_2.27) at different addresses.
        const ours = new Set(elf.functions.filter((f) => f.table === table).map((f) => `${f.name.replace(/@.*$/, '')} ${f.value}`));
        const theirs = table === '.dynsym' ? oracleFunctions(path, true) : elf.hasSymtab ? oracleFunctions(path, false) : [];
        // Every function the oracle lists is ours at the same address (ours may also keep weak/ifunc aliases nm folds).
        const wrong = theirs.filter((pair) => !ours.has(pair));
        expect(wrong, `${path} ${table}`).toEqual([]);
        compared += theirs.length;
      }
      expect(compared, path).toBeGreaterThan(0);
    }
  });

  it('a function\'s file offset goes through the PT_LOAD segment that maps it', () => {
    const elf = readExecutable(readFileSync(target), { file: target });
    const symbol = elf.functions.find((f) => f.name === 'target_add');
    expect(symbol?.table).toBe('.symtab');
    const segment = elf.segments.find((s) => s.executable && symbol!.value >= s.vaddr && symbol!.value < s.vaddr + s.filesz)!;
    expect(functionFileOffset(elf, 'target_add')).toBe(symbol!.value - segment.vaddr + segment.offset);
    expect(functionFileOffset(elf, 'target_add', 4)).toBe(functionFileOffset(elf, 'target_add') + 4);
    // The bytes there are the function's first instruction bytes in the file.
    expect(fileOffsetOf(elf, 0x7fff_ffff)).toBeUndefined();
  });

  it('bad input: typed errors naming the file', () => {
    const bash = readExecutable(readFileSync('/bin/bash'), { file: '/bin/bash' });
    expect(bash.hasSymtab).toBe(false);
    expect(() => functionFileOffset(bash, 'no_such_function')).toThrow(
      '/bin/bash: no function named "no_such_function": the file is stripped (no .symtab) and .dynsym does not export it');
    const elf = readExecutable(readFileSync(target), { file: 'uprobe_target' });
    expect(() => functionFileOffset(elf, 'nope')).toThrow('uprobe_target: no function named "nope" in .symtab or .dynsym');
    expect(() => functionFileOffset(elf, 'target_add', 4096)).toThrow(/offset 4096 is beyond target_add/);
    const object = readFileSync(join(SAMPLES_DIR, 'sockex1_kern.o'));
    expect(() => readExecutable(object, { file: 'sockex1_kern.o' })).toThrow(ElfError);
    expect(() => readExecutable(object, { file: 'sockex1_kern.o' })).toThrow('sockex1_kern.o: offset 0x10: expected an executable or shared library (ET_EXEC or ET_DYN), found e_type 1');
    const bytes = readFileSync(target);
    expect(() => readExecutable(bytes.subarray(0, 200), { file: 'cut' })).toThrow(/^cut: offset 0x40: program header table \(\d+ entries\) \(\d+ bytes\) extends past the end of the file \(200 bytes\)$/);
    expect(() => readExecutable(Buffer.from('#!/bin/sh\n'), { file: 'script' })).toThrow('script: not an ELF file (bad magic)');
  });
});
