import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  attachKprobe, DEFAULT_KPROBE_ENVIRONMENT, kprobeSymbols, syscallWrapperPrefix, type KprobeEnvironment,
} from '../../src/attach/kprobe.js';
import { AttachError } from '../../src/attach/link.js';
import { attachPerfEvent, onlineCpus, openPerfEventWithProgram, type PerfAttachment } from '../../src/attach/perf-event.js';
import { attachRawTracepoint } from '../../src/attach/raw-tracepoint.js';
import { readTracePipe, tracefsRoot, tracepointId } from '../../src/attach/tracefs.js';
import { attachTracepoint } from '../../src/attach/tracepoint.js';
import { loadObject, type LoadedObject, type LoadedProgram } from '../../src/load/index.js';
import { parseObject, type ProgramSpec } from '../../src/object/index.js';
import {
  Errno, KernelFeatureError, PerfAttrFlag, PerfSwConfig, PerfType, SysError, type PerfEventAttr,
} from '../../src/sys/index.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';
import { catchError } from '../helpers/errors.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function load(file: string): LoadedObject {
  return loadObject(parseObject(readFileSync(join(SAMPLES_DIR, file)), { name: file }));
}

/** Waits until the program id no longer exists (the last reference may be dropped from a work queue). */
function expectProgramGone(id: number): void {
  expect(eventually(() => !programExists(id), 2000), `program id ${id} still exists after close()`).toBe(true);
}

/**
 * Loads `file`, runs `body`, closes the object, then checks through the kernel that nothing of ours remains: no
 * link of our programs, our program ids gone, and no fd left open.
 */
async function withObject(file: string, body: (object: LoadedObject) => Promise<void> | void): Promise<void> {
  const fdsBefore = openFdCount();
  const object = load(file);
  const progIds = object.programs.map((p) => p.id);
  try {
    await body(object);
  } finally {
    object.close();
  }
  expect(linksOfPrograms(progIds)).toEqual([]);
  for (const id of progIds) expectProgramGone(id);
  expect(openFdCount()).toBe(fdsBefore);
}

function counter(object: LoadedObject, map: string, key: number): bigint {
  const value = object.map(map).get(key);
  if (value === undefined) throw new Error(`${map}[${key}] missing`);
  return value.readBigUInt64LE(0);
}

function makeSyscalls(count: number): void {
  for (let i = 0; i < count; i++) statSync(SAMPLES_DIR);
}

/** The same program with another section target, as a hostile or broken object would carry. */
function retarget(program: LoadedProgram, attachTarget: string, section = program.section): LoadedProgram {
  // A spread copies fields, not getters: fd is read from the Fd, so it is handed over explicitly.
  return { ...program, fd: program.fd, section, spec: { ...program.spec, attachTarget, section } };
}

