import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PseudoSrc } from '../../src/base/uapi.js';
import { decodeInsns, isLdImm64 } from '../../src/insn/index.js';
import { relocateProgram, RelocationError } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { corpusFiles, corpusTest, missingCorpusFile, SAMPLES_DIR } from '../helpers/kernel.js';

const spec = (name: string) => parseObject(readFileSync(join(SAMPLES_DIR, name)), { name });
const FAKE_FDS = new Map([['my_map', 42], ['jmp_table', 7], ['slot_hits', 8], ['.data', 100], ['.rodata', 101], ['.bss', 102]]);
const targets = {
  mapFd: (name: string) => FAKE_FDS.get(name),
  dataMapFd: (section: string) => FAKE_FDS.get(section),
};

describe('relocateProgram (pure: fake fds, no kernel)', () => {
  it('writes map fds into a copy of the instructions as BPF_PSEUDO_MAP_FD; the spec is untouched', () => {
    const s = spec('sockex1_kern.o');
    const program = s.programs[0]!;
    const before = Uint8Array.from(program.bytes);
    const { insns, layout } = relocateProgram(s, program, targets);
    expect(Uint8Array.from(program.bytes)).toEqual(before);
    expect(layout.map((l) => [l.fn.name, l.start])).toEqual([['bpf_prog1', 0]]);
    const lds = decodeInsns(insns, true).filter(isLdImm64);
    expect(lds).toHaveLength(1);
    expect(lds[0]).toMatchObject({ src: PseudoSrc.MAP_FD, imm: 42, imm64: 42n });
    // Everything else is byte-identical.
    const at = program.relocations[0]!.insn * 8;
    const changed = [...insns.keys()].filter((i) => insns[i] !== before[i]);
    expect(changed.every((i) => i >= at && i < at + 16)).toBe(true);
  });

  it('global variables become BPF_PSEUDO_MAP_VALUE with the variable offset in the second half', () => {
    const s = spec('globals_kern.o');
    const program = s.programs.find((p) => p.name === 'keep_prefix')!;
    const lds = decodeInsns(relocateProgram(s, program, targets).insns, true).filter(isLdImm64);
    const expected = program.relocations.filter((r) => r.kind === 'data').map((r) => ({
      src: PseudoSrc.MAP_VALUE, imm: FAKE_FDS.get(r.target), imm64: (BigInt(r.targetOffset) << 32n) | BigInt(FAKE_FDS.get(r.target)!),
    }));
    expect(lds.map(({ src, imm, imm64 }) => ({ src, imm, imm64 }))).toEqual(expected);
  });

  it('subprograms are appended once and calls point at them', () => {
    const s = spec('globals_kern.o');
    const program = s.programs.find((p) => p.name === 'count_getpid')!;
    const { insns, layout } = relocateProgram(s, program, targets);
    const add = layout.find((l) => l.fn.name === 'add')!;
    expect(add.start).toBe(program.bytes.byteLength / 8);
    expect(insns.byteLength).toBe(program.bytes.byteLength + add.fn.bytes.byteLength);
    const decoded = decodeInsns(insns, true);
    let slot = 0;
    for (const insn of decoded) {
      if (insn.opcode === 0x85 && insn.src === 1) expect(slot + 1 + insn.imm).toBe(add.start);
      slot += isLdImm64(insn) ? 2 : 1;
    }
  });

  corpusTest('a map the loader did not create, and an extern symbol, are RelocationErrors naming them', () => {
    const s = spec('sockex1_kern.o');
    expect(() => relocateProgram(s, s.programs[0]!, { mapFd: () => undefined, dataMapFd: () => undefined }))
      .toThrow(new RelocationError('bpf_prog1: insn 7 of socket1: map my_map was not created'));
    const path = corpusFiles('cilium', (n) => n === 'fwd_decl-el.elf')?.[0];
    if (path === undefined) throw missingCorpusFile();
    const fwd = parseObject(readFileSync(path));
    expect(() => relocateProgram(fwd, fwd.programs[0]!, targets)).toThrow(/symbol fwd is not defined in this object/);
  });

  corpusTest('callbacks (function-address ld_imm64) become BPF_PSEUDO_FUNC pointing at the appended subprogram', () => {
    const path = corpusFiles('cilium', (n) => n === 'subprog_reloc-el.elf')?.[0];
    if (path === undefined) throw missingCorpusFile();
    const s = parseObject(readFileSync(path));
    const { insns, layout } = relocateProgram(s, s.programs[0]!, { mapFd: () => 3, dataMapFd: () => 4 });
    const callee = layout.find((l) => l.fn.name === 'sub_prog')!;
    let slot = 0;
    let seen = 0;
    for (const insn of decodeInsns(insns, true)) {
      if (isLdImm64(insn) && insn.src === PseudoSrc.FUNC) {
        expect(slot + 1 + insn.imm).toBe(callee.start);
        seen++;
      }
      slot += isLdImm64(insn) ? 2 : 1;
    }
    expect(seen).toBeGreaterThan(0);
  });
});
