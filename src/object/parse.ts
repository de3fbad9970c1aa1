import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { decodeName } from '../base/cursor.js';
import { CallSrc, MapFlags, mapTypeValue } from '../base/uapi.js';
import {
  BpfReloc, readElf, SectionFlags, SectionType, SpecialSection, SymbolBind, SymbolType,
  type ElfFile, type ElfSection, type ElfSymbol,
} from '../elf/index.js';
import { BtfError, parseBtf, parseBtfExt, withDatasecFixups, type Btf, type BtfExt } from '../btf/index.js';
import { INSN_SLOT_SIZE, InsnSlots, Opcode } from '../insn/index.js';
import { readBtfMaps } from './btf-maps.js';
import { ObjectError } from './errors.js';
import { isLegacyMapsSection, readLegacyMaps } from './legacy-maps.js';
import { iproute2TailCall, matchSection, matchUserType, USER_PROGRAM_TYPES, type SectionMatch } from './section-table.js';
import type {
  BpfObjectSpec, MapSpec, ProgramSpec, RelocationKind, RelocationSpec, SectionRole, SectionSpec, SubprogramSpec,
  VariableSpec,
} from './spec.js';

export interface ParseOptions {
  /** File name for error messages and the spec. */
  name?: string | undefined;
  /** Program types the section names do not give (CLI `--type`): see {@link ProgramTypes}. */
  programTypes?: ProgramTypes | undefined;
}

/**
 * Types from the user, for objects whose loader took the type from its command line (iproute2: `tc … bpf obj F sec
 * S` is sched_cls, `ip link set … xdp obj F sec S` is xdp). Names: kernel type names or section names the table knows
 * (USER_PROGRAM_TYPES).
 */
export interface ProgramTypes {
  /** The type of every executable section whose name names no type. */
  readonly default?: string | undefined;
  /** Per section name; wins over what the name says. */
  readonly sections?: Readonly<Record<string, string>> | undefined;
}

/**
 * Bytes → immutable object spec. Pure: no files, no kernel. Relocations are resolved by name here; the loader writes
 * fds into a copy of the instructions later.
 */
export function parseObject(bytes: Uint8Array, options: ParseOptions = {}): BpfObjectSpec {
  const elf = readElf(bytes, { file: options.name });
  const file = elf.file;

  const license = readLicense(elf);
  const kernVersion = readVersion(elf);
  const { btf, btfExt, btfProblem } = readBtf(elf);
  // Appended one by one: spreading a parser-sized array into push() overflows the stack (125k data sections).
  const maps: MapSpec[] = readLegacyMaps(elf, 0);
  for (const m of readBtfMaps(elf, btf, maps.length)) maps.push(m);
  const data = readDataMaps(elf, btf, maps.length);
  for (const m of data.maps) maps.push(m);
  const variables = readVariables(elf, btf, data);

  const functions = collectFunctions(elf);
  const relocations = collectRelocations(elf, functions, maps);
  const relocsByFunction = relocations.byFunction;

  const typeOf = programTypeResolver(elf, options.programTypes);
  const programs: ProgramSpec[] = [];
  const subprograms: SubprogramSpec[] = [];
  // Each spec is written out field by field: `{ ...common, more }` costs microseconds per object in V8 (a runtime
  // call), which made 20k programs take a second.
  for (const fn of functions) {
    const name = fn.name;
    const section = fn.section.name;
    const sectionIndex = fn.section.index;
    const offset = fn.offset;
    const bytes = fn.section.data.subarray(fn.offset, fn.offset + fn.size);
    const littleEndian = elf.littleEndian;
    const relocations = Object.freeze(relocsByFunction.get(fn) ?? []);
    if (fn.isSubprogram) {
      subprograms.push(Object.freeze({
        name, section, sectionIndex, offset, bytes, littleEndian, relocations, global: fn.global, isSubprogram: true as const,
      }));
      continue;
    }
    const { match, source } = typeOf(section);
    const iproute2Slot = iproute2TailCall(section);
    programs.push(Object.freeze({
      name, section, sectionIndex, offset, bytes, littleEndian, relocations,
      type: match?.def.progType ?? 'unspecified',
      expectedAttachType: match?.def.expectedAttachType,
      attachType: match?.def.attachType ?? match?.def.expectedAttachType,
      attach: match?.def.attach ?? 'none',
      attachTarget: match?.target ?? '',
      tailCallSlot: iproute2Slot?.key ?? match?.tailCallSlot,
      tailCallMapId: iproute2Slot?.mapId,
      typeSource: source,
      sleepable: match?.def.sleepable === true,
      isSubprogram: false as const,
    }));
  }

  return Object.freeze({
    file,
    ...(maps.some((m) => m.pinning === 'object_ns' && m.iproute2 !== undefined) ? { iproute2ObjectId: sha1Hex(bytes) } : {}),
    littleEndian: elf.littleEndian,
    machine: elf.machine,
    license,
    kernVersion,
    sections: Object.freeze(elf.sections.slice(1).map((s) => sectionSpec(s))),
    maps: Object.freeze(maps.map((m) => Object.freeze(m))),
    programs: Object.freeze(programs),
    subprograms: Object.freeze(subprograms),
    relocations: Object.freeze(relocations.list),
    variables: Object.freeze(variables),
    btf,
    btfExt,
    btfProblem,
  });
}