describe('tracepoint', () => {
  kernelTest('trace_hello: getpid() in a child prints "bpf-load hello pid <child>" on trace_pipe', () => withObject('trace_hello_kern.o', async (object) => {
    const program = object.program('trace_getpid');
    const link = attachTracepoint(program, {});
    expect(link).toMatchObject({ kind: 'tracepoint', program: 'trace_getpid', target: 'syscalls/sys_enter_getpid' });
    expect(link.fds).toHaveLength(1);
    // This kernel has perf links: the program hangs off one, visible by id.
    expect(linksOfPrograms([program.id])).toEqual([expect.objectContaining({ typeName: 'perf_event', progId: program.id })]);

    const controller = new AbortController();
    const childPids = new Set<number>();
    let seen: string | undefined;
    const reader = (async () => {
      for await (const line of readTracePipe({ signal: controller.signal })) {
        const pid = /bpf-load hello pid (\d+)$/.exec(line)?.[1];
        if (pid !== undefined && childPids.has(Number(pid))) {
          seen = line;
          controller.abort();
        }
      }
    })();
    try {
      // Node's process.pid is cached, but a starting node calls getpid(2) (in its own process: the tgid we expect).
      // Other trace_pipe readers may take lines, so keep making new children until one of them is seen.
      for (const deadline = Date.now() + 5000; seen === undefined && Date.now() < deadline; await sleep(100)) {
        const child = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
        expect(child.status).toBe(0);
        childPids.add(child.pid ?? -1);
      }
    } finally {
      controller.abort();
      await reader;
    }
    expect(seen).toMatch(/bpf_trace_printk: bpf-load hello pid \d+$/);

    link.detach();
    link.detach(); // idempotent
    expect(linksOfPrograms([program.id])).toEqual([]);
  }), 20_000);

  kernelTest('an unknown tracepoint is an AttachError naming the tracefs path looked up', () => withObject('trace_hello_kern.o', (object) => {
    const program = retarget(object.program('trace_getpid'), 'syscalls/sys_enter_no_such_call');
    const path = join(tracefsRoot(), 'events', 'syscalls', 'sys_enter_no_such_call', 'id');
    expect(() => attachTracepoint(program, {})).toThrow(new AttachError(`tracepoint syscalls/sys_enter_no_such_call: ${path}: no such tracepoint`));
    expect(() => attachTracepoint(retarget(program, 'sys_enter_getpid'), {})).toThrow(/is not <category>\/<name>/);
  }));

  it('hostile tracepoint targets are refused before tracefs is touched', () => {
    const root = mkdtempSync(join(tmpdir(), 'bpf-load-tp-'));
    try {
      const program = fakeProgram('tracepoint/syscalls/sys_enter_getpid');
      for (const target of ['../../etc/passwd', 'syscalls/a b', 'x\n-:y', 'syscalls/..']) {
        expect(() => attachTracepoint(retarget(program, target), { tracefs: root })).toThrow(AttachError);
      }
      // A category that exists in the fake tracefs but holds no id: the path is named.
      mkdirSync(join(root, 'events', 'cat', 'ev'), { recursive: true });
      expect(() => attachTracepoint(retarget(program, 'cat/ev'), { tracefs: root })).toThrow(`${join(root, 'events/cat/ev/id')}: no such tracepoint`);
    } finally {
      rmSync(root, { recursive: true });
    }
  });
});

describe('raw_tracepoint', () => {
  kernelTest('raw_tp sys_enter: raw_tp_count grows with our syscalls, and stops after detach', () => withObject('raw_tp_kern.o', async (object) => {
    const program = object.program('count_sys_enter');
    const link = attachRawTracepoint(program);
    expect(link).toMatchObject({ kind: 'raw_tracepoint', target: 'sys_enter' });
    expect(linksOfPrograms([program.id])).toEqual([expect.objectContaining({ typeName: 'raw_tracepoint', tpName: 'sys_enter' })]);

    const before = counter(object, 'raw_tp_count', 0);
    makeSyscalls(200);
    expect(counter(object, 'raw_tp_count', 0) - before).toBeGreaterThanOrEqual(200n);

    link.detach();
    expect(linksOfPrograms([program.id])).toEqual([]);
    await sleep(20); // a call already inside the program on another CPU may still finish
    const detached = counter(object, 'raw_tp_count', 0);
    makeSyscalls(200);
    expect(counter(object, 'raw_tp_count', 0)).toBe(detached);
  }));

  kernelTest('unknown raw tracepoints and hostile names fail with the name', () => withObject('raw_tp_kern.o', (object) => {
    const program = object.program('count_sys_enter');
    expect(() => attachRawTracepoint(retarget(program, 'no_such_raw_tp'))).toThrow(/BPF_RAW_TRACEPOINT_OPEN.*no_such_raw_tp.*ENOENT/);
    for (const target of ['x\n-:y', 'a b', '../../etc', 'sys/enter']) {
      expect(() => attachRawTracepoint(retarget(program, target))).toThrow(AttachError);
    }
  }));
});

