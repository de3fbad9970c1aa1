import { spawnSync } from 'node:child_process'; // runs ping (argument array, no shell) to send traffic over lo
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { closeFd, mapLookupElem, objGet, possibleCpuCount } from '../../src/sys/index.js';
import { runCli } from '../helpers/cli.js';
import { eventually, kernelTest } from '../helpers/kernel.js';
import { linksOfPrograms, programExists, xdpProgramOn } from '../helpers/leftovers.js';

/** A fresh directory name under /sys/fs/bpf that the CLI creates (and detach removes). */
function pinPath(): string {
  const parent = mkdtempSync(join('/sys/fs/bpf', `bpf-load-keep-${process.pid}-`));
  return join(parent, 'xdp1');
}

/** xdp1's per-CPU counter for an IP protocol, summed, read through the pinned map: an independent reader. */
function pinnedCount(mapPath: string, proto: number): bigint {
  const fd = objGet(mapPath);
  try {
    const cpus = possibleCpuCount();
    const value = Buffer.alloc(8 * cpus);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(proto);
    if (!mapLookupElem(fd, key, value)) return 0n;
    let sum = 0n;
    for (let cpu = 0; cpu < cpus; cpu++) sum += value.readBigInt64LE(cpu * 8);
    return sum;
  } finally {
    closeFd(fd);
  }
}

function ping(count: number): void {
  const r = spawnSync('ping', ['-c', String(count), '-i', '0.2', '-W', '1', '127.0.0.1'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error !== undefined) throw r.error;
  expect(r.status, r.stderr).toBe(0);
}

describe('--keep-attached and bpf-load detach', () => {
  kernelTest('xdp1 stays attached to lo and counts after the CLI exits; detach DIR removes every trace', () => {
    const dir = pinPath();
    let id: number | undefined;
    try {
      const run = runCli(['c-samples/xdp1_kern.o', '-i', 'lo', '--pin', dir, '--keep-attached', '--json']);
      expect(run.status, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout.trim().split('\n')[0]!) as { programs: Array<{ id: number; attached: boolean }>; pinned: string[] };
      id = report.programs[0]!.id;
      expect(report.programs[0]!.attached).toBe(true);
      expect(report.pinned.sort()).toEqual([join(dir, 'links', 'xdp_prog1'), join(dir, 'maps', 'rxcnt'), join(dir, 'xdp_prog1')]);

      // The process is gone; the kernel still runs the program on lo, and it counts.
      expect(xdpProgramOn('lo')).toBe(id);
      expect(linksOfPrograms([id]).map((l) => l.typeName)).toEqual(['xdp']);
      const before = pinnedCount(join(dir, 'maps', 'rxcnt'), 1);
      ping(3);
      expect(pinnedCount(join(dir, 'maps', 'rxcnt'), 1) - before).toBeGreaterThanOrEqual(3n);

      const detach = runCli(['detach', dir]);
      expect(detach.status, detach.stderr).toBe(0);
      expect(detach.stdout).toMatch(/^detached {2}xdp link of xdp_prog1 \(ifindex 1 \(xdp link id \d+\)\)$/m);
      expect(detach.stdout).toMatch(/^unpinned {2}program .*\/xdp_prog1$/m);
      expect(detach.stdout).toMatch(/^unpinned {2}map .*\/maps\/rxcnt$/m);
      expect(xdpProgramOn('lo')).toBeUndefined();
      expect(linksOfPrograms([id])).toEqual([]);
      expect(existsSync(dir)).toBe(false);
      expect(eventually(() => !programExists(id!))).toBe(true);
    } finally {
      if (existsSync(dir)) runCli(['detach', dir]);
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  kernelTest('an attachment that cannot outlive the process fails the run and leaves nothing behind', () => {
    const dir = pinPath();
    try {
      const run = runCli(['c-samples/sockex1_kern.o', '-i', 'lo', '--pin', dir, '--keep-attached']);
      expect(run.status).toBe(1);
      expect(run.stderr.trim()).toBe('bpf-load: socket attachment of bpf_prog1 (lo): not a BPF link, so it cannot stay attached after this process exits');
      // Refused before anything was pinned; the run's own cleanup detached and closed the rest.
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  kernelTest('detach refuses what is not a bpf-load pin directory and touches nothing', () => {
    const parent = mkdtempSync(join('/sys/fs/bpf', `bpf-load-keep-${process.pid}-`));
    try {
      const r = runCli(['detach', parent]);
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(`bpf-load: ${parent}: not a bpf-load pin directory (it has neither links/ nor maps/)`);
      expect(existsSync(parent)).toBe(true);
      const usage = runCli(['detach']);
      expect(usage.status).toBe(2);
      expect(usage.stderr).toMatch(/detach expects one pin directory, got 0/);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
