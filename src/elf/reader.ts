import { ByteReader } from '../base/cursor.js';
import { BpfLoadError, withContext } from '../base/errors.js';
import {
  ElfClass, ElfData, ElfMachine, ElfType, SectionType, SpecialSection,
  type ElfFile, type ElfRelocation, type ElfSection, type ElfSymbol,
} from './types.js';

/** Where in the file an ELF problem was found. Every field is optional: the message uses whichever are known. */
export interface ElfLocation {
  file?: string | undefined;
  section?: { index: number; name?: string | undefined } | undefined;
  offset?: number | undefined;
}

export class ElfError extends BpfLoadError {
  override name = 'ElfError';
  readonly file: string | undefined;
  readonly section: { index: number; name?: string | undefined } | undefined;
  readonly offset: number | undefined;

  constructor(where: ElfLocation, cause: string) {
    super(withContext([where.file, describeSection(where.section), describeOffset(where.offset)], cause));
    this.file = where.file;
    this.section = where.section;
    this.offset = where.offset;
  }
}

function describeSection(s: ElfLocation['section']): string | undefined {
  if (s === undefined) return undefined;
  return s.name !== undefined && s.name !== '' ? `section ${s.name} (#${s.index})` : `section #${s.index}`;
}

function describeOffset(offset: number | undefined): string | undefined {
  return offset === undefined ? undefined : `offset 0x${offset.toString(16)}`;
}

/** ELF64 record sizes (Elf64_Ehdr, Elf64_Shdr, Elf64_Sym), shared with executable.ts. */
export const EHDR_SIZE = 64;
export const SHDR_SIZE = 64;
export const SYM_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;
/** Section indices at or above this are reserved (SHN_LORESERVE): special meanings, not real sections. */
const SHN_LORESERVE = 0xff00;

export interface ReadElfOptions {
  /** Name used in error messages (a path or a display name). */
  file?: string | undefined;
}

/**
 * Parses an ELF64 relocatable BPF object. Strict: every offset, size, count and index is checked against the buffer
 * before it is used, and anything malformed is an ElfError that says where. Section data are views into `bytes`.
 */
