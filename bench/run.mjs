/**
 * `npm run bench`: bpf-load side by side with libbpf and bpftool, in one run, printed as a table.
 *
 *   (a) in-process load + close of c-samples/globals_kern.o: openObject() vs bpf_object__open_file/load/close (C)
 *   (b) whole process: our CLI --count 0 --no-attach vs `bpftool prog loadall`, and bare `node -e 0` as the floor
 *   (c) array map lookups (u32 → u64, 1024 entries): MapHandle.get / raw mapLookupElem vs bpf_map_lookup_elem (C)
 *   (d) reading every entry of a 1M-entry hash map: MapHandle.readAllRaw() (batched, column buffers) and readAll()
 *       (an entry per pair of Buffers) vs `bpftool map dump id N` (plain text)
 *   (e) typed skeletons (`bpf-load gen`): decoding 1M hash entries with the generated codecs vs the run-time BTF
 *       decoder; lookups through a typed handle vs MapHandle.get with Buffers
 *   (f) parse time of crafted objects (bench/crafted.mjs: 125k sections, 20k × 20k shapes) vs llvm-readobj
 *
 * `BENCH_ROWS=af npm run bench` runs only the row groups of those letters.
 *
 * Plain ESM on the built library (../dist), so it runs on Node 20 without a TypeScript loader. C harnesses in
 * bench/c are compiled here with `cc … -lbpf` into bench/.build. Anything missing (root, compiler, libbpf, bpftool,
 * bpffs) skips only the rows that need it, with the reason printed. Ratios are always ours / theirs (time per job).
 */
import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CRAFTED_SHAPES } from './crafted.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BUILD_DIR = join(ROOT, 'bench', '.build');
const C_DIR = join(ROOT, 'bench', 'c');
const GLOBALS_OBJECT = join(ROOT, 'c-samples', 'globals_kern.o');
// An ARRAY u32 → long map (my_map) and one socket program; fixupMap reshapes the map for (c) and (d).
const ARRAY_MAP_OBJECT = join(ROOT, 'c-samples', 'sockex1_modern_kern.o');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const BPFFS = '/sys/fs/bpf';

const LOAD_ITERATIONS = 200;
const LOAD_WARMUP = 20;
const LOAD_BLOCKS = 5;
const PROCESS_RUNS = 15;
const LOOKUP_ENTRIES = 1024;
const LOOKUP_COUNT = 200_000;
const LOOKUP_ROUNDS = 5;
const DUMP_ENTRIES = 1 << 20;
const DUMP_RUNS = 3;

/** A row cannot run here; the message says why. */
class Skip extends Error {}

