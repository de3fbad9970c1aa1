/**
 * Pinning the calling thread to one CPU, for the kernel tests (test/helpers/cpu.ts re-exports this) and bench row
 * (j). BPF_PROG_TEST_RUN runs a program on whichever CPU the calling thread is on, so per-CPU effects (a perf ring's
 * LOST record, which the kernel writes before that CPU's next sample; a record read from the cache of the CPU that
 * wrote it, or from the other one's) are only repeatable when the scheduler cannot move the thread between runs.
 */
import { spawnSync } from 'node:child_process'; // runs taskset with an argument array: no shell
import { readFileSync, readlinkSync } from 'node:fs';

/** The kernel's id of the thread running this JS (the main thread under vitest's forks pool, a worker's under threads). */
export const threadId = () => readlinkSync('/proc/thread-self').split('/').at(-1) ?? '';

/** The CPUs this thread may run on, as the kernel lists them ("0-1", "0,2-3"). */
function allowedCpuList() {
  const line = readFileSync('/proc/thread-self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
  if (line === undefined) throw new Error('/proc/thread-self/status has no Cpus_allowed_list');
  return line.slice(line.indexOf(':') + 1).trim();
}

function setThreadCpus(list) {
  // taskset -p takes a thread id: only this thread moves, and the kernel moves it before sched_setaffinity returns.
  const tid = threadId();
  const r = spawnSync('taskset', ['-pc', list, tid], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -pc ${list} ${tid}: ${r.error?.message ?? r.stderr.trim()}`);
  if (allowedCpuList() !== list) throw new Error(`taskset -pc ${list} ${tid}: the thread may still run on ${allowedCpuList()}`);
}

/**
 * Runs `body` with the calling thread pinned to one CPU (the first it may run on, or with `last` the last), then
 * gives back the CPUs it had. Processes it spawns meanwhile inherit the pinning.
 */
export function onOneCpu(body, { last = false } = {}) {
  const before = allowedCpuList();
  // "0-1", "0,2-3": the first number, or the last one.
  const cpu = Number.parseInt(last ? before.split(/[,-]/).at(-1) : before, 10);
  setThreadCpus(String(cpu));
  try {
    return body(cpu);
  } finally {
    setThreadCpus(before);
  }
}