// Long: header, section headers, names, symbols and relocations read in the order each depends on, a few checked reads each.
export function readElf(bytes: Uint8Array, options: ReadElfOptions = {}): ElfFile {
  const file = options.file;
  const fail = (where: Omit<ElfLocation, 'file'>, cause: string) => new ElfError({ file, ...where }, cause);
  const { littleEndian, machine, type, shoff } = readHeader(bytes, bytes.byteLength, fail);

  const r = new ByteReader(bytes, littleEndian, (what, offset, size, limit) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the file (${limit} bytes)`));
  let shnum = r.u16(60);
  let shstrndx = r.u16(62);
  // Extended numbering: counts that do not fit 16 bits live in section header 0.
  if (shnum === 0) shnum = r.u64n(shoff + 32, 'section header 0 sh_size (extended e_shnum)');
  if (shstrndx === SpecialSection.XINDEX) shstrndx = r.u32(shoff + 40, 'section header 0 sh_link (extended e_shstrndx)');
  // Checked before allocating anything per section, so a huge count cannot make us loop or allocate.
  r.check(`section header table (${shnum} entries)`, shoff, shnum * SHDR_SIZE);

  // The table was checked whole above, so fields are read straight from the view; only the 64-bit fields that must
  // fit a JS number are checked one by one, and their labels are built only when one does not.
  const view = r.view;
  const u32 = (at: number) => view.getUint32(at, littleEndian);
  const u64n = (at: number, index: number, field: string): number => {
    const lo = u32(littleEndian ? at : at + 4);
    const hi = u32(littleEndian ? at + 4 : at);
    if (hi > 0x1fffff) throw fail({ offset: at }, `section #${index} ${field} (8 bytes) extends past the end of the file (${bytes.byteLength} bytes)`);
    return hi * 0x1_0000_0000 + lo;
  };
  const headerAt = (index: number) => shoff + index * SHDR_SIZE;

  if (shstrndx === 0 || shstrndx >= shnum) throw fail({ offset: 62 }, `section name table index ${shstrndx} out of range (${shnum} sections)`);
  const shstrType = u32(headerAt(shstrndx) + 4);
  if (shstrType !== SectionType.STRTAB) {
    throw fail({ section: { index: shstrndx } }, `section name table has type ${shstrType}, expected SHT_STRTAB`);
  }
  const shstrtab = sectionReader(r, {
    offset: u64n(headerAt(shstrndx) + 24, shstrndx, 'sh_offset'), size: u64n(headerAt(shstrndx) + 32, shstrndx, 'sh_size'),
  }, { index: shstrndx }, fail, littleEndian);

  const sections: ElfSection[] = [];
  for (let index = 0; index < shnum; index++) {
    const h = headerAt(index);
    const nameOffset = u32(h);
    const type = u32(h + 4);
    const flagsLow = u32(littleEndian ? h + 8 : h + 12);
    const flagsHigh = u32(littleEndian ? h + 12 : h + 8);
    const offset = u64n(h + 24, index, 'sh_offset');
    const size = u64n(h + 32, index, 'sh_size');
    const name = index === 0 && nameOffset === 0 ? '' : readString(shstrtab, nameOffset, { index }, 'section name', fail);
    let data: Uint8Array = EMPTY;
    if (type !== SectionType.NOBITS && type !== SectionType.NULL) {
      if (offset + size > bytes.byteLength) {
        throw fail({ section: { index, name }, offset }, `section data (${size} bytes) extends past the end of the file (${bytes.byteLength} bytes)`);
      }
      data = bytes.subarray(offset, offset + size);
    }
    sections.push({
      index, name, type, flags: flagsLow, rawFlags: rawFlags(flagsLow, flagsHigh),
      offset, size, link: u32(h + 40), info: u32(h + 44),
      addralign: u64n(h + 48, index, 'sh_addralign'), entsize: u64n(h + 56, index, 'sh_entsize'),
      data,
    });
  }

  const symtabs = sections.filter((s) => s.type === SectionType.SYMTAB);
  if (symtabs.length > 1) throw fail({ section: symtabs[1] }, 'more than one symbol table');
  const symtab = symtabs[0];
  const symbols = symtab === undefined ? [] : readSymbols(symtab, sections, fail, littleEndian);

  // By name: the first few lookups scan (a parse asks for a handful of names: license, version, .BTF …), and only a
  // caller that keeps asking gets an index — building one for 125k sections costs more than the scans it saves.
  let byName: Map<string, ElfSection> | undefined;
  let scans = 0;
  const relocCache = new Map<number, readonly ElfRelocation[]>();
  // Callers ask per section; one pass over the symbols keeps that linear in the file, however many sections there are.
  let bySection: Map<number, ElfSymbol[]> | undefined;
  const none: readonly ElfSymbol[] = Object.freeze([]);

  return {
    file, littleEndian, machine, type, sections, symbols,
    section(name) {
      if (byName === undefined && scans < NAME_SCANS) {
        scans += 1;
        return sections.find((s) => s.name === name);
      }
      if (byName === undefined) {
        byName = new Map();
        for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s);
      }
      return byName.get(name);
    },
    symbolsIn(sectionIndex) {
      if (bySection === undefined) {
        bySection = new Map();
        for (const sym of symbols) {
          let list = bySection.get(sym.shndx);
          if (list === undefined) bySection.set(sym.shndx, (list = []));
          list.push(sym);
        }
      }
      return bySection.get(sectionIndex) ?? none;
    },
    relocations(section) {
      let cached = relocCache.get(section.index);
      if (cached === undefined) {
        cached = readRelocations(section, sections, symbols, symtab, fail, littleEndian);
        relocCache.set(section.index, cached);
      }
      return cached;
    },
  };
}

/** Lookups by section name answered by a scan before an index is built. */
const NAME_SCANS = 16;

/** NOBITS and NULL sections' data: one shared empty view (a zero-length typed array cannot be written through). */
const EMPTY = new Uint8Array(0);

/** sh_flags as a bigint; the usual values (high half zero) come from a small cache instead of one BigInt per header. */
const smallFlags = new Map<number, bigint>();
function rawFlags(low: number, high: number): bigint {
  if (high !== 0) return (BigInt(high) << 32n) | BigInt(low);
  let cached = smallFlags.get(low);
  if (cached === undefined) {
    cached = BigInt(low);
    if (smallFlags.size < 256) smallFlags.set(low, cached);
  }
  return cached;
}

