import { spawnSync } from 'node:child_process'; // `ip` creates the test's veth pair and `tc` is the oracle: argument arrays, no shell
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { attachProgram, type Link } from '../../src/attach/index.js';
import { classicFilters } from '../../src/attach/tc-classic.js';
import { loadObject, type LoadedObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { ifNameToIndex } from '../../src/sys/index.js';
import { CliProcess } from '../helpers/cli.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';
import { udpToSelf } from '../helpers/traffic.js';

/** Pins of this test file (cls_ingress's maps are pinned the iproute2 way), removed at the end. */
const pinRoot = mkdtempSync(join('/sys/fs/bpf', `bpf-load-tc-classic-${process.pid}-`));
afterAll(() => rmSync(pinRoot, { recursive: true, force: true }));

/** iproute2_kern.o as `tc` loads it: sched_cls; only the programs asked for. */
function loadClassifier(programs: string[]): LoadedObject {
  const spec = parseObject(readFileSync(join(SAMPLES_DIR, 'iproute2_kern.o')), { name: 'iproute2_kern.o', programTypes: { default: 'sched_cls' } });
  return loadObject(spec, { programs, pinRoot });
}

function tc(...args: string[]): string {
  const r = spawnSync('tc', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

describe('classic tc: clsact + cls_bpf in direct-action mode', () => {
  kernelTest('on lo: the filter shows in `tc filter show`, counts our datagrams, and is gone after detach', async () => {
    const before = openFdCount();
    const o = loadClassifier(['cls_ingress']);
    let link: Link | undefined;
    try {
      const program = o.program('cls_ingress');
      link = attachProgram(o, program, { iface: 'lo', tcMode: 'classic' });
      expect(link.target).toBe('lo (ingress, classic tc)');
      expect(tc('filter', 'show', 'dev', 'lo', 'ingress')).toMatch(
        new RegExp(`bpf-load:${process.pid}:cls_ingress direct-action .*id ${program.id} name cls_ingress tag ${program.tag}`));

      const counts = o.map('counts');
      const start = counts.get(0)!.readBigUInt64LE(0);
      await udpToSelf(10);
      expect(counts.get(0)!.readBigUInt64LE(0) - start).toBeGreaterThanOrEqual(10n);

      link.detach();
      expect(tc('filter', 'show', 'dev', 'lo', 'ingress')).not.toContain(`bpf-load:${process.pid}:`);
      expect(classicFilters(ifNameToIndex('lo'), 'lo', 'ingress').filter((f) => f.programId === program.id)).toEqual([]);
      // Classic filters are not BPF links: nothing of ours is left in the kernel's link list either.
      expect(linksOfPrograms([program.id])).toEqual([]);
    } finally {
      link?.detach(); // a failed assertion must not leave our filter on the shared lo
      o.close();
    }
    expect(openFdCount()).toBe(before);
  }, 20_000);

  kernelTest('qdisc: removed only when we created it and it is empty; a SIGKILLed run\'s filter is removed by the next run', async () => {
    const name = `bl9-${process.pid % 100000}`;
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    try {
      ip('link', 'set', name, 'up');
      const o = loadClassifier(['cls_egress']);
      try {
        // We create the clsact qdisc, so the last of our filters takes it away.
        const first = attachProgram(o, o.program('cls_egress'), { iface: name, tcMode: 'classic' });
        expect(tc('qdisc', 'show', 'dev', name)).toContain('qdisc clsact ffff:');
        first.detach();
        expect(tc('qdisc', 'show', 'dev', name)).not.toContain('clsact');

        // A clsact someone else made stays, with their filter on it.
        tc('qdisc', 'add', 'dev', name, 'clsact');
        // (a classic BPF "accept all": this kernel has cls_bpf, not matchall or u32)
        tc('filter', 'add', 'dev', name, 'egress', 'protocol', 'all', 'pref', '7', 'bpf', 'bytecode', '1,6 0 0 4294967295,');
        const second = attachProgram(o, o.program('cls_egress'), { iface: name, tcMode: 'classic' });
        second.detach();
        expect(tc('qdisc', 'show', 'dev', name)).toContain('qdisc clsact ffff:');
        expect(tc('filter', 'show', 'dev', name, 'egress')).toContain("bytecode '1,6 0 0 4294967295'");
        expect(tc('filter', 'show', 'dev', name, 'ingress')).toBe('');
        tc('qdisc', 'del', 'dev', name, 'clsact');

        // SIGKILL: the one case nothing can undo at once. The filter stays, named with the dead pid...
        const cli = new CliProcess(['--tc-mode', 'classic', '-i', name, '--type', 'sched_cls', '--program', 'cls_egress', '--pin-root', pinRoot, 'c-samples/iproute2_kern.o']);
        await cli.waitForLine((l) => l.includes('→ tc'));
        cli.kill('SIGKILL');
        expect((await cli.exited).signal).toBe('SIGKILL');
        expect(tc('filter', 'show', 'dev', name, 'ingress')).toContain(`bpf-load:${cli.pid}:cls_egress`);
        const staleId = classicFilters(ifNameToIndex(name), name, 'ingress').find((f) => f.name === `bpf-load:${cli.pid}:cls_egress`)!.programId;
        // ... and the next classic attach there removes it, saying so.
        const third = attachProgram(o, o.program('cls_egress'), { iface: name, tcMode: 'classic' });
        expect(third.target).toBe(`${name} (ingress, classic tc; removed stale bpf-load:${cli.pid}:cls_egress)`);
        expect(classicFilters(ifNameToIndex(name), name, 'ingress').map((f) => f.name)).toEqual([`bpf-load:${process.pid}:cls_egress`]);
        expect(eventually(() => !programExists(staleId)), 'the killed run\'s program is freed with its filter').toBe(true);
        third.detach();
        expect(classicFilters(ifNameToIndex(name), name, 'ingress')).toEqual([]);
      } finally {
        o.close();
      }
    } finally {
      ip('link', 'del', name);
    }
  }, 40_000);
});