let lib;
let sys;
try {
  lib = await import('../dist/index.js');
  sys = await import('../dist/sys/index.js');
} catch (e) {
  process.stderr.write(`bench: cannot import the built library from dist/ (${e.message}); run \`npm run build\` first\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function nowNs() {
  return Number(process.hrtime.bigint());
}

/** Runs a program without a shell; throws Skip when it is not installed. */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error?.code === 'ENOENT') throw new Skip(`${cmd} is not installed`);
  if (r.error !== undefined) throw r.error;
  return r;
}

function firstLine(text) {
  return (text ?? '').trim().split('\n')[0] ?? '';
}

/** Compiles bench/c/NAME.c against libbpf unless the binary is newer than the source. */
function buildHarness(name) {
  const source = join(C_DIR, `${name}.c`);
  const binary = join(BUILD_DIR, name);
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(BUILD_DIR, { recursive: true });
  const r = run('cc', ['-O2', '-Wall', '-o', binary, source, '-lbpf']);
  if (r.status !== 0) {
    const why = /bpf\/(libbpf|bpf)\.h|-lbpf|cannot find -lbpf/.test(r.stderr) ? 'libbpf-dev is missing' : 'compile failed';
    throw new Skip(`${why}: cc ${name}.c: ${firstLine(r.stderr)}`);
  }
  return binary;
}

function requireRoot() {
  if (process.getuid?.() !== 0) throw new Skip('needs root for bpf(2)');
}

/** bpffs at /sys/fs/bpf, mounted with /bin/mount when absent (as pinObject does); Skip when that fails. */
function ensureBpffs() {
  const mounted = () => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => {
    const [, target, fstype] = l.split(' ');
    return target === BPFFS && fstype === 'bpf';
  });
  if (mounted()) return;
  const r = run('/bin/mount', ['-t', 'bpf', 'bpf', BPFFS]);
  if (r.status !== 0 || !mounted()) throw new Skip(`bpffs is not mounted at ${BPFFS} and mount failed: ${firstLine(r.stderr)}`);
  notes.push(`mounted bpffs at ${BPFFS} (left mounted, as pinObject() would)`);
}

function fmtUs(us) {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(us < 10 ? 2 : 1)} µs`;
}

function fmtNsPerOp(ns) {
  return `${(ns / 1000).toFixed(2)} µs/op (${(1e3 / ns).toFixed(2)} M/s)`;
}

// ---------------------------------------------------------------------------------------------------------------
// Rows

const rows = [];
const notes = [];
const versions = {};

/** Adds a row; `target` is the ratio bound (ours/theirs) to print beside it, not to assert. */
function addRow(name, ours, other, ratio, target) {
  const met = target === undefined ? '' : ratio <= target.max ? ' (met)' : ' (MISSED)';
  rows.push({ name, ours, other, ratio: `${ratio.toFixed(2)}×`, target: target === undefined ? '' : `${target.label}${met}` });
}

const ONLY = process.env.BENCH_ROWS;

function rowGroup(label, body) {
  if (ONLY !== undefined && !ONLY.includes(label[1])) return;
  const started = Date.now();
  try {
    body();
  } catch (e) {
    if (!(e instanceof Skip)) {
      rows.push({ name: label, skipped: `failed: ${e.message}` });
      process.exitCode = 1;
      process.stderr.write(`bench: ${label}: ${e.stack ?? e}\n`);
    } else {
      rows.push({ name: label, skipped: `skipped: ${e.message}` });
    }
  }
  process.stderr.write(`bench: ${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

// (a) in-process load of the same object. Blocks alternate between the two sides so that changes in machine load
// (other processes on a small VM) hit both alike.
rowGroup('(a) load+close globals_kern.o', () => {
  requireRoot();
  let harness;
  let cSkip;
  try {
    harness = buildHarness('load');
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    cSkip = e.message;
  }
  // Warms up the JIT; each C run does its own untimed first load (libbpf's one-time kernel feature probes).
  for (let i = 0; i < LOAD_WARMUP; i++) lib.openObject(GLOBALS_OBJECT).close();
  const ours = [];
  const theirs = [];
  const perBlock = LOAD_ITERATIONS / LOAD_BLOCKS;
  for (let b = 0; b < LOAD_BLOCKS; b++) {
    for (let i = 0; i < perBlock; i++) {
      const start = nowNs();
      lib.openObject(GLOBALS_OBJECT).close();
      ours.push((nowNs() - start) / 1000);
    }
    if (harness === undefined) continue;
    const r = run(harness, [GLOBALS_OBJECT, String(perBlock)]);
    if (r.status !== 0) {
      cSkip = `libbpf cannot load it: ${firstLine(r.stderr)}`;
      harness = undefined;
      continue;
    }
    const lines = r.stdout.trim().split('\n');
    versions.libbpf = lines.pop();
    theirs.push(...lines.map(Number));
  }
  if (cSkip !== undefined) {
    rows.push({ name: '(a) openObject()+close() globals_kern.o [vs libbpf]', ours: `${fmtUs(median(ours))}/load`, skipped: `C side skipped: ${cSkip}` });
    return;
  }
  const oursUs = median(ours);
  const theirsUs = median(theirs);
  addRow('(a) openObject()+close() globals_kern.o, in-process [vs libbpf open_file+load+close]',
    `${fmtUs(oursUs)}/load`, `${fmtUs(theirsUs)}/load`, oursUs / theirsUs, { max: 1.0, label: '≤ 1.0×' });
});

// (b) whole process, start-up included.
rowGroup('(b) whole process', () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Skip(`${CLI} is missing; run npm run build`);
  const node = process.execPath;
  const timeOnce = (cmd, args) => {
    const start = nowNs();
    const r = run(cmd, args);
    const ms = (nowNs() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${firstLine(r.stderr)}`);
    return ms;
  };
  const ours = [];
  const bare = [];
  const bpftool = [];
  let bpftoolSkip;
  try {
    ensureBpffs();
    run('bpftool', ['--version']);
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    bpftoolSkip = e.message;
  }
  const pinDir = join(BPFFS, `bpf-load-bench-${process.pid}`);
  try {
    // Interleaved, so drift in machine load hits every command alike.
    for (let i = 0; i < PROCESS_RUNS + 1; i++) {
      const o = timeOnce(node, [CLI, GLOBALS_OBJECT, '--count', '0', '--no-attach']);
      const n = timeOnce(node, ['-e', '0']);
      let b;
      if (bpftoolSkip === undefined) {
        b = timeOnce('bpftool', ['prog', 'loadall', GLOBALS_OBJECT, pinDir]);
        rmSync(pinDir, { recursive: true, force: true });
      }
      if (i === 0) continue; // Cold page cache and first-exec costs.
      ours.push(o);
      bare.push(n);
      if (b !== undefined) bpftool.push(b);
    }
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
  }
  const oursMs = median(ours);
  const bareMs = median(bare);
  if (bpftoolSkip === undefined) {
    const toolMs = median(bpftool);
    addRow('(b) CLI --count 0 --no-attach [vs bpftool prog loadall]', `${oursMs.toFixed(1)} ms`, `${toolMs.toFixed(1)} ms`, oursMs / toolMs, undefined);
  } else {
    rows.push({ name: '(b) CLI [vs bpftool prog loadall]', skipped: `skipped: ${bpftoolSkip}` });
  }
  addRow('(b) CLI --count 0 --no-attach [vs node -e 0]', `${oursMs.toFixed(1)} ms`, `${bareMs.toFixed(1)} ms`, oursMs / bareMs, undefined);
});

