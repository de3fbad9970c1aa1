import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { progTypeValue } from '../../src/base/uapi.js';
import { CORE_RELO_KINDS, parseBtf, parseBtfExt, type Btf, type CoreReloKind } from '../../src/btf/index.js';
import { decodeInsns, encodeInsns, type Insn } from '../../src/insn/index.js';
import {
  applyCoreRelocations, CORE_POISON_HELPER, CoreError, essentialName, type CoreResult,
} from '../../src/load/core.js';
import { relocateProgram, runningKernelBtf, type RelocatedProgram } from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec, type SubprogramSpec } from '../../src/object/index.js';
import { AttrWriter, bpfCall, closeFd, progLoad, SysError } from '../../src/sys/index.js';
import { BtfBuilder, buildBtfExt } from '../btf/btf-builder.js';
import { corpusFiles, corpusKernelTest, corpusTest, missingCorpusFile } from '../helpers/kernel.js';
import { catchError } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const BTF_TESTDATA = corpusFiles('cilium/btf/testdata', (n) => n.startsWith('relocs'));
const TESTDATA = corpusFiles('cilium/testdata', (n) => /^(manyprogs|errors)-e[lb]\.elf$/.test(n));
const NO_MAPS = { mapFd: () => 1000, dataMapFd: () => 1001 };

function corpusObject(files: string[] | undefined, name: string): BpfObjectSpec | undefined {
  const path = files?.find((f) => basename(f) === name);
  return path === undefined ? undefined : parseObject(readFileSync(path), { name });
}

function targetBtf(spec: BpfObjectSpec): Btf {
  expect(spec.btf).toBeDefined();
  return spec.btf!;
}

function relocated(spec: BpfObjectSpec, program: string): RelocatedProgram {
  const p = spec.programs.find((x) => x.name === program);
  expect(p, program).toBeDefined();
  return relocateProgram(spec, p!, NO_MAPS);
}

/** A lone function's code as its own "program": what relocateProgram gives when nothing is appended (any byte order). */
function alone(spec: BpfObjectSpec, name: string): RelocatedProgram {
  const fn = [...spec.programs, ...spec.subprograms].find((f) => f.name === name)!;
  return { insns: Uint8Array.from(fn.bytes), layout: [{ fn, start: 0 }] };
}

function insnAt(insns: Uint8Array, index: number, littleEndian = true): Insn {
  return decodeInsns(insns.subarray(index * 8, Math.min(insns.byteLength, index * 8 + 16)), littleEndian)[0]!;
}

/** The value a relocated instruction holds now: imm64 of a ld_imm64, off of a load/store, imm of an ALU op. */
function heldValue(insn: Insn): bigint {
  if (insn.opcode === 0x18) return insn.imm64!;
  const cls = insn.opcode & 7;
  if (cls === 1 || cls === 2 || cls === 3) return BigInt(insn.off);
  return BigInt(insn.imm);
}

function isPoisonCall(insn: Insn): boolean {
  return insn.opcode === 0x85 && insn.src === 0 && insn.dst === 0 && insn.off === 0 && insn.imm === CORE_POISON_HELPER;
}

const mov = (dst: number, imm: number): Insn => ({ opcode: 0xb7, dst, src: 0, off: 0, imm });
const ldxw = (dst: number, src: number, off: number): Insn => ({ opcode: 0x61, dst, src, off, imm: 0 });
const ldxdw = (dst: number, src: number, off: number): Insn => ({ opcode: 0x79, dst, src, off, imm: 0 });
const stw = (dst: number, off: number, imm: number): Insn => ({ opcode: 0x62, dst, src: 0, off, imm });
const ld64 = (dst: number, v: bigint): Insn => ({ opcode: 0x18, dst, src: 0, off: 0, imm: Number(BigInt.asIntN(32, v)), imm64: BigInt.asUintN(64, v) });
const exit: Insn = { opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 };

const SECTION = 'kprobe/hand';

interface HandRelo { at: number; type: number; access: string; kind: CoreReloKind }

/**
 * A one-function object built from scratch: `local` becomes its .BTF, the relocations its .BTF.ext (both through the
 * real parsers), `code` its instructions. Returns what applyCoreRelocations takes.
 */
function handObject(local: BtfBuilder, code: Insn[], relos: HandRelo[], littleEndian = true): { spec: BpfObjectSpec; program: RelocatedProgram } {
  const sectionOff = local.str(SECTION);
  const records = relos.map((r) => [r.at * 8, r.type, local.str(r.access), CORE_RELO_KINDS.indexOf(r.kind)]);
  const btf = parseBtf(local.build(littleEndian), littleEndian, { file: 'hand.o' });
  const ext = parseBtfExt(buildBtfExt({ coreRelo: { recSize: 16, sections: [{ nameOff: sectionOff, records }] } }, littleEndian), littleEndian, btf);
  const bytes = encodeInsns(code, littleEndian);
  const fn: SubprogramSpec = {
    name: 'hand', section: SECTION, sectionIndex: 1, offset: 0, bytes, littleEndian, global: true, relocations: [], isSubprogram: true,
  };
  const spec: BpfObjectSpec = {
    file: 'hand.o', littleEndian, machine: 247, license: 'GPL', kernVersion: undefined, sections: [], maps: [], programs: [],
    subprograms: [fn], relocations: [], variables: [], btf, btfExt: ext, btfProblem: undefined,
  };
  return { spec, program: { insns: Uint8Array.from(bytes), layout: [{ fn, start: 0 }] } };
}

