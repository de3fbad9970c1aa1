import { ByteReader } from '../base/cursor.js';
import { INSN_SLOT_SIZE } from '../base/uapi.js';
import { BtfError } from './errors.js';
import type { Btf } from './btf.js';
import {
  CORE_RELO_SIZE, FUNC_INFO_SIZE, LINE_INFO_SIZE,
  BTF_MAGIC, BTF_VERSION, CORE_RELO_KINDS,
  type BtfCoreRelo, type BtfExt, type BtfExtHeader, type BtfFuncInfo, type BtfLineInfo,
} from './types.js';

export interface ParseBtfExtOptions {
  /** Name used in error messages (a path or a display name). */
  file?: string | undefined;
}

/** Header up to line_info_len: the oldest layout. */
const EXT_HEADER_MIN = 24;
/** Header including core_relo_off/len. */
const EXT_HEADER_CORE = 32;

type Fail = (where: { offset?: number; typeId?: number }, cause: string) => BtfError;

/**
 * Parses a .BTF.ext section against the .BTF it belongs to (section names, file names, source lines and access
 * strings live in the BTF string table). Strict: every table, record and reference is bounds-checked; a record larger
 * than the one known here (a newer writer) is read at the known size and its extra bytes skipped.
 */
// Long: the header and three record tables share one reader, the checks `table` closes over, and three short record readers.
export function parseBtfExt(bytes: Uint8Array, littleEndian: boolean, btf: Btf, options: ParseBtfExtOptions = {}): BtfExt {
  const file = options.file ?? btf.file;
  const fail: Fail = (where, cause) => new BtfError({ file, section: '.BTF.ext', ...where }, cause);
  const r = new ByteReader(bytes, littleEndian, (what, offset, size, limit) =>
    fail({ offset }, `${what} (${size} bytes) extends past the end of the section (${limit} bytes)`));

  r.check('BTF.ext header', 0, EXT_HEADER_MIN);
  const magic = r.u16(0);
  if (magic !== BTF_MAGIC) throw fail({ offset: 0 }, `bad magic 0x${magic.toString(16)} (expected 0x${BTF_MAGIC.toString(16)})`);
  const version = r.u8(2);
  if (version !== BTF_VERSION) throw fail({ offset: 2 }, `unsupported version ${version} (expected ${BTF_VERSION})`);
  const flags = r.u8(3);
  if (flags !== 0) throw fail({ offset: 3 }, `unsupported header flags 0x${flags.toString(16)}`);
  const hdrLen = r.u32(4);
  if (hdrLen < EXT_HEADER_MIN) throw fail({ offset: 4 }, `hdr_len ${hdrLen} is shorter than the ${EXT_HEADER_MIN}-byte header`);
  r.check(`BTF.ext header (hdr_len ${hdrLen})`, 0, hdrLen);
  const hasCore = hdrLen >= EXT_HEADER_CORE;
  const header: BtfExtHeader = Object.freeze({
    magic, version, flags, hdrLen,
    funcInfoOff: r.u32(8), funcInfoLen: r.u32(12), lineInfoOff: r.u32(16), lineInfoLen: r.u32(20),
    coreReloOff: hasCore ? r.u32(24) : 0, coreReloLen: hasCore ? r.u32(28) : 0,
  });

  // Records are read only inside a table whose whole extent `table` has checked: straight from the view.
  const view = r.view;
  const u32 = (o: number): number => view.getUint32(o, littleEndian);
  const stringsLength = btf.layout.stringsLength;
  // Locations are passed as numbers, not objects: these run once per record (93k line records in a large object).
  const stringAt = (offset: number, at: number, what: string, id?: number): void => {
    // A u32 is a safe integer ≥ 0: below the table's length is all btf.hasString would add.
    if (offset >= stringsLength) {
      throw fail(id === undefined ? { offset: at } : { offset: at, typeId: id }, `${what} offset ${offset} is outside the BTF string table (${btf.header.strLen} bytes)`);
    }
  };
  const str = (offset: number, at: number, what: string): string => {
    stringAt(offset, at, what);
    return btf.string(offset);
  };
  const typeId = (id: number, at: number, what: string): void => {
    if (id >= btf.types.length) {
      throw fail({ offset: at, typeId: id }, `${what} refers to type [${id}], but the last type is [${btf.types.length - 1}]`);
    }
  };
  const insnOff = (o: number): number => {
    const v = u32(o);
    if (v % INSN_SLOT_SIZE !== 0) throw fail({ offset: o }, `insn_off ${v} is not a multiple of ${INSN_SLOT_SIZE}`);
    return v;
  };

  /**
   * One table: per section, `check` each record (it throws on a malformed one, allocating nothing) and `record`
   * decodes it — at once, or (`lazy`) when the section's records are first asked for: line_info is the biggest table
   * (one record per source line) and --dump never reads it.
   */
  const table = <T>(
    name: string, off: number, len: number, headerField: number, minRecSize: number,
    check: (o: number) => void, record: (o: number) => T, lazy = false,
  ): { records: ReadonlyMap<string, readonly T[]>; recSize: number; bytes: ReadonlyMap<string, Uint8Array> } => {
    const records = lazy ? new LazyRecordMap<T>() : new Map<string, readonly T[]>();
    const bytesBySection = new Map<string, Uint8Array>();
    if (len === 0) return { records, recSize: 0, bytes: bytesBySection };
    if (off % 4 !== 0) throw fail({ offset: headerField }, `${name} offset ${off} is not 4-byte aligned`);
    const start = hdrLen + off;
    const end = start + len;
    r.check(name, start, len);
    if (len < 4) throw fail({ offset: start }, `${name} (${len} bytes) has no room for rec_size`);
    const recSize = r.u32(start);
    if (recSize < minRecSize || recSize % 4 !== 0) {
      throw fail({ offset: start }, `${name} rec_size ${recSize} (must be a multiple of 4 and at least ${minRecSize})`);
    }
    let p = start + 4;
    while (p < end) {
      if (p + 8 > end) throw fail({ offset: p }, `${name} section header (8 bytes) extends past the end of the table`);
      const secName = str(r.u32(p), p, `${name} section name`);
      const count = r.u32(p + 4);
      if (count === 0) throw fail({ offset: p }, `${name} for section ${secName}: zero records`);
      if (records.has(secName)) throw fail({ offset: p }, `${name} for section ${secName} appears twice`);
      p += 8;
      if (p + count * recSize > end) {
        throw fail({ offset: p }, `${name} for section ${secName}: ${count} records of ${recSize} bytes extend past the end of the table`);
      }
      for (let i = 0; i < count; i++) check(p + i * recSize);
      const first = p;
      const decode = (): readonly T[] => {
        const list: T[] = [];
        for (let i = 0; i < count; i++) list.push(Object.freeze(record(first + i * recSize)));
        return Object.freeze(list);
      };
      if (records instanceof LazyRecordMap) records.defer(secName, decode);
      else records.set(secName, decode());
      bytesBySection.set(secName, r.bytes.subarray(first, first + count * recSize));
      p += count * recSize;
    }
    return { records, recSize, bytes: bytesBySection };
  };

  const funcInfo = table<BtfFuncInfo>('func_info', header.funcInfoOff, header.funcInfoLen, 8, FUNC_INFO_SIZE, (o) => {
    const id = u32(o + 4);
    typeId(id, o, 'func_info');
    const kind = btf.types[id]!.kind;
    if (kind !== 'func') throw fail({ offset: o, typeId: id }, `func_info refers to a ${kind}, not a func`);
    insnOff(o);
  }, (o) => ({ insnOff: u32(o), typeId: u32(o + 4) }));

  const lineInfo = table<BtfLineInfo>('line_info', header.lineInfoOff, header.lineInfoLen, 16, LINE_INFO_SIZE, (o) => {
    insnOff(o);
    stringAt(u32(o + 4), o + 4, 'line_info file name');
    stringAt(u32(o + 8), o + 8, 'line_info line');
  }, (o) => {
    const fileNameOff = u32(o + 4);
    const lineOff = u32(o + 8);
    const lineCol = u32(o + 12);
    return {
      insnOff: u32(o),
      fileName: btf.string(fileNameOff),
      line: btf.string(lineOff),
      // line_col packs the line number over a 10-bit column (BPF_LINE_INFO_LINE_NUM / _LINE_COL).
      lineNumber: lineCol >>> 10,
      column: lineCol & 0x3ff,
      fileNameOff, lineOff,
    };
  }, true);

  const coreRelos = table<BtfCoreRelo>('core_relo', header.coreReloOff, header.coreReloLen, 24, CORE_RELO_SIZE, (o) => {
    const id = u32(o + 4);
    typeId(id, o + 4, 'CO-RE relocation');
    const kindValue = u32(o + 12);
    if (CORE_RELO_KINDS[kindValue] === undefined) throw fail({ offset: o + 12, typeId: id }, `unknown CO-RE relocation kind ${kindValue}`);
    insnOff(o);
    stringAt(u32(o + 8), o + 8, 'CO-RE access string', id);
  }, (o) => {
    const id = u32(o + 4);
    const accessStrOff = u32(o + 8);
    const kindValue = u32(o + 12);
    return {
      insnOff: u32(o), typeId: id, access: btf.string(accessStrOff), accessStrOff, kind: CORE_RELO_KINDS[kindValue]!, kindValue,
    };
  });

  return Object.freeze({
    file, header,
    funcInfo: funcInfo.records, lineInfo: lineInfo.records, lineInfoBytes: lineInfo.bytes, coreRelos: coreRelos.records,
    funcInfoRecSize: funcInfo.recSize, lineInfoRecSize: lineInfo.recSize, coreReloRecSize: coreRelos.recSize,
  });
}

