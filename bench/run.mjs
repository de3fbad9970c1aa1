/**
 * `npm run bench`: bpf-load side by side with the C tools doing the same job, in one run, printed as a table
 * (`-- --json`: one JSON document with every row's figures and target, to compare runs; `-- --rows=abf`: only those).
 *
 *   (a) in-process load + close of c-samples/globals_kern.o: openObject() vs bpf_object__open_file/load/close (C)
 *   (b) start-up, whole process: `--dump` of a small object and `--count 0 --no-attach`, each against bare
 *       `node -e 0` (the floor: the target is what we add to it) and the load against `bpftool prog loadall`
 *   (c) array map lookups (u32 → u64, 1024 entries): MapHandle.get / getInto / raw mapLookupElem vs bpf_map_lookup_elem (C)
 *   (d) reading every entry of a 1M-entry hash map: MapHandle.readAllRaw() vs the bare BPF_MAP_LOOKUP_BATCH loop in C
 *       (the physical limit), and readAll()/readAllRaw() vs `bpftool map dump id N` (plain text)
 *   (e) typed skeletons (`bpf-load gen`): decoding 1M hash entries with the generated codecs vs the run-time BTF
 *       decoder; lookups through a typed handle vs MapHandle.get with Buffers; ring buffer records through a typed
 *       reader vs EventReader's BTF decoding
 *   (f) `--dump` of a 187k-instruction object (built here from ../shared/corpus/big/gen.py with clang-19, never
 *       committed) vs `llvm-objdump-19 -d`: wall time and peak RSS, whole process
 *   (g) loading that object (96 programs), whole process: `--count 0 --no-attach` vs `bpftool prog loadall`
 *   (h) global variables: obj.variable(name).get() / .set(), per operation
 *   (i) a classic filter over a 1M-packet capture: `bpf-load --filter EXPR --pcap FILE --write /dev/null` vs `tcpdump -r FILE EXPR -w /dev/null` (bench/classic.mjs)
 *   (j) events: 64-byte records produced by BPF_PROG_TEST_RUN (repeat) and consumed from a ring buffer / perf buffer,
 *       in batches (readReadyBatch), as views (readReadyViews, libbpf's contract) and as copies (readReady), vs libbpf's ring_buffer__consume /
 *       perf_buffer__consume, with the floor of any JavaScript consumer beside them (a bare loop over the same mapped
 *       ring); program.testRun() and testRunInto() per call vs bpf_prog_test_run_opts (all taking the packet back);
 *       all of it with the main thread, and the C harnesses it starts, pinned to one CPU;
 *       waiting for a record with koffi's async epoll_wait vs a worker thread
 *   (k) parse time of crafted objects (bench/crafted.mjs: 125k sections, 20k × 20k shapes) vs llvm-readobj on the same file
 *   (l) the per-call floor in one process (bench/floor.mjs): getpid, a lookup and a test run through a bare koffi call
 *       and through the library, vs the same C loops (bench/c/floor.c, a shared library) called in this process
 *
 * Plain ESM on the built library (../dist), so it runs on Node 20 without a TypeScript loader. C harnesses in
 * bench/c are compiled here with `cc … -lbpf` into bench/.build. Anything missing (root, compiler, libbpf, bpftool,
 * bpffs, the corpus) skips only the rows that need it, with the reason printed. Ratios are always ours / theirs.
 */
import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchClassicFilter } from './classic.mjs';
import { CRAFTED_SHAPES } from './crafted.mjs';
import { onOneCpu } from './cpu.mjs';
import { barePerfConsumer, bareRingConsumer } from './events-floor.mjs';
import { benchFloor, loadFloorLibrary } from './floor.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BUILD_DIR = join(ROOT, 'bench', '.build');
const C_DIR = join(ROOT, 'bench', 'c');
const GLOBALS_OBJECT = join(ROOT, 'c-samples', 'globals_kern.o');
// An ARRAY u32 → long map (my_map) and one socket program; fixupMap reshapes the map for (c) and (d).
const ARRAY_MAP_OBJECT = join(ROOT, 'c-samples', 'sockex1_modern_kern.o');
// The bin as installed: the bundle package.json names (rolldown.config.mjs), not tsc's dist/cli.
const CLI = join(ROOT, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin['bpf-load']);
const BPFFS = '/sys/fs/bpf';
const BIG_GENERATOR = join(ROOT, '..', 'shared', 'corpus', 'big', 'gen.py');
const BIG_OBJECT = join(BUILD_DIR, 'big_kern.o');
const SMALL_DUMP_OBJECT = join(ROOT, 'c-samples', 'sockex1_kern.o');

const LOAD_ITERATIONS = 200;
const LOAD_WARMUP = 20;
const LOAD_BLOCKS = 5;
const PROCESS_RUNS = 15;
const LOOKUP_ENTRIES = 1024;
const LOOKUP_COUNT = 200_000;
const LOOKUP_ROUNDS = 5;
// Row (c) times stretches of LOOKUP_STRETCH lookups (~1 ms: rarely preempted on a busy machine), LOOKUP_STRETCHES per
// round and side, C included; medians over all stretches.
const LOOKUP_STRETCH = 300;
const LOOKUP_STRETCHES = 40;
const DUMP_ENTRIES = 1 << 20;
const DUMP_RUNS = 3;
const BIG_RUNS = 3;
const VARIABLE_OPS = 200_000;
const EVENTS_OBJECT = join(ROOT, 'c-samples', 'test_run_kern.o');
const EVENT_BATCH = 3000; // records per round: fits the 256 KiB ring (72 B each) and 64 perf pages per CPU (80 B each)
const EVENT_ROUNDS = 40; // rounds of ~0.1 ms per side are noisy here: medians over 40 (15 gave ±20% between runs)
// Untimed rounds first, so every JavaScript path is compiled by TurboFan (steady state, as C's is from the start).
const EVENT_WARMUP = 10;
// Test runs per timed stretch, and stretches per round: short stretches (~1 ms) are rarely preempted on a busy machine.
const TEST_RUN_COUNT = 200;
const TEST_RUN_STRETCHES = 10;
const WAKEUPS = 300;