/** Loads sockex1_modern_kern.o with my_map reshaped by the fixupMap hook; returns the object and the map handle. */
function openReshaped(type, maxEntries) {
  const bytes = readFileSync(ARRAY_MAP_OBJECT);
  const loaded = lib.loadObject(lib.parseObject(bytes, { name: ARRAY_MAP_OBJECT }), {
    fixupMap: (m) => {
      if (m.name !== 'my_map') return;
      m.def.type = lib.mapTypeValue(type);
      m.def.maxEntries = maxEntries;
    },
  });
  const map = loaded.map('my_map');
  if (map.keySize !== 4 || map.valueSize !== 8) {
    loaded.close();
    throw new Skip(`my_map in ${ARRAY_MAP_OBJECT} is ${map.keySize}→${map.valueSize} B, not u32→u64`);
  }
  return { loaded, map };
}

// (c) single-element lookups. Each round runs the C harness once and every JavaScript variant once (interleaved).
rowGroup('(c) lookups', () => {
  requireRoot();
  let harness;
  let cSkip;
  try {
    harness = buildHarness('lookup');
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    cSkip = e.message;
  }
  const { loaded, map } = openReshaped('array', LOOKUP_ENTRIES);
  try {
    for (let k = 0; k < LOOKUP_ENTRIES; k++) map.set(k, BigInt(k) * 3n);
    const keyBuffers = Array.from({ length: LOOKUP_ENTRIES }, (_, k) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(k, 0);
      return b;
    });
    const rawKey = Buffer.alloc(4);
    const rawValue = Buffer.alloc(8);
    // One loop function per variant: a shared loop calling three different closures would be a polymorphic call
    // site that V8 cannot inline, which would charge the harness's overhead to bpf-load.
    const variants = [
      {
        label: 'MapHandle.get(number)',
        loop: (count) => {
          let sum = 0;
          for (let i = 0; i < count; i++) sum += map.get(i % LOOKUP_ENTRIES).readUInt32LE(0);
          return sum;
        },
      },
      {
        label: 'MapHandle.get(Buffer)',
        loop: (count) => {
          let sum = 0;
          for (let i = 0; i < count; i++) sum += map.get(keyBuffers[i % LOOKUP_ENTRIES]).readUInt32LE(0);
          return sum;
        },
      },
      {
        label: 'sys mapLookupElem, preallocated',
        loop: (count) => {
          let sum = 0;
          for (let i = 0; i < count; i++) {
            rawKey.writeUInt32LE(i % LOOKUP_ENTRIES, 0);
            if (!sys.mapLookupElem(map.fd, rawKey, rawValue)) throw new Error(`key ${i % LOOKUP_ENTRIES} missing`);
            sum += rawValue.readUInt32LE(0);
          }
          return sum;
        },
      },
    ].map((v) => ({ ...v, perOp: [] }));
    let expected = 0;
    for (let i = 0; i < LOOKUP_COUNT; i++) expected += 3 * (i % LOOKUP_ENTRIES);
    // Warm-up: JIT and inline caches.
    for (const v of variants) v.loop(LOOKUP_COUNT / 5);
    const cPerOp = [];
    for (let r = 0; r < LOOKUP_ROUNDS; r++) {
      if (harness !== undefined) {
        const res = run(harness, [String(LOOKUP_ENTRIES), String(LOOKUP_COUNT), '1']);
        if (res.status !== 0) throw new Error(`lookup harness exited ${res.status}: ${firstLine(res.stderr)}`);
        cPerOp.push(Number(res.stdout.trim()));
      }
      for (const v of variants) {
        const start = nowNs();
        const checksum = v.loop(LOOKUP_COUNT);
        v.perOp.push((nowNs() - start) / LOOKUP_COUNT);
        if (checksum !== expected) throw new Error(`${v.label}: lookups returned wrong values (checksum ${checksum}, expected ${expected})`);
      }
    }
    for (const v of variants) {
      const oursNs = median(v.perOp);
      if (harness === undefined) {
        rows.push({ name: `(c) ${v.label} [vs bpf_map_lookup_elem]`, ours: fmtNsPerOp(oursNs), skipped: `C side skipped: ${cSkip}` });
      } else {
        const cNs = median(cPerOp);
        addRow(`(c) ${v.label}, array u32→u64 [vs C bpf_map_lookup_elem]`, fmtNsPerOp(oursNs), fmtNsPerOp(cNs), oursNs / cNs, { max: 1.3, label: '≤ 1.3×' });
      }
    }
  } finally {
    loaded.close();
  }
});

