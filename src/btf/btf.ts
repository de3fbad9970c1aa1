/** Btf: parsed .BTF types over the bytes they came from (built by parseBtf in parse.ts), and its string table. */
import { decodeName } from '../base/cursor.js';
import { BtfError } from './errors.js';
import { formatBtfValue } from './format.js';
import { renderTypeName } from './name.js';
import {
  type BtfDatasec, type BtfHeader, type BtfKindName, type BtfType, type BtfTypeOfKind, type BtfTypeLookup, type BtfValue,
} from './types.js';

/**
 * The string table: NUL-terminated strings addressed by byte offset (an offset may point into the middle of another
 * string). The parser has checked that the table ends with NUL, so every lookup finds its terminator.
 */
export class StringTable {
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
