import { ByteReader, decodeName } from '../base/cursor.js';
import { BtfError } from './errors.js';
import { formatBtfValue } from './format.js';
import { renderTypeName } from './name.js';
import {
  BTF_HEADER_SIZE, BTF_LINKAGES, BTF_MAGIC, BTF_TYPE_SIZE, BTF_VERSION, BtfIntEncoding, BtfKind,
  type BtfDatasec, type BtfHeader, type BtfKindName, type BtfMember, type BtfType, type BtfTypeOfKind, type BtfTypeLookup, type BtfValue,
} from './types.js';

export interface ParseBtfOptions {
  /** Name used in error messages (a path or a display name). */
  file?: string | undefined;
}

/** The kernel's limit (BTF_MAX_TYPE): ids above it cannot be loaded, so a longer type section is malformed. */
const BTF_MAX_TYPE = 0xfffff;
/** Bits of btf_type.info that carry meaning: vlen (0-15), kind (24-28), kind_flag (31). */
const INFO_MASK = 0x9f00ffff;

const VOID: BtfType = Object.freeze({ kind: 'void', id: 0, name: '' });

/**
 * The string table: NUL-terminated strings addressed by byte offset (an offset may point into the middle of another
 * string). The parser has checked that the table ends with NUL, so every lookup finds its terminator.
 */
class StringTable {
  private readonly bytes: Uint8Array;
  /** The whole table as one string when it is ASCII (always, in practice): lookups are then cheap slices. */
  private readonly ascii: string | undefined;
  private readonly decoded = new Map<number, string>();

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    const text = decodeName(bytes);
    // One char per byte and none above 0x7f: byte offsets are char offsets.
    this.ascii = text.length === bytes.byteLength && !/[^\x00-\x7f]/.test(text) ? text : undefined;
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  /** The string at `offset`, which the caller has checked is below `length`. */
  at(offset: number): string {
    if (this.ascii !== undefined) return this.ascii.slice(offset, this.ascii.indexOf('\0', offset));
    let s = this.decoded.get(offset);
    if (s === undefined) {
      s = decodeName(this.bytes.subarray(offset, this.bytes.indexOf(0, offset)));
      this.decoded.set(offset, s);
    }
    return s;
  }
}

/** What the parser learned about the layout, kept so the bytes can be patched (DATASEC fixups) and re-parsed. */
export interface BtfLayout {
  readonly header: BtfHeader;
  /** Byte offset of each type's record inside `raw` (index = type id; -1 for void). */
  readonly typeOffsets: readonly number[];
  /** Absolute offset and length of the string table inside `raw`. */
  readonly stringsStart: number;
  readonly stringsLength: number;
}

/**
 * Parsed .BTF: an immutable array of types (index = type id, 0 = void) over the exact bytes it came from.
 * Built only by parseBtf (and withDatasecs, for DATASEC fixups patched into a copy of the bytes).
 */
export class Btf implements BtfTypeLookup {
  readonly file: string | undefined;
  readonly littleEndian: boolean;
  readonly header: BtfHeader;
  readonly types: readonly BtfType[];
  /** The bytes parsed, unchanged: what BPF_BTF_LOAD gets. */
  readonly raw: Uint8Array;
  readonly layout: BtfLayout;
  private readonly strings: StringTable;
  #byName: Map<string, BtfType> | undefined;

  /** @internal Use parseBtf. */
  constructor(
    raw: Uint8Array, littleEndian: boolean, file: string | undefined, types: readonly BtfType[], layout: BtfLayout,
    strings: StringTable,
  ) {
    this.strings = strings;
    this.raw = raw;
    this.littleEndian = littleEndian;
    this.file = file;
    this.types = types;
    this.layout = layout;
    this.header = layout.header;
  }