/** Fills keys 0..n-1 with value 3·key using BPF_MAP_UPDATE_BATCH (a loop of single updates where unsupported). */
function fillMap(map, n) {
  const chunk = 1 << 16;
  const keys = Buffer.alloc(chunk * 4);
  const values = Buffer.alloc(chunk * 8);
  const L = sys.BPF_ATTR.mapBatch;
  for (let base = 0; base < n; base += chunk) {
    const count = Math.min(chunk, n - base);
    for (let i = 0; i < count; i++) {
      keys.writeUInt32LE(base + i, i * 4);
      values.writeBigUInt64LE(BigInt(base + i) * 3n, i * 8);
    }
    const attr = new sys.AttrWriter(L.size).pointer(L.keys, keys).pointer(L.values, values).u32(L.count, count).u32(L.map_fd, map.fd);
    try {
      sys.bpfCall('MAP_UPDATE_BATCH', attr);
    } catch (e) {
      if (!sys.batchUnsupported(e)) throw e;
      for (let i = 0; i < count; i++) sys.mapUpdateElem(map.fd, keys.subarray(i * 4, i * 4 + 4), values.subarray(i * 8, i * 8 + 8));
    }
  }
}

// (d) dump a 1M-entry hash map; runs alternate between readAll(), readAllRaw() and bpftool.
rowGroup('(d) dump 1M-entry hash', () => {
  requireRoot();
  const { loaded, map } = openReshaped('hash', DUMP_ENTRIES);
  const devNull = openSync('/dev/null', 'w');
  try {
    fillMap(map, DUMP_ENTRIES);
    const check = map.readAll();
    let correct = 0;
    for (const [k, v] of check) if (v.readUInt32LE(0) === k.readUInt32LE(0) * 3) correct++;
    if (check.length !== DUMP_ENTRIES || correct !== DUMP_ENTRIES) {
      throw new Error(`readAll returned ${check.length} entries, ${correct} correct; expected ${DUMP_ENTRIES}`);
    }
    let toolSkip;
    try {
      run('bpftool', ['--version']);
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      toolSkip = e.message;
    }
    const ours = [];
    const floor = [];
    const tool = [];
    for (let r = 0; r < DUMP_RUNS; r++) {
      let start = nowNs();
      const entries = map.readAll();
      ours.push((nowNs() - start) / 1e6);
      if (entries.length !== DUMP_ENTRIES) throw new Error(`readAll returned ${entries.length} entries`);
      start = nowNs();
      const raw = map.readAllRaw();
      floor.push((nowNs() - start) / 1e6);
      if (raw.count !== DUMP_ENTRIES) throw new Error(`readAllRaw read ${raw.count} entries`);
      if (toolSkip !== undefined) continue;
      start = nowNs();
      const res = run('bpftool', ['map', 'dump', 'id', String(map.id)], { stdio: ['ignore', devNull, 'pipe'] });
      tool.push((nowNs() - start) / 1e6);
      if (res.status !== 0) throw new Error(`bpftool map dump exited ${res.status}: ${firstLine(res.stderr)}`);
    }
    const oursMs = median(ours);
    const floorMs = median(floor);
    if (toolSkip !== undefined) {
      rows.push({ name: '(d) readAll() [vs bpftool map dump]', ours: `${oursMs.toFixed(0)} ms`, skipped: `skipped: ${toolSkip}` });
      return;
    }
    const toolMs = median(tool);
    addRow('(d) readAllRaw() 1M-entry hash u32→u64, batched into columns [vs bpftool map dump id N, plain text]', `${floorMs.toFixed(0)} ms`,
      `${toolMs.toFixed(0)} ms`, floorMs / toolMs, { max: 0.1, label: '≤ 0.10× (10× faster)' });
    addRow('(d) readAll(): the same, one [key, value] Buffer pair per entry [vs bpftool]', `${oursMs.toFixed(0)} ms`,
      `${toolMs.toFixed(0)} ms`, oursMs / toolMs, undefined);
  } finally {
    closeSync(devNull);
    loaded.close();
  }
});