export type Fail = (where: Omit<ElfLocation, 'file'>, cause: string) => ElfError;

/**
 * e_ident, the part every ELF file shares (objects here, executables in executable.ts): magic, ELFCLASS64 and a
 * known byte order. Returns whether the file is little-endian.
 */
export function checkElfIdent(head: Uint8Array, fail: Fail): boolean {
  if (head.byteLength < 16 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) {
    throw fail({}, 'not an ELF file (bad magic)');
  }
  if (head[4] !== ElfClass.ELFCLASS64) throw fail({ offset: 4 }, `expected ELFCLASS64 (2), found class ${head[4]}`);
  const data = head[5];
  if (data !== ElfData.LSB && data !== ElfData.MSB) throw fail({ offset: 5 }, `unknown byte order ${data}`);
  return data === ElfData.LSB;
}

/**
 * Checks an ELF header on its own: the first bytes of a file (at least 64 unless the file is shorter) and the whole
 * file's size. Lets a caller refuse a file of the wrong kind before reading all of it; readElf runs the same checks.
 */
export function checkElfHeader(head: Uint8Array, fileSize: number, options: ReadElfOptions = {}): void {
  readHeader(head, fileSize, (where, cause) => new ElfError({ file: options.file, ...where }, cause));
}

/** For readUserFile: an object file's header is checked before the rest of the file is read. */
export const ELF_HEADER_CHECK = {
  size: EHDR_SIZE,
  check: (head: Uint8Array, fileSize: number, path: string) => checkElfHeader(head, fileSize, { file: path }),
} as const;

