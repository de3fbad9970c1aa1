import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBtf, parseBtfExt, withDatasecFixups, type Btf, type BtfExt, type BtfLineInfo } from '../../src/btf/index.js';
import { readElf, SectionFlags, SectionType, SymbolType, type ElfFile } from '../../src/elf/index.js';
import { corpusFiles, findLlvmObjdump, oracleTool, SAMPLES_DIR } from '../helpers/kernel.js';
import { normalizeRawDump, toRawDump } from './raw-dump.js';
import { parseRawDump } from './support.js';

const BPFTOOL = oracleTool('bpftool', ['/usr/sbin/bpftool', '/usr/bin/bpftool', '/usr/local/sbin/bpftool'], 'apt-get install bpftool');
const OBJDUMP = findLlvmObjdump();
if (OBJDUMP === undefined) console.warn('llvm-objdump not installed: .BTF.ext oracle comparisons skipped');

interface Loaded {
  path: string;
  name: string;
  elf: ElfFile;
  btf: Btf;
  ext: BtfExt | undefined;
}

function objectPaths(): string[] {
  const samples = existsSync(SAMPLES_DIR)
    ? readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.o')).map((f) => join(SAMPLES_DIR, f))
    : [];
  return [...samples, ...(corpusFiles('cilium', (n) => n.endsWith('.o') || n.endsWith('.elf')) ?? [])];
}

function load(path: string): Loaded | undefined {
  const name = basename(path);
  const elf = readElf(readFileSync(path), { file: name });
  const btfSection = elf.section('.BTF');
  if (btfSection === undefined) return undefined;
  const btf = parseBtf(btfSection.data, elf.littleEndian, { file: name });
  const extSection = elf.section('.BTF.ext');
  const ext = extSection === undefined ? undefined : parseBtfExt(extSection.data, elf.littleEndian, btf);
  return { path, name, elf, btf, ext };
}

const paths = objectPaths();
let cache: Loaded[] | undefined;
/** Loaded lazily, inside a test, so a parse failure fails that test instead of the whole file's collection. */
function allLoaded(): Loaded[] {
  cache ??= paths.map(load).filter((l): l is Loaded => l !== undefined);
  return cache;
}
const corpusPresent = paths.some((p) => p.includes('/corpus/'));

/** The big-endian twin of a little-endian object, when the corpus or samples have one. */
function twinOf(path: string): string | undefined {
  const candidates = [
    path.replace(/-el\.elf$/, '-eb.elf'),
    path.replace(/bpfel\.o$/, 'bpfeb.o'),
    /\.(btf|eb)\.o$/.test(path) ? path : path.replace(/\.o$/, '.eb.o'),
  ];
  return candidates.find((c) => c !== path && existsSync(c));
}