/**
 * The section → type rule: a user type for the section, else what the name says, else the user's default. Unknown
 * type names and section names that are not executable sections are the user's mistake, said at once.
 */
function programTypeResolver(elf: ElfFile, types: ProgramTypes | undefined): (section: string) => { match: SectionMatch | undefined; source: 'section' | 'user' } {
  const known = (type: string, what: string): SectionMatch => {
    const match = matchUserType(type);
    if (match === undefined) throw new ObjectError({ file: elf.file }, `${what}: unknown program type ${JSON.stringify(type)} (known: ${USER_PROGRAM_TYPES.join(', ')})`);
    return match;
  };
  const fallback = types?.default === undefined ? undefined : known(types.default, 'program type');
  const perSection = new Map<string, SectionMatch>();
  for (const [section, type] of Object.entries(types?.sections ?? {})) {
    if (!elf.sections.some((s) => s.name === section && isExecutable(s) && s.name !== '.text')) {
      const names = elf.sections.filter((s) => isExecutable(s) && s.name !== '.text').map((s) => s.name);
      throw new ObjectError({ file: elf.file }, `program type for section ${JSON.stringify(section)}: no such program section (sections: ${names.join(', ') || 'none'})`);
    }
    perSection.set(section, known(type, `program type for section ${section}`));
  }
  return (section) => {
    const user = perSection.get(section);
    if (user !== undefined) return { match: user, source: 'user' };
    const named = matchSection(section);
    if (named !== undefined || fallback === undefined) return { match: named, source: 'section' };
    return { match: fallback, source: 'user' };
  };
}

/** iproute2 names an object's own pinning namespace by the SHA-1 of the file's bytes. */
function sha1Hex(bytes: Uint8Array): string {
  // Required here, not imported: loading node:crypto would cost every start-up, and only these maps need it.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof Crypto;
  return createHash('sha1').update(bytes).digest('hex');
}

/**
 * The object's BTF, with clang's zero DATASEC sizes and offsets fixed from the ELF sections and symbols. BTF is
 * optional for legacy objects: when it cannot be parsed the problem is recorded and the object loads without it
 * (BTF-defined maps then fail with their own error).
 */