function readHeader(head: Uint8Array, fileSize: number, fail: Fail) {
  const littleEndian = checkElfIdent(head, fail);
  const r = new ByteReader(head, littleEndian, (what, offset, size) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the file (${fileSize} bytes)`));
  r.check('ELF header', 0, EHDR_SIZE);

  const type = r.u16(16);
  if (type !== ElfType.REL) throw fail({ offset: 16 }, `expected a relocatable object (ET_REL), found e_type ${type}`);
  const machine = r.u16(18);
  if (machine !== ElfMachine.BPF && machine !== ElfMachine.NONE) {
    throw fail({ offset: 18 }, `expected machine EM_BPF (247) or EM_NONE, found ${machine}`);
  }
  const shoff = r.u64n(40, 'e_shoff');
  const shentsize = r.u16(58);
  const shnum = r.u16(60);
  if (shoff === 0) throw fail({ offset: 40 }, 'object has no section header table');
  if (shentsize !== SHDR_SIZE) throw fail({ offset: 58 }, `expected e_shentsize ${SHDR_SIZE}, found ${shentsize}`);
  // The table (or, with extended numbering, its header 0) must lie inside the file.
  const tableSize = Math.max(shnum, 1) * SHDR_SIZE;
  if (shoff + tableSize > fileSize) {
    const what = shnum === 0 ? 'section header 0 (extended numbering)' : `section header table (${shnum} entries)`;
    throw fail({ offset: shoff }, `${what} (${tableSize} bytes) extends past the end of the file (${fileSize} bytes)`);
  }
  return { littleEndian, machine, type, shoff };
}

function sectionReader(
  r: ByteReader, h: { offset: number; size: number }, where: { index: number; name?: string }, fail: Fail, littleEndian: boolean,
): ByteReader {
  if (h.offset + h.size > r.length) {
    throw fail({ section: where, offset: h.offset }, `section data (${h.size} bytes) extends past the end of the file (${r.length} bytes)`);
  }
  return new ByteReader(r.bytes.subarray(h.offset, h.offset + h.size), littleEndian, (what, offset, size, limit) =>
    fail({ section: where, offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));
}

function readString(table: ByteReader, offset: number, where: { index: number; name?: string }, what: string, fail: Fail): string {
  if (offset >= table.length) throw fail({ section: where }, `${what} offset ${offset} is outside its string table (${table.length} bytes)`);
  return table.cstring(offset, what);
}

function readSymbols(symtab: ElfSection, sections: readonly ElfSection[], fail: Fail, littleEndian: boolean): ElfSymbol[] {
  if (symtab.entsize !== SYM_SIZE) throw fail({ section: symtab }, `expected sh_entsize ${SYM_SIZE} for a symbol table, found ${symtab.entsize}`);
  if (symtab.size % SYM_SIZE !== 0) throw fail({ section: symtab }, `symbol table size ${symtab.size} is not a multiple of ${SYM_SIZE}`);
  const strtab = sections[symtab.link];
  if (strtab === undefined || symtab.link === 0 || strtab.type !== SectionType.STRTAB) {
    throw fail({ section: symtab }, `symbol table links to section ${symtab.link}, which is not a string table`);
  }
  const str = new ByteReader(strtab.data, littleEndian, (what, offset, size, limit) =>
    fail({ section: strtab, offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));
  const r = new ByteReader(symtab.data, littleEndian, (what, offset, size, limit) =>
    fail({ section: symtab, offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));

  const count = symtab.size / SYM_SIZE;
  const symbols: ElfSymbol[] = [];
  for (let index = 0; index < count; index++) {
    const o = index * SYM_SIZE;
    const nameOffset = r.u32(o);
    const info = r.u8(o + 4);
    const other = r.u8(o + 5);
    const shndx = r.u16(o + 6);
    if (shndx < SHN_LORESERVE && shndx >= sections.length) {
      throw fail({ section: symtab, offset: o }, `symbol ${index} refers to section ${shndx}, but there are ${sections.length} sections`);
    }
    symbols.push({
      index,
      name: nameOffset === 0 ? '' : readString(str, nameOffset, strtab, `symbol ${index} name`, fail),
      value: r.u64n(o + 8, `symbol ${index} st_value`),
      size: r.u64n(o + 16, `symbol ${index} st_size`),
      type: info & 0xf,
      bind: info >> 4,
      visibility: other & 0x3,
      shndx,
    });
  }
  return symbols;
}

function readRelocations(
  section: ElfSection, sections: readonly ElfSection[], symbols: readonly ElfSymbol[], symtab: ElfSection | undefined,
  fail: Fail, littleEndian: boolean,
): ElfRelocation[] {
  const rela = section.type === SectionType.RELA;
  if (!rela && section.type !== SectionType.REL) throw fail({ section }, 'not a relocation section');
  const entsize = rela ? RELA_SIZE : REL_SIZE;
  if (section.entsize !== entsize) throw fail({ section }, `expected sh_entsize ${entsize}, found ${section.entsize}`);
  if (section.size % entsize !== 0) throw fail({ section }, `size ${section.size} is not a multiple of ${entsize}`);
  if (symtab === undefined || section.link !== symtab.index) {
    throw fail({ section }, `relocations refer to section ${section.link}, which is not the symbol table`);
  }
  const target = sections[section.info];
  if (target === undefined || section.info === 0) {
    throw fail({ section }, `relocations apply to section ${section.info}, which does not exist`);
  }
  const r = new ByteReader(section.data, littleEndian, (what, offset, size, limit) =>
    fail({ section, offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));
  const out: ElfRelocation[] = [];
  for (let o = 0; o < section.size; o += entsize) {
    const offset = r.u64n(o, 'r_offset');
    // r_info is ELF64_R_INFO(symbol, type): two 32-bit halves, read as such (no BigInt per relocation).
    r.check('r_info', o + 8, 8);
    const symbol = r.u32(littleEndian ? o + 12 : o + 8);
    const type = r.u32(littleEndian ? o + 8 : o + 12);
    if (symbol >= symbols.length) {
      throw fail({ section, offset: o }, `relocation refers to symbol ${symbol}, but the symbol table has ${symbols.length}`);
    }
    if (offset >= target.size) {
      throw fail({ section, offset: o }, `relocation at 0x${offset.toString(16)} lies outside ${target.name} (${target.size} bytes)`);
    }
    const entry: ElfRelocation = rela
      ? { offset, type, symbol, addend: BigInt.asIntN(64, r.u64(o + 16, 'r_addend')) }
      : { offset, type, symbol };
    out.push(entry);
  }
  return out;
}