// (e) typed skeletons (`bpf-load gen`): the generated module for sockex1_modern_kern.o (my_map: u32 → long, typed
// through BTF), transpiled with TypeScript's transpileModule into bench/.build and imported; 'bpf-load' resolves to
// this package by its own name. my_map is reshaped through open()'s fixupMap, as in (c) and (d).
async function importSkeleton() {
  let ts;
  try {
    ts = (await import('typescript')).default;
  } catch (e) {
    throw new Skip(`typescript (a devDependency) is not installed: ${e.message}`);
  }
  const code = lib.generateTypes(lib.parseObject(readFileSync(ARRAY_MAP_OBJECT), { name: ARRAY_MAP_OBJECT }), {
    objectPath: relative(BUILD_DIR, ARRAY_MAP_OBJECT),
  });
  const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  mkdirSync(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, 'sockex1_modern_skel.mjs');
  writeFileSync(path, js);
  return import(pathToFileURL(path).href);
}
const skeletonModule = await importSkeleton().catch((e) => e);

function openSkeleton(type, maxEntries) {
  if (skeletonModule instanceof Error) throw skeletonModule;
  return skeletonModule.open({
    fixupMap: (m) => {
      if (m.name !== 'my_map') return;
      m.def.type = lib.mapTypeValue(type);
      m.def.maxEntries = maxEntries;
    },
  });
}

