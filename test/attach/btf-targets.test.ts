import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { parseBtf } from '../../src/btf/index.js';
import { readElf } from '../../src/elf/index.js';
import { openObject } from '../../src/index.js';
import { LoadError, loadObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { eventually, kernelTest, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import { fentryLoads } from '../helpers/kernel-probes.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';

const OBJECT = join(SAMPLES_DIR, 'btf_targets_kern.o');

describe('programs attached by BTF id (fentry/fexit, tp_btf)', () => {
  it('targets are resolved in the kernel BTF given to the loader (pure: no kernel needed to fail)', () => {
    const spec = parseObject(readFileSync(OBJECT), { name: 'btf_targets_kern.o' });
    expect(spec.programs.map((p) => [p.name, p.type, p.expectedAttachType, p.attachTarget])).toEqual([
      ['on_nanosleep_entry', 'tracing', 'trace_fentry', 'do_nanosleep'],
      ['on_nanosleep_exit', 'tracing', 'trace_fexit', 'do_nanosleep'],
      ['on_sched_switch', 'tracing', 'trace_raw_tp', 'sched_switch'],
    ]);
    // The object's own BTF stands in for a kernel that has none of these functions.
    const elf = readElf(readFileSync(OBJECT));
    const notTheKernel = parseBtf(elf.section('.BTF')!.data, elf.littleEndian);
    expect(() => loadObject(spec, { kernelBtf: () => notTheKernel }))
      .toThrow(new LoadError("btf_targets_kern.o: program on_nanosleep_entry (section fentry/do_nanosleep): the kernel's BTF has no func do_nanosleep to attach to"));
  });

  kernelTest('tp_btf/sched_switch loads against vmlinux BTF, attaches, and counts; fentry/fexit do what the kernel does with a bare fentry program', async () => {
    // Asked first with hand-written instructions, so the expectation does not come from the loader under test.
    const fentry = fentryLoads('do_nanosleep');
    const before = openFdCount();
    const skipped: string[] = [];
    const obj = openObject(OBJECT, { onProgramError: 'skip', onWarning: (m) => skipped.push(m) });
    let ids: number[] = [];
    try {
      const tp = obj.program('on_sched_switch');
      expect(tp.info.attachBtfId).toBeGreaterThan(0);
      ids = obj.programs.map((p) => p.id);
      const link = obj.attach(tp);
      expect(link.target).toBe('trace_raw_tp sched_switch');
      const start = Number(obj.variable('context_switches').get());
      await sleep(200);
      expect(Number(obj.variable('context_switches').get())).toBeGreaterThan(start);
      // Kernels without BPF trampolines refuse fentry/fexit even to root: then both are skipped, saying so.
      const tracing = ['fentry/do_nanosleep', 'fexit/do_nanosleep'];
      expect(obj.loaded.skipped.map((s) => s.spec.section)).toEqual(fentry === true ? [] : tracing);
      expect(obj.programs.map((p) => p.section).sort()).toEqual(fentry === true ? [...tracing, 'tp_btf/sched_switch'] : ['tp_btf/sched_switch']);
      for (const s of obj.loaded.skipped) expect(s.reason).toContain(`(${String(fentry)}) — refused although this process has CAP_SYS_ADMIN`);
      link.detach();
      expect(linksOfPrograms([tp.id])).toEqual([]);
    } finally {
      obj.close();
    }
    for (const id of ids) expect(eventually(() => !programExists(id))).toBe(true);
    expect(openFdCount()).toBe(before);
  });
});
