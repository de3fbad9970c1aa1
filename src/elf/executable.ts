/**
 * Strict reading of ELF64 executables and shared libraries (ET_EXEC, ET_DYN) for user-space probes: the PT_LOAD
 * program headers and the symbols of .symtab and .dynsym, so a function name becomes the file offset the uprobe PMU
 * wants. Like readElf: every offset, size, count and index is checked before use, and any problem is an ElfError
 * naming the file and where. Only what probing needs is read.
 */
import { ByteReader } from '../base/cursor.js';
import { checkElfIdent, EHDR_SIZE, ElfError, SHDR_SIZE, SYM_SIZE, type Fail } from './reader.js';
import { SectionType, SpecialSection, SymbolType } from './types.js';

export const ExecutableType = { EXEC: 2, DYN: 3 } as const;
export const ProgramHeaderType = { LOAD: 1 } as const;
/** p_flags bit: the segment is executable. */
export const PF_X = 1;
/** STT_GNU_IFUNC: an indirect function (glibc's memcpy and friends); its st_value is the resolver. */
const STT_GNU_IFUNC = 10;

const PHDR_SIZE = 56;

export interface LoadSegment {
  readonly vaddr: number;
  readonly offset: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly executable: boolean;
}

export interface ExecutableSymbol {
  readonly name: string;
  readonly value: number;
  readonly size: number;
  /** SymbolType.* (FUNC, OBJECT …) or STT_GNU_IFUNC (10). */
  readonly type: number;
  readonly table: '.symtab' | '.dynsym';
}

export interface ExecutableFile {
  readonly file: string | undefined;
  readonly type: 'exec' | 'dyn';
  readonly machine: number;
  readonly littleEndian: boolean;
  readonly segments: readonly LoadSegment[];
  /** Defined function symbols (with a non-zero address) of .symtab, then .dynsym. */
  readonly functions: readonly ExecutableSymbol[];
  /** Whether the file still has a .symtab (a stripped file keeps only .dynsym, its exported functions). */
  readonly hasSymtab: boolean;
}

