import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { cgroup2Root } from '../../src/attach/cgroup.js';
import { tracefsRoot } from '../../src/attach/tracefs.js';
import { CLI, CliProcess } from '../helpers/cli.js';
import { eventually, kernelTest, PROJECT_ROOT } from '../helpers/kernel.js';
import { cgroupAttachedIds, linksOfPrograms, programExists, xdpProgramOn } from '../helpers/leftovers.js';

interface ReportProgram { name: string; section: string; id: number; attached: boolean; kind?: string; target?: string; error?: string; skipped?: string }

/** Makes the getpid syscall happen: a fresh node process calls it while starting (Node caches process.pid after). */
function callGetpid(): number {
  return spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 }).pid;
}

/** Proves through the kernel that nothing of the run remains: programs, links, XDP on lo, cgroup attachments. */
function expectNothingLeft(programs: readonly ReportProgram[]): void {
  const ids = programs.map((p) => p.id);
  for (const p of programs) expect(eventually(() => !programExists(p.id)), `program ${p.name} (id ${p.id})`).toBe(true);
  expect(linksOfPrograms(ids)).toEqual([]);
  const onLo = xdpProgramOn('lo');
  expect(onLo === undefined || !ids.includes(onLo)).toBe(true);
  const root = cgroup2Root();
  for (const type of ['cgroup_inet_ingress', 'cgroup_inet_sock_create', 'cgroup_sock_ops'] as const) {
    expect(cgroupAttachedIds(root, type).filter((id) => ids.includes(id)), type).toEqual([]);
  }
  const kprobeEvents = '/sys/kernel/tracing/kprobe_events';
  try {
    expect(readFileSync(kprobeEvents, 'utf8')).not.toContain('bpf_load');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The exit-status rule: 1 when any program failed to attach (the others still ran until the signal), else 0. */
function expectedStatus(programs: readonly ReportProgram[]): number {
  return programs.some((p) => p.error !== undefined) ? 1 : 0;
}

describe('bpf-load FILE attaches by section and detaches on every exit', () => {
  kernelTest('--trace-pipe prints the tracepoint hello lines', async () => {
    const cli = new CliProcess(['c-samples/trace_hello_kern.o', '--trace-pipe', '--count', '3', '--interval', '0.5']);
    await cli.waitForLine((l) => l.includes('attached') && l.includes('trace_getpid'));
    // Only lines from children of this test count (the trace buffer may hold lines of earlier runs).
    const pids = new Set<number>();
    const poke = setInterval(() => pids.add(callGetpid()), 200);
    try {
      const line = await cli.waitForLine((l) => l.startsWith('trace: ') && [...pids].some((pid) => l.includes(`bpf-load hello pid ${pid}`)), 10_000);
      expect(line).toMatch(/bpf-load hello pid \d+/);
    } finally {
      clearInterval(poke);
    }
    expect((await cli.exited).code, cli.stderr).toBe(0);
  }, 30_000);

  kernelTest('--trace-pipe that cannot be read (another reader holds it): said on stderr, the run goes on, exit 1', () => {
    // trace_pipe takes one reader at a time: this process holds it open, so the CLI's open fails with EBUSY.
    const pipe = join(tracefsRoot(), 'trace_pipe');
    const held = openSync(pipe, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const r = spawnSync(process.execPath, [CLI, 'c-samples/trace_hello_kern.o', '--trace-pipe', '--count', '2', '--interval', '0.2'], { encoding: 'utf8', cwd: PROJECT_ROOT, timeout: 20_000 });
      expect(r.stderr.trim().split('\n')).toEqual([`bpf-load: trace_pipe: ${pipe}: cannot open (EBUSY)`]);
      expect(r.stdout).toContain('--- round 2 ');
      expect(r.status).toBe(1);
    } finally {
      closeSync(held);
    }
  }, 30_000);

  kernelTest('--trace-pipe --json: trace lines split into fields, no empty ones; constant string maps hidden unless --all-maps', async () => {
    const cli = new CliProcess(['c-samples/trace_hello_kern.o', '--trace-pipe', '--json', '--count', '2', '--interval', '0.7']);
    const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"')));
    expect(report.maps.map((m: { name: string }) => m.name)).toEqual(['.rodata.str1.1']);
    const pids = new Set<number>();
    const poke = setInterval(() => pids.add(callGetpid()), 100);
    try {
      const line = await cli.waitForLine((l) => {
        if (!l.startsWith('{"trace"')) return false;
        const t = JSON.parse(l).trace;
        return pids.has(t.pid);
      }, 10_000);
      const trace = JSON.parse(line).trace;
      expect(trace).toEqual({ task: 'node', pid: trace.pid, cpu: expect.any(Number), flags: expect.any(String), timestamp: expect.any(Number), message: `bpf-load hello pid ${trace.pid}` });
    } finally {
      clearInterval(poke);
    }
    expect((await cli.exited).code, cli.stderr).toBe(0);
    const traces = cli.lines.filter((l) => l.startsWith('{"trace"')).map((l) => JSON.parse(l).trace);
    expect(traces.every((t) => typeof t.message === 'string' && t.message.trim() !== '')).toBe(true);
    const rounds = cli.lines.filter((l) => l.startsWith('{"round"')).map((l) => JSON.parse(l));
    expect(rounds.map((r) => r.maps)).toEqual([{}, {}]);

    const all = spawnSync(process.execPath, [CLI, 'c-samples/trace_hello_kern.o', '--json', '--count', '1', '--interval', '0.1', '--all-maps'], { encoding: 'utf8', cwd: PROJECT_ROOT, timeout: 20_000 });
    expect(all.status, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout.trim().split('\n')[1]!).maps['.rodata.str1.1']).toEqual([{ key: 0, value: Buffer.from('bpf-load hello pid %d\n\0').toString('hex') }]);
  }, 30_000);

  kernelTest('the all-kinds object: every kind this kernel supports is attached, the kprobe says why it cannot be', async () => {
    const cli = new CliProcess(['c-samples/all_kinds_kern.o', '--json', '--interval', '0.3']);
    const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"'))) as { programs: ReportProgram[] };
    try {
      const byName = new Map(report.programs.map((p) => [p.name, p]));
      const attached = report.programs.filter((p) => p.attached).map((p) => p.kind).sort();
      expect(attached).toEqual(['cgroup', 'cgroup', 'cgroup', 'perf_event', 'raw_tracepoint', 'socket', 'sockmap', 'sockmap', 'sockmap', 'tracepoint', 'xdp']);
      expect(byName.get('all_kprobe')).toMatchObject({ attached: false, error: 'kprobe/do_nanosleep: this kernel has no kprobe support (no kprobe PMU, no kprobe_events)' });
      expect(byName.get('all_xdp')).toMatchObject({ kind: 'xdp', target: expect.stringContaining('lo') });
      expect(xdpProgramOn('lo')).toBe(byName.get('all_xdp')!.id);
      // The counters array has one slot per kind; the kinds that fire on their own (syscalls, CPU clock) move.
      callGetpid();
      await cli.waitForLine((l) => {
        if (!l.startsWith('{"round"')) return false;
        const counters = new Map((JSON.parse(l).maps.counters as Array<{ key: number }>).map((e) => [e.key, e]));
        return counters.has(1) && counters.has(2) && counters.has(4);
      }, 10_000);
    } finally {
      cli.kill('SIGINT');
    }
    expect((await cli.exited).code, cli.stderr).toBe(expectedStatus(report.programs));
    expect(cli.stderr).toContain('bpf-load: kprobe/do_nanosleep: this kernel has no kprobe support');
    expectNothingLeft(report.programs);
  }, 40_000);

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    kernelTest(`${signal} mid-run leaves nothing attached (all kinds)`, async () => {
      const cli = new CliProcess(['c-samples/all_kinds_kern.o', '--json', '--interval', '0.2']);
      const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"'))) as { programs: ReportProgram[] };
      await cli.waitForLine((l) => l.startsWith('{"round":1'));
      cli.kill(signal);
      expect((await cli.exited).code, cli.stderr).toBe(expectedStatus(report.programs));
      expectNothingLeft(report.programs);
    }, 30_000);
  }

  kernelTest('--skip and --no-attach leave programs loaded but unattached', async () => {
    const cli = new CliProcess(['c-samples/all_kinds_kern.o', '--json', '--count', '0', '--skip', 'xdp', '--skip', 'cgroup', '--skip', 'sockmap', '--skip', 'kprobe']);
    const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"'))) as { programs: ReportProgram[] };
    expect((await cli.exited).code, cli.stderr).toBe(0);
    const skipped = report.programs.filter((p) => p.skipped?.startsWith('--skip')).map((p) => p.name).sort();
    expect(skipped).toEqual(['all_cgroup_skb', 'all_cgroup_sock', 'all_kprobe', 'all_sk_msg', 'all_sk_skb_parser', 'all_sk_skb_verdict', 'all_sockops', 'all_xdp']);
    expectNothingLeft(report.programs);
  }, 30_000);
});