// (e1) decoding 1M hash entries: the same column buffers (read once) decoded by the generated codecs and by the
// run-time BTF walker (Btf.formatValue), one key and one value per entry each; then end to end, typed readAll()
// against MapHandle.readAll() + formatValue.
rowGroup('(e) skeleton decode 1M-entry hash', () => {
  requireRoot();
  const skel = openSkeleton('hash', DUMP_ENTRIES);
  try {
    const typed = skel.maps.my_map;
    const map = typed.handle;
    fillMap(map, DUMP_ENTRIES);
    const btf = skel.object.spec.btf;
    const keyType = map.spec.btfKeyTypeId;
    const valueType = map.spec.btfValueTypeId;
    const raw = map.readAllRaw();
    if (raw.count !== DUMP_ENTRIES) throw new Error(`readAllRaw read ${raw.count} entries`);
    const keyView = new DataView(raw.keys.buffer, raw.keys.byteOffset, raw.keys.byteLength);
    const valueView = new DataView(raw.values.buffer, raw.values.byteOffset, raw.values.byteLength);
    const { u32Codec, longCodec } = skeletonModule;
    const generated = () => {
      const out = new Array(raw.count);
      for (let i = 0; i < raw.count; i++) out[i] = [u32Codec.decode(keyView, i * 4), longCodec.decode(valueView, i * 8)];
      return out;
    };
    const walker = () => {
      const out = new Array(raw.count);
      for (let i = 0; i < raw.count; i++) {
        out[i] = [btf.formatValue(keyType, raw.keys.subarray(i * 4, i * 4 + 4)), btf.formatValue(valueType, raw.values.subarray(i * 8, i * 8 + 8))];
      }
      return out;
    };
    const check = (entries, label) => {
      let correct = 0;
      for (const [k, v] of entries) if (Number(v) === Number(k) * 3) correct++;
      if (correct !== DUMP_ENTRIES) throw new Error(`${label}: ${correct} of ${DUMP_ENTRIES} entries decoded right`);
    };
    const gen = [];
    const walk = [];
    const typedAll = [];
    const rawAll = [];
    for (let r = 0; r < DUMP_RUNS; r++) {
      let start = nowNs();
      check(generated(), 'generated codecs');
      gen.push((nowNs() - start) / 1e6);
      start = nowNs();
      check(walker(), 'BTF walker');
      walk.push((nowNs() - start) / 1e6);
      start = nowNs();
      check(typed.readAll(), 'typed readAll');
      typedAll.push((nowNs() - start) / 1e6);
      start = nowNs();
      const entries = map.readAll().map(([k, v]) => [btf.formatValue(keyType, k), btf.formatValue(valueType, v)]);
      check(entries, 'readAll + formatValue');
      rawAll.push((nowNs() - start) / 1e6);
    }
    const ms = (v) => `${median(v).toFixed(0)} ms`;
    addRow('(e) decode 1M hash entries u32→long (columns read once): generated codecs [vs the run-time BTF decoder]', ms(gen), ms(walk),
      median(gen) / median(walk), { max: 0.2, label: '≤ 0.20× (5× faster)' });
    addRow('(e) the same end to end: typed readAll() [vs MapHandle.readAll() + BTF decoder]', ms(typedAll), ms(rawAll), median(typedAll) / median(rawAll), undefined);
  } finally {
    skel.close();
  }
});

// (e2) lookups through a typed handle (number key in, bigint out) against MapHandle.get with a Buffer key (Buffer out).
rowGroup('(e) skeleton lookups', () => {
  requireRoot();
  const skel = openSkeleton('array', LOOKUP_ENTRIES);
  try {
    const typed = skel.maps.my_map;
    const map = typed.handle;
    for (let k = 0; k < LOOKUP_ENTRIES; k++) typed.set(k, BigInt(k) * 3n);
    const keyBuffers = Array.from({ length: LOOKUP_ENTRIES }, (_, k) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(k, 0);
      return b;
    });
    const typedLoop = (count) => {
      let sum = 0n;
      for (let i = 0; i < count; i++) sum += typed.get(i % LOOKUP_ENTRIES);
      return Number(sum);
    };
    const rawLoop = (count) => {
      let sum = 0;
      for (let i = 0; i < count; i++) sum += map.get(keyBuffers[i % LOOKUP_ENTRIES]).readUInt32LE(0);
      return sum;
    };
    let expected = 0;
    for (let i = 0; i < LOOKUP_COUNT; i++) expected += 3 * (i % LOOKUP_ENTRIES);
    typedLoop(LOOKUP_COUNT / 5);
    rawLoop(LOOKUP_COUNT / 5);
    const typedNs = [];
    const rawNs = [];
    for (let r = 0; r < LOOKUP_ROUNDS; r++) {
      let start = nowNs();
      if (typedLoop(LOOKUP_COUNT) !== expected) throw new Error('typed lookups returned wrong values');
      typedNs.push((nowNs() - start) / LOOKUP_COUNT);
      start = nowNs();
      if (rawLoop(LOOKUP_COUNT) !== expected) throw new Error('raw lookups returned wrong values');
      rawNs.push((nowNs() - start) / LOOKUP_COUNT);
    }
    addRow('(e) typed handle get(number) → bigint, array u32→long [vs MapHandle.get(Buffer) → Buffer]', fmtNsPerOp(median(typedNs)),
      fmtNsPerOp(median(rawNs)), median(typedNs) / median(rawNs), { max: 1.1, label: '≤ 1.10×' });
  } finally {
    skel.close();
  }
});

