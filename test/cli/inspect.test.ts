import { spawnSync } from 'node:child_process'; // spawns bpftool (the oracle) and our CLI with argument arrays: no shell
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helperCallName } from '../../src/load/index.js';
import { CLI, CliProcess, runCli } from '../helpers/cli.js';
import { eventually, isExecutable, kernelTest, PROJECT_ROOT } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';

const BPFTOOL = ['/usr/sbin/bpftool', '/usr/bin/bpftool', '/sbin/bpftool'].find(isExecutable);

function bpftool(args: readonly string[]): unknown {
  if (BPFTOOL === undefined) throw new Error('bpftool is required as the oracle of the inspection verbs (apt-get install bpftool)');
  const r = spawnSync(BPFTOOL, ['-j', ...args], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status, `bpftool ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

function ours(args: readonly string[]): unknown {
  const r = runCli([...args, '--json']);
  expect(r.status, `bpf-load ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

/** Loads `object` pinned under a fresh bpffs directory (no attach), runs `body`, then unpins (which frees it all). */
function withPinned(object: string, body: (dir: string, report: { programs: Array<{ name: string; id: number }> }) => void): void {
  const dir = mkdtempSync(join('/sys/fs/bpf', 'bpf-load-inspect-'));
  try {
    const r = runCli([`c-samples/${object}`, '--count', '0', '--no-attach', '--json', '--pin', dir]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n')[0]!);
    body(dir, report);
    rmSync(dir, { recursive: true });
    for (const p of report.programs) expect(eventually(() => !programExists(p.id)), p.name).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bpftool -j prints bytes as ["0x2a", …]: little-endian number. */
function bytesValue(hex: readonly string[]): number {
  return hex.reduceRight((n, b) => n * 256 + Number(b), 0);
}

describe('inspection verbs agree with bpftool', () => {
  kernelTest('prog list: every program of ours with bpftool\'s id, type, name, tag, map ids and load time', () => {
    withPinned('sockex3_kern.btf.o', (_dir, report) => {
      const listed = ours(['prog', 'list']) as Array<{ id: number; type: string; name: string; tag: string; mapIds: number[]; loadedAt: string }>;
      const oracle = bpftool(['prog', 'show']) as Array<{ id: number; type: string; name: string; tag: string; map_ids?: number[]; loaded_at: number }>;
      for (const p of report.programs) {
        const mine = listed.find((l) => l.id === p.id)!;
        const theirs = oracle.find((o) => o.id === p.id)!;
        expect(mine, p.name).toBeDefined();
        expect(mine).toMatchObject({ type: theirs.type, name: theirs.name, tag: theirs.tag, mapIds: theirs.map_ids ?? [] });
        expect(Math.abs(Date.parse(mine.loadedAt) / 1000 - theirs.loaded_at)).toBeLessThan(2);
      }
      const text = runCli(['prog', 'list']);
      expect(text.status).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`\\n\\s+${report.programs[0]!.id}\\s+socket_filter\\s+${report.programs[0]!.name}\\s+[0-9a-f]{16}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`));
    });
  });

  kernelTest('prog dump ID|PINNED: bpftool\'s translated instructions, map names for ids, helper names, source lines', () => {
    withPinned('sockex3_kern.btf.o', (dir, report) => {
      for (const p of report.programs) {
        const mine = ours(['prog', 'dump', String(p.id)]) as { name: string; maps: Array<{ id: number; name: string }>; insns: Array<{ index: number; text: string; source?: { text: string } }> };
        const theirs = bpftool(['prog', 'dump', 'xlated', 'id', String(p.id)]) as Array<{ disasm: string; src?: string }>;
        expect(mine.name).toBe(p.name);
        // bpftool lists one entry per instruction, ld_imm64 included once: the same count as ours.
        expect(mine.insns).toHaveLength(theirs.length);
        for (let i = 0; i < theirs.length; i++) {
          const t = theirs[i]!.disasm;
          const m = mine.insns[i]!;
          const call = /\bcall ([A-Za-z_][\w]*)#/.exec(t);
          if (call !== null) expect(m.text, `insn ${m.index}`).toMatch(new RegExp(`^call ${call[1]}\\b`));
          const map = /map\[id:(\d+)\]/.exec(t);
          if (map !== null) expect(m.text).toContain(`map[${mine.maps.find((x) => x.id === Number(map[1]))!.name}]`);
          expect(m.source?.text, `insn ${m.index}`).toBe(theirs[i]!.src?.trim());
        }
      }
      // By pin, the same program.
      const byPin = ours(['prog', 'dump', join(dir, 'dispatch')]) as { name: string };
      expect(byPin.name).toBe('dispatch');
    });
  });

  kernelTest('map dump: bpftool\'s entries for a legacy array, a BTF hash and a per-CPU array (written by bpftool)', () => {
    withPinned('sockex1_kern.o', (dir) => {
      const pin = join(dir, 'maps', 'my_map');
      bpftool(['map', 'update', 'pinned', pin, 'key', '6', '0', '0', '0', 'value', '0xd2', '0x04', '0', '0', '0', '0', '0', '0']);
      const mine = ours(['map', 'dump', pin]) as Array<{ key: number; value: number }>;
      const theirs = bpftool(['map', 'dump', 'pinned', pin]) as Array<{ key: string[]; value: string[] }>;
      expect(mine).toEqual(theirs.map((e) => ({ key: bytesValue(e.key), value: bytesValue(e.value) })));
      expect(mine.find((e) => e.key === 6)?.value).toBe(1234);
    });
    withPinned('sockex1_modern_kern.o', (dir) => {
      const pin = join(dir, 'maps', 'my_map');
      const id = (bpftool(['map', 'show', 'pinned', pin]) as { id: number }).id;
      bpftool(['map', 'update', 'id', String(id), 'key', '17', '0', '0', '0', 'value', '7', '0', '0', '0', '0', '0', '0', '0']);
      const mine = ours(['map', 'dump', String(id)]) as Array<{ key: unknown; value: unknown }>;
      const theirs = bpftool(['map', 'dump', 'id', String(id)]) as Array<{ formatted?: { key: unknown; value: unknown }; key: string[]; value: string[] }>;
      expect(theirs[0]?.formatted, 'bpftool decodes this map through BTF').toBeDefined();
      expect(mine).toEqual(theirs.map((e) => e.formatted));
    });
    withPinned('xdp1_kern.o', (dir) => {
      const pin = join(dir, 'maps', 'rxcnt');
      bpftool(['map', 'update', 'pinned', pin, 'key', '17', '0', '0', '0', 'value', '5', '0', '0', '0', '0', '0', '0', '0']);
      const mine = ours(['map', 'dump', pin]) as Array<{ key: number; value: number[] }>;
      const theirs = bpftool(['map', 'dump', 'pinned', pin]) as Array<{ key: string[]; values: Array<{ cpu: number; value: string[] }> }>;
      expect(mine).toEqual(theirs.map((e) => ({ key: bytesValue(e.key), value: e.values.map((v) => bytesValue(v.value)) })));
      expect(mine.find((e) => e.key === 17)?.value.every((v) => v === 5)).toBe(true);
    });
  });

  kernelTest('link list: a running raw tracepoint link, as bpftool shows it', async () => {
    const cli = new CliProcess(['c-samples/raw_tp_kern.o', '--json', '--interval', '0.2']);
    try {
      const report = JSON.parse(await cli.waitForLine((l) => l.startsWith('{"file"'))) as { programs: Array<{ id: number; target: string }> };
      const progId = report.programs[0]!.id;
      const mine = (ours(['link', 'list']) as Array<{ id: number; type: string; progId: number; target: string }>).filter((l) => l.progId === progId);
      const theirs = (bpftool(['link', 'show']) as Array<{ id: number; type: string; prog_id: number; tp_name?: string }>).filter((l) => l.prog_id === progId);
      expect(mine).toHaveLength(1);
      expect(mine.map((l) => [l.id, l.type, l.target])).toEqual(theirs.map((l) => [l.id, l.type, l.tp_name]));
      expect(mine[0]!.target).toBe(report.programs[0]!.target);
      const listed = ours(['prog', 'list']) as Array<{ id: number; attachedAt: string[] }>;
      expect(listed.find((p) => p.id === progId)?.attachedAt).toEqual([`raw_tracepoint ${mine[0]!.target}`]);
    } finally {
      cli.kill('SIGINT');
    }
    expect((await cli.exited).code, cli.stderr).toBe(0);
  }, 30_000);

  kernelTest('a missing id or pin is one line naming it, exit 1', () => {
    const r = runCli(['prog', 'dump', '4000000000']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('bpf-load: program id 4000000000: no such program\n');
    const pin = runCli(['map', 'dump', '/sys/fs/bpf/bpf-load-no-such-pin']);
    expect(pin.status).toBe(1);
    expect(pin.stderr).toBe('bpf-load: /sys/fs/bpf/bpf-load-no-such-pin: no such pin\n');
  });
});

describe('verbs and files', () => {
  it('a file named like a verb is reached as ./prog; bare `prog` is the verb', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpf-load-verb-'));
    try {
      copyFileSync(join(PROJECT_ROOT, 'c-samples', 'sockex1_kern.o'), join(dir, 'prog'));
      const dump = spawnSync(process.execPath, [CLI, '--dump', './prog'], { cwd: dir, encoding: 'utf8' });
      expect(dump.status, dump.stderr).toBe(0);
      expect(dump.stdout).toContain('bpf_prog1');
      const verb = spawnSync(process.execPath, [CLI, '--dump', 'prog'], { cwd: dir, encoding: 'utf8' });
      expect(verb.status).toBe(2);
      expect(verb.stderr).toMatch(/^bpf-load: --dump does not apply to bpf-load prog \(only to --dump, --filter\); a file named prog is \.\/prog\n/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('verb usage errors name the verb', () => {
    expect(runCli(['prog', 'frob']).stderr).toMatch(/^bpf-load: prog frob: unknown action \(list or dump\)\n/);
    expect(runCli(['map', 'dump']).stderr).toMatch(/^bpf-load: map dump: expects an id or a pinned path\n/);
    expect(runCli(['link', 'list', '--iface', 'lo']).status).toBe(2);
  });

  it('helper calls are named as bpftool names them', () => {
    expect(helperCallName(1)).toBe('bpf_map_lookup_elem#1');
    expect(helperCallName(12)).toBe('bpf_tail_call#12');
    expect(helperCallName(123456, (imm) => (imm === 123456 ? 'bpf_ktime_get_ns' : undefined))).toBe('bpf_ktime_get_ns#5');
    expect(helperCallName(123456, () => '__htab_map_lookup_elem')).toBe('__htab_map_lookup_elem');
    expect(helperCallName(-99)).toBe('-99');
  });
});
