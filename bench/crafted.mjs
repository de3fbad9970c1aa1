/**
 * Crafted objects that once made parsing slow or crash: shapes no compiler emits, generated here instead of kept as
 * files. Shared by the crafted-shapes test (test/object/crafted.test.ts) and the parse-time rows of bench/run.mjs.
 *
 *   dataSections(n)       n allocated .data.N sections (extended section numbering past 65,279)
 *   programSections(n)    n executable sections, one function symbol each
 *   legacyMapRelocs(n)    n legacy map definitions, one program with n ld_imm64 map relocations
 *   btfMaps(n)            n BTF-defined maps (.maps variables) with a symbol each
 *
 * Plain ESM, no dependencies, so the benchmark runs it on Node without a TypeScript loader.
 */

const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, REL: 9 };
const SHF = { WRITE: 1, ALLOC: 2, EXECINSTR: 4 };
const STT = { OBJECT: 1, FUNC: 2 };
const STB_GLOBAL = 1;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const EM_BPF = 247;
const R_BPF_64_64 = 1;

/** NUL-terminated strings, deduplicated, addressed by byte offset. */
class Strings {
  constructor() {
    this.offsets = new Map([['', 0]]);
    this.parts = [];
    this.length = 1;
  }
  add(s) {
    let off = this.offsets.get(s);
    if (off === undefined) {
      off = this.length;
      this.offsets.set(s, off);
      this.parts.push(s);
      this.length += Buffer.byteLength(s) + 1;
    }
    return off;
  }
  bytes() {
    return Buffer.from(`\0${this.parts.map((p) => `${p}\0`).join('')}`, 'utf8');
  }
}

/**
 * A little-endian ELF64 relocatable BPF object. `sections` (index 1 on) are { name, type, flags, data, link, info,
 * entsize }; `symbols` become .symtab/.strtab after them (`symtabIndex` tells relocation sections where). Section
 * counts past SHN_LORESERVE use extended numbering (counts in section header 0), as the ELF spec has it.
 */
