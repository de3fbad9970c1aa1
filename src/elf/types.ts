/** ELF64 constants and the shapes the reader produces. Only what BPF objects use. */

export const ElfClass = { ELFCLASS64: 2 } as const;
export const ElfData = { LSB: 1, MSB: 2 } as const;
export const ElfType = { REL: 1 } as const;
export const ElfMachine = { NONE: 0, BPF: 247 } as const;

export const SectionType = {
  NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, HASH: 5, DYNAMIC: 6, NOTE: 7, NOBITS: 8, REL: 9,
  DYNSYM: 11, INIT_ARRAY: 14, FINI_ARRAY: 15, GROUP: 17, SYMTAB_SHNDX: 18, LLVM_ADDRSIG: 0x6fff4c03,
} as const;

export const SectionFlags = { WRITE: 0x1, ALLOC: 0x2, EXECINSTR: 0x4, MERGE: 0x10, STRINGS: 0x20 } as const;

export const SymbolType = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;
export const SymbolBind = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const SymbolVisibility = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 } as const;
/** Special section indices a symbol can carry. */
export const SpecialSection = { UNDEF: 0, ABS: 0xfff1, COMMON: 0xfff2, XINDEX: 0xffff } as const;

/** BPF relocation types (llvm's names; GNU readelf misnames some of them). */
export const BpfReloc = {
  NONE: 0, R_BPF_64_64: 1, R_BPF_64_ABS64: 2, R_BPF_64_ABS32: 3, R_BPF_64_NODYLD32: 4, R_BPF_64_32: 10,
} as const;

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  /** sh_flags; the flags we care about fit in 32 bits, higher bits are kept as a bigint in rawFlags. */
  readonly flags: number;
  readonly rawFlags: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  /** File bytes of the section: a subarray view. Empty for NOBITS (.bss), whose size is still `size`. */
  readonly data: Uint8Array;
}

export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  /** SymbolType.* */
  readonly type: number;
  /** SymbolBind.* */
  readonly bind: number;
  /** SymbolVisibility.* */
  readonly visibility: number;
  /** Section index, or a SpecialSection value. */
  readonly shndx: number;
}

export interface ElfRelocation {
  /** Byte offset inside the section the relocation applies to. */
  readonly offset: number;
  /** BpfReloc.* */
  readonly type: number;
  /** Index into ElfFile.symbols. */
  readonly symbol: number;
  /** RELA only. */
  readonly addend?: bigint;
}

export interface ElfFile {
  /** File name used in error messages, when the caller gave one. */
  readonly file: string | undefined;
  readonly littleEndian: boolean;
  readonly machine: number;
  readonly type: number;
  /** All section headers, index 0 (SHT_NULL) included, so sections[i].index === i. */
  readonly sections: readonly ElfSection[];
  /** The symbol table (index 0 is the null symbol), empty when the object has none. */
  readonly symbols: readonly ElfSymbol[];
  /** First section with this name. */
  section(name: string): ElfSection | undefined;
  /** Symbols defined in the section with this index, in symbol-table order (indexed once, on first use). */
  symbolsIn(sectionIndex: number): readonly ElfSymbol[];
  /** Entries of a SHT_REL or SHT_RELA section, each checked against the section it applies to and the symbol table. */
  relocations(section: ElfSection): readonly ElfRelocation[];
}