  /**
   * This BTF over `raw`, a copy of its bytes in which only the given DATASEC records changed (sizes, offsets, order):
   * the layout and strings are the same, so nothing needs parsing again.
   */
  withDatasecs(raw: Uint8Array, datasecs: ReadonlyMap<number, BtfDatasec>): Btf {
    if (raw.byteLength !== this.raw.byteLength) throw this.error({}, 'patched BTF must keep its size');
    const types = this.types.map((t) => datasecs.get(t.id) ?? t);
    return new Btf(raw, this.littleEndian, this.file, Object.freeze(types), this.layout, this.strings);
  }

  /** Error located in this BTF (file and '.BTF' filled in). */
  error(where: { offset?: number; typeId?: number }, cause: string): BtfError {
    return new BtfError({ file: this.file, section: '.BTF', ...where }, cause);
  }

  /** True when `offset` lies inside the string table (so `string(offset)` will not throw). */
  hasString(offset: number): boolean {
    return Number.isSafeInteger(offset) && offset >= 0 && offset < this.layout.stringsLength;
  }

  /** The NUL-terminated string at `offset` in the string table. */
  string(offset: number): string {
    if (!this.hasString(offset)) {
      throw this.error({}, `string offset ${offset} is outside the string table (${this.layout.stringsLength} bytes)`);
    }
    return this.strings.at(offset);
  }

  type(id: number): BtfType {
    const t = Number.isSafeInteger(id) && id >= 0 ? this.types[id] : undefined;
    if (t === undefined) throw this.error({ typeId: id }, `no such type (ids 0..${this.types.length - 1})`);
    return t;
  }

  /** Follows typedef, const, volatile, restrict and type_tag to the first other type. A loop is a BtfError. */
  resolve(id: number): number {
    let current = id;
    for (let steps = 0; steps <= this.types.length; steps++) {
      const t = this.type(current);
      switch (t.kind) {
        case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag':
          current = t.type;
          break;
        default:
          return current;
      }
    }
    throw this.error({ typeId: id }, 'reference loop: typedef/qualifier chain never reaches a concrete type');
  }

  /** Size in bytes of a value of this type. Void, functions and forward declarations have none: BtfError. */
  sizeof(id: number): number {
    let current = id;
    let multiplier = 1;
    for (let steps = 0; steps <= this.types.length; steps++) {
      const t = this.type(current);
      switch (t.kind) {
        case 'int': case 'enum': case 'enum64': case 'struct': case 'union': case 'datasec': case 'float':
          return this.checkedProduct(id, multiplier, t.size);
        case 'ptr':
          return this.checkedProduct(id, multiplier, 8);
        case 'array':
          multiplier = this.checkedProduct(id, multiplier, t.nelems);
          current = t.type;
          break;
        case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
          current = t.type;
          break;
        case 'void': case 'fwd': case 'func': case 'func_proto': case 'decl_tag':
          throw this.error({ typeId: id }, `${t.kind}${current === id ? '' : ` [${current}]`} has no size`);
      }
    }
    throw this.error({ typeId: id }, 'reference loop: type chain never reaches a sized type');
  }

  private checkedProduct(id: number, a: number, b: number): number {
    const n = a * b;
    if (!Number.isSafeInteger(n)) throw this.error({ typeId: id }, `size ${a} × ${b} overflows`);
    return n;
  }

  /** C-like name: `struct foo`, `unsigned int`, `char[16]`, `int *`, `const char *`, `int (*)(void *)`. */
  typeName(id: number): string {
    return renderTypeName(this, id);
  }

  /** The type for a message: its C name, or `[id]` when the name cannot be rendered (loops, absurd depth). */
  typeLabel(id: number): string {
    try {
      return renderTypeName(this, id);
    } catch (e) {
      if (e instanceof BtfError) return `[${id}]`;
      throw e;
    }
  }