export function writeElf(sections, symbols) {
  const all = [{ name: '', type: SHT.NULL }, ...sections];
  if (symbols !== undefined) {
    const strtab = new Strings();
    const syms = Buffer.alloc(24 * (symbols.length + 1));
    symbols.forEach((s, i) => {
      const o = (i + 1) * 24;
      syms.writeUInt32LE(strtab.add(s.name), o);
      syms.writeUInt8((STB_GLOBAL << 4) | s.type, o + 4);
      syms.writeUInt16LE(s.shndx, o + 6);
      syms.writeBigUInt64LE(BigInt(s.value ?? 0), o + 8);
      syms.writeBigUInt64LE(BigInt(s.size ?? 0), o + 16);
    });
    const symtabIndex = all.length;
    all.push({ name: '.symtab', type: SHT.SYMTAB, data: syms, link: symtabIndex + 1, entsize: 24, info: 1 });
    all.push({ name: '.strtab', type: SHT.STRTAB, data: strtab.bytes() });
  }
  const shstr = new Strings();
  const names = all.map((s) => shstr.add(s.name));
  const shstrIndex = all.length;
  names.push(shstr.add('.shstrtab'));
  all.push({ name: '.shstrtab', type: SHT.STRTAB, data: shstr.bytes() });

  let offset = 64;
  const placed = all.map((s) => {
    const at = offset;
    offset = (offset + (s.data?.byteLength ?? 0) + 7) & ~7;
    return at;
  });
  const shoff = offset;
  const out = Buffer.alloc(shoff + 64 * all.length);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  out.writeUInt16LE(1, 16); // ET_REL
  out.writeUInt16LE(EM_BPF, 18);
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt16LE(64, 52);
  out.writeUInt16LE(64, 58);
  const extended = all.length >= SHN_LORESERVE;
  out.writeUInt16LE(extended ? 0 : all.length, 60);
  out.writeUInt16LE(extended ? SHN_XINDEX : shstrIndex, 62);
  all.forEach((s, i) => {
    if (s.data !== undefined) out.set(s.data, placed[i]);
    const h = shoff + i * 64;
    out.writeUInt32LE(names[i], h);
    out.writeUInt32LE(s.type, h + 4);
    out.writeBigUInt64LE(BigInt(s.flags ?? 0), h + 8);
    out.writeBigUInt64LE(BigInt(i === 0 ? 0 : placed[i]), h + 24);
    out.writeBigUInt64LE(BigInt(i === 0 && extended ? all.length : (s.data?.byteLength ?? 0)), h + 32);
    out.writeUInt32LE(i === 0 && extended ? shstrIndex : (s.link ?? 0), h + 40);
    out.writeUInt32LE(s.info ?? 0, h + 44);
    out.writeBigUInt64LE(BigInt(s.entsize ?? 0), h + 56);
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

const LICENSE = { name: 'license', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, data: Buffer.from('GPL\0') };
/** r0 = 0; exit */
const RETURN_ZERO = Buffer.from([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

/** n allocated `.data.N` sections of 8 bytes: n one-entry array maps. */
export function dataSections(n) {
  const sections = [LICENSE];
  for (let i = 0; i < n; i++) sections.push({ name: `.data.${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, data: Buffer.alloc(8, i & 0xff) });
  return writeElf(sections, undefined);
}

/** n `socket/N`-less socket program sections (`socket_N`), one global function symbol each. */
export function programSections(n) {
  const sections = [LICENSE];
  const symbols = [];
  for (let i = 0; i < n; i++) {
    sections.push({ name: `socket_${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, data: RETURN_ZERO });
    symbols.push({ name: `prog_${i}`, type: STT.FUNC, shndx: sections.length, value: 0, size: RETURN_ZERO.byteLength });
  }
  return writeElf(sections, symbols);
}

/** n legacy array maps, and one socket program loading each of them once (n map relocations). */
export function legacyMapRelocs(n) {
  const defs = Buffer.alloc(20 * n);
  const code = Buffer.alloc(16 * n + 16);
  const rel = Buffer.alloc(16 * n);
  const symbols = [{ name: 'prog', type: STT.FUNC, shndx: 3, value: 0, size: code.byteLength }];
  for (let i = 0; i < n; i++) {
    defs.writeUInt32LE(2, 20 * i); // BPF_MAP_TYPE_ARRAY
    defs.writeUInt32LE(4, 20 * i + 4);
    defs.writeUInt32LE(8, 20 * i + 8);
    defs.writeUInt32LE(1, 20 * i + 12);
    symbols.push({ name: `map_${i}`, type: STT.OBJECT, shndx: 2, value: 20 * i, size: 20 });
    code.writeUInt8(0x18, 16 * i); // r1 = map_i ll
    code.writeUInt8(0x01, 16 * i + 1);
    rel.writeBigUInt64LE(BigInt(16 * i), 16 * i);
    rel.writeBigUInt64LE((BigInt(i + 2) << 32n) | BigInt(R_BPF_64_64), 16 * i + 8);
  }
  RETURN_ZERO.copy(code, 16 * n);
  const sections = [
    LICENSE,
    { name: 'maps', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, data: defs },
    { name: 'socket', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, data: code },
    // .symtab comes right after these four sections (index 5).
    { name: '.relsocket', type: SHT.REL, data: rel, link: 5, info: 3, entsize: 16 },
  ];
  return writeElf(sections, symbols);
}

const BTF_KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, VAR: 14, DATASEC: 15 };

/**
 * n BTF-defined array maps (`__uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __uint(key_size, 4);
 * __uint(value_size, 4)`, and `__uint(pinning, LIBBPF_PIN_BY_NAME)` with `pinByName`), each a `.maps` variable with
 * its own symbol (`map_N`, or `<prefix>N`). The DATASEC carries real sizes and offsets.
 */
export function btfMaps(n, { pinByName = false, prefix = 'map_' } = {}) {
  const strings = new Strings();
  const words = [];
  let typeCount = 0;
  const type = (w) => {
    for (const x of w) words.push(x);
    return (typeCount += 1);
  };
  const info = (kind, vlen = 0) => ((kind << 24) | vlen) >>> 0;
  const int = type([strings.add('int'), info(BTF_KIND.INT), 4, (1 << 24) | 32]);
  const uint = (value) => type([0, info(BTF_KIND.PTR), type([0, info(BTF_KIND.ARRAY), 0, int, int, value])]);
  const member = (name, t, bitOffset) => [strings.add(name), t, bitOffset];
  const members = [...member('type', uint(2), 0), ...member('max_entries', uint(1), 64), ...member('key_size', uint(4), 128),
    ...member('value_size', uint(4), 192), ...(pinByName ? member('pinning', uint(1), 256) : [])];
  const def = type([strings.add('map_def'), info(BTF_KIND.STRUCT, pinByName ? 5 : 4), pinByName ? 40 : 32, ...members]);
  const size = pinByName ? 40 : 32;
  const vars = [];
  for (let i = 0; i < n; i++) vars.push(type([strings.add(`${prefix}${i}`), info(BTF_KIND.VAR), def, 1]));
  const datasecWords = [strings.add('.maps'), info(BTF_KIND.DATASEC, n), size * n];
  vars.forEach((id, i) => datasecWords.push(id, size * i, size));
  type(datasecWords);

  const typeBytes = Buffer.alloc(4 * words.length);
  words.forEach((w, i) => typeBytes.writeUInt32LE(w >>> 0, 4 * i));
  const strBytes = strings.bytes();
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(typeBytes.byteLength, 12);
  header.writeUInt32LE(typeBytes.byteLength, 16);
  header.writeUInt32LE(strBytes.byteLength, 20);
  const btf = Buffer.concat([header, typeBytes, strBytes]);

  const symbols = [];
  for (let i = 0; i < n; i++) symbols.push({ name: `${prefix}${i}`, type: STT.OBJECT, shndx: 2, value: size * i, size });
  const sections = [
    LICENSE,
    { name: '.maps', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, data: Buffer.alloc(size * n) },
    { name: '.BTF', type: SHT.PROGBITS, data: btf },
  ];
  return writeElf(sections, symbols);
}

/** The shapes the benchmark times and the test checks, at the sizes that were quadratic or crashed. */
export const CRAFTED_SHAPES = [
  { name: '125k .data.N sections', build: () => dataSections(125_000), maps: 125_000, programs: 0 },
  { name: '20k program sections × 20k symbols', build: () => programSections(20_000), maps: 0, programs: 20_000 },
  { name: '20k legacy maps × 20k relocations', build: () => legacyMapRelocs(20_000), maps: 20_000, programs: 1 },
  { name: '20k BTF map variables × 20k symbols', build: () => btfMaps(20_000), maps: 20_000, programs: 0 },
];
