import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { withContext } from '../base/errors.js';
import { parseBtf, type Btf } from '../btf/index.js';
import type { ProgramSpec } from '../object/index.js';
import { LoadError } from './errors.js';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
let vmlinux: Btf | undefined;

/** The running kernel's BTF, parsed on first use (about 0.25 s for 126k types) and kept. */
export function runningKernelBtf(): Btf {
  if (vmlinux !== undefined) return vmlinux;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(VMLINUX_BTF);
  } catch (e) {
    throw new LoadError(`${VMLINUX_BTF}: ${(e as NodeJS.ErrnoException).code ?? String(e)}: this kernel exposes no BTF (CONFIG_DEBUG_INFO_BTF)`);
  }
  vmlinux = parseBtf(bytes, endianness() === 'LE', { file: VMLINUX_BTF });
  return vmlinux;
}

/**
 * The BTF id a tracing or LSM program attaches to, by libbpf's naming rules: fentry/fexit/fmod_ret name a kernel
 * function; tp_btf/X the typedef btf_trace_X; lsm/X the hook function bpf_lsm_X; iter/X the function bpf_iter_X.
 */
export function attachBtfId(program: ProgramSpec, kernelBtf: Btf, file: string | undefined): number {
  const target = program.attachTarget;
  const [kind, name] = (() => {
    switch (program.expectedAttachType) {
      case 'trace_raw_tp': return ['typedef', `btf_trace_${target}`] as const;
      case 'lsm_mac':
      case 'lsm_cgroup': return ['func', `bpf_lsm_${target}`] as const;
      case 'trace_iter': return ['func', `bpf_iter_${target}`] as const;
      default: return ['func', target] as const;
    }
  })();
  const found = kernelBtf.findByName(kind, name);
  if (found === undefined) {
    throw new LoadError(withContext([file, `program ${program.name} (section ${program.section})`], `the kernel's BTF has no ${kind} ${name} to attach to`));
  }
  return found.id;
}
