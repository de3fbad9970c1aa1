import { spawnSync } from 'node:child_process'; // spawns node children (getpid callers) with argument arrays: no shell
import { describe, expect, it } from 'vitest';
import { log2Histogram, renderRound } from '../../src/cli/watch.js';
import { CliProcess, runCli } from '../helpers/cli.js';
import { kernelTest } from '../helpers/kernel.js';

describe('histograms and rates, drawn', () => {
  it('a log2 histogram as libbpf-tools draws it: slot ranges, counts, bars scaled to the largest', () => {
    expect(log2Histogram(new Map([[0, 1], [2, 4], [3, 2]]))).toEqual([
      '    value : count    distribution',
      '   0 -> 1 : 1        |**********                              |',
      '   2 -> 3 : 0        |                                        |',
      '   4 -> 7 : 4        |****************************************|',
      '  8 -> 15 : 2        |********************                    |',
    ].map((l) => `  ${l}`));
    expect(log2Histogram(new Map())).toEqual(['    (empty)']);
  });

  it('--rate: the change per second beside each counter, nothing for values that are not numbers', () => {
    const before = [{ name: 'c', entries: [{ key: 1, value: 10 }, { key: 2, value: 'abc' }] }];
    const now = [{ name: 'c', entries: [{ key: 1, value: 35 }, { key: 2, value: 'abd' }, { key: 3, value: 4 }] }];
    const text = renderRound(2, now, undefined, { previous: before, seconds: 0.5 });
    expect(text).toContain('     1 → 35  (+50/s)');
    expect(text).toMatch(/ {5}2 → abd\n/);
    expect(text).toContain('     3 → 4  (+8/s)');
  });
});

describe('histograms from the kernel', () => {
  kernelTest('--hist MAP draws a slot-keyed map; a struct hist value is drawn by itself; --json keeps numbers', async () => {
    const cli = new CliProcess(['c-samples/hist_kern.o', '--hist', 'pid_slots', '--count', '2', '--interval', '1']);
    await cli.waitForLine((l) => l.includes('attached') && l.includes('count_pid'));
    const pids = Array.from({ length: 8 }, () => spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 }).pid!);
    expect((await cli.exited).code, cli.stderr).toBe(0);
    const text = cli.lines.join('\n');
    const lastRound = text.slice(text.lastIndexOf('--- round 2'));
    for (const pid of pids) {
      const slot = Math.floor(Math.log2(pid));
      const row = new RegExp(`^\\s+${2 ** slot} -> ${2 ** (slot + 1) - 1} : (\\d+)\\s+\\|\\**\\s*\\|$`, 'm');
      // Both maps: the hash drawn by request, the struct hist array by itself.
      const [slotsPart, histPart] = lastRound.split('pid_hist:');
      for (const part of [slotsPart!, histPart!]) {
        const count = Number(row.exec(part)?.[1]);
        expect(count, `slot ${slot} of pid ${pid}`).toBeGreaterThanOrEqual(pids.filter((p) => Math.floor(Math.log2(p)) === slot).length);
      }
    }
    // --json: processes started during the round fill the struct hist, which stays numbers.
    const json = new CliProcess(['c-samples/hist_kern.o', '--json', '--count', '1', '--interval', '1']);
    await json.waitForLine((l) => l.includes('"programs"'));
    for (let i = 0; i < 3; i++) spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 });
    expect((await json.exited).code, json.stderr).toBe(0);
    const round = JSON.parse(json.lines.find((l) => l.startsWith('{"round"'))!);
    expect(round.maps.pid_hist[0].value.slots).toHaveLength(26);
  }, 30_000);

  kernelTest('--hist names a map the object has; --rate and --hist are load flags', () => {
    const r = runCli(['c-samples/hist_kern.o', '--count', '0', '--hist', 'nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bpf-load: --hist nope: c-samples\/hist_kern\.o has no map of that name \(its maps: pid_slots, pid_hist\)\n/);
    expect(runCli(['--dump', '--rate', 'c-samples/hist_kern.o']).status).toBe(2);
  });
});