describe('perf_event', () => {
  kernelTest('cpu-clock on every online CPU: cpu_hits grows on each of them', () => withObject('perf_event_kern.o', async (object) => {
    const program = object.program('count_on_cpu');
    const cpus = onlineCpus();
    const link = attachPerfEvent(program, { sampleFreq: 1000 });
    expect(link.kind).toBe('perf_event');
    expect(link.fds).toHaveLength(cpus.length);
    expect(new Set(link.fds).size).toBe(cpus.length);
    const links = linksOfPrograms([program.id]);
    expect(links).toHaveLength(cpus.length);
    for (const l of links) expect(l.typeName).toBe('perf_event');

    const hits = () => cpus.map((cpu) => counter(object, 'cpu_hits', cpu));
    const start = hits();
    // cpu-clock fires from an hrtimer, busy or idle; busy work on this thread just makes sure time passes.
    for (const deadline = Date.now() + 3000; Date.now() < deadline;) {
      const t = Date.now();
      while (Date.now() - t < 50) makeSyscalls(10);
      await sleep(10);
      if (hits().every((h, i) => h > (start[i] ?? 0n))) break;
    }
    const grown = hits();
    cpus.forEach((cpu, i) => expect(grown[i], `cpu ${cpu}`).toBeGreaterThan(start[i] ?? 0n));

    link.detach();
    expect(linksOfPrograms([program.id])).toEqual([]);
    await sleep(20);
    const stopped = hits();
    await sleep(100);
    expect(hits()).toEqual(stopped);
  }));

  kernelTest('the PERF_EVENT_IOC_SET_BPF path (kernels without perf links) runs the program without a link', () => withObject('perf_event_kern.o', async (object) => {
    const program = object.program('count_on_cpu');
    const [cpu] = onlineCpus();
    if (cpu === undefined) throw new Error('no online CPU');
    const attr: PerfEventAttr = { type: PerfType.SOFTWARE, config: PerfSwConfig.CPU_CLOCK, samplePeriod: 1000, flags: PerfAttrFlag.FREQ };
    const event = openPerfEventWithProgram({ attr, pid: -1, cpu, progFd: program.fd, mode: 'ioctl' });
    try {
      expect(event.linkFd).toBeUndefined();
      expect(linksOfPrograms([program.id])).toEqual([]);
      const before = counter(object, 'cpu_hits', cpu);
      for (const deadline = Date.now() + 3000; counter(object, 'cpu_hits', cpu) === before && Date.now() < deadline;) await sleep(20);
      expect(counter(object, 'cpu_hits', cpu)).toBeGreaterThan(before);
    } finally {
      event.close();
    }
  }));

  kernelTest('bad sample frequencies are refused before any event is opened', () => withObject('perf_event_kern.o', (object) => {
    const program = object.program('count_on_cpu');
    for (const sampleFreq of [0, -5, 1.5, Number.NaN]) {
      expect(() => attachPerfEvent(program, { sampleFreq })).toThrow(`perf_event: sample frequency must be a positive integer, got ${sampleFreq}`);
    }
  }));
});