  /** First type of that kind and name (types are in id order, so the lowest id wins). */
  findByName<K extends BtfKindName>(kind: K, name: string): BtfTypeOfKind<K> | undefined {
    // Indexed on first use: callers look up one name per section, variable or extern, and kernel BTF has 100k+ types.
    if (this.#byName === undefined) {
      this.#byName = new Map();
      for (const t of this.types) {
        const key = `${t.kind}\0${t.name}`;
        if (!this.#byName.has(key)) this.#byName.set(key, t);
      }
    }
    return this.#byName.get(`${kind}\0${name}`) as BtfTypeOfKind<K> | undefined;
  }

  /**
   * Decodes a value (map key, map value, section contents) of type `id` into plain JSON-able data: integers as
   * numbers (decimal strings beyond 2^53), bools, enums by name, structs/unions as objects (bitfields included),
   * arrays (printable char arrays as strings), pointers as hex strings. `bytes` must be exactly sizeof(id) long.
   */
  formatValue(id: number, bytes: Uint8Array, littleEndian: boolean = this.littleEndian): BtfValue {
    return formatBtfValue(this, id, bytes, littleEndian);
  }
}

/**
 * Parses a .BTF section. Strict: the header, both sections, every record, every string offset and every type
 * reference are checked; anything malformed is a BtfError naming the offset and type id. `bytes` is kept (not copied)
 * as `raw`. `littleEndian` is the object's byte order, which the BTF must share.
 */
export function parseBtf(bytes: Uint8Array, littleEndian: boolean, options: ParseBtfOptions = {}): Btf {
  const file = options.file;
  const fail: Fail = (where, cause) => new BtfError({ file, section: '.BTF', ...where }, cause);
  const r = new ByteReader(bytes, littleEndian, (what, offset, size, limit) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));
  const header = readHeader(r, bytes.byteLength, fail);
  const stringsStart = header.hdrLen + header.strOff;
  const stringsLength = header.strLen;
  const strings = readStringTable(r, bytes, stringsStart, stringsLength, fail);
  const { types, typeOffsets } = readTypes(r, header, strings, fail);
  checkReferences(types, typeOffsets, fail);
  return new Btf(bytes, littleEndian, file, Object.freeze(types), Object.freeze({
    header, typeOffsets: Object.freeze(typeOffsets), stringsStart, stringsLength,
  }), strings);
}

/** struct btf_header, checked: magic and byte order, version, flags, and both sections inside the data. */
function readHeader(r: ByteReader, byteLength: number, fail: Fail): BtfHeader {
  r.check('BTF header', 0, BTF_HEADER_SIZE);
  const magic = r.u16(0);
  if (magic !== BTF_MAGIC) {
    const swapped = ((magic & 0xff) << 8) | (magic >> 8);
    throw fail({ offset: 0 }, swapped === BTF_MAGIC
      ? `magic 0x${magic.toString(16)}: BTF is in the other byte order than the object`
      : `bad magic 0x${magic.toString(16)} (expected 0x${BTF_MAGIC.toString(16)})`);
  }
  const version = r.u8(2);
  if (version !== BTF_VERSION) throw fail({ offset: 2 }, `unsupported version ${version} (expected ${BTF_VERSION})`);
  const flags = r.u8(3);
  if (flags !== 0) throw fail({ offset: 3 }, `unsupported header flags 0x${flags.toString(16)}`);
  const hdrLen = r.u32(4);
  if (hdrLen < BTF_HEADER_SIZE) throw fail({ offset: 4 }, `hdr_len ${hdrLen} is shorter than the ${BTF_HEADER_SIZE}-byte header`);
  r.check(`BTF header (hdr_len ${hdrLen})`, 0, hdrLen);
  // A longer header comes from a newer writer; the kernel accepts it only when the fields it does not know are zero.
  for (let o = BTF_HEADER_SIZE; o < hdrLen; o++) {
    if (r.u8(o) !== 0) throw fail({ offset: o }, `unknown non-zero header field (hdr_len ${hdrLen})`);
  }
  const header: BtfHeader = Object.freeze({
    magic, version, flags, hdrLen,
    typeOff: r.u32(8), typeLen: r.u32(12), strOff: r.u32(16), strLen: r.u32(20),
  });
  const dataLen = byteLength - hdrLen;
  if (header.typeOff % 4 !== 0) throw fail({ offset: 8 }, `type_off ${header.typeOff} is not 4-byte aligned`);
  if (header.typeLen % 4 !== 0) throw fail({ offset: 12 }, `type_len ${header.typeLen} is not a multiple of 4`);
  if (header.typeOff + header.typeLen > dataLen) {
    throw fail({ offset: 8 }, `type section [${header.typeOff}, +${header.typeLen}) extends past the data (${dataLen} bytes after the header)`);
  }
  if (header.strOff + header.strLen > dataLen) {
    throw fail({ offset: 16 }, `string section [${header.strOff}, +${header.strLen}) extends past the data (${dataLen} bytes after the header)`);
  }
  if (header.typeOff + header.typeLen > header.strOff) {
    throw fail({ offset: 16 }, `type section [${header.typeOff}, +${header.typeLen}) overlaps the string section at ${header.strOff}`);
  }
  return header;
}

