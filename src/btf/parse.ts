import { ByteReader, decodeName } from '../base/cursor.js';
import { BtfError } from './errors.js';
import { formatBtfValue } from './format.js';
import { renderTypeName } from './name.js';
import {
  BTF_HEADER_SIZE, BTF_LINKAGES, BTF_MAGIC, BTF_TYPE_SIZE, BTF_VERSION, BtfIntEncoding, BtfKind,
  type BtfDatasec, type BtfHeader, type BtfKindName, type BtfMember, type BtfType, type BtfTypeOfKind, type BtfValue,
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
export class Btf {
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
  const fail = (where: { offset?: number; typeId?: number }, cause: string) =>
    new BtfError({ file, section: '.BTF', ...where }, cause);
  const r = new ByteReader(bytes, littleEndian, (what, offset, size, limit) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));

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
  const dataLen = bytes.byteLength - hdrLen;
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

  const stringsStart = hdrLen + header.strOff;
  const stringsLength = header.strLen;
  if (stringsLength === 0) throw fail({ offset: 20 }, 'empty string table (it must start with the empty string)');
  if (r.u8(stringsStart) !== 0) throw fail({ offset: stringsStart }, 'string table does not start with the empty string');
  if (r.u8(stringsStart + stringsLength - 1) !== 0) {
    throw fail({ offset: stringsStart + stringsLength - 1 }, 'string table does not end with a NUL byte');
  }
  const strings = new StringTable(bytes.subarray(stringsStart, stringsStart + stringsLength));
  /** `what` and `index` only build the message, so nothing is allocated on the (hot) success path. */
  const str = (offset: number, at: number, typeId: number, what: string, index = -1): string => {
    if (offset >= stringsLength) {
      const label = index < 0 ? what : `${what} ${index} `;
      throw fail({ offset: at, typeId }, `${label}name offset ${offset} is outside the string table (${stringsLength} bytes)`);
    }
    return strings.at(offset);
  };
  const typesEnd = hdrLen + header.typeOff + header.typeLen;
  /** The record's variable part (`count` items of `what`, or -1 for a fixed part; `size` bytes) must fit the type section. */
  const need = (pos: number, id: number, size: number, count: number, what: string): void => {
    const body = pos + BTF_TYPE_SIZE;
    if (body + size > typesEnd) {
      throw fail({ offset: pos, typeId: id },
        `${count < 0 ? what : `${count} ${what}`} (${size} bytes) extends past the end of the type section (${typesEnd - body} bytes left)`);
    }
  };
  const noVlen = (pos: number, id: number, vlen: number, kindName: string): void => {
    if (vlen !== 0) throw fail({ offset: pos, typeId: id }, `${kindName} with vlen ${vlen} (must be 0)`);
  };

  const types: BtfType[] = [VOID];
  const typeOffsets: number[] = [-1];
  let pos = hdrLen + header.typeOff;
  while (pos < typesEnd) {
    const id = types.length;
    const where = { offset: pos, typeId: id };
    if (id > BTF_MAX_TYPE) throw fail(where, `more than ${BTF_MAX_TYPE} types`);
    if (pos + BTF_TYPE_SIZE > typesEnd) {
      throw fail(where, `type record (${BTF_TYPE_SIZE} bytes) extends past the end of the type section`);
    }
    const nameOff = r.u32(pos);
    const info = r.u32(pos + 4);
    const sizeOrType = r.u32(pos + 8);
    if ((info & ~INFO_MASK) !== 0) throw fail(where, `info 0x${info.toString(16)} has reserved bits set`);
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const body = pos + BTF_TYPE_SIZE;
    const name = str(nameOff, pos, id, '');
    let t: BtfType;
    let recordSize = BTF_TYPE_SIZE;

    switch (kind) {
      case BtfKind.INT: {
        noVlen(pos, id, vlen, 'int');
        need(pos, id, 4, -1, 'int encoding');
        const data = r.u32(body);
        recordSize += 4;
        const encoding = (data >>> 24) & 0xf;
        const bitOffset = (data >>> 16) & 0xff;
        const bits = data & 0xff;
        if ((data & 0xf000_ff00) !== 0) {
          throw fail(where, `int data 0x${data.toString(16)} has reserved bits set`);
        }
        if (![1, 2, 4, 8, 16].includes(sizeOrType)) throw fail(where, `int size ${sizeOrType} (must be 1, 2, 4, 8 or 16)`);
        if (bits === 0 || bitOffset + bits > sizeOrType * 8) {
          throw fail(where, `int bits ${bits} at offset ${bitOffset} do not fit its ${sizeOrType} bytes`);
        }
        if (encoding !== 0 && encoding !== BtfIntEncoding.SIGNED && encoding !== BtfIntEncoding.CHAR && encoding !== BtfIntEncoding.BOOL) {
          throw fail(where, `int encoding ${encoding} (must be one of none, signed, char, bool)`);
        }
        t = {
          kind: 'int', id, name, size: sizeOrType,
          signed: encoding === BtfIntEncoding.SIGNED, char: encoding === BtfIntEncoding.CHAR, bool: encoding === BtfIntEncoding.BOOL,
          bitOffset, bits,
        };
        break;
      }
      case BtfKind.PTR:
        noVlen(pos, id, vlen, 'ptr');
        t = { kind: 'ptr', id, name, type: sizeOrType };
        break;
      case BtfKind.ARRAY: {
        noVlen(pos, id, vlen, 'array');
        need(pos, id, 12, -1, 'btf_array');
        recordSize += 12;
        t = { kind: 'array', id, name, type: r.u32(body), indexType: r.u32(body + 4), nelems: r.u32(body + 8) };
        break;
      }
      case BtfKind.STRUCT: case BtfKind.UNION: {
        need(pos, id, vlen * 12, vlen, 'members');
        recordSize += vlen * 12;
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const m = body + i * 12;
          const offset = r.u32(m + 8);
          members.push(Object.freeze({
            name: str(r.u32(m), m, id, 'member', i),
            type: r.u32(m + 4),
            // With kind_flag the offset word packs the bitfield width (top 8 bits) over a 24-bit bit offset.
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          }));
        }
        t = { kind: kind === BtfKind.STRUCT ? 'struct' : 'union', id, name, size: sizeOrType, members: Object.freeze(members) };
        break;
      }
      case BtfKind.ENUM: {
        if (![1, 2, 4, 8].includes(sizeOrType)) throw fail(where, `enum size ${sizeOrType} (must be 1, 2, 4 or 8)`);
        need(pos, id, vlen * 8, vlen, 'enum values');
        recordSize += vlen * 8;
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const v = body + i * 8;
          values.push(Object.freeze({
            name: str(r.u32(v), v, id, 'enum value', i),
            value: kindFlag ? r.i32(v + 4) : r.u32(v + 4),
          }));
        }
        t = { kind: 'enum', id, name, size: sizeOrType, signed: kindFlag, values: Object.freeze(values) };
        break;
      }
      case BtfKind.ENUM64: {
        if (![1, 2, 4, 8].includes(sizeOrType)) throw fail(where, `enum64 size ${sizeOrType} (must be 1, 2, 4 or 8)`);
        need(pos, id, vlen * 12, vlen, 'enum64 values');
        recordSize += vlen * 12;
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const v = body + i * 12;
          // lo32 then hi32, each in the object's byte order (not one u64).
          const raw = (BigInt(r.u32(v + 8)) << 32n) | BigInt(r.u32(v + 4));
          values.push(Object.freeze({
            name: str(r.u32(v), v, id, 'enum64 value', i),
            value: kindFlag ? BigInt.asIntN(64, raw) : raw,
          }));
        }
        t = { kind: 'enum64', id, name, size: sizeOrType, signed: kindFlag, values: Object.freeze(values) };
        break;
      }
      case BtfKind.FWD:
        noVlen(pos, id, vlen, 'fwd');
        t = { kind: 'fwd', id, name, fwdKind: kindFlag ? 'union' : 'struct' };
        break;
      case BtfKind.TYPEDEF: case BtfKind.VOLATILE: case BtfKind.CONST: case BtfKind.RESTRICT: {
        const refKind = kind === BtfKind.TYPEDEF ? 'typedef' : kind === BtfKind.VOLATILE ? 'volatile' : kind === BtfKind.CONST ? 'const' : 'restrict';
        noVlen(pos, id, vlen, refKind);
        if (refKind === 'typedef' && name === '') throw fail(where, 'typedef without a name');
        t = { kind: refKind, id, name, type: sizeOrType };
        break;
      }
      case BtfKind.FUNC: {
        const linkage = BTF_LINKAGES[vlen];
        if (linkage === undefined) throw fail(where, `func linkage ${vlen} (must be 0 static, 1 global or 2 extern)`);
        if (name === '') throw fail(where, 'func without a name');
        t = { kind: 'func', id, name, type: sizeOrType, linkage };
        break;
      }
      case BtfKind.FUNC_PROTO: {
        need(pos, id, vlen * 8, vlen, 'params');
        recordSize += vlen * 8;
        const params = [];
        let variadic = false;
        for (let i = 0; i < vlen; i++) {
          const p = body + i * 8;
          const paramName = str(r.u32(p), p, id, 'param', i);
          const paramType = r.u32(p + 4);
          if (paramType === 0) {
            // Type 0 marks `...`, allowed only as the last, unnamed parameter.
            if (i !== vlen - 1 || paramName !== '') throw fail({ offset: p, typeId: id }, `param ${i} has type void`);
            variadic = true;
          } else {
            params.push(Object.freeze({ name: paramName, type: paramType }));
          }
        }
        t = { kind: 'func_proto', id, name, returnType: sizeOrType, params: Object.freeze(params), variadic };
        break;
      }
      case BtfKind.VAR: {
        noVlen(pos, id, vlen, 'var');
        need(pos, id, 4, -1, 'var linkage');
        recordSize += 4;
        const linkageValue = r.u32(body);
        const linkage = BTF_LINKAGES[linkageValue];
        if (linkage === undefined) throw fail(where, `var linkage ${linkageValue} (must be 0 static, 1 global or 2 extern)`);
        if (name === '') throw fail(where, 'var without a name');
        t = { kind: 'var', id, name, type: sizeOrType, linkage };
        break;
      }
      case BtfKind.DATASEC: {
        if (name === '') throw fail(where, 'datasec without a name');
        need(pos, id, vlen * 12, vlen, 'datasec entries');
        recordSize += vlen * 12;
        const vars = [];
        for (let i = 0; i < vlen; i++) {
          const v = body + i * 12;
          vars.push(Object.freeze({ type: r.u32(v), offset: r.u32(v + 4), size: r.u32(v + 8) }));
        }
        t = { kind: 'datasec', id, name, size: sizeOrType, vars: Object.freeze(vars) };
        break;
      }
      case BtfKind.FLOAT:
        noVlen(pos, id, vlen, 'float');
        if (![2, 4, 8, 12, 16].includes(sizeOrType)) throw fail(where, `float size ${sizeOrType} (must be 2, 4, 8, 12 or 16)`);
        t = { kind: 'float', id, name, size: sizeOrType };
        break;
      case BtfKind.DECL_TAG: {
        noVlen(pos, id, vlen, 'decl_tag');
        need(pos, id, 4, -1, 'decl_tag component_idx');
        recordSize += 4;
        const componentIdx = r.i32(body);
        if (componentIdx < -1) throw fail(where, `decl_tag component_idx ${componentIdx} (must be >= -1)`);
        if (name === '') throw fail(where, 'decl_tag without a name');
        t = { kind: 'decl_tag', id, name, type: sizeOrType, componentIdx, attribute: kindFlag };
        break;
      }
      case BtfKind.TYPE_TAG:
        noVlen(pos, id, vlen, 'type_tag');
        if (name === '') throw fail(where, 'type_tag without a name');
        t = { kind: 'type_tag', id, name, type: sizeOrType, attribute: kindFlag };
        break;
      default:
        throw fail(where, `unknown kind ${kind}`);
    }
    types.push(Object.freeze(t));
    typeOffsets.push(pos);
    pos += recordSize;
  }

  checkReferences(types, typeOffsets, fail);
  return new Btf(bytes, littleEndian, file, Object.freeze(types), Object.freeze({
    header, typeOffsets: Object.freeze(typeOffsets), stringsStart, stringsLength,
  }), strings);
}

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