function readBtf(elf: ElfFile): { btf: Btf | undefined; btfExt: BtfExt | undefined; btfProblem: string | undefined } {
  const section = elf.section('.BTF');
  if (section === undefined) return { btf: undefined, btfExt: undefined, btfProblem: undefined };
  try {
    const sizes = new Map(elf.sections.filter((s) => s.name !== '').map((s) => [s.name, s.size] as const));
    const offsets = new Map<string, Map<string, number>>();
    const offsetOf = (sectionName: string, varName: string) => {
      const sec = elf.section(sectionName);
      if (sec === undefined) return undefined;
      let byName = offsets.get(sectionName);
      if (byName === undefined) {
        byName = new Map();
        for (const sym of elf.symbolsIn(sec.index)) if (!byName.has(sym.name)) byName.set(sym.name, sym.value);
        offsets.set(sectionName, byName);
      }
      return byName.get(varName);
    };
    const btf = withDatasecFixups(parseBtf(section.data, elf.littleEndian, { file: elf.file }), sizes, offsetOf);
    const ext = elf.section('.BTF.ext');
    const btfExt = ext === undefined ? undefined : parseBtfExt(ext.data, elf.littleEndian, btf, { file: elf.file });
    return { btf, btfExt, btfProblem: undefined };
  } catch (e) {
    if (!(e instanceof BtfError)) throw e;
    return { btf: undefined, btfExt: undefined, btfProblem: e.message };
  }
}

/** Global variables: from BTF DATASECs when present (typed), else from the ELF symbols of the data sections. */
function readVariables(elf: ElfFile, btf: Btf | undefined, data: DataMaps): VariableSpec[] {
  const out: VariableSpec[] = [];
  for (let i = 0; i < data.maps.length; i++) {
    const m = data.maps[i]!;
    const datasec = btf?.findByName('datasec', m.section);
    if (btf !== undefined && datasec !== undefined) {
      for (const v of datasec.vars) {
        const t = btf.type(v.type);
        if (t.kind !== 'var') continue;
        out.push({ name: t.name, section: m.section, offset: v.offset, size: v.size, btfTypeId: t.type, readOnly: m.readOnly === true });
      }
      continue;
    }
    for (const sym of elf.symbolsIn(data.sections[i]!.index)) {
      if (sym.type !== SymbolType.OBJECT || sym.name === '') continue;
      out.push({ name: sym.name, section: m.section, offset: sym.value, size: sym.size, btfTypeId: undefined, readOnly: m.readOnly === true });
    }
  }
  return out;
}

/**
 * Global data: every allocated .data*, .rodata* and .bss* section becomes a one-entry array map holding the
 * section's bytes (as libbpf does); ld_imm64 references to its variables become BPF_PSEUDO_MAP_VALUE at load.
 */
/** Global data maps, each beside the section it holds (parallel arrays: no pair object per section). */
interface DataMaps {
  readonly maps: readonly MapSpec[];
  readonly sections: readonly ElfSection[];
}

