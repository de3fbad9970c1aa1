import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { eventually, kernelTest } from '../helpers/kernel.js';
import { programExists } from '../helpers/leftovers.js';

interface Report {
  programs: Array<{ name: string; section: string; type: string; id: number; attached: boolean }>;
  skipped: Array<{ name: string; section: string; reason: string }>;
  maps: Array<{ name: string; maxEntries: number }>;
}

const reportOf = (stdout: string): Report => JSON.parse(stdout.split('\n')[0]!) as Report;

describe('bpf-load --type, --max-entries, --program, --keep-going', () => {
  it('--type with an unknown name is a usage error listing the accepted names', () => {
    const r = runCli(['--type', 'classifer', 'c-samples/iproute2_kern.o']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bpf-load: --type classifer: unknown program type "classifer" \(one of socket_filter, sched_cls, sched_act, xdp, .*, tc, classifier, action, .*, socket, sockops\)\nTry 'bpf-load --help'\.\n$/);
    expect(runCli(['--type', 'tc', '--type', 'xdp', 'c-samples/iproute2_kern.o']).stderr).toContain('--type xdp: the default type is already tc');
    expect(runCli(['--max-entries', 'm=0', 'c-samples/fixups_kern.o']).stderr).toContain('--max-entries m expects a whole number ≥ 1, not "0"');
    const mode = runCli(['--tc-mode', 'legacy', 'c-samples/iproute2_kern.o']);
    expect([mode.status, mode.stderr]).toEqual([2, 'bpf-load: --tc-mode must be auto, tcx or classic, not "legacy"\nTry \'bpf-load --help\'.\n']);
  });

  it('--dump --type shows the types loading would use, and iproute2 tail calls by map id', () => {
    const r = runCli(['--dump', '--type', 'sched_cls', '--type', 'egress_mark=tc/egress', 'c-samples/iproute2_kern.o']);
    expect(r.status, r.stderr).toBe(0);
    const programs = r.stdout.slice(r.stdout.indexOf('Programs (3):'), r.stdout.indexOf('Load notes'));
    expect(programs).toMatch(/ingress +cls_ingress +sched_cls \(--type\) +- +tc +18 +-/);
    expect(programs).toMatch(/1\/1 +tail_one +sched_cls \(--type\) +- +tc +47 +map id 1 slot 1/);
    expect(programs).toMatch(/egress_mark +cls_egress +sched_cls \(--type\) +tcx_egress +tc +4 +-/);
    expect(r.stdout).toContain('map inner_counts: stored into outer[1] (iproute2 inner_idx)');
    expect(r.stdout).toContain('program tail_one: goes into jmp_table[1] (iproute2 tail-call section)');
  });

  it('--dump --json never refuses for load-time policy: unknown pinning, max_entries 0, no program type are notes', () => {
    const r = runCli(['--dump', '--json', 'c-samples/loader_policy_kern.o']);
    expect(r.status, r.stderr).toBe(0);
    const dump = JSON.parse(r.stdout) as { maps: Array<{ name: string; pinning: string; notes: string[] }>; programs: Array<{ type: string; notes: string[] }> };
    expect(dump.maps.map((m) => [m.name, m.pinning, m.notes])).toEqual([
      ['per_cpu_later', 'none', ['max_entries 0: its own loader sets it at run time (--max-entries per_cpu_later=N)']],
      ['policy_map', 'unknown(16)', ['pinning 16 is no convention bpf-load knows: loading creates it unpinned']],
    ]);
    expect(dump.programs.map((p) => [p.type, p.notes])).toEqual([
      ['unspecified', ['section handle_ingress names no program type: loading skips it unless given one (--type)']],
    ]);
  });

  kernelTest('--max-entries sets what the object left at 0; without it the error names the map and the flag', () => {
    const bad = runCli(['--count', '0', '--type', 'tc', '--no-attach', 'c-samples/loader_policy_kern.o']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n').at(-1)).toBe(
      'bpf-load: c-samples/loader_policy_kern.o: map per_cpu_later: max_entries is 0, which the object\'s own loader sets at run time: set it (CLI --max-entries per_cpu_later=N, library fixupMap)');
    const r = runCli(['--count', '0', '--json', '--type', 'tc', '--no-attach', '--max-entries', 'per_cpu_later=4', 'c-samples/loader_policy_kern.o']);
    expect(r.status, r.stderr).toBe(0);
    const report = reportOf(r.stdout);
    expect(report.programs.map((p) => [p.name, p.type])).toEqual([['handle', 'sched_cls']]);
    expect(report.maps.map((m) => [m.name, m.maxEntries])).toEqual([['per_cpu_later', 4], ['policy_map', 16]]);
    expect(r.stderr).toContain('map policy_map: pinning 16 is no convention bpf-load knows (0 none, 1 by name); the map is created unpinned');
    const unknown = runCli(['--count', '0', '--max-entries', 'nope=3', 'c-samples/loader_policy_kern.o']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('--max-entries nope: c-samples/loader_policy_kern.o has no map named nope (maps: per_cpu_later, policy_map)');
  });

  kernelTest('--keep-going loads and attaches what the kernel accepts, reports the refusal, exits 1', () => {
    const r = runCli(['--count', '0', '--json', '--keep-going', 'c-samples/partial_kern.o']);
    expect(r.status, r.stderr).toBe(1);
    const report = reportOf(r.stdout);
    expect(report.programs.map((p) => [p.name, p.attached])).toEqual([['good_a', true], ['good_b', true]]);
    expect(report.skipped.map((s) => s.name)).toEqual(['rejected']);
    expect(report.skipped[0]!.reason).toMatch(/program rejected \(section socket\/c\).*invalid mem access 'map_value_or_null'/);
    for (const p of report.programs) expect(eventually(() => !programExists(p.id)), p.name).toBe(true);
    // Without --keep-going the refusal stops the load, as bpf_load.c did.
    const strict = runCli(['--count', '0', 'c-samples/partial_kern.o']);
    expect(strict.status).toBe(1);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toMatch(/rejected/);
  });

  kernelTest('--program loads only the named program and the maps it uses', () => {
    const r = runCli(['--count', '0', '--json', '--program', 'good_a', 'c-samples/partial_kern.o']);
    expect(r.status, r.stderr).toBe(0);
    const report = reportOf(r.stdout);
    expect(report.programs.map((p) => p.name)).toEqual(['good_a']);
    expect(report.maps.map((m) => m.name)).toEqual(['hits']);
    // A type bpf-load cannot attach (lwt runs from a route) loads and says so.
    const lwt = runCli(['--count', '0', '--program', 'good_a', '--type', 'socket/a=lwt_xmit', 'c-samples/partial_kern.o']);
    expect(lwt.status, lwt.stderr).toBe(0);
    expect(lwt.stdout).toMatch(/loaded +good_a \(socket\/a, lwt_xmit, id \d+, tag [0-9a-f]{16}\): not attached: lwt_xmit programs run from a route \(ip route add … encap bpf/);
    const unknown = runCli(['--count', '0', '--program', 'good_c', 'c-samples/partial_kern.o']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr.trim()).toBe('bpf-load: c-samples/partial_kern.o: no program named good_c (programs: good_a, good_b, rejected)');
  });

  kernelTest('an iproute2 object loads with --type sched_cls, its maps pinned under --pin-root as tc would', () => {
    const root = mkdtempSync(join('/sys/fs/bpf', `bpf-load-cli-lineages-${process.pid}-`));
    try {
      const r = runCli(['--count', '0', '--json', '--type', 'sched_cls', '--pin-root', root, 'c-samples/iproute2_kern.o']);
      expect(r.status, r.stderr).toBe(0);
      const report = reportOf(r.stdout);
      expect(report.programs.map((p) => [p.name, p.type, p.attached])).toEqual([
        ['cls_ingress', 'sched_cls', true], ['tail_one', 'sched_cls', false], ['cls_egress', 'sched_cls', true],
      ]);
      expect(existsSync(join(root, 'tc', 'globals', 'counts'))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
