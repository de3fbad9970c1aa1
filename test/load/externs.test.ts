import { readFileSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { parseBtf } from '../../src/btf/index.js';
import { sanitizeExternsForKernel } from '../../src/btf/sanitize.js';
import { readElf } from '../../src/elf/index.js';
import { SymbolBind } from '../../src/elf/types.js';
import { decodeInsns } from '../../src/insn/index.js';
import { KFUNC_POISON_BASE, resolveExterns, type ExternFacts } from '../../src/load/externs.js';
import { LoadError, loadObject, relocateProgram, runningKernelBtf, runningKernelVersion } from '../../src/load/index.js';
import { parseObject, type BpfObjectSpec } from '../../src/object/index.js';
import { btfLoad, closeFd } from '../../src/sys/index.js';
import { BtfBuilder } from '../btf/btf-builder.js';
import { corpusFiles, corpusKernelTest, corpusTest, missingCorpusFile } from '../helpers/kernel.js';
import { fentryLoads, kfuncCallsLoad, typedKsymLoads } from '../helpers/kernel-probes.js';

/** A corpus object as the parser sees it; its extern relocations must carry their ELF symbol's weakness. */
function corpus(name: string): BpfObjectSpec | undefined {
  const path = corpusFiles('cilium', (n) => n === name)?.[0];
  if (path === undefined) return undefined;
  const bytes = readFileSync(path);
  const spec = parseObject(bytes, { name: path });
  const weak = new Set(readElf(bytes).symbols.filter((s) => s.bind === SymbolBind.WEAK).map((s) => s.name));
  for (const r of spec.relocations) if (r.kind === 'extern') expect(r.weak, `${name}: ${r.target}`).toBe(weak.has(r.target));
  return spec;
}

/** A fake kernel BTF holding just the named functions and int variables. */
function fakeKernel(funcs: string[], vars: string[]) {
  const b = new BtfBuilder();
  const int = b.int('int', 4, { signed: true });
  const proto = b.funcProto(int, []);
  const ids = new Map<string, number>();
  for (const f of funcs) ids.set(f, b.func(f, proto));
  for (const v of vars) ids.set(v, b.var(v, int));
  const btf = parseBtf(b.build(), true);
  return { btf, ids };
}

const KALLSYMS = 'ffffffff81000010 T bpf_init\nffffffff81000020 t bpf_trace_run1\t[somemod]\n';
const CONFIG = '# comment\nCONFIG_HZ=250\n# CONFIG_BPF_SYSCALL is not set\nCONFIG_DEFAULT_HOSTNAME="(none)"\n';

function facts(over: Partial<ExternFacts> = {}): ExternFacts {
  return {
    kernelBtf: () => fakeKernel([], []).btf, kallsyms: () => KALLSYMS, kconfig: () => CONFIG, kernelVersion: 0x061200,
    hasSyscallWrapper: () => true, ...over,
  };
}

describe('resolveExterns (fake kernel facts)', () => {
  corpusTest('kfuncs resolve to kernel BTF FUNC ids; a missing weak one is poisoned, a missing strong one names itself', () => {
    const spec = corpus('kfunc-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    const kernel = fakeKernel(['bpf_skb_ct_lookup', 'bpf_fentry_test1', 'bpf_cpumask_create', 'bpf_cpumask_release'], []);
    const { targets, kconfig } = resolveExterns(spec, facts({ kernelBtf: () => kernel.btf }));
    expect(kconfig).toBeUndefined();
    expect(targets.get('bpf_skb_ct_lookup')).toEqual({ kind: 'kernel_func', btfId: kernel.ids.get('bpf_skb_ct_lookup') });
    expect(targets.get('invalid_kfunc')?.kind).toBe('absent');
    expect(targets.get('bpf_ct_release')).toEqual({ kind: 'unresolved', reason: "extern bpf_ct_release: the kernel's BTF has no function bpf_ct_release (kfunc)" });

    const program = spec.programs.find((p) => p.name === 'call_kfunc')!;
    const { insns } = relocateProgram(spec, program, { mapFd: () => 3, dataMapFd: () => 4, extern: (n) => (n === 'bpf_ct_release' ? { kind: 'kernel_func', btfId: 77 } : targets.get(n)) });
    const calls = decodeInsns(insns, true).filter((i) => i.opcode === 0x85 && i.src === 2);
    expect(calls.map((c) => c.imm).sort()).toEqual([kernel.ids.get('bpf_skb_ct_lookup')!, 77].sort());
    expect(calls.every((c) => c.off === 0)).toBe(true);

    const weak = spec.programs.find((p) => p.name === 'weak_kfunc_missing')!;
    const poisoned = decodeInsns(relocateProgram(spec, weak, { mapFd: () => 3, dataMapFd: () => 4, extern: (n) => targets.get(n) }).insns, true)
      .filter((i) => i.opcode === 0x85 && i.src === 0);
    expect(poisoned.length).toBeGreaterThan(0);
    expect(poisoned.every((c) => c.imm >= KFUNC_POISON_BASE)).toBe(true);
    expect(() => relocateProgram(spec, spec.programs.find((p) => p.name === 'call_kfunc')!, { mapFd: () => 3, dataMapFd: () => 4, extern: (n) => targets.get(n) }))
      .toThrow(/extern bpf_ct_release: the kernel's BTF has no function bpf_ct_release/);
  });

  corpusTest('untyped ksyms take kallsyms addresses, typed ones kernel VAR ids; missing weak ones load as 0', () => {
    const spec = corpus('ksym-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    const kernel = fakeKernel([], ['bpf_prog_active', 'softnet_data']);
    const { targets } = resolveExterns(spec, facts({ kernelBtf: () => kernel.btf }));
    expect(targets.get('bpf_init')).toEqual({ kind: 'address', value: 0xffffffff81000010n });
    expect(targets.get('bpf_trace_run1')).toEqual({ kind: 'address', value: 0xffffffff81000020n });
    expect(targets.get('softnet_data')).toEqual({ kind: 'kernel_var', btfId: kernel.ids.get('softnet_data') });
    expect(targets.get('missing_ksym')).toEqual({ kind: 'unresolved', reason: 'extern missing_ksym: /proc/kallsyms has no symbol missing_ksym (ksym)' });
    expect(targets.get('missing_typed_ksym')?.kind).toBe('unresolved');
    expect(targets.get('missing_weak_ksym')?.kind).toBe('absent');
    expect(targets.get('missing_weak_typed_ksym')?.kind).toBe('absent');

    const extern = (n: string) => targets.get(n);
    const ld = (name: string) => decodeInsns(relocateProgram(spec, spec.programs.find((p) => p.name === name)!, { mapFd: () => 3, dataMapFd: () => 4, extern }).insns, true)
      .filter((i) => i.opcode === 0x18);
    expect(ld('ksym_test').filter((i) => i.src === 0).map((i) => i.imm64)).toEqual(expect.arrayContaining([0xffffffff81000010n, 0xffffffff81000020n]));
    expect(ld('typed_ksym_test').some((i) => i.src === 3 && i.imm === kernel.ids.get('softnet_data'))).toBe(true);
    expect(ld('missing_weak_ksym_test').some((i) => i.src === 0 && i.imm === 0)).toBe(true);
    expect(() => ld('missing_ksym_test')).toThrow(/missing_ksym_test: insn \d+ of socket: extern missing_ksym/);
  });

  corpusTest('.kconfig values come from the kernel version and the config text, laid out by alignment', () => {
    const spec = corpus('kconfig-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    const { targets, kconfig } = resolveExterns(spec, facts());
    expect(kconfig).toBeDefined();
    const { contents, offsets } = kconfig!;
    const view = new DataView(contents.buffer, contents.byteOffset, contents.byteLength);
    const at = (n: string) => offsets.get(n)!;
    expect(view.getInt32(at('LINUX_KERNEL_VERSION'), true)).toBe(0x061200);
    expect(view.getInt32(at('CONFIG_HZ'), true)).toBe(250);
    expect(view.getUint32(at('CONFIG_BPF_SYSCALL'), true)).toBe(0);
    expect(contents[at('LINUX_HAS_SYSCALL_WRAPPER')]).toBe(1);
    expect(contents[at('CONFIG_DEFAULT_HOSTNAME')]).toBe(0); // char[1]: the string truncated to its NUL
    for (const n of offsets.keys()) expect(targets.get(n)).toEqual({ kind: 'kconfig', offset: offsets.get(n) });
    expect(at('CONFIG_HZ') % 4).toBe(0);

    const yes = resolveExterns(spec, facts({ kconfig: () => 'CONFIG_HZ=0x64\nCONFIG_BPF_SYSCALL=m\nCONFIG_DEFAULT_HOSTNAME=""\n' }));
    const v2 = new DataView(yes.kconfig!.contents.buffer);
    expect(v2.getInt32(yes.kconfig!.offsets.get('CONFIG_HZ')!, true)).toBe(100);
    expect(v2.getUint32(yes.kconfig!.offsets.get('CONFIG_BPF_SYSCALL')!, true)).toBe(2);

    const missing = resolveExterns(spec, facts({ kconfig: () => 'CONFIG_BPF_SYSCALL=y\nCONFIG_DEFAULT_HOSTNAME="x"\nCONFIG_HZ="str"\n' }));
    expect(missing.targets.get('CONFIG_HZ')).toEqual({ kind: 'unresolved', reason: 'extern CONFIG_HZ (.kconfig): string value "str" needs a char array' });
    const none = resolveExterns(spec, facts({ kconfig: () => undefined }));
    expect(none.targets.get('CONFIG_HZ')).toEqual({ kind: 'unresolved', reason: 'extern CONFIG_HZ (.kconfig): the kernel config is unavailable (no /proc/config.gz or /boot/config-<release>)' });
    expect(none.targets.get('LINUX_KERNEL_VERSION')?.kind).toBe('kconfig');
  });
});

describe('sanitizeExternsForKernel', () => {
  for (const name of ['kfunc-el.elf', 'ksym-el.elf', 'kconfig-el.elf']) {
    corpusTest(`${name}: no extern linkage is left, extern datasecs are well formed, and the result re-parses`, () => {
      const spec = corpus(name);
      if (spec === undefined) throw missingCorpusFile();
      const before = Buffer.from(spec.btf!.raw);
      const kconfig = resolveExterns(spec, facts({ kernelBtf: () => fakeKernel([], []).btf })).kconfig;
      const out = sanitizeExternsForKernel(spec.btf!, kconfig?.offsets, kconfig?.contents.byteLength);
      expect(Buffer.from(spec.btf!.raw).equals(before)).toBe(true); // the object's BTF is not touched
      const again = parseBtf(out.raw, true);
      expect(again.types.length).toBe(out.types.length);
      expect(out.types.length).toBeGreaterThanOrEqual(spec.btf!.types.length);
      for (const t of out.types) {
        if (t.kind === 'func' || t.kind === 'var') expect(t.linkage).not.toBe('extern');
        if (t.kind === 'var') expect(t.type).not.toBe(0);
        if (t.kind === 'datasec' && (t.name === '.ksyms' || t.name === '.kconfig')) {
          let end = 0;
          for (const v of t.vars) {
            expect(out.type(v.type).kind).toBe('var');
            expect(v.offset).toBeGreaterThanOrEqual(end);
            end = v.offset + v.size;
          }
          expect(t.size).toBeGreaterThanOrEqual(end);
        }
      }
      // Existing ids and names are unchanged.
      spec.btf!.types.forEach((t, id) => expect(out.type(id).name).toBe(t.name));
    });

    corpusKernelTest(`${name}: the kernel accepts the sanitized BTF (BPF_BTF_LOAD)`, () => {
      const spec = corpus(name);
      if (spec === undefined) throw missingCorpusFile();
      const kconfig = resolveExterns(spec, facts({ kernelBtf: () => fakeKernel([], []).btf })).kconfig;
      expect(() => closeFd(btfLoad({ btf: spec.btf!.raw }))).toThrow(/EINVAL/);
      const fd = btfLoad({ btf: sanitizeExternsForKernel(spec.btf!, kconfig?.offsets, kconfig?.contents.byteLength).raw });
      closeFd(fd);
    });
  }
});

describe('loading objects with externs (running kernel)', () => {
  const warningsOf = (spec: BpfObjectSpec, options: Parameters<typeof loadObject>[1] = {}) => {
    const warnings: string[] = [];
    const object = loadObject(spec, { onProgramError: 'skip', onWarning: (m) => warnings.push(m), ...options });
    return { object, warnings };
  };

  corpusKernelTest('kfunc-el.elf: each program loads exactly when the kernel takes what it uses; the BTF is accepted', () => {
    const spec = corpus('kfunc-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    // The kernel asked first, with hand-written programs: kfunc calls from tc at all, and fentry (benchmark's section).
    const kfuncs = kfuncCallsLoad();
    const fentry = fentryLoads('bpf_fentry_test2');
    const inVmlinux = (name: string) => runningKernelBtf().findByName('func', name) !== undefined;
    const conntrack = ['bpf_skb_ct_lookup', 'bpf_ct_release'].filter((n) => !inVmlinux(n));
    const { object, warnings } = warningsOf(spec);
    try {
      expect(warnings.filter((w) => w.includes('BTF'))).toEqual([]);
      // The weak kfuncs (invalid_kfunc behind bpf_ksym_exists(), and the cpumask ones) are poisoned when missing, in
      // dead code: those programs load either way.
      const expected = ['call_weak_kfunc', 'weak_kfunc_missing'];
      if (kfuncs === true && conntrack.length === 0) expected.push('call_kfunc');
      if (fentry === true) expected.push('benchmark');
      expect(object.programs.map((p) => p.name).sort()).toEqual(expected.sort());
      const reason = (n: string) => object.skipped.find((s) => s.spec.name === n)?.reason;
      if (fentry !== true) expect(reason('benchmark')).toContain(`(${fentry}) — refused although this process has CAP_SYS_ADMIN`);
      if (conntrack.length > 0) expect(reason('call_kfunc')).toContain(`extern ${conntrack[0]}: the kernel's BTF has no function ${conntrack[0]} (kfunc)`);
    } finally {
      object.close();
    }
  });

  corpusKernelTest('ksym-el.elf: ksyms the kernel has load, missing strong ones fail by name, missing weak ones load', () => {
    const spec = corpus('ksym-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    // Whether the kernel resolves a typed per-CPU ksym (typed_ksym_test's softnet_data), asked with a bare program
    // first: without CONFIG_KALLSYMS_ALL it cannot find data symbols (ENOENT), whatever the loader does.
    const softnetData = typedKsymLoads('softnet_data');
    const { object } = warningsOf(spec);
    try {
      const loaded = object.programs.map((p) => p.name);
      const expected = ['ksym_test', 'missing_weak_ksym_test', 'missing_weak_typed_ksym_test', 'typed_ksym_mod_var_test'];
      if (softnetData === true) expected.push('typed_ksym_test');
      expect([...loaded].sort()).toEqual(expected.sort());
      const reason = (n: string) => object.skipped.find((s) => s.spec.name === n)?.reason;
      if (softnetData !== true) expect(reason('typed_ksym_test')).toMatch(new RegExp(`kernel symbol 'softnet_data'.*\\(${softnetData}\\b`));
      expect(reason('missing_ksym_test')).toMatch(/extern missing_ksym: \/proc\/kallsyms has no symbol missing_ksym/);
      expect(reason('missing_typed_ksym_test')).toMatch(/extern missing_typed_ksym: the kernel's BTF has no variable missing_typed_ksym/);
      expect(loaded).not.toContain('missing_ksym_test');
    } finally {
      object.close();
    }
  });

  corpusKernelTest('kconfig-el.elf: loads with an injected config and the real kernel version in a frozen .kconfig map', () => {
    const spec = corpus('kconfig-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    const { object, warnings } = warningsOf(spec, { onProgramError: 'throw', kernelConfig: () => CONFIG });
    try {
      expect(warnings).toEqual([]);
      expect(object.programs.map((p) => p.name)).toEqual(['kconfig']);
      const map = object.map('.kconfig');
      expect(map.spec.readOnly).toBe(true);
      const value = map.get(0)!;
      const layout = resolveExterns(spec, facts()).kconfig!.offsets;
      expect(Buffer.from(value).readInt32LE(layout.get('LINUX_KERNEL_VERSION')!)).toBe(runningKernelVersion());
      expect(Buffer.from(value).readInt32LE(layout.get('CONFIG_HZ')!)).toBe(250);
      expect(() => map.set(0, value)).toThrow(); // frozen
    } finally {
      object.close();
    }
  });

  corpusKernelTest('kconfig-el.elf: a strong CONFIG_ the config lacks is a named error', () => {
    const spec = corpus('kconfig-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    expect(() => loadObject(spec, { kernelConfig: () => 'CONFIG_BPF_SYSCALL=y\n' }))
      .toThrow(new RegExp('program kconfig .*extern CONFIG_HZ \\(.kconfig\\): not set in the kernel config'));
    expect(() => loadObject(spec, { kernelConfig: () => 'CONFIG_BPF_SYSCALL=y\n' })).toThrow(LoadError);
  });

  corpusKernelTest('fwd_decl-el.elf: a function declared but defined nowhere is a named error', () => {
    const spec = corpus('fwd_decl-el.elf');
    if (spec === undefined) throw missingCorpusFile();
    expect(() => loadObject(spec)).toThrow(/call_fwd.*symbol fwd is not defined in this object: it is neither a kfunc, a ksym nor a \.kconfig extern/);
  });
});
