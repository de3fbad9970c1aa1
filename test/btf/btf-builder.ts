/**
 * Builds .BTF and .BTF.ext blobs by hand, in either byte order, for shapes no compiler emits (malformed input) and for
 * exact control over layouts. Every record is a list of u32 words, which is what all BTF records are made of.
 */
import { BtfKind } from '../../src/btf/index.js';

export interface BuildMember { name: string; type: number; bitOffset: number; bitfieldSize?: number }

export class BtfBuilder {
  private readonly records: number[][] = [];
  private readonly strings: string[] = [''];
  private readonly stringOffsets = new Map<string, number>([['', 0]]);
  private stringsLength = 1;

  /** Offset of `s` in the string table, adding it on first use. */
  str(s: string): number {
    let off = this.stringOffsets.get(s);
    if (off === undefined) {
      off = this.stringsLength;
      this.stringOffsets.set(s, off);
      this.strings.push(s);
      this.stringsLength += Buffer.byteLength(s) + 1;
    }
    return off;
  }

  /** Appends a raw record; returns its type id. `nameOff` may be any number (for out-of-range tests). */
  raw(kind: number, nameOff: number, vlen: number, kindFlag: boolean, sizeOrType: number, extra: number[] = []): number {
    const info = (((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen) >>> 0;
    this.records.push([nameOff, info, sizeOrType >>> 0, ...extra.map((w) => w >>> 0)]);
    return this.records.length;
  }

  private named(kind: number, name: string, vlen: number, kindFlag: boolean, sizeOrType: number, extra: number[] = []): number {
    return this.raw(kind, this.str(name), vlen, kindFlag, sizeOrType, extra);
  }

  int(name: string, size: number, opts: { signed?: boolean; char?: boolean; bool?: boolean; bits?: number; offset?: number } = {}): number {
    const encoding = (opts.signed ? 1 : 0) | (opts.char ? 2 : 0) | (opts.bool ? 4 : 0);
    return this.named(BtfKind.INT, name, 0, false, size, [(encoding << 24) | ((opts.offset ?? 0) << 16) | (opts.bits ?? size * 8)]);
  }
  ptr(type: number): number { return this.raw(BtfKind.PTR, 0, 0, false, type); }
  array(type: number, indexType: number, nelems: number): number {
    return this.raw(BtfKind.ARRAY, 0, 0, false, 0, [type, indexType, nelems]);
  }
  struct(name: string, size: number, members: BuildMember[], kindFlag = false, union = false): number {
    const words = members.flatMap((m) => [
      this.str(m.name), m.type, kindFlag ? ((m.bitfieldSize ?? 0) << 24) | m.bitOffset : m.bitOffset,
    ]);
    return this.named(union ? BtfKind.UNION : BtfKind.STRUCT, name, members.length, kindFlag, size, words);
  }
  union(name: string, size: number, members: BuildMember[], kindFlag = false): number {
    return this.struct(name, size, members, kindFlag, true);
  }
  enum(name: string, size: number, values: Array<[string, number]>, signed = false): number {
    return this.named(BtfKind.ENUM, name, values.length, signed, size, values.flatMap(([n, v]) => [this.str(n), v]));
  }
  enum64(name: string, size: number, values: Array<[string, bigint]>, signed = false): number {
    return this.named(BtfKind.ENUM64, name, values.length, signed, size, values.flatMap(([n, v]) => {
      const u = BigInt.asUintN(64, v);
      return [this.str(n), Number(u & 0xffffffffn), Number(u >> 32n)];
    }));
  }
  fwd(name: string, union = false): number { return this.named(BtfKind.FWD, name, 0, union, 0); }
  typedef(name: string, type: number): number { return this.named(BtfKind.TYPEDEF, name, 0, false, type); }
  volatile(type: number): number { return this.raw(BtfKind.VOLATILE, 0, 0, false, type); }
  const(type: number): number { return this.raw(BtfKind.CONST, 0, 0, false, type); }
  restrict(type: number): number { return this.raw(BtfKind.RESTRICT, 0, 0, false, type); }
  func(name: string, proto: number, linkage = 1): number { return this.named(BtfKind.FUNC, name, linkage, false, proto); }
  funcProto(returnType: number, params: Array<[string, number]>): number {
    return this.raw(BtfKind.FUNC_PROTO, 0, params.length, false, returnType, params.flatMap(([n, t]) => [this.str(n), t]));
  }
  var(name: string, type: number, linkage = 1): number { return this.named(BtfKind.VAR, name, 0, false, type, [linkage]); }
  datasec(name: string, size: number, vars: Array<[type: number, offset: number, size: number]>): number {
    return this.named(BtfKind.DATASEC, name, vars.length, false, size, vars.flat());
  }
  float(name: string, size: number): number { return this.named(BtfKind.FLOAT, name, 0, false, size); }
  declTag(name: string, type: number, componentIdx: number): number {
    return this.named(BtfKind.DECL_TAG, name, 0, false, type, [componentIdx]);
  }
  typeTag(name: string, type: number): number { return this.named(BtfKind.TYPE_TAG, name, 0, false, type); }

  /** Number of types so far (the last id). */
  get count(): number { return this.records.length; }

  build(littleEndian = true): Uint8Array {
    const typeLen = this.records.reduce((n, r) => n + r.length * 4, 0);
    const strBytes = Buffer.concat(this.strings.map((s) => Buffer.from(`${s}\0`)));
    const out = new Uint8Array(24 + typeLen + strBytes.byteLength);
    const view = new DataView(out.buffer);
    view.setUint16(0, 0xeb9f, littleEndian);
    out[2] = 1;
    out[3] = 0;
    view.setUint32(4, 24, littleEndian);
    view.setUint32(8, 0, littleEndian);
    view.setUint32(12, typeLen, littleEndian);
    view.setUint32(16, typeLen, littleEndian);
    view.setUint32(20, strBytes.byteLength, littleEndian);
    let o = 24;
    for (const r of this.records) {
      for (const w of r) {
        view.setUint32(o, w, littleEndian);
        o += 4;
      }
    }
    out.set(strBytes, o);
    return out;
  }
}

export interface ExtTable {
  recSize: number;
  sections: Array<{ nameOff: number; records: number[][] }>;
}

/** A .BTF.ext with the given tables (records padded with zeros up to recSize); core relos included when given. */
export function buildBtfExt(
  tables: { funcInfo?: ExtTable; lineInfo?: ExtTable; coreRelo?: ExtTable }, littleEndian = true,
): Uint8Array {
  const encode = (t: ExtTable | undefined): number[] => {
    if (t === undefined) return [];
    const words = [t.recSize];
    for (const s of t.sections) {
      words.push(s.nameOff, s.records.length);
      for (const rec of s.records) {
        const padded = [...rec];
        while (padded.length * 4 < t.recSize) padded.push(0);
        words.push(...padded);
      }
    }
    return words;
  };
  const parts = [encode(tables.funcInfo), encode(tables.lineInfo), encode(tables.coreRelo)];
  const hdrLen = 32;
  const total = hdrLen + parts.reduce((n, p) => n + p.length * 4, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint16(0, 0xeb9f, littleEndian);
  out[2] = 1;
  view.setUint32(4, hdrLen, littleEndian);
  let off = 0;
  parts.forEach((p, i) => {
    view.setUint32(8 + i * 8, off, littleEndian);
    view.setUint32(12 + i * 8, p.length * 4, littleEndian);
    p.forEach((w, j) => view.setUint32(hdrLen + off + j * 4, w >>> 0, littleEndian));
    off += p.length * 4;
  });
  return out;
}