function readDataMaps(elf: ElfFile, btf: Btf | undefined, firstIndex: number): DataMaps {
  const out: MapSpec[] = [];
  const sections: ElfSection[] = [];
  for (const s of elf.sections) {
    const role = dataSectionRole(s.name);
    if (role === undefined || s.size === 0 || (s.flags & SectionFlags.ALLOC) === 0) continue;
    // A NOBITS section (.bss) is described by its size alone: the kernel zero-fills the map, and nothing is allocated
    // here for a size the file does not back.
    const contents = s.type === SectionType.NOBITS ? undefined : s.data;
    const btfValueTypeId = datasecId(btf, s.name);
    const map: Mutable<MapSpec> = {
      name: s.name, index: firstIndex + out.length, source: 'data', section: s.name, offset: 0,
      type: ARRAY_MAP, typeName: 'array', keySize: 4, valueSize: s.size, maxEntries: 1,
      flags: role === 'rodata' ? MapFlags.RDONLY_PROG : 0, numaNode: 0, innerMapIndex: undefined, innerMap: undefined,
      pinning: 'none', definitionSize: 0, definition: NO_DEFINITION, readOnly: role === 'rodata',
    };
    // Assigned, not spread from a temporary object: this runs once per data section (125k in a crafted file).
    if (contents !== undefined) map.contents = contents;
    // libbpf's convention: the value type of a global data map is its DATASEC.
    if (btfValueTypeId !== undefined) map.btfValueTypeId = btfValueTypeId;
    out.push(map);
    sections.push(s);
  }
  return { maps: out, sections };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const ARRAY_MAP = mapTypeValue('array');
/** Data maps have no definition bytes; one shared empty view (nothing can be written through it). */
const NO_DEFINITION = new Uint8Array(0);

function datasecId(btf: Btf | undefined, section: string): number | undefined {
  return btf?.findByName('datasec', section)?.id;
}

function readLicense(elf: ElfFile): string {
  const s = elf.section('license');
  if (s === undefined) return '';
  const end = s.data.indexOf(0);
  return decodeName(end < 0 ? s.data : s.data.subarray(0, end));
}

function readVersion(elf: ElfFile): number | undefined {
  const s = elf.section('version');
  if (s === undefined) return undefined;
  if (s.data.byteLength !== 4) {
    throw new ObjectError({ file: elf.file, section: 'version' }, `invalid size of version section: ${s.data.byteLength} bytes, expected 4`);
  }
  return new DataView(s.data.buffer, s.data.byteOffset, 4).getUint32(0, elf.littleEndian);
}

export function isExecutable(s: ElfSection): boolean {
  return s.type === SectionType.PROGBITS && (s.flags & SectionFlags.EXECINSTR) !== 0 && s.size > 0;
}

export function dataSectionRole(name: string): 'data' | 'rodata' | 'bss' | undefined {
  if (name === '.data' || name.startsWith('.data.')) return 'data';
  if (name === '.rodata' || name.startsWith('.rodata.')) return 'rodata';
  if (name === '.bss' || name.startsWith('.bss.')) return 'bss';
  return undefined;
}

function sectionSpec(s: ElfSection): SectionSpec {
  return Object.freeze({ index: s.index, name: s.name, type: s.type, flags: s.flags, size: s.size, role: sectionRole(s) });
}

function sectionRole(s: ElfSection): SectionRole {
  if (isExecutable(s)) return s.name === '.text' ? 'subprograms' : 'program';
  if (s.type === SectionType.REL || s.type === SectionType.RELA) return 'relocations';
  if (s.type === SectionType.SYMTAB) return 'symbols';
  if (s.type === SectionType.STRTAB) return 'strings';
  if (isLegacyMapsSection(s.name)) return 'maps';
  if (s.name === '.maps') return 'btf_maps';
  if (s.name === '.struct_ops' || s.name === '.struct_ops.link') return 'struct_ops';
  if (s.name === 'license') return 'license';
  if (s.name === 'version') return 'version';
  if (s.name === '.BTF') return 'btf';
  if (s.name === '.BTF.ext') return 'btf_ext';
  if (s.name.startsWith('.debug')) return 'debug';
  return dataSectionRole(s.name) ?? 'other';
}

/** A function found in an executable section: a program entry, or a subprogram that programs call. */
interface Function {
  name: string;
  section: ElfSection;
  offset: number;
  size: number;
  global: boolean;
  isSubprogram: boolean;
}

/**
 * Programs: one per executable section, as bpf_load.c did, or one per global function when a section holds several
 * sized functions; static functions in such sections and every function in .text are subprograms. Old objects whose
 * symbols have size 0 are split by section only.
 */
function collectFunctions(elf: ElfFile): Function[] {
  const out: Function[] = [];
  for (const section of elf.sections) {
    if (!isExecutable(section)) continue;
    if (section.size % INSN_SLOT_SIZE !== 0) {
      throw new ObjectError({ file: elf.file, section: section.name }, `code size ${section.size} is not a multiple of ${INSN_SLOT_SIZE}`);
    }
    const funcs = elf.symbolsIn(section.index)
      .filter((s) => s.type === SymbolType.FUNC)
      .sort((a, b) => a.value - b.value);
    const text = section.name === '.text';
    // Sized, aligned, inside the section and not overlapping (sorted, so each ends before the next starts).
    const splittable = funcs.length > 1 && funcs.every((f, i) => f.size > 0 && f.value % INSN_SLOT_SIZE === 0 &&
      f.value + f.size <= (funcs[i + 1]?.value ?? section.size));
    if (!splittable) {
      const name = funcs[0]?.name ?? globalAtStart(elf, section)?.name ?? section.name;
      out.push({ name, section, offset: 0, size: section.size, global: funcs[0]?.bind !== SymbolBind.LOCAL, isSubprogram: text });
      continue;
    }
    const anyGlobal = funcs.some((f) => f.bind !== SymbolBind.LOCAL);
    for (const f of funcs) {
      const global = f.bind !== SymbolBind.LOCAL;
      out.push({ name: f.name, section, offset: f.value, size: f.size, global, isSubprogram: text || (anyGlobal && !global) });
    }
  }
  return out;
}

function globalAtStart(elf: ElfFile, section: ElfSection): ElfSymbol | undefined {
  return elf.symbolsIn(section.index).find((s) => s.value === 0 && s.bind !== SymbolBind.LOCAL &&
    s.type !== SymbolType.SECTION && s.name !== '');
}

/**
 * Functions by section, in offset order (collectFunctions emits them so), for lookups by section and offset that stay
 * logarithmic however many functions and relocations a file has.
 */
type FunctionIndex = ReadonlyMap<ElfSection, readonly Function[]>;

function indexFunctions(functions: readonly Function[]): FunctionIndex {
  const index = new Map<ElfSection, Function[]>();
  for (const f of functions) {
    let list = index.get(f.section);
    if (list === undefined) index.set(f.section, (list = []));
    list.push(f);
  }
  return index;
}

function functionAt(functions: FunctionIndex, section: ElfSection, offset: number): Function | undefined {
  const list = functions.get(section);
  if (list === undefined) return undefined;
  // The last function starting at or before `offset`: functions of one section do not overlap.
  let lo = 0;
  let hi = list.length - 1;
  let found: Function | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.offset <= offset) {
      found = list[mid];
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found !== undefined && offset < found.offset + found.size ? found : undefined;
}

/** Maps by the section and offset of their definitions: what map relocations name. */
type MapIndex = ReadonlyMap<string, ReadonlyMap<number, MapSpec>>;

function indexMaps(maps: readonly MapSpec[]): MapIndex {
  const index = new Map<string, Map<number, MapSpec>>();
  for (const m of maps) {
    // Relocations name global data by section (resolveTarget), never through this index.
    if (m.source === 'data') continue;
    let bySection = index.get(m.section);
    if (bySection === undefined) index.set(m.section, (bySection = new Map()));
    if (!bySection.has(m.offset)) bySection.set(m.offset, m);
  }
  return index;
}

function collectRelocations(elf: ElfFile, functionList: readonly Function[], mapList: readonly MapSpec[]) {
  const functions = indexFunctions(functionList);
  const maps = indexMaps(mapList);
  const list: RelocationSpec[] = [];
  const byFunction = new Map<Function, RelocationSpec[]>();
  for (const relSection of elf.sections) {
    if (relSection.type !== SectionType.REL && relSection.type !== SectionType.RELA) continue;
    const target = elf.sections[relSection.info];
    // Relocations of .BTF, .BTF.ext, DWARF and .maps are not code relocations.
    if (target === undefined || !isExecutable(target)) continue;
    const code = new InsnSlots(target.data, elf.littleEndian);
    for (const rel of elf.relocations(relSection)) {
      if (rel.type === BpfReloc.NONE) continue;
      const insn = rel.offset / INSN_SLOT_SIZE;
      const symbol = elf.symbols[rel.symbol]!;
      const name = symbolName(elf, symbol);
      const where = () => ({ file: elf.file, section: target.name, insn, symbol: name }); // only for a message: 20k relocations
      if (rel.offset % INSN_SLOT_SIZE !== 0 || rel.offset + INSN_SLOT_SIZE > target.size) {
        throw new ObjectError(where(), `relocation offset 0x${rel.offset.toString(16)} is not at an instruction`);
      }
      const opcode = code.opcode(insn);
      const src = code.src(insn);
      const imm = code.imm(insn);
      // Static linkers leave the code of discarded weak functions behind without a symbol: no program reaches it,
      // so its relocations are listed (program '') but belong to no program.
      const fn = functionAt(functions, target, rel.offset);

      const resolved = resolveTarget(elf, symbol, opcode, src, imm, maps, functions, where);
      if (opcode === Opcode.LD_IMM64 && rel.offset + 2 * INSN_SLOT_SIZE > target.size) {
        throw new ObjectError(where(), 'ld_imm64 instruction is cut off by the end of the section');
      }
      const spec: RelocationSpec = Object.freeze({
        section: target.name, sectionIndex: target.index, insn, program: fn?.name ?? '', symbol: name,
        kind: resolved.kind, target: resolved.target, targetOffset: resolved.offset, relocType: rel.type,
        weak: symbol.bind === SymbolBind.WEAK,
      });
      list.push(spec);
      if (fn === undefined) continue;
      let own = byFunction.get(fn);
      if (own === undefined) byFunction.set(fn, (own = []));
      own.push(spec);
    }
  }
  return { list, byFunction };
}

function symbolName(elf: ElfFile, symbol: ElfSymbol): string {
  return symbol.type === SymbolType.SECTION ? (elf.sections[symbol.shndx]?.name ?? '') : symbol.name;
}

function resolveTarget(
  elf: ElfFile, symbol: ElfSymbol, opcode: number, src: number, imm: number, maps: MapIndex,
  functions: FunctionIndex, where: () => ConstructorParameters<typeof ObjectError>[0] & { insn: number },
): { kind: RelocationKind; target: string; offset: number } {
  const invalid = (what: string) => new ObjectError(where(), `invalid relocation for insn[${where().insn}].code 0x${opcode.toString(16)}: ${what}`);
  const isLdImm64 = opcode === Opcode.LD_IMM64;
  const isSection = symbol.type === SymbolType.SECTION;

  if (symbol.shndx === SpecialSection.UNDEF) {
    if (!isLdImm64 && opcode !== Opcode.CALL) throw invalid('an undefined symbol can only be loaded (ld_imm64) or called');
    return { kind: 'extern', target: symbol.name, offset: 0 };
  }
  const section = elf.sections[symbol.shndx];
  if (section === undefined) throw invalid(`symbol lies in special section 0x${symbol.shndx.toString(16)}`);

  if (isLegacyMapsSection(section.name)) {
    if (!isLdImm64) throw invalid('map references must be ld_imm64 instructions');
    const offset = isSection ? imm : symbol.value;
    const map = maps.get(section.name)?.get(offset);
    if (map === undefined) throw invalid(`no map is defined at offset ${offset} of section ${section.name}`);
    return { kind: 'map', target: map.name, offset: 0 };
  }
  if (section.name === '.maps') {
    if (!isLdImm64) throw invalid('map references must be ld_imm64 instructions');
    const offset = isSection ? imm : symbol.value;
    const map = maps.get('.maps')?.get(offset);
    if (map === undefined) throw invalid(`no BTF map is defined at offset ${offset} of .maps`);
    return { kind: 'map', target: map.name, offset: 0 };
  }
  if (dataSectionRole(section.name) !== undefined) {
    if (!isLdImm64) throw invalid('global variable references must be ld_imm64 instructions');
    return { kind: 'data', target: section.name, offset: symbol.value + imm };
  }
  if (isExecutable(section)) {
    if (opcode === Opcode.CALL && src === CallSrc.PSEUDO_CALL) {
      // libbpf's rule: the callee is at symbol + (imm + 1) instructions; clang emits imm = -1 for function symbols.
      const offset = symbol.value + (imm + 1) * INSN_SLOT_SIZE;
      const callee = functionAt(functions, section, offset);
      if (callee === undefined || offset < 0) throw invalid(`call target ${section.name}+0x${offset.toString(16)} is not in a function`);
      return { kind: 'call', target: callee.name, offset };
    }
    if (isLdImm64) {
      const offset = symbol.value + (isSection ? imm : 0);
      const callee = functionAt(functions, section, offset);
      if (callee === undefined || offset < 0) throw invalid(`function address ${section.name}+0x${offset.toString(16)} is not in a function`);
      return { kind: 'func_addr', target: callee.name, offset };
    }
    throw invalid('code references must be calls or ld_imm64');
  }
  throw invalid(`symbol lies in section ${section.name}, which holds neither maps, global data nor code`);
}