/** The string table must start with the empty string and end with NUL, so every lookup finds its terminator. */
function readStringTable(r: ByteReader, bytes: Uint8Array, start: number, length: number, fail: Fail): StringTable {
  if (length === 0) throw fail({ offset: 20 }, 'empty string table (it must start with the empty string)');
  if (r.u8(start) !== 0) throw fail({ offset: start }, 'string table does not start with the empty string');
  if (r.u8(start + length - 1) !== 0) throw fail({ offset: start + length - 1 }, 'string table does not end with a NUL byte');
  return new StringTable(bytes.subarray(start, start + length));
}

/** The common btf_type fields of one record, decoded. */
interface TypeRecord {
  readonly id: number;
  readonly pos: number;
  /** Offset of the kind-specific data after the 12-byte common part. */
  readonly body: number;
  readonly name: string;
  readonly kind: number;
  readonly vlen: number;
  readonly kindFlag: boolean;
  readonly sizeOrType: number;
}

/** One parse's reader and checks, shared by every record reader. Messages are built only on failure. */
class RecordContext {
  readonly r: ByteReader;
  readonly fail: Fail;
  private readonly strings: StringTable;
  private readonly typesEnd: number;

  constructor(r: ByteReader, fail: Fail, strings: StringTable, typesEnd: number) {
    this.r = r;
    this.fail = fail;
    this.strings = strings;
    this.typesEnd = typesEnd;
  }

  error(t: { pos: number; id: number }, cause: string): BtfError {
    return this.fail({ offset: t.pos, typeId: t.id }, cause);
  }

  /** A name from the string table; `what` and `index` only label the error. */
  str(typeId: number, offset: number, at: number, what: string, index = -1): string {
    if (offset >= this.strings.length) {
      const label = index < 0 ? what : `${what} ${index} `;
      throw this.fail({ offset: at, typeId }, `${label}name offset ${offset} is outside the string table (${this.strings.length} bytes)`);
    }
    return this.strings.at(offset);
  }

  /** The record's variable part (`count` items of `what`, or -1 for a fixed part; `size` bytes) must fit the types. */
  need(t: TypeRecord, size: number, count: number, what: string): void {
    if (t.body + size > this.typesEnd) {
      throw this.error(t, `${count < 0 ? what : `${count} ${what}`} (${size} bytes) extends past the end of the type section (${this.typesEnd - t.body} bytes left)`);
    }
  }

  noVlen(t: TypeRecord, kindName: string): void {
    if (t.vlen !== 0) throw this.error(t, `${kindName} with vlen ${t.vlen} (must be 0)`);
  }
}

/** A kind's reader returns its type and the bytes its record takes after the common part. */
type RecordReader = (c: RecordContext, t: TypeRecord) => { readonly type: BtfType; readonly extra: number };

