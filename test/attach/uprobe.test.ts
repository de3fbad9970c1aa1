import { spawn, spawnSync } from 'node:child_process'; // drives an interactive bash through `script` (a pty), and a second node, with argument arrays: no shell
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttachError } from '../../src/attach/index.js';
import { attachUprobe, parseLdSoCache, parseUprobeSection, resolveBinary } from '../../src/attach/uprobe.js';
import { openObject, type BpfObject, type EventRecord } from '../../src/index.js';
import { CliProcess } from '../helpers/cli.js';
import { eventually, isExecutable, kernelTest, PROJECT_ROOT, SAMPLES_DIR } from '../helpers/kernel.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';
import { buildUprobeTarget, runUprobeTarget, UPROBE_TARGET } from '../helpers/uprobe-target.js';

// labs: a libc function nothing in Node calls on its own (getpid is also called by V8's GC and Node's CSPRNG, so a
// count of this process's getpid calls is not the test's to know).
const labs = koffi.load('libc.so.6').func('long labs(long)') as (n: number) => number;
const UPROBE_EVENTS = '/sys/kernel/tracing/uprobe_events';
const uprobeEvents = () => readFileSync(UPROBE_EVENTS, 'utf8');

interface CallEvent { pid: number; is_return: number; a: number; b: number; ret: number }

function drain(obj: BpfObject): CallEvent[] {
  const reader = obj.ringBuffer('calls');
  const got: CallEvent[] = [];
  reader.readReady((e) => got.push((e as EventRecord).value as unknown as CallEvent));
  void reader.close();
  return got;
}

describe('uprobe sections and binaries (no kernel)', () => {
  it('libbpf\'s section syntax: PATH:SYMBOL, PATH:SYMBOL+OFFSET, PATH:OFFSET; uretprobe and sleepable forms', () => {
    expect(parseUprobeSection('uprobe//bin/bash:readline', '/bin/bash:readline')).toEqual({ binary: '/bin/bash', symbol: 'readline', retprobe: false });
    expect(parseUprobeSection('uretprobe/libc.so.6:malloc', 'libc.so.6:malloc')).toEqual({ binary: 'libc.so.6', symbol: 'malloc', retprobe: true });
    expect(parseUprobeSection('uprobe.s/x:f+0x10', 'x:f+0x10')).toEqual({ binary: 'x', symbol: 'f', offset: 16, retprobe: false });
    expect(parseUprobeSection('uretprobe.s/x:0x1149', 'x:0x1149')).toEqual({ binary: 'x', offset: 0x1149, retprobe: true });
    expect(() => parseUprobeSection('uprobe', '')).toThrow(/uprobe: expected uprobe\/PATH:SYMBOL\[\+OFFSET\]/);
    expect(() => parseUprobeSection('uprobe/x:f;rm', 'x:f;rm')).toThrow('uprobe/x:f;rm: "f;rm" is neither SYMBOL, SYMBOL+OFFSET nor OFFSET');
  });

  it('a bare library name is found as the dynamic linker would (ld.so.cache of this architecture; ldconfig -p agrees)', () => {
    const cache = parseLdSoCache(readFileSync('/etc/ld.so.cache'));
    expect(resolveBinary('libc.so.6')).toBe(cache.get('libc.so.6'));
    expect(resolveBinary('libc.so.6')).toMatch(/\/libc\.so\.6$/);
    // Without a cache: the standard directories.
    const dirs = ['/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib64', '/lib64'];
    expect(resolveBinary('libc.so.6', { ldSoCache: '/nonexistent', libraryDirs: dirs, path: '' })).toMatch(/\/libc\.so\.6$/);
    expect(resolveBinary('bash')).toMatch(/\/bash$/);
    expect(() => resolveBinary('libnope.so.9')).toThrow(/uprobe library libnope\.so\.9: not in \/etc\/ld\.so\.cache nor in /);
    expect(() => resolveBinary('/no/such/binary')).toThrow('uprobe binary /no/such/binary: no such file');
    expect(() => resolveBinary('/tmp\n/x')).toThrow(AttachError);
    expect(() => resolveBinary('no-such-program-here')).toThrow(/uprobe binary no-such-program-here: not found in PATH/);
  });
});