/** Parses an ELF64 executable or shared library. */
export function readExecutable(bytes: Uint8Array, options: { file?: string } = {}): ExecutableFile {
  const file = options.file;
  const fail: Fail = (where, cause) => new ElfError({ file, ...where }, cause);
  const littleEndian = checkElfIdent(bytes, fail);
  const r = new ByteReader(bytes, littleEndian, (what, offset, size, limit) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the file (${limit} bytes)`));
  r.check('ELF header', 0, EHDR_SIZE);
  const eType = r.u16(16);
  if (eType !== ExecutableType.EXEC && eType !== ExecutableType.DYN) {
    throw fail({ offset: 16 }, `expected an executable or shared library (ET_EXEC or ET_DYN), found e_type ${eType}`);
  }
  const machine = r.u16(18);

  const phoff = r.u64n(32, 'e_phoff');
  const phentsize = r.u16(54);
  const phnum = r.u16(56);
  if (phnum > 0 && phentsize !== PHDR_SIZE) throw fail({ offset: 54 }, `expected e_phentsize ${PHDR_SIZE}, found ${phentsize}`);
  r.check(`program header table (${phnum} entries)`, phoff, phnum * PHDR_SIZE);
  const segments: LoadSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const h = phoff + i * PHDR_SIZE;
    if (r.u32(h) !== ProgramHeaderType.LOAD) continue;
    const segment = {
      offset: r.u64n(h + 8, `program header ${i} p_offset`),
      vaddr: r.u64n(h + 16, `program header ${i} p_vaddr`),
      filesz: r.u64n(h + 32, `program header ${i} p_filesz`),
      memsz: r.u64n(h + 40, `program header ${i} p_memsz`),
      executable: (r.u32(h + 4) & PF_X) !== 0,
    };
    if (segment.offset + segment.filesz > bytes.byteLength) {
      throw fail({ offset: h }, `PT_LOAD segment ${i} (${segment.filesz} bytes at 0x${segment.offset.toString(16)}) extends past the end of the file`);
    }
    segments.push(segment);
  }
  if (segments.length === 0) throw fail({ offset: 32 }, 'no PT_LOAD program header: nothing of this file is ever mapped');

  const shoff = r.u64n(40, 'e_shoff');
  const shnum = shoff === 0 ? 0 : r.u16(60);
  if (shnum > 0 && r.u16(58) !== SHDR_SIZE) throw fail({ offset: 58 }, `expected e_shentsize ${SHDR_SIZE}, found ${r.u16(58)}`);
  r.check(`section header table (${shnum} entries)`, shoff, shnum * SHDR_SIZE);
  const section = (i: number) => {
    const h = shoff + i * SHDR_SIZE;
    return { index: i, type: r.u32(h + 4), offset: r.u64n(h + 24, `section #${i} sh_offset`), size: r.u64n(h + 32, `section #${i} sh_size`), link: r.u32(h + 40), entsize: r.u64n(h + 56, `section #${i} sh_entsize`) };
  };
  const functions: ExecutableSymbol[] = [];
  let hasSymtab = false;
  for (const wanted of [SectionType.SYMTAB, SectionType.DYNSYM] as const) {
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== wanted) continue;
      const table = wanted === SectionType.SYMTAB ? '.symtab' : '.dynsym';
      if (wanted === SectionType.SYMTAB) hasSymtab = true;
      const where = { section: { index: i, name: table } };
      if (s.entsize !== SYM_SIZE || s.size % SYM_SIZE !== 0) throw fail(where, `symbol table of ${s.size} bytes with sh_entsize ${s.entsize} (expected entries of ${SYM_SIZE})`);
      if (s.link === 0 || s.link >= shnum) throw fail(where, `symbol table links to section ${s.link}, which does not exist`);
      const str = section(s.link);
      if (str.type !== SectionType.STRTAB) throw fail(where, `symbol table links to section ${s.link}, which is not a string table`);
      r.check(`${table}`, s.offset, s.size);
      r.check(`string table of ${table}`, str.offset, str.size);
      const strings = new ByteReader(bytes.subarray(str.offset, str.offset + str.size), littleEndian, (what, offset, size, limit) =>
        fail({ section: { index: s.link }, offset }, `${what} (${size} bytes) extends past the end of the string table (${limit} bytes)`));
      for (let o = s.offset; o < s.offset + s.size; o += SYM_SIZE) {
        const type = r.u8(o + 4) & 0xf;
        const shndx = r.u16(o + 6);
        const value = r.u64n(o + 8, 'st_value');
        if ((type !== SymbolType.FUNC && type !== STT_GNU_IFUNC) || shndx === SpecialSection.UNDEF || value === 0) continue;
        const nameOffset = r.u32(o);
        if (nameOffset >= str.size) throw fail({ ...where, offset: o }, `symbol name offset ${nameOffset} is outside its string table (${str.size} bytes)`);
        functions.push({ name: strings.cstring(nameOffset, 'symbol name'), value, size: r.u64n(o + 16, 'st_size'), type, table });
      }
    }
  }
  return { file, type: eType === ExecutableType.EXEC ? 'exec' : 'dyn', machine, littleEndian, segments, functions, hasSymtab };
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it; undefined when none does. */
export function fileOffsetOf(elf: ExecutableFile, vaddr: number): number | undefined {
  const segment = elf.segments.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  return segment === undefined ? undefined : vaddr - segment.vaddr + segment.offset;
}

/**
 * The file offset of function `name` (plus `offset` bytes into it), as the uprobe PMU wants. A missing symbol is an
 * ElfError that says whether the file was stripped (only exported functions left in .dynsym).
 */
export function functionFileOffset(elf: ExecutableFile, name: string, offset = 0): number {
  const fail = (cause: string) => new ElfError({ file: elf.file }, cause);
  // Versioned names in .symtab (`memcpy@@GLIBC_2.14`) match their base name, as libbpf matches them.
  const candidates = elf.functions.filter((s) => s.name === name || s.name.startsWith(`${name}@`));
  const symbol = candidates.find((s) => s.table === '.symtab') ?? candidates[0];
  if (symbol === undefined) {
    throw fail(elf.hasSymtab
      ? `no function named ${JSON.stringify(name)} in .symtab or .dynsym`
      : `no function named ${JSON.stringify(name)}: the file is stripped (no .symtab) and .dynsym does not export it`);
  }
  if (symbol.size > 0 && offset >= symbol.size) throw fail(`offset ${offset} is beyond ${name} (${symbol.size} bytes)`);
  const fileOffset = fileOffsetOf(elf, symbol.value + offset);
  if (fileOffset === undefined) throw fail(`${name} at 0x${(symbol.value + offset).toString(16)} lies in no PT_LOAD segment`);
  return fileOffset;
}