/** Every type record in order; index = type id (0 is void, which has no record). */
function readTypes(r: ByteReader, header: BtfHeader, strings: StringTable, fail: Fail): { types: BtfType[]; typeOffsets: number[] } {
  const typesEnd = header.hdrLen + header.typeOff + header.typeLen;
  const c = new RecordContext(r, fail, strings, typesEnd);
  const types: BtfType[] = [VOID];
  const typeOffsets: number[] = [-1];
  let pos = header.hdrLen + header.typeOff;
  while (pos < typesEnd) {
    const id = types.length;
    if (id > BTF_MAX_TYPE) throw fail({ offset: pos, typeId: id }, `more than ${BTF_MAX_TYPE} types`);
    if (pos + BTF_TYPE_SIZE > typesEnd) {
      throw fail({ offset: pos, typeId: id }, `type record (${BTF_TYPE_SIZE} bytes) extends past the end of the type section`);
    }
    const info = r.u32(pos + 4);
    if ((info & ~INFO_MASK) !== 0) throw fail({ offset: pos, typeId: id }, `info 0x${info.toString(16)} has reserved bits set`);
    const record: TypeRecord = {
      id, pos, body: pos + BTF_TYPE_SIZE,
      name: c.str(id, r.u32(pos), pos, ''),
      kind: (info >>> 24) & 0x1f,
      vlen: info & 0xffff,
      kindFlag: info >>> 31 === 1,
      sizeOrType: r.u32(pos + 8),
    };
    const reader = RECORD_READERS[record.kind];
    if (reader === undefined) throw fail({ offset: pos, typeId: id }, `unknown kind ${record.kind}`);
    const { type, extra } = reader(c, record);
    types.push(Object.freeze(type));
    typeOffsets.push(pos);
    pos += BTF_TYPE_SIZE + extra;
  }
  return { types, typeOffsets };
}

const readInt: RecordReader = (c, t) => {
  c.noVlen(t, 'int');
  c.need(t, 4, -1, 'int encoding');
  const data = c.r.u32(t.body);
  const size = t.sizeOrType;
  const encoding = (data >>> 24) & 0xf;
  const bitOffset = (data >>> 16) & 0xff;
  const bits = data & 0xff;
  if ((data & 0xf000_ff00) !== 0) throw c.error(t, `int data 0x${data.toString(16)} has reserved bits set`);
  if (![1, 2, 4, 8, 16].includes(size)) throw c.error(t, `int size ${size} (must be 1, 2, 4, 8 or 16)`);
  if (bits === 0 || bitOffset + bits > size * 8) {
    throw c.error(t, `int bits ${bits} at offset ${bitOffset} do not fit its ${size} bytes`);
  }
  if (encoding !== 0 && encoding !== BtfIntEncoding.SIGNED && encoding !== BtfIntEncoding.CHAR && encoding !== BtfIntEncoding.BOOL) {
    throw c.error(t, `int encoding ${encoding} (must be one of none, signed, char, bool)`);
  }
  return {
    type: {
      kind: 'int', id: t.id, name: t.name, size,
      signed: encoding === BtfIntEncoding.SIGNED, char: encoding === BtfIntEncoding.CHAR, bool: encoding === BtfIntEncoding.BOOL,
      bitOffset, bits,
    },
    extra: 4,
  };
};

const readArray: RecordReader = (c, t) => {
  c.noVlen(t, 'array');
  c.need(t, 12, -1, 'btf_array');
  const { body } = t;
  const r = c.r;
  return { type: { kind: 'array', id: t.id, name: t.name, type: r.u32(body), indexType: r.u32(body + 4), nelems: r.u32(body + 8) }, extra: 12 };
};

