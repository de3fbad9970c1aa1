/** BTF wire constants (include/uapi/linux/btf.h) and the shapes the parser produces. */
import type { BtfError } from './errors.js';

export const BTF_MAGIC = 0xeb9f;
export const BTF_VERSION = 1;
/** Size of struct btf_header; newer writers may append fields, which must then be zero. */
export const BTF_HEADER_SIZE = 24;
/** struct btf_type: name_off, info, size/type. */
export const BTF_TYPE_SIZE = 12;

export const BtfKind = {
  UNKN: 0, INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

/** BTF_INT_ENCODING bits. */
export const BtfIntEncoding = { SIGNED: 1, CHAR: 2, BOOL: 4 } as const;

/** Linkage of a FUNC (in vlen) and of a VAR (in its extra word): same three values for both. */
export const BTF_LINKAGES = ['static', 'global', 'extern'] as const;
export type BtfLinkage = (typeof BTF_LINKAGES)[number];

/** Record sizes of .BTF.ext tables as this uapi defines them (objects may use larger records) and as the kernel gets them. */
export const FUNC_INFO_SIZE = 8;
export const LINE_INFO_SIZE = 16;
export const CORE_RELO_SIZE = 16;

/** enum bpf_core_relo_kind, indexed by value. */
export const CORE_RELO_KINDS = [
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64', 'field_rshift_u64',
  'type_id_local', 'type_id_target', 'type_exists', 'type_size', 'enumval_exists', 'enumval_value', 'type_matches',
] as const;
export type CoreReloKind = (typeof CORE_RELO_KINDS)[number];

export interface BtfVoid { readonly kind: 'void'; readonly id: 0; readonly name: '' }

export interface BtfInt {
  readonly kind: 'int'; readonly id: number; readonly name: string;
  readonly size: number;
  readonly signed: boolean; readonly char: boolean; readonly bool: boolean;
  /** BTF_INT_OFFSET: bit offset of the value inside its storage (bitfield-style ints; 0 in practice). */
  readonly bitOffset: number;
  /** BTF_INT_BITS: number of value bits. */
  readonly bits: number;
}

export interface BtfPtr { readonly kind: 'ptr'; readonly id: number; readonly name: string; readonly type: number }

export interface BtfArray {
  readonly kind: 'array'; readonly id: number; readonly name: string;
  readonly type: number; readonly indexType: number; readonly nelems: number;
}

export interface BtfMember {
  /** '' for an anonymous struct/union member. */
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the containing struct, in bits. */
  readonly bitOffset: number;
  /** Width of a bitfield, 0 when the member is not a bitfield (or the struct has no kind_flag). */
  readonly bitfieldSize: number;
}

export interface BtfComposite {
  readonly kind: 'struct' | 'union'; readonly id: number; readonly name: string;
  readonly size: number; readonly members: readonly BtfMember[];
}

export interface BtfEnumValue { readonly name: string; readonly value: number }
export interface BtfEnum {
  readonly kind: 'enum'; readonly id: number; readonly name: string;
  readonly size: number; readonly signed: boolean; readonly values: readonly BtfEnumValue[];
}

export interface BtfEnum64Value { readonly name: string; readonly value: bigint }
export interface BtfEnum64 {
  readonly kind: 'enum64'; readonly id: number; readonly name: string;
  readonly size: number; readonly signed: boolean; readonly values: readonly BtfEnum64Value[];
}

export interface BtfFwd { readonly kind: 'fwd'; readonly id: number; readonly name: string; readonly fwdKind: 'struct' | 'union' }

/** typedef and the qualifiers: a name (typedef only) over another type. */
export interface BtfReference {
  readonly kind: 'typedef' | 'volatile' | 'const' | 'restrict'; readonly id: number; readonly name: string;
  readonly type: number;
}

export interface BtfFunc {
  readonly kind: 'func'; readonly id: number; readonly name: string;
  /** The FUNC_PROTO. */
  readonly type: number; readonly linkage: BtfLinkage;
}

export interface BtfParam { readonly name: string; readonly type: number }
export interface BtfFuncProto {
  readonly kind: 'func_proto'; readonly id: number; readonly name: string;
  readonly returnType: number;
  /** Without the trailing `...` marker (a param of type 0), which sets `variadic` instead. */
  readonly params: readonly BtfParam[];
  readonly variadic: boolean;
}

export interface BtfVar { readonly kind: 'var'; readonly id: number; readonly name: string; readonly type: number; readonly linkage: BtfLinkage }

export interface BtfVarSecinfo {
  /** The VAR (or FUNC, for .ksyms) placed in the section. */
  readonly type: number; readonly offset: number; readonly size: number;
}
export interface BtfDatasec {
  readonly kind: 'datasec'; readonly id: number; readonly name: string;
  readonly size: number; readonly vars: readonly BtfVarSecinfo[];
}

export interface BtfFloat { readonly kind: 'float'; readonly id: number; readonly name: string; readonly size: number }

export interface BtfDeclTag {
  readonly kind: 'decl_tag'; readonly id: number; readonly name: string;
  readonly type: number;
  /** -1: the tag applies to the type itself; otherwise the member / parameter index. */
  readonly componentIdx: number;
  /** kind_flag: the tag is a raw `__attribute__` rather than btf_decl_tag. */
  readonly attribute: boolean;
}

export interface BtfTypeTag {
  readonly kind: 'type_tag'; readonly id: number; readonly name: string;
  readonly type: number;
  readonly attribute: boolean;
}

export type BtfType =
  | BtfVoid | BtfInt | BtfPtr | BtfArray | BtfComposite | BtfEnum | BtfEnum64 | BtfFwd | BtfReference | BtfFunc
  | BtfFuncProto | BtfVar | BtfDatasec | BtfFloat | BtfDeclTag | BtfTypeTag;

export type BtfKindName = BtfType['kind'];
/** The type shape(s) that can carry kind K (struct and union share BtfComposite). */
export type BtfTypeOfKind<K extends BtfKindName> = BtfType extends infer T
  ? T extends { kind: infer TK } ? (K extends TK ? T : never) : never
  : never;

export interface BtfHeader {
  readonly magic: number;
  readonly version: number;
  readonly flags: number;
  readonly hdrLen: number;
  /** Offsets are relative to the end of the header, as in the file. */
  readonly typeOff: number;
  readonly typeLen: number;
  readonly strOff: number;
  readonly strLen: number;
}

/** A plain JSON-able value produced by formatValue. Integers beyond 2^53 are decimal strings. */
export type BtfValue = number | string | boolean | null | readonly BtfValue[] | { readonly [key: string]: BtfValue };

export interface BtfFuncInfo {
  /** Byte offset of the function's first instruction inside its section (the object's form; ÷8 for the index). */
  readonly insnOff: number;
  readonly typeId: number;
}

export interface BtfLineInfo {
  readonly insnOff: number;
  readonly fileName: string;
  /** The source line's text. */
  readonly line: string;
  readonly lineNumber: number;
  readonly column: number;
  /** String table offsets, as BPF_PROG_LOAD wants them. */
  readonly fileNameOff: number;
  readonly lineOff: number;
}

export interface BtfCoreRelo {
  readonly insnOff: number;
  /** The local (object) type the access starts from. */
  readonly typeId: number;
  /** Access string: "0:1:2" (field path) or "0" (type / enum value index). */
  readonly access: string;
  readonly accessStrOff: number;
  readonly kind: CoreReloKind;
  readonly kindValue: number;
}

export interface BtfExtHeader {
  readonly magic: number;
  readonly version: number;
  readonly flags: number;
  readonly hdrLen: number;
  readonly funcInfoOff: number;
  readonly funcInfoLen: number;
  readonly lineInfoOff: number;
  readonly lineInfoLen: number;
  /** 0 when the header predates CO-RE relocations (hdr_len < 32). */
  readonly coreReloOff: number;
  readonly coreReloLen: number;
}

export interface BtfExt {
  readonly file: string | undefined;
  readonly header: BtfExtHeader;
  /** Section name → records, in file order. */
  readonly funcInfo: ReadonlyMap<string, readonly BtfFuncInfo[]>;
  readonly lineInfo: ReadonlyMap<string, readonly BtfLineInfo[]>;
  /**
   * Section name → its line_info records as they lie in the file (checked; `lineInfoRecSize` bytes each, the
   * kernel's 16-byte layout first), a view: the loader copies them into BPF_PROG_LOAD's records without decoding.
   */
  readonly lineInfoBytes: ReadonlyMap<string, Uint8Array>;
  readonly coreRelos: ReadonlyMap<string, readonly BtfCoreRelo[]>;
  /** rec_size found in the file for each table (0 when the table is absent); records are parsed at their known size. */
  readonly funcInfoRecSize: number;
  readonly lineInfoRecSize: number;
  readonly coreReloRecSize: number;
}

/**
 * The lookups naming and formatting a type need of a parsed BTF. Btf implements it; name.ts and format.ts take this
 * instead of Btf so that Btf, which calls them, and they do not import each other.
 */
export interface BtfTypeLookup {
  type(id: number): BtfType;
  resolve(id: number): number;
  sizeof(id: number): number;
  typeName(id: number): string;
  /** typeName for messages: `[id]` when the name cannot be rendered. */
  typeLabel(id: number): string;
  error(where: { offset?: number; typeId?: number }, cause: string): BtfError;
}
