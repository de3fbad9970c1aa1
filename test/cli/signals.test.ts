import { spawn, spawnSync } from 'node:child_process'; // our CLI and bpftool (the foreign attacher), argument arrays: no shell
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect } from 'vitest';
import { loadObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { programSections } from '../../bench/crafted.mjs';
import { CLI, CliProcess, requireBuiltCli } from '../helpers/cli.js';
import { kernelTest, PROJECT_ROOT, SAMPLES_DIR } from '../helpers/kernel.js';
import { programsStillLoaded, xdpProgramOn } from '../helpers/leftovers.js';

const dir = mkdtempSync(join(tmpdir(), 'bpf-load-signals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with its stdout read by `reader`, which may close it early, as `| head` does. */
function runPiped(args: readonly string[], reader: (stdout: NodeJS.ReadableStream, close: () => void) => void) {
  requireBuiltCli();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  reader(child.stdout, () => child.stdout.destroy());
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

describe('a closed stdout ends the run cleanly (EPIPE)', () => {
  kernelTest('a 96-program load report into a pipe closed before it is written: exit 0, no stack trace', async () => {
    const path = join(dir, 'many.o');
    writeFileSync(path, programSections(96));
    const r = await runPiped(['--no-attach', '--count', '0', path], (_stdout, close) => close());
    expect(r.stderr).not.toMatch(/\n\s+at |Error/);
    expect([r.code, r.signal]).toEqual([0, null]);
  }, 60_000);

  kernelTest('the live view: the reader goes after the report, the run detaches everything and exits 0', async () => {
    let report = '';
    const r = await runPiped(['--json', '--interval', '0.05', join(SAMPLES_DIR, 'sockex1_kern.o')], (stdout, close) => {
      stdout.setEncoding('utf8');
      stdout.on('data', (chunk: string) => {
        if (report !== '') return;
        report = chunk.split('\n')[0]!;
        close();
      });
    });
    expect(r.stderr).not.toMatch(/\n\s+at |Error/);
    expect([r.code, r.signal]).toEqual([0, null]);
    const ids = (JSON.parse(report) as { programs: Array<{ id: number; attached: boolean }> }).programs.map((p) => p.id);
    expect(ids).toHaveLength(1);
    expect(await programsStillLoaded(ids)).toEqual([]);
  }, 60_000);
});

function bpftool(...args: string[]): void {
  const r = spawnSync('bpftool', args, { encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr}`);
}

describe('two quick signals', () => {
  // The second SIGINT used to land after the handlers were removed but before close: the default action killed the
  // process with its netlink-attached XDP program still on lo.
  kernelTest('--force over a foreign netlink XDP program: SIGINT twice, 0-10 ms apart, leaves nothing of ours and puts theirs back', async () => {
    const foreign = loadObject(parseObject(new Uint8Array(readFileSync(join(SAMPLES_DIR, 'xdp1_kern.o')))));
    const foreignId = foreign.program('xdp_prog1').id;
    try {
      for (const gap of [0, 2, 5, 10]) {
        bpftool('net', 'attach', 'xdpgeneric', 'id', String(foreignId), 'dev', 'lo', 'overwrite');
        const cli = new CliProcess(['--json', '--force', '--interval', '0.05', 'c-samples/xdp1_kern.o']);
        const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"'))) as { programs: Array<{ id: number; attached: boolean }> };
        const ours = report.programs[0]!;
        expect(ours.attached, cli.stderr).toBe(true);
        expect(xdpProgramOn('lo')).toBe(ours.id);
        cli.kill('SIGINT');
        if (gap > 0) await sleep(gap);
        cli.kill('SIGINT');
        const exit = await cli.exited;
        expect(exit.signal, `gap ${gap} ms: killed by a signal, not exited`).toBeNull();
        expect(cli.stderr).not.toMatch(/\n\s+at /);
        expect(xdpProgramOn('lo'), `gap ${gap} ms`).toBe(foreignId);
        expect(await programsStillLoaded([ours.id])).toEqual([]);
      }
    } finally {
      if (xdpProgramOn('lo') === foreignId) bpftool('net', 'detach', 'xdpgeneric', 'dev', 'lo');
      foreign.close();
    }
  }, 120_000);
});