const readComposite: RecordReader = (c, t) => {
  const { body, vlen } = t;
  const r = c.r;
  c.need(t, vlen * 12, vlen, 'members');
  const members: BtfMember[] = [];
  for (let i = 0; i < vlen; i++) {
    const m = body + i * 12;
    const offset = r.u32(m + 8);
    members.push(Object.freeze({
      name: c.str(t.id, r.u32(m), m, 'member', i),
      type: r.u32(m + 4),
      // With kind_flag the offset word packs the bitfield width (top 8 bits) over a 24-bit bit offset.
      bitOffset: t.kindFlag ? offset & 0xffffff : offset,
      bitfieldSize: t.kindFlag ? offset >>> 24 : 0,
    }));
  }
  const kind = t.kind === BtfKind.STRUCT ? 'struct' : 'union';
  return { type: { kind, id: t.id, name: t.name, size: t.sizeOrType, members: Object.freeze(members) }, extra: vlen * 12 };
};

const readEnum: RecordReader = (c, t) => {
  const { body, vlen } = t;
  const r = c.r;
  if (![1, 2, 4, 8].includes(t.sizeOrType)) throw c.error(t, `enum size ${t.sizeOrType} (must be 1, 2, 4 or 8)`);
  c.need(t, vlen * 8, vlen, 'enum values');
  const values = [];
  for (let i = 0; i < vlen; i++) {
    const v = body + i * 8;
    values.push(Object.freeze({ name: c.str(t.id, r.u32(v), v, 'enum value', i), value: t.kindFlag ? r.i32(v + 4) : r.u32(v + 4) }));
  }
  return { type: { kind: 'enum', id: t.id, name: t.name, size: t.sizeOrType, signed: t.kindFlag, values: Object.freeze(values) }, extra: vlen * 8 };
};

const readEnum64: RecordReader = (c, t) => {
  const { body, vlen } = t;
  const r = c.r;
  if (![1, 2, 4, 8].includes(t.sizeOrType)) throw c.error(t, `enum64 size ${t.sizeOrType} (must be 1, 2, 4 or 8)`);
  c.need(t, vlen * 12, vlen, 'enum64 values');
  const values = [];
  for (let i = 0; i < vlen; i++) {
    const v = body + i * 12;
    // lo32 then hi32, each in the object's byte order (not one u64).
    const raw = (BigInt(r.u32(v + 8)) << 32n) | BigInt(r.u32(v + 4));
    values.push(Object.freeze({ name: c.str(t.id, r.u32(v), v, 'enum64 value', i), value: t.kindFlag ? BigInt.asIntN(64, raw) : raw }));
  }
  return { type: { kind: 'enum64', id: t.id, name: t.name, size: t.sizeOrType, signed: t.kindFlag, values: Object.freeze(values) }, extra: vlen * 12 };
};

/** ptr, typedef and the qualifiers: a name (typedef only) and the type referred to. */
const readReference = (kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict'): RecordReader => (c, t) => {
  c.noVlen(t, kind);
  if (kind === 'typedef' && t.name === '') throw c.error(t, 'typedef without a name');
  return { type: { kind, id: t.id, name: t.name, type: t.sizeOrType }, extra: 0 };
};

const readFunc: RecordReader = (c, t) => {
  const linkage = BTF_LINKAGES[t.vlen];
  if (linkage === undefined) throw c.error(t, `func linkage ${t.vlen} (must be 0 static, 1 global or 2 extern)`);
  if (t.name === '') throw c.error(t, 'func without a name');
  return { type: { kind: 'func', id: t.id, name: t.name, type: t.sizeOrType, linkage }, extra: 0 };
};

const readFuncProto: RecordReader = (c, t) => {
  const { body, vlen } = t;
  const r = c.r;
  c.need(t, vlen * 8, vlen, 'params');
  const params = [];
  let variadic = false;
  for (let i = 0; i < vlen; i++) {
    const p = body + i * 8;
    const paramName = c.str(t.id, r.u32(p), p, 'param', i);
    const paramType = r.u32(p + 4);
    if (paramType === 0) {
      // Type 0 marks `...`, allowed only as the last, unnamed parameter.
      if (i !== vlen - 1 || paramName !== '') throw c.fail({ offset: p, typeId: t.id }, `param ${i} has type void`);
      variadic = true;
    } else {
      params.push(Object.freeze({ name: paramName, type: paramType }));
    }
  }
  return { type: { kind: 'func_proto', id: t.id, name: t.name, returnType: t.sizeOrType, params: Object.freeze(params), variadic }, extra: vlen * 8 };
};

