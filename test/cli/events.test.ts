import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { eventJson, eventText } from '../../src/cli/events.js';
import { CliProcess, runCli } from '../helpers/cli.js';
import { eventually, kernelTest } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';

/** glibc ≥ 2.25 does not cache getpid(): each call enters the kernel and fires sys_enter_getpid. */
const getpid = koffi.load('libc.so.6').func('int getpid(void)') as () => number;

describe('event lines', () => {
  it('text: one line per record, decoded or hex, the CPU for perf buffers; drops say so', () => {
    expect(eventText({ kind: 'record', map: 'events', cpu: null, data: Buffer.of(1, 2), value: { pid: 7, comm: 'sh' } }))
      .toBe('event events: {"pid":7,"comm":"sh"}');
    expect(eventText({ kind: 'record', map: 'packets', cpu: 1, data: Buffer.of(0xab, 0xcd) })).toBe('event packets cpu 1: abcd');
    expect(eventText({ kind: 'lost', map: 'packets', cpu: 0, lost: 12 })).toBe('event packets cpu 0: lost 12 record(s): the perf ring was full');
  });

  it('JSON: the issue\'s shapes', () => {
    expect(JSON.parse(eventJson({ kind: 'record', map: 'events', cpu: null, data: Buffer.of(1, 2), value: { pid: 7 } })))
      .toEqual({ event: 'events', cpu: null, data: '0102', value: { pid: 7 } });
    expect(JSON.parse(eventJson({ kind: 'record', map: 'packets', cpu: 1, data: Buffer.of(0xab) }))).toEqual({ event: 'packets', cpu: 1, data: 'ab' });
    expect(JSON.parse(eventJson({ kind: 'lost', map: 'packets', cpu: 0, lost: 3 }))).toEqual({ event: 'packets', cpu: 0, lost: 3 });
  });
});

describe('bpf-load FILE with ring buffers', () => {
  kernelTest('--json: N getpid() calls → N record lines of ours with counters 1..N; SIGINT detaches', async () => {
    const cli = new CliProcess(['c-samples/ringbuf_kern.o', '--json', '--interval', '0.5']);
    try {
      const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"')));
      const N = 10;
      for (let i = 0; i < N; i++) getpid();
      const isOurs = (l: string) => l.startsWith('{"event"') && JSON.parse(l).value?.pid === process.pid;
      await cli.waitForLine(() => cli.lines.filter(isOurs).length >= N);
      const ours = cli.lines.filter(isOurs).map((l) => JSON.parse(l));
      expect(ours.map((e) => e.value.count)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(ours[0]).toMatchObject({ event: 'events', cpu: null, data: expect.stringMatching(/^[0-9a-f]{64}$/) });
      cli.kill('SIGINT');
      expect((await cli.exited).code).toBe(0);
      expect(eventually(() => !programExists(report.programs[0].id))).toBe(true);
    } finally {
      cli.kill('SIGKILL');
    }
  });

  kernelTest('text: records appear as lines beside the rounds; --no-events turns them off', async () => {
    const cli = new CliProcess(['c-samples/ringbuf_kern.o', '--interval', '0.3']);
    try {
      await cli.waitForLine((l) => l.startsWith('streaming records from events'));
      getpid();
      await cli.waitForLine((l) => l.startsWith('event events: {') && l.includes(`"pid":${process.pid},`));
      cli.kill('SIGINT');
      expect((await cli.exited).code).toBe(0);
    } finally {
      cli.kill('SIGKILL');
    }
    const quiet = new CliProcess(['c-samples/ringbuf_kern.o', '--no-events', '--json', '--interval', '0.2', '--count', '3']);
    await quiet.waitForLine((l) => l.startsWith('{"file"'));
    for (let i = 0; i < 5; i++) getpid();
    expect((await quiet.exited).code).toBe(0);
    expect(quiet.lines.filter((l) => l.startsWith('{"round"'))).toHaveLength(3);
    expect(quiet.lines.filter((l) => l.includes('"event"'))).toEqual([]);
  });

  kernelTest('--event-type that the BTF lacks: exit 1, one line, before anything is attached or reported', () => {
    const r = runCli(['c-samples/ringbuf_kern.o', '--event-type', 'nope', '--count', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("bpf-load: map events: no struct, union or typedef named nope in the object's BTF");
    expect(r.stdout).toBe('');
  });

  kernelTest('the load report says how the loader sized perf event arrays', () => {
    const r = runCli(['c-samples/perfbuf_kern.o', '--count', '0', '--no-attach']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/map {7}packets \(perf_event_array, id \d+, key 4 B, value 4 B, max \d+: declared 0, one slot per possible CPU\)/);
  });
});

describe('bpf-load FILE --test-run PROGRAM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpf-load-testrun-'));
  const packet = join(dir, 'frame.bin');
  writeFileSync(packet, Buffer.concat([Buffer.from('0200000000010200000000020800', 'hex'), Buffer.from('hello')]));

  kernelTest('--json: retval, action, duration and the rewritten frame; exit 0', () => {
    const r = runCli(['c-samples/test_run_kern.o', '--test-run', 'xdp_swap', '--data-in', packet, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      program: 'xdp_swap', type: 'xdp', retval: 3, action: 'XDP_TX', repeat: 1, durationNs: expect.any(Number),
      dataOut: `0200000000020200000000010800${Buffer.from('hello').toString('hex')}`,
    });
  });

  kernelTest('text, with --repeat: the mean duration of N runs', () => {
    const r = runCli(['c-samples/test_run_kern.o', '--test-run', 'xdp_swap', '--repeat', '1001']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('test run of xdp_swap (xdp, section xdp)');
    expect(r.stdout).toContain('data in   64 zero bytes (no --data-in)');
    expect(r.stdout).toContain('retval    2 (XDP_PASS)');
    expect(r.stdout).toMatch(/duration {2}\d+ ns per run, mean of 1001 run\(s\)/);
  });

  kernelTest('a type the kernel cannot test-run, an unknown program, a missing --data-in file: exit 1, one line', () => {
    const cases: Array<[string[], string]> = [
      [['c-samples/ringbuf_kern.o', '--test-run', 'on_getpid'],
        'bpf-load: c-samples/ringbuf_kern.o: program on_getpid (tracepoint): test run: the kernel cannot test-run tracepoint programs (BPF_PROG_TEST_RUN: ENOTSUPP)'],
      [['c-samples/test_run_kern.o', '--test-run', 'nope'],
        'bpf-load: c-samples/test_run_kern.o: no loaded program named nope (programs: xdp_swap, xdp_ring, xdp_perf)'],
      [['c-samples/test_run_kern.o', '--test-run', 'xdp_swap', '--data-in', join(dir, 'absent.bin')], `bpf-load: ${join(dir, 'absent.bin')}: no such file`],
    ];
    for (const [args, message] of cases) {
      const r = runCli(args);
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(message);
      expect(r.stdout).toBe('');
    }
  });

  it('--data-in or --repeat without --test-run is a usage error', () => {
    const r = runCli(['c-samples/test_run_kern.o', '--repeat', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--repeat does not apply to loading a FILE (only to --test-run)');
  });

  it('cleans up its temp dir', () => {
    rmSync(dir, { recursive: true });
  });
});