// (f) parse time of crafted shapes that were quadratic or crashed (bench/crafted.mjs): parseObject in-process against
// llvm-readobj reading sections, symbols and relocations of the same file. Target: any object of at most 16 MB parses
// in under a second.
rowGroup('(f) parse crafted shapes', () => {
  const readobj = ['llvm-readobj-19', 'llvm-readobj'].find((cmd) => spawnSync(cmd, ['--version']).status === 0);
  mkdirSync(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, 'crafted.o');
  for (const shape of CRAFTED_SHAPES) {
    const bytes = shape.build();
    writeFileSync(path, bytes);
    const ours = [];
    for (let r = 0; r < 3; r++) {
      const start = nowNs();
      lib.parseObject(bytes, { name: shape.name });
      ours.push((nowNs() - start) / 1e6);
    }
    const oursMs = median(ours);
    const met = bytes.byteLength <= 16 << 20 ? (oursMs < 1000 ? ' (met)' : ' (MISSED)') : ' (file > 16 MB)';
    const label = `(f) parseObject ${shape.name}, ${(bytes.byteLength / 2 ** 20).toFixed(1)} MB [vs llvm-readobj --sections --symbols --relocations]`;
    if (readobj === undefined) {
      rows.push({ name: label, ours: `${oursMs.toFixed(0)} ms`, skipped: 'llvm-readobj is not installed' });
      continue;
    }
    const theirs = [];
    for (let r = 0; r < 3; r++) {
      const start = nowNs();
      const result = spawnSync(readobj, ['--sections', '--symbols', '--relocations', path], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (result.status !== 0) throw new Error(`${readobj} ${path}: ${firstLine(String(result.stderr))}`);
      theirs.push((nowNs() - start) / 1e6);
    }
    const theirsMs = median(theirs);
    rows.push({ name: label, ours: `${oursMs.toFixed(0)} ms`, other: `${theirsMs.toFixed(0)} ms`, ratio: `${(oursMs / theirsMs).toFixed(2)}×`, target: `< 1 s${met}` });
  }
  rmSync(path, { force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Report

try {
  versions.bpftool = firstLine(run('bpftool', ['--version']).stdout);
} catch {
  versions.bpftool = 'not installed';
}
const cpuList = cpus();
process.stdout.write(
  `machine: Linux ${release()}, ${cpuList.length} CPU(s) (${cpuList[0]?.model ?? 'unknown'}), node ${process.version}, ` +
    `${versions.libbpf ?? 'libbpf ?'}, ${versions.bpftool}\n` +
    `medians: (a) ${LOAD_ITERATIONS} loads, (b) ${PROCESS_RUNS} runs, (c) ${LOOKUP_ROUNDS}×${LOOKUP_COUNT} lookups, ` +
    `(d) ${DUMP_RUNS} dumps; ratio = bpf-load / other (time per job, lower is better)\n\n`,
);
const header = { name: 'benchmark', ours: 'bpf-load', other: 'other', ratio: 'ratio', target: 'target' };
const table = [header, ...rows.map((r) => (r.skipped === undefined ? r : { name: r.name, ours: r.ours ?? '-', other: r.skipped, ratio: '-', target: '' }))];
const cols = ['name', 'ours', 'other', 'ratio', 'target'];
const width = Object.fromEntries(cols.map((c) => [c, Math.max(...table.map((r) => String(r[c]).length))]));
for (const [i, r] of table.entries()) {
  process.stdout.write(`${cols.map((c) => String(r[c]).padEnd(width[c])).join(' | ').trimEnd()}\n`);
  if (i === 0) process.stdout.write(`${cols.map((c) => '-'.repeat(width[c])).join('-|-')}\n`);
}
for (const n of notes) process.stdout.write(`note: ${n}\n`);
