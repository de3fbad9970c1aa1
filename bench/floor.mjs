/**
 * (l) The per-call floor of one bpf(2) call from Node, measured in one process: bench/c/floor.c is built as a shared
 * library and its loops are called through koffi, one call per stretch, interleaved with the same stretch in
 * JavaScript — so both sides run in the same (multi-threaded) process under the same load. Three layers per call:
 * the C loop (the kernel's work plus libbpf's), the bare koffi call with a ready attr (koffi's own cost on top), and
 * the library's forms (our JavaScript on top of that). Rows (c) and (j) compare with separate C processes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const STRETCH = 300; // calls per timed stretch (~0.3–0.6 ms: rarely preempted)
const STRETCHES = 120; // per variant, interleaved round by round
const WARMUP = 20;
const ENTRIES = 1024;
const SYS_GETPID = { x64: 39, arm64: 172 }[process.arch];
const SYS_BPF = { x64: 321, arm64: 280 }[process.arch];

/**
 * Builds bench/c/floor.c as bench/.build/libfloor.so and loads it. The bench reaches koffi directly (src/ reaches it
 * only through src/sys): a bare call, and C called in this process, are what rows (j) and (l) measure.
 */
export function loadFloorLibrary({ run, Skip, root, buildDir }) {
  // Built and loaded once per process: rebuilding a library that is loaded would rewrite a mapped file.
  if (floorLibrary !== undefined) return floorLibrary;
  const so = join(buildDir, 'libfloor.so');
  const cc = run('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', so, join(root, 'bench', 'c', 'floor.c'), '-lbpf']);
  if (cc.status !== 0) throw new Skip(`cc floor.c: ${cc.stderr.split('\n')[0]}`);
  const koffi = createRequire(join(root, 'package.json'))('koffi');
  floorLibrary = { koffi, c: koffi.load(so) };
  return floorLibrary;
}
let floorLibrary;

export function benchFloor({ run, Skip, nowNs, median, addRow, figure, lib, root, buildDir, mapObject, eventsObject, requireRoot }) {
  requireRoot();
  const { koffi, c } = loadFloorLibrary({ run, Skip, root, buildDir });
  const cGetpid = c.func('long floor_getpid(long count)');
  const cLookup = c.func('long floor_lookup(int map_fd, long count, uint32_t entries)');
  const cTestRun = c.func('long floor_test_run(int prog_fd, long count)');
  const libc = koffi.load('libc.so.6');
  const getpid = libc.func('long syscall(long nr)');
  const bpf = libc.func('long syscall(long nr, int cmd, uintptr_t attr, uint32_t size)');
  const address = (b) => Number(koffi.address(b));
  const writeU64 = (view, offset, value) => { view.setUint32(offset, value >>> 0, true); view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true); };

  const loaded = lib.loadObject(lib.parseObject(readFileSync(mapObject), { name: mapObject }), {
    fixupMap: (m) => { if (m.name === 'my_map') { m.def.type = lib.mapTypeValue('array'); m.def.maxEntries = ENTRIES; } },
  });
  const obj = lib.openObject(eventsObject);
  try {
    const map = loaded.map('my_map');
    for (let k = 0; k < ENTRIES; k++) map.set(k, BigInt(k) * 3n);
    const prog = obj.program('xdp_swap');
    const mapFd = map.fd;
    const progFd = prog.fd;
    // Ready attrs for the bare calls: written once, only the key changes per lookup.
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(8);
    const lookupAttr = Buffer.alloc(32);
    const lv = new DataView(lookupAttr.buffer, lookupAttr.byteOffset, 32);
    lv.setUint32(0, mapFd, true);
    writeU64(lv, 8, address(key));
    writeU64(lv, 16, address(value));
    const lookupAt = address(lookupAttr);
    const frame = Buffer.alloc(64);
    const out = Buffer.alloc(576);
    const runAttr = Buffer.alloc(80);
    const rv = new DataView(runAttr.buffer, runAttr.byteOffset, 80);
    rv.setUint32(0, progFd, true);
    rv.setUint32(8, 64, true);
    writeU64(rv, 16, address(frame));
    writeU64(rv, 24, address(out));
    rv.setUint32(32, 1, true);
    const runAt = address(runAttr);
    const n = STRETCH;
    // One function per variant, so that each call site stays monomorphic.
    const variants = {
      cGetpid: () => cGetpid(n),
      koffiGetpid: () => { let s = 0; for (let i = 0; i < n; i++) s += getpid(SYS_GETPID); return s; },
      cLookup: () => cLookup(mapFd, n, ENTRIES),
      koffiLookup: () => {
        let s = 0;
        for (let i = 0; i < n; i++) {
          key.writeUInt32LE(i % ENTRIES, 0);
          if (bpf(SYS_BPF, 1, lookupAt, 32) === 0) s += value[0];
        }
        return s;
      },
      getInto: () => { let s = 0; for (let i = 0; i < n; i++) { map.getInto(i % ENTRIES, value); s += value[0]; } return s; },
      get: () => { let s = 0; for (let i = 0; i < n; i++) s += map.get(i % ENTRIES)[0]; return s; },
      cTestRun: () => cTestRun(progFd, n),
      koffiTestRun: () => {
        let s = 0;
        for (let i = 0; i < n; i++) {
          rv.setUint32(12, 576, true);
          if (bpf(SYS_BPF, 10, runAt, 80) === 0) s += rv.getUint32(4, true) + out[0];
        }
        return s;
      },
      testRunInto: () => { let s = 0; for (let i = 0; i < n; i++) s += prog.testRunInto(frame, out).retval + out[0]; return s; },
      testRun: () => { let s = 0; for (let i = 0; i < n; i++) s += prog.testRun({ data: frame }).data[0]; return s; },
    };
    const perCall = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (let r = 0; r < WARMUP + STRETCHES; r++) {
      for (const [name, body] of Object.entries(variants)) {
        const start = nowNs();
        body();
        if (r >= WARMUP) perCall[name].push((nowNs() - start) / n);
      }
    }
    const ns = (k) => median(perCall[k]);
    const f = (v) => figure(v, 'ns', `${v.toFixed(0)} ns`);
    const inProcess = 'the same C loop in this process';
    addRow(`(l) koffi syscall(SYS_getpid), fixed prototype [vs ${inProcess}]`, f(ns('koffiGetpid')), f(ns('cGetpid')));
    addRow(`(l) koffi bpf(MAP_LOOKUP_ELEM), ready attr: the FFI floor of (c) [vs bpf_map_lookup_elem, ${inProcess}]`, f(ns('koffiLookup')), f(ns('cLookup')));
    addRow(`(l) MapHandle.getInto(number, out) [vs bpf_map_lookup_elem, ${inProcess}]`, f(ns('getInto')), f(ns('cLookup')));
    addRow(`(l) MapHandle.get(number) [vs bpf_map_lookup_elem, ${inProcess}]`, f(ns('get')), f(ns('cLookup')));
    addRow(`(l) koffi bpf(PROG_TEST_RUN), ready attr: the FFI floor of (j) [vs bpf_prog_test_run_opts, ${inProcess}]`, f(ns('koffiTestRun')), f(ns('cTestRun')));
    addRow(`(l) program.testRunInto(frame, out) [vs bpf_prog_test_run_opts, ${inProcess}]`, f(ns('testRunInto')), f(ns('cTestRun')));
    addRow(`(l) program.testRun({ data }) [vs bpf_prog_test_run_opts, ${inProcess}]`, f(ns('testRun')), f(ns('cTestRun')));
  } finally {
    obj.close();
    loaded.close();
  }
}