describe('kprobe on this kernel', () => {
  const pmu = existsSync(DEFAULT_KPROBE_ENVIRONMENT.pmuDir);
  const events = (() => {
    try {
      return existsSync(join(tracefsRoot(), 'kprobe_events'));
    } catch {
      return false;
    }
  })();

  kernelTest(`kprobe_kern.o attaches only where the kernel has kprobes (PMU: ${pmu}, kprobe_events: ${events})`, () => withObject('kprobe_kern.o', async (object) => {
    if (!pmu && !events) {
      for (const program of object.programs) {
        const error = catchError(() => attachKprobe(program, {}));
        expect(error).toBeInstanceOf(KernelFeatureError);
        expect((error as Error).message).toBe(`${program.section}: this kernel has no kprobe support (no kprobe PMU, no kprobe_events)`);
      }
      return;
    }
    // A kernel with kprobes: every probe attaches; a child's sleep (clock_nanosleep, so not sys_nanosleep's slot 2)
    // goes through do_nanosleep, entry and return.
    const links = object.programs.map((p) => attachKprobe(p, {}));
    try {
      const before = [0, 1].map((k) => counter(object, 'probe_hits', k));
      spawnSync('sleep', ['0.01']);
      [0, 1].forEach((k) => expect(counter(object, 'probe_hits', k), `probe_hits[${k}]`).toBeGreaterThan(before[k] ?? 0n));
    } finally {
      for (const l of links) l.detach();
    }
    if (events) expect(readFileSync(join(tracefsRoot(), 'kprobe_events'), 'utf8')).not.toMatch(`_${process.pid}_`);
  }));
});

// ---------------------------------------------------------------------------------------------------------------
// kprobe_events and the kprobe PMU against fakes: no kernel needed, exact bytes checked.

const KPROBE_SPECS: readonly ProgramSpec[] = parseObject(readFileSync(join(SAMPLES_DIR, 'kprobe_kern.o')), { name: 'kprobe_kern.o' }).programs;

/** A program as the loader would hand it over, minus the kernel: fd -1, so any real syscall on it would fail. */
function fakeProgram(section: string, attachTarget?: string): LoadedProgram {
  const spec = KPROBE_SPECS.find((s) => s.section === section) ?? KPROBE_SPECS[0];
  if (spec === undefined) throw new Error('kprobe_kern.o has no programs');
  const fixed: ProgramSpec = {
    ...spec, section,
    attach: section.startsWith('kretprobe/') || section.startsWith('kretsyscall/') ? 'kretprobe' : section.startsWith('tracepoint/') ? 'tracepoint' : 'kprobe',
    attachTarget: attachTarget ?? section.slice(section.indexOf('/') + 1),
  };
  return { spec: fixed, name: spec.name, section, type: spec.type, fd: -1, id: 0, tag: '', info: undefined as never, insns: spec.bytes,
    testRun: () => { throw new Error('fake program: no kernel'); }, testRunInto: () => { throw new Error('fake program: no kernel'); } };
}

const OTHER_PROBES = 'p:other/keep_me do_sys_open\nr:other/keep_me_too do_sys_open\n';

interface FakeKernel {
  readonly root: string;
  readonly eventsFile: string;
  readonly opened: Array<{ attr: PerfEventAttr; closed: boolean }>;
  readonly env: Partial<KprobeEnvironment>;
  /** Makes the next n openEvent calls fail as perf_event_open would for a missing symbol. */
  failNext(n: number): void;
  content(): string;
}

let fakes: string[] = [];
afterEach(() => {
  for (const dir of fakes) rmSync(dir, { recursive: true, force: true });
  fakes = [];
});

/**
 * A fake tracefs (kprobe_events with someone else's probes) plus a kernel stand-in: like the real one, it creates
 * events/<group>/<event>/id only for an event defined in kprobe_events; perf events are recorded, not opened.
 */