function applyHand(local: BtfBuilder, target: BtfBuilder, code: Insn[], relos: HandRelo[]): { result: CoreResult; insns: Uint8Array; target: Btf } {
  const { spec, program } = handObject(local, code, relos);
  const tgt = parseBtf(target.build(), true, { file: 'target' });
  const result = applyCoreRelocations(spec, program.layout, program.insns, tgt);
  return { result, insns: program.insns, target: tgt };
}

// ---------------------------------------------------------------------------------------------------------------

describe('essentialName (flavours)', () => {
  it('drops the last ___suffix between non-underscores, nothing else', () => {
    expect(essentialName('task_struct___old')).toBe('task_struct');
    expect(essentialName('a___b___c')).toBe('a___b');
    expect(essentialName('task_struct')).toBe('task_struct');
    expect(essentialName('x____y')).toBe('x____y');
    expect(essentialName('___x')).toBe('___x');
    expect(essentialName('x___')).toBe('x___');
  });
});

describe('CO-RE against the cilium relocs_read target (relocs_read_tgt.c reorders and resizes fields)', () => {
  /**
   * What relocs_read_tgt.c's `struct bits` means for each field (keyed by the local access "0:N": x a b c d e f g),
   * worked out by hand from the target declaration: u8 b:2, a:4; my_u32 d:2; u16 c:1; enum e:1; u16 f; u32 g:30.
   * lshift differs by byte order: [little, big].
   */
  const BITS: Record<string, { field: string; off: number; size: number; lshift: [number, number]; rshift: number }> = {
    '0:1': { field: 'a', off: 0, size: 1, lshift: [58, 58], rshift: 60 },
    '0:2': { field: 'b', off: 0, size: 1, lshift: [62, 56], rshift: 62 },
    '0:3': { field: 'c', off: 0, size: 2, lshift: [55, 56], rshift: 63 },
    '0:4': { field: 'd', off: 0, size: 4, lshift: [56, 38], rshift: 62 },
    '0:5': { field: 'e', off: 0, size: 4, lshift: [54, 41], rshift: 63 },
    '0:6': { field: 'f', off: 2, size: 2, lshift: [48, 48], rshift: 48 },
    '0:7': { field: 'g', off: 4, size: 4, lshift: [34, 32], rshift: 34 },
  };

  function expectedValue(kind: CoreReloKind, typeName: string, access: string, littleEndian: boolean, target: Btf): bigint {
    if (typeName === 'struct s') {
      // Local `struct s { char b; char a; }`, target `{ char a; char b; }`: the offsets swap.
      const name = access === '0:1' ? 'a' : 'b';
      const member = target.findByName('struct', 's')!.members.find((m) => m.name === name)!;
      expect(kind).toBe('field_byte_offset');
      return BigInt(member.bitOffset / 8);
    }
    if (typeName === 'struct bits') {
      const b = BITS[access]!;
      switch (kind) {
        case 'field_byte_offset': return BigInt(b.off);
        case 'field_byte_size': return BigInt(b.size);
        case 'field_lshift_u64': return BigInt(b.lshift[littleEndian ? 0 : 1]);
        case 'field_rshift_u64': return BigInt(b.rshift);
        case 'field_signed': return 0n;
        default: throw new Error(`unexpected ${kind}`);
      }
    }
    // struct nonexist / enum nonexist_enum: not in the target, so every existence check is 0.
    expect(['type_exists', 'field_exists', 'enumval_exists']).toContain(kind);
    return 0n;
  }

  for (const order of ['el', 'eb'] as const) {
    corpusTest(`relocs_read-${order}: every relocation resolves to the target layout and the instructions hold it`, () => {
      const spec = corpusObject(BTF_TESTDATA, `relocs_read-${order}.elf`);
      const tgtSpec = corpusObject(BTF_TESTDATA, `relocs_read_tgt-${order}.elf`);
      if (spec === undefined || tgtSpec === undefined) throw missingCorpusFile();
      const target = targetBtf(tgtSpec);
      const le = order === 'el';
      // Little-endian goes through relocateProgram (read_subprog appended after `reads`); big-endian relocates the
      // subprogram alone, as relocateProgram writes little-endian call offsets.
      const program = le ? relocated(spec, 'reads') : alone(spec, 'read_subprog');
      const subStart = program.layout.find((l) => l.fn.name === 'read_subprog')!.start;
      if (le) expect(subStart).toBe(spec.programs[0]!.bytes.byteLength / 8);
      const before = Uint8Array.from(program.insns);

      const result = applyCoreRelocations(spec, program.layout, program.insns, target);
      expect(result.poisoned).toEqual([]);
      expect(result.applied).toHaveLength(47);
      for (const a of result.applied) {
        const what = `${a.kind} ${a.description}`;
        expect(a.function).toBe('read_subprog');
        expect(a.insn, what).toBe(subStart + a.sectionInsn);
        const localName = spec.btf!.typeName(a.localTypeId);
        expect(a.targetValue, what).toBe(expectedValue(a.kind, localName, a.access, le, target));
        expect(heldValue(insnAt(program.insns, a.insn, le)), what).toBe(BigInt.asIntN(64, a.targetValue));
      }
      // s.a and s.b are byte loads whose offsets swap: 1 → 0 and 0 → 1.
      const sLoads = result.applied.filter((a) => a.description.startsWith('struct s.'));
      expect(sLoads.map((a) => [a.description, a.localValue, a.targetValue])).toEqual([['struct s.a (0:1)', 1n, 0n], ['struct s.b (0:0)', 0n, 1n]]);
      // Only relocated instructions changed.
      const changed = new Set<number>();
      for (let i = 0; i < before.byteLength; i++) if (before[i] !== program.insns[i]) changed.add(Math.floor(i / 8));
      const sites = new Set(result.applied.flatMap((a) => (insnAt(before, a.insn, le).opcode === 0x18 ? [a.insn, a.insn + 1] : [a.insn])));
      for (const i of changed) expect(sites.has(i), `insn ${i}`).toBe(true);
    });
  }

  corpusTest('a big-endian object against a little-endian target is refused by name', () => {
    const spec = corpusObject(BTF_TESTDATA, 'relocs_read-eb.elf');
    const tgt = corpusObject(BTF_TESTDATA, 'relocs_read_tgt-el.elf');
    if (spec === undefined || tgt === undefined) throw missingCorpusFile();
    const program = alone(spec, 'read_subprog');
    const e = catchError(() => applyCoreRelocations(spec, program.layout, program.insns, targetBtf(tgt)));
    expect(e).toBeInstanceOf(CoreError);
    expect((e as Error).message).toMatch(/read_subprog.*big-endian but the target BTF is little-endian/);
  });

  corpusKernelTest('the relocated program reads its bitfields right: it returns 0 under BPF_PROG_TEST_RUN (and not without CO-RE)', () => {
    const spec = corpusObject(BTF_TESTDATA, 'relocs_read-el.elf');
    const tgtSpec = corpusObject(BTF_TESTDATA, 'relocs_read_tgt-el.elf');
    if (spec === undefined || tgtSpec === undefined) throw missingCorpusFile();
    const run = (target: Btf): number => {
      const program = relocated(spec, 'reads');
      applyCoreRelocations(spec, program.layout, program.insns, target);
      const fd = progLoad({ progType: progTypeValue('socket_filter'), insns: program.insns, license: 'GPL', progName: 'core_reads' });
      try {
        return testRun(fd, new Uint8Array(64));
      } finally {
        closeFd(fd);
      }
    };
    expect(run(targetBtf(tgtSpec))).toBe(0);
    // Against its own BTF nothing moves, and the program reports the first check that failed (a source line).
    expect(run(targetBtf(spec))).toBeGreaterThan(0);
  });
});