const cliArgs = process.argv.slice(2);
const JSON_OUTPUT = cliArgs.includes('--json');
const ROW_FILTER = cliArgs.find((a) => a.startsWith('--rows='))?.slice('--rows='.length);
for (const a of cliArgs) {
  if (a !== '--json' && !a.startsWith('--rows=')) {
    process.stderr.write(`bench: unknown argument ${a} (known: --json, --rows=LETTERS)\n`);
    process.exit(2);
  }
}

/** A row cannot run here; the message says why. */
class Skip extends Error {}

let lib;
let sys;
let pcap;
let loadLayer;
try {
  lib = await import('../dist/index.js');
  sys = await import('../dist/sys/index.js');
  pcap = await import('../dist/pcap/index.js');
  loadLayer = await import('../dist/load/index.js');
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

/** Compiles bench/c/NAME.c (against libbpf unless `withLibbpf` is false) unless the binary is newer than the source. */
function buildHarness(name, withLibbpf = true) {
  const source = join(C_DIR, `${name}.c`);
  const binary = join(BUILD_DIR, name);
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(BUILD_DIR, { recursive: true });
  const r = run('cc', ['-O2', '-Wall', '-o', binary, source, ...(withLibbpf ? ['-lbpf'] : [])]);
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

/**
 * Adds a row. `ours`/`other` are { value, unit, text }; `target` is { kind, max, label }: kind 'ratio' bounds
 * ours/other, 'extra' bounds ours − other (the same unit), 'absolute' bounds ours alone. Printed, never asserted.
 */
function addRow(name, ours, other, target) {
  const ratio = other === undefined ? undefined : ours.value / other.value;
  const measured = target === undefined ? undefined
    : target.kind === 'ratio' ? ratio : target.kind === 'extra' ? ours.value - other.value : ours.value;
  const met = target === undefined ? undefined : measured <= target.max;
  rows.push({ name, ours, other, ratio, target, measured, met });
}

const figure = (value, unit, text) => ({ value, unit, text });
const msFigure = (ms) => figure(ms, 'ms', `${ms.toFixed(1)} ms`);

function rowWanted(letter) {
  return ROW_FILTER === undefined || ROW_FILTER.includes(letter);
}

function rowGroup(label, body) {
  if (!rowWanted(label[1])) return;
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
    rows.push({ name: '(a) openObject()+close() globals_kern.o [vs libbpf]', ours: figure(median(ours), 'µs', `${fmtUs(median(ours))}/load`), skipped: `C side skipped: ${cSkip}` });
    return;
  }
  const oursUs = median(ours);
  const theirsUs = median(theirs);
  addRow('(a) openObject()+close() globals_kern.o, in-process [vs libbpf open_file+load+close]',
    figure(oursUs, 'µs', `${fmtUs(oursUs)}/load`), figure(theirsUs, 'µs', `${fmtUs(theirsUs)}/load`), { kind: 'ratio', max: 1.0, label: '≤ 1.0×' });
});

