import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttachError } from '../../src/attach/link.js';
import { DEBUGFS_TRACING, readTracePipe, tracefsRoot, tracepointId } from '../../src/attach/tracefs.js';
import { mountedFsType } from '../../src/sys/index.js';
import { kernelTest, openFdCount } from '../helpers/kernel.js';

let root = '';
let fdsBefore = 0;
beforeEach(() => {
  fdsBefore = openFdCount();
  root = mkdtempSync(join(tmpdir(), 'bpf-load-tracefs-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  expect(openFdCount()).toBe(fdsBefore);
});

/** Timers and threadpool fs requests alive now: what could keep the process running after the reader stopped. */
function pending(): { timers: number; fsRequests: number } {
  const active = process.getActiveResourcesInfo();
  return { timers: active.filter((r) => r === 'Timeout').length, fsRequests: active.filter((r) => r === 'FSReqCallback').length };
}

describe('tracefsRoot', () => {
  it('uses the directory it is given', () => {
    expect(tracefsRoot({ tracefs: root })).toBe(root);
  });

  kernelTest('finds (mounting it if needed) a tracefs with the syscall tracepoints', () => {
    const found = tracefsRoot();
    expect(found === DEBUGFS_TRACING || mountedFsType(found) === 'tracefs', `${found} is tracefs`).toBe(true);
    const id = tracepointId(found, 'syscalls', 'sys_enter_getpid');
    expect(id).toBe(Number(readFileSync(join(found, 'events/syscalls/sys_enter_getpid/id'), 'utf8')));
    expect(id).toBeGreaterThan(0);
  });
});

describe('tracepointId', () => {
  it('reads events/<category>/<name>/id', () => {
    mkdirSync(join(root, 'events', 'sched', 'sched_switch'), { recursive: true });
    writeFileSync(join(root, 'events', 'sched', 'sched_switch', 'id'), '317\n');
    expect(tracepointId(root, 'sched', 'sched_switch')).toBe(317);
  });

  it('names the path when the tracepoint is missing or its id is not a number', () => {
    const path = join(root, 'events', 'sched', 'nope', 'id');
    expect(() => tracepointId(root, 'sched', 'nope')).toThrow(new AttachError(`tracepoint sched/nope: ${path}: no such tracepoint`));
    mkdirSync(join(root, 'events', 'sched', 'odd'), { recursive: true });
    writeFileSync(join(root, 'events', 'sched', 'odd', 'id'), '12abc\n');
    expect(() => tracepointId(root, 'sched', 'odd')).toThrow(`${join(root, 'events/sched/odd/id')}: not a tracepoint id: "12abc\\n"`);
  });

  it('refuses names that would leave events/ or carry separators', () => {
    for (const [category, name] of [['..', 'x'], ['a', '../..'], ['a/b', 'c'], ['a', 'b c'], ['a', 'x\n']] as const) {
      expect(() => tracepointId(root, category, name)).toThrow(AttachError);
    }
  });
});

describe('readTracePipe', () => {
  function fakePipe(content: string): string {
    writeFileSync(join(root, 'trace_pipe'), content);
    return join(root, 'trace_pipe');
  }

  it('yields whole lines as they arrive, joining lines split across reads', async () => {
    const pipe = fakePipe('one\ntwo\npart');
    const controller = new AbortController();
    const lines = readTracePipe({ tracefs: root, signal: controller.signal });
    expect((await lines.next()).value).toBe('one');
    expect((await lines.next()).value).toBe('two');
    const later = lines.next();
    setTimeout(() => appendFileSync(pipe, 'ial\nthree\n'), 120);
    expect((await later).value).toBe('partial');
    expect((await lines.next()).value).toBe('three');
    controller.abort();
    expect(await lines.next()).toEqual({ done: true, value: undefined });
  });

  it('decodes UTF-8 characters that straddle two reads', async () => {
    const long = 'a'.repeat(64 * 1024 - 1);
    fakePipe(`${long}é\nnext\n`);
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const line of readTracePipe({ tracefs: root, signal: controller.signal })) {
      seen.push(line);
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toEqual([`${long}é`, 'next']);
  });

  it('an abort while waiting ends the iteration within 100 ms and leaves nothing pending', async () => {
    fakePipe('');
    const controller = new AbortController();
    const lines = readTracePipe({ tracefs: root, signal: controller.signal });
    const next = lines.next();
    await new Promise((resolve) => setTimeout(resolve, 180));
    // Waiting means one poll timer and no fs request in the threadpool (a blocking read there would never return).
    const waiting = pending();
    expect(waiting.fsRequests).toBe(0);
    const abortedAt = performance.now();
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(performance.now() - abortedAt).toBeLessThan(100);
    expect(pending()).toEqual({ timers: waiting.timers - 1, fsRequests: 0 });
  });

  it('an already aborted signal yields nothing and opens nothing; breaking out closes the pipe', async () => {
    fakePipe('x\ny\n');
    const aborted = AbortSignal.abort();
    const seen: string[] = [];
    for await (const line of readTracePipe({ tracefs: root, signal: aborted })) seen.push(line);
    expect(seen).toEqual([]);
    for await (const line of readTracePipe({ tracefs: root })) {
      seen.push(line);
      break;
    }
    expect(seen).toEqual(['x']);
    // afterEach checks that the fd was closed.
  });

  it('a missing trace_pipe is an AttachError naming it', async () => {
    const lines = readTracePipe({ tracefs: root });
    await expect(lines.next()).rejects.toThrow(new AttachError(`${join(root, 'trace_pipe')}: cannot open (ENOENT)`));
  });
});
