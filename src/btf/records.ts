/** The type section of .BTF, record by record: one reader per kind, each checking its variable part. */
import type { ByteReader } from '../base/cursor.js';
import type { BtfError } from './errors.js';
import type { StringTable } from './btf.js';
import {
  BTF_LINKAGES, BTF_TYPE_SIZE, BtfIntEncoding, BtfKind,
  type BtfHeader, type BtfMember, type BtfType,
} from './types.js';

/** How a parse reports a malformed byte: an offset in the section and, once known, the type id. */
export type Fail = (where: { offset?: number; typeId?: number }, cause: string) => BtfError;

/** The kernel's limit (BTF_MAX_TYPE): ids above it cannot be loaded, so a longer type section is malformed. */
const BTF_MAX_TYPE = 0xfffff;
/** Bits of btf_type.info that carry meaning: vlen (0-15), kind (24-28), kind_flag (31). */
const INFO_MASK = 0x9f00ffff;

const VOID: BtfType = Object.freeze({ kind: 'void', id: 0, name: '' });

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
export function readTypes(r: ByteReader, header: BtfHeader, strings: StringTable, fail: Fail): { types: BtfType[]; typeOffsets: number[] } {
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
