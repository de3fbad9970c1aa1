/**
 * A seeded, reproducible mutator of BPF objects: case `index` of run `seed` is always the same bytes, so any finding
 * can be regenerated from two numbers. Mutations know the ELF and BTF layouts (found once per seed file): byte flips,
 * boundary values in ELF header, section header, symbol, relocation, instruction, BTF header, BTF type and BTF.ext
 * header fields, truncation, and splicing in bytes of another seed file.
 *
 * Plain ESM without dependencies: the CI test (test/fuzz/parse.test.ts) and `npm run fuzz` (bench/fuzz/run.mjs)
 * share it.
 */

/** A small fast PRNG (mulberry32): 32 bits of state are plenty to pick mutations. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
  };
}

/** The random source of one case: a hash of (seed, index), so cases do not depend on the ones before them. */
function caseRng(seed, index) {
  let h = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return rng(h);
}

const SHT_SYMTAB = 2;
const SHT_RELA = 4;
const SHT_REL = 9;
const SHF_EXECINSTR = 4;
/** Bytes after each BTF type record's 12-byte header, by kind: fixed, or per vlen item. */
const BTF_EXTRA = { 1: [4, 0], 3: [12, 0], 4: [0, 12], 5: [0, 12], 6: [0, 8], 13: [0, 8], 14: [4, 0], 15: [0, 12], 17: [4, 0], 19: [0, 12] };

/**
 * Where the fields are in a (valid) seed file: [offset, width, littleEndian, group]. Reads only what it must, with
 * every offset checked, and stops quietly at anything odd (a seed file is expected to be well formed).
 */
export function fieldsOf(bytes) {
  const fields = [];
  if (bytes.byteLength < 64 || bytes[0] !== 0x7f) return fields;
  const le = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const inside = (o, n) => o >= 0 && o + n <= bytes.byteLength;
  const u16 = (o) => (inside(o, 2) ? view.getUint16(o, le) : 0);
  const u32 = (o) => (inside(o, 4) ? view.getUint32(o, le) : 0);
  const u64 = (o) => (inside(o, 8) ? Number(view.getBigUint64(o, le)) : 0);
  const add = (o, w, group) => {
    if (inside(o, w)) fields.push([o, w, le, group]);
  };
  for (const [o, w] of [[4, 1], [5, 1], [16, 2], [18, 2], [40, 8], [58, 2], [60, 2], [62, 2]]) add(o, w, 'elf header');

  const shoff = u64(40);
  let shnum = u16(60);
  if (shnum === 0) shnum = u64(shoff + 32);
  shnum = Math.min(shnum, 200_000);
  const shstrndx = u16(62) === 0xffff ? u32(shoff + 40) : u16(62);
  const sections = [];
  for (let i = 0; i < shnum && inside(shoff + 64 * i, 64); i++) {
    const h = shoff + 64 * i;
    for (const [o, w] of [[0, 4], [4, 4], [8, 8], [24, 8], [32, 8], [40, 4], [44, 4], [56, 8]]) add(h + o, w, 'section header');
    sections.push({ name: u32(h), type: u32(h + 4), flags: u64(h + 8), offset: u64(h + 24), size: u64(h + 32) });
  }
  const shstr = sections[shstrndx];
  const nameOf = (s) => {
    if (shstr === undefined) return '';
    const start = shstr.offset + s.name;
    let end = start;
    while (end < bytes.byteLength && end < shstr.offset + shstr.size && bytes[end] !== 0) end++;
    return Buffer.from(bytes.subarray(start, end)).toString('latin1');
  };
  for (const s of sections) {
    if (!inside(s.offset, s.size)) continue;
    const name = nameOf(s);
    if (s.type === SHT_SYMTAB) {
      for (let o = s.offset + 24; o + 24 <= s.offset + s.size; o += 24) {
        for (const [d, w] of [[0, 4], [4, 1], [6, 2], [8, 8], [16, 8]]) add(o + d, w, 'symbol');
      }
    } else if (s.type === SHT_REL || s.type === SHT_RELA) {
      const size = s.type === SHT_REL ? 16 : 24;
      for (let o = s.offset; o + size <= s.offset + s.size; o += size) {
        for (const [d, w] of [[0, 8], [8, 4], [12, 4]]) add(o + d, w, 'relocation');
      }
    } else if ((s.flags & SHF_EXECINSTR) !== 0) {
      for (let o = s.offset; o + 8 <= s.offset + s.size; o += 8) {
        for (const [d, w] of [[0, 1], [1, 1], [2, 2], [4, 4]]) add(o + d, w, 'instruction');
      }
    } else if (name === '.BTF') {
      btfFields(s.offset, s.size, u32, add);
    } else if (name === '.BTF.ext') {
      for (let o = 4; o < 32; o += 4) add(s.offset + o, 4, 'btf.ext header');
    } else if (name === 'maps' || name === '.maps') {
      for (let o = s.offset; o + 4 <= s.offset + s.size; o += 4) add(o, 4, 'map definition');
    }
  }
  return fields;
}