/**
 * A Map whose values are decoded on first use: `defer` registers a section's decoder; every way of reading a value
 * (get, iteration, forEach) decodes first, so it behaves as the Map it would have been.
 */
class LazyRecordMap<T> extends Map<string, readonly T[]> {
  readonly #pending = new Map<string, () => readonly T[]>();

  defer(key: string, decode: () => readonly T[]): void {
    this.#pending.set(key, decode);
    super.set(key, NOT_DECODED as readonly T[]);
  }

  override get(key: string): readonly T[] | undefined {
    const decode = this.#pending.get(key);
    if (decode !== undefined) {
      this.#pending.delete(key);
      super.set(key, decode());
    }
    return super.get(key);
  }

  #decodeAll(): void {
    for (const key of [...this.#pending.keys()]) this.get(key);
  }

  override values(): MapIterator<readonly T[]> {
    this.#decodeAll();
    return super.values();
  }

  override entries(): MapIterator<[string, readonly T[]]> {
    this.#decodeAll();
    return super.entries();
  }

  override [Symbol.iterator](): MapIterator<[string, readonly T[]]> {
    return this.entries();
  }

  override forEach(callback: (value: readonly T[], key: string, map: Map<string, readonly T[]>) => void, thisArg?: unknown): void {
    this.#decodeAll();
    super.forEach(callback, thisArg);
  }
}

const NOT_DECODED: readonly never[] = Object.freeze([]);
