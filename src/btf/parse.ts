/** parseBtf: .BTF bytes → Btf, strictly: header, string table, every record (records.ts) and every reference checked. */
import { ByteReader } from '../base/cursor.js';
import { Btf, StringTable } from './btf.js';
import { BtfError } from './errors.js';
import { readTypes, type Fail } from './records.js';
import { BTF_HEADER_SIZE, BTF_MAGIC, BTF_VERSION, type BtfHeader, type BtfType, type BtfTypeOfKind } from './types.js';

export interface ParseBtfOptions {
  /** Name used in error messages (a path or a display name). */
  file?: string | undefined;
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