function fakeKernel(options: { kprobeEvents?: boolean; pmu?: boolean } = {}): FakeKernel {
  const root = mkdtempSync(join(tmpdir(), 'bpf-load-kprobe-'));
  fakes.push(root);
  const eventsFile = join(root, 'kprobe_events');
  if (options.kprobeEvents !== false) writeFileSync(eventsFile, OTHER_PROBES);
  const pmuDir = join(root, 'pmu', 'kprobe');
  if (options.pmu === true) {
    mkdirSync(join(pmuDir, 'format'), { recursive: true });
    writeFileSync(join(pmuDir, 'type'), '6\n');
    writeFileSync(join(pmuDir, 'format', 'retprobe'), 'config:0\n');
  }
  const opened: FakeKernel['opened'] = [];
  let failures = 0;
  let nextId = 5000;
  const env: Partial<KprobeEnvironment> = {
    pmuDir,
    eventId: (dir, group, event) => {
      const defined = readFileSync(join(dir, 'kprobe_events'), 'utf8').split('\n').some((l) => l.startsWith(`p:${group}/${event} `) || l.startsWith(`r:${group}/${event} `));
      if (defined) {
        mkdirSync(join(dir, 'events', group, event), { recursive: true });
        writeFileSync(join(dir, 'events', group, event, 'id'), `${nextId++}\n`);
      }
      return tracepointId(dir, group, event);
    },
    openEvent: (attr): PerfAttachment => {
      if (failures > 0) {
        failures--;
        throw new SysError({ syscall: 'perf_event_open', errno: Errno.ENOENT, detail: 'fake' });
      }
      const record = { attr, closed: false };
      opened.push(record);
      return { fd: 1000 + opened.length, linkFd: undefined, close: () => { record.closed = true; } };
    },
  };
  return {
    root, eventsFile, opened, env,
    failNext: (n) => { failures = n; },
    content: () => readFileSync(eventsFile, 'utf8'),
  };
}

function appendedLines(fake: FakeKernel): string[] {
  const text = fake.content();
  expect(text.startsWith(OTHER_PROBES), 'the probes that were there stay, first').toBe(true);
  return text.slice(OTHER_PROBES.length).split('\n').filter((l) => l !== '');
}