const readVar: RecordReader = (c, t) => {
  c.noVlen(t, 'var');
  c.need(t, 4, -1, 'var linkage');
  const linkageValue = c.r.u32(t.body);
  const linkage = BTF_LINKAGES[linkageValue];
  if (linkage === undefined) throw c.error(t, `var linkage ${linkageValue} (must be 0 static, 1 global or 2 extern)`);
  if (t.name === '') throw c.error(t, 'var without a name');
  return { type: { kind: 'var', id: t.id, name: t.name, type: t.sizeOrType, linkage }, extra: 4 };
};

const readDatasec: RecordReader = (c, t) => {
  const { body, vlen } = t;
  const r = c.r;
  if (t.name === '') throw c.error(t, 'datasec without a name');
  c.need(t, vlen * 12, vlen, 'datasec entries');
  const vars = [];
  for (let i = 0; i < vlen; i++) {
    const v = body + i * 12;
    vars.push(Object.freeze({ type: r.u32(v), offset: r.u32(v + 4), size: r.u32(v + 8) }));
  }
  return { type: { kind: 'datasec', id: t.id, name: t.name, size: t.sizeOrType, vars: Object.freeze(vars) }, extra: vlen * 12 };
};

const readFloat: RecordReader = (c, t) => {
  c.noVlen(t, 'float');
  if (![2, 4, 8, 12, 16].includes(t.sizeOrType)) throw c.error(t, `float size ${t.sizeOrType} (must be 2, 4, 8, 12 or 16)`);
  return { type: { kind: 'float', id: t.id, name: t.name, size: t.sizeOrType }, extra: 0 };
};

const readDeclTag: RecordReader = (c, t) => {
  c.noVlen(t, 'decl_tag');
  c.need(t, 4, -1, 'decl_tag component_idx');
  const componentIdx = c.r.i32(t.body);
  if (componentIdx < -1) throw c.error(t, `decl_tag component_idx ${componentIdx} (must be >= -1)`);
  if (t.name === '') throw c.error(t, 'decl_tag without a name');
  return { type: { kind: 'decl_tag', id: t.id, name: t.name, type: t.sizeOrType, componentIdx, attribute: t.kindFlag }, extra: 4 };
};

const readTypeTag: RecordReader = (c, t) => {
  c.noVlen(t, 'type_tag');
  if (t.name === '') throw c.error(t, 'type_tag without a name');
  return { type: { kind: 'type_tag', id: t.id, name: t.name, type: t.sizeOrType, attribute: t.kindFlag }, extra: 0 };
};

/** One reader per BTF kind; a kind missing here is malformed BTF. */
const RECORD_READERS: Readonly<Record<number, RecordReader>> = {
  [BtfKind.INT]: readInt,
  [BtfKind.PTR]: readReference('ptr'),
  [BtfKind.ARRAY]: readArray,
  [BtfKind.STRUCT]: readComposite,
  [BtfKind.UNION]: readComposite,
  [BtfKind.ENUM]: readEnum,
  [BtfKind.FWD]: (c, t) => {
    c.noVlen(t, 'fwd');
    return { type: { kind: 'fwd', id: t.id, name: t.name, fwdKind: t.kindFlag ? 'union' : 'struct' }, extra: 0 };
  },
  [BtfKind.TYPEDEF]: readReference('typedef'),
  [BtfKind.VOLATILE]: readReference('volatile'),
  [BtfKind.CONST]: readReference('const'),
  [BtfKind.RESTRICT]: readReference('restrict'),
  [BtfKind.FUNC]: readFunc,
  [BtfKind.FUNC_PROTO]: readFuncProto,
  [BtfKind.VAR]: readVar,
  [BtfKind.DATASEC]: readDatasec,
  [BtfKind.FLOAT]: readFloat,
  [BtfKind.DECL_TAG]: readDeclTag,
  [BtfKind.TYPE_TAG]: readTypeTag,
  [BtfKind.ENUM64]: readEnum64,
};