function btfFields(start, size, u32, add) {
  for (const [o, w] of [[2, 1], [3, 1], [4, 4], [8, 4], [12, 4], [16, 4], [20, 4]]) add(start + o, w, 'btf header');
  const hdrLen = u32(start + 4);
  let pos = start + hdrLen + u32(start + 8);
  const end = Math.min(pos + u32(start + 12), start + size);
  while (pos + 12 <= end) {
    const info = u32(pos + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const [fixed, per] = BTF_EXTRA[kind] ?? [0, 0];
    const extra = fixed + per * vlen;
    for (const o of [0, 4, 8]) add(pos + o, 4, 'btf type');
    for (let o = 0; o < Math.min(extra, 48); o += 4) add(pos + 12 + o, 4, 'btf type');
    pos += 12 + extra;
  }
}

/** Values at the edges of a field of `width` bytes, and of the file. */
function boundaryValue(r, width, fileSize) {
  const max = width === 8 ? 0xffffffffffffffffn : (1n << BigInt(8 * width)) - 1n;
  const choices = [
    0n, 1n, 2n, 4n, 7n, 8n, max, max - 1n, max >> 1n, (max >> 1n) + 1n, BigInt(fileSize), BigInt(fileSize) + 1n,
    BigInt(Math.max(fileSize - 1, 0)), 0xff00n, 0xffffn, 0x10000n, 0xfffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
    0x100000000n, BigInt(r.int(256)), BigInt(r.int(0x10000)),
  ];
  return r.pick(choices) & max;
}

function writeField(bytes, [offset, width, le], value) {
  for (let i = 0; i < width; i++) {
    const byte = Number((value >> BigInt(8 * i)) & 0xffn);
    bytes[le ? offset + i : offset + width - 1 - i] = byte;
  }
}

function mutateField(r, bytes, fields) {
  const field = r.pick(fields);
  // Small values as often as boundaries: an opcode, a register, an offset a few instructions away.
  const value = r.next() < 0.5 ? BigInt(r.int(field[1] === 1 ? 256 : 64)) : boundaryValue(r, field[1], bytes.byteLength);
  writeField(bytes, field, value);
  return { bytes, what: `${field[3]} field at 0x${field[0].toString(16)} (${field[1]} bytes) = 0x${value.toString(16)}` };
}

/** One mutation of `bytes` (a fresh copy); returns the new bytes and what was done. */
function mutateOnce(r, bytes, fields, seeds) {
  const kind = r.int(100);
  if (kind < 20 || fields.length === 0) {
    const flips = 1 + r.int(4);
    const at = [];
    for (let i = 0; i < flips && bytes.byteLength > 0; i++) {
      const o = r.int(bytes.byteLength);
      bytes[o] ^= 1 << r.int(8);
      at.push(o);
    }
    return { bytes, what: `bit flips at ${at.join(',')}` };
  }
  if (kind < 75) {
    const field = r.pick(fields);
    const value = boundaryValue(r, field[1], bytes.byteLength);
    writeField(bytes, field, value);
    return { bytes, what: `${field[3]} field at 0x${field[0].toString(16)} (${field[1]} bytes) = 0x${value.toString(16)}` };
  }
  if (kind < 85) {
    // Cut at a field boundary most of the time: that is where a reader's assumptions live.
    const length = r.next() < 0.7 ? r.pick(fields)[0] + r.int(9) : r.int(bytes.byteLength + 1);
    return { bytes: bytes.subarray(0, Math.min(length, bytes.byteLength)), what: `truncated to ${length}` };
  }
  const donor = r.pick(seeds);
  const from = r.int(Math.max(donor.bytes.byteLength, 1));
  const length = Math.min(1 + r.int(512), donor.bytes.byteLength - from);
  const to = r.int(Math.max(bytes.byteLength, 1));
  if (length <= 0) return { bytes, what: 'splice (empty donor)' };
  if (kind < 93) {
    const end = Math.min(to + length, bytes.byteLength);
    bytes.set(donor.bytes.subarray(from, from + (end - to)), to);
    return { bytes, what: `overwrote ${end - to} bytes at ${to} with ${donor.name}@${from}` };
  }
  const out = new Uint8Array(bytes.byteLength + length);
  out.set(bytes.subarray(0, to), 0);
  out.set(donor.bytes.subarray(from, from + length), to);
  out.set(bytes.subarray(to), to + length);
  return { bytes: out, what: `inserted ${length} bytes at ${to} from ${donor.name}@${from}` };
}

/**
 * Seeds: [{ name, bytes }], each valid object once. Returns the case generator: `make(index)` → { bytes, source,
 * mutations[] } (1–3 mutations of one seed), the same for the same seed and index. With `groups` (e.g.
 * ['instruction', 'relocation', 'map definition']) only fields of those groups are mutated, with boundary values:
 * objects that still parse, broken where the loader and the verifier must cope.
 */
export function mutator(seeds, seed, { groups } = {}) {
  const prepared = seeds.map((s) => {
    const fields = fieldsOf(s.bytes);
    return { ...s, fields: groups === undefined ? fields : fields.filter((f) => groups.includes(f[3])) };
  });
  return (index) => {
    const r = caseRng(seed, index);
    const source = r.pick(prepared);
    let bytes = Uint8Array.from(source.bytes);
    const mutations = [];
    const count = 1 + (r.next() < 0.3 ? 1 + r.int(2) : 0);
    for (let i = 0; i < count; i++) {
      // Field offsets are the seed's: after an insertion or a cut they may point elsewhere, which is fine for fuzzing.
      const fields = bytes.byteLength >= source.bytes.byteLength ? source.fields : source.fields.filter((f) => f[0] + f[1] <= bytes.byteLength);
      const done = groups === undefined ? mutateOnce(r, bytes, fields, prepared) : mutateField(r, bytes, fields);
      bytes = done.bytes;
      mutations.push(done.what);
    }
    return { bytes, source: source.name, mutations };
  };
}

/**
 * Runs one case through `parse` (bytes → spec) and `use` (what a user does with a spec: describe it, render it) and
 * judges it: a spec or a BpfLoadError (`isTypedError`) with a one-line message, never another exception; the input
 * unchanged. Returns { outcome: 'spec' | 'error', ms, problem } — `problem` set when the case is a finding.
 */
export function judgeCase(bytes, { parse, use, isTypedError }) {
  const before = Uint8Array.from(bytes);
  const start = performance.now();
  let outcome;
  let problem;
  let stack;
  try {
    use(parse(bytes));
    outcome = 'spec';
  } catch (e) {
    outcome = 'error';
    if (!isTypedError(e)) {
      problem = `untyped ${e?.name ?? typeof e}: ${e?.message ?? String(e)}`;
      stack = e?.stack;
    } else if (e.message === '' || /[\n\r]/.test(e.message)) {
      problem = `message is not one line: ${JSON.stringify(e.message)}`;
      stack = e.stack;
    }
  }
  const ms = performance.now() - start;
  if (problem === undefined && Buffer.compare(before, bytes) !== 0) {
    problem = 'the input bytes changed';
  }
  return { outcome, ms, problem, stack };
}