describe('kprobe through tracefs kprobe_events (fake tracefs)', () => {
  const pid = process.pid;
  const wrapped = `${syscallWrapperPrefix()}sys_nanosleep`;

  it('appends p:/r: definitions with distinct names, opens their ids, and removes only its own events', () => {
    const fake = fakeKernel();
    const entry = attachKprobe(fakeProgram('kprobe/do_nanosleep'), { tracefs: fake.root }, fake.env);
    const exit = attachKprobe(fakeProgram('kretprobe/do_nanosleep'), { tracefs: fake.root }, fake.env);
    const syscall = attachKprobe(fakeProgram('kprobe/sys_nanosleep'), { tracefs: fake.root }, fake.env);
    expect(entry).toMatchObject({ kind: 'kprobe', target: 'do_nanosleep', fds: [1001] });
    expect(exit).toMatchObject({ kind: 'kretprobe', target: 'do_nanosleep', fds: [1002] });
    expect(syscall.target).toBe(wrapped);

    const defined = appendedLines(fake);
    expect(defined).toHaveLength(3);
    const name = (line: string | undefined, re: RegExp) => re.exec(line ?? '')?.[1] ?? `no match: ${line}`;
    const p = name(defined[0], new RegExp(`^p:bpf_load/(p_do_nanosleep_${pid}_\\d+) do_nanosleep$`));
    const r = name(defined[1], new RegExp(`^r:bpf_load/(r_do_nanosleep_${pid}_\\d+) do_nanosleep$`));
    const s = name(defined[2], new RegExp(`^p:bpf_load/(p_${wrapped}_${pid}_\\d+) ${wrapped}$`));
    expect(new Set([p, r, s]).size).toBe(3);
    // Each perf event was opened as a tracepoint on the id the event got.
    expect(fake.opened.map((o) => [o.attr.type, o.attr.config, o.attr.samplePeriod])).toEqual([
      [PerfType.TRACEPOINT, 5000, 1], [PerfType.TRACEPOINT, 5001, 1], [PerfType.TRACEPOINT, 5002, 1],
    ]);

    exit.detach();
    entry.detach();
    syscall.detach();
    syscall.detach(); // idempotent: no second removal
    expect(fake.opened.every((o) => o.closed)).toBe(true);
    expect(appendedLines(fake)).toEqual([...defined, `-:bpf_load/${r}`, `-:bpf_load/${p}`, `-:bpf_load/${s}`]);
  });

  it(`sys_* tries ${wrapped} first and falls back to the plain name, removing the failed event`, () => {
    const fake = fakeKernel();
    fake.failNext(1);
    const link = attachKprobe(fakeProgram('kprobe/sys_nanosleep'), { tracefs: fake.root }, fake.env);
    expect(link.target).toBe('sys_nanosleep');
    const lines = appendedLines(fake);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^p:bpf_load/p_${wrapped}_${pid}_\\d+ ${wrapped}$`));
    expect(lines[1]).toBe(`-:${(lines[0] ?? '').slice(2).split(' ')[0]}`);
    expect(lines[2]).toMatch(new RegExp(`^p:bpf_load/p_sys_nanosleep_${pid}_\\d+ sys_nanosleep$`));
    link.detach();
    expect(appendedLines(fake)[3]).toBe(`-:${(lines[2] ?? '').slice(2).split(' ')[0]}`);
  });

  it('when every candidate fails, the error names each symbol and no event of ours is left defined', () => {
    const fake = fakeKernel();
    fake.failNext(2);
    expect(() => attachKprobe(fakeProgram('kprobe/sys_nanosleep'), { tracefs: fake.root }, fake.env)).toThrow(new AttachError(
      `kprobe/sys_nanosleep: ${wrapped}: perf_event_open: fake: No such file or directory (ENOENT); ` +
        'sys_nanosleep: perf_event_open: fake: No such file or directory (ENOENT)',
    ));
    const lines = appendedLines(fake);
    const definedNames = lines.filter((l) => !l.startsWith('-:')).map((l) => l.slice(2).split(' ')[0]);
    const removedNames = lines.filter((l) => l.startsWith('-:')).map((l) => l.slice(2));
    expect(definedNames).toHaveLength(2);
    expect(removedNames).toEqual(definedNames);
  });

  it('ksyscall/kretsyscall probe the syscall wrapper; sys_ names get the arch prefix on x64 and arm64 only', () => {
    expect(kprobeSymbols(fakeProgram('ksyscall/nanosleep'), 'x64')).toEqual(['__x64_sys_nanosleep', 'sys_nanosleep']);
    expect(kprobeSymbols(fakeProgram('kretsyscall/nanosleep'), 'arm64')).toEqual(['__arm64_sys_nanosleep', 'sys_nanosleep']);
    expect(kprobeSymbols(fakeProgram('kprobe/sys_nanosleep'), 'riscv64')).toEqual(['sys_nanosleep']);
    expect(kprobeSymbols(fakeProgram('kprobe/do_nanosleep'), 'x64')).toEqual(['do_nanosleep']);
  });

  it('event names stay within the kernel limit for long symbols', () => {
    const fake = fakeKernel();
    const long = `f${'x'.repeat(120)}`;
    const link = attachKprobe(fakeProgram(`kprobe/${long}`), { tracefs: fake.root }, fake.env);
    const [line] = appendedLines(fake);
    const event = (line ?? '').slice('p:bpf_load/'.length).split(' ')[0] ?? '';
    expect(event.length).toBeLessThanOrEqual(63);
    expect(event).toMatch(new RegExp(`^p_fx+_${pid}_\\d+$`));
    expect(line?.endsWith(` ${long}`)).toBe(true);
    link.detach();
  });

  it('hostile names are refused before anything is written', () => {
    const fake = fakeKernel();
    for (const target of ['x\n-:y', 'a b', '../../etc', 'do_nanosleep\n-:other/keep_me', 'a/b', '']) {
      for (const section of [`kprobe/${target}`, `kretprobe/${target}`]) {
        expect(() => attachKprobe(fakeProgram(section, target), { tracefs: fake.root }, fake.env)).toThrow(AttachError);
      }
    }
    expect(fake.content()).toBe(OTHER_PROBES);
    expect(fake.opened).toEqual([]);
    expect(existsSync(join(fake.root, 'events'))).toBe(false);
  });

  it('an event whose id never appears is removed again and reported with its path', () => {
    const fake = fakeKernel();
    const env = { ...fake.env, eventId: (dir: string, group: string, event: string) => tracepointId(dir, group, event) };
    expect(() => attachKprobe(fakeProgram('kprobe/do_nanosleep'), { tracefs: fake.root }, env)).toThrow(/^kprobe\/do_nanosleep: do_nanosleep: tracepoint bpf_load\/p_do_nanosleep_\d+_\d+: .*\/events\/bpf_load\/p_do_nanosleep_\d+_\d+\/id: no such tracepoint$/);
    const lines = appendedLines(fake);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe(`-:${(lines[0] ?? '').slice(2).split(' ')[0]}`);
    expect(fake.opened).toEqual([]);
  });

  it(`with neither the PMU nor kprobe_events: KernelFeatureError naming the section`, () => {
    const fake = fakeKernel({ kprobeEvents: false });
    const attempt = () => attachKprobe(fakeProgram('kretprobe/do_nanosleep'), { tracefs: fake.root }, fake.env);
    const error = catchError(attempt);
    expect(error).toBeInstanceOf(KernelFeatureError);
    expect((error as Error).message).toBe('kretprobe/do_nanosleep: this kernel has no kprobe support (no kprobe PMU, no kprobe_events)');
    expect(existsSync(fake.eventsFile)).toBe(false);
  });
});

describe('kprobe through the kprobe PMU (fake sysfs)', () => {
  it('opens the PMU type with the function name in config1 and the retprobe bit; kprobe_events is not touched', () => {
    const fake = fakeKernel({ pmu: true });
    const entry = attachKprobe(fakeProgram('kprobe/do_nanosleep'), { tracefs: fake.root }, fake.env);
    const exit = attachKprobe(fakeProgram('kretprobe/do_nanosleep'), { tracefs: fake.root }, fake.env);
    expect(fake.opened.map((o) => [o.attr.type, o.attr.config, Buffer.from(o.attr.config1 as Uint8Array).toString('latin1')])).toEqual([
      [6, 0n, 'do_nanosleep\0'], [6, 1n, 'do_nanosleep\0'],
    ]);
    fake.failNext(1);
    const syscall = attachKprobe(fakeProgram('kprobe/sys_nanosleep'), { tracefs: fake.root }, fake.env);
    expect(syscall.target).toBe('sys_nanosleep');
    for (const l of [entry, exit, syscall]) l.detach();
    expect(fake.opened.every((o) => o.closed)).toBe(true);
    expect(fake.content()).toBe(OTHER_PROBES);
  });

  it('a PMU description it cannot read is an error naming the directory', () => {
    const fake = fakeKernel({ pmu: true });
    writeFileSync(join(fake.root, 'pmu', 'kprobe', 'format', 'retprobe'), 'config1:0-63\n');
    expect(() => attachKprobe(fakeProgram('kprobe/do_nanosleep'), { tracefs: fake.root }, fake.env))
      .toThrow(`${join(fake.root, 'pmu', 'kprobe')}: unexpected kprobe PMU description`);
  });
});

describe('attachKprobe argument checks', () => {
  let fdsBefore = 0;
  beforeEach(() => {
    fdsBefore = openFdCount();
  });
  afterEach(() => {
    expect(openFdCount()).toBe(fdsBefore);
  });

  it('a non-kprobe program handed to attachKprobe is refused', () => {
    const fake = fakeKernel();
    expect(() => attachKprobe(fakeProgram('tracepoint/syscalls/sys_enter_getpid'), { tracefs: fake.root }, fake.env))
      .toThrow(new AttachError('tracepoint/syscalls/sys_enter_getpid: not a kprobe or kretprobe program (attach kind tracepoint)'));
    expect(fake.content()).toBe(OTHER_PROBES);
  });
});