describe('uprobes against the kernel', () => {
  beforeAll(() => {
    buildUprobeTarget();
  });

  kernelTest('N calls → N uprobe hits with the arguments, N uretprobe hits with the return values (PMU, BPF link)', () => {
    const obj = openObject(join(SAMPLES_DIR, 'uprobe_kern.o'));
    try {
      const entry = obj.attachUprobe('on_target_add', { binary: UPROBE_TARGET, symbol: 'target_add' });
      const exit = obj.attachUprobe('on_target_add_return', { binary: UPROBE_TARGET, symbol: 'target_add', retprobe: true });
      expect(entry.target).toBe(`uprobe ${UPROBE_TARGET}:target_add`);
      expect(exit.target).toBe(`uretprobe ${UPROBE_TARGET}:target_add`);
      const N = 50;
      const run = runUprobeTarget(N);
      expect(run.sum).toBe((N * (N + 1)) / 2);
      expect(obj.variable('entries').get()).toBe(N);
      expect(obj.variable('returns').get()).toBe(N);
      const events = drain(obj).filter((e) => e.pid === run.pid);
      expect(events.filter((e) => e.is_return === 0).map((e) => [e.a, e.b])).toEqual(Array.from({ length: N }, (_, i) => [i, 1]));
      expect(events.filter((e) => e.is_return === 1).map((e) => e.ret)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      // Attached through BPF links (perf links): the kernel lists them for our programs.
      expect(linksOfPrograms(obj.programs.map((p) => p.id))).toHaveLength(2);
    } finally {
      obj.close();
    }
  });

  kernelTest('a bare library name and a pid: labs in libc.so.6, only this process → exactly N hits', () => {
    const obj = openObject(join(SAMPLES_DIR, 'uprobe_kern.o'));
    const everyone = openObject(join(SAMPLES_DIR, 'uprobe_kern.o'));
    try {
      const link = obj.attachUprobe('on_target_add', { binary: 'libc.so.6', symbol: 'labs', pid: process.pid });
      expect(link.target).toBe(`uprobe ${resolveBinary('libc.so.6')}:labs pid ${process.pid}`);
      everyone.attachUprobe('on_target_add', { binary: 'libc.so.6', symbol: 'labs' });
      const N = 20;
      for (let i = 0; i < N; i++) expect(labs(-i)).toBe(i);
      // Another process calls labs 50 times meanwhile: the probe without a pid sees those calls, ours does not.
      const other = spawnSync(process.execPath, ['-e', "const f = require('koffi').load('libc.so.6').func('long labs(long)'); for (let i = 0; i < 50; i++) f(-i);"],
        { cwd: PROJECT_ROOT, encoding: 'utf8' });
      expect(other.status, other.stderr).toBe(0);
      expect(obj.variable('entries').get()).toBe(N);
      expect(everyone.variable('entries').get()).toBeGreaterThanOrEqual(N + 50);
    } finally {
      everyone.close();
      obj.close();
    }
  });

  kernelTest('uprobe_events fallback (no PMU): our event is added, hit N times, and removed; others\' events stay', () => {
    const before = uprobeEvents();
    const obj = openObject(join(SAMPLES_DIR, 'uprobe_kern.o'));
    try {
      // The environment parameter is the seam for kernel facts: a PMU directory that does not exist forces
      // uprobe_events; the events file, the event and the kernel are real.
      const link = attachUprobe(obj.program('on_target_add'), { binary: UPROBE_TARGET, symbol: 'target_add' }, {}, { pmuDir: '/nonexistent/uprobe-pmu' });
      try {
        const ours = uprobeEvents().split('\n').filter((l) => l.startsWith('p:bpf_load_u/'));
        expect(ours).toHaveLength(1);
        expect(ours[0]).toMatch(new RegExp(`^p:bpf_load_u/p_uprobe_target_target_add_${process.pid}_\\d+ ${UPROBE_TARGET}:0x[0-9a-f]+$`));
        runUprobeTarget(7);
        expect(obj.variable('entries').get()).toBe(7);
      } finally {
        link.detach();
      }
      expect(uprobeEvents()).toBe(before);
    } finally {
      obj.close();
    }
    expect(uprobeEvents()).toBe(before);
  });

  kernelTest('bad input: missing binary, missing symbol, stripped binary, a path with a newline → AttachError; nothing written', () => {
    const before = uprobeEvents();
    const obj = openObject(join(SAMPLES_DIR, 'uprobe_kern.o'));
    try {
      const attach = (binary: string, symbol: string) => () => obj.attachUprobe('on_target_add', { binary, symbol });
      expect(attach('/no/such/file', 'main')).toThrow('uprobe binary /no/such/file: no such file');
      expect(attach(UPROBE_TARGET, 'no_such_function')).toThrow(`${UPROBE_TARGET}: no function named "no_such_function" in .symtab or .dynsym`);
      expect(attach('/bin/bash', 'no_such_function')).toThrow('/bin/bash: no function named "no_such_function": the file is stripped (no .symtab) and .dynsym does not export it');
      expect(attach('/tmp/x\np:evil/evil /bin/sh:0', 'main')).toThrow(AttachError);
      expect(attach('/tmp/x\np:evil/evil /bin/sh:0', 'main')).toThrow(/uprobe binary ".*": empty or contains control characters/);
      expect(attach(UPROBE_TARGET, 'target_add\n')).toThrow(/control characters/);
      expect(() => obj.attachUprobe('on_target_add', { binary: UPROBE_TARGET, symbol: 'target_add', pid: 0 })).toThrow('uprobe: pid 0 (a process id, or -1 for every process)');
    } finally {
      obj.close();
    }
    expect(uprobeEvents()).toBe(before);
  });
});

describe('the uprobe samples through the CLI', () => {
  beforeAll(() => {
    buildUprobeTarget();
  });

  kernelTest('uprobe_kern.o: the target\'s calls and returns as JSON records; SIGINT detaches', async () => {
    const cli = new CliProcess(['c-samples/uprobe_kern.o', '--json', '--interval', '0.5']);
    try {
      const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"')));
      expect(report.programs.map((p: { attached: boolean; target: string }) => [p.attached, p.target])).toEqual([
        [true, `uprobe ${UPROBE_TARGET}:target_add`], [true, `uretprobe ${UPROBE_TARGET}:target_add`],
      ]);
      const run = runUprobeTarget(5);
      const ours = (l: string) => l.startsWith('{"event"') && JSON.parse(l).value.pid === run.pid;
      await cli.waitForLine(() => cli.lines.filter(ours).length >= 10);
      const values = cli.lines.filter(ours).map((l) => JSON.parse(l).value as CallEvent);
      expect(values.filter((v) => v.is_return === 1).map((v) => v.ret)).toEqual([1, 2, 3, 4, 5]);
      cli.kill('SIGINT');
      expect((await cli.exited).code).toBe(0);
      expect(eventually(() => report.programs.every((p: { id: number }) => !programExists(p.id)))).toBe(true);
    } finally {
      cli.kill('SIGKILL');
    }
  });

  const script = ['/usr/bin/script', '/bin/script'].find(isExecutable);
  kernelTest('bashreadline: a line typed into an interactive bash (through a pty) is printed', async () => {
    if (script === undefined) throw new Error('script (bsdutils) is missing: it provides the pty for the interactive bash');
    const cli = new CliProcess(['c-samples/bashreadline_kern.o', '--json', '--interval', '0.5']);
    try {
      await cli.waitForLine((l) => l.startsWith('{"file"'));
      const marker = `echo bpf-load-${process.pid}-${Date.now()}`;
      // `script` gives bash a pty, so bash is interactive and reads lines with readline().
      const bash = spawn(script, ['-q', '-c', 'bash --norc --noprofile -i', '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, TERM: 'dumb' } });
      bash.stdin.write(`${marker}\nexit\n`);
      const line = await cli.waitForLine((l) => l.includes(marker), 10_000);
      expect(JSON.parse(line)).toMatchObject({ event: 'lines', cpu: null, value: { comm: 'bash', line: marker } });
      await new Promise((r) => bash.on('exit', r));
      cli.kill('SIGINT');
      expect((await cli.exited).code).toBe(0);
    } finally {
      cli.kill('SIGKILL');
    }
  });
});