/** Runs a command through bench/c/measure (stdout to /dev/null): wall ms and peak RSS KiB; throws on failure. */
function measureProcess(cmd, args) {
  const r = run(buildHarness('measure', false), [cmd, ...args]);
  if (r.status !== 0) throw new Error(`measure ${cmd}: ${firstLine(r.stderr)}`);
  const [ms, rssKib, status] = r.stdout.trim().split(' ').map(Number);
  if (status === 127) throw new Skip(`${cmd} is not installed`);
  if (status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${status}: ${firstLine(r.stderr)}`);
  return { ms, rssKib };
}

/**
 * Runs each command `runs` times, interleaved so that drift in machine load hits every command alike, after one
 * untimed round (cold page cache, first exec); `between` runs after each command (cleanup). Medians per command.
 */
function measureInterleaved(commands, runs) {
  const samples = commands.map(() => ({ ms: [], rssKib: [] }));
  for (let i = 0; i < runs + 1; i++) {
    commands.forEach((c, k) => {
      const m = measureProcess(c.cmd, c.args);
      c.between?.();
      if (i === 0) return;
      samples[k].ms.push(m.ms);
      samples[k].rssKib.push(m.rssKib);
    });
  }
  return samples.map((s) => ({ ms: median(s.ms), rssKib: median(s.rssKib) }));
}

function bpftoolSkipReason() {
  try {
    ensureBpffs();
    run('bpftool', ['--version']);
    return undefined;
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    return e.message;
  }
}

// (b) start-up, whole process: what bpf-load adds to a bare node.
rowGroup('(b) start-up', () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Skip(`${CLI} is missing; run npm run build`);
  const node = process.execPath;
  const bpftoolSkip = bpftoolSkipReason();
  const pinDir = join(BPFFS, `bpf-load-bench-${process.pid}`);
  const commands = [
    { cmd: node, args: ['-e', '0'] },
    { cmd: node, args: [CLI, '--dump', SMALL_DUMP_OBJECT] },
    { cmd: node, args: [CLI, GLOBALS_OBJECT, '--count', '0', '--no-attach'] },
  ];
  if (bpftoolSkip === undefined) {
    commands.push({ cmd: 'bpftool', args: ['prog', 'loadall', GLOBALS_OBJECT, pinDir], between: () => rmSync(pinDir, { recursive: true, force: true }) });
  }
  let bare, dump, load, tool;
  try {
    [bare, dump, load, tool] = measureInterleaved(commands, PROCESS_RUNS);
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
  }
  addRow('(b) --dump sockex1_kern.o, whole process [vs node -e 0]', msFigure(dump.ms), msFigure(bare.ms), { kind: 'extra', max: 15, label: '≤ +15 ms' });
  addRow('(b) globals_kern.o --count 0 --no-attach, whole process [vs node -e 0]', msFigure(load.ms), msFigure(bare.ms), { kind: 'extra', max: 20, label: '≤ +20 ms' });
  if (tool === undefined) rows.push({ name: '(b) --count 0 --no-attach [vs bpftool prog loadall]', skipped: `skipped: ${bpftoolSkip}` });
  else addRow('(b) globals_kern.o --count 0 --no-attach [vs bpftool prog loadall]', msFigure(load.ms), msFigure(tool.ms), undefined);
});

/** The 187k-instruction object, generated and compiled once into bench/.build (never committed). */
function bigObject() {
  if (!existsSync(BIG_GENERATOR)) throw new Skip(`${BIG_GENERATOR} is absent (the shared corpus)`);
  if (existsSync(BIG_OBJECT) && statSync(BIG_OBJECT).mtimeMs >= statSync(BIG_GENERATOR).mtimeMs) return BIG_OBJECT;
  mkdirSync(BUILD_DIR, { recursive: true });
  const source = join(BUILD_DIR, 'big_kern.c');
  const gen = run('python3', [BIG_GENERATOR]);
  if (gen.status !== 0) throw new Error(`gen.py: ${firstLine(gen.stderr)}`);
  writeFileSync(source, gen.stdout);
  process.stderr.write('bench: compiling the 187k-instruction object with clang-19 (about a minute)\n');
  const cc = run('clang-19', ['-O2', '-g', '-target', 'bpf', '-c', source, '-o', BIG_OBJECT]);
  if (cc.status !== 0) {
    rmSync(BIG_OBJECT, { force: true });
    throw new Error(`clang-19 big_kern.c: ${firstLine(cc.stderr)}`);
  }
  return BIG_OBJECT;
}

// (f) --dump of the big object vs llvm-objdump -d.
rowGroup('(f) big --dump', () => {
  if (!existsSync(CLI)) throw new Skip(`${CLI} is missing; run npm run build`);
  const object = bigObject();
  const [ours, theirs] = measureInterleaved([
    { cmd: process.execPath, args: [CLI, '--dump', object] },
    { cmd: 'llvm-objdump-19', args: ['-d', object] },
  ], BIG_RUNS);
  const mib = (kib) => figure(kib / 1024, 'MiB', `${(kib / 1024).toFixed(0)} MiB`);
  addRow('(f) --dump big_kern.o (187k insns), wall [vs llvm-objdump-19 -d]', msFigure(ours.ms), msFigure(theirs.ms), { kind: 'ratio', max: 1.0, label: '≤ 1.0×' });
  addRow('(f) --dump big_kern.o, peak RSS [vs llvm-objdump-19 -d]', mib(ours.rssKib), mib(theirs.rssKib), { kind: 'ratio', max: 1.5, label: '≤ 1.5×' });
});

// (g) loading the big object (96 programs; the verifier's time is in both).
rowGroup('(g) big load', () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Skip(`${CLI} is missing; run npm run build`);
  const object = bigObject();
  const bpftoolSkip = bpftoolSkipReason();
  if (bpftoolSkip !== undefined) throw new Skip(bpftoolSkip);
  const pinDir = join(BPFFS, `bpf-load-bench-big-${process.pid}`);
  try {
    const [ours, theirs] = measureInterleaved([
      { cmd: process.execPath, args: [CLI, object, '--count', '0', '--no-attach'] },
      { cmd: 'bpftool', args: ['prog', 'loadall', object, pinDir], between: () => rmSync(pinDir, { recursive: true, force: true }) },
    ], BIG_RUNS);
    addRow('(g) big_kern.o (96 programs) --count 0 --no-attach, whole process [vs bpftool prog loadall]', msFigure(ours.ms), msFigure(theirs.ms),
      { kind: 'ratio', max: 1.25, label: '≤ 1.25×' });
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
  }
});

/** A fixupMap hook giving my_map another type and size. */
function reshapeMyMap(type, maxEntries) {
  return (m) => {
    if (m.name !== 'my_map') return;
    m.def.type = lib.mapTypeValue(type);
    m.def.maxEntries = maxEntries;
  };
}

/** Loads sockex1_modern_kern.o with my_map reshaped by the fixupMap hook; returns the object and the map handle. */
function openReshaped(type, maxEntries) {
  const bytes = readFileSync(ARRAY_MAP_OBJECT);
  const loaded = lib.loadObject(lib.parseObject(bytes, { name: ARRAY_MAP_OBJECT }), { fixupMap: reshapeMyMap(type, maxEntries) });
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
        // The like-for-like of C's lookup into a caller's variable: no Buffer made per call.
        label: 'MapHandle.getInto(number, out)',
        loop: (count) => {
          let sum = 0;
          for (let i = 0; i < count; i++) {
            map.getInto(i % LOOKUP_ENTRIES, rawValue);
            sum += rawValue.readUInt32LE(0);
          }
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
    for (let i = 0; i < LOOKUP_STRETCH; i++) expected += 3 * (i % LOOKUP_ENTRIES);
    // Warm-up: JIT and inline caches.
    for (const v of variants) v.loop(LOOKUP_COUNT / 5);
    const cPerOp = [];
    for (let r = 0; r < LOOKUP_ROUNDS; r++) {
      if (harness !== undefined) {
        const res = run(harness, [String(LOOKUP_ENTRIES), String(LOOKUP_STRETCH), String(LOOKUP_STRETCHES)]);
        if (res.status !== 0) throw new Error(`lookup harness exited ${res.status}: ${firstLine(res.stderr)}`);
        cPerOp.push(...res.stdout.trim().split('\n').map(Number));
      }
      for (const v of variants) {
        for (let k = 0; k < LOOKUP_STRETCHES; k++) {
          const start = nowNs();
          const checksum = v.loop(LOOKUP_STRETCH);
          v.perOp.push((nowNs() - start) / LOOKUP_STRETCH);
          if (checksum !== expected) throw new Error(`${v.label}: lookups returned wrong values (checksum ${checksum}, expected ${expected})`);
        }
      }
    }
    for (const v of variants) {
      const oursNs = median(v.perOp);
      if (harness === undefined) {
        rows.push({ name: `(c) ${v.label} [vs bpf_map_lookup_elem]`, ours: figure(oursNs, 'ns/op', fmtNsPerOp(oursNs)), skipped: `C side skipped: ${cSkip}` });
      } else {
        const cNs = median(cPerOp);
        addRow(`(c) ${v.label}, array u32→u64 [vs C bpf_map_lookup_elem]`, figure(oursNs, 'ns/op', fmtNsPerOp(oursNs)), figure(cNs, 'ns/op', fmtNsPerOp(cNs)),
          { kind: 'ratio', max: 1.3, label: '≤ 1.3×' });
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
    let batchHarness;
    let cSkip;
    try {
      batchHarness = buildHarness('batch');
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      cSkip = e.message;
    }
    const all = [];
    const raw = [];
    const tool = [];
    const bare = [];
    for (let r = 0; r < DUMP_RUNS; r++) {
      let start = nowNs();
      const entries = map.readAll();
      all.push((nowNs() - start) / 1e6);
      if (entries.length !== DUMP_ENTRIES) throw new Error(`readAll returned ${entries.length} entries`);
      start = nowNs();
      const columns = map.readAllRaw();
      raw.push((nowNs() - start) / 1e6);
      if (columns.count !== DUMP_ENTRIES) throw new Error(`readAllRaw read ${columns.count} entries`);
      if (batchHarness !== undefined) {
        // The same chunk as readAllRaw()'s default; the C loop times itself, so its process start is not counted.
        const res = run(batchHarness, [String(map.id), '16384', '1']);
        if (res.status !== 0) throw new Error(`batch harness exited ${res.status}: ${firstLine(res.stderr)}`);
        const [ms, count] = res.stdout.trim().split(' ').map(Number);
        if (count !== DUMP_ENTRIES) throw new Error(`the C batch loop read ${count} entries`);
        bare.push(ms);
      }
      if (toolSkip !== undefined) continue;
      start = nowNs();
      const res = run('bpftool', ['map', 'dump', 'id', String(map.id)], { stdio: ['ignore', devNull, 'pipe'] });
      tool.push((nowNs() - start) / 1e6);
      if (res.status !== 0) throw new Error(`bpftool map dump exited ${res.status}: ${firstLine(res.stderr)}`);
    }
    const rawMs = msFigure(median(raw));
    const allMs = msFigure(median(all));
    if (batchHarness === undefined) {
      rows.push({ name: '(d) readAllRaw() [vs the C batch loop]', ours: rawMs, skipped: `C side skipped: ${cSkip}` });
    } else {
      addRow('(d) readAllRaw() 1M-entry hash u32→u64 into columns [vs the bare C BPF_MAP_LOOKUP_BATCH loop: the physical limit]',
        rawMs, msFigure(median(bare)), { kind: 'ratio', max: 1.1, label: '≤ 1.1×' });
    }
    if (toolSkip !== undefined) {
      rows.push({ name: '(d) readAll() [vs bpftool map dump]', ours: allMs, skipped: `skipped: ${toolSkip}` });
      return;
    }
    const toolMs = msFigure(median(tool));
    addRow('(d) readAllRaw(): the same [vs bpftool map dump id N, plain text]', rawMs, toolMs, undefined);
    addRow('(d) readAll(): one [key, value] Buffer pair per entry [vs bpftool map dump]', allMs, toolMs, undefined);
  } finally {
    closeSync(devNull);
    loaded.close();
  }
});

// (h) global variables through their handles: one read and one write per operation.
rowGroup('(h) globals', () => {
  requireRoot();
  const obj = lib.openObject(GLOBALS_OBJECT);
  try {
    const hits = obj.variable('hits');
    const perOp = (body) => {
      body(VARIABLE_OPS / 10); // warm-up
      const samples = [];
      for (let r = 0; r < 5; r++) {
        const start = nowNs();
        body(VARIABLE_OPS / 5);
        samples.push((nowNs() - start) / (VARIABLE_OPS / 5));
      }
      return median(samples);
    };
    let last = 0;
    const setNs = perOp((n) => {
      for (let i = 0; i < n; i++) hits.set(i);
      last = n - 1;
    });
    let sum = 0;
    const getNs = perOp((n) => {
      for (let i = 0; i < n; i++) sum += Number(hits.get());
    });
    // The floor on this machine now: the same loop reading a u64 from a plain Buffer (as two u32 halves).
    const plain = Buffer.alloc(8);
    const floorNs = perOp((n) => {
      for (let i = 0; i < n; i++) sum += plain.readUInt32LE(0) + plain.readUInt32LE(4) * 0x1_0000_0000;
    });
    if (Number(hits.get()) !== last) throw new Error(`hits reads ${hits.get()} after setting ${last}`);
    if (!Number.isFinite(sum)) throw new Error('hits.get() returned a non-number');
    const ns = (v) => figure(v, 'ns/op', `${v.toFixed(0)} ns/op`);
    addRow('(h) obj.variable(\'hits\').get(), u64 in .bss [vs reading a u64 from a plain Buffer]', ns(getNs), ns(floorNs), { kind: 'absolute', max: 100, label: '≤ 100 ns' });
    addRow('(h) obj.variable(\'hits\').set(n), u64 in .bss [vs reading a u64 from a plain Buffer]', ns(setNs), ns(floorNs), { kind: 'absolute', max: 100, label: '≤ 100 ns' });
  } finally {
    obj.close();
  }
});

// (e) typed skeletons (`bpf-load gen`): the generated module for sockex1_modern_kern.o (my_map: u32 → long, typed
// through BTF), transpiled with TypeScript's transpileModule into bench/.build and imported; 'bpf-load' resolves to
// this package by its own name. my_map is reshaped through open()'s fixupMap, as in (c) and (d).
async function importSkeleton(object = ARRAY_MAP_OBJECT, file = 'sockex1_modern_skel.mjs') {
  let ts;
  try {
    ts = (await import('typescript')).default;
  } catch (e) {
    throw new Skip(`typescript (a devDependency) is not installed: ${e.message}`);
  }
  const code = lib.generateTypes(lib.parseObject(readFileSync(object), { name: object }), {
    objectPath: relative(BUILD_DIR, object),
  });
  const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  mkdirSync(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, file);
  writeFileSync(path, js);
  return import(pathToFileURL(path).href);
}
const skeletonModule = await importSkeleton().catch((e) => e);
const koffiModule = (await import('koffi')).default;
const ringbufSkeleton = await importSkeleton(join(ROOT, 'c-samples', 'ringbuf_kern.o'), 'ringbuf_skel.mjs').catch((e) => e);

function openSkeleton(type, maxEntries) {
  if (skeletonModule instanceof Error) throw skeletonModule;
  return skeletonModule.open({ fixupMap: reshapeMyMap(type, maxEntries) });
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
    const ms = (v) => figure(median(v), 'ms', `${median(v).toFixed(0)} ms`);
    addRow('(e) decode 1M hash entries u32→long (columns read once): generated codecs [vs the run-time BTF decoder]', ms(gen), ms(walk),
      { kind: 'ratio', max: 0.2, label: '≤ 0.20× (5× faster)' });
    addRow('(e) the same end to end: typed readAll() [vs MapHandle.readAll() + BTF decoder]', ms(typedAll), ms(rawAll), undefined);
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
    const perOp = (v) => figure(median(v), 'ns/op', fmtNsPerOp(median(v)));
    addRow('(e) typed handle get(number) → bigint, array u32→long [vs MapHandle.get(Buffer) → Buffer]', perOp(typedNs), perOp(rawNs),
      { kind: 'ratio', max: 1.1, label: '≤ 1.10×' });
  } finally {
    skel.close();
  }
});

// (e3) ring buffer records through a skeleton's typed reader (ringbuf_kern.o: struct event decoded by the generated
// codec) against the library's EventReader decoding the same records through BTF. Each round makes RING_BATCH getpid()
// calls (a record each, plus other processes' calls) and then drains the ring through one reader, timed; the two
// readers take turns, one open at a time (a ring buffer has one consumer position).
const RING_BATCH = 1000;
const RING_ROUNDS = 15;
rowGroup('(e) skeleton ring buffer reader', () => {
  requireRoot();
  if (ringbufSkeleton instanceof Error) throw ringbufSkeleton;
  const getpid = koffiModule.load('libc.so.6').func('int getpid(void)');
  const skel = ringbufSkeleton.open();
  try {
    skel.programs.on_getpid.attach();
    const drain = (reader, perRecord, pidOf = (e) => e.value.pid) => {
      for (let i = 0; i < RING_BATCH; i++) getpid();
      let pids = 0;
      const start = nowNs();
      const count = reader.readReady((e) => { pids += pidOf(e); });
      perRecord.push((nowNs() - start) / count);
      void reader.close();
      if (count < RING_BATCH || pids === 0) throw new Error(`${count} records for ${RING_BATCH} getpid() calls`);
    };
    const typed = [];
    const btf = [];
    const raw = [];
    for (let r = 0; r < RING_ROUNDS; r++) {
      drain(skel.maps.events.read(), typed);
      drain(skel.bpf.ringBuffer('events'), btf);
      drain(skel.bpf.ringBuffer('events', { type: false }), raw, (e) => e.data.readUInt32LE(0));
    }
    // The first rounds warm both paths up (JIT): the medians of the rest.
    const perOp = (v) => figure(median(v.slice(3)), 'ns/op', fmtNsPerOp(median(v.slice(3))));
    addRow('(e) ring buffer records, ringbuf_kern.o struct event: typed skeleton reader [vs EventReader decoding through BTF]', perOp(typed), perOp(btf),
      { kind: 'ratio', max: 1.0, label: '≤ 1.0×' });
    addRow('(e) the same: typed skeleton reader [vs EventReader undecoded (type: false), Buffers only: the decode\'s cost]', perOp(typed), perOp(raw), undefined);
  } finally {
    skel.close();
  }
});

// (i) classic filters over a capture (bench/classic.mjs).
rowGroup('(i) classic filter over a 1M-packet capture', () => {
  const devNull = openSync('/dev/null', 'w');
  try {
    benchClassicFilter({ run, Skip, nowNs, median, addRow, msFigure, requireRoot, writePcap: pcap.writePcap, cli: CLI, devNull });
  } finally {
    closeSync(devNull);
  }
});

/** Runs the C events harness; nanoseconds per record (or per run) of each round. */
function cEvents(harness, mode, rounds, batch) {
  const r = run(harness, [EVENTS_OBJECT, mode, String(rounds), String(batch)]);
  if (r.status !== 0) throw new Error(`events harness (${mode}) exited ${r.status}: ${firstLine(r.stderr)}`);
  return r.stdout.trim().split('\n').map(Number);
}

// (j) events. Rounds alternate between the two sides; each round produces EVENT_BATCH records with one test run,
// then times only their consumption (producing costs the same kernel work on both sides).
// The whole group runs with the main thread pinned to one CPU, and so the C harnesses it starts (they inherit it):
// a test run produces records on the CPU it runs on, and a consumer moved to the other CPU between producing and
// consuming reads them from that CPU's cache — unpinned, libbpf's perf consumer varied from 14 to 134 ns a record
// between rounds of one process, pinned 13–17 (with the odd 26–48). The last CPU: on the machines here CPU 0 takes
// the interrupts, and a group pinned there gave libbpf's perf consumer 35–65 ns a record, on CPU 1 16–23.
rowGroup('(j) events', () => onOneCpu(() => {
  requireRoot();
  let harness;
  let cSkip;
  try {
    harness = buildHarness('events');
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    cSkip = e.message;
  }
  const obj = lib.openObject(EVENTS_OBJECT);
  // What is opened below is let go in reverse order, also when a round throws (before the object's maps close).
  const cleanups = [];
  try {
    const frame = Buffer.alloc(64);
    const ringProg = obj.program('xdp_ring');
    const perfProg = obj.program('xdp_perf');
    // One reader per buffer, read both ways: copies (readReady: a Buffer and an event object per record, the safe
    // default) and views (readReadyViews: one reused RecordView into the ring, valid during the callback — libbpf's
    // contract, so the like-for-like row).
    const ring = obj.ringBuffer('ring', { type: false });
    cleanups.push(() => void ring.close());
    const perf = obj.perfBuffer('perf', { pagesPerCpu: 64, type: false });
    cleanups.push(() => void perf.close());
    const bare = bareRingConsumer(sys, obj.map('ring'));
    cleanups.push(() => bare.close());
    // libbpf's ring_buffer__consume called in this process (bench/c/floor.c): the C rate under this process's
    // conditions, beside the separate C process's. Set up here, so that a failure skips only its rows.
    let inProcess;
    let inProcessSkip;
    try {
      const { c } = loadFloorLibrary({ run, Skip, root: ROOT, buildDir: BUILD_DIR });
      const free = c.func('void floor_ring_free(void)');
      const opened = c.func('int floor_ring_open(int map_fd)')(obj.map('ring').fd);
      if (opened < 0) throw new Skip(`ring_buffer__new in this process failed: ${sys.errnoText(-opened)}`);
      cleanups.push(() => free());
      inProcess = {
        consume: c.func('double floor_ring_consume(void)'),
        records: c.func('long floor_ring_records(void)'),
        checksum: c.func('unsigned long long floor_ring_checksum(void)'),
      };
    } catch (e) {
      inProcessSkip = e instanceof Skip ? e.message : `bench/c/floor.c through koffi: ${e.message}`;
    }
    // The callbacks read the record's first byte and its length, as the C callbacks read a u64 and the size, and sum
    // them into a Float64Array: a `let` in this closure would box each new sum (a heap number per record), which
    // C's global counter does not pay.
    const acc = new Float64Array(1);
    const copyCb = (e) => { acc[0] += e.data[0] + e.data.length; };
    const viewCb = (v) => { acc[0] += v.bytes[v.offset] + v.length; };
    // Batches (readReadyBatch): the records of a ring in one call, the loop over them plain JavaScript — in a
    // function of its own that takes the arrays as arguments, as the README advises (HOT_LOOP_RULE).
    const sumRecords = (bytes, offsets, lengths, count) => {
      let s = 0;
      for (let i = 0; i < count; i++) s += bytes[offsets[i]] + lengths[i];
      return s;
    };
    const batchCb = (b) => { acc[0] += sumRecords(b.bytes, b.offsets, b.lengths, b.count); };
    const timed = (produce, consume) => {
      produce();
      const start = nowNs();
      const n = consume();
      const ns = (nowNs() - start) / EVENT_BATCH;
      if (n !== EVENT_BATCH) throw new Error(`consumed ${n} records, expected ${EVENT_BATCH}`);
      return ns;
    };
    const produceRing = () => ringProg.testRun({ data: frame, repeat: EVENT_BATCH });
    const producePerf = () => perfProg.testRun({ data: frame, repeat: EVENT_BATCH });
    const swapProg = obj.program('xdp_swap'); // looked up once, as the C side takes its fd once
    const oursRing = [];
    const oursViews = [];
    const oursPerf = [];
    const oursPerfViews = [];
    const oursBatch = [];
    const bareRing = [];
    const cRingHere = [];
    const oursPerfBatch = [];
    const oursRun = [];
    const oursRunInto = [];
    const runOut = Buffer.alloc(64 + 512); // what C's run_once offers as data_out
    const cRing = [];
    const cPerf = [];
    const cRun = [];
    // Each round runs every side once, C included (one harness round after its own warm-up round), so that changes
    // in machine load hit both alike.
    for (let r = 0; r < EVENT_ROUNDS + EVENT_WARMUP; r++) {
      const ringNs = timed(produceRing, () => ring.readReady(copyCb));
      const viewNs = timed(produceRing, () => ring.readReadyViews(viewCb));
      const perfNs = timed(producePerf, () => perf.readReady(copyCb));
      const perfViewNs = timed(producePerf, () => perf.readReadyViews(viewCb));
      const batchNs = timed(produceRing, () => ring.readReadyBatch(batchCb));
      const bareNs = timed(produceRing, () => bare.consume());
      let hereNs;
      if (inProcess !== undefined) {
        produceRing();
        const ns = inProcess.consume();
        if (ns < 0 || inProcess.records() !== EVENT_BATCH) throw new Error(`in-process ring_buffer__consume: ${ns < 0 ? 'no ring' : `${inProcess.records()} records`}, expected ${EVENT_BATCH}`);
        hereNs = ns / EVENT_BATCH;
      }
      const perfBatchNs = timed(producePerf, () => perf.readReadyBatch(batchCb));
      if (r < EVENT_WARMUP) continue;
      oursRing.push(ringNs);
      oursViews.push(viewNs);
      oursPerf.push(perfNs);
      oursPerfViews.push(perfViewNs);
      oursBatch.push(batchNs);
      bareRing.push(bareNs);
      if (hereNs !== undefined) cRingHere.push(hereNs);
      oursPerfBatch.push(perfBatchNs);
      if (harness !== undefined) {
        cRing.push(...cEvents(harness, 'ring', 1, EVENT_BATCH));
        cPerf.push(...cEvents(harness, 'perf', 1, EVENT_BATCH));
      }
    }
    // The perf floor: the library's perf reader lets go of the map's slots and a bare consumer takes them, in rounds
    // of its own with C's perf consumer between.
    void perf.close();
    const barePerf = barePerfConsumer(sys, obj.map('perf'), 64);
    const barePerfNs = [];
    const cPerfFloor = [];
    try {
      for (let r = 0; r < EVENT_ROUNDS + EVENT_WARMUP; r++) {
        const ns = timed(producePerf, () => barePerf.consume());
        if (r < EVENT_WARMUP) continue;
        barePerfNs.push(ns);
        if (harness !== undefined) cPerfFloor.push(...cEvents(harness, 'perf', 1, EVENT_BATCH));
      }
    } finally {
      barePerf.close();
    }
    // Test runs: each form in rounds of its own, C's runs between them, so that one form's garbage (testRun returns
    // a new Buffer per call) is not collected during the other's stretches — as a loop calling only one form runs.
    // One loop per form, so that each call site sees one function (a shared `call()` would be polymorphic).
    const stretches = (into) => {
      const ns = [];
      for (let k = 0; k < TEST_RUN_STRETCHES; k++) {
        const start = nowNs();
        if (into) for (let i = 0; i < TEST_RUN_COUNT; i++) swapProg.testRunInto(frame, runOut);
        else for (let i = 0; i < TEST_RUN_COUNT; i++) swapProg.testRun({ data: frame });
        ns.push((nowNs() - start) / TEST_RUN_COUNT);
      }
      return ns;
    };
    for (const [ours, into] of [[oursRunInto, true], [oursRun, false]]) {
      for (let r = 0; r < EVENT_ROUNDS + EVENT_WARMUP; r++) {
        const ns = stretches(into);
        if (r < EVENT_WARMUP) continue;
        ours.push(...ns);
        if (harness !== undefined) cRun.push(...cEvents(harness, 'run', TEST_RUN_STRETCHES, TEST_RUN_COUNT));
      }
    }
    if (!Number.isFinite(acc[0] + bare.sum() + barePerf.sum())) throw new Error('record callbacks summed to a non-number');
    const rate = (ns) => figure(ns, 'ns', `${(1e3 / ns).toFixed(1)} M rec/s (${ns.toFixed(0)} ns/rec)`);
    const perCall = (ns) => figure(ns, 'ns', fmtUs(ns / 1000));
    // Rates: ratio is ours/theirs in time per record, so ≤ 1.25× time is ≥ 0.8× the C rate.
    const rateTarget = { kind: 'ratio', max: 1.25, label: '≥ 0.8× C rate' };
    const pairs = [
      ['(j) ring buffer, 64 B records in batches (readReadyBatch) [vs ring_buffer__consume]', oursBatch, cRing, rate, rateTarget],
      ['(j) floor: a bare JavaScript loop over the same mapped ring, no library (bench/events-floor.mjs) [vs ring_buffer__consume]', bareRing, cRing, rate, undefined],
      ['(j) ring buffer, 64 B records as views (readReadyViews) [vs ring_buffer__consume]', oursViews, cRing, rate, rateTarget],
      ['(j) ring buffer, 64 B records as copies (readReady) [vs ring_buffer__consume]', oursRing, cRing, rate, undefined],
      ['(j) perf buffer, 64 B records in batches (readReadyBatch), 64 pages/CPU [vs perf_buffer__consume]', oursPerfBatch, cPerf, rate, rateTarget],
      ['(j) perf buffer, 64 B records as views (readReadyViews), 64 pages/CPU [vs perf_buffer__consume]', oursPerfViews, cPerf, rate, rateTarget],
      ['(j) perf buffer, 64 B records as copies (readReady), 64 pages/CPU [vs perf_buffer__consume]', oursPerf, cPerf, rate, undefined],
      ['(j) perf floor: a bare JavaScript loop over the same perf rings, no library (bench/events-floor.mjs), in rounds of its own [vs perf_buffer__consume]', barePerfNs, cPerfFloor, rate, undefined],
      ['(j) program.testRun() XDP 64 B frame, per call, the packet back as a new Buffer [vs bpf_prog_test_run_opts]', oursRun, cRun, perCall, { kind: 'ratio', max: 1.3, label: '≤ 1.3×' }],
      ['(j) program.testRunInto(frame, out) XDP 64 B frame, per call, the packet back into a reused buffer: like-for-like [vs bpf_prog_test_run_opts]', oursRunInto, cRun, perCall, { kind: 'ratio', max: 1.3, label: '≤ 1.3×' }],
    ];
    for (const [name, ours, theirs, fmt, target] of pairs) {
      if (harness === undefined) rows.push({ name, ours: fmt(median(ours)), skipped: `C side skipped: ${cSkip}` });
      else addRow(name, fmt(median(ours)), fmt(median(theirs)), target);
    }
    const hereName = '(j) ring buffer views (readReadyViews) [vs ring_buffer__consume called in this process, bench/c/floor.c]';
    const hereFloor = '(j) floor: the bare JavaScript loop [vs ring_buffer__consume called in this process, bench/c/floor.c]';
    if (inProcess === undefined) rows.push({ name: hereName, ours: rate(median(oursViews)), skipped: `C side skipped: ${inProcessSkip}` });
    else {
      addRow(hereName, rate(median(oursViews)), rate(median(cRingHere)), rateTarget);
      addRow(hereFloor, rate(median(bareRing)), rate(median(cRingHere)), undefined);
      if (!Number.isFinite(Number(inProcess.checksum()))) throw new Error('in-process ring_buffer__consume: its checksum is not a number');
    }
  } finally {
    for (const cleanup of cleanups.reverse()) cleanup();
    obj.close();
  }
}, { last: true }));

/**
 * (j) waiting: one record produced, then the time until JavaScript learns of it. The library waits with epoll_wait
 * run by koffi on the libuv pool (EpollSet.wait); the alternative is a worker thread blocked in a synchronous
 * epoll_wait that posts a message when the set is ready (bench/epoll-worker.mjs). Same ring, same kind of epoll set.
 */
async function measureWakeups() {
  requireRoot();
  const { Worker } = await import('node:worker_threads');
  const obj = lib.openObject(EVENTS_OBJECT);
  const frame = Buffer.alloc(64);
  const prog = obj.program('xdp_ring');
  const ringMap = obj.map('ring');
  const page = sys.pageSize();
  const consumerPage = sys.mmapShared(ringMap.fd, page, sys.Prot.READ | sys.Prot.WRITE, 0, 'bench');
  const producer = sys.mmapShared(ringMap.fd, page + 2 * ringMap.spec.maxEntries, sys.Prot.READ, page, 'bench');
  const ring = new loadLayer.RingBufferConsumer('ring', { consumer: consumerPage.buffer, producer: producer.buffer, dataOffset: page, size: ringMap.spec.maxEntries });
  const epoll = new sys.EpollSet();
  epoll.add(ringMap.fd, 0);
  const worker = new Worker(new URL('./epoll-worker.mjs', import.meta.url), { workerData: { fd: ringMap.fd } });
  try {
    const fromWorker = () => new Promise((resolve) => worker.once('message', resolve));
    await fromWorker(); // set up
    const asyncUs = [];
    const workerUs = [];
    for (let i = 0; i < WAKEUPS + 10; i++) {
      // koffi async: the wait is queued to the pool before the record exists.
      const waiting = epoll.wait(-1);
      await new Promise((r) => setTimeout(r, 1));
      let t0 = nowNs();
      prog.testRun({ data: frame, repeat: 1 });
      const ready = await waiting;
      const a = (nowNs() - t0) / 1000;
      if (ready.length !== 1 || ring.consume(() => {}) !== 1) throw new Error('async wait: expected one ready record');
      // Worker: it is blocked in epoll_wait once it said so (then a 1 ms grace for the call to start).
      worker.postMessage('wait');
      await fromWorker();
      await new Promise((r) => setTimeout(r, 1));
      const done = fromWorker();
      t0 = nowNs();
      prog.testRun({ data: frame, repeat: 1 });
      await done;
      const w = (nowNs() - t0) / 1000;
      if (ring.consume(() => {}) !== 1) throw new Error('worker wait: expected one record');
      if (i < 10) continue;
      asyncUs.push(a);
      workerUs.push(w);
    }
    addRow('(j) wake-up latency: record produced → JS knows, koffi async epoll_wait on the libuv pool [vs worker thread in epoll_wait]',
      figure(median(asyncUs), 'µs', fmtUs(median(asyncUs))), figure(median(workerUs), 'µs', fmtUs(median(workerUs))), undefined);
  } finally {
    await worker.terminate();
    await epoll.close();
    producer.unmap();
    consumerPage.unmap();
    obj.close();
  }
}
if (rowWanted('j')) {
  const started = Date.now();
  try {
    await measureWakeups();
  } catch (e) {
    rows.push({ name: '(j) wake-up latency', skipped: `${e instanceof Skip ? 'skipped' : 'failed'}: ${e.message}` });
    if (!(e instanceof Skip)) process.exitCode = 1;
  }
  process.stderr.write(`bench: (j) wake-ups done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

// (k) parse time of crafted shapes that were quadratic or crashed (bench/crafted.mjs): parseObject in-process against
// llvm-readobj reading sections, symbols and relocations of the same file. Target: an object of at most 16 MB parses
// in under a second.
rowGroup('(k) parse crafted shapes', () => {
  const readobj = ['llvm-readobj-19', 'llvm-readobj'].find((cmd) => spawnSync(cmd, ['--version']).status === 0);
  mkdirSync(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, 'crafted.o');
  try {
    for (const shape of CRAFTED_SHAPES) {
      const bytes = shape.build();
      writeFileSync(path, bytes);
      const ours = [];
      for (let r = 0; r < 3; r++) {
        const start = nowNs();
        lib.parseObject(bytes, { name: shape.name });
        ours.push((nowNs() - start) / 1e6);
      }
      const label = `(k) parseObject ${shape.name}, ${(bytes.byteLength / 2 ** 20).toFixed(1)} MB [vs llvm-readobj --sections --symbols --relocations]`;
      if (readobj === undefined) {
        rows.push({ name: label, ours: msFigure(median(ours)), skipped: 'skipped: llvm-readobj is not installed' });
        continue;
      }
      const theirs = [];
      for (let r = 0; r < 3; r++) {
        const start = nowNs();
        const result = spawnSync(readobj, ['--sections', '--symbols', '--relocations', path], { stdio: ['ignore', 'ignore', 'pipe'] });
        if (result.status !== 0) throw new Error(`${readobj} ${path}: ${firstLine(String(result.stderr))}`);
        theirs.push((nowNs() - start) / 1e6);
      }
      addRow(label, msFigure(median(ours)), msFigure(median(theirs)), { kind: 'time', max: 1000, label: '< 1 s' });
    }
  } finally {
    rmSync(path, { force: true });
  }
});

// (l) the per-call floor of one bpf(2) from Node (bench/floor.mjs): C loops from a shared library called in this
// process, the bare koffi call with a ready attr, and the library's forms, interleaved stretch by stretch.
rowGroup('(l) per-call floor, in one process', () => {
  mkdirSync(BUILD_DIR, { recursive: true });
  benchFloor({
    run, Skip, nowNs, median, addRow, figure, lib, root: ROOT, buildDir: BUILD_DIR, mapObject: ARRAY_MAP_OBJECT,
    eventsObject: EVENTS_OBJECT, requireRoot,
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Report

try {
  versions.bpftool = firstLine(run('bpftool', ['--version']).stdout);
} catch {
  versions.bpftool = 'not installed';
}
const cpuList = cpus();
const machine = `Linux ${release()}, ${cpuList.length} CPU(s) (${cpuList[0]?.model ?? 'unknown'}), node ${process.version}, ` +
  `${versions.libbpf ?? 'libbpf ?'}, ${versions.bpftool}`;
if (JSON_OUTPUT) {
  process.stdout.write(`${JSON.stringify({
    date: new Date().toISOString(), machine,
    runs: { a: LOAD_ITERATIONS, b: PROCESS_RUNS, c: LOOKUP_ROUNDS * LOOKUP_STRETCHES * LOOKUP_STRETCH, d: DUMP_RUNS, f: BIG_RUNS, g: BIG_RUNS, h: VARIABLE_OPS },
    rows: [...rows].sort((x, y) => x.name[1].localeCompare(y.name[1])), notes,
  }, null, 2)}\n`);
  process.exit();
}
process.stdout.write(
  `machine: ${machine}\n` +
    `medians: (a) ${LOAD_ITERATIONS} loads, (b) ${PROCESS_RUNS} runs, (c) ${LOOKUP_ROUNDS * LOOKUP_STRETCHES}×${LOOKUP_STRETCH} lookups, ` +
    `(d) ${DUMP_RUNS} dumps, (f)/(g) ${BIG_RUNS} runs; ratio = bpf-load / other (lower is better)\n\n`,
);
const header = { name: 'benchmark', ours: 'bpf-load', other: 'other', ratio: 'ratio', target: 'target' };
const cell = (r) => (r.skipped !== undefined
  ? { name: r.name, ours: r.ours?.text ?? '-', other: r.skipped, ratio: '-', target: '' }
  : {
    name: r.name, ours: r.ours.text, other: r.other?.text ?? '-',
    ratio: r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}×`,
    target: r.target === undefined ? '' : `${r.target.label}${r.target.kind === 'extra' ? ` (+${r.measured.toFixed(1)} ms)` : ''} ${r.met ? '(met)' : '(MISSED)'}`,
  });
// Row groups run in the order that suits the machine; the table reads (a) to (g).
const table = [header, ...[...rows].sort((x, y) => x.name[1].localeCompare(y.name[1])).map(cell)];
const cols = ['name', 'ours', 'other', 'ratio', 'target'];
const width = Object.fromEntries(cols.map((c) => [c, Math.max(...table.map((r) => String(r[c]).length))]));
for (const [i, r] of table.entries()) {
  process.stdout.write(`${cols.map((c) => String(r[c]).padEnd(width[c])).join(' | ').trimEnd()}\n`);
  if (i === 0) process.stdout.write(`${cols.map((c) => '-'.repeat(width[c])).join('-|-')}\n`);
}
for (const n of notes) process.stdout.write(`note: ${n}\n`);
