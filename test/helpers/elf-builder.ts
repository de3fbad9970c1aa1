/**
 * Builds small ELF64 relocatable objects by hand, for reader and object-spec tests that need shapes no compiler emits
 * (or emits only by accident). Produces the same layout llvm does: header, section data, then the section headers.
 */
export interface BuildSection {
  name: string;
  type: number;
  flags?: number;
  data?: Uint8Array;
  /** For NOBITS: the size without data. */
  size?: number;
  link?: number;
  info?: number;
  entsize?: number;
  addralign?: number;
}

export interface BuildSymbol {
  name: string;
  value?: number;
  size?: number;
  type?: number;
  bind?: number;
  visibility?: number;
  shndx: number;
}

export interface BuildOptions {
  littleEndian?: boolean;
  machine?: number;
  sections: BuildSection[];
  /** When present, a .symtab and .strtab are appended after `sections` (indices sections.length+1, +2). */
  symbols?: BuildSymbol[];
}

export const SYMTAB_INDEX = (opts: BuildOptions) => opts.sections.length + 1;

/** Index 0 is the null section; caller sections start at 1; then .symtab, .strtab (if symbols), then .shstrtab. */
export function buildElf(opts: BuildOptions): Uint8Array {
  const le = opts.littleEndian ?? true;
  const sections: BuildSection[] = [{ name: '', type: 0 }, ...opts.sections];
  if (opts.symbols !== undefined) {
    const strtab = new StringTable();
    const symtabIndex = sections.length;
    const syms = new Uint8Array(24 * (opts.symbols.length + 1));
    const sv = new DataView(syms.buffer);
    opts.symbols.forEach((s, i) => {
      const o = (i + 1) * 24;
      sv.setUint32(o, s.name === '' ? 0 : strtab.add(s.name), le);
      sv.setUint8(o + 4, ((s.bind ?? 1) << 4) | (s.type ?? 0));
      sv.setUint8(o + 5, s.visibility ?? 0);
      sv.setUint16(o + 6, s.shndx, le);
      sv.setBigUint64(o + 8, BigInt(s.value ?? 0), le);
      sv.setBigUint64(o + 16, BigInt(s.size ?? 0), le);
    });
    sections.push({ name: '.symtab', type: 2, data: syms, link: symtabIndex + 1, entsize: 24, info: 1 });
    sections.push({ name: '.strtab', type: 3, data: strtab.bytes() });
  }
  const shstr = new StringTable();
  const nameOffsets = sections.map((s) => (s.name === '' ? 0 : shstr.add(s.name)));
  const shstrIndex = sections.length;
  nameOffsets.push(shstr.add('.shstrtab'));
  sections.push({ name: '.shstrtab', type: 3, data: shstr.bytes() });

  let offset = 64;
  const placed = sections.map((s) => {
    const size = s.data?.byteLength ?? 0;
    const at = offset;
    offset += size;
    offset = (offset + 7) & ~7;
    return at;
  });
  const shoff = offset;
  const total = shoff + 64 * sections.length;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, le ? 1 : 2, 1], 0);
  v.setUint16(16, 1, le);
  v.setUint16(18, opts.machine ?? 247, le);
  v.setUint32(20, 1, le);
  v.setBigUint64(40, BigInt(shoff), le);
  v.setUint16(52, 64, le);
  v.setUint16(58, 64, le);
  v.setUint16(60, sections.length, le);
  v.setUint16(62, shstrIndex, le);
  sections.forEach((s, i) => {
    if (s.data !== undefined) out.set(s.data, placed[i]!);
    const h = shoff + i * 64;
    v.setUint32(h, nameOffsets[i]!, le);
    v.setUint32(h + 4, s.type, le);
    v.setBigUint64(h + 8, BigInt(s.flags ?? 0), le);
    v.setBigUint64(h + 24, BigInt(i === 0 ? 0 : placed[i]!), le);
    v.setBigUint64(h + 32, BigInt(s.size ?? s.data?.byteLength ?? 0), le);
    v.setUint32(h + 40, s.link ?? 0, le);
    v.setUint32(h + 44, s.info ?? 0, le);
    v.setBigUint64(h + 48, BigInt(s.addralign ?? 0), le);
    v.setBigUint64(h + 56, BigInt(s.entsize ?? 0), le);
  });
  return out;
}

/** REL entries: [offset, symbolIndex, type]. */
export function relEntries(entries: Array<[number, number, number]>, littleEndian = true): Uint8Array {
  const out = new Uint8Array(16 * entries.length);
  const v = new DataView(out.buffer);
  entries.forEach(([offset, sym, type], i) => {
    v.setBigUint64(i * 16, BigInt(offset), littleEndian);
    v.setBigUint64(i * 16 + 8, (BigInt(sym) << 32n) | BigInt(type), littleEndian);
  });
  return out;
}

/** Little-endian encoding of raw 8-byte instruction slots [opcode, regs, off, imm]. */
export function insnBytes(slots: Array<[number, number, number, number]>, littleEndian = true): Uint8Array {
  const out = new Uint8Array(8 * slots.length);
  const v = new DataView(out.buffer);
  slots.forEach(([op, regs, off, imm], i) => {
    v.setUint8(i * 8, op);
    v.setUint8(i * 8 + 1, regs);
    v.setInt16(i * 8 + 2, off, littleEndian);
    v.setInt32(i * 8 + 4, imm, littleEndian);
  });
  return out;
}

class StringTable {
  private parts: number[] = [0];
  add(s: string): number {
    const at = this.parts.length;
    for (const b of new TextEncoder().encode(s)) this.parts.push(b);
    this.parts.push(0);
    return at;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}