/** BPF_PROG_TEST_RUN once; returns the program's return value. */
function testRun(fd: number, data: Uint8Array): number {
  // union bpf_attr .test: prog_fd @0, retval @4, data_size_in @8, data_in @16, repeat @32; 76 bytes up to batch_size.
  const attr = new AttrWriter(76).u32(0, fd).u32(8, data.byteLength).pointer(16, data).u32(32, 1);
  bpfCall('PROG_TEST_RUN', attr);
  return attr.readU32(4);
}

describe('CO-RE with the object as its own target (cilium relocs, relocs_enum): nothing may change', () => {
  for (const order of ['el', 'eb'] as const) {
    corpusTest(`relocs-${order}: every relocation resolves to the compiler's value`, () => {
      const spec = corpusObject(BTF_TESTDATA, `relocs-${order}.elf`);
      if (spec === undefined) throw missingCorpusFile();
      const le = order === 'el';
      let total = 0;
      for (const p of spec.programs.filter((x) => !x.name.startsWith('err_'))) {
        const program = alone(spec, p.name);
        const before = Uint8Array.from(program.insns);
        const result = applyCoreRelocations(spec, program.layout, program.insns, targetBtf(spec));
        expect(result.poisoned, p.name).toEqual([]);
        expect(result.applied.length, p.name).toBe(spec.btfExt!.coreRelos.get(p.section)!.length);
        for (const a of result.applied) expect(a.targetValue, `${p.name} ${a.kind} ${a.description}`).toBe(a.localValue);
        expect(program.insns, p.name).toEqual(before);
        total += result.applied.length;
        if (le && p.name === 'type_ids') {
          // type_id_target resolves to the object's own id for the same type.
          const targetIds = result.applied.filter((a) => a.kind === 'type_id_target');
          expect(targetIds).toHaveLength(6);
          for (const a of targetIds) expect(a.targetTypeId).toBe(a.localTypeId);
        }
      }
      expect(total).toBe(28 + 18 + 7 + 48);
    });
  }

  for (const program of ['err_ambiguous', 'err_ambiguous_flavour']) {
    corpusTest(`relocs-el ${program}: two flavours of struct ambiguous both match, with different type ids: ambiguous`, () => {
      const spec = corpusObject(BTF_TESTDATA, 'relocs-el.elf');
      if (spec === undefined) throw missingCorpusFile();
      const p = alone(spec, program);
      const before = Uint8Array.from(p.insns);
      const e = catchError(() => applyCoreRelocations(spec, p.layout, p.insns, targetBtf(spec)));
      expect(e).toBeInstanceOf(CoreError);
      const err = e as CoreError;
      expect(err.program).toBe(program);
      expect(err.section).toBe(`socket/${program}`);
      expect(err.insn).toBe(0);
      expect(err.kind).toBe('type_id_target');
      expect(err.localType).toBe(program === 'err_ambiguous' ? 'struct ambiguous' : 'struct ambiguous___flavour');
      expect(err.message).toMatch(new RegExp(`^relocs-el\\.elf: program ${program} \\(section socket/${program}\\): insn 0: type_id_target struct ambiguous(___flavour)?: ambiguous: candidates struct ambiguous \\[\\d+\\] and struct ambiguous___flavour \\[\\d+\\] resolve to different values`));
      expect(p.insns).toEqual(before);
    });
  }

  corpusTest('relocs_enum-el: enumerator existence and value in a ld_imm64 stay as compiled', () => {
    const spec = corpusObject(BTF_TESTDATA, 'relocs_enum-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    const program = relocated(spec, 'core_ld64imm');
    const before = Uint8Array.from(program.insns);
    const result = applyCoreRelocations(spec, program.layout, program.insns, targetBtf(spec));
    expect(result.applied.map((a) => [a.kind, a.description, a.targetValue])).toEqual([
      ['enumval_exists', 'enum cgroup_subsys_id::cpuset_cgrp_id_lublub', 1n],
      ['enumval_value', 'enum cgroup_subsys_id::cpuset_cgrp_id_lublub', 1n],
    ]);
    expect(program.insns).toEqual(before);
  });
});

describe('CO-RE poisoning (cilium errors.c: a field and an enumerator the target lacks)', () => {
  corpusTest('the field load and both halves of the ld_imm64 become calls to the invalid helper; the rest applies', () => {
    const spec = corpusObject(TESTDATA, 'errors-el.elf');
    const tgt = corpusObject(BTF_TESTDATA, 'relocs_read_tgt-el.elf');
    if (spec === undefined || tgt === undefined) throw missingCorpusFile();

    const single = relocated(spec, 'poisoned_single');
    const r1 = applyCoreRelocations(spec, single.layout, single.insns, targetBtf(tgt));
    expect(r1.applied.map((a) => a.kind)).toEqual(['type_id_local']);
    expect(r1.poisoned).toHaveLength(1);
    expect(r1.poisoned[0]).toMatchObject({ insn: 6, kind: 'field_byte_offset', description: 'struct nonexist.non_exist (0:0)' });
    expect(r1.poisoned[0]!.reason).toBe('the target BTF has no struct named nonexist');
    expect(r1.poisoned[0]!.message).toBe('insn 6: field_byte_offset struct nonexist.non_exist (0:0): the target BTF has no struct named nonexist');
    expect(isPoisonCall(insnAt(single.insns, 6))).toBe(true);

    // poisoned_double starts at insn 8 of the section: its relocations land at 1 and 4 of the program.
    const double = relocated(spec, 'poisoned_double');
    const r2 = applyCoreRelocations(spec, double.layout, double.insns, targetBtf(tgt));
    expect(r2.applied.map((a) => [a.kind, a.insn, a.sectionInsn])).toEqual([['type_id_local', 1, 9]]);
    expect(r2.poisoned.map((p) => [p.kind, p.insn, p.description])).toEqual([['enumval_value', 4, 'enum nonexist_enum::NON_EXIST']]);
    expect(isPoisonCall(insnAt(double.insns, 4))).toBe(true);
    expect(isPoisonCall(insnAt(double.insns, 5))).toBe(true);
  });

  corpusKernelTest('the verifier rejects reachable poison as the invalid helper 0xbad2310', () => {
    const spec = corpusObject(TESTDATA, 'errors-el.elf');
    const tgt = corpusObject(BTF_TESTDATA, 'relocs_read_tgt-el.elf');
    if (spec === undefined || tgt === undefined) throw missingCorpusFile();
    const program = relocated(spec, 'poisoned_single');
    applyCoreRelocations(spec, program.layout, program.insns, targetBtf(tgt));
    const logBuf = new Uint8Array(1 << 16);
    const e = catchError(() => closeFd(progLoad({ progType: progTypeValue('socket_filter'), insns: program.insns, license: 'GPL', logLevel: 1, logBuf })));
    expect(e).toBeInstanceOf(SysError);
    expect(Buffer.from(logBuf).toString('utf8')).toContain(`unknown#${CORE_POISON_HELPER}`);
  });
});

describe('CO-RE on hand-built BTF', () => {
  /** int, unsigned int, long, unsigned long: ids 1-4 in every builder made by `base`. */
  function base(): BtfBuilder {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true });
    b.int('unsigned int', 4);
    b.int('long', 8, { signed: true });
    b.int('unsigned long', 8);
    return b;
  }
  const INT = 1;
  const UINT = 2;
  const LONG = 3;
  const ULONG = 4;

  it('a moved field: load offsets and offset immediates follow it', () => {
    const local = base();
    const ts = local.struct('task_struct', 8, [{ name: 'pid', type: INT, bitOffset: 0 }, { name: 'tgid', type: INT, bitOffset: 32 }]);
    const target = base();
    const tts = target.struct('task_struct', 32, [
      { name: 'state', type: LONG, bitOffset: 0 }, { name: 'pid', type: INT, bitOffset: 128 }, { name: 'tgid', type: INT, bitOffset: 160 },
    ]);
    const { result, insns } = applyHand(local, target, [ldxw(0, 1, 0), mov(2, 4), stw(1, 4, 7), exit], [
      { at: 0, type: ts, access: '0:0', kind: 'field_byte_offset' },
      { at: 1, type: ts, access: '0:1', kind: 'field_byte_offset' },
      { at: 2, type: ts, access: '0:1', kind: 'field_byte_offset' },
    ]);
    expect(result.poisoned).toEqual([]);
    expect(result.applied.map((a) => [a.description, a.localValue, a.targetValue, a.targetTypeId])).toEqual([
      ['struct task_struct.pid (0:0)', 0n, 16n, tts], ['struct task_struct.tgid (0:1)', 4n, 20n, tts], ['struct task_struct.tgid (0:1)', 4n, 20n, tts],
    ]);
    expect(insnAt(insns, 0)).toEqual(ldxw(0, 1, 16));
    expect(insnAt(insns, 1)).toEqual(mov(2, 20));
    expect(insnAt(insns, 2)).toEqual(stw(1, 20, 7));
    expect(insnAt(insns, 3)).toEqual(exit);
  });

  it('fields found through anonymous members, array elements and pointer-as-array indices', () => {
    const local = base();
    const arr = local.array(UINT, INT, 4);
    const s = local.struct('s', 20, [{ name: 'x', type: INT, bitOffset: 0 }, { name: 'vals', type: arr, bitOffset: 32 }]);
    const target = base();
    const tarr = target.array(UINT, INT, 8);
    const inner = target.struct('', 36, [{ name: 'pad', type: LONG, bitOffset: 0 }, { name: 'vals', type: tarr, bitOffset: 64 }]);
    const anon = target.union('', 36, [{ name: '', type: inner, bitOffset: 0 }]);
    target.struct('s', 48, [{ name: 'x', type: INT, bitOffset: 0 }, { name: '', type: anon, bitOffset: 64 }]);
    const { result } = applyHand(local, target, [mov(1, 12), mov(2, 32), mov(3, 4), exit], [
      // s.vals[2]: local 4 + 2*4; target 8 (anon union) + 8 (vals in the anonymous struct) + 2*4.
      { at: 0, type: s, access: '0:1:2', kind: 'field_byte_offset' },
      // s[1].vals[2]... as offset from the base pointer: 20 + 12 locally.
      { at: 1, type: s, access: '1:1:2', kind: 'field_byte_offset' },
      { at: 2, type: s, access: '0:1:2', kind: 'field_byte_size' },
    ]);
    expect(result.applied.map((a) => [a.description, a.targetValue])).toEqual([
      ['struct s.vals[2] (0:1:2)', 24n], ['struct s[1].vals[2] (1:1:2)', 72n], ['struct s.vals[2] (0:1:2)', 4n],
    ]);
  });

  it('a load of an unsigned field that grew is widened; a signed one is poisoned', () => {
    const local = base();
    const s = local.struct('s', 8, [{ name: 'flags', type: UINT, bitOffset: 0 }, { name: 'count', type: INT, bitOffset: 32 }]);
    const target = base();
    target.struct('s', 16, [{ name: 'flags', type: ULONG, bitOffset: 0 }, { name: 'count', type: LONG, bitOffset: 64 }]);
    const { result, insns } = applyHand(local, target, [ldxw(0, 1, 0), ldxw(2, 1, 4), mov(3, 4), exit], [
      { at: 0, type: s, access: '0:0', kind: 'field_byte_offset' },
      { at: 1, type: s, access: '0:1', kind: 'field_byte_offset' },
      // The same signed field through an ALU immediate: only loads and stores care about width.
      { at: 2, type: s, access: '0:1', kind: 'field_byte_offset' },
    ]);
    expect(result.applied.map((a) => [a.insn, a.targetValue, a.memSize])).toEqual([[0, 0n, { from: 4, to: 8 }], [2, 8n, undefined]]);
    expect(insnAt(insns, 0)).toEqual(ldxdw(0, 1, 0));
    expect(result.poisoned).toHaveLength(1);
    expect(result.poisoned[0]!.insn).toBe(1);
    expect(result.poisoned[0]!.reason).toMatch(/8 bytes in the target but 4 locally.*only unsigned integers and pointers/);
    expect(isPoisonCall(insnAt(insns, 1))).toBe(true);
    expect(insnAt(insns, 2)).toEqual(mov(3, 8));
  });

  it('a missing field: the load is poisoned, field_exists says 0, type_exists still 1', () => {
    const local = base();
    const s = local.struct('task_struct', 8, [{ name: 'pid', type: INT, bitOffset: 0 }, { name: 'loginuid', type: INT, bitOffset: 32 }]);
    const target = base();
    const tts = target.struct('task_struct', 4, [{ name: 'pid', type: INT, bitOffset: 0 }]);
    const { result, insns } = applyHand(local, target, [mov(1, 1), ldxw(0, 1, 4), mov(2, 1), mov(3, 1), exit], [
      { at: 0, type: s, access: '0:1', kind: 'field_exists' },
      { at: 1, type: s, access: '0:1', kind: 'field_byte_offset' },
      { at: 2, type: s, access: '0', kind: 'type_exists' },
      { at: 3, type: s, access: '0:0', kind: 'field_exists' },
    ]);
    expect(result.applied.map((a) => [a.insn, a.kind, a.targetValue])).toEqual([[0, 'field_exists', 0n], [2, 'type_exists', 1n], [3, 'field_exists', 1n]]);
    expect(result.poisoned.map((p) => [p.insn, p.description, p.reason])).toEqual([
      [1, 'struct task_struct.loginuid (0:1)', `no candidate in the target BTF (struct task_struct [${tts}]) has a compatible field at this path`],
    ]);
    expect(insnAt(insns, 0)).toEqual(mov(1, 0));
    expect(isPoisonCall(insnAt(insns, 1))).toBe(true);
  });

  it('a field whose type changed kind (int → struct) does not match: poisoned', () => {
    const local = base();
    const s = local.struct('s', 4, [{ name: 'v', type: INT, bitOffset: 0 }]);
    const target = base();
    const inner = target.struct('wrapped', 4, [{ name: 'raw', type: INT, bitOffset: 0 }]);
    target.struct('s', 4, [{ name: 'v', type: inner, bitOffset: 0 }]);
    const { result } = applyHand(local, target, [ldxw(0, 1, 0), exit], [{ at: 0, type: s, access: '0:0', kind: 'field_byte_offset' }]);
    expect(result.poisoned).toHaveLength(1);
  });

  it('enum values: changed values are written (ALU and ld_imm64, 64-bit included); a missing enumerator poisons', () => {
    const local = base();
    const e = local.enum('state', 4, [['RUNNING', 1], ['STOPPED', 2], ['GONE', 3]]);
    const e64 = local.enum64('big', 8, [['HUGE', 0x1_0000_0001n]]);
    const target = base();
    target.enum('state', 4, [['STOPPED', 5], ['RUNNING', 7]]);
    target.enum64('big', 8, [['HUGE', 0xffff_0000_0000_0002n]]);
    const { result, insns } = applyHand(local, target, [mov(1, 2), ld64(2, 1n), ld64(3, 0x1_0000_0001n), mov(4, 1), ld64(5, 3n), exit], [
      { at: 0, type: e, access: '1', kind: 'enumval_value' },
      { at: 1, type: e, access: '0', kind: 'enumval_value' },
      { at: 3, type: e64, access: '0', kind: 'enumval_value' },
      { at: 5, type: e, access: '2', kind: 'enumval_exists' },
      { at: 6, type: e, access: '2', kind: 'enumval_value' },
    ]);
    expect(result.applied.map((a) => [a.description, a.targetValue])).toEqual([
      ['enum state::STOPPED', 5n], ['enum state::RUNNING', 7n], ['enum big::HUGE', 0xffff_0000_0000_0002n], ['enum state::GONE', 0n],
    ]);
    expect(insnAt(insns, 0)).toEqual(mov(1, 5));
    expect(insnAt(insns, 1)).toEqual(ld64(2, 7n));
    expect(insnAt(insns, 3)).toEqual(ld64(3, 0xffff_0000_0000_0002n));
    expect(insnAt(insns, 5)).toEqual(mov(4, 0));
    expect(result.poisoned.map((p) => [p.insn, p.reason])).toEqual([[6, expect.stringMatching(/has enumerator GONE$/)]]);
    expect(isPoisonCall(insnAt(insns, 6))).toBe(true);
    expect(isPoisonCall(insnAt(insns, 7))).toBe(true);
  });

  it('type size and existence; type_id_target is the target id; a missing type gives 0 (not poison)', () => {
    const local = base();
    const foo = local.struct('foo', 8, [{ name: 'a', type: LONG, bitOffset: 0 }]);
    const fooT = local.typedef('foo_t', foo);
    const gone = local.struct('gone', 4, [{ name: 'a', type: INT, bitOffset: 0 }]);
    const target = base();
    target.int('char', 1);
    const tfoo = target.struct('foo', 24, [{ name: 'a', type: LONG, bitOffset: 0 }, { name: 'b', type: LONG, bitOffset: 64 }, { name: 'c', type: LONG, bitOffset: 128 }]);
    const tfooT = target.typedef('foo_t', tfoo);
    const { result, insns } = applyHand(local, target, [mov(1, 8), mov(2, 8), ld64(3, BigInt(foo)), mov(4, 1), mov(5, 4), ld64(6, BigInt(gone)), exit], [
      { at: 0, type: foo, access: '0', kind: 'type_size' },
      { at: 1, type: fooT, access: '0', kind: 'type_size' },
      { at: 2, type: foo, access: '0', kind: 'type_id_target' },
      { at: 4, type: gone, access: '0', kind: 'type_exists' },
      { at: 5, type: gone, access: '0', kind: 'type_size' },
      { at: 6, type: gone, access: '0', kind: 'type_id_target' },
    ]);
    expect(result.poisoned).toEqual([]);
    expect(result.applied.map((a) => [a.description, a.kind, a.targetValue, a.targetTypeId])).toEqual([
      ['struct foo', 'type_size', 24n, tfoo], ['foo_t', 'type_size', 24n, tfooT], ['struct foo', 'type_id_target', BigInt(tfoo), tfoo],
      ['struct gone', 'type_exists', 0n, undefined], ['struct gone', 'type_size', 0n, undefined], ['struct gone', 'type_id_target', 0n, undefined],
    ]);
    expect(insnAt(insns, 0)).toEqual(mov(1, 24));
    expect(insnAt(insns, 2)).toEqual(ld64(3, BigInt(tfoo)));
    expect(insnAt(insns, 6)).toEqual(ld64(6, 0n));
  });

  it('type_matches checks members (names, int sizes and signs), unlike type_exists', () => {
    const local = base();
    const same = local.struct('same', 8, [{ name: 'a', type: UINT, bitOffset: 0 }]);
    const resized = local.struct('resized', 8, [{ name: 'a', type: UINT, bitOffset: 0 }]);
    const target = base();
    target.struct('same', 16, [{ name: 'z', type: LONG, bitOffset: 0 }, { name: 'a', type: UINT, bitOffset: 64 }]);
    target.struct('resized', 8, [{ name: 'a', type: ULONG, bitOffset: 0 }]);
    const { result } = applyHand(local, target, [mov(1, 1), mov(2, 1), mov(3, 1), exit], [
      { at: 0, type: same, access: '0', kind: 'type_matches' },
      { at: 1, type: resized, access: '0', kind: 'type_matches' },
      { at: 2, type: resized, access: '0', kind: 'type_exists' },
    ]);
    expect(result.applied.map((a) => [a.description, a.kind, a.targetValue])).toEqual([
      ['struct same', 'type_matches', 1n], ['struct resized', 'type_matches', 0n], ['struct resized', 'type_exists', 1n],
    ]);
  });

  it('flavours: task_struct___old resolves against the target task_struct; a flavour whose field is absent poisons', () => {
    const local = base();
    const old = local.struct('task_struct___old', 8, [{ name: 'state', type: LONG, bitOffset: 0 }]);
    const neu = local.struct('task_struct___new', 4, [{ name: '__state', type: UINT, bitOffset: 0 }]);
    const target = base();
    const tts = target.struct('task_struct', 40, [{ name: 'stack', type: LONG, bitOffset: 0 }, { name: 'state', type: LONG, bitOffset: 128 }]);
    const { result, insns } = applyHand(local, target, [mov(1, 1), ldxdw(2, 1, 0), mov(3, 1), ldxw(4, 1, 0), exit], [
      { at: 0, type: old, access: '0:0', kind: 'field_exists' },
      { at: 1, type: old, access: '0:0', kind: 'field_byte_offset' },
      { at: 2, type: neu, access: '0:0', kind: 'field_exists' },
      { at: 3, type: neu, access: '0:0', kind: 'field_byte_offset' },
    ]);
    expect(result.applied.map((a) => [a.description, a.targetValue, a.targetTypeId])).toEqual([
      ['struct task_struct___old.state (0:0)', 1n, tts], ['struct task_struct___old.state (0:0)', 16n, tts], ['struct task_struct___new.__state (0:0)', 0n, undefined],
    ]);
    expect(insnAt(insns, 1)).toEqual(ldxdw(2, 1, 16));
    expect(result.poisoned.map((p) => p.insn)).toEqual([3]);
  });

  it('several target flavours: agreeing ones are fine, disagreeing ones are an ambiguity error', () => {
    const local = base();
    const s = local.struct('s', 8, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    const target = base();
    target.struct('s', 8, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    target.struct('s___2', 12, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'c', type: INT, bitOffset: 32 }, { name: 'b', type: INT, bitOffset: 64 }]);
    // `a` sits at 0 in both: fine. `b` differs: ambiguous.
    const ok = applyHand(local, target, [mov(1, 0), exit], [{ at: 0, type: s, access: '0:0', kind: 'field_byte_offset' }]);
    expect(ok.result.applied.map((a) => a.targetValue)).toEqual([0n]);
    const local2 = base();
    const s2 = local2.struct('s', 8, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    const e = catchError(() => applyHand(local2, target, [mov(1, 4), exit], [{ at: 0, type: s2, access: '0:1', kind: 'field_byte_offset' }]));
    expect(e).toBeInstanceOf(CoreError);
    expect((e as Error).message).toMatch(/^hand\.o: program hand \(section kprobe\/hand\): insn 0: field_byte_offset struct s\.b \(0:1\): ambiguous: candidates struct s \[\d+\] and struct s___2 \[\d+\] put the field at different offsets \(bit 32 vs 64\)$/);
  });

  it('a candidate ruled out by one relocation stays out for the later ones of the same type (libbpf pruning)', () => {
    const local = base();
    const s = local.struct('s', 8, [{ name: 'only_in_first', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    const target = base();
    target.struct('s', 8, [{ name: 'only_in_first', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    target.struct('s___2', 16, [{ name: 'b', type: INT, bitOffset: 96 }]);
    const relos: HandRelo[] = [
      { at: 0, type: s, access: '0:0', kind: 'field_byte_offset' },
      { at: 1, type: s, access: '0:1', kind: 'field_byte_offset' },
    ];
    const { result } = applyHand(local, target, [mov(1, 0), mov(2, 4), exit], relos);
    expect(result.applied.map((a) => a.targetValue)).toEqual([0n, 4n]);
  });

  it('an instruction that disagrees with the local type is an error naming both values', () => {
    const local = base();
    const s = local.struct('s', 8, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    const target = base();
    target.struct('s', 8, [{ name: 'a', type: INT, bitOffset: 0 }, { name: 'b', type: INT, bitOffset: 32 }]);
    const e = catchError(() => applyHand(local, target, [exit, ldxw(0, 1, 8), exit], [{ at: 1, type: s, access: '0:1', kind: 'field_byte_offset' }]));
    expect(e).toBeInstanceOf(CoreError);
    const err = e as CoreError;
    expect(err.insn).toBe(1);
    expect(err.access).toBe('0:1');
    expect(err.localType).toBe('struct s');
    expect(err.message).toBe("hand.o: program hand (section kprobe/hand): insn 1: field_byte_offset struct s.b (0:1): the instruction's offset is 8, but the local type says 4 (the object and its BTF disagree)");
  });

  it('malformed records and unrelocatable instructions are errors, not crashes', () => {
    const mk = () => {
      const local = base();
      const s = local.struct('s', 4, [{ name: 'a', type: INT, bitOffset: 0 }]);
      const target = base();
      target.struct('s', 4, [{ name: 'a', type: INT, bitOffset: 0 }]);
      return { local, s, target };
    };
    const cases: Array<[Insn[], Omit<HandRelo, 'type'>, RegExp]> = [
      [[mov(1, 0), exit], { at: 0, access: '0:5', kind: 'field_byte_offset' }, /struct s has 1 members, not 6/],
      [[mov(1, 0), exit], { at: 0, access: '0:x', kind: 'field_byte_offset' }, /malformed access string "0:x"/],
      [[mov(1, 0), exit], { at: 0, access: '0:0', kind: 'type_size' }, /must be "0"/],
      [[{ opcode: 0x05, dst: 0, src: 0, off: 0, imm: 0 }, exit], { at: 0, access: '0:0', kind: 'field_byte_offset' }, /a jump .* cannot be relocated/],
      [[{ opcode: 0xbf, dst: 1, src: 2, off: 0, imm: 0 }, exit], { at: 0, access: '0:0', kind: 'field_byte_offset' }, /register operand/],
      [[mov(1, 0), exit], { at: 0, access: '0:0', kind: 'enumval_value' }, /enum value relocation against a struct/],
      [[mov(1, 0), exit], { at: 0, access: '0:0', kind: 'field_signed' }, /local type says 1/],
    ];
    for (const [code, relo, pattern] of cases) {
      const { local, s, target } = mk();
      const e = catchError(() => applyHand(local, target, code, [{ ...relo, type: s }]));
      expect(e, String(pattern)).toBeInstanceOf(CoreError);
      expect((e as Error).message).toMatch(pattern);
    }
  });

  it('instructions shorter than the layout says are an error, not an out-of-bounds write', () => {
    const local = base();
    const s = local.struct('s', 4, [{ name: 'a', type: INT, bitOffset: 0 }]);
    const target = base();
    const { spec, program } = handObject(local, [exit, mov(1, 0)], [{ at: 1, type: s, access: '0:0', kind: 'field_byte_offset' }]);
    const e = catchError(() => applyCoreRelocations(spec, program.layout, program.insns.subarray(0, 8), parseBtf(target.build(), true)));
    expect((e as Error).message).toMatch(/insn 1: field_byte_offset struct s\.a \(0:0\): instruction 1 is past the end of the program \(1 instructions\)/);
  });

  it('an offset beyond 16 bits or an immediate beyond 32 bits is refused', () => {
    const local = base();
    const s = local.struct('s', 4, [{ name: 'a', type: INT, bitOffset: 0 }]);
    const target = base();
    target.struct('s', 0x10004, [{ name: 'a', type: INT, bitOffset: 0x10000 * 8 }]);
    const e = catchError(() => applyHand(local, target, [ldxw(0, 1, 0), exit], [{ at: 0, type: s, access: '0:0', kind: 'field_byte_offset' }]));
    expect((e as Error).message).toMatch(/offset 65536 does not fit the instruction's 16-bit offset/);
    const local2 = base();
    const e2 = local2.enum64('big', 8, [['HUGE', 1n]]);
    const target2 = base();
    target2.enum64('big', 8, [['HUGE', 1n << 40n]]);
    const err = catchError(() => applyHand(local2, target2, [mov(0, 1), exit], [{ at: 0, type: e2, access: '0', kind: 'enumval_value' }]));
    expect((err as Error).message).toMatch(/value 1099511627776 does not fit the instruction's 32-bit immediate/);
  });
});

describe('CO-RE against the running kernel (manyprogs: BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum))', () => {
  const VMLINUX = '/sys/kernel/btf/vmlinux';

  /** Byte offset of a member path in a vmlinux struct, looking through anonymous members (independent of core.ts). */
  function memberOffset(btf: Btf, struct: string, path: string[]): number {
    const top = btf.findByName('struct', struct);
    if (top === undefined) throw new Error(`no struct ${struct}`);
    const find = (id: number, name: string): { bits: number; type: number } | undefined => {
      const t = btf.type(btf.resolve(id));
      if (t.kind !== 'struct' && t.kind !== 'union') return undefined;
      for (const m of t.members) {
        if (m.name === name) return { bits: m.bitOffset, type: m.type };
        if (m.name === '') {
          const inner = find(m.type, name);
          if (inner !== undefined) return { bits: m.bitOffset + inner.bits, type: inner.type };
        }
      }
      return undefined;
    };
    let id = top.id;
    let bits = 0;
    for (const name of path) {
      const found = find(id, name);
      if (found === undefined) throw new Error(`no member ${name} in ${btf.typeName(id)}`);
      bits += found.bits;
      id = found.type;
    }
    return bits / 8;
  }

  corpusTest('every program relocates without error and the offsets are vmlinux member offsets', () => {
    const spec = corpusObject(TESTDATA, 'manyprogs-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    if (!existsSync(VMLINUX)) {
      console.warn(`${VMLINUX} absent: kernel BTF test skipped`);
      return;
    }
    const vmlinux = runningKernelBtf();
    const expected = new Map([
      ['struct task_struct.nsproxy (0:0)', memberOffset(vmlinux, 'task_struct', ['nsproxy'])],
      ['struct nsproxy.mnt_ns (0:0)', memberOffset(vmlinux, 'nsproxy', ['mnt_ns'])],
      ['struct mnt_namespace.ns.inum (0:0:0)', memberOffset(vmlinux, 'mnt_namespace', ['ns', 'inum'])],
    ]);
    expect(spec.programs).toHaveLength(30);
    for (const p of spec.programs) {
      const program = relocated(spec, p.name);
      const result = applyCoreRelocations(spec, program.layout, program.insns, vmlinux);
      expect(result.poisoned, p.name).toEqual([]);
      expect(result.applied.map((a) => [a.description, Number(a.targetValue)]), p.name).toEqual([...expected]);
      for (const a of result.applied) {
        expect(vmlinux.type(a.targetTypeId!).name).toBe(spec.btf!.type(a.localTypeId).name);
        expect(insnAt(program.insns, a.insn).imm).toBe(Number(a.targetValue));
      }
    }
  });
});