function run(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

describe('parsing every object with .BTF', () => {
  it('finds BTF in the corpus and samples', () => {
    if (corpusPresent) expect(allLoaded().filter((l) => l.path.includes('/corpus/')).length).toBeGreaterThan(60);
    expect(allLoaded().length).toBeGreaterThan(0);
  });

  it('names and sizes every type without error', () => {
    for (const { btf } of allLoaded()) {
      for (const t of btf.types) {
        expect(typeof btf.typeName(t.id)).toBe('string');
        if (['int', 'ptr', 'array', 'struct', 'union', 'enum', 'enum64', 'typedef', 'const', 'volatile', 'float'].includes(t.kind)) {
          expect(btf.sizeof(t.id)).toBeGreaterThanOrEqual(0);
        }
      }
    }
  });

  it('gives deep-equal types and .BTF.ext records for little- and big-endian twins', () => {
    let pairs = 0;
    let identicalExt = 0;
    for (const el of allLoaded().filter((l) => l.elf.littleEndian)) {
      const twinPath = twinOf(el.path);
      if (twinPath === undefined) continue;
      const eb = load(twinPath);
      expect(eb, twinPath).toBeDefined();
      expect(eb!.elf.littleEndian).toBe(false);
      expect(eb!.btf.types, el.name).toEqual(el.btf.types);
      pairs++;
      if (el.ext === undefined) {
        expect(eb!.ext).toBeUndefined();
        continue;
      }
      // Code can differ between byte orders (bpf_htons is a no-op on big-endian), which moves instruction offsets;
      // where every program section has the same size the records must be identical.
      const sameCode = el.elf.sections.every((s) => (s.flags & SectionFlags.EXECINSTR) === 0 || eb!.elf.section(s.name)?.size === s.size);
      if (sameCode) {
        // lineInfoBytes are the file's bytes, in each file's own byte order: the decoded records are compared instead.
        const { lineInfoBytes: ebBytes, ...ebExt } = eb!.ext!;
        const { lineInfoBytes: elBytes, ...elExt } = el.ext;
        expect(ebExt, el.name).toEqual({ ...elExt, file: eb!.name });
        expect([...ebBytes.keys()], el.name).toEqual([...elBytes.keys()]);
        identicalExt++;
      } else {
        const shape = (ext: BtfExt) => ({
          funcs: [...ext.funcInfo].map(([sec, fs]) => [sec, fs.map((f) => f.typeId)]),
          relos: [...ext.coreRelos].map(([sec, rs]) => [sec, rs.map((r) => `${r.kind} ${r.typeId} ${r.access}`)]),
          lines: [...new Set([...ext.lineInfo.values()].flat().map((li) => `${li.fileName}:${li.lineNumber}`))].sort(),
        });
        expect(shape(eb!.ext!), el.name).toEqual(shape(el.ext));
      }
    }
    if (corpusPresent) {
      expect(pairs).toBeGreaterThan(30);
      expect(identicalExt).toBeGreaterThan(25);
    }
  });
});

describe.runIf(BPFTOOL !== undefined)('agreement with bpftool btf dump format raw', () => {
  for (const path of paths) {
    it(`${path.includes('/corpus/') ? 'corpus' : 'sample'} ${basename(path)}`, () => {
      const l = load(path);
      const res = spawnSync(BPFTOOL!, ['btf', 'dump', 'file', path, 'format', 'raw'], { encoding: 'utf8', maxBuffer: 1 << 26 });
      if (l === undefined) {
        // No .BTF section: bpftool must not find BTF either.
        expect(res.status).not.toBe(0);
        return;
      }
      expect(res.status, res.stderr).toBe(0);
      const theirs = parseRawDump(res.stdout);
      expect(theirs.length).toBe(l.btf.types.length - 1);
      const ours = l.btf.types.slice(1).map(toRawDump);
      expect(ours).toEqual(theirs.map(normalizeRawDump));
    });
  }

  const vmlinux = '/sys/kernel/btf/vmlinux';
  it.runIf(existsSync(vmlinux))('the running kernel\'s BTF (every type)', () => {
    const bytes = readFileSync(vmlinux);
    const btf = parseBtf(bytes, new Uint8Array(new Uint16Array([1]).buffer)[0] === 1, { file: vmlinux });
    const theirs = parseRawDump(run(BPFTOOL!, ['btf', 'dump', 'file', vmlinux, 'format', 'raw']));
    expect(btf.types.length - 1).toBe(theirs.length);
    // Compared one by one so a mismatch prints one type, not a 300k-line diff.
    for (const t of theirs) {
      const ours = toRawDump(btf.type(t.id));
      const expected = normalizeRawDump(t);
      if (JSON.stringify(ours) !== JSON.stringify(expected)) expect(ours).toEqual(expected);
    }
    const task = btf.findByName('struct', 'task_struct');
    expect(task).toBeDefined();
    expect(btf.sizeof(task!.id)).toBe(task!.size);
    for (const t of btf.types) btf.typeName(t.id);
  }, 120_000);
});

/** The ELF section named `name`, which .BTF.ext records must point at. */
function execSection(l: Loaded, name: string) {
  const s = l.elf.sections.find((x) => x.name === name);
  expect(s, `${l.name}: .BTF.ext names section ${name}`).toBeDefined();
  expect((s!.flags & SectionFlags.EXECINSTR) !== 0, `${l.name}: ${name} is executable`).toBe(true);
  return s!;
}

describe('.BTF.ext against the ELF', () => {
  const withExt = () => allLoaded().filter((l) => l.ext !== undefined);

  it('func_info points at the function symbols of the same names', () => {
    let records = 0;
    for (const l of withExt()) {
      for (const [secName, infos] of l.ext!.funcInfo) {
        const sec = execSection(l, secName);
        for (const fi of infos) {
          const fn = l.btf.type(fi.typeId);
          const symbol = l.elf.symbols.find((s) => s.shndx === sec.index && s.type === SymbolType.FUNC && s.name === fn.name);
          expect(symbol, `${l.name}: ${secName}+${fi.insnOff}: ${fn.name}`).toBeDefined();
          // A statically linked object keeps the body of an overridden weak function: its func_info is then a second
          // record for the same function, while the symbol names the winning body, which has its own record.
          if (symbol!.value !== fi.insnOff) {
            expect(infos.some((other) => other.insnOff === symbol!.value && l.btf.type(other.typeId).name === fn.name), `${l.name}: ${fn.name}`).toBe(true);
          }
          records++;
        }
      }
      // Every function defined in the object has func_info; only extern declarations (kfuncs) have none.
      const described = new Set([...l.ext!.funcInfo.values()].flat().map((f) => f.typeId));
      const defined = l.btf.types.filter((t) => t.kind === 'func' && t.linkage !== 'extern').map((t) => t.id);
      expect([...described].sort((a, b) => a - b), l.name).toEqual(defined);
    }
    if (corpusPresent) expect(records).toBeGreaterThan(100);
  });

  it('line_info and CO-RE records lie inside their sections', () => {
    for (const l of withExt()) {
      for (const [secName, lines] of l.ext!.lineInfo) {
        const sec = execSection(l, secName);
        let previous = -1;
        for (const li of lines) {
          expect(li.insnOff).toBeLessThan(sec.size);
          expect(li.insnOff).toBeGreaterThanOrEqual(previous);
          expect(li.fileName).not.toBe('');
          previous = li.insnOff;
        }
      }
      for (const [secName, relos] of l.ext!.coreRelos) {
        const sec = execSection(l, secName);
        for (const cr of relos) {
          expect(cr.insnOff).toBeLessThan(sec.size);
          expect(cr.access).toMatch(/^\d+(:\d+)*$/);
        }
      }
    }
  });

  /** llvm-objdump's names for CO-RE relocation kinds. */
  const LLVM_KIND: Record<string, string> = {
    byte_off: 'field_byte_offset', byte_sz: 'field_byte_size', field_exists: 'field_exists', signed: 'field_signed',
    lshift_u64: 'field_lshift_u64', rshift_u64: 'field_rshift_u64', local_type_id: 'type_id_local',
    target_type_id: 'type_id_target', type_exists: 'type_exists', type_size: 'type_size', type_matches: 'type_matches',
    enumval_exists: 'enumval_exists', enumval_value: 'enumval_value',
  };

  /** llvm-objdump -d output split per section: the lines under each "Disassembly of section X:". */
  function perSection(text: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    let current: string[] | undefined;
    for (const line of text.split('\n')) {
      const head = /^Disassembly of section (.*):$/.exec(line);
      if (head !== null) {
        current = [];
        out.set(head[1]!, current);
      } else if (current !== undefined) {
        current.push(line);
      }
    }
    return out;
  }

  it.runIf(OBJDUMP !== undefined)('CO-RE relocations match llvm-objdump -dr (offset, kind, type, access)', () => {
    let total = 0;
    for (const l of withExt()) {
      const llvm: string[] = [];
      for (const [sec, lines] of perSection(run(OBJDUMP!, ['-dr', l.path]))) {
        for (const line of lines) {
          const m = /^\t\t([0-9a-f]+):\s+CO-RE <(\w+)> \[(\d+)\] (.*)$/.exec(line);
          if (m === null) continue;
          const kind = LLVM_KIND[m[2]!];
          expect(kind, `llvm kind ${m[2]}`).toBeDefined();
          // Field relocations end in the access string, "(0:1:2)".
          const access = kind!.startsWith('field_') ? /\(([\d:]+)\)$/.exec(m[4]!)?.[1] : undefined;
          llvm.push(`${sec} ${parseInt(m[1]!, 16)} ${kind} ${m[3]}${access === undefined ? '' : ` ${access}`}`);
        }
      }
      const ours = [...l.ext!.coreRelos].flatMap(([sec, relos]) =>
        relos.map((r) => `${sec} ${r.insnOff} ${r.kind} ${r.typeId}${r.kind.startsWith('field_') ? ` ${r.access}` : ''}`));
      expect(ours.sort(), l.name).toEqual(llvm.sort());
      total += ours.length;
    }
    if (corpusPresent) expect(total).toBeGreaterThan(200);
  }, 120_000);

  /**
   * llvm-objdump -S / -l annotate an instruction with its line_info record when the record's file:line differs from
   * the previous instruction's (none when that one has no record), and never for line 0. So the expected annotations
   * follow from our records plus the instruction boundaries of llvm's own listing.
   */
  it.runIf(OBJDUMP !== undefined)('line_info matches llvm-objdump -S (source text) and -l (file:line)', () => {
    let total = 0;
    for (const l of withExt().filter((x) => x.ext!.lineInfo.size > 0)) {
      for (const [flag, render] of [
        ['-S', (li: BtfLineInfo) => li.line],
        ['-l', (li: BtfLineInfo) => `${li.fileName}:${li.lineNumber}`],
      ] as const) {
        const actual: string[] = [];
        const expected: string[] = [];
        let previous: BtfLineInfo | undefined;
        let placed = 0;
        for (const [sec, lines] of perSection(run(OBJDUMP!, ['-d', flag, l.path]))) {
          const byOffset = new Map<number, BtfLineInfo>();
          for (const li of l.ext!.lineInfo.get(sec) ?? []) if (!byOffset.has(li.insnOff)) byOffset.set(li.insnOff, li);
          let pending: string[] = [];
          for (const line of lines) {
            if (line.startsWith(';')) pending.push(line.replace(/^; ?/, ''));
            const insn = /^\s*(\d+):\t/.exec(line);
            if (insn === null) continue;
            const off = Number(insn[1]) * 8;
            for (const p of pending) actual.push(`${sec}+${off} ${p}`);
            pending = [];
            const li = byOffset.get(off);
            if (li !== undefined) placed++;
            if (li !== undefined && li.lineNumber !== 0 && (previous?.fileName !== li.fileName || previous.lineNumber !== li.lineNumber)) {
              expected.push(`${sec}+${off} ${render(li)}`);
            }
            previous = li;
          }
        }
        expect(actual, `${l.name} ${flag}`).toEqual(expected);
        // Every record sits on an instruction boundary of llvm's listing (none inside an ld_imm64).
        expect(placed, l.name).toBe(new Set([...l.ext!.lineInfo].flatMap(([sec, infos]) => infos.map((li) => `${sec}+${li.insnOff}`))).size);
        total += expected.length;
      }
    }
    if (corpusPresent) expect(total).toBeGreaterThan(500);
  }, 120_000);
});

/** ELF section sizes and symbol offsets: what the loader will hand to withDatasecFixups. */
function elfLayout(l: Loaded): { sections: Map<string, number>; symbolOffset: (sec: string, name: string) => number | undefined } {
  const sections = new Map<string, number>();
  for (const s of l.elf.sections) if (s.index !== 0 && !sections.has(s.name)) sections.set(s.name, s.size);
  const symbolOffset = (secName: string, varName: string) => {
    const sym = l.elf.symbols.find((s) => s.name === varName && l.elf.sections[s.shndx]?.name === secName && s.type !== SymbolType.SECTION);
    return sym?.value;
  };
  return { sections, symbolOffset };
}

describe('DATASEC fixups on real objects', () => {
  it('fills every non-extern DATASEC from the ELF section and symbols, and the raw bytes agree', () => {
    let fixedSections = 0;
    for (const l of allLoaded()) {
      const { sections, symbolOffset } = elfLayout(l);
      const fixed = withDatasecFixups(l.btf, sections, symbolOffset);
      expect(parseBtf(fixed.raw, l.elf.littleEndian).types).toEqual(fixed.types);
      for (const t of fixed.types) {
        if (t.kind !== 'datasec' || t.name === '.kconfig' || t.name === '.ksyms') continue;
        const original = l.btf.type(t.id);
        expect(original.kind).toBe('datasec');
        if (original.kind === 'datasec' && original.size !== 0) continue;
        expect(t.size, `${l.name} ${t.name}`).toBe(sections.get(t.name));
        for (const v of t.vars) {
          const varType = fixed.type(v.type);
          expect(v.offset, `${l.name} ${t.name} ${varType.name}`).toBe(symbolOffset(t.name, varType.name));
          expect(v.offset + v.size).toBeLessThanOrEqual(t.size);
        }
        expect(t.vars.map((v) => v.offset)).toEqual([...t.vars.map((v) => v.offset)].sort((a, b) => a - b));
        fixedSections++;
      }
    }
    if (corpusPresent) expect(fixedSections).toBeGreaterThan(100);
  });

  // bpftool gen object runs libbpf's static linker, which computes the same sizes and offsets independently.
  it.runIf(BPFTOOL !== undefined)('agrees with the sizes and offsets libbpf\'s linker writes (bpftool gen object)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'btf-link-'));
    try {
      let compared = 0;
      for (const l of allLoaded().filter((x) => x.elf.littleEndian && x.path.includes('/corpus/') && !basename(x.path).startsWith('linked'))) {
        const out = join(dir, `${l.name}.linked.o`);
        const res = spawnSync(BPFTOOL!, ['gen', 'object', out, l.path], { encoding: 'utf8' });
        // Some corpus objects are deliberately broken (invalid map definitions...): the linker refuses them too.
        if (res.status !== 0) continue;
        const linked = load(out)!;
        const { sections, symbolOffset } = elfLayout(l);
        const ours = withDatasecFixups(l.btf, sections, symbolOffset);
        const describe = (btf: Btf) => btf.types.flatMap((t) => (t.kind === 'datasec' && t.name !== '.kconfig' && t.name !== '.ksyms'
          ? [`${t.name} ${t.size}: ${t.vars.map((v) => `${btf.type(v.type).name}@${v.offset}+${v.size}`).join(' ')}`]
          : [])).sort();
        expect(describe(ours), l.name).toEqual(describe(linked.btf));
        compared++;
      }
      expect(compared).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('formatValue on real objects', () => {
  /** Every initialised data section, formatted through its fixed-up DATASEC. */
  function formattedSections(l: Loaded): Record<string, unknown> {
    const { sections, symbolOffset } = elfLayout(l);
    const fixed = withDatasecFixups(l.btf, sections, symbolOffset);
    const out: Record<string, unknown> = {};
    for (const t of fixed.types) {
      if (t.kind !== 'datasec') continue;
      const section = l.elf.section(t.name);
      if (section === undefined || section.type !== SectionType.PROGBITS || t.name === '.maps') continue;
      out[t.name] = fixed.formatValue(t.id, section.data);
    }
    return out;
  }

  it('decodes .data/.rodata contents identically from both byte orders', () => {
    let compared = 0;
    for (const el of allLoaded().filter((l) => l.elf.littleEndian)) {
      const twinPath = twinOf(el.path);
      if (twinPath === undefined) continue;
      const ours = formattedSections(el);
      if (Object.keys(ours).length === 0) continue;
      expect(formattedSections(load(twinPath)!), el.name).toEqual(ours);
      compared++;
    }
    if (corpusPresent) expect(compared).toBeGreaterThan(5);
  });

  it('decodes the license string and map value types of .maps definitions', () => {
    let maps = 0;
    for (const l of allLoaded()) {
      const license = l.btf.findByName('datasec', 'license');
      const licenseSection = l.elf.section('license');
      if (license !== undefined && licenseSection !== undefined && license.vars.length === 1) {
        const v = l.btf.type(license.vars[0]!.type);
        expect(v.kind).toBe('var');
        if (v.kind === 'var') expect(l.btf.formatValue(v.type, licenseSection.data)).toMatch(/GPL|Dual|MIT|BSD/);
      }
      const mapsSec = l.btf.findByName('datasec', '.maps');
      if (mapsSec === undefined) continue;
      for (const entry of mapsSec.vars) {
        const def = l.btf.type(l.btf.resolve(l.btf.type(entry.type).kind === 'var' ? (l.btf.type(entry.type) as { type: number }).type : entry.type));
        if (def.kind !== 'struct') continue;
        const value = def.members.find((m) => m.name === 'value');
        if (value === undefined) continue;
        const ptr = l.btf.type(l.btf.resolve(value.type));
        if (ptr.kind !== 'ptr') continue;
        const valueType = l.btf.type(l.btf.resolve(ptr.type));
        if (valueType.kind !== 'struct' && valueType.kind !== 'int') continue;
        const size = l.btf.sizeof(valueType.id);
        const zero = l.btf.formatValue(valueType.id, new Uint8Array(size));
        const ones = l.btf.formatValue(valueType.id, new Uint8Array(size).fill(0xff));
        if (valueType.kind !== 'int') {
          const named = valueType.members.filter((m) => m.name !== '').map((m) => m.name);
          expect(Object.keys(zero as object)).toEqual(expect.arrayContaining(named));
        } else {
          expect(zero).toBe(0);
          const allOnes = 2n ** BigInt(valueType.bits) - 1n;
          // Unsigned values beyond 2^53 come back as decimal strings.
          const expected = allOnes > BigInt(Number.MAX_SAFE_INTEGER) ? allOnes.toString() : Number(allOnes);
          expect(ones).toBe(valueType.bool ? true : valueType.signed ? -1 : expected);
        }
        maps++;
      }
    }
    if (corpusPresent) expect(maps).toBeGreaterThan(5);
  });
});