type Fail = (where: { offset?: number; typeId?: number }, cause: string) => BtfError;

/**
 * Every type reference must name an existing type, and a few kinds constrain what they refer to. Written as plain
 * loops that build messages only on failure: this runs once per type and member of kernel-sized BTF.
 */
function checkReferences(types: readonly BtfType[], offsets: readonly number[], fail: Fail): void {
  const count = types.length;
  const where = (t: BtfType) => ({ offset: offsets[t.id]!, typeId: t.id });
  const check = (t: BtfType, ref: number, what: () => string): void => {
    if (ref >= count) throw fail(where(t), `${what()} refers to type [${ref}], but the last type is [${count - 1}]`);
  };
  const memberLabel = (i: number, name: string) => `member ${i} (${name || '(anon)'})`;
  for (const t of types) {
    switch (t.kind) {
      case 'void': case 'int': case 'enum': case 'enum64': case 'fwd': case 'float':
        break;
      case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag': case 'var':
        check(t, t.type, () => 'type');
        break;
      case 'func':
        check(t, t.type, () => 'type');
        if (types[t.type]!.kind !== 'func_proto') throw fail(where(t), `func refers to [${t.type}] (${types[t.type]!.kind}), not a func_proto`);
        break;
      case 'array':
        check(t, t.type, () => 'element type');
        check(t, t.indexType, () => 'index type');
        if (t.type === 0) throw fail(where(t), 'array of void');
        break;
      case 'struct': case 'union':
        for (let i = 0; i < t.members.length; i++) {
          const m = t.members[i]!;
          check(t, m.type, () => `${memberLabel(i, m.name)} type`);
          if (m.type === 0) throw fail(where(t), `${memberLabel(i, m.name)} has type void`);
        }
        break;
      case 'func_proto':
        check(t, t.returnType, () => 'return type');
        for (let i = 0; i < t.params.length; i++) check(t, t.params[i]!.type, () => `param ${i} type`);
        break;
      case 'datasec':
        for (let i = 0; i < t.vars.length; i++) {
          const v = t.vars[i]!;
          check(t, v.type, () => `entry ${i} type`);
          const kind = types[v.type]!.kind;
          if (kind !== 'var' && kind !== 'func') throw fail(where(t), `entry ${i} refers to [${v.type}] (${kind}), not a var or func`);
        }
        break;
      case 'decl_tag':
        check(t, t.type, () => 'type');
        checkDeclTag(t, types, where(t), fail);
        break;
    }
  }
}

/** A decl_tag names a struct/union member or a function parameter by index; that index must exist. */
function checkDeclTag(
  t: BtfTypeOfKind<'decl_tag'>, types: readonly BtfType[], where: { offset: number; typeId: number }, fail: Fail,
): void {
  const target = types[t.type]!;
  if (target.kind === 'void') throw fail(where, 'decl_tag on void');
  if (t.componentIdx === -1) return;
  let components: number | undefined;
  if (target.kind === 'struct' || target.kind === 'union') components = target.members.length;
  if (target.kind === 'func') {
    const proto = types[target.type];
    if (proto?.kind === 'func_proto') components = proto.params.length;
  }
  if (components === undefined) {
    throw fail(where, `decl_tag component_idx ${t.componentIdx} on [${t.type}] (${target.kind}), which has no components`);
  }
  if (t.componentIdx >= components) {
    throw fail(where, `decl_tag component_idx ${t.componentIdx} out of range ([${t.type}] has ${components})`);
  }
}
